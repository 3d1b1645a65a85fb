/*
** rf_base.h: types every layer shares: the status codes, sized integers and the
** assertion macro for programmer errors. Runtime layer (L0).
*/
#ifndef RF_RUNTIME_RF_BASE_H
#define RF_RUNTIME_RF_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define RF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RF_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RF_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define RF_ALIGN_UP(a, b) (RF_CEIL_DIV(a, b) * (b))

/* Every fallible function returns one of these; RF_OK is zero. The message that
** goes with a failure is in rf_error_message() (status.h). */
enum rf_status {
	RF_OK = 0,
	RF_ERR_INVALID,      /* bad argument: wrong shape, dtype, index, option */
	RF_ERR_IO,           /* a file could not be opened, read or written */
	RF_ERR_FORMAT,       /* a file's contents are malformed */
	RF_ERR_UNSUPPORTED,  /* valid, but not something refract handles */
	RF_ERR_OOM_HOST,     /* malloc failed */
	RF_ERR_OOM_DEVICE,   /* device memory exhausted */
	RF_ERR_VULKAN,       /* a Vulkan call failed */
	RF_ERR_NO_DEVICE,    /* no Vulkan device (or no driver) */
	RF_ERR_DEVICE_LOST,  /* the device was lost; sticky for the context */
	RF_ERR_INTERRUPTED,  /* the user asked to stop (SIGINT) */
	RF_ERR_INTERNAL,     /* refract broke its own contract (a bug): e.g. a launcher's push
				constants do not match its shader */
};

/* Programmer errors only (broken invariants), never I/O, OOM or driver errors.
** Kept in release builds: every use is cheap. */
void rf_assert_fail(const char *expr, const char *file, int line);
#define RF_ASSERT(e) ((e) ? (void)0 : rf_assert_fail(#e, __FILE__, __LINE__))

#endif
