/*
 * SGLs in guest memory (NVMe Base 2.0, 4.3.2), for PCIe commands with
 * PSDT 01b: SGL 1 in the command is a Data Block, a Segment or a Last
 * Segment descriptor; segments are arrays of 16-byte descriptors in guest
 * memory, the last of which may chain to the next segment (a Last Segment
 * holds data descriptors only). Data Blocks (address subtype) are the
 * data, at any byte alignment (SGLS 01b); Bit Buckets, Keyed and Transport
 * descriptors are not supported. The SGL must describe exactly the
 * command's length (SGLS bit 18 clear).
 *
 * Every descriptor is read through the guest-memory map, the walk is
 * bounded (NVME_SGL_MAX_DESCS descriptors): a segment chain pointing at
 * itself fails, it does not loop.
 */
#include "prp.h"

#include <endian.h>
#include <string.h>

#include <nvme/types.h>

#include "nvme_wire.h"

#define NVME_SGL_MAX_DESCS 4096u

enum { SGL_DATA = 0x0, SGL_SEGMENT = 0x2, SGL_LAST_SEGMENT = 0x3 };

struct sgl_walk {
	const struct nvme_guest_mem *gm;
	struct iovec *iov;
	int max_iov, n;
	uint32_t left;           /* bytes of the command not described yet */
	uint32_t descs;          /* read so far */
};

/* A data block, split at page boundaries (map() covers one page). */
static uint16_t add_block(struct sgl_walk *w, uint64_t addr, uint32_t len)
{
	if (len > w->left)
		return nvme_err(NVME_SC_SGL_INVALID_DATA);
	w->left -= len;
	while (len) {
		uint32_t n = (uint32_t)(NVME_PAGE_SIZE - (addr & (NVME_PAGE_SIZE - 1)));
		void *p;

		if (n > len)
			n = len;
		if (w->n == w->max_iov) /* many tiny blocks */
			return nvme_err(NVME_SC_SGL_INVALID_COUNT);
		if (addr + n < addr || !(p = w->gm->map(w->gm->ctx, addr, n)))
			return nvme_err(NVME_SC_DATA_XFER_ERROR);
		w->iov[w->n].iov_base = p;
		w->iov[w->n++].iov_len = n;
		addr += n;
		len -= n;
	}
	return 0;
}

static uint8_t desc_type(const struct nvme_sgl_desc *d) { return d->type >> 4; }

/* Walk the segment chain starting with descriptor d (SGL 1). */
static uint16_t walk(struct sgl_walk *w, struct nvme_sgl_desc d)
{
	for (;;) {
		uint64_t addr = le64toh(d.addr);
		uint32_t len = le32toh(d.length), nd;
		bool last;

		if (d.type & 0xf) /* subtype: only "address" (0h) */
			return nvme_err(NVME_SC_SGL_INVALID_TYPE);
		switch (desc_type(&d)) {
		case SGL_DATA:
			return add_block(w, addr, len);
		case SGL_SEGMENT:
		case SGL_LAST_SEGMENT:
			break;
		default:
			return nvme_err(NVME_SC_SGL_INVALID_TYPE);
		}
		last = desc_type(&d) == SGL_LAST_SEGMENT;
		nd = len / 16;
		if (len % 16 || !nd)
			return nvme_err(NVME_SC_SGL_INVALID_LAST);
		/* The segment, descriptor by descriptor: it may span pages. */
		for (uint32_t i = 0; i < nd; i++) {
			const void *p;
			uint16_t st;

			if (++w->descs > NVME_SGL_MAX_DESCS)
				return nvme_err(NVME_SC_SGL_INVALID_COUNT);
			p = addr + (uint64_t)i * 16 < addr ? NULL
							  : w->gm->map(w->gm->ctx, addr + (uint64_t)i * 16, 16);
			if (!p)
				return nvme_err(NVME_SC_DATA_XFER_ERROR);
			memcpy(&d, p, sizeof(d));
			nvme_gm_unmap(w->gm, (void *)(uintptr_t)p, 16);
			if (desc_type(&d) == SGL_DATA && !(d.type & 0xf)) {
				st = add_block(w, le64toh(d.addr), le32toh(d.length));
				if (st)
					return st;
				continue;
			}
			/* Only a segment's last descriptor may chain, and not a
			 * Last Segment's. */
			if (i != nd - 1 || last ||
			    (desc_type(&d) != SGL_SEGMENT && desc_type(&d) != SGL_LAST_SEGMENT))
				return nvme_err(desc_type(&d) == SGL_DATA ||
								desc_type(&d) == SGL_SEGMENT ||
								desc_type(&d) == SGL_LAST_SEGMENT
							? NVME_SC_SGL_INVALID_LAST
							: NVME_SC_SGL_INVALID_TYPE);
			break; /* d: the next segment */
		}
		if (desc_type(&d) == SGL_DATA) /* the segment ended with data */
			return 0;
	}
}

uint16_t nvme_sgl_map(const struct nvme_guest_mem *gm, const struct nvme_sgl_desc *sgl1,
		      uint32_t len, struct iovec *iov, int max_iov, int *iovcnt)
{
	struct sgl_walk w = { .gm = gm, .iov = iov, .max_iov = max_iov, .left = len };
	uint16_t st;

	*iovcnt = 0;
	if (!len)
		return 0;
	st = walk(&w, *sgl1);
	if (!st && w.left)
		st = nvme_err(NVME_SC_SGL_INVALID_DATA); /* shorter than the command */
	if (!st)
		*iovcnt = w.n;
	else
		nvme_gm_unmap_iov(gm, iov, w.n);
	return st;
}
