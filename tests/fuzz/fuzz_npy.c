/*
** fuzz_npy.c: libFuzzer target for the .npy reader and writer. The input is parsed from
** memory; an array that parses is written with rf_npy_write and read back from the file,
** which must give the same dtype, shape and bytes, and the file must be exactly the header
** np.save would write followed by the data. When the input was itself such a file, the
** written file must be the input byte for byte. A refusal must come with a message that
** names the input.
*/
#include "fuzz_util.h"
#include "npy.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmp_dir();
	return 0;
}

static void check_same(const rf_tensor *a, const rf_tensor *b)
{
	if (a->dtype != b->dtype || !rf_shape_equal(&a->shape, &b->shape))
		fuzz_fail("the array read back has another dtype or shape");
	uint64_t n = rf_tensor_nbytes(a);
	if (n && memcmp(a->host, b->host, n) != 0)
		fuzz_fail("the array read back has other bytes");
}

/* The written file: np.save's header for t, then t's bytes. */
static void check_file(const char *path, const rf_tensor *t, const uint8_t *input, size_t size)
{
	size_t fsize = 0;
	uint8_t *file = fuzz_read(path, &fsize);
	if (!file)
		fuzz_fail("the written file cannot be read");
	char header[RF_NPY_HEADER_MAX];
	size_t hlen = rf_npy_format_header(t, header, sizeof header);
	uint64_t n = rf_tensor_nbytes(t);
	if (fsize != hlen + n || memcmp(file, header, hlen) != 0 ||
	    (n && memcmp(file + hlen, t->host, n) != 0))
		fuzz_fail("the written file is not np.save's header and the data");
	if (size == hlen + n && memcmp(input, header, hlen) == 0 && memcmp(file, input, size) != 0)
		fuzz_fail("an np.save file did not round-trip byte for byte");
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rf_tensor *t = NULL;
	if (rf_npy_parse(data, size, "input.npy", &t) != RF_OK) {
		if (t || !strstr(rf_error_message(), "input.npy"))
			fuzz_fail("a refused array left a tensor or a message without its name");
		return 0;
	}
	char path[1024];
	snprintf(path, sizeof path, "%s/out.npy", fuzz_tmp_dir());
	if (rf_npy_write(path, t) != RF_OK)
		fuzz_fail(rf_error_message());
	check_file(path, t, data, size);
	rf_tensor *back = NULL;
	if (rf_npy_read(path, &back) != RF_OK)
		fuzz_fail(rf_error_message());
	check_same(t, back);
	rf_tensor_destroy(back);
	rf_tensor_destroy(t);
	return 0;
}
