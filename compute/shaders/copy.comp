#version 450
// copy.comp: dst[view] = src[view] for strided N-d views (up to 8 axes after merging).
// Invocation i copies up to RUN elements along the innermost axis: row i % rows, chunk
// i / rows, so neighbouring lanes take neighbouring rows; the launcher puts the axis
// along which src is contiguous next to the innermost one, so that a transpose reads
// whole cache lines across the lanes while each lane writes a run. The outer axes are
// decomposed once per invocation. Elements are
// moved as raw 32-bit words, or 16-bit ones in the ELEM16 variant, so any dtype of
// that size is copied bit for bit. Offsets are relative to the windows bound.
//! bindings: rw
#extension GL_GOOGLE_include_directive : require
#ifdef ELEM16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#define ELEM uint16_t
#else
#define ELEM uint
#endif
#include "common/index.glsl"

layout(constant_id = 1) const uint RUN = 16;

layout(set = 0, binding = 0) readonly buffer Src { ELEM src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { ELEM dst[]; };

layout(push_constant) uniform Push {
	uint count;        // invocations
	uint rows;         // product of the outer axes
	uint ndim;         // axes, the innermost last (>= 1)
	uint src_base, dst_base;
	uint dim[8];
	int src_stride[8];
	int dst_stride[8];
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.count)
		return;
	uint last = pc.ndim - 1;
	uint row = i % pc.rows, c0 = (i / pc.rows) * RUN;
	int so = int(pc.src_base), dof = int(pc.dst_base);
	for (int d = int(last) - 1; d >= 0; d--) {
		uint coord = row % pc.dim[d];
		row /= pc.dim[d];
		so += int(coord) * pc.src_stride[d];
		dof += int(coord) * pc.dst_stride[d];
	}
	int ss = pc.src_stride[last], ds = pc.dst_stride[last];
	so += int(c0) * ss;
	dof += int(c0) * ds;
	uint n = min(RUN, pc.dim[last] - c0);
	for (uint k = 0; k < n; k++) {
		dst[dof] = src[so];
		so += ss;
		dof += ds;
	}
}
