/*
 * DH-HMAC-CHAP over real NVMe/TCP: the whole target in-process (configuration
 * files with [host NQN] sections, registry, workers, a loopback listener),
 * the host side from tests/lib/auth_host.c carried in Authentication Send /
 * Receive commands of the test client, as a Linux host sends them (SECP E9h,
 * SPSP 01h 01h, AL 4 KiB). Checks the Connect response's AUTHREQ.ATR bit,
 * Authentication Required before authentication on admin and I/O queues,
 * one-way and bidirectional transactions, refusals (wrong host secret, wrong
 * controller secret, hash not allowed) that end the controller,
 * re-authentication, malformed Authentication Send / Receive fields, and a
 * queue that stalls half-way disconnected at its deadline.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/auth_host.h"
#include "../lib/inproc_target.h"
#include "../lib/nvmf_client.h"
#include "../lib/now_ms.h"
#include "auth_msg.h"
#include "dhchap.h"
#include "nvme_hmac.h"
#include "subsys.h"
#include "tcp.h"

#define SUBNQN "nqn.2026-11.io.znstgt:auth"
#define HOST_ONEWAY "nqn.2026-11.io.znstgt:host-oneway"
#define HOST_BIDI "nqn.2026-11.io.znstgt:host-bidi"
#define HOST_PLAIN "nqn.2026-11.io.znstgt:host-plain"
#define LBA 4096u

/* Secrets: keys 00..1f (untransformed), 40..7f (SHA-512 transform), 20..3f. */
#define KEY_ONEWAY "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define KEY_BIDI "DHHC-1:03:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fx/Gj1o=:"
#define KEY_CTRL "DHHC-1:01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj/jBqb2:"

/* Status as the client returns it (cqe.status >> 1): SCT 1, Authentication
 * Required, DNR. */
#define ST_AUTH_REQUIRED (NVME_STATUS_DNR | 0x100u | NVME_SC_AUTH_REQUIRED)
#define ST_INVALID_FIELD (NVME_STATUS_DNR | NVME_SC_INVALID_FIELD)
#define ATR (1u << 17)

static struct inproc_target target;
static char port[NVMF_TRSVCID_SIZE];
static struct nvme_secret *key_oneway, *key_bidi, *key_ctrl, *key_wrong;

