#version 450
// gemm_pack_a.comp: copies A [M, K] (vec4 texels along K) into the order in which the
// lanes kernel reads it, so that each of its fetches reads one contiguous run of texels
// instead of one texel from each of LANES rows: row group g, quad q, row r of a lane,
// lane l go to texel ((g * kq + q) * R + r) * LANES + l, for row (g * LANES + l) * R + r
// (rows past M repeat the last one). Lavapipe's fetches then stream through memory
// rather than touching LANES * R rows at once (measured: up to 1.6x at K = 3072).
//! bindings: tw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint LANES = 8;
layout(constant_id = 2) const uint R = 1;

layout(set = 0, binding = 0) uniform samplerBuffer a4;
layout(set = 0, binding = 1) writeonly buffer Out { vec4 packed_a[]; };

layout(push_constant) uniform Push {
	uint total;      // texels to write: groups * kq * R * LANES
	uint m, kq;
	uint a_off4;     // texel index of A[0, 0] in the view
	uint a_rs4;      // row stride in texels
	uint out_off4;   // texel index of the output in its binding
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.total)
		return;
	uint l = i % LANES, r = (i / LANES) % R;
	uint gq = i / (LANES * R);
	uint q = gq % pc.kq, g = gq / pc.kq;
	uint row = min((g * LANES + l) * R + r, pc.m - 1u);
	packed_a[pc.out_off4 + i] = texelFetch(a4, int(pc.a_off4 + row * pc.a_rs4 + q));
}
