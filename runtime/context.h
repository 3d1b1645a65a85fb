/*
** context.h: rf_ctx, the one object that owns a Vulkan device and everything made on it
** (memory blocks, pipelines, command frames, profiling). Reference counted: tensors and
** models hold a reference, so the order in which they are released never matters.
** Memory statistics are in memory.h, transfers in transfer.h, timings in profile.h.
** Runtime layer (L1).
*/
#ifndef RF_RUNTIME_CONTEXT_H
#define RF_RUNTIME_CONTEXT_H

#include "rf_base.h"
#include "device.h"

typedef struct rf_ctx rf_ctx;

struct rf_ctx_options {
	const char *device;    /* index or name substring; NULL: REFRACT_DEVICE or automatic */
	bool validation;       /* enable the Khronos validation layer (also REFRACT_VALIDATION=1) */
	bool profile;          /* per-kernel GPU timestamps (also REFRACT_PROFILE=1) */
};

/* Creates a context on the chosen device. On failure *out is NULL and the message
** says what failed (no driver, no device, device creation). */
enum rf_status rf_ctx_create(const struct rf_ctx_options *opt, rf_ctx **out);
rf_ctx *rf_ctx_retain(rf_ctx *ctx);
/* Drops a reference; the last one waits for the device and destroys everything. NULL ok. */
void rf_ctx_release(rf_ctx *ctx);

const struct rf_caps *rf_ctx_caps(const rf_ctx *ctx);

/* Submits recorded work without waiting (so the host can record the next batch). */
enum rf_status rf_ctx_submit(rf_ctx *ctx);
/* Submits recorded work and waits until the device has finished everything. */
enum rf_status rf_ctx_finish(rf_ctx *ctx);

/* RF_ERR_DEVICE_LOST once the device has been lost; RF_OK otherwise. */
enum rf_status rf_ctx_check(rf_ctx *ctx);

/* Number of warnings/errors the validation layer reported (0 without validation). */
uint32_t rf_ctx_validation_messages(const rf_ctx *ctx);
bool rf_ctx_validation_enabled(const rf_ctx *ctx);

#endif
