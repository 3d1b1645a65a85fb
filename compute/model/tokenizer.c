/*
** tokenizer.c: CLIP's BPE encoder (see tokenizer.h): clean-up (text_clean.c), the
** pre-tokenizer pattern with PCRE2, byte-level symbols, merges by rank, start/end tokens,
** truncation and padding. The loaders are in tokenizer_load.c. Compute layer (L5).
**
** Encoding only reads the tokenizer; every buffer it needs (PCRE2 match data, symbols) is
** allocated per call, so one tokenizer serves any number of threads. There is no cache of
** encoded words: a shared one would need a lock, and merging is cheap.
*/
#include "tokenizer_internal.h"
#include "text_clean.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

/* open_clip's pattern, as the `regex` module evaluates it. The special strings come first
** so they win over the letter runs; \s is spelled out as White_Space (RF_TEXT_SPACE_CLASS).
** U+0345 (a combining mark whose case variant is the letter iota) is left out of the last
** class: under IGNORECASE the regex module matches it with no alternative, so the
** reference drops it like a space; it is the only code point where the module's caseless
** classes differ from PCRE2's (checked over all of Unicode). */
static const char PATTERN[] =
	"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
	"[^" RF_TEXT_SPACE_CLASS "\\x{345}\\p{L}\\p{N}]+";

#define NO_RANK INT32_MAX

/* {===== the merge table */

static size_t merge_slot(uint64_t key, size_t mask)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static uint64_t merge_key(int32_t a, int32_t b)
{
	return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

void rf_tokenizer_add_merge(rf_tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t id)
{
	uint64_t key = merge_key(a, b);
	size_t i = merge_slot(key, tok->merge_mask);
	while (tok->merges[i].key != RF_MERGE_EMPTY && tok->merges[i].key != key)
		i = (i + 1) & tok->merge_mask;
	tok->merges[i] = (struct rf_merge){key, rank, id};
}

static const struct rf_merge *find_merge(const rf_tokenizer *tok, int32_t a, int32_t b)
{
	uint64_t key = merge_key(a, b);
	for (size_t i = merge_slot(key, tok->merge_mask);; i = (i + 1) & tok->merge_mask) {
		if (tok->merges[i].key == key)
			return &tok->merges[i];
		if (tok->merges[i].key == RF_MERGE_EMPTY)
			return NULL;
	}
}

/* }===== */

enum rf_status rf_tokenizer_alloc(size_t merges, rf_tokenizer **out)
{
	*out = NULL;
	rf_tokenizer *tok = calloc(1, sizeof *tok);
	size_t slots = 64;
	while (slots < 2 * merges + 2)
		slots *= 2;
	if (tok)
		tok->merges = malloc(slots * sizeof *tok->merges);
	if (!tok || !tok->merges) {
		free(tok);
		return rf_error(RF_ERR_OOM_HOST, "out of host memory loading a tokenizer");
	}
	for (size_t i = 0; i < slots; i++)
		tok->merges[i].key = RF_MERGE_EMPTY;
	tok->merge_mask = slots - 1;

	int err;
	PCRE2_SIZE at;
	tok->re = pcre2_compile((PCRE2_SPTR)PATTERN, PCRE2_ZERO_TERMINATED,
				PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &err, &at, NULL);
	if (!tok->re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		rf_tokenizer_destroy(tok);
		return rf_error(RF_ERR_UNSUPPORTED, "the tokenizer pattern does not compile: %s (at %zu)",
				(const char *)msg, (size_t)at);
	}
	/* The JIT is only faster; without it (unsupported CPU) the interpreter is used. */
	(void)pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE);
	*out = tok;
	return RF_OK;
}

void rf_tokenizer_destroy(rf_tokenizer *tok)
{
	if (!tok)
		return;
	pcre2_code_free(tok->re);
	free(tok->merges);
	free(tok);
}

int64_t rf_tokenizer_sot(const rf_tokenizer *tok)
{
	return tok->sot;
}

