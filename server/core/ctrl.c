/*
 * Controller lifetime, the CC/CSTS state machine, keep alive and
 * asynchronous events. See ctrl.h for the threading and lifetime rules.
 */
#include "ctrl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "nvme_cmd.h"
#include "pcie.h"
#include "subsys.h"

#define CSTS_RDY  (1u << NVME_CSTS_RDY_SHIFT)
#define CSTS_CFS  (1u << NVME_CSTS_CFS_SHIFT)
#define CSTS_SHST (NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT)

/* ---- lifetime ---- */

static void ka_expired(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct nvme_ctrl *ctrl = container_of(t, struct nvme_ctrl, ka_timer);

	(void)revents;
	/* Commands (or queues connecting) since the last expiry count as a
	 * keep-alive (NVMe Base 2.0, 3.9.4: the host may rely on traffic
	 * only with TBKAS; resetting on it anyway is what nvmet does, and it
	 * keeps a host in the middle of connecting its queues alive). */
	if (atomic_exchange(&ctrl->ka_traffic, false)) {
		ev_timer_again(loop, t);
		return;
	}
	ev_timer_stop(loop, t);
	log_warn("ctrl %u (%s): no keep alive for %u ms", ctrl->cntlid, ctrl->hostnqn,
		 ctrl->kato_ms);
	nvme_ctrl_fatal(ctrl, "keep-alive timeout");
}

/* Under s->lock. IDs are handed out round-robin so that a reconnecting host
 * does not get the ID of a controller it may still remember. */
static uint16_t alloc_cntlid(struct subsys *s)
{
	for (uint32_t tries = NVME_CNTLID_MIN; tries <= NVME_CNTLID_MAX; tries++) {
		uint16_t id = s->next_cntlid >= NVME_CNTLID_MIN ? s->next_cntlid : NVME_CNTLID_MIN;
		bool used = false;

		s->next_cntlid = id >= NVME_CNTLID_MAX ? NVME_CNTLID_MIN : (uint16_t)(id + 1);
		for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
			if (c->cntlid == id)
				used = true;
		if (!used)
			return id;
	}
	return 0;
}

struct subsys *nvme_ctrl_subsys_for_host(const char *subnqn, const char *hostnqn,
					 enum nvme_ctrl_refusal *why)
{
	struct subsys *s = subsys_find(subnqn);

	if (!s) {
		log_info("host %s: unknown subsystem %s", hostnqn, subnqn);
		*why = NVME_CTRL_NO_SUBSYS;
		return NULL;
	}
	if (!s->discovery && !subsys_host_allowed(s, hostnqn)) {
		log_info("host %s: refused by %s: host not allowed", hostnqn, s->nqn);
		subsys_put(s);
		*why = NVME_CTRL_HOST_DENIED;
		return NULL;
	}
	return s;
}

