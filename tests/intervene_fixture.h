/*
** intervene_fixture.h: what test_intervene.c and test_intervene_errors.c share: the
** tiny-gelu model loaded on the test device, the 8 golden images, its sizes under the
** names of tests/data/tiny-gelu/README.md, and running rf_clip_intervene or stopping.
*/
#ifndef RF_TESTS_INTERVENE_FIXTURE_H
#define RF_TESTS_INTERVENE_FIXTURE_H

#include "clip.h"
#include "intervene.h"

/* Sizes (README "Sizes"): images, tokens, width, heads, head width, layers, MLP width,
** embedding width. */
extern int B, N, W, H, DH, L, MLP, D;
extern rf_ctx *ctx;
extern rf_clip *model;
extern rf_tensor *pixels;        /* the 8 golden images [B, 3, 32, 32] */
extern const char *model_file;   /* the checkpoint, for reading weights */

/* Loads the model and the pixels and sets the sizes; false (failures counted) if either
** cannot be loaded. */
bool intervene_fixture_setup(void);
void intervene_fixture_teardown(void);

/* rf_clip_intervene that must succeed: a failure is counted and, since nothing after it
** could be checked, ends the test. */
void run_intervene(const struct rf_edit *edits, int nedits, struct rf_tap *taps, int ntaps,
		   const rf_tensor *px, rf_tensor **embeds);
/* Destroys every tap's output and clears it. */
void free_taps(struct rf_tap *taps, int n);

#endif
