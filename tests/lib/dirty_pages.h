/*
 * How many pages of a file's range the page cache holds, and how many of
 * them dirty, for tests of what a sync leaves to write: Linux's cachestat()
 * (6.5 and later).
 */
#ifndef ZNSTGT_TEST_DIRTY_PAGES_H
#define ZNSTGT_TEST_DIRTY_PAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same on every architecture */
#endif

struct page_counts {
	uint64_t cached, dirty, writeback, evicted, recently_evicted;
};

/* 0, or -1 with errno ENOSYS on a kernel without cachestat(). */
static inline int page_counts(int fd, off_t off, uint64_t len, struct page_counts *out)
{
	struct {
		uint64_t off, len;
	} range = { (uint64_t)off, len };
	return syscall(__NR_cachestat, fd, &range, out, 0) ? -1 : 0;
}

/* Dirty pages, or -1 (above). */
static inline int64_t dirty_pages(int fd, off_t off, uint64_t len)
{
	struct page_counts c;
	return page_counts(fd, off, len, &c) ? -1 : (int64_t)c.dirty;
}

/*
 * Whether a test can watch [off, off + len) of fd, just synced, go dirty:
 * cachestat() works (not before Linux 6.5, not under valgrind) and the
 * synced range reads clean (not on tmpfs, whose pages stay dirty). A test
 * that cannot skips.
 */
static inline bool dirty_pages_watchable(int fd, off_t off, uint64_t len)
{
	return dirty_pages(fd, off, len) == 0;
}

#endif
