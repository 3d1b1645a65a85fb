/*
** tensor.c: tensor creation, host/device movement, shapes and dtype conversion.
** Runtime layer (L3).
*/
#include "tensor.h"
#include "context.h"
#include "host_memory.h"
#include "status.h"
#include "transfer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {===== dtypes and shapes */

static const struct { const char *name; size_t size; } dtypes[RF_DTYPE_COUNT] = {
	[RF_F32] = { "F32", 4 }, [RF_F16] = { "F16", 2 }, [RF_BF16] = { "BF16", 2 },
	[RF_I64] = { "I64", 8 }, [RF_I32] = { "I32", 4 }, [RF_U8] = { "U8", 1 },
};

size_t rf_dtype_size(enum rf_dtype dt)
{
	return dtypes[dt].size;
}

const char *rf_dtype_name(enum rf_dtype dt)
{
	return dtypes[dt].name;
}

bool rf_dtype_parse(const char *name, enum rf_dtype *out)
{
	for (int i = 0; i < RF_DTYPE_COUNT; i++)
		if (!strcmp(name, dtypes[i].name)) {
			*out = (enum rf_dtype)i;
			return true;
		}
	return false;
}

struct rf_shape rf_shape_make(int ndim, const int64_t *dim)
{
	struct rf_shape s = { 0 };
	RF_ASSERT(ndim >= 0 && ndim <= RF_MAX_DIMS);
	s.ndim = ndim;
	for (int i = 0; i < ndim; i++)
		s.dim[i] = dim[i];
	return s;
}

struct rf_shape rf_shape_of(int ndim, ...)
{
	struct rf_shape s = { 0 };
	RF_ASSERT(ndim >= 0 && ndim <= RF_MAX_DIMS);
	va_list ap;
	va_start(ap, ndim);
	s.ndim = ndim;
	for (int i = 0; i < ndim; i++)
		s.dim[i] = va_arg(ap, int64_t);
	va_end(ap);
	return s;
}

int64_t rf_shape_numel(const struct rf_shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->ndim; i++)
		n *= s->dim[i];
	return n;
}

bool rf_shape_equal(const struct rf_shape *a, const struct rf_shape *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (int i = 0; i < a->ndim; i++)
		if (a->dim[i] != b->dim[i])
			return false;
	return true;
}

char *rf_shape_str(const struct rf_shape *s, char *buf, size_t size)
{
	size_t at = 0;
	at += (size_t)snprintf(buf + at, size - RF_MIN(at, size), "[");
	for (int i = 0; i < s->ndim && at < size; i++)
		at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
	if (at < size)
		snprintf(buf + at, size - at, "]");
	return buf;
}

enum rf_status rf_shape_check(const struct rf_shape *s, enum rf_dtype dt, const char *what)
{
	if (s->ndim < 0 || s->ndim > RF_MAX_DIMS)
		return rf_error(RF_ERR_INVALID, "%s: %d dimensions (at most %d)", what, s->ndim, RF_MAX_DIMS);
	/* Every dimension counts, a zero one too: [0, 2^62, 2^62] holds no element, but the
	** strides of its other dimensions (products of the dimensions after them) overflow. */
	uint64_t bytes = rf_dtype_size(dt);
	for (int i = 0; i < s->ndim; i++) {
		if (s->dim[i] < 0)
			return rf_error(RF_ERR_INVALID, "%s: negative dimension %lld", what,
					(long long)s->dim[i]);
		uint64_t d = s->dim[i] ? (uint64_t)s->dim[i] : 1;
		if (bytes > (UINT64_MAX >> 2) / d) {
			char buf[200];
			return rf_error(RF_ERR_INVALID, "%s: shape %s too large (its size, zero "
					"dimensions aside, passes 2^62 bytes)", what,
					rf_shape_str(s, buf, sizeof buf));
		}
		bytes *= d;
	}
	return RF_OK;
}

/* }===== */

/* {===== lifetime */

static enum rf_status alloc_record(enum rf_dtype dt, const struct rf_shape *s, rf_tensor **out)
{
	*out = NULL;
	enum rf_status st = rf_shape_check(s, dt, "tensor");
	if (st != RF_OK)
		return st;
	rf_tensor *t = calloc(1, sizeof *t);
	if (!t)
		return rf_error(RF_ERR_OOM_HOST, "allocating a tensor record");
	t->dtype = dt;
	t->shape = *s;
	*out = t;
	return RF_OK;
}

enum rf_status rf_tensor_create(rf_ctx *ctx, enum rf_dtype dt, const struct rf_shape *s,
				rf_tensor **out)
{
	rf_tensor *t;
	enum rf_status st = alloc_record(dt, s, &t);
	if (st != RF_OK)
		return st;
	/* Whole 32-bit words, so fills and word-wise kernels never run past the end. */
	st = rf_mem_alloc(ctx, RF_MAX(RF_ALIGN_UP(rf_tensor_nbytes(t), 4), 4), &t->mem);
	if (st != RF_OK) {
		free(t);
		*out = NULL;
		return st;
	}
	t->ctx = rf_ctx_retain(ctx);
	*out = t;
	return RF_OK;
}

