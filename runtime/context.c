/*
** context.c: creating and destroying rf_ctx: instance, device choice, logical device and
** queue, then memory, pipelines, command frames and profiling. Runtime layer (L1).
*/
#include "context_internal.h"
#include "host_memory.h"
#include "pipeline_internal.h"
#include "status.h"
#include "log.h"
#include "vkcheck.h"

#include <errno.h>
#include <stdlib.h>

/* Below this, single rows of the model's kernels would no longer fit one binding. */
#define RF_MIN_STORAGE_RANGE (64u << 10)

enum rf_status rf_ctx_vk_fail(rf_ctx *ctx, VkResult r, const char *what)
{
	if (r == VK_ERROR_DEVICE_LOST)
		ctx->lost = true;
	return rf_vk_fail(r, what);
}

static bool find_compute_queue(VkPhysicalDevice pd, uint32_t *family)
{
	uint32_t n = 0;
	vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
	VkQueueFamilyProperties props[16];
	n = RF_MIN(n, (uint32_t)RF_ARRAY_LEN(props));
	vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, props);
	for (uint32_t i = 0; i < n; i++)
		if (props[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
			*family = i;
			return true;
		}
	return false;
}

static enum rf_status pick_physical(rf_ctx *ctx, const char *want)
{
	VkPhysicalDevice pds[32];
	struct rf_caps caps[32];
	uint32_t n = RF_ARRAY_LEN(pds);
	VkResult r = vkEnumeratePhysicalDevices(ctx->inst.instance, &n, pds);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE)
		return rf_vk_fail(r, "listing Vulkan devices");
	if (n == 0)
		return rf_error(RF_ERR_NO_DEVICE, "the Vulkan driver reports no device; on a machine "
				"without a GPU install Mesa's lavapipe (mesa-vulkan-drivers)");
	for (uint32_t i = 0; i < n; i++)
		rf_caps_collect(pds[i], i, &caps[i]);
	uint32_t index;
	enum rf_status s = rf_device_choose(caps, n, want, &index);
	if (s != RF_OK)
		return s;
	ctx->physical = pds[index];
	ctx->caps = caps[index];
	/* Read once here, so no dispatch looks at the environment. */
	if ((s = rf_caps_read_env(&ctx->caps)) != RF_OK)
		return s;
	if (!find_compute_queue(ctx->physical, &ctx->queue_family))
		return rf_error(RF_ERR_UNSUPPORTED, "device %s has no compute queue", ctx->caps.name);
	return RF_OK;
}

/* REFRACT_MAX_STORAGE_RANGE=<bytes> lowers the storage-binding limit every kernel windows
** by (never raises it), read once here: with a small value the windowed paths, otherwise
** taken only for tensors past a device's own limit (lavapipe 128 MiB, GPUs up to 4 GiB),
** run on any device with small tensors, as the tests do. */
static enum rf_status limit_storage_range(struct rf_caps *caps)
{
	const char *v = getenv("REFRACT_MAX_STORAGE_RANGE");
	if (!v || !*v)
		return RF_OK;
	char *end;
	errno = 0;
	unsigned long long bytes = strtoull(v, &end, 10);
	if (*end || errno || v[0] == '-' || bytes < RF_MIN_STORAGE_RANGE)
		return rf_error(RF_ERR_INVALID, "REFRACT_MAX_STORAGE_RANGE=%s: expected a number of bytes, "
				"at least %u", v, RF_MIN_STORAGE_RANGE);
	if (bytes < caps->max_storage_range) {
		rf_log(RF_LOG_INFO, "storage bindings limited to %llu bytes (REFRACT_MAX_STORAGE_RANGE; "
		       "the device allows %llu)", bytes, (unsigned long long)caps->max_storage_range);
		caps->max_storage_range = bytes;
	}
	return RF_OK;
}

/* REFRACT_HEAP_BUDGET=<bytes> lowers the device memory refract lets itself use (never
** raises it), read once here, so that the paths taken when a model or a batch does not
** fit the budget (lavapipe's 2 GiB heap and ViT-L/H) run with small models in tests. */
static enum rf_status limit_heap_budget(struct rf_caps *caps)
{
	if (!rf_host_budget_env_ok())
		return rf_error(RF_ERR_INVALID, "REFRACT_HOST_BUDGET=%s: expected a number of bytes, "
				"at least 65536", getenv("REFRACT_HOST_BUDGET"));
	const char *v = getenv("REFRACT_HEAP_BUDGET");
	if (!v || !*v)
		return RF_OK;
	char *end;
	errno = 0;
	unsigned long long bytes = strtoull(v, &end, 10);
	if (*end || errno || v[0] == '-' || bytes < 65536)
		return rf_error(RF_ERR_INVALID, "REFRACT_HEAP_BUDGET=%s: expected a number of bytes, at "
				"least 65536", v);
	if (bytes < caps->heap_budget) {
		rf_log(RF_LOG_INFO, "device memory limited to %llu bytes (REFRACT_HEAP_BUDGET; the device "
		       "allows %llu)", bytes, (unsigned long long)caps->heap_budget);
		caps->heap_budget = bytes;
	}
	return RF_OK;
}

