/*
** test_tokenizer.c: CLIP's tokenizer against the goldens (the 150 strings of
** tests/data/tokenizer, the 20 texts of tiny-gelu), both vocabulary formats (the Hugging
** Face files are generated here from the .gz, by code independent of the loader), the
** text clean-up's corner cases against values computed with Python, invalid UTF-8, load
** errors, and concurrent encoding on one tokenizer.
*/
#include "golden.h"
#include "harness.h"
#include "hf_export.h"
#include "safetensors.h"
#include "text_clean.h"
#include "text_tables.h"
#include "tokenizer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define CONTEXT 77

struct golden {
	size_t n;
	char **text;
	int64_t *tokens;        /* n x CONTEXT */
	int64_t *lengths;       /* n, or NULL */
};

static char data_dir[1024], vocab_gz[1024];

/* {===== fixtures */

static bool load_strings(const char *path, struct golden *g)
{
	json_error_t err;
	json_t *arr = json_load_file(path, 0, &err);
	if (!json_is_array(arr)) {
		fprintf(stderr, "%s: %s\n", path, err.text);
		json_decref(arr);
		return false;
	}
	g->n = json_array_size(arr);
	g->text = calloc(g->n, sizeof *g->text);
	for (size_t i = 0; i < g->n; i++)
		g->text[i] = strdup(json_string_value(json_array_get(arr, i)));
	json_decref(arr);
	return true;
}

/* Copies an I64 tensor of `numel` elements out of a safetensors file. */
static int64_t *load_i64(const char *path, const char *name, size_t numel)
{
	rf_safetensors *st;
	if (rf_safetensors_open(path, &st) != RF_OK) {
		fprintf(stderr, "%s\n", rf_error_message());
		return NULL;
	}
	const struct rf_st_entry *e = rf_safetensors_find(st, name);
	int64_t *v = NULL;
	if (e && e->dtype == RF_I64 && e->nbytes == numel * sizeof *v) {
		v = malloc(e->nbytes);
		memcpy(v, e->data, e->nbytes);
	} else {
		fprintf(stderr, "%s: no I64 tensor %s of %zu elements\n", path, name, numel);
	}
	rf_safetensors_close(st);
	return v;
}

static void free_golden(struct golden *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->text[i]);
	free(g->text);
	free(g->tokens);
	free(g->lengths);
}

static bool load_goldens(struct golden *shared, struct golden *tiny)
{
	char p[1200], q[1200];
	snprintf(p, sizeof p, "%s/tokenizer/strings.json", data_dir);
	snprintf(q, sizeof q, "%s/tokenizer/tokens.safetensors", data_dir);
	if (!load_strings(p, shared))
		return false;
	shared->tokens = load_i64(q, "tokens", shared->n * CONTEXT);
	shared->lengths = load_i64(q, "untruncated_lengths", shared->n);
	snprintf(p, sizeof p, "%s/tiny-gelu/texts.json", data_dir);
	snprintf(q, sizeof q, "%s/tiny-gelu/reference.safetensors", data_dir);
	if (!load_strings(p, tiny))
		return false;
	tiny->tokens = load_i64(q, "text_tokens", tiny->n * CONTEXT);
	return shared->n == 150 && tiny->n == 20 && shared->tokens && shared->lengths && tiny->tokens;
}

/* }===== */

/* {===== golden comparisons */

/* Encodes every string and counts rows that differ from the golden. */
static size_t check_golden(const rf_tokenizer *tok, const struct golden *g, const char *label)
{
	size_t bad = 0, tokens = 0;
	for (size_t i = 0; i < g->n; i++) {
		int64_t ids[CONTEXT];
		int len = -1;
		CHECK_OK(rf_tokenizer_encode(tok, g->text[i], CONTEXT, ids, &len));
		const int64_t *want = g->tokens + i * CONTEXT;
		bool same = !memcmp(ids, want, sizeof ids) && (!g->lengths || len == g->lengths[i]);
		for (int k = 0; k < CONTEXT; k++)
			tokens += ids[k] == want[k] && want[k] != 0;
		if (!same) {
			bad++;
			fprintf(stderr, "%s: string %zu (\"%s\") differs (length %d, golden %lld)\n", label, i,
				g->text[i], len, g->lengths ? (long long)g->lengths[i] : -1LL);
			for (int k = 0; k < CONTEXT && (ids[k] || want[k]); k++)
				fprintf(stderr, "  %2d: %6lld %6lld%s\n", k, (long long)ids[k], (long long)want[k],
					ids[k] == want[k] ? "" : "  <--");
		}
	}
	printf("%-28s %zu/%zu strings identical (%zu non-padding tokens matched)\n", label,
	       g->n - bad, g->n, tokens);
	CHECK(bad == 0);
	return bad;
}

