/*
** clip_config.c: parsing open_clip and Hugging Face CLIP configurations. Compute layer
** (L5; host only).
*/
#include "clip_config.h"
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Whether anything is at `path` (a file that is not regular is then refused by its
** reader with a message that says what it is). Only "no such file" means absent: a file
** in a folder the user may not search (EACCES) may be there, and its reader then says
** "Permission denied" instead of "no config.json" of a folder that has one (or an
** unreadable preprocessor_config.json silently ignored). */
static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

static enum rf_status load_json(const char *path, json_t **out)
{
	*out = NULL;
	char *text;
	size_t len;
	enum rf_status s = rf_file_read_all(path, RF_MAX_JSON_BYTES, "a JSON file", &text, &len);
	if (s != RF_OK)
		return s;
	json_error_t err;
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	free(text);
	if (!*out)
		return rf_error(RF_ERR_FORMAT, "%s: invalid JSON at line %d: %s", path, err.line, err.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return rf_error(RF_ERR_FORMAT, "%s: the top level is not a JSON object", path);
	}
	return RF_OK;
}

/* {===== typed field access with defaults and messages */

struct fields {
	const char *path;      /* the file, for messages */
	const char *section;   /* e.g. "model_cfg.vision_cfg" */
	json_t *obj;
};

static enum rf_status get_int(const struct fields *f, const char *key, int def, bool required,
			      int *out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return rf_error(RF_ERR_FORMAT, "%s: missing field %s.%s", f->path, f->section, key);
		*out = def;
		return RF_OK;
	}
	double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
	if (!(d >= 1 && d <= 1e7 && d == floor(d)))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be a positive integer", f->path,
				f->section, key);
	*out = (int)d;
	return RF_OK;
}

/* A positive finite number below `max` (JSON has no NaN or infinity, but 1e300 parses). */
static enum rf_status get_real(const struct fields *f, const char *key, double def, double max,
			       double *out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	if (!v || json_is_null(v)) {
		*out = def;
		return RF_OK;
	}
	if (!json_is_number(v) || !(json_number_value(v) > 0 && json_number_value(v) < max))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be a positive number below %g",
				f->path, f->section, key, max);
	*out = json_number_value(v);
	return RF_OK;
}

/* An optional finite number: *has tells whether the field is there. */
static enum rf_status get_finite(const struct fields *f, const char *key, bool *has, float *out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	*has = v && !json_is_null(v);
	if (!*has)
		return RF_OK;
	/* Finite as a float: 1e300 passes as a double, then becomes infinity in float32. */
	if (!json_is_number(v) || !(fabs(json_number_value(v)) <= FLT_MAX))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be a number within float32's range",
				f->path, f->section, key);
	*out = (float)json_number_value(v);
	return RF_OK;
}

/* A boolean, or `def` when absent: "yes" or 1 would otherwise read as the default. */
static enum rf_status get_bool(const struct fields *f, const char *key, bool def, bool *out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	*out = def;
	if (!v || json_is_null(v))
		return RF_OK;
	if (!json_is_boolean(v))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be true or false", f->path, f->section, key);
	*out = json_is_true(v);
	return RF_OK;
}

/* A string, or NULL when absent: a number there is an error, not the default. */
static enum rf_status get_string(const struct fields *f, const char *key, const char **out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	*out = NULL;
	if (!v || json_is_null(v))
		return RF_OK;
	if (!json_is_string(v))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be a string", f->path, f->section, key);
	*out = json_string_value(v);
	return RF_OK;
}

/* Refuses a field whose presence means an architecture refract does not implement. */
static enum rf_status refuse_if_set(const struct fields *f, const char *key, const char *what)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	bool empty = (json_is_string(v) && !*json_string_value(v)) ||
		     (json_is_object(v) && !json_object_size(v)) || (json_is_array(v) && !json_array_size(v));
	if (v && !json_is_null(v) && !json_is_false(v) && !empty)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s.%s is set: %s is not supported", f->path,
				f->section, key, what);
	return RF_OK;
}

