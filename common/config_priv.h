/*
 * Internals shared by the configuration modules (not part of the API in
 * include/config.h):
 *
 *   config_ini.c     reads one INI file through inih and dispatches keys to
 *                    per-section key tables; formats every error message
 *   config_value.c   value syntax: sizes, booleans, numbers, NQNs, UUIDs,
 *                    listen addresses, comma lists, paths
 *   config_subsys.c  subsystem files: [subsystem], [vfio-user], the sections
 *   config_ns.c      [namespace N]: keys, zone geometry and limits
 *   config.c         znstgt.ini: [target], include globs, checks across files
 */
#ifndef ZNSTGT_CONFIG_PRIV_H
#define ZNSTGT_CONFIG_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define CFG_WELL_KNOWN_DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"
/* UNIX socket paths must fit sockaddr_un.sun_path with its NUL. */
#define CFG_SOCKET_PATH_MAX 108

/* ---- config_ini.c ---- */

/*
 * One key a section accepts. set() gets the value (never empty) and returns
 * NULL, or a short statement of what is wrong with it, either a literal or
 * text written into why. The message the user sees is
 *   FILE: [SECTION] KEY: <what is wrong> (expected <expect>)
 */
struct cfg_key {
	const char *name;
	const char *expect;
	bool repeat;                 /* lists: the key may be given many times */
	const char *(*set)(void *obj, const char *value, char *why, size_t whylen);
};

/* The section being read: which keys it takes and what they fill in. */
struct cfg_section {
	const struct cfg_key *keys;  /* NULL: the header was rejected, skip its keys */
	size_t nr_keys;
	void *obj;                   /* passed to every set() */
	uint32_t *seen;              /* bit i: keys[i] was given (duplicate and default checks) */
};

struct cfg_file;

/*
 * Called for each "[name]" header. Fills *sec, or reports the problem with
 * cfg_error() (unknown or repeated section) and leaves sec->keys NULL.
 */
typedef void (*cfg_open_section_fn)(struct cfg_file *f, const char *name,
				    struct cfg_section *sec);

/* One INI file being read. Keeps only the first error: it is the one to fix,
 * and later ones are often its consequences. */
struct cfg_file {
	const char *name;            /* as printed in messages */
	char *err;
	size_t errlen;
	bool failed;
	/* private to config_ini.c */
	FILE *fp;
	unsigned line;
	char *buf;
	size_t bufcap;
	bool in_section;
	char section[CFG_NQN_MAX + 8]; /* "host " and an NQN fit */
	struct cfg_section cur;
	cfg_open_section_fn open_section;
	void *ctx;
};

/*
 * Open the configuration file path for reading, or record why not in err
 * and return NULL. Only a regular file is accepted: a FIFO would block the
 * start (or the control socket's add-subsys) until someone writes to it, and
 * a device such as /dev/zero never ends a line.
 */
FILE *cfg_open(const char *path, char *err, size_t errlen);

/* Parse fp (named name in messages); open_section gets ctx in f->ctx.
 * Returns 0, or -1 with the message in err. Does not close fp. */
int cfg_parse(FILE *fp, const char *name, cfg_open_section_fn open_section, void *ctx,
	      char *err, size_t errlen);

/* Record an error "FILE: [SECTION] KEY: message" (section and key may be
 * NULL) unless one is already recorded. */
