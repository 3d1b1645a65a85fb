/*
** test_runtime.c: the Vulkan runtime on its own: context, suballocation (reuse, no
** growth, budget errors), transfers, automatic barriers across dependent dispatches and
** past the tracker's capacity, the elementwise kernel against a double-precision
** reference; host conversions and shape checks at the limits.
*/
#include "harness.h"
#include "cmd.h"
#include "context.h"
#include "memory.h"
#include "tensor.h"
#include "transfer.h"
#include "elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One round of the allocation pattern: 10,000 allocations of 1 to 97 kB, each freed
** while the next 7 are live, so freed ranges must be merged and reused. */
static void alloc_round(rf_ctx *ctx)
{
	enum { LIVE = 8 };
	struct rf_mem live[LIVE] = { 0 };
	for (int i = 0; i < 10000; i++) {
		rf_mem_free(ctx, &live[i % LIVE]);
		CHECK_OK(rf_mem_alloc(ctx, (uint64_t)(1 + i % 97) * 1000, &live[i % LIVE]));
	}
	for (int i = 0; i < LIVE; i++)
		rf_mem_free(ctx, &live[i]);
}

/* After a warm-up round has reserved what the pattern needs, more rounds reserve nothing
** more: without the warm-up the reserved size before would be 0 and prove nothing. */
static void test_alloc_reuse(rf_ctx *ctx)
{
	struct rf_mem_stats before, after;
	alloc_round(ctx);
	rf_ctx_memory_stats(ctx, &before);
	CHECK(before.reserved > 0 && before.in_use == 0 && before.allocations == 0);
	for (int round = 0; round < 5; round++)
		alloc_round(ctx);
	rf_ctx_memory_stats(ctx, &after);
	printf("alloc/free: %.1f MiB reserved after the warm-up, %.1f MiB after 5 more rounds\n",
	       before.reserved / 1048576.0, after.reserved / 1048576.0);
	CHECK(after.in_use == before.in_use);
	CHECK(after.reserved == before.reserved);
	CHECK(after.allocations == before.allocations);
}

static void test_budget_error(rf_ctx *ctx)
{
	struct rf_mem m;
	uint64_t huge = rf_ctx_caps(ctx)->heap_budget + (1ull << 30);
	CHECK_FAILS(rf_mem_alloc(ctx, huge, &m), RF_ERR_OOM_DEVICE, "out of device memory");
	CHECK(m.block == NULL);
}

static void test_roundtrip(rf_ctx *ctx)
{
	enum { N = 1 << 20 };
	float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
	rf_rand_seed(1);
	rf_rand_fill(in, N, -1, 1);
	rf_tensor *t;
	struct rf_shape s = rf_shape_of(1, (int64_t)N);
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &s, &t));
	CHECK_OK(rf_tensor_upload(t, in, N * sizeof *in));
	CHECK_OK(rf_tensor_download(t, out, N * sizeof *out));
	CHECK(memcmp(in, out, N * sizeof *in) == 0);
	rf_tensor_destroy(t);
	free(in);
	free(out);
}

/* A chain x -> x+x -> ... where each dispatch reads the previous one's output: wrong
** or missing barriers show up as wrong sums. Written in place to test WAR/WAW too. */
static void test_dependent_chain(rf_ctx *ctx)
{
	enum { N = 100003, STEPS = 20 };
	float *x = malloc(N * sizeof *x);
	for (int i = 0; i < N; i++)
		x[i] = (float)(i % 7);
	struct rf_shape s = rf_shape_of(1, (int64_t)N);
	rf_tensor *a, *b;
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &s, &a));
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &s, &b));
	CHECK_OK(rf_tensor_upload(a, x, N * sizeof *x));
	for (int k = 0; k < STEPS; k++) {
		CHECK_OK(rf_op_binary(ctx, RF_BIN_ADD, a, a, b));
		CHECK_OK(rf_op_binary(ctx, RF_BIN_SUB, b, a, a));  /* a = 2a - a = a ... */
		CHECK_OK(rf_op_binary(ctx, RF_BIN_ADD, a, a, a));  /* ... then a = 2a in place */
	}
	CHECK_OK(rf_tensor_download(a, x, N * sizeof *x));
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += x[i] != (float)(i % 7) * (float)(1 << STEPS);
	CHECK(bad == 0);
	rf_tensor_destroy(a);
	rf_tensor_destroy(b);
	free(x);
}

