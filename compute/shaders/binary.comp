#version 450
// binary.comp: out = a (op) b elementwise, with NumPy broadcasting given as per-axis
// strides (0 on broadcast axes) over the output's shape. The inputs are read through
// r32f texel views (any size); the output is written in windows of elements, so
// tensors larger than one storage binding work.
//! bindings: ffw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) uniform samplerBuffer a;
layout(set = 0, binding = 1) uniform samplerBuffer b;
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };

layout(push_constant) uniform Push {
	uint n;              // elements of the output in this window
	uint first;          // index of the window's first element in the output
	uint ndim;
	uint op;
	uint a_base, b_base; // texel indices of the inputs' first elements
	uint dims[8];
	uint a_stride[8];
	uint b_stride[8];
} pc;

const uint OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_MAX = 4, OP_MIN = 5,
	OP_POW = 6, OP_EQ = 7, OP_NE = 8, OP_LT = 9, OP_LE = 10, OP_GT = 11, OP_GE = 12;

// x^y with C99's special cases (Annex F): GLSL leaves pow undefined for x < 0 and
// drivers compute exp2(y * log2(x)), which gives NaN for (-2)^2 and 0 for 0^0. Integral
// exponents up to 64 multiply by squaring (exact for small powers), the rest go through
// exp2/log2 of |x|; an odd integral exponent keeps the sign of x.
float pow_c(float x, float y)
{
	if (y == 0.0 || x == 1.0)
		return 1.0;
	if (isnan(x) || isnan(y))
		return x + y;
	float ax = abs(x), ay = abs(y);
	if (isinf(y)) {
		if (ax == 1.0)
			return 1.0;
		return (ax > 1.0) == (y > 0.0) ? ay : 0.0;
	}
	bool yint = floor(y) == y;
	bool negative = (floatBitsToUint(x) >> 31) != 0u;
	if (negative && ax != 0.0 && !isinf(x) && !yint)
		return uintBitsToFloat(0x7fc00000u);
	float r;
	if (yint && ay <= 64.0) {
		r = 1.0;
		float b = ax;
		for (uint e = uint(ay); e != 0u; e >>= 1) {
			if ((e & 1u) != 0u)
				r *= b;
			b *= b;
		}
		if (y < 0.0)
			r = 1.0 / r;
	} else if (ax == 0.0 || isinf(ax)) {
		r = (ax == 0.0) == (y > 0.0) ? 0.0 : uintBitsToFloat(0x7f800000u);
	} else {
		r = exp2(y * log2(ax));
	}
	bool odd = yint && ay < 16777216.0 && mod(ay, 2.0) == 1.0;
	return negative && odd ? -r : r;
}

float apply(float x, float y)
{
	switch (pc.op) {
	case OP_ADD: return x + y;
	case OP_SUB: return x - y;
	case OP_MUL: return x * y;
	case OP_DIV: return x / y;
	// NaN propagates (GLSL's max/min may return either operand).
	case OP_MAX: return isnan(x) || isnan(y) ? x + y : max(x, y);
	case OP_MIN: return isnan(x) || isnan(y) ? x + y : min(x, y);
	case OP_POW: return pow_c(x, y);
	case OP_EQ: return x == y ? 1.0 : 0.0;
	case OP_NE: return x != y ? 1.0 : 0.0;
	case OP_LT: return x < y ? 1.0 : 0.0;
	case OP_LE: return x <= y ? 1.0 : 0.0;
	case OP_GT: return x > y ? 1.0 : 0.0;
	default: return x >= y ? 1.0 : 0.0;
	}
}

void main()
{
	uint i = flat_index();
	if (i >= pc.n)
		return;
	uint rest = pc.first + i, ia = pc.a_base, ib = pc.b_base;
	for (int d = int(pc.ndim) - 1; d >= 0; d--) {
		uint coord = rest % pc.dims[d];
		rest /= pc.dims[d];
		ia += coord * pc.a_stride[d];
		ib += coord * pc.b_stride[d];
	}
	c[i] = apply(texelFetch(a, int(ia)).x, texelFetch(b, int(ib)).x);
}
