/*
 * The test host's TLS 1.3 client (tests/lib/nvmf_tls.h, what znstgt-load
 * --tls-key uses) against the whole target in-process: the handshake with
 * the identity and TLS PSK derived from the configured PSK by
 * common/nvme_psk.c, both cipher suites and identity versions, then
 * ICReq, Connect, Identify and the load generator's own I/O queues
 * (tests/lib/load.h: in-capsule and R2T/H2CData writes, C2HData reads, data
 * verified) inside TLS; a wrong key, another HKDF encoding and an unknown
 * host refused with the handshake's reason, the target still serving after.
 * A subsystem with require_tls: plain admin and I/O Connects refused as
 * nvmet refuses a subsystem the port does not offer, TLS ones served, and
 * the discovery log lists it with the TLS port only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/inproc_target.h"
#include "../lib/load.h"
#include "../lib/nvmf_client.h"
#include "../lib/nvmf_ns.h"
#include "../lib/nvmf_tls.h"
#include "../lib/tls_test_conf.h"
#include "nvme_cmd.h"
#include "nvme_keys.h"
#include "nvme_psk.h"
#include "subsys.h"
#include "tcp.h"

#define SUBNQN "nqn.2026-11.io.znstgt:tls-client"
#define HOST256 "nqn.2026-11.io.znstgt:client-sha256"
#define HOST384 "nqn.2026-11.io.znstgt:client-sha384"
#define STRANGER "nqn.2026-11.io.znstgt:client-stranger"
#define ONLYNQN "nqn.2026-11.io.znstgt:tls-only"
/* Connect Invalid Parameters with DNR, as nvmf_cmd() returns a status. */
#define INVALID_PARAM ((uint16_t)(0x4000u | 0x100u | NVME_SC_CONNECT_INVALID_PARAM))

static struct inproc_target target;
static char plain_port[NVMF_TRSVCID_SIZE], tls_port[NVMF_TRSVCID_SIZE];
static struct nvme_secret *psk256, *psk384;

