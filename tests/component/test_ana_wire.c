/*
 * Asymmetric Namespace Access over the wire (doc/ana.md): the real daemon
 * (build/znstgt, a child process) listens on two ports, A and B, serving one
 * subsystem whose namespace 1 is in ANA group 1 and namespace 2 in group 2;
 * the configuration makes group 2 non-optimized on B. A host connects a
 * controller through each port and the test checks
 *
 *   - Identify Controller (CMIC bit 3, OAES bit 11, ANATT, ANACAP,
 *     ANAGRPMAX, NANAGRPID) and Identify Namespace ANAGRPID;
 *   - the ANA log page (0Ch) of each port, with and without RGO, its
 *     change counts, and a read through a window of it;
 *   - `znstgt-ctl ana set` / `ana show` round trips and their refusals;
 *   - the ANA Change notice on the controller of the changed port only,
 *     masked until the host reads the log;
 *   - I/O through a port in each state: the path statuses without DNR.
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

#include "ctl_client.h"
#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_daemon.h"

#define NQN "nqn.2026-11.io.znstgt:ana"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:5d0a4c61-3b8e-4f2a-9e77-1c2b3a4d5e6f"
#define LBA 4096u
#define MAX_GROUPS 32u
#define LOG_LEN 4096u

static char dir[] = "/tmp/znstgt-ana-XXXXXX";
static char port_a[TARGET_PORT_LEN], port_b[TARGET_PORT_LEN];
static struct target_proc T;

struct host {
	struct nvmf_client admin, io;
};
static struct host HA, HB; /* through port A, through port B */

/* ---- the daemon and its control socket ---- */

static void ana_set(const char *port, unsigned group, const char *state)
{
	char reply[256];

	target_ctl_ok(&T, reply, sizeof(reply), "ana set 127.0.0.1:%s %u %s", port, group, state);
}

/* ---- the host ---- */