uint16_t nvme_ctrl_new(struct subsys *s, const struct nvme_ctrl_args *a, struct nvme_ctrl **out)
{
	struct nvme_ctrl *ctrl = calloc(1, sizeof(*ctrl));
	uint32_t kato_ms = a->kato_ms;

	if (!ctrl)
		return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	pthread_mutex_init(&ctrl->lock, NULL);
	atomic_init(&ctrl->refs, 1); /* the creator's, then the admin queue's */
	ctrl->discovery = s->discovery;
	snprintf(ctrl->subnqn, sizeof(ctrl->subnqn), "%s", a->subnqn);
	snprintf(ctrl->hostnqn, sizeof(ctrl->hostnqn), "%s", a->hostnqn);
	memcpy(ctrl->hostid, a->hostid, sizeof(ctrl->hostid));
	ctrl->ops = a->ops;
	if (a->port) {
		ctrl->port = *a->port;
		ctrl->port.next = NULL;
	}
	snprintf(ctrl->local_addr, sizeof(ctrl->local_addr), "%s", a->local_addr ? a->local_addr : "");
	ctrl->worker = a->worker;
	ctrl->nr_io_queues = ctrl->discovery ? 0 : NVME_MAX_IO_QUEUES;
	atomic_init(&ctrl->csts, 0);
	atomic_init(&ctrl->wce, s->any_write_cache);
	atomic_init(&ctrl->dead, false);

	pthread_mutex_lock(&s->lock);
	if (s->removed) {
		pthread_mutex_unlock(&s->lock);
		free(ctrl);
		return nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM);
	}
	ctrl->cntlid = alloc_cntlid(s);
	if (!ctrl->cntlid) {
		pthread_mutex_unlock(&s->lock);
		free(ctrl);
		return nvme_cmd_err(NVME_SC_CONNECT_CTRL_BUSY);
	}
	ctrl->next = s->ctrls;
	s->ctrls = ctrl;
	pthread_mutex_unlock(&s->lock);
	subsys_get(s);
	ctrl->subsys = s;

	/* A discovery controller without keep alive still must not live
	 * forever if the host vanishes (nvmet: 120 s). */
	if (!kato_ms && ctrl->discovery)
		kato_ms = NVME_DISC_KATO_MS;
	ev_timer_init(&ctrl->ka_timer, ka_expired, 0., 0.);
	nvme_ctrl_set_kato(ctrl, kato_ms);
	*out = ctrl;
	return 0;
}

void nvme_ctrl_bind_admin_queue(struct nvme_ctrl *ctrl, struct nvme_sq *sq, uint32_t sqsize)
{
	pthread_mutex_lock(&ctrl->lock);
	ctrl->sqs[0] = sq;
	sq->ctrl = ctrl;
	sq->qid = 0;
	sq->size = sqsize;
	pthread_mutex_unlock(&ctrl->lock);
}

/* A count of zero means the controller is on its way out and only waits
 * for s->lock to unlink itself. */
bool nvme_ctrl_tryget(struct nvme_ctrl *ctrl)
{
	int r = atomic_load(&ctrl->refs);

	while (r > 0)
		if (atomic_compare_exchange_weak(&ctrl->refs, &r, r + 1))
			return true;
	return false;
}

struct nvme_ctrl *nvme_ctrl_find(struct subsys *s, uint16_t cntlid)
{
	struct nvme_ctrl *found = NULL;

	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
		if (c->cntlid == cntlid && !atomic_load(&c->dead) && nvme_ctrl_tryget(c)) {
			found = c;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return found;
}

uint16_t nvme_ctrl_bind_io_queue(struct nvme_ctrl *ctrl, struct nvme_sq *sq, uint16_t qid,
				 uint32_t sqsize)
{
	uint16_t st = 0;

	pthread_mutex_lock(&ctrl->lock);
	if (atomic_load(&ctrl->dead) || qid == 0 || qid > ctrl->nr_io_queues)
		st = nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM);
	else if (ctrl->sqs[qid])
		st = nvme_err(NVME_SC_CMD_SEQ_ERROR); /* QID already in use */
	else {
		ctrl->sqs[qid] = sq;
		sq->ctrl = ctrl;
		sq->qid = qid;
		sq->size = sqsize;
		atomic_store(&ctrl->ka_traffic, true);
	}
	pthread_mutex_unlock(&ctrl->lock);
	return st;
}

void nvme_ctrl_get(struct nvme_ctrl *ctrl)
{
	atomic_fetch_add(&ctrl->refs, 1);
}

void nvme_ctrl_put(struct nvme_ctrl *ctrl)
{
	struct subsys *s = ctrl->subsys;

	if (atomic_fetch_sub(&ctrl->refs, 1) != 1)
		return;
	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl **p = &s->ctrls; *p; p = &(*p)->next)
		if (*p == ctrl) {
			*p = ctrl->next;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	log_debug("ctrl %u: freed", ctrl->cntlid);
	nvme_auth_ctrl_free(ctrl);
	pthread_mutex_destroy(&ctrl->lock);
	free(ctrl);
	subsys_put(s);
}

