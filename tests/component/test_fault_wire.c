/*
 * Fault injection over the wire (doc/fault-injection.md): the real daemon
 * (build/znstgt, a child process) takes requests on its control socket
 * while a host, the test client, does I/O over NVMe/TCP.
 *
 *   - each injected status reaches the host exactly as asked (SCT, SC, DNR)
 *     for reads, writes, appends, zone management and reports, only in the
 *     range asked, and a count runs out;
 *   - a seeded chance fails about that share of commands; clearing stops it;
 *   - an injected delay holds the command at least that long while the
 *     queue's other commands complete meanwhile;
 *   - zones taken read-only / offline: every connected host gets the Zone
 *     Descriptor Changed notice and the zones in its Changed Zone List, I/O
 *     and zone actions then get a drive's statuses, reports show the new
 *     states, and all of it survives kill -9 and a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "ctl_client.h"
#include "../lib/nvmf_client.h"
#include "../lib/nvmf_ns.h"
#include "../lib/target_check.h"
#include "../lib/target_daemon.h"

#define NQN "nqn.2026-11.io.znstgt:faults"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0b7c1e55-4d2a-4f8e-9c3b-7a6e5d4c3b2a"
#define LBA 4096u
#define ZS 256u                      /* zone size, LBAs (1 MiB) */
#define NZ 16u

#define ZS_RO NVME_ZNS_ZS_READ_ONLY
#define ZS_O NVME_ZNS_ZS_OFFLINE
#define DNR NVME_STATUS_DNR
#define ST(sct, sc) NVME_STATUS(sct, sc)

static char dir[] = "/tmp/znstgt-fw-XXXXXX";
static char port[TARGET_PORT_LEN];
static struct target_proc T;

struct host {
	struct nvmf_client admin, io;
	struct nvmf_ns_geom g;
};
static struct host H1, H2;

/* ---- the daemon and its control socket ---- */

/* inject ... : the new rule's ID. */
static uint32_t inject(const char *args)
{
	char reply[256];

	target_ctl_ok(&T, reply, sizeof(reply), "inject %s", args);
	return (uint32_t)strtoul(reply, NULL, 10);
}

/* ---- the host ---- */

static void host_up(struct host *h)
{
	if (nvmf_admin_up(&h->admin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", h->admin.err);
	assert_int_equal(nvmf_ns_geometry(&h->admin, 1, &h->g), 0);
	if (nvmf_io_up(&h->io, "127.0.0.1", port, HOSTNQN, NQN, h->admin.cntlid, 1, 64))
		fail_msg("%s", h->io.err);
}

static void host_down(struct host *h)
{
	nvmf_close(&h->io);
	nvmf_close(&h->admin);
}

static void sqe_init(struct nvme_sqe *sqe, uint8_t opcode, uint64_t slba, uint32_t cdw12)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(1);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw11 = htole32((uint32_t)(slba >> 32));
	sqe->cdw12 = htole32(cdw12);
}

static int rd(uint64_t slba, void *buf)
{
	return nvmf_read(&H1.io, 1, slba, 1, buf, LBA, NULL);
}

static int wr(uint64_t slba, const void *buf)
{
	return nvmf_write(&H1.io, 1, slba, 1, buf, LBA, NULL);
}

static int append(uint64_t zslba, const void *buf)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_append, zslba, 0);
	return nvmf_cmd(&H1.io, &sqe, buf, LBA, NULL, 0, NULL);
}

static int zms(uint64_t zslba, uint8_t zsa)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_send, zslba, 0);
	sqe.cdw13 = htole32(zsa);
	return nvmf_cmd(&H1.io, &sqe, NULL, 0, NULL, 0, NULL);
}

static struct nvme_zns_desc zone(uint32_t z)
{
	struct nvme_zns_desc d;
	uint32_t got;

	int st = nvmf_zone_report(&H1.io, &H1.g, (uint64_t)z * ZS, &d, 1, &got);
	if (st || got != 1)
		fail_msg("report of zone %u: %#x %s", z, st, H1.io.err);
	return d;
}

static uint8_t zone_state(uint32_t z)
{
	return zone(z).zs >> 4;
}

