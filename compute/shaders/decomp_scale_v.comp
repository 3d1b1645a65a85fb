#version 450
// decomp_scale_v.comp: every source token's value vector weighted by the CLS query's
// attention to it, per head, copied out of the packed qkv rows:
//   out[b*N + m, h*(dh+4) + j] = qkv[b*N + m, 2W + h*dh + j] * alpha[b, h, m]   (j < dh)
// These rows times each head's folded matrix are the spatial contributions; the 4 entries
// after each head's dh are written later (decomp_extra.comp).
//! bindings: rrw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(set = 0, binding = 0) readonly buffer Qkv { float qkv[]; };
layout(set = 0, binding = 1) readonly buffer Alpha { float alpha[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float outv[]; };

layout(push_constant) uniform Push {
	uint n;          // rows * width
	uint width;      // W
	uint tokens;     // N
	uint heads;      // H
	uint head_width; // dh
	uint out_head;   // dh + 4: a head's stride in out
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.n)
		return;
	uint row = i / pc.width, col = i - row * pc.width;
	uint b = row / pc.tokens, m = row - b * pc.tokens;
	uint h = col / pc.head_width, j = col - h * pc.head_width;
	outv[(row * pc.heads + h) * pc.out_head + j] =
		qkv[row * 3u * pc.width + 2u * pc.width + col] * alpha[(b * pc.heads + h) * pc.tokens + m];
}
