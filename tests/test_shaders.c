/*
** test_shaders.c: every embedded shader builds, its push-constant block size is read
** from its SPIR-V (checked against blocks counted by hand from the GLSL), and a dispatch
** whose push constants are not exactly that size is refused; malformed SPIR-V is an
** error, not a crash. That every launcher passes the right size is proven by the other
** tests, which run every launcher through the same check. Also: the kernel choices of
** the environment (REFRACT_GEMM, REFRACT_KERNELS) are read once, into the context's caps.
*/
#include "harness.h"
#include "cmd.h"
#include "context.h"
#include "shader_table.h"
#include "spirv.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

static void test_every_shader(rf_ctx *ctx)
{
	for (int id = 0; id < RF_SHADER_COUNT; id++) {
		const struct rf_shader *sh = rf_shader((enum rf_shader_id)id);
		rf_pipeline *p = NULL;
		CHECK_OK(rf_pipeline_get(ctx, sh, NULL, 0, &p));
		uint32_t size = p ? rf_pipeline_push_size(p) : 0;
		printf("%-20s push constants: %3u bytes\n", sh->name, size);
		/* Every kernel takes its sizes as push constants, within the layout's 128 bytes. */
		CHECK(size > 0 && size <= 128 && size % 4 == 0);
	}
}

/* Blocks counted from the GLSL sources: 4-byte members, arrays of 4-byte elements. */
static void test_known_sizes(void)
{
	static const struct { enum rf_shader_id id; uint32_t bytes; } known[] = {
		{ RF_SHADER_binary, (6 + 3 * 8) * 4 },        /* n..b_base, dims/a_stride/b_stride[8] */
		{ RF_SHADER_copy, (5 + 3 * 8) * 4 },          /* count..dst_base, dim/strides[8] */
		{ RF_SHADER_reduce, (8 + 4 * 4) * 4 },        /* count..correction, four [4] arrays */
		{ RF_SHADER_layernorm, 3 * 4 },               /* rows, cols, eps */
		{ RF_SHADER_decomp_accumulate, 11 * 4 },
		{ RF_SHADER_decomp_scale_v, 6 * 4 },
		{ RF_SHADER_decomp_extra, 5 * 4 },
		{ RF_SHADER_decomp_finish, 5 * 4 },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(known); i++) {
		const struct rf_shader *sh = rf_shader(known[i].id);
		uint32_t size = 0;
		CHECK_OK(rf_spirv_push_size(sh->code, sh->code_size, sh->name, &size));
		if (size != known[i].bytes)
			fprintf(stderr, "%s: reflected %u bytes, the GLSL block has %u\n", sh->name, size,
				known[i].bytes);
		CHECK(size == known[i].bytes);
	}
}

/* A launcher whose struct is a word short or long is refused before anything is recorded. */
static void test_wrong_size_refused(rf_ctx *ctx)
{
	const struct rf_shader *sh = rf_shader(RF_SHADER_decomp_finish);
	rf_pipeline *p = NULL;
	CHECK_OK(rf_pipeline_get(ctx, sh, NULL, 0, &p));
	struct rf_shape shape = rf_shape_of(1, (int64_t)64);
	rf_tensor *t = rf_test_tensor(ctx, &shape, NULL);
	struct rf_arg args[5];
	for (size_t i = 0; i < RF_ARRAY_LEN(args); i++)
		args[i] = rf_arg_whole(&t->mem);
	uint32_t push[32] = { 0 };
	uint32_t size = rf_pipeline_push_size(p);
	CHECK_FAILS(rf_cmd_dispatch(ctx, p, args, 5, push, size - 4, 1, 1, 1), RF_ERR_INTERNAL,
		    "decomp_finish: the launcher passes 16 bytes of push constants but the shader's block has 20");
	CHECK_FAILS(rf_cmd_dispatch(ctx, p, args, 5, push, size + 4, 1, 1, 1), RF_ERR_INTERNAL,
		    "passes 24 bytes");
	/* The exact size goes through (n = 0: every invocation returns at once). */
	CHECK_OK(rf_cmd_dispatch(ctx, p, args, 5, push, size, 1, 1, 1));
	CHECK_OK(rf_ctx_finish(ctx));
	rf_tensor_destroy(t);
}