void cfg_error(struct cfg_file *f, const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Same, for callers that have no cfg_file (checks after all files are read). */
void cfg_error_at(char *err, size_t errlen, const char *file, const char *section,
		  const char *key, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* ---- config_tls.c: require_tls ---- */

/* In one subsystem file: every host holds a PSK. 0, or -1 with err. */
int cfg_subsys_tls_check(const struct subsys_config *sc, const char *file, char *err,
			 size_t errlen);
/* Across files: a subsystem that requires TLS has a tls_listen to use. */
int cfg_tls_listeners_check(const struct target_config *cfg, char *err, size_t errlen);

/* ---- config_value.c ---- */

int cfg_parse_bool(const char *s, bool *out);
/* Decimal, no sign, within [min, max]. */
int cfg_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* A numeric ID as written in a section name: like cfg_parse_u32, but
 * without leading zeros ("01" is refused). */
int cfg_parse_id(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Canonical 8-4-4-4-12 hex form, bytes in the order written (RFC 4122). */
int cfg_parse_uuid(const char *s, uint8_t out[16]);
/* NULL if s is a valid subsystem or host NQN, else what is wrong. */
const char *cfg_nqn_problem(const char *s, char *why, size_t whylen);
/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT"; NULL on success, else what is wrong. */
const char *cfg_parse_listener(const char *s, struct listener_config *out);

/*
 * Split a comma list, trimming blanks around items, and call fn for each.
 * Stops at the first item fn rejects (returns its problem) or at an empty
 * item. Returns NULL if every item was accepted.
 */
const char *cfg_each_item(const char *list, void *arg,
			  const char *(*fn)(void *arg, const char *item, char *why, size_t whylen),
			  char *why, size_t whylen);

/* Writes "\"VALUE\" WHAT" into why and returns it: the value as written,
 * then what is wrong with it. */
const char *cfg_bad(char *why, size_t whylen, const char *value, const char *what);

/* Human form of a byte count for messages: "64M" when exact, else "65537". */
const char *cfg_fmt_size(uint64_t v, char buf[32]);

/* dir/rel, or rel alone when it is absolute or dir is "."; -1 if it does not
 * fit. out may be rel itself. */
int cfg_join_path(char *out, size_t outlen, const char *dir, const char *rel);
/* Whether the relative path rel climbs above its base with "..", e.g.
 * "../x" or "a/../../x" (an absolute path never does). */
bool cfg_path_escapes(const char *rel);
/* Directory part of path ("." when there is none). */
void cfg_dirname(const char *path, char *out, size_t outlen);

/* ---- config_ns.c ---- */

#define CFG_NR_NS_KEYS 21
extern const struct cfg_key cfg_ns_keys[CFG_NR_NS_KEYS];
/* A new [namespace nsid] with every default of config.h. */
void cfg_ns_defaults(struct ns_config *ns, uint32_t nsid);
/*
 * Once the file is read: required keys, defaults that depend on other keys,
 * path resolved against data_dir (default <data_dir>/<stem>/ns<N>), zone
 * geometry, limits and zone sets. seen: bit i = cfg_ns_keys[i] was given.
 */
int cfg_ns_finish(struct ns_config *ns, uint32_t seen, const char *file, const char *data_dir,
		  const char *stem, char *err, size_t errlen);

/* ---- config_ana.c ---- */

/* [target] ana_state = LISTENER GROUP STATE (doc/ana.md). */
const char *cfg_ana_state_add(struct target_config *cfg, const char *v, char *why,
			      size_t whylen);
/* Once the main file is read: every ana_state names a listener of listen or
 * tls_listen. 0, or -1 with the message in err. */
int cfg_ana_check(const struct target_config *cfg, char *err, size_t errlen);
/* Whether a and b have the same ana_state lines, in the same order. */
bool cfg_ana_same(const struct target_config *a, const struct target_config *b);

/* ---- config_subsys.c ---- */

/*
 * Read one subsystem file from fp. name is used in messages and kept in
 * sc->file; stem names the default namespace directory
 * <data_dir>/<stem>/ns<N>.
 */
/* The namespaces' directories in config_path_key() form, by position in
 * sc->ns (a path that has none stays as written). Free with free(); NULL
 * when out of memory. */
char (*cfg_ns_path_keys(const struct subsys_config *sc))[PATH_MAX];

int cfg_subsys_parse(FILE *fp, const char *name, const char *stem, const char *data_dir,
		     struct subsys_config *sc, char *err, size_t errlen);

#endif
