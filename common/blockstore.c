#include "blockstore.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fault_io.h"
#include "iov.h"
#include "log.h"
#include "sigbus_guard.h"

/* Bytes of data files mapped by the whole process (BS_MAPPED_MAX). */
static size_t mapped_total;
/* The system's page size: mincore(2) answers per page. */
static size_t page_size;

static void forget(struct blockstore *bs, uint64_t off, uint64_t len);

/*
 * The mapping of mapped reads (blockstore.h). Without it reads take
 * preadv2() as before: a failure here is logged, never fatal. Page tables
 * for a file mapping stay until munmap (up to 4 KiB per 2 MiB touched), so
 * the process maps at most BS_MAPPED_MAX bytes in all, first come; and none
 * under a finite RLIMIT_AS, which the mappings would eat.
 */
static void map_file(struct blockstore *bs)
{
	size_t len = (size_t)(bs->nlbas << bs->lba_shift);
	size_t extents = (len + ((size_t)1 << BS_EXTENT_SHIFT) - 1) >> BS_EXTENT_SHIFT;
	struct rlimit as;
	void *m;

	if (!len || (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY))
		return;
	if (__atomic_add_fetch(&mapped_total, len, __ATOMIC_RELAXED) > BS_MAPPED_MAX) {
		__atomic_sub_fetch(&mapped_total, len, __ATOMIC_RELAXED);
		log_info("blockstore: %zu MiB more mapped would pass the limit of %llu GiB: "
			 "this namespace reads with preadv2", len >> 20,
			 (unsigned long long)(BS_MAPPED_MAX >> 30));
		return;
	}
	/* Set again by every namespace opened at run time (the same value)
	 * while workers read it: atomic. */
	__atomic_store_n(&page_size, (size_t)sysconf(_SC_PAGESIZE), __ATOMIC_RELAXED);
	int rc = sigbus_guard_install();
	bs->nr_slots = extents < BS_RESIDENT_SLOTS ? extents : BS_RESIDENT_SLOTS;
	bs->resident = rc ? NULL : calloc(bs->nr_slots, sizeof(*bs->resident));
	m = bs->resident ? mmap(NULL, len, PROT_READ, MAP_SHARED, bs->fd, 0) : MAP_FAILED;
	if (m == MAP_FAILED) {
		log_warn("blockstore: reads without a mapping: %s",
			 strerror(rc ? -rc : bs->resident ? errno : ENOMEM));
		__atomic_sub_fetch(&mapped_total, len, __ATOMIC_RELAXED);
		free(bs->resident);
		bs->resident = NULL;
		return;
	}
	/* A fault on a page the table wrongly vouched for reads that page,
	 * not the read-ahead window around it. */
	(void)madvise(m, len, MADV_RANDOM);
	bs->map = m;
	bs->map_len = len;
}

int blockstore_open(struct blockstore *bs, const char *path, uint32_t lba_shift, uint64_t nlbas,
		    int format)
{
	int flags = O_RDWR | O_CREAT | O_CLOEXEC | (format ? O_TRUNC : 0);

	bs->lba_shift = lba_shift;
	bs->nlbas = nlbas;
	bs->no_cached_reads = 0;
	bs->preallocated = false;
	bs->map = NULL;
	bs->map_len = 0;
	bs->resident = NULL;
	bs->nr_slots = 0;
	pthread_mutex_init(&bs->free_lock, NULL);
	/* Reads do not update the access time: nothing uses it, and checking
	 * whether to costs every read. Only the file's owner may ask. */
	bs->fd = open(path, flags | O_NOATIME, 0644);
	if (bs->fd < 0 && errno == EPERM)
		bs->fd = open(path, flags, 0644);
	if (bs->fd < 0)
		return -errno;
	/* Growing is safe (new blocks read as zeros); a file larger than the
	 * namespace keeps its tail untouched. */
	struct stat st;
	off_t want = (off_t)(nlbas << lba_shift);
	if (fstat(bs->fd, &st) || (st.st_size < want && fio_ftruncate(FIO_DATA, bs->fd, want))) {
		int e = -errno;
		close(bs->fd);
		bs->fd = -1;
		return e;
	}
	map_file(bs);
	return 0;
}

void blockstore_close(struct blockstore *bs)
{
	if (bs->map) {
		munmap((void *)bs->map, bs->map_len);
		__atomic_sub_fetch(&mapped_total, bs->map_len, __ATOMIC_RELAXED);
	}
	free(bs->resident);
	bs->map = NULL;
	bs->resident = NULL;
	if (bs->fd >= 0)
		close(bs->fd);
	bs->fd = -1;
	pthread_mutex_destroy(&bs->free_lock);
}

