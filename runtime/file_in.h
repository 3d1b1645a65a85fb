/*
** file_in.h: opening files for reading so that a path which is not what it claims cannot
** hang or exhaust the process: only regular files are read (a FIFO, a device such as
** /dev/zero, a socket or a folder is refused with a message naming the path before
** anything waits on it), and whole-file reads carry a size limit. Runtime layer (L2).
*/
#ifndef RF_RUNTIME_FILE_IN_H
#define RF_RUNTIME_FILE_IN_H

#include "rf_base.h"

/* The limits of whole-file reads, documented in README.md ("Limits"). */
#define RF_MAX_JSON_BYTES (256ull << 20)    /* a JSON file: configs, text lists, results */
#define RF_MAX_VOCAB_BYTES (64ull << 20)    /* a vocabulary or merges file (decompressed) */

/* "dir/name" in a malloc'd string of the length it needs (NULL when out of memory):
** paths are never cut to fit a fixed buffer, which would name another file. */
char *rf_path_join(const char *dir, const char *name);

/* Opens `path` read-only into *fd if it is a regular file, and gives its size. The open
** does not block (O_NONBLOCK: a FIFO without a writer would wait forever) and the
** descriptor is switched back to blocking reads once fstat has shown a regular file.
** Errors (RF_ERR_IO) name the path and say what it is instead ("a folder", "a FIFO", "a
** device", ...). */
enum rf_status rf_file_open_read(const char *path, int *fd, uint64_t *size);
/* The same check without keeping the file open, for a path another library opens itself. */
enum rf_status rf_file_check_regular(const char *path);
/* The whole regular file at `path` in a malloc'd buffer (NUL-terminated, *len bytes
** before the NUL) if it holds at most `max_bytes`, else RF_ERR_FORMAT naming the path,
** its size, the limit and `what` the file was meant to be ("a JSON file"). */
enum rf_status rf_file_read_all(const char *path, uint64_t max_bytes, const char *what,
				char **data, size_t *len);

#endif
