#version 450
// mm_tiled.comp: C = epilogue(A·B) for GPUs: the classic shared-memory tiling. A
// workgroup of TX x TY invocations computes a BM x BN block of C (BM = TY*RM,
// BN = TX*RN); per step of BK along K it stages A[BM, BK] and B[BK, BN] in shared
// memory, then each invocation accumulates an RM x RN register block. Rows and columns
// of an invocation's block are strided by TY and TX so that neighbouring invocations
// touch neighbouring shared-memory words and store neighbouring elements of C.
// Operands are strided storage buffers (any batch/row/column strides); defined B_F16,
// B holds f16 pairs packed in 32-bit words (prepared weights), which every device reads.
//! bindings: rrwrr
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const uint TX = 16;
layout(constant_id = 1) const uint TY = 16;
layout(constant_id = 2) const uint RM = 4;
layout(constant_id = 3) const uint RN = 4;
layout(constant_id = 4) const uint BK = 16;
layout(constant_id = 5) const bool A_KFAST = true;   // a_cs == 1: stage A with k fastest
layout(constant_id = 6) const bool B_KFAST = false;  // b_rs == 1: stage B with k fastest
const uint BM = TY * RM;
const uint BN = TX * RN;
const uint NT = TX * TY;

layout(set = 0, binding = 0) readonly buffer Abuf { float a[]; };
#ifdef B_F16
layout(set = 0, binding = 1) readonly buffer Bbuf { uint bw[]; };
float load_b(uint i) { return unpackHalf2x16(bw[i >> 1])[i & 1u]; }
#else
layout(set = 0, binding = 1) readonly buffer Bbuf { float b[]; };
float load_b(uint i) { return b[i]; }
#endif
layout(set = 0, binding = 2) buffer Cbuf { float c[]; };
layout(set = 0, binding = 3) readonly buffer BiasBuf { float bias[]; };
layout(set = 0, binding = 4) readonly buffer ResBuf { float res[]; };

#include "common/gemm.glsl"

// One padding word per row of the tiles keeps k-fastest stores free of bank conflicts.
shared float As[BK * (BM + 1u)];   // [kk][row]
shared float Bs[BK * (BN + 1u)];   // [kk][col]

void stage(uint k0, uint row0, uint col0, uint abase, uint bbase, uint tid)
{
	for (uint i = tid; i < BM * BK; i += NT) {
		uint kk = A_KFAST ? i % BK : i / BM;
		uint rr = A_KFAST ? i / BK : i % BM;
		uint row = row0 + rr, k = k0 + kk;
		As[kk * (BM + 1u) + rr] = row < pc.m && k < pc.k ? a[abase + row * pc.a_rs + k * pc.a_cs] : 0.0;
	}
	for (uint i = tid; i < BN * BK; i += NT) {
		uint kk = B_KFAST ? i % BK : i / BN;
		uint cc = B_KFAST ? i / BK : i % BN;
		uint col = col0 + cc, k = k0 + kk;
		Bs[kk * (BN + 1u) + cc] = col < pc.n && k < pc.k ? load_b(bbase + k * pc.b_rs + col * pc.b_cs) : 0.0;
	}
}

void main()
{
	uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
	uint tid = ty * TX + tx;
	uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN, bz = gl_WorkGroupID.z;
	uint abase = pc.a_off + bz * pc.a_bs, bbase = pc.b_off + bz * pc.b_bs;

	float acc[RM][RN];
	for (uint i = 0u; i < RM; i++)
		for (uint j = 0u; j < RN; j++)
			acc[i][j] = 0.0;

	for (uint k0 = 0u; k0 < pc.k; k0 += BK) {
		stage(k0, row0, col0, abase, bbase, tid);
		barrier();
		for (uint kk = 0u; kk < BK; kk++) {
			float ar[RM], br[RN];
			for (uint i = 0u; i < RM; i++)
				ar[i] = As[kk * (BM + 1u) + ty + i * TY];
			for (uint j = 0u; j < RN; j++)
				br[j] = Bs[kk * (BN + 1u) + tx + j * TX];
			for (uint i = 0u; i < RM; i++)
				for (uint j = 0u; j < RN; j++)
					acc[i][j] = fma(ar[i], br[j], acc[i][j]);
		}
		barrier();
	}

	for (uint i = 0u; i < RM; i++)
		for (uint j = 0u; j < RN; j++) {
			uint row = row0 + ty + i * TY, col = col0 + tx + j * TX;
			if (row < pc.m && col < pc.n)
				gemm_store(row, col, bz, acc[i][j]);
		}
}
