/*
 * The PCIe controller model (include/pcie.h): the device a PCIe transport
 * exposes, BAR0 (registers and doorbells), the admin queues CC.EN creates
 * from AQA/ASQ/ACQ, controller reset (CC.EN 1 -> 0), shutdown (CC.SHN) and
 * controller fatal status. The queues themselves are in pcie_queue.c.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nvme_cmd.h"
#include "pcie_priv.h"
#include "subsys.h"

#define CSTS_RDY  (1u << NVME_CSTS_RDY_SHIFT)
#define CSTS_CFS  (1u << NVME_CSTS_CFS_SHIFT)
#define CSTS_SHST (NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT)

static void set_shst(struct nvme_ctrl *ctrl, uint32_t shst)
{
	uint32_t csts = atomic_load(&ctrl->csts);

	atomic_store_explicit(&ctrl->csts, (csts & ~CSTS_SHST) | shst << NVME_CSTS_SHST_SHIFT,
			      memory_order_release);
}

uint16_t nvme_pcie_ctrl_new(struct subsys *s, const struct nvme_ctrl_args *a,
			    const struct nvme_pcie_host *h, struct nvme_pcie_ctrl **out)
{
	struct nvme_ctrl_args args = *a;
	struct nvme_pcie_ctrl *pc;
	uint16_t st;

	/* The core runs the queues: the table must hand them back to it. */
	if (s->discovery || a->ops->fabrics || !(a->ops->data_ptrs & NVME_XPORT_PRP) || !a->port ||
	    a->ops->queue_response != nvme_pcie_queue_response ||
	    a->ops->disconnect != nvme_pcie_disconnect || a->ops->drained != nvme_pcie_drained ||
	    !h->gm.map || !h->irq || h->nr_vectors < 1 || h->nr_vectors > NVME_PCIE_MAX_VECTORS)
		return nvme_err(NVME_SC_INVALID_FIELD);
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return nvme_err(NVME_SC_INTERNAL);
	pc->h = *h;
	pcie_vecs_init(pc);
	pc->port = *a->port;
	pc->port.next = NULL;
	args.kato_ms = 0; /* PCIe has no keep alive unless the host sets it */
	st = nvme_ctrl_new(s, &args, &pc->ctrl);
	if (st) {
		free(pc);
		return st;
	}
	pc->ctrl->pcie = pc;
	*out = pc;
	return 0;
}

struct nvme_ctrl *nvme_pcie_ctrl_core(struct nvme_pcie_ctrl *pc)
{
	return pc->ctrl;
}

/* Everything stopped (no queue, no sync out): the device may go. */
static void maybe_destroyed(struct nvme_pcie_ctrl *pc)
{
	if (!pc->destroying || pc->resetting || pc->shutting_down || pc->closing_sqs)
		return;
	void (*done)(void *) = pc->destroy_done;
	void *arg = pc->destroy_arg;

	pcie_vecs_stop(pc);
	/* The keep-alive timer is on this worker's loop: it must not
	 * outlive the controller (reset_done stopped it already). */
	nvme_ctrl_set_kato(pc->ctrl, 0);
	pc->ctrl->pcie = NULL;
	nvme_ctrl_fatal(pc->ctrl, "device removed");
	nvme_ctrl_put(pc->ctrl);
	free(pc);
	if (done)
		done(arg);
}

void nvme_pcie_ctrl_destroy(struct nvme_pcie_ctrl *pc, void (*done)(void *arg), void *arg)
{
	pc->destroying = true;
	pc->destroy_done = done;
	pc->destroy_arg = arg;
	nvme_pcie_reset(pc);
}

void nvme_pcie_lost(struct nvme_pcie_ctrl *pc)
{
	if (!pc->destroying && pc->h.lost)
		pc->h.lost(pc->h.ctx);
}

void pcie_fatal(struct nvme_pcie_ctrl *pc, const char *why)
{
	if (!pc->failed)
		log_warn("ctrl %u: controller fatal status: %s", pc->ctrl->cntlid, why);
	pc->failed = true;
	atomic_fetch_or(&pc->ctrl->csts, CSTS_CFS);
}

/* ---- enable, reset, shutdown ---- */

