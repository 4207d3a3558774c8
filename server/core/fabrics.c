/*
 * Fabrics commands (NVMe-oF 1.1, 3.3 and 3.5): Connect binds a queue to a
 * new controller (admin queue) or to an existing one (I/O queue); Property
 * Get / Set reach the controller registers that PCIe maps in BAR0;
 * Authentication Send / Receive go to fabrics_auth.c.
 */
#include <pthread.h>
#include <string.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "log.h"
#include "nvme_cmd.h"
#include "subsys.h"

/*
 * Checking a limit and creating the controller or binding the queue it
 * counts happen under this lock, so that two Connects at once cannot both
 * take the last place. (Controllers and queues go away without it: that
 * only frees places.)
 */
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Past max_controllers or max_connections_per_host: Connect Controller Busy
 * (NVMe-oF 1.1, Figure 21), with DNR as Linux nvmet completes a Connect for
 * which it has no controller ID left.
 */
#define ST_LIMIT nvme_cmd_err(NVME_SC_CONNECT_CTRL_BUSY)

/* Connect SQE fields (NVMe-oF 1.1, Figure 20). */
#define NVMF_CATTR_DISABLE_SQFLOW 0x04u

static uint16_t connect_recfmt(const struct nvme_sqe *c) { return le32toh(c->cdw10) & 0xffff; }
static uint16_t connect_qid(const struct nvme_sqe *c) { return le32toh(c->cdw10) >> 16; }
static uint16_t connect_sqsize(const struct nvme_sqe *c) { return le32toh(c->cdw11) & 0xffff; }
static uint8_t connect_cattr(const struct nvme_sqe *c) { return (le32toh(c->cdw11) >> 16) & 0xff; }
static uint32_t connect_kato(const struct nvme_sqe *c) { return le32toh(c->cdw12); }

/* The Connect data, copied out of the request's data, with
 * both NQNs NUL-terminated whatever the host sent. */
static void connect_data(const struct nvme_req *req, struct nvmf_connect_data *d)
{
	nvme_req_copy_from(req, 0, d, sizeof(*d));
	d->subsysnqn[NVME_NQN_LENGTH - 1] = '\0';
	d->hostnqn[NVME_NQN_LENGTH - 1] = '\0';
}

static void connect_fail(struct nvme_req *req, uint16_t status, uint32_t ipo)
{
	req->result = ipo;
	nvme_req_complete(req, status);
}

/* SQSIZE is 0's based: 0 (a one-entry queue) and more than MQES are out. */
static bool sqsize_valid(uint16_t sqsize)
{
	return sqsize >= 1 && sqsize <= NVME_MAX_QUEUE_SIZE - 1;
}

/*
 * A queue is connected once. A second Connect on it (only a misbehaving host
 * sends one, e.g. while the first one's data is still on its way) would bind
 * the queue to a second controller and orphan the first: refuse it.
 */
static bool already_connected(struct nvme_req *req)
{
	if (!req->sq->ctrl)
		return false;
	nvme_req_complete(req, nvme_err(NVME_SC_CMD_SEQ_ERROR));
	return true;
}

/*
 * On a TLS connection the handshake proved that the host holds the PSK of
 * one identity, which names a host and a subsystem (NVMe/TCP 1.0, 3.6.1.4):
 * the Connect must name the same two, or a host holding one host's PSK
 * could connect as another, or reach a subsystem its PSK was not given for
 * (discovery included: its identity names the discovery NQN). Refused as a
 * host the subsystem does not allow: Connect Invalid Host, DNR, with IPO at
 * the NQN that differs (NVMe-oF 1.1, Figure 21).
 */
static bool tls_identity_mismatch(struct nvme_req *req, const struct nvmf_connect_data *d)
{
	const struct nvme_sq *sq = req->sq;
	uint32_t ipo;

	if (!sq->tls)
		return false;
	if (strcmp(d->hostnqn, sq->tls_hostnqn) != 0)
		ipo = NVMF_IPO_DATA(hostnqn);
	else if (strcmp(d->subsysnqn, sq->tls_subnqn) != 0)
		ipo = NVMF_IPO_DATA(subsysnqn);
	else
		return false;
	log_warn("tls: Connect as %s to %s refused: the PSK identity names %s for %s",
		 d->hostnqn, d->subsysnqn, sq->tls_hostnqn, sq->tls_subnqn);
	connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_HOST), ipo);
	return true;
}

/* What every Connect checks first: the queue is not connected yet, the
 * record format is 0 (NVMe over Fabrics 1.1, 3.3) and, over TLS, the NQNs
 * are those of the PSK identity. Copies the Connect data out, or completes
 * the command and returns false. */
static bool connect_begin(struct nvme_req *req, struct nvmf_connect_data *d)
{
	if (already_connected(req))
		return false;
	connect_data(req, d);
	if (connect_recfmt(&req->cmd) != 0) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_FORMAT), 0);
		return false;
	}
	return !tls_identity_mismatch(req, d);
}

