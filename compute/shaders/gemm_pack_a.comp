#version 450
// gemm_pack_a.comp: copies A [M, K] (vec4 texels along K) into the order in which the
// lanes kernel reads it, so that each of its fetches reads one contiguous run of texels
// instead of one texel from each of LANES rows: row group g, quad q, row r of a lane,
// lane l go to texel ((g * kq + q) * R + r) * LANES + l, for row (g * LANES + l) * R + r
// (rows past M repeat the last one). Lavapipe's fetches then stream through memory
// rather than touching LANES * R rows at once (measured: up to 1.4x at K = 3072).
//
// Shaped like the lanes kernel (one subgroup per workgroup, lane l owns the rows the
// lanes kernel's lane l will read): workgroup (x, y) copies quads [x*QB, x*QB + QB) of
// row group y; no index arithmetic beyond adds in the loop (a division per texel made
// this pass cost 13% of the product).
//! bindings: tw
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint LANES = 8;   // the lanes kernel's workgroup size
layout(constant_id = 1) const int R = 1;        // and its rows per lane
layout(constant_id = 2) const uint QB = 16;     // quads per workgroup

layout(set = 0, binding = 0) uniform samplerBuffer a4;
layout(set = 0, binding = 1) writeonly buffer Out { vec4 packed_a[]; };

layout(push_constant) uniform Push {
	uint m, kq;
	uint a_off4;     // texel index of A[0, 0] in the view
	uint a_rs4;      // row stride in texels
} pc;

void main()
{
	uint l = gl_LocalInvocationID.x, g = gl_WorkGroupID.y;
	uint q0 = gl_WorkGroupID.x * QB, q1 = min(q0 + QB, pc.kq);
	uint src[R];
	[[unroll]] for (int r = 0; r < R; r++)
		src[r] = pc.a_off4 + min((g * LANES + l) * uint(R) + uint(r), pc.m - 1u) * pc.a_rs4;
	uint dst = (g * pc.kq * uint(R)) * LANES + l;
	for (uint q = q0; q < q1; q++)
		[[unroll]] for (int r = 0; r < R; r++)
			packed_a[dst + (q * uint(R) + uint(r)) * LANES] = texelFetch(a4, int(src[r] + q));
}