/*
 * Ask queues first..NVME_MAX_IO_QUEUES to disconnect; unbind them too when
 * unbind is set (a controller reset frees their QIDs at once).
 */
static void disconnect_queues(struct nvme_ctrl *ctrl, int first, bool unbind)
{
	struct nvme_sq *victims[NVME_MAX_IO_QUEUES + 1];
	int n = 0;

	pthread_mutex_lock(&ctrl->lock);
	for (int i = first; i <= (int)NVME_MAX_IO_QUEUES; i++) {
		if (!ctrl->sqs[i])
			continue;
		nvme_sq_get(ctrl->sqs[i]); /* alive while bound; keep it so after unlock */
		victims[n++] = ctrl->sqs[i];
		if (unbind)
			ctrl->sqs[i] = NULL;
	}
	pthread_mutex_unlock(&ctrl->lock);
	for (int i = 0; i < n; i++) {
		nvme_sq_request_disconnect(victims[i]);
		nvme_sq_put(victims[i]);
	}
}

static void pcie_lost_msg(struct worker_msg *m)
{
	struct nvme_ctrl *ctrl = container_of(m, struct nvme_ctrl, lost_msg);

	if (ctrl->pcie)
		nvme_pcie_lost(ctrl->pcie);
	nvme_ctrl_put(ctrl);
}

void nvme_ctrl_fatal(struct nvme_ctrl *ctrl, const char *why)
{
	/* Under the lock: a queue binding now sees it dead, or is seen below. */
	pthread_mutex_lock(&ctrl->lock);
	bool first = !atomic_exchange(&ctrl->dead, true);
	pthread_mutex_unlock(&ctrl->lock);
	if (first)
		log_info("ctrl %u (%s): %s: disconnecting", ctrl->cntlid, ctrl->subnqn, why);
	disconnect_queues(ctrl, 0, false);
	/* A PCIe controller may have no queue to carry the news: its device
	 * hears it on the controller's worker, where ctrl->pcie may be read. */
	if (first && !ctrl->ops->fabrics) {
		nvme_ctrl_get(ctrl);
		ctrl->lost_msg.fn = pcie_lost_msg;
		worker_post(ctrl->worker, &ctrl->lost_msg);
	}
}

void nvme_ctrl_unbind_sq(struct nvme_sq *sq)
{
	struct nvme_ctrl *ctrl = sq->ctrl;
	bool admin;

	if (!ctrl)
		return;
	pthread_mutex_lock(&ctrl->lock);
	admin = ctrl->sqs[0] == sq;
	if (ctrl->sqs[sq->qid] == sq)
		ctrl->sqs[sq->qid] = NULL;
	pthread_mutex_unlock(&ctrl->lock);
	/* A PCIe controller outlives its admin queue (a reset deletes it,
	 * CC.EN makes a new one); the device's removal ends it. */
	if (admin && !ctrl->pcie) {
		/* The host left (or we made it): the controller goes with it. */
		ev_timer_stop(worker_loop(ctrl->worker), &ctrl->ka_timer);
		nvme_ctrl_fatal(ctrl, "admin queue closed");
	}
	sq->ctrl = NULL;
	nvme_ctrl_put(ctrl);
}

void nvme_ctrl_abort_aers(struct nvme_ctrl *ctrl)
{
	struct nvme_req *aers[NVME_CTRL_AERL + 1];
	int n;

	pthread_mutex_lock(&ctrl->lock);
	n = ctrl->nr_aers;
	memcpy(aers, ctrl->aers, sizeof(aers[0]) * n);
	ctrl->nr_aers = 0;
	pthread_mutex_unlock(&ctrl->lock);
	for (int i = 0; i < n; i++)
		nvme_req_complete(aers[i], NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORT_QUEUE));
}

/* ---- registers ---- */

