/*
** npy.h: NumPy .npy files (format 1.0/2.0/3.0 read, 1.0 written when the header fits),
** little-endian, C order, dtypes <f4 <f2 <i8 <i4 |u1 (and bf16 is written as <f4 since
** NumPy has no bf16). Runtime layer (L2).
**
** Reading rejects, with RF_ERR_FORMAT and a message naming the file and the problem: bad
** magic or version, a header length past the end of the file, a header that is not the
** expected dict literal, big-endian or unknown dtypes, fortran_order True, negative or
** overflowing shapes, and data shorter or longer than shape x dtype.
*/
#ifndef RF_RUNTIME_NPY_H
#define RF_RUNTIME_NPY_H

#include "tensor.h"

/* Reads into a new host tensor. */
enum rf_status rf_npy_read(const char *path, rf_tensor **out);
/* Writes a host or device tensor (downloaded); via `path.tmp` and rename. */
enum rf_status rf_npy_write(const char *path, const rf_tensor *t);

#endif
