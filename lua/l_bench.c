/*
** l_bench.c: refract.bench_gemm{...}: times rf_op_gemm and OpenBLAS's cblas_sgemm on the
** same data in the same run, so that a shared, noisy machine slows both alike. Not a
** test: a measurement for `refract bench` (scripts/bench.lua). Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "context.h"
#include "device.h"
#include "gemm.h"
#include "status.h"
#include "tensor.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_args {
	int64_t m, n, k;
	enum rf_dtype storage;
	double seconds;             /* per side, after warm-up */
	int threads;                /* OpenBLAS threads */
};

struct bench_result {
	double ours, openblas;      /* GFLOP/s, 2*m*n*k flops per product */
	double ours_best;           /* fastest single submit */
	double ours_cpu, openblas_cpu;  /* GFLOP per second of the process's CPU time (all threads) */
	double max_rel_diff;        /* |ours - OpenBLAS| / max |OpenBLAS| */
	uint64_t ours_runs, blas_runs;
	const char *kernel;
};

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of the whole process (lavapipe's and OpenBLAS's threads included): on a shared
** machine a rate per CPU-second moves far less with the load than a rate per second. */
static double cpu_now(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* Deterministic inputs in [-1, 1) (a small LCG: the data only has to be reproducible). */
static void fill(float *x, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
	}
}

/* Device side: records `per_submit` products per submit and waits for each submit, so
** the time covers recording, dispatch and the wait. */
static enum rf_status time_ours(rf_ctx *ctx, const struct rf_gemm *g, const struct bench_args *b,
				struct bench_result *r)
{
	enum rf_status s;
	double flops = 2.0 * (double)b->m * (double)b->n * (double)b->k;
	/* Warm-up: builds and JIT-compiles the pipeline, then sizes the submits to ~0.2 s. */
	double t0 = now();
	if ((s = rf_op_gemm(ctx, g)) != RF_OK || (s = rf_ctx_finish(ctx)) != RF_OK)
		return s;
	t0 = now();
	if ((s = rf_op_gemm(ctx, g)) != RF_OK || (s = rf_ctx_finish(ctx)) != RF_OK)
		return s;
	double one = now() - t0;
	uint64_t per_submit = (uint64_t)RF_MAX(1.0, RF_MIN(500.0, 0.2 / RF_MAX(one, 1e-6)));
	double spent = 0, cpu0 = cpu_now();
	r->ours_best = 0;
	while (spent < b->seconds) {
		t0 = now();
		for (uint64_t i = 0; i < per_submit; i++)
			if ((s = rf_op_gemm(ctx, g)) != RF_OK)
				return s;
		if ((s = rf_ctx_finish(ctx)) != RF_OK)
			return s;
		double dt = now() - t0;
		spent += dt;
		r->ours_runs += per_submit;
		r->ours_best = RF_MAX(r->ours_best, flops * (double)per_submit / dt * 1e-9);
	}
	r->ours = flops * (double)r->ours_runs / spent * 1e-9;
	r->ours_cpu = flops * (double)r->ours_runs / RF_MAX(cpu_now() - cpu0, 1e-9) * 1e-9;
	return RF_OK;
}

static void time_openblas(const float *a, const float *w, float *c, const struct bench_args *b,
			  struct bench_result *r)
{
	int m = (int)b->m, n = (int)b->n, k = (int)b->k;
	openblas_set_num_threads(b->threads);
	/* C = A · Wᵀ, row-major: the same product as rf_op_gemm. */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k, 0.0f, c, n);
	double spent = 0, cpu0 = cpu_now();
	while (spent < b->seconds) {
		double t0 = now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k, 0.0f, c, n);
		spent += now() - t0;
		r->blas_runs++;
	}
	r->openblas = 2.0 * (double)m * n * k * (double)r->blas_runs / spent * 1e-9;
	r->openblas_cpu = 2.0 * (double)m * n * k * (double)r->blas_runs / RF_MAX(cpu_now() - cpu0, 1e-9) * 1e-9;
}

static double max_rel_diff(const float *x, const float *ref, size_t n)
{
	double diff = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		diff = RF_MAX(diff, fabs((double)x[i] - ref[i]));
		scale = RF_MAX(scale, fabs((double)ref[i]));
	}
	return scale > 0 ? diff / scale : diff;
}

