/*
** fuzz_bpe.c: libFuzzer target for text cleaning and BPE with CLIP's own vocabulary. The
** input is a text (cut at a NUL). Cleaning must either succeed with valid, NUL-free
** output or refuse with the byte offset; encoding must agree with cleaning about
** validity, and the ids of the text encoded whole (the full length asked for) must equal
** those encoded with the early stop at the context, at a context taken from the input's
** first byte and at CLIP's 77; the ids start with the start token (unless the context
** is 1) and end with the end token.
*/
#include "fuzz_util.h"
#include "status.h"
#include "text_clean.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

static rf_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (rf_tokenizer_load_bpe_gz(RF_SOURCE_DIR "/scripts/data/bpe_simple_vocab_16e6.txt.gz", &tok) != RF_OK)
		fuzz_fail(rf_error_message());
	return 0;
}

/* Encodes at `context` with and without the full length; they must agree. */
static void encode(const char *text, int context, bool valid)
{
	int64_t *a = calloc((size_t)context, sizeof *a), *b = calloc((size_t)context, sizeof *b);
	if (!a || !b)
		abort();
	int full = 0;
	enum rf_status s = rf_tokenizer_encode(tok, text, context, a, &full);
	if ((s == RF_OK) != valid)
		fuzz_fail("encoding and cleaning disagree about the text's validity");
	if (s == RF_OK) {
		if (rf_tokenizer_encode(tok, text, context, b, NULL) != RF_OK ||
		    memcmp(a, b, (size_t)context * sizeof *a) != 0)
			fuzz_fail("the early stop at the context changed the ids");
		if ((context > 1 && a[0] != rf_tokenizer_sot(tok)) || full < 2 ||
		    a[(full < context ? full : context) - 1] != rf_tokenizer_eot(tok))
			fuzz_fail("start or end token missing");
	}
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	char *clean = NULL;
	size_t clean_len = 0;
	enum rf_status s = rf_text_clean(text, &clean, &clean_len);
	if (s == RF_OK) {
		if (strlen(clean) != clean_len)
			fuzz_fail("cleaned text length wrong or holds a NUL");
		free(clean);
	} else if (!strstr(rf_error_message(), "byte")) {
		fuzz_fail("invalid text refused without its byte offset");
	}
	encode(text, 1 + (size ? data[0] % 64 : 0), s == RF_OK);
	encode(text, 77, s == RF_OK);
	free(text);
	return 0;
}
