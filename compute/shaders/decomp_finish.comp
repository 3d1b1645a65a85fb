#version 450
// decomp_finish.comp: turns accumulated raw contributions into their images under the
// frozen ln_post, divided by the embedding's norm, once mu, sigma and ||e|| are known:
//   out[b, r, c] = ((raw + bias[c]) / sigma_b + w * (bpp[c] - mu_b * g1p[c] / sigma_b)) / norm_b
// consts holds rows of C floats: bias at row bias_row, bpp at row 0, g1p at row 1.
//! bindings: wrrrr
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"


layout(set = 0, binding = 0) buffer Slot { float slot[]; };
layout(set = 0, binding = 1) readonly buffer Consts { float consts[]; };
layout(set = 0, binding = 2) readonly buffer Mean { float mean[]; };
layout(set = 0, binding = 3) readonly buffer Std { float sigma[]; };
layout(set = 0, binding = 4) readonly buffer Norm { float norm[]; };

layout(push_constant) uniform Push {
	uint n;            // slot elements
	uint per_image;    // elements per image (rows * C)
	uint dim;          // C
	uint bias_row;     // row of consts with this slot's bias (0xffffffff: none)
	float w;           // this slot's share of mu and beta
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.n)
		return;
	uint b = i / pc.per_image;
	uint c = i % pc.dim;
	float bias = pc.bias_row == 0xffffffffu ? 0.0 : consts[pc.bias_row * pc.dim + c];
	float inv_sigma = 1.0 / sigma[b];
	float v = (slot[i] + bias) * inv_sigma + pc.w * (consts[c] - mean[b] * consts[pc.dim + c] * inv_sigma);
	slot[i] = v / norm[b];
}
