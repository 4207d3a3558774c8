/*
 * Fault-injecting file I/O (fault_io.h). The plan and its random state sit
 * behind one mutex: only armed runs (tests) ever take it.
 */
#include "fault_io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "splitmix64.h"

int fault_io_armed_;

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_plan plan;
static uint64_t rng, seen, injected;

static uint64_t next_random(void)
{
	return splitmix64_next(&rng);
}

void fault_io_arm(const struct fault_plan *p)
{
	pthread_mutex_lock(&plan_lock);
	plan = *p;
	if (!plan.one_in)
		plan.one_in = 1;
	rng = p->seed;
	seen = injected = 0;
	__atomic_store_n(&fault_io_armed_, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&plan_lock);
}

void fault_io_disarm(void)
{
	pthread_mutex_lock(&plan_lock);
	__atomic_store_n(&fault_io_armed_, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&plan_lock);
}

uint64_t fault_io_injected(void)
{
	pthread_mutex_lock(&plan_lock);
	uint64_t n = injected;
	pthread_mutex_unlock(&plan_lock);
	return n;
}

_Static_assert(FAULT_META_WRITE == FAULT_DATA_WRITE << 3 && FAULT_META_SYNC == FAULT_DATA_SYNC << 3 &&
	       FAULT_META_READ == FAULT_DATA_READ << 3, "a metadata point is its data point << 3");

/* No fault: -1. Otherwise the kind, and in *cut a fraction (0..65535 of
 * 65536) of the transfer that a SHORT, TORN or CRASH fault lets through. */
static int decide(enum fio_file f, uint32_t op_bit, bool transfer, uint32_t *cut)
{
	uint32_t point = f == FIO_DATA ? op_bit : op_bit << 3;
	int kind = -1;
	pthread_mutex_lock(&plan_lock);
	if (fault_io_armed_ && (plan.points & point) && seen++ >= plan.skip &&
	    (!plan.count || injected < plan.count) && next_random() % plan.one_in == 0 &&
	    plan.kinds) {
		/* Pick one of the plan's kinds, uniformly. */
		uint32_t n = (uint32_t)__builtin_popcount(plan.kinds);
		uint32_t k = (uint32_t)(next_random() % n), bits = plan.kinds;
		while (k--)
			bits &= bits - 1;
		kind = __builtin_ctz(bits);
		*cut = (uint32_t)(next_random() & 0xffff);
		injected++;
	}
	pthread_mutex_unlock(&plan_lock);
	/* A sync or size change has nothing to cut: it fails (or the power
	 * goes just before it); a torn sync is left to fault_at(). */
	if (!transfer && kind == FAULT_SHORT)
		kind = FAULT_EIO;
	return kind;
}

