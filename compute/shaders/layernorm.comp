#version 450
// layernorm.comp: y = (x - mean) / sqrt(var + eps) * gamma + beta over each row, with
// var = mean((x - mean)^2), which equals the reference's mean(x^2) - mean^2 exactly but
// without its cancellation in f32. Corrected two-pass algorithm: pass 1 gives a first
// mean m1; pass 2 sums d = x - m1 and d^2 (x - m1 is exact for x near m1), so the mean's
// own rounding (dm = sum(d) / n) is corrected rather than carried into every output,
// which matters when |mean| >> std. Sums are compensated. Optional per-row mean and
// sqrt(var + eps) outputs. Rows are a window of the tensor (the launcher splits big ones).
// The VEC4 variant (layernorm4) reads and writes vec4s.
//! bindings: rrrwww
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(constant_id = 2) const bool HAS_GAMMA = false;
layout(constant_id = 3) const bool HAS_BETA = false;
layout(constant_id = 4) const bool HAS_MEAN = false;
layout(constant_id = 5) const bool HAS_STD = false;

#include "common/rows.glsl"

layout(set = 0, binding = 0) readonly buffer X { VT x[]; };
layout(set = 0, binding = 1) readonly buffer G { VT gamma[]; };
layout(set = 0, binding = 2) readonly buffer B { VT beta[]; };
layout(set = 0, binding = 3) writeonly buffer Y { VT y[]; };
layout(set = 0, binding = 4) writeonly buffer M { float mean_out[]; };
layout(set = 0, binding = 5) writeonly buffer S { float std_out[]; };

layout(push_constant) uniform Push {
	uint rows;       // rows in this window
	uint cols;
	float eps;
} pc;

void main()
{
	uint row = row_index();
	bool in_range = row < pc.rows;
	uint n = in_range ? pc.cols / WIDTH : 0;     // VT elements per row
	uint base = row * n;

	VT s = VT(0.0), sc = VT(0.0);
	for (uint c = row_lane(); c < n; c += ROW_LANES)
		kahan_addv(s, sc, x[base + c]);
	float m1 = row_sum(hsum(s - sc)) / float(pc.cols);

	VT sd = VT(0.0), sdc = VT(0.0), sq = VT(0.0), sqc = VT(0.0);
	for (uint c = row_lane(); c < n; c += ROW_LANES) {
		VT d = x[base + c] - m1;
		kahan_addv(sd, sdc, d);
		kahan_addv(sq, sqc, d * d);
	}
	float dm = row_sum(hsum(sd - sdc)) / float(pc.cols);
	float var = row_sum(hsum(sq - sqc)) / float(pc.cols) - dm * dm;
	float sigma = sqrt(max(var, 0.0) + pc.eps);
	float inv = 1.0 / sigma;
	float mean = m1 + dm;

	for (uint c = row_lane(); c < n; c += ROW_LANES) {
		VT v = ((x[base + c] - m1) - dm) * inv;
		if (HAS_GAMMA)
			v *= gamma[c];
		if (HAS_BETA)
			v += beta[c];
		y[base + c] = v;
	}
	if (in_range && row_lane() == 0) {
		if (HAS_MEAN)
			mean_out[row] = mean;
		if (HAS_STD)
			std_out[row] = sigma;
	}
}
