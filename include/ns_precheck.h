/*
 * A start that fails, or a namespace left out, leaves no half-created
 * namespace behind: before any namespace file is created, ns_precheck() asks
 * whether ns_open() would find a usable place for it (without writing
 * anything); and should a first open fail all the same, ns_fresh_undo()
 * removes what it created.
 */
#ifndef ZNSTGT_NS_PRECHECK_H
#define ZNSTGT_NS_PRECHECK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ns_config;
struct zns;

/*
 * The namespace directory cfg->path is a directory, or can be created (every
 * part of it that exists is a directory, the deepest one writable), and its
 * file system takes files as large as the data file and the journal. Returns
 * 0, or -1 with a one-line reason naming the path in err.
 */
int ns_precheck(const struct ns_config *cfg, char *err, size_t errlen);

/* What existed of a namespace directory before ns_open(). */
struct ns_fresh {
	bool fresh;                  /* no directory, or an empty one: nothing to keep */
	bool dir_existed;
	char top[PATH_MAX];          /* deepest ancestor that existed */
};

void ns_fresh_note(const struct ns_config *cfg, struct ns_fresh *f);
/* After a failed ns_open() of a fresh namespace: remove the files it created
 * in cfg->path and the directories it made, up to f->top. (Nothing for a
 * namespace that had files: they are the user's.) */
void ns_fresh_undo(const struct ns_config *cfg, const struct ns_fresh *f);

/*
 * Bytes a zoned namespace's data file must hold: up to the highest write
 * pointer of a zone with written blocks (an offline zone has none), the
 * zone in *last. ns_open() refuses a shorter file; znstgt-ctl check
 * reports it.
 */
uint64_t ns_data_needed(struct zns *z, uint32_t *last);

#endif
