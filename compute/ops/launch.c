/*
** launch.c: shared launcher helpers: grids, storage windows, texel offsets and argument
** checks. Compute layer (L4).
*/
#include "launch.h"
#include "status.h"

enum rf_status rf_launch_pipeline(rf_ctx *ctx, enum rf_shader_id id, const uint32_t *spec,
				  uint32_t nspec, rf_pipeline **out)
{
	return rf_pipeline_get(ctx, rf_shader(id), spec, nspec, out);
}

/* Splits `groups` workgroups into an x by y grid with x under both the device limit and
** 65535, the guaranteed minimum some drivers report. */
static enum rf_status grid_2d(rf_ctx *ctx, uint64_t groups, uint32_t *gx, uint32_t *gy)
{
	uint32_t max_x = rf_ctx_caps(ctx)->max_workgroup_count[0];
	if (max_x > 65535)
		max_x = 65535;
	uint64_t x = groups < max_x ? groups : max_x;
	uint64_t y = x ? RF_CEIL_DIV(groups, x) : 0;
	if (y > rf_ctx_caps(ctx)->max_workgroup_count[1])
		return rf_error(RF_ERR_UNSUPPORTED, "%llu workgroups exceed the device's grid",
				(unsigned long long)groups);
	*gx = (uint32_t)x;
	*gy = (uint32_t)y;
	return RF_OK;
}

enum rf_status rf_launch_1d(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
			    uint32_t nargs, const void *push, uint32_t push_size,
			    uint64_t n, uint32_t local)
{
	uint32_t gx, gy;
	enum rf_status s = grid_2d(ctx, RF_CEIL_DIV(n, local), &gx, &gy);
	if (s != RF_OK)
		return s;
	return rf_cmd_dispatch(ctx, p, args, nargs, push, push_size, gx, gy, 1);
}

enum rf_status rf_launch_groups(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
				uint32_t nargs, const void *push, uint32_t push_size,
				uint64_t groups)
{
	uint32_t gx, gy;
	enum rf_status s = grid_2d(ctx, groups, &gx, &gy);
	if (s != RF_OK)
		return s;
	return rf_cmd_dispatch(ctx, p, args, nargs, push, push_size, gx, gy, 1);
}

enum rf_status rf_check_device(const rf_tensor *t, enum rf_dtype dt, const char *op,
			       const char *what)
{
	if (!t)
		return rf_error(RF_ERR_INVALID, "%s: %s is missing", op, what);
	if (!rf_tensor_on_device(t))
		return rf_error(RF_ERR_INVALID, "%s: %s must be a device tensor", op, what);
	if (t->dtype != dt)
		return rf_error(RF_ERR_INVALID, "%s: %s must be %s, not %s", op, what, rf_dtype_name(dt),
				rf_dtype_name(t->dtype));
	return RF_OK;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t r = a % b;
		a = b;
		b = r;
	}
	return a;
}

enum rf_status rf_window_items(const rf_ctx *ctx, const uint64_t *item_bytes, uint32_t n,
			       const char *op, uint64_t *out)
{
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	uint64_t align = caps->storage_align ? caps->storage_align : 1;
	uint64_t step = 1, largest = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!item_bytes[i])
			continue;
		/* Windows of s items advance this tensor's offset by a multiple of the alignment;
		** the common step is the least common multiple of every tensor's s. */
		uint64_t s = align / gcd_u64(item_bytes[i], align);
		step = step / gcd_u64(step, s) * s;
		largest = RF_MAX(largest, item_bytes[i]);
	}
	if (!largest) {
		*out = UINT32_MAX;
		return RF_OK;
	}
	uint64_t w = caps->max_storage_range / largest / step * step;
	if (w == 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %llu items of %llu bytes exceed the device's "
				"%.1f MiB storage-buffer range", op, (unsigned long long)step,
				(unsigned long long)largest, caps->max_storage_range / 1048576.0);
	/* Indices inside a window are 32-bit in the shaders. */
	*out = RF_MIN(w, (uint64_t)UINT32_MAX / step * step);
	return RF_OK;
}

struct rf_arg rf_arg_items(const rf_tensor *t, uint64_t first, uint64_t count,
			   uint64_t item_bytes)
{
	return (struct rf_arg){ &t->mem, first * item_bytes, count * item_bytes };
}

uint32_t rf_texel_base(const rf_tensor *t, uint32_t texel_bytes)
{
	return (uint32_t)(t->mem.offset / texel_bytes);
}

bool rf_launch_cpu_like(const rf_ctx *ctx)
{
	/* REFRACT_KERNELS=gpu|cpu (rf_caps.rows) forces one layout, so that the GPU layouts
	** (shared memory, barriers) are tested on a CPU device too. */
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	if (caps->rows != RF_ROWS_AUTO)
		return caps->rows == RF_ROWS_CPU;
	return caps->device_class == RF_DEVICE_CPU;
}