/* Random strings aimed at the corners (tests/data/tokenizer/fuzz.json, written by
** scripts/dev/gen_tokenizer_fuzz.py with Python's html and str.lower and the regex module):
** full, untruncated id lists. */
static void test_fuzz(const rf_tokenizer *tok)
{
	enum { WIDE = 256 };
	char path[1200];
	snprintf(path, sizeof path, "%s/tokenizer/fuzz.json", data_dir);
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err), *rows = json_object_get(root, "rows");
	CHECK(json_is_array(rows) && json_array_size(rows) >= 400);
	size_t bad = 0, n = json_array_size(rows);
	for (size_t i = 0; i < n; i++) {
		json_t *row = json_array_get(rows, i), *want = json_object_get(row, "ids");
		const char *text = json_string_value(json_object_get(row, "text"));
		int64_t ids[WIDE];
		int len = -1;
		CHECK_OK(rf_tokenizer_encode(tok, text, WIDE, ids, &len));
		bool same = (size_t)len == json_array_size(want) && len < WIDE;
		for (int k = 0; same && k < WIDE; k++)
			same = ids[k] == (k < len ? json_integer_value(json_array_get(want, (size_t)k)) : 0);
		if (!same) {
			bad++;
			fprintf(stderr, "fuzz row %zu differs (length %d, want %zu)\n", i, len,
				json_array_size(want));
		}
	}
	printf("%-28s %zu/%zu strings identical (Python regex %s, Unicode %s)\n", "fuzz vs Python",
	       n - bad, n, json_string_value(json_object_get(root, "regex")),
	       json_string_value(json_object_get(root, "unicodedata")));
	CHECK(bad == 0);
	json_decref(root);
}

/* Long and repetitive words (tests/data/tokenizer/long.json, written by
** scripts/dev/gen_tokenizer_long.py with the reference's round-by-round merging): runs of
** one letter, where pairs overlap, alternations and random words over small alphabets.
** Full id lists: the context is one more than the reference's length. */
static void test_long_words(const rf_tokenizer *tok)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/tokenizer/long.json", data_dir);
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err), *rows = json_object_get(root, "rows");
	CHECK(json_is_array(rows) && json_array_size(rows) >= 800);
	size_t bad = 0, n = json_array_size(rows);
	for (size_t i = 0; i < n; i++) {
		json_t *row = json_array_get(rows, i), *want = json_object_get(row, "ids");
		const char *text = json_string_value(json_object_get(row, "text"));
		int wide = (int)json_array_size(want) + 1, len = -1;
		int64_t *ids = calloc((size_t)wide, sizeof *ids);
		CHECK_OK(rf_tokenizer_encode(tok, text, wide, ids, &len));
		bool same = len == wide - 1;
		for (int k = 0; same && k < len; k++)
			same = ids[k] == json_integer_value(json_array_get(want, (size_t)k));
		if (!same && bad++ < 3)
			fprintf(stderr, "long word row %zu (\"%.40s...\") differs\n", i, text);
		free(ids);
	}
	printf("%-28s %zu/%zu words identical\n", "long words vs Python", n - bad, n);
	CHECK(bad == 0);
	json_decref(root);
}

/* This thread's CPU seconds: other processes on a busy machine do not count. */
static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A 1 MB word (random letters) took 43 s when each merge round rescanned the word. It
** must take well under a second, and its first ids (the context) must be those of a
** 64 KiB prefix of it: merging reaches no further than a few symbols. A text of many
** words stops once the context is full. */
static void test_huge_word(const rf_tokenizer *tok)
{
	enum { MB = 1 << 20 };
	char *word = malloc(MB + 1);
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < MB; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		word[i] = (char)('a' + x % 26);
	}
	word[MB] = '\0';
	int64_t full[CONTEXT], prefix[CONTEXT];
	double t0 = seconds();
	CHECK_OK(rf_tokenizer_encode(tok, word, CONTEXT, full, NULL));
	double took = seconds() - t0;
	word[64 << 10] = '\0';
	CHECK_OK(rf_tokenizer_encode(tok, word, CONTEXT, prefix, NULL));
	CHECK(!memcmp(full, prefix, sizeof full));
	for (size_t i = 0; i < MB; i += 8)
		memcpy(word + i, "a photo ", 8);
	word[MB] = '\0';
	double t1 = seconds();
	CHECK_OK(rf_tokenizer_encode(tok, word, CONTEXT, prefix, NULL));
	double took_words = seconds() - t1;
