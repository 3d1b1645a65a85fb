#version 450
// where.comp: y = cond != 0 ? a : b elementwise with NumPy broadcasting, given as
// per-axis strides (0 on broadcast axes) over y's shape, up to 6 axes after merging.
// The inputs are read through r32f texel views (any size, any window of y).
//! bindings: fffw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) uniform samplerBuffer cond;
layout(set = 0, binding = 1) uniform samplerBuffer a;
layout(set = 0, binding = 2) uniform samplerBuffer b;
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
	uint count;          // elements of y in this window
	uint first;          // index of the window's first element in y
	uint ndim;
	uint cond_base, a_base, b_base;   // texel indices of the inputs' first elements
	uint dim[6];
	uint cond_stride[6], a_stride[6], b_stride[6];
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.count)
		return;
	uint rest = pc.first + i, ic = pc.cond_base, ia = pc.a_base, ib = pc.b_base;
	for (int d = int(pc.ndim) - 1; d >= 0; d--) {
		uint coord = rest % pc.dim[d];
		rest /= pc.dim[d];
		ic += coord * pc.cond_stride[d];
		ia += coord * pc.a_stride[d];
		ib += coord * pc.b_stride[d];
	}
	bool take_a = texelFetch(cond, int(ic)).x != 0.0;
	y[i] = take_a ? texelFetch(a, int(ia)).x : texelFetch(b, int(ib)).x;
}
