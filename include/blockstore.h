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
 * each trusted for a second (BS_RESIDENT_TTL_MS), and reads through the
 * mapping only what the table vouches for; the rest takes preadv2(). A page
 * the kernel evicts within that second costs one read from the disk on the
 * loop - a stall, never wrong data. A page the disk cannot read raises
 * SIGBUS instead of EIO: the copy is guarded (sigbus_guard.h) and the read
 * falls back to preadv2(), which reports the error.
 */
#ifndef ZNSTGT_BLOCKSTORE_H
#define ZNSTGT_BLOCKSTORE_H

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
	uint64_t *resident;      /* BS_RESIDENT_SLOTS entries: extent + 1 and when seen */
};

#define BS_EXTENT_SHIFT    16    /* 64 KiB extents in the residency table */
#define BS_RESIDENT_SLOTS  8192  /* direct-mapped: 512 MiB of extents, 64 KiB of table */
#define BS_RESIDENT_TTL_MS 1000

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
/* Its first step: the copy out of the mapping, when the residency table
 * vouches for every extent of the range (checking with mincore(2) those it
 * has not seen within BS_RESIDENT_TTL_MS). 0, or -EAGAIN: not known to be
 * cached, not mapped, or the copy faulted. */
int blockstore_read_mapped(struct blockstore *bs, uint64_t lba, uint32_t nlb,
			   const struct iovec *iov, int iovcnt);
/* Make [lba, lba + nlb) read as zeros and free its space (unless
 * preallocated: then the blocks stay allocated). */
int blockstore_zero(struct blockstore *bs, uint64_t lba, uint64_t nlb);
/* Allocate every block (fallocate), so that no write can meet a full file
 * system. -errno: ENOSPC, or EOPNOTSUPP when the file system cannot. */
int blockstore_preallocate(struct blockstore *bs);
/* Bytes the store may still take from its file system as it is written:
 * its size less what is allocated now. */
uint64_t blockstore_unallocated(struct blockstore *bs);
int blockstore_sync(struct blockstore *bs);
/* CRC32C (crc32c.h) of the bytes of blocks [lba, lba + nlb), read through
 * buf (buflen bytes, a multiple of the block size). 0 or -errno. */
int blockstore_crc(struct blockstore *bs, uint64_t lba, uint32_t nlb, void *buf, size_t buflen,
		   uint32_t *crc);

#endif