static struct nvme_secret *secret(const char *text)
{
	char err[256];
	struct nvme_secret *s = nvme_secret_parse(NVME_SECRET_DHCHAP, text, err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	return s;
}

static int setup(void **state)
{
	static const struct inproc_file files[] = {
		/* The controller secret from a file, as an operator would keep it. */
		{ "conf/ctrl.key", KEY_CTRL "\n", 0600 },
		{ "conf/auth.ini", "[subsystem]\nnqn = " SUBNQN "\nallowed_hosts = " HOST_PLAIN "\n"
		  "[namespace 1]\nsize = 16M\nzoned = no\nlba_size = 4096\n"
		  "[host " HOST_ONEWAY "]\ndhchap_secret = " KEY_ONEWAY "\n"
		  "[host " HOST_BIDI "]\ndhchap_secret = " KEY_BIDI "\n"
		  "dhchap_ctrl_secret_file = ctrl.key\n"
		  "dhchap_hashes = sha512, sha384\ndhchap_dhgroups = ffdhe2048, null\n", 0644 },
		{ NULL, NULL, 0 },
	};
	char err[512];

	(void)state;
	if (inproc_target_up(&target, files, "listen = 127.0.0.1:4420\n", err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(port, sizeof(port), "%s", tcp_listener_port(0)->trsvcid);

	key_oneway = secret(KEY_ONEWAY);
	key_bidi = secret(KEY_BIDI);
	key_ctrl = secret(KEY_CTRL);
	key_wrong = secret(KEY_CTRL); /* a valid secret, not HOST_ONEWAY's */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	inproc_target_stop(&target);
	nvme_secret_free(key_oneway);
	nvme_secret_free(key_bidi);
	nvme_secret_free(key_ctrl);
	nvme_secret_free(key_wrong);
	return 0;
}

/* ---- the carrier: Authentication Send / Receive as Linux sends them ---- */

static void auth_sqe(struct nvme_sqe *sqe, uint8_t fctype, uint8_t secp, uint32_t len)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = nvme_admin_fabrics;
	((uint8_t *)sqe)[4] = fctype;
	sqe->cdw10 = htole32((uint32_t)secp << 24 | 0x01u << 16 | 0x01u << 8);
	sqe->cdw11 = htole32(len);
}

static int carry_send(void *arg, const void *buf, size_t len)
{
	struct nvme_sqe sqe;

	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, (uint32_t)len);
	return nvmf_cmd(arg, &sqe, buf, (uint32_t)len, NULL, 0, NULL) == 0 ? 0 : -1;
}

static ssize_t carry_receive(void *arg, void *buf, size_t al)
{
	static uint8_t in[4096]; /* Linux's host offers 4 KiB */
	struct nvme_sqe sqe;

	auth_sqe(&sqe, nvme_fabrics_type_auth_receive, AUTH_SECP_NVME, sizeof(in));
	if (nvmf_cmd(arg, &sqe, NULL, 0, in, sizeof(in), NULL) != 0)
		return -1;
	memcpy(buf, in, al < sizeof(in) ? al : sizeof(in));
	return (ssize_t)(al < sizeof(in) ? al : sizeof(in));
}

static int authenticate(struct nvmf_client *c, const char *hostnqn,
			const struct nvme_secret *host, const struct nvme_secret *ctrl,
			uint8_t hash, uint8_t dhgroup, uint16_t tid, struct auth_host_result *res)
{
	struct auth_host_config hc = {
		.hostnqn = hostnqn, .subnqn = SUBNQN, .host_secret = host, .ctrl_secret = ctrl,
		.hashes = &hash, .nhash = 1, .dhgroups = &dhgroup, .ndh = 1, .tid = tid,
	};
	struct auth_host_io io = { carry_send, carry_receive, c };

	memset(res, 0, sizeof(*res));
	return auth_host_authenticate(&hc, &io, res);
}

static uint32_t connect_queue(struct nvmf_client *c, uint16_t qid, const char *hostnqn,
			      uint16_t cntlid)
{
	struct nvme_cqe cqe;

	if (nvmf_tcp_connect(c, "127.0.0.1", port, false, false))
		fail_msg("connect: %s", c->err);
	int st = nvmf_connect(c, qid, 32, qid ? 0 : 30000, hostnqn, SUBNQN, cntlid, 0, &cqe);
	if (st)
		fail_msg("fabrics connect qid %u: %#x %s", qid, st, c->err);
	return (uint32_t)le64toh(cqe.result);
}

static void assert_refused_before_auth(struct nvmf_client *admin)
{
	static struct nvme_id_ctrl id;
	uint64_t v;

	assert_int_equal(nvmf_prop_get(admin, NVME_REG_CAP, true, &v), ST_AUTH_REQUIRED);
	assert_int_equal(nvmf_prop_set(admin, NVME_REG_CC, false, 1), ST_AUTH_REQUIRED);
	assert_int_equal(nvmf_identify(admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL),
			 ST_AUTH_REQUIRED);
}

/*
 * A failed transaction ends the controller: the target closes the
 * connection after the last response. Reads until end of stream (bounded,
 * so a target that keeps the queue fails the test instead of hanging it).
 */
static void assert_closed(struct nvmf_client *c)
{
	char b[256];

	for (int i = 0; i < 100; i++) {
		struct pollfd p = { c->fd, POLLIN, 0 };

		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t n = recv(c->fd, b, sizeof(b), 0);
		if (n <= 0)
			return;
	}
	fail_msg("the connection stayed open");
}

/* ---- tests ---- */

/* One-way, SHA-256 (not restricted for this host), null DH group. */
static void test_oneway(void **state)
{
	struct nvmf_client admin;
	struct auth_host_result res;
	static struct nvme_id_ctrl id;

	(void)state;
	uint32_t r = connect_queue(&admin, 0, HOST_ONEWAY, 0xffff);
	assert_true(r & ATR);
	assert_refused_before_auth(&admin);
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_oneway, NULL, NVME_HASH_SHA256,
				      DHCHAP_DH_NULL, 1, &res), 0);
	assert_int_equal(res.hash, NVME_HASH_SHA256);
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);
	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL), 0);
	assert_string_equal(id.subnqn, SUBNQN);

	/* Re-authentication on the same queue, with the DH group this time. */
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_oneway, NULL, NVME_HASH_SHA384,
				      DHCHAP_DH_FFDHE2048, 2, &res), 0);
	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL), 0);
	/* A failed re-authentication ends the controller. */
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_wrong, NULL, NVME_HASH_SHA256,
				      DHCHAP_DH_NULL, 3, &res), -1);
	assert_true(res.by_controller);
	assert_int_equal(res.reason, AUTH_FAIL_FAILED);
	assert_closed(&admin);
	nvmf_close(&admin);
}

