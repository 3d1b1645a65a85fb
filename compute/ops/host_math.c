/*
** host_math.c: elementwise math for the host paths of CPU devices (gemm_host.c,
** attention_host.c): the Linear layers' activations and softmax rows, 8 lanes at a time
** with AVX2 and FMA where the CPU has them (chosen at run time), else a scalar loop that
** computes the same formulas. Compute layer (L4).
*/
#include "host_math.h"

#include <math.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RF_HOST_AVX2 1
#endif

static bool have_avx2(void)
{
#ifdef RF_HOST_AVX2
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	return false;
#endif
}

/* {===== activations
**
** GELU as the lanes kernel computes it (common/gemm.glsl: x Phi(x) through Abramowitz and
** Stegun's 7.1.26 erfc, absolute error below 1.5e-7) and QuickGELU x / (1 + exp(-1.702 x)),
** with exp by Cody-Waite reduction and Cephes' degree-6 polynomial (~1 ulp). 8 lanes at a
** time with AVX2 and FMA where the CPU has them; the scalar loop computes the same
** formulas. A separate pass on the device cost ~20% of a ViT's device time. */

static const float EXP_HI = 88.3762626647949f, EXP_LO = -87.3365447504f;
static const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
static const float EXP_P[] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
			       4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };
static const float ERFC_P = 0.3275911f;
static const float ERFC_A[] = { 1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f };

static float exp_scalar(float x)
{
	x = fminf(fmaxf(x, EXP_LO), EXP_HI);
	float n = nearbyintf(x * LOG2E);
	float r = fmaf(n, -LN2_HI, x);
	r = fmaf(n, -LN2_LO, r);
	float p = EXP_P[0];
	for (int i = 1; i < 6; i++)
		p = fmaf(p, r, EXP_P[i]);
	float y = fmaf(p, r * r, r) + 1.0f;
	return ldexpf(y, (int)n);
}

static float act_scalar(enum rf_activation act, float x)
{
	if (act == RF_ACT_QUICKGELU)
		return x / (1.0f + exp_scalar(-1.702f * x));
	float z = fabsf(x) * 0.70710678118654752f;
	float t = 1.0f / fmaf(ERFC_P, z, 1.0f);
	float p = ERFC_A[0];
	for (int i = 1; i < 5; i++)
		p = fmaf(p, t, ERFC_A[i]);
	float e = p * t * exp_scalar(-z * z);
	return x >= 0.0f ? x - 0.5f * x * e : 0.5f * x * e;
}

#ifdef RF_HOST_AVX2
__attribute__((target("avx2,fma"))) static __m256 exp_avx2(__m256 x)
{
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
	r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
	__m256 p = _mm256_set1_ps(EXP_P[0]);
	for (int i = 1; i < 6; i++)
		p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P[i]));
	__m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
	/* 2^n as bits: n in [-127, 128) after the clamp; split it so neither half leaves the
	** normal range (n = -126 .. -127 would make a subnormal scale). */
	__m256i ni = _mm256_cvtps_epi32(n);
	__m256i half = _mm256_srai_epi32(ni, 1);
	__m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
	__m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
		_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
	return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

__attribute__((target("avx2,fma"))) static void act_avx2(enum rf_activation act, float *x, size_t n)
{
	size_t i = 0;
	const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
	const __m256 sign = _mm256_set1_ps(-0.0f);
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i), out;
		if (act == RF_ACT_QUICKGELU) {
			__m256 e = exp_avx2(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)));
			out = _mm256_div_ps(v, _mm256_add_ps(one, e));
		} else {
			__m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(0.70710678118654752f));
			__m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(ERFC_P), z, one));
			__m256 p = _mm256_set1_ps(ERFC_A[0]);
			for (int j = 1; j < 5; j++)
				p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERFC_A[j]));
			__m256 e = _mm256_mul_ps(_mm256_mul_ps(p, t),
						 exp_avx2(_mm256_xor_ps(_mm256_mul_ps(z, z), sign)));
			__m256 he = _mm256_mul_ps(_mm256_mul_ps(half, v), e);   /* x e / 2 */
			__m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
			out = _mm256_blendv_ps(he, _mm256_sub_ps(v, he), pos);
		}
		_mm256_storeu_ps(x + i, out);
	}
	for (; i < n; i++)
		x[i] = act_scalar(act, x[i]);
}
#endif

void rf_host_activate(enum rf_activation act, float *x, size_t n)
{
#ifdef RF_HOST_AVX2
	if (have_avx2()) {
		act_avx2(act, x, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		x[i] = act_scalar(act, x[i]);
}

/* }===== */

/* {===== softmax rows */

#ifdef RF_HOST_AVX2
/* x[j] = exp(x[j] - max) for j < n; returns their sum (accumulated in double). */
__attribute__((target("avx2,fma"))) static double exp_shifted_avx2(float *x, size_t n, float max)
{
	__m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
	const __m256 m = _mm256_set1_ps(max);
	size_t j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), m));
		_mm256_storeu_ps(x + j, e);
		acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double part[4], sum = 0;
	_mm256_storeu_pd(part, _mm256_add_pd(acc0, acc1));
	sum = (part[0] + part[1]) + (part[2] + part[3]);
	for (; j < n; j++) {
		x[j] = exp_scalar(x[j] - max);
		sum += x[j];
	}
	return sum;
}
#endif

void rf_host_softmax_row(float *x, size_t valid, size_t n)
{
	if (valid == 0) {
		memset(x, 0, n * sizeof *x);
		return;
	}
	float max = x[0];
	for (size_t j = 1; j < valid; j++)
		max = x[j] > max ? x[j] : max;
	double sum = 0;
#ifdef RF_HOST_AVX2
	if (have_avx2()) {
		sum = exp_shifted_avx2(x, valid, max);
	} else
#endif
	{
		for (size_t j = 0; j < valid; j++) {
			x[j] = exp_scalar(x[j] - max);
			sum += x[j];
		}
	}
	float inv = (float)(1.0 / sum);
	for (size_t j = 0; j < valid; j++)
		x[j] *= inv;
	memset(x + valid, 0, (n - valid) * sizeof *x);
}

/* }===== */

double rf_host_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
