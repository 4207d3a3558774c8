/*
 * Reservations in the controller core (resv_cmd.h; NVMe Base 2.0, 8.1.22).
 * The rules are resv.c's, the state and its file resv_store.c's; this file
 * decodes the commands, runs a change on an I/O thread (it is answered only
 * once its file is synced), refuses the commands of hosts without access,
 * and tells the hosts a change concerns (log page 80h and its event).
 *
 * A host is known by its Host Identifier: the Connect data's on fabrics;
 * on a PCIe (vfio-user) controller, the one its device was created with
 * (stable per socket path) until the host sets its own with Set Features
 * Host Identifier, as PCIe hosts do (doc/reservations.md).
 */
#include <string.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "ns.h"
#include "nvme_cmd.h"
#include "resv_store.h"
#include "subsys.h"

#define NVME_SC_HOSTID_INCONSISTENT 0x18 /* Host Identifier Inconsistent Format */
#define CDW10_IEKEY (1u << 3)
#define FEAT_SV (1u << 31)
#define FEAT_EXHID 1u                    /* Host Identifier: 128-bit */
#define RESV_MASK_ALL (NVME_FEAT_RESV_NOTIFY_REGPRE | NVME_FEAT_RESV_NOTIFY_RESREL | \
		       NVME_FEAT_RESV_NOTIFY_RESPRE)

static uint32_t cdw10(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw10);
}

static bool hostid_unset(const uint8_t id[16])
{
	static const uint8_t zero[16];

	return !memcmp(id, zero, 16);
}

/* ---- notifications (5.16.1.24; any thread) ---- */

/* One page for ctrl if it is host's and the page type is not masked; the
 * event when the page is queued. */
static void log_add(struct nvme_ctrl *c, const uint8_t host[16], uint8_t type, uint32_t nsid)
{
	struct nvme_resv_ctrl *r = &c->resv;
	bool post = false;

	pthread_mutex_lock(&c->lock);
	if (!memcmp(c->hostid, host, 16) && !(r->mask[nsid] & (1u << type))) {
		if (++r->count == 0) /* 0 is never a count */
			r->count = 1;
		if (r->n < NVME_RESV_LOG_MAX) {
			struct nvme_resv_page *p = &r->q[(r->head + r->n++) % NVME_RESV_LOG_MAX];

			p->count = r->count;
			p->type = type;
			p->nsid = nsid;
		} else {
			/* Lost: the last page in the queue takes its count
			 * (Base 2.0a, 5.16.1.25), so the host sees the gap. */
			r->q[(r->head + r->n - 1) % NVME_RESV_LOG_MAX].count = r->count;
		}
		post = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (post)
		nvme_ctrl_event(c, NVME_AER_CSS, NVME_AER_CSS_NVM_RESERVATION,
				NVME_LOG_LID_RESERVATION, 0, 0, NVME_AEN_MASK_RESV);
}

/* Every controller of each notified host (8.1.22.x: a notification goes to
 * each controller of the host). */
static void notify(struct nvme_req *req, const struct resv_notes *notes)
{
	struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint32_t nsid = ns_info(req->ns)->nsid;

	if (!notes->n)
		return;
	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
		for (uint16_t i = 0; i < notes->n; i++)
			log_add(c, notes->v[i].hostid, notes->v[i].type, nsid);
	pthread_mutex_unlock(&s->lock);
}

/* ---- Register, Acquire, Release: a change, on an I/O thread ---- */

struct resv_args {
	const struct nvme_req *req;
	uint8_t host[16];
	uint64_t key1, key2;         /* CRKEY, then NRKEY / PRKEY */
	struct resv_notes notes;
};

static uint16_t op_register(struct resv_state *s, void *arg)
{
	struct resv_args *a = arg;
	uint32_t v = cdw10(a->req);

	return resv_register(s, a->host, v & 7, v & CDW10_IEKEY, v >> 30, a->key1, a->key2,
			     &a->notes);
}

static uint16_t op_acquire(struct resv_state *s, void *arg)
{
	struct resv_args *a = arg;
	uint32_t v = cdw10(a->req);

	return resv_acquire(s, a->host, v & 7, v & CDW10_IEKEY, (v >> 8) & 0xff, a->key1, a->key2,
			    &a->notes);
}

static uint16_t op_release(struct resv_state *s, void *arg)
{
	struct resv_args *a = arg;
	uint32_t v = cdw10(a->req);

	return resv_release(s, a->host, v & 7, v & CDW10_IEKEY, (v >> 8) & 0xff, a->key1,
			    &a->notes);
}

static uint16_t op_ptpl(struct resv_state *s, void *arg)
{
	struct resv_args *a = arg;

	resv_set_ptpl(s, le32toh(a->req->cmd.cdw11) & 1);
	return 0;
}

static void change_run(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	struct resv_args a = { .req = req };
	resv_op_fn op;
	uint64_t keys[2] = { 0, 0 };

	pthread_mutex_lock(&ctrl->lock);
	memcpy(a.host, ctrl->hostid, 16);
	pthread_mutex_unlock(&ctrl->lock);
	nvme_req_copy_from(req, 0, keys, req->transfer_len < sizeof(keys) ? req->transfer_len
									  : sizeof(keys));
	a.key1 = le64toh(keys[0]);
	a.key2 = le64toh(keys[1]);
	switch (req->cmd.opcode) {
	case nvme_cmd_resv_register:
		op = op_register;
		break;
	case nvme_cmd_resv_acquire:
		op = op_acquire;
		break;
	case nvme_cmd_resv_release:
		op = op_release;
		break;
	default: /* Set Features Reservation Persistence */
		op = op_ptpl;
		break;
	}
	req->status = resv_ns_apply(ns_resv(req->ns), op, &a);
	if (!req->status)
		notify(req, &a.notes);
}

static void change_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	nvme_req_complete(req, req->status);
}