/* An image or patch side: open_clip takes a number or a [height, width] pair; refract's
** grids are square, so a pair must hold one number twice. */
static enum rf_status get_side(const struct fields *f, const char *key, int def, int *out)
{
	json_t *v = f->obj ? json_object_get(f->obj, key) : NULL;
	if (!json_is_array(v))
		return get_int(f, key, def, false, out);
	json_t *h = json_array_get(v, 0), *w = json_array_get(v, 1);
	if (json_array_size(v) != 2 || !json_is_integer(h) || !json_is_integer(w) ||
	    json_integer_value(h) < 1 || json_integer_value(h) > 10000000)
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s must be a positive integer or a list of two",
				f->path, f->section, key);
	if (json_integer_value(h) != json_integer_value(w))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: field %s.%s is [%lld, %lld]: only square images and "
				"patches are supported", f->path, f->section, key,
				(long long)json_integer_value(h), (long long)json_integer_value(w));
	*out = (int)json_integer_value(h);
	return RF_OK;
}

/* A LayerNorm epsilon must be a normal float32: LayerNorm runs in f32, where one that rounds
** to 0 (or a denormal) would divide a constant row by 0 and make it NaN without a word. */
static enum rf_status check_eps(const struct fields *f, const char *key, double eps)
{
	if (!(eps >= FLT_MIN))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.%s %g is below float32's smallest normal "
				"number (%g)", f->path, f->section, key, eps, (double)FLT_MIN);
	return RF_OK;
}

/* open_clip's norm_kwargs (the LayerNorm's keyword arguments): eps changes every
** LayerNorm of the tower; any other argument is a LayerNorm refract does not implement. */
static enum rf_status get_norm_eps(const struct fields *f, float *eps)
{
	json_t *v = f->obj ? json_object_get(f->obj, "norm_kwargs") : NULL;
	*eps = 1e-5f;
	if (!v || json_is_null(v))
		return RF_OK;
	if (!json_is_object(v))
		return rf_error(RF_ERR_FORMAT, "%s: field %s.norm_kwargs must be an object", f->path, f->section);
	const char *key;
	json_t *value;
	json_object_foreach(v, key, value) {
		if (strcmp(key, "eps") != 0)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: %s.norm_kwargs.%s is set: LayerNorm options "
					"other than eps are not supported", f->path, f->section, key);
		double e = json_is_number(value) ? json_number_value(value) : NAN;
		if (!(e >= FLT_MIN && e < 1))
			return rf_error(RF_ERR_FORMAT, "%s: field %s.norm_kwargs.eps must be a number in [%g, 1) "
					"(float32's smallest normal number)", f->path, f->section, (double)FLT_MIN);
		*eps = (float)e;
	}
	return RF_OK;
}

static enum rf_status read_triple(const char *path, json_t *arr, const char *name, float *out)
{
	if (!json_is_array(arr) || json_array_size(arr) != 3)
		return rf_error(RF_ERR_FORMAT, "%s: %s must be a list of 3 numbers", path, name);
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_array_get(arr, i);
		if (!json_is_number(v))
			return rf_error(RF_ERR_FORMAT, "%s: %s must be a list of 3 numbers", path, name);
		/* Finite as a float: 1e300 would become infinity, and every pixel NaN or 0. */
		if (!(fabs(json_number_value(v)) <= FLT_MAX))
			return rf_error(RF_ERR_FORMAT, "%s: %s entry %zu (%g) is not a finite float", path,
					name, i + 1, json_number_value(v));
		out[i] = (float)json_number_value(v);
	}
	if (!strcmp(name, "std") || strstr(name, "std"))
		for (int i = 0; i < 3; i++)
			if (!(out[i] > 0))
				return rf_error(RF_ERR_FORMAT, "%s: %s entries must be positive", path, name);
	return RF_OK;
}

/* }===== */

/* {===== consistency */

