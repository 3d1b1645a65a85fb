#version 450
// binary.comp: out = a (op) b elementwise, with NumPy broadcasting given as per-axis
// strides (0 on broadcast axes) over the output's shape.
//! bindings: rrw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };

layout(push_constant) uniform Push {
	uint n;
	uint ndim;
	uint op;
	uint pad;
	uint dims[8];
	uint a_stride[8];
	uint b_stride[8];
} pc;

const uint OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_MAX = 4, OP_MIN = 5,
	OP_POW = 6, OP_EQ = 7, OP_NE = 8, OP_LT = 9, OP_LE = 10, OP_GT = 11, OP_GE = 12;

float apply(float x, float y)
{
	switch (pc.op) {
	case OP_ADD: return x + y;
	case OP_SUB: return x - y;
	case OP_MUL: return x * y;
	case OP_DIV: return x / y;
	case OP_MAX: return max(x, y);
	case OP_MIN: return min(x, y);
	case OP_POW: return pow(x, y);
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
	uint rest = i, ia = 0, ib = 0;
	for (int d = int(pc.ndim) - 1; d >= 0; d--) {
		uint coord = rest % pc.dims[d];
		rest /= pc.dims[d];
		ia += coord * pc.a_stride[d];
		ib += coord * pc.b_stride[d];
	}
	c[i] = apply(a[ia], b[ib]);
}
