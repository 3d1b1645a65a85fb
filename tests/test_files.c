/*
** test_files.c: safetensors files without a device: writing (round trips of every
** dtype through the reader, byte-identical rewrites of the golden files, refused
** arguments), every malformed file the reader must reject with a message naming the
** file and the problem, and a robustness loop over truncated and corrupted copies of a
** golden file (which must never crash, only succeed or fail with RF_ERR_FORMAT).
** The .npy side is in test_npy.c.
*/
#include "harness.h"
#include "filetest.h"
#include "safetensors.h"
#include "safetensors_write.h"
#include "status.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* {===== helpers */

/* A file made of an 8-byte length (`len`, or the header's own length for AUTO), the
** header text and `data` bytes of zeros. */
#define AUTO UINT64_MAX
static const char *st_make(const char *name, uint64_t len, const char *header, size_t data)
{
	size_t hn = strlen(header);
	uint8_t *buf = calloc(1, 8 + hn + data);
	if (len == AUTO)
		len = hn;
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(len >> (8 * i));
	memcpy(buf + 8, header, hn);
	const char *path = rf_ft_tmp(name);
	rf_ft_write(path, buf, 8 + hn + data);
	free(buf);
	return path;
}

/* Opening `path` must fail with `want`, a message holding `needle` and the path, and
** no reader. */
static void expect_open_fails(const char *path, enum rf_status want, const char *needle, int line)
{
	rf_safetensors *st = NULL;
	rf_ft_check_fails(rf_safetensors_open(path, &st), want, needle, path, path, __FILE__, line);
	CHECK(st == NULL);
	rf_safetensors_close(st);
}
#define REJECTS(path, needle) expect_open_fails((path), RF_ERR_FORMAT, (needle), __LINE__)

