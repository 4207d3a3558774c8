/*
 * How many pages of a file's range the page cache holds dirty, for tests
 * of what a sync leaves to write: Linux's cachestat() (6.5 and later).
 */
#ifndef ZNSTGT_TEST_DIRTY_PAGES_H
#define ZNSTGT_TEST_DIRTY_PAGES_H

#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same on every architecture */
#endif

/* -1 with errno ENOSYS on a kernel without cachestat(). */
static inline int64_t dirty_pages(int fd, off_t off, uint64_t len)
{
	struct {
		uint64_t off, len;
	} range = { (uint64_t)off, len };
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;
	if (syscall(__NR_cachestat, fd, &range, &cs, 0))
		return -1;
	return (int64_t)cs.nr_dirty;
}

#endif
