/*
** checksum.h: the SHA-256 of a file, so results can record exactly which model files
** made them. Runtime layer (L2).
*/
#ifndef RF_RUNTIME_CHECKSUM_H
#define RF_RUNTIME_CHECKSUM_H

#include "rf_base.h"

/* 64 lowercase hex digits and the terminating NUL. */
#define RF_SHA256_HEX_LEN 65

/* Writes the SHA-256 of the regular file at `path` as lowercase hex into `out_hex`.
** The file is read in blocks, never whole, so a multi-gigabyte checkpoint costs no
** memory. Errors (RF_ERR_IO: missing, unreadable or not a regular file; RF_ERR_OOM_HOST)
** name `path` and the reason; `out_hex` is then an empty string. */
enum rf_status rf_file_sha256(const char *path, char out_hex[RF_SHA256_HEX_LEN]);

#endif