static uint64_t ctrl_cap(const struct nvme_ctrl *ctrl)
{
	/* NVMe Base 2.0, 3.1.3.1. MPSMIN = MPSMAX = 0 (4 KiB pages), DSTRD 0,
	 * CRMS 0. CSS: NVM (bit 37) and "I/O Command Sets" (bit 43), which
	 * makes the host write CC.CSS = 110b and see ZNS namespaces. PCIe
	 * queues must be physically contiguous (CQR). */
	return (uint64_t)(ctrl->pcie ? 1u : 0u) << NVME_CAP_CQR_SHIFT |
	       (uint64_t)(NVME_MAX_QUEUE_SIZE - 1) << NVME_CAP_MQES_SHIFT |
	       (uint64_t)NVME_CTRL_CAP_TO << NVME_CAP_TO_SHIFT |
	       (uint64_t)(NVME_CAP_CSS_NVM | NVME_CAP_CSS_CSI) << NVME_CAP_CSS_SHIFT;
}

/* What CC may ask for when it enables the controller (nvmet's checks). */
static bool cc_valid(const struct nvme_ctrl *ctrl, uint32_t cc)
{
	if (!ctrl->discovery &&
	    (NVME_CC_IOSQES(cc) != NVME_NVM_IOSQES || NVME_CC_IOCQES(cc) != NVME_NVM_IOCQES))
		return false;
	if (NVME_CC_MPS(cc) != 0 || NVME_CC_AMS(cc) != NVME_CC_AMS_RR)
		return false;
	return NVME_CC_CSS(cc) == NVME_CC_CSS_NVM || NVME_CC_CSS(cc) == NVME_CC_CSS_CSI;
}

static void write_cc(struct nvme_ctrl *ctrl, uint32_t cc)
{
	uint32_t old = ctrl->cc;
	uint32_t csts = atomic_load(&ctrl->csts);
	bool pcie_reset = false, pcie_shutdown = false;

	ctrl->cc = cc; /* verbatim: read back by Property Get */

	if (NVME_CC_EN(cc) && !NVME_CC_EN(old)) {
		/* A PCIe controller also needs valid admin queues (AQA/ASQ/ACQ). */
		if (cc_valid(ctrl, cc) && (!ctrl->pcie || nvme_pcie_enable(ctrl->pcie))) {
			csts |= CSTS_RDY;
		} else {
			log_warn("ctrl %u: CC %#x cannot be enabled (IOSQES/IOCQES/MPS/AMS/CSS/AQA)",
				 ctrl->cntlid, cc);
			csts |= CSTS_CFS;
		}
	} else if (!NVME_CC_EN(cc) && NVME_CC_EN(old)) {
		/* Controller reset (3.7.2): its I/O queues are gone. On PCIe
		 * every queue goes, and RDY clears once they drained. */
		csts &= ~CSTS_CFS;
		if (ctrl->pcie) {
			pcie_reset = true;
		} else {
			csts &= ~CSTS_RDY;
			disconnect_queues(ctrl, 1, true);
		}
	}

	if (NVME_CC_SHN(cc) && !NVME_CC_SHN(old)) {
		if (ctrl->pcie && !pcie_reset) /* SHST follows the namespace sync */
			pcie_shutdown = true;
		else /* fabrics: Property Set synced before writing CC */
			csts = (csts & ~CSTS_SHST) | NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT;
	} else if (!NVME_CC_SHN(cc) && NVME_CC_SHN(old)) {
		csts &= ~CSTS_SHST;
	}

	atomic_store_explicit(&ctrl->csts, csts, memory_order_release);
	if (pcie_reset)
		nvme_pcie_reset(ctrl->pcie);
	if (pcie_shutdown)
		nvme_pcie_shutdown(ctrl->pcie);
}

/* The admin queue registers: PCIe only, and not while enabled (NVMe Base
 * 2.0, 3.1.3.8 - 3.1.3.10: the admin queues are set up before CC.EN). */
