/*
** test_npz.c: NumPy .npz archives without a device: archives written by real NumPy
** (np.savez and np.savez_compressed, in tests/data/npz, made by generate.py there) read
** with the right names, dtypes, shapes and values; round trips of every dtype with
** metadata, each member byte for byte what rf_npy_write writes (so np.load reads it as
** it reads np.save's files); and the failures: not a zip, missing files and members,
** corrupted data, bad names, unwritable folders (no partial file left behind).
*/
#include "harness.h"
#include "filetest.h"
#include "npy.h"
#include "npz.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <zip.h>
#include <zlib.h>

/* {===== helpers */

static rf_tensor *host_tensor(enum rf_dtype dt, int ndim, const int64_t *dim)
{
	struct rf_shape s = rf_shape_make(ndim, dim);
	rf_tensor *t = NULL;
	CHECK_OK(rf_tensor_create_host(dt, &s, &t));
	if (!t)
		exit(1);
	uint8_t *p = t->host;
	for (uint64_t i = 0; i < rf_tensor_nbytes(t); i++)
		p[i] = (uint8_t)rf_rand_u64();
	/* Keep floats finite and f16/bf16 free of NaN payloads that a widening would change. */
	if (dt == RF_F32)
		for (int64_t i = 0; i < rf_tensor_numel(t); i++)
			((float *)t->host)[i] = (float)rf_rand_normal();
	return t;
}

static bool same_tensor(const rf_tensor *a, const rf_tensor *b)
{
	return a && b && a->dtype == b->dtype && rf_shape_equal(&a->shape, &b->shape) &&
	       !memcmp(a->host, b->host, rf_tensor_nbytes(a));
}

/* Whether the bytes of file `part` appear verbatim inside file `whole` (stored members). */
static bool contains_file(const char *whole, const char *part)
{
	size_t n, k;
	uint8_t *w = rf_ft_read(whole, &n), *p = rf_ft_read(part, &k);
	bool found = false;
	for (size_t i = 0; w && p && i + k <= n && !found; i++)
		found = !memcmp(w + i, p, k);
	free(w);
	free(p);
	return found;
}

/* }===== */

/* {===== archives written by NumPy */

static void check_numpy_archive(const char *rel)
{
	rf_npz *z = NULL;
	CHECK_OK(rf_npz_open(rf_ft_data(rel), &z));
	if (!z)
		return;
	CHECK(rf_npz_count(z) == 4);
	CHECK(rf_npz_has(z, "weights") && rf_npz_has(z, "mask") && !rf_npz_has(z, "weights.npy"));
	CHECK(rf_npz_metadata_key(z, 0) == NULL);
	rf_tensor *t = NULL;
	CHECK_OK(rf_npz_read(z, "weights", &t));
	static const float weights[6] = { -1.5f, 0, 0.25f, 2, 1024.5f, -7 };
	CHECK(t && t->dtype == RF_F32 && t->shape.ndim == 2 && t->shape.dim[0] == 2 &&
	      t->shape.dim[1] == 3 && !memcmp(t->host, weights, sizeof weights));
	rf_tensor_destroy(t);
	CHECK_OK(rf_npz_read(z, "labels", &t));
	static const int64_t labels[3] = { 3, 0, 1099511627776ll };
	CHECK(t && t->dtype == RF_I64 && t->shape.ndim == 1 && !memcmp(t->host, labels, sizeof labels));
	rf_tensor_destroy(t);
	CHECK_OK(rf_npz_read(z, "mask", &t));
	static const uint8_t mask[6] = { 0, 40, 80, 120, 160, 200 };
	CHECK(t && t->dtype == RF_U8 && t->shape.dim[0] == 3 && t->shape.dim[1] == 2 &&
	      !memcmp(t->host, mask, sizeof mask));
	rf_tensor_destroy(t);
	CHECK_OK(rf_npz_read(z, "half", &t));
	float half[2] = { 0, 0 };
	if (t)
		rf_convert_to_f32(RF_F16, t->host, half, 2);
	CHECK(t && t->dtype == RF_F16 && half[0] == 0.5f && half[1] == -2.0f);
	rf_tensor_destroy(t);
	rf_npz_close(z);
}

