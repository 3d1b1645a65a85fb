/*
** device.c: Vulkan instance creation, device enumeration, capability collection and the
** choice of device. Runtime layer (L1).
*/
#include "device.h"
#include "device_internal.h"
#include "status.h"
#include "log.h"
#include "vkcheck.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *rf_device_class_str(enum rf_device_class c)
{
	switch (c) {
	case RF_DEVICE_DISCRETE: return "discrete GPU";
	case RF_DEVICE_INTEGRATED: return "integrated GPU";
	case RF_DEVICE_VIRTUAL: return "virtual GPU";
	case RF_DEVICE_CPU: return "CPU";
	default: return "other";
	}
}

static enum rf_device_class class_of(VkPhysicalDeviceType t)
{
	switch (t) {
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return RF_DEVICE_DISCRETE;
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return RF_DEVICE_INTEGRATED;
	case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return RF_DEVICE_VIRTUAL;
	case VK_PHYSICAL_DEVICE_TYPE_CPU: return RF_DEVICE_CPU;
	default: return RF_DEVICE_OTHER;
	}
}

static bool layer_available(const char *name)
{
	uint32_t n = 0;
	if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkLayerProperties *props = calloc(n, sizeof *props);
	if (!props)
		return false;
	bool found = false;
	if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
		for (uint32_t i = 0; i < n && !found; i++)
			found = !strcmp(props[i].layerName, name);
	free(props);
	return found;
}

static uint32_t validation_total;

uint32_t rf_validation_total(void)
{
	return validation_total;
}

bool rf_validation_requested(void)
{
	const char *env = getenv("REFRACT_VALIDATION");
	return env && *env && strcmp(env, "0") != 0;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(
	VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
	const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
	struct rf_instance *inst = user;
	(void)type;
	if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
		inst->validation_messages++;
		validation_total++;
		rf_log(RF_LOG_ERROR, "Vulkan validation: %s", data->pMessage);
	}
	return VK_FALSE;
}

enum rf_status rf_instance_create(bool validation, struct rf_instance *inst)
{
	memset(inst, 0, sizeof *inst);
	if (validation && !layer_available(RF_VALIDATION_LAYER)) {
		rf_log(RF_LOG_WARN, "REFRACT_VALIDATION is set but %s is not installed",
		       RF_VALIDATION_LAYER);
		validation = false;
	}
	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "refract",
		.apiVersion = VK_API_VERSION_1_2,
	};
	const char *layers[] = { RF_VALIDATION_LAYER };
	const char *extensions[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
	VkDebugUtilsMessengerCreateInfoEXT messenger = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
				   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = on_validation_message,
		.pUserData = inst,
	};
	VkInstanceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pNext = validation ? &messenger : NULL,
		.pApplicationInfo = &app,
		.enabledLayerCount = validation ? 1 : 0,
		.ppEnabledLayerNames = layers,
		.enabledExtensionCount = validation ? 1 : 0,
		.ppEnabledExtensionNames = extensions,
	};
	VkResult r = vkCreateInstance(&info, NULL, &inst->instance);
	if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
		return rf_error(RF_ERR_NO_DEVICE,
				"no Vulkan driver found (vkCreateInstance: %s); on a machine without a GPU "
				"install Mesa's lavapipe (Debian package mesa-vulkan-drivers)",
				rf_vkresult_str(r));
	if (r != VK_SUCCESS)
		return rf_vk_fail(r, "creating the Vulkan instance");
	if (validation) {
		PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
			vkGetInstanceProcAddr(inst->instance, "vkCreateDebugUtilsMessengerEXT");
		if (create && create(inst->instance, &messenger, NULL, &inst->messenger) == VK_SUCCESS)
			inst->validation = true;
	}
	return RF_OK;
}

void rf_instance_destroy(struct rf_instance *inst)
{
	if (!inst->instance)
		return;
	if (inst->messenger) {
		PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
			vkGetInstanceProcAddr(inst->instance, "vkDestroyDebugUtilsMessengerEXT");
		if (destroy)
			destroy(inst->instance, inst->messenger, NULL);
	}
	vkDestroyInstance(inst->instance, NULL);
	inst->instance = VK_NULL_HANDLE;
}