static int get_changed_zones(struct host *h, struct nvme_zns_changed_zone_log *zl)
{
	struct nvme_sqe sqe;
	uint32_t numd = sizeof(*zl) / 4 - 1;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.nsid = htole32(1);
	sqe.cdw10 = htole32(NVME_LOG_LID_ZNS_CHANGED_ZONES | (numd & 0xffff) << 16);
	sqe.cdw11 = htole32(numd >> 16);
	sqe.cdw14 = htole32((uint32_t)NVME_CSI_ZNS << 24);
	return nvmf_cmd(&h->admin, &sqe, NULL, 0, zl, sizeof(*zl), NULL);
}

/* Enable the Zone Descriptor Changed notice and park an AER: its CID. */
static uint16_t listen_for_zones(struct host *h)
{
	int cid = nvmf_listen_aer(&h->admin, NVME_CTRL_OAES_ZD);

	assert_true(cid >= 0);
	return (uint16_t)cid;
}

/* The parked AER completes with the Zone Descriptor Changed notice for
 * namespace 1 (ZNS 1.1, 5.5), and the log lists exactly zones[0..n). */
static void expect_zones_changed(struct host *h, uint16_t cid, const uint32_t *zones, int n)
{
	static struct nvme_zns_changed_zone_log zl;
	struct nvme_cqe cqe;

	h->admin.timeout_ms = 5000;
	if (nvmf_wait(&h->admin, cid, &cqe) != 0)
		fail_msg("no Zone Descriptor Changed notice: %s", h->admin.err);
	uint64_t res = le64toh(cqe.result);
	assert_int_equal(res & 0x7, NVME_AER_NOTICE);
	assert_int_equal((res >> 8) & 0xff, 0xef);
	assert_int_equal((res >> 16) & 0xff, NVME_LOG_LID_ZNS_CHANGED_ZONES);
	assert_int_equal(res >> 32, 1);
	assert_int_equal(get_changed_zones(h, &zl), 0);
	assert_int_equal(le16toh(zl.nrzid), n);
	for (int i = 0; i < n; i++)
		assert_int_equal(le64toh(zl.zid[i]), (uint64_t)zones[i] * ZS);
}

/* ---- setup ---- */

static int setup(void **state)
{
	char why[256];

	if (target_daemon_up(&T, dir, (char *[]){ port }, 1, "threads = 2\nio_threads = 2\n"
			     "log_level = warn\n", "faults.ini",
			     "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
			     "[namespace 1]\nsize = 16M\nzone_size = 1M\nwrite_cache = no\n",
			     why, sizeof(why)) != 0)
		fail_msg("%s", why);
	host_up(&H1);
	return 0;
}

static int teardown(void **state)
{
	host_down(&H1);
	host_down(&H2);
	target_finish_ok(&T, dir);
	return 0;
}

static int clear_rules(void **state)
{
	char reply[64];

	target_ctl_ok(&T, reply, sizeof(reply), "inject clear all");
	return 0;
}

/* ---- statuses ---- */

static void test_injected_status_reaches_host(void **state)
{
	static uint8_t buf[LBA];
	char reply[1024];

	memset(buf, 0x5a, sizeof(buf));
	/* Zone 0 written a little, so that reads have data. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(wr((uint64_t)i, buf), 0);

	/* Reads of LBAs 2-3, twice: Unrecovered Read Error with DNR. */
	uint32_t id = inject("error " NQN " 1 op=read lba=2+2 status=2:0x81 count=2");
	assert_int_equal(rd(0, buf), 0);
	assert_int_equal(rd(1, buf), 0);
	assert_int_equal(rd(3, buf), ST(NVME_SCT_MEDIA, NVME_SC_READ_ERROR) | DNR);
	char want[128], *body;
	assert_int_equal(ctl_request_body(T.sock, "inject list", 0, 5000, reply, sizeof(reply),
					  &body), 0);
	assert_string_equal(reply, "1 injection(s)");
	snprintf(want, sizeof(want), "#%u " NQN " 1 op=read lba=2+2 status=2:0x81 dnr=yes left=1 "
		 "fired=1\n", id);
	assert_string_equal(body, want);
	free(body);
	assert_int_equal(rd(2, buf), ST(NVME_SCT_MEDIA, NVME_SC_READ_ERROR) | DNR);
	/* The count ran out: the rule is gone, reads work. */
	assert_int_equal(rd(2, buf), 0);
	target_ctl_ok(&T, reply, sizeof(reply), "inject list");
	assert_string_equal(reply, "0 injection(s)");

	/* Writes: a retryable Internal Error (DNR clear), once. */
	inject("error " NQN " 1 op=write status=0:0x6 dnr=no count=1");
	assert_int_equal(wr(4, buf), ST(NVME_SCT_GENERIC, NVME_SC_INTERNAL));
	assert_int_equal(wr(4, buf), 0); /* the write pointer did not move: 4 again */

	/* Appends to zone 2 only, Zone Management on zone 3 only, reports. */
	inject("error " NQN " 1 op=append zone=512 status=2:0x80");
	inject("error " NQN " 1 op=zmgmt zone=768 status=1:0xb9");
	inject("error " NQN " 1 op=report lba=3840 status=0:0x4 count=1");
	assert_int_equal(append(2 * ZS, buf), ST(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) | DNR);
	assert_int_equal(append(1 * ZS, buf), 0);
	assert_int_equal(zms(3 * ZS, NVME_ZNS_ZSA_OPEN),
			 ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_FULL) | DNR);
	assert_int_equal(zms(4 * ZS, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zms(4 * ZS, NVME_ZNS_ZSA_CLOSE), 0);
	/* A report covers the zones from its SLBA on: one from zone 2 hits
	 * the rule on zone 15, once. */
	struct nvme_zns_desc d;
	uint32_t got;
	assert_int_equal(nvmf_zone_report(&H1.io, &H1.g, 2 * ZS, &d, 1, &got),
			 ST(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR) | DNR);
	/* Nothing was written where the append failed. */
	assert_int_equal(zone_state(2), NVME_ZNS_ZS_EMPTY);
	assert_int_equal(le64toh(zone(2).wp), 2 * ZS);
}