static _Noreturn void crash_now(void)
{
	raise(SIGKILL);
	_exit(137); /* not reached */
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* The first `keep` bytes of iov as a new array in out (at most cnt entries). */
static int iov_prefix(const struct iovec *iov, int cnt, size_t keep, struct iovec *out)
{
	int n = 0;
	for (int i = 0; i < cnt && keep; i++) {
		out[n] = iov[i];
		if (out[n].iov_len > keep)
			out[n].iov_len = keep;
		keep -= out[n].iov_len;
		n++;
	}
	return n;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;
	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* The largest iovec the layer cuts (the block store's own limit). */
#define MAX_IOV 64

/* The part of a write of `total` bytes at `off` that a cut lets through:
 * cut/65536 of it, ending on a sector boundary of the file, since a device
 * writes each sector whole or not at all. */
static size_t cut_write(off_t off, size_t total, uint32_t cut)
{
	uint64_t want = (uint64_t)(((unsigned __int128)total * cut) >> 16);
	uint64_t end = ((uint64_t)off + want) / FIO_SECTOR * FIO_SECTOR;
	return end > (uint64_t)off ? (size_t)(end - (uint64_t)off) : 0;
}

ssize_t fault_io_pwritev_(enum fio_file f, int fd, const struct iovec *iov, int cnt, off_t off)
{
	uint32_t cut;
	int kind = cnt <= MAX_IOV ? decide(f, FAULT_DATA_WRITE, true, &cut) : -1;
	if (kind < 0)
		return pwritev(fd, iov, cnt, off);
	size_t total = iov_total(iov, cnt), keep = cut_write(off, total, cut);
	if (kind == FAULT_SHORT && !keep) {
		/* A short write moves something (0 would mean "no room"): up
		 * to the first sector boundary. A write inside one sector
		 * cannot be cut: it fails whole. */
		size_t first = FIO_SECTOR - (size_t)((uint64_t)off % FIO_SECTOR);
		if (first >= total)
			kind = FAULT_EIO;
		keep = first;
	}
	if (kind == FAULT_EIO || kind == FAULT_ENOSPC)
		return fail(kind == FAULT_EIO ? EIO : ENOSPC);
	struct iovec part[MAX_IOV];
	int pn = iov_prefix(iov, cnt, keep, part);
	ssize_t n = pn ? pwritev(fd, part, pn, off) : 0;
	if (kind == FAULT_CRASH)
		crash_now();
	if (kind == FAULT_SHORT || n < 0)
		return n;
	return fail(EIO); /* TORN: part of it landed, then the device gave up */
}

ssize_t fault_io_preadv_(enum fio_file f, int fd, const struct iovec *iov, int cnt, off_t off)
{
	uint32_t cut;
	int kind = cnt <= MAX_IOV ? decide(f, FAULT_DATA_READ, true, &cut) : -1;
	if (kind < 0 || kind == FAULT_CRASH)
		return preadv(fd, iov, cnt, off);
	if (kind == FAULT_SHORT) {
		size_t total = iov_total(iov, cnt);
		size_t keep = (size_t)(((unsigned __int128)total * cut) >> 16);
		struct iovec part[MAX_IOV];
		int pn = iov_prefix(iov, cnt, keep ? keep : 1, part);
		return pn ? preadv(fd, part, pn, off) : 0;
	}
	return fail(EIO); /* a failed read is EIO whatever the plan's kind */
}

/*
 * A call with nothing to transfer: 0, or the errno it is to fail with.
 * `ran` (a sync) is set when the call is to run before it fails: a torn
 * sync is what Linux does when writeback fails - it writes what it can,
 * marks every page clean, the ones it could not write too, and reports the
 * error once, so the next sync succeeds without writing them. Elsewhere a
 * torn call is EIO.
 */
static int fault_at(enum fio_file f, uint32_t op_bit, bool *ran)
{
	uint32_t cut;
	int kind = decide(f, op_bit, false, &cut);
	if (kind < 0)
		return 0;
	if (kind == FAULT_CRASH)
		crash_now();
	if (ran)
		*ran = kind == FAULT_TORN;
	return kind == FAULT_ENOSPC ? ENOSPC : EIO;
}

int fio_fdatasync(enum fio_file f, int fd)
{
	bool ran = true;
	int err = fault_io_on() ? fault_at(f, FAULT_DATA_SYNC, &ran) : 0;
	int rc = ran ? fdatasync(fd) : 0;
	return err ? fail(err) : rc;
}

int fio_fsync(enum fio_file f, int fd)
{
	bool ran = true;
	int err = fault_io_on() ? fault_at(f, FAULT_DATA_SYNC, &ran) : 0;
	int rc = ran ? fsync(fd) : 0;
	return err ? fail(err) : rc;
}

int fio_msync(void *map, size_t len)
{
	bool ran = true;
	int err = fault_io_on() ? fault_at(FIO_META, FAULT_DATA_SYNC, &ran) : 0;
	int rc = ran ? msync(map, len, MS_SYNC) : 0;
	return err ? fail(err) : rc;
}

int fio_ftruncate(enum fio_file f, int fd, off_t len)
{
	int err = fault_io_on() ? fault_at(f, FAULT_DATA_WRITE, NULL) : 0;
	if (err)
		return fail(err);
	return ftruncate(fd, len);
}

int fio_fallocate(enum fio_file f, int fd, int mode, off_t off, off_t len)
{
	int err = fault_io_on() ? fault_at(f, FAULT_DATA_WRITE, NULL) : 0;
	if (err)
		return fail(err);
	return fallocate(fd, mode, off, len);
}

ssize_t fio_pread_full(enum fio_file f, int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = fio_pread(f, fd, p + got, len - got, off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}
