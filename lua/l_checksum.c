/*
** l_checksum.c: refract.sha256(path) -> the file's SHA-256 as 64 lowercase hex digits
** (what `sha256sum` prints), for recording which files produced a result. Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "checksum.h"

static int l_sha256(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	char hex[RF_SHA256_HEX_LEN];
	enum rf_status s = rf_file_sha256(path, hex);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "sha256");
	lua_pushstring(L, hex);
	return 1;
}

void rf_lua_open_checksum(lua_State *L)
{
	lua_pushcfunction(L, l_sha256);
	lua_setfield(L, -2, "sha256");
}
