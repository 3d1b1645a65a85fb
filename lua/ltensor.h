/*
** ltensor.h: the refract.Tensor handle shared by every binding file. A handle owns one
** rf_tensor; `free`, `<close>` and the collector release it (idempotently), and a freed
** handle raises a clear error on use. Lua layer (L6).
*/
#ifndef RF_LUA_LTENSOR_H
#define RF_LUA_LTENSOR_H

#include "lhost.h"
#include "tensor.h"

#define RF_TENSOR_MT "refract.Tensor"

typedef struct rf_ltensor {
	rf_tensor *t;   /* NULL once freed (or before acquisition succeeds) */
} rf_ltensor;

/* Pushes an empty handle: acquire the tensor after, so an error cannot leak it. */
rf_ltensor *rf_lua_push_tensor_handle(lua_State *L);
/* Pushes a handle that takes ownership of `t`. */
void rf_lua_push_tensor(lua_State *L, rf_tensor *t);
/* The live tensor at `idx`, or an argument error (wrong type or freed). */
rf_tensor *rf_lua_check_tensor(lua_State *L, int idx);
rf_tensor *rf_lua_opt_tensor(lua_State *L, int idx);

/* Creates a device tensor, collecting garbage and retrying once on device OOM. */
rf_tensor *rf_lua_new_device_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s);
/* Runs `s = call` and, if it failed for device memory, a full collection and one retry. */
#define RF_LUA_RETRY_OOM(L, s, call) \
	do { \
		(s) = (call); \
		if ((s) == RF_ERR_OOM_DEVICE) { \
			lua_gc((L), LUA_GCCOLLECT); \
			(s) = (call); \
		} \
	} while (0)

/* Reads a shape from a Lua table of integers (or from varargs starting at idx). */
struct rf_shape rf_lua_check_shape(lua_State *L, int idx);
/* Reads a dtype name ("f32", "float32", "F32", ...) at idx, default `def`. */
enum rf_dtype rf_lua_opt_dtype(lua_State *L, int idx, enum rf_dtype def);

/* Floating tensors live on the device; integer tensors (tokens, labels, masks) on the host. */
bool rf_lua_dtype_on_device(enum rf_dtype dt);
/* All values of a tensor as doubles, in a userdata left on the stack top (downloads
** device tensors). */
double *rf_lua_tensor_values(lua_State *L, const rf_tensor *t);

#endif
