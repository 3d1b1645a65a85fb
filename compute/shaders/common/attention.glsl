// attention.glsl: multi-head attention over packed qkv [B, N, 3W], one pass over the keys
// with an online softmax (running max and sum, rescaling the accumulators when the max
// grows), so the N x N scores never touch memory. Included by attention.comp (rgba32f
// texel loads, W and DH multiples of 4) and attention_scalar.comp (r32f texel loads,
// any DH), which declare the qkv binding and load4(), the 4 head dimensions from 4*d4
// of the head row at element offset `ofs`.
//
// Work split: workgroup (row block, head, batch); lane l of the workgroup owns the RB
// query rows block*LOCAL*RB + r*LOCAL + l. Each key block of KB keys is read once per
// lane and used for RB rows (lavapipe reads lane-uniform addresses with no broadcast
// fast path, so reuse across rows is what keeps the loads from dominating); the loops
// over rows, keys of a block and head dimensions have constant trip counts. Scores,
// probabilities and the output accumulate in f32; exp is exp_f32 (~1 ulp).
//
// Optional outputs: WRITE_PROBS recomputes each score in a second pass and stores the
// normalised probability [B, H, N, N]; WRITE_CLS stores row 0 ([B, H, N]), which costs
// one extra pass of the first row block only.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint LOCAL = 8;
layout(constant_id = 1) const uint RB = 4;         // query rows per lane
layout(constant_id = 2) const uint KB = 8;         // keys per block
layout(constant_id = 3) const uint DH = 64;        // head width
layout(constant_id = 4) const bool CAUSAL = false;
layout(constant_id = 5) const bool WRITE_PROBS = false;
layout(constant_id = 6) const bool WRITE_CLS = false;

const uint D4 = (DH + 3) / 4;                      // vec4 groups per head row

layout(set = 0, binding = 1) writeonly buffer Out { float out_[]; };
layout(set = 0, binding = 2) writeonly buffer Probs { float probs[]; };
layout(set = 0, binding = 3) writeonly buffer Cls { float cls[]; };

layout(push_constant) uniform Push {
	uint n;          // tokens
	uint width;      // W = heads * DH
	uint heads;
	uint qkv_base;   // qkv's first texel in its block's view (r32f: element; rgba32f: vec4)
	float scale;     // 1 / sqrt(DH)
	uint batch_base; // qkv batch of workgroup z = 0 (the outputs are bound from it on)
} pc;

// Element offset of token `t` of batch `b` in qkv, relative to qkv_base in elements.
uint token_offset(uint b, uint t)
{
	return (b * pc.n + t) * 3u * pc.width;
}

vec4 q_rows[RB][D4];

vec4 q_at(uint r, uint d4)
{
	return q_rows[r][d4];
}

// Scores of the RB rows (queries pre-scaled) against keys j0 .. j0+KB-1, masked to
// -inf where a key is past the last token or (causal) past the row.
void block_scores(uint b, uint h, uint j0, uint row0, inout float s[RB][KB])
{
	uint kofs[KB];
	for (uint c = 0; c < KB; c++)
		kofs[c] = token_offset(b, min(j0 + c, pc.n - 1)) + pc.width + h * DH;
	for (uint r = 0; r < RB; r++)
		for (uint c = 0; c < KB; c++)
			s[r][c] = 0.0;
	for (uint d4 = 0; d4 < D4; d4++) {
		vec4 kv[KB];
		for (uint c = 0; c < KB; c++)
			kv[c] = load4(kofs[c], d4);
		for (uint r = 0; r < RB; r++) {
			vec4 qv = q_at(r, d4);
			for (uint c = 0; c < KB; c++)
				s[r][c] += dot(qv, kv[c]);
		}
	}
	const float NEG_INF = uintBitsToFloat(0xff800000u);
	for (uint r = 0; r < RB; r++)
		for (uint c = 0; c < KB; c++) {
			uint j = j0 + c;
			bool valid = j < pc.n && (!CAUSAL || j <= row0 + r * LOCAL);
			s[r][c] = valid ? s[r][c] : NEG_INF;
		}
}

