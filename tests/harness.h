/*
** harness.h: the test vocabulary: checks that count failures, a seeded PRNG, error
** metrics against double-precision references, and the device context every GPU test
** shares (exit 77, ctest's SKIP, when no Vulkan device exists).
*/
#ifndef RF_TESTS_HARNESS_H
#define RF_TESTS_HARNESS_H

#include <stdio.h>
#include "rf_base.h"
#include "status.h"

typedef struct rf_ctx rf_ctx;

extern int rf_test_failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			rf_test_failures++; \
		} \
	} while (0)

/* Checks a call returns RF_OK, printing the error message otherwise. */
#define CHECK_OK(call) \
	do { \
		enum rf_status s_ = (call); \
		if (s_ != RF_OK) { \
			fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call, \
				rf_status_str(s_), rf_error_message()); \
			rf_test_failures++; \
		} \
	} while (0)

/* Checks a call fails with `want` and that its message contains `needle`. */
#define CHECK_FAILS(call, want, needle) \
	rf_check_fails((call), (want), (needle), #call, __FILE__, __LINE__)
void rf_check_fails(enum rf_status got, enum rf_status want, const char *needle,
		    const char *expr, const char *file, int line);

/* The shared context (created once); exits 77 if there is no Vulkan device. */
rf_ctx *rf_test_ctx(void);
/* Releases the context, checks the validation layer stayed silent, and returns the
** process exit code (0 if no check failed). */
int rf_test_finish(void);

/* Deterministic PRNG (splitmix64). */
void rf_rand_seed(uint64_t seed);
uint64_t rf_rand_u64(void);
double rf_rand_uniform(void);            /* [0, 1) */
double rf_rand_normal(void);
void rf_rand_fill(float *x, size_t n, double lo, double hi);

/* Compares `got` with a double reference; prints "label: max abs, max rel, nmse" and
** returns true if every element satisfies |g - r| <= atol + rtol * |r| (NaN matches
** only NaN). */
bool rf_compare(const char *label, const float *got, const double *ref, size_t n,
		double atol, double rtol);

/* Device tensors for tests: a new tensor holding `data` (NULL: zeros, or contents left
** undefined when `dtype` is not F32), and a malloc'd f32 host copy of a tensor. Both abort
** the test (exit 1) on failure, since nothing after them could run. */
struct rf_shape;
typedef struct rf_tensor rf_tensor;
rf_tensor *rf_test_tensor(rf_ctx *ctx, const struct rf_shape *shape, const float *data);
float *rf_test_download(const rf_tensor *t);

/* Tensors past one storage binding, whose kernels must work in windows. They run where
** REFRACT_MAX_STORAGE_RANGE lowers the binding limit (small tensors, any device, any
** build: the _gpu_layout tests set it), and at the device's own limit in plain runs
** (not with a forced kernel layout, nor in sanitizer builds, where lavapipe's work runs
** instrumented and 128 MiB take minutes). */
bool rf_test_big_tensors(void);
/* Rows of `row_bytes` for a tensor just past one binding: what one binding holds plus
** `past`, rounded up to even; 0 (after saying why) if that is over `max_bytes`, as a
** GPU's 4 GiB binding would be without REFRACT_MAX_STORAGE_RANGE. */
int64_t rf_test_rows_past_binding(rf_ctx *ctx, int64_t row_bytes, int64_t past, uint64_t max_bytes);

/* Seconds on a monotonic clock, for benchmark-style output. */
double rf_test_seconds(void);

#endif
