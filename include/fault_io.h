/*
 * The file I/O of the block store and of the zone metadata, through one
 * layer that tests can make fail. Unarmed (always, outside tests) each call
 * is the plain system call behind one predictable branch.
 *
 * Armed with a plan, a call at a chosen point (data or metadata file; read,
 * write or sync) fails now and then, the choice driven by a seed so that a
 * failing run can be repeated:
 *   EIO, ENOSPC   nothing transferred, -1 with that errno
 *   SHORT         a write or read moves only part of the buffer and says so
 *                 (the caller must carry on with the rest)
 *   TORN          part of the buffer is written, then -1 / EIO; at a sync,
 *                 the sync runs, then -1 / EIO: Linux's failed writeback,
 *                 which marks the pages it could not write clean, so the
 *                 next sync succeeds without writing them
 *   CRASH         part of the buffer is written, then the process SIGKILLs
 *                 itself: a power cut in the middle of a write or before a
 *                 sync (for crash tests only)
 * A write is cut only at a FIO_SECTOR boundary of the file, as a device
 * writes a sector whole or not at all (a SHORT write inside one sector
 * fails with EIO instead); a read may be cut anywhere.
 * Every call returns what its system call would, with errno set.
 */
#ifndef ZNSTGT_FAULT_IO_H
#define ZNSTGT_FAULT_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The unit a device writes atomically: what the zone metadata's recovery
 * relies on and where the layer cuts writes. */
#define FIO_SECTOR 512

/* Which file a call is on (the plan picks points per file). */
enum fio_file { FIO_DATA, FIO_META };

/* Injection points: one bit per (file, operation). */
#define FAULT_DATA_WRITE (1u << 0)  /* pwrite(v), hole punching */
#define FAULT_DATA_SYNC  (1u << 1)
#define FAULT_DATA_READ  (1u << 2)
#define FAULT_META_WRITE (1u << 3)  /* pwrite, ftruncate */
#define FAULT_META_SYNC  (1u << 4)  /* fsync, fdatasync, msync */
#define FAULT_META_READ  (1u << 5)
#define FAULT_ALL_WRITES (FAULT_DATA_WRITE | FAULT_META_WRITE)
#define FAULT_ALL_SYNCS  (FAULT_DATA_SYNC | FAULT_META_SYNC)

enum fault_kind { FAULT_EIO, FAULT_ENOSPC, FAULT_SHORT, FAULT_TORN, FAULT_CRASH };
#define FAULT_KIND(k) (1u << (k))

struct fault_plan {
	uint64_t seed;
	uint32_t points;         /* FAULT_* point bits */
	uint32_t kinds;          /* FAULT_KIND() bits; a kind that makes no sense at a
	                          * point (SHORT at a sync, TORN at a size change)
	                          * becomes EIO there */
	uint32_t one_in;         /* each call at a point fails with chance 1/one_in (1: every one) */
	uint32_t skip;           /* let this many calls at the points pass first */
	uint32_t count;          /* stop after this many faults (0: no limit) */
};

/* Arm (replacing any plan) / disarm. Safe from any thread. */
void fault_io_arm(const struct fault_plan *p);
void fault_io_disarm(void);
/* Faults injected since the last fault_io_arm(). */
uint64_t fault_io_injected(void);

extern int fault_io_armed_;  /* read through the inline wrappers only */

ssize_t fault_io_pwritev_(enum fio_file f, int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t fault_io_preadv_(enum fio_file f, int fd, const struct iovec *iov, int cnt, off_t off);

static inline bool fault_io_on(void)
{
	return __builtin_expect(__atomic_load_n(&fault_io_armed_, __ATOMIC_RELAXED), 0);
}

static inline ssize_t fio_pwritev(enum fio_file f, int fd, const struct iovec *iov, int cnt,
				  off_t off)
{
	return fault_io_on() ? fault_io_pwritev_(f, fd, iov, cnt, off) : pwritev(fd, iov, cnt, off);
}

static inline ssize_t fio_preadv(enum fio_file f, int fd, const struct iovec *iov, int cnt,
				 off_t off)
{
	return fault_io_on() ? fault_io_preadv_(f, fd, iov, cnt, off) : preadv(fd, iov, cnt, off);
}

static inline ssize_t fio_pwrite(enum fio_file f, int fd, const void *buf, size_t len, off_t off)
{
	struct iovec v = { (void *)buf, len };
	return fio_pwritev(f, fd, &v, 1, off);
}

static inline ssize_t fio_pread(enum fio_file f, int fd, void *buf, size_t len, off_t off)
{
	struct iovec v = { buf, len };
	return fio_preadv(f, fd, &v, 1, off);
}

/* Read len bytes at off, going on after a short read (or EINTR): the bytes
 * read, fewer only at the end of the file, or -errno. */
ssize_t fio_pread_full(enum fio_file f, int fd, void *buf, size_t len, off_t off);

/* Syncs, size changes and hole punching cost a system call that dwarfs a
 * function call: plain functions. */
int fio_fdatasync(enum fio_file f, int fd);
int fio_fsync(enum fio_file f, int fd);
/* msync(map, len, MS_SYNC) of a mapping of a metadata file. */
int fio_msync(void *map, size_t len);
int fio_ftruncate(enum fio_file f, int fd, off_t len);
int fio_fallocate(enum fio_file f, int fd, int mode, off_t off, off_t len);

#endif
