/*
 * In-band authentication on a fabrics queue (NVMe Base 2.0, 8.13; the
 * commands in NVMe-oF / Base 2.0, 6.2 and 6.3): a host with a dhchap_secret
 * gets a DH-HMAC-CHAP session on each queue it connects (admin and I/O
 * alike), is told so in the Connect response, and carries the transaction
 * in Authentication Send / Receive commands. Until the queue has
 * authenticated, every other command is refused with Authentication
 * Required. The protocol itself is server/core/auth.c.
 *
 * A queue has a deadline to authenticate: the controller's Keep Alive
 * Timeout, or 120 s without one (the limits Linux nvmet and SPDK use), from
 * Connect (or from the AUTH_Negotiate of a re-authentication), extended
 * once more by each DH-HMAC-CHAP_Reply / _Success2, which only a host that
 * holds the secret can bring that far. Restarting with AUTH_Negotiate does
 * not extend it. A queue that misses it is disconnected, as SPDK does. A transaction that fails (our
 * AUTH_Failure1 delivered, or the host's AUTH_Failure2) ends the controller
 * (a fatal error, all its queues disconnected), as Linux nvmet does.
 */
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "auth_msg.h"
#include "ctrl.h"
#include "log.h"
#include "nvme_cmd.h"
#include "subsys.h"

/*
 * Authentication Send / Receive SQE (NVMe Base 2.0, Figures 549 / 552):
 * CDW10 bits 15:8 SPSP0, 23:16 SPSP1, 31:24 SECP; CDW11 TL (Send, bytes
 * the host transfers) or AL (Receive, bytes the host accepts).
 */
static uint8_t auth_spsp0(const struct nvme_sqe *c) { return (le32toh(c->cdw10) >> 8) & 0xff; }
static uint8_t auth_spsp1(const struct nvme_sqe *c) { return (le32toh(c->cdw10) >> 16) & 0xff; }
static uint8_t auth_secp(const struct nvme_sqe *c) { return le32toh(c->cdw10) >> 24; }
static uint32_t auth_len(const struct nvme_sqe *c) { return le32toh(c->cdw11); }

#define AUTH_TIMEOUT_DEFAULT_MS 120000u

static void auth_expired(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct nvme_sq *sq = container_of(t, struct nvme_sq, auth_timer);

	(void)revents;
	ev_timer_stop(loop, t); /* once: the queue is on its way out */
	log_warn("ctrl %u: qid %u: authentication of %s stalled for %.0f s: disconnecting the queue",
		 sq->ctrl ? sq->ctrl->cntlid : 0, sq->qid, sq->ctrl ? sq->ctrl->hostnqn : "?",
		 t->repeat);
	nvme_sq_request_disconnect(sq);
}

/* (Re)start the deadline for the queue's next authentication step. */
static void auth_deadline(struct nvme_sq *sq, const struct nvme_ctrl *ctrl)
{
	struct ev_loop *loop = worker_loop(sq->worker);
	uint32_t ms = ctrl->kato_ms ? ctrl->kato_ms : AUTH_TIMEOUT_DEFAULT_MS;

	/* repeat: ev_timer_again restarts it from now on every call. */
	sq->auth_timer.repeat = ms / 1000.0;
	ev_timer_again(loop, &sq->auth_timer);
}

void nvme_auth_queue_close(struct nvme_sq *sq)
{
	if (sq->auth)
		ev_timer_stop(worker_loop(sq->worker), &sq->auth_timer);
}

/* After an Authentication Send / Receive completed: extend the deadline
 * (a step forward), stop waiting, or end the controller of a failed
 * transaction. */
static void auth_progress(struct nvme_sq *sq, struct nvme_ctrl *ctrl, bool extend)
{
	if (sq->closed)
		return;
	if (auth_session_busy(sq->auth)) {
		/* A refused Send (its AUTH_Failure1 pending) is no step forward:
		 * a host without the secret would keep the queue by repeating it. */
		if (extend && auth_session_result(sq->auth) != AUTH_FAILED)
			auth_deadline(sq, ctrl);
		return;
	}
	ev_timer_stop(worker_loop(sq->worker), &sq->auth_timer);
	if (auth_session_result(sq->auth) == AUTH_FAILED)
		nvme_ctrl_fatal(ctrl, "authentication failed");
}

