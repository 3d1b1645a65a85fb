/*
** test_npy.c: NumPy .npy files without a device: files written by real NumPy (in
** tests/data/npy, made by generate.py there) read with the right dtype, shape and values
** and written back byte for byte; round trips of every dtype; headers in any key order
** and spacing; every malformed file the reader must reject with a message naming the
** file and the problem; and truncated or corrupted copies that must fail cleanly.
*/
#include "harness.h"
#include "filetest.h"
#include "npy.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* {===== helpers */

/* A .npy file: magic, version, the header length in 2 (1.0) or 4 bytes, the header
** and `data` bytes. */
static const char *npy_make(const char *name, int major, int minor, const char *header,
			    size_t data)
{
	size_t hn = strlen(header), lenbytes = major == 1 ? 2 : 4, n = 8 + lenbytes + hn + data;
	uint8_t *buf = calloc(1, n);
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (uint8_t)major;
	buf[7] = (uint8_t)minor;
	for (size_t i = 0; i < lenbytes; i++)
		buf[8 + i] = (uint8_t)(hn >> (8 * i));
	memcpy(buf + 8 + lenbytes, header, hn);
	const char *path = rf_ft_tmp(name);
	rf_ft_write(path, buf, n);
	free(buf);
	return path;
}

static void expect_read_fails(const char *path, enum rf_status want, const char *needle, int line)
{
	rf_tensor *t = NULL;
	rf_ft_check_fails(rf_npy_read(path, &t), want, needle, path, path, __FILE__, line);
	CHECK(t == NULL);
	rf_tensor_destroy(t);
}
#define REJECTS(path, needle) expect_read_fails((path), RF_ERR_FORMAT, (needle), __LINE__)

static double element(const rf_tensor *t, int64_t i)
{
	const uint8_t *p = (const uint8_t *)t->host + (size_t)i * rf_dtype_size(t->dtype);
	switch (t->dtype) {
	case RF_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
	case RF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
	case RF_U8: return *p;
	default: { float f; rf_convert_to_f32(t->dtype, p, &f, 1); return f; }
	}
}

static void fill_random(rf_tensor *t)
{
	uint8_t *p = t->host;
	for (uint64_t i = 0; i < rf_tensor_nbytes(t); i++)
		p[i] = (uint8_t)rf_rand_u64();
}

/* }===== */

/* {===== files written by NumPy */

static const struct {
	const char *file;
	enum rf_dtype dtype;
	int ndim;
	int64_t dim[3];
	double values[6];
	bool version1;  /* np.save's default format, which the writer reproduces exactly */
} goldens[] = {
	{ "f4_2x3.npy", RF_F32, 2, { 2, 3 }, { -1.5, 0, 0.25, 2, 1024.5, -7 }, true },
	{ "f2_5.npy", RF_F16, 1, { 5 }, { 0, 1, -2, 0.5, 65504 }, true },
	{ "i8_3x2.npy", RF_I64, 2, { 3, 2 },
	  { -1, 1099511627776.0, 0, 4611686018427387904.0, -9223372036854775808.0, 7 }, true },
	{ "i4_4.npy", RF_I32, 1, { 4 }, { -2147483648.0, -1, 0, 2147483647 }, true },
	{ "u1_2x2x2.npy", RF_U8, 3, { 2, 2, 2 }, { 0, 30, 60, 90, 120, 150 }, true },
	{ "f4_scalar.npy", RF_F32, 0, { 0 }, { 3.25 }, true },
	{ "i8_0x3.npy", RF_I64, 2, { 0, 3 }, { 0 }, true },
	{ "f4_v2.npy", RF_F32, 1, { 4 }, { 0, 1, 2, 3 }, false },
	{ "f4_v3.npy", RF_F32, 1, { 4 }, { 0, 1, 2, 3 }, false },
};

