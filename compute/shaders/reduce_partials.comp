#version 450
// reduce_partials.comp: a further level of a reduction. Output o has `parts` partial
// states, state k at in_[k * outputs + o]; invocation i = c * outputs + o folds `chunk`
// of them in index order, and writes either the next level's state (same layout) or,
// when FINAL, the result.
//! bindings: rw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(constant_id = 2) const bool FINAL = true;

#include "common/mathf.glsl"
#include "common/reduce.glsl"

layout(set = 0, binding = 0) readonly buffer In { vec2 in_[]; };
layout(set = 0, binding = 1) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push {
	uint count;        // invocations
	uint outputs;
	uint parts;        // partial states per output in in_
	uint chunk;        // partial states per invocation
	uint chunks;       // invocations per output
	uint len;          // reduced elements per output (for the final division)
	uint correction;
} pc;

void main()
{
	uint i = flat_index();
	if (i >= pc.count)
		return;
	uint o = i % pc.outputs, c = i / pc.outputs;
	uint k0 = c * pc.chunk, k1 = min(pc.parts, k0 + pc.chunk);
	vec2 s = state_init();
	for (uint k = k0; k < k1; k++)
		state_combine(s, in_[k * pc.outputs + o]);
	if (FINAL) {
		out_[o] = state_finish(s, pc.len, pc.correction);
	} else {
		out_[2 * i] = s.x;
		out_[2 * i + 1] = s.y;
	}
}
