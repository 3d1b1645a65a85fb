/*
** fuzz_config.c: libFuzzer target for model configurations (clip_config.c). The input's
** first byte picks the layout: even, the rest is open_clip_config.json; odd, the rest is
** split at its first NUL into config.json and preprocessor_config.json (Hugging Face).
** Only the configuration is loaded (the weights file is an empty placeholder). A
** configuration that loads must be consistent: every size in range, the grid times the
** patch the image size, heads times head width the width, and the tokens 1 + grid^2.
*/
#include "clip_config.h"
#include "fuzz_util.h"
#include "status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_write("open_clip_model.safetensors", "", 0);
	fuzz_write("model.safetensors", "", 0);
	return 0;
}

static void forget(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", fuzz_tmp_dir(), name);
	unlink(path);
}

static void check_tower(const struct rf_tower_config *t)
{
	if (t->width < 1 || t->layers < 1 || t->heads < 1 || t->mlp_width < 1 ||
	    (int64_t)t->heads * t->head_width != t->width || !(t->ln_eps > 0) || !isfinite(t->ln_eps))
		fuzz_fail("a tower's sizes are inconsistent");
}

static void check_config(const struct rf_clip_config *c)
{
	if (c->patch_size < 1 || c->grid < 1 || (int64_t)c->grid * c->patch_size != c->image_size ||
	    c->tokens != 1 + c->grid * c->grid || c->tokens > RF_CLIP_MAX_TOKENS || c->embed_dim < 1)
		fuzz_fail("the vision sizes are inconsistent");
	check_tower(&c->vision);
	if (c->has_text) {
		check_tower(&c->text);
		if (c->context_length < 1 || c->context_length > RF_CLIP_MAX_CONTEXT || c->vocab_size < 1)
			fuzz_fail("the text sizes are out of range");
	}
	for (int i = 0; i < 3; i++) {
		if (!isfinite(c->preprocess.mean[i]) || !(c->preprocess.std[i] > 0) ||
		    !isfinite(c->preprocess.std[i]))
			fuzz_fail("mean or std not finite and positive");
	}
	if (c->has_logit_scale && !isfinite(c->logit_scale))
		fuzz_fail("logit_scale not finite");
	char line[512];
	rf_clip_config_describe(c, line, sizeof line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	forget("open_clip_config.json");
	forget("config.json");
	forget("preprocessor_config.json");
	const uint8_t *rest = data + 1;
	size_t n = size - 1;
	if (data[0] % 2 == 0) {
		fuzz_write("open_clip_config.json", rest, n);
	} else {
		const uint8_t *nul = memchr(rest, 0, n);
		size_t first = nul ? (size_t)(nul - rest) : n;
		fuzz_write("config.json", rest, first);
		if (nul)
			fuzz_write("preprocessor_config.json", nul + 1, n - first - 1);
	}
	struct rf_clip_config c;
	if (rf_clip_config_load(fuzz_tmp_dir(), &c) != RF_OK) {
		if (c.dir || c.weights_path || !rf_error_message()[0])
			fuzz_fail("a refused configuration left memory or no message");
		return 0;
	}
	check_config(&c);
	rf_clip_config_free(&c);
	return 0;
}