static enum rf_status finish_tower(const char *path, const char *name, struct rf_tower_config *t)
{
	if (t->width % t->heads)
		return rf_error(RF_ERR_FORMAT, "%s: %s width %d is not divisible by its %d heads", path,
				name, t->width, t->heads);
	t->head_width = t->width / t->heads;
	return RF_OK;
}

/* width x ratio as open_clip computes the MLP width (int() truncates), within 1..10^7. */
static enum rf_status mlp_width(const char *path, const char *tower, int width, double ratio, int *out)
{
	double w = (double)width * ratio;
	if (!(w >= 1 && w <= 1e7))
		return rf_error(RF_ERR_FORMAT, "%s: %s MLP width %d x mlp_ratio %g = %g is outside 1..10^7",
				path, tower, width, ratio, w);
	*out = (int)w;
	return RF_OK;
}

static enum rf_status finish(struct rf_clip_config *c, const char *path)
{
	if (c->image_size % c->patch_size)
		return rf_error(RF_ERR_FORMAT, "%s: image size %d is not a multiple of the patch size %d",
				path, c->image_size, c->patch_size);
	c->grid = c->image_size / c->patch_size;
	/* Compared before it is squared: 10^7 x 10^7 overflows an int. */
	if ((int64_t)c->grid * c->grid + 1 > RF_CLIP_MAX_TOKENS)
		return rf_error(RF_ERR_FORMAT, "%s: image size %d / patch size %d gives %d x %d patches: "
				"more than the %d tokens refract handles", path, c->image_size,
				c->patch_size, c->grid, c->grid, RF_CLIP_MAX_TOKENS);
	c->tokens = 1 + c->grid * c->grid;
	if (c->has_text && c->context_length > RF_CLIP_MAX_CONTEXT)
		return rf_error(RF_ERR_FORMAT, "%s: a context of %d tokens is more than the %d refract "
				"handles", path, c->context_length, RF_CLIP_MAX_CONTEXT);
	enum rf_status s = finish_tower(path, "vision", &c->vision);
	if (s == RF_OK && c->has_text)
		s = finish_tower(path, "text", &c->text);
	c->eot_id = c->vocab_size - 1;
	if (c->preprocess.size <= 0)
		c->preprocess.size = c->image_size;
	if (s == RF_OK && c->preprocess.size != c->image_size)
		return rf_error(RF_ERR_FORMAT, "%s: preprocessing size %d differs from the image size %d",
				path, c->preprocess.size, c->image_size);
	return s;
}

/* }===== */

/* {===== open_clip */

static enum rf_status parse_open_clip_preprocess(const char *path, json_t *pp, struct rf_preprocess *p)
{
	*p = rf_preprocess_openai(0);
	if (!json_is_object(pp))
		return RF_OK;
	struct fields f = { path, "preprocess_cfg", pp };
	enum rf_status s;
	json_t *mean = json_object_get(pp, "mean"), *std = json_object_get(pp, "std");
	if (mean && (s = read_triple(path, mean, "preprocess_cfg.mean", p->mean)) != RF_OK)
		return s;
	if (std && (s = read_triple(path, std, "preprocess_cfg.std", p->std)) != RF_OK)
		return s;
	int size = 0;
	json_t *sz = json_object_get(pp, "size");
	json_int_t side = json_integer_value(json_array_get(sz, 0));
	if (json_is_array(sz) && json_array_size(sz) == 2 && json_is_integer(json_array_get(sz, 0)) &&
	    side == json_integer_value(json_array_get(sz, 1)) && side >= 1 && side <= 10000000)
		size = (int)side;
	else if ((s = get_int(&f, "size", 0, false, &size)) != RF_OK)
		return s;
	p->size = size;
	const char *mode, *interp;
	if ((s = get_string(&f, "resize_mode", &mode)) != RF_OK ||
	    (s = get_string(&f, "interpolation", &interp)) != RF_OK)
		return s;
	if (mode && !strcmp(mode, "squash"))
		p->mode = RF_RESIZE_SQUASH;
	else if (mode && strcmp(mode, "shortest") != 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: preprocess_cfg.resize_mode \"%s\" is not supported "
				"(shortest, squash)", path, mode);
	if (interp && strcmp(interp, "bicubic") != 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: preprocess_cfg.interpolation \"%s\" is not "
				"supported (bicubic)", path, interp);
	return RF_OK;
}