static void test_malformed(void)
{
	const struct rf_shader *sh = rf_shader(RF_SHADER_binary);
	uint32_t size = 7;
	uint32_t junk[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	CHECK_FAILS(rf_spirv_push_size(junk, sizeof junk, "junk", &size), RF_ERR_FORMAT,
		    "shader 'junk': not a SPIR-V module");
	CHECK(size == 0);
	CHECK_FAILS(rf_spirv_push_size(sh->code, 12, "short", &size), RF_ERR_FORMAT, "not a SPIR-V module");
	/* Cut inside an instruction: the last one runs past the end. */
	size_t cut = sh->code_size / 2 & ~(size_t)3;
	enum rf_status s = rf_spirv_push_size(sh->code, cut, "cut", &size);
	CHECK(s == RF_ERR_FORMAT || s == RF_OK);
	/* An instruction claiming more words than the module has. */
	uint32_t *copy = malloc(sh->code_size);
	memcpy(copy, sh->code, sh->code_size);
	copy[5] = (0xffffu << 16) | (copy[5] & 0xffff);
	CHECK_FAILS(rf_spirv_push_size(copy, sh->code_size, "long", &size), RF_ERR_FORMAT,
		    "runs past the end");
	/* An id past the module's bound. */
	memcpy(copy, sh->code, sh->code_size);
	copy[3] = 1;
	CHECK_FAILS(rf_spirv_push_size(copy, sh->code_size, "bound", &size), RF_ERR_FORMAT,
		    "past the module's bound");
	free(copy);
}

static rf_ctx *ctx_with(const char *gemm, const char *rows)
{
	setenv("REFRACT_GEMM", gemm, 1);
	setenv("REFRACT_KERNELS", rows, 1);
	rf_ctx *ctx = NULL;
	CHECK_OK(rf_ctx_create(NULL, &ctx));
	if (!ctx)
		exit(rf_test_finish());
	return ctx;
}

static void test_kernel_choices(void)
{
	rf_ctx *a = ctx_with("tiled", "gpu");
	rf_ctx *b = ctx_with("generic", "cpu");
	rf_ctx *c = ctx_with("auto", "neither");
	rf_ctx *d = ctx_with("host", "cpu");
	CHECK(rf_ctx_caps(d)->gemm == RF_GEMM_HOST);
	rf_ctx_release(d);
	CHECK(rf_ctx_caps(a)->gemm == RF_GEMM_TILED && rf_ctx_caps(a)->rows == RF_ROWS_GPU);
	CHECK(rf_ctx_caps(b)->gemm == RF_GEMM_GENERIC && rf_ctx_caps(b)->rows == RF_ROWS_CPU);
	CHECK(rf_ctx_caps(c)->gemm == RF_GEMM_AUTO && rf_ctx_caps(c)->rows == RF_ROWS_AUTO);
	/* Later changes of the environment leave existing contexts as they were made. */
	setenv("REFRACT_GEMM", "lanes", 1);
	setenv("REFRACT_KERNELS", "cpu", 1);
	CHECK(rf_ctx_caps(a)->gemm == RF_GEMM_TILED && rf_ctx_caps(a)->rows == RF_ROWS_GPU);
	setenv("REFRACT_GEMM", "fastest", 1);
	rf_ctx *bad = NULL;
	CHECK_FAILS(rf_ctx_create(NULL, &bad), RF_ERR_INVALID,
		    "REFRACT_GEMM=fastest: expected auto, host, lanes, tiled or generic");
	CHECK(bad == NULL);
	unsetenv("REFRACT_GEMM");
	unsetenv("REFRACT_KERNELS");
	rf_ctx_release(a);
	rf_ctx_release(b);
	rf_ctx_release(c);
}

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	test_known_sizes();
	test_malformed();
	test_every_shader(ctx);
	test_wrong_size_refused(ctx);
	test_kernel_choices();
	return rf_test_finish();
}
