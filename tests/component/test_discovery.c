/*
 * The discovery controller: Identify, the discovery log page read the way
 * libnvme reads it (header, then entries at LPO 1024 in chunks), the host
 * allow-list, wildcard addresses, GENCTR and the discovery change AEN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "../lib/core_harness.h"
#include "subsys.h"

#define UNIQUE_DISC "nqn.2024-01.io.znstgt:discovery"
#define SUB_A "nqn.2024-01.io.znstgt:disc-a"      /* any host */
#define SUB_B "nqn.2024-01.io.znstgt:disc-b"      /* not for TH_HOSTNQN */
#define SUB_C "nqn.2024-01.io.znstgt:disc-c"      /* TH_HOSTNQN allowed */
#define SUB_NEW "nqn.2024-01.io.znstgt:disc-new"

#define DNR 0x4000u
#define GEN(sc) ((uint16_t)(DNR | (sc)))
#define CMD(sc) ((uint16_t)(DNR | 0x100u | (sc)))

static struct target_config cfg;
static struct subsys_config subs[3];

static int setup(void **state)
{
	char err[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	/* A wildcard listener (the one the tests connect to) and another one. */
	snprintf(cfg.listeners[0].addr, sizeof(cfg.listeners[0].addr), "0.0.0.0");
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "4420");
	snprintf(cfg.listeners[1].addr, sizeof(cfg.listeners[1].addr), "192.0.2.9");
	snprintf(cfg.listeners[1].port, sizeof(cfg.listeners[1].port), "4421");
	snprintf(cfg.listeners[2].addr, sizeof(cfg.listeners[2].addr), "::");
	snprintf(cfg.listeners[2].port, sizeof(cfg.listeners[2].port), "4422");
	cfg.nr_listeners = 3;
	snprintf(cfg.discovery_nqn, sizeof(cfg.discovery_nqn), UNIQUE_DISC);
	snprintf(subs[0].nqn, sizeof(subs[0].nqn), SUB_A);
	subs[0].allow_any_host = true;
	snprintf(subs[1].nqn, sizeof(subs[1].nqn), SUB_B);
	snprintf(subs[1].hosts[0], sizeof(subs[1].hosts[0]), "nqn.2014-08.org.nvmexpress:uuid:other");
	subs[1].nr_hosts = 1;
	snprintf(subs[2].nqn, sizeof(subs[2].nqn), SUB_C);
	snprintf(subs[2].hosts[0], sizeof(subs[2].hosts[0]), TH_HOSTNQN);
	subs[2].nr_hosts = 1;
	cfg.subsys = subs;
	cfg.nr_subsys = 3;
	if (subsys_registry_init(&cfg, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	th_start();
	/* The same listeners, as ports the discovery log walks. */
	for (int i = 0; i < cfg.nr_listeners; i++)
		assert_int_equal(th_port_add(cfg.listeners[i].addr, cfg.listeners[i].port), i + 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	subsys_registry_destroy();
	th_stop();
	return 0;
}

/* A discovery controller as the kernel makes one: KATO 0, enabled. */
static struct th_queue *disc_admin(const char *nqn, uint16_t *cntlid)
{
	struct th_queue *q = th_queue_open("0.0.0.0", "4420", "192.0.2.7");
	uint64_t r = 0;

	assert_int_equal(th_connect(q, nqn, 0, 0xffff, 0, &r), 0);
	if (cntlid)
		*cntlid = (uint16_t)r;
	assert_int_equal(th_prop_set(q, NVME_REG_CC, th_cc_enable()), 0);
	return q;
}

static void test_identify(void **state)
{
	uint16_t cntlid;
	struct th_queue *q = disc_admin(NVME_DISC_SUBSYS_NAME, &cntlid);
	struct nvme_id_ctrl id;

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id), 0);
	assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_DISCOVERY);
	assert_string_equal(id.subnqn, NVME_DISC_SUBSYS_NAME);
	assert_int_equal(le16toh(id.cntlid), cntlid);
	assert_int_not_equal(le16toh(id.maxcmd), 0);
	assert_int_not_equal(le16toh(id.kas), 0);
	assert_true(le32toh(id.sgls) & 1);
	assert_true(id.lpa & NVME_CTRL_LPA_EXTENDED);
	assert_true(le32toh(id.oaes) & NVME_CTRL_OAES_DL);
	assert_int_equal(le32toh(id.ver), 0x10300);
	assert_int_equal(id.fr[0] != ' ', 1);
	/* Keep Alive works with KATO 0 (we arm 120 s anyway). */
	struct nvme_sqe ka = th_sqe(nvme_admin_keep_alive, 0);
	assert_int_equal(th_exec(q, &ka, NULL, 0, NULL), 0);
	th_queue_close(q);

	/* The unique discovery NQN reaches the same controller type and
	 * reports itself. */
	q = disc_admin(UNIQUE_DISC, NULL);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id), 0);
	assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_DISCOVERY);
	assert_string_equal(id.subnqn, UNIQUE_DISC);
	th_queue_close(q);
}

