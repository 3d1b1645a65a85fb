/*
** ltensor.h: the refract.Tensor handle shared by every binding file, and the helpers
** the tensor files share: argument checks in the 1-based Lua convention (converted to
** 0-based here and nowhere else), operands converted to f32 device tensors, new
** tensors placed by dtype, conversions and copies. A handle owns one rf_tensor; `free`,
** `<close>` and the collector release it (idempotently), and a freed handle raises a
** clear error on use. Lua layer (L6).
**
** Where tensors live: f32 and f16 on the device, integer dtypes (i64, i32, u8) and bf16
** on the host. Every function that allocates pushes the new handle before acquiring its
** tensor, so a Lua error at any point leaves nothing unowned (STYLE.md §2c).
*/
#ifndef RF_LUA_LTENSOR_H
#define RF_LUA_LTENSOR_H

#include "l_util.h"
#include "tensor.h"

#define RF_TENSOR_MT "refract.Tensor"

typedef struct rf_ltensor {
	rf_tensor *t;   /* NULL once freed (or before acquisition succeeds) */
	/* A tensor freed from inside a finalizer, kept until the handle is collected or
	** freed again outside one: a finalizer may run in the middle of any binding (a
	** collection step at an allocation), and that binding may be using this tensor. */
	rf_tensor *pending;
} rf_ltensor;

/* {===== handles */

/* Pushes an empty handle: acquire the tensor after, so an error cannot leak it. */
rf_ltensor *rf_lua_push_tensor_handle(lua_State *L);
/* The live tensor at `idx`, or an argument error (wrong type or freed). */
rf_tensor *rf_lua_check_tensor(lua_State *L, int idx);
/* The tensor at `idx` if it is a live tensor handle, else NULL. */
rf_tensor *rf_lua_opt_tensor(lua_State *L, int idx);

/* Creates a device tensor (pushed), collecting garbage and retrying once on device OOM. */
rf_tensor *rf_lua_new_device_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s);
/* The same with a failure raised as "<what>: <problem>" (what names the file or the call). */
rf_tensor *rf_lua_new_device_tensor_for(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
					const char *what);
/* Creates a zero-filled host tensor (pushed). */
rf_tensor *rf_lua_new_host_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s);
/* Creates (pushes) a tensor on the device or on the host. */
rf_tensor *rf_lua_new_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
			     bool device);

/* }===== */

/* {===== dtypes and shapes */

/* Reads a shape from a Lua table of integers (or from varargs starting at idx). */
struct rf_shape rf_lua_check_shape(lua_State *L, int idx);
/* Reads up to RF_MAX_DIMS integers from a table at idx, or from the integers that follow
** from idx on (varargs); returns how many. No sign check. */
int rf_lua_check_int_list(lua_State *L, int idx, int64_t *out);
/* Reads a dtype name ("f32", "float32", "F32", ...) at idx, default `def`. */
enum rf_dtype rf_lua_opt_dtype(lua_State *L, int idx, enum rf_dtype def);
/* "f32", "f16", "bf16", "i64", "i32", "u8". */
const char *rf_lua_dtype_str(enum rf_dtype dt);
bool rf_lua_dtype_is_int(enum rf_dtype dt);
/* Floating tensors live on the device; integer tensors (tokens, labels, masks) on the host. */
bool rf_lua_dtype_on_device(enum rf_dtype dt);
/* The value at `idx` (a number or a boolean) for integer dtype dt: a Lua integer as it
** is, a float only if integral; either must fit dt, else "<what>: <v> is not a valid
** <dtype> value". Never through a double, which rounds 2^53 + 1 and math.maxinteger. */
int64_t rf_lua_int_value(lua_State *L, int idx, enum rf_dtype dt, const char *what);
/* The same for a double and for an int64. */
int64_t rf_lua_int_from_double(lua_State *L, double d, enum rf_dtype dt, const char *what);
int64_t rf_lua_int_in_range(lua_State *L, int64_t v, enum rf_dtype dt, const char *what);
/* Pushes "[2, 3]" and returns it (for messages). */
const char *rf_lua_push_shape_str(lua_State *L, const struct rf_shape *s);

/* }===== */

/* {===== dimensions and indices (1-based in Lua, 0-based in C) */