/* Bidirectional, SHA-512, ffdhe2048; the I/O queue authenticates on its own. */
static void test_bidirectional_io_queue(void **state)
{
	struct nvmf_client admin, io;
	struct auth_host_result res;
	uint8_t out[LBA], in[LBA];

	(void)state;
	assert_true(connect_queue(&admin, 0, HOST_BIDI, 0xffff) & ATR);
	assert_int_equal(authenticate(&admin, HOST_BIDI, key_bidi, key_ctrl, NVME_HASH_SHA512,
				      DHCHAP_DH_FFDHE2048, 7, &res), 0);
	assert_int_equal(res.dhgroup, DHCHAP_DH_FFDHE2048);
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);

	uint32_t r = connect_queue(&io, 1, HOST_BIDI, admin.cntlid);
	assert_true(r & ATR);
	assert_int_equal(r & 0xffff, admin.cntlid);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(nvmf_write(&io, 1, 3, 1, out, LBA, NULL), ST_AUTH_REQUIRED);
	assert_int_equal(nvmf_read(&io, 1, 3, 1, in, LBA, NULL), ST_AUTH_REQUIRED);
	assert_int_equal(authenticate(&io, HOST_BIDI, key_bidi, key_ctrl, NVME_HASH_SHA384,
				      DHCHAP_DH_NULL, 8, &res), 0);
	assert_int_equal(nvmf_write(&io, 1, 3, 1, out, LBA, NULL), 0);
	assert_int_equal(nvmf_read(&io, 1, 3, 1, in, LBA, NULL), 0);
	assert_memory_equal(in, out, LBA);
	/* A failed re-authentication on the I/O queue ends the whole
	 * controller: both queues are closed. */
	assert_int_equal(authenticate(&io, HOST_BIDI, key_oneway, key_ctrl, NVME_HASH_SHA384,
				      DHCHAP_DH_NULL, 9, &res), -1);
	assert_true(res.by_controller);
	assert_closed(&io);
	assert_closed(&admin);
	nvmf_close(&io);
	nvmf_close(&admin);
}

/* Each refusal ends the controller: the host gets its answer, then the
 * connection closes. */
static void test_refusals(void **state)
{
	struct nvmf_client admin;
	struct auth_host_result res;

	(void)state;
	/* Wrong host secret: AUTH_Failure1. */
	connect_queue(&admin, 0, HOST_ONEWAY, 0xffff);
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_wrong, NULL, NVME_HASH_SHA256,
				      DHCHAP_DH_FFDHE2048, 1, &res), -1);
	assert_true(res.by_controller);
	assert_int_equal(res.reason, AUTH_FAIL_FAILED);
	assert_closed(&admin);
	nvmf_close(&admin);

	/* The host wants the controller authenticated with a secret the
	 * controller does not have: the host refuses R2 (AUTH_Failure2). */
	connect_queue(&admin, 0, HOST_BIDI, 0xffff);
	assert_int_equal(authenticate(&admin, HOST_BIDI, key_bidi, key_oneway, NVME_HASH_SHA512,
				      DHCHAP_DH_NULL, 1, &res), -1);
	assert_false(res.by_controller);
	assert_closed(&admin);
	nvmf_close(&admin);

	/* SHA-256 is not among this host's dhchap_hashes. */
	connect_queue(&admin, 0, HOST_BIDI, 0xffff);
	assert_int_equal(authenticate(&admin, HOST_BIDI, key_bidi, key_ctrl, NVME_HASH_SHA256,
				      DHCHAP_DH_NULL, 2, &res), -1);
	assert_true(res.by_controller);
	assert_int_equal(res.reason, AUTH_FAIL_HASH_UNUSABLE);
	assert_closed(&admin);
	nvmf_close(&admin);

	/* Nor ffdhe3072 among its DH groups. */
	connect_queue(&admin, 0, HOST_BIDI, 0xffff);
	assert_int_equal(authenticate(&admin, HOST_BIDI, key_bidi, key_ctrl, NVME_HASH_SHA512,
				      DHCHAP_DH_FFDHE3072, 3, &res), -1);
	assert_int_equal(res.reason, AUTH_FAIL_DHGROUP_UNUSABLE);
	assert_closed(&admin);
	nvmf_close(&admin);
}