static void test_chance_and_clear(void **state)
{
	static uint8_t buf[LBA];
	int failed = 0;

	uint32_t id = inject("error " NQN " 1 op=read status=2:0x81 prob=0.5 seed=1234");
	for (int i = 0; i < 200; i++)
		failed += rd(0, buf) != 0;
	/* 100 expected; 6 standard deviations (7.1 each) either side. */
	assert_in_range(failed, 57, 143);
	char reply[64], req[32];
	snprintf(req, sizeof(req), "inject clear %u", id);
	target_ctl_ok(&T, reply, sizeof(reply), "%s", req);
	assert_string_equal(reply, "1 cleared");
	for (int i = 0; i < 50; i++)
		assert_int_equal(rd(0, buf), 0);
	/* Clearing it again: no such rule. */
	assert_int_equal(ctl_request(T.sock, req, 0, 5000, reply, sizeof(reply)), 1);
}

/* ---- delays ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_delay(void **state)
{
	static uint8_t a[LBA], b[LBA];
	struct nvme_sqe slow, fast;
	struct nvme_cqe cqe;
	uint16_t cid;

	memset(a, 0x11, sizeof(a));
	assert_int_equal(wr(5 * ZS, a), 0);
	/* A read of zone 5 waits 400 ms; a read of zone 0 sent after it on
	 * the same queue completes first, and the slow one still returns
	 * its data. */
	inject("delay " NQN " 1 op=read zone=1280 delay=400ms count=1");
	sqe_init(&slow, nvme_cmd_read, 5 * ZS, 0);
	sqe_init(&fast, nvme_cmd_read, 0, 0);
	double t0 = now_s();
	int c_slow = nvmf_submit(&H1.io, &slow, NULL, 0, b, LBA);
	int c_fast = nvmf_submit(&H1.io, &fast, NULL, 0, a, LBA);
	assert_true(c_slow >= 0 && c_fast >= 0);
	assert_int_equal(nvmf_wait_any(&H1.io, &cid, &cqe), 0);
	assert_int_equal(cid, c_fast);
	assert_int_equal(nvmf_wait_any(&H1.io, &cid, &cqe), 0);
	assert_int_equal(cid, c_slow);
	assert_true(now_s() - t0 >= 0.4);
	memset(a, 0x11, sizeof(a));
	assert_memory_equal(a, b, LBA);

	/* A delay with a status: the error, late. */
	inject("delay " NQN " 1 op=write delay=200ms status=2:0x80 count=1");
	t0 = now_s();
	assert_int_equal(wr(5 * ZS + 1, a), ST(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) | DNR);
	assert_true(now_s() - t0 >= 0.2);
}

/* ---- zones that fail ---- */

