#version 450
// decomp_extra.comp: the 3 entries after each head's weighted values in a spatial
// decomposition row: 1 (picks the out_proj bias share), w*sigma_b (beta's share, since
// the whole row is later scaled by 1/sigma_b) and -w*mu_b (mu's share).
//   v[(b*N + m)*H + h, dh + 0..2] = 1, w * sigma[b], -w * mean[b]
//! bindings: rrw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(set = 0, binding = 0) readonly buffer Mean { float mean[]; };
layout(set = 0, binding = 1) readonly buffer Sigma { float sigma[]; };
layout(set = 0, binding = 2) buffer V { float v[]; };

layout(push_constant) uniform Push {
	uint n;          // rows * heads
	uint tokens;     // N
	uint heads;      // H
	uint head_width; // dh
	float w;         // a spatial summand's weight, 1 / (K N H)
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.n)
		return;
	uint b = i / (pc.tokens * pc.heads);
	uint at = i * (pc.head_width + 3u) + pc.head_width;
	v[at] = 1.0;
	v[at + 1u] = pc.w * sigma[b];
	v[at + 2u] = -pc.w * mean[b];
}