static bool aq_writable(const struct nvme_ctrl *ctrl)
{
	return !ctrl->ops->fabrics && !NVME_CC_EN(ctrl->cc);
}

uint16_t nvme_ctrl_reg_read(const struct nvme_ctrl *ctrl, uint32_t off, unsigned size,
			    uint64_t *val)
{
	bool pcie = !ctrl->ops->fabrics;
	unsigned want;

	switch (off) {
	case NVME_REG_CAP:
		want = 8;
		*val = ctrl_cap(ctrl);
		break;
	case NVME_REG_VS:
		want = 4;
		*val = nvme_ctrl_vs(ctrl);
		break;
	case NVME_REG_CC: /* verbatim: Linux 6.1 writes back what it reads */
		want = 4;
		*val = ctrl->cc;
		break;
	case NVME_REG_CSTS:
		want = 4;
		*val = atomic_load(&ctrl->csts);
		break;
	case NVME_REG_NSSR:   /* CAP.NSSRS 0 */
	case NVME_REG_CMBLOC: /* no controller memory buffer */
	case NVME_REG_CMBSZ:
		want = 4;
		*val = 0;
		break;
	case NVME_REG_AQA:
		want = pcie ? 4 : 0;
		*val = ctrl->aqa;
		break;
	case NVME_REG_ASQ:
		want = pcie ? 8 : 0;
		*val = ctrl->asq;
		break;
	case NVME_REG_ACQ:
		want = pcie ? 8 : 0;
		*val = ctrl->acq;
		break;
	default:
		want = 0;
		break;
	}
	if (size != want) {
		*val = 0;
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
	return 0;
}

uint16_t nvme_ctrl_reg_write(struct nvme_ctrl *ctrl, uint32_t off, unsigned size, uint64_t val)
{
	switch (off) {
	case NVME_REG_CC:
		if (size != 4)
			break;
		write_cc(ctrl, (uint32_t)val);
		return 0;
	case NVME_REG_AQA:
		if (size != 4 || !aq_writable(ctrl))
			break;
		ctrl->aqa = (uint32_t)val;
		return 0;
	case NVME_REG_ASQ:
	case NVME_REG_ACQ:
		/* Page aligned (MPS 4 KiB): the low 12 bits are reserved. */
		if (size != 8 || !aq_writable(ctrl))
			break;
		*(off == NVME_REG_ASQ ? &ctrl->asq : &ctrl->acq) = val & ~0xfffull;
		return 0;
	default:
		break; /* read-only, reserved, or not ours (NSSR: no subsystem reset) */
	}
	return nvme_err(NVME_SC_INVALID_FIELD);
}

/* ---- keep alive ---- */

void nvme_ctrl_keep_alive(struct nvme_ctrl *ctrl)
{
	if (ctrl->kato_ms)
		ev_timer_again(worker_loop(ctrl->worker), &ctrl->ka_timer);
}

void nvme_ctrl_set_kato(struct nvme_ctrl *ctrl, uint32_t kato_ms)
{
	struct ev_loop *loop = worker_loop(ctrl->worker);

	ctrl->kato_ms = kato_ms;
	if (!kato_ms) {
		ev_timer_stop(loop, &ctrl->ka_timer);
		return;
	}
	ctrl->ka_timer.repeat = kato_ms / 1000.0;
	ev_timer_again(loop, &ctrl->ka_timer);
}

/* ---- asynchronous events (NVMe Base 2.0, 5.2) ---- */

/* Pair parked AERs with queued events, oldest first (admin worker). */
static void deliver_events(struct nvme_ctrl *ctrl)
{
	struct nvme_req *reqs[NVME_CTRL_AERL + 1];
	uint64_t results[NVME_CTRL_AERL + 1];
	int n = 0;

	pthread_mutex_lock(&ctrl->lock);
	while (ctrl->nr_aers && ctrl->nr_events) {
		reqs[n] = ctrl->aers[0];
		results[n++] = ctrl->events[0];
		memmove(ctrl->aers, ctrl->aers + 1, sizeof(ctrl->aers[0]) * --ctrl->nr_aers);
		memmove(ctrl->events, ctrl->events + 1, sizeof(ctrl->events[0]) * --ctrl->nr_events);
	}
	pthread_mutex_unlock(&ctrl->lock);
	for (int i = 0; i < n; i++) {
		reqs[i]->result = results[i];
		nvme_req_complete(reqs[i], 0);
	}
}

static void aen_msg(struct worker_msg *msg)
{
	struct nvme_ctrl *ctrl = container_of(msg, struct nvme_ctrl, aen_msg);

	pthread_mutex_lock(&ctrl->lock);
	ctrl->aen_posted = false;
	pthread_mutex_unlock(&ctrl->lock);
	deliver_events(ctrl);
	nvme_ctrl_put(ctrl);
}

uint16_t nvme_ctrl_park_aer(struct nvme_ctrl *ctrl, struct nvme_req *req)
{
	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->nr_aers > (int)NVME_CTRL_AERL) {
		pthread_mutex_unlock(&ctrl->lock);
		return nvme_cmd_err(NVME_SC_ASYNC_LIMIT);
	}
	ctrl->aers[ctrl->nr_aers++] = req;
	pthread_mutex_unlock(&ctrl->lock);
	deliver_events(ctrl);
	return 0;
}

