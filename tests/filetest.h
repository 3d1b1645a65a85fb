/*
** filetest.h: scratch files for the file-format tests: a private temporary directory
** (removed at the end), whole-file reads and writes, paths into tests/data, and the
** check that a refused file says which file it was.
*/
#ifndef RF_TESTS_FILETEST_H
#define RF_TESTS_FILETEST_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* Creates the directory under $TMPDIR (or /tmp); exits 1 if it cannot. */
void rf_ft_setup(void);
/* Removes every file written there, then the directory. */
void rf_ft_cleanup(void);

/* "<tmpdir>/<name>", valid until rf_ft_cleanup. */
const char *rf_ft_tmp(const char *name);
/* "$RF_TEST_DATA/<rel>" (same lifetime); exits 77 (SKIP) without RF_TEST_DATA. */
const char *rf_ft_data(const char *rel);

/* Writes n bytes to path (CHECKed). */
void rf_ft_write(const char *path, const void *bytes, size_t n);
/* The whole file, malloc'd (the caller frees it), or NULL (CHECKed) if unreadable. */
uint8_t *rf_ft_read(const char *path, size_t *n);
/* True if a and b hold the same bytes; prints where they first differ otherwise. */
int rf_ft_same_file(const char *a, const char *b);
/* True if path exists. */
int rf_ft_exists(const char *path);

/* Checks a call on `path` failed with `want`, a message containing `needle` and naming
** `path` (every file error says which file). */
#define FT_CHECK_FAILS(call, want, needle, path) \
	rf_ft_check_fails((call), (want), (needle), (path), #call, __FILE__, __LINE__)
void rf_ft_check_fails(enum rf_status got, enum rf_status want, const char *needle, const char *path,
		       const char *expr, const char *file, int line);

#endif
