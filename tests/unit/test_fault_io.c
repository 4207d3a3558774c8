/*
 * The fault-injecting I/O layer itself (fault_io.h): unarmed it is the plain
 * system call; armed, a seed repeats the same faults, skip and count bound
 * them, points select data or metadata and write, sync or read, and each
 * kind does what it says (a torn write leaves a prefix, a short one says
 * how much it moved, a torn sync runs and still fails).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_io.h"

#include "../lib/dirty_pages.h"

#define LEN 4096
#define CALLS 200

static int temp_fd(void)
{
	char path[] = "/tmp/znstgt-faultio-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static const uint8_t *pattern(void)
{
	static uint8_t b[LEN];
	for (size_t i = 0; i < LEN; i++)
		b[i] = (uint8_t)(i * 13 + 1);
	return b;
}

/* Which of CALLS data writes fail (1) under plan p. */
static void fail_map(const struct fault_plan *p, int fd, char *map)
{
	fault_io_arm(p);
	for (int i = 0; i < CALLS; i++)
		map[i] = fio_pwrite(FIO_DATA, fd, pattern(), LEN, 0) != LEN;
	fault_io_disarm();
}

static void test_unarmed_is_plain(void **state)
{
	(void)state;
	int fd = temp_fd();
	uint8_t back[LEN];
	assert_int_equal(fio_pwrite(FIO_DATA, fd, pattern(), LEN, LEN), LEN);
	assert_int_equal(fio_fdatasync(FIO_DATA, fd), 0);
	assert_int_equal(fio_pread(FIO_META, fd, back, LEN, LEN), LEN);
	assert_memory_equal(back, pattern(), LEN);
	assert_int_equal(fio_ftruncate(FIO_DATA, fd, 3 * LEN), 0);
	assert_int_equal(fault_io_injected(), 0);
	close(fd);
}

/* The same seed fails the same calls; another seed other ones; about one
 * call in one_in fails; skip lets the first ones pass; count stops. */
static void test_seed_skip_count(void **state)
{
	(void)state;
	int fd = temp_fd();
	struct fault_plan p = { .seed = 42, .points = FAULT_DATA_WRITE,
				.kinds = FAULT_KIND(FAULT_EIO), .one_in = 4 };
	char a[CALLS], b[CALLS], c[CALLS];
	fail_map(&p, fd, a);
	fail_map(&p, fd, b);
	assert_memory_equal(a, b, CALLS);
	int n = 0;
	for (int i = 0; i < CALLS; i++)
		n += a[i];
	assert_true(n > CALLS / 8 && n < CALLS / 2);
	p.seed = 43;
	fail_map(&p, fd, c);
	assert_memory_not_equal(a, c, CALLS);

	p = (struct fault_plan){ .seed = 1, .points = FAULT_DATA_WRITE,
				 .kinds = FAULT_KIND(FAULT_ENOSPC), .one_in = 1, .skip = 5, .count = 3 };
	fail_map(&p, fd, a);
	for (int i = 0; i < CALLS; i++)
		assert_int_equal(a[i], i >= 5 && i < 8);
	close(fd);
}

/* Points: a plan for metadata syncs leaves data syncs and every write
 * alone; the error is the kind's. */
static void test_points(void **state)
{
	(void)state;
	int fd = temp_fd();
	fault_io_arm(&(struct fault_plan){ .seed = 7, .points = FAULT_META_SYNC,
					   .kinds = FAULT_KIND(FAULT_ENOSPC), .one_in = 1 });
	assert_int_equal(fio_pwrite(FIO_META, fd, pattern(), LEN, 0), LEN);
	assert_int_equal(fio_fdatasync(FIO_DATA, fd), 0);
	assert_int_equal(fio_fdatasync(FIO_META, fd), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(fio_fsync(FIO_META, fd), -1);
	assert_int_equal(fault_io_injected(), 2);
	/* A read fault is EIO whatever the kind. */
	fault_io_arm(&(struct fault_plan){ .seed = 7, .points = FAULT_DATA_READ,
					   .kinds = FAULT_KIND(FAULT_ENOSPC), .one_in = 1 });
	uint8_t back[LEN];
	assert_int_equal(fio_pread(FIO_DATA, fd, back, LEN, 0), -1);
	assert_int_equal(errno, EIO);
	fault_io_disarm();
	close(fd);
}

/* A torn write leaves a prefix of the data and says EIO; a short one moves
 * part of it and says how much; a short sync is EIO. */
static void test_torn_and_short(void **state)
{
	(void)state;
	int fd = temp_fd();
	static const uint8_t zeros[LEN];
	uint8_t back[LEN];
	bool saw_prefix = false;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(ftruncate(fd, LEN), 0);
		fault_io_arm(&(struct fault_plan){ .seed = seed, .points = FAULT_DATA_WRITE,
						   .kinds = FAULT_KIND(FAULT_TORN), .one_in = 1 });
		assert_int_equal(fio_pwrite(FIO_DATA, fd, pattern(), LEN, 0), -1);
		assert_int_equal(errno, EIO);
		fault_io_disarm();
		assert_int_equal(pread(fd, back, LEN, 0), LEN);
		size_t k = 0;
		while (k < LEN && back[k] == pattern()[k])
			k++;
		assert_true(k < LEN); /* never the whole write */
		assert_memory_equal(back + k, zeros, LEN - k);
		saw_prefix |= k > 0;
	}
	assert_true(saw_prefix);

	fault_io_arm(&(struct fault_plan){ .seed = 3, .points = FAULT_DATA_WRITE | FAULT_DATA_SYNC,
					   .kinds = FAULT_KIND(FAULT_SHORT), .one_in = 1 });
	ssize_t n = fio_pwrite(FIO_DATA, fd, pattern(), LEN, 0);
	assert_true(n > 0 && n < LEN);
	assert_int_equal(fio_fdatasync(FIO_DATA, fd), -1);
	assert_int_equal(errno, EIO);
	fault_io_disarm();
	close(fd);
}

