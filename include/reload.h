/*
 * Live reload (SIGHUP, the control socket's `reload`; doc/configuration.md,
 * "Reloading"): read the configuration file again, compare it with what
 * runs (config_diff.h) and apply what can change without a restart:
 * subsystems and namespaces added and removed, hosts and their keys, the
 * log level. All or nothing: a change that cannot apply live refuses the
 * whole reload before anything changes, and a step that fails while
 * applying (a namespace's files cannot be made) takes back the steps
 * before it.
 *
 * Runs on the main loop, as the control socket's requests do: only that
 * thread adds and removes subsystems, so nothing changes between the
 * checks and the changes. It blocks that loop while namespaces open and
 * close.
 */
#ifndef ZNSTGT_RELOAD_H
#define ZNSTGT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* running: the configuration the target was started with, replaced by
 * each successful reload (it must outlive them); from_file: false for the
 * built-in one, which has no file to re-read. */
void reload_init(struct target_config *running, bool from_file);

/* Reload. 0 with a summary of what changed in msg, or -1 with why nothing
 * changed (or, rarely, what could not be taken back). */
int reload_run(char *msg, size_t msglen);

#endif
