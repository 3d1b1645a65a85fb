/*
** fuzz_safetensors.c: libFuzzer target for the safetensors reader. The input is written
** as a file and opened; a file that opens has every tensor read (a host copy and, in two
** halves, its raw bytes, which must agree), every metadata key listed and looked up, and
** then the same reads again through the file once the mapping is released. A refusal
** must come with a message naming the file.
*/
#include "fuzz_util.h"
#include "safetensors.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmp_dir();
	return 0;
}

/* Reads entry e both ways and checks that they agree. */
static void read_entry(const rf_safetensors *st, const struct rf_st_entry *e)
{
	if (rf_safetensors_find(st, e->name) != e)
		fuzz_fail("find does not return the entry of that name");
	rf_tensor *t = NULL;
	enum rf_status s = rf_safetensors_read(st, e->name, &t);
	if (s != RF_OK) {
		/* Only host memory may fail here (a big, valid tensor). */
		if (t || !rf_error_message()[0])
			fuzz_fail("a failed read left a tensor or no message");
		return;
	}
	if (rf_tensor_nbytes(t) != e->nbytes || t->dtype != e->dtype)
		fuzz_fail("the tensor read differs from its entry");
	uint8_t *raw = malloc(e->nbytes ? e->nbytes : 1);
	if (raw) {
		uint64_t half = e->nbytes / 2;
		if (rf_safetensors_read_bytes(st, e, 0, half, raw) == RF_OK &&
		    rf_safetensors_read_bytes(st, e, half, e->nbytes - half, raw + half) == RF_OK &&
		    e->nbytes && memcmp(raw, t->host, e->nbytes) != 0)
			fuzz_fail("raw bytes differ from the tensor read");
		/* Past the end must be refused. */
		if (rf_safetensors_read_bytes(st, e, e->nbytes, 1, raw) == RF_OK)
			fuzz_fail("a read past the entry's end succeeded");
		free(raw);
	}
	rf_tensor_destroy(t);
}

static void read_all(const rf_safetensors *st)
{
	uint32_t n = rf_safetensors_count(st);
	for (uint32_t i = 0; i < n; i++)
		read_entry(st, rf_safetensors_entry(st, i));
	const char *key;
	for (uint32_t i = 0; (key = rf_safetensors_metadata_key(st, i)); i++) {
		if (!rf_safetensors_metadata(st, key))
			fuzz_fail("a listed metadata key has no value");
	}
	if (rf_safetensors_find(st, "\x01 not a name"))
		fuzz_fail("found a name that is not there");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write("input.safetensors", data, size);
	rf_safetensors *st = NULL;
	enum rf_status s = rf_safetensors_open(path, &st);
	if (s != RF_OK) {
		if (st || !strstr(rf_error_message(), "input.safetensors"))
			fuzz_fail("a refused file left a handle or a message without its name");
		return 0;
	}
	read_all(st);
	rf_safetensors_unmap(st);
	read_all(st);
	rf_safetensors_close(st);
	return 0;
}
