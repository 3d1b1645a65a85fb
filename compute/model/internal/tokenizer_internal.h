/*
** tokenizer_internal.h: the tokenizer's loaded state, shared by its loaders
** (tokenizer_load.c) and the encoder (tokenizer.c). After loading it is read-only, which
** is what makes concurrent encode calls on one tokenizer safe. Compute layer (L5; host
** only, internal).
*/
#ifndef RF_COMPUTE_MODEL_TOKENIZER_INTERNAL_H
#define RF_COMPUTE_MODEL_TOKENIZER_INTERNAL_H

#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* One merge rule, keyed by the ids of its two symbols: (a << 32) | b. Empty slots have
** key RF_MERGE_EMPTY, which no pair of 31-bit ids can produce. */
#define RF_MERGE_EMPTY UINT64_MAX
struct rf_merge {
	uint64_t key;
	int32_t rank;    /* line order in the merges file: lower merges first */
	int32_t id;      /* id of the concatenated symbol */
};

struct rf_tokenizer {
	pcre2_code *re;              /* the pre-tokenizer pattern (JIT-compiled when possible) */
	int32_t byte_id[256];        /* id of the character standing for each byte */
	int32_t byte_end_id[256];    /* ... and of that character followed by "</w>" */
	struct rf_merge *merges;     /* open addressing, mask + 1 slots */
	size_t merge_mask;
	size_t merge_count;          /* distinct rules in the table */
	size_t merge_capacity;       /* the rules it was sized for (at most half the slots) */
	int32_t max_rank;            /* the highest rank of a rule (0 if none) */
	int32_t vocab_size;
	int64_t sot, eot;
};

/* The characters GPT-2/CLIP use for bytes: 33-126, 161-172, 174-255 stand for themselves,
** the other 68 bytes for U+0100 upwards in byte order. Writes the UTF-8 of byte b's
** character (NUL-terminated, at most 3 bytes) and returns its length. */
size_t rf_bpe_byte_char(uint8_t b, char out[4]);

/* Allocates the tokenizer with an empty merge table sized for `merges` rules and the
** compiled pattern. The loaders size it by the rules they read: a table that filled up
** would make every lookup probe forever. */
enum rf_status rf_tokenizer_alloc(size_t merges, rf_tokenizer **out);
/* Records merge (a, b) -> id at `rank` (>= 0); a later rule for the same pair replaces an
** earlier one, as Python's dict does when it builds the ranks. At most the `merges` rules
** the table was sized for (a broken invariant otherwise). */
void rf_tokenizer_add_merge(rf_tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t id);

#endif
