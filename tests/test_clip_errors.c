/*
** test_clip_errors.c: every bad model directory gets a clear error and no crash: missing
** or inconsistent config, unsupported architectures, pickled checkpoints, missing or
** misshapen tensors, truncated weights, bad pixels and tokens; sizes whose arithmetic
** overflowed, a path past 1023 characters, NaN in weights or pixels, and a checkpoint
** truncated after loading.
*/
#include "harness.h"
#include "golden.h"
#include "clip.h"
#include "context.h"
#include "decompose.h"
#include "safetensors.h"
#include "safetensors_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	fputs(text, f);
	fclose(f);
}

static const char *subdir(const char *name)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	mkdir(path, 0755);
	return path;
}

/* A config like tiny-gelu's with `vision` replacing the vision_cfg object. */
static char *config(const char *vision)
{
	static char text[2048];
	snprintf(text, sizeof text,
		 "{\"model_cfg\": {\"embed_dim\": 32, \"quick_gelu\": false, \"vision_cfg\": %s, "
		 "\"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408, \"width\": 32, "
		 "\"heads\": 2, \"layers\": 2}}, \"preprocess_cfg\": {\"size\": 32}}", vision);
	return text;
}

static const char *tiny_vision =
	"{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"layers\": 3, \"head_width\": 16}";

static void link_weights(const char *dir)
{
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s/open_clip_model.safetensors'",
		 rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), dir);
	CHECK(system(cmd) == 0);
}

static void expect_load_error(rf_ctx *ctx, const char *dir, enum rf_status want, const char *needle)
{
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	enum rf_status s = rf_clip_load(ctx, dir, &opt, &m);
	CHECK_FAILS(s, want, needle);
	CHECK(m == NULL);
	printf("%-28s -> %s\n", needle, rf_error_message());
}

static void test_configs(rf_ctx *ctx)
{
	expect_load_error(ctx, "/nonexistent/model", RF_ERR_IO, "not a model directory");
	expect_load_error(ctx, subdir("empty"), RF_ERR_IO, "no open_clip_config.json or config.json");
	const char *d = subdir("badjson");
	write_file(d, "open_clip_config.json", "{\"model_cfg\": {");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "invalid JSON");
	d = subdir("novision");
	write_file(d, "open_clip_config.json", "{\"model_cfg\": {\"embed_dim\": 32}}");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "vision_cfg");
	d = subdir("patch");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 30, \"patch_size\": 8, \"width\": 64, \"layers\": 3, \"head_width\": 16}"));
	expect_load_error(ctx, d, RF_ERR_FORMAT, "not a multiple of the patch size");
	d = subdir("heads");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"layers\": 3, \"head_width\": 24}"));
	expect_load_error(ctx, d, RF_ERR_FORMAT, "head_width");
	d = subdir("negative");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 32, \"patch_size\": 8, \"width\": -64, \"layers\": 3}"));
	expect_load_error(ctx, d, RF_ERR_FORMAT, "positive integer");
	d = subdir("timm");
	write_file(d, "open_clip_config.json", config("{\"timm_model_name\": \"vit_base\", \"image_size\": 224}"));
	expect_load_error(ctx, d, RF_ERR_UNSUPPORTED, "timm");
	d = subdir("resnet");
	write_file(d, "open_clip_config.json", config("{\"layers\": [3, 4, 6, 3], \"width\": 64}"));
	expect_load_error(ctx, d, RF_ERR_UNSUPPORTED, "ResNet");
	d = subdir("pickle");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	write_file(d, "open_clip_pytorch_model.bin", "not really a pickle");
	expect_load_error(ctx, d, RF_ERR_UNSUPPORTED, "never unpickles");
	d = subdir("noweights");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	expect_load_error(ctx, d, RF_ERR_IO, "no open_clip_model.safetensors");
	/* Fields of the wrong type read as their defaults: "yes" was GELU, a number the pooling. */
	d = subdir("quick_str");
	write_file(d, "open_clip_config.json",
		   "{\"model_cfg\": {\"embed_dim\": 32, \"quick_gelu\": \"yes\", \"vision_cfg\": {}}}");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "field model_cfg.quick_gelu must be true or false");
	d = subdir("pool_num");
	write_file(d, "open_clip_config.json", config("{\"pool_type\": 1, \"image_size\": 32}"));
	expect_load_error(ctx, d, RF_ERR_FORMAT, "field model_cfg.vision_cfg.pool_type must be a string");
	d = subdir("hf_act_num");
	write_file(d, "config.json", "{\"model_type\": \"clip_vision_model\", \"hidden_act\": 1}");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "field vision_config.hidden_act must be a string");
	d = subdir("hf_other");
	write_file(d, "config.json", "{\"model_type\": \"siglip\", \"vision_config\": {}}");
	expect_load_error(ctx, d, RF_ERR_UNSUPPORTED, "not a CLIP model");
}

