/*
** fuzz_lua.c: libFuzzer target for the Lua API. One Lua state with refract opened runs
** fuzz_lua_driver.lua, whose run(input) turns the input into a sequence of constructor
** and method calls with random arguments (see that file). Errors raised to the script
** are fine; a crash, a sanitizer report, a Lua error escaping the driver, or a device
** allocation still alive once every tensor is dropped and collected is a finding.
** The state lives across inputs (a Vulkan context per input would cost more than the
** input); every input starts from empty slots.
*/
#include "fuzz_util.h"
#include "lhost.h"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

static lua_State *L;
static lua_Integer baseline;

static lua_Integer run(const uint8_t *data, size_t size)
{
	lua_getglobal(L, "run");
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		fuzz_fail("an error escaped the driver");
	}
	lua_Integer n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The state lives across inputs, and so do the device memory blocks refract keeps
	** for reuse: without a budget, one input after another growing them (each legal
	** alone, up to lavapipe's 2 GiB heap) took the process past libFuzzer's RSS limit
	** after 89,000 inputs. With 512 MiB the live heap stayed under 0.7 GB, but the
	** resident set still passed 3 GB after 98,000 inputs, growing in steps of the block
	** sizes (memory the sanitizer's allocator and shadow keep once touched). A small budget
	** keeps every block small, and fuzzes the "does not fit" paths. */
	setenv("REFRACT_HEAP_BUDGET", "134217728", 0);
	/* And host tensors: libFuzzer reports any single allocation above its 3 GB limit,
	** though a 4 GiB host tensor is legal on this machine. */
	setenv("REFRACT_HOST_BUDGET", "536870912", 0);
	L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "refract", luaopen_refract, 0);
	lua_pop(L, 1);
	if (luaL_dofile(L, RF_SOURCE_DIR "/tests/fuzz/fuzz_lua_driver.lua") != LUA_OK) {
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
		fuzz_fail("the driver does not load");
	}
	/* What refract keeps once it has been used (the context's own buffers). */
	static const uint8_t warm[] = { 0, 0, 2, 2, 2 };
	baseline = run(warm, sizeof warm);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (run(data, size) != baseline)
		fuzz_fail("device allocations outlive every tensor");
	return 0;
}