static int setup(void **state)
{
	static const struct inproc_file files[] = {
		PSK384_FILE,
		{ "conf/tls.ini", TLS_TEST_SUBSYS(SUBNQN, HOST384, HOST256), 0644 },
		{ "conf/only.ini", "[subsystem]\nnqn = " ONLYNQN "\nrequire_tls = yes\n"
		  "[namespace 1]\nsize = 4M\nzoned = no\n"
		  "[host " HOST256 "]\npsk = " PSK256 "\n", 0644 },
		{ NULL, NULL, 0 },
	};
	char err[512];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	psk256 = nvme_secret_parse(NVME_SECRET_TLS_PSK, PSK256, err, sizeof(err));
	psk384 = nvme_secret_parse(NVME_SECRET_TLS_PSK, PSK384, err, sizeof(err));
	assert_non_null(psk256);
	assert_non_null(psk384);
	if (inproc_target_up(&target, files, "listen = 127.0.0.1:4420\ntls_listen = 127.0.0.1:4421\n",
			     err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(plain_port, sizeof(plain_port), "%s", tcp_listener_port(0)->trsvcid);
	snprintf(tls_port, sizeof(tls_port), "%s", tcp_listener_port(1)->trsvcid);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	inproc_target_stop(&target);
	nvme_secret_free(psk256);
	nvme_secret_free(psk384);
	return 0;
}

/* TCP to port, then the TLS handshake as host for subnqn: 0, or -1 with c->err. */
static int tls_to_subsys(struct nvmf_client *c, const char *port, const char *host,
			 const char *subnqn, const struct nvmf_tls_cfg *tls)
{
	if (nvmf_tcp_socket(c, "127.0.0.1", port))
		fail_msg("%s", c->err);
	c->timeout_ms = 5000;
	return nvmf_tls_handshake(c, tls, host, subnqn);
}

static int tls_to(struct nvmf_client *c, const char *port, const char *host,
		  const struct nvmf_tls_cfg *tls)
{
	return tls_to_subsys(c, port, host, SUBNQN, tls);
}

/* A queue of subnqn over TLS: handshake, ICReq, Connect (qid 0: a new controller). */
static void tls_queue_to(struct nvmf_client *c, const char *host, const char *subnqn,
			 const struct nvmf_tls_cfg *tls, uint16_t qid, uint16_t sqsize,
			 uint16_t cntlid)
{
	if (tls_to_subsys(c, tls_port, host, subnqn, tls) || nvmf_icreq(c, false, false))
		fail_msg("queue %u: %s", qid, c->err);
	int st = nvmf_connect(c, qid, sqsize, 0, host, subnqn, cntlid, 0, NULL);
	if (st)
		fail_msg("queue %u Connect: status %#x %s", qid, st, c->err);
}

static void tls_queue(struct nvmf_client *c, const char *host, const struct nvmf_tls_cfg *tls,
		      uint16_t qid, uint16_t sqsize, uint16_t cntlid)
{
	tls_queue_to(c, host, SUBNQN, tls, qid, sqsize, cntlid);
}

static void admin_over_tls(struct nvmf_client *a, const char *host,
			   const struct nvmf_tls_cfg *tls, const char *cipher)
{
	uint8_t id[NVME_IDENTIFY_DATA_SIZE];

	tls_queue(a, host, tls, 0, 32, 0xffff);
	assert_string_equal(nvmf_tls_cipher(a->tls), cipher);
	if (nvmf_enable(a, 5000))
		fail_msg("enable: %s", a->err);
	assert_int_equal(nvmf_identify(a, NVME_IDENTIFY_CNS_CTRL, 0, 0, id, NULL), 0);
	assert_string_equal((const char *)((struct nvme_id_ctrl *)id)->subnqn, SUBNQN);
}

static void test_sha256_identity_v1(void **state)
{
	struct nvmf_tls_cfg tls = { .psk = psk256, .version = 1, .kdf = NVME_PSK_KDF_RFC8446 };
	struct nvmf_client a;

	(void)state;
	admin_over_tls(&a, HOST256, &tls, "TLS_AES_128_GCM_SHA256");
	nvmf_close(&a);
}

static void test_sha384_identity_v0(void **state)
{
	/* Version 0 in libnvme's encoding: what nvme-cli 2.13 inserts. */
	struct nvmf_tls_cfg tls = { .psk = psk384, .version = 0, .kdf = NVME_PSK_KDF_LIBNVME };
	struct nvmf_client a;

	(void)state;
	admin_over_tls(&a, HOST384, &tls, "TLS_AES_256_GCM_SHA384");
	nvmf_close(&a);
}

/* ---- the load generator's queues inside TLS ---- */

struct runner {
	struct load_queue lq;
	int rc;
};

static void *runner_main(void *arg)
{
	struct runner *r = arg;

	r->rc = load_queue_prefill(&r->lq);
	if (!r->rc)
		r->rc = load_queue_run(&r->lq);
	return NULL;
}

/* One I/O queue of qd, ios I/Os of bs bytes, verified; its first use of
 * the region is a prefill (reads check it, writes are read back). */
static void tls_load(struct nvmf_client *a, const struct nvmf_tls_cfg *tls, uint16_t qid,
		     enum load_op op, uint32_t bs, int qd, uint64_t ios)
{
	struct nvmf_client io;
	struct nvmf_ns_geom g;
	struct runner r;
	uint32_t nunits, skipped, resets;
	char err[256];
	int abort_flag = 0;
	pthread_t th;

	assert_int_equal(nvmf_ns_geometry(a, 1, &g), 0);
	tls_queue(&io, HOST256, tls, qid, (uint16_t)(qd + 1), a->cntlid);
	io.io_inline = g.io_inline;
	struct load_unit *units = load_units(&io, &g, (4u << 20) >> g.lba_shift, bs, 1, true,
					     &nunits, &skipped, &resets, err, sizeof(err));
	if (!units)
		fail_msg("units: %s", err);
	struct load_cfg c = { .op = op, .random = true, .nsid = 1, .lba_shift = g.lba_shift,
			      .bs = bs, .qd = qd, .units = units, .nunits = nunits, .nqueues = 1,
			      .verify = true, .seed = 7, .prefill_bs = 128 * 1024, .quota = ios,
			      .abort = &abort_flag };
	if (load_queue_init(&r.lq, &c, 0, &io))
		fail_msg("%s", r.lq.err);
	assert_null(io.tls); /* the queue took the channel over */
	assert_int_equal(pthread_create(&th, NULL, runner_main, &r), 0);
	pthread_join(th, NULL);
	if (r.rc)
		fail_msg("load over TLS: %s", r.lq.err);
	assert_int_equal(r.lq.st.errors, 0);
	assert_int_equal(r.lq.st.ios, ios);
	assert_int_equal(r.lq.st.verified, ios);
	load_queue_destroy(&r.lq);
	free(units);
}

static void test_load_queues_over_tls(void **state)
{
	struct nvmf_tls_cfg tls = { .psk = psk256, .version = 1, .kdf = NVME_PSK_KDF_RFC8446 };
	struct nvmf_client a;

	(void)state;
	admin_over_tls(&a, HOST256, &tls, "TLS_AES_128_GCM_SHA256");
	/* 4 KiB reads at QD 32: many PDUs per record both ways. */
	tls_load(&a, &tls, 1, LOAD_READ, 4096, 32, 3000);
	/* 128 KiB writes: past the in-capsule limit, so R2T and H2CData
	 * larger than the client's staging buffer, then read back. */
	tls_load(&a, &tls, 2, LOAD_WRITE, 128 * 1024, 4, 100);
	nvmf_close(&a);
}

/* ---- refusals ---- */

static void expect_refused(const char *host, const struct nvmf_tls_cfg *tls)
{
	struct nvmf_client c;

	assert_int_equal(tls_to(&c, tls_port, host, tls), -1);
	assert_non_null(strstr(c.err, "TLS handshake failed"));
	assert_null(c.tls);
	nvmf_close(&c);
}

static void test_refused(void **state)
{
	struct nvme_secret other = *psk256;
	struct nvmf_tls_cfg tls = { .psk = &other, .version = 1, .kdf = NVME_PSK_KDF_RFC8446 };
	struct nvmf_client a;

	(void)state;
	/* A key that is not the host's: one bit off. */
	other.key[0] ^= 1;
	expect_refused(HOST256, &tls);
	/* The host's key for another host NQN: a different identity. */
	tls.psk = psk256;
	expect_refused(STRANGER, &tls);
	/* Version 0 in the RFC encoding: same identity text, another TLS PSK
	 * than the target derives for version 0 (libnvme's). */
	tls.version = 0;
	expect_refused(HOST256, &tls);
	/* None of it hurt the target. */
	tls.version = 1;
	admin_over_tls(&a, HOST256, &tls, "TLS_AES_128_GCM_SHA256");
	nvmf_close(&a);
}

/* A TLS client at a plain listener: its ClientHello is no ICReq, the
 * target closes, and the handshake fails at once with a reason. */
static void test_plain_listener(void **state)
{
	struct nvmf_tls_cfg tls = { .psk = psk256, .version = 1, .kdf = NVME_PSK_KDF_RFC8446 };
	struct nvmf_client c;

	(void)state;
	assert_int_equal(tls_to(&c, plain_port, HOST256, &tls), -1);
	assert_non_null(strstr(c.err, "TLS handshake failed"));
	nvmf_close(&c);
}

/* ---- require_tls ---- */

/* A plain queue's Connect to ONLYNQN: refused, DNR, IPO at SUBNQN. */
static void plain_refused(uint16_t qid, uint16_t cntlid)
{
	struct nvmf_client c;
	struct nvme_cqe cqe;

	assert_int_equal(nvmf_tcp_connect(&c, "127.0.0.1", plain_port, false, false), 0);
	assert_int_equal(nvmf_connect(&c, qid, 32, 0, HOST256, ONLYNQN, cntlid, 0, &cqe),
			 INVALID_PARAM);
	assert_int_equal(le64toh(cqe.result) & 0xffffffffu, NVMF_IPO_DATA(subsysnqn));
	nvmf_close(&c);
}

/* Entries of subnqn in the discovery log read over the plain listener. */
static void disc_entries(const char *subnqn, int *plain, int *tls)
{
	static uint8_t log[8192];
	const struct nvmf_discovery_log *dl = (const void *)log;
	struct nvmf_client c;
	struct nvme_sqe sqe = { .opcode = nvme_admin_get_log_page };

	*plain = *tls = 0;
	if (nvmf_admin_up(&c, "127.0.0.1", plain_port, HOST256, NVME_DISC_SUBSYS_NAME))
		fail_msg("%s", c.err);
	sqe.cdw10 = htole32(NVME_LOG_LID_DISCOVER | (uint32_t)(sizeof(log) / 4 - 1) << 16);
	assert_int_equal(nvmf_cmd(&c, &sqe, NULL, 0, log, sizeof(log), NULL), 0);
	assert_true(le64toh(dl->numrec) <= 31);
	for (uint64_t i = 0; i < le64toh(dl->numrec); i++) {
		const struct nvmf_disc_log_entry *e = &dl->entries[i];
		if (strcmp(e->subnqn, subnqn) != 0)
			continue;
		if (strcmp(e->trsvcid, tls_port) == 0)
			++*tls;
		else if (strcmp(e->trsvcid, plain_port) == 0)
			++*plain;
		else
			fail_msg("entry for port %s", e->trsvcid);
	}
	nvmf_close(&c);
}

static void test_require_tls(void **state)
{
	struct nvmf_tls_cfg tls = { .psk = psk256, .version = 1, .kdf = NVME_PSK_KDF_RFC8446 };
	struct nvmf_client a, io;
	uint8_t id[NVME_IDENTIFY_DATA_SIZE];
	int plain, tls_n;

	(void)state;
	plain_refused(0, 0xffff);
	/* Over TLS: a controller, */
	tls_queue_to(&a, HOST256, ONLYNQN, &tls, 0, 32, 0xffff);
	if (nvmf_enable(&a, 5000))
		fail_msg("enable: %s", a.err);
	assert_int_equal(nvmf_identify(&a, NVME_IDENTIFY_CNS_CTRL, 0, 0, id, NULL), 0);
	/* whose I/O queues must come over TLS as well. */
	plain_refused(1, a.cntlid);
	tls_queue_to(&io, HOST256, ONLYNQN, &tls, 1, 8, a.cntlid);
	nvmf_close(&io);
	nvmf_close(&a);
	/* Discovery: the TLS port only, the other subsystem on both. */
	disc_entries(ONLYNQN, &plain, &tls_n);
	assert_int_equal(plain, 0);
	assert_int_equal(tls_n, 1);
	disc_entries(SUBNQN, &plain, &tls_n);
	assert_int_equal(plain, 1);
	assert_int_equal(tls_n, 1);
}

/* A power cut brings the subsystems back as configured: require_tls too,
 * or a plain queue would reach ONLYNQN after it. */
static void test_require_tls_after_power_cut(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(subsys_power_cut(30, err, sizeof(err)), 2);
	plain_refused(0, 0xffff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_identity_v1),
		cmocka_unit_test(test_sha384_identity_v0),
		cmocka_unit_test(test_load_queues_over_tls),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_plain_listener),
		cmocka_unit_test(test_require_tls),
		cmocka_unit_test(test_require_tls_after_power_cut),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
