/*
** launch.h: helpers every op launcher shares: pipeline lookup with the workgroup size as
** specialization constant 0, 1-D grids that respect the device's workgroup-count limit,
** windows that keep each storage binding inside maxStorageBufferRange, and argument
** checks that produce clear messages. Internal to compute/ops. Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_LAUNCH_H
#define RF_COMPUTE_OPS_LAUNCH_H

#include "cmd.h"
#include "context.h"
#include "tensor.h"
#include "shader_table.h"

/* Pipeline of `id` with spec[0] = local size and further constants after it. */
enum rf_status rf_launch_pipeline(rf_ctx *ctx, enum rf_shader_id id, const uint32_t *spec,
				  uint32_t nspec, rf_pipeline **out);

/* Dispatches `n` invocations of a 1-D kernel (local size `local`, using flat_index()). */
enum rf_status rf_launch_1d(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
			    uint32_t nargs, const void *push, uint32_t push_size,
			    uint64_t n, uint32_t local);

/* Dispatches `groups` workgroups spread over x and y (x <= 65535); the shader numbers
** them with flat_group() and ignores ids >= groups. */
enum rf_status rf_launch_groups(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
				uint32_t nargs, const void *push, uint32_t push_size,
				uint64_t groups);

/* Checks that `t` is a device tensor of dtype `dt`; `what` names it in the message. */
enum rf_status rf_check_device(const rf_tensor *t, enum rf_dtype dt, const char *op,
			       const char *what);

/* {===== storage windows
** A storage binding may hold at most maxStorageBufferRange bytes (128 MiB on lavapipe)
** and must start on the storage alignment. Launchers split big tensors into windows of
** whole items (elements, rows, batches): window k covers items [k*w, (k+1)*w). */

/* The largest item count w such that, for each of the `n` tensors bound in windows
** (item_bytes[i] bytes per item), w items fit in one storage binding and every multiple
** of w items starts on the storage alignment (the tensors themselves start on
** RF_MEM_ALIGN). RF_ERR_UNSUPPORTED, naming `op`, if not even one aligned step fits. */
enum rf_status rf_window_items(const rf_ctx *ctx, const uint64_t *item_bytes, uint32_t n,
			       const char *op, uint64_t *out);

/* A binding of `count` items of `item_bytes` bytes from item `first` of `t`. */
struct rf_arg rf_arg_items(const rf_tensor *t, uint64_t first, uint64_t count,
			   uint64_t item_bytes);

/* }===== */

/* Index of the tensor's first element in a texel view of `texel_bytes` texels. */
uint32_t rf_texel_base(const rf_tensor *t, uint32_t texel_bytes);

/* True when the device is a CPU implementation (lavapipe, SwiftShader): kernels then
** map lanes to rows and avoid shared memory and barriers (see shared/LAVAPIPE.md).
** REFRACT_KERNELS=gpu or =cpu in the environment when the context is created overrides
** the choice (rf_caps.rows; for tests). */
bool rf_launch_cpu_like(const rf_ctx *ctx);

#endif