static void test_numpy_files(void)
{
	char rel[64];
	for (size_t i = 0; i < RF_ARRAY_LEN(goldens); i++) {
		snprintf(rel, sizeof rel, "npy/%s", goldens[i].file);
		const char *path = rf_ft_data(rel);
		rf_tensor *t = NULL;
		CHECK_OK(rf_npy_read(path, &t));
		if (!t)
			continue;
		struct rf_shape want = rf_shape_make(goldens[i].ndim, goldens[i].dim);
		CHECK(t->dtype == goldens[i].dtype && rf_shape_equal(&t->shape, &want));
		for (int64_t k = 0; k < rf_tensor_numel(t) && k < 6; k++)
			if (element(t, k) != goldens[i].values[k]) {
				fprintf(stderr, "%s[%lld] = %.17g, want %.17g\n", goldens[i].file, (long long)k,
					element(t, k), goldens[i].values[k]);
				rf_test_failures++;
			}
		const char *copy = rf_ft_tmp("copy.npy");
		CHECK_OK(rf_npy_write(copy, t));
		if (goldens[i].version1 && !rf_ft_same_file(path, copy)) {
			fprintf(stderr, "rewriting %s changed its bytes\n", goldens[i].file);
			rf_test_failures++;
		}
		rf_tensor *back = NULL;
		CHECK_OK(rf_npy_read(copy, &back));
		CHECK(back && back->dtype == t->dtype && rf_shape_equal(&back->shape, &t->shape) &&
		      !memcmp(back->host, t->host, rf_tensor_nbytes(t)));
		rf_tensor_destroy(back);
		rf_tensor_destroy(t);
	}
}

/* }===== */

/* {===== writing */

/* NumPy aligns the data to 64 bytes; so must the writer, whatever the shape. */
static void check_aligned(const char *path)
{
	size_t n;
	uint8_t *b = rf_ft_read(path, &n);
	CHECK(b && n >= 10 && b[6] == 1 && (10 + (b[8] | b[9] << 8)) % 64 == 0);
	free(b);
}

static void test_write_roundtrip(void)
{
	rf_rand_seed(11);
	static const struct { enum rf_dtype dt; int ndim; int64_t dim[8]; } cases[] = {
		{ RF_F32, 2, { 3, 5 } }, { RF_F16, 1, { 7 } }, { RF_I64, 3, { 2, 1, 3 } },
		{ RF_I32, 1, { 1 } }, { RF_U8, 1, { 100003 } }, { RF_F32, 0, { 0 } },
		{ RF_U8, 2, { 4, 0 } }, { RF_F32, 8, { 1, 2, 1, 2, 1, 2, 1, 2 } },
		{ RF_I32, 4, { 2, 3, 4, 5 } },
	};
	const char *path = rf_ft_tmp("rt.npy");
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++) {
		struct rf_shape s = rf_shape_make(cases[i].ndim, cases[i].dim);
		rf_tensor *t = NULL, *back = NULL;
		CHECK_OK(rf_tensor_create_host(cases[i].dt, &s, &t));
		fill_random(t);
		CHECK_OK(rf_npy_write(path, t));
		CHECK(!rf_ft_exists(rf_ft_tmp("rt.npy.tmp")));
		check_aligned(path);
		CHECK_OK(rf_npy_read(path, &back));
		CHECK(back && back->dtype == t->dtype && rf_shape_equal(&back->shape, &t->shape) &&
		      !memcmp(back->host, t->host, rf_tensor_nbytes(t)));
		rf_tensor_destroy(back);
		rf_tensor_destroy(t);
	}
}

