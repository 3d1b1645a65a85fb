/*
** log.c: levelled diagnostics on stderr. Runtime layer (L0).
*/
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level(void)
{
	static int level = -1;
	if (level < 0) {
		const char *env = getenv("REFRACT_LOG");
		level = RF_LOG_WARN;
		if (env) {
			if (!strcmp(env, "error")) level = RF_LOG_ERROR;
			else if (!strcmp(env, "info")) level = RF_LOG_INFO;
			else if (!strcmp(env, "debug")) level = RF_LOG_DEBUG;
		}
	}
	return level;
}

int rf_log_enabled(enum rf_log_level level)
{
	return (int)level <= current_level();
}

void rf_log(enum rf_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	if (!rf_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "refract: %s: ", names[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
