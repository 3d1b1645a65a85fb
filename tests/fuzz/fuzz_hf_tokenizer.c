/*
** fuzz_hf_tokenizer.c: libFuzzer target for the Hugging Face tokenizer files. The input
** is split at its first NUL into vocab.json and merges.txt; a pair that loads then
** encodes a few fixed texts and the input's tail (after a second NUL), each of which must
** give ids inside the vocabulary, starting with the start token, and the same ids whether
** the full length is asked for or not.
*/
#include "fuzz_util.h"
#include "status.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT 16

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmp_dir();
	return 0;
}

static void encode(const rf_tokenizer *tok, const char *text)
{
	int64_t ids[CONTEXT], again[CONTEXT];
	int full = 0;
	if (rf_tokenizer_encode(tok, text, CONTEXT, ids, &full) != RF_OK) {
		if (!rf_error_message()[0])
			fuzz_fail("an encoding error without a message");
		return;
	}
	if (rf_tokenizer_encode(tok, text, CONTEXT, again, NULL) != RF_OK ||
	    memcmp(ids, again, sizeof ids) != 0)
		fuzz_fail("ids differ when the full length is not asked for");
	if (ids[0] != rf_tokenizer_sot(tok) || full < 2)
		fuzz_fail("no start token");
	for (int i = 0; i < CONTEXT; i++) {
		if (ids[i] < 0 || ids[i] > RF_TOKENIZER_MAX_SYMBOLS)
			fuzz_fail("an id outside the vocabulary");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	if (!nul)
		return 0;
	size_t vocab_len = (size_t)(nul - data);
	const uint8_t *rest = nul + 1;
	size_t rest_len = size - vocab_len - 1;
	const uint8_t *nul2 = memchr(rest, 0, rest_len);
	size_t merges_len = nul2 ? (size_t)(nul2 - rest) : rest_len;
	char vocab[1024], merges[1024];
	snprintf(vocab, sizeof vocab, "%s", fuzz_write("vocab.json", data, vocab_len));
	snprintf(merges, sizeof merges, "%s", fuzz_write("merges.txt", rest, merges_len));
	rf_tokenizer *tok = NULL;
	if (rf_tokenizer_load_hf(vocab, merges, &tok) != RF_OK) {
		if (tok || !rf_error_message()[0])
			fuzz_fail("a refused vocabulary left a tokenizer or no message");
		return 0;
	}
	encode(tok, "");
	encode(tok, "a photo of a cat");
	encode(tok, "<start_of_text>hello<end_of_text> world's 123!!");
	if (nul2) {
		size_t n = rest_len - merges_len - 1;
		char *text = malloc(n + 1);
		if (text) {
			memcpy(text, nul2 + 1, n);
			text[n] = 0;
			encode(tok, text);
			free(text);
		}
	}
	rf_tokenizer_destroy(tok);
	return 0;
}
