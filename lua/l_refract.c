/*
** l_refract.c: luaopen_refract, the module table: version, then one opener per binding
** file. Lua layer (L6).
*/
#include "lhost.h"
#include "paths.h"

#include <limits.h>
#include <time.h>
#include <unistd.h>

/* refract.clock() -> seconds on a monotonic clock (for rates and ETAs). */
static int l_clock(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
	return 1;
}

/* refract.isatty(fd) -> whether a file descriptor (1 stdout, 2 stderr) is a terminal. */
static int l_isatty(lua_State *L)
{
	lua_Integer fd = luaL_checkinteger(L, 1);
	/* Checked before the cast: 2^32 + 1 was descriptor 1. */
	lua_pushboolean(L, fd >= 0 && fd <= INT_MAX && isatty((int)fd));
	return 1;
}

/* refract.executable() -> the path of the running refract binary (to run subcommands). */
static int l_executable(lua_State *L)
{
	/* A buffer that grows until the link fits (a cut path would name another file). */
	for (size_t size = 256; size <= (1u << 20); size *= 2) {
		luaL_Buffer b;
		char *path = luaL_buffinitsize(L, &b, size);
		ssize_t n = readlink("/proc/self/exe", path, size);
		if (n <= 0)
			break;
		if ((size_t)n < size) {
			luaL_pushresultsize(&b, (size_t)n);
			return 1;
		}
		lua_pop(L, 1);
	}
	return luaL_error(L, "executable: cannot read /proc/self/exe");
}

static int l_home(lua_State *L)
{
	lua_pushstring(L, rf_paths_root());
	return 1;
}

int luaopen_refract(lua_State *L)
{
	lua_newtable(L);
	lua_pushstring(L, RF_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushcfunction(L, l_home);
	lua_setfield(L, -2, "home");
	lua_pushcfunction(L, l_executable);
	lua_setfield(L, -2, "executable");
	lua_pushcfunction(L, l_clock);
	lua_setfield(L, -2, "clock");
	lua_pushcfunction(L, l_isatty);
	lua_setfield(L, -2, "isatty");
	rf_lua_open_device(L);
	rf_lua_open_tensor(L);
	rf_lua_open_model(L);
	rf_lua_open_intervene(L);
	rf_lua_open_decomposer(L);
	rf_lua_open_image(L);
	rf_lua_open_png(L);
	rf_lua_open_json(L);
	rf_lua_open_io(L);
	rf_lua_open_bench(L);
	rf_lua_open_checksum(L);
	rf_lua_open_resize(L);
	rf_lua_open_segment(L);
	rf_lua_open_imagenet_seg(L);
	rf_lua_open_lock(L);
	rf_lua_open_spawn(L);
	rf_lua_open_file(L);
	return 1;
}
