/*
** device.h: what a Vulkan device can do (rf_caps, filled in one place so that no other
** code tests vendor IDs), listing the devices, and choosing one. Runtime layer (L1).
*/
#ifndef RF_RUNTIME_DEVICE_H
#define RF_RUNTIME_DEVICE_H

#include "rf_base.h"

enum rf_device_class {
	RF_DEVICE_DISCRETE,
	RF_DEVICE_INTEGRATED,
	RF_DEVICE_VIRTUAL,
	RF_DEVICE_CPU,
	RF_DEVICE_OTHER,
};

/* Kernel choices forced by the environment, read once when a context is created: the
** kill switches for a fast path that misbehaves on some driver, and how the tests run the
** GPU layouts on a CPU device. AUTO lets the device class decide. */
enum rf_gemm_choice {
	RF_GEMM_AUTO,        /* REFRACT_GEMM unset, empty or "auto" */
	RF_GEMM_LANES,       /* "lanes" */
	RF_GEMM_TILED,       /* "tiled" */
	RF_GEMM_GENERIC,     /* "generic" */
	RF_GEMM_HOST,        /* "host": the host's BLAS on host-visible device memory */
};
enum rf_rows_choice {
	RF_ROWS_AUTO,        /* REFRACT_KERNELS unset or anything else */
	RF_ROWS_CPU,         /* "cpu": a lane per row, no shared memory */
	RF_ROWS_GPU,         /* "gpu": a workgroup per row, shared memory and barriers */
};

/* Everything kernels and allocators need to know about a device. */
struct rf_caps {
	uint32_t index;                  /* position in the instance's device list */
	char name[256];
	char driver[256];                /* driver name and info, e.g. "llvmpipe: Mesa 22.3.6" */
	enum rf_device_class device_class;
	uint32_t vendor_id, device_id;
	uint32_t api_version;
	uint64_t device_local_heap;      /* bytes in the largest device-local heap */
	uint64_t heap_budget;            /* what refract lets itself allocate (<= heap) */
	uint64_t max_allocation;         /* maxMemoryAllocationSize */
	uint64_t max_storage_range;      /* maxStorageBufferRange (lavapipe: 128 MiB) */
	uint32_t max_texel_elements;     /* maxTexelBufferElements */
	uint32_t storage_align;          /* minStorageBufferOffsetAlignment */
	uint32_t texel_align;            /* minTexelBufferOffsetAlignment */
	uint32_t max_shared_memory;      /* maxComputeSharedMemorySize */
	uint32_t max_workgroup_invocations;
	uint32_t max_workgroup_count[3];
	uint32_t max_push_constants;
	uint32_t subgroup_size;
	bool shader_float16;             /* arithmetic in f16 */
	bool storage_16bit;              /* 16-bit values in storage buffers */
	bool cooperative_matrix;         /* VK_KHR_cooperative_matrix */
	bool timestamps;
	float timestamp_period_ns;
	bool unified_memory;             /* device-local memory the host can map (no staging) */
	/* Set by rf_ctx_create from the environment (zero, AUTO, in rf_devices_list). */
	enum rf_gemm_choice gemm;        /* REFRACT_GEMM */
	enum rf_rows_choice rows;        /* REFRACT_KERNELS */
};

const char *rf_device_class_str(enum rf_device_class c);

/* Lists the devices of the system: fills up to `max` entries, sets *count to how many
** exist. Creates and destroys its own Vulkan instance. RF_ERR_NO_DEVICE when there is
** no driver or no device. */
enum rf_status rf_devices_list(struct rf_caps *out, uint32_t max, uint32_t *count);

/* Picks a device: `want` (an index or a case-insensitive name substring; NULL means the
** REFRACT_DEVICE variable, and if that is unset the best class: discrete, integrated,
** virtual, CPU). Sets *index into `caps`. */
enum rf_status rf_device_choose(const struct rf_caps *caps, uint32_t count, const char *want,
				uint32_t *index);

/* Validation-layer warnings and errors reported so far in this process, over every
** context (0 unless REFRACT_VALIDATION=1 and the layer is installed). */
uint32_t rf_validation_total(void);

#endif