static void test_zones_read_only_and_offline(void **state)
{
	static uint8_t buf[LBA], back[LBA];
	char reply[256];

	memset(buf, 0xc3, sizeof(buf));
	for (int i = 0; i < 3; i++)
		assert_int_equal(wr(8 * ZS + (uint64_t)i, buf), 0);
	/* Two hosts listen. */
	host_up(&H2);
	uint16_t aer1 = listen_for_zones(&H1), aer2 = listen_for_zones(&H2);

	target_ctl_ok(&T, reply, sizeof(reply), "zone read-only " NQN " 1 %u", 8 * ZS);
	assert_string_equal(reply, "1 zone(s) taken read-only");
	static const uint32_t ro[] = { 8 };
	expect_zones_changed(&H1, aer1, ro, 1);
	expect_zones_changed(&H2, aer2, ro, 1);
	/* Read Only (ZNS 2.1.1.6): its data reads, nothing writes, no action
	 * but Offline applies; the report says Read Only. */
	assert_int_equal(zone_state(8), ZS_RO);
	assert_int_equal(nvmf_read(&H1.io, 1, 8 * ZS + 2, 1, back, LBA, NULL), 0);
	assert_memory_equal(back, buf, LBA);
	assert_int_equal(wr(8 * ZS + 3, buf), ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_READ_ONLY) | DNR);
	assert_int_equal(append(8 * ZS, buf), ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_READ_ONLY) | DNR);
	assert_int_equal(zms(8 * ZS, NVME_ZNS_ZSA_RESET),
			 ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_INVAL_TRANSITION) | DNR);
	assert_int_equal(zms(8 * ZS, NVME_ZNS_ZSA_OPEN),
			 ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_INVAL_TRANSITION) | DNR);

	/* The range form: zones 10 and 11 offline. */
	aer1 = listen_for_zones(&H1);
	aer2 = listen_for_zones(&H2);
	target_ctl_ok(&T, reply, sizeof(reply), "zone offline " NQN " 1 %u 2", 10 * ZS);
	assert_string_equal(reply, "2 zone(s) taken offline");
	static const uint32_t off[] = { 10, 11 };
	expect_zones_changed(&H1, aer1, off, 2);
	expect_zones_changed(&H2, aer2, off, 2);
	assert_int_equal(rd(10 * ZS, back), ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_OFFLINE) | DNR);
	assert_int_equal(wr(11 * ZS, buf), ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_OFFLINE) | DNR);
	/* Offline is final. */
	assert_int_equal(ctl_request(T.sock, "zone read-only " NQN " 1 2560", 0, 5000, reply,
				     sizeof(reply)), 0);
	assert_string_equal(reply, "0 zone(s) taken read-only");
	assert_int_equal(zone_state(10), ZS_O);
	/* Refusals name what is wrong. */
	assert_int_equal(ctl_request(T.sock, "zone offline " NQN " 1 100", 0, 5000, reply,
				     sizeof(reply)), 1);
	assert_non_null(strstr(reply, "not a zone start"));
	assert_int_equal(ctl_request(T.sock, "zone offline " NQN " 2 0", 0, 5000, reply,
				     sizeof(reply)), 1);
	assert_string_equal(reply, NQN " has no namespace 2");
	assert_int_equal(ctl_request(T.sock, "zone offline nqn.x 1 0", 0, 5000, reply,
				     sizeof(reply)), 1);
	assert_string_equal(reply, "no subsystem nqn.x");

	/* kill -9 right after: the states were durable when the answers came. */
	host_down(&H1);
	host_down(&H2);
	target_kill(&T);
	target_start_ok(&T, false);
	host_up(&H1);
	assert_int_equal(zone_state(8), ZS_RO);
	assert_int_equal(zone_state(10), ZS_O);
	assert_int_equal(zone_state(11), ZS_O);
	assert_int_equal(zone_state(9), NVME_ZNS_ZS_EMPTY);
	assert_int_equal(nvmf_read(&H1.io, 1, 8 * ZS + 1, 1, back, LBA, NULL), 0);
	assert_memory_equal(back, buf, LBA);
	assert_int_equal(rd(11 * ZS, back), ST(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_OFFLINE) | DNR);
	/* The host may retire the read-only zone itself (ZNS 3.4.3.1.5). */
	assert_int_equal(zms(8 * ZS, NVME_ZNS_ZSA_OFFLINE), 0);
	assert_int_equal(zone_state(8), ZS_O);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_injected_status_reaches_host, clear_rules),
		cmocka_unit_test_teardown(test_chance_and_clear, clear_rules),
		cmocka_unit_test_teardown(test_delay, clear_rules),
		cmocka_unit_test(test_zones_read_only_and_offline),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
