/*
** intervene_fixture.c: the tiny-gelu model and golden pixels for the intervention tests
** (see intervene_fixture.h).
*/
#include "intervene_fixture.h"
#include "golden.h"
#include "harness.h"

#include <stdlib.h>

int B, N, W, H, DH, L, MLP, D;
rf_ctx *ctx;
rf_clip *model;
rf_tensor *pixels;
const char *model_file;

bool intervene_fixture_setup(void)
{
	ctx = rf_test_ctx();
	model_file = rf_test_data("tiny-gelu/model/open_clip_model.safetensors");
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	CHECK_OK(rf_clip_load(ctx, rf_test_data("tiny-gelu/model"), &opt, &model));
	pixels = rf_golden_read(rf_test_data("tiny-gelu/reference.safetensors"), "pixels");
	if (!model || !pixels)
		return false;
	const struct rf_clip_config *c = rf_clip_get_config(model);
	N = c->tokens, W = c->vision.width, H = c->vision.heads, DH = c->vision.head_width;
	L = c->vision.layers, MLP = c->vision.mlp_width, D = c->embed_dim;
	B = (int)pixels->shape.dim[0];
	return true;
}

void intervene_fixture_teardown(void)
{
	rf_tensor_destroy(pixels);
	rf_clip_destroy(model);
	pixels = NULL;
	model = NULL;
}

void run_intervene(const struct rf_edit *edits, int nedits, struct rf_tap *taps, int ntaps,
		   const rf_tensor *px, rf_tensor **embeds)
{
	CHECK_OK(rf_clip_intervene(model, px, edits, nedits, taps, ntaps, embeds));
	if (!*embeds) {
		intervene_fixture_teardown();
		exit(rf_test_finish());
	}
}

void free_taps(struct rf_tap *taps, int n)
{
	for (int i = 0; i < n; i++) {
		rf_tensor_destroy(taps[i].out);
		taps[i].out = NULL;
	}
}
