/*
 * PRP walking (NVMe Base 2.0, 4.1.1): the data of a PCIe command, given by
 * PRP1/PRP2 and PRP lists in guest memory, as a scatter list of host
 * pointers for the request (req->iov). Every address and offset comes from
 * the guest and is checked; nothing outside what the guest mapped is ever
 * read or handed out.
 *
 * Memory pages are 4 KiB (CAP.MPSMIN = MPSMAX = 0, CC.MPS 0).
 */
#ifndef ZNSTGT_PRP_H
#define ZNSTGT_PRP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NVME_PAGE_SIZE 4096u

/* Guest memory as a transport sees it (vfio-user: the DMA regions). */
struct nvme_guest_mem {
	/* A host pointer to [addr, addr + len), or NULL when any byte of it is
	 * outside guest memory. len is at most one page. */
	void *(*map)(void *ctx, uint64_t addr, size_t len);
	void *ctx;
};

/*
 * Map len bytes described by prp1/prp2 into at most max_iov iovecs (one per
 * page touched). Returns 0 with *iovcnt set, or a status: PRP Offset Invalid
 * (PRP1 not dword aligned, a later data entry not page aligned, a list
 * pointer misaligned), Data Transfer Error (an address outside guest
 * memory), Invalid Field (more pages than max_iov).
 */
uint16_t nvme_prp_map(const struct nvme_guest_mem *gm, uint64_t prp1, uint64_t prp2, uint32_t len,
		      struct iovec *iov, int max_iov, int *iovcnt);

#endif
