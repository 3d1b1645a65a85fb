#version 450
// reduce.comp: the first level of a reduction. Invocation i handles output o and chunk
// c of the reduced index range (i = c * outputs + o: neighbouring lanes take
// neighbouring outputs, which are often neighbours in memory) and walks x through an r32f texel
// view (no storage-range limit) with up to 4 kept and 4 reduced axes, each merged from
// neighbouring tensor axes. FINAL writes the result per output (chunks == 1); otherwise
// the partial state goes to reduce_partials.comp. CENTRED (VAR/STD) accumulates
// (x - mean[o])^2 with the mean of an earlier reduction.
//! bindings: frw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(constant_id = 2) const bool FINAL = true;
layout(constant_id = 3) const bool CENTRED = false;

#include "common/mathf.glsl"
#include "common/reduce.glsl"

layout(set = 0, binding = 0) uniform samplerBuffer x;
layout(set = 0, binding = 1) readonly buffer Mean { float mean[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push {
	uint count;        // invocations in this dispatch
	uint outputs;      // outputs in this dispatch
	uint o_base;       // first output of this dispatch (windows of big outputs)
	uint len;          // reduced elements per output
	uint chunk;        // reduced elements per invocation
	uint chunks;       // invocations per output
	uint x_base;       // texel index of x's first element
	uint correction;
	uint kdim[4], kstride[4];   // kept axes, outermost first (unused ones: 1, 0)
	uint rdim[4], rstride[4];   // reduced axes, likewise
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.count)
		return;
	uint o_local = i % pc.outputs, c = i / pc.outputs;
	uint o = pc.o_base + o_local;

	// x offset of output o's first element.
	uint base = pc.x_base, rest = o;
	for (int d = 3; d >= 0; d--) {
		base += (rest % pc.kdim[d]) * pc.kstride[d];
		rest /= pc.kdim[d];
	}
	uint r0 = c * pc.chunk, r1 = min(pc.len, r0 + pc.chunk);
	// Coordinates of r0 over the reduced axes, then a carry walk (no divisions).
	uint i0, i1, i2, i3 = r0;
	i2 = i3 / pc.rdim[3]; i3 %= pc.rdim[3];
	i1 = i2 / pc.rdim[2]; i2 %= pc.rdim[2];
	i0 = i1 / pc.rdim[1]; i1 %= pc.rdim[1];
	uint ofs = base + i0 * pc.rstride[0] + i1 * pc.rstride[1] + i2 * pc.rstride[2] +
		   i3 * pc.rstride[3];
	float mu = CENTRED ? mean[o_local] : 0.0;

	vec2 s = state_init();
	for (uint r = r0; r < r1; r++) {
		float v = texelFetch(x, int(ofs)).x;
		if (CENTRED) {
			v -= mu;
			v *= v;
		} else if (OP == RED_NORM2) {
			v *= v;
		}
		state_add(s, v, r);
		ofs += pc.rstride[3];
		if (++i3 == pc.rdim[3]) {
			i3 = 0;
			ofs += pc.rstride[2] - pc.rdim[3] * pc.rstride[3];
			if (++i2 == pc.rdim[2]) {
				i2 = 0;
				ofs += pc.rstride[1] - pc.rdim[2] * pc.rstride[2];
				if (++i1 == pc.rdim[1]) {
					i1 = 0;
					ofs += pc.rstride[0] - pc.rdim[1] * pc.rstride[1];
				}
			}
		}
	}
	if (FINAL) {
		out_[o_local] = state_finish(s, pc.len, pc.correction);
	} else {
		out_[2 * i] = s.x;
		out_[2 * i + 1] = s.y;
	}
}
