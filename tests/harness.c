/*
** harness.c: the test vocabulary (see harness.h).
*/
#include "harness.h"
#include "context.h"
#include "device.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rf_test_failures;
static rf_ctx *shared_ctx;

void rf_check_fails(enum rf_status got, enum rf_status want, const char *needle,
		    const char *expr, const char *file, int line)
{
	if (got != want) {
		fprintf(stderr, "%s:%d: %s returned %s, expected %s (message: %s)\n", file, line, expr,
			rf_status_str(got), rf_status_str(want), rf_error_message());
		rf_test_failures++;
	} else if (needle && !strstr(rf_error_message(), needle)) {
		fprintf(stderr, "%s:%d: %s: message \"%s\" lacks \"%s\"\n", file, line, expr,
			rf_error_message(), needle);
		rf_test_failures++;
	}
}

rf_ctx *rf_test_ctx(void)
{
	if (shared_ctx)
		return shared_ctx;
	enum rf_status s = rf_ctx_create(NULL, &shared_ctx);
	if (s == RF_ERR_NO_DEVICE) {
		fprintf(stderr, "SKIP: %s\n", rf_error_message());
		exit(77);
	}
	if (s != RF_OK) {
		fprintf(stderr, "cannot create a context: %s\n", rf_error_message());
		exit(1);
	}
	return shared_ctx;
}

int rf_test_finish(void)
{
	rf_ctx_release(shared_ctx);
	shared_ctx = NULL;
	if (rf_validation_total()) {
		fprintf(stderr, "the Vulkan validation layer reported %u message(s)\n", rf_validation_total());
		rf_test_failures++;
	}
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}

bool rf_test_big_tensors(void)
{
	if (getenv("REFRACT_MAX_STORAGE_RANGE"))
		return true;
#ifdef __SANITIZE_ADDRESS__
	return false;
#else
	return getenv("REFRACT_KERNELS") == NULL;
#endif
}

int64_t rf_test_rows_past_binding(rf_ctx *ctx, int64_t row_bytes, int64_t past, uint64_t max_bytes)
{
	uint64_t range = rf_ctx_caps(ctx)->max_storage_range;
	int64_t rows = (int64_t)(range / (uint64_t)row_bytes) + past;
	rows += rows & 1;
	if ((uint64_t)rows * (uint64_t)row_bytes > max_bytes) {
		printf("big tensors: one binding holds %.0f MiB here, too much to exceed in a test; "
		       "REFRACT_MAX_STORAGE_RANGE lowers it (the _gpu_layout tests set it)\n",
		       range / 1048576.0);
		return 0;
	}
	return rows;
}

static uint64_t rng_state = 1;

void rf_rand_seed(uint64_t seed)
{
	rng_state = seed;
}

uint64_t rf_rand_u64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double rf_rand_uniform(void)
{
	return (double)(rf_rand_u64() >> 11) / 9007199254740992.0;
}

double rf_rand_normal(void)
{
	double u = rf_rand_uniform(), v = rf_rand_uniform();
	return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

void rf_rand_fill(float *x, size_t n, double lo, double hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(lo + (hi - lo) * rf_rand_uniform());
}

bool rf_compare(const char *label, const float *got, const double *ref, size_t n,
		double atol, double rtol)
{
	double max_abs = 0, max_rel = 0, err2 = 0, ref2 = 0;
	size_t bad = 0, first_bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) && isnan(ref[i]))
			continue;   /* NaN where the reference has NaN is right */
		double d = fabs((double)got[i] - ref[i]);
		if (!(d <= atol + rtol * fabs(ref[i]))) {
			if (!bad)
				first_bad = i;
			bad++;
		}
		if (d > max_abs || isnan(d))
			max_abs = isnan(d) ? INFINITY : d;
		if (fabs(ref[i]) > 1e-30 && d / fabs(ref[i]) > max_rel)
			max_rel = d / fabs(ref[i]);
		err2 += d * d;
		ref2 += ref[i] * ref[i];
	}
	double nmse = ref2 > 0 ? err2 / ref2 : err2;
	printf("%-40s n=%-9zu max_abs=%.3e max_rel=%.3e nmse=%.3e %s\n", label, n, max_abs, max_rel,
	       nmse, bad ? "FAIL" : "ok");
	if (bad) {
		fprintf(stderr, "%s: %zu element(s) out of tolerance; first at %zu: got %.9g, want %.9g\n",
			label, bad, first_bad, (double)got[first_bad], ref[first_bad]);
		rf_test_failures++;
	}
	return bad == 0;
}

rf_tensor *rf_test_tensor(rf_ctx *ctx, const struct rf_shape *shape, const float *data)
{
	rf_tensor *t;
	enum rf_status s = data ? rf_tensor_create(ctx, RF_F32, shape, &t)
				: rf_tensor_zeros(ctx, RF_F32, shape, &t);
	if (s == RF_OK && data)
		s = rf_tensor_upload(t, data, rf_tensor_nbytes(t));
	if (s != RF_OK) {
		fprintf(stderr, "cannot make a test tensor: %s\n", rf_error_message());
		exit(1);
	}
	return t;
}

float *rf_test_download(const rf_tensor *t)
{
	size_t n = (size_t)rf_tensor_numel(t);
	float *out = malloc((n ? n : 1) * sizeof *out);
	if (!out || rf_tensor_download(t, out, rf_tensor_nbytes(t)) != RF_OK) {
		fprintf(stderr, "cannot download a test tensor: %s\n", rf_error_message());
		exit(1);
	}
	return out;
}

double rf_test_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
