#version 450
// softmax.comp: y = softmax(scale * x) over each row, in three passes (max, compensated
// sum of exponentials, write). With CAUSAL, row r is query r % qcount and columns past
// it are excluded (written as 0). Rows are a window of the tensor.
//! bindings: rw
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(constant_id = 2) const bool CAUSAL = false;

#include "common/rows.glsl"
#include "common/mathf.glsl"

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
	uint rows;       // rows in this window
	uint cols;
	float scale;
	uint qcount;     // causal: queries per [q, k] matrix
	uint row_base;   // index of the window's first row in the whole tensor
} pc;

void main()
{
	uint row = row_index();
	bool in_range = row < pc.rows;
	uint base = in_range ? row * pc.cols : 0;
	uint n = in_range ? pc.cols : 0;
	uint valid = CAUSAL ? min(n, (pc.row_base + row) % pc.qcount + 1) : n;

	float m = uintBitsToFloat(0xff800000u);
	for (uint c = row_lane(); c < valid; c += ROW_LANES) {
		float v = pc.scale * x[base + c];
		if (isnan(v) || v > m)
			m = v;
	}
	m = row_max(m);

	vec2 s = vec2(0.0);
	for (uint c = row_lane(); c < valid; c += ROW_LANES)
		kahan_add(s, exp_f32(pc.scale * x[base + c] - m));
	float inv = 1.0 / row_sum(s.x - s.y);

	for (uint c = row_lane(); c < n; c += ROW_LANES)
		y[base + c] = c < valid ? exp_f32(pc.scale * x[base + c] - m) * inv : 0.0;
}