/* Dimension argument at `arg` (1..ndim, or -ndim..-1 from the end) as a 0-based axis. */
int rf_lua_check_dim(lua_State *L, int arg, int ndim);
/* Same, with default `def` (a Lua-side dimension such as -1) when the argument is nil. */
int rf_lua_opt_dim(lua_State *L, int arg, int ndim, int def);
/* Turns the Lua dimension number `d` into an axis, or raises naming `arg`. */
int rf_lua_dim_index(lua_State *L, int arg, lua_Integer d, int ndim);
/* A dims argument: nil = every axis; a number or a table of numbers. Returns the axis
** mask (bit d = axis d); repeated axes are an error. */
uint32_t rf_lua_opt_dims(lua_State *L, int arg, int ndim);
/* The index `i` (1..size or -size..-1) along axis `axis` as 0-based, or an argument
** error at `arg` giving the valid range. */
int64_t rf_lua_index(lua_State *L, int arg, lua_Integer i, int64_t size, int axis);

/* }===== */

/* {===== operands and conversions */

/* The value at `arg` as an f32 device tensor: numbers become 0-d tensors; tensors of
** another dtype or on the host are converted (uploaded). A converted value replaces the
** argument on the stack, which keeps it alive; `arg` must be absolute. */
rf_tensor *rf_lua_f32_arg(lua_State *L, int arg);
/* Pushes a copy of `t` with dtype `dt`, on the device or the host. Float-to-integer
** conversion truncates toward zero and saturates (NaN becomes 0). */
rf_tensor *rf_lua_convert(lua_State *L, const rf_tensor *t, enum rf_dtype dt, bool device);
/* Pushes a copy of `t` (same dtype and place) with shape `s` (same element count). */
rf_tensor *rf_lua_copy_reshaped(lua_State *L, const rf_tensor *t, const struct rf_shape *s);
/* Pushes y = x permuted (y's axis i is x's axis perm[i]); same dtype and place. */
rf_tensor *rf_lua_permuted(lua_State *L, const rf_tensor *x, const int *perm);
/* All values of a tensor as doubles, in a userdata left on the stack top (downloads
** device tensors). */
double *rf_lua_tensor_values(lua_State *L, const rf_tensor *t);
/* The bytes of a tensor on the host: its own for host tensors (a nil is pushed), else a
** downloaded copy in a userdata left on the stack top. */
const void *rf_lua_tensor_bytes(lua_State *L, const rf_tensor *t);
/* Pushes element i of host bytes of dtype dt: a Lua integer for integer dtypes (exact),
** else a float. */
void rf_lua_push_element(lua_State *L, enum rf_dtype dt, const void *raw, int64_t i);
/* Raises "<what>: shapes A and B do not broadcast (dimension d: x vs y)" or fills out. */
void rf_lua_broadcast(lua_State *L, const struct rf_shape *a, const struct rf_shape *b,
		      struct rf_shape *out, const char *what);

/* }===== */

/* {===== per-file method and function tables (registered by l_tensor_meta.c) */

/* shape, dtype, ndim, numel, device, free, is_freed (l_tensor.c). */
extern const luaL_Reg rf_lua_tensor_core_methods[];
/* __gc and __close (one idempotent release), __len (l_tensor.c). */
extern const luaL_Reg rf_lua_tensor_core_meta[];

extern const luaL_Reg rf_lua_tensor_create_functions[];
extern const luaL_Reg rf_lua_tensor_convert_methods[];
extern const luaL_Reg rf_lua_tensor_index_methods[];
extern const luaL_Reg rf_lua_tensor_math_methods[];
extern const luaL_Reg rf_lua_tensor_math_meta[];
extern const luaL_Reg rf_lua_tensor_math_functions[];
extern const luaL_Reg rf_lua_tensor_reduce_methods[];
extern const luaL_Reg rf_lua_tensor_shape_methods[];
extern const luaL_Reg rf_lua_linalg_methods[];
extern const luaL_Reg rf_lua_linalg_functions[];

/* tostring(t) (l_tensor_convert.c). */
int rf_lua_tensor_tostring(lua_State *L);
/* t[i] and t[i] = v (l_tensor_index.c): select/assign along dimension 1. */
int rf_lua_tensor_getitem(lua_State *L);
int rf_lua_tensor_setitem(lua_State *L);

/* }===== */

#endif