/* Sizes whose products or conversions overflowed: grid x grid past an int, width x
** mlp_ratio converted to int from 1e30 (undefined behaviour), mean and std past a float,
** a size [2^32 + 32, ...] cut to 32 by a cast, epsilons past a float. */
static void test_config_arithmetic(rf_ctx *ctx)
{
	static const struct {
		const char *name, *vision, *preprocess, *needle;
	} cases[] = {
		{ "grid", "{\"image_size\": 9999999, \"patch_size\": 1, \"width\": 64, \"head_width\": 16}", "{}",
		  "9999999 x 9999999 patches" },
		{ "ratio", "{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"head_width\": 16, "
		  "\"mlp_ratio\": 1e30}", "{}", "mlp_ratio must be a positive number below 1e+07" },
		{ "ratio_width", "{\"image_size\": 32, \"patch_size\": 8, \"width\": 9999984, \"head_width\": 16, "
		  "\"mlp_ratio\": 1000}", "{}", "vision MLP width 9999984 x mlp_ratio 1000" },
		{ "mean", "{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"head_width\": 16}",
		  "{\"mean\": [1e300, 0, 0], \"size\": 32}", "preprocess_cfg.mean entry 1 (1e+300) is not a finite float" },
		{ "std", "{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"head_width\": 16}",
		  "{\"std\": [1, 1e39, 1], \"size\": 32}", "preprocess_cfg.std entry 2" },
		{ "size_cast", "{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"head_width\": 16}",
		  "{\"size\": [4294967328, 4294967328]}", "preprocess_cfg.size must be a positive integer" },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++) {
		char text[2048];
		snprintf(text, sizeof text,
			 "{\"model_cfg\": {\"embed_dim\": 32, \"vision_cfg\": %s}, \"preprocess_cfg\": %s}",
			 cases[i].vision, cases[i].preprocess);
		const char *d = subdir(cases[i].name);
		write_file(d, "open_clip_config.json", text);
		expect_load_error(ctx, d, RF_ERR_FORMAT, cases[i].needle);
	}
	const char *d = subdir("hf_eps");
	write_file(d, "config.json", "{\"model_type\": \"clip_vision_model\", \"image_size\": 32, "
		   "\"patch_size\": 8, \"hidden_size\": 64, \"num_attention_heads\": 4, \"layer_norm_eps\": 1e60}");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "layer_norm_eps must be a positive number below 1");
	/* Positive in double but 0 in float32 (found by fuzz_config): LayerNorm would divide by 0. */
	d = subdir("hf_eps_tiny");
	write_file(d, "config.json", "{\"model_type\": \"clip_vision_model\", \"image_size\": 32, "
		   "\"patch_size\": 8, \"hidden_size\": 64, \"num_attention_heads\": 4, \"layer_norm_eps\": 1e-95}");
	expect_load_error(ctx, d, RF_ERR_FORMAT, "below float32's smallest normal number");
}