/* ctrl's host's keys h as a session's configuration. */
static void auth_config_of(const struct nvme_ctrl *ctrl, const struct host_auth_config *h,
			   struct auth_config *cfg)
{
	*cfg = (struct auth_config){
		.hostnqn = ctrl->hostnqn,
		.subnqn = ctrl->subnqn,
		.host_secret = &h->dhchap_secret,
		.ctrl_secret = h->dhchap_ctrl_secret.len ? &h->dhchap_ctrl_secret : NULL,
		.hash_mask = h->dhchap_hashes,
		.dhgroup_mask = h->dhchap_dhgroups,
	};
}

/* What the subsystem's host table says now about ctrl's host; NULL if the
 * host has no DH-HMAC-CHAP secret. The table may be replaced at run time
 * (reload, set-hosts): look it up once, and use what it returned within
 * one worker callback (a second look-up may find another table). */
static const struct host_auth_config *host_auth_now(const struct nvme_ctrl *ctrl)
{
	const struct host_auth_config *h = subsys_host_auth(ctrl->subsys, ctrl->hostnqn);

	return h && h->dhchap_secret.len ? h : NULL;
}

void nvme_auth_ctrl_free(struct nvme_ctrl *ctrl)
{
	if (!ctrl->auth_keys)
		return;
	OPENSSL_cleanse(ctrl->auth_keys, sizeof(*ctrl->auth_keys));
	free(ctrl->auth_keys);
	ctrl->auth_keys = NULL;
}

uint32_t nvme_auth_queue_setup(struct nvme_sq *sq, struct nvme_ctrl *ctrl, uint16_t *st)
{
	const struct host_auth_config *h = host_auth_now(ctrl);
	struct auth_config cfg;

	*st = 0;
	/* The controller keeps the keys its host had at the admin Connect (as
	 * nvmet keeps them on the controller): an I/O queue of a host that
	 * left the table or lost its secret since must still prove them, or
	 * anyone knowing the NQNs, host ID and controller ID (clear text on a
	 * plain queue) could add one without any. Written before CSTS.RDY,
	 * which an I/O queue's Connect waits for (acquire): read-only after. */
	if (h && sq->qid == 0 && !ctrl->auth_keys) {
		ctrl->auth_keys = malloc(sizeof(*ctrl->auth_keys));
		if (!ctrl->auth_keys) {
			*st = nvme_err(NVME_SC_INTERNAL);
			return 0;
		}
		*ctrl->auth_keys = *h;
		/* only the DH-HMAC-CHAP keys are needed */
		OPENSSL_cleanse(&ctrl->auth_keys->psk, sizeof(ctrl->auth_keys->psk));
	}
	if (!h)
		h = ctrl->auth_keys;
	/* A TLS queue's host proved its PSK, bound to the Connect's NQNs
	 * (fabrics.c): like Linux nvmet, it is not asked to authenticate again. */
	if (!h || sq->tls)
		return 0;
	auth_config_of(ctrl, h, &cfg);
	sq->auth = auth_session_new(&cfg);
	if (!sq->auth) {
		log_error("ctrl %u: qid %u: no memory for an authentication session", ctrl->cntlid,
			  sq->qid);
		*st = nvme_err(NVME_SC_INTERNAL);
		return 0;
	}
	/* The host must start (and finish) before the deadline too. */
	ev_init(&sq->auth_timer, auth_expired);
	auth_deadline(sq, ctrl);
	/* Connect response DW0 bit 17, AUTHREQ.ATR: authentication transaction
	 * required (the bit the Linux host tests to start DH-HMAC-CHAP). */
	return 1u << 17;
}

uint16_t nvme_auth_check(const struct nvme_req *req)
{
	const struct nvme_sq *sq = req->sq;
	uint8_t fctype = nvme_sqe_fctype(&req->cmd);

	if (!sq->auth || auth_session_authenticated(sq->auth))
		return 0;
	if (req->cmd.opcode == nvme_admin_fabrics && (fctype == nvme_fabrics_type_auth_send ||
						     fctype == nvme_fabrics_type_auth_receive))
		return 0;
	/* Base 2.0, 8.13.1: commands other than Connect and Authentication
	 * Send/Receive on a queue that has to authenticate. */
	return nvme_cmd_err(NVME_SC_AUTH_REQUIRED);
}

