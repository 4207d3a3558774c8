/*
 * Error messages for callers that report failures as a line of text (ns_open,
 * config_load, ...): format into err and return -1, so that a failing path
 * reads `return errmsg(err, errlen, "...", ...);`.
 */
#ifndef ZNSTGT_ERRMSG_H
#define ZNSTGT_ERRMSG_H

#include <stddef.h>

int errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