/* Read the whole log as libnvme does: header, entries, header again. */
static struct nvmf_discovery_log *read_log(struct th_queue *q, uint64_t *numrec)
{
	struct nvmf_discovery_log hdr, hdr2;
	struct nvmf_discovery_log *log;
	size_t size;

	memset(&hdr, 0, sizeof(hdr));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, true, &hdr, 20), 0);
	*numrec = le64toh(hdr.numrec);
	size = sizeof(hdr) + *numrec * sizeof(struct nvmf_disc_log_entry);
	log = calloc(1, size);
	assert_non_null(log);
	/* Entries one by one from LPO 1024 (4-byte granularity works too). */
	for (uint64_t i = 0; i < *numrec; i++)
		assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0,
					    sizeof(hdr) + i * sizeof(log->entries[0]), true,
					    &log->entries[i], sizeof(log->entries[0])),
				 0);
	memset(&hdr2, 0, sizeof(hdr2));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, false, &hdr2, 20), 0);
	assert_int_equal(le64toh(hdr2.genctr), le64toh(hdr.genctr));
	memcpy(log, &hdr2, 20);
	return log;
}

static const struct nvmf_disc_log_entry *find(const struct nvmf_discovery_log *log, uint64_t n,
					       const char *nqn, const char *port)
{
	for (uint64_t i = 0; i < n; i++)
		if (strcmp(log->entries[i].subnqn, nqn) == 0 &&
		    strcmp(log->entries[i].trsvcid, port) == 0)
			return &log->entries[i];
	return NULL;
}

static void test_log(void **state)
{
	struct th_queue *q = disc_admin(NVME_DISC_SUBSYS_NAME, NULL);
	const struct nvmf_disc_log_entry *e;
	struct nvmf_discovery_log *log;
	uint64_t n;

	(void)state;
	log = read_log(q, &n);
	/* Entry 0 + (A, C) x (port 4420, port 4421); B is not for this host,
	 * and the IPv6 wildcard port cannot be named for an IPv4 host. */
	assert_int_equal(n, 5);
	assert_int_equal(le16toh(log->recfmt), 0);
	e = &log->entries[0];
	assert_int_equal(e->subtype, NVME_NQN_CURR);
	assert_string_equal(e->subnqn, UNIQUE_DISC);
	assert_string_equal(e->traddr, "192.0.2.7"); /* wildcard: the local address */
	assert_string_equal(e->trsvcid, "4420");
	assert_int_equal(le16toh(e->portid), 1);
	assert_int_equal(e->trtype, NVMF_TRTYPE_TCP);
	assert_int_equal(e->adrfam, NVMF_ADDR_FAMILY_IP4);

	e = find(log, n, SUB_A, "4420");
	assert_non_null(e);
	assert_int_equal(e->subtype, NVME_NQN_NVME);
	assert_string_equal(e->traddr, "192.0.2.7");
	assert_int_equal(le16toh(e->cntlid), 0xffff);
	assert_int_equal(le16toh(e->asqsz), 32);
	assert_int_equal(e->tsas.tcp.sectype, NVMF_TCP_SECTYPE_NONE);
	e = find(log, n, SUB_C, "4421");
	assert_non_null(e);
	assert_string_equal(e->traddr, "192.0.2.9");
	assert_int_equal(le16toh(e->portid), 2);
	assert_null(find(log, n, SUB_B, "4420"));
	free(log);

	/* Paging errors: unaligned or past-the-end offsets; past the end of
	 * the log the buffer reads as zero. */
	uint8_t buf[2048];
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 2, true, buf, 4),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 1024 * 7, true, buf, 4),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 1024 * 6, true, buf, 2048), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	th_queue_close(q);
}

