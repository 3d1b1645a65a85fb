/*
** device_internal.h: the Vulkan instance wrapper shared by device.c and context.c.
** Runtime-internal (L1): nothing above runtime/ includes it.
*/
#ifndef RF_RUNTIME_DEVICE_INTERNAL_H
#define RF_RUNTIME_DEVICE_INTERNAL_H

#include <vulkan/vulkan.h>
#include "device.h"

struct rf_instance {
	VkInstance instance;
	VkDebugUtilsMessengerEXT messenger;
	bool validation;
	uint32_t validation_messages;    /* warnings and errors the layer reported */
};

/* REFRACT_VALIDATION=1 asks for the Khronos validation layer. */
bool rf_validation_requested(void);
enum rf_status rf_instance_create(bool validation, struct rf_instance *inst);
void rf_instance_destroy(struct rf_instance *inst);
void rf_caps_collect(VkPhysicalDevice pd, uint32_t index, struct rf_caps *caps);
/* Sets caps->gemm and caps->rows from REFRACT_GEMM and REFRACT_KERNELS; RF_ERR_INVALID
** naming the variable and the accepted values for an unknown REFRACT_GEMM. */
enum rf_status rf_caps_read_env(struct rf_caps *caps);

#endif
