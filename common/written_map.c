/* The written regions of a conventional namespace (include/written_map.h). */
#include "written_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REGION ((uint64_t)1 << WRITTEN_REGION_SHIFT)

int written_init(struct written_map *w, uint64_t bytes)
{
	uint64_t regions = (bytes + REGION - 1) >> WRITTEN_REGION_SHIFT;
	memset(w, 0, sizeof(*w));
	w->words = (size_t)((regions + 63) / 64);
	w->set[0] = calloc(w->words ? w->words : 1, sizeof(uint64_t));
	w->set[1] = calloc(w->words ? w->words : 1, sizeof(uint64_t));
	if (!w->set[0] || !w->set[1]) {
		written_free(w);
		return -ENOMEM;
	}
	for (uint64_t r = 0; r < regions; r++)
		w->set[0][r / 64] |= 1ull << (r % 64);
	return 0;
}

void written_free(struct written_map *w)
{
	free(w->set[0]);
	free(w->set[1]);
	w->set[0] = w->set[1] = NULL;
	w->words = 0;
}

static void mark(struct written_map *w, unsigned i, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	uint64_t *set = w->set[i];
	uint64_t first = off >> WRITTEN_REGION_SHIFT, last = (off + len - 1) >> WRITTEN_REGION_SHIFT;
	for (uint64_t r = first; r <= last && r / 64 < w->words; r++)
		if (!(__atomic_load_n(&set[r / 64], __ATOMIC_RELAXED) & (1ull << (r % 64))))
			__atomic_fetch_or(&set[r / 64], 1ull << (r % 64), __ATOMIC_SEQ_CST);
}

unsigned written_begin(struct written_map *w, uint64_t off, uint64_t len)
{
	for (;;) {
		unsigned i = __atomic_load_n(&w->cur, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&w->inflight[i], 1, __ATOMIC_SEQ_CST);
		/* Still current after the count: a swap after it is followed by
		 * the commit thread's look at the count (all seq_cst), which sees
		 * this write, so set i is not cleared under it. */
		if (__atomic_load_n(&w->cur, __ATOMIC_SEQ_CST) == i) {
			mark(w, i, off, len);
			return i;
		}
		__atomic_sub_fetch(&w->inflight[i], 1, __ATOMIC_SEQ_CST);
	}
}

void written_end(struct written_map *w, unsigned held, uint64_t off, uint64_t len)
{
	mark(w, __atomic_load_n(&w->cur, __ATOMIC_SEQ_CST), off, len);
	__atomic_sub_fetch(&w->inflight[held], 1, __ATOMIC_SEQ_CST);
}

/* Set i emptied: words already zero are not stored to (a large bitmap's
 * untouched pages stay unbacked). */
static void clear(struct written_map *w, unsigned i)
{
	uint64_t *set = w->set[i];
	for (size_t k = 0; k < w->words; k++)
		if (__atomic_load_n(&set[k], __ATOMIC_RELAXED))
			__atomic_store_n(&set[k], 0, __ATOMIC_RELAXED);
	w->kept[i] = false;
}

void written_swap(struct written_map *w)
{
	unsigned next = w->cur ^ 1;
	/* Synced before but kept for a write in flight then: if its writes
	 * have ended, what it marks is covered. Else it stays marked (more
	 * made dirty after a failure than needed, never less). */
	if (w->kept[next] && !__atomic_load_n(&w->inflight[next], __ATOMIC_SEQ_CST))
		clear(w, next);
	w->kept[next] = false;
	__atomic_store_n(&w->cur, next, __ATOMIC_SEQ_CST);
}

void written_synced(struct written_map *w)
{
	unsigned old = w->cur ^ 1;
	if (__atomic_load_n(&w->inflight[old], __ATOMIC_SEQ_CST))
		w->kept[old] = true;
	else
		clear(w, old);
}

int written_each(struct written_map *w, int (*fn)(void *ctx, uint64_t off, uint64_t len),
		 void *ctx)
{
	uint64_t run = 0, n = 0; /* the run of marked regions being gathered */
	for (uint64_t r = 0; r < (uint64_t)w->words * 64; r++) {
		uint64_t word = __atomic_load_n(&w->set[0][r / 64], __ATOMIC_RELAXED) |
				__atomic_load_n(&w->set[1][r / 64], __ATOMIC_RELAXED);
		if (!word && !n && r % 64 == 0) {
			r += 63; /* nothing marked in these 64 */
			continue;
		}
		uint64_t any = word & (1ull << (r % 64));
		if (any && !n++)
			run = r;
		if (!any && n) {
			int rc = fn(ctx, run << WRITTEN_REGION_SHIFT, n << WRITTEN_REGION_SHIFT);
			if (rc)
				return rc;
			n = 0;
		}
	}
	return n ? fn(ctx, run << WRITTEN_REGION_SHIFT, n << WRITTEN_REGION_SHIFT) : 0;
}