enum rf_status rf_tensor_zeros(rf_ctx *ctx, enum rf_dtype dt, const struct rf_shape *s,
			       rf_tensor **out)
{
	enum rf_status st = rf_tensor_create(ctx, dt, s, out);
	if (st != RF_OK)
		return st;
	st = rf_mem_fill(ctx, &(*out)->mem, 0, (*out)->mem.size, 0);
	if (st != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return st;
}

enum rf_status rf_tensor_create_host(enum rf_dtype dt, const struct rf_shape *s, rf_tensor **out)
{
	rf_tensor *t;
	enum rf_status st = alloc_record(dt, s, &t);
	if (st != RF_OK)
		return st;
	uint64_t bytes = rf_tensor_nbytes(t);
	if (bytes > rf_host_memory_limit()) {
		free(t);
		*out = NULL;
		return rf_error(RF_ERR_OOM_HOST, "a host tensor of %llu bytes is larger than the host "
				"memory refract may use (%llu bytes: the machine's, or REFRACT_HOST_BUDGET)",
				(unsigned long long)bytes,
				(unsigned long long)rf_host_memory_limit());
	}
	t->host = calloc(1, bytes ? bytes : 1);
	if (!t->host) {
		free(t);
		*out = NULL;
		return rf_error(RF_ERR_OOM_HOST, "allocating %llu bytes for a host tensor",
				(unsigned long long)bytes);
	}
	*out = t;
	return RF_OK;
}

enum rf_status rf_tensor_from_host_data(enum rf_dtype dt, const struct rf_shape *s,
					const void *data, rf_tensor **out)
{
	enum rf_status st = rf_tensor_create_host(dt, s, out);
	if (st == RF_OK)
		memcpy((*out)->host, data, rf_tensor_nbytes(*out));
	return st;
}

void rf_tensor_destroy(rf_tensor *t)
{
	if (!t)
		return;
	if (t->ctx) {
		rf_mem_free(t->ctx, &t->mem);
		rf_ctx_release(t->ctx);
	}
	free(t->host);
	free(t);
}

/* }===== */

/* {===== movement */

enum rf_status rf_tensor_upload(rf_tensor *dst, const void *data, uint64_t nbytes)
{
	if (!dst->ctx)
		return rf_error(RF_ERR_INVALID, "upload into a host tensor");
	if (nbytes != rf_tensor_nbytes(dst))
		return rf_error(RF_ERR_INVALID, "upload of %llu bytes into a %llu-byte tensor",
				(unsigned long long)nbytes, (unsigned long long)rf_tensor_nbytes(dst));
	return rf_mem_upload(dst->ctx, &dst->mem, 0, data, nbytes);
}

enum rf_status rf_tensor_download(const rf_tensor *src, void *data, uint64_t nbytes)
{
	if (nbytes != rf_tensor_nbytes(src))
		return rf_error(RF_ERR_INVALID, "download of a %llu-byte tensor into %llu bytes",
				(unsigned long long)rf_tensor_nbytes(src), (unsigned long long)nbytes);
	if (!src->ctx) {
		memcpy(data, src->host, nbytes);
		return RF_OK;
	}
	return rf_mem_download(src->ctx, &src->mem, 0, data, nbytes);
}

enum rf_status rf_tensor_to_device(rf_ctx *ctx, const rf_tensor *src, rf_tensor **out)
{
	enum rf_status st = rf_tensor_create(ctx, src->dtype, &src->shape, out);
	if (st != RF_OK)
		return st;
	if (src->ctx)
		st = rf_mem_copy(ctx, &src->mem, 0, &(*out)->mem, 0, rf_tensor_nbytes(src));
	else
		st = rf_tensor_upload(*out, src->host, rf_tensor_nbytes(src));
	if (st != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return st;
}

enum rf_status rf_tensor_to_host(const rf_tensor *src, rf_tensor **out)
{
	enum rf_status st = rf_tensor_create_host(src->dtype, &src->shape, out);
	if (st != RF_OK)
		return st;
	st = rf_tensor_download(src, (*out)->host, rf_tensor_nbytes(src));
	if (st != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return st;
}

enum rf_status rf_tensor_rows(rf_ctx *ctx, const rf_tensor *t, int64_t first, int64_t count,
			      rf_tensor **out)
{
	struct rf_shape s = t->shape;
	s.dim[0] = count;
	enum rf_status st = rf_tensor_create(ctx, t->dtype, &s, out);
	if (st != RF_OK)
		return st;
	uint64_t row = rf_tensor_nbytes(t) / (uint64_t)t->shape.dim[0];
	if (rf_tensor_on_device(t))
		st = rf_mem_copy(ctx, &t->mem, (uint64_t)first * row, &(*out)->mem, 0, (uint64_t)count * row);
	else
		st = rf_tensor_upload(*out, (const char *)t->host + (uint64_t)first * row, (uint64_t)count * row);
	if (st != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return st;
}

enum rf_status rf_tensor_reshape(rf_tensor *t, const struct rf_shape *s)
{
	char a[96], b[96];
	if (rf_shape_numel(s) != rf_tensor_numel(t))
		return rf_error(RF_ERR_INVALID, "cannot reshape %s to %s: element counts differ",
				rf_shape_str(&t->shape, a, sizeof a), rf_shape_str(s, b, sizeof b));
	t->shape = *s;
	return RF_OK;
}

/* }===== */

/* {===== conversion */

float rf_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t man = h & 0x3ff;
	float f;
	if (exp == 0)
		f = ldexpf((float)man, -24);                 /* zero or subnormal */
	else if (exp == 31)
		f = man ? NAN : INFINITY;
	else
		f = ldexpf((float)(man | 0x400), (int)exp - 25);
	uint32_t bits;
	memcpy(&bits, &f, 4);
	bits |= sign;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t rf_float_to_half(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t absx = x & 0x7fffffff;
	if (absx >= 0x7f800000)                               /* inf or nan */
		return sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0);
	if (absx >= 0x477ff000)                               /* rounds to >= 65520: inf */
		return sign | 0x7c00;
	if (absx < 0x38800000) {                              /* subnormal half or zero */
		float a;
		memcpy(&a, &absx, 4);
		/* Scale so the half's subnormal unit is 1, then round to nearest even. */
		return sign | (uint16_t)nearbyintf(a * 16777216.0f);
	}
	uint32_t man = absx & 0x7fffff;
	uint32_t exp = (absx >> 23) - 112;
	uint32_t h = (exp << 10) | (man >> 13);
	uint32_t rest = man & 0x1fff;
	if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
		h++;
	return sign | (uint16_t)h;
}

static float bf16_to_float(uint16_t b)
{
	uint32_t bits = (uint32_t)b << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

static uint16_t float_to_bf16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((x >> 16) | 0x40);
	x += 0x7fff + ((x >> 16) & 1);
	return (uint16_t)(x >> 16);
}

void rf_convert_to_f32(enum rf_dtype dt, const void *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (dt) {
		case RF_F32: { float v; memcpy(&v, (const char *)src + 4 * i, 4); dst[i] = v; break; }
		case RF_F16: { uint16_t v; memcpy(&v, (const char *)src + 2 * i, 2); dst[i] = rf_half_to_float(v); break; }
		case RF_BF16: { uint16_t v; memcpy(&v, (const char *)src + 2 * i, 2); dst[i] = bf16_to_float(v); break; }
		case RF_I64: { int64_t v; memcpy(&v, (const char *)src + 8 * i, 8); dst[i] = (float)v; break; }
		case RF_I32: { int32_t v; memcpy(&v, (const char *)src + 4 * i, 4); dst[i] = (float)v; break; }
		case RF_U8: dst[i] = ((const uint8_t *)src)[i]; break;
		default: RF_ASSERT(!"dtype");
		}
	}
}

bool rf_find_nonfinite(enum rf_dtype dt, const void *data, size_t n, size_t *at)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++) {
		bool bad = false;
		if (dt == RF_F32) {
			uint32_t v;
			memcpy(&v, p + 4 * i, 4);
			bad = (v & 0x7f800000u) == 0x7f800000u;
		} else if (dt == RF_F16 || dt == RF_BF16) {
			uint16_t v;
			memcpy(&v, p + 2 * i, 2);
			uint16_t exp = dt == RF_F16 ? 0x7c00 : 0x7f80;
			bad = (v & exp) == exp;
		} else {
			return false;
		}
		if (bad) {
			*at = i;
			return true;
		}
	}
	return false;
}