static enum rf_status bench(rf_ctx *ctx, const struct bench_args *b, struct bench_result *r)
{
	size_t na = (size_t)(b->m * b->k), nw = (size_t)(b->n * b->k), nc = (size_t)(b->m * b->n);
	float *a = malloc(na * sizeof *a), *w = malloc(nw * sizeof *w);
	float *c = malloc(nc * sizeof *c), *ours = malloc(nc * sizeof *ours);
	rf_gemm_weights *gw = NULL;
	rf_tensor *ta = NULL, *tc = NULL;
	enum rf_status s = RF_OK;
	if (!a || !w || !c || !ours) {
		s = rf_error(RF_ERR_OOM_HOST, "bench_gemm: host buffers for %lld x %lld x %lld",
			     (long long)b->m, (long long)b->n, (long long)b->k);
		goto out;
	}
	fill(a, na, 1);
	fill(w, nw, 2);
	/* f16 storage: OpenBLAS gets the same rounded weights, so the results agree. */
	if (b->storage == RF_F16)
		for (size_t i = 0; i < nw; i++)
			w[i] = rf_half_to_float(rf_float_to_half(w[i]));
	struct rf_weight_source src = { w, RF_F32, b->n, b->k, false };
	struct rf_shape sa = rf_shape_of(2, b->m, b->k), sc = rf_shape_of(2, b->m, b->n);
	if ((s = rf_gemm_weights_create(ctx, &src, b->storage, &gw)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &sa, &ta)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &sc, &tc)) != RF_OK ||
	    (s = rf_tensor_upload(ta, a, na * sizeof *a)) != RF_OK)
		goto out;
	r->kernel = rf_gemm_weights_kernel(gw);
	struct rf_gemm g = { .a = ta, .w = gw, .act = RF_ACT_NONE, .c = tc };
	if ((s = time_ours(ctx, &g, b, r)) != RF_OK ||
	    (s = rf_tensor_download(tc, ours, nc * sizeof *ours)) != RF_OK)
		goto out;
	time_openblas(a, w, c, b, r);
	r->max_rel_diff = max_rel_diff(ours, c, nc);
out:
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tc);
	rf_gemm_weights_destroy(gw);
	free(a);
	free(w);
	free(c);
	free(ours);
	return s;
}

static int64_t int_field(lua_State *L, const char *name, int64_t def)
{
	rf_lua_rawfield(L, 1, name);
	int64_t v = def;
	if (!lua_isnil(L, -1)) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "bench_gemm: '%s' must be an integer", name);
		v = lua_tointeger(L, -1);
	} else if (def < 0) {
		luaL_error(L, "bench_gemm: '%s' is required", name);
	}
	lua_pop(L, 1);
	if (v < 1 || v > 1000000)
		luaL_error(L, "bench_gemm: '%s' = %I is out of range [1, 1000000]", name, (lua_Integer)v);
	return v;
}

static void set_number(lua_State *L, const char *name, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, name);
}

/* refract.bench_gemm{m=, n=, k=, dtype="f32"|"f16", seconds=1, threads=2} ->
** { ours=, openblas=, ratio=, ours_best=, max_rel_diff=, kernel=, runs=, blas_runs= } */
static int l_bench_gemm(lua_State *L)
{
	static const char *const keys[] = { "m", "n", "k", "dtype", "seconds", "threads", NULL };
	luaL_checktype(L, 1, LUA_TTABLE);
	rf_lua_check_keys(L, 1, "bench_gemm", keys);
	struct bench_args b = { int_field(L, "m", -1), int_field(L, "n", -1), int_field(L, "k", -1),
				RF_F32, 1.0, (int)int_field(L, "threads", 2) };
	rf_lua_rawfield(L, 1, "dtype");
	const char *dt = luaL_optstring(L, -1, "f32");
	if (!strcmp(dt, "f16"))
		b.storage = RF_F16;
	else if (strcmp(dt, "f32"))
		return luaL_error(L, "bench_gemm: dtype '%s' is not \"f32\" or \"f16\"", dt);
	lua_pop(L, 1);
	rf_lua_rawfield(L, 1, "seconds");
	b.seconds = luaL_optnumber(L, -1, 1.0);
	lua_pop(L, 1);
	if (!(b.seconds > 0 && b.seconds <= 600))
		return luaL_error(L, "bench_gemm: seconds must be in (0, 600]");

	struct bench_result r = { 0 };
	enum rf_status s = bench(rf_lua_ctx(L), &b, &r);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "bench_gemm");
	lua_createtable(L, 0, 8);
	set_number(L, "ours", r.ours);
	set_number(L, "ours_best", r.ours_best);
	set_number(L, "openblas", r.openblas);
	set_number(L, "ours_cpu", r.ours_cpu);
	set_number(L, "openblas_cpu", r.openblas_cpu);
	set_number(L, "ratio", r.openblas > 0 ? r.ours / r.openblas : 0);
	set_number(L, "max_rel_diff", r.max_rel_diff);
	lua_pushinteger(L, (lua_Integer)r.ours_runs);
	lua_setfield(L, -2, "runs");
	lua_pushinteger(L, (lua_Integer)r.blas_runs);
	lua_setfield(L, -2, "blas_runs");
	lua_pushstring(L, r.kernel);
	lua_setfield(L, -2, "kernel");
	return 1;
}

/* refract.gemm_info() -> {family = "host"|"lanes"|..., blas_core = OpenBLAS's kernels}:
** what runs the Linear layers on this device, for benchmark reports. */
static int l_gemm_info(lua_State *L)
{
	const char *family = rf_gemm_family(rf_lua_ctx(L));
	if (!family)
		return rf_lua_fail(L, RF_ERR_INVALID, "gemm_info");
	lua_createtable(L, 0, 2);
	lua_pushstring(L, family);
	lua_setfield(L, -2, "family");
	lua_pushstring(L, rf_host_blas_core());
	lua_setfield(L, -2, "blas_core");
	return 1;
}

void rf_lua_open_bench(lua_State *L)
{
	lua_pushcfunction(L, l_bench_gemm);
	lua_setfield(L, -2, "bench_gemm");
	lua_pushcfunction(L, l_gemm_info);
	lua_setfield(L, -2, "gemm_info");
}
