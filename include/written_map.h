/*
 * Which parts of a conventional namespace's data file may hold data no
 * successful data sync has covered: what a failed fdatasync may have lost,
 * and so what must be made dirty again (ns.c, redirty_unsynced) - rather
 * than every page of the file the page cache holds.
 *
 * Two bitmaps of WRITTEN_REGION_SHIFT-sized regions. A write marks the
 * current set when it begins (written_begin, before its data moves) and
 * again when it ends (written_end, once its data has landed), and counts
 * itself in flight on the set of its first mark until it ends. Right before
 * a data sync starts, the commit thread makes the other set current
 * (written_swap); when the sync succeeds it clears the set it swapped out
 * (written_synced) - unless a write that marked it is still in flight: that
 * write's data may land after the sync began, and until its second mark it
 * is only in that set, so the set is kept (cleared later, once its writes
 * have ended). After a failed sync both sets are kept, and what either
 * marks is what may be lost. A namespace opens with everything marked (a
 * run before it may have left pages of its own unsynced), until a good
 * sync has covered it.
 */
#ifndef ZNSTGT_WRITTEN_MAP_H
#define ZNSTGT_WRITTEN_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WRITTEN_REGION_SHIFT 20 /* 1 MiB: 128 KiB of bitmap per TiB, per set */

struct written_map {
	uint64_t *set[2];
	size_t words;                /* per set */
	unsigned cur;                /* atomic: the set writes mark */
	uint64_t inflight[2];        /* atomic: writes whose first mark is in set[i] */
	bool kept[2];                /* commit thread: synced but kept (writes in flight) */
};

/* For a file of `bytes`, everything marked. 0 or -ENOMEM. */
int written_init(struct written_map *w, uint64_t bytes);
void written_free(struct written_map *w);
/* A write of bytes [off, off + len): written_begin() before its data moves
 * (it returns what written_end() needs), written_end() once the data has
 * landed or the write failed. Any thread. */
unsigned written_begin(struct written_map *w, uint64_t off, uint64_t len);
void written_end(struct written_map *w, unsigned held, uint64_t off, uint64_t len);
/* A data sync is about to start / has succeeded. The commit thread only. */
void written_swap(struct written_map *w);
void written_synced(struct written_map *w);
/* fn(ctx, off, len) over each run of regions either set marks, in order,
 * until one returns non-zero (returned). The commit thread only. */
int written_each(struct written_map *w, int (*fn)(void *ctx, uint64_t off, uint64_t len),
		 void *ctx);

#endif
