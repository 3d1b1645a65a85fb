/*
** text_clean.h: the text clean-up CLIP's tokenizer applies before splitting, exact with
** the reference Python: html.unescape twice (HTML5 rules), str.strip, every run of
** whitespace (the `regex` module's \s, i.e. Unicode White_Space) to one space, str.strip,
** str.lower (full mapping, final sigma). ftfy.fix_text, which the reference calls first,
** is not reproduced: the goldens were made with inputs it leaves unchanged.
** Compute layer (L5; host only, internal to the tokenizer, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_TEXT_CLEAN_H
#define RF_COMPUTE_MODEL_TEXT_CLEAN_H

#include "rf_base.h"

/* Cleans the NUL-terminated UTF-8 `text` into a new NUL-terminated UTF-8 string *out
** (free() it) of *out_len bytes. Invalid UTF-8 (bad lead or continuation byte, overlong
** form, surrogate, past U+10FFFF, truncated sequence) is RF_ERR_INVALID and the message
** gives the byte offset of the offending sequence. */
enum rf_status rf_text_clean(const char *text, char **out, size_t *out_len);

/* The `regex` module's \s (Unicode White_Space, 25 code points) as a PCRE2 class body,
** for the pre-tokenizer pattern: PCRE2's own \s in UCP mode also matches U+180E, which
** stopped being White_Space in Unicode 6.3. Must list the same code points as
** regex_space() in text_clean.c. */
#define RF_TEXT_SPACE_CLASS \
	"\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}" \
	"\\x{202f}\\x{205f}\\x{3000}"

#endif
