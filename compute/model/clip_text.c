/*
** clip_text.c: tokenizing and the text forward pass (token and position embeddings,
** causal blocks, pooling at the end-of-text token, ln_final, projection).
** Compute layer (L5).
*/
#include "clip_internal.h"
#include "context.h"
#include "elementwise.h"
#include "nn.h"
#include "status.h"
#include "tensor_ops.h"
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

enum rf_status rf_clip_tokenize(const rf_clip *m, const char *const *texts, int count,
				rf_tensor **tokens)
{
	*tokens = NULL;
	if (!m->has_text)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: this model has no text tower", m->cfg.dir);
	struct rf_shape s = rf_shape_of(2, (int64_t)count, (int64_t)m->cfg.context_length);
	enum rf_status st = rf_tensor_create_host(RF_I64, &s, tokens);
	for (int i = 0; i < count && st == RF_OK; i++) {
		st = rf_tokenizer_encode(m->tokenizer, texts[i], m->cfg.context_length,
					 (int64_t *)(*tokens)->host + (size_t)i * (size_t)m->cfg.context_length, NULL);
		if (st != RF_OK)
			st = rf_error_wrap(st, "text %d", i + 1);   /* counted from 1, as Lua lists */
	}
	if (st != RF_OK) {
		rf_tensor_destroy(*tokens);
		*tokens = NULL;
	}
	return st;
}

static enum rf_status check_tokens(const rf_clip *m, const rf_tensor *tokens)
{
	char got[96];
	if (!m->has_text)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: this model has no text tower", m->cfg.dir);
	if (tokens->dtype != RF_I64 || rf_tensor_on_device(tokens) || tokens->shape.ndim != 2 ||
	    tokens->shape.dim[1] != m->cfg.context_length)
		return rf_error(RF_ERR_INVALID, "tokens must be a host i64 tensor [T, %d], got %s %s",
				m->cfg.context_length, rf_dtype_name(tokens->dtype),
				rf_shape_str(&tokens->shape, got, sizeof got));
	const int64_t *ids = tokens->host;
	for (int64_t i = 0; i < rf_tensor_numel(tokens); i++)
		if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
			return rf_error(RF_ERR_INVALID, "token id %lld of text %lld, position %lld (counting "
					"from 1) is outside the vocabulary of %d", (long long)ids[i],
					(long long)(i / m->cfg.context_length + 1),
					(long long)(i % m->cfg.context_length + 1), m->cfg.vocab_size);
	return RF_OK;
}

/* x [T, ctx, W] = token rows (read from the checkpoint and gathered on the host) +
** positions. */
static enum rf_status embed_text(rf_clip *m, const rf_tensor *tokens, int64_t first, int64_t count,
				 rf_tensor *x)
{
	int64_t ctxlen = m->cfg.context_length, w = m->cfg.text.width;
	size_t row_bytes = (size_t)w * rf_dtype_size(m->tok_emb->dtype);
	float *host = malloc((size_t)(count * ctxlen * w) * sizeof *host);
	void *row = malloc(row_bytes);
	enum rf_status s = host && row ? RF_OK : rf_error(RF_ERR_OOM_HOST, "gathering token embeddings");
	const int64_t *ids = (const int64_t *)tokens->host + first * ctxlen;
	for (int64_t i = 0; i < count * ctxlen && s == RF_OK; i++) {
		s = rf_safetensors_read_bytes(m->st, m->tok_emb, (uint64_t)ids[i] * row_bytes, row_bytes, row);
		if (s == RF_OK)
			rf_convert_to_f32(m->tok_emb->dtype, row, host + i * w, (size_t)w);
	}
	if (s == RF_OK)
		s = rf_tensor_upload(x, host, (uint64_t)(count * ctxlen * w) * sizeof *host);
	free(row);
	free(host);
	if (s == RF_OK)
		s = rf_op_binary(m->ctx, RF_BIN_ADD, x, m->text_pos, x);
	return s;
}