static void host_up(struct host *h, const char *port)
{
	if (nvmf_admin_up(&h->admin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", h->admin.err);
	if (nvmf_io_up(&h->io, "127.0.0.1", port, HOSTNQN, NQN, h->admin.cntlid, 1, 32))
		fail_msg("%s", h->io.err);
}

/* Get Log Page 0Ch: len bytes from offset lpo; rgo: LSP bit 0; rae. */
static int get_ana_log(struct host *h, void *buf, uint32_t len, uint64_t lpo, bool rgo,
		       bool rae)
{
	struct nvme_sqe sqe;
	uint32_t numd = len / 4 - 1;

	memset(buf, 0xee, len);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.nsid = htole32(NVME_NSID_ALL);
	sqe.cdw10 = htole32(NVME_LOG_LID_ANA | (rgo ? 1u << 8 : 0) | (rae ? 1u << 15 : 0) |
			    (numd & 0xffff) << 16);
	sqe.cdw11 = htole32(numd >> 16);
	sqe.cdw12 = htole32((uint32_t)lpo);
	sqe.cdw13 = htole32((uint32_t)(lpo >> 32));
	return nvmf_cmd(&h->admin, &sqe, NULL, 0, buf, len, NULL);
}

/* Enable ANA Change Notices and park an AER: its CID. */
static uint16_t listen_for_ana(struct host *h)
{
	int cid = nvmf_listen_aer(&h->admin, NVME_CTRL_OAES_ANA);

	assert_true(cid >= 0);
	return (uint16_t)cid;
}

/* The next completion on h's admin queue is the AER cid with the ANA
 * Change notice (NVMe Base 2.0, 5.2: notice 03h, log page 0Ch). */
static void expect_ana_notice(struct host *h, uint16_t cid)
{
	struct nvme_cqe cqe;
	uint16_t got;

	assert_int_equal(nvmf_wait_any(&h->admin, &got, &cqe), 0);
	assert_int_equal(got, cid);
	uint64_t res = le64toh(cqe.result);
	assert_int_equal(res & 0x7, NVME_AER_NOTICE);
	assert_int_equal((res >> 8) & 0xff, NVME_AER_NOTICE_ANA);
	assert_int_equal((res >> 16) & 0xff, NVME_LOG_LID_ANA);
}

/* An Identify on h's admin queue completes before anything else: no
 * notice was waiting for it (the AER stays parked). */
static void expect_no_notice(struct host *h)
{
	static uint8_t id[4096];
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint16_t got;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_identify;
	sqe.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	int cid = nvmf_submit(&h->admin, &sqe, NULL, 0, id, sizeof(id));
	assert_true(cid >= 0);
	assert_int_equal(nvmf_wait_any(&h->admin, &got, &cqe), 0);
	assert_int_equal(got, cid);
}

/* One group descriptor of a log read whole: its state, NSIDs, chgcnt. */
struct group_view {
	uint32_t grpid, nnsids;
	uint64_t chgcnt;
	uint8_t state;
	uint32_t nsids[4];
};

/* Parse a log: the header's change count and group count; returns the
 * log's length in bytes. */
static size_t parse_log(const uint8_t *buf, uint64_t *chgcnt, struct group_view *g, int max,
			int *ngrps)
{
	struct nvme_ana_log hdr;
	size_t off = sizeof(hdr);

	memcpy(&hdr, buf, sizeof(hdr));
	*chgcnt = le64toh(hdr.chgcnt);
	*ngrps = le16toh(hdr.ngrps);
	assert_true(*ngrps <= max);
	for (int i = 0; i < *ngrps; i++) {
		struct nvme_ana_group_desc d;

		memcpy(&d, buf + off, sizeof(d));
		g[i].grpid = le32toh(d.grpid);
		g[i].nnsids = le32toh(d.nnsids);
		g[i].chgcnt = le64toh(d.chgcnt);
		g[i].state = d.state;
		assert_true(g[i].nnsids <= 4);
		off += sizeof(d);
		for (uint32_t n = 0; n < g[i].nnsids; n++) {
			uint32_t le;

			memcpy(&le, buf + off, sizeof(le));
			g[i].nsids[n] = le32toh(le);
			off += sizeof(le);
		}
	}
	return off;
}

/* ---- setup ---- */

static int setup(void **state)
{
	char *ports[] = { port_a, port_b };
	char why[256], keys[512];

	if (target_daemon_dir(&T, dir, ports, 2, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	snprintf(keys, sizeof(keys), "ana_state = 127.0.0.1:%s 2 non-optimized\n"
		 "threads = 2\nio_threads = 2\nlog_level = warn\n", port_b);
	if (target_daemon_config(&T, dir, ports, 2, keys, "ana.ini",
				 "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
				 "[namespace 1]\nsize = 8M\nzone_size = 1M\n"
				 "[namespace 2]\nsize = 8M\nzone_size = 1M\nana_group = 2\n",
				 why, sizeof(why)) != 0)
		fail_msg("%s", why);
	target_start_ok(&T, true);
	host_up(&HA, port_a);
	host_up(&HB, port_b);
	return 0;
}

static int teardown(void **state)
{
	nvmf_close(&HA.io);
	nvmf_close(&HA.admin);
	nvmf_close(&HB.io);
	nvmf_close(&HB.admin);
	target_finish_ok(&T, dir);
	return 0;
}

/* ---- Identify ---- */

static void test_identify(void **state)
{
	static struct nvme_id_ctrl id;
	static struct nvme_id_ns ns;
	static struct nvme_id_independent_id_ns indep;

	assert_int_equal(nvmf_identify(&HA.admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL), 0);
	assert_true(id.cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	assert_true(id.cmic & NVME_CTRL_CMIC_MULTI_CTRL);
	assert_true(le32toh(id.oaes) & NVME_CTRL_OAES_ANA);
	assert_true(id.anatt > 0);
	assert_int_equal(id.anacap & 0x1f, 0x1f); /* every state may be reported */
	assert_int_equal(le32toh(id.anagrpmax), MAX_GROUPS);
	assert_int_equal(le32toh(id.nanagrpid), MAX_GROUPS);
	/* What a Linux host requires with ANA: 0 < MNAN <= NN. */
	assert_int_equal(le32toh(id.mnan), 2);
	assert_int_equal(le32toh(id.nn), 2);

	for (uint32_t nsid = 1; nsid <= 2; nsid++) {
		assert_int_equal(nvmf_identify(&HB.admin, NVME_IDENTIFY_CNS_NS, nsid, 0, &ns, NULL),
				 0);
		assert_int_equal(le32toh(ns.anagrpid), nsid);
		assert_int_equal(nvmf_identify(&HB.admin, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS,
					       nsid, 0, &indep, NULL), 0);
		assert_int_equal(le32toh(indep.anagrpid), nsid);
	}
}

/* ---- the log page ---- */

static void test_log_page(void **state)
{
	static uint8_t buf[LOG_LEN], win[LOG_LEN];
	struct group_view g[MAX_GROUPS];
	uint64_t chgcnt;
	int n;

	/* Port A: both groups optimized, each listing its namespace. */
	assert_int_equal(get_ana_log(&HA, buf, LOG_LEN, 0, false, false), 0);
	size_t len = parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(n, 2);
	assert_int_equal(len, sizeof(struct nvme_ana_log) + 2 * sizeof(struct nvme_ana_group_desc) +
				      2 * 4);
	assert_int_equal(chgcnt, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].grpid, i + 1);
		assert_int_equal(g[i].nnsids, 1);
		assert_int_equal(g[i].nsids[0], i + 1);
		assert_int_equal(g[i].state, NVME_ANA_STATE_OPTIMIZED);
		assert_int_equal(g[i].chgcnt, 0);
	}
	/* Past the end the log reads as zero. */
	for (size_t i = len; i < LOG_LEN; i++)
		assert_int_equal(buf[i], 0);

	/* Port B: group 2 non-optimized, as configured. */
	assert_int_equal(get_ana_log(&HB, buf, LOG_LEN, 0, false, false), 0);
	parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(n, 2);
	assert_int_equal(g[0].state, NVME_ANA_STATE_OPTIMIZED);
	assert_int_equal(g[1].state, NVME_ANA_STATE_NONOPTIMIZED);

	/* RGO: the same groups and states, no NSIDs. */
	assert_int_equal(get_ana_log(&HB, buf, LOG_LEN, 0, true, false), 0);
	len = parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(n, 2);
	assert_int_equal(len, sizeof(struct nvme_ana_log) + 2 * sizeof(struct nvme_ana_group_desc));
	assert_int_equal(g[0].nnsids, 0);
	assert_int_equal(g[1].nnsids, 0);
	assert_int_equal(g[1].state, NVME_ANA_STATE_NONOPTIMIZED);

	/* A window from offset 16 is the same bytes. */
	assert_int_equal(get_ana_log(&HB, buf, LOG_LEN, 0, false, false), 0);
	assert_int_equal(get_ana_log(&HB, win, 64, 16, false, false), 0);
	assert_memory_equal(win, buf + 16, 64);

	/* LSP bits other than RGO are refused. */
	struct nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.cdw10 = htole32(NVME_LOG_LID_ANA | 2u << 8 | (LOG_LEN / 4 - 1) << 16);
	assert_int_equal(nvmf_cmd(&HA.admin, &sqe, NULL, 0, buf, LOG_LEN, NULL),
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD) | NVME_STATUS_DNR);
}

/* ---- changes: notice, change counts, control round trip ---- */

static void test_change_notice_and_counts(void **state)
{
	static uint8_t buf[LOG_LEN];
	struct group_view g[MAX_GROUPS];
	char reply[1024];
	uint64_t chgcnt;
	int n;

	uint16_t cid_a = listen_for_ana(&HA);
	uint16_t cid_b = listen_for_ana(&HB);

	ana_set(port_a, 1, "inaccessible");
	expect_ana_notice(&HA, cid_a);
	expect_no_notice(&HB); /* port B did not change */

	assert_int_equal(get_ana_log(&HA, buf, LOG_LEN, 0, false, false), 0);
	parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(chgcnt, 1);
	assert_int_equal(g[0].state, NVME_ANA_STATE_INACCESSIBLE);
	assert_int_equal(g[0].chgcnt, 1);
	assert_int_equal(g[1].chgcnt, 0);
	assert_int_equal(get_ana_log(&HB, buf, LOG_LEN, 0, false, false), 0);
	parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(chgcnt, 0);
	assert_int_equal(g[0].state, NVME_ANA_STATE_OPTIMIZED);

	/* Setting the state it has is no change. */
	ana_set(port_a, 1, "inaccessible");
	/* The log was read with RAE 0: the next change is told again, and the
	 * change count moves on. */
	cid_a = listen_for_ana(&HA);
	ana_set(port_a, 1, "optimized");
	expect_ana_notice(&HA, cid_a);
	/* Read with RAE 1 the notice stays masked: the next change is not told. */
	assert_int_equal(get_ana_log(&HA, buf, LOG_LEN, 0, false, true), 0);
	parse_log(buf, &chgcnt, g, MAX_GROUPS, &n);
	assert_int_equal(chgcnt, 2);
	assert_int_equal(g[0].chgcnt, 2);
	assert_int_equal(g[0].state, NVME_ANA_STATE_OPTIMIZED);
	cid_a = listen_for_ana(&HA);
	ana_set(port_a, 2, "non-optimized");
	expect_no_notice(&HA);
	/* Unmasked by a read with RAE 0; the change after that is told. */
	assert_int_equal(get_ana_log(&HA, buf, LOG_LEN, 0, false, false), 0);
	ana_set(port_a, 2, "optimized");
	expect_ana_notice(&HA, cid_a);
	assert_int_equal(get_ana_log(&HA, buf, LOG_LEN, 0, false, false), 0);

	/* The port named by ID; port B's controller told. */
	assert_int_equal(target_ctl(&T, "ana set 2 1 non-optimized", reply, sizeof(reply)), 0);
	assert_string_equal(reply, "port 2 group 1 non-optimized");
	expect_ana_notice(&HB, cid_b);
	char *body = NULL;
	char text[256];
	assert_int_equal(ctl_request_body(T.sock, "ana show", 0, 30000, text, sizeof(text), &body),
			 0);
	assert_non_null(body);
	snprintf(reply, sizeof(reply), "port 2 127.0.0.1:%s change-count 1\n"
		 "  group 1 non-optimized\n  group 2 non-optimized\n", port_b);
	assert_non_null(strstr(body, reply));
	snprintf(reply, sizeof(reply), "port 1 127.0.0.1:%s change-count 4\n"
		 "  group 1 optimized\n  group 2 optimized\n", port_a);
	assert_non_null(strstr(body, reply));
	free(body);
	ana_set(port_b, 1, "optimized");
	assert_int_equal(get_ana_log(&HB, buf, LOG_LEN, 0, false, false), 0);

	/* Refusals name what is wrong. */
	assert_int_equal(target_ctl(&T, "ana set 9 1 optimized", reply, sizeof(reply)), 1);
	assert_string_equal(reply, "no port 9");
	assert_int_equal(target_ctl(&T, "ana set 127.0.0.1:1 1 optimized", reply, sizeof(reply)),
			 1);
	assert_string_equal(reply, "no port listens on 127.0.0.1:1");
	assert_int_equal(target_ctl(&T, "ana set 1 33 optimized", reply, sizeof(reply)), 1);
	assert_non_null(strstr(reply, "group \"33\""));
	assert_int_equal(target_ctl(&T, "ana set 1 1 degraded", reply, sizeof(reply)), 1);
	assert_non_null(strstr(reply, "state \"degraded\""));
	assert_int_equal(target_ctl(&T, "ana frob", reply, sizeof(reply)), 1);
}

/* ---- I/O per state ---- */

static void test_io_statuses(void **state)
{
	static const struct {
		const char *name;
		uint16_t status;
	} states[] = {
		{ "inaccessible", NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE) },
		{ "persistent-loss", NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS) },
		{ "change", NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION) },
		{ "non-optimized", 0 },
		{ "optimized", 0 },
	};
	static uint8_t buf[LBA];
	uint64_t wp1 = 0, wp2 = 0; /* write pointers of zone 0 of each namespace */

	memset(buf, 0xa5, sizeof(buf));
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		ana_set(port_a, 1, states[i].name);
		/* Namespace 1 through A: the state's status (no DNR: another
		 * path may do it); namespace 2 (group 2) and B are unaffected. */
		assert_int_equal(nvmf_write(&HA.io, 1, wp1, 1, buf, LBA, NULL), states[i].status);
		if (!states[i].status)
			wp1++;
		assert_int_equal(nvmf_read(&HA.io, 1, 0, 1, buf, LBA, NULL), states[i].status);
		assert_int_equal(nvmf_write(&HB.io, 1, wp1++, 1, buf, LBA, NULL), 0);
		assert_int_equal(nvmf_write(&HA.io, 2, wp2++, 1, buf, LBA, NULL), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify),
		cmocka_unit_test(test_log_page),
		cmocka_unit_test(test_change_notice_and_counts),
		cmocka_unit_test(test_io_statuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