static enum rf_status parse_open_clip(const char *path, json_t *root, struct rf_clip_config *c)
{
	json_t *model = json_object_get(root, "model_cfg");
	if (!json_is_object(model))
		model = root;   /* a bare model config, as in open_clip's model_configs folder */
	json_t *vision = json_object_get(model, "vision_cfg");
	json_t *text = json_object_get(model, "text_cfg");
	if (!json_is_object(vision))
		return rf_error(RF_ERR_FORMAT, "%s: missing object model_cfg.vision_cfg", path);
	struct fields m = { path, "model_cfg", model };
	struct fields v = { path, "model_cfg.vision_cfg", vision };
	struct fields t = { path, "model_cfg.text_cfg", text };
	enum rf_status s;
	if ((s = get_int(&m, "embed_dim", 0, true, &c->embed_dim)) != RF_OK ||
	    (s = get_finite(&m, "init_logit_scale", &c->has_logit_scale, &c->logit_scale)) != RF_OK)
		return s;
	bool quick;
	if ((s = get_bool(&m, "quick_gelu", false, &quick)) != RF_OK)
		return s;
	c->act = quick ? RF_ACT_QUICKGELU : RF_ACT_GELU;
	static const char *unsupported_vision[][2] = {
		{ "timm_model_name", "a timm image tower" }, { "attentional_pool", "attentional pooling" },
		{ "no_ln_pre", "a tower without ln_pre" }, { "final_ln_after_pool", "ln after pooling" },
		{ "ls_init_value", "layer scale" }, { "input_patchnorm", "patch normalisation" },
		{ "layers_per_stage", "a ResNet tower" },
		/* open_clip before pool_type: average pooling instead of the CLS token. */
		{ "global_average_pool", "average pooling" },
		{ "act_kwargs", "an activation with options" },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(unsupported_vision); i++)
		if ((s = refuse_if_set(&v, unsupported_vision[i][0], unsupported_vision[i][1])) != RF_OK)
			return s;
	if (json_is_array(json_object_get(vision, "layers")))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: vision_cfg.layers is a list: ResNet image towers "
				"are not supported", path);
	const char *pool;
	if ((s = get_string(&v, "pool_type", &pool)) != RF_OK)
		return s;
	if (pool && strcmp(pool, "tok") != 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: vision_cfg.pool_type \"%s\" is not supported (tok)",
				path, pool);
	double mlp_ratio = 4.0;
	int head_width = 64;
	if ((s = get_side(&v, "image_size", 224, &c->image_size)) != RF_OK ||
	    (s = get_side(&v, "patch_size", 16, &c->patch_size)) != RF_OK ||
	    (s = get_int(&v, "width", 768, false, &c->vision.width)) != RF_OK ||
	    (s = get_int(&v, "layers", 12, false, &c->vision.layers)) != RF_OK ||
	    (s = get_int(&v, "head_width", 64, false, &head_width)) != RF_OK ||
	    (s = get_real(&v, "mlp_ratio", 4.0, 1e7, &mlp_ratio)) != RF_OK ||
	    (s = get_norm_eps(&v, &c->vision.ln_eps)) != RF_OK)
		return s;
	if (c->vision.width % head_width)
		return rf_error(RF_ERR_FORMAT, "%s: vision width %d is not a multiple of head_width %d",
				path, c->vision.width, head_width);
	c->vision.heads = c->vision.width / head_width;
	if ((s = mlp_width(path, "vision", c->vision.width, mlp_ratio, &c->vision.mlp_width)) != RF_OK)
		return s;
	c->has_text = json_is_object(text);
	if (c->has_text) {
		if ((s = refuse_if_set(&t, "hf_model_name", "a Hugging Face text tower")) != RF_OK)
			return s;
		const char *tpool;
		if ((s = get_string(&t, "pool_type", &tpool)) != RF_OK)
			return s;
		if (tpool && strcmp(tpool, "argmax") != 0)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: text_cfg.pool_type \"%s\" is not supported "
					"(argmax)", path, tpool);
		if ((s = refuse_if_set(&t, "embed_cls", "a text CLS token")) != RF_OK ||
		    (s = refuse_if_set(&t, "proj_bias", "a text projection bias")) != RF_OK ||
		    (s = refuse_if_set(&t, "no_causal_mask", "a text tower without causal mask")) != RF_OK ||
		    (s = refuse_if_set(&t, "ls_init_value", "layer scale")) != RF_OK ||
		    (s = refuse_if_set(&t, "act_kwargs", "an activation with options")) != RF_OK)
			return s;
		const char *proj_type;
		if ((s = get_string(&t, "proj_type", &proj_type)) != RF_OK)
			return s;
		if (proj_type && strcmp(proj_type, "linear") != 0)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: text_cfg.proj_type \"%s\" is not supported "
					"(linear)", path, proj_type);
		double tratio = 4.0;
		if ((s = get_int(&t, "context_length", 77, false, &c->context_length)) != RF_OK ||
		    (s = get_int(&t, "vocab_size", 49408, false, &c->vocab_size)) != RF_OK ||
		    (s = get_int(&t, "width", 512, false, &c->text.width)) != RF_OK ||
		    (s = get_int(&t, "heads", 8, false, &c->text.heads)) != RF_OK ||
		    (s = get_int(&t, "layers", 12, false, &c->text.layers)) != RF_OK ||
		    (s = get_real(&t, "mlp_ratio", 4.0, 1e7, &tratio)) != RF_OK ||
		    (s = mlp_width(path, "text", c->text.width, tratio, &c->text.mlp_width)) != RF_OK ||
		    (s = get_norm_eps(&t, &c->text.ln_eps)) != RF_OK)
			return s;
	}
	return parse_open_clip_preprocess(path, json_object_get(root, "preprocess_cfg"), &c->preprocess);
}

