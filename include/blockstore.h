/*
 * The block store: a namespace's data in one sparse file, LBA n at byte
 * n << lba_shift. Blocks never written read as zeros (holes); Deallocate
 * punches holes so the space goes back to the file system (a Zone Reset keeps
 * the zone's blocks for its next writes: ns.c). All calls block: run them on
 * I/O threads.
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
};

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
