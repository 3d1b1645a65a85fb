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
	if (tok->merges[i].key == RF_MERGE_EMPTY) {
		/* Sized by the loader for every rule it reads: never full, so the probe above
		** always ends at an empty slot. */
		RF_ASSERT(tok->merge_count < tok->merge_capacity);
		tok->merge_count++;
	}
	tok->merges[i] = (struct rf_merge){key, rank, id};
	tok->max_rank = RF_MAX(tok->max_rank, rank);
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
	tok->merge_capacity = merges;

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

/* Per-call scratch for one word. The reference merges in rounds: the pair of lowest rank
** anywhere in the word, every occurrence of it left to right without overlaps, then the
** lowest pair again. Scanning the word for that pair each round costs O(length x rounds):
** 43 s for a 1 MB word. Here the symbols are a linked list over their first byte's
** position, and each pair that merges waits in its rank's bucket; a heap holds the ranks
** of the non-empty buckets. A round takes its bucket and touches only the occurrences it
** merges, so the rounds and the ids are the reference's at O(n log n). */
struct entry {
	int32_t pos;      /* the pair's left symbol */
	int32_t next;     /* the next entry of the bucket, -1 at the end */
	int32_t a, b;     /* the pair's symbols when it was queued */
};

/* One symbol of the word, at the position of its first byte (one cache line holds all a
** merge touches). */
struct node {
	int32_t sym;      /* -1: merged away into the symbol on its left */
	int32_t next, prev;   /* neighbouring symbols' positions, -1 at the ends */
};

struct bpe_work {
	struct node *node;
	int32_t *round;        /* one round's positions */
	size_t cap;            /* of the two arrays above */
	int32_t *bucket;       /* per rank: its first entry, -1 when empty */
	struct entry *entries;
	size_t nentries, entries_cap;
	int32_t *ranks;        /* min-heap of the ranks with a non-empty bucket */
	size_t nranks;
};

static bool work_init(const rf_tokenizer *tok, struct bpe_work *w)
{
	size_t r = (size_t)tok->max_rank + 1;
	w->bucket = malloc(r * sizeof *w->bucket);
	w->ranks = malloc(r * sizeof *w->ranks);
	if (!w->bucket || !w->ranks)
		return false;
	memset(w->bucket, 0xff, r * sizeof *w->bucket);   /* every bucket empty (-1) */
	return true;
}

static bool work_reserve(struct bpe_work *w, size_t n)
{
	if (n <= w->cap)
		return true;
	struct node *node = realloc(w->node, n * sizeof *node);
	if (node)
		w->node = node;
	int32_t *round = realloc(w->round, n * sizeof *round);
	if (round)
		w->round = round;
	if (!node || !round)
		return false;
	w->cap = n;
	return true;
}

static void work_free(struct bpe_work *w)
{
	free(w->node);
	free(w->round);
	free(w->bucket);
	free(w->entries);
	free(w->ranks);
}

static void rank_push(struct bpe_work *w, int32_t rank)
{
	size_t i = w->nranks++;
	while (i > 0 && rank < w->ranks[(i - 1) / 2]) {
		w->ranks[i] = w->ranks[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->ranks[i] = rank;
}

static int32_t rank_pop(struct bpe_work *w)
{
	int32_t top = w->ranks[0], last = w->ranks[--w->nranks];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= w->nranks)
			break;
		if (c + 1 < w->nranks && w->ranks[c + 1] < w->ranks[c])
			c++;
		if (w->ranks[c] >= last)
			break;
		w->ranks[i] = w->ranks[c];
		i = c;
	}
	if (w->nranks)
		w->ranks[i] = last;
	return top;
}

/* Puts the pair starting at `pos` (if pos has a right neighbour) in its rank's bucket if
** it merges. */
static bool queue_pair(const rf_tokenizer *tok, struct bpe_work *w, int32_t pos)
{
	if (pos < 0 || w->node[pos].next < 0)
		return true;
	int32_t a = w->node[pos].sym, b = w->node[w->node[pos].next].sym;
	const struct rf_merge *m = find_merge(tok, a, b);
	if (!m)
		return true;
	if (w->nentries == w->entries_cap) {
		size_t cap = w->entries_cap ? 2 * w->entries_cap : 256;
		struct entry *e = realloc(w->entries, cap * sizeof *e);
		if (!e)
			return false;
		w->entries = e;
		w->entries_cap = cap;
	}
	if (w->bucket[m->rank] < 0)
		rank_push(w, m->rank);
	w->entries[w->nentries] = (struct entry){pos, w->bucket[m->rank], a, b};
	w->bucket[m->rank] = (int32_t)w->nentries++;
	return true;
}

static int by_position(const void *x, const void *y)
{
	int32_t p = *(const int32_t *)x, q = *(const int32_t *)y;
	return (p > q) - (p < q);
}

static void sort_positions(int32_t *v, size_t n)
{
	if (n > 16) {
		qsort(v, n, sizeof *v, by_position);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		int32_t x = v[i];
		size_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* One round: the bucket of `rank` (the lowest), merged left to right. All its entries
** were queued for the rank's one pair (a, b); an occurrence is merged only if it is still
** that pair: one merged away by its left neighbour (overlapping "a a a") or changed since
** it was queued is skipped. The new pairs around each merge go to their buckets for later
** rounds (never this one: a merged symbol differs from both of its parts). */
static bool merge_round(const rf_tokenizer *tok, struct bpe_work *w, int32_t rank)
{
	int32_t first = w->bucket[rank], a = w->entries[first].a, b = w->entries[first].b;
	int32_t merged = find_merge(tok, a, b)->id;
	size_t n = 0;
	for (int32_t e = first; e >= 0; e = w->entries[e].next)
		w->round[n++] = w->entries[e].pos;
	w->bucket[rank] = -1;
	sort_positions(w->round, n);
	struct node *node = w->node;
	for (size_t k = 0; k < n; k++) {
		int32_t pos = w->round[k], gone = node[pos].next;
		if (node[pos].sym != a || gone < 0 || node[gone].sym != b)
			continue;
		node[pos].sym = merged;
		node[gone].sym = -1;
		node[pos].next = node[gone].next;
		if (node[gone].next >= 0)
			node[node[gone].next].prev = pos;
		if (!queue_pair(tok, w, node[pos].prev) || !queue_pair(tok, w, pos))
			return false;
	}
	return true;
}

/* Encodes one piece (UTF-8 bytes) and appends its ids. */
static bool bpe_piece(const rf_tokenizer *tok, const uint8_t *p, size_t n, struct bpe_work *w,
		      struct idbuf *out)
{
	if (n == 0)
		return true;
	if (n > INT32_MAX || !work_reserve(w, n) || !id_reserve(out, n))
		return false;
	w->nentries = 0;
	for (size_t i = 0; i < n; i++)
		w->node[i] = (struct node){i + 1 < n ? tok->byte_id[p[i]] : tok->byte_end_id[p[i]],
					   i + 1 < n ? (int32_t)i + 1 : -1, (int32_t)i - 1};
	bool ok = true;
	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = queue_pair(tok, w, (int32_t)i);
	while (ok && w->nranks)
		ok = merge_round(tok, w, rank_pop(w));
	/* After a failure the buckets left behind are emptied for the next piece. */
	while (w->nranks)
		w->bucket[rank_pop(w)] = -1;
	for (int32_t i = 0; ok && i >= 0; i = w->node[i].next)
		out->v[out->n++] = w->node[i].sym;
	return ok;
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
	enum rf_status s = md && work_init(tok, &w) ? RF_OK
						    : rf_error(RF_ERR_OOM_HOST, "out of host memory tokenizing");
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