#ifdef __SANITIZE_ADDRESS__
	const double limit = 10;   /* instrumented: still far below the 43 s of the old merging */
#else
	const double limit = 1;
#endif
	printf("%-28s one 1 MB word %.3f s, 1 MB of words %.3f s (CPU)\n", "long input", took, took_words);
	CHECK(took < limit && took_words < limit);
	free(word);
}

static void test_truncation(const rf_tokenizer *tok)
{
	int64_t ids[8];
	int len;
	CHECK_OK(rf_tokenizer_encode(tok, "a photo of a photo of a photo", 8, ids, &len));
	CHECK(len == 10);
	CHECK(ids[0] == 49406 && ids[7] == 49407);
	CHECK_OK(rf_tokenizer_encode(tok, "a b c d e f g h", 1, ids, NULL));
	CHECK(ids[0] == 49407);
	CHECK_OK(rf_tokenizer_encode(tok, "", 4, ids, &len));
	CHECK(len == 2 && ids[0] == 49406 && ids[1] == 49407 && ids[2] == 0 && ids[3] == 0);
	CHECK_FAILS(rf_tokenizer_encode(tok, "x", 0, ids, NULL), RF_ERR_INVALID, "context");
	/* U+180E is not White_Space for the reference (PCRE2's \s would skip it): it is a
	** piece of its own, like the same text with spaces around it. */
	int64_t a[CONTEXT], b[CONTEXT], c[CONTEXT];
	CHECK_OK(rf_tokenizer_encode(tok, "a\xe1\xa0\x8e" "b", CONTEXT, a, NULL));
	CHECK_OK(rf_tokenizer_encode(tok, "a \xe1\xa0\x8e b", CONTEXT, b, NULL));
	CHECK_OK(rf_tokenizer_encode(tok, "a b", CONTEXT, c, NULL));
	CHECK(!memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a));
	CHECK(rf_tokenizer_sot(tok) == 49406 && rf_tokenizer_eot(tok) == 49407);
}

static void test_invalid_utf8(const rf_tokenizer *tok)
{
	static const struct {
		const char *text;
		const char *offset;
	} cases[] = {
		{"abc\xff", "offset 3"},                  /* never a lead byte */
		{"a\xc3", "offset 1"},                    /* truncated sequence */
		{"\xc0\xaf", "offset 0"},                 /* overlong '/' */
		{"ok \xed\xa0\x80", "offset 3"},          /* surrogate U+D800 */
		{"\xf4\x90\x80\x80", "offset 0"},         /* past U+10FFFF */
		{"h\xc3\xa9llo\x80", "offset 6"},         /* stray continuation byte */
		{"\xe2\x82x", "offset 0"},                /* bad continuation */
	};
	int64_t ids[CONTEXT];
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++)
		CHECK_FAILS(rf_tokenizer_encode(tok, cases[i].text, CONTEXT, ids, NULL), RF_ERR_INVALID,
			    cases[i].offset);
}

