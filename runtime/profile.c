/*
** profile.c: per-kernel GPU time: a timestamp query pool per frame, timestamps around
** each dispatch, and running totals per kernel name, gathered when a frame completes.
** REFRACT_PROFILE=1 turns it on at context creation. Runtime layer (L3).
*/
#include "profile.h"
#include "context_internal.h"

#include <stdlib.h>
#include <string.h>

/* {===== state */

static bool env_flag(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

void rf_profile_init(rf_ctx *ctx, bool requested)
{
	ctx->profile = (requested || env_flag("REFRACT_PROFILE")) && ctx->caps.timestamps;
}

void rf_profile_fini(rf_ctx *ctx)
{
	free(ctx->profile_slots);
	ctx->profile_slots = NULL;
	ctx->nprofile = ctx->profile_cap = 0;
}

/* }===== */

/* {===== frames */

enum rf_status rf_profile_frame_init(rf_ctx *ctx, struct rf_frame *f)
{
	if (!ctx->caps.timestamps)
		return RF_OK;
	VkQueryPoolCreateInfo q = {
		.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
		.queryType = VK_QUERY_TYPE_TIMESTAMP,
		.queryCount = RF_QUERIES_PER_FRAME,
	};
	VkResult r = vkCreateQueryPool(ctx->device, &q, NULL, &f->queries);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a timestamp query pool");
	return RF_OK;
}

void rf_profile_frame_fini(rf_ctx *ctx, struct rf_frame *f)
{
	if (f->queries)
		vkDestroyQueryPool(ctx->device, f->queries, NULL);
	f->queries = VK_NULL_HANDLE;
}

void rf_profile_frame_begin(rf_ctx *ctx, struct rf_frame *f)
{
	f->nqueries = 0;
	if (f->queries && ctx->profile)
		vkCmdResetQueryPool(f->cmd, f->queries, 0, RF_QUERIES_PER_FRAME);
}

bool rf_profile_dispatch_begin(rf_ctx *ctx, struct rf_frame *f)
{
	if (!ctx->profile || !f->queries || f->nqueries + 2 > RF_QUERIES_PER_FRAME)
		return false;
	vkCmdWriteTimestamp(f->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, f->queries, f->nqueries);
	return true;
}

void rf_profile_dispatch_end(struct rf_frame *f, const char *name)
{
	vkCmdWriteTimestamp(f->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, f->queries, f->nqueries + 1);
	f->labels[f->nqueries / 2] = name;
	f->nqueries += 2;
}

/* }===== */

/* {===== totals */

static void add_profile(rf_ctx *ctx, const char *name, double ns)
{
	for (uint32_t i = 0; i < ctx->nprofile; i++)
		if (ctx->profile_slots[i].name == name) {
			ctx->profile_slots[i].dispatches++;
			ctx->profile_slots[i].total_ns += ns;
			return;
		}
	if (ctx->nprofile == ctx->profile_cap) {
		uint32_t cap = ctx->profile_cap ? ctx->profile_cap * 2 : 32;
		struct rf_profile_slot *grown = realloc(ctx->profile_slots, cap * sizeof *grown);
		if (!grown)
			return;
		ctx->profile_slots = grown;
		ctx->profile_cap = cap;
	}
	ctx->profile_slots[ctx->nprofile++] = (struct rf_profile_slot){ name, 1, ns };
}

void rf_profile_frame_collect(rf_ctx *ctx, struct rf_frame *f)
{
	if (!ctx->profile || !f->nqueries)
		return;
	uint64_t *stamps = malloc(f->nqueries * sizeof *stamps);
	if (!stamps)
		return;
	VkResult r = vkGetQueryPoolResults(ctx->device, f->queries, 0, f->nqueries,
					   f->nqueries * sizeof *stamps, stamps, sizeof *stamps,
					   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
	if (r == VK_SUCCESS)
		for (uint32_t q = 0; q + 1 < f->nqueries; q += 2)
			add_profile(ctx, f->labels[q / 2],
				    (double)(stamps[q + 1] - stamps[q]) * ctx->caps.timestamp_period_ns);
	free(stamps);
	f->nqueries = 0;
}

static int by_total_desc(const void *a, const void *b)
{
	double x = ((const struct rf_profile_entry *)a)->total_ns;
	double y = ((const struct rf_profile_entry *)b)->total_ns;
	return (x < y) - (x > y);
}

uint32_t rf_ctx_profile(const rf_ctx *ctx, struct rf_profile_entry *out, uint32_t max)
{
	uint32_t n = RF_MIN(max, ctx->nprofile);
	struct rf_profile_entry *all = malloc((ctx->nprofile + 1) * sizeof *all);
	if (!all)
		return 0;
	for (uint32_t i = 0; i < ctx->nprofile; i++)
		all[i] = (struct rf_profile_entry){ ctx->profile_slots[i].name,
						    ctx->profile_slots[i].dispatches,
						    ctx->profile_slots[i].total_ns };
	qsort(all, ctx->nprofile, sizeof *all, by_total_desc);
	memcpy(out, all, n * sizeof *out);
	free(all);
	return n;
}

void rf_ctx_profile_reset(rf_ctx *ctx)
{
	ctx->nprofile = 0;
}

bool rf_ctx_profiling(const rf_ctx *ctx)
{
	return ctx->profile;
}

void rf_ctx_set_profiling(rf_ctx *ctx, bool on)
{
	/* Takes effect at the next frame, whose query pool is then reset. */
	if (on && !ctx->profile)
		rf_ctx_finish(ctx);
	ctx->profile = on && ctx->caps.timestamps;
}

/* }===== */

void rf_ctx_profile_host(rf_ctx *ctx, const char *name, double ns)
{
	if (ctx->profile)
		add_profile(ctx, name, ns);
}
