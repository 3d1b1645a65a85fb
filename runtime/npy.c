/*
** npy.c: NumPy .npy files (see npy.h). Runtime layer (L2).
**
** Layout (numpy/lib/format.py): the magic "\x93NUMPY", a major and a minor version
** byte, the header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), the
** header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False,
** 'shape': (2, 3), } padded with spaces and ended by a newline, then the raw data.
**
** The header is parsed as the small subset of Python literal syntax it can hold for the
** dtypes refract supports, not evaluated: every other construct is an error, so a
** hostile header can only be rejected. The writer reproduces NumPy's own header byte
** for byte (same spacing, spare room for growing the first axis, 64-byte alignment),
** so files written here are identical to np.save's.
*/
#include "npy.h"
#include "file_in.h"
#include "file_out.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       ".npy data is read and written as little-endian straight from memory");

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
/* Far above any header refract can meet (NumPy itself refuses 10,000 characters). */
#define MAX_HEADER (1u << 20)
/* NumPy aligns the data to 64 bytes and leaves room for the first axis to grow to this
** many digits (numpy.lib.format.ARRAY_ALIGN and GROWTH_AXIS_MAX_DIGITS). */
#define ARRAY_ALIGN 64
#define GROWTH_DIGITS 21

/* The accepted descriptors; for writing, the first one of a dtype is used. */
static const struct { const char *descr; enum rf_dtype dt; } descrs[] = {
	{ "<f4", RF_F32 }, { "<f2", RF_F16 }, { "<i8", RF_I64 }, { "<i4", RF_I32 },
	{ "|u1", RF_U8 }, { "<u1", RF_U8 },
};

/* {===== header parsing */

struct parser {
	const char *path;
	const char *start, *p, *end;
	bool have_descr, have_fortran, have_shape;
	enum rf_dtype dtype;
	struct rf_shape shape;
};

/* A syntax error: the header is not the dict literal NumPy writes. */
static enum rf_status malformed(const struct parser *ps, const char *problem)
{
	return rf_error(RF_ERR_FORMAT, "%s: malformed .npy header: %s (at byte %td of the header)",
			ps->path, problem, ps->p - ps->start);
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* Consumes `c` (after optional spaces) if it is next. */
static bool accept(struct parser *ps, char c)
{
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	return false;
}

/* Consumes `word` if it is next and not followed by more identifier characters. */
static bool accept_word(struct parser *ps, const char *word)
{
	skip_space(ps);
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	const char *after = ps->p + n;
	if (after < ps->end && (*after == '_' || (*after >= 'a' && *after <= 'z') ||
				(*after >= 'A' && *after <= 'Z') || (*after >= '0' && *after <= '9')))
		return false;
	ps->p = after;
	return true;
}

/* A plain quoted string ('...' or "...") without escapes, into buf. */
static enum rf_status parse_string(struct parser *ps, char *buf, size_t size)
{
	skip_space(ps);
	if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
		return malformed(ps, "expected a quoted string");
	char quote = *ps->p++;
	size_t n = 0;
	for (; ps->p < ps->end && *ps->p != quote; ps->p++) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '\\' || c < 0x20 || c >= 0x7f)
			return malformed(ps, "unexpected character in a string");
		if (n + 1 >= size)
			return malformed(ps, "string too long");
		buf[n++] = (char)c;
	}
	if (ps->p >= ps->end)
		return malformed(ps, "unterminated string");
	ps->p++;
	buf[n] = '\0';
	return RF_OK;
}

static enum rf_status parse_descr(struct parser *ps)
{
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == '[')
		return rf_error(RF_ERR_FORMAT, "%s: structured dtypes (a descr list) are not supported",
				ps->path);
	char descr[32];
	enum rf_status s = parse_string(ps, descr, sizeof descr);
	if (s != RF_OK)
		return s;
	for (size_t i = 0; i < RF_ARRAY_LEN(descrs); i++)
		if (!strcmp(descr, descrs[i].descr)) {
			ps->dtype = descrs[i].dt;
			return RF_OK;
		}
	if (descr[0] == '>')
		return rf_error(RF_ERR_FORMAT, "%s: big-endian dtype '%s' is not supported (convert it "
				"with a.astype(a.dtype.newbyteorder('<')))", ps->path, descr);
	return rf_error(RF_ERR_FORMAT, "%s: unsupported dtype '%s' (supported: <f4 <f2 <i8 <i4 |u1)",
			ps->path, descr);
}

static enum rf_status parse_fortran(struct parser *ps)
{
	if (accept_word(ps, "False"))
		return RF_OK;
	if (accept_word(ps, "True"))
		return rf_error(RF_ERR_FORMAT, "%s: fortran_order True is not supported (save a C-ordered "
				"array: np.ascontiguousarray(a))", ps->path);
	return malformed(ps, "fortran_order must be True or False");
}

