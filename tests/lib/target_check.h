/*
 * target_proc.h steps that a CMocka test cannot go on without: each fails
 * the running test with the step's reason. Header only, so that the
 * library itself needs no CMocka; include cmocka.h before it.
 */
#ifndef ZNSTGT_TARGET_CHECK_H
#define ZNSTGT_TARGET_CHECK_H

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

/* target_finish (stop the daemon cleanly, remove dir), or fail. */
static inline void target_finish_ok(struct target_proc *t, const char *dir)
{
	char why[512];

	if (target_finish(t, dir, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

#endif
