/*
** text_tables.h: the Unicode and HTML data the tokenizer's text clean-up needs to match
** Python exactly, generated into text_tables_entities.c and text_tables_charrefs.c
** (html.unescape) and text_tables_case.c (str.lower) by scripts/dev/gen_text_tables.py
** (from the interpreter's own html module and str.lower, so the tables reproduce
** behaviour rather than a reading of the standards). Compute layer (L5; host only,
** internal).
*/
#ifndef RF_COMPUTE_MODEL_TEXT_TABLES_H
#define RF_COMPUTE_MODEL_TEXT_TABLES_H

#include "rf_base.h"

/* The unicodedata version of the Python that generated the tables ("14.0.0"). */
extern const char rf_text_tables_unicode_version[];

/* HTML5 named references, sorted by name in byte order. `name` has no '&' and keeps a
** trailing ';' when the entry is the one with a semicolon; `value` is UTF-8. */
struct rf_html_entity {
	const char *name;
	const char *value;
};
extern const struct rf_html_entity rf_html_entities[];
extern const size_t rf_html_entity_count;

struct rf_cp_map {
	uint32_t from, to;
};
/* Numeric references Python replaces (sorted by `from`): &#0; and &#x80;..&#x9F;. */
extern const struct rf_cp_map rf_html_charref_fixes[];
extern const size_t rf_html_charref_fix_count;
/* Numeric references Python drops (sorted): controls, noncharacters. */
extern const uint32_t rf_html_dropped_codepoints[];
extern const size_t rf_html_dropped_count;

/* One-to-one lower-case mappings: code points first, first + stride, ..., last map to
** themselves + delta. Runs are disjoint and sorted. */
struct rf_lower_run {
	uint32_t first, last;
	int32_t delta;
	uint32_t stride;
};
extern const struct rf_lower_run rf_lower_runs[];
extern const size_t rf_lower_run_count;

/* One-to-many lower-case mappings (U+0130 -> "i" U+0307). */
struct rf_lower_multi {
	uint32_t cp;
	uint32_t n;
	uint32_t to[3];
};
extern const struct rf_lower_multi rf_lower_multis[];
extern const size_t rf_lower_multi_count;

/* The classes CPython's final-sigma rule reads. */
enum rf_case_kind { RF_CASE_NONE, RF_CASE_CASED, RF_CASE_IGNORABLE };
struct rf_case_run {
	uint32_t first, last;
	enum rf_case_kind kind;
};
extern const struct rf_case_run rf_case_runs[];
extern const size_t rf_case_run_count;

#endif
