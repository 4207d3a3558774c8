/*
 * Logging to stderr with levels. One line per call, written with a single
 * write(2) so lines from different threads never interleave.
 */
#ifndef ZNSTGT_LOG_H
#define ZNSTGT_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                               \
	do {                                                         \
		if (log_get_level() >= LOG_DEBUG)                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);             \
	} while (0)

#endif