/* }===== */

/* {===== Hugging Face */

static enum rf_status parse_hf_act(const char *path, const struct fields *f, enum rf_activation *act)
{
	const char *name;
	enum rf_status s = get_string(f, "hidden_act", &name);
	if (s != RF_OK)
		return s;
	if (!name || !strcmp(name, "quick_gelu"))
		*act = RF_ACT_QUICKGELU;
	else if (!strcmp(name, "gelu"))
		*act = RF_ACT_GELU;
	else
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s.hidden_act \"%s\" is not supported (gelu, "
				"quick_gelu)", path, f->section, name);
	return RF_OK;
}

static enum rf_status parse_hf_tower(const struct fields *f, struct rf_tower_config *t,
				     int width, int heads, int layers, int mlp)
{
	enum rf_status s;
	double eps;
	if ((s = get_int(f, "hidden_size", width, false, &t->width)) != RF_OK ||
	    (s = get_int(f, "num_attention_heads", heads, false, &t->heads)) != RF_OK ||
	    (s = get_int(f, "num_hidden_layers", layers, false, &t->layers)) != RF_OK ||
	    (s = get_int(f, "intermediate_size", mlp, false, &t->mlp_width)) != RF_OK ||
	    (s = get_real(f, "layer_norm_eps", 1e-5, 1.0, &eps)) != RF_OK)
		return s;
	if ((s = check_eps(f, "layer_norm_eps", eps)) != RF_OK)
		return s;
	t->ln_eps = (float)eps;
	return RF_OK;
}