/* A host without a [host] secret: no ATR, no authentication to run. */
static void test_host_without_secret(void **state)
{
	struct nvmf_client admin;
	struct nvme_sqe sqe;
	uint8_t msg[64] = { 0 };
	uint64_t v;

	(void)state;
	assert_false(connect_queue(&admin, 0, HOST_PLAIN, 0xffff) & ATR);
	assert_int_equal(nvmf_prop_get(&admin, NVME_REG_CAP, true, &v), 0);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, sizeof(msg));
	assert_int_equal(nvmf_cmd(&admin, &sqe, msg, sizeof(msg), NULL, 0, NULL),
			 NVME_STATUS_DNR | NVME_SC_INVALID_OPCODE);
	nvmf_close(&admin);
}

/* Command fields nvmet checks: SECP, SPSP, TL / AL 0, oversized TL. */
static void test_bad_fields(void **state)
{
	struct nvmf_client admin;
	struct nvme_sqe sqe;
	static uint8_t msg[AUTH_MSG_MAX + 1];
	uint8_t in[64];

	(void)state;
	connect_queue(&admin, 0, HOST_ONEWAY, 0xffff);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, 0xea, 64);
	assert_int_equal(nvmf_cmd(&admin, &sqe, msg, 64, NULL, 0, NULL), ST_INVALID_FIELD);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, 64);
	sqe.cdw10 = htole32(le32toh(sqe.cdw10) & ~0xff00u); /* SPSP0 0 */
	assert_int_equal(nvmf_cmd(&admin, &sqe, msg, 64, NULL, 0, NULL), ST_INVALID_FIELD);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, 0);
	assert_int_equal(nvmf_cmd(&admin, &sqe, NULL, 0, NULL, 0, NULL), ST_INVALID_FIELD);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, sizeof(msg));
	assert_int_equal(nvmf_cmd(&admin, &sqe, msg, sizeof(msg), NULL, 0, NULL),
			 ST_INVALID_FIELD);
	auth_sqe(&sqe, nvme_fabrics_type_auth_receive, AUTH_SECP_NVME, 0);
	assert_int_equal(nvmf_cmd(&admin, &sqe, NULL, 0, NULL, 0, NULL), ST_INVALID_FIELD);
	/* Garbage as AUTH_Negotiate: AUTH_Failure1 with "incorrect payload"
	 * or "incorrect protocol message", never a dropped connection. */
	memset(msg, 0xff, 64);
	auth_sqe(&sqe, nvme_fabrics_type_auth_send, AUTH_SECP_NVME, 64);
	assert_int_equal(nvmf_cmd(&admin, &sqe, msg, 64, NULL, 0, NULL), 0);
	auth_sqe(&sqe, nvme_fabrics_type_auth_receive, AUTH_SECP_NVME, sizeof(in));
	assert_int_equal(nvmf_cmd(&admin, &sqe, NULL, 0, in, sizeof(in), NULL), 0);
	struct auth_msg m;
	assert_int_equal(auth_msg_decode(in, sizeof(in), &m), 0);
	assert_int_equal(m.id, AUTH_ID_FAILURE1);
	assert_true(m.failure.rescode_exp == AUTH_FAIL_INCORRECT_MESSAGE ||
		    m.failure.rescode_exp == AUTH_FAIL_INCORRECT_PAYLOAD);
	assert_closed(&admin);
	nvmf_close(&admin);

	/* A Receive with nothing asked for: AUTH_Failure1 "incorrect protocol
	 * message", and the controller ends. */
	connect_queue(&admin, 0, HOST_ONEWAY, 0xffff);
	auth_sqe(&sqe, nvme_fabrics_type_auth_receive, AUTH_SECP_NVME, sizeof(in));
	assert_int_equal(nvmf_cmd(&admin, &sqe, NULL, 0, in, sizeof(in), NULL), 0);
	assert_int_equal(auth_msg_decode(in, sizeof(in), &m), 0);
	assert_int_equal(m.id, AUTH_ID_FAILURE1);
	assert_int_equal(m.failure.rescode_exp, AUTH_FAIL_INCORRECT_MESSAGE);
	assert_closed(&admin);
	nvmf_close(&admin);
}

/* An AUTH_Negotiate for DH-HMAC-CHAP with SHA-256 and the null group;
 * the Send's result. */
static int send_negotiate_quiet(struct nvmf_client *c, uint16_t tid)
{
	struct auth_msg m = { .type = AUTH_TYPE_COMMON, .id = AUTH_ID_NEGOTIATE, .tid = tid };
	uint8_t buf[AUTH_MSG_MAX];
	size_t n;

	m.neg.has_dhchap = 1;
	m.neg.nhash = 1;
	m.neg.hash[0] = NVME_HASH_SHA256;
	m.neg.ndh = 1;
	m.neg.dh[0] = DHCHAP_DH_NULL;
	n = auth_msg_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	return carry_send(c, buf, n);
}

