/*
** fuzz_util.h: what the file-reading fuzz targets share: a scratch folder of their own
** (made once, removed at exit) and a way to put the input there as a named file, since
** the readers under test take paths.
*/
#ifndef RF_FUZZ_UTIL_H
#define RF_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch folder (created on first use; aborts if it cannot be). */
const char *fuzz_tmp_dir(void);
/* Writes `size` bytes to <scratch>/<name> and returns that path (static storage, valid until
** the next call); aborts if it cannot be written (a broken harness, not a finding). */
const char *fuzz_write(const char *name, const void *data, size_t size);
/* Reads a whole file into malloc'd memory; NULL if it cannot be read. */
void *fuzz_read(const char *path, size_t *size);
/* Prints `what` and aborts: a property of the code under test was violated. */
void fuzz_fail(const char *what);

#endif