static void execute_change(struct nvme_req *req)
{
	req->job.worker = req->sq->worker;
	req->job.run = change_run;
	req->job.done = change_done;
	io_submit_slow_job(&req->job); /* the change is synced to its file */
}

/* ---- Report (7.8) ---- */

static void execute_report(struct nvme_req *req)
{
	struct resv_state st;
	void *buf = nvme_req_flat_get(req);

	if (!buf) {
		nvme_req_complete(req, nvme_err(NVME_SC_INTERNAL));
		return;
	}
	resv_ns_get(ns_resv(req->ns), &st);
	resv_report(&st, buf, req->transfer_len);
	nvme_req_flat_put(req, buf, true);
	nvme_req_complete(req, 0);
}

uint16_t nvme_parse_resv_cmd(struct nvme_req *req)
{
	/* Registrants are hosts: a controller whose host has no identifier
	 * (a PCIe host that set it to zero) cannot take part. */
	if (hostid_unset(nvme_req_ctrl(req)->hostid))
		return nvme_err(NVME_SC_CMD_SEQ_ERROR);
	switch (req->cmd.opcode) {
	case nvme_cmd_resv_register: /* CRKEY, NRKEY */
	case nvme_cmd_resv_acquire:  /* CRKEY, PRKEY */
		req->execute = execute_change;
		return nvme_req_data_len(req, 16);
	case nvme_cmd_resv_release:  /* CRKEY */
		req->execute = execute_change;
		return nvme_req_data_len(req, 8);
	case nvme_cmd_resv_report: {
		uint64_t len = ((uint64_t)cdw10(req) + 1) * 4; /* NUMD, 0's based */

		/* Our Host Identifiers are 128-bit: only the extended structure
		 * can carry them (7.8: EDS cleared -> this status). */
		if (!(le32toh(req->cmd.cdw11) & 1))
			return nvme_err(NVME_SC_HOSTID_INCONSISTENT);
		if (len > UINT32_MAX)
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = execute_report;
		return nvme_req_data_len(req, (uint32_t)len);
	}
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}

/* ---- the Reservation Conflict check ---- */

bool nvme_resv_conflict(const struct nvme_req *req)
{
	enum resv_access a;

	switch (req->cmd.opcode) {
	case nvme_cmd_read:
	case nvme_zns_cmd_mgmt_recv:
		a = RESV_ACCESS_READ;
		break;
	case nvme_cmd_write:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
	case nvme_cmd_flush:
	case nvme_zns_cmd_append:
	case nvme_zns_cmd_mgmt_send:
		a = RESV_ACCESS_WRITE;
		break;
	default: /* the reservation commands: their own rules */
		return false;
	}
	/* The host's identifier changes only before its I/O queues exist. */
	return resv_ns_conflict(ns_resv(req->ns), nvme_req_ctrl(req)->hostid, a);
}

/* ---- Get Log Page 80h: Reservation Notification (5.16.1.24) ---- */

static void execute_log(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	struct nvme_resv_ctrl *r = &ctrl->resv;
	struct nvme_resv_notification_log l;
	struct nvme_log_args a;

	nvme_log_args(req, &a);
	memset(&l, 0, sizeof(l));
	pthread_mutex_lock(&ctrl->lock);
	/* Each read takes the oldest page; none left reads as an empty page. */
	if (r->n) {
		const struct nvme_resv_page *p = &r->q[r->head];

		l.lpc = htole64(p->count);
		l.rnlpt = p->type;
		l.nsid = htole32(p->nsid);
		r->head = (r->head + 1) % NVME_RESV_LOG_MAX;
		r->n--;
		l.nalp = (uint8_t)(r->n > 255 ? 255 : r->n);
	}
	pthread_mutex_unlock(&ctrl->lock);
	if (!a.rae)
		nvme_ctrl_event_unmask(ctrl, NVME_AEN_MASK_RESV);
	nvme_req_complete(req, nvme_req_copy_window(req, &l, sizeof(l), a.lpo));
}

uint16_t nvme_parse_resv_log(struct nvme_req *req)
{
	req->execute = execute_log;
	return 0;
}

void nvme_resv_cmd_effects(struct nvme_cmd_effects_log *l)
{
	l->iocs[nvme_cmd_resv_register] = htole32(NVME_CMD_EFFECTS_CSUPP);
	l->iocs[nvme_cmd_resv_report] = htole32(NVME_CMD_EFFECTS_CSUPP);
	l->iocs[nvme_cmd_resv_acquire] = htole32(NVME_CMD_EFFECTS_CSUPP);
	l->iocs[nvme_cmd_resv_release] = htole32(NVME_CMD_EFFECTS_CSUPP);
}

/* ---- Features 81h, 82h, 83h (5.27.1.26 - 5.27.1.28) ---- */

#define SEL_DEFAULT   1
#define SEL_SAVED     2
#define SEL_SUPPORTED 3
#define CAP_SAVEABLE  (1u << 0)
#define CAP_NS        (1u << 1)
#define CAP_CHANGEABLE (1u << 2)

static uint8_t feat_sel(const struct nvme_req *req)
{
	return (cdw10(req) >> 8) & 7;
}

static void execute_set_hostid(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	uint8_t id[16];
	bool busy = false;

	nvme_req_copy_from(req, 0, id, sizeof(id));
	pthread_mutex_lock(&ctrl->lock);
	for (unsigned i = 1; i <= NVME_MAX_IO_QUEUES; i++)
		busy |= ctrl->sqs[i] != NULL;
	if (!busy)
		memcpy(ctrl->hostid, id, 16);
	pthread_mutex_unlock(&ctrl->lock);
	/* Only before I/O queues exist: commands on them check the host's
	 * identifier without a lock. */
	nvme_req_complete(req, busy ? nvme_err(NVME_SC_CMD_SEQ_ERROR) : 0);
}

static void execute_get_hostid(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	uint8_t id[16];

	pthread_mutex_lock(&ctrl->lock);
	memcpy(id, ctrl->hostid, 16);
	pthread_mutex_unlock(&ctrl->lock);
	nvme_req_copy_to(req, 0, id, sizeof(id));
	nvme_req_complete(req, 0);
}

static void execute_set_mask(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	uint32_t nsid = le32toh(req->cmd.nsid), v = le32toh(req->cmd.cdw11);

	pthread_mutex_lock(&ctrl->lock);
	for (uint32_t i = 1; i <= CFG_MAX_NAMESPACES; i++)
		if (i == nsid || nsid == NVME_NSID_ALL)
			ctrl->resv.mask[i] = (uint8_t)v;
	pthread_mutex_unlock(&ctrl->lock);
	nvme_req_complete(req, 0);
}

static void execute_get_mask(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);

	pthread_mutex_lock(&ctrl->lock);
	/* Not saveable: "saved" is the default, as for every such feature. */
	req->result = feat_sel(req) == SEL_DEFAULT || feat_sel(req) == SEL_SAVED
			      ? 0 : ctrl->resv.mask[le32toh(req->cmd.nsid)];
	pthread_mutex_unlock(&ctrl->lock);
	nvme_req_complete(req, 0);
}