/* preadv/pwritev until done: short transfers happen (signals, large iovecs). */
static int xfer(struct blockstore *bs, int write, uint64_t lba, uint32_t nlb,
		const struct iovec *iov_in, int iovcnt)
{
	struct iovec iov[IOV_MAX]; /* what preadv/pwritev take; guest pages reach 257 */
	if (iovcnt > IOV_MAX)
		return -EINVAL;
	memcpy(iov, iov_in, sizeof(*iov) * (size_t)iovcnt);
	size_t left = (size_t)nlb << bs->lba_shift;
	off_t off = (off_t)(lba << bs->lba_shift);
	struct iovec *v = iov;
	while (left) {
		ssize_t n = write ? fio_pwritev(FIO_DATA, bs->fd, v, iovcnt, off)
				  : fio_preadv(FIO_DATA, bs->fd, v, iovcnt, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) { /* reading past EOF cannot happen: the file has full size */
			return -EIO;
		}
		left -= (size_t)n;
		off += n;
		iov_consume(&v, &iovcnt, (size_t)n);
		if (left && !iovcnt)
			return -EINVAL; /* iovec shorter than nlb blocks */
	}
	return 0;
}

int blockstore_read(struct blockstore *bs, uint64_t lba, uint32_t nlb, const struct iovec *iov,
		    int iovcnt)
{
	int rc = xfer(bs, 0, lba, nlb, iov, iovcnt);

	if (rc)
		forget(bs, lba << bs->lba_shift, (uint64_t)nlb << bs->lba_shift);
	return rc;
}

int blockstore_write(struct blockstore *bs, uint64_t lba, uint32_t nlb, const struct iovec *iov,
		     int iovcnt)
{
	return xfer(bs, 1, lba, nlb, iov, iovcnt);
}

/* A coarse clock in seconds: an entry holds for the second it was seen in. */
static uint32_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/*
 * A table entry is one 64-bit word, so that threads reading and updating it
 * at once need no lock: (extent + 1) << 32 | the second it was seen in
 * (blockstore.h). 0 is an empty slot. Extents fit 32 bits: map_file()
 * maps no more than BS_MAPPED_MAX.
 */
static uint64_t *slot(struct blockstore *bs, uint64_t extent)
{
	return &bs->resident[extent % bs->nr_slots];
}

static void forget(struct blockstore *bs, uint64_t off, uint64_t len)
{
	if (!bs->map || !len)
		return;
	for (uint64_t x = off >> BS_EXTENT_SHIFT; x <= (off + len - 1) >> BS_EXTENT_SHIFT; x++)
		__atomic_store_n(slot(bs, x), 0, __ATOMIC_RELAXED);
}

/* Whether the page cache holds all of extent: the table's word, else
 * mincore(2) (and the answer goes into the table when it is yes). */
static bool extent_resident(struct blockstore *bs, uint64_t extent, uint32_t now)
{
	uint64_t e = __atomic_load_n(slot(bs, extent), __ATOMIC_RELAXED);
	size_t off = (size_t)extent << BS_EXTENT_SHIFT, len = (size_t)1 << BS_EXTENT_SHIFT;
	unsigned char vec[((size_t)1 << BS_EXTENT_SHIFT) / 4096]; /* pages of 4 KiB and up */
	size_t page = __atomic_load_n(&page_size, __ATOMIC_RELAXED);

	if (e == ((extent + 1) << 32 | now))
		return true;
	if (len > bs->map_len - off)
		len = bs->map_len - off;
	if (mincore((void *)(bs->map + off), len, vec))
		return false;
	for (size_t i = 0; i < (len + page - 1) / page; i++)
		if (!(vec[i] & 1))
			return false;
	__atomic_store_n(slot(bs, extent), (extent + 1) << 32 | now, __ATOMIC_RELAXED);
	return true;
}

/* The mapping of [lba, lba + nlb) if the table vouches for every extent
 * of it, else NULL. */
static const unsigned char *vouched(struct blockstore *bs, uint64_t lba, uint32_t nlb)
{
	size_t off = (size_t)(lba << bs->lba_shift), len = (size_t)nlb << bs->lba_shift;
	uint32_t now;

	if (!bs->map || !len || lba >= bs->nlbas || nlb > bs->nlbas - lba)
		return NULL;
	now = now_s();
	for (uint64_t x = off >> BS_EXTENT_SHIFT; x <= (off + len - 1) >> BS_EXTENT_SHIFT; x++)
		if (!extent_resident(bs, x, now))
			return NULL;
	return bs->map + off;
}

