/*
** l_resize.c: refract.resize, bilinear resizing of float maps with half-pixel centres
** (PyTorch's F.interpolate(mode="bilinear", align_corners=False), no antialiasing): how
** the paper's segmentation upsamples a patch map to the image. Computed on the host in
** double precision (rf_resize_bilinear); the result goes where f32 tensors live.
** Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "heatmap.h"
#include "status.h"

#include <string.h>

/* As the pictures of l_png.c: 32768 per side, 2^28 values per channel at most. */
#define MAX_SIDE 32768
#define MAX_PIXELS (1ll << 28)

static int check_side(lua_State *L, int idx, const char *what)
{
	int isint;
	lua_Integer v = lua_tointegerx(L, idx, &isint);
	if (!isint || v < 1 || v > MAX_SIDE)
		luaL_error(L, "resize: %s must be an integer in 1..%d, not %s", what, MAX_SIDE,
			   lua_isnoneornil(L, idx) ? "nothing" : luaL_tolstring(L, idx, NULL));
	return (int)v;
}

/* refract.resize(map, h, w) -> f32 [h, w] for a map [h0, w0], or [C, h, w] for [C, h0, w0]
** (each channel resized alike). Any dtype in; along each axis output o reads the source
** at max((o + 0.5) * in / out - 0.5, 0) between its two neighbours (the last one
** repeated at the edge). */
static int l_resize(lua_State *L)
{
	const rf_tensor *t = rf_lua_check_tensor(L, 1);
	int out_h = check_side(L, 2, "h"), out_w = check_side(L, 3, "w");
	const struct rf_shape *s = &t->shape;
	int nd = s->ndim;
	if ((nd != 2 && nd != 3) || s->dim[nd - 2] < 1 || s->dim[nd - 1] < 1 || s->dim[nd - 2] > MAX_SIDE ||
	    s->dim[nd - 1] > MAX_SIDE || (nd == 3 && s->dim[0] < 1))
		return luaL_error(L, "resize: the map must be [h, w] or [C, h, w] with sides in 1..%d, not %s",
				  MAX_SIDE, rf_lua_push_shape_str(L, s));
	if ((int64_t)out_h * out_w > MAX_PIXELS)
		return luaL_error(L, "resize: %d x %d is over 2^28 values per channel", out_h, out_w);
	int64_t channels = nd == 3 ? s->dim[0] : 1, h = s->dim[nd - 2], w = s->dim[nd - 1];
	if (channels * out_h * out_w > MAX_PIXELS)
		return luaL_error(L, "resize: %lld channels of %d x %d is over 2^28 values",
				  (long long)channels, out_h, out_w);
	const double *v = rf_lua_tensor_values(L, t);
	size_t in_n = (size_t)(h * w), out_n = (size_t)out_h * (size_t)out_w;
	float *in = lua_newuserdatauv(L, in_n * sizeof *in, 0);
	float *out = lua_newuserdatauv(L, (size_t)channels * out_n * sizeof *out, 0);
	for (int64_t c = 0; c < channels; c++) {
		for (size_t i = 0; i < in_n; i++)
			in[i] = (float)v[(size_t)c * in_n + i];
		rf_resize_bilinear(in, (int)h, (int)w, out + (size_t)c * out_n, out_h, out_w);
	}
	struct rf_shape os = nd == 3 ? rf_shape_of(3, channels, (int64_t)out_h, (int64_t)out_w)
				     : rf_shape_of(2, (int64_t)out_h, (int64_t)out_w);
	rf_tensor *r = rf_lua_new_device_tensor(L, RF_F32, &os);
	enum rf_status st = rf_tensor_upload(r, out, rf_tensor_nbytes(r));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "resize");
	return 1;
}

void rf_lua_open_resize(lua_State *L)
{
	lua_pushcfunction(L, l_resize);
	lua_setfield(L, -2, "resize");
}