/*
 * A torn sync is Linux's failed writeback: the sync runs (every page ends
 * clean) and says EIO, so a later sync finds nothing to write. A sync that
 * fails with EIO or ENOSPC runs nothing; a torn size change is EIO and
 * changes nothing.
 */
static void test_torn_sync_cleans_pages(void **state)
{
	(void)state;
	int fd = temp_fd();
	assert_int_equal(pwrite(fd, pattern(), LEN, 0), LEN);
	assert_int_equal(fdatasync(fd), 0);
	if (!dirty_pages_watchable(fd, 0, LEN)) {
		close(fd);
		skip();
	}

	assert_int_equal(pwrite(fd, pattern(), LEN, 0), LEN);
	assert_int_equal(dirty_pages(fd, 0, LEN), 1);
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_SYNC,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1 });
	assert_int_equal(fio_fdatasync(FIO_DATA, fd), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(dirty_pages(fd, 0, LEN), 1);
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_SYNC,
					   .kinds = FAULT_KIND(FAULT_TORN), .one_in = 1 });
	assert_int_equal(fio_fdatasync(FIO_DATA, fd), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(dirty_pages(fd, 0, LEN), 0);

	uint8_t *map = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	map[0] ^= 1;
	assert_int_equal(dirty_pages(fd, 0, LEN), 1);
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_SYNC,
					   .kinds = FAULT_KIND(FAULT_TORN), .one_in = 1 });
	assert_int_equal(fio_msync(map, LEN), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(dirty_pages(fd, 0, LEN), 0);
	munmap(map, LEN);

	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_WRITE,
					   .kinds = FAULT_KIND(FAULT_TORN), .one_in = 1 });
	assert_int_equal(fio_ftruncate(FIO_DATA, fd, 2 * LEN), -1);
	assert_int_equal(errno, EIO);
	fault_io_disarm();
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, LEN);
	close(fd);
}

/* A cut write keeps whole sectors of the file: whatever the offset, the new
 * bytes end on a FIO_SECTOR boundary, and a short write inside one sector
 * fails whole. */
static void test_cuts_on_sectors(void **state)
{
	(void)state;
	int fd = temp_fd();
	uint8_t data[LEN], old[3 * LEN], back[3 * LEN];
	for (size_t i = 0; i < LEN; i++)
		data[i] = (uint8_t)(i % 0xee); /* never the old bytes' 0xee */
	memset(old, 0xee, sizeof(old));
	static const off_t offs[] = { 0, 1, 511, 512, 700, 4095 };
	int cut_inside[2] = { 0, 0 };
	for (uint64_t seed = 1; seed <= 40; seed++) {
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			off_t off = offs[o];
			int kind = seed % 2 ? FAULT_TORN : FAULT_SHORT;
			assert_int_equal(pwrite(fd, old, sizeof(old), 0), (ssize_t)sizeof(old));
			fault_io_arm(&(struct fault_plan){ .seed = seed * 7 + (uint64_t)o,
							   .points = FAULT_DATA_WRITE,
							   .kinds = FAULT_KIND(kind), .one_in = 1 });
			ssize_t n = fio_pwrite(FIO_DATA, fd, data, LEN, off);
			int err = errno;
			fault_io_disarm();
			assert_int_equal(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
			size_t k = 0;
			while (k < LEN && back[off + k] == data[k])
				k++;
			assert_true(k < LEN);
			assert_memory_equal(back + off + k, old, LEN - k);
			assert_memory_equal(back, old, (size_t)off);
			/* nothing, or new bytes up to a sector boundary */
			assert_true(k == 0 || ((size_t)off + k) % FIO_SECTOR == 0);
			if (kind == FAULT_SHORT) {
				assert_int_equal(n, (ssize_t)k);
				assert_true(n > 0);
			} else {
				assert_int_equal(n, -1);
				assert_int_equal(err, EIO);
			}
			cut_inside[kind == FAULT_SHORT] += k > 0 && k < LEN - FIO_SECTOR;
		}
	}
	assert_true(cut_inside[0] > 0 && cut_inside[1] > 0);

	/* A short write inside one sector: EIO, nothing written. */
	assert_int_equal(pwrite(fd, old, sizeof(old), 0), (ssize_t)sizeof(old));
	fault_io_arm(&(struct fault_plan){ .seed = 5, .points = FAULT_DATA_WRITE,
					   .kinds = FAULT_KIND(FAULT_SHORT), .one_in = 1 });
	assert_int_equal(fio_pwrite(FIO_DATA, fd, data, 100, 600), -1);
	assert_int_equal(errno, EIO);
	fault_io_disarm();
	assert_int_equal(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	assert_memory_equal(back, old, sizeof(old));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unarmed_is_plain),
		cmocka_unit_test(test_seed_skip_count),
		cmocka_unit_test(test_points),
		cmocka_unit_test(test_torn_and_short),
		cmocka_unit_test(test_torn_sync_cleans_pages),
		cmocka_unit_test(test_cuts_on_sectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
