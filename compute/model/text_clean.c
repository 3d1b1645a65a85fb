/*
** text_clean.c: CLIP's text clean-up on code points, exact with the reference Python
** (see text_clean.h and tests/data/tokenizer/README.md). The data that makes it exact
** (HTML5 entities, Python's numeric-reference rules, str.lower) is generated into
** text_tables_entities.c, text_tables_charrefs.c and text_tables_case.c. Compute layer
** (L5; host only).
**
** Everything works on arrays of code points because Python's rules are stated on str
** (e.g. an entity name is at most 32 characters, not bytes). Nothing here keeps state
** between calls, so concurrent calls are safe.
*/
#include "text_clean.h"
#include "text_tables.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

struct cpbuf {
	uint32_t *v;
	size_t n, cap;
};

static bool cp_push(struct cpbuf *b, uint32_t c)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		uint32_t *v = realloc(b->v, cap * sizeof *v);
		if (!v)
			return false;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = c;
	return true;
}

/* {===== UTF-8 */

/* Length of the valid UTF-8 sequence at s (decoded into *cp), or 0 if it is invalid.
** The NUL terminator fails any continuation test, so a short sequence never overreads. */
static int utf8_next(const uint8_t *s, uint32_t *cp)
{
	uint8_t c = s[0];
	int len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, v = c & 0x1fu, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, v = c & 0x0fu, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, v = c & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	for (int k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3fu);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static enum rf_status utf8_decode(const char *text, struct cpbuf *out)
{
	const uint8_t *s = (const uint8_t *)text;
	for (size_t i = 0; s[i];) {
		uint32_t cp;
		int len = utf8_next(s + i, &cp);
		if (!len)
			return rf_error(RF_ERR_INVALID, "text is not valid UTF-8: byte 0x%02x at offset %zu",
					s[i], i);
		if (!cp_push(out, cp))
			return rf_error(RF_ERR_OOM_HOST, "out of host memory cleaning text");
		i += (size_t)len;
	}
	return RF_OK;
}

static size_t utf8_put(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Appends the code points of a (valid, generated) UTF-8 string. */
static bool push_utf8(struct cpbuf *b, const char *s)
{
	for (const uint8_t *p = (const uint8_t *)s; *p;) {
		uint32_t cp;
		int len = utf8_next(p, &cp);
		RF_ASSERT(len > 0);
		if (!cp_push(b, cp))
			return false;
		p += len;
	}
	return true;
}

/* }===== */

/* {===== html.unescape
** Python scans with &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and replaces
** each match; the helpers below return 1 (matched, output appended, *end set), 0 (no
** match: the '&' stays) or -1 (out of memory). */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_cp_map(const void *a, const void *b)
{
	return cmp_u32(&((const struct rf_cp_map *)a)->from, &((const struct rf_cp_map *)b)->from);
}

static int hex_value(uint32_t c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

/* What Python's _replace_charref makes of the number `num` (saturated at 0x110000, which
** behaves like any larger value): a replacement, U+FFFD, nothing, or the code point. */
static int emit_charref(uint32_t num, struct cpbuf *out)
{
	struct rf_cp_map key = {num, 0};
	const struct rf_cp_map *fix = bsearch(&key, rf_html_charref_fixes, rf_html_charref_fix_count,
					      sizeof *fix, cmp_cp_map);
	if (fix)
		return cp_push(out, fix->to) ? 1 : -1;
	if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff)
		return cp_push(out, 0xfffd) ? 1 : -1;
	if (bsearch(&num, rf_html_dropped_codepoints, rf_html_dropped_count, sizeof num, cmp_u32))
		return 1;
	return cp_push(out, num) ? 1 : -1;
}

/* #[0-9]+;? or #[xX][0-9a-fA-F]+;? starting at s[j] (just after the '&'). */
static int numeric_ref(const uint32_t *s, size_t n, size_t j, struct cpbuf *out, size_t *end)
{
	if (j >= n || s[j] != '#')
		return 0;
	size_t k = j + 1;
	uint32_t base = 10;
	if (k + 1 < n && (s[k] == 'x' || s[k] == 'X') && hex_value(s[k + 1]) >= 0) {
		base = 16;
		k++;
	} else if (k >= n || s[k] < '0' || s[k] > '9') {
		return 0;
	}
	uint32_t num = 0;
	for (; k < n; k++) {
		int d = hex_value(s[k]);
		if (d < 0 || (uint32_t)d >= base)
			break;
		num = num * base + (uint32_t)d;
		if (num > 0x110000)
			num = 0x110000;
	}
	if (k < n && s[k] == ';')
		k++;
	*end = k;
	return emit_charref(num, out);
}

static const struct rf_html_entity *entity_find(const char *name, size_t len)
{
	size_t lo = 0, hi = rf_html_entity_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *e = rf_html_entities[mid].name;
		size_t elen = strlen(e);
		int c = memcmp(name, e, len < elen ? len : elen);
		if (c == 0)
			c = len < elen ? -1 : len > elen;
		if (c == 0)
			return &rf_html_entities[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool ends_entity_name(uint32_t c)
{
	return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' ||
	       c == '#' || c == ';';
}

/* [^\t\n\f <&#;]{1,32};? starting at s[j]: the whole name if it is an entity, else the
** longest prefix of at least 2 characters that is one (the rest is kept verbatim). */
static int named_ref(const uint32_t *s, size_t n, size_t j, struct cpbuf *out, size_t *end)
{
	size_t k = j;
	while (k < n && k - j < 32 && !ends_entity_name(s[k]))
		k++;
	if (k == j)
		return 0;
	if (k < n && s[k] == ';')
		k++;
	size_t len = k - j, ascii = 0;
	char name[40];
	while (ascii < len && s[j + ascii] < 0x80) {
		name[ascii] = (char)s[j + ascii];
		ascii++;
	}
	/* Entity names are ASCII, so only the ASCII prefix can match. */
	const struct rf_html_entity *e = ascii == len ? entity_find(name, len) : NULL;
	size_t x = len;
	for (size_t p = len - 1; !e && p >= 2; p--) {
		if (p <= ascii && (e = entity_find(name, p)) != NULL)
			x = p;
	}
	if (!e)
		return 0;
	if (!push_utf8(out, e->value))
		return -1;
	for (size_t i = j + x; i < k; i++) {
		if (!cp_push(out, s[i]))
			return -1;
	}
	*end = k;
	return 1;
}

static bool html_unescape(const struct cpbuf *in, struct cpbuf *out)
{
	const uint32_t *s = in->v;
	for (size_t i = 0; i < in->n;) {
		if (s[i] == '&') {
			size_t end = 0;
			int r = numeric_ref(s, in->n, i + 1, out, &end);
			if (r == 0)
				r = named_ref(s, in->n, i + 1, out, &end);
			if (r < 0)
				return false;
			if (r > 0) {
				i = end;
				continue;
			}
		}
		if (!cp_push(out, s[i]))
			return false;
		i++;
	}
	return true;
}

/* }===== */

/* {===== whitespace */

/* str.isspace (what str.strip removes): White_Space plus U+001C..U+001F. */
static bool py_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The `regex` module's \s: Unicode White_Space (same set as RF_TEXT_SPACE_CLASS). */
static bool regex_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
	       c == 0x205f || c == 0x3000;
}

/* str.strip() in place. */
static void strip(struct cpbuf *b)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi && py_space(b->v[lo]))
		lo++;
	while (hi > lo && py_space(b->v[hi - 1]))
		hi--;
	if (lo > 0)
		memmove(b->v, b->v + lo, (hi - lo) * sizeof *b->v);
	b->n = hi - lo;
}

/* re.sub(r'\s+', ' ', s) in place (the output is never longer). */
static void collapse_spaces(struct cpbuf *b)
{
	size_t o = 0;
	for (size_t i = 0; i < b->n;) {
		if (regex_space(b->v[i])) {
			while (i < b->n && regex_space(b->v[i]))
				i++;
			b->v[o++] = ' ';
		} else {
			b->v[o++] = b->v[i++];
		}
	}
	b->n = o;
}

/* }===== */

/* {===== str.lower */

static enum rf_case_kind case_kind(uint32_t c)
{
	size_t lo = 0, hi = rf_case_run_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c < rf_case_runs[mid].first)
			hi = mid;
		else if (c > rf_case_runs[mid].last)
			lo = mid + 1;
		else
			return rf_case_runs[mid].kind;
	}
	return RF_CASE_NONE;
}