static void execute_admin_connect(struct nvme_req *req)
{
	struct nvmf_connect_data d;
	enum nvme_ctrl_refusal why;
	struct nvme_ctrl *ctrl;
	struct subsys *s;
	uint16_t st;

	if (!connect_begin(req, &d))
		return;
	/* Dynamic controller model: the host asks for "any" controller. */
	if (le16toh(d.cntlid) != 0xffff) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM), NVMF_IPO_DATA(cntlid));
		return;
	}
	if (!sqsize_valid(connect_sqsize(&req->cmd))) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM), NVMF_IPO_SQE_SQSIZE);
		return;
	}
	s = nvme_ctrl_subsys_for_host(d.subsysnqn, d.hostnqn, &why);
	if (!s) {
		if (why == NVME_CTRL_HOST_DENIED)
			connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_HOST),
				     NVMF_IPO_DATA(hostnqn));
		else
			/* Without Do Not Retry (the status field's DNR bit):
			 * subsystems come and go at run time (control socket),
			 * and a host that reconnects while its subsystem is
			 * being re-created must try again, not give the
			 * controller up (Linux 6.12 obeys DNR). */
			connect_fail(req, NVME_STATUS(NVME_SCT_CMD_SPECIFIC,
						      NVME_SC_CONNECT_INVALID_PARAM),
				     NVMF_IPO_DATA(subsysnqn));
		return;
	}
	/* require_tls: as nvmet refuses a subsystem the port does not offer. */
	if (nvme_sq_tls_refused(req->sq, s, d.hostnqn)) {
		subsys_put(s);
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM),
			     NVMF_IPO_DATA(subsysnqn));
		return;
	}

	struct nvme_ctrl_args a = {
		.ops = req->sq->ops,
		.worker = req->sq->worker,
		.port = &req->sq->port,
		.local_addr = req->sq->local_addr,
		.subnqn = d.subsysnqn,
		.hostnqn = d.hostnqn,
		.hostid = d.hostid,
		.kato_ms = connect_kato(&req->cmd),
	};
	pthread_mutex_lock(&limits_lock);
	if (!subsys_may_add_ctrl(s, d.hostnqn) || !subsys_may_add_host_queue(d.hostnqn))
		st = ST_LIMIT;
	else if (!(st = nvme_ctrl_new(s, &a, &ctrl)))
		nvme_ctrl_bind_admin_queue(ctrl, req->sq, connect_sqsize(&req->cmd) + 1u);
	pthread_mutex_unlock(&limits_lock);
	subsys_put(s);
	if (st) {
		connect_fail(req, st, st == nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM)
					      ? NVMF_IPO_DATA(subsysnqn) : 0);
		return;
	}
	if (connect_cattr(&req->cmd) & NVMF_CATTR_DISABLE_SQFLOW)
		req->sq->sqhd_disabled = true;
	uint32_t authreq = nvme_auth_queue_setup(req->sq, ctrl, &st);
	if (st) {
		nvme_req_complete(req, st);
		return;
	}
	log_info("ctrl %u: %s controller for %s on %s, kato %u ms%s", ctrl->cntlid,
		 ctrl->discovery ? "discovery" : "I/O", ctrl->hostnqn, ctrl->subnqn, ctrl->kato_ms,
		 authreq ? ", authentication required" : "");
	req->result = ctrl->cntlid | authreq;
	nvme_req_complete(req, 0);
}

static void execute_io_connect(struct nvme_req *req)
{
	struct nvmf_connect_data d;
	struct nvme_ctrl *ctrl;
	struct subsys *s;
	uint16_t qid = connect_qid(&req->cmd);
	uint32_t ipo = 0;
	uint16_t st;

	if (!connect_begin(req, &d))
		return;
	if (!sqsize_valid(connect_sqsize(&req->cmd))) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM), NVMF_IPO_SQE_SQSIZE);
		return;
	}
	s = subsys_find(d.subsysnqn);
	if (!s) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM),
			     NVMF_IPO_DATA(subsysnqn));
		return;
	}
	if (s->discovery) { /* a discovery controller has no I/O queues */
		subsys_put(s);
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM), NVMF_IPO_SQE_QID);
		return;
	}
	if (nvme_sq_tls_refused(req->sq, s, d.hostnqn)) {
		subsys_put(s);
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM),
			     NVMF_IPO_DATA(subsysnqn));
		return;
	}
	ctrl = nvme_ctrl_find(s, le16toh(d.cntlid));
	subsys_put(s);
	if (!ctrl) {
		connect_fail(req, nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM), NVMF_IPO_DATA(cntlid));
		return;
	}
	/* The I/O queue must come from the host that owns the controller,
	 * over a fabric: a PCIe (vfio-user) controller shares the CNTLID
	 * space, but its queues live in guest memory (Create I/O SQ). */
	if (!ctrl->ops->fabrics) {
		st = nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM);
		ipo = NVMF_IPO_DATA(cntlid);
	} else if (strcmp(d.hostnqn, ctrl->hostnqn) != 0) {
		st = nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM);
		ipo = NVMF_IPO_DATA(hostnqn);
	} else if (memcmp(d.hostid, ctrl->hostid, sizeof(d.hostid)) != 0) {
		st = nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM);
		ipo = NVMF_IPO_DATA(hostid);
	} else if (!nvme_ctrl_ready(ctrl)) {
		st = nvme_cmd_err(NVME_SC_CONNECT_CTRL_BUSY);
	} else {
		pthread_mutex_lock(&limits_lock);
		if (!subsys_may_add_host_queue(d.hostnqn))
			st = ST_LIMIT;
		else
			st = nvme_ctrl_bind_io_queue(ctrl, req->sq, qid,
						     connect_sqsize(&req->cmd) + 1u);
		pthread_mutex_unlock(&limits_lock);
		if (st == nvme_cmd_err(NVME_SC_CONNECT_INVALID_PARAM))
			ipo = NVMF_IPO_SQE_QID;
	}
	if (st) {
		log_info("ctrl %u: I/O queue %u refused (status %#x)", ctrl->cntlid, qid, st);
		nvme_ctrl_put(ctrl);
		connect_fail(req, st, ipo);
		return;
	}
	if (connect_cattr(&req->cmd) & NVMF_CATTR_DISABLE_SQFLOW)
		req->sq->sqhd_disabled = true;
	uint32_t authreq = nvme_auth_queue_setup(req->sq, ctrl, &st);
	if (st) {
		nvme_req_complete(req, st);
		return;
	}
	log_debug("ctrl %u: I/O queue %u connected, %u entries", ctrl->cntlid, qid, req->sq->size);
	req->result = ctrl->cntlid | authreq;
	nvme_req_complete(req, 0);
}