/* A side of preprocessor_config.json's size or crop_size: a number, {"shortest_edge": n}
** or a square {"height": n, "width": n}. *shortest tells the first two from the third. */
static enum rf_status hf_side(const char *path, const char *key, json_t *v, int *side, bool *shortest)
{
	json_t *edge = json_object_get(v, "shortest_edge");
	json_t *h = json_object_get(v, "height"), *w = json_object_get(v, "width");
	*shortest = json_is_integer(v) || json_is_integer(edge);
	json_t *n = json_is_integer(v) ? v : json_is_integer(edge) ? edge : h;
	if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 10000000 ||
	    (!*shortest && !json_is_integer(w)))
		return rf_error(RF_ERR_FORMAT, "%s: %s must be a positive integer, {\"shortest_edge\": n} or "
				"{\"height\": n, \"width\": n}", path, key);
	if (!*shortest && json_integer_value(h) != json_integer_value(w))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s is %lld x %lld (height x width): only square "
				"images are supported", path, key, (long long)json_integer_value(h),
				(long long)json_integer_value(w));
	*side = (int)json_integer_value(n);
	return RF_OK;
}

/* The steps of transformers' CLIPImageProcessor that refract implements as they are:
** anything else (another filter, no crop, a resize and a crop of different sizes, another
** rescale factor) would preprocess differently without a word. */
static enum rf_status check_hf_steps(const char *path, json_t *root)
{
	static const char *const steps[] = { "do_resize", "do_center_crop", "do_rescale", "do_normalize" };
	for (size_t i = 0; i < RF_ARRAY_LEN(steps); i++) {
		json_t *v = json_object_get(root, steps[i]);
		if (v && !json_is_null(v) && !json_is_true(v))
			return rf_error(RF_ERR_UNSUPPORTED, "%s: %s is not true: refract always resizes, "
					"crops, rescales by 1/255 and normalises", path, steps[i]);
	}
	json_t *resample = json_object_get(root, "resample");
	if (resample && !json_is_null(resample) && !(json_is_integer(resample) && json_integer_value(resample) == 3))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: resample is not 3 (bicubic): only bicubic resizing is "
				"supported", path);
	json_t *rescale = json_object_get(root, "rescale_factor");
	if (rescale && !json_is_null(rescale) &&
	    !(json_is_number(rescale) && fabs(json_number_value(rescale) * 255 - 1) < 1e-9))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: rescale_factor is not 1/255: only 8-bit pixels scaled "
				"by 1/255 are supported", path);
	return RF_OK;
}

/* size and crop_size: the resize's side (shortest edge, or both sides when squashed) and
** the crop must be one size, which finish() compares with the model's image size. */
static enum rf_status parse_hf_sizes(const char *path, json_t *root, struct rf_preprocess *p)
{
	json_t *size = json_object_get(root, "size"), *crop = json_object_get(root, "crop_size");
	int side = 0, crop_side = 0;
	bool shortest = true, unused;
	enum rf_status s = RF_OK;
	if (size && !json_is_null(size) && (s = hf_side(path, "size", size, &side, &shortest)) != RF_OK)
		return s;
	if (crop && !json_is_null(crop) && (s = hf_side(path, "crop_size", crop, &crop_side, &unused)) != RF_OK)
		return s;
	if (side && crop_side && side != crop_side)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: resizing to %d and cropping %d is not supported (refract "
				"resizes to the crop's size)", path, side, crop_side);
	p->size = side ? side : crop_side;
	p->mode = shortest ? RF_RESIZE_SHORTEST : RF_RESIZE_SQUASH;
	return RF_OK;
}

static enum rf_status parse_hf_preprocess(const char *dir, struct rf_preprocess *p)
{
	*p = rf_preprocess_openai(0);
	char *path = rf_path_join(dir, "preprocessor_config.json");
	if (!path)
		return rf_error(RF_ERR_OOM_HOST, "%s: reading the configuration", dir);
	json_t *root = NULL;
	enum rf_status s = file_exists(path) ? load_json(path, &root) : RF_OK;
	if (s == RF_OK && root) {
		json_t *mean = json_object_get(root, "image_mean"), *std = json_object_get(root, "image_std");
		if (mean && (s = read_triple(path, mean, "image_mean", p->mean)) == RF_OK && std)
			s = read_triple(path, std, "image_std", p->std);
		if (s == RF_OK)
			s = check_hf_steps(path, root);
		if (s == RF_OK)
			s = parse_hf_sizes(path, root, p);
	}
	json_decref(root);
	free(path);
	return s;
}