bool nvme_pcie_enable(struct nvme_pcie_ctrl *pc)
{
	struct nvme_ctrl *ctrl = pc->ctrl;
	uint32_t sqs = (ctrl->aqa & 0xfff) + 1u, cqs = ((ctrl->aqa >> 16) & 0xfff) + 1u;

	/* 3.1.3.8 - 3.1.3.10: both admin queues at least two entries, at
	 * most CAP.MQES + 1, in guest memory. ASQ/ACQ are page aligned by
	 * their register. A controller torn down (subsystem removed) takes
	 * no new queues. */
	if (pc->resetting || atomic_load(&ctrl->dead) || sqs < 2 || cqs < 2 || sqs > NVME_MAX_QUEUE_SIZE ||
	    cqs > NVME_MAX_QUEUE_SIZE || !ctrl->asq || !ctrl->acq ||
	    !pcie_gm_range_ok(pc, ctrl->asq, (uint64_t)sqs * 64) ||
	    !pcie_gm_range_ok(pc, ctrl->acq, (uint64_t)cqs * 16)) {
		log_warn("ctrl %u: admin queues AQA %#x ASQ %#llx ACQ %#llx invalid", ctrl->cntlid,
			 ctrl->aqa, (unsigned long long)ctrl->asq, (unsigned long long)ctrl->acq);
		pc->failed = true;
		return false;
	}
	pc->failed = false;
	ctrl->nr_io_queues = NVME_MAX_IO_QUEUES; /* Number of Queues: back to default */
	pcie_cq_init(&pc->cqs[0], ctrl->acq, cqs, 0, true);
	if (!pcie_sq_new(pc, 0, ctrl->asq, sqs, 0)) {
		pc->cqs[0].live = false;
		pc->failed = true;
		return false;
	}
	pcie_db_reset(pc, 0);
	pcie_db_reset(pc, 1);
	return true;
}

static void reset_done(struct nvme_pcie_ctrl *pc)
{
	for (unsigned i = 0; i <= NVME_MAX_IO_QUEUES; i++)
		pc->cqs[i].live = false;
	pc->dbbuf_shadow = pc->dbbuf_eventidx = 0;
	pc->irq_coalescing = 0;
	memset(pc->iv_cd, 0, sizeof(pc->iv_cd));
	/* Keep Alive Timeout back to its default (none), as the other
	 * features: a reset controller has no admin queue to send a Keep
	 * Alive on, and a freed one must leave no timer on the loop. */
	nvme_ctrl_set_kato(pc->ctrl, 0);
	pcie_vecs_stop(pc);
	pc->failed = false;
	pc->resetting = false;
	atomic_fetch_and(&pc->ctrl->csts, ~(CSTS_RDY | CSTS_SHST | CSTS_CFS));
	maybe_destroyed(pc);
}

/* A queue was freed (pcie_queue.c). */
void pcie_sq_gone(struct nvme_pcie_ctrl *pc)
{
	if (--pc->closing_sqs == 0 && pc->resetting)
		reset_done(pc);
}

void nvme_pcie_reset(struct nvme_pcie_ctrl *pc)
{
	if (pc->resetting)
		return;
	pc->resetting = true;
	pc->reset_gen++; /* a shutdown's sync still out no longer speaks for CSTS */
	pc->shutdown_again = false; /* nor does a notification the reset took back */
	/* Commands in flight finish first (their completions are not
	 * posted any more): the core's queue lifecycle says when. */
	for (unsigned i = 0; i <= NVME_MAX_IO_QUEUES; i++)
		if (pc->sqs[i])
			pcie_sq_close(pc->sqs[i]);
	if (!pc->closing_sqs)
		reset_done(pc);
}

static void shutdown_synced(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);
	struct nvme_pcie_ctrl *pc = container_of(req, struct nvme_pcie_ctrl, shutdown_req);

	if (req->status)
		log_error("ctrl %u: shutdown: making the namespaces durable failed (status %#x)",
			  pc->ctrl->cntlid, req->status);
	pc->shutting_down = false;
	/* A notification that came while this sync was out (after a reset
	 * and a new enable, say) gets a sync of its own. */
	if (pc->shutdown_again && !pc->destroying) {
		pc->shutdown_again = false;
		nvme_pcie_shutdown(pc);
		return;
	}
	pc->shutdown_again = false;
	/* A reset since the notification cleared SHST: it stays clear. */
	if (pc->shutdown_gen == pc->reset_gen)
		set_shst(pc->ctrl, NVME_CSTS_SHST_CMPLT);
	maybe_destroyed(pc);
}