static void execute_get_ptpl(struct nvme_req *req)
{
	struct resv_state st;

	resv_ns_get(ns_resv(req->ns), &st);
	req->result = feat_sel(req) == SEL_DEFAULT ? 0 : st.ptpl;
	nvme_req_complete(req, 0);
}

static void execute_supported(struct nvme_req *req)
{
	switch (cdw10(req) & 0xff) {
	case NVME_FEAT_FID_HOST_ID:
		req->result = nvme_req_ctrl(req)->pcie ? CAP_CHANGEABLE : 0;
		break;
	case NVME_FEAT_FID_RESV_MASK:
		req->result = CAP_NS | CAP_CHANGEABLE;
		break;
	default: /* the PTPL state is kept across power loss: saved */
		req->result = CAP_SAVEABLE | CAP_NS | CAP_CHANGEABLE;
		break;
	}
	nvme_req_complete(req, 0);
}

/* The namespace a namespace-specific feature names (FFFFFFFFh: every one,
 * where allowed); Invalid Namespace or Format otherwise. */
static uint16_t feat_ns(struct nvme_req *req, bool all_ok)
{
	uint32_t nsid = le32toh(req->cmd.nsid);

	if (all_ok && nsid == NVME_NSID_ALL)
		return 0;
	req->ns = subsys_ns(nvme_req_ctrl(req)->subsys, nsid);
	return req->ns ? 0 : nvme_err(NVME_SC_INVALID_NS);
}