/* A model folder whose path is longer than 1023 characters: the path was cut to 1023
** characters, which named (and loaded) another folder. Here the cut path is a complete
** model and the real one an empty folder beside it: the load must fail. */
static void test_long_path(rf_ctx *ctx)
{
	size_t cap = 1400, n = strlen(tmp);
	char *p = malloc(cap);
	memcpy(p, tmp, n + 1);
	while (n < 1000) {   /* components of 200 characters (a name holds at most 255) */
		size_t k = RF_MIN((size_t)200, 1021 - n);
		p[n++] = '/';
		memset(p + n, 'd', k);
		n += k;
		p[n] = '\0';
		CHECK(mkdir(p, 0755) == 0);
	}
	/* p is now 1022 characters: "<p>m" (1023) holds the model, "<p>mX" nothing. */
	strcpy(p + n, "m");
	CHECK(strlen(p) == 1023 && mkdir(p, 0755) == 0);
	write_file(p, "open_clip_config.json", config(tiny_vision));
	link_weights(p);
	strcpy(p + n, "mX");
	CHECK(mkdir(p, 0755) == 0);
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	CHECK_FAILS(rf_clip_load(ctx, p, &opt, &m), RF_ERR_IO, "no open_clip_config.json or config.json");
	CHECK(m == NULL);
	rf_clip_destroy(m);
	free(p);
}

static void test_weights(rf_ctx *ctx)
{
	/* The config says width 96 where the weights have 64: the first tensor read names it. */
	const char *d = subdir("wrongshape");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 32, \"patch_size\": 8, \"width\": 96, \"layers\": 3, \"head_width\": 16}"));
	link_weights(d);
	expect_load_error(ctx, d, RF_ERR_FORMAT, "visual.conv1.weight' has shape [64, 3, 8, 8], but the config implies [96, 3, 8, 8]");
	d = subdir("morelayers");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"layers\": 4, \"head_width\": 16}"));
	link_weights(d);
	expect_load_error(ctx, d, RF_ERR_FORMAT, "missing tensor 'visual.transformer.resblocks.3.ln_1.weight'");
	/* Fewer layers than the checkpoint holds: the first two of three ran without a word. */
	d = subdir("fewerlayers");
	write_file(d, "open_clip_config.json",
		   config("{\"image_size\": 32, \"patch_size\": 8, \"width\": 64, \"layers\": 2, \"head_width\": 16}"));
	link_weights(d);
	expect_load_error(ctx, d, RF_ERR_FORMAT, "holds tensor 'visual.transformer.resblocks.2.ln_1.weight' "
			  "of a layer beyond the 2 vision layers the config gives");

	/* Weights without visual.proj. */
	d = subdir("missing");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	rf_safetensors *st;
	CHECK_OK(rf_safetensors_open(rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), &st));
	uint32_t n = rf_safetensors_count(st), k = 0;
	struct rf_st_item *items = calloc(n, sizeof *items);
	rf_tensor **tensors = calloc(n, sizeof *tensors);
	for (uint32_t i = 0; i < n; i++) {
		const struct rf_st_entry *e = rf_safetensors_entry(st, i);
		if (!strcmp(e->name, "visual.proj"))
			continue;
		CHECK_OK(rf_tensor_from_host_data(e->dtype, &e->shape, e->data, &tensors[k]));
		items[k].name = e->name;
		items[k].tensor = tensors[k];
		k++;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/open_clip_model.safetensors", d);
	CHECK_OK(rf_safetensors_write(path, items, k, NULL));
	for (uint32_t i = 0; i < k; i++)
		rf_tensor_destroy(tensors[i]);
	free(tensors);
	free(items);
	rf_safetensors_close(st);
	expect_load_error(ctx, d, RF_ERR_FORMAT, "missing tensor 'visual.proj' (expected shape [64, 32])");

	/* Truncated weights. */
	d = subdir("truncated");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "head -c 100000 '%s' > '%s/open_clip_model.safetensors'",
		 rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), d);
	CHECK(system(cmd) == 0);
	expect_load_error(ctx, d, RF_ERR_FORMAT, "past the end of the file");

	/* A NaN or an infinity in a weight would flow into every output: refused, naming it. */
	static const struct { const char *name; float value; const char *needle; } poisoned[] = {
		{ "visual.ln_pre.weight", NAN, "'visual.ln_pre.weight' holds NaN at element 5" },
		{ "token_embedding.weight", INFINITY, "'token_embedding.weight' holds infinity at element 7" },
	};
	for (size_t p = 0; p < RF_ARRAY_LEN(poisoned); p++) {
		char name[32];
		snprintf(name, sizeof name, "nan%zu", p);
		d = subdir(name);
		write_file(d, "open_clip_config.json", config(tiny_vision));
		CHECK_OK(rf_safetensors_open(rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), &st));
		n = rf_safetensors_count(st);
		items = calloc(n, sizeof *items);
		tensors = calloc(n, sizeof *tensors);
		for (uint32_t i = 0; i < n; i++) {
			const struct rf_st_entry *e = rf_safetensors_entry(st, i);
			CHECK_OK(rf_tensor_from_host_data(e->dtype, &e->shape, e->data, &tensors[i]));
			if (!strcmp(e->name, poisoned[p].name) && e->dtype == RF_F32)
				((float *)tensors[i]->host)[p ? 7 : 5] = poisoned[p].value;
			items[i] = (struct rf_st_item){ e->name, tensors[i] };
		}
		snprintf(path, sizeof path, "%s/open_clip_model.safetensors", d);
		CHECK_OK(rf_safetensors_write(path, items, n, NULL));
		for (uint32_t i = 0; i < n; i++)
			rf_tensor_destroy(tensors[i]);
		free(tensors);
		free(items);
		rf_safetensors_close(st);
		expect_load_error(ctx, d, RF_ERR_FORMAT, poisoned[p].needle);
	}
}

