/*
** launch.c: shared launcher helpers. Compute layer (L4).
*/
#include "launch.h"
#include "status.h"

enum rf_status rf_launch_pipeline(rf_ctx *ctx, enum rf_shader_id id, const uint32_t *spec,
				  uint32_t nspec, rf_pipeline **out)
{
	return rf_pipeline_get(ctx, rf_shader(id), spec, nspec, out);
}

enum rf_status rf_launch_1d(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
			    uint32_t nargs, const void *push, uint32_t push_size,
			    uint64_t n, uint32_t local)
{
	uint64_t groups = RF_CEIL_DIV(n, local);
	uint32_t max_x = rf_ctx_caps(ctx)->max_workgroup_count[0];
	if (max_x > 65535)
		max_x = 65535;
	uint64_t gx = groups < max_x ? groups : max_x;
	uint64_t gy = gx ? RF_CEIL_DIV(groups, gx) : 0;
	if (gy > rf_ctx_caps(ctx)->max_workgroup_count[1])
		return rf_error(RF_ERR_UNSUPPORTED, "%llu elements exceed the device's grid",
				(unsigned long long)n);
	return rf_cmd_dispatch(ctx, p, args, nargs, push, push_size, (uint32_t)gx, (uint32_t)gy, 1);
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
