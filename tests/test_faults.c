/*
** test_faults.c: allocation failures along a model load + decompose + write, run as a
** script. The scenario runs once to count its host allocations (malloc, calloc and
** realloc of refract's own code: this binary is linked with --wrap for them, so the
** shared libraries below, Lua's allocator included, are not counted) and its device
** allocations (rf_mem_fail_device_alloc_at); then it runs again with each one failing in
** turn, the n-th and every later one. Each run must end in an error with a message, and
** once its tensors are collected no device allocation may be left (the context's
** counters); the ASan build's leak checker sees host memory that a failure path lost.
*/
#include "harness.h"
#include "golden.h"
#include "lhost.h"
#include "l_util.h"
#include "memory.h"
#include "paths.h"

#include <lualib.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static _Atomic long host_allocs;          /* since the scenario started */
static _Atomic long host_fail_at = -1;    /* -1: none fails */
static atomic_bool counting;

/* Whether this allocation is one the test makes fail. */
static bool refuse(void)
{
	if (!atomic_load(&counting))
		return false;
	long made = atomic_fetch_add(&host_allocs, 1);
	long at = atomic_load(&host_fail_at);
	return at >= 0 && made >= at;
}

void *__wrap_malloc(size_t n) { return refuse() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return refuse() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return refuse() ? NULL : __real_realloc(p, n); }

static const char *scenario =
	"function scenario()\n"
	"  local m = refract.load(dir)\n"
	"  local px = refract.preprocess({ images .. '/00_exact_disc.png' }, m)\n"
	"  local d = m:decompose(px, { spatial = true })\n"
	"  refract.write(tmp .. '/out.safetensors', { px = px })\n"
	"  m:free()\n"
	"end\n";

static uint64_t device_allocations(lua_State *L)
{
	lua_gc(L, LUA_GCCOLLECT);
	lua_gc(L, LUA_GCCOLLECT);   /* objects resurrected for their finalizers */
	struct rf_mem_stats m = { 0 };
	rf_ctx *ctx = rf_lua_ctx_if_created(L);
	if (ctx)
		rf_ctx_memory_stats(ctx, &m);
	return m.allocations;
}

/* Runs the scenario; true if it succeeded. On failure the message must say something. */
static bool run(lua_State *L, const char *what, long n)
{
	lua_getglobal(L, "scenario");
	atomic_store(&host_allocs, 0);
	atomic_store(&counting, true);
	int status = lua_pcall(L, 0, 0, 0);
	atomic_store(&counting, false);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		if (n < 0)
			fprintf(stderr, "%s: %s\n", what, msg ? msg : "(no message)");
		if (!msg || strlen(msg) < 8) {
			fprintf(stderr, "%s %ld: an error without a message\n", what, n);
			rf_test_failures++;
		}
	}
	lua_settop(L, 0);
	return status == LUA_OK;
}

/* Fails allocation n = 0 .. total-1 in turn through `arm`. */
static void sweep(lua_State *L, const char *what, long total, void (*arm)(long n))
{
	uint64_t before = device_allocations(L);
	long failed = 0;
	for (long n = 0; n < total; n++) {
		arm(n);
		bool ok = run(L, what, n);
		arm(-1);
		failed += !ok;
		uint64_t after = device_allocations(L);
		if (after != before) {
			fprintf(stderr, "%s %ld: %lld device allocations left\n", what, n,
				(long long)(after - before));
			rf_test_failures++;
			return;
		}
	}
	printf("%s: %ld failure points, %ld ended in an error, none left anything behind\n",
	       what, total, failed);
	CHECK(total > 0 && failed > 0);
}

static void arm_host(long n) { atomic_store(&host_fail_at, n); }
static void arm_device(long n) { rf_mem_fail_device_alloc_at(n); }

int main(int argc, char **argv)
{
	(void)argc;
	rf_test_ctx();              /* exits 77 (SKIP) without a device */
	rf_paths_init(argv[0]);
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "refract", luaopen_refract, 1);
	lua_pop(L, 1);
	lua_pushstring(L, rf_test_data("tiny-gelu/model"));
	lua_setglobal(L, "dir");
	lua_pushstring(L, rf_test_data("tiny-gelu/images"));
	lua_setglobal(L, "images");
	char *tmp = rf_temp_dir();
	lua_pushstring(L, tmp);
	lua_setglobal(L, "tmp");
	if (luaL_dostring(L, scenario) != LUA_OK) {
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		return 1;
	}
	/* A first run makes what the context keeps (pipelines, staging); then count. */
	CHECK(run(L, "warm-up", -1));
	rf_mem_fail_device_alloc_at(-1);
	CHECK(run(L, "count", -1));
	long hosts = atomic_load(&host_allocs);
	long devices = (long)rf_mem_fail_device_alloc_at(-1);
	printf("the scenario makes %ld host and %ld device allocations\n", hosts, devices);
	sweep(L, "host allocation", hosts, arm_host);
	sweep(L, "device allocation", devices, arm_device);
	lua_close(L);
	rf_temp_dir_remove(tmp);
	return rf_test_finish();
}