static void send_negotiate(struct nvmf_client *c, uint16_t tid)
{
	assert_int_equal(send_negotiate_quiet(c, tid), 0);
}

#define STALL_KATO_MS 2000
#define STALL_TRIES 5

/*
 * A host that stops half-way: after the deadline (the controller's KATO,
 * 2 s here) its queue is disconnected, whether it stopped after the
 * Challenge or keeps restarting with AUTH_Negotiate (which does not extend
 * the deadline). The controller lives on: its admin queue, authenticated
 * and kept alive, still answers.
 *
 * One try: false when the admin queue failed while the host itself was
 * late - a whole KATO between sending one Keep Alive and the answer to the
 * next, as a loaded machine may make it: then the controller may rightly
 * have gone.
 */
static bool stalled_queue_round(void)
{
	struct nvmf_client admin, io1, io2;
	struct auth_host_result res;
	struct nvme_cqe cqe;
	struct nvme_sqe ka;
	struct auth_msg m;
	static struct nvme_id_ctrl id;
	uint8_t in[4096], data[LBA];
	bool late = false;
	int st;

	if (nvmf_tcp_connect(&admin, "127.0.0.1", port, false, false))
		fail_msg("connect: %s", admin.err);
	assert_int_equal(nvmf_connect(&admin, 0, 32, STALL_KATO_MS, HOST_ONEWAY, SUBNQN, 0xffff, 0,
				      &cqe), 0);
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_oneway, NULL, NVME_HASH_SHA256,
				      DHCHAP_DH_NULL, 1, &res), 0);
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);

	/* I/O queue 1 stops after the Challenge; commands in between are
	 * refused with Authentication Required. */
	assert_true(connect_queue(&io1, 1, HOST_ONEWAY, admin.cntlid) & ATR);
	send_negotiate(&io1, 5);
	assert_int_equal(carry_receive(&io1, in, sizeof(in)), (ssize_t)sizeof(in));
	assert_int_equal(auth_msg_decode(in, sizeof(in), &m), 0);
	assert_int_equal(m.id, AUTH_ID_CHALLENGE);
	assert_int_equal(nvmf_read(&io1, 1, 0, 1, data, LBA, NULL), ST_AUTH_REQUIRED);
	/* I/O queue 2 restarts its transaction over and over (below). */
	assert_true(connect_queue(&io2, 2, HOST_ONEWAY, admin.cntlid) & ATR);

	/* Keep the controller alive until both queues are gone. */
	memset(&ka, 0, sizeof(ka));
	ka.opcode = nvme_admin_keep_alive;
	double sent = now_ms();
	for (int gone = 0, i = 0; gone != 3; i++) {
		/* A queue found closed stays readable (end of stream): poll
		 * only the open ones, so that each round waits its 200 ms. */
		struct pollfd p[2] = { { gone & 1 ? -1 : io1.fd, POLLIN, 0 },
				       { gone & 2 ? -1 : io2.fd, POLLIN, 0 } };

		if (i == 150) /* 30 s or more: far past the 2 s deadline */
			fail_msg("still open after %d rounds: I/O queue 1 %s, I/O queue 2 %s", i,
				 gone & 1 ? "closed" : "open", gone & 2 ? "closed" : "open");
		double t = now_ms();
		st = nvmf_cmd(&admin, &ka, NULL, 0, NULL, 0, NULL);
		late |= now_ms() - sent >= STALL_KATO_MS;
		sent = t;
		if (st && late)
			goto retry;
		assert_int_equal(st, 0);
		if (!(gone & 2)) {
			/* A restart and its Challenge; either may meet the
			 * close, the poll below sees it. */
			send_negotiate_quiet(&io2, (uint16_t)(10 + i));
			carry_receive(&io2, in, sizeof(in));
		}
		poll(p, 2, 200);
		for (int k = 0; k < 2; k++)
			if (!(gone & (1 << k)) && (p[k].revents & (POLLIN | POLLHUP))) {
				assert_closed(k ? &io2 : &io1);
				gone |= 1 << k;
			}
	}
	st = nvmf_identify(&admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL);
	late |= now_ms() - sent >= STALL_KATO_MS;
	if (st && late)
		goto retry;
	assert_int_equal(st, 0);
	nvmf_close(&io1);
	nvmf_close(&io2);
	nvmf_close(&admin);
	return true;
