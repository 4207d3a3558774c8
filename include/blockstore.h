/*
 * The block store: a namespace's data in one sparse file, LBA n at byte
 * n << lba_shift. Blocks never written read as zeros (holes); Deallocate
 * punches holes so the space goes back to the file system (a Zone Reset keeps
 * the zone's blocks for its next writes: ns.c). All calls block: run them on
 * I/O threads, except blockstore_read_cached() and blockstore_read_mapped().
 *
 * Mapped reads. The file is also mapped read-only, and data the page cache
 * holds is copied straight out of the mapping: no system call, no page
 * cache lookup, which for a 4 KiB read are most of what preadv2() costs.
 * A load from a mapping cannot say "not cached" the way RWF_NOWAIT does:
 * it would wait for the disk, on the event loop. So the store keeps a small
 * table of 64 KiB extents that mincore(2) found wholly in the page cache,
 * each trusted for the rest of the second it was checked in, and reads
 * through the mapping only what the table vouches for; the rest takes
 * preadv2(). The store's own zeroing (Deallocate, Write Zeroes) and a
 * failed read clear the table for their range.
 *
 * What a mapped read may still wait for, on the loop: a page the kernel
 * evicted within that second is read from the disk (that page only:
 * MADV_RANDOM), and a failing disk makes that wait as long as its error
 * recovery before the read falls back; a page locked by a write in
 * progress, or the mapping lock while another thread maps or unmaps, for
 * as long as they hold it. preadv2(RWF_NOWAIT) would refuse instead. A
 * page the disk cannot read raises SIGBUS instead of EIO: the copy is
 * guarded (sigbus_guard.h) and the read falls back to preadv2(), which
 * reports the error. Like a buffered read on ext4, a mapped read takes no
 * lock against a write of the same blocks: a read racing a write of the
 * same LBAs may see part of each (XFS's preadv2 would not).
 *
 * Borrowed reads. A caller that only copies the data out with a system
 * call (a plain socket's sendmsg) can skip the copy into its own buffer:
 * blockstore_borrow() lends it a pointer into the mapping, under the same
 * residency rule. The kernel's copy from a page that cannot be read fails
 * with EFAULT (no signal): the caller's system call fails, the process
 * lives. A copy in user space must use blockstore_read_mapped() instead,
 * which guards it.
 *
 * Page tables of a file mapping stay until it is unmapped (up to 4 KiB
 * per 2 MiB read), so the process maps at most BS_MAPPED_MAX bytes of data
 * files, first come; a namespace past that, or any under a finite
 * RLIMIT_AS, reads with preadv2() only.
 */
#ifndef ZNSTGT_BLOCKSTORE_H
#define ZNSTGT_BLOCKSTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blockstore {
	int fd;
	uint32_t lba_shift;
	uint64_t nlbas;
	int no_cached_reads;     /* the file system refused RWF_NOWAIT (atomic) */
	bool preallocated;       /* blockstore_preallocate() ran: keep every block allocated */
	/* Mapped reads (above); map is NULL when the file could not be mapped. */
	const unsigned char *map;
	size_t map_len;
	uint64_t *resident;      /* nr_slots entries: extent + 1 and the second seen */
	uint64_t nr_slots;       /* extents of the file, at most BS_RESIDENT_SLOTS */
	/* Held to free blocks (blockstore_zero) and by blockstore_redirty()
	 * from its look at what is allocated to its stores. */
	pthread_mutex_t free_lock;
};

#define BS_EXTENT_SHIFT    16    /* 64 KiB extents in the residency table */
#define BS_RESIDENT_SLOTS  8192  /* direct-mapped: 512 MiB of extents, 64 KiB of table */
#define BS_MAPPED_MAX      (UINT64_C(64) << 30) /* bytes of data files mapped per process */

/* Open (create) path with room for nlbas blocks. format: drop old data. */
int blockstore_open(struct blockstore *bs, const char *path, uint32_t lba_shift, uint64_t nlbas,
		    int format);
void blockstore_close(struct blockstore *bs);
/* Each returns 0 or -errno. */
int blockstore_read(struct blockstore *bs, uint64_t lba, uint32_t nlb, const struct iovec *iov,
		    int iovcnt);
int blockstore_write(struct blockstore *bs, uint64_t lba, uint32_t nlb, const struct iovec *iov,
		     int iovcnt);
/* The exception to "all calls block": blockstore_read() from the page
 * cache only (RWF_NOWAIT), safe on an event loop. -EAGAIN when any of it
 * is not cached (or the file system cannot tell): use blockstore_read(). */
int blockstore_read_cached(struct blockstore *bs, uint64_t lba, uint32_t nlb,
			   const struct iovec *iov, int iovcnt);
/* Its first step (public for the tests): the copy out of the mapping, when
 * the residency table vouches for every extent of the range (checking with
 * mincore(2) those it has not seen this second). 0, or -EAGAIN: not known
 * to be cached, not mapped, or the copy faulted. */
int blockstore_read_mapped(struct blockstore *bs, uint64_t lba, uint32_t nlb,
			   const struct iovec *iov, int iovcnt);
/* The mapping's bytes of [lba, lba + nlb) when the residency table vouches
 * for all of them (as blockstore_read_mapped() copies them), else NULL
 * (not known to be cached, not mapped, an armed fault). Valid until
 * blockstore_close(); what it points at changes with writes of those
 * blocks. Read it only in the kernel (above). */
const void *blockstore_borrow(struct blockstore *bs, uint64_t lba, uint32_t nlb);
/* Make [lba, lba + nlb) read as zeros and free its space (unless
 * preallocated: then the blocks stay allocated). Waits while
 * blockstore_redirty() stores into a window of the file (below). */
int blockstore_zero(struct blockstore *bs, uint64_t lba, uint64_t nlb);
/* Allocate every block (fallocate), so that no write can meet a full file
 * system. -errno: ENOSPC, or EOPNOTSUPP when the file system cannot. */
int blockstore_preallocate(struct blockstore *bs);
/* Bytes the store may still take from its file system as it is written:
 * its size less what is allocated now. */
uint64_t blockstore_unallocated(struct blockstore *bs);
int blockstore_sync(struct blockstore *bs);
/*
 * Make every page of [lba, lba + nlb) that the page cache holds dirty again,
 * so that the next blockstore_sync() writes it: after a failed fdatasync
 * Linux has marked the pages it could not write clean, and the next one
 * would succeed without them. Pages not in memory are left alone (nothing
 * is read from the disk), and so are holes (no block is allocated, and
 * blockstore_zero() waits while a window of up to 256 MiB is being stored
 * into, so that no block it frees comes back); a write racing this one is
 * not undone. 0 or -errno (-EFAULT: a page could not be touched: the file
 * was cut short, or the disk could not read it back).
 */
int blockstore_redirty(struct blockstore *bs, uint64_t lba, uint64_t nlb);
/* For tests only: when set, called by blockstore_redirty() between its look
 * at which pages of a window are resident and its stores into them. */
extern void (*blockstore_redirty_pause)(void);
/* CRC32C (crc32c.h) of the bytes of blocks [lba, lba + nlb), read through
 * buf (buflen bytes, a multiple of the block size). 0 or -errno. */
int blockstore_crc(struct blockstore *bs, uint64_t lba, uint32_t nlb, void *buf, size_t buflen,
		   uint32_t *crc);

#endif