/* Row index (in [T*ctx]) of each text's first end-of-text token, i.e. its largest id. */
static enum rf_status pool_index(rf_clip *m, const rf_tensor *tokens, int64_t first, int64_t count,
				 rf_tensor **index)
{
	int64_t ctxlen = m->cfg.context_length;
	int32_t *rows = malloc((size_t)count * sizeof *rows);
	if (!rows)
		return rf_error(RF_ERR_OOM_HOST, "pooling indices");
	const int64_t *ids = (const int64_t *)tokens->host + first * ctxlen;
	for (int64_t t = 0; t < count; t++) {
		int64_t best = 0;
		for (int64_t j = 1; j < ctxlen; j++)
			if (ids[t * ctxlen + j] > ids[t * ctxlen + best])
				best = j;
		rows[t] = (int32_t)(t * ctxlen + best);
	}
	struct rf_shape s = rf_shape_of(1, count);
	enum rf_status st = rf_tensor_create(m->ctx, RF_I32, &s, index);
	if (st == RF_OK)
		st = rf_tensor_upload(*index, rows, (uint64_t)count * sizeof *rows);
	free(rows);
	return st;
}

static enum rf_status run_text(rf_clip *m, const rf_tensor *tokens, int64_t first, int64_t count,
			       rf_tensor *embeds)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t w = c->text.width;
	struct rf_shape sx = rf_shape_of(3, count, (int64_t)c->context_length, w);
	struct rf_shape sp = rf_shape_of(2, count, w), se = rf_shape_of(2, count, (int64_t)c->embed_dim);
	rf_tensor *x = NULL, *index = NULL, *pooled = NULL, *e = NULL;
	struct rf_block_scratch scratch = { 0 };
	enum rf_status s;
	if ((s = rf_tensor_create(m->ctx, RF_F32, &sx, &x)) != RF_OK ||
	    (s = embed_text(m, tokens, first, count, x)) != RF_OK ||
	    (s = rf_block_scratch_init(m->ctx, &c->text, (int)count, c->context_length, NULL, &scratch)) != RF_OK)
		goto out;
	for (int l = 0; l < c->text.layers; l++) {
		struct rf_block_run run = { m, &c->text, &m->text.blocks[l], l, (int)count, c->context_length, true, NULL };
		if ((s = rf_block_forward(&run, &scratch, x)) != RF_OK)
			goto out;
	}
	/* LayerNorm is per row, so pooling first and normalising the pooled rows equals the
	** reference's ln_final over every token followed by the gather. */
	struct rf_shape rows = rf_shape_of(2, count * c->context_length, w);
	if ((s = rf_tensor_reshape(x, &rows)) != RF_OK ||
	    (s = pool_index(m, tokens, first, count, &index)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &sp, &pooled)) != RF_OK ||
	    (s = rf_op_gather_rows(m->ctx, x, index, pooled)) != RF_OK ||
	    (s = rf_op_layernorm(m->ctx, pooled, m->ln_final.w, m->ln_final.b, c->text.ln_eps, pooled, NULL, NULL)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &se, &e)) != RF_OK)
		goto out;
	struct rf_gemm g = { pooled, m->text_proj, NULL, RF_ACT_NONE, NULL, e };
	if ((s = rf_op_gemm(m->ctx, &g)) != RF_OK)
		goto out;
	s = rf_mem_copy(m->ctx, &e->mem, 0, &embeds->mem, (uint64_t)first * (uint64_t)c->embed_dim * 4,
			rf_tensor_nbytes(e));
out:
	rf_block_scratch_fini(&scratch);
	rf_tensor_destroy(x);
	rf_tensor_destroy(index);
	rf_tensor_destroy(pooled);
	rf_tensor_destroy(e);
	return s;
}

enum rf_status rf_clip_encode_tokens(rf_clip *m, const rf_tensor *tokens, rf_tensor **embeds)
{
	*embeds = NULL;
	enum rf_status s = check_tokens(m, tokens);
	if (s != RF_OK)
		return s;
	const struct rf_clip_config *c = &m->cfg;
	int64_t total = tokens->shape.dim[0];
	uint64_t per_text = (uint64_t)c->context_length *
			    (uint64_t)RF_MAX(c->text.mlp_width, 3 * c->text.width) * 4;
	int64_t chunk = (int64_t)RF_MAX(1, RF_MIN(rf_ctx_caps(m->ctx)->max_storage_range / per_text, 256));
	struct rf_shape se = rf_shape_of(2, total, (int64_t)c->embed_dim);
	if ((s = rf_tensor_create(m->ctx, RF_F32, &se, embeds)) != RF_OK)
		return s;
	for (int64_t first = 0; first < total && s == RF_OK; first += chunk)
		s = run_text(m, tokens, first, RF_MIN(chunk, total - first), *embeds);
	if (s != RF_OK) {
		rf_tensor_destroy(*embeds);
		*embeds = NULL;
	}
	return s;
}