static void test_bad_commands(void **state)
{
	struct th_queue *q = disc_admin(NVME_DISC_SUBSYS_NAME, NULL);
	uint8_t buf[4096];
	struct nvme_sqe s;

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 1, 0, buf), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, 0, 0, 0, false, buf, 512),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_NUM_QUEUES, 0, NULL, 0, NULL),
			 GEN(NVME_SC_INVALID_FIELD));
	/* Only the discovery change notice can be enabled. */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, 0x100, NULL, 0, NULL),
			 GEN(NVME_SC_INVALID_FIELD));
	s = th_sqe(nvme_admin_abort_cmd, 0);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_OPCODE));
	s = th_sqe(nvme_zns_cmd_append, 1); /* an I/O opcode on the admin queue */
	assert_int_equal(th_exec(q, &s, buf, 4096, NULL), GEN(NVME_SC_INVALID_OPCODE));
	/* NUMD says 8 bytes, the buffer is 16. */
	s = th_sqe(nvme_admin_get_log_page, 0);
	s.cdw10 = htole32(NVME_LOG_LID_DISCOVER | 1u << 16);
	assert_int_equal(th_exec(q, &s, buf, 16, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	th_queue_close(q);
}

static void test_changes_and_aen(void **state)
{
	struct th_queue *q = disc_admin(NVME_DISC_SUBSYS_NAME, NULL);
	struct nvmf_discovery_log hdr;
	struct subsys_config sc;
	struct th_cmd *aer;
	uint64_t gen0, r;
	char err[256];
	uint8_t buf[20];

	(void)state;
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, false, buf, 20), 0);
	memcpy(&hdr, buf, 20);
	gen0 = le64toh(hdr.genctr);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT,
				     NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE, NULL, 0, NULL), 0);
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	aer = th_submit(q, &s, NULL, 0, false);
	assert_false(th_wait(aer, 100)); /* parked */

	/* A new subsystem: GENCTR moves, the AER completes with notice F0h. */
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.nqn, sizeof(sc.nqn), SUB_NEW);
	sc.allow_any_host = true;
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), 0);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(r & 0xffffffff, 0x700000u | NVME_AER_NOTICE_DISC_CHANGED << 8 | NVME_AER_NOTICE);

	/* Until the log is read without RAE, more changes send nothing. */
	aer = th_submit(q, &s, NULL, 0, false);
	assert_int_equal(subsys_remove(SUB_NEW, err, sizeof(err)), 0);
	assert_false(th_wait(aer, 200));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, true, buf, 20), 0);
	memcpy(&hdr, buf, 20);
	assert_int_equal(le64toh(hdr.genctr), gen0 + 2);
	assert_int_equal(le64toh(hdr.numrec), 5);
	assert_false(th_wait(aer, 100)); /* RAE set: still masked */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, false, buf, 20), 0);
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), 0);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(subsys_remove(SUB_NEW, err, sizeof(err)), 0);
	th_queue_close(q);
}

static void test_aer_limit_and_close(void **state)
{
	struct th_queue *q = disc_admin(NVME_DISC_SUBSYS_NAME, NULL);
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	struct th_cmd *aers[5];
	uint64_t r;

	(void)state;
	for (int i = 0; i < 5; i++)
		aers[i] = th_submit(q, &s, NULL, 0, false);
	/* AERL 3: four park, the fifth is over the limit. */
	assert_true(th_wait(aers[4], TH_WAIT_MS));
	assert_int_equal(th_finish(aers[4], &r, NULL), CMD(NVME_SC_ASYNC_LIMIT));
	for (int i = 0; i < 4; i++)
		assert_false(th_wait(aers[i], 0));
	/* Closing the queue gives them back, aborted. */
	th_queue_close(q);
	for (int i = 0; i < 4; i++) {
		assert_true(th_wait(aers[i], TH_WAIT_MS));
		assert_int_equal(th_finish(aers[i], NULL, NULL), NVME_SC_ABORT_QUEUE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_bad_commands),
		cmocka_unit_test(test_changes_and_aen),
		cmocka_unit_test(test_aer_limit_and_close),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
