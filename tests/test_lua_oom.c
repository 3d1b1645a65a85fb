/*
** test_lua_oom.c: the bindings under Lua memory errors. A Lua state whose allocator
** refuses every allocation after the n-th (the countlimit of Lua's ltests.c) runs each
** call for n = 0, 1, 2, ... until it succeeds; after every failure, a full collection
** must give back every device allocation the call made. A tensor that no handle owns
** when the error strikes (a result table half built) stays allocated and fails the
** check; the ASan build's leak checker also sees its host memory.
*/
#include "harness.h"
#include "golden.h"
#include "context.h"
#include "lhost.h"
#include "l_util.h"
#include "paths.h"

#include <lualib.h>
#include <stdlib.h>
#include <string.h>

/* Allocations still allowed, or -1 for no limit. */
struct limit {
	long left;
};

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limit *lim = ud;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	/* Lua assumes that shrinking a block never fails; refuse only growth. */
	bool grows = ptr == NULL || nsize > osize;
	if (grows && lim->left == 0)
		return NULL;
	if (grows && lim->left > 0)
		lim->left--;
	return realloc(ptr, nsize);
}

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

static bool run_chunk(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != LUA_OK) {
		fprintf(stderr, "setup failed: %s\n", lua_tostring(L, -1));
		rf_test_failures++;
		lua_pop(L, 1);
		return false;
	}
	return true;
}

/* Runs global function `name` with allocation limits 0, 1, 2, ... until it succeeds,
** after one unlimited run (what the model builds and keeps on first use is no leak). */
static void check_call(lua_State *L, struct limit *lim, const char *name)
{
	lua_getglobal(L, name);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
		rf_test_failures++;
		lua_settop(L, 0);
		return;
	}
	uint64_t before = device_allocations(L);
	int failures = 0;
	for (long n = 0; n < 100000; n++) {
		lua_getglobal(L, name);
		/* No collection steps while allocations fail: a finalizer they ran could fail
		** to be called for memory, and Lua drops such a finalizer (a warning), which
		** is Lua's limit, not the binding's. Emergency collections still run. */
		lua_gc(L, LUA_GCSTOP);
		lim->left = n;
		int status = lua_pcall(L, 0, 0, 0);
		lim->left = -1;
		lua_gc(L, LUA_GCRESTART);
		if (status != LUA_OK && status != LUA_ERRMEM) {
			fprintf(stderr, "%s with %ld allocations: not a memory error: %s\n", name, n,
				lua_tostring(L, -1));
			rf_test_failures++;
		}
		lua_settop(L, 0);
		uint64_t after = device_allocations(L);
		if (after != before) {
			fprintf(stderr, "%s failing after %ld allocations leaves %lld device "
				"allocations unowned\n", name, n, (long long)(after - before));
			rf_test_failures++;
			return;
		}
		if (status == LUA_OK) {
			printf("%s: %d memory errors, each leaving nothing behind\n", name, failures);
			CHECK(failures > 0);
			return;
		}
		failures++;
	}
	fprintf(stderr, "%s never succeeded\n", name);
	rf_test_failures++;
}

/* Lua warns when a finalizer fails: no finalizer may fail here. */
static void fail_on_warning(void *ud, const char *msg, int tocont)
{
	(void)ud;
	static bool continued;
	if (!continued) {
		fprintf(stderr, "Lua warning: ");
		rf_test_failures++;
	}
	fprintf(stderr, "%s%s", msg, tocont ? "" : "\n");
	continued = tocont;
}

int main(int argc, char **argv)
{
	(void)argc;
	rf_test_ctx();              /* exits 77 (SKIP) without a device */
	rf_paths_init(argv[0]);
	const char *dir = rf_test_data("tiny-gelu/model");
	const char *images = rf_test_data("tiny-gelu/images");
	struct limit lim = { -1 };
	lua_State *L = lua_newstate(limited_alloc, &lim);
	lua_setwarnf(L, fail_on_warning, NULL);
	luaL_openlibs(L);
	luaL_requiref(L, "refract", luaopen_refract, 1);
	lua_pop(L, 1);
	lua_pushstring(L, dir);
	lua_setglobal(L, "dir");
	lua_pushstring(L, images);
	lua_setglobal(L, "images");
	char *tmp = rf_temp_dir();
	lua_pushstring(L, tmp);
	lua_setglobal(L, "tmp");
	if (run_chunk(L,
		      "model = refract.load(dir)\n"
		      "local c = model:config()\n"
		      "pixels = refract.randn({ 2, 3, c.image_size, c.image_size }, 1)\n"
		      "classes = refract.randn({ c.embed_dim, 3 }, 2)\n"
		      "function decompose() return model:decompose(pixels) end\n"
		      "function decompose_spatial()\n"
		      "  return model:decompose(pixels, { spatial = true })\n"
		      "end\n"
		      "function decompose_projected()\n"
		      "  return model:decompose(pixels, { spatial = true, reduce = 'heads', project = classes })\n"
		      "end\n"
		      "function encode() return model:encode_images(pixels) end\n"
		      "function forward() return model:forward(pixels, { taps = { 'embed', 'heads.2' } }) end\n"
		      "function read() return refract.read(dir .. '/open_clip_model.safetensors') end\n"
		      "function image_load() return refract.image_load(images .. '/07_noise_star.jpg') end\n"
		      "function preprocess()\n"
		      "  return refract.preprocess({ images .. '/00_exact_disc.png', images .. '/07_noise_star.jpg' }, model)\n"
		      "end\n"
		      "function batches()\n"
		      "  for x in refract.images { dir = images, batch = 3, model = model } do x:free() end\n"
		      "end\n"
		      "function topk() return pixels:topk(3, 4) end\n"
		      "function cat() return refract.cat({ pixels, pixels:host() }, 2) end\n"
		      "local doc = { a = { 1, 2.5, 'x', refract.null }, [3] = { b = true } }\n"
		      "function json_encode() return refract.json_encode(doc, 2) end\n"
		      "local text = refract.json_encode(doc)\n"
		      "function json_decode() return refract.json_decode(text) end\n"
		      "function write()\n"
		      "  refract.write(tmp .. '/w.safetensors', { a = pixels, b = classes }, { k = 'v' })\n"
		      "end\n"
		      "local star = refract.image_load(images .. '/07_noise_star.jpg')\n"
		      "function png()\n"
		      "  refract.write_png(tmp .. '/w.png', refract.overlay(star, refract.randn({ 4, 4 }, 3)))\n"
		      "end\n")) {
		static const char *calls[] = {
			"decompose", "decompose_spatial", "decompose_projected", "encode", "forward",
			"read", "image_load", "preprocess", "batches", "topk", "cat", "json_encode",
			"json_decode", "write", "png",
		};
		for (size_t i = 0; i < RF_ARRAY_LEN(calls); i++)
			check_call(L, &lim, calls[i]);
	}
	lua_close(L);
	rf_temp_dir_remove(tmp);
	return rf_test_finish();
}
