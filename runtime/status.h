/*
** status.h: the message that explains the last failure, kept per thread so that
** decoding workers and the main thread never overwrite each other's reasons.
** Runtime layer (L0).
*/
#ifndef RF_RUNTIME_STATUS_H
#define RF_RUNTIME_STATUS_H

#include "rf_base.h"

/* Records a formatted message for `status` and returns `status`, so a failure site
** reads `return rf_error(RF_ERR_FORMAT, "%s: header too long", path);`. */
enum rf_status rf_error(enum rf_status status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prepends context to the current message: "loading model: <previous message>". */
enum rf_status rf_error_wrap(enum rf_status status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The message of this thread's last rf_error() ("" if none). Valid until the next call. */
const char *rf_error_message(void);
void rf_error_clear(void);

/* Short name of a status ("invalid argument", "device lost", ...). */
const char *rf_status_str(enum rf_status status);

#endif
