#version 450
// decomp_accumulate.comp: adds folded per-head products into a decomposition slot,
// weighting each source token by its attention probability and summing away the token
// and/or head axes when the caller reduces them:
//   slot[b, m', h', c] += sum over m in M(m'), h in H(h') of
//                         (use_alpha ? alpha[b, h, m + alpha_m0] : 1) * t[b, m, h, c]
// t is [B, M, H, C] with image stride t_batch (elements), alpha [B, H, alpha_n].
//! bindings: rrw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) readonly buffer T { float t[]; };
layout(set = 0, binding = 1) readonly buffer Alpha { float alpha[]; };
layout(set = 0, binding = 2) buffer Slot { float slot[]; };

layout(push_constant) uniform Push {
	uint batch, tokens, heads, dim;
	uint t_batch;       // elements between images in t
	uint use_alpha;
	uint alpha_n;       // last dimension of alpha
	uint alpha_m0;      // token offset into alpha (0: t's token m is alpha's token m)
	uint sum_tokens;    // 1: slot has one token entry
	uint sum_heads;     // 1: slot has one head entry
	uint n;             // slot elements
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.n)
		return;
	uint out_heads = pc.sum_heads != 0 ? 1 : pc.heads;
	uint out_tokens = pc.sum_tokens != 0 ? 1 : pc.tokens;
	uint c = i % pc.dim;
	uint rest = i / pc.dim;
	uint h1 = rest % out_heads;
	rest /= out_heads;
	uint m1 = rest % out_tokens;
	uint b = rest / out_tokens;
	uint m_lo = pc.sum_tokens != 0 ? 0 : m1, m_hi = pc.sum_tokens != 0 ? pc.tokens : m1 + 1;
	uint h_lo = pc.sum_heads != 0 ? 0 : h1, h_hi = pc.sum_heads != 0 ? pc.heads : h1 + 1;
	float acc = 0.0;
	for (uint m = m_lo; m < m_hi; m++) {
		for (uint h = h_lo; h < h_hi; h++) {
			float v = t[b * pc.t_batch + (m * pc.heads + h) * pc.dim + c];
			if (pc.use_alpha != 0)
				v *= alpha[(b * pc.heads + h) * pc.alpha_n + m + pc.alpha_m0];
			acc += v;
		}
	}
	slot[i] += acc;
}