static void test_numpy_archives(void)
{
	check_numpy_archive("npz/savez.npz");
	check_numpy_archive("npz/savez_compressed.npz");
}

/* }===== */

/* {===== writing */

static void test_roundtrip(void)
{
	static const int64_t d23[] = { 2, 3 }, d5[] = { 5 }, d0x3[] = { 0, 3 }, d234[] = { 2, 3, 4 };
	rf_tensor *ts[] = {
		host_tensor(RF_F32, 2, d23), host_tensor(RF_F16, 1, d5), host_tensor(RF_I64, 2, d23),
		host_tensor(RF_I32, 1, d5), host_tensor(RF_U8, 3, d234), host_tensor(RF_F32, 0, NULL),
		host_tensor(RF_I64, 2, d0x3),
	};
	const char *names[] = { "a", "half", "labels", "i32", "mask", "scalar", "empty" };
	struct rf_st_item items[RF_ARRAY_LEN(ts)];
	for (size_t i = 0; i < RF_ARRAY_LEN(ts); i++)
		items[i] = (struct rf_st_item){ names[i], ts[i] };
	const char *md[] = { "model", "tiny", "args", "--x é", NULL };
	const char *path = rf_ft_tmp("all.npz");
	CHECK_OK(rf_npz_write(path, items, RF_ARRAY_LEN(items), md));
	CHECK(!rf_ft_exists(rf_ft_tmp("all.npz.tmp")));
	rf_npz *z = NULL;
	CHECK_OK(rf_npz_open(path, &z));
	if (!z)
		return;
	CHECK(rf_npz_count(z) == RF_ARRAY_LEN(ts));
	for (size_t i = 0; i < RF_ARRAY_LEN(ts); i++) {
		CHECK(!strcmp(rf_npz_name(z, (uint32_t)i), names[i]));
		rf_tensor *back = NULL;
		CHECK_OK(rf_npz_read(z, names[i], &back));
		if (!same_tensor(back, ts[i])) {
			fprintf(stderr, "member %s did not round-trip\n", names[i]);
			rf_test_failures++;
		}
		rf_tensor_destroy(back);
		/* Each member is the .npy file np.save (and rf_npy_write) would write. */
		const char *npy = rf_ft_tmp("member.npy");
		CHECK_OK(rf_npy_write(npy, ts[i]));
		if (!contains_file(path, npy)) {
			fprintf(stderr, "member %s is not the .npy file rf_npy_write writes\n", names[i]);
			rf_test_failures++;
		}
	}
	CHECK(!strcmp(rf_npz_metadata(z, "model"), "tiny") && !strcmp(rf_npz_metadata(z, "args"), "--x é"));
	CHECK(rf_npz_metadata(z, "nope") == NULL && rf_npz_metadata_key(z, 2) == NULL);
	rf_npz_close(z);
	/* The same tensors give the same bytes (fixed member dates). */
	const char *again = rf_ft_tmp("again.npz");
	CHECK_OK(rf_npz_write(again, items, RF_ARRAY_LEN(items), md));
	CHECK(rf_ft_same_file(path, again));
	for (size_t i = 0; i < RF_ARRAY_LEN(ts); i++)
		rf_tensor_destroy(ts[i]);
}

