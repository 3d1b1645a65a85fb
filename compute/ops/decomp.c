/*
** decomp.c: launchers of the decomposition kernels (decomp_*.comp; see decomp.h), with
** the sizes checked against the tensors so that a wrong call is a message, never a read
** past a binding. Compute layer (L4).
*/
#include "decomp.h"
#include "launch.h"
#include "status.h"

#define LOCAL 256

/* `t` is an f32 device tensor of exactly `want` elements (or at least, with `at_least`). */
static enum rf_status check_size(const rf_tensor *t, const char *op, const char *what, uint64_t want,
				 bool at_least)
{
	enum rf_status s = rf_check_device(t, RF_F32, op, what);
	if (s != RF_OK)
		return s;
	uint64_t n = (uint64_t)rf_tensor_numel(t);
	if (at_least ? n < want : n != want)
		return rf_error(RF_ERR_INVALID, "%s: %s has %llu elements, expected %s%llu", op, what,
				(unsigned long long)n, at_least ? "at least " : "", (unsigned long long)want);
	return RF_OK;
}

/* Element counts the kernels index with 32-bit integers. */
static enum rf_status check_count(const char *op, uint64_t n)
{
	if (n == 0 || n > UINT32_MAX)
		return rf_error(RF_ERR_INVALID, "%s: %llu elements (expected 1 to 2^32 - 1)", op,
				(unsigned long long)n);
	return RF_OK;
}

static enum rf_status launch(rf_ctx *ctx, enum rf_shader_id id, const struct rf_arg *args, uint32_t nargs,
			     const void *push, uint32_t push_size, uint64_t n)
{
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(ctx, id, spec, 1, &p);
	if (s != RF_OK)
		return s;
	return rf_launch_1d(ctx, p, args, nargs, push, push_size, n, LOCAL);
}

struct push_accumulate {
	uint32_t batch, tokens, heads, dim, t_batch, use_alpha, alpha_n, alpha_m0, sum_tokens,
		sum_heads, n;
};

enum rf_status rf_op_decomp_accumulate(rf_ctx *ctx, const struct rf_decomp_accumulate *a)
{
	const char *op = "decomp_accumulate";
	uint64_t out_tokens = a->sum_tokens ? 1 : a->tokens, out_heads = a->sum_heads ? 1 : a->heads;
	uint64_t n = (uint64_t)a->batch * out_tokens * out_heads * a->dim;
	uint64_t t_need = a->batch ? (uint64_t)(a->batch - 1) * a->t_batch +
				     (uint64_t)a->tokens * a->heads * a->dim : 0;
	enum rf_status s;
	if ((s = check_count(op, n)) != RF_OK || (s = check_size(a->slot, op, "slot", n, false)) != RF_OK ||
	    (s = check_size(a->t, op, "t", t_need, true)) != RF_OK)
		return s;
	if (a->alpha) {
		if (a->alpha_m0 + (uint64_t)a->tokens > a->alpha_n)
			return rf_error(RF_ERR_INVALID, "%s: tokens %u from %u pass alpha's %u", op, a->tokens,
					a->alpha_m0, a->alpha_n);
		if ((s = check_size(a->alpha, op, "alpha", (uint64_t)a->batch * a->heads * a->alpha_n,
				    true)) != RF_OK)
			return s;
	}
	struct push_accumulate pc = {
		.batch = a->batch, .tokens = a->tokens, .heads = a->heads, .dim = a->dim,
		.t_batch = a->t_batch, .use_alpha = a->alpha != NULL, .alpha_n = a->alpha_n,
		.alpha_m0 = a->alpha_m0, .sum_tokens = a->sum_tokens, .sum_heads = a->sum_heads,
		.n = (uint32_t)n,
	};
	/* Without weights the shader never reads binding 1: bind t there. */
	const rf_tensor *alpha = a->alpha ? a->alpha : a->t;
	struct rf_arg args[] = { rf_arg_whole(&a->t->mem), rf_arg_whole(&alpha->mem),
				 rf_arg_whole(&a->slot->mem) };
	return launch(ctx, RF_SHADER_decomp_accumulate, args, 3, &pc, sizeof pc, n);
}

struct push_scale_v {
	uint32_t n, width, tokens, heads, head_width, out_head;
};

