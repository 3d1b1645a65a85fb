/*
** npy.h: NumPy .npy files (format 1.0/2.0/3.0 read; 1.0 written, 2.0 only if a header
** ever outgrew 64 KiB), little-endian, C order, dtypes <f4 <f2 <i8 <i4 and |u1 (<u1 is
** read too), 0-d arrays and zero-size dimensions included. bf16 is written as <f4
** since NumPy has no bf16. Runtime layer (L2).
**
** Reading rejects, with RF_ERR_FORMAT and a message naming the file and the problem: bad
** magic or version, a header length past the end of the file, a header that is not the
** dict literal NumPy writes (keys 'descr', 'fortran_order', 'shape' exactly once each, in
** any order and spacing), big-endian, structured or unknown dtypes, fortran_order True,
** more than 8 dimensions, negative or overflowing shapes, and data shorter (truncated)
** or longer (trailing bytes) than shape x dtype. A missing or unreadable file is
** RF_ERR_IO.
*/
#ifndef RF_RUNTIME_NPY_H
#define RF_RUNTIME_NPY_H

#include "tensor.h"

/* Reads into a new host tensor (*out is NULL on failure). */
enum rf_status rf_npy_read(const char *path, rf_tensor **out);
/* Writes a host or device tensor (downloaded) with the header np.save would write, byte
** for byte; via `path.tmp`, fsync and rename, so `path` never holds a partial file.
** RF_ERR_IO (and no file) if it cannot be written. */
enum rf_status rf_npy_write(const char *path, const rf_tensor *t);

/* The pieces .npz archives are made of (npz.c). */
/* Room for any header rf_npy_format_header writes. */
#define RF_NPY_HEADER_MAX 640
/* The header np.save writes for `t` (magic to newline; bf16 described as <f4) into buf
** (RF_NPY_HEADER_MAX bytes); returns its length. The data follows it in the file. */
size_t rf_npy_format_header(const rf_tensor *t, char *buf, size_t size);
/* Reads a whole .npy file held in memory (`size` bytes) into a new host tensor, with the
** checks of rf_npy_read; `name` stands for the file in messages. */
enum rf_status rf_npy_parse(const void *data, uint64_t size, const char *name, rf_tensor **out);

#endif