/* The checkpoint truncated (or rewritten) after the model was loaded: it stayed mapped
** for the token rows and the folding, and the next read was a SIGBUS. Now it is closed
** after loading and those reads fail with a message. */
static void test_truncated_after_load(rf_ctx *ctx)
{
	const char *d = subdir("shrinks");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	link_weights(d);
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	CHECK_OK(rf_clip_load(ctx, d, &opt, &m));
	if (!m)
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/open_clip_model.safetensors", d);
	CHECK(truncate(path, 4096) == 0);
	const char *texts[] = { "a photo" };
	rf_tensor *tokens = NULL, *e = NULL, *pixels = NULL;
	CHECK_OK(rf_clip_tokenize(m, texts, 1, &tokens));
	CHECK_FAILS(rf_clip_encode_tokens(m, tokens, &e), RF_ERR_IO, "changed since it was loaded");
	struct rf_shape s = rf_shape_of(4, (int64_t)1, (int64_t)3, (int64_t)32, (int64_t)32);
	CHECK_OK(rf_tensor_create_host(RF_F32, &s, &pixels));
	CHECK_OK(rf_clip_encode_images(m, pixels, &e));   /* all on the device: unaffected */
	rf_tensor_destroy(e);
	struct rf_decompose_options dopt = { 0 };
	struct rf_decomposition dec = { 0 };
	CHECK_FAILS(rf_clip_decompose(m, pixels, &dopt, &dec), RF_ERR_IO, "changed since it was loaded");
	rf_decomposition_fini(&dec);
	printf("%-28s -> %s\n", "truncated after load", rf_error_message());
	rf_tensor_destroy(pixels);
	rf_tensor_destroy(tokens);
	rf_clip_destroy(m);
}

