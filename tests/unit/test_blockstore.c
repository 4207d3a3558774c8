/*
 * Mapped reads of the block store (blockstore.h) and the SIGBUS guard under
 * them (sigbus_guard.h): data the page cache holds is copied out of the
 * mapping and is the file's; data it does not hold (never read, or dropped)
 * is refused to the mapping and read by preadv2() instead; a page the
 * kernel cannot back (the file cut short behind the store's back) makes
 * the copy fail, not the process, and the ordinary read then reports the
 * error; a SIGBUS outside a guarded copy still ends the process. Borrowed
 * reads lend the same pages under the same rule, and a kernel copy from a
 * lent page that went away fails with EFAULT instead of a signal. A
 * redirty after a failed sync touches only the pages the cache holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockstore.h"
#include "fault_io.h"
#include "sigbus_guard.h"

#include "../lib/dirty_pages.h"

#define SHIFT 12                      /* 4 KiB blocks */
#define NLBAS 256                     /* 1 MiB: 16 extents of 64 KiB */
#define EXTENT_LBAS (1u << (BS_EXTENT_SHIFT - SHIFT))

struct fixture {
	char dir[64];
	char path[96];
	struct blockstore bs;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/znstgt-bstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/data", f->dir);
	assert_int_equal(blockstore_open(&f->bs, f->path, SHIFT, NLBAS, 1), 0);
	assert_non_null(f->bs.map);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	blockstore_close(&f->bs);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void fill(uint8_t *b, size_t len, uint32_t lba)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)((lba << SHIFT) + i * 7 + (i >> 12) * 31 + 3);
}

static void write_blocks(struct blockstore *bs, uint32_t lba, uint32_t nlb)
{
	size_t len = (size_t)nlb << SHIFT;
	uint8_t *b = malloc(len);

	assert_non_null(b);
	fill(b, len, lba);
	struct iovec v = { b, len };
	assert_int_equal(blockstore_write(bs, lba, nlb, &v, 1), 0);
	free(b);
}

/* Read [lba, lba + nlb) through the mapping into two iovecs split at an odd
 * place; 0 and the data checked, or the refusal. */
static int read_mapped_checked(struct blockstore *bs, uint32_t lba, uint32_t nlb,
			       const uint8_t *expect)
{
	size_t len = (size_t)nlb << SHIFT, cut = len / 3 + 5;
	uint8_t *b = malloc(len);

	assert_non_null(b);
	memset(b, 0xee, len);
	struct iovec v[2] = { { b, cut }, { b + cut, len - cut } };
	int rc = blockstore_read_mapped(bs, lba, nlb, v, 2);
	if (rc == 0)
		assert_memory_equal(b, expect, len);
	free(b);
	return rc;
}

/* Written data is in the page cache: the mapping serves it, across extents
 * and iovec boundaries, and it is what the file holds. */
static void test_mapped_read_is_the_file(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)3 * EXTENT_LBAS << SHIFT;
	uint8_t *expect = malloc(len);

	assert_non_null(expect);
	write_blocks(&f->bs, EXTENT_LBAS, 3 * EXTENT_LBAS);
	fill(expect, len, EXTENT_LBAS);
	assert_int_equal(read_mapped_checked(&f->bs, EXTENT_LBAS, 3 * EXTENT_LBAS, expect), 0);
	/* A read inside one extent, and one straddling two. */
	assert_int_equal(read_mapped_checked(&f->bs, EXTENT_LBAS + 1, 2, expect + 4096), 0);
	assert_int_equal(read_mapped_checked(&f->bs, 2 * EXTENT_LBAS - 1, 2,
					     expect + ((size_t)(EXTENT_LBAS - 1) << SHIFT)), 0);
	/* blockstore_read_cached takes the same path and returns the same:
	 * with preadv2(RWF_NOWAIT) ruled out, only the mapping can serve it. */
	uint8_t *b = malloc(len);
	assert_non_null(b);
	struct iovec v = { b, len };
	f->bs.no_cached_reads = 1;
	assert_int_equal(blockstore_read_cached(&f->bs, EXTENT_LBAS, 3 * EXTENT_LBAS, &v, 1), 0);
	assert_memory_equal(b, expect, len);
	free(b);
	free(expect);
}

/* What the page cache does not hold is refused to the mapping (it would
 * wait for the disk on the loop): a hole never read, data dropped from the
 * cache. Once read the ordinary way it is served from the mapping. */
