/*
** profile_internal.h: the hooks by which command frames gather per-kernel GPU time
** (profile.c). Runtime-internal (L3): nothing above runtime/ includes it.
*/
#ifndef RF_RUNTIME_PROFILE_INTERNAL_H
#define RF_RUNTIME_PROFILE_INTERNAL_H

#include "profile.h"

struct rf_frame;

/* One kernel's running total (the context keeps an array of them). */
struct rf_profile_slot {
	const char *name;
	uint64_t dispatches;
	double total_ns;
};

/* Turns profiling on if asked (option or REFRACT_PROFILE=1) and the device has timestamps. */
void rf_profile_init(rf_ctx *ctx, bool requested);
/* Frees the gathered timings. */
void rf_profile_fini(rf_ctx *ctx);

/* A frame's timestamp query pool (none when the device has no timestamps). */
enum rf_status rf_profile_frame_init(rf_ctx *ctx, struct rf_frame *f);
void rf_profile_frame_fini(rf_ctx *ctx, struct rf_frame *f);
/* At the start of a frame's recording: resets its queries when profiling. */
void rf_profile_frame_begin(rf_ctx *ctx, struct rf_frame *f);
/* After the frame's fence: adds its timestamps to the totals. */
void rf_profile_frame_collect(rf_ctx *ctx, struct rf_frame *f);

/* Around one recorded dispatch: timestamps before and after it while the frame has
** queries left. `begin` returns whether `end` must be called. */
bool rf_profile_dispatch_begin(rf_ctx *ctx, struct rf_frame *f);
void rf_profile_dispatch_end(struct rf_frame *f, const char *name);

#endif
