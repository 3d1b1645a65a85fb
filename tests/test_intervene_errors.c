/*
** test_intervene_errors.c: misuse of rf_clip_intervene on the tiny-gelu model (layers,
** heads and tokens out of range, unknown sites and kinds, wrong value shapes, bad pixels,
** bad tap lists) is RF_ERR_INVALID with a message that says what was wrong, and leaves
** no embeddings or taps behind.
*/
#include "harness.h"
#include "intervene_fixture.h"
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {===== misuse */

static void expect_invalid(const struct rf_edit *edits, int nedits, struct rf_tap *taps, int ntaps,
			   const rf_tensor *px, const char *needle, int line)
{
	rf_tensor *embeds = (rf_tensor *)1;
	rf_check_fails(rf_clip_intervene(model, px, edits, nedits, taps, ntaps, &embeds), RF_ERR_INVALID,
		       needle, "rf_clip_intervene", __FILE__, line);
	if (embeds) {
		fprintf(stderr, "line %d: embeds not NULL after a failure\n", line);
		rf_test_failures++;
	}
	for (int i = 0; i < ntaps; i++)
		if (taps[i].out) {
			fprintf(stderr, "line %d: tap %d set after a failure\n", line, i);
			rf_test_failures++;
		}
}

#define EXPECT_INVALID(edits, nedits, taps, ntaps, px, needle) \
	expect_invalid(edits, nedits, taps, ntaps, px, needle, __LINE__)

static void test_misuse(void)
{
	struct rf_shape s4 = rf_shape_of(1, (int64_t)4), shead = rf_shape_of(2, (int64_t)N, (int64_t)DH);
	struct rf_shape sbad = rf_shape_of(4, (int64_t)B, (int64_t)3, (int64_t)16, (int64_t)16);
	rf_tensor *small = rf_test_tensor(ctx, &s4, NULL), *hv = rf_test_tensor(ctx, &shead, NULL);
	rf_tensor *ids = NULL, *badpx = rf_test_tensor(ctx, &sbad, NULL);
	CHECK_OK(rf_tensor_create_host(RF_I64, &shead, &ids));
	/* A valid tap before the bad item: it must not be left set. */
	struct rf_tap taps[2] = { { RF_TAP_RESID_POST, 0, NULL }, { RF_TAP_RESID_POST, 0, NULL } };
	struct rf_edit e;
	e = (struct rf_edit){ RF_SITE_HEAD, L, 0, RF_EDIT_ZERO, NULL };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "edit 1: layer 3 is out of range (0..2)");
	e.layer = -1;
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "layer -1 is out of range (0..2)");
	e = (struct rf_edit){ RF_SITE_HEAD, 0, H, RF_EDIT_ZERO, NULL };
	struct rf_edit two[2] = { { RF_SITE_MLP, 0, 0, RF_EDIT_ZERO, NULL }, e };
	EXPECT_INVALID(two, 2, taps, 1, pixels, "edit 2: head 4 is out of range (0..3)");
	e = (struct rf_edit){ RF_SITE_TOKEN, 0, N, RF_EDIT_ZERO, NULL };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "token 17 is out of range (0..16)");
	e = (struct rf_edit){ (enum rf_edit_site)9, 0, 0, RF_EDIT_ZERO, NULL };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "unknown site 9");
	e = (struct rf_edit){ RF_SITE_ATTN, 0, 0, (enum rf_edit_kind)7, NULL };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "unknown kind 7");
	e = (struct rf_edit){ RF_SITE_ATTN, 0, 0, RF_EDIT_MEAN, NULL };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a mean edit needs a value tensor");
	e = (struct rf_edit){ RF_SITE_HEAD, 0, 0, RF_EDIT_MEAN, ids };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "the value of a mean edit must be f32, not I64");
	e = (struct rf_edit){ RF_SITE_HEAD, 0, 0, RF_EDIT_MEAN, small };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a mean edit of a head takes a value of shape [17, 16] or [16], not [4]");
	/* A NaN or an infinity in a value went into the embedding without a word. */
	float *poison = calloc((size_t)(N * DH), sizeof *poison);
	poison[5] = NAN;
	rf_tensor *nan_value = rf_test_tensor(ctx, &shead, poison);
	free(poison);
	e = (struct rf_edit){ RF_SITE_HEAD, 0, 0, RF_EDIT_MEAN, nan_value };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "edit 1: the value of a mean edit holds NaN at element 6 (counting from 1, row-major)");
	rf_tensor_destroy(nan_value);
	e = (struct rf_edit){ RF_SITE_HEAD, 0, 0, RF_EDIT_REPLACE, hv };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a replace edit of a head takes a value of shape [8, 17, 16], not [17, 16]");
	e = (struct rf_edit){ RF_SITE_ATTN, 0, 0, RF_EDIT_MEAN, hv };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a mean edit of the attention branch takes a value of shape [17, 64] or [64], not [17, 16]");
	e = (struct rf_edit){ RF_SITE_MLP, 0, 0, RF_EDIT_REPLACE, small };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "the MLP branch takes a value of shape [8, 17, 64], not [4]");
	e = (struct rf_edit){ RF_SITE_TOKEN, 0, 0, RF_EDIT_MEAN, hv };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a mean edit of a token takes a value of shape [64], not [17, 16]");
	e = (struct rf_edit){ RF_SITE_TOKEN, 0, 0, RF_EDIT_REPLACE, small };
	EXPECT_INVALID(&e, 1, taps, 1, pixels, "a replace edit of a token takes a value of shape [8, 64], not [4]");
	taps[1] = (struct rf_tap){ RF_TAP_Q, L, NULL };
	EXPECT_INVALID(NULL, 0, taps, 2, pixels, "tap 2: layer 3 is out of range (0..2)");
	taps[1] = (struct rf_tap){ (enum rf_tap_site)40, 0, NULL };
	EXPECT_INVALID(NULL, 0, taps, 2, pixels, "tap 2: unknown site 40");
	taps[1] = (struct rf_tap){ RF_TAP_EMBED, 99, NULL };   /* EMBED ignores its layer */
	rf_tensor *embeds = NULL;
	run_intervene(NULL, 0, taps, 2, pixels, &embeds);
	CHECK(taps[1].out && taps[1].out->shape.ndim == 3);
	rf_tensor_destroy(embeds);
	free_taps(taps, 2);
	EXPECT_INVALID(NULL, 0, taps, 1, badpx, "pixels must be f32 [B, 3, 32, 32], got F32 [8, 3, 16, 16]");
	EXPECT_INVALID(NULL, -1, taps, 1, pixels, "negative counts");
	/* Names of tap sites, both ways. */
	enum rf_tap_site site;
	CHECK(rf_tap_site_parse("mlp_hidden", &site) && site == RF_TAP_MLP_HIDDEN);
	CHECK(!rf_tap_site_parse("resid", &site));
	CHECK(!strcmp(rf_tap_site_name(RF_TAP_PROBS), "probs") && !strcmp(rf_tap_site_name((enum rf_tap_site)99), "?"));
	rf_tensor_destroy(small), rf_tensor_destroy(hv), rf_tensor_destroy(ids), rf_tensor_destroy(badpx);
}

/* }===== */


int main(void)
{
	if (intervene_fixture_setup())
		test_misuse();
	intervene_fixture_teardown();
	return rf_test_finish();
}