static void test_uncached_is_refused(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)EXTENT_LBAS << SHIFT;
	uint8_t *zeros = calloc(1, len), *expect = malloc(len), *b = malloc(len);

	assert_true(zeros && expect && b);
	assert_int_equal(read_mapped_checked(&f->bs, 0, 1, zeros), -EAGAIN);

	write_blocks(&f->bs, 4 * EXTENT_LBAS, EXTENT_LBAS);
	fill(expect, len, 4 * EXTENT_LBAS);
	assert_int_equal(blockstore_sync(&f->bs), 0);
	assert_int_equal(posix_fadvise(f->bs.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	assert_int_equal(read_mapped_checked(&f->bs, 4 * EXTENT_LBAS, 1, expect), -EAGAIN);

	struct iovec v = { b, len };
	assert_int_equal(blockstore_read(&f->bs, 4 * EXTENT_LBAS, EXTENT_LBAS, &v, 1), 0);
	assert_memory_equal(b, expect, len);
	assert_int_equal(read_mapped_checked(&f->bs, 4 * EXTENT_LBAS, EXTENT_LBAS, expect), 0);
	/* The hole too, once the ordinary read brought its zero pages in. */
	assert_int_equal(blockstore_read(&f->bs, 0, EXTENT_LBAS, &v, 1), 0);
	assert_memory_equal(b, zeros, len);
	assert_int_equal(read_mapped_checked(&f->bs, 0, EXTENT_LBAS, zeros), 0);
	free(zeros);
	free(expect);
	free(b);
}

/* The store's own zeroing (Deallocate, Write Zeroes) drops the pages: the
 * table no longer vouches for them, and a later read returns zeros. */
static void test_zeroing_clears_the_table(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)EXTENT_LBAS << SHIFT;
	uint8_t *expect = malloc(len), *zeros = calloc(1, len), *b = malloc(len);

	assert_true(expect && zeros && b);
	write_blocks(&f->bs, 10 * EXTENT_LBAS, EXTENT_LBAS);
	fill(expect, len, 10 * EXTENT_LBAS);
	assert_int_equal(read_mapped_checked(&f->bs, 10 * EXTENT_LBAS, EXTENT_LBAS, expect), 0);
	assert_int_equal(blockstore_zero(&f->bs, 10 * EXTENT_LBAS, EXTENT_LBAS), 0);
	assert_int_equal(f->bs.resident[10 % f->bs.nr_slots], 0);
	struct iovec v = { b, len };
	assert_int_equal(blockstore_read(&f->bs, 10 * EXTENT_LBAS, EXTENT_LBAS, &v, 1), 0);
	assert_memory_equal(b, zeros, len);
	assert_int_equal(read_mapped_checked(&f->bs, 10 * EXTENT_LBAS, EXTENT_LBAS, zeros), 0);
	free(expect);
	free(zeros);
	free(b);
}

/* An iovec shorter than the copy is refused, not filled in part. */
static void test_guard_refuses_short_iovec(void **state)
{
	static const char src[64];
	char dst[32];
	struct iovec v = { dst, sizeof(dst) };

	(void)state;
	assert_int_equal(sigbus_guard_install(), 0);
	assert_int_equal(sigbus_guard_copy(&v, 1, src, sizeof(src)), -EINVAL);
	assert_int_equal(sigbus_guard_copy(&v, 1, src, sizeof(dst)), 0);
}

/* An extent the table vouches for and the kernel dropped since: the copy
 * waits for the disk (the documented stall) and the data is still right. */
static void test_stale_entry_reads_right(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)EXTENT_LBAS << SHIFT;
	uint8_t *expect = malloc(len);

	assert_non_null(expect);
	write_blocks(&f->bs, 6 * EXTENT_LBAS, EXTENT_LBAS);
	fill(expect, len, 6 * EXTENT_LBAS);
	assert_int_equal(read_mapped_checked(&f->bs, 6 * EXTENT_LBAS, EXTENT_LBAS, expect), 0);
	assert_int_equal(blockstore_sync(&f->bs), 0);
	assert_int_equal(munmap((void *)f->bs.map, f->bs.map_len), 0);
	assert_int_equal(posix_fadvise(f->bs.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	f->bs.map = mmap(NULL, f->bs.map_len, PROT_READ, MAP_SHARED, f->bs.fd, 0);
	assert_true(f->bs.map != MAP_FAILED);
	assert_int_equal(read_mapped_checked(&f->bs, 6 * EXTENT_LBAS, EXTENT_LBAS, expect), 0);
	free(expect);
}

/* The file cut short behind the store's back: the page under the mapping
 * is gone, the copy faults (SIGBUS), the read is refused to the mapping and
 * the ordinary read reports the error. The process lives on. */
static void test_sigbus_is_refused_not_fatal(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)EXTENT_LBAS << SHIFT;
	uint8_t *expect = malloc(len), *b = malloc(len);

	assert_true(expect && b);
	/* CMocka catches SIGBUS around each test: the store's handler back. */
	assert_int_equal(sigbus_guard_install(), 0);
	write_blocks(&f->bs, 8 * EXTENT_LBAS, EXTENT_LBAS);
	fill(expect, len, 8 * EXTENT_LBAS);
	assert_int_equal(read_mapped_checked(&f->bs, 8 * EXTENT_LBAS, EXTENT_LBAS, expect), 0);
	assert_int_equal(ftruncate(f->bs.fd, (off_t)(4 * EXTENT_LBAS) << SHIFT), 0);
	assert_int_equal(read_mapped_checked(&f->bs, 8 * EXTENT_LBAS, EXTENT_LBAS, expect), -EAGAIN);
	assert_int_equal(read_mapped_checked(&f->bs, 8 * EXTENT_LBAS, 1, expect), -EAGAIN);
	struct iovec v = { b, len };
	assert_int_equal(blockstore_read(&f->bs, 8 * EXTENT_LBAS, EXTENT_LBAS, &v, 1), -EIO);
	free(expect);
	free(b);
}

