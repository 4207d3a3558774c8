/*
 * target_proc.h steps that a CMocka test cannot go on without: each fails
 * the running test with the step's reason. Header only, so that the
 * library itself needs no CMocka; include cmocka.h before it.
 */
#ifndef ZNSTGT_TARGET_CHECK_H
#define ZNSTGT_TARGET_CHECK_H

#include <stdio.h>

#include "target_proc.h"

/* target_write_file, or fail. */
static inline void target_write_ok(const char *dir, const char *name, const char *text)
{
	char why[512];

	if (target_write_file(dir, name, text, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

/* target_dir, or fail. */
static inline void target_dir_ok(struct target_proc *t, char *dir, char *port, size_t portlen)
{
	char why[512];

	if (target_dir(t, dir, port, portlen, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

/* target_start, or fail with the daemon's last log lines shown. */
static inline void target_start_ok(struct target_proc *t, bool format)
{
	char why[512];

	if (target_start(t, format, why, sizeof(why)) != 0) {
		target_show_log(t, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
}

/* target_ctl with the request made from fmt (as for printf), or fail. */
static inline __attribute__((format(printf, 4, 5)))
void target_ctl_ok(const struct target_proc *t, char *reply, size_t len, const char *fmt, ...)
{
	char req[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	if (target_ctl(t, req, reply, len) != 0)
		fail_msg("%s: %s", req, reply);
}

/* target_finish (stop the daemon cleanly, remove dir), or fail. */
static inline void target_finish_ok(struct target_proc *t, const char *dir)
{
	char why[512];

	if (target_finish(t, dir, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

#endif