int64_t rf_tokenizer_eot(const rf_tokenizer *tok)
{
	return tok->eot;
}

/* {===== byte-pair merging */

struct idbuf {
	int32_t *v;
	size_t n, cap;
};

static bool id_reserve(struct idbuf *b, size_t extra)
{
	if (b->n + extra <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->n + extra)
		cap *= 2;
	int32_t *v = realloc(b->v, cap * sizeof *v);
	if (!v)
		return false;
	b->v = v;
	b->cap = cap;
	return true;
}

/* Per-call scratch for one word: its symbols, the rank and result of each adjacent pair,
** and where each symbol came from in the previous round (SIZE_MAX: newly merged). */
struct bpe_work {
	int32_t *sym, *rank, *pair_id;
	size_t *src;
	size_t cap;
};

static bool work_reserve(struct bpe_work *w, size_t n)
{
	if (n <= w->cap)
		return true;
	int32_t *sym = realloc(w->sym, n * sizeof *sym);
	if (sym)
		w->sym = sym;
	int32_t *rank = realloc(w->rank, n * sizeof *rank);
	if (rank)
		w->rank = rank;
	int32_t *pair_id = realloc(w->pair_id, n * sizeof *pair_id);
	if (pair_id)
		w->pair_id = pair_id;
	size_t *src = realloc(w->src, n * sizeof *src);
	if (src)
		w->src = src;
	if (!sym || !rank || !pair_id || !src)
		return false;
	w->cap = n;
	return true;
}

static void work_free(struct bpe_work *w)
{
	free(w->sym);
	free(w->rank);
	free(w->pair_id);
	free(w->src);
}

static void rank_pair(const rf_tokenizer *tok, struct bpe_work *w, size_t i)
{
	const struct rf_merge *m = find_merge(tok, w->sym[i], w->sym[i + 1]);
	w->rank[i] = m ? m->rank : NO_RANK;
	w->pair_id[i] = m ? m->id : -1;
}

/* Replaces every non-overlapping occurrence of pair `best`'s symbols, left to right, by
** the merged symbol, as the reference's inner loop does; returns the new length. Pairs of
** two untouched neighbours keep their rank; only pairs next to a merge are looked up. */
static size_t merge_round(const rf_tokenizer *tok, struct bpe_work *w, size_t m, size_t best)
{
	int32_t a = w->sym[best], b = w->sym[best + 1], merged = w->pair_id[best];
	size_t o = 0;
	for (size_t i = 0; i < m; o++) {
		if (i + 1 < m && w->sym[i] == a && w->sym[i + 1] == b) {
			w->sym[o] = merged;
			w->src[o] = SIZE_MAX;
			i += 2;
		} else {
			w->sym[o] = w->sym[i];
			w->src[o] = i++;
		}
	}
	/* In place: pair o reads old pair src[o] >= o, which is not yet overwritten. */
	for (size_t k = 0; k + 1 < o; k++) {
		if (w->src[k] != SIZE_MAX && w->src[k + 1] != SIZE_MAX) {
			w->rank[k] = w->rank[w->src[k]];
			w->pair_id[k] = w->pair_id[w->src[k]];
		} else {
			rank_pair(tok, w, k);
		}
	}
	return o;
}

/* Encodes one piece (UTF-8 bytes) and appends its ids. */
static bool bpe_piece(const rf_tokenizer *tok, const uint8_t *p, size_t n, struct bpe_work *w,
		      struct idbuf *out)
{
	if (!work_reserve(w, n) || !id_reserve(out, n))
		return false;
	for (size_t i = 0; i < n; i++)
		w->sym[i] = i + 1 < n ? tok->byte_id[p[i]] : tok->byte_end_id[p[i]];
	for (size_t i = 0; i + 1 < n; i++)
		rank_pair(tok, w, i);
	size_t m = n;
	for (;;) {
		size_t best = SIZE_MAX;
		int32_t best_rank = NO_RANK;
		for (size_t i = 0; i + 1 < m; i++) {
			if (w->rank[i] < best_rank) {
				best_rank = w->rank[i];
				best = i;
			}
		}
		if (best == SIZE_MAX)
			break;
		m = merge_round(tok, w, m, best);
	}
	memcpy(out->v + out->n, w->sym, m * sizeof *w->sym);
	out->n += m;
	return true;
}