/* The guard also catches a store into a mapping that shrank (a guest's
 * memory file cut short): -EFAULT. */
static void test_guard_catches_destination(void **state)
{
	char path[] = "/tmp/znstgt-bstore-dst-XXXXXX";
	int fd;
	long page = sysconf(_SC_PAGESIZE);
	static const char src[8192];

	(void)state;
#ifdef __SANITIZE_THREAD__
	/* ThreadSanitizer's memcpy interceptor does not survive the SIGBUS
	 * the guard is to catch (make check-tsan). */
	skip();
#endif
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 2 * page), 0);
	char *m = mmap(NULL, (size_t)(2 * page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(sigbus_guard_install(), 0);
	struct iovec v = { m, (size_t)(2 * page) };
	assert_int_equal(sigbus_guard_copy(&v, 1, src, sizeof(src) < v.iov_len ? sizeof(src)
										  : v.iov_len), 0);
	assert_int_equal(ftruncate(fd, page), 0);
	assert_int_equal(sigbus_guard_copy(&v, 1, src, sizeof(src) < v.iov_len ? sizeof(src)
										  : v.iov_len), -EFAULT);
	munmap(m, (size_t)(2 * page));
	close(fd);
}

/* A SIGBUS outside a guarded copy is a real fault: the process still dies
 * of it, handler installed or not. (valgrind delivers this fault as
 * SIGSEGV: either way the child must die of the signal, not go on.) */
static void test_unguarded_sigbus_still_fatal(void **state)
{
	struct fixture *f = *state;
	int status;

	write_blocks(&f->bs, 0, 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* CMocka's handlers out: the guard's "before" is the default. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		if (!f->bs.map)
			_exit(3);
		if (sigbus_guard_install() || ftruncate(f->bs.fd, 0))
			_exit(2);
		volatile unsigned char c = f->bs.map[0];
		(void)c;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(WTERMSIG(status) == SIGBUS || WTERMSIG(status) == SIGSEGV);
}

/* blockstore_borrow() lends the mapping itself where the table vouches for
 * the whole range, and nothing where it does not: uncached data, a range
 * outside the store, an armed fault (faults apply to reads of the file). */
static void test_borrow_lends_only_what_is_vouched(void **state)
{
	struct fixture *f = *state;
	size_t len = (size_t)2 * EXTENT_LBAS << SHIFT;
	uint8_t *expect = malloc(len);

	assert_non_null(expect);
	write_blocks(&f->bs, 2 * EXTENT_LBAS, 2 * EXTENT_LBAS);
	fill(expect, len, 2 * EXTENT_LBAS);
	const uint8_t *p = blockstore_borrow(&f->bs, 2 * EXTENT_LBAS, 2 * EXTENT_LBAS);
	assert_ptr_equal(p, f->bs.map + ((size_t)2 * EXTENT_LBAS << SHIFT));
	assert_memory_equal(p, expect, len);
	p = blockstore_borrow(&f->bs, 3 * EXTENT_LBAS - 1, 2); /* straddles two extents */
	assert_non_null(p);
	assert_memory_equal(p, expect + ((size_t)(EXTENT_LBAS - 1) << SHIFT), 2u << SHIFT);

	assert_null(blockstore_borrow(&f->bs, 0, 0));
	assert_null(blockstore_borrow(&f->bs, NLBAS, 1));
	assert_null(blockstore_borrow(&f->bs, NLBAS - 1, 2));
	assert_null(blockstore_borrow(&f->bs, UINT64_MAX, 1));
	struct fault_plan plan = { .seed = 1, .points = FAULT_DATA_READ,
				   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1 };
	fault_io_arm(&plan);
	assert_null(blockstore_borrow(&f->bs, 2 * EXTENT_LBAS, 1));
	fault_io_disarm();

	/* Written, then dropped from the page cache before anyone looked
	 * (pages this process touched through the mapping would stay). */
	write_blocks(&f->bs, 6 * EXTENT_LBAS, EXTENT_LBAS);
	assert_int_equal(blockstore_sync(&f->bs), 0);
	assert_int_equal(posix_fadvise(f->bs.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	assert_null(blockstore_borrow(&f->bs, 6 * EXTENT_LBAS, 1));
	free(expect);
}

/* The file cut short under a lent page: the kernel's copy out of it (here
 * into a pipe, for the target a socket) fails with EFAULT, and no signal
 * comes - nothing guards a lent page, nothing needs to. */
static void test_borrowed_page_gone_is_efault(void **state)
{
	struct fixture *f = *state;
	int fds[2];

	write_blocks(&f->bs, 12 * EXTENT_LBAS, EXTENT_LBAS);
	const uint8_t *p = blockstore_borrow(&f->bs, 12 * EXTENT_LBAS, 1);
	assert_non_null(p);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], p, 1u << SHIFT), 1u << SHIFT);
	assert_int_equal(ftruncate(f->bs.fd, (off_t)(4 * EXTENT_LBAS) << SHIFT), 0);
	errno = 0;
	assert_int_equal(write(fds[1], p, 1u << SHIFT), -1);
	assert_int_equal(errno, EFAULT);
	close(fds[0]);
	close(fds[1]);
}

/*
 * blockstore_redirty() makes dirty again the pages of its range that the
 * page cache holds, and only those: a page not in memory is not read in (a
 * failed sync cannot have lost what it never held), and past the end of a
 * file cut short nothing is touched (a store there would fault). The data
 * stays what it was.
 */
static void test_redirty_touches_resident_pages(void **state)
{
	struct fixture *f = *state;
	const off_t blk = 1 << SHIFT;
	struct page_counts c;

	/* A block a write: each its own folio, so that half can be evicted
	 * (a file system with large folios gives one write one folio). */
	for (uint32_t lba = 0; lba < 8; lba++)
		write_blocks(&f->bs, lba, 1);
	assert_int_equal(blockstore_sync(&f->bs), 0);
	if (!dirty_pages_watchable(f->bs.fd, 0, 8 * blk))
		skip();
	assert_int_equal(posix_fadvise(f->bs.fd, 4 * blk, 4 * blk, POSIX_FADV_DONTNEED), 0);
	assert_int_equal(page_counts(f->bs.fd, 4 * blk, 4 * blk, &c), 0);
	assert_int_equal(c.cached, 0);

	assert_int_equal(blockstore_redirty(&f->bs, 0, NLBAS), 0);
	assert_int_equal(page_counts(f->bs.fd, 0, 4 * blk, &c), 0);
	assert_int_equal(c.dirty, 4);
	assert_int_equal(page_counts(f->bs.fd, 4 * blk, 4 * blk, &c), 0);
	assert_int_equal(c.cached, 0);
	uint8_t want[8 << SHIFT], got[8 << SHIFT];
	for (uint32_t lba = 0; lba < 8; lba++)
		fill(want + ((size_t)lba << SHIFT), (size_t)1 << SHIFT, lba);
	assert_int_equal(pread(f->bs.fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, want, sizeof(got));

	assert_int_equal(blockstore_sync(&f->bs), 0);
	assert_int_equal(ftruncate(f->bs.fd, 2 * blk), 0);
	assert_int_equal(blockstore_redirty(&f->bs, 0, NLBAS), 0);
	assert_int_equal(page_counts(f->bs.fd, 0, 2 * blk, &c), 0);
	assert_int_equal(c.dirty, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mapped_read_is_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncached_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_entry_reads_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroing_clears_the_table, setup, teardown),
		cmocka_unit_test(test_guard_refuses_short_iovec),
		cmocka_unit_test_setup_teardown(test_sigbus_is_refused_not_fatal, setup, teardown),
		cmocka_unit_test(test_guard_catches_destination),
		cmocka_unit_test_setup_teardown(test_unguarded_sigbus_still_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_borrow_lends_only_what_is_vouched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_borrowed_page_gone_is_efault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirty_touches_resident_pages, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
