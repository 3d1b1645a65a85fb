/*
** context_internal.h: the layout of rf_ctx, shared by the runtime files that implement
** it (context.c, memory.c, pipeline.c, cmd.c, transfer.c, profile.c), and the one
** mapping of a failed Vulkan call to a status that also notices a lost device.
** Runtime-internal (L1): nothing above runtime/ includes it.
*/
#ifndef RF_RUNTIME_CONTEXT_INTERNAL_H
#define RF_RUNTIME_CONTEXT_INTERNAL_H

#include <vulkan/vulkan.h>
#include "context.h"
#include "device_internal.h"
#include "memory_internal.h"
#include "cmd_internal.h"
#include "profile_internal.h"

struct rf_ctx {
	int refcount;
	struct rf_instance inst;
	VkPhysicalDevice physical;
	VkDevice device;
	VkQueue queue;
	uint32_t queue_family;
	struct rf_caps caps;
	bool lost;

	/* memory.c */
	uint32_t device_memory_type;
	uint32_t host_memory_type;
	struct rf_block **blocks;
	uint32_t nblocks, block_cap;
	uint64_t block_size;
	struct rf_mem_stats mem_stats;

	/* pipeline.c */
	VkPipelineCache pipeline_cache;
	struct rf_pipeline *pipelines;        /* singly linked */
	struct rf_set_layout *set_layouts;     /* singly linked, one per binding signature */

	/* cmd.c */
	VkCommandPool command_pool;
	struct rf_frame frames[RF_FRAMES];
	uint32_t current;
	uint64_t barriers;                     /* recorded so far (rf_cmd_barriers) */

	/* profile.c */
	bool profile;
	struct rf_profile_slot *profile_slots;
	uint32_t nprofile, profile_cap;
};

/* Marks the device lost if `r` says so; returns the status for `r`. */
enum rf_status rf_ctx_vk_fail(rf_ctx *ctx, VkResult r, const char *what);

#endif
