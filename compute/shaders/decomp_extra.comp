#version 450
// decomp_extra.comp: completes each head's block of a spatial decomposition row: the 3
// entries after its dh weighted values (then a zero of padding) are 1 (picks the out_proj bias share), w*sigma_b
// (beta's share) and -w*mu_b (mu's share), and the whole block is scaled by
// 1/(sigma_b ||e_b||), so the row times the extended fold is the finished contribution.
//   v[(b*N + m)*H + h, :] = [v..., 1, w sigma_b, -w mu_b] / (sigma_b ||e_b||)
//! bindings: rrrw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(set = 0, binding = 0) readonly buffer Mean { float mean[]; };
layout(set = 0, binding = 1) readonly buffer Sigma { float sigma[]; };
layout(set = 0, binding = 2) readonly buffer Norm { float norm[]; };
layout(set = 0, binding = 3) buffer V { float v[]; };

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
	float scale = 1.0 / (sigma[b] * norm[b]);
	uint first = i * (pc.head_width + 4u), at = first + pc.head_width;
	for (uint j = first; j < at; j++)
		v[j] *= scale;
	v[at] = scale;
	v[at + 1u] = pc.w * sigma[b] * scale;
	v[at + 2u] = -pc.w * mean[b] * scale;
	v[at + 3u] = 0.0;
}