static bool has_extension(VkPhysicalDevice pd, const char *name)
{
	uint32_t n = 0;
	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS)
		return false;
	VkExtensionProperties *ext = calloc(n ? n : 1, sizeof *ext);
	if (!ext)
		return false;
	bool found = false;
	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, ext) == VK_SUCCESS)
		for (uint32_t i = 0; i < n && !found; i++)
			found = !strcmp(ext[i].extensionName, name);
	free(ext);
	return found;
}

static void collect_memory_caps(VkPhysicalDevice pd, struct rf_caps *c)
{
	VkPhysicalDeviceMemoryProperties mp;
	vkGetPhysicalDeviceMemoryProperties(pd, &mp);
	for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
		if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
		    mp.memoryHeaps[h].size > c->device_local_heap)
			c->device_local_heap = mp.memoryHeaps[h].size;
	/* Unified: some device-local type is also host visible and coherent over the whole
	** device-local heap, as on CPUs and integrated GPUs. (A discrete GPU's 256 MiB BAR
	** window does not count: its heap is smaller than the device-local one.) */
	for (uint32_t t = 0; t < mp.memoryTypeCount; t++) {
		VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
					     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
					     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
		uint32_t heap = mp.memoryTypes[t].heapIndex;
		if ((mp.memoryTypes[t].propertyFlags & want) == want &&
		    mp.memoryHeaps[heap].size >= c->device_local_heap)
			c->unified_memory = true;
	}
	/* Leave room for the driver and for staging: use at most 90% of the heap. */
	c->heap_budget = c->device_local_heap / 10 * 9;
}

void rf_caps_collect(VkPhysicalDevice pd, uint32_t index, struct rf_caps *c)
{
	memset(c, 0, sizeof *c);
	VkPhysicalDeviceDriverProperties driver = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
	};
	VkPhysicalDeviceSubgroupProperties subgroup = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
		.pNext = &driver,
	};
	VkPhysicalDeviceMaintenance3Properties maint3 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
		.pNext = &subgroup,
	};
	VkPhysicalDeviceProperties2 props = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
		.pNext = &maint3,
	};
	vkGetPhysicalDeviceProperties2(pd, &props);
	const VkPhysicalDeviceLimits *lim = &props.properties.limits;

	c->index = index;
	snprintf(c->name, sizeof c->name, "%s", props.properties.deviceName);
	snprintf(c->driver, sizeof c->driver, "%s: %s", driver.driverName, driver.driverInfo);
	c->device_class = class_of(props.properties.deviceType);
	c->vendor_id = props.properties.vendorID;
	c->device_id = props.properties.deviceID;
	c->api_version = props.properties.apiVersion;
	c->max_allocation = maint3.maxMemoryAllocationSize;
	c->max_storage_range = lim->maxStorageBufferRange;
	c->max_texel_elements = lim->maxTexelBufferElements;
	c->storage_align = (uint32_t)lim->minStorageBufferOffsetAlignment;
	c->texel_align = (uint32_t)lim->minTexelBufferOffsetAlignment;
	c->max_shared_memory = lim->maxComputeSharedMemorySize;
	c->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
	for (int i = 0; i < 3; i++)
		c->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
	c->max_push_constants = lim->maxPushConstantsSize;
	c->subgroup_size = subgroup.subgroupSize ? subgroup.subgroupSize : 1;
	c->timestamps = lim->timestampComputeAndGraphics;
	c->timestamp_period_ns = lim->timestampPeriod;

	VkPhysicalDevice16BitStorageFeatures storage16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
	};
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
		.pNext = &storage16,
	};
	VkPhysicalDeviceFeatures2 feats = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
		.pNext = &f16,
	};
	vkGetPhysicalDeviceFeatures2(pd, &feats);
	c->shader_float16 = f16.shaderFloat16;
	c->storage_16bit = storage16.storageBuffer16BitAccess;
	c->cooperative_matrix = has_extension(pd, "VK_KHR_cooperative_matrix");
	collect_memory_caps(pd, c);
}