/* Expected values computed with Python 3.11: html.unescape twice, strip, \s+ -> ' ' with
** the regex module's \s, strip, lower (see tests/data/tokenizer/README.md). */
static void test_clean(void)
{
	static const char *const cases[][2] = {
		{"&notit;", "\302\254it;"},
		{"&amp;amp;", "&"},
		{"&#x80;&#X9F;&#129;", "\342\202\254\303\277\302\201"},
		{"&#0;", "\357\277\275"},
		{"&#xD800;", "\357\277\275"},
		{"&#1114112;", "\357\277\275"},
		{"&#99999999999999999999;", "\357\277\275"},
		{"&#1;a", "a"},
		{"&#xFDD0;b", "b"},
		{"a&#13;b", "a b"},
		{"&copy 2024", "\302\251 2024"},
		{"&AMP", "&"},
		{"&ampx", "&x"},
		{"&#x;", "&#x;"},
		{"&#;", "&#;"},
		{"&abcdefghijklmnopqrstuvwxyzabcdefghij;", "&abcdefghijklmnopqrstuvwxyzabcdefghij;"},
		{"&CounterClockwiseContourIntegral;", "\342\210\263"},
		{"&CounterClockwiseContourIntegral", "&counterclockwisecontourintegral"},
		{"x&amp;lt;y", "x<y"},
		{"&lt&gt;", "<>"},
		{"&Eacute;&eacute&#233;", "\303\251\303\251\303\251"},
		{"&nGt;", "\342\211\253\342\203\222"},
		{"&#x1F600;", "\360\237\230\200"},
		{"&#X27;", "'"},
		{"&#39", "'"},
		{"&;", "&;"},
		{"\316\237\316\224\316\245\316\243\316\243\316\225\316\245\316\243",
		 "\316\277\316\264\317\205\317\203\317\203\316\265\317\205\317\202"},
		{"\316\243\316\221", "\317\203\316\261"},
		{"\316\221 \316\243", "\316\261 \317\203"},
		{"\316\221\316\243.", "\316\261\317\202."},
		{"\316\243", "\317\203"},
		{"\316\221\316\243'\316\221", "\316\261\317\203'\316\261"},
		{"\316\221\316\243'", "\316\261\317\202'"},
		{"\312\260\316\243", "\312\260\317\203"},
		{"\304\260STANBUL", "i\314\207stanbul"},
		{"\341\272\236", "\303\237"},
		{"\307\205", "\307\206"},
		{"\316\251", "\317\211"},
		{"\302\240a\302\205b\342\200\203c\034", "a b c"},
		{"a\034b", "a\034b"},
		{"  \011\012  ", ""},
		{"x\343\200\200\343\200\200y", "x y"},
		{"\357\274\241\357\274\242\357\274\243", "\357\275\201\357\275\202\357\275\203"},
	};
	size_t bad = 0;
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++) {
		char *out = NULL;
		size_t len;
		CHECK_OK(rf_text_clean(cases[i][0], &out, &len));
		if (!out || strcmp(out, cases[i][1]) || len != strlen(cases[i][1])) {
			fprintf(stderr, "clean(\"%s\") = \"%s\", want \"%s\"\n", cases[i][0], out ? out : "",
				cases[i][1]);
			bad++;
		}
		free(out);
	}
	printf("%-28s %zu/%zu cases as Python (tables: Unicode %s)\n", "text clean-up",
	       RF_ARRAY_LEN(cases) - bad, RF_ARRAY_LEN(cases), rf_text_tables_unicode_version);
	CHECK(bad == 0);
}

/* }===== */

/* {===== Hugging Face files, written from the .gz the way Hugging Face lays them out */

/* Both loaders must give the same ids for every golden string. */
static void test_hf(const rf_tokenizer *gz, const struct golden *shared, const struct golden *tiny)
{
	char *dir = rf_temp_dir(), vocab[4200], merges[4200];
	snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
	snprintf(merges, sizeof merges, "%s/merges.txt", dir);
	CHECK(rf_test_write_hf_vocab(vocab_gz, vocab, merges));
	rf_tokenizer *hf = NULL;
	CHECK_OK(rf_tokenizer_load_hf(vocab, merges, &hf));
	if (hf) {
		size_t differ = 0;
		const struct golden *sets[] = {shared, tiny};
		for (int s = 0; s < 2; s++) {
			for (size_t i = 0; i < sets[s]->n; i++) {
				int64_t a[CONTEXT], b[CONTEXT];
				int la = 0, lb = -1;
				CHECK_OK(rf_tokenizer_encode(gz, sets[s]->text[i], CONTEXT, a, &la));
				CHECK_OK(rf_tokenizer_encode(hf, sets[s]->text[i], CONTEXT, b, &lb));
				differ += memcmp(a, b, sizeof a) != 0 || la != lb;
			}
		}
		printf("%-28s %zu/%zu strings identical to the .gz loader\n", "Hugging Face loader",
		       shared->n + tiny->n - differ, shared->n + tiny->n);
		CHECK(differ == 0);
		check_golden(hf, shared, "tokenizer golden (HF)");
		rf_tokenizer_destroy(hf);
	}
	/* A merge whose result is not in the vocabulary is a format error naming the line. */
	FILE *f = fopen(merges, "w");
	fputs("#version: 0.2\nh e\nqz xj\n", f);
	fclose(f);
	CHECK_FAILS(rf_tokenizer_load_hf(vocab, merges, &hf), RF_ERR_FORMAT, "line 3");
	CHECK(hf == NULL);
	unlink(merges);
	CHECK_FAILS(rf_tokenizer_load_hf(vocab, merges, &hf), RF_ERR_IO, "merges.txt");
	f = fopen(vocab, "w");
	fputs("{\"a\": 0, \"b\": 0}", f);
	fclose(f);
	f = fopen(merges, "w");
	fclose(f);
	CHECK_FAILS(rf_tokenizer_load_hf(vocab, merges, &hf), RF_ERR_FORMAT, "vocab.json");
	rf_temp_dir_remove(dir);
}

