/*
** golden.h: loading golden tensors for tests: paths under tests/data ($RF_TEST_DATA),
** reading a named f32/i64 tensor, and comparing device or host results with them.
*/
#ifndef RF_TESTS_GOLDEN_H
#define RF_TESTS_GOLDEN_H

#include "tensor.h"

/* "$RF_TEST_DATA/<rel>", valid until the test exits (exits 77, SKIP, if the variable is
** unset). */
const char *rf_test_data(const char *rel);

/* Reads tensor `name` of a safetensors file as a new host tensor (fails the test and
** returns NULL if absent). */
rf_tensor *rf_golden_read(const char *file, const char *name);

/* Compares any f32 tensor (device or host) with a golden host tensor of the same shape:
** prints the error line, counts a failure beyond atol. */
bool rf_golden_compare(const char *label, const rf_tensor *got, const rf_tensor *want, double atol);

/* A temporary directory (mkdtemp) removed with its contents by rf_temp_dir_remove. */
char *rf_temp_dir(void);
void rf_temp_dir_remove(char *dir);

#endif