/* CPython's final-sigma rule for the capital sigma at s[i]: final when a cased character
** precedes it and none follows it, skipping case-ignorable characters both ways. */
static bool final_sigma(const uint32_t *s, size_t n, size_t i)
{
	size_t j = i;
	enum rf_case_kind k = RF_CASE_NONE;
	while (j > 0 && (k = case_kind(s[j - 1])) == RF_CASE_IGNORABLE)
		j--;
	if (j == 0 || k != RF_CASE_CASED)
		return false;
	for (j = i + 1; j < n; j++) {
		k = case_kind(s[j]);
		if (k != RF_CASE_IGNORABLE)
			return k != RF_CASE_CASED;
	}
	return true;
}

static uint32_t lower_one(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	size_t lo = 0, hi = rf_lower_run_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rf_lower_run *r = &rf_lower_runs[mid];
		if (c < r->first) {
			hi = mid;
		} else if (c > r->last) {
			lo = mid + 1;
		} else {
			if ((c - r->first) % r->stride == 0)
				return (uint32_t)((int32_t)c + r->delta);
			return c;
		}
	}
	return c;
}

static bool lower(const struct cpbuf *in, struct cpbuf *out)
{
	for (size_t i = 0; i < in->n; i++) {
		uint32_t c = in->v[i];
		const struct rf_lower_multi *m = NULL;
		for (size_t k = 0; k < rf_lower_multi_count && !m; k++)
			m = rf_lower_multis[k].cp == c ? &rf_lower_multis[k] : NULL;
		if (m) {
			for (uint32_t k = 0; k < m->n; k++) {
				if (!cp_push(out, m->to[k]))
					return false;
			}
			continue;
		}
		if (c == 0x3a3)
			c = final_sigma(in->v, in->n, i) ? 0x3c2 : 0x3c3;
		else
			c = lower_one(c);
		if (!cp_push(out, c))
			return false;
	}
	return true;
}

