// gemm_lanes.glsl: C = epilogue(A·B) for CPU Vulkan devices (lavapipe); the body of
// gemm_lanes.comp (f32 B) and gemm_lanes_f16.comp (weights packed as f16).
//
// Why it is shaped like this (each point measured on lavapipe, see LAVAPIPE.md and the
// notes in compute/ops/gemm_launch.c): a workgroup runs as one SIMD subgroup; shared
// memory and barriers are slow; a texel fetch is the cheapest load but still a call
// that costs about as much for one address as for eight, and that spills every live
// register; every variable written inside a loop becomes a masked store. So: one
// subgroup per workgroup, each lane owns R rows of A and all NP columns of the
// workgroup's block of C (R*NP accumulators), A and B are read as vec4 texels along K
// wherever the layout allows, the only runtime loop walks K one texel (4 values) at a
// time, U texels per trip, and every other loop has a constant trip count and unrolls.
// Fetches per multiply-add fall as (R + NP) / (4 R NP), which is what makes this fast.
//
// B is read in one of four ways (B_MODE):
//   0  scalar through the r32f view (any strides)
//   1  vec4 along k: column j's 4 k-values are one texel (b_rs == 1, e.g. A·Kᵀ)
//   2  vec4 along n: 4 adjacent columns of one k are one texel (b_cs == 1, e.g. P·V)
//   3  weight panels packed once by rf_gemm_weights_create: panel p (NP columns), quad q,
//      column j is texel b_off/4 + p*b_cs + q*NP + j, zero-padded in N and K.
// A is read as vec4 along k (A_MODE 1, a_cs == 1 and aligned), as scalars (A_MODE 0), or
// (A_MODE 2) from the copy gemm_pack_a.comp made in the order this kernel reads it:
// texel ((g * kq + q) * R + r) * LANES + lane, so that a fetch reads one contiguous run.
//
// The epilogue is specialized (EPI_* constants) rather than steered by the push-constant
// flags: lavapipe runs both sides of every branch under a mask, so an unrolled general
// epilogue ran GELU, QuickGELU and three loads for each of the R*NP elements whatever
// the flags said (20-40% of the time at K = 768). The bias (a runtime flag) seeds the
// accumulators instead: NP loads per workgroup.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
// The workgroup size (the subgroup size) by name: lavapipe 22.3 can leave
// gl_WorkGroupSize at its unspecialized default when local_size_x_id is set.
layout(constant_id = 0) const uint LANES = 8;
layout(constant_id = 1) const int R = 4;          // rows of C per lane
layout(constant_id = 2) const int NP = 8;         // columns of C per workgroup, multiple of 4
layout(constant_id = 3) const int U = 1;          // K quads per loop trip (divides k / 4)
layout(constant_id = 4) const int A_MODE = 0;
layout(constant_id = 5) const int B_MODE = 0;
layout(constant_id = 6) const bool TAIL = false;  // k % 4 != 0: a guarded partial quad at the end
layout(constant_id = 7) const uint EPI_ACT = 0u;     // GEMM_ACT_*
layout(constant_id = 8) const bool EPI_RES = false;  // + residual[row, col]
layout(constant_id = 9) const bool EPI_BETA = false; // + beta * C

layout(set = 0, binding = 0) uniform samplerBuffer a4;    // rgba32f view of A's block
layout(set = 0, binding = 1) uniform samplerBuffer a1;    // r32f view of A's block
layout(set = 0, binding = 2) uniform samplerBuffer b4;    // rgba32f (rgba16f) view of B's block
layout(set = 0, binding = 3) uniform samplerBuffer b1;    // r32f view of B's block
layout(set = 0, binding = 4) buffer Cbuf { float c[]; };
layout(set = 0, binding = 5) readonly buffer BiasBuf { float bias[]; };
layout(set = 0, binding = 6) readonly buffer ResBuf { float res[]; };

#include "common/gemm.glsl"

float a_at(uint i) { return texelFetch(a1, int(i)).x; }
float b_at(uint i) { return texelFetch(b1, int(i)).x; }

// A[row, 4q .. 4q+3], `base` being the element index of A[row, 0].
vec4 fetch_a(uint base, uint q)
{
	if (A_MODE == 2)
		return texelFetch(a4, int(base + q * uint(R) * LANES));
	if (A_MODE == 1)
		return texelFetch(a4, int((base >> 2) + q));
	uint i = base + 4u * q * pc.a_cs;
	return vec4(a_at(i), a_at(i + pc.a_cs), a_at(i + 2u * pc.a_cs), a_at(i + 3u * pc.a_cs));
}

// The same quad with k >= K read as 0 (the tail).
vec4 fetch_a_tail(uint base, uint q)
{
	vec4 v = vec4(0.0);
	[[unroll]] for (int i = 0; i < 4; i++) {
		uint kk = 4u * q + uint(i);
		if (kk < pc.k)
			v[i] = a_at(base + kk * pc.a_cs);
	}
	return v;
}

// B[4q .. 4q+3, col] for modes 0 and 1, `base` being the element index of B[0, col].
vec4 fetch_b_col(uint base, uint q)
{
	if (B_MODE == 1)
		return texelFetch(b4, int((base >> 2) + q));
	uint i = base + 4u * q * pc.b_rs;
	return vec4(b_at(i), b_at(i + pc.b_rs), b_at(i + 2u * pc.b_rs), b_at(i + 3u * pc.b_rs));
}