/* }===== */

static bool push_id(struct idbuf *b, int64_t id)
{
	if (!id_reserve(b, 1))
		return false;
	b->v[b->n++] = (int32_t)id;
	return true;
}

/* Splits the cleaned text with the pattern and appends each piece's ids. Stops once
** `stop_after` ids are collected (SIZE_MAX: never). */
static enum rf_status encode_pieces(const rf_tokenizer *tok, const char *text, size_t len,
				    size_t stop_after, struct idbuf *out)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->re, NULL);
	struct bpe_work w = {0};
	enum rf_status s = md ? RF_OK : rf_error(RF_ERR_OOM_HOST, "out of host memory tokenizing");
	for (size_t off = 0; s == RF_OK && off < len && out->n < stop_after;) {
		int rc = pcre2_match(tok->re, (PCRE2_SPTR)text, len, off, PCRE2_NO_UTF_CHECK, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof msg);
			s = rf_error(RF_ERR_INVALID, "the tokenizer pattern failed at byte %zu: %s", off,
				     (const char *)msg);
			break;
		}
		const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		const char *piece = text + ov[0];
		size_t n = ov[1] - ov[0];
		off = ov[1];
		bool ok;
		/* Only the exact lower-case strings are special (the reference's cache holds
		** just these two); a caseless match such as "<ſtart_of_text>" is ordinary text. */
		if (n == 15 && !memcmp(piece, "<start_of_text>", n))
			ok = push_id(out, tok->sot);
		else if (n == 13 && !memcmp(piece, "<end_of_text>", n))
			ok = push_id(out, tok->eot);
		else
			ok = bpe_piece(tok, (const uint8_t *)piece, n, &w, out);
		if (!ok)
			s = rf_error(RF_ERR_OOM_HOST, "out of host memory tokenizing");
	}
	work_free(&w);
	pcre2_match_data_free(md);
	return s;
}

enum rf_status rf_tokenizer_encode(const rf_tokenizer *tok, const char *text, int context,
				   int64_t *ids, int *untruncated)
{
	if (!tok || !text || !ids || context < 1)
		return rf_error(RF_ERR_INVALID, "rf_tokenizer_encode: %s",
				context < 1 ? "context must be at least 1" : "NULL argument");
	char *clean;
	size_t len;
	enum rf_status s = rf_text_clean(text, &clean, &len);
	if (s != RF_OK)
		return s;
	struct idbuf b = {0};
	/* Without a caller for the full length, ids past the context are never needed. */
	size_t stop_after = untruncated ? SIZE_MAX : (size_t)context + 1;
	if (!push_id(&b, tok->sot))
		s = rf_error(RF_ERR_OOM_HOST, "out of host memory tokenizing");
	if (s == RF_OK)
		s = encode_pieces(tok, clean, len, stop_after, &b);
	if (s == RF_OK && !push_id(&b, tok->eot))
		s = rf_error(RF_ERR_OOM_HOST, "out of host memory tokenizing");
	if (s == RF_OK) {
		size_t keep = RF_MIN(b.n, (size_t)context);
		for (size_t i = 0; i < (size_t)context; i++)
			ids[i] = i < keep ? b.v[i] : 0;
		if (b.n > (size_t)context)
			ids[context - 1] = tok->eot;
		if (untruncated)
			*untruncated = b.n > INT32_MAX ? INT32_MAX : (int)b.n;
	}
	free(b.v);
	free(clean);
	return s;
}