static void test_inputs(rf_ctx *ctx)
{
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	CHECK_OK(rf_clip_load(ctx, rf_test_data("tiny-gelu/model"), &opt, &m));
	if (!m)
		return;
	rf_tensor *bad = NULL, *e = NULL;
	struct rf_shape s = rf_shape_of(4, (int64_t)2, (int64_t)3, (int64_t)16, (int64_t)16);
	CHECK_OK(rf_tensor_create_host(RF_F32, &s, &bad));
	CHECK_FAILS(rf_clip_encode_images(m, bad, &e), RF_ERR_INVALID, "pixels must be f32 [B, 3, 32, 32], got F32 [2, 3, 16, 16]");
	rf_tensor_destroy(bad);
	s = rf_shape_of(2, (int64_t)1, (int64_t)77);
	CHECK_OK(rf_tensor_create_host(RF_I64, &s, &bad));
	((int64_t *)bad->host)[5] = 60000;
	CHECK_FAILS(rf_clip_encode_tokens(m, bad, &e), RF_ERR_INVALID, "token id 60000 of text 1, position 6 (counting from 1) is outside the vocabulary");
	rf_tensor_destroy(bad);
	const char *texts[] = { "fine", "bad \xff byte" };
	CHECK_FAILS(rf_clip_tokenize(m, texts, 2, &bad), RF_ERR_INVALID, "text 2: text is not valid UTF-8");
	printf("non-UTF-8 text -> %s\n", rf_error_message());
	/* Pixels with NaN or infinity (a .npy input, say) name the image and the place. */
	s = rf_shape_of(4, (int64_t)2, (int64_t)3, (int64_t)32, (int64_t)32);
	CHECK_OK(rf_tensor_create_host(RF_F32, &s, &bad));
	((float *)bad->host)[3 * 32 * 32 + 2 * 32 * 32 + 5 * 32 + 7] = NAN;
	CHECK_FAILS(rf_clip_encode_images(m, bad, &e), RF_ERR_INVALID,
		    "image 2 of the batch holds NaN at channel 3, row 6, column 8");
	rf_tensor *dev = NULL;
	((float *)bad->host)[3 * 32 * 32 + 2 * 32 * 32 + 5 * 32 + 7] = 0;
	((float *)bad->host)[1] = -INFINITY;
	CHECK_OK(rf_tensor_to_device(rf_clip_ctx(m), bad, &dev));
	struct rf_decompose_options dopt = { 0 };
	struct rf_decomposition dec = { 0 };
	CHECK_FAILS(rf_clip_decompose(m, dev, &dopt, &dec), RF_ERR_INVALID,
		    "image 1 of the batch holds -infinity at channel 1, row 1, column 2");
	rf_decomposition_fini(&dec);
	rf_tensor_destroy(dev);
	rf_tensor_destroy(bad);
	rf_clip_destroy(m);
	struct rf_clip_options f64 = { .storage = RF_I64 };
	CHECK_FAILS(rf_clip_load(ctx, rf_test_data("tiny-gelu/model"), &f64, &m), RF_ERR_INVALID, "f32 or f16");
}

