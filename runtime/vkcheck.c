/*
** vkcheck.c: VkResult names and the VkResult -> rf_status mapping. Runtime layer (L1).
*/
#include "vkcheck.h"
#include "status.h"

#define STR(r) case r: return #r

const char *rf_vkresult_str(VkResult r)
{
	switch (r) {
	STR(VK_SUCCESS);
	STR(VK_NOT_READY);
	STR(VK_TIMEOUT);
	STR(VK_INCOMPLETE);
	STR(VK_ERROR_OUT_OF_HOST_MEMORY);
	STR(VK_ERROR_OUT_OF_DEVICE_MEMORY);
	STR(VK_ERROR_INITIALIZATION_FAILED);
	STR(VK_ERROR_DEVICE_LOST);
	STR(VK_ERROR_MEMORY_MAP_FAILED);
	STR(VK_ERROR_LAYER_NOT_PRESENT);
	STR(VK_ERROR_EXTENSION_NOT_PRESENT);
	STR(VK_ERROR_FEATURE_NOT_PRESENT);
	STR(VK_ERROR_INCOMPATIBLE_DRIVER);
	STR(VK_ERROR_TOO_MANY_OBJECTS);
	STR(VK_ERROR_FORMAT_NOT_SUPPORTED);
	STR(VK_ERROR_FRAGMENTED_POOL);
	STR(VK_ERROR_OUT_OF_POOL_MEMORY);
	STR(VK_ERROR_INVALID_SHADER_NV);
	default: return "VK_ERROR_UNKNOWN";
	}
}
#undef STR

enum rf_status rf_vk_fail(VkResult r, const char *what)
{
	enum rf_status s = RF_ERR_VULKAN;
	if (r == VK_ERROR_DEVICE_LOST)
		s = RF_ERR_DEVICE_LOST;
	else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
		s = RF_ERR_OOM_DEVICE;
	else if (r == VK_ERROR_OUT_OF_HOST_MEMORY)
		s = RF_ERR_OOM_HOST;
	else if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
		s = RF_ERR_NO_DEVICE;
	return rf_error(s, "%s: %s", what, rf_vkresult_str(r));
}
