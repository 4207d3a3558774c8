/*
 * What changed between the configuration a target runs and the one it is
 * asked to reload (doc/configuration.md, "Reloading"): subsystems added and
 * removed, and per subsystem kept, namespaces added and removed and whether
 * its host list or host keys changed; the log level. Everything else that
 * differs cannot change while the target runs, and the whole reload is
 * refused with a message "FILE: [SECTION] KEY: ..." naming the first such
 * key. Pure: no subsystem is looked at or touched (server/reload.c applies
 * the result).
 */
#ifndef ZNSTGT_CONFIG_DIFF_H
#define ZNSTGT_CONFIG_DIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* One subsystem that is added, removed or changed. */
struct subsys_diff {
	int old_i;                   /* index in the running configuration, -1: added */
	int new_i;                   /* index in the new one, -1: removed */
	bool hosts;                  /* allow_any_host, require_tls, the host list or a [host]
				      * key changed */
	uint32_t ns_add[CFG_MAX_NAMESPACES];    /* NSIDs only in the new configuration */
	int nr_ns_add;
	uint32_t ns_remove[CFG_MAX_NAMESPACES]; /* NSIDs only in the running one */
	int nr_ns_remove;
};

struct config_diff {
	struct subsys_diff *subsys;  /* in the order: removed, then kept or added (new order) */
	int nr_subsys;
	bool log_level;
};

/*
 * Compare the running configuration cur with next. 0 and *d (free it with
 * config_diff_free) when every difference can be applied live; -1 with the
 * reason in err when one cannot (nothing to free then).
 */
int config_diff(const struct target_config *cur, const struct target_config *next,
		struct config_diff *d, char *err, size_t errlen);
void config_diff_free(struct config_diff *d);
/* The first key whose value differs between two configurations of one
 * namespace ("size", "path", ...), or NULL when they are the same. */
const char *config_ns_key_changed(const struct ns_config *a, const struct ns_config *b);
/* True when the two configurations serve the same things. */
bool config_diff_empty(const struct config_diff *d);

#endif
