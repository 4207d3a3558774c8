/*
 * The PCIe controller model (NVMe Base 2.0, 3.1 and 3.3.1): what a PCIe
 * transport (vfio-user) plugs into. The transport owns the device: it maps
 * BAR0, the guest's memory and the MSI-X vectors; the core owns the rest:
 * the registers (through ctrl.h's register API), the doorbells, the
 * submission queues it fetches commands from and the completion queues it
 * posts to, all in guest memory.
 *
 * BAR0 layout: the controller registers at 0 (CAP, VS, ..., ACQ), the
 * doorbells from 1000h with CAP.DSTRD 0: SQ y Tail Doorbell at
 * 1000h + 8y, CQ y Head Doorbell at 1000h + 8y + 4.
 *
 * Threading: every call below is made on the controller's worker (the
 * nvme_ctrl_args worker), the one all its queues live on; the callbacks
 * into the transport (guest memory, interrupts) come on it too.
 */
#ifndef ZNSTGT_PCIE_H
#define ZNSTGT_PCIE_H

#include <stdbool.h>
#include <stdint.h>

#include "ctrl.h"
#include "prp.h"

#define NVME_PCIE_DB_BASE  0x1000u
/* BAR0 bytes: registers, then an SQ and a CQ doorbell per queue. */
#define NVME_PCIE_BAR0_SIZE (NVME_PCIE_DB_BASE + 8u * (NVME_MAX_IO_QUEUES + 1))
/* MSI-X vectors the model can use: one per completion queue at most. */
#define NVME_PCIE_MAX_VECTORS (NVME_MAX_IO_QUEUES + 1)

/* What the transport gives the controller. */
struct nvme_pcie_host {
	struct nvme_guest_mem gm;    /* the guest's memory (DMA regions) */
	/* Raise MSI-X vector (the vector a completion queue was created with;
	 * 0 for the admin queue). */
	void (*irq)(void *ctx, uint16_t vector);
	void *ctx;
	uint16_t nr_vectors;         /* MSI-X table size, 1..NVME_PCIE_MAX_VECTORS */
	/* Optional: the core tore the controller down (subsystem removed,
	 * power cut, target stopping). The transport should destroy it soon:
	 * until then it keeps the subsystem and its namespaces open. */
	void (*lost)(void *ctx);
	/* Optional: doorbell idx (SQ y tail 2y, CQ y head 2y + 1) belongs to a
	 * queue just created and starts at 0. A transport that learns doorbell
	 * writes by comparing a polled page with the last value (vfio-user's
	 * mmap'd doorbells) starts over there, so that the new queue's first
	 * value is seen even if it equals the old queue's last. */
	void (*db_reset)(void *ctx, uint32_t idx);
};

struct nvme_pcie_ctrl;

/*
 * A PCIe controller of s for the host a->hostnqn (subsystem lookup and host
 * check: nvme_ctrl_subsys_for_host). a->ops is the transport's table: no
 * fabrics, PRP data pointers, and its queue_response, disconnect and
 * drained must be nvme_pcie_queue_response, nvme_pcie_disconnect and
 * nvme_pcie_drained (the core runs the queues). a->port is the device's
 * port. Returns 0 or a status (as nvme_ctrl_new).
 */
uint16_t nvme_pcie_ctrl_new(struct subsys *s, const struct nvme_ctrl_args *a,
			    const struct nvme_pcie_host *h, struct nvme_pcie_ctrl **out);
/* The device is going away: reset the controller (queues deleted once
 * their commands came back), then free it. No callback into the transport
 * after done(arg) ran (on the worker; at once if nothing was in flight). */
void nvme_pcie_ctrl_destroy(struct nvme_pcie_ctrl *pc, void (*done)(void *arg), void *arg);
struct nvme_ctrl *nvme_pcie_ctrl_core(struct nvme_pcie_ctrl *pc);

/*
 * A guest access to BAR0 at byte off, of size 4 or 8: registers (the
 * halves of the 8-byte ones may be accessed alone) and doorbells (4 bytes).
 * Reads of reserved or write-only bytes return 0, writes to them are
 * ignored, as for any PCIe device; a doorbell write naming no queue or
 * beyond its queue raises an error event (5.2, Figure 146). Returns
 * false only for an access outside BAR0 or of another size.
 */
bool nvme_pcie_bar0_read(struct nvme_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t *val);
bool nvme_pcie_bar0_write(struct nvme_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val);

/* ---- inside the core: the controller was torn down (ctrl.c) ---- */
void nvme_pcie_lost(struct nvme_pcie_ctrl *pc);

/* The transport table's callbacks (transport.h). */
void nvme_pcie_queue_response(struct nvme_req *req);
void nvme_pcie_disconnect(void *conn);
void nvme_pcie_drained(void *conn);

/* ---- inside the core: register side effects (ctrl.c) ---- */

/* CC.EN 0 -> 1: create the admin queues from AQA/ASQ/ACQ. False (the
 * caller sets CSTS.CFS) if they are invalid. */
bool nvme_pcie_enable(struct nvme_pcie_ctrl *pc);
/* CC.EN 1 -> 0 (or a fatal error): delete every queue; CSTS.RDY and SHST
 * clear once their commands drained (3.7.2). */
void nvme_pcie_reset(struct nvme_pcie_ctrl *pc);
/* CC.SHN set: make the namespaces durable, then CSTS.SHST complete. */
void nvme_pcie_shutdown(struct nvme_pcie_ctrl *pc);

/* ---- inside the core: PCIe-only admin commands (admin_pcie.c) ---- */

uint16_t nvme_parse_pcie_admin(struct nvme_req *req);
/* The queue objects (pcie_queue.c); each returns 0 or the command's status. */
uint16_t nvme_pcie_create_cq(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			     uint32_t entries, uint16_t iv, bool ien);
uint16_t nvme_pcie_delete_cq(struct nvme_pcie_ctrl *pc, uint16_t qid);
uint16_t nvme_pcie_create_sq(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			     uint32_t entries, uint16_t cqid);
/* Delete I/O SQ qid: 0 means req (the Delete) completes later, once the
 * queue's commands came back. */
uint16_t nvme_pcie_delete_sq(struct nvme_pcie_ctrl *pc, uint16_t qid, struct nvme_req *req);
/* Does any I/O completion queue exist (Number of Queues may not change)? */
bool nvme_pcie_has_io_cq(const struct nvme_pcie_ctrl *pc);
uint16_t nvme_pcie_dbbuf(struct nvme_pcie_ctrl *pc, uint64_t shadow, uint64_t eventidx);
/* Features 08h and 09h (5.27.1.8, 5.27.1.9): value in/out as CDW11 / DW0. */
uint16_t nvme_pcie_feature(struct nvme_pcie_ctrl *pc, uint8_t fid, bool set, uint32_t cdw11,
			   uint32_t *result);

#endif
