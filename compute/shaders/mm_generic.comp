#version 450
// mm_generic.comp: C = epilogue(A·B), one element of C per invocation, operands read
// from strided storage buffers. The simplest kernel that can be right on any device:
// the fallback behind REFRACT_GEMM=generic and the cross-check for the fast kernels.
// Defined B_F16, B holds f16 pairs packed in 32-bit words (prepared weights).
//! bindings: rrwrr
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 8, local_size_y = 8) in;

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

void main()
{
	uint col = gl_GlobalInvocationID.x, row = gl_GlobalInvocationID.y, bz = gl_WorkGroupID.z;
	if (row >= pc.m || col >= pc.n)
		return;
	uint ai = pc.a_off + bz * pc.a_bs + row * pc.a_rs;
	uint bi = pc.b_off + bz * pc.b_bs + col * pc.b_cs;
	float acc = 0.0;
	for (uint k = 0u; k < pc.k; k++)
		acc = fma(a[ai + k * pc.a_cs], load_b(bi + k * pc.b_rs), acc);
	gemm_store(row, col, bz, acc);
}