/* More accesses in one frame than the barrier tracker remembers. Each of N slots is
** filled, then copied out: every copy must come after a barrier recorded after its fill.
** A device that runs commands in order (lavapipe) gives right values even without the
** barrier, so the barrier counter is checked at every copy too. The first copy decides
** what is tested, since the barrier it needs orders everything before it: slot 0 is
** ordered only by the barrier the overflow must record; slot CAP, whose fill caused the
** overflow, only if the tracker still remembers it after the overflow. One overflow
** per round: a second one would order slot CAP by luck. */
enum { CAP = RF_CMD_TRACKED_RANGES, N = CAP + 3, SLOT = RF_MEM_ALIGN };

static void tracker_overflow_round(rf_ctx *ctx, struct rf_mem *src, struct rf_mem *dst,
				   uint32_t first)
{
	CHECK_OK(rf_mem_fill(ctx, dst, 0, (uint64_t)N * SLOT, 0));
	CHECK_OK(rf_ctx_finish(ctx));
	uint64_t barriers_after_fill[N];
	for (uint32_t i = 0; i < N; i++) {
		CHECK_OK(rf_mem_fill(ctx, src, (uint64_t)i * SLOT, SLOT, 0x5000u + i + first));
		barriers_after_fill[i] = rf_cmd_barriers(ctx);
	}
	int unordered = 0;
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = k == 0 ? first : k == first ? 0 : k;
		CHECK_OK(rf_mem_copy(ctx, src, (uint64_t)i * SLOT, dst, (uint64_t)i * SLOT, SLOT));
		unordered += rf_cmd_barriers(ctx) == barriers_after_fill[i];
	}
	if (unordered)
		fprintf(stderr, "tracker overflow, slot %u read first: %d copies without a barrier "
			"after their fill\n", first, unordered);
	CHECK(unordered == 0);
	uint32_t *got = malloc((size_t)N * SLOT);
	CHECK_OK(rf_mem_download(ctx, dst, 0, got, (uint64_t)N * SLOT));
	int wrong = 0;
	for (uint32_t w = 0; w < N * (SLOT / 4); w++)
		wrong += got[w] != 0x5000u + w / (SLOT / 4) + first;
	CHECK(wrong == 0);
	free(got);
}

static void test_tracker_overflow(rf_ctx *ctx)
{
	struct rf_mem src, dst;
	CHECK_OK(rf_mem_alloc(ctx, (uint64_t)N * SLOT, &src));
	CHECK_OK(rf_mem_alloc(ctx, (uint64_t)N * SLOT, &dst));
	tracker_overflow_round(ctx, &src, &dst, 0);
	tracker_overflow_round(ctx, &src, &dst, CAP);
	rf_mem_free(ctx, &src);
	rf_mem_free(ctx, &dst);
}

static double ref_op(enum rf_binary_op op, double x, double y)
{
	switch (op) {
	case RF_BIN_ADD: return x + y;
	case RF_BIN_SUB: return x - y;
	case RF_BIN_MUL: return x * y;
	case RF_BIN_DIV: return x / y;
	default: return 0;
	}
}

