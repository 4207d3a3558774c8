/*
 * PRP walking (include/prp.h; NVMe Base 2.0, 4.1.1 and Figure 87-89).
 *
 * PRP1 points at the first page and may carry a dword-aligned offset. If
 * the data ends within one more page, PRP2 points at that page (offset 0).
 * Otherwise PRP2 points at a PRP list (dword aligned, may start inside a
 * page); its entries point at pages (offset 0), and when more entries are
 * needed than the rest of a list page holds, the page's last entry points
 * at the next list page, which must be page aligned. A list may point at
 * itself or at data pages more than once: the walk still ends, since each
 * full list page yields at least one data entry and the length shrinks
 * with each.
 */
#include "prp.h"

#include <endian.h>
#include <string.h>

#include <nvme/types.h>

#include "nvme_wire.h"

#define PAGE_MASK ((uint64_t)NVME_PAGE_SIZE - 1)

struct prp_walk {
	const struct nvme_guest_mem *gm;
	struct iovec *iov;
	int max_iov, n;
};

static uint16_t add(struct prp_walk *w, uint64_t addr, uint32_t len)
{
	void *p;

	if (w->n == w->max_iov)
		return nvme_err(NVME_SC_INVALID_FIELD);
	p = w->gm->map(w->gm->ctx, addr, len);
	if (!p)
		return nvme_err(NVME_SC_DATA_XFER_ERROR);
	w->iov[w->n].iov_base = p;
	w->iov[w->n++].iov_len = len;
	return 0;
}

static uint16_t walk_list(struct prp_walk *w, uint64_t list, uint32_t left)
{
	if (list & 3)
		return nvme_err(NVME_SC_PRP_INVALID_OFFSET);
	while (left) {
		uint32_t nent = (uint32_t)((NVME_PAGE_SIZE - (list & PAGE_MASK)) / 8);
		const uint8_t *page = w->gm->map(w->gm->ctx, list, (size_t)nent * 8);
		uint64_t next = 0;

		if (!page)
			return nvme_err(NVME_SC_DATA_XFER_ERROR);
		for (uint32_t i = 0; i < nent && left; i++) {
			uint64_t e;
			uint16_t st;

			memcpy(&e, page + (size_t)i * 8, sizeof(e));
			e = le64toh(e);
			/* More data than this page's remaining entries hold: the
			 * last one chains to the next list page. */
			if (i == nent - 1 && left > NVME_PAGE_SIZE) {
				next = e;
				break;
			}
			if (e & PAGE_MASK)
				return nvme_err(NVME_SC_PRP_INVALID_OFFSET);
			uint32_t n = left < NVME_PAGE_SIZE ? left : NVME_PAGE_SIZE;
			st = add(w, e, n);
			if (st)
				return st;
			left -= n;
		}
		if (!left)
			break;
		/* A chained list page starts at its page boundary, so it holds
		 * 511 data entries: every round makes progress. */
		if (next & PAGE_MASK)
			return nvme_err(NVME_SC_PRP_INVALID_OFFSET);
		list = next;
	}
	return 0;
}

uint16_t nvme_prp_map(const struct nvme_guest_mem *gm, uint64_t prp1, uint64_t prp2, uint32_t len,
		      struct iovec *iov, int max_iov, int *iovcnt)
{
	struct prp_walk w = { .gm = gm, .iov = iov, .max_iov = max_iov };
	uint32_t first, left;
	uint16_t st = 0;

	*iovcnt = 0;
	if (!len)
		return 0;
	if (prp1 & 3)
		return nvme_err(NVME_SC_PRP_INVALID_OFFSET);
	first = (uint32_t)(NVME_PAGE_SIZE - (prp1 & PAGE_MASK));
	if (first > len)
		first = len;
	st = add(&w, prp1, first);
	left = len - first;
	if (!st && left) {
		if (left <= NVME_PAGE_SIZE) /* PRP2 is the second page */
			st = (prp2 & PAGE_MASK) ? nvme_err(NVME_SC_PRP_INVALID_OFFSET)
						: add(&w, prp2, left);
		else
			st = walk_list(&w, prp2, left);
	}
	if (!st)
		*iovcnt = w.n;
	return st;
}