/* Float to integer truncates toward zero and saturates, NaN becoming 0: a cast of a value
** out of range is undefined behaviour. */
static int64_t saturate_i64(float f)
{
	if (isnan(f))
		return 0;
	if (f >= 9223372036854775808.0f)
		return INT64_MAX;
	return f <= -9223372036854775808.0f ? INT64_MIN : (int64_t)f;
}

static int32_t saturate_i32(float f)
{
	if (isnan(f))
		return 0;
	if (f >= 2147483648.0f)
		return INT32_MAX;
	return f <= -2147483648.0f ? INT32_MIN : (int32_t)f;
}

void rf_convert_from_f32(enum rf_dtype dt, const float *src, void *dst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (dt) {
		case RF_F32: memcpy((char *)dst + 4 * i, &src[i], 4); break;
		case RF_F16: { uint16_t v = rf_float_to_half(src[i]); memcpy((char *)dst + 2 * i, &v, 2); break; }
		case RF_BF16: { uint16_t v = float_to_bf16(src[i]); memcpy((char *)dst + 2 * i, &v, 2); break; }
		case RF_I64: { int64_t v = saturate_i64(src[i]); memcpy((char *)dst + 8 * i, &v, 8); break; }
		case RF_I32: { int32_t v = saturate_i32(src[i]); memcpy((char *)dst + 4 * i, &v, 4); break; }
		case RF_U8: ((uint8_t *)dst)[i] = (uint8_t)(isnan(src[i]) || src[i] < 0 ? 0 : src[i] > 255 ? 255 : src[i]); break;
		default: RF_ASSERT(!"dtype");
		}
	}
}

/* }===== */
