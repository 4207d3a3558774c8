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
	/* Optional: the core is done with a piece map() returned (ptr, len as
	 * mapped), so a transport that holds guest mappings (vfio-user's DMA
	 * get/put) may let go. Every successful map() is matched by one
	 * unmap(): at once for queue entries and PRP/SGL lists, when the
	 * command completes for its data. */
	void (*unmap)(void *ctx, void *ptr, size_t len);
	void *ctx;
};

static inline void nvme_gm_unmap(const struct nvme_guest_mem *gm, void *ptr, size_t len)
{
	if (gm->unmap)
		gm->unmap(gm->ctx, ptr, len);
}

static inline void nvme_gm_unmap_iov(const struct nvme_guest_mem *gm, const struct iovec *iov,
				     int iovcnt)
{
	for (int i = 0; i < iovcnt; i++)
		nvme_gm_unmap(gm, iov[i].iov_base, iov[i].iov_len);
}

/*
 * Map len bytes described by prp1/prp2 into at most max_iov iovecs (one per
 * page touched; the caller unmaps them when done). On error nothing stays
 * mapped. Returns 0 with *iovcnt set, or a status: PRP Offset Invalid
 * (PRP1 not dword aligned, a later data entry not page aligned, a list
 * pointer misaligned), Data Transfer Error (an address outside guest
 * memory), Invalid Field (more pages than max_iov).
 */
uint16_t nvme_prp_map(const struct nvme_guest_mem *gm, uint64_t prp1, uint64_t prp2, uint32_t len,
		      struct iovec *iov, int max_iov, int *iovcnt);

/*
 * The same for an SGL in guest memory (PSDT 01b on PCIe; sgl.c): sgl1 is
 * the command's SGL 1, which must describe exactly len bytes. Statuses:
 * SGL Descriptor Type Invalid, Invalid SGL Segment Descriptor, Invalid
 * Number of SGL Descriptors (a chain too long, e.g. a segment pointing at
 * itself, or more pieces than max_iov), Data SGL Length Invalid, Data
 * Transfer Error (outside guest memory).
 */
struct nvme_sgl_desc;
uint16_t nvme_sgl_map(const struct nvme_guest_mem *gm, const struct nvme_sgl_desc *sgl1,
		      uint32_t len, struct iovec *iov, int max_iov, int *iovcnt);

#endif