/* A non-negative decimal integer, as Python writes an int. */
static enum rf_status parse_dim(struct parser *ps, int64_t *out)
{
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == '-')
		return rf_error(RF_ERR_FORMAT, "%s: the shape has a negative dimension", ps->path);
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return malformed(ps, "expected an integer in the shape");
	int64_t v = 0;
	for (; ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; ps->p++) {
		if (v > (INT64_MAX - 9) / 10)
			return rf_error(RF_ERR_FORMAT, "%s: a shape dimension is too large", ps->path);
		v = v * 10 + (*ps->p - '0');
	}
	*out = v;
	return RF_OK;
}

/* A tuple of ints: (), (n,), (a, b), (a, b,). A lone (n) is an int in Python, not a
** tuple, so NumPy would refuse it too. */
static enum rf_status parse_shape(struct parser *ps)
{
	if (!accept(ps, '('))
		return malformed(ps, "the shape must be a tuple");
	struct rf_shape *sh = &ps->shape;
	bool comma = false;
	sh->ndim = 0;
	while (!accept(ps, ')')) {
		if (sh->ndim > 0 && !comma)
			return malformed(ps, "expected ',' or ')' in the shape");
		if (sh->ndim == RF_MAX_DIMS)
			return rf_error(RF_ERR_FORMAT, "%s: the shape has more than %d dimensions", ps->path,
					RF_MAX_DIMS);
		enum rf_status s = parse_dim(ps, &sh->dim[sh->ndim++]);
		if (s != RF_OK)
			return s;
		comma = accept(ps, ',');
	}
	if (sh->ndim == 1 && !comma)
		return malformed(ps, "a one-dimensional shape needs a trailing comma, as in (5,)");
	return RF_OK;
}

static enum rf_status parse_entry(struct parser *ps)
{
	char key[32];
	enum rf_status s = parse_string(ps, key, sizeof key);
	if (s != RF_OK)
		return s;
	bool *seen = !strcmp(key, "descr") ? &ps->have_descr
		: !strcmp(key, "fortran_order") ? &ps->have_fortran
		: !strcmp(key, "shape") ? &ps->have_shape : NULL;
	if (!seen)
		return rf_error(RF_ERR_FORMAT, "%s: malformed .npy header: unexpected key '%s'", ps->path,
				key);
	if (*seen)
		return rf_error(RF_ERR_FORMAT, "%s: malformed .npy header: key '%s' appears twice",
				ps->path, key);
	*seen = true;
	if (!accept(ps, ':'))
		return malformed(ps, "expected ':' after a key");
	return seen == &ps->have_descr ? parse_descr(ps)
		: seen == &ps->have_fortran ? parse_fortran(ps) : parse_shape(ps);
}

static enum rf_status parse_header(struct parser *ps)
{
	if (!accept(ps, '{'))
		return malformed(ps, "expected '{'");
	bool comma = true;
	while (!accept(ps, '}')) {
		if (!comma)
			return malformed(ps, "expected ',' or '}'");
		enum rf_status s = parse_entry(ps);
		if (s != RF_OK)
			return s;
		comma = accept(ps, ',');
	}
	skip_space(ps);
	if (ps->p != ps->end)
		return malformed(ps, "unexpected text after the dict");
	if (!ps->have_descr || !ps->have_fortran || !ps->have_shape)
		return rf_error(RF_ERR_FORMAT, "%s: malformed .npy header: it lacks '%s'", ps->path,
				!ps->have_descr ? "descr" : !ps->have_fortran ? "fortran_order" : "shape");
	return RF_OK;
}

/* }===== */

/* {===== reading */

/* Reads exactly n bytes at `offset`; the size was checked, so a short read means the
** file changed underneath. */
static enum rf_status read_at(int fd, const char *path, uint64_t offset, void *buf, uint64_t n)
{
	char *p = buf;
	while (n > 0) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t r = pread(fd, p, chunk, (off_t)offset);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return rf_error(RF_ERR_IO, "%s: reading: %s", path,
					r < 0 ? strerror(errno) : "unexpected end of file (file changed?)");
		p += r;
		offset += (uint64_t)r;
		n -= (uint64_t)r;
	}
	return RF_OK;
}

