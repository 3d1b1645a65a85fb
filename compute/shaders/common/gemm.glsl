// gemm.glsl: what every matrix-product kernel shares: one push-constant layout (filled
// by compute/ops/gemm_launch.c, struct mm_push) and the epilogue that turns a finished
// accumulator into an element of C:
//     v = alpha * acc (+ bias[col]) -> activation (+ residual[row, col]) (+ beta * C)
// Include it after the kernel declares c[], bias[] and res[].
//
// Offsets and strides are in elements of the binding they index, relative to that
// binding (storage buffers) or to the start of the bound block's view (texel buffers).

layout(push_constant) uniform Push {
	uint m, n, k, flags;
	uint a_off, a_rs, a_cs, a_bs;     // A[b, i, kk] = a_off + b*a_bs + i*a_rs + kk*a_cs
	uint b_off, b_rs, b_cs, b_bs;     // B[b, kk, j] = b_off + b*b_bs + kk*b_rs + j*b_cs
	uint c_off, c_rs, c_cs, c_bs;     // C[b, i, j]
	uint bias_off, res_off, res_rs, pad;
	float alpha, beta;
} pc;

const uint GEMM_ACT_MASK = 3u;       // bits 0-1: enum rf_activation
const uint GEMM_ACT_GELU = 1u;
const uint GEMM_ACT_QUICKGELU = 2u;
const uint GEMM_BIAS = 4u;
const uint GEMM_RESIDUAL = 8u;

// erfc(z) for z >= 0 as Abramowitz & Stegun 7.1.26 gives it: a degree-5 polynomial in
// t = 1/(1 + p z) times exp(-z^2); absolute error below 1.5e-7. Written as erfc, not erf,
// so that GELU of negative inputs keeps its tiny values instead of cancelling 1 + erf.
float gemm_erfc_nonneg(float z)
{
	float t = 1.0 / (1.0 + 0.3275911 * z);
	float p = 1.061405429;
	p = p * t - 1.453152027;
	p = p * t + 1.421413741;
	p = p * t - 0.284496736;
	p = p * t + 0.254829592;
	return p * t * exp(-z * z);
}

// `act` is GEMM_ACT_*; a constant where the kernel specializes its epilogue.
float gemm_act(uint act, float x)
{
	if (act == GEMM_ACT_GELU) {
		// x * Phi(x) = x/2 * erfc(-x/sqrt2)
		float e = gemm_erfc_nonneg(abs(x) * 0.70710678118654752);
		return x >= 0.0 ? x - 0.5 * x * e : 0.5 * x * e;
	}
	if (act == GEMM_ACT_QUICKGELU)
		return x / (1.0 + exp(-1.702 * x));
	return x;
}

float gemm_activate(float x)
{
	return gemm_act(pc.flags & GEMM_ACT_MASK, x);
}

// Writes C[bz, row, col] (row and col relative to this dispatch's chunk).
void gemm_store(uint row, uint col, uint bz, float acc)
{
	float v = pc.alpha * acc;
	if ((pc.flags & GEMM_BIAS) != 0u)
		v += bias[pc.bias_off + col];
	v = gemm_activate(v);
	if ((pc.flags & GEMM_RESIDUAL) != 0u)
		v += res[pc.res_off + row * pc.res_rs + col];
	uint ci = pc.c_off + bz * pc.c_bs + row * pc.c_rs + col * pc.c_cs;
	// beta == 0 never reads C, so C may hold NaNs from an earlier use of its memory.
	if (pc.beta != 0.0)
		v += pc.beta * c[ci];
	c[ci] = v;
}
