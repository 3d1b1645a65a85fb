/*
** l_file.c: looking at files from scripts without the traps of io.open: refract.read_file
** (a regular file's whole contents, with a size limit), refract.file_type (what is at a
** path, without opening it) and refract.same_file. io.open on a FIFO waits forever for a
** writer, and reading /dev/zero never ends; the bundled scripts read their lists through
** these. Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "file_in.h"
#include "status.h"

#include <stdlib.h>
#include <sys/stat.h>

/* The box that owns the read buffer until its contents are a Lua string: an error while
** pushing it cannot leak it. */
#define BUFFER_MT "refract.FileBuffer"

static int buffer_gc(lua_State *L)
{
	char **box = luaL_checkudata(L, 1, BUFFER_MT);
	free(*box);
	*box = NULL;
	return 0;
}

/* refract.read_file(path [, max_bytes = 256 MiB]) -> the contents of a regular file (a
** folder, a FIFO or a device is an error naming it, as is a file over max_bytes). */
static int l_read_file(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)RF_MAX_JSON_BYTES);
	luaL_argcheck(L, max >= 0, 2, "max_bytes must be non-negative");
	char **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = NULL;
	rf_lua_set_handle_mt(L, BUFFER_MT);
	size_t len;
	enum rf_status s = rf_file_read_all(path, (uint64_t)max, "read_file", box, &len);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "read_file");
	lua_pushlstring(L, *box, len);
	free(*box);
	*box = NULL;
	return 1;
}

/* refract.file_type(path) -> "file", "directory", "other" (a FIFO, a device, a socket),
** or nil if nothing is there (links are followed). */
static int l_file_type(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	struct stat st;
	if (stat(path, &st) != 0)
		lua_pushnil(L);
	else
		lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
	return 1;
}

/* refract.same_file(a, b) -> whether both paths name one existing file (the same device
** and inode: links, "./x" and hard links included), so that a command can refuse to write
** its output over one of its inputs. */
static int l_same_file(lua_State *L)
{
	const char *a = rf_lua_check_cstring(L, 1), *b = rf_lua_check_cstring(L, 2);
	struct stat sa, sb;
	lua_pushboolean(L, stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
			       sa.st_ino == sb.st_ino);
	return 1;
}

void rf_lua_open_file(lua_State *L)
{
	luaL_newmetatable(L, BUFFER_MT);
	lua_pushcfunction(L, buffer_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	static const luaL_Reg fns[] = {
		{ "read_file", l_read_file }, { "file_type", l_file_type }, { "same_file", l_same_file },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
