/*
** tokenizer.h: CLIP's byte-level BPE tokenizer, exact with the reference (see
** tests/data/tokenizer/README.md): HTML unescape (twice), whitespace clean-up, Unicode
** lower-casing, the pre-tokenizer pattern (contractions, letter runs, single digits, other
** runs) evaluated with PCRE2 in UCP mode, byte-to-unicode mapping, BPE merges by rank,
** start/end tokens and truncation to the context length keeping the end token.
** The reference's first step, ftfy.fix_text, is not reproduced (its goldens use inputs
** that ftfy leaves unchanged). Compute layer (L5; host only).
*/
#ifndef RF_COMPUTE_MODEL_TOKENIZER_H
#define RF_COMPUTE_MODEL_TOKENIZER_H

#include "rf_base.h"

typedef struct rf_tokenizer rf_tokenizer;

/* open_clip's vocabulary: bpe_simple_vocab_16e6.txt.gz (merges; ids derived). Errors:
** RF_ERR_IO (cannot open), RF_ERR_FORMAT (corrupt gzip, a line that is not two symbols). */
enum rf_status rf_tokenizer_load_bpe_gz(const char *path, rf_tokenizer **out);
/* Hugging Face's vocab.json + merges.txt (ids from vocab.json, distinct and dense; a first
** line "#version..." is skipped; every merge and its result must be in the vocabulary).
** The start/end ids are those of <|startoftext|> and <|endoftext|>. Whichever loader is
** used, the strings that encode as those ids inside a text are open_clip's
** "<start_of_text>" and "<end_of_text>", so both loaders give identical ids. */
enum rf_status rf_tokenizer_load_hf(const char *vocab_json, const char *merges_txt,
				    rf_tokenizer **out);
void rf_tokenizer_destroy(rf_tokenizer *tok);

/* Limits of the loaders (README.md, "Limits"): each file at most RF_MAX_VOCAB_BYTES once
** decompressed (file_in.h), a vocabulary of at most this many tokens and merges. */
#define RF_TOKENIZER_MAX_SYMBOLS (1 << 22)

int64_t rf_tokenizer_sot(const rf_tokenizer *tok);   /* 49406 for CLIP */
int64_t rf_tokenizer_eot(const rf_tokenizer *tok);   /* 49407 for CLIP */

/* Encodes one NUL-terminated UTF-8 string into ids[context] (zero padded; context >= 1).
** If the ids with start and end tokens outnumber `context`, the first `context` are kept
** and the last becomes the end token. *untruncated (may be NULL) receives that count
** before truncation. Invalid UTF-8 is RF_ERR_INVALID with the byte offset in the message.
** Thread-safe: any number of threads may encode with one tokenizer at once. */
enum rf_status rf_tokenizer_encode(const rf_tokenizer *tok, const char *text, int context,
				   int64_t *ids, int *untruncated);

#endif