uint16_t nvme_parse_resv_feature(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	bool set = req->cmd.opcode == nvme_admin_set_features;
	uint8_t fid = cdw10(req) & 0xff;
	uint32_t v = le32toh(req->cmd.cdw11);
	uint16_t st;

	if (ctrl->discovery)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!set && feat_sel(req) > SEL_SUPPORTED)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!set && feat_sel(req) == SEL_SUPPORTED) {
		req->execute = execute_supported;
		return nvme_req_data_len(req, 0);
	}
	if (set && (cdw10(req) & FEAT_SV) && fid != NVME_FEAT_FID_RESV_PERSIST)
		return nvme_cmd_err(NVME_SC_FEATURE_NOT_SAVEABLE);
	switch (fid) {
	case NVME_FEAT_FID_HOST_ID:
		/* 128-bit identifiers only (CTRATT bit 0). */
		if (!(v & FEAT_EXHID))
			return nvme_err(NVME_SC_HOSTID_INCONSISTENT);
		/* On fabrics the host named itself in Connect (NVMe-oF 1.1, 3.3). */
		if (set && !ctrl->pcie)
			return nvme_err(NVME_SC_CMD_SEQ_ERROR);
		req->execute = set ? execute_set_hostid : execute_get_hostid;
		return nvme_req_data_len(req, 16);
	case NVME_FEAT_FID_RESV_MASK:
		if ((st = feat_ns(req, set)))
			return st;
		if (set && (v & ~RESV_MASK_ALL))
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = set ? execute_set_mask : execute_get_mask;
		return nvme_req_data_len(req, 0);
	case NVME_FEAT_FID_RESV_PERSIST:
		if ((st = feat_ns(req, false)))
			return st;
		req->execute = set ? execute_change : execute_get_ptpl;
		return nvme_req_data_len(req, 0);
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
}
