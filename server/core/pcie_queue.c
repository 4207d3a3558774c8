/*
 * The PCIe controller's queues in guest memory (NVMe Base 2.0, 3.3.1):
 * submission queues the controller fetches 64-byte commands from when the
 * host writes their tail doorbell, completion queues it posts 16-byte
 * entries to with the phase tag (4.6), raising the queue's interrupt
 * vector, and the Create/Delete I/O queue objects (5.4 - 5.7).
 *
 * Every guest address is reached through the transport's map(), entry by
 * entry: a queue the guest unmapped makes the controller fail (CSTS.CFS),
 * never touches other memory. Command data stays in guest memory: the PRPs
 * or the SGL become the request's iovecs (prp.c, sgl.c), no bounce buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nvme_cmd.h"
#include "pcie_priv.h"

#define SQE_SIZE 64u
#define CQE_SIZE 16u

bool pcie_gm_range_ok(const struct nvme_pcie_ctrl *pc, uint64_t addr, uint64_t len)
{
	while (len) {
		uint64_t n = NVME_PAGE_SIZE - (addr & (NVME_PAGE_SIZE - 1));

		void *p;

		if (n > len)
			n = len;
		if (addr + n < addr || !(p = pc->h.gm.map(pc->h.gm.ctx, addr, (size_t)n)))
			return false;
		nvme_gm_unmap(&pc->h.gm, p, (size_t)n);
		addr += n;
		len -= n;
	}
	return true;
}

/* ---- completion queues ---- */

void pcie_cq_init(struct pcie_cq *cq, uint64_t addr, uint32_t entries, uint16_t iv, bool ien)
{
	memset(cq, 0, sizeof(*cq));
	cq->live = true;
	cq->addr = addr;
	cq->size = entries;
	cq->phase = true; /* the queue memory starts zeroed: first pass posts 1 */
	cq->iv = iv;
	cq->ien = ien;
	cq->backlog_tail = &cq->backlog;
}

static bool cq_full(const struct pcie_cq *cq)
{
	return (cq->tail + 1) % cq->size == cq->head;
}

/*
 * Interrupt coalescing (NVMe Base 2.0, 5.27.1.8 and 5.27.1.9): an I/O
 * completion queue's vector fires once THR + 1 entries were posted on it
 * since it last fired, or TIME x 100 us after the first of them, whichever
 * comes first. TIME 0 (the default) is "no delay": every entry fires. The
 * admin queue's entries and vectors with Coalescing Disable fire at once
 * (and take what waited on their vector with them).
 */
static struct ev_loop *ctrl_loop(const struct nvme_pcie_ctrl *pc)
{
	return worker_loop(pc->ctrl->worker);
}

static void vec_fire(struct nvme_pcie_ctrl *pc, struct pcie_vec *v)
{
	v->pending = 0;
	ev_timer_stop(ctrl_loop(pc), &v->timer);
	pc->h.irq(pc->h.ctx, v->iv);
}

static void vec_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pcie_vec *v = container_of(t, struct pcie_vec, timer);

	(void)loop;
	(void)revents;
	vec_fire(v->pc, v);
}

void pcie_vecs_init(struct nvme_pcie_ctrl *pc)
{
	for (uint16_t i = 0; i < NVME_PCIE_MAX_VECTORS; i++) {
		pc->vecs[i].pc = pc;
		pc->vecs[i].iv = i;
		ev_timer_init(&pc->vecs[i].timer, vec_timer_cb, 0., 0.);
	}
}

void pcie_vecs_stop(struct nvme_pcie_ctrl *pc)
{
	for (unsigned i = 0; i < NVME_PCIE_MAX_VECTORS; i++) {
		pc->vecs[i].pending = 0;
		ev_timer_stop(ctrl_loop(pc), &pc->vecs[i].timer);
	}
}

static void cq_irq(struct nvme_pcie_ctrl *pc, struct pcie_cq *cq)
{
	uint32_t thr = pc->irq_coalescing & 0xff, time = (pc->irq_coalescing >> 8) & 0xff;
	struct pcie_vec *v = &pc->vecs[cq->iv];

	if (cq == &pc->cqs[0] || !time || pc->iv_cd[cq->iv] || ++v->pending > thr) {
		vec_fire(pc, v);
		return;
	}
	if (!ev_is_active(&v->timer)) {
		ev_timer_set(&v->timer, time * 100e-6, 0.);
		ev_timer_start(ctrl_loop(pc), &v->timer);
	}
}