void main()
{
	uint b = gl_WorkGroupID.z + pc.batch_base, h = gl_WorkGroupID.y;
	uint block0 = gl_WorkGroupID.x * LOCAL * RB;
	uint row0 = block0 + gl_LocalInvocationID.x;       // row r is row0 + r * LOCAL

	// Queries, pre-scaled by 1/sqrt(DH); rows past the end load the last row.
	for (uint r = 0; r < RB; r++) {
		uint qofs = token_offset(b, min(row0 + r * LOCAL, pc.n - 1)) + h * DH;
		for (uint d4 = 0; d4 < D4; d4++) {
			q_rows[r][d4] = load4(qofs, d4) * pc.scale;
		}
	}

	const float NEG_INF = uintBitsToFloat(0xff800000u);
	float m[RB], l[RB];
	vec4 o[RB][D4];
	for (uint r = 0; r < RB; r++) {
		m[r] = NEG_INF;
		l[r] = 0.0;
		for (uint d4 = 0; d4 < D4; d4++)
			o[r][d4] = vec4(0.0);
	}
	// Keys past the block's last row never count when causal.
	uint kend = CAUSAL ? min(pc.n, block0 + LOCAL * RB) : pc.n;
	for (uint j0 = 0; j0 < kend; j0 += KB) {
		float s[RB][KB];
		block_scores(b, h, j0, row0, s);
		float alpha[RB];
		for (uint r = 0; r < RB; r++) {
			float bm = m[r];
			for (uint c = 0; c < KB; c++)
				bm = max(bm, s[r][c]);
			// Key j0 is valid for every row, so bm is finite from the first block on.
			alpha[r] = exp_f32(m[r] - bm);
			m[r] = bm;
			float sum = 0.0;
			for (uint c = 0; c < KB; c++) {
				s[r][c] = exp_f32(s[r][c] - bm);
				sum += s[r][c];
			}
			l[r] = l[r] * alpha[r] + sum;
		}
		uint vofs[KB];
		for (uint c = 0; c < KB; c++)
			vofs[c] = token_offset(b, min(j0 + c, pc.n - 1)) + 2u * pc.width + h * DH;
		for (uint d4 = 0; d4 < D4; d4++) {
			vec4 vv[KB];
			for (uint c = 0; c < KB; c++)
				vv[c] = load4(vofs[c], d4);
			for (uint r = 0; r < RB; r++) {
				vec4 acc = o[r][d4] * alpha[r];
				for (uint c = 0; c < KB; c++)
					acc += s[r][c] * vv[c];
				o[r][d4] = acc;
			}
		}
	}

	float inv_l[RB];
	for (uint r = 0; r < RB; r++) {
		inv_l[r] = 1.0 / l[r];
		uint row = row0 + r * LOCAL;
		if (row >= pc.n)
			continue;
		uint ofs = (gl_WorkGroupID.z * pc.n + row) * pc.width + h * DH;
		for (uint d4 = 0; d4 < D4; d4++) {
			vec4 v = o[r][d4] * inv_l[r];
			for (uint i = 0; i < 4; i++)
				if (d4 * 4 + i < DH)
					out_[ofs + d4 * 4 + i] = v[i];
		}
	}

	// Second pass for the probabilities: the same scores, normalised by the final m, l.
	// Only the first row block holds row 0, so CLS-only output costs one block's pass.
	if (!WRITE_PROBS && !(WRITE_CLS && gl_WorkGroupID.x == 0))
		return;
	uint prow = (gl_WorkGroupID.z * pc.heads + h) * pc.n;   // first row of this head
	for (uint j0 = 0; j0 < kend; j0 += KB) {
		float s[RB][KB];
		block_scores(b, h, j0, row0, s);
		for (uint r = 0; r < RB; r++) {
			uint row = row0 + r * LOCAL;
			for (uint c = 0; c < KB; c++) {
				uint j = j0 + c;
				if (row >= pc.n || j >= pc.n)
					continue;
				float p = exp_f32(s[r][c] - m[r]) * inv_l[r];
				if (WRITE_PROBS)
					probs[(prow + row) * pc.n + j] = p;
				if (WRITE_CLS && row == 0)
					cls[prow + j] = p;
			}
		}
	}
	// Causal rows of this block end before kend; the keys after it are zero.
	if (WRITE_PROBS && CAUSAL)
		for (uint r = 0; r < RB; r++) {
			uint row = row0 + r * LOCAL;
			for (uint j = kend; row < pc.n && j < pc.n; j++)
				probs[(prow + row) * pc.n + j] = 0.0;
		}
	if (WRITE_CLS && CAUSAL && gl_WorkGroupID.x == 0 && gl_LocalInvocationID.x == 0)
		for (uint j = kend; j < pc.n; j++)
			cls[prow + j] = 0.0;
}