static void test_broadcast(rf_ctx *ctx, int64_t m, int64_t n, enum rf_binary_op op)
{
	/* a [m, n] op b [n] and a [m, n] op c [m, 1] */
	float *a = malloc((size_t)(m * n) * 4), *b = malloc((size_t)n * 4), *got = malloc((size_t)(m * n) * 4);
	double *ref = malloc((size_t)(m * n) * 8);
	rf_rand_fill(a, (size_t)(m * n), -2, 2);
	rf_rand_fill(b, (size_t)n, 0.5, 2);
	struct rf_shape sa = rf_shape_of(2, m, n), sb = rf_shape_of(1, n);
	rf_tensor *ta, *tb, *tc;
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &sa, &ta));
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &sb, &tb));
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &sa, &tc));
	CHECK_OK(rf_tensor_upload(ta, a, (uint64_t)(m * n) * 4));
	CHECK_OK(rf_tensor_upload(tb, b, (uint64_t)n * 4));
	CHECK_OK(rf_op_binary(ctx, op, ta, tb, tc));
	CHECK_OK(rf_tensor_download(tc, got, (uint64_t)(m * n) * 4));
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++)
			ref[i * n + j] = ref_op(op, a[i * n + j], b[j]);
	char label[64];
	snprintf(label, sizeof label, "binary op %d [%lld,%lld]x[%lld]", op, (long long)m,
		 (long long)n, (long long)n);
	rf_compare(label, got, ref, (size_t)(m * n), 0, 1e-6);
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(tc);
	free(a), free(b), free(got), free(ref);
}

static void test_bad_broadcast(rf_ctx *ctx)
{
	struct rf_shape sa = rf_shape_of(2, (int64_t)3, (int64_t)4), sb = rf_shape_of(1, (int64_t)5);
	struct rf_shape out;
	CHECK_FAILS(rf_broadcast_shape(&sa, &sb, &out), RF_ERR_INVALID, "do not broadcast");
	(void)ctx;
}

/* Host conversion of f32 to integer dtypes saturates, NaN becoming 0: a cast of a value
** out of range is undefined behaviour (which the float-cast-overflow sanitizer traps);
** and the shape check counts a zero dimension as 1, so [0, 2^62, 2^62] is refused. */
static void test_host_conversions(void)
{
	const float v[] = { NAN, 1e30f, -1e30f, 3.7f, -3.7f, INFINITY };
	int64_t i64[6];
	int32_t i32[6];
	uint8_t u8[6];
	rf_convert_from_f32(RF_I64, v, i64, 6);
	rf_convert_from_f32(RF_I32, v, i32, 6);
	rf_convert_from_f32(RF_U8, v, u8, 6);
	CHECK(i64[0] == 0 && i64[1] == INT64_MAX && i64[2] == INT64_MIN && i64[3] == 3 && i64[4] == -3 &&
	      i64[5] == INT64_MAX);
	CHECK(i32[0] == 0 && i32[1] == INT32_MAX && i32[2] == INT32_MIN && i32[3] == 3 && i32[4] == -3 &&
	      i32[5] == INT32_MAX);
	CHECK(u8[0] == 0 && u8[1] == 255 && u8[2] == 0 && u8[3] == 3 && u8[4] == 0 && u8[5] == 255);
	struct rf_shape s = rf_shape_of(3, (int64_t)0, INT64_C(1) << 62, INT64_C(1) << 62);
	CHECK_FAILS(rf_shape_check(&s, RF_U8, "t"), RF_ERR_INVALID, "too large");
	s = rf_shape_of(3, (int64_t)0, INT64_C(1) << 30, INT64_C(1) << 29);
	CHECK_OK(rf_shape_check(&s, RF_F32, "t"));
	size_t at = 99;
	CHECK(rf_find_nonfinite(RF_F32, v + 1, 5, &at) && at == 4);
	CHECK(!rf_find_nonfinite(RF_F32, v + 1, 4, &at));
	uint16_t h[3] = { 0x3c00, 0x7e00, 0 };
	CHECK(rf_find_nonfinite(RF_F16, h, 3, &at) && at == 1);
}

int main(void)
{
	test_host_conversions();
	rf_ctx *ctx = rf_test_ctx();
	test_alloc_reuse(ctx);
	test_budget_error(ctx);
	test_roundtrip(ctx);
	test_dependent_chain(ctx);
	test_tracker_overflow(ctx);
	rf_rand_seed(7);
	test_broadcast(ctx, 1, 1, RF_BIN_ADD);
	test_broadcast(ctx, 197, 257, RF_BIN_MUL);
	test_broadcast(ctx, 3, 2304, RF_BIN_DIV);
	test_broadcast(ctx, 1031, 13, RF_BIN_SUB);
	test_bad_broadcast(ctx);
	return rf_test_finish();
}
