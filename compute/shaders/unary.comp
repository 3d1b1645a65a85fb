#version 450
// unary.comp: y = f(x) elementwise over a window of a contiguous f32 tensor: the unary
// math ops, the affine map with clamp, and the activations. The op is a specialization
// constant, so each op compiles to a pipeline without the others' code. The VEC4 variant
// moves a vec4 per invocation: on lavapipe each storage access is a per-lane loop, so
// one vec4 access instead of four scalar ones makes the kernel ~3x faster; the launcher
// runs the scalar variant on the last n % 4 elements.
//! bindings: rw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"
#include "common/mathf.glsl"

layout(constant_id = 1) const uint OP = 0;

#ifdef VEC4
layout(set = 0, binding = 0) readonly buffer X { vec4 x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { vec4 y[]; };
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
#endif

layout(push_constant) uniform Push {
	uint n;          // elements (VEC4: vec4s) in this window
	uint first;      // the first one this dispatch handles
	float scale;     // affine
	float shift;
	float lo;        // clamp bounds (may be infinite)
	float hi;
} pc;

// Mirrors enum rf_unary_op (tensor_ops.h); the codes from 32 are launcher-internal.
const uint OP_NEG = 0, OP_ABS = 1, OP_EXP = 2, OP_LOG = 3, OP_SQRT = 4, OP_RSQRT = 5,
	OP_TANH = 6, OP_SIGMOID = 7, OP_RELU = 8, OP_SQUARE = 9, OP_SIN = 10, OP_COS = 11,
	OP_FLOOR = 12, OP_CEIL = 13, OP_ROUND = 14, OP_SIGN = 15, OP_RECIPROCAL = 16, OP_NOT = 17,
	OP_AFFINE = 32, OP_GELU = 33, OP_QUICKGELU = 34;

// tanh through exp: the built-in may overflow to NaN for large |x| on some drivers.
// Below 0.4 the odd Taylor series to x^11 (truncation 7e-8 relative) avoids the
// cancellation in 1 - 2/(e^2a + 1), which stays under 3 ulp above 0.4.
float tanh_f32(float v)
{
	float a = abs(v);
	float r;
	if (a < 0.4) {
		float s = a * a;
		float p = -1382.0 / 155925.0;
		p = p * s + 62.0 / 2835.0;
		p = p * s - 17.0 / 315.0;
		p = p * s + 2.0 / 15.0;
		p = p * s - 1.0 / 3.0;
		r = a + a * s * p;
	} else {
		r = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
	}
	return v < 0.0 ? -r : r;
}

float apply(float v)
{
	switch (OP) {
	case OP_NEG: return -v;
	case OP_ABS: return abs(v);
	case OP_EXP: return exp_f32(v);
	case OP_LOG: return log_f32(v);
	case OP_SQRT: return sqrt(v);
	case OP_RSQRT: return 1.0 / sqrt(v);
	case OP_TANH: return tanh_f32(v);
	case OP_SIGMOID: return 1.0 / (1.0 + exp_f32(-v));
	case OP_RELU: return v > 0.0 || isnan(v) ? v : 0.0;   // NaN stays NaN, as in PyTorch
	case OP_SQUARE: return v * v;
	case OP_SIN: return sincos_f32(v, false);
	case OP_COS: return sincos_f32(v, true);
	case OP_FLOOR: return floor(v);
	case OP_CEIL: return ceil(v);
	case OP_ROUND: return roundEven(v);
	case OP_SIGN: return isnan(v) ? v : sign(v);          // GLSL's sign(NaN) may be 0
	case OP_RECIPROCAL: return 1.0 / v;
	case OP_NOT: return v == 0.0 ? 1.0 : 0.0;
	case OP_AFFINE: {
		// NaN stays NaN (GLSL's min/max may return the bound instead).
		float a = v * pc.scale + pc.shift;
		return isnan(a) ? a : min(max(a, pc.lo), pc.hi);
	}
	case OP_GELU: return gelu_erf(v);
	default: return quick_gelu(v);
	}
}

void main()
{
	uint i = pc.first + flat_index();
	if (i >= pc.n)
		return;
#ifdef VEC4
	vec4 v = x[i];
	y[i] = vec4(apply(v.x), apply(v.y), apply(v.z), apply(v.w));
#else
	y[i] = apply(x[i]);
#endif
}