/* bf16 has no NumPy dtype: it is written widened to <f4, as the .npy writer does. */
static void test_bf16(void)
{
	static const int64_t d4[] = { 4 };
	rf_tensor *t = host_tensor(RF_BF16, 1, d4);
	static const uint16_t bits[4] = { 0x3f80, 0xc000, 0x0000, 0x4049 };   /* 1, -2, 0, 3.140625 */
	memcpy(t->host, bits, sizeof bits);
	struct rf_st_item item = { "b", t };
	const char *path = rf_ft_tmp("bf16.npz");
	CHECK_OK(rf_npz_write(path, &item, 1, NULL));
	rf_npz *z = NULL;
	rf_tensor *back = NULL;
	CHECK_OK(rf_npz_open(path, &z));
	if (z)
		CHECK_OK(rf_npz_read(z, "b", &back));
	static const float want[4] = { 1, -2, 0, 3.140625f };
	CHECK(back && back->dtype == RF_F32 && !memcmp(back->host, want, sizeof want));
	rf_tensor_destroy(back);
	rf_npz_close(z);
	rf_tensor_destroy(t);
}

static void test_empty(void)
{
	const char *path = rf_ft_tmp("empty.npz");
	CHECK_OK(rf_npz_write(path, NULL, 0, NULL));
	rf_npz *z = NULL;
	CHECK_OK(rf_npz_open(path, &z));
	CHECK(z && rf_npz_count(z) == 0);
	rf_npz_close(z);
}

static void test_write_errors(void)
{
	static const int64_t d2[] = { 2 };
	rf_tensor *t = host_tensor(RF_F32, 1, d2);
	struct rf_st_item twice[2] = { { "x", t }, { "x", t } };
	const char *path = rf_ft_tmp("bad.npz");
	CHECK_FAILS(rf_npz_write(path, twice, 2, NULL), RF_ERR_INVALID, "'x' is used twice");
	struct rf_st_item unnamed = { "", t };
	CHECK_FAILS(rf_npz_write(path, &unnamed, 1, NULL), RF_ERR_INVALID, "no name");
	const char *md[] = { "key", NULL };
	CHECK_FAILS(rf_npz_write(path, twice, 1, md), RF_ERR_INVALID, "'key' has no value");
	CHECK(!rf_ft_exists(path) && !rf_ft_exists(rf_ft_tmp("bad.npz.tmp")));
	CHECK_FAILS(rf_npz_write("/nonexistent-refract-dir/x.npz", twice, 1, NULL), RF_ERR_IO,
		    "/nonexistent-refract-dir/x.npz");
	/* A failed write leaves an earlier file untouched. */
	CHECK_OK(rf_npz_write(path, twice, 1, NULL));
	size_t before_n, after_n;
	uint8_t *before = rf_ft_read(path, &before_n);
	CHECK_FAILS(rf_npz_write(path, twice, 2, NULL), RF_ERR_INVALID, "used twice");
	uint8_t *after = rf_ft_read(path, &after_n);
	CHECK(before && after && before_n == after_n && !memcmp(before, after, before_n));
	free(before);
	free(after);
	rf_tensor_destroy(t);
}

/* }===== */

/* {===== reading failures */

