/*
** launch.h: helpers every op launcher shares: pipeline lookup with the workgroup size as
** specialization constant 0, 1-D grids that respect the device's workgroup-count limit,
** and argument checks that produce clear messages. Compute layer (L4).
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

/* Checks that `t` is a device tensor of dtype `dt`; `what` names it in the message. */
enum rf_status rf_check_device(const rf_tensor *t, enum rf_dtype dt, const char *op,
			       const char *what);

#endif
