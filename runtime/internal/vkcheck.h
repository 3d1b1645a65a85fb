/*
** vkcheck.h: VkResult names and the one mapping from VkResult to rf_status.
** Runtime layer (L1); only runtime/ includes Vulkan headers.
*/
#ifndef RF_RUNTIME_VKCHECK_H
#define RF_RUNTIME_VKCHECK_H

#include <vulkan/vulkan.h>
#include "rf_base.h"

const char *rf_vkresult_str(VkResult r);

/* Maps a failed VkResult to a status and records "<what>: <VK_ERROR_NAME>". */
enum rf_status rf_vk_fail(VkResult r, const char *what);

#endif