/* Fields of a legal config that change what the model computes, in an architecture refract
** does not implement: each was read as the default before, so the wrong model ran without
** a word (average pooling, GELU's tanh form, layer scale in the text tower, a 1-channel
** HF model; a preprocessor with another filter, no crop, or a resize and crop of
** different sizes). */
static void test_unimplemented_fields(rf_ctx *ctx)
{
	static const struct {
		const char *name, *vision, *text, *needle;
	} open_clip[] = {
		{ "oc_avgpool", "\"global_average_pool\": true", "", "vision_cfg.global_average_pool is set: average pooling" },
		{ "oc_act_kwargs", "\"act_kwargs\": {\"approximate\": \"tanh\"}", "", "vision_cfg.act_kwargs is set" },
		{ "oc_text_ls", "", "\"ls_init_value\": 0.1", "text_cfg.ls_init_value is set: layer scale" },
		{ "oc_text_act", "", "\"act_kwargs\": {\"approximate\": \"tanh\"}", "text_cfg.act_kwargs is set" },
		{ "oc_text_proj", "", "\"proj_type\": \"none\"", "text_cfg.proj_type \"none\" is not supported" },
		{ "oc_norm_other", "\"norm_kwargs\": {\"elementwise_affine\": false}", "",
		  "vision_cfg.norm_kwargs.elementwise_affine is set" },
		{ "oc_norm_eps0", "", "\"norm_kwargs\": {\"eps\": 1e-60}", "text_cfg.norm_kwargs.eps must be a number" },
		{ "oc_nonsquare", "\"image_size\": [32, 48]", "", "image_size is [32, 48]: only square" },
		{ "oc_patch_list3", "\"patch_size\": [8, 8, 8]", "", "patch_size must be a positive integer or a list of two" },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(open_clip); i++) {
		char text[2048];
		snprintf(text, sizeof text,
			 "{\"model_cfg\": {\"embed_dim\": 32, \"vision_cfg\": {\"width\": 64, \"head_width\": 16%s%s}, "
			 "\"text_cfg\": {\"width\": 32, \"heads\": 2%s%s}}}", *open_clip[i].vision ? ", " : "",
			 open_clip[i].vision, *open_clip[i].text ? ", " : "", open_clip[i].text);
		const char *d = subdir(open_clip[i].name);
		write_file(d, "open_clip_config.json", text);
		expect_load_error(ctx, d, strstr(open_clip[i].needle, "must be") ? RF_ERR_FORMAT : RF_ERR_UNSUPPORTED,
				  open_clip[i].needle);
	}
	const char *d = subdir("hf_channels");
	write_file(d, "config.json", "{\"model_type\": \"clip_vision_model\", \"num_channels\": 1}");
	expect_load_error(ctx, d, RF_ERR_UNSUPPORTED, "num_channels is 1: only RGB models");
	static const struct {
		const char *name, *preprocessor, *needle;
	} hf[] = {
		{ "hf_bilinear", "{\"resample\": 2}", "resample is not 3 (bicubic)" },
		{ "hf_nocrop", "{\"do_center_crop\": false}", "do_center_crop is not true" },
		{ "hf_rescale", "{\"rescale_factor\": 0.5}", "rescale_factor is not 1/255" },
		{ "hf_crop", "{\"size\": {\"shortest_edge\": 256}, \"crop_size\": {\"height\": 224, \"width\": 224}}",
		  "resizing to 256 and cropping 224 is not supported" },
		{ "hf_size", "{\"size\": 256, \"crop_size\": 256}", "preprocessing size 256 differs from the image size 224" },
		{ "hf_rect", "{\"crop_size\": {\"height\": 224, \"width\": 200}}", "crop_size is 224 x 200" },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(hf); i++) {
		d = subdir(hf[i].name);
		write_file(d, "config.json", "{\"model_type\": \"clip_vision_model\"}");
		write_file(d, "preprocessor_config.json", hf[i].preprocessor);
		expect_load_error(ctx, d, strstr(hf[i].needle, "differs") ? RF_ERR_FORMAT : RF_ERR_UNSUPPORTED,
				  hf[i].needle);
	}
}