/* Old transformers configs carry vision_config_dict / text_config_dict beside (or instead
** of) vision_config / text_config; transformers lets the _dict's values win. A new object
** (to json_decref) with those values over the plain one's, or NULL when neither is an object. */
static json_t *hf_tower_object(json_t *root, const char *key)
{
	char dict_key[32];
	snprintf(dict_key, sizeof dict_key, "%s_dict", key);
	json_t *plain = json_object_get(root, key), *dict = json_object_get(root, dict_key);
	if (!json_is_object(plain) && !json_is_object(dict))
		return NULL;
	json_t *merged = json_is_object(plain) ? json_copy(plain) : json_object();
	if (merged && json_is_object(dict) && json_object_update(merged, dict) != 0) {
		json_decref(merged);
		return NULL;
	}
	return merged;
}

static enum rf_status parse_hf_towers(const char *path, json_t *root, json_t *vision, json_t *text,
				      struct rf_clip_config *c)
{
	const char *type = json_string_value(json_object_get(root, "model_type"));
	if (type && strcmp(type, "clip") != 0 && strcmp(type, "clip_vision_model") != 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not a CLIP model", path, type);
	if (!vision) {
		if (type && !strcmp(type, "clip_vision_model"))
			vision = root;
		else
			return rf_error(RF_ERR_FORMAT, "%s: missing object vision_config", path);
	}
	bool dicts = json_is_object(json_object_get(root, "vision_config_dict")) ||
		     json_is_object(json_object_get(root, "text_config_dict"));
	struct fields r = { path, "config", root };
	struct fields v = { path, dicts ? "vision_config (with vision_config_dict)" : "vision_config", vision };
	struct fields t = { path, dicts ? "text_config (with text_config_dict)" : "text_config", text };
	enum rf_status s;
	int channels;
	if ((s = get_int(&v, "num_channels", 3, false, &channels)) != RF_OK)
		return s;
	if (channels != 3)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s.num_channels is %d: only RGB models (3) are "
				"supported", path, v.section, channels);
	if ((s = get_int(&r, "projection_dim", 512, false, &c->embed_dim)) != RF_OK ||
	    (s = get_finite(&r, "logit_scale_init_value", &c->has_logit_scale, &c->logit_scale)) != RF_OK ||
	    (s = get_int(&v, "image_size", 224, false, &c->image_size)) != RF_OK ||
	    (s = get_int(&v, "patch_size", 32, false, &c->patch_size)) != RF_OK ||
	    (s = parse_hf_tower(&v, &c->vision, 768, 12, 12, 3072)) != RF_OK ||
	    (s = parse_hf_act(path, &v, &c->act)) != RF_OK)
		return s;
	c->has_text = json_is_object(text);
	if (c->has_text) {
		enum rf_activation tact;
		if ((s = get_int(&t, "max_position_embeddings", 77, false, &c->context_length)) != RF_OK ||
		    (s = get_int(&t, "vocab_size", 49408, false, &c->vocab_size)) != RF_OK ||
		    (s = parse_hf_tower(&t, &c->text, 512, 8, 12, 2048)) != RF_OK ||
		    (s = parse_hf_act(path, &t, &tact)) != RF_OK)
			return s;
		if (tact != c->act)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: the towers use different activations", path);
	}
	if (c->vision.ln_eps != c->text.ln_eps && c->has_text)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: the towers use different layer_norm_eps", path);
	return parse_hf_preprocess(c->dir, &c->preprocess);
}

static enum rf_status parse_hf(const char *path, json_t *root, struct rf_clip_config *c)
{
	json_t *vision = hf_tower_object(root, "vision_config");
	json_t *text = hf_tower_object(root, "text_config");
	enum rf_status s = parse_hf_towers(path, root, vision, text, c);
	json_decref(vision);
	json_decref(text);
	return s;
}