/* Write the CQE of req at the tail; the status word (with the phase tag)
 * goes last, so the host never sees a new phase with old contents. */
static bool cq_post(struct nvme_pcie_ctrl *pc, struct pcie_cq *cq, struct pcie_req *r)
{
	struct nvme_cqe cqe = r->req.cqe;
	uint8_t *slot = pc->h.gm.map(pc->h.gm.ctx, cq->addr + (uint64_t)cq->tail * CQE_SIZE,
				     CQE_SIZE);
	uint16_t status;

	if (!slot) {
		pcie_fatal(pc, "completion queue outside guest memory");
		return false;
	}
	/* SQHD: how far the controller fetched (4.6.1), not a count. */
	cqe.sqhd = htole16((uint16_t)r->psq->head);
	status = htole16((uint16_t)((le16toh(cqe.status) & ~1u) | cq->phase));
	memcpy(slot, &cqe, offsetof(struct nvme_cqe, status));
	__atomic_store_n((uint16_t *)(void *)(slot + offsetof(struct nvme_cqe, status)), status,
			 __ATOMIC_RELEASE);
	nvme_gm_unmap(&pc->h.gm, slot, CQE_SIZE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
	if (cq->ien)
		cq_irq(pc, cq);
	return true;
}

/* ---- command slots ---- */

static void sq_fetch(struct pcie_sq *psq);

static struct pcie_req *req_get(struct pcie_sq *psq)
{
	struct pcie_req *r = psq->free;

	if (r) {
		psq->free = r->next;
		return r;
	}
	/* At most one slot per entry: a host that rings past what it got
	 * completions for waits for slots, it does not grow memory. */
	if (psq->nr_reqs >= psq->size)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->psq = psq;
	psq->nr_reqs++;
	return r;
}

static void req_put(struct pcie_sq *psq, struct pcie_req *r)
{
	bool starved = !psq->free && psq->nr_reqs >= psq->size;

	r->next = psq->free;
	psq->free = r;
	if (starved && psq->head != psq->tail)
		sq_fetch(psq);
}

/* SGL data blocks need not start on a page: room for this many of them
 * beyond one iovec per page (more is Invalid Field). */
#define SGL_EXTRA_IOV 256

/* The data of a command as iovecs into guest memory (one per page piece). */
static uint16_t map_data(struct nvme_pcie_ctrl *pc, struct pcie_req *r)
{
	int need = (int)(r->req.transfer_len / NVME_PAGE_SIZE) + 2 +
		   (r->req.sgl_mem ? SGL_EXTRA_IOV : 0);
	int cnt;
	uint16_t st;

	if (r->iov_cap < need) {
		struct iovec *v = realloc(r->iov, sizeof(*v) * (size_t)need);

		if (!v)
			return nvme_err(NVME_SC_INTERNAL);
		r->iov = v;
		r->iov_cap = need;
	}
	if (r->req.sgl_mem)
		st = nvme_sgl_map(&pc->h.gm, &r->req.cmd.dptr.sgl, r->req.transfer_len, r->iov,
				  r->iov_cap, &cnt);
	else
		st = nvme_prp_map(&pc->h.gm, le64toh(r->req.cmd.dptr.prp.prp1),
				  le64toh(r->req.cmd.dptr.prp.prp2), r->req.transfer_len, r->iov,
				  r->iov_cap, &cnt);
	if (st)
		return st;
	r->req.iov = r->iov;
	r->req.iovcnt = cnt;
	return 0;
}

static void start(struct nvme_pcie_ctrl *pc, struct pcie_req *r)
{
	uint16_t st;

	if (!nvme_req_init(&r->req, r->psq->sq)) {
		r->req.ops->queue_response(&r->req);
		return;
	}
	if (r->req.transfer_len && (st = map_data(pc, r))) {
		nvme_req_complete(&r->req, st);
		return;
	}
	nvme_req_execute(&r->req);
}

/* Run the commands between head and tail. Completions may re-enter (a
 * freed slot restarts a starved queue): they only ask for another round. */
static void sq_fetch(struct pcie_sq *psq)
{
	struct nvme_pcie_ctrl *pc = psq->pc;

	if (psq->fetching) {
		psq->refetch = true;
		return;
	}
	psq->fetching = true;
	do {
		psq->refetch = false;
		while (!psq->closing && !pc->failed && !pc->resetting && psq->head != psq->tail) {
			struct pcie_req *r = req_get(psq);
			const void *sqe;

			if (!r)
				break;
			sqe = pc->h.gm.map(pc->h.gm.ctx, psq->addr + (uint64_t)psq->head * SQE_SIZE,
					   SQE_SIZE);
			if (!sqe) {
				r->next = psq->free;
				psq->free = r;
				pcie_fatal(pc, "submission queue outside guest memory");
				break;
			}
			memcpy(&r->req.cmd, sqe, SQE_SIZE);
			nvme_gm_unmap(&pc->h.gm, (void *)(uintptr_t)sqe, SQE_SIZE);
			psq->head = (psq->head + 1) % psq->size;
			start(pc, r);
		}
	} while (psq->refetch);
	psq->fetching = false;
}

void nvme_pcie_queue_response(struct nvme_req *req)
{
	struct pcie_req *r = container_of(req, struct pcie_req, req);
	struct pcie_sq *psq = r->psq;
	struct nvme_pcie_ctrl *pc = psq->pc;
	struct pcie_cq *cq = &pc->cqs[psq->cqid];

	/* The handler is done with the data: let go of the guest pages. */
	nvme_gm_unmap_iov(&pc->h.gm, req->iov, req->iovcnt);
	req->iov = NULL;
	req->iovcnt = 0;
	/* After a reset or a fatal error nothing more reaches the guest. */
	if (pc->resetting || pc->failed || !cq->live) {
		req_put(psq, r);
		return;
	}
	if (cq->backlog || cq_full(cq)) {
		r->next = NULL;
		*cq->backlog_tail = r;
		cq->backlog_tail = &r->next;
		return;
	}
	cq_post(pc, cq, r);
	req_put(psq, r);
}

/* The host consumed entries: post what waited for room. */
static void cq_drain_backlog(struct nvme_pcie_ctrl *pc, struct pcie_cq *cq)
{
	while (cq->backlog && !cq_full(cq) && !pc->failed) {
		struct pcie_req *r = cq->backlog;

		cq->backlog = r->next;
		if (!cq->backlog)
			cq->backlog_tail = &cq->backlog;
		cq_post(pc, cq, r);
		req_put(r->psq, r);
	}
}

/* ---- doorbells (3.1.3.13 - 3.1.3.14) ---- */

void pcie_db_reset(struct nvme_pcie_ctrl *pc, uint32_t idx)
{
	if (pc->h.db_reset)
		pc->h.db_reset(pc->h.ctx, idx);
}

static void bad_doorbell(struct nvme_pcie_ctrl *pc, uint8_t info, uint32_t idx, uint32_t val)
{
	log_warn("ctrl %u: doorbell %u written with %u: %s", pc->ctrl->cntlid, idx, val,
		 info == NVME_AER_ERROR_INVALID_DB_REG ? "no such queue" : "beyond the queue");
	nvme_ctrl_event(pc->ctrl, NVME_AER_ERROR, info, NVME_LOG_LID_ERROR, 0, 0, 0);
}

/*
 * Doorbell Buffer Config (5.9), for I/O queues (the host keeps the admin
 * queue's doorbells in BAR0): the host writes each new doorbell value to
 * its shadow slot and rings BAR0 only when the event index says the
 * controller wants it. The shadow is the newest value. We set the event
 * index to what we have seen, so the next new entry rings; then read the
 * shadow once more, since the host may have written it after our read and
 * before our event index write (and not rung, trusting an old index): the
 * fence pairs with the host's between its shadow write and index read.
 */
static bool dbbuf_on(const struct nvme_pcie_ctrl *pc, uint32_t idx)
{
	return pc->dbbuf_shadow && idx >= 2;
}

static bool dbbuf_shadow(const struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t *val)
{
	const uint32_t *p = pc->h.gm.map(pc->h.gm.ctx, pc->dbbuf_shadow + (uint64_t)idx * 4, 4);

	if (!p)
		return false;
	*val = le32toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
	nvme_gm_unmap(&pc->h.gm, (void *)(uintptr_t)p, 4);
	return true;
}

static void dbbuf_event(const struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t val)
{
	uint32_t *ei = pc->h.gm.map(pc->h.gm.ctx, pc->dbbuf_eventidx + (uint64_t)idx * 4, 4);

	if (ei) {
		__atomic_store_n(ei, htole32(val), __ATOMIC_RELEASE);
		nvme_gm_unmap(&pc->h.gm, ei, 4);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* The doorbell's value: the BAR0 write, or the newest shadow value. */
static uint32_t db_value(const struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t val)
{
	uint32_t sh;

	if (dbbuf_on(pc, idx) && dbbuf_shadow(pc, idx, &sh))
		return sh;
	return val;
}

/* One doorbell value for SQ or CQ qid: false if it is beyond the queue. */
static bool db_apply(struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t val)
{
	uint16_t qid = (uint16_t)(idx / 2);

	if (idx % 2 == 0) { /* SQ tail */
		struct pcie_sq *psq = pc->sqs[qid];

		if (val >= psq->size)
			return false;
		psq->tail = val;
		sq_fetch(psq);
	} else { /* CQ head */
		struct pcie_cq *cq = &pc->cqs[qid];

		if (val >= cq->size)
			return false;
		cq->head = val;
		cq_drain_backlog(pc, cq);
	}
	return true;
}

void pcie_doorbell(struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t val)
{
	uint16_t qid = (uint16_t)(idx / 2);
	bool exists;

	if (pc->failed || pc->resetting)
		return;
	if (qid > NVME_MAX_IO_QUEUES)
		exists = false;
	else if (idx % 2 == 0)
		exists = pc->sqs[qid] && !pc->sqs[qid]->closing;
	else
		exists = pc->cqs[qid].live;
	if (!exists) {
		bad_doorbell(pc, NVME_AER_ERROR_INVALID_DB_REG, idx, val);
		return;
	}
	val = db_value(pc, idx, val);
	for (;;) {
		uint32_t again;

		if (!db_apply(pc, idx, val)) {
			bad_doorbell(pc, NVME_AER_ERROR_INVALID_DB_VAL, idx, val);
			return;
		}
		if (!dbbuf_on(pc, idx))
			return;
		dbbuf_event(pc, idx, val);
		/* The queue may be gone meanwhile (a reset from a command). */
		if (pc->failed || pc->resetting || !dbbuf_shadow(pc, idx, &again) || again == val)
			return;
		val = again;
	}
}

/* ---- submission queue objects ---- */

struct pcie_sq *pcie_sq_new(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			    uint32_t entries, uint16_t cqid)
{
	struct pcie_sq *psq = calloc(1, sizeof(*psq));
	uint16_t st;

	if (!psq)
		return NULL;
	psq->pc = pc;
	psq->qid = qid;
	psq->cqid = cqid;
	psq->addr = addr;
	psq->size = entries;
	psq->sq = nvme_sq_alloc(pc->ctrl->worker, &pc->port, NULL, psq);
	if (!psq->sq) {
		free(psq);
		return NULL;
	}
	nvme_ctrl_get(pc->ctrl); /* the queue's, given back by nvme_sq_free */
	if (qid == 0) {
		nvme_ctrl_bind_admin_queue(pc->ctrl, psq->sq, entries);
		st = 0;
	} else {
		st = nvme_ctrl_bind_io_queue(pc->ctrl, psq->sq, qid, entries);
	}
	pc->sqs[qid] = psq;
	pc->cqs[cqid].nr_sqs++;
	if (st) { /* controller dead: let the queue go the usual way */
		nvme_ctrl_put(pc->ctrl);
		pcie_sq_close(psq);
		return NULL;
	}
	return psq;
}

static void sq_free_msg(struct worker_msg *msg)
{
	struct pcie_sq *psq = container_of(msg, struct pcie_sq, free_msg);
	struct nvme_pcie_ctrl *pc = psq->pc;
	struct pcie_cq *cq = &pc->cqs[psq->cqid];
	struct nvme_req *del = psq->delete_req;

	/* Completions of this queue still waiting for room are dropped:
	 * the queue they answer is gone. */
	for (struct pcie_req **p = &cq->backlog; *p;) {
		if ((*p)->psq == psq) {
			struct pcie_req *r = *p;

			*p = r->next;
			r->next = psq->free;
			psq->free = r;
		} else {
			p = &(*p)->next;
		}
	}
	cq->backlog_tail = &cq->backlog;
	while (*cq->backlog_tail)
		cq->backlog_tail = &(*cq->backlog_tail)->next;
	cq->nr_sqs--;
	pc->sqs[psq->qid] = NULL;
	nvme_sq_free(psq->sq);
	while (psq->free) {
		struct pcie_req *r = psq->free;

		psq->free = r->next;
		free(r->iov);
		free(r);
	}
	free(psq);
	if (del)
		nvme_req_complete(del, 0);
	pcie_sq_gone(pc);
}

void nvme_pcie_drained(void *conn)
{
	struct pcie_sq *psq = conn;

	/* Free from a fresh call chain (transport.h). */
	psq->free_msg.fn = sq_free_msg;
	worker_post(psq->sq->worker, &psq->free_msg);
}

void pcie_sq_close(struct pcie_sq *psq)
{
	if (psq->closing)
		return;
	psq->closing = true;
	psq->pc->closing_sqs++;
	nvme_sq_close(psq->sq);
}

void nvme_pcie_disconnect(void *conn)
{
	struct pcie_sq *psq = conn;

	/* The core gave the controller up (subsystem removed, target
	 * stopping): fail it and let its queues go. */
	pcie_fatal(psq->pc, "controller torn down");
	nvme_pcie_reset(psq->pc);
}

/* ---- Create / Delete I/O queues (5.4 - 5.7) ---- */

static bool qid_valid(const struct nvme_pcie_ctrl *pc, uint16_t qid)
{
	return qid >= 1 && qid <= pc->ctrl->nr_io_queues && qid <= NVME_MAX_IO_QUEUES;
}

static bool size_valid(uint32_t entries)
{
	return entries >= 2 && entries <= NVME_MAX_QUEUE_SIZE; /* QSIZE 0's based, <= MQES */
}

uint16_t nvme_pcie_create_cq(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			     uint32_t entries, uint16_t iv, bool ien)
{
	if (!qid_valid(pc, qid) || pc->cqs[qid].live)
		return nvme_cmd_err(NVME_SC_QID_INVALID);
	if (!size_valid(entries))
		return nvme_cmd_err(NVME_SC_QUEUE_SIZE);
	if (iv >= pc->h.nr_vectors)
		return nvme_cmd_err(NVME_SC_INVALID_VECTOR);
	if ((addr & (NVME_PAGE_SIZE - 1)) || !pcie_gm_range_ok(pc, addr, (uint64_t)entries * CQE_SIZE))
		return nvme_err(NVME_SC_INVALID_FIELD);
	pcie_cq_init(&pc->cqs[qid], addr, entries, iv, ien);
	pcie_db_reset(pc, 2u * qid + 1);
	return 0;
}

bool nvme_pcie_has_io_cq(const struct nvme_pcie_ctrl *pc)
{
	for (unsigned i = 1; i <= NVME_MAX_IO_QUEUES; i++)
		if (pc->cqs[i].live)
			return true;
	return false;
}

uint16_t nvme_pcie_delete_cq(struct nvme_pcie_ctrl *pc, uint16_t qid)
{
	if (qid == 0 || qid > NVME_MAX_IO_QUEUES || !pc->cqs[qid].live)
		return nvme_cmd_err(NVME_SC_QID_INVALID);
	if (pc->cqs[qid].nr_sqs) /* its submission queues go first */
		return nvme_cmd_err(NVME_SC_INVALID_QUEUE);
	pc->cqs[qid].live = false;
	return 0;
}

uint16_t nvme_pcie_create_sq(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			     uint32_t entries, uint16_t cqid)
{
	if (cqid == 0 || cqid > NVME_MAX_IO_QUEUES || !pc->cqs[cqid].live)
		return nvme_cmd_err(NVME_SC_CQ_INVALID);
	if (!qid_valid(pc, qid) || pc->sqs[qid])
		return nvme_cmd_err(NVME_SC_QID_INVALID);
	if (!size_valid(entries))
		return nvme_cmd_err(NVME_SC_QUEUE_SIZE);
	if ((addr & (NVME_PAGE_SIZE - 1)) || !pcie_gm_range_ok(pc, addr, (uint64_t)entries * SQE_SIZE))
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!pcie_sq_new(pc, qid, addr, entries, cqid))
		return nvme_err(NVME_SC_INTERNAL);
	pcie_db_reset(pc, 2u * qid);
	return 0;
}

uint16_t nvme_pcie_delete_sq(struct nvme_pcie_ctrl *pc, uint16_t qid, struct nvme_req *req)
{
	struct pcie_sq *psq = qid >= 1 && qid <= NVME_MAX_IO_QUEUES ? pc->sqs[qid] : NULL;

	if (!psq || psq->closing)
		return nvme_cmd_err(NVME_SC_QID_INVALID);
	/* Its commands in flight finish and post their completions; the
	 * Delete completes once the last came back (5.7). */
	psq->delete_req = req;
	pcie_sq_close(psq);
	return 0;
}
