/*
** tokenizer_load.c: the two vocabulary formats CLIP's tokenizer ships in, both turned into
** the same tables (byte symbols, merges keyed by symbol ids, special ids):
**   - open_clip's bpe_simple_vocab_16e6.txt.gz: merges only; ids derived as the reference
**     does (256 byte characters, the same with "</w>", one per merge, then the two
**     special strings), see tests/data/tokenizer/README.md;
**   - Hugging Face's vocab.json + merges.txt: ids from vocab.json, whose special tokens are
**     spelled <|startoftext|> and <|endoftext|>.
** Compute layer (L5; host only).
*/
#include "tokenizer_internal.h"
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* The reference keeps lines 2 .. 49152-256-2+1 of the gz file: 48894 merges. */
#define GZ_MERGES (49152 - 256 - 2)

static enum rf_status oom(void)
{
	return rf_error(RF_ERR_OOM_HOST, "out of host memory loading a tokenizer");
}

/* {===== byte characters */

static bool byte_is_printable(unsigned b)
{
	return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

static uint32_t byte_codepoint(uint8_t b)
{
	if (byte_is_printable(b))
		return b;
	uint32_t n = 0;
	for (unsigned c = 0; c < b; c++)
		n += !byte_is_printable(c);
	return 256 + n;
}

size_t rf_bpe_byte_char(uint8_t b, char out[4])
{
	uint32_t cp = byte_codepoint(b);
	size_t n;
	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	}
	out[n] = '\0';
	return n;
}

/* The reference's vocabulary order of the bytes: printable ones first, then the rest. */
static uint8_t byte_at_vocab_index(unsigned i)
{
	unsigned seen = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned b = 0; b < 256; b++) {
			if (byte_is_printable(b) == (pass == 0) && seen++ == i)
				return (uint8_t)b;
		}
	}
	RF_ASSERT(!"vocab index out of range");
	return 0;
}

/* }===== */

/* {===== string -> id map (loading only). Inserting an existing string replaces its id,
** like a Python dict built in vocabulary order. */

struct strent {
	const char *s;
	size_t len;
	int32_t id;
};

struct strmap {
	struct strent *e;
	size_t mask;
};

static bool strmap_init(struct strmap *m, size_t count)
{
	size_t slots = 64;
	while (slots < 2 * count + 2)
		slots *= 2;
	m->e = calloc(slots, sizeof *m->e);
	m->mask = slots - 1;
	return m->e != NULL;
}

static size_t str_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct strent *strmap_slot(const struct strmap *m, const char *s, size_t len)
{
	size_t i = str_hash(s, len) & m->mask;
	while (m->e[i].s && !(m->e[i].len == len && !memcmp(m->e[i].s, s, len)))
		i = (i + 1) & m->mask;
	return &m->e[i];
}

/* The map must have been sized for every string put into it (it does not grow). */
static void strmap_put(struct strmap *m, const char *s, size_t len, int32_t id)
{
	*strmap_slot(m, s, len) = (struct strent){s, len, id};
}

static int32_t strmap_get(const struct strmap *m, const char *s, size_t len)
{
	const struct strent *e = strmap_slot(m, s, len);
	return e->s ? e->id : -1;
}

/* }===== */

/* Looks up the 512 byte symbols. */
static enum rf_status set_byte_ids(rf_tokenizer *tok, const struct strmap *m, const char *path)
{
	for (unsigned b = 0; b < 256; b++) {
		char s[16];
		size_t n = rf_bpe_byte_char((uint8_t)b, s);
		tok->byte_id[b] = strmap_get(m, s, n);
		memcpy(s + n, "</w>", 5);
		tok->byte_end_id[b] = strmap_get(m, s, n + 4);
		if (tok->byte_id[b] < 0 || tok->byte_end_id[b] < 0)
			return rf_error(RF_ERR_FORMAT, "%s: the vocabulary lacks the symbol for byte %u", path, b);
	}
	return RF_OK;
}

/* Splits "first second" (one space) in place; false if the line is not two symbols. */
static bool split_merge(char *line, char **first, char **second)
{
	char *sp = strchr(line, ' ');
	if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' '))
		return false;
	*sp = '\0';
	*first = line;
	*second = sp + 1;
	return true;
}