void nvme_pcie_shutdown(struct nvme_pcie_ctrl *pc)
{
	struct pcie_sq *admin = pc->sqs[0];

	if (pc->shutting_down) {
		pc->shutdown_again = true;
		return;
	}
	if (!admin) { /* never enabled: nothing written through it */
		set_shst(pc->ctrl, NVME_CSTS_SHST_CMPLT);
		return;
	}
	/* 3.6.1: SHST "occurring" until what the cache holds is durable,
	 * by the same sync a fabrics shutdown runs. */
	pc->shutting_down = true;
	pc->shutdown_gen = pc->reset_gen;
	set_shst(pc->ctrl, NVME_CSTS_SHST_OCCUR);
	memset(&pc->shutdown_req, 0, sizeof(pc->shutdown_req));
	pc->shutdown_req.sq = admin->sq;
	nvme_req_sync_all(&pc->shutdown_req, shutdown_synced);
}

/* ---- BAR0 ---- */

bool nvme_pcie_bar0_read(struct nvme_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t *val)
{
	uint64_t v;

	*val = 0;
	if ((size != 4 && size != 8) || off % size || off + size > NVME_PCIE_BAR0_SIZE)
		return false;
	if (off >= NVME_PCIE_DB_BASE) /* doorbells are write-only */
		return true;
	if (!nvme_ctrl_reg_read(pc->ctrl, (uint32_t)off, size, val))
		return true;
	/* One half of an 8-byte register (CAP, ASQ, ACQ). */
	if (size == 4 && !nvme_ctrl_reg_read(pc->ctrl, (uint32_t)(off & ~7ull), 8, &v))
		*val = off & 4 ? v >> 32 : (uint32_t)v;
	else
		*val = 0;
	return true;
}

bool nvme_pcie_bar0_write(struct nvme_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val)
{
	uint64_t v;

	if ((size != 4 && size != 8) || off % size || off + size > NVME_PCIE_BAR0_SIZE)
		return false;
	if (off >= NVME_PCIE_DB_BASE) {
		if (size == 4)
			pcie_doorbell(pc, (uint32_t)(off - NVME_PCIE_DB_BASE) / 4, (uint32_t)val);
		return true;
	}
	if (!nvme_ctrl_reg_write(pc->ctrl, (uint32_t)off, size, val))
		return true;
	/* One half of an 8-byte register: merge with the other half. */
	if (size == 4 && !nvme_ctrl_reg_read(pc->ctrl, (uint32_t)(off & ~7ull), 8, &v)) {
		v = off & 4 ? (v & 0xffffffffull) | val << 32 : (v & ~0xffffffffull) | (uint32_t)val;
		nvme_ctrl_reg_write(pc->ctrl, (uint32_t)(off & ~7ull), 8, v);
	}
	return true;
}

/* ---- Doorbell Buffer Config, interrupt features ---- */

uint16_t nvme_pcie_dbbuf(struct nvme_pcie_ctrl *pc, uint64_t shadow, uint64_t eventidx)
{
	/* 5.9: both page aligned, one page each, in guest memory. */
	if (!shadow || !eventidx || (shadow | eventidx) & (NVME_PAGE_SIZE - 1) ||
	    !pcie_gm_range_ok(pc, shadow, NVME_PAGE_SIZE) ||
	    !pcie_gm_range_ok(pc, eventidx, NVME_PAGE_SIZE))
		return nvme_err(NVME_SC_INVALID_FIELD);
	pc->dbbuf_shadow = shadow;
	pc->dbbuf_eventidx = eventidx;
	return 0;
}

uint16_t nvme_pcie_feature(struct nvme_pcie_ctrl *pc, uint8_t fid, bool set, uint32_t cdw11,
			   uint32_t *result)
{
	uint16_t iv = cdw11 & 0xffff;

	*result = 0;
	if (fid == NVME_FEAT_FID_IRQ_COALESCE) { /* 5.27.1.8: THR 7:0, TIME 15:8 */
		if (set)
			pc->irq_coalescing = cdw11 & 0xffff;
		else
			*result = pc->irq_coalescing;
		return 0;
	}
	/* 5.27.1.9: IV 15:0, CD bit 16; an IV no completion queue can use is
	 * Invalid Field. */
	if (iv >= pc->h.nr_vectors)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (set)
		pc->iv_cd[iv] = cdw11 & (1u << 16);
	else
		*result = iv | (uint32_t)pc->iv_cd[iv] << 16;
	return 0;
}