static void test_read_errors(void)
{
	rf_npz *z = NULL;
	CHECK_FAILS(rf_npz_open(rf_ft_tmp("missing.npz"), &z), RF_ERR_IO, "missing.npz");
	CHECK(z == NULL);
	const char *text = rf_ft_tmp("text.npz");
	rf_ft_write(text, "not a zip file at all, just some text to be refused", 52);
	CHECK_FAILS(rf_npz_open(text, &z), RF_ERR_FORMAT, "text.npz: not an .npz file");
	CHECK(z == NULL);

	/* A missing member names the archive and the name. */
	static const int64_t d3[] = { 3 };
	rf_tensor *t = host_tensor(RF_F32, 1, d3);
	struct rf_st_item item = { "values", t };
	const char *path = rf_ft_tmp("one.npz");
	CHECK_OK(rf_npz_write(path, &item, 1, NULL));
	CHECK_OK(rf_npz_open(path, &z));
	rf_tensor *back = NULL;
	if (z)
		CHECK_FAILS(rf_npz_read(z, "value", &back), RF_ERR_INVALID, "one.npz: no tensor named 'value'");
	CHECK(back == NULL);
	rf_npz_close(z);

	/* Flipping a data byte of the stored member breaks its CRC: a read error naming the
	** member, never wrong values. */
	size_t n;
	uint8_t *bytes = rf_ft_read(path, &n);
	const float *data = t->host;
	for (size_t i = 0; bytes && i + sizeof *data <= n; i++)
		if (!memcmp(bytes + i, data, sizeof *data)) {
			bytes[i] ^= 0x40;
			break;
		}
	const char *bad = rf_ft_tmp("corrupt.npz");
	rf_ft_write(bad, bytes, n);
	free(bytes);
	z = NULL;
	CHECK_OK(rf_npz_open(bad, &z));
	if (z)
		CHECK_FAILS(rf_npz_read(z, "values", &back), RF_ERR_FORMAT, "corrupt.npz: values");
	CHECK(back == NULL);
	rf_npz_close(z);

	/* Two members of one name (b.npy renamed a.npy in place): NumPy reads the last, this
	** reader read the first; now the archive is refused as ambiguous. */
	struct rf_st_item two[2] = { { "a", t }, { "b", t } };
	const char *pair = rf_ft_tmp("pair.npz");
	CHECK_OK(rf_npz_write(pair, two, 2, NULL));
	bytes = rf_ft_read(pair, &n);
	for (size_t i = 0; bytes && i + 5 <= n; i++)
		if (!memcmp(bytes + i, "b.npy", 5))
			bytes[i] = 'a';
	const char *dup = rf_ft_tmp("dup.npz");
	rf_ft_write(dup, bytes, n);
	free(bytes);
	z = NULL;
	CHECK_FAILS(rf_npz_open(dup, &z), RF_ERR_FORMAT, "dup.npz: the member 'a.npy' appears more than once");
	CHECK(z == NULL);
	rf_npz_close(z);
	rf_tensor_destroy(t);
}

/* An archive holding one member `name` with `text` (stored), written with libzip. */
static void write_archive(const char *path, const char *name, const char *text)
{
	int err = 0;
	zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
	CHECK(za != NULL);
	if (!za)
		return;
	zip_source_t *src = zip_source_buffer(za, text, strlen(text), 0);
	CHECK(src && zip_file_add(za, name, src, ZIP_FL_OVERWRITE) >= 0);
	CHECK(zip_close(za) == 0);
}

/* Metadata that is not a map of strings is refused naming the key; the message was
** formatted from a key freed with its JSON object (a heap-use-after-free). */
static void test_bad_metadata(void)
{
	const char *path = rf_ft_tmp("meta.npz");
	rf_npz *z = NULL;
	write_archive(path, "__metadata__.json", "{\"a_rather_long_key_name\": 1}");
	CHECK_FAILS(rf_npz_open(path, &z), RF_ERR_FORMAT,
		    "the value of 'a_rather_long_key_name' is not a string");
	CHECK(z == NULL);
	write_archive(path, "__metadata__.json", "[1, 2]");
	CHECK_FAILS(rf_npz_open(path, &z), RF_ERR_FORMAT, "__metadata__.json is not a JSON object");
	CHECK(z == NULL);
	rf_npz_close(z);
}