static rf_tensor *random_host(enum rf_dtype dt, struct rf_shape s)
{
	rf_tensor *t = NULL;
	CHECK_OK(rf_tensor_create_host(dt, &s, &t));
	uint8_t *p = t->host;
	for (uint64_t i = 0; i < rf_tensor_nbytes(t); i++)
		p[i] = (uint8_t)rf_rand_u64();
	return t;
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

/* }===== */

/* {===== writing */

/* Every dtype, 0-d and zero-size tensors, names that need JSON escaping or are not
** ASCII, and metadata: all read back the same. */
static void test_write_roundtrip(void)
{
	rf_rand_seed(7);
	struct rf_st_item items[] = {
		{ "f32", random_host(RF_F32, rf_shape_of(2, (int64_t)3, (int64_t)4)) },
		{ "f16", random_host(RF_F16, rf_shape_of(1, (int64_t)5)) },
		{ "bf16", random_host(RF_BF16, rf_shape_of(3, (int64_t)2, (int64_t)2, (int64_t)2)) },
		{ "i64", random_host(RF_I64, rf_shape_of(1, (int64_t)3)) },
		{ "odd.u8", random_host(RF_U8, rf_shape_of(1, (int64_t)9)) },
		{ "i32", random_host(RF_I32, rf_shape_of(2, (int64_t)1, (int64_t)7)) },
		{ "empty", random_host(RF_U8, rf_shape_of(2, (int64_t)0, (int64_t)4)) },
		{ "scalar", random_host(RF_F32, rf_shape_of(0)) },
		{ "q\"uote\\d/", random_host(RF_I32, rf_shape_of(1, (int64_t)2)) },
		{ "\xce\xb2.weight", random_host(RF_F16, rf_shape_of(1, (int64_t)1)) },
	};
	uint32_t n = RF_ARRAY_LEN(items);
	const char *md[] = { "format", "pt", "note", "two\nlines \"quoted\" \xc3\xbc", NULL };
	const char *path = rf_ft_tmp("roundtrip.safetensors");
	CHECK_OK(rf_safetensors_write(path, items, n, md));
	CHECK(!rf_ft_exists(rf_ft_tmp("roundtrip.safetensors.tmp")));

	rf_safetensors *st = NULL;
	CHECK_OK(rf_safetensors_open(path, &st));
	uint64_t data_bytes = 0;
	if (st) {
		CHECK(rf_safetensors_count(st) == n);
		for (uint32_t i = 0; i < n; i++) {
			const struct rf_st_entry *e = rf_safetensors_find(st, items[i].name);
			const rf_tensor *t = items[i].tensor;
			CHECK(e && e->dtype == t->dtype && rf_shape_equal(&e->shape, &t->shape));
			CHECK(e && e->nbytes == rf_tensor_nbytes(t) && !memcmp(e->data, t->host, e->nbytes));
			data_bytes += rf_tensor_nbytes(t);
		}
		CHECK(!strcmp(rf_safetensors_metadata(st, "format"), "pt"));
		CHECK(!strcmp(rf_safetensors_metadata(st, "note"), md[3]));
		CHECK(!strcmp(rf_safetensors_metadata_key(st, 0), "format"));
		CHECK(!strcmp(rf_safetensors_metadata_key(st, 1), "note"));
		CHECK(rf_safetensors_metadata_key(st, 2) == NULL);
		rf_safetensors_close(st);
	}
	/* Layout: header padded with spaces to a multiple of 8, data right after it. */
	size_t size;
	uint8_t *bytes = rf_ft_read(path, &size);
	uint64_t hlen = bytes ? le64(bytes) : 0;
	CHECK(hlen % 8 == 0 && 8 + hlen + data_bytes == size);
	CHECK(bytes && bytes[8] == '{');
	for (uint64_t i = 8 + hlen; bytes && i > 8 && bytes[i - 1] != '}'; i--)
		CHECK(bytes[i - 1] == ' ');
	free(bytes);
	for (uint32_t i = 0; i < n; i++)
		rf_tensor_destroy((rf_tensor *)items[i].tensor);
}

static void test_write_empty(void)
{
	const char *path = rf_ft_tmp("empty.safetensors");
	CHECK_OK(rf_safetensors_write(path, NULL, 0, NULL));
	rf_safetensors *st = NULL;
	CHECK_OK(rf_safetensors_open(path, &st));
	CHECK(st && rf_safetensors_count(st) == 0 && rf_safetensors_metadata_key(st, 0) == NULL);
	rf_safetensors_close(st);
	size_t size;
	uint8_t *bytes = rf_ft_read(path, &size);
	CHECK(size == 16 && bytes && !memcmp(bytes + 8, "{}      ", 8));
	free(bytes);
}

/* Reading a golden file and writing its tensors and metadata back in the same order
** must give the same bytes: the writer matches the reference writer's layout. */
static void rewrite_golden(const char *rel)
{
	const char *golden = rf_ft_data(rel);
	rf_safetensors *st = NULL;
	CHECK_OK(rf_safetensors_open(golden, &st));
	if (!st)
		return;
	uint32_t n = rf_safetensors_count(st), nmd = 0;
	while (rf_safetensors_metadata_key(st, nmd))
		nmd++;
	struct rf_st_item *items = calloc(n ? n : 1, sizeof *items);
	const char **md = calloc(2 * nmd + 1, sizeof *md);
	for (uint32_t i = 0; i < n; i++) {
		rf_tensor *t = NULL;
		items[i].name = rf_safetensors_entry(st, i)->name;
		CHECK_OK(rf_safetensors_read(st, items[i].name, &t));
		items[i].tensor = t;
	}
	for (uint32_t i = 0; i < nmd; i++) {
		md[2 * i] = rf_safetensors_metadata_key(st, i);
		md[2 * i + 1] = rf_safetensors_metadata(st, md[2 * i]);
	}
	const char *copy = rf_ft_tmp("golden-copy.safetensors");
	CHECK_OK(rf_safetensors_write(copy, items, n, md));
	if (!rf_ft_same_file(golden, copy)) {
		fprintf(stderr, "rewriting %s changed its bytes\n", rel);
		rf_test_failures++;
	}
	for (uint32_t i = 0; i < n; i++)
		rf_tensor_destroy((rf_tensor *)items[i].tensor);
	free(items);
	free(md);
	rf_safetensors_close(st);
}

static void test_write_golden(void)
{
	rewrite_golden("tiny-gelu/reference.safetensors");
	rewrite_golden("tiny-gelu/segmentation.safetensors");
	rewrite_golden("tiny-gelu/textspan.safetensors");
	rewrite_golden("tiny-gelu/model/open_clip_model.safetensors");
	rewrite_golden("tokenizer/tokens.safetensors");
}

/* A refused write leaves neither the file nor its temporary. */
static void expect_write_fails(const char *name, const struct rf_st_item *items, uint32_t n,
			       const char *const *md, enum rf_status want, const char *needle, int line)
{
	const char *path = rf_ft_tmp(name);
	rf_ft_check_fails(rf_safetensors_write(path, items, n, md), want, needle, path, name, __FILE__, line);
	CHECK(!rf_ft_exists(path));
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(!rf_ft_exists(tmp));
}

static void test_write_errors(void)
{
	rf_tensor *t = random_host(RF_F32, rf_shape_of(1, (int64_t)2));
	struct rf_st_item dup[] = { { "w", t }, { "b", t }, { "w", t } };
	expect_write_fails("dup.safetensors", dup, 3, NULL, RF_ERR_INVALID, "'w' is used twice", __LINE__);
	struct rf_st_item reserved[] = { { "__metadata__", t } };
	expect_write_fails("res.safetensors", reserved, 1, NULL, RF_ERR_INVALID, "reserved", __LINE__);
	struct rf_st_item unnamed[] = { { NULL, t } };
	expect_write_fails("null.safetensors", unnamed, 1, NULL, RF_ERR_INVALID, "without a name",
			   __LINE__);
	struct rf_st_item bad_utf8[] = { { "x\xff", t } };
	expect_write_fails("utf8.safetensors", bad_utf8, 1, NULL, RF_ERR_INVALID, "not valid UTF-8",
			   __LINE__);
	struct rf_st_item one[] = { { "w", t } };
	const char *no_value[] = { "k", NULL };
	expect_write_fails("md1.safetensors", one, 1, no_value, RF_ERR_INVALID, "'k' has no value",
			   __LINE__);
	const char *md_dup[] = { "k", "1", "k", "2", NULL };
	expect_write_fails("md2.safetensors", one, 1, md_dup, RF_ERR_INVALID, "'k' is used twice",
			   __LINE__);
	const char *md_utf8[] = { "k", "\xc0\xaf", NULL };
	expect_write_fails("md3.safetensors", one, 1, md_utf8, RF_ERR_INVALID, "not valid UTF-8",
			   __LINE__);
	expect_write_fails("no-such-dir/x.safetensors", one, 1, NULL, RF_ERR_IO, "cannot create",
			   __LINE__);

	/* Writing over an existing file replaces it whole. */
	const char *path = rf_ft_tmp("twice.safetensors");
	struct rf_st_item two[] = { { "a", t }, { "b", t } };
	CHECK_OK(rf_safetensors_write(path, two, 2, NULL));
	CHECK_OK(rf_safetensors_write(path, one, 1, NULL));
	rf_safetensors *st = NULL;
	CHECK_OK(rf_safetensors_open(path, &st));
	CHECK(st && rf_safetensors_count(st) == 1 && rf_safetensors_find(st, "w"));
	rf_safetensors_close(st);
	rf_tensor_destroy(t);
}

/* }===== */

/* {===== malformed files */

#define F32_2x3 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}"

static const struct {
	const char *what, *header;
	size_t data;
	const char *needle;
} header_cases[] = {
	{ "data cut short", F32_2x3, 20, "past the end of the file" },
	{ "offsets out of range",
	  "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[100,108]}}", 8, "past the end" },
	{ "overlapping ranges",
	  "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, "overlap" },
	{ "same range twice",
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	  "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "overlap" },
	{ "a hole", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	  "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}", 12, "belong to no tensor" },
	{ "trailing bytes", F32_2x3, 30, "6 trailing bytes" },
	{ "begin > end", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
	  "begin after end" },
	{ "unknown dtype", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
	  "unknown dtype \"F64\"" },
	{ "dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	  "no dtype string" },
	{ "shape/size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
	  20, "has 20 bytes of data but shape [2, 3] of F32 needs 24" },
	{ "negative shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1,4],\"data_offsets\":[0,4]}}", 4,
	  "not a non-negative integer" },
	{ "fractional shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,2]}}", 2,
	  "not a non-negative integer" },
	{ "string shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[\"2\"],\"data_offsets\":[0,2]}}", 2,
	  "not a non-negative integer" },
	{ "shape not an array", "{\"a\":{\"dtype\":\"U8\",\"shape\":2,\"data_offsets\":[0,2]}}", 2,
	  "no shape array" },
	{ "nine dimensions",
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
	  "at most 8" },
	{ "shape overflow",
	  "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
	  "too large" },
	{ "shape overflow behind a zero",
	  "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4611686018427387904],"
	  "\"data_offsets\":[0,0]}}", 0, "too large" },
	{ "negative offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-2,0]}}", 2,
	  "data_offsets" },
	{ "three offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1,2]}}", 2,
	  "data_offsets" },
	{ "no offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2]}}", 2, "data_offsets" },
	{ "entry not an object", "{\"a\":3}", 0, "'a' is not a JSON object" },
	{ "non-UTF-8 byte", "{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
	  "not valid UTF-8" },
	{ "overlong UTF-8", "{\"\xc0\xaf\":{}}", 0, "not valid UTF-8" },
	{ "UTF-16 surrogate", "{\"\xed\xa0\x80\":{}}", 0, "not valid UTF-8" },
	{ "invalid JSON", "{\"a\":{\"dtype\":\"U8\",", 0, "not valid JSON" },
	{ "empty header", "", 0, "not valid JSON" },
	{ "non-object header", "[1, 2, 3]", 0, "not a JSON object" },
	{ "duplicate keys", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
	  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "duplicate" },
	{ "__metadata__ not an object", "{\"__metadata__\":[\"x\"]}", 0,
	  "__metadata__ is not an object" },
	{ "__metadata__ value not a string", "{\"__metadata__\":{\"n\":3}}", 0,
	  "__metadata__ value of 'n' is not a string" },
};

static void test_malformed(void)
{
	char name[64];
	for (size_t i = 0; i < RF_ARRAY_LEN(header_cases); i++) {
		snprintf(name, sizeof name, "case%zu.safetensors", i);
		const char *path = st_make(name, AUTO, header_cases[i].header, header_cases[i].data);
		size_t before = (size_t)rf_test_failures;
		REJECTS(path, header_cases[i].needle);
		if ((size_t)rf_test_failures != before)
			fprintf(stderr, "  (case: %s)\n", header_cases[i].what);
	}
	/* Files too short to hold the 8-byte length. */
	rf_ft_write(rf_ft_tmp("zero.safetensors"), "", 0);
	REJECTS(rf_ft_tmp("zero.safetensors"), "only 0 bytes");
	rf_ft_write(rf_ft_tmp("five.safetensors"), "\x02\0\0\0\0", 5);
	REJECTS(rf_ft_tmp("five.safetensors"), "only 5 bytes");
	/* Header lengths the file cannot hold, up to absurd ones that would overflow. */
	REJECTS(st_make("long.safetensors", 1000, "{}", 0), "header length 1000 is larger");
	REJECTS(st_make("huge.safetensors", 1ull << 63, "{}", 0),
		"header length 9223372036854775808 is larger");
	REJECTS(st_make("max.safetensors", UINT64_MAX - 1, "{}", 0), "header length");
	/* Not there at all, or not a file. */
	expect_open_fails(rf_ft_tmp("missing.safetensors"), RF_ERR_IO, "cannot open", __LINE__);
	expect_open_fails(rf_ft_tmp(""), RF_ERR_IO, "is a folder, not a regular file", __LINE__);
	/* A FIFO with no writer blocked the open forever; a device is refused too. */
	const char *fifo = rf_ft_tmp("fifo.safetensors");
	CHECK(mkfifo(fifo, 0600) == 0);
	alarm(60);
	expect_open_fails(fifo, RF_ERR_IO, "is a FIFO (named pipe), not a regular file", __LINE__);
	alarm(0);
	expect_open_fails("/dev/zero", RF_ERR_IO, "is a device, not a regular file", __LINE__);
	unlink(fifo);

	/* The edges that are valid: zero-size tensors anywhere in range, no tensors. */
	rf_safetensors *st = NULL;
	CHECK_OK(rf_safetensors_open(st_make("edge.safetensors", AUTO,
		"{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
		"\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		"\"__metadata__\":{}}", 4), &st));
	CHECK(st && rf_safetensors_count(st) == 2);
	rf_safetensors_close(st);
}

/* }===== */

/* {===== robustness */

static void open_must_not_crash(const char *path, bool whole)
{
	rf_safetensors *st = NULL;
	enum rf_status s = rf_safetensors_open(path, &st);
	if (whole ? s != RF_OK : s != RF_OK && s != RF_ERR_FORMAT) {
		fprintf(stderr, "corrupted copy: %s (%s)\n", rf_status_str(s), rf_error_message());
		rf_test_failures++;
	}
	rf_safetensors_close(st);
}

static int by_size_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x < y) - (x > y);
}

/* The golden file cut at many lengths (every one through the header, a fixed-seed
** sample of the rest), longest first so one ftruncate per length suffices. */
static void truncations(const char *path, const uint8_t *bytes, size_t size, size_t header_end)
{
	enum { SAMPLES = 300 };
	size_t *lengths = malloc((header_end + SAMPLES) * sizeof *lengths), n = 0;
	for (size_t len = 0; len < header_end; len++)
		lengths[n++] = len;
	for (int i = 0; i < SAMPLES; i++)
		lengths[n++] = header_end + (size_t)(rf_rand_u64() % (size - header_end));
	qsort(lengths, n, sizeof *lengths, by_size_desc);
	rf_ft_write(path, bytes, size);
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	for (size_t i = 0; i < n && fd >= 0; i++) {
		CHECK(ftruncate(fd, (off_t)lengths[i]) == 0);
		rf_safetensors *st = NULL;
		enum rf_status s = rf_safetensors_open(path, &st);
		if (s != RF_ERR_FORMAT) {
			fprintf(stderr, "cut at %zu: %s (%s)\n", lengths[i], rf_status_str(s), rf_error_message());
			rf_test_failures++;
		}
		rf_safetensors_close(st);
	}
	if (fd >= 0)
		close(fd);
	free(lengths);
}

/* Random byte changes in the length and the header (1 to 4 bytes at a time), each
** undone after the open. */
static void flips(const char *path, const uint8_t *bytes, size_t size, size_t header_end)
{
	rf_ft_write(path, bytes, size);
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	for (int round = 0; round < 3000 && fd >= 0; round++) {
		size_t at[4];
		int k = 1 + (int)(rf_rand_u64() % 4);
		for (int j = 0; j < k; j++) {
			at[j] = (size_t)(rf_rand_u64() % header_end);
			uint8_t b = bytes[at[j]] ^ (uint8_t)(1 + rf_rand_u64() % 255);
			CHECK(pwrite(fd, &b, 1, (off_t)at[j]) == 1);
		}
		open_must_not_crash(path, false);
		for (int j = 0; j < k; j++)
			CHECK(pwrite(fd, &bytes[at[j]], 1, (off_t)at[j]) == 1);
	}
	if (fd >= 0)
		close(fd);
	open_must_not_crash(path, true);
}

static void test_robustness(void)
{
	size_t size;
	uint8_t *bytes = rf_ft_read(rf_ft_data("tiny-gelu/reference.safetensors"), &size);
	if (!bytes || size < 8)
		return;
	size_t header_end = 8 + (size_t)le64(bytes);
	CHECK(header_end < size);
	rf_rand_seed(20240229);
	const char *path = rf_ft_tmp("fuzz.safetensors");
	truncations(path, bytes, size, header_end);
	flips(path, bytes, size, header_end);
	free(bytes);
}

/* }===== */

int main(void)
{
	rf_ft_setup();
	test_write_roundtrip();
	test_write_empty();
	test_write_golden();
	test_write_errors();
	test_malformed();
	test_robustness();
	rf_ft_cleanup();
	return rf_test_finish();
}