retry:
	nvmf_close(&io1);
	nvmf_close(&io2);
	nvmf_close(&admin);
	return false;
}

/*
 * Only a step forward extends the deadline: a host without the secret that
 * keeps sending Authentication Send commands the controller refuses (here a
 * DH-HMAC-CHAP_Reply out of order) and never fetches the AUTH_Failure1 must
 * still lose its queue at the deadline (KATO 2 s), not keep it forever.
 */
static void test_refused_sends_do_not_extend_deadline(void **state)
{
	struct nvmf_client admin;
	struct nvme_cqe cqe;
	uint8_t msg[64];
	double start = now_ms();

	(void)state;
	if (nvmf_tcp_connect(&admin, "127.0.0.1", port, false, false))
		fail_msg("connect: %s", admin.err);
	assert_int_equal(nvmf_connect(&admin, 0, 32, STALL_KATO_MS, HOST_ONEWAY, SUBNQN, 0xffff, 0,
				      &cqe), 0);
	memset(msg, 0, sizeof(msg));
	msg[0] = AUTH_TYPE_DHCHAP;
	msg[1] = AUTH_ID_REPLY;
	for (;;) {
		struct pollfd p = { admin.fd, POLLIN, 0 };

		if (now_ms() - start > 5.0 * STALL_KATO_MS)
			fail_msg("an unauthenticated queue still open after %.0f ms (deadline %d ms)",
				 now_ms() - start, STALL_KATO_MS);
		/* Each refused Send leaves an AUTH_Failure1 pending; none is fetched. */
		if (carry_send(&admin, msg, sizeof(msg)) != 0)
			break;
		if (poll(&p, 1, STALL_KATO_MS / 4) == 1)
			break;
	}
	assert_closed(&admin);
	nvmf_close(&admin);
}

static void test_stalled_queue_disconnected(void **state)
{
	(void)state;
	for (int tries = 1; !stalled_queue_round(); tries++)
		if (tries == STALL_TRIES)
			fail_msg("the host was late in %d tries: the machine is too busy", tries);
}

/*
 * The host leaves the subsystem's table (reload, set-hosts) while its
 * authenticated controller stays. An I/O queue that then connects to that
 * controller must still prove the secret the controller was made with (as
 * Linux nvmet keeps the keys on the controller), not get in with no
 * authentication at all: knowing the host NQN, host ID and controller ID,
 * which travel in clear text, would be enough.
 */
static void test_io_queue_after_host_removed(void **state)
{
	struct subsys_config *sc = calloc(1, sizeof(*sc));
	struct nvmf_client admin, io;
	struct auth_host_result res;
	struct nvme_cqe cqe;
	uint8_t data[LBA];
	char err[256];
	int st;

	(void)state;
	assert_non_null(sc);
	snprintf(sc->nqn, sizeof(sc->nqn), "%s", SUBNQN);
	snprintf(sc->hosts[0], sizeof(sc->hosts[0]), "%s", HOST_PLAIN);
	sc->host_auth[0].listed = true;
	sc->nr_hosts = 1;

	assert_true(connect_queue(&admin, 0, HOST_ONEWAY, 0xffff) & ATR);
	assert_int_equal(authenticate(&admin, HOST_ONEWAY, key_oneway, NULL, NVME_HASH_SHA256,
				      DHCHAP_DH_NULL, 1, &res), 0);
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);
	assert_int_equal(subsys_set_hosts(SUBNQN, sc, err, sizeof(err)), 0);

	if (nvmf_tcp_connect(&io, "127.0.0.1", port, false, false))
		fail_msg("connect: %s", io.err);
	st = nvmf_connect(&io, 1, 32, 0, HOST_ONEWAY, SUBNQN, admin.cntlid, 0, &cqe);
	if (st == 0) {
		assert_true(le64toh(cqe.result) & ATR);
		assert_int_equal(nvmf_read(&io, 1, 0, 1, data, LBA, NULL), ST_AUTH_REQUIRED);
	}
	nvmf_close(&io);
	nvmf_close(&admin);
	assert_int_equal(subsys_set_hosts(SUBNQN, &target.cfg.subsys[0], err, sizeof(err)), 0);
	free(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oneway),
		cmocka_unit_test(test_bidirectional_io_queue),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_host_without_secret),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_stalled_queue_disconnected),
		cmocka_unit_test(test_refused_sends_do_not_extend_deadline),
		cmocka_unit_test(test_io_queue_after_host_removed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