/* The magic, version and header length from the file's first min(size, 12) bytes `b`:
** sets *prefix (bytes before the header) and *hlen. */
static enum rf_status parse_prefix(const uint8_t *b, const char *path, uint64_t size, uint64_t *prefix,
				   uint64_t *hlen)
{
	if (size < 10)
		return rf_error(RF_ERR_FORMAT, "%s: only %llu bytes: too short for a .npy file (empty or "
				"truncated?)", path, (unsigned long long)size);
	if (memcmp(b, MAGIC, MAGIC_LEN) != 0)
		return rf_error(RF_ERR_FORMAT, "%s: not a .npy file (bad magic bytes)", path);
	if (b[7] != 0 || b[6] < 1 || b[6] > 3)
		return rf_error(RF_ERR_FORMAT, "%s: unsupported .npy format version %u.%u (known: 1.0, "
				"2.0, 3.0)", path, b[6], b[7]);
	if (b[6] == 1) {
		*prefix = 10;
		*hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
	} else {
		if (size < 12)
			return rf_error(RF_ERR_FORMAT, "%s: only %llu bytes: truncated inside the header "
					"length", path, (unsigned long long)size);
		*prefix = 12;
		*hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
			(uint64_t)b[11] << 24;
	}
	if (*hlen > size - *prefix)
		return rf_error(RF_ERR_FORMAT, "%s: header length %llu is past the end of the file (%llu "
				"bytes follow it; truncated?)", path, (unsigned long long)*hlen,
				(unsigned long long)(size - *prefix));
	if (*hlen > MAX_HEADER)
		return rf_error(RF_ERR_FORMAT, "%s: header length %llu is implausibly large", path,
				(unsigned long long)*hlen);
	return RF_OK;
}

static enum rf_status read_prefix(int fd, const char *path, uint64_t size, uint64_t *prefix,
				  uint64_t *hlen)
{
	uint8_t b[12];
	if (size >= 10) {
		enum rf_status s = read_at(fd, path, 0, b, size < 12 ? 10 : 12);
		if (s != RF_OK)
			return s;
	}
	return parse_prefix(b, path, size, prefix, hlen);
}

/* The data must be exactly shape x dtype: less is a truncated file, more is trailing
** garbage (a writer bug or a different format). */
static enum rf_status check_data_size(const struct parser *ps, uint64_t have)
{
	/* Checked once both the shape and the dtype are known (keys come in any order). */
	if (rf_shape_check(&ps->shape, ps->dtype, ps->path) != RF_OK)
		return rf_error(RF_ERR_FORMAT, "%s: the shape is too large to address", ps->path);
	uint64_t want = (uint64_t)rf_shape_numel(&ps->shape) * rf_dtype_size(ps->dtype);
	if (have == want)
		return RF_OK;
	char shp[160];
	rf_shape_str(&ps->shape, shp, sizeof shp);
	return rf_error(RF_ERR_FORMAT, "%s: %llu bytes of data, but shape %s of %s needs %llu (%s)",
			ps->path, (unsigned long long)have, shp, rf_dtype_name(ps->dtype),
			(unsigned long long)want, have < want ? "truncated file" : "trailing bytes");
}

