/*
** l_device.c: device listing, memory counters, synchronisation and profiling for
** scripts (the shared context they read is l_util.c's). Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "context.h"
#include "device.h"
#include "memory.h"
#include "profile.h"
#include "status.h"

static void push_caps(lua_State *L, const struct rf_caps *c)
{
	lua_createtable(L, 0, 16);
	lua_pushinteger(L, c->index);
	lua_setfield(L, -2, "index");
	lua_pushstring(L, c->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, c->driver);
	lua_setfield(L, -2, "driver");
	lua_pushstring(L, rf_device_class_str(c->device_class));
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, (lua_Integer)c->device_local_heap);
	lua_setfield(L, -2, "heap_bytes");
	lua_pushinteger(L, (lua_Integer)c->heap_budget);
	lua_setfield(L, -2, "budget_bytes");
	lua_pushinteger(L, (lua_Integer)c->max_storage_range);
	lua_setfield(L, -2, "max_storage_range");
	lua_pushinteger(L, c->subgroup_size);
	lua_setfield(L, -2, "subgroup_size");
	lua_pushinteger(L, c->max_shared_memory);
	lua_setfield(L, -2, "shared_memory");
	lua_pushboolean(L, c->shader_float16);
	lua_setfield(L, -2, "fp16");
	lua_pushboolean(L, c->storage_16bit);
	lua_setfield(L, -2, "storage16");
	lua_pushboolean(L, c->cooperative_matrix);
	lua_setfield(L, -2, "cooperative_matrix");
	lua_pushboolean(L, c->unified_memory);
	lua_setfield(L, -2, "unified_memory");
	char api[32];
	snprintf(api, sizeof api, "%u.%u.%u", c->api_version >> 22, (c->api_version >> 12) & 0x3ff,
		 c->api_version & 0xfff);
	lua_pushstring(L, api);
	lua_setfield(L, -2, "api_version");
}

/* refract.devices() -> list of device tables (without opening a device). */
static int l_devices(lua_State *L)
{
	struct rf_caps caps[16];
	uint32_t n = 0;
	enum rf_status s = rf_devices_list(caps, 16, &n);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "listing Vulkan devices");
	lua_createtable(L, (int)n, 0);
	for (uint32_t i = 0; i < n && i < 16; i++) {
		push_caps(L, &caps[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* refract.device() -> the table of the device in use (opens it). */
static int l_device(lua_State *L)
{
	push_caps(L, rf_ctx_caps(rf_lua_ctx(L)));
	return 1;
}

/* refract.memory() -> {in_use, peak, reserved, allocations} in bytes. */
static int l_memory(lua_State *L)
{
	struct rf_mem_stats m = { 0 };
	rf_ctx *ctx = rf_lua_ctx_if_created(L);
	if (ctx)
		rf_ctx_memory_stats(ctx, &m);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)m.in_use);
	lua_setfield(L, -2, "in_use");
	lua_pushinteger(L, (lua_Integer)m.peak);
	lua_setfield(L, -2, "peak");
	lua_pushinteger(L, (lua_Integer)m.reserved);
	lua_setfield(L, -2, "reserved");
	lua_pushinteger(L, (lua_Integer)m.allocations);
	lua_setfield(L, -2, "allocations");
	return 1;
}

static int l_reset_peak(lua_State *L)
{
	rf_ctx *ctx = rf_lua_ctx_if_created(L);
	if (ctx)
		rf_ctx_memory_reset_peak(ctx);
	return 0;
}

/* refract.finish(): waits until the device has run everything recorded. */
static int l_finish(lua_State *L)
{
	rf_ctx *ctx = rf_lua_ctx_if_created(L);
	enum rf_status s = ctx ? rf_ctx_finish(ctx) : RF_OK;
	if (s != RF_OK)
		return rf_lua_fail(L, s, "finish");
	return 0;
}

/* refract.profile(on) turns per-kernel timing on or off; refract.profile() returns
** {{name=, dispatches=, ms=}, ...} sorted by time. */
static int l_profile(lua_State *L)
{
	rf_ctx *ctx = rf_lua_ctx(L);
	if (!lua_isnoneornil(L, 1)) {
		rf_ctx_set_profiling(ctx, lua_toboolean(L, 1));
		rf_ctx_profile_reset(ctx);
		return 0;
	}
	enum rf_status s = rf_ctx_finish(ctx);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "profile");
	struct rf_profile_entry e[128];
	uint32_t n = rf_ctx_profile(ctx, e, 128);
	lua_createtable(L, (int)n, 0);
	for (uint32_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, e[i].name);
		lua_setfield(L, -2, "name");
		lua_pushinteger(L, (lua_Integer)e[i].dispatches);
		lua_setfield(L, -2, "dispatches");
		lua_pushnumber(L, e[i].total_ns / 1e6);
		lua_setfield(L, -2, "ms");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* refract.validation() -> messages reported so far, and whether the layer is active. */
static int l_validation(lua_State *L)
{
	rf_ctx *ctx = rf_lua_ctx(L);
	lua_pushinteger(L, rf_validation_total());
	lua_pushboolean(L, rf_ctx_validation_enabled(ctx));
	return 2;
}

void rf_lua_open_device(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "devices", l_devices },
		{ "device", l_device },
		{ "memory", l_memory },
		{ "reset_peak_memory", l_reset_peak },
		{ "finish", l_finish },
		{ "profile", l_profile },
		{ "validation", l_validation },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
