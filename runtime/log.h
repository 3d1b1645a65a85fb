/*
** log.h: levelled diagnostics on stderr; the only place in the libraries that prints.
** REFRACT_LOG=error|warn|info|debug picks the level (default warn). Runtime layer (L0).
*/
#ifndef RF_RUNTIME_LOG_H
#define RF_RUNTIME_LOG_H

enum rf_log_level { RF_LOG_ERROR, RF_LOG_WARN, RF_LOG_INFO, RF_LOG_DEBUG };

void rf_log(enum rf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rf_log_enabled(enum rf_log_level level);

#endif