/* tiny-gelu's weights with one more tensor `extra` of `n` f32 ones, into dir. */
static void write_weights_with(const char *dir, const char *extra, int64_t n)
{
	rf_safetensors *st;
	CHECK_OK(rf_safetensors_open(rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), &st));
	uint32_t count = rf_safetensors_count(st);
	struct rf_st_item *items = calloc(count + 1, sizeof *items);
	rf_tensor **tensors = calloc(count + 1, sizeof *tensors);
	for (uint32_t i = 0; i < count; i++) {
		const struct rf_st_entry *e = rf_safetensors_entry(st, i);
		CHECK_OK(rf_tensor_from_host_data(e->dtype, &e->shape, e->data, &tensors[i]));
		items[i].name = e->name;
		items[i].tensor = tensors[i];
	}
	float *ones = malloc((size_t)n * sizeof *ones);
	for (int64_t i = 0; i < n; i++)
		ones[i] = 1;
	struct rf_shape shape = rf_shape_of(1, n);
	CHECK_OK(rf_tensor_from_host_data(RF_F32, &shape, ones, &tensors[count]));
	items[count].name = extra;
	items[count].tensor = tensors[count];
	char path[4200];
	snprintf(path, sizeof path, "%s/open_clip_model.safetensors", dir);
	CHECK_OK(rf_safetensors_write(path, items, count + 1, NULL));
	for (uint32_t i = 0; i <= count; i++)
		rf_tensor_destroy(tensors[i]);
	free(ones);
	free(tensors);
	free(items);
	rf_safetensors_close(st);
}

/* A tower tensor refract would not read belongs to another architecture: layer scale's
** gammas or an attention pooler loaded and ran as plain CLIP, wrong without a word. A
** buffer (position_ids) and the logit bias change nothing and load. */
static void test_unread_tensors(rf_ctx *ctx)
{
	static const struct { const char *name, *extra; int64_t n; const char *needle; } cases[] = {
		{ "ls_vision", "visual.transformer.resblocks.1.ls_1.gamma", 64,
		  "holds tensor 'visual.transformer.resblocks.1.ls_1.gamma', which the vision tower of this config does not have" },
		{ "ls_text", "transformer.resblocks.0.ls_2.gamma", 32,
		  "holds tensor 'transformer.resblocks.0.ls_2.gamma', which the text tower" },
		{ "attn_pool", "visual.attn_pool.ln_q.weight", 64, "holds tensor 'visual.attn_pool.ln_q.weight'" },
		{ "patchnorm", "visual.patchnorm_pre_ln.weight", 192, "holds tensor 'visual.patchnorm_pre_ln.weight'" },
		{ "beyond", "visual.transformer.resblocks.3.mlp.c_fc.bias", 256,
		  "holds tensor 'visual.transformer.resblocks.3.mlp.c_fc.bias' of a layer beyond the 3 vision layers" },
		{ "harmless_ids", "visual.position_ids", 17, NULL },
		{ "harmless_bias", "logit_bias", 1, NULL },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++) {
		const char *d = subdir(cases[i].name);
		write_file(d, "open_clip_config.json", config(tiny_vision));
		write_weights_with(d, cases[i].extra, cases[i].n);
		if (cases[i].needle) {
			expect_load_error(ctx, d, strstr(cases[i].needle, "beyond") ? RF_ERR_FORMAT : RF_ERR_UNSUPPORTED,
					  cases[i].needle);
			continue;
		}
		rf_clip *m = NULL;
		struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
		CHECK_OK(rf_clip_load(ctx, d, &opt, &m));
		rf_clip_destroy(m);
	}
	/* Without its text tower, the text tensors are not looked at. */
	const char *d = subdir("ls_text_vision_only");
	write_file(d, "open_clip_config.json", config(tiny_vision));
	write_weights_with(d, "transformer.resblocks.0.ls_2.gamma", 32);
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vision_only = true };
	CHECK_OK(rf_clip_load(ctx, d, &opt, &m));
	rf_clip_destroy(m);
}

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	tmp = rf_temp_dir();
	test_configs(ctx);
	test_config_arithmetic(ctx);
	test_unimplemented_fields(ctx);
	test_long_path(ctx);
	test_weights(ctx);
	test_unread_tensors(ctx);
	test_truncated_after_load(ctx);
	test_inputs(ctx);
	rf_temp_dir_remove(tmp);
	return rf_test_finish();
}