/* NumPy has no bfloat16: such tensors are written as float32 with the same values. */
static void test_write_bf16(void)
{
	struct rf_shape s = rf_shape_of(2, (int64_t)2, (int64_t)2);
	rf_tensor *t = NULL, *back = NULL;
	CHECK_OK(rf_tensor_create_host(RF_BF16, &s, &t));
	const float values[4] = { 1.5f, -2.0f, 0.0078125f, 3.0e38f };
	rf_convert_from_f32(RF_BF16, values, t->host, 4);
	const char *path = rf_ft_tmp("bf16.npy");
	CHECK_OK(rf_npy_write(path, t));
	CHECK_OK(rf_npy_read(path, &back));
	CHECK(back && back->dtype == RF_F32 && rf_shape_equal(&back->shape, &s));
	for (int i = 0; back && i < 4; i++) {
		float want;
		rf_convert_to_f32(RF_BF16, (uint16_t *)t->host + i, &want, 1);
		CHECK(((float *)back->host)[i] == want);
	}
	rf_tensor_destroy(back);
	rf_tensor_destroy(t);
}

static void test_write_errors(void)
{
	struct rf_shape s = rf_shape_of(1, (int64_t)3);
	rf_tensor *t = NULL;
	CHECK_OK(rf_tensor_create_host(RF_F32, &s, &t));
	const char *path = rf_ft_tmp("no-such-dir/x.npy");
	FT_CHECK_FAILS(rf_npy_write(path, t), RF_ERR_IO, "cannot create", path);
	rf_tensor_destroy(t);
}

/* }===== */

/* {===== headers NumPy (or another writer) may produce */

static void expect_reads(const char *path, enum rf_dtype dt, struct rf_shape s)
{
	rf_tensor *t = NULL;
	CHECK_OK(rf_npy_read(path, &t));
	CHECK(t && t->dtype == dt && rf_shape_equal(&t->shape, &s));
	rf_tensor_destroy(t);
}

static void test_header_variants(void)
{
	/* Any key order, no trailing comma, no padding. */
	expect_reads(npy_make("v1.npy", 1, 0,
		"{'shape': (2,), 'fortran_order': False, 'descr': '<u1'}\n", 2), RF_U8, rf_shape_of(1, (int64_t)2));
	/* Double quotes and spacing everywhere whitespace may go. */
	expect_reads(npy_make("v2.npy", 1, 0,
		"{ \"descr\" : \"<i4\" , \"fortran_order\" : False ,\t\"shape\" : ( 3 , ) , }   \n", 12),
		RF_I32, rf_shape_of(1, (int64_t)3));
	expect_reads(npy_make("v3.npy", 1, 0,
		"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1,), }", 2), RF_U8,
		rf_shape_of(2, (int64_t)2, (int64_t)1));
	expect_reads(npy_make("v4.npy", 2, 0,
		"{'descr': '<f2', 'fortran_order': False, 'shape': (), }\n", 2), RF_F16, rf_shape_of(0));
	expect_reads(npy_make("v5.npy", 3, 0,
		"{'descr': '<i8', 'fortran_order': False, 'shape': (0, 5), }\n", 0), RF_I64,
		rf_shape_of(2, (int64_t)0, (int64_t)5));
}

/* }===== */

/* {===== malformed files */

#define H(descr, fortran, shape) \
	"{'descr': " descr ", 'fortran_order': " fortran ", 'shape': " shape ", }"