int blockstore_read_mapped(struct blockstore *bs, uint64_t lba, uint32_t nlb,
			   const struct iovec *iov, int iovcnt)
{
	size_t off = (size_t)(lba << bs->lba_shift), len = (size_t)nlb << bs->lba_shift;
	const unsigned char *src = vouched(bs, lba, nlb);

	if (!src)
		return -EAGAIN;
	if (sigbus_guard_copy(iov, iovcnt, src, len) == 0)
		return 0;
	/* The disk could not give a page (or the file shrank): forget what
	 * the table says of the range and let preadv2() report it. */
	forget(bs, off, len);
	return -EAGAIN;
}

const void *blockstore_borrow(struct blockstore *bs, uint64_t lba, uint32_t nlb)
{
	/* Armed faults apply to reads that reach the file. */
	return fault_io_on() ? NULL : vouched(bs, lba, nlb);
}

/*
 * The mapping first (blockstore_read_mapped), then one preadv2(RWF_NOWAIT): it returns what the page cache holds without
 * sleeping (no disk read, no lock wait). Anything short of the whole range
 * is "not cached": the caller redoes all of it with blockstore_read(), so
 * no partial state is kept. A file system without RWF_NOWAIT says so once
 * (EOPNOTSUPP) and is not asked again.
 */
int blockstore_read_cached(struct blockstore *bs, uint64_t lba, uint32_t nlb,
			   const struct iovec *iov, int iovcnt)
{
	/* Armed faults apply to reads that reach the file. */
	if (fault_io_on())
		return -EAGAIN;
	if (blockstore_read_mapped(bs, lba, nlb, iov, iovcnt) == 0)
		return 0;
	if (__atomic_load_n(&bs->no_cached_reads, __ATOMIC_RELAXED))
		return -EAGAIN;
	ssize_t want = (ssize_t)((size_t)nlb << bs->lba_shift);
	ssize_t n = preadv2(bs->fd, iov, iovcnt, (off_t)(lba << bs->lba_shift), RWF_NOWAIT);
	if (n == want)
		return 0;
	if (n < 0 && errno == EOPNOTSUPP)
		__atomic_store_n(&bs->no_cached_reads, 1, __ATOMIC_RELAXED);
	if (n >= 0 || errno == EAGAIN || errno == EOPNOTSUPP || errno == EINTR)
		return -EAGAIN;
	return -errno;
}