enum rf_status rf_op_decomp_scale_values(rf_ctx *ctx, const rf_tensor *qkv, const rf_tensor *cls_probs,
					 uint32_t batch, uint32_t tokens, uint32_t heads,
					 uint32_t head_width, rf_tensor *out)
{
	const char *op = "decomp_scale_values";
	uint64_t rows = (uint64_t)batch * tokens, width = (uint64_t)heads * head_width;
	uint64_t n = rows * width;
	enum rf_status s;
	if ((s = check_count(op, rows * (width + 4u * heads))) != RF_OK ||
	    (s = check_size(qkv, op, "qkv", rows * 3 * width, false)) != RF_OK ||
	    (s = check_size(cls_probs, op, "cls_probs", (uint64_t)batch * heads * tokens, false)) != RF_OK ||
	    (s = check_size(out, op, "out", rows * (width + 4u * heads), false)) != RF_OK)
		return s;
	struct push_scale_v pc = {
		.n = (uint32_t)n, .width = (uint32_t)width, .tokens = tokens, .heads = heads,
		.head_width = head_width, .out_head = head_width + 4,
	};
	struct rf_arg args[] = { rf_arg_whole(&qkv->mem), rf_arg_whole(&cls_probs->mem),
				 rf_arg_whole(&out->mem) };
	return launch(ctx, RF_SHADER_decomp_scale_v, args, 3, &pc, sizeof pc, n);
}

struct push_extra {
	uint32_t n, tokens, heads, head_width;
	float w;
};

enum rf_status rf_op_decomp_extra(rf_ctx *ctx, const rf_tensor *mean, const rf_tensor *std,
				  const rf_tensor *norm, uint32_t tokens, uint32_t heads,
				  uint32_t head_width, float w, rf_tensor *v)
{
	const char *op = "decomp_extra";
	enum rf_status s = rf_check_device(mean, RF_F32, op, "mean");
	if (s != RF_OK)
		return s;
	uint64_t batch = (uint64_t)rf_tensor_numel(mean), blocks = batch * tokens * heads;
	if ((s = check_count(op, blocks * (head_width + 4u))) != RF_OK ||
	    (s = check_size(std, op, "std", batch, false)) != RF_OK ||
	    (s = check_size(norm, op, "norm", batch, false)) != RF_OK ||
	    (s = check_size(v, op, "v", blocks * (head_width + 4u), false)) != RF_OK)
		return s;
	struct push_extra pc = {
		.n = (uint32_t)blocks, .tokens = tokens, .heads = heads, .head_width = head_width, .w = w,
	};
	struct rf_arg args[] = { rf_arg_whole(&mean->mem), rf_arg_whole(&std->mem),
				 rf_arg_whole(&norm->mem), rf_arg_whole(&v->mem) };
	return launch(ctx, RF_SHADER_decomp_extra, args, 4, &pc, sizeof pc, blocks);
}

struct push_finish {
	uint32_t n, per_image, dim, bias_row;
	float w;
};

enum rf_status rf_op_decomp_finish(rf_ctx *ctx, rf_tensor *slot, const rf_tensor *consts,
				   uint32_t bias_row, float w, const rf_tensor *mean,
				   const rf_tensor *std, const rf_tensor *norm)
{
	const char *op = "decomp_finish";
	enum rf_status s;
	if ((s = rf_check_device(slot, RF_F32, op, "slot")) != RF_OK ||
	    (s = rf_check_device(consts, RF_F32, op, "consts")) != RF_OK ||
	    (s = rf_check_device(mean, RF_F32, op, "mean")) != RF_OK)
		return s;
	uint64_t batch = (uint64_t)rf_tensor_numel(mean), n = (uint64_t)rf_tensor_numel(slot);
	uint64_t dim = consts->shape.ndim ? (uint64_t)consts->shape.dim[consts->shape.ndim - 1] : 0;
	uint64_t rows = dim ? (uint64_t)rf_tensor_numel(consts) / dim : 0;
	if ((s = check_count(op, n)) != RF_OK || (s = check_size(std, op, "std", batch, false)) != RF_OK ||
	    (s = check_size(norm, op, "norm", batch, false)) != RF_OK)
		return s;
	if (rows < 2 || (bias_row != RF_DECOMP_NO_BIAS && bias_row >= rows))
		return rf_error(RF_ERR_INVALID, "%s: consts has %llu rows; it needs bpp, g1p%s", op,
				(unsigned long long)rows, bias_row != RF_DECOMP_NO_BIAS ? " and the bias row" : "");
	if (batch == 0 || n % batch || (n / batch) % dim)
		return rf_error(RF_ERR_INVALID, "%s: slot's %llu elements are not %llu images of rows of %llu",
				op, (unsigned long long)n, (unsigned long long)batch, (unsigned long long)dim);
	struct push_finish pc = {
		.n = (uint32_t)n, .per_image = (uint32_t)(n / batch), .dim = (uint32_t)dim,
		.bias_row = bias_row, .w = w,
	};
	struct rf_arg args[] = { rf_arg_whole(&slot->mem), rf_arg_whole(&consts->mem),
				 rf_arg_whole(&mean->mem), rf_arg_whole(&std->mem), rf_arg_whole(&norm->mem) };
	return launch(ctx, RF_SHADER_decomp_finish, args, 5, &pc, sizeof pc, n);
}