static enum rf_status create_device(rf_ctx *ctx)
{
	float priority = 1.0f;
	VkDeviceQueueCreateInfo queue = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = ctx->queue_family,
		.queueCount = 1,
		.pQueuePriorities = &priority,
	};
	/* Enable exactly the optional features the kernels may use, where present. */
	VkPhysicalDevice16BitStorageFeatures storage16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
		.storageBuffer16BitAccess = ctx->caps.storage_16bit,
	};
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
		.pNext = &storage16,
		.shaderFloat16 = ctx->caps.shader_float16,
	};
	VkPhysicalDeviceFeatures2 features = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
		.pNext = &f16,
	};
	VkDeviceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = &features,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &queue,
	};
	VkResult r = vkCreateDevice(ctx->physical, &info, NULL, &ctx->device);
	if (r != VK_SUCCESS)
		return rf_vk_fail(r, "creating the Vulkan device");
	vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
	VkPipelineCacheCreateInfo cache = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
	r = vkCreatePipelineCache(ctx->device, &cache, NULL, &ctx->pipeline_cache);
	if (r != VK_SUCCESS)
		return rf_vk_fail(r, "creating a pipeline cache");
	return RF_OK;
}

static void destroy(rf_ctx *ctx)
{
	if (ctx->device) {
		vkDeviceWaitIdle(ctx->device);
		rf_frames_fini(ctx);
		rf_pipelines_fini(ctx);
		rf_memory_fini(ctx);
		vkDestroyDevice(ctx->device, NULL);
	}
	rf_profile_fini(ctx);
	rf_instance_destroy(&ctx->inst);
	free(ctx);
}

enum rf_status rf_ctx_create(const struct rf_ctx_options *opt, rf_ctx **out)
{
	*out = NULL;
	struct rf_ctx_options none = { 0 };
	if (!opt)
		opt = &none;
	rf_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return rf_error(RF_ERR_OOM_HOST, "allocating a context");
	ctx->refcount = 1;
	enum rf_status s = rf_instance_create(opt->validation || rf_validation_requested(), &ctx->inst);
	if (s == RF_OK)
		s = pick_physical(ctx, opt->device);
	if (s == RF_OK)
		s = limit_storage_range(&ctx->caps);
	if (s == RF_OK)
		s = limit_heap_budget(&ctx->caps);
	if (s == RF_OK)
		s = create_device(ctx);
	if (s == RF_OK)
		s = rf_memory_init(ctx);
	if (s == RF_OK)
		s = rf_frames_init(ctx);
	if (s != RF_OK) {
		destroy(ctx);
		return s;
	}
	rf_profile_init(ctx, opt->profile);
	rf_log(RF_LOG_INFO, "using %s (%s, %s)", ctx->caps.name,
	       rf_device_class_str(ctx->caps.device_class), ctx->caps.driver);
	*out = ctx;
	return RF_OK;
}

rf_ctx *rf_ctx_retain(rf_ctx *ctx)
{
	if (ctx)
		ctx->refcount++;
	return ctx;
}

void rf_ctx_release(rf_ctx *ctx)
{
	if (!ctx || --ctx->refcount > 0)
		return;
	if (!ctx->lost)
		rf_ctx_finish(ctx);
	destroy(ctx);
}

const struct rf_caps *rf_ctx_caps(const rf_ctx *ctx)
{
	return &ctx->caps;
}

enum rf_status rf_ctx_submit(rf_ctx *ctx)
{
	return rf_frames_submit(ctx);
}

enum rf_status rf_ctx_finish(rf_ctx *ctx)
{
	return rf_frames_finish(ctx);
}

enum rf_status rf_ctx_check(rf_ctx *ctx)
{
	if (ctx->lost)
		return rf_error(RF_ERR_DEVICE_LOST, "the Vulkan device was lost");
	return RF_OK;
}

uint32_t rf_ctx_validation_messages(const rf_ctx *ctx)
{
	return ctx->inst.validation_messages;
}

bool rf_ctx_validation_enabled(const rf_ctx *ctx)
{
	return ctx->inst.validation;
}