static enum rf_status read_fd(int fd, const char *path, uint64_t size, rf_tensor **out)
{
	uint64_t prefix = 0, hlen = 0;
	enum rf_status s = read_prefix(fd, path, size, &prefix, &hlen);
	if (s != RF_OK)
		return s;
	char *text = malloc(hlen ? hlen : 1);
	if (!text)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating the header", path);
	struct parser ps = { .path = path, .start = text, .p = text, .end = text + hlen };
	s = read_at(fd, path, prefix, text, hlen);
	if (s == RF_OK)
		s = parse_header(&ps);
	free(text);
	if (s == RF_OK)
		s = check_data_size(&ps, size - prefix - hlen);
	if (s == RF_OK)
		s = rf_tensor_create_host(ps.dtype, &ps.shape, out);
	if (s == RF_OK && (s = read_at(fd, path, prefix + hlen, (*out)->host,
				       rf_tensor_nbytes(*out))) != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return s;
}

enum rf_status rf_npy_read(const char *path, rf_tensor **out)
{
	*out = NULL;
	int fd;
	uint64_t size;
	enum rf_status s = rf_file_open_read(path, &fd, &size);   /* regular files only */
	if (s != RF_OK)
		return s;
	s = read_fd(fd, path, size, out);
	close(fd);
	return s;
}

enum rf_status rf_npy_parse(const void *data, uint64_t size, const char *name, rf_tensor **out)
{
	*out = NULL;
	const uint8_t *bytes = data;
	uint64_t prefix = 0, hlen = 0;
	enum rf_status s = parse_prefix(bytes, name, size, &prefix, &hlen);
	if (s != RF_OK)
		return s;
	const char *text = (const char *)bytes + prefix;
	struct parser ps = { .path = name, .start = text, .p = text, .end = text + hlen };
	if ((s = parse_header(&ps)) != RF_OK || (s = check_data_size(&ps, size - prefix - hlen)) != RF_OK ||
	    (s = rf_tensor_create_host(ps.dtype, &ps.shape, out)) != RF_OK)
		return s;
	memcpy((*out)->host, bytes + prefix + hlen, rf_tensor_nbytes(*out));
	return RF_OK;
}

/* }===== */

/* {===== writing */

/* Magic, version, length and header exactly as NumPy's np.save writes them, into buf;
** returns the byte count. */
static size_t format_header(const struct rf_shape *s, const char *descr, char *buf, size_t size)
{
	char dims[RF_MAX_DIMS * 24] = "";
	size_t at = 0;
	for (int d = 0; d < s->ndim; d++)
		at += (size_t)snprintf(dims + at, sizeof dims - at, "%s%lld", d ? ", " : "",
				       (long long)s->dim[d]);
	char dict[sizeof dims + 128];
	int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s%s), }",
			 descr, dims, s->ndim == 1 ? "," : "");
	if (s->ndim > 0)
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%*s",
			      GROWTH_DIGITS - snprintf(NULL, 0, "%lld", (long long)s->dim[0]), "");
	/* Version 1.0 stores the length in 2 bytes; 2.0 in 4 if the header ever needs it. */
	size_t hlen = (size_t)n + 1, lenbytes = 2;
	size_t pad = ARRAY_ALIGN - (MAGIC_LEN + 2 + lenbytes + hlen) % ARRAY_ALIGN;
	if (hlen + pad > 0xffff) {
		lenbytes = 4;
		pad = ARRAY_ALIGN - (MAGIC_LEN + 2 + lenbytes + hlen) % ARRAY_ALIGN;
	}
	size_t total = MAGIC_LEN + 2 + lenbytes + hlen + pad;
	RF_ASSERT(total <= size);
	uint32_t len = (uint32_t)(hlen + pad);
	memcpy(buf, MAGIC, MAGIC_LEN);
	buf[6] = lenbytes == 2 ? 1 : 2;
	buf[7] = 0;
	for (size_t i = 0; i < lenbytes; i++)
		buf[8 + i] = (char)(len >> (8 * i));
	char *h = buf + 8 + lenbytes;
	memcpy(h, dict, (size_t)n);
	memset(h + n, ' ', pad);
	h[(size_t)n + pad] = '\n';
	return total;
}

/* NumPy has no bfloat16: such tensors are widened to float32, in bounded chunks. */
static enum rf_status write_bf16_as_f32(struct rf_file_out *f, const uint16_t *src, uint64_t n)
{
	enum { CHUNK = 4096 };
	float buf[CHUNK];
	enum rf_status s = RF_OK;
	for (uint64_t i = 0; i < n && s == RF_OK; i += CHUNK) {
		size_t k = (size_t)RF_MIN(n - i, (uint64_t)CHUNK);
		rf_convert_to_f32(RF_BF16, src + i, buf, k);
		s = rf_file_out_write(f, buf, k * sizeof *buf);
	}
	return s;
}

static enum rf_status write_data(struct rf_file_out *f, const rf_tensor *t)
{
	const void *bytes;
	void *scratch;
	enum rf_status s = rf_file_out_tensor_bytes(t, f->path, &bytes, &scratch);
	if (s != RF_OK)
		return s;
	if (t->dtype == RF_BF16)
		s = write_bf16_as_f32(f, bytes, (uint64_t)rf_tensor_numel(t));
	else
		s = rf_file_out_write(f, bytes, rf_tensor_nbytes(t));
	free(scratch);
	return s;
}

size_t rf_npy_format_header(const rf_tensor *t, char *buf, size_t size)
{
	const char *descr = NULL;
	enum rf_dtype as = t->dtype == RF_BF16 ? RF_F32 : t->dtype;
	for (size_t i = 0; i < RF_ARRAY_LEN(descrs) && !descr; i++)
		if (descrs[i].dt == as)
			descr = descrs[i].descr;
	RF_ASSERT(descr);
	return format_header(&t->shape, descr, buf, size);
}

enum rf_status rf_npy_write(const char *path, const rf_tensor *t)
{
	char header[RF_NPY_HEADER_MAX];
	size_t n = rf_npy_format_header(t, header, sizeof header);
	struct rf_file_out f;
	enum rf_status s = rf_file_out_open(&f, path);
	if (s != RF_OK)
		return s;
	s = rf_file_out_write(&f, header, n);
	if (s == RF_OK)
		s = write_data(&f, t);
	if (s == RF_OK)
		return rf_file_out_commit(&f);
	rf_file_out_abort(&f);
	return s;
}

/* }===== */