/* Splits text into lines in place (dropping '\r' before '\n'); returns the count. */
static size_t split_lines(char *text, size_t len, char ***lines)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	char **v = malloc(n * sizeof *v);
	if (!v)
		return 0;
	size_t k = 0;
	v[k++] = text;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			text[i] = '\0';
			if (i > 0 && text[i - 1] == '\r')
				text[i - 1] = '\0';
			v[k++] = text + i + 1;
		}
	}
	*lines = v;
	return k;
}

/* {===== open_clip's gz file */

/* The whole file, NUL-terminated. zlib reads files that are not gzip-compressed as they
** are, so this serves the .gz vocabulary and Hugging Face's plain files alike. Only a
** regular file is opened (a FIFO would hang), and at most RF_MAX_VOCAB_BYTES are taken
** once decompressed (a small gzip bomb would fill the memory). */
static enum rf_status read_whole(const char *path, char **out, size_t *len)
{
	int fd;
	uint64_t size;
	enum rf_status s = rf_file_open_read(path, &fd, &size);
	if (s != RF_OK)
		return s;
	gzFile f = gzdopen(fd, "rb");
	if (!f) {
		close(fd);
		return oom();
	}
	size_t cap = 1 << 22, n = 0;
	char *buf = malloc(cap + 1);
	s = buf ? RF_OK : oom();
	while (s == RF_OK) {
		if (n > RF_MAX_VOCAB_BYTES) {
			s = rf_error(RF_ERR_FORMAT, "%s: more than %llu bytes (decompressed): over the limit "
				     "for a vocabulary or merges file", path,
				     (unsigned long long)RF_MAX_VOCAB_BYTES);
			break;
		}
		if (n == cap) {
			char *nb = realloc(buf, 2 * cap + 1);
			if (!nb) {
				s = oom();
				break;
			}
			buf = nb;
			cap *= 2;
		}
		int got = gzread(f, buf + n, (unsigned)RF_MIN(cap - n, (size_t)1 << 30));
		if (got < 0) {
			int err;
			s = rf_error(RF_ERR_FORMAT, "%s: corrupt gzip data: %s", path, gzerror(f, &err));
		}
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	gzclose(f);
	if (s != RF_OK) {
		free(buf);
		return s;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return RF_OK;
}

/* Builds the reference's vocabulary list into the map: bytes, bytes + "</w>", one
** concatenation per merge (written into `cat`, and pointed at by joined[i]), the special
** strings. */
static void gz_vocab(struct strmap *m, char **first, char **second, size_t merges, char *cat,
		     char **joined, int32_t *next_id)
{
	int32_t id = 0;
	for (int end = 0; end < 2; end++) {
		for (unsigned i = 0; i < 256; i++) {
			char s[16];
			size_t n = rf_bpe_byte_char(byte_at_vocab_index(i), s);
			if (end) {
				memcpy(s + n, "</w>", 5);
				n += 4;
			}
			memcpy(cat, s, n + 1);
			strmap_put(m, cat, n, id++);
			cat += n + 1;
		}
	}
	for (size_t i = 0; i < merges; i++) {
		size_t a = strlen(first[i]), b = strlen(second[i]);
		memcpy(cat, first[i], a);
		memcpy(cat + a, second[i], b + 1);
		strmap_put(m, cat, a + b, id++);
		joined[i] = cat;
		cat += a + b + 1;
	}
	strmap_put(m, "<start_of_text>", 15, id++);
	strmap_put(m, "<end_of_text>", 13, id++);
	*next_id = id;
}

static enum rf_status gz_build(rf_tokenizer *tok, char **lines, size_t nlines, const char *path)
{
	size_t merges = RF_MIN(nlines - 1, (size_t)GZ_MERGES), total = 0;
	char **first = malloc((merges + 1) * sizeof *first);
	char **second = malloc((merges + 1) * sizeof *second);
	char **joined = malloc((merges + 1) * sizeof *joined);
	struct strmap m = {0};
	enum rf_status s = first && second && joined && strmap_init(&m, 512 + merges + 2) ? RF_OK : oom();
	for (size_t i = 0; s == RF_OK && i < merges; i++) {
		if (!split_merge(lines[i + 1], &first[i], &second[i]))
			s = rf_error(RF_ERR_FORMAT, "%s: line %zu is not two symbols separated by a space",
				     path, i + 2);
		else
			total += strlen(first[i]) + strlen(second[i]) + 1;
	}
	if (s == RF_OK && merges == 0)
		s = rf_error(RF_ERR_FORMAT, "%s: no merges", path);
	char *cat = s == RF_OK ? malloc(total + 512 * 8) : NULL;
	if (s == RF_OK && !cat)
		s = oom();
	if (s == RF_OK) {
		gz_vocab(&m, first, second, merges, cat, joined, &tok->vocab_size);
		s = set_byte_ids(tok, &m, path);
	}
	for (size_t i = 0; s == RF_OK && i < merges; i++) {
		size_t a = strlen(first[i]), b = strlen(second[i]);
		int32_t ia = strmap_get(&m, first[i], a), ib = strmap_get(&m, second[i], b);
		/* A symbol missing from the vocabulary can never occur, nor can its merge. The
		** result's id is its string's (the last one, should two merges join alike). */
		if (ia >= 0 && ib >= 0)
			rf_tokenizer_add_merge(tok, ia, ib, (int32_t)i, strmap_get(&m, joined[i], a + b));
	}
	if (s == RF_OK) {
		tok->sot = strmap_get(&m, "<start_of_text>", 15);
		tok->eot = strmap_get(&m, "<end_of_text>", 13);
	}
	free(cat);
	free(m.e);
	free(first);
	free(second);
	free(joined);
	return s;
}

enum rf_status rf_tokenizer_load_bpe_gz(const char *path, rf_tokenizer **out)
{
	*out = NULL;
	char *text = NULL, **lines = NULL;
	size_t len = 0;
	enum rf_status s = read_whole(path, &text, &len);
	if (s != RF_OK)
		return s;
	size_t nlines = split_lines(text, len, &lines);
	rf_tokenizer *tok = NULL;
	s = nlines ? rf_tokenizer_alloc(RF_MIN(nlines, (size_t)GZ_MERGES), &tok) : oom();
	if (s == RF_OK)
		s = gz_build(tok, lines, nlines, path);
	free(lines);
	free(text);
	if (s != RF_OK) {
		rf_tokenizer_destroy(tok);
		return s;
	}
	*out = tok;
	return RF_OK;
}

/* }===== */

/* {===== Hugging Face's vocab.json + merges.txt */

/* Fills the map from vocab.json; ids must be distinct and in [0, 2^31). */
static enum rf_status hf_vocab(json_t *vocab, struct strmap *m, int32_t *size, const char *path)
{
	size_t n = json_object_size(vocab);
	uint8_t *seen = calloc(n ? n : 1, 1);
	if (!seen || !strmap_init(m, n)) {
		free(seen);
		return oom();
	}
	const char *key;
	json_t *v;
	int32_t max_id = -1;
	enum rf_status s = RF_OK;
	json_object_foreach(vocab, key, v) {
		json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
		if (id < 0 || (size_t)id >= n || seen[id]) {
			s = rf_error(RF_ERR_FORMAT, "%s: token \"%s\" has a missing, repeated or out-of-range id",
				     path, key);
			break;
		}
		seen[id] = 1;
		strmap_put(m, key, strlen(key), (int32_t)id);
		max_id = RF_MAX(max_id, (int32_t)id);
	}
	free(seen);
	*size = max_id + 1;
	return s;
}

static enum rf_status hf_merges(rf_tokenizer *tok, const struct strmap *m, char **lines,
				size_t nlines, const char *path)
{
	enum rf_status s = RF_OK;
	int32_t rank = 0;
	for (size_t i = 0; s == RF_OK && i < nlines; i++) {
		char *a, *b;
		if ((i == 0 && !strncmp(lines[i], "#version", 8)) || !lines[i][0])
			continue;
		if (!split_merge(lines[i], &a, &b)) {
			s = rf_error(RF_ERR_FORMAT, "%s: line %zu is not two symbols separated by a space",
				     path, i + 1);
			break;
		}
		size_t la = strlen(a), lb = strlen(b);
		int32_t ia = strmap_get(m, a, la), ib = strmap_get(m, b, lb);
		/* split_merge left "a\0b": closing the gap makes the concatenation in place. */
		memmove(a + la, b, lb + 1);
		int32_t id = strmap_get(m, a, la + lb);
		if (ia < 0 || ib < 0 || id < 0)
			s = rf_error(RF_ERR_FORMAT, "%s: line %zu: \"%.*s %s\" or its result is not in the "
				     "vocabulary", path, i + 1, (int)la, a, a + la);
		else
			rf_tokenizer_add_merge(tok, ia, ib, rank++, id);
	}
	return s;
}

/* Hugging Face spells the special tokens <|startoftext|>; open_clip's spelling is accepted
** too. The text markers stay open_clip's in both cases (see tokenizer.h). */
static int32_t hf_special(const struct strmap *m, const char *hf, const char *oc)
{
	int32_t id = strmap_get(m, hf, strlen(hf));
	return id >= 0 ? id : strmap_get(m, oc, strlen(oc));
}

enum rf_status rf_tokenizer_load_hf(const char *vocab_json, const char *merges_txt,
				    rf_tokenizer **out)
{
	*out = NULL;
	char *text = NULL;
	size_t len;
	enum rf_status s = read_whole(vocab_json, &text, &len);
	if (s != RF_OK)
		return s;
	json_error_t jerr;
	json_t *vocab = json_loadb(text, len, 0, &jerr);
	free(text);
	text = NULL;
	if (!vocab)
		return rf_error(RF_ERR_FORMAT, "%s: %s (line %d)", vocab_json, jerr.text, jerr.line);
	rf_tokenizer *tok = NULL;
	struct strmap m = {0};
	char **lines = NULL;
	size_t nlines = 0;
	s = json_is_object(vocab) ? RF_OK : rf_error(RF_ERR_FORMAT, "%s: not a JSON object", vocab_json);
	if (s == RF_OK && json_object_size(vocab) > RF_TOKENIZER_MAX_SYMBOLS)
		s = rf_error(RF_ERR_FORMAT, "%s: %zu tokens: more than the %d a vocabulary may hold",
			     vocab_json, json_object_size(vocab), RF_TOKENIZER_MAX_SYMBOLS);
	if (s == RF_OK)
		s = read_whole(merges_txt, &text, &len);
	if (s == RF_OK && !(nlines = split_lines(text, len, &lines)))
		s = oom();
	if (s == RF_OK && nlines > RF_TOKENIZER_MAX_SYMBOLS)
		s = rf_error(RF_ERR_FORMAT, "%s: %zu lines: more than the %d merges a vocabulary may hold",
			     merges_txt, nlines, RF_TOKENIZER_MAX_SYMBOLS);
	/* The merge table is sized for every line of merges.txt, however many the vocabulary
	** has: sized by the vocabulary alone, more distinct merges than that filled it and
	** the next lookup probed forever. */
	if (s == RF_OK)
		s = rf_tokenizer_alloc(RF_MAX(json_object_size(vocab), nlines), &tok);
	if (s == RF_OK)
		s = hf_vocab(vocab, &m, &tok->vocab_size, vocab_json);
	if (s == RF_OK)
		s = set_byte_ids(tok, &m, vocab_json);
	if (s == RF_OK)
		s = hf_merges(tok, &m, lines, nlines, merges_txt);
	if (s == RF_OK) {
		tok->sot = hf_special(&m, "<|startoftext|>", "<start_of_text>");
		tok->eot = hf_special(&m, "<|endoftext|>", "<end_of_text>");
		if (tok->sot < 0 || tok->eot < 0)
			s = rf_error(RF_ERR_FORMAT, "%s: no <|startoftext|> / <|endoftext|> token", vocab_json);
	}
	free(m.e);
	free(lines);
	free(text);
	json_decref(vocab);
	if (s != RF_OK) {
		rf_tokenizer_destroy(tok);
		return s;
	}
	*out = tok;
	return RF_OK;
}

/* }===== */