/* One log line each time a transaction ends; never a secret, only the reason. */
static void log_outcome(const struct nvme_req *req, enum auth_result before)
{
	struct nvme_sq *sq = req->sq;
	struct nvme_ctrl *ctrl = sq->ctrl;
	enum auth_result now = auth_session_result(sq->auth);

	if (now == AUTH_FAILED && before != AUTH_FAILED)
		log_warn("ctrl %u: qid %u: authentication of %s failed (reason %#x)", ctrl->cntlid,
			 sq->qid, ctrl->hostnqn, auth_session_failure(sq->auth));
	else if (auth_session_authenticated(sq->auth) && before != AUTH_SUCCEEDED &&
		 now == AUTH_SUCCEEDED)
		log_debug("ctrl %u: qid %u: %s authenticated (hash %u, DH group %u)", ctrl->cntlid,
			  sq->qid, ctrl->hostnqn, auth_session_hash(sq->auth),
			  auth_session_dhgroup(sq->auth));
}

static void execute_auth_send(struct nvme_req *req)
{
	uint8_t buf[AUTH_MSG_MAX];
	enum auth_result before = auth_session_result(req->sq->auth);

	/* The parser bounded transfer_len by AUTH_MSG_MAX. */
	nvme_req_copy_from(req, 0, buf, req->transfer_len);
	struct nvme_sq *sq = req->sq;
	/* An AUTH_Negotiate (Base 2.0, 8.13.4.2: type 00h, id 00h) starts a
	 * transaction: on an authenticated queue a new deadline, else none
	 * beyond the one running since Connect. */
	bool negotiate = req->transfer_len >= 2 && buf[0] == AUTH_TYPE_COMMON &&
			 buf[1] == AUTH_ID_NEGOTIATE;
	bool extend = !negotiate || auth_session_authenticated(sq->auth);
	const struct host_auth_config *h = negotiate ? host_auth_now(sq->ctrl) : NULL;
	struct auth_config now;

	/* A transaction (a re-authentication too) uses the keys, hashes and
	 * groups configured when it starts, as Linux nvmet does: they may have
	 * changed since Connect. A host that lost its secret meanwhile keeps
	 * the keys it connected with (its controllers stay, as they do when a
	 * host leaves the table). */
	if (h)
		auth_config_of(sq->ctrl, h, &now);
	if (h && auth_session_set_keys(sq->auth, &now) != 0)
		log_warn("ctrl %u: qid %u: no memory for new keys: the old ones stay",
			 sq->ctrl->cntlid, sq->qid);
	auth_session_send(sq->auth, buf, req->transfer_len);
	OPENSSL_cleanse(buf, req->transfer_len);
	log_outcome(req, before);
	nvme_req_complete(req, 0);
	auth_progress(sq, sq->ctrl, extend);
}

static void execute_auth_receive(struct nvme_req *req)
{
	uint8_t buf[AUTH_MSG_MAX];
	size_t al = req->transfer_len < sizeof(buf) ? req->transfer_len : sizeof(buf);
	enum auth_result before = auth_session_result(req->sq->auth);
	ssize_t n = auth_session_receive(req->sq->auth, buf, al);
	struct nvme_sq *sq = req->sq;
	uint16_t st;

	log_outcome(req, before);
	if (n < 0) { /* AL too small for the pending message: it stays pending */
		nvme_req_complete(req, nvme_err(NVME_SC_INVALID_FIELD));
		return;
	}
	/* The message, zeros up to AL (a Linux host offers 4 KiB). */
	st = nvme_req_copy_window(req, buf, (size_t)n, 0);
	OPENSSL_cleanse(buf, (size_t)n);
	/* Completed first: an AUTH_Failure1 reaches the host before the
	 * controller ends (the disconnect is a message to the worker, after
	 * the response's send). */
	nvme_req_complete(req, st);
	auth_progress(sq, sq->ctrl, false);
}

uint16_t nvme_parse_auth_cmd(struct nvme_req *req)
{
	const struct nvme_sqe *c = &req->cmd;
	bool send = nvme_sqe_fctype(c) == nvme_fabrics_type_auth_send;
	uint32_t len = auth_len(c);

	/* A host with no dhchap_secret has nothing to authenticate with. */
	if (!req->sq->auth)
		return nvme_err(NVME_SC_INVALID_OPCODE);
	/* SECP E9h, SPSP 01h 01h: DH-HMAC-CHAP (Base 2.0, 8.13.2), as Linux
	 * sends them; TL / AL 0 is Invalid Field as in nvmet. */
	if (!auth_cmd_fields_valid(auth_secp(c), auth_spsp0(c), auth_spsp1(c)) || len == 0)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (send && len > AUTH_MSG_MAX)
		return nvme_err(NVME_SC_INVALID_FIELD);
	req->execute = send ? execute_auth_send : execute_auth_receive;
	return nvme_req_data_len(req, len);
}