/* Little-endian fields into a byte buffer. */
static uint8_t *put(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* An archive whose one stored member `name` (holding `len` bytes) claims `claimed`
** bytes uncompressed in its zip64 fields, as a crafted file can. */
static void write_claiming_archive(const char *path, const char *name, const void *data,
				   size_t len, uint64_t claimed)
{
	uint8_t buf[1024], *p = buf;
	size_t nl = strlen(name);
	uint32_t crc = (uint32_t)crc32(0L, data, (uInt)len);   /* zlib's is zip's CRC-32 */
	/* local header, zip64 extra field (sizes), data */
	p = put(p, 0x04034b50, 4); p = put(p, 45, 2); p = put(p, 0, 2); p = put(p, 0, 2);
	p = put(p, 0, 4); p = put(p, crc, 4); p = put(p, 0xFFFFFFFF, 4); p = put(p, 0xFFFFFFFF, 4);
	p = put(p, nl, 2); p = put(p, 20, 2); memcpy(p, name, nl); p += nl;
	p = put(p, 1, 2); p = put(p, 16, 2); p = put(p, claimed, 8); p = put(p, len, 8);
	memcpy(p, data, len); p += len;
	uint8_t *central = p;
	p = put(p, 0x02014b50, 4); p = put(p, 45, 2); p = put(p, 45, 2); p = put(p, 0, 2);
	p = put(p, 0, 2); p = put(p, 0, 4); p = put(p, crc, 4); p = put(p, 0xFFFFFFFF, 4);
	p = put(p, 0xFFFFFFFF, 4); p = put(p, nl, 2); p = put(p, 20, 2); p = put(p, 0, 2);
	p = put(p, 0, 2); p = put(p, 0, 2); p = put(p, 0, 4); p = put(p, 0, 4);
	memcpy(p, name, nl); p += nl;
	p = put(p, 1, 2); p = put(p, 16, 2); p = put(p, claimed, 8); p = put(p, len, 8);
	size_t cd_len = (size_t)(p - central), cd_off = (size_t)(central - buf);
	p = put(p, 0x06054b50, 4); p = put(p, 0, 2); p = put(p, 0, 2); p = put(p, 1, 2);
	p = put(p, 1, 2); p = put(p, cd_len, 4); p = put(p, cd_off, 4); p = put(p, 0, 2);
	rf_ft_write(path, buf, (size_t)(p - buf));
}

/* A member claiming more bytes than its compressed data can hold (or than the machine
** has) is refused before anything is allocated: malloc of the claimed 2^45 bytes
** aborted the sanitizer build. */
static void test_claimed_sizes(void)
{
	static const int64_t d3[] = { 3 };
	rf_tensor *t = host_tensor(RF_F32, 1, d3);
	const char *npy = rf_ft_tmp("member.npy");
	CHECK_OK(rf_npy_write(npy, t));
	size_t n;
	uint8_t *bytes = rf_ft_read(npy, &n);
	const char *path = rf_ft_tmp("claims.npz");
	rf_npz *z = NULL;
	rf_tensor *back = NULL;
	write_claiming_archive(path, "values.npy", bytes, n, n);     /* honest: reads */
	CHECK_OK(rf_npz_open(path, &z));
	if (z)
		CHECK_OK(rf_npz_read(z, "values", &back));
	CHECK(same_tensor(t, back));
	rf_tensor_destroy(back);
	rf_npz_close(z);
	z = NULL;
	write_claiming_archive(path, "values.npy", bytes, n, UINT64_C(1) << 45);
	CHECK_OK(rf_npz_open(path, &z));
	back = NULL;
	if (z)
		CHECK_FAILS(rf_npz_read(z, "values", &back), RF_ERR_FORMAT,
			    "claims.npz: values: the archive claims 35184372088832 bytes for the member");
	CHECK(back == NULL);
	rf_npz_close(z);
	z = NULL;
	write_claiming_archive(path, "__metadata__.json", "{}", 2, UINT64_C(1) << 45);
	CHECK_FAILS(rf_npz_open(path, &z), RF_ERR_FORMAT, "the archive claims 35184372088832 bytes");
	CHECK(z == NULL);
	free(bytes);
	rf_tensor_destroy(t);
}

/* }===== */

int main(void)
{
	rf_ft_setup();
	rf_rand_seed(9);
	test_numpy_archives();
	test_roundtrip();
	test_bf16();
	test_empty();
	test_write_errors();
	test_read_errors();
	test_bad_metadata();
	test_claimed_sizes();
	rf_ft_cleanup();
	return rf_test_finish();
}