static const struct {
	const char *header;
	size_t data;
	const char *needle;
} header_cases[] = {
	{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", 24, "malformed .npy header" },
	{ "['descr', '<f4']", 0, "expected '{'" },
	{ "", 0, "expected '{'" },
	{ "{'descr': '<f4', 'fortran_order': False}", 4, "lacks 'shape'" },
	{ "{'fortran_order': False, 'shape': (1,)}", 4, "lacks 'descr'" },
	{ "{'descr': '<f4', 'shape': (1,)}", 4, "lacks 'fortran_order'" },
	{ "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4,
	  "unexpected key 'extra'" },
	{ "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
	  "key 'descr' appears twice" },
	{ H("'<f4'", "False", "(2)"), 8, "trailing comma" },
	{ H("'<f4'", "False", "'2'"), 8, "must be a tuple" },
	{ H("'<f4'", "False", "[2]"), 8, "must be a tuple" },
	{ H("'<f4'", "False", "(2.5,)"), 8, "expected ',' or ')'" },
	{ H("'<f4'", "False", "(2 3)"), 24, "expected ',' or ')'" },
	{ H("'<f4'", "False", "(,)"), 0, "expected an integer" },
	{ H("'<f4'", "False", "(-1,)"), 0, "negative dimension" },
	{ H("'<f4'", "False", "(99999999999999999999,)"), 0, "too large" },
	{ H("'<f4'", "False", "(4294967296, 4294967296)"), 0, "too large to address" },
	/* No element, but the strides of the other dimensions overflow. */
	{ H("'<f4'", "False", "(0, 4611686018427387904, 4611686018427387904)"), 0, "too large to address" },
	{ H("'<f4'", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), 4, "more than 8 dimensions" },
	{ H("'<f4'", "'False'", "(1,)"), 4, "True or False" },
	{ H("'<f4'", "Falsey", "(1,)"), 4, "True or False" },
	{ H("'<f4'", "0", "(1,)"), 4, "True or False" },
	{ H("'<f4'", "False", "(1,)") " x", 4, "unexpected text after the dict" },
	{ H("'<f\\x34'", "False", "(1,)"), 4, "unexpected character in a string" },
	{ H("'<f4", "False", "(1,)"), 4, "unsupported dtype '<f4, '" },
	{ "{'descr': '<f4", 0, "unterminated string" },
	{ H("<f4", "False", "(1,)"), 4, "expected a quoted string" },
	{ "{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "expected ':'" },
	{ "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4, "expected ',' or '}'" },
	{ H("[('a', '<f4')]", "False", "(1,)"), 4, "structured dtypes" },
	{ H("'>f4'", "False", "(1,)"), 4, "big-endian dtype '>f4'" },
	{ H("'>i8'", "False", "(1,)"), 8, "big-endian dtype '>i8'" },
	{ H("'<f8'", "False", "(1,)"), 8, "unsupported dtype '<f8'" },
	{ H("'|b1'", "False", "(1,)"), 1, "unsupported dtype '|b1'" },
	{ H("'float32'", "False", "(1,)"), 4, "unsupported dtype 'float32'" },
	{ H("'<f4'", "True", "(2, 3)"), 24, "fortran_order True" },
	{ H("'<f4'", "False", "(2, 3)"), 20, "20 bytes of data, but shape [2, 3] of F32 needs 24 "
	  "(truncated file)" },
	{ H("'<f4'", "False", "(2, 3)"), 28, "(trailing bytes)" },
	{ H("'<f4'", "False", "()"), 0, "truncated file" },
	{ H("'<i8'", "False", "(0, 3)"), 1, "trailing bytes" },
};

static void test_malformed(void)
{
	char name[64];
	for (size_t i = 0; i < RF_ARRAY_LEN(header_cases); i++) {
		snprintf(name, sizeof name, "case%zu.npy", i);
		int before = rf_test_failures;
		REJECTS(npy_make(name, 1, 0, header_cases[i].header, header_cases[i].data),
			header_cases[i].needle);
		if (rf_test_failures != before)
			fprintf(stderr, "  (header: %s)\n", header_cases[i].header);
	}
	expect_read_fails(rf_ft_tmp("missing.npy"), RF_ERR_IO, "cannot open", __LINE__);
	rf_ft_write(rf_ft_tmp("empty.npy"), "", 0);
	REJECTS(rf_ft_tmp("empty.npy"), "only 0 bytes");
	rf_ft_write(rf_ft_tmp("short.npy"), "\x93NUMPY\x01\x00\x10", 9);
	REJECTS(rf_ft_tmp("short.npy"), "only 9 bytes");
	rf_ft_write(rf_ft_tmp("magic.npy"), "\x93NUMPZ\x01\x00\x00\x00", 10);
	REJECTS(rf_ft_tmp("magic.npy"), "bad magic");
	rf_ft_write(rf_ft_tmp("pickle.npy"), "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00", 11);
	REJECTS(rf_ft_tmp("pickle.npy"), "bad magic");
	REJECTS(npy_make("ver4.npy", 4, 0, H("'<f4'", "False", "()"), 4), "version 4.0");
	REJECTS(npy_make("ver11.npy", 1, 1, H("'<f4'", "False", "()"), 4), "version 1.1");
	REJECTS(npy_make("ver0.npy", 0, 0, H("'<f4'", "False", "()"), 4), "version 0.0");
	/* Header lengths past the end: a 1.0 header cut short, absurd 4-byte lengths, and a
	** 2.0 file that ends inside its 4-byte length. */
	rf_ft_write(rf_ft_tmp("hlen1.npy"), "\x93NUMPY\x01\x00\xf4\x01{'descr'", 18);
	REJECTS(rf_ft_tmp("hlen1.npy"), "header length 500 is past the end");
	rf_ft_write(rf_ft_tmp("hlen2.npy"), "\x93NUMPY\x02\x00\xff\xff\xff\xff{'de", 16);
	REJECTS(rf_ft_tmp("hlen2.npy"), "header length 4294967295 is past the end");
	rf_ft_write(rf_ft_tmp("hlen3.npy"), "\x93NUMPY\x02\x00\x04\x00\x00", 11);
	REJECTS(rf_ft_tmp("hlen3.npy"), "truncated inside the header length");
	expect_read_fails(rf_ft_tmp(""), RF_ERR_IO, "is a folder, not a regular file", __LINE__);
	/* A FIFO with no writer blocked the open forever; a device never ends. */
	const char *fifo = rf_ft_tmp("fifo.npy");
	CHECK(mkfifo(fifo, 0600) == 0);
	alarm(60);
	expect_read_fails(fifo, RF_ERR_IO, "is a FIFO (named pipe), not a regular file", __LINE__);
	alarm(0);
	expect_read_fails("/dev/zero", RF_ERR_IO, "is a device, not a regular file", __LINE__);
	unlink(fifo);
}

/* }===== */

/* {===== robustness */

/* Every shorter copy of a NumPy file must be refused (the data size is exact), and
** byte changes in the prefix and header must never crash, only succeed or be refused. */
static void test_robustness(void)
{
	size_t size;
	uint8_t *bytes = rf_ft_read(rf_ft_data("npy/i8_3x2.npy"), &size);
	if (!bytes)
		return;
	const char *path = rf_ft_tmp("fuzz.npy");
	for (size_t len = 0; len < size; len++) {
		rf_ft_write(path, bytes, len);
		rf_tensor *t = NULL;
		enum rf_status s = rf_npy_read(path, &t);
		if (s != RF_ERR_FORMAT) {
			fprintf(stderr, "cut at %zu: %s (%s)\n", len, rf_status_str(s), rf_error_message());
			rf_test_failures++;
		}
		rf_tensor_destroy(t);
	}
	rf_rand_seed(5);
	size_t header_end = 10 + (size_t)(bytes[8] | bytes[9] << 8);
	uint8_t *copy = malloc(size);
	for (int round = 0; round < 2000; round++) {
		memcpy(copy, bytes, size);
		int k = 1 + (int)(rf_rand_u64() % 3);
		for (int j = 0; j < k; j++)
			copy[rf_rand_u64() % header_end] ^= (uint8_t)(1 + rf_rand_u64() % 255);
		rf_ft_write(path, copy, size);
		rf_tensor *t = NULL;
		enum rf_status s = rf_npy_read(path, &t);
		if (s != RF_OK && s != RF_ERR_FORMAT) {
			fprintf(stderr, "corrupted copy: %s (%s)\n", rf_status_str(s), rf_error_message());
			rf_test_failures++;
		}
		rf_tensor_destroy(t);
	}
	free(copy);
	free(bytes);
}

/* }===== */

int main(void)
{
	rf_ft_setup();
	test_numpy_files();
	test_write_roundtrip();
	test_write_bf16();
	test_write_errors();
	test_header_variants();
	test_malformed();
	test_robustness();
	rf_ft_cleanup();
	return rf_test_finish();
}
