/*
** status.c: per-thread failure messages and status names. Runtime layer (L0).
*/
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Room for two paths of PATH_MAX (4096) and the words around them: a long path must not
** push the reason off the end of its message. */
#define RF_ERROR_MAX 10240

static _Thread_local char last_message[RF_ERROR_MAX];

enum rf_status rf_error(enum rf_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof last_message, fmt, ap);
	va_end(ap);
	return status;
}

enum rf_status rf_error_wrap(enum rf_status status, const char *fmt, ...)
{
	char prefix[RF_ERROR_MAX];
	char previous[RF_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(previous, last_message, sizeof previous);
	snprintf(last_message, sizeof last_message, "%s: %s", prefix, previous);
	return status;
}

const char *rf_error_message(void)
{
	return last_message;
}

void rf_error_clear(void)
{
	last_message[0] = '\0';
}

const char *rf_status_str(enum rf_status status)
{
	switch (status) {
	case RF_OK: return "ok";
	case RF_ERR_INVALID: return "invalid argument";
	case RF_ERR_IO: return "I/O error";
	case RF_ERR_FORMAT: return "malformed file";
	case RF_ERR_UNSUPPORTED: return "unsupported";
	case RF_ERR_OOM_HOST: return "out of host memory";
	case RF_ERR_OOM_DEVICE: return "out of device memory";
	case RF_ERR_VULKAN: return "Vulkan error";
	case RF_ERR_NO_DEVICE: return "no Vulkan device";
	case RF_ERR_DEVICE_LOST: return "device lost";
	case RF_ERR_INTERRUPTED: return "interrupted";
	case RF_ERR_INTERNAL: return "internal error";
	}
	return "unknown status";
}