/* }===== */

static enum rf_status oom(void)
{
	return rf_error(RF_ERR_OOM_HOST, "out of host memory cleaning text");
}

static enum rf_status encode(const struct cpbuf *b, char **out, size_t *out_len)
{
	char *s = malloc(b->n * 4 + 1);
	if (!s)
		return oom();
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += utf8_put(b->v[i], s + n);
	s[n] = '\0';
	*out = s;
	*out_len = n;
	return RF_OK;
}

/* basic_clean's two html.unescape calls; each pass swaps the buffers. */
static bool unescape_twice(struct cpbuf *a, struct cpbuf *b)
{
	for (int pass = 0; pass < 2; pass++) {
		b->n = 0;
		if (!html_unescape(a, b))
			return false;
		struct cpbuf t = *a;
		*a = *b;
		*b = t;
	}
	return true;
}

enum rf_status rf_text_clean(const char *text, char **out, size_t *out_len)
{
	struct cpbuf a = {0}, b = {0};
	*out = NULL;
	*out_len = 0;
	enum rf_status s = utf8_decode(text, &a);
	if (s == RF_OK && strchr(text, '&') && !unescape_twice(&a, &b))
		s = oom();
	if (s == RF_OK) {
		strip(&a);
		collapse_spaces(&a);
		strip(&a);
		b.n = 0;
		if (!lower(&a, &b))
			s = oom();
	}
	if (s == RF_OK)
		s = encode(&b, out, out_len);
	free(a.v);
	free(b.v);
	return s;
}
