/*
** tensor.h: rf_tensor, a contiguous row-major array with a dtype and a shape that lives
** either on the device (a suballocation) or on the host (malloc'd). Device tensors hold
** a reference to their context. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_TENSOR_H
#define RF_RUNTIME_TENSOR_H

#include "rf_base.h"
#include "memory.h"

typedef struct rf_ctx rf_ctx;

enum rf_dtype { RF_F32, RF_F16, RF_BF16, RF_I64, RF_I32, RF_U8, RF_DTYPE_COUNT };

#define RF_MAX_DIMS 8

struct rf_shape {
	int ndim;
	int64_t dim[RF_MAX_DIMS];
};

typedef struct rf_tensor {
	enum rf_dtype dtype;
	struct rf_shape shape;
	rf_ctx *ctx;          /* device tensors only (a held reference) */
	struct rf_mem mem;    /* device tensors only */
	void *host;           /* host tensors only */
} rf_tensor;

size_t rf_dtype_size(enum rf_dtype dt);
/* Short names as safetensors writes them: "F32", "F16", "BF16", "I64", "I32", "U8". */
const char *rf_dtype_name(enum rf_dtype dt);
/* Parses a safetensors dtype name; false if unknown. */
bool rf_dtype_parse(const char *name, enum rf_dtype *out);

struct rf_shape rf_shape_make(int ndim, const int64_t *dim);
struct rf_shape rf_shape_of(int ndim, ...);   /* rf_shape_of(2, (int64_t)3, (int64_t)4) */
int64_t rf_shape_numel(const struct rf_shape *s);
bool rf_shape_equal(const struct rf_shape *a, const struct rf_shape *b);
/* "[8, 3, 224, 224]" into buf; returns buf. */
char *rf_shape_str(const struct rf_shape *s, char *buf, size_t size);
/* Checks dims are >= 0 and the byte size fits in 62 bits, counting a zero dimension as 1
** (so every stride fits too, even of a shape that holds no element). */
enum rf_status rf_shape_check(const struct rf_shape *s, enum rf_dtype dt, const char *what);

static inline int64_t rf_tensor_numel(const rf_tensor *t) { return rf_shape_numel(&t->shape); }
static inline uint64_t rf_tensor_nbytes(const rf_tensor *t)
{
	return (uint64_t)rf_tensor_numel(t) * rf_dtype_size(t->dtype);
}
static inline bool rf_tensor_on_device(const rf_tensor *t) { return t->ctx != NULL; }

/* A device tensor (contents undefined). */
enum rf_status rf_tensor_create(rf_ctx *ctx, enum rf_dtype dt, const struct rf_shape *s,
				rf_tensor **out);
/* A device tensor filled with zeros (recorded, not waited for). */
enum rf_status rf_tensor_zeros(rf_ctx *ctx, enum rf_dtype dt, const struct rf_shape *s,
			       rf_tensor **out);
/* A host tensor, zero-filled. */
enum rf_status rf_tensor_create_host(enum rf_dtype dt, const struct rf_shape *s, rf_tensor **out);
/* A host tensor holding a copy of `data` (nbytes of the shape). */
enum rf_status rf_tensor_from_host_data(enum rf_dtype dt, const struct rf_shape *s,
					const void *data, rf_tensor **out);
/* Frees either kind. NULL ok. */
void rf_tensor_destroy(rf_tensor *t);

/* Device copy of a host tensor (or of a device tensor). */
enum rf_status rf_tensor_to_device(rf_ctx *ctx, const rf_tensor *src, rf_tensor **out);
/* Host copy of a device tensor (or of a host tensor); waits for pending work. */
enum rf_status rf_tensor_to_host(const rf_tensor *src, rf_tensor **out);
/* Uploads host data into an existing device tensor of the same byte size. */
enum rf_status rf_tensor_upload(rf_tensor *dst, const void *data, uint64_t nbytes);
/* Downloads a device tensor into `data` (nbytes must match). */
enum rf_status rf_tensor_download(const rf_tensor *src, void *data, uint64_t nbytes);

/* Rows [first, first + count) of a [B, ...] tensor (host or device) as a new device tensor. */
enum rf_status rf_tensor_rows(rf_ctx *ctx, const rf_tensor *t, int64_t first, int64_t count,
			      rf_tensor **out);
/* Changes the shape in place (same element count; the data is contiguous). */
enum rf_status rf_tensor_reshape(rf_tensor *t, const struct rf_shape *s);

/* Converts n values to f32 / from f32 (F16, BF16 exact widening; narrowing rounds to
** nearest even; to integer dtypes by value, truncated toward zero and saturated, NaN
** becoming 0). */
void rf_convert_to_f32(enum rf_dtype dt, const void *src, float *dst, size_t n);
void rf_convert_from_f32(enum rf_dtype dt, const float *src, void *dst, size_t n);
float rf_half_to_float(uint16_t h);
/* Whether any of n values of dtype dt is NaN or infinite, and the first one's index in
** *at; always false for integer dtypes. Reads the exponent bits (fast, no conversion). */
bool rf_find_nonfinite(enum rf_dtype dt, const void *data, size_t n, size_t *at);
uint16_t rf_float_to_half(float f);

#endif