/* A vocabulary of the 512 byte symbols, the two specials and "aa" .. "a" x K, with a
** merge for every split of every run (K^2/2 of them): far more merges than tokens. The
** table was sized by the tokens and filled up, and the next lookup probed forever. */
static void test_hf_many_merges(void)
{
	enum { K = 100 };
	char *dir = rf_temp_dir(), vocab[4200], merges[4200];
	snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
	snprintf(merges, sizeof merges, "%s/merges.txt", dir);
	json_t *v = json_object();
	int id = 0;
	for (int end = 0; end < 2; end++)
		for (unsigned b = 0; b < 256; b++) {
			char s[16];
			size_t n = rf_test_byte_char(b, s);
			if (end)
				memcpy(s + n, "</w>", 5);
			json_object_set_new(v, s, json_integer(id++));
		}
	json_object_set_new(v, "<|startoftext|>", json_integer(id++));
	json_object_set_new(v, "<|endoftext|>", json_integer(id++));
	char run[K + 1];
	for (int i = 2; i <= K; i++) {
		memset(run, 'a', (size_t)i);
		run[i] = '\0';
		json_object_set_new(v, run, json_integer(id++));
	}
	CHECK(json_dump_file(v, vocab, 0) == 0);
	json_decref(v);
	FILE *f = fopen(merges, "w");
	fputs("#version: 0.2\n", f);
	int count = 0;
	for (int i = 1; i < K; i++)
		for (int j = 1; i + j <= K; j++, count++)
			fprintf(f, "%.*s %.*s\n", i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				j, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	fclose(f);
	rf_tokenizer *tok = NULL;
	alarm(60);   /* a hang fails the test instead of holding it until ctest's timeout */
	CHECK_OK(rf_tokenizer_load_hf(vocab, merges, &tok));
	int64_t ids[8];
	if (tok) {
		CHECK_OK(rf_tokenizer_encode(tok, "aaaaa", 8, ids, NULL));
		/* "aaaa" (its id: 514 + 4 - 2), then the last byte as "a</w>", which no rule joins. */
		CHECK(ids[0] == 512 && ids[1] == 516 && ids[2] == 256 + 'a' && ids[3] == 513);
	}
	alarm(0);
	printf("%-28s %d merges for %d tokens loaded\n", "HF merges past the vocab", count, id);
	rf_tokenizer_destroy(tok);
	rf_temp_dir_remove(dir);
}

/* }===== */

static void test_load_errors(void)
{
	rf_tokenizer *tok = NULL;
	CHECK_FAILS(rf_tokenizer_load_bpe_gz("/nonexistent/vocab.txt.gz", &tok), RF_ERR_IO,
		    "/nonexistent/vocab.txt.gz");
	CHECK(tok == NULL);
	char path[] = "/tmp/rf_vocab_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		/* A gzip header followed by garbage. */
		static const unsigned char bad[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad,
						    0xbe, 0xef, 0x01, 0x02};
		CHECK(write(fd, bad, sizeof bad) == (ssize_t)sizeof bad);
		close(fd);
		CHECK_FAILS(rf_tokenizer_load_bpe_gz(path, &tok), RF_ERR_FORMAT, path);
		unlink(path);
	}
	/* Files that are not what they claim: a folder, a device that never ends, a FIFO
	** with no writer (which blocked the open forever): refused at once, saying what they
	** are. A gzip bomb (64 MiB + 1 of zeros, a few KiB compressed) is over the limit. */
	char *dir = rf_temp_dir(), fifo[4200], bomb[4200];
	snprintf(fifo, sizeof fifo, "%s/vocab.txt.gz", dir);
	snprintf(bomb, sizeof bomb, "%s/bomb.txt.gz", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	alarm(60);
	CHECK_FAILS(rf_tokenizer_load_bpe_gz(fifo, &tok), RF_ERR_IO, "a FIFO");
	CHECK_FAILS(rf_tokenizer_load_bpe_gz(dir, &tok), RF_ERR_IO, "a folder");
	CHECK_FAILS(rf_tokenizer_load_bpe_gz("/dev/zero", &tok), RF_ERR_IO, "a device");
	CHECK_FAILS(rf_tokenizer_load_hf(fifo, fifo, &tok), RF_ERR_IO, "a FIFO");
	alarm(0);
	gzFile gz = gzopen(bomb, "wb9");
	static char zeros[1 << 16];
	for (int i = 0; i < 1024; i++)
		gzwrite(gz, zeros, sizeof zeros);
	gzwrite(gz, "x", 1);
	gzclose(gz);
	CHECK_FAILS(rf_tokenizer_load_bpe_gz(bomb, &tok), RF_ERR_FORMAT, "over the limit");
	CHECK(tok == NULL);
	rf_temp_dir_remove(dir);
}

/* {===== concurrency */

struct worker {
	const rf_tokenizer *tok;
	const struct golden *g;
	int rounds;
	size_t mismatches;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int r = 0; r < w->rounds; r++) {
		for (size_t i = 0; i < w->g->n; i++) {
			/* Each thread starts at a different string so they overlap differently. */
			size_t k = (i + (size_t)r * 7 + (size_t)(uintptr_t)w % 13) % w->g->n;
			int64_t ids[CONTEXT];
			int len;
			if (rf_tokenizer_encode(w->tok, w->g->text[k], CONTEXT, ids, &len) != RF_OK ||
			    memcmp(ids, w->g->tokens + k * CONTEXT, sizeof ids) || len != w->g->lengths[k])
				w->mismatches++;
		}
	}
	return NULL;
}

