// mathf.glsl: f32 functions accurate to a few ulp, for kernels compared with double
// references. GLSL's exp() may be computed as exp2(x * log2(e)), whose rounded product
// costs |x| * 2^-24 of relative error (Vulkan allows 3 + 2|x| ulp), and GLSL has no erf.

// exp(x) to ~1 ulp. Cody-Waite reduction x = k ln2 + r with ln2 split in two so that
// k * LN2_HI is exact (LN2_HI has 16 significant bits, |k| < 2^8), then the degree-7
// Taylor polynomial of exp on |r| <= ln2/2 (truncation error 5e-9 relative). Branch-free
// (selects only), since lanes of CPU devices run in lockstep.
float exp_f32(float x)
{
	const float LN2_HI = 0.693145751953125;
	const float LN2_LO = 1.42860682030941723e-6;
	float xc = clamp(x, -104.0, 88.7228394);
	float k = roundEven(xc * 1.44269504088896341);
	precise float r = (xc - k * LN2_HI) - k * LN2_LO;
	float p = 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	// Two steps keep 2^k representable at k = 128 (the overflow edge); elsewhere one, so
	// a result just above FLT_MIN never passes through a denormal that a device flushes.
	float e = k > 127.0 ? ldexp(p, int(k) - 1) * 2.0 : ldexp(p, int(k));
	e = x > 88.7228394 ? uintBitsToFloat(0x7f800000u) : e;
	e = x < -103.972084 ? 0.0 : e;
	return isnan(x) ? x : e;
}

// The high 12 significant bits of v: products of two such halves are exact in f32.
float split_hi(float v)
{
	return uintBitsToFloat(floatBitsToUint(v) & 0xfffff000u);
}

// erfc(|x| / sqrt(2)), relative error a few ulp for every x (down to underflow).
// erfc(z) = exp(-z^2) t P(t) with t = 1 / (1 + z/2); P is a degree-10 polynomial fitted
// for these notes by iteratively reweighted least squares on t in [1/6.25, 1] (z up to
// 10.5, past f32 underflow): max relative error 3.9e-9 in exact arithmetic. exp(-z^2) =
// exp(-x^2/2) is taken as exp(-xh^2/2) exp(-(x-xh)(x+xh)/2), where xh keeps 12 significant
// bits so xh^2/2 is exact: rounding x^2 itself would cost x^2 * 2^-24 of relative error.
float erfc_scaled_abs(float x)
{
	float ax = abs(x);
	float t = 1.0 / (1.0 + ax * 0.353553390593273762);   // z / 2 = |x| / (2 sqrt 2)
	float p = 0.036330723060991503;
	p = p * t - 0.19436117629019623;
	p = p * t + 0.39003127475160111;
	p = p * t - 0.30242486198652597;
	p = p * t - 0.0097949260044324889;
	p = p * t + 0.027759865496425639;
	p = p * t + 0.058096056984245737;
	p = p * t + 0.18470168261278499;
	p = p * t + 0.2453352615942168;
	p = p * t + 0.28223692304231763;
	p = p * t + 0.28208918057067842;
	float xh = split_hi(ax);
	precise float lo = (ax - xh) * (ax + xh);
	return exp_f32(-0.5 * (xh * xh)) * exp_f32(-0.5 * lo) * (t * p);
}

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), through erfc so that the negative side keeps
// its relative accuracy: 1 + erf(z) = erfc(-z) = 2 - erfc(z).
float gelu_erf(float x)
{
	float e = erfc_scaled_abs(x);
	return 0.5 * x * (x >= 0.0 ? 2.0 - e : e);
}

// QuickGELU (OpenAI CLIP): x * sigmoid(1.702 x). The product 1.702 x is formed exactly
// as hi + lo (Dekker's product; fma() may not be fused) so that exp(-1.702 x), whose
// relative error would otherwise be |1.702 x| * 2^-24, keeps ~1 ulp in the tail.
float quick_gelu(float x)
{
	const float C = 1.70200002193450928;         // 1.702 rounded to f32
	const float C_TAIL = -2.19345093199763e-8;   // 1.702 - C
	const float C_HI = 1.70166015625;            // split_hi(C)
	const float C_LO = C - C_HI;
	float xh = split_hi(x);
	float xl = x - xh;
	precise float hi = C * x;
	precise float lo = (((C_HI * xh - hi) + C_HI * xl) + C_LO * xh) + C_LO * xl + C_TAIL * x;
	return x / (1.0 + exp_f32(-hi) * (1.0 - lo));
}

// log(x) to ~1 ulp: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| < 0.1716, by its odd series to s^13 (error 4e-13 relative);
// m - 1 is exact, so results near x = 1 keep their relative accuracy.
float log_f32(float x)
{
	const float NEG_INF = uintBitsToFloat(0xff800000u), QNAN = uintBitsToFloat(0x7fc00000u);
	if (!(x > 0.0) || isinf(x))
		return x == 0.0 ? NEG_INF : (x > 0.0 ? x : QNAN);
	int e;
	float m = frexp(x, e);              // m in [0.5, 1)
	if (m < 0.70710678118654752) {
		m *= 2.0;
		e -= 1;
	}
	float f = m - 1.0;
	float s = f / (2.0 + f);
	float z = s * s;
	float p = 2.0 / 13.0;
	p = p * z + 2.0 / 11.0;
	p = p * z + 2.0 / 9.0;
	p = p * z + 2.0 / 7.0;
	p = p * z + 2.0 / 5.0;
	p = p * z + 2.0 / 3.0;
	float k = float(e);
	// k * LN2_HI is exact (LN2_HI has 16 significant bits, |k| < 2^8).
	return k * 0.693145751953125 + (k * 1.42860682030941723e-6 + (2.0 * s + s * z * p));
}

// sin or cos to ~1 ulp for |x| up to about 1e5 (GLSL's builtins may err by 2^-11
// absolutely, and NVIDIA's do, by ~4e-6 on [-10, 10]). Cody-Waite reduction x = k pi/2 + r
// with pi/2 split in three (k * C1 exact for |k| < 2^16), then minimax polynomials for sin
// and cos on |r| <= pi/4 (Cephes' coefficients), picked by the quadrant k mod 4.
float sincos_f32(float x, bool cosine)
{
	const float C1 = 1.5703125;
	const float C2 = 4.837512969970703125e-4;
	const float C3 = 7.54978995489188216e-8;
	float k = roundEven(x * 0.636619772367581343);
	precise float r = ((x - k * C1) - k * C2) - k * C3;
	float r2 = r * r;
	float s = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
	float c = 1.0 - 0.5 * r2 + r2 * r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 +
										r2 * 2.443315711809948e-5));
	int q = (int(k) + (cosine ? 1 : 0)) & 3;
	float v = (q & 1) != 0 ? c : s;
	v = (q & 2) != 0 ? -v : v;
	return isinf(x) || isnan(x) ? uintBitsToFloat(0x7fc00000u) : v;
}
