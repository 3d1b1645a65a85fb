/*
** profile.h: per-kernel GPU time from timestamp queries around each dispatch, gathered
** when the context was created with `profile` (or REFRACT_PROFILE=1) or turned on here,
** on devices that have timestamps. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_PROFILE_H
#define RF_RUNTIME_PROFILE_H

#include "rf_base.h"

typedef struct rf_ctx rf_ctx;

/* Per-kernel timing gathered when profiling is on: name, dispatches, total ns. */
struct rf_profile_entry {
	const char *name;
	uint64_t dispatches;
	double total_ns;
};
/* Fills up to `max` entries sorted by total time; returns how many. */
uint32_t rf_ctx_profile(const rf_ctx *ctx, struct rf_profile_entry *out, uint32_t max);
void rf_ctx_profile_reset(rf_ctx *ctx);
bool rf_ctx_profiling(const rf_ctx *ctx);
/* Takes effect from the next frame (recorded work is submitted and waited for first). */
void rf_ctx_set_profiling(rf_ctx *ctx, bool on);
/* Adds `ns` of work done on the host under `name` (a string that outlives the context:
** entries are told apart by the pointer), when profiling: the host paths of CPU devices
** (compute/ops/gemm_host.c) appear beside the kernels. */
void rf_ctx_profile_host(rf_ctx *ctx, const char *name, double ns);

#endif