vec4 fetch_b_col_tail(uint base, uint q)
{
	vec4 v = vec4(0.0);
	[[unroll]] for (int i = 0; i < 4; i++) {
		uint kk = 4u * q + uint(i);
		if (kk < pc.k)
			v[i] = b_at(base + kk * pc.b_rs);
	}
	return v;
}

void main()
{
	uint lane = gl_LocalInvocationID.x;
	uint row0 = (gl_WorkGroupID.y * LANES + lane) * uint(R);
	uint col0 = gl_WorkGroupID.x * uint(NP);
	uint bz = gl_WorkGroupID.z;
	uint kq = pc.k >> 2;

	// Rows past M and columns past N read the last valid one: their results are not
	// stored, and every load stays inside the operand.
	uint arow[R];   // A_MODE 2: texel index of quad 0 of the lane's row r in the packed copy
	[[unroll]] for (int r = 0; r < R; r++)
		arow[r] = A_MODE == 2 ? (pc.a_off >> 2) + (gl_WorkGroupID.y * kq * uint(R) + uint(r)) * LANES + lane
				      : pc.a_off + bz * pc.a_bs + min(row0 + uint(r), pc.m - 1u) * pc.a_rs;
	uint bcol[NP];
	[[unroll]] for (int j = 0; j < NP; j++)
		bcol[j] = pc.b_off + bz * pc.b_bs + min(col0 + uint(j), pc.n - 1u) * pc.b_cs;
	// Mode 2: texel of B[0, 4g .. 4g+3] (the last group may overlap the one before it,
	// which is harmless: those columns are not stored) and the row stride in texels.
	uint bgrp[NP / 4];
	[[unroll]] for (int g = 0; g < NP / 4; g++)
		bgrp[g] = (pc.b_off + bz * pc.b_bs + min(col0 + uint(4 * g), pc.n - 4u)) >> 2;
	uint brs4 = pc.b_rs >> 2;
	uint panel = (pc.b_off >> 2) + gl_WorkGroupID.x * pc.b_cs;

	float acc[R][NP];
	[[unroll]] for (int j = 0; j < NP; j++) {
		float b = bias[pc.bias_off + min(col0 + uint(j), pc.n - 1u)];
		b = (pc.flags & GEMM_BIAS) != 0u ? b : 0.0;   // (bias[] is bound either way)
		[[unroll]] for (int r = 0; r < R; r++)
			acc[r][j] = b;
	}

	for (uint q = 0u; q < kq; q += uint(U)) {
		vec4 a[U][R];
		[[unroll]] for (int u = 0; u < U; u++)
			[[unroll]] for (int r = 0; r < R; r++)
				a[u][r] = fetch_a(arow[r], q + uint(u));
		vec4 t[U][4];   // mode 2: the 4 k-rows of the current column group
		[[unroll]] for (int j = 0; j < NP; j++) {
			vec4 b[U];
			[[unroll]] for (int u = 0; u < U; u++) {
				uint qu = q + uint(u);
				if (B_MODE == 3) {
					b[u] = texelFetch(b4, int(panel + qu * uint(NP) + uint(j)));
				} else if (B_MODE == 2) {
					if (j % 4 == 0)
						[[unroll]] for (int i = 0; i < 4; i++)
							t[u][i] = texelFetch(b4, int(bgrp[j / 4] + (4u * qu + uint(i)) * brs4));
					b[u] = vec4(t[u][0][j % 4], t[u][1][j % 4], t[u][2][j % 4], t[u][3][j % 4]);
				} else {
					b[u] = fetch_b_col(bcol[j], qu);
				}
			}
			[[unroll]] for (int r = 0; r < R; r++) {
				float s = dot(a[0][r], b[0]);
				[[unroll]] for (int u = 1; u < U; u++)
					s += dot(a[u][r], b[u]);
				acc[r][j] += s;
			}
		}
	}

	if (TAIL) {
		// k % 4 values remain (modes 0 and 3 only); panels are zero-padded past K.
		vec4 a[R];
		[[unroll]] for (int r = 0; r < R; r++)
			a[r] = fetch_a_tail(arow[r], kq);
		[[unroll]] for (int j = 0; j < NP; j++) {
			vec4 b = B_MODE == 3 ? texelFetch(b4, int(panel + kq * uint(NP) + uint(j)))
					     : fetch_b_col_tail(bcol[j], kq);
			[[unroll]] for (int r = 0; r < R; r++)
				acc[r][j] += dot(a[r], b);
		}
	}

	[[unroll]] for (int r = 0; r < R; r++) {
		uint row = row0 + uint(r);
		if (row < pc.m)
			[[unroll]] for (int j = 0; j < NP; j++) {
				uint col = col0 + uint(j);
				uint ci = pc.c_off + bz * pc.c_bs + row * pc.c_rs + col * pc.c_cs;
				if (col < pc.n) {
					float v = gemm_act(EPI_ACT, pc.alpha * acc[r][j]);
					if (EPI_RES)
						v += res[pc.res_off + row * pc.res_rs + col];
					if (EPI_BETA)
						v += pc.beta * c[ci];
					c[ci] = v;
				}
			}
	}
}