enum rf_status rf_caps_read_env(struct rf_caps *c)
{
	static const char *const gemm_names[] = {
		[RF_GEMM_AUTO] = "auto", [RF_GEMM_LANES] = "lanes", [RF_GEMM_TILED] = "tiled",
		[RF_GEMM_GENERIC] = "generic", [RF_GEMM_HOST] = "host",
	};
	const char *rows = getenv("REFRACT_KERNELS");
	c->rows = !rows ? RF_ROWS_AUTO : !strcmp(rows, "cpu") ? RF_ROWS_CPU
		: !strcmp(rows, "gpu") ? RF_ROWS_GPU : RF_ROWS_AUTO;
	const char *gemm = getenv("REFRACT_GEMM");
	c->gemm = RF_GEMM_AUTO;
	if (!gemm || !*gemm)
		return RF_OK;
	for (size_t i = 0; i < RF_ARRAY_LEN(gemm_names); i++)
		if (!strcmp(gemm, gemm_names[i])) {
			c->gemm = (enum rf_gemm_choice)i;
			return RF_OK;
		}
	return rf_error(RF_ERR_INVALID, "REFRACT_GEMM=%s: expected auto, host, lanes, tiled or generic", gemm);
}

enum rf_status rf_devices_list(struct rf_caps *out, uint32_t max, uint32_t *count)
{
	struct rf_instance inst;
	enum rf_status s = rf_instance_create(false, &inst);
	if (s != RF_OK)
		return s;
	uint32_t n = 0;
	VkPhysicalDevice pds[32];
	VkResult r = vkEnumeratePhysicalDevices(inst.instance, &n, NULL);
	if (r == VK_SUCCESS) {
		n = RF_MIN(n, (uint32_t)RF_ARRAY_LEN(pds));
		r = vkEnumeratePhysicalDevices(inst.instance, &n, pds);
	}
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
		s = rf_vk_fail(r, "listing Vulkan devices");
		goto out_instance;
	}
	if (n == 0) {
		s = rf_error(RF_ERR_NO_DEVICE, "the Vulkan driver reports no device");
		goto out_instance;
	}
	for (uint32_t i = 0; i < n && i < max; i++)
		rf_caps_collect(pds[i], i, &out[i]);
	*count = n;
out_instance:
	rf_instance_destroy(&inst);
	return s;
}

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++) {
		size_t i = 0;
		while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
			i++;
		if (i == n)
			return true;
	}
	return n == 0;
}

enum rf_status rf_device_choose(const struct rf_caps *caps, uint32_t count, const char *want,
				uint32_t *index)
{
	if (!want)
		want = getenv("REFRACT_DEVICE");
	if (want && *want) {
		char *end;
		long i = strtol(want, &end, 10);
		if (*end == '\0') {
			if (i < 0 || (uint32_t)i >= count)
				return rf_error(RF_ERR_INVALID,
						"device index %ld is out of range: %u device(s) found "
						"(see `refract devices`)", i, count);
			*index = (uint32_t)i;
			return RF_OK;
		}
		for (uint32_t k = 0; k < count; k++)
			if (contains_nocase(caps[k].name, want)) {
				*index = k;
				return RF_OK;
			}
		return rf_error(RF_ERR_INVALID, "no Vulkan device's name contains \"%s\" "
				"(see `refract devices`)", want);
	}
	static const enum rf_device_class order[] = {
		RF_DEVICE_DISCRETE, RF_DEVICE_INTEGRATED, RF_DEVICE_VIRTUAL, RF_DEVICE_CPU, RF_DEVICE_OTHER,
	};
	for (size_t o = 0; o < RF_ARRAY_LEN(order); o++)
		for (uint32_t k = 0; k < count; k++)
			if (caps[k].device_class == order[o]) {
				*index = k;
				return RF_OK;
			}
	return rf_error(RF_ERR_NO_DEVICE, "no Vulkan device");
}