int blockstore_zero(struct blockstore *bs, uint64_t lba, uint64_t nlb)
{
	off_t off = (off_t)(lba << bs->lba_shift), len = (off_t)(nlb << bs->lba_shift);
	/* The pages go: the table must not vouch for them. */
	forget(bs, (uint64_t)off, (uint64_t)len);
	int mode = bs->preallocated ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE;
	/* Not while a redirty stores into pages it found over blocks: its
	 * store would give a freed block back (blockstore_redirty). */
	pthread_mutex_lock(&bs->free_lock);
	int rc = fio_fallocate(FIO_DATA, bs->fd, mode | FALLOC_FL_KEEP_SIZE, off, len) ? -errno : 0;
	pthread_mutex_unlock(&bs->free_lock);
	if (rc != -EOPNOTSUPP)
		return rc;
	/* The file system cannot do it in place: write zeros. */
	static const char zeros[65536];
	while (len) {
		size_t n = len < (off_t)sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = fio_pwrite(FIO_DATA, bs->fd, zeros, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += w;
		len -= w;
	}
	return 0;
}

int blockstore_preallocate(struct blockstore *bs)
{
	if (fio_fallocate(FIO_DATA, bs->fd, 0, 0, (off_t)(bs->nlbas << bs->lba_shift)))
		return -errno;
	bs->preallocated = true;
	return 0;
}

uint64_t blockstore_unallocated(struct blockstore *bs)
{
	struct stat st;
	uint64_t size = bs->nlbas << bs->lba_shift;
	if (fstat(bs->fd, &st))
		return size;
	uint64_t used = (uint64_t)st.st_blocks * 512; /* st_blocks counts 512-byte units */
	return used < size ? size - used : 0;
}

int blockstore_sync(struct blockstore *bs)
{
	return fio_fdatasync(FIO_DATA, bs->fd) ? -errno : 0;
}

/* Bytes mapped at a time by blockstore_redirty(): bounds its page tables,
 * its mincore() vector and how long it keeps zeroing waiting. */
#define REDIRTY_WINDOW ((size_t)256 << 20)

void (*blockstore_redirty_pause)(void);

struct redirty_job {
	unsigned char *map;
	const unsigned char *resident;   /* mincore(2) vector */
	size_t pages, page;
};

/* One store into each resident page: a compare-and-swap of its first byte
 * with itself, so that a write of that byte landing meanwhile (an I/O
 * thread's pwrite) is never undone, as a load and a store could. */
static void redirty_pages(void *arg)
{
	const struct redirty_job *j = arg;
	for (size_t i = 0; i < j->pages; i++) {
		if (!(j->resident[i] & 1))
			continue;
		unsigned char *p = j->map + i * j->page;
		unsigned char v = __atomic_load_n(p, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(p, &v, v, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
	}
}

/* blockstore_redirty() over [off, off + len) of the file, which holds data,
 * len at most REDIRTY_WINDOW. */
static int redirty_window(struct blockstore *bs, uint64_t off, size_t len,
			  unsigned char *resident, size_t page)
{
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bs->fd, (off_t)off);
	if (m == MAP_FAILED)
		return -errno;
	/* A fault reads its page only, not the window around it. */
	(void)madvise(m, len, MADV_RANDOM);
	struct redirty_job j = { m, resident, (len + page - 1) / page, page };
	int rc = mincore(m, len, resident) ? -errno : 0;
	if (!rc && blockstore_redirty_pause)
		blockstore_redirty_pause();
	if (!rc)
		rc = sigbus_guard_run(redirty_pages, &j);
	munmap(m, len);
	return rc;
}

/*
 * The next run of data at or after pos, up to end and one window long, made
 * dirty again: *next is where to go on from. Under free_lock from the look
 * at what is allocated to the last store: a block freed in between (a hole
 * punched by Deallocate or a failed write's zeroing on an I/O thread) would
 * be allocated again by the store into its page - the space a full file
 * system was given back taken again, or the store failing with SIGBUS.
 */
static int redirty_next(struct blockstore *bs, uint64_t pos, uint64_t end, uint64_t *next,
			unsigned char *resident, size_t page)
{
	int rc = 0;
	*next = end;
	pthread_mutex_lock(&bs->free_lock);
	off_t data = lseek(bs->fd, (off_t)pos, SEEK_DATA), hole;
	if (data < 0) {
		rc = errno == ENXIO ? 0 : -errno; /* ENXIO: holes to the end */
	} else if ((uint64_t)data < end) {
		hole = lseek(bs->fd, data, SEEK_HOLE);
		if (hole < 0) {
			rc = -errno;
		} else {
			uint64_t from = (uint64_t)data & ~(uint64_t)(page - 1);
			*next = (uint64_t)hole < end ? (uint64_t)hole : end;
			if (*next - from > REDIRTY_WINDOW)
				*next = from + REDIRTY_WINDOW;
			rc = redirty_window(bs, from, (size_t)(*next - from), resident, page);
		}
	}
	pthread_mutex_unlock(&bs->free_lock);
	return rc;
}

/* Holes are passed over: a page the cache holds there (zeros read back
 * from Deallocated blocks) has nothing a sync could lose, and a store into
 * it would allocate a block - on a full file system, a SIGBUS. */
int blockstore_redirty(struct blockstore *bs, uint64_t lba, uint64_t nlb)
{
	struct stat st;
	if (fstat(bs->fd, &st))
		return -errno;
	int rc = sigbus_guard_install();
	if (rc)
		return rc;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t pos = (lba << bs->lba_shift) & ~(uint64_t)(page - 1);
	uint64_t end = (lba + nlb) << bs->lba_shift;
	if (end > (uint64_t)st.st_size)
		end = (uint64_t)st.st_size; /* no page past the end: it would fault */
	unsigned char *resident = pos < end ? malloc(REDIRTY_WINDOW / page) : NULL;
	if (pos < end && !resident)
		return -ENOMEM;
	while (!rc && pos < end)
		rc = redirty_next(bs, pos, end, &pos, resident, page);
	free(resident);
	return rc;
}

int blockstore_crc(struct blockstore *bs, uint64_t lba, uint32_t nlb, void *buf, size_t buflen,
		   uint32_t *crc)
{
	uint32_t c = CRC32C_INIT, per = (uint32_t)(buflen >> bs->lba_shift);

	if (!per)
		return -EINVAL;
	while (nlb) {
		uint32_t n = nlb < per ? nlb : per;
		struct iovec v = { buf, (size_t)n << bs->lba_shift };
		int rc = blockstore_read(bs, lba, n, &v, 1);
		if (rc)
			return rc;
		c = crc32c_update(c, buf, v.iov_len);
		lba += n;
		nlb -= n;
	}
	*crc = crc32c_final(c);
	return 0;
}
