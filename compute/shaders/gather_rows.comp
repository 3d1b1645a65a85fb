#version 450
// gather_rows.comp: y[i, :] = x[index[i], :], zeros for an index outside [0, rows).
// x is read through an r32f texel view (tables bigger than a storage binding, such as
// a 49408 x 1024 token embedding); y and index are windows of rows.
//! bindings: frw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) uniform samplerBuffer x;
layout(set = 0, binding = 1) readonly buffer Index { int index[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
	uint count;      // elements of y in this window
	uint cols;
	uint rows;       // rows of x
	uint x_base;     // texel index of x's first element
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.count)
		return;
	uint r = i / pc.cols, c = i % pc.cols;
	int k = index[r];
	bool ok = k >= 0 && uint(k) < pc.rows;
	y[i] = ok ? texelFetch(x, int(pc.x_base + uint(k) * pc.cols + c)).x : 0.0;
}