static void test_concurrent(const rf_tokenizer *tok, const struct golden *g)
{
	enum { THREADS = 8 };
	pthread_t th[THREADS];
	struct worker w[THREADS];
	size_t mismatches = 0;
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){tok, g, 4, 0};
		CHECK(pthread_create(&th[t], NULL, worker_main, &w[t]) == 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		mismatches += w[t].mismatches;
	}
	printf("%-28s %d threads x %zu encodes, %zu mismatches\n", "concurrent encoding", THREADS,
	       4 * g->n, mismatches);
	CHECK(mismatches == 0);
}

/* }===== */

int main(void)
{
	const char *data = getenv("RF_TEST_DATA"), *home = getenv("REFRACT_HOME");
	if (!data || !home) {
		fprintf(stderr, "SKIP: RF_TEST_DATA and REFRACT_HOME must be set (ctest sets them)\n");
		return 77;
	}
	snprintf(data_dir, sizeof data_dir, "%s", data);
	snprintf(vocab_gz, sizeof vocab_gz, "%s/scripts/data/bpe_simple_vocab_16e6.txt.gz", home);

	struct golden shared = {0}, tiny = {0};
	CHECK(load_goldens(&shared, &tiny));
	rf_tokenizer *tok = NULL;
	CHECK_OK(rf_tokenizer_load_bpe_gz(vocab_gz, &tok));
	if (tok && !rf_test_failures) {
		check_golden(tok, &shared, "tokenizer golden (gz)");
		check_golden(tok, &tiny, "tiny-gelu texts (gz)");
		test_fuzz(tok);
		test_long_words(tok);
		test_huge_word(tok);
		test_truncation(tok);
		test_invalid_utf8(tok);
		test_hf(tok, &shared, &tiny);
		test_concurrent(tok, &shared);
	}
	test_clean();
	test_hf_many_merges();
	test_load_errors();
	rf_tokenizer_destroy(tok);
	free_golden(&shared);
	free_golden(&tiny);
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}
