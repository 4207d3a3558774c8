/*
 * A guest's NVMe driver over the project's vfio-user client (vfu_client.h),
 * for tests and the load generator: a memfd is the guest's RAM (sealed as
 * QEMU seals it, mapped with DMA_MAP at iova), bus mastering and MSI-X on with VNVME_NVEC
 * vectors on eventfds, BAR0 through REGION_READ/WRITE, queues in the RAM.
 * When the device offers BAR0's doorbell page as a sparse mmap area, it
 * is mapped, as QEMU maps it for a guest, and doorbells are stores there.
 *
 *   struct vnvme v;
 *   vnvme_open(&v, socket_path, iova, pages);
 *   vnvme_enable(&v, asq_gpa, acq_gpa, 16);          CC.EN, waits for RDY
 *   vnvme_io_queue(&v, sq_gpa, cq_gpa, 32, false);   queue pair 1, vector 1
 *   vnvme_exec(&v, &v.io, &sqe, &result);             status, -1 on failure
 *   vnvme_close(&v);
 *
 * Functions returning int give -1 with a reason in v->err when the device
 * or the socket failed, else 0 or an NVMe status (without the phase bit).
 */
#ifndef ZNSTGT_VFU_NVME_H
#define ZNSTGT_VFU_NVME_H

#include <stdbool.h>
#include <stdint.h>

#include "nvme_wire.h"
#include "vfio_user_proto.h"

#define VNVME_NVEC 3                 /* vectors wired: admin, I/O, spare */
#define VNVME_PAGE 4096u

struct vnvme_q {
	uint16_t qid;
	uint64_t sq, cq;                 /* guest addresses */
	uint32_t size, tail, head;
	bool phase;
	uint16_t cid;
	int vec;
	bool shadow;                     /* Doorbell Buffer Config: shadow first */
};

struct vnvme {
	struct vfu_client *c;
	int memfd;
	uint8_t *ram;
	uint64_t iova;
	uint32_t pages;
	int efd[VNVME_NVEC];
	uint64_t irqs[VNVME_NVEC];       /* interrupts seen per vector */
	uint64_t shadow;                 /* the shadow doorbell page (guest address) */
	bool posted;                     /* doorbells as posted writes, as QEMU sends them */
	uint32_t *db;                    /* BAR0's mapped doorbell area; NULL: by message */
	struct vfu_sparse_area db_area;  /* where it is in BAR0 */
	struct vnvme_q admin, io;
	char err[160];
};

/* Connect (again while the server still holds a previous client), negotiate,
 * map pages of RAM at iova, bus master and MSI-X on, the doorbell area
 * mapped if offered. */
int vnvme_open(struct vnvme *v, const char *path, uint64_t iova, uint32_t pages);
/* The same, with flags: */
#define VNVME_MSG_DOORBELLS 1u  /* the area not mapped: every doorbell a REGION_WRITE */
#define VNVME_UNSEALED_RAM  2u  /* RAM a memfd that may shrink (not as QEMU makes it) */
int vnvme_open_with(struct vnvme *v, const char *path, uint64_t iova, uint32_t pages,
		    unsigned flags);
void vnvme_close(struct vnvme *v);

static inline void *vnvme_g(const struct vnvme *v, uint64_t gpa)
{
	return v->ram + (gpa - v->iova);
}

int vnvme_bar_read(struct vnvme *v, uint64_t off, void *val, uint32_t len);
int vnvme_bar_write(struct vnvme *v, uint64_t off, const void *val, uint32_t len);
/* Poll CSTS until (CSTS & mask) == want: true, or false after 5 s. */
bool vnvme_wait_csts(struct vnvme *v, uint32_t mask, uint32_t want);

/* Queue bookkeeping (its CQ memory zeroed); creating it is the caller's. */
void vnvme_q_init(struct vnvme *v, struct vnvme_q *q, uint16_t qid, uint64_t sq, uint64_t cq,
		  uint32_t size, int vec);
/* A command with these fields, the rest zero. */
struct nvme_sqe vnvme_sqe(uint8_t opcode, uint32_t nsid, uint32_t cdw10, uint32_t cdw11);
/* Doorbell idx := val (the shadow slot first when the queue has one). */
int vnvme_ring(struct vnvme *v, struct vnvme_q *q, unsigned idx, uint32_t val);
/* Place s (its CID set) at the tail; ring unless ring is false. CID or -1. */
int vnvme_put(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s, bool ring);
/* The next completion into *out, its head doorbell rung: waiting on the
 * queue's eventfd, or spinning on the queue's memory (spin). Status, or
 * -1 after 10 s. */
int vnvme_reap(struct vnvme *v, struct vnvme_q *q, struct nvme_cqe *out, bool spin);
/* The next completion into *out if one is there: 1, else 0. Its head
 * doorbell is left to the caller (one ring for a batch). */
int vnvme_poll(struct vnvme *v, struct vnvme_q *q, struct nvme_cqe *out);
/* Put, then reap its completion (checked: CID, SQID); result DW0-1. */
int vnvme_exec(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s, uint64_t *result);
/* Wait until vector vec fired at least min times in all (5 s). */
bool vnvme_irq_wait(struct vnvme *v, int vec, uint64_t min);

/* CC.EN = 0, then the admin queues (entries each) and CC.EN = 1 with
 * CSS "I/O command sets"; waits for RDY. */
int vnvme_enable(struct vnvme *v, uint64_t asq, uint64_t acq, uint32_t entries);
/* Number of Queues, then I/O CQ 1 (vector 1; interrupts enabled unless
 * polled, as Linux creates its poll queues) and SQ 1 of entries each. */
int vnvme_io_queue(struct vnvme *v, uint64_t sq, uint64_t cq, uint32_t entries, bool polled);

#endif