void nvme_ctrl_event(struct nvme_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid,
		     uint32_t dw1, uint32_t aec_bit, uint32_t mask)
{
	bool post = false;

	pthread_mutex_lock(&ctrl->lock);
	if (!atomic_load(&ctrl->dead) && (!aec_bit || (ctrl->aec & aec_bit)) && !(ctrl->aen_masked & mask) &&
	    ctrl->nr_events < NVME_CTRL_MAX_EVENTS) {
		/* CQE DW0: type 2:0, information 15:8, log page 23:16. */
		ctrl->events[ctrl->nr_events++] = type | (uint32_t)info << 8 |
						  (uint32_t)lid << 16 | (uint64_t)dw1 << 32;
		ctrl->aen_masked |= mask;
		/* The message holds a reference until it ran. */
		post = !ctrl->aen_posted && nvme_ctrl_tryget(ctrl);
		ctrl->aen_posted |= post;
	}
	pthread_mutex_unlock(&ctrl->lock);
	if (post) {
		ctrl->aen_msg.fn = aen_msg;
		worker_post(ctrl->worker, &ctrl->aen_msg);
	}
}

void nvme_ctrl_event_unmask(struct nvme_ctrl *ctrl, uint32_t mask)
{
	pthread_mutex_lock(&ctrl->lock);
	ctrl->aen_masked &= ~mask;
	pthread_mutex_unlock(&ctrl->lock);
}

void nvme_ctrl_ns_changed(struct nvme_ctrl *ctrl, uint32_t nsid)
{
	bool listed = false;

	pthread_mutex_lock(&ctrl->lock);
	for (int i = 0; i < ctrl->nr_changed_ns && i < NVME_ID_NS_LIST_MAX; i++)
		listed |= ctrl->changed_ns[i] == nsid;
	if (!listed) {
		if (ctrl->nr_changed_ns < NVME_ID_NS_LIST_MAX)
			ctrl->changed_ns[ctrl->nr_changed_ns] = nsid;
		if (ctrl->nr_changed_ns <= NVME_ID_NS_LIST_MAX)
			ctrl->nr_changed_ns++; /* one past the end = overflowed */
	}
	pthread_mutex_unlock(&ctrl->lock);
	nvme_ctrl_event(ctrl, NVME_AER_NOTICE, NVME_AER_NOTICE_NS_CHANGED, NVME_LOG_LID_CHANGED_NS,
			0, NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES, NVME_AEN_MASK_NS_CHANGED);
}