uint16_t nvme_parse_connect_cmd(struct nvme_req *req)
{
	uint16_t st;

	/* Only Connect makes sense on a queue not bound to a controller. */
	if (req->cmd.opcode != nvme_admin_fabrics ||
	    nvme_sqe_fctype(&req->cmd) != nvme_fabrics_type_connect)
		return nvme_err(NVME_SC_INVALID_OPCODE);
	st = nvme_req_data_len(req, sizeof(struct nvmf_connect_data));
	if (st)
		return st;
	req->execute = connect_qid(&req->cmd) == 0 ? execute_admin_connect : execute_io_connect;
	return 0;
}

/* ---- Property Get / Set (NVMe-oF 1.1, 3.5 and 3.4) ---- */

#define NVMF_PROP_SIZE_8 0x01u  /* ATTRIB bit 0: 8-byte property */

static uint8_t prop_attrib(const struct nvme_sqe *c) { return le32toh(c->cdw10) & 0xff; }
static uint32_t prop_offset(const struct nvme_sqe *c) { return le32toh(c->cdw11); }

static unsigned prop_size(const struct nvme_sqe *c)
{
	return prop_attrib(c) & NVMF_PROP_SIZE_8 ? 8 : 4;
}

/* Properties are the controller's registers (ctrl.h). */
static void execute_prop_get(struct nvme_req *req)
{
	nvme_req_complete(req, nvme_ctrl_reg_read(nvme_req_ctrl(req), prop_offset(&req->cmd),
						  prop_size(&req->cmd), &req->result));
}

static void shutdown_synced(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);

	if (req->status)
		log_error("ctrl %u: shutdown: making the namespaces durable failed (status %#x)",
			  ctrl->cntlid, req->status);
	nvme_req_complete(req, nvme_ctrl_reg_write(ctrl, NVME_REG_CC, 4, le32toh(req->cmd.cdw12)));
}

static void execute_prop_set(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	uint32_t off = prop_offset(&req->cmd);
	uint64_t val = le32toh(req->cmd.cdw12) | (uint64_t)le32toh(req->cmd.cdw13) << 32;

	/*
	 * A shutdown notification (NVMe Base 2.0, 3.6.1) asks for the cache to
	 * be made durable: the host's next CSTS read must already show SHST
	 * complete, so sync first and complete the Property Set after.
	 */
	if (off == NVME_REG_CC && prop_size(&req->cmd) == 4 && NVME_CC_SHN((uint32_t)val) &&
	    !NVME_CC_SHN(ctrl->cc) && !ctrl->discovery) {
		nvme_req_sync_all(req, shutdown_synced);
		return;
	}
	nvme_req_complete(req, nvme_ctrl_reg_write(ctrl, off, prop_size(&req->cmd), val));
}

uint16_t nvme_parse_fabrics_cmd(struct nvme_req *req)
{
	uint16_t st;

	switch (nvme_sqe_fctype(&req->cmd)) {
	case nvme_fabrics_type_property_get:
	case nvme_fabrics_type_property_set:
		if (req->sq->qid != 0) /* properties live on the admin queue */
			return nvme_err(NVME_SC_INVALID_OPCODE);
		st = nvme_req_data_len(req, 0);
		if (st)
			return st;
		req->execute = nvme_sqe_fctype(&req->cmd) == nvme_fabrics_type_property_get
				       ? execute_prop_get : execute_prop_set;
		return 0;
	case nvme_fabrics_type_connect:
		return nvme_err(NVME_SC_CMD_SEQ_ERROR); /* this queue is connected already */
	case nvme_fabrics_type_auth_send:
	case nvme_fabrics_type_auth_receive:
		return nvme_parse_auth_cmd(req);
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}