/* }===== */

static bool has_pickle(const char *dir)
{
	static const char *names[] = { "open_clip_pytorch_model.bin", "pytorch_model.bin",
				       "open_clip_model.bin", "model.pt", "model.pth", "model.bin" };
	bool found = false;
	for (size_t i = 0; i < RF_ARRAY_LEN(names) && !found; i++) {
		char *path = rf_path_join(dir, names[i]);
		found = path && file_exists(path);
		free(path);
	}
	return found;
}

static enum rf_status find_weights(struct rf_clip_config *c)
{
	const char *name = c->layout == RF_LAYOUT_OPEN_CLIP ? "open_clip_model.safetensors" : "model.safetensors";
	if (!(c->weights_path = rf_path_join(c->dir, name)))
		return rf_error(RF_ERR_OOM_HOST, "%s: reading the configuration", c->dir);
	if (file_exists(c->weights_path))
		return RF_OK;
	if (has_pickle(c->dir))
		return rf_error(RF_ERR_UNSUPPORTED, "%s: only a pickled PyTorch checkpoint (.bin/.pt) is "
				"here; refract never unpickles: download the model's %s from the same "
				"repository instead", c->dir, name);
	return rf_error(RF_ERR_IO, "%s: no %s in the model directory", c->dir, name);
}

void rf_clip_config_free(struct rf_clip_config *c)
{
	free(c->dir);
	free(c->weights_path);
	c->dir = c->weights_path = NULL;
}

/* The configuration file of `dir` (either layout) into *path, malloc'd. */
static enum rf_status find_config(const char *dir, struct rf_clip_config *out, char **path)
{
	out->layout = RF_LAYOUT_OPEN_CLIP;
	*path = rf_path_join(dir, "open_clip_config.json");
	if (*path && !file_exists(*path)) {
		free(*path);
		*path = rf_path_join(dir, "config.json");
		out->layout = RF_LAYOUT_HF;
		if (*path && !file_exists(*path)) {
			free(*path);
			*path = NULL;
			return rf_error(RF_ERR_IO, "%s: no open_clip_config.json or config.json", dir);
		}
	}
	return *path ? RF_OK : rf_error(RF_ERR_OOM_HOST, "%s: reading the configuration", dir);
}

enum rf_status rf_clip_config_load(const char *dir, struct rf_clip_config *out)
{
	memset(out, 0, sizeof *out);
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return rf_error(RF_ERR_IO, "%s: not a model directory (expected a folder with "
				"open_clip_config.json or config.json)", dir);
	if (!(out->dir = strdup(dir)))
		return rf_error(RF_ERR_OOM_HOST, "%s: reading the configuration", dir);
	char *path = NULL;
	json_t *root = NULL;
	enum rf_status s = find_config(dir, out, &path);
	if (s == RF_OK)
		s = load_json(path, &root);
	if (s == RF_OK)
		s = out->layout == RF_LAYOUT_OPEN_CLIP ? parse_open_clip(path, root, out)
						       : parse_hf(path, root, out);
	json_decref(root);
	if (s == RF_OK)
		s = finish(out, path);
	if (s == RF_OK)
		s = find_weights(out);
	free(path);
	if (s != RF_OK)
		rf_clip_config_free(out);
	return s;
}

void rf_clip_config_describe(const struct rf_clip_config *c, char *buf, size_t size)
{
	int n = snprintf(buf, size, "ViT %d/%d, width %d x %d layers, %d heads of %d, MLP %d, %s, embed %d",
			 c->image_size, c->patch_size, c->vision.width, c->vision.layers, c->vision.heads,
			 c->vision.head_width, c->vision.mlp_width,
			 c->act == RF_ACT_QUICKGELU ? "QuickGELU" : "GELU", c->embed_dim);
	if (c->has_text && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, "; text width %d x %d layers, %d heads, context %d",
			 c->text.width, c->text.layers, c->text.heads, c->context_length);
}
