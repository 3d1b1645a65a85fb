#version 450
// softmax.comp: y = softmax(scale * x) over each row, in three passes (max, compensated
// sum of exponentials, write). With CAUSAL, row r is query r % qcount and columns past
// it are excluded (written as 0). Rows are a window of the tensor. The VEC4 variant
// (softmax4) reads and writes vec4s, masking the columns of a vec4 past `valid`.
//! bindings: rw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(constant_id = 2) const bool CAUSAL = false;

#include "common/rows.glsl"
#include "common/mathf.glsl"

layout(set = 0, binding = 0) readonly buffer X { VT x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { VT y[]; };

layout(push_constant) uniform Push {
	uint rows;       // rows in this window
	uint cols;
	float scale;
	uint qcount;     // causal: queries per [q, k] matrix
	uint row_base;   // index of the window's first row in the whole tensor
} pc;

// v where column c*WIDTH + k is below `valid`, `other` elsewhere (a select, so that
// whatever lies past `valid`, NaN included, cannot leak in).
VT keep_valid(VT v, float other, uint c, uint valid)
{
#ifdef VEC4
	uvec4 col = uvec4(c * 4u) + uvec4(0u, 1u, 2u, 3u);
	return mix(vec4(other), v, lessThan(col, uvec4(valid)));
#else
	return c < valid ? v : other;
#endif
}

VT exp_v(VT v)
{
#ifdef VEC4
	return vec4(exp_f32(v.x), exp_f32(v.y), exp_f32(v.z), exp_f32(v.w));
#else
	return exp_f32(v);
#endif
}

float max_v(VT v)
{
#ifdef VEC4
	float m = v.x;
	for (int k = 1; k < 4; k++)
		if (isnan(v[k]) || v[k] > m)
			m = v[k];
	return m;
#else
	return v;
#endif
}

void main()
{
	uint row = row_index();
	bool in_range = row < pc.rows;
	uint n = in_range ? pc.cols / WIDTH : 0;     // VT elements per row
	uint base = row * n;
	uint valid = CAUSAL ? min(pc.cols, (pc.row_base + row) % pc.qcount + 1) : pc.cols;
	uint nvalid = in_range ? (valid + WIDTH - 1) / WIDTH : 0;
	const float NEG_INF = uintBitsToFloat(0xff800000u);

	float m = NEG_INF;
	for (uint c = row_lane(); c < nvalid; c += ROW_LANES) {
		float vm = max_v(keep_valid(pc.scale * x[base + c], NEG_INF, c, valid));
		if (isnan(vm) || vm > m)
			m = vm;
	}
	m = row_max(m);

	VT s = VT(0.0), sc = VT(0.0);
	for (uint c = row_lane(); c < nvalid; c += ROW_LANES)
		kahan_addv(s, sc, keep_valid(exp_v(pc.scale * x[base + c] - m), 0.0, c, valid));
	float inv = 1.0 / row_sum(hsum(s - sc));

	for (uint c = row_lane(); c < n; c += ROW_LANES)
		y[base + c] = c < nvalid ? keep_valid(exp_v(pc.scale * x[base + c] - m) * inv, 0.0, c, valid)
					 : VT(0.0);
}
