/*
 * ZNS over NVMe/TCP, end to end: the real daemon (build/znstgt,
 * started as a child process on a temporary configuration) driven over TCP
 * by the host-side client library, the way a host drives a ZNS SSD.
 *
 *   - every ZNS command and every ZNS status code on the wire: Zone Append
 *     returning the LBA, Zone Management Send (each action, Select All),
 *     Zone Management Receive (each reporting option, the Partial bit, the
 *     extended report with zone descriptor extensions), Read / Write /
 *     Write Zeroes / Flush on zoned namespaces, open and active limits;
 *   - Zone Append from several queues at once into one zone: every LBA
 *     handed out once, all data where the returned LBAs say;
 *   - reports that agree with each other and with a model of every zone;
 *   - the Changed Zone List log and its Zone Descriptor Changed notice for
 *     zones taken offline / read-only by the configuration at power-up;
 *   - kill -9, power cut (control socket) and clean restarts: afterwards
 *     zones and data are what was durable before, and with a volatile write
 *     cache what was not flushed is gone after a power cut.
 *
 * The subsystem has three namespaces:
 *   1  zoned, 16 zones of 1 MiB with 768 KiB capacity, max 3 open and 4
 *      active, 64-byte extensions, Zone Append up to 16 KiB, no reads
 *      across zones, write cache on, zone 13 offline, 14-15 read-only;
 *   2  zoned, 32 zones of 1 MiB, no limits, write cache off, zone 7
 *      read-only;
 *   3  conventional, 8 MiB, write cache off;
 *   4  zoned, 8 zones as namespace 1's, max 4 active, a 64 KiB Zone Random
 *      Write Area flushed in 16 KiB, 2 ZRWAs, write cache off: Identify,
 *      Open with ZRWAA, writes in the window, implicit and explicit flush,
 *      Zone Append, Finish and Reset with their statuses, and kill -9 and
 *      clean restarts keeping the ZRWA, write pointer and window data.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_daemon.h"

#define NQN "nqn.2026-11.io.znstgt:zns-wire"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:6d1e7f1c-2b1a-4c4e-9a55-0d6f1e2c3b4a"
#define LBA 4096u
#define NIO 4                       /* I/O queues of the host */

/* Namespace 1 */
#define ZS1 256u                    /* zone size, LBAs */
#define CAP1 192u                   /* zone capacity */
#define NZ1 16u
#define ZASL1 4u                    /* Zone Append limit, LBAs */
#define OFFLINE1 13u
#define RO1A 14u
#define RO1B 15u
/* Namespace 2 */
#define ZS2 ZS1                     /* the same: zms() and zone() take zone numbers */
#define NZ2 32u
#define RO2 7u
/* Namespace 4: zones as namespace 1's, a Zone Random Write Area */
#define ZRWAS4 16u                  /* LBAs */
#define ZRWAFG4 4u
#define ST_ZNS(sc) (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, (sc)) | NVME_STATUS_DNR)
#define ST_GEN(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

#define ZS_E NVME_ZNS_ZS_EMPTY
#define ZS_IO NVME_ZNS_ZS_IMPL_OPEN
#define ZS_EO NVME_ZNS_ZS_EXPL_OPEN
#define ZS_C NVME_ZNS_ZS_CLOSED
#define ZS_F NVME_ZNS_ZS_FULL
#define ZS_RO NVME_ZNS_ZS_READ_ONLY
#define ZS_O NVME_ZNS_ZS_OFFLINE

/* ---- the daemon ---- */

static char dir[] = "/tmp/znstgt-zw-XXXXXX";
static char port[TARGET_PORT_LEN];
static struct target_proc T;

static void daemon_stop(void)
{
	char why[512];

	if (target_stop(&T, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("%s", why);
	}
}

static void power_cut(void)
{
	char reply[512];

	if (target_power_cut(&T, reply, sizeof(reply)) != 0) {
		target_show_log(&T, 15);
		fail_msg("power-cut: %s", reply);
	}
	assert_string_equal(reply, "1 subsystem(s) powered up again");
}

/* ---- the host ---- */

static struct {
	struct nvmf_client admin, io[NIO];
	bool up;
} H;

static void host_down(void)
{
	nvmf_close(&H.admin);
	for (int i = 0; i < NIO; i++)
		nvmf_close(&H.io[i]);
	H.up = false;
}

static void host_connect_io(struct nvmf_client *c, uint16_t qid)
{
	if (nvmf_tcp_connect(c, "127.0.0.1", port, qid & 1, qid & 2))
		fail_msg("I/O queue %u: %s", qid, c->err);
	int st = nvmf_connect(c, qid, 128, 0, HOSTNQN, NQN, H.admin.cntlid, 0, NULL);
	if (st)
		fail_msg("I/O Connect %u: %#x %s", qid, st, c->err);
}

/* Connected, with NIO I/O queues (digests on some of them), as a host that
 * (re)connects after the target came back. */
static void host_up(void)
{
	bool dead = !H.up || H.admin.dead;

	for (int i = 0; i < NIO; i++)
		dead |= H.io[i].dead;
	if (!dead)
		return;
	host_down();
	if (!T.pid)
		target_start_ok(&T, false);
	if (nvmf_admin_up(&H.admin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", H.admin.err);
	for (int i = 0; i < NIO; i++)
		host_connect_io(&H.io[i], (uint16_t)(i + 1));
	H.up = true;
}

static struct nvmf_client *io(void)
{
	return &H.io[0];
}

/* ---- commands ---- */

static void sqe_init(struct nvme_sqe *sqe, uint8_t opcode, uint32_t nsid, uint64_t slba)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(nsid);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw11 = htole32((uint32_t)(slba >> 32));
}

static int zms_on(struct nvmf_client *c, uint32_t nsid, uint64_t slba, uint8_t zsa, bool all,
		  const void *zde, uint32_t zdelen)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_send, nsid, slba);
	sqe.cdw13 = htole32(zsa | (all ? 1u << 8 : 0));
	return nvmf_cmd(c, &sqe, zde, zdelen, NULL, 0, NULL);
}

static int zms(uint32_t nsid, uint32_t zone, uint8_t zsa)
{
	return zms_on(io(), nsid, (uint64_t)zone * ZS1, zsa, false, NULL, 0);
}

static int zms_all(uint32_t nsid, uint8_t zsa)
{
	return zms_on(io(), nsid, 0, zsa, true, NULL, 0);
}

static int zmr(uint32_t nsid, uint64_t slba, uint8_t zra, uint8_t zrasf, bool partial, void *buf,
	       uint32_t len)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_recv, nsid, slba);
	sqe.cdw12 = htole32(len / 4 - 1);
	sqe.cdw13 = htole32(zra | (uint32_t)zrasf << 8 | (partial ? 1u << 16 : 0));
	return nvmf_cmd(io(), &sqe, NULL, 0, buf, len, NULL);
}

/* Zone Append: the LBA the data went to comes back in the completion. */
static int append(uint32_t nsid, uint64_t zslba, const void *buf, uint32_t nlb, uint64_t *alba)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	sqe_init(&sqe, nvme_zns_cmd_append, nsid, zslba);
	sqe.cdw12 = htole32(nlb - 1);
	int st = nvmf_cmd(io(), &sqe, buf, nlb * LBA, NULL, 0, &cqe);
	if (st == 0 && alba)
		*alba = le64toh(cqe.result);
	return st;
}

static int wr(uint32_t nsid, uint64_t slba, const void *buf, uint32_t nlb)
{
	return nvmf_write(io(), nsid, slba, nlb, buf, nlb * LBA, NULL);
}

static int rd(uint32_t nsid, uint64_t slba, void *buf, uint32_t nlb)
{
	return nvmf_read(io(), nsid, slba, nlb, buf, nlb * LBA, NULL);
}

static int wzeroes(uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_cmd_write_zeroes, nsid, slba);
	sqe.cdw12 = htole32(nlb - 1);
	return nvmf_cmd(io(), &sqe, NULL, 0, NULL, 0, NULL);
}

static int flush(uint32_t nsid)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_cmd_flush, nsid, 0);
	return nvmf_cmd(io(), &sqe, NULL, 0, NULL, 0, NULL);
}

static int get_log(uint8_t lid, uint32_t nsid, uint8_t csi, bool rae, void *buf, uint32_t len)
{
	struct nvme_sqe sqe;
	uint32_t numd = len / 4 - 1;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32(lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16);
	sqe.cdw11 = htole32(numd >> 16);
	sqe.cdw14 = htole32((uint32_t)csi << 24);
	return nvmf_cmd(&H.admin, &sqe, NULL, 0, buf, len, NULL);
}

static int set_aec(uint32_t aec)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_set_features;
	sqe.cdw10 = htole32(NVME_FEAT_FID_ASYNC_EVENT);
	sqe.cdw11 = htole32(aec);
	return nvmf_cmd(&H.admin, &sqe, NULL, 0, NULL, 0, NULL);
}

static int submit_aer(void)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_async_event;
	return nvmf_submit(&H.admin, &sqe, NULL, 0, NULL, 0);
}

/* Nothing arrives on the admin queue for ms (a parked AER stays parked). */
static void assert_admin_quiet(int ms)
{
	struct pollfd p = { .fd = H.admin.fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, ms), 0);
}

/* ---- data patterns: every block says which write put it there ---- */

static void mark(uint8_t *b, uint32_t tag, uint32_t idx)
{
	uint32_t x = tag * 2654435761u ^ idx * 40503u ^ 0x5bd1e995u;

	memcpy(b, &tag, 4);
	memcpy(b + 4, &idx, 4);
	for (uint32_t i = 8; i < LBA; i += 4) {
		x = x * 1664525u + 1013904223u;
		memcpy(b + i, &x, 4);
	}
}

/* Which (tag, idx) block b is; false for zeros or anything else. */
static bool marked(const uint8_t *b, uint32_t *tag, uint32_t *idx)
{
	static __thread uint8_t want[LBA];

	memcpy(tag, b, 4);
	memcpy(idx, b + 4, 4);
	if (!*tag)
		return false;
	mark(want, *tag, *idx);
	return memcmp(want, b, LBA) == 0;
}

static void mark_run(uint8_t *buf, uint32_t nlb, uint32_t tag)
{
	for (uint32_t k = 0; k < nlb; k++)
		mark(buf + (size_t)k * LBA, tag, k);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Write nlb blocks tagged tag at slba and assert success. */
static void wr_ok(uint32_t nsid, uint64_t slba, uint32_t nlb, uint32_t tag)
{
	uint8_t *b = malloc((size_t)nlb * LBA);

	mark_run(b, nlb, tag);
	int st = wr(nsid, slba, b, nlb);
	if (st)
		fail_msg("write ns %u LBA %llu x%u: status %#x %s", nsid, (unsigned long long)slba,
			 nlb, st, io()->err);
	free(b);
}

static uint64_t append_ok(uint32_t nsid, uint64_t zslba, uint32_t nlb, uint32_t tag)
{
	uint8_t *b = malloc((size_t)nlb * LBA);
	uint64_t alba = ~0ull;

	mark_run(b, nlb, tag);
	int st = append(nsid, zslba, b, nlb, &alba);
	if (st)
		fail_msg("append ns %u zone %llu x%u: status %#x %s", nsid,
			 (unsigned long long)zslba, nlb, st, io()->err);
	free(b);
	return alba;
}

/* The nlb blocks at slba are exactly the run tag wrote. */
static void assert_run(uint32_t nsid, uint64_t slba, uint32_t nlb, uint32_t tag)
{
	uint8_t *b = malloc((size_t)nlb * LBA);
	uint32_t t, k;

	assert_int_equal(rd(nsid, slba, b, nlb), 0);
	for (uint32_t i = 0; i < nlb; i++)
		if (!marked(b + (size_t)i * LBA, &t, &k) || t != tag || k != i)
			fail_msg("ns %u LBA %llu: not block %u of write %#x", nsid,
				 (unsigned long long)(slba + i), i, tag);
	free(b);
}

/* The block at lba is block idx of the write tag did. */
static void assert_block(uint32_t nsid, uint64_t lba, uint32_t tag, uint32_t idx)
{
	static uint8_t b[LBA];
	uint32_t t, k;

	assert_int_equal(rd(nsid, lba, b, 1), 0);
	if (!marked(b, &t, &k) || t != tag || k != idx)
		fail_msg("ns %u LBA %llu: not block %u of write %#x", nsid, (unsigned long long)lba,
			 idx, tag);
}

static void assert_zeros(uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	uint8_t *b = malloc((size_t)nlb * LBA);

	assert_int_equal(rd(nsid, slba, b, nlb), 0);
	if (!is_zero(b, (size_t)nlb * LBA))
		fail_msg("ns %u LBA %llu x%u: not zeros", nsid, (unsigned long long)slba, nlb);
	free(b);
}

/* ---- zone reports ---- */

struct zd {
	uint8_t zt, zs, za;
	uint64_t zcap, zslba, wp;
};

static struct zd zd_of(const struct nvme_zns_desc *d)
{
	return (struct zd){ d->zt, (uint8_t)(d->zs >> 4), d->za, le64toh(d->zcap),
			    le64toh(d->zslba), le64toh(d->wp) };
}

static struct zd zone(uint32_t nsid, uint32_t z)
{
	uint8_t buf[64 + sizeof(struct nvme_zns_desc)];

	int st = zmr(nsid, (uint64_t)z * ZS1, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
		     true, buf, sizeof(buf));
	if (st)
		fail_msg("report ns %u zone %u: %#x %s", nsid, z, st, io()->err);
	assert_int_equal(le64toh(((struct nvme_zone_report *)buf)->nr_zones), 1);
	return zd_of(((struct nvme_zone_report *)buf)->entries);
}

static const char *zs_name(uint8_t zs)
{
	switch (zs) {
	case ZS_E: return "empty";
	case ZS_IO: return "implicitly open";
	case ZS_EO: return "explicitly open";
	case ZS_C: return "closed";
	case ZS_F: return "full";
	case ZS_RO: return "read-only";
	case ZS_O: return "offline";
	default: return "?";
	}
}

/* Zone z of nsid is in state zs with its write pointer wp_off blocks in. */
static void assert_zone(uint32_t nsid, uint32_t z, uint8_t zs, uint64_t wp_off)
{
	struct zd d = zone(nsid, z);
	uint64_t zslba = (uint64_t)z * ZS1;

	if (d.zs != zs)
		fail_msg("ns %u zone %u: %s, expected %s", nsid, z, zs_name(d.zs), zs_name(zs));
	assert_int_equal(d.zslba, zslba);
	if (zs != ZS_RO && zs != ZS_O && d.wp != zslba + wp_off)
		fail_msg("ns %u zone %u (%s): write pointer +%llu, expected +%llu", nsid, z,
			 zs_name(zs), (unsigned long long)(d.wp - zslba),
			 (unsigned long long)wp_off);
}

/* Every zone of namespaces 1 and 2 back to Empty. */
static void reset_all(void)
{
	host_up();
	assert_int_equal(zms_all(1, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(zms_all(2, NVME_ZNS_ZSA_RESET), 0);
}

/* ---- setup ---- */

static int setup(void **state)
{
	char why[256];

	if (target_daemon_up(&T, dir, (char *[]){ port }, 1,
			   "threads = 2\nio_threads = 4\nlog_level = warn\n", "wire.ini",
		   "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
		   "[namespace 1]\nsize = 16M\nzone_size = 1M\nzone_capacity = 768K\n"
		   "max_open = 3\nmax_active = 4\nzde_size = 64\nzone_append_max = 16K\n"
		   "cross_zone_read = no\nwrite_cache = yes\n"
		   "offline_zones = list:13\nread_only_zones = list:14,15\n"
		   "[namespace 2]\nsize = 32M\nzone_size = 1M\nzone_append_max = 64K\n"
		   "read_only_zones = list:7\n"
		   "[namespace 3]\nzoned = no\nsize = 8M\n"
		   "[namespace 4]\nsize = 8M\nzone_size = 1M\nzone_capacity = 768K\n"
		   "max_active = 4\nzrwa_size = 64K\nzrwa_flush_granularity = 16K\n"
		   "zrwa_resources = 2\n", why, sizeof(why)) != 0)
		fail_msg("%s", why);
	return 0;
}

static int teardown(void **state)
{
	host_down();
	target_finish_ok(&T, dir);
	return 0;
}

/* ---- Changed Zone List and its notice (ZNS 1.1, 5.3.1 and 5.5) ---- */

/* The parked AER cid completes with a Zone Descriptor Changed notice. */
static void expect_zone_notice(uint16_t cid, uint32_t nsid)
{
	struct nvme_cqe cqe;

	H.admin.timeout_ms = 3000;
	if (nvmf_wait(&H.admin, cid, &cqe) != 0)
		fail_msg("no notice for namespace %u: %s", nsid, H.admin.err);
	uint64_t res = le64toh(cqe.result);
	assert_int_equal(res & 0x7, NVME_AER_NOTICE);
	assert_int_equal((res >> 8) & 0xff, 0xef);                /* Zone Descriptor Changed */
	assert_int_equal((res >> 16) & 0xff, NVME_LOG_LID_ZNS_CHANGED_ZONES);
	assert_int_equal(res >> 32, nsid);                        /* DW1: the namespace */
}

static void test_changed_zones_notice(void **state)
{
	static struct nvme_zns_changed_zone_log zl;
	bool seen[NZ1] = { false };

	/* The first start formatted the namespaces: zones 13-15 of namespace
	 * 1 and zone 7 of namespace 2 were taken offline / read-only then,
	 * with no host listening. The notice comes once a host enables it;
	 * an AER parked before is what carries it. */
	host_up();
	int aer = submit_aer();
	assert_true(aer >= 0);
	assert_admin_quiet(100); /* nothing enabled yet */
	assert_int_equal(set_aec(NVME_CTRL_OAES_ZD), 0);
	expect_zone_notice((uint16_t)aer, 1);

	/* Namespace 1's log lists its three zones (by ZSLBA). Read with RAE
	 * set, the notice stays masked: namespace 2 must wait. */
	aer = submit_aer();
	assert_true(aer >= 0);
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_ZNS, true, &zl,
				 sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 3);
	for (int i = 0; i < 3; i++) {
		uint64_t zid = le64toh(zl.zid[i]);
		assert_int_equal(zid % ZS1, 0);
		assert_true(zid / ZS1 == OFFLINE1 || zid / ZS1 == RO1A || zid / ZS1 == RO1B);
		assert_false(seen[zid / ZS1]);
		seen[zid / ZS1] = true;
	}
	assert_admin_quiet(100);
	/* Reading it is what empties it; with RAE clear the notice is
	 * unmasked, and namespace 2's comes. */
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 0);
	expect_zone_notice((uint16_t)aer, 2);
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 2, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 1);
	assert_int_equal(le64toh(zl.zid[0]), RO2 * ZS2);
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 2, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 0);
	/* Nothing more to tell: a new AER stays parked, enabled or not. */
	assert_true(submit_aer() >= 0);
	assert_int_equal(set_aec(NVME_CTRL_OAES_ZD), 0);
	assert_admin_quiet(200);
	/* 3 is not zoned; 9 does not exist; the log is a ZNS one. */
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 3, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 9, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), ST_GEN(NVME_SC_INVALID_NS));
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_NVM, false, &zl,
				 sizeof(zl)), ST_GEN(NVME_SC_INVALID_FIELD));

	/* After a restart the zones are offline / read-only already: no
	 * change, no notice, an empty log. */
	host_down();
	daemon_stop();
	host_up();
	assert_int_equal(set_aec(NVME_CTRL_OAES_ZD), 0);
	assert_true(submit_aer() >= 0);
	assert_admin_quiet(200);
	assert_int_equal(get_log(NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_ZNS, false, &zl,
				 sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 0);
	assert_int_equal(zone(1, RO1A).zs, ZS_RO);
	assert_int_equal(zone(1, OFFLINE1).zs, ZS_O);
	assert_int_equal(zone(2, RO2).zs, ZS_RO);
	host_down(); /* the parked AERs go with the connection */
}

/* ---- Identify ---- */

static void test_identify(void **state)
{
	static struct nvme_zns_id_ns zns;
	static struct nvme_zns_id_ctrl zctrl;

	host_up();
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_ZNS, &zns,
				       NULL), 0);
	assert_int_equal(le64toh(zns.lbafe[0].zsze), ZS1);
	assert_int_equal(zns.lbafe[0].zdes, 1);               /* 64 bytes */
	assert_int_equal(le32toh(zns.mor), 2);                /* 0's based */
	assert_int_equal(le32toh(zns.mar), 3);
	assert_int_equal(le16toh(zns.ozcs) & 1, 0);           /* no reads across zones */
	assert_int_equal(le16toh(zns.zoc), 0);
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_NS, 2, NVME_CSI_ZNS, &zns,
				       NULL), 0);
	assert_int_equal(le32toh(zns.mor), 0xffffffffu);
	assert_int_equal(le32toh(zns.mar), 0xffffffffu);
	assert_int_equal(le16toh(zns.ozcs) & 1, 1);
	assert_int_equal(zns.lbafe[0].zdes, 0);
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_NS, 3, NVME_CSI_ZNS, &zns,
				       NULL), ST_GEN(NVME_SC_INVALID_FIELD));
	/* ZASL: the smallest namespace limit, 16 KiB = 2^2 pages. */
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_ZNS, &zctrl,
				       NULL), 0);
	assert_int_equal(zctrl.zasl, 2);
}

/* ---- Zone Append (ZNS 1.1, 3.4.1) ---- */

static void test_zone_append(void **state)
{
	static uint8_t buf[8 * LBA];

	reset_all();
	/* The LBA comes back in the completion; data lands there. */
	assert_int_equal(append_ok(1, 0, 1, 0xa1), 0);
	assert_int_equal(append_ok(1, 0, 2, 0xa2), 1);
	assert_int_equal(append_ok(1, 0, ZASL1, 0xa3), 3);
	assert_run(1, 0, 1, 0xa1);
	assert_run(1, 1, 2, 0xa2);
	assert_run(1, 3, ZASL1, 0xa3);
	assert_zone(1, 0, ZS_IO, 7);

	/* Larger than ZASL, not at a zone start, outside the namespace. */
	mark_run(buf, 8, 0xa4);
	assert_int_equal(append(1, 0, buf, ZASL1 + 1, NULL), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(append(1, 1, buf, 1, NULL), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(append(1, (uint64_t)NZ1 * ZS1, buf, 1, NULL), ST_GEN(NVME_SC_LBA_RANGE));
	/* A larger append is fine where the namespace's limit allows it. */
	assert_int_equal(append_ok(2, 0, 8, 0xa5), 0);

	/* Up to the zone capacity: what does not fit is a boundary error,
	 * what fits exactly makes the zone Full, and then it is full. */
	uint64_t wp = 7;
	for (; wp + ZASL1 < CAP1; wp += ZASL1)
		assert_int_equal(append_ok(1, 0, ZASL1, 0xa6), wp);
	assert_int_equal(CAP1 - wp, 1);
	assert_int_equal(append(1, 0, buf, 2, NULL), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_int_equal(append_ok(1, 0, 1, 0xa7), CAP1 - 1);
	assert_zone(1, 0, ZS_F, CAP1);
	assert_int_equal(append(1, 0, buf, 1, NULL), ST_ZNS(NVME_SC_ZNS_FULL));

	/* Read-only and offline zones; a conventional namespace. */
	assert_int_equal(append(1, RO1A * ZS1, buf, 1, NULL), ST_ZNS(NVME_SC_ZNS_READ_ONLY));
	assert_int_equal(append(1, OFFLINE1 * ZS1, buf, 1, NULL), ST_ZNS(NVME_SC_ZNS_OFFLINE));
	assert_int_equal(append(3, 0, buf, 1, NULL), ST_GEN(NVME_SC_INVALID_OPCODE));
}

/* ---- Read, Write, Write Zeroes, Flush on zoned namespaces (ZNS 2.1) ---- */

static void test_read_write_zoned(void **state)
{
	static uint8_t buf[256 * LBA];
	const uint64_t z1 = ZS1;

	reset_all();
	mark_run(buf, 256, 0xb0);
	/* Writes go at the write pointer and nowhere else. */
	wr_ok(1, z1, 2, 0xb1);
	assert_int_equal(wr(1, z1, buf, 1), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	assert_int_equal(wr(1, z1 + 4, buf, 1), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	/* Past the zone capacity: a boundary error, and nothing moved. */
	assert_int_equal(wr(1, z1 + 2, buf, CAP1 - 1), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_zone(1, 1, ZS_IO, 2);
	/* Write Zeroes: the same rules; the blocks read as zeros. */
	assert_int_equal(wzeroes(1, z1 + 2, 3), 0);
	assert_int_equal(wzeroes(1, z1 + 9, 1), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	assert_zone(1, 1, ZS_IO, 5);
	assert_zeros(1, z1 + 2, 3);
	assert_run(1, z1, 2, 0xb1);
	/* Above the write pointer: zeros. */
	assert_zeros(1, z1 + 5, 8);

	/* Reads across a zone boundary: refused on namespace 1 (RAZB 0),
	 * fine on namespace 2. */
	assert_int_equal(rd(1, z1 - 1, buf, 2), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_int_equal(rd(2, ZS2 - 1, buf, 2), 0);
	/* Offline zones cannot be read; read-only ones can, and not written. */
	assert_int_equal(rd(1, OFFLINE1 * ZS1, buf, 1), ST_ZNS(NVME_SC_ZNS_OFFLINE));
	assert_int_equal(rd(1, RO1A * ZS1, buf, 1), 0);
	assert_int_equal(wr(1, RO1A * ZS1, buf, 1), ST_ZNS(NVME_SC_ZNS_READ_ONLY));
	assert_int_equal(wr(1, OFFLINE1 * ZS1, buf, 1), ST_ZNS(NVME_SC_ZNS_OFFLINE));
	assert_int_equal(wzeroes(1, RO1B * ZS1, 1), ST_ZNS(NVME_SC_ZNS_READ_ONLY));
	assert_int_equal(rd(1, (uint64_t)NZ1 * ZS1, buf, 1), ST_GEN(NVME_SC_LBA_RANGE));

	/* A Full zone takes no more writes of any kind. */
	assert_int_equal(zms(1, 1, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(wr(1, z1 + 5, buf, 1), ST_ZNS(NVME_SC_ZNS_FULL));
	assert_int_equal(wzeroes(1, z1 + 5, 1), ST_ZNS(NVME_SC_ZNS_FULL));
	assert_run(1, z1, 2, 0xb1);

	/* Namespace 2 (zone capacity = zone size): a write crossing into the
	 * next zone is a boundary error. */
	wr_ok(2, 0, 255, 0xb2);
	assert_int_equal(wr(2, 255, buf, 2), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	wr_ok(2, 255, 1, 0xb3);
	assert_zone(2, 0, ZS_F, ZS2);
	assert_run(2, 0, 255, 0xb2);

	/* Flush: one namespace, all of them, the conventional one. */
	assert_int_equal(flush(1), 0);
	assert_int_equal(flush(NVME_NSID_ALL), 0);
	assert_int_equal(flush(3), 0);
	wr_ok(3, 100, 4, 0xb4);
	assert_run(3, 100, 4, 0xb4);
}

/* ---- open and active limits (ZNS 2.1.1.4) ---- */

static void test_open_active_limits(void **state)
{
	static uint8_t buf[LBA];
	static const uint8_t zde[64] = { 1 };

	reset_all();
	mark(buf, 0xc0, 0);
	/* Three explicitly opened zones use every open resource. */
	for (uint32_t z = 0; z < 3; z++)
		assert_int_equal(zms(1, z, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zms(1, 3, NVME_ZNS_ZSA_OPEN), ST_ZNS(NVME_SC_ZNS_TOO_MANY_OPENS));
	assert_int_equal(wr(1, 3 * ZS1, buf, 1), ST_ZNS(NVME_SC_ZNS_TOO_MANY_OPENS));
	/* Close one that has data: still active, no longer open. */
	for (uint32_t z = 0; z < 3; z++)
		wr_ok(1, z * ZS1, 1, 0xc1 + z);
	assert_int_equal(zms(1, 2, NVME_ZNS_ZSA_CLOSE), 0);
	assert_zone(1, 2, ZS_C, 1);
	/* A write opens zone 3 implicitly: the fourth and last active zone. */
	wr_ok(1, 3 * ZS1, 1, 0xc4);
	assert_zone(1, 3, ZS_IO, 1);
	assert_int_equal(wr(1, 4 * ZS1, buf, 1), ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zms(1, 4, NVME_ZNS_ZSA_OPEN), ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zms(1, 4, NVME_ZNS_ZSA_FINISH), ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zms_on(io(), 1, 4 * ZS1, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, sizeof(zde)),
			 ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(append(1, 4 * ZS1, buf, 1, NULL), ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	/* Opening closed zone 2 explicitly takes the open resource of the
	 * implicitly opened zone 3, which the controller closes. */
	assert_int_equal(zms(1, 2, NVME_ZNS_ZSA_OPEN), 0);
	assert_zone(1, 2, ZS_EO, 1);
	assert_zone(1, 3, ZS_C, 1);
	/* Finishing a zone frees its resources. */
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_FINISH), 0);
	wr_ok(1, 4 * ZS1, 1, 0xc5);

	/* With only implicit opens, the oldest is closed for a new one. */
	reset_all();
	for (uint32_t z = 0; z < 4; z++)
		wr_ok(1, z * ZS1, 1, 0xc6 + z);
	assert_zone(1, 0, ZS_C, 1);
	for (uint32_t z = 1; z < 4; z++)
		assert_zone(1, z, ZS_IO, 1);
	/* Zone Append opens implicitly too, under the same limits. */
	assert_int_equal(append(1, 5 * ZS1, buf, 1, NULL), ST_ZNS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(append_ok(1, 0, 1, 0xca), 1);
	assert_zone(1, 0, ZS_IO, 2);
	assert_zone(1, 1, ZS_C, 1);
}

/* ---- Zone Management Receive (ZNS 1.1, 3.4.2) ---- */

static void test_report_options(void **state)
{
	static uint8_t buf[64 + NZ1 * 128];
	const struct nvme_zone_report *rep = (const void *)buf;
	/* Zone states set up below, by zone. */
	static const uint8_t want[NZ1] = {
		ZS_IO, ZS_EO, ZS_C, ZS_F, ZS_E, ZS_E, ZS_E, ZS_E,
		ZS_E, ZS_E, ZS_E, ZS_E, ZS_E, ZS_O, ZS_RO, ZS_RO,
	};
	static const uint8_t filter_state[8] = { 0, ZS_E, ZS_IO, ZS_EO, ZS_C, ZS_F, ZS_RO, ZS_O };

	reset_all();
	wr_ok(1, 0, 1, 0xd0);
	assert_int_equal(zms(1, 1, NVME_ZNS_ZSA_OPEN), 0);
	wr_ok(1, 2 * ZS1, 3, 0xd1);
	assert_int_equal(zms(1, 2, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(zms(1, 3, NVME_ZNS_ZSA_FINISH), 0);

	for (uint8_t f = NVME_ZNS_ZRAS_REPORT_ALL; f <= NVME_ZNS_ZRAS_REPORT_OFFLINE; f++) {
		uint32_t expect = 0, got = 0;

		for (uint32_t z = 0; z < NZ1; z++)
			expect += !f || want[z] == filter_state[f];
		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(zmr(1, 0, NVME_ZNS_ZRA_REPORT_ZONES, f, false, buf, sizeof(buf)), 0);
		assert_int_equal(le64toh(rep->nr_zones), expect);
		for (uint32_t z = 0; z < NZ1; z++) {
			if (f && want[z] != filter_state[f])
				continue;
			struct zd d = zd_of(&rep->entries[got++]);
			uint64_t zslba = (uint64_t)z * ZS1, wp;

			switch (want[z]) {
			case ZS_IO: wp = zslba + 1; break;
			case ZS_C: wp = zslba + 3; break;
			case ZS_F: wp = zslba + CAP1; break;
			case ZS_RO: case ZS_O: wp = ~0ull; break; /* not valid: all ones */
			default: wp = zslba;
			}
			assert_int_equal(d.zt, NVME_ZONE_TYPE_SEQWRITE_REQ);
			if (d.zs != want[z])
				fail_msg("filter %u: zone %u %s, expected %s", f, z, zs_name(d.zs),
					 zs_name(want[z]));
			assert_int_equal(d.zslba, zslba);
			assert_int_equal(d.zcap, CAP1);
			assert_int_equal(d.wp, wp);
		}
		/* Entries past the matching ones are zero-filled. */
		assert_true(is_zero((const uint8_t *)&rep->entries[got], (NZ1 - got) * 64));
	}

	/* Partial bit: nr_zones counts what matched (0) or what came back (1). */
	assert_int_equal(zmr(1, 0, 0, NVME_ZNS_ZRAS_REPORT_ALL, false, buf, 64 + 2 * 64), 0);
	assert_int_equal(le64toh(rep->nr_zones), NZ1);
	assert_int_equal(zd_of(&rep->entries[1]).zs, ZS_EO);
	assert_int_equal(zmr(1, 0, 0, NVME_ZNS_ZRAS_REPORT_ALL, true, buf, 64 + 2 * 64), 0);
	assert_int_equal(le64toh(rep->nr_zones), 2);
	assert_int_equal(zmr(1, 0, 0, NVME_ZNS_ZRAS_REPORT_EMPTY, true, buf, 64 + 2 * 64), 0);
	assert_int_equal(le64toh(rep->nr_zones), 2);
	assert_int_equal(zd_of(&rep->entries[0]).zslba, 4 * ZS1);
	/* Room for the header only. */
	assert_int_equal(zmr(1, 0, 0, NVME_ZNS_ZRAS_REPORT_ALL, false, buf, 64), 0);
	assert_int_equal(le64toh(rep->nr_zones), NZ1);
	assert_int_equal(zmr(1, 0, 0, NVME_ZNS_ZRAS_REPORT_ALL, true, buf, 64), 0);
	assert_int_equal(le64toh(rep->nr_zones), 0);
	/* Starting inside a zone starts with that zone. */
	assert_int_equal(zmr(1, 4 * ZS1 + 7, 0, NVME_ZNS_ZRAS_REPORT_ALL, false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(rep->nr_zones), NZ1 - 4);
	assert_int_equal(zd_of(&rep->entries[0]).zslba, 4 * ZS1);
	/* Extended report: each descriptor followed by its 64-byte extension. */
	assert_int_equal(zmr(1, 0, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_CLOSED,
			     false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(rep->nr_zones), 1);
	assert_int_equal(zd_of((const void *)(buf + 64)).zslba, 2 * ZS1);
	assert_true(is_zero(buf + 128, 64));

	/* What is refused. */
	assert_int_equal(zmr(1, (uint64_t)NZ1 * ZS1, 0, 0, false, buf, 128),
			 ST_GEN(NVME_SC_LBA_RANGE));
	assert_int_equal(zmr(1, 0, 0, 0, false, buf, 32), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zmr(1, 0, 0, 8, false, buf, 128), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zmr(1, 0, 2, 0, false, buf, 128), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zmr(2, 0, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, 0, false, buf, 128),
			 ST_GEN(NVME_SC_INVALID_FIELD)); /* no extensions there */
	assert_int_equal(zmr(3, 0, 0, 0, false, buf, 128), ST_GEN(NVME_SC_INVALID_OPCODE));
}

/* ---- Zone Descriptor Extensions (ZNS 1.1, 3.4.3.1.6) ---- */

static void test_zone_descriptor_extension(void **state)
{
	static uint8_t buf[64 + NZ1 * 128], zde[64];
	const struct nvme_zone_report *rep = (const void *)buf;

	reset_all();
	for (int i = 0; i < 64; i++)
		zde[i] = (uint8_t)(0x40 + i);
	/* Set on an Empty zone: it becomes Closed with ZDEV set. */
	assert_int_equal(zms_on(io(), 1, 5 * ZS1, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, 64), 0);
	struct zd d = zone(1, 5);
	assert_int_equal(d.zs, ZS_C);
	assert_int_equal(d.za & NVME_ZNS_ZA_ZDEV, NVME_ZNS_ZA_ZDEV);
	assert_int_equal(d.wp, 5 * ZS1);
	assert_int_equal(zmr(1, 0, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
			     false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(rep->nr_zones), NZ1);
	for (uint32_t z = 0; z < NZ1; z++) {
		const uint8_t *e = buf + 64 + z * 128;

		assert_int_equal(zd_of((const void *)e).zslba, (uint64_t)z * ZS1);
		if (z == 5)
			assert_memory_equal(e + 64, zde, 64);
		else
			assert_true(is_zero(e + 64, 64));
	}
	/* Only on an Empty zone; exactly zde_size bytes; not Select All. */
	assert_int_equal(zms_on(io(), 1, 5 * ZS1, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, 64),
			 ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zms_on(io(), 1, 6 * ZS1, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, 32),
			 ST_GEN(NVME_SC_SGL_INVALID_DATA));
	assert_int_equal(zms_on(io(), 1, 0, NVME_ZNS_ZSA_SET_DESC_EXT, true, zde, 64),
			 ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zms_on(io(), 2, 0, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, 64),
			 ST_GEN(NVME_SC_INVALID_FIELD)); /* no extensions on namespace 2 */
	/* With a valid extension, closing an open zone with no data keeps
	 * it Closed rather than Empty. */
	assert_int_equal(zms(1, 5, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zms(1, 5, NVME_ZNS_ZSA_CLOSE), 0);
	assert_zone(1, 5, ZS_C, 0);
	/* Writing keeps it; Reset drops it. */
	wr_ok(1, 5 * ZS1, 1, 0xe0);
	assert_int_equal(zone(1, 5).za & NVME_ZNS_ZA_ZDEV, NVME_ZNS_ZA_ZDEV);
	assert_int_equal(zms(1, 5, NVME_ZNS_ZSA_RESET), 0);
	d = zone(1, 5);
	assert_int_equal(d.zs, ZS_E);
	assert_int_equal(d.za & NVME_ZNS_ZA_ZDEV, 0);
	assert_int_equal(zmr(1, 5 * ZS1, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, 0, true, buf, 64 + 128),
			 0);
	assert_true(is_zero(buf + 128, 64));
}

/* ---- concurrent Zone Append from several queues ---- */

struct append_round {
	uint32_t nlb, per_queue;
	uint64_t zslba;
	uint64_t alba[NIO][128];
	uint16_t status[NIO][128];
	uint32_t index_of[NIO][NVMF_CLIENT_SLOTS]; /* CID -> append */
};

/* Every queue pipelines its appends at once; returns when all completed. */
static void append_from_all_queues(struct append_round *r, uint32_t nsid)
{
	static uint8_t data[NIO][128][2 * LBA];

	for (int q = 0; q < NIO; q++) {
		for (uint32_t i = 0; i < r->per_queue; i++) {
			struct nvme_sqe sqe;

			mark_run(data[q][i], r->nlb, 0x10000u + (uint32_t)q * 1000 + i);
			sqe_init(&sqe, nvme_zns_cmd_append, nsid, r->zslba);
			sqe.cdw12 = htole32(r->nlb - 1);
			int cid = nvmf_submit(&H.io[q], &sqe, data[q][i], r->nlb * LBA, NULL, 0);
			if (cid < 0)
				fail_msg("queue %d: submit %u: %s", q, i, H.io[q].err);
			r->index_of[q][cid] = i;
		}
	}
	for (int q = 0; q < NIO; q++) {
		for (uint32_t n = 0; n < r->per_queue; n++) {
			struct nvme_cqe cqe;
			uint16_t cid;
			int st = nvmf_wait_any(&H.io[q], &cid, &cqe);

			if (st < 0)
				fail_msg("queue %d: %s", q, H.io[q].err);
			r->status[q][r->index_of[q][cid]] = (uint16_t)st;
			r->alba[q][r->index_of[q][cid]] = le64toh(cqe.result);
		}
	}
}

/* The appends that succeeded cover [zslba, zslba + cover) exactly once,
 * and each one's data is where its LBA says. */
static void check_appends(const struct append_round *r, uint32_t nsid, uint64_t cover)
{
	uint8_t *owner = calloc(cover, 1);
	uint8_t *blk = malloc(2 * LBA);

	for (int q = 0; q < NIO; q++) {
		for (uint32_t i = 0; i < r->per_queue; i++) {
			uint64_t a = r->alba[q][i];
			uint32_t tag, idx;

			if (r->status[q][i])
				continue;
			if (a < r->zslba || a + r->nlb > r->zslba + cover)
				fail_msg("queue %d append %u: LBA %llu outside the zone", q, i,
					 (unsigned long long)a);
			for (uint32_t k = 0; k < r->nlb; k++) {
				if (owner[a - r->zslba + k]++)
					fail_msg("LBA %llu handed out twice", (unsigned long long)(a + k));
			}
			assert_int_equal(rd(nsid, a, blk, r->nlb), 0);
			for (uint32_t k = 0; k < r->nlb; k++)
				if (!marked(blk + k * LBA, &tag, &idx) ||
				    tag != 0x10000u + (uint32_t)q * 1000 + i || idx != k)
					fail_msg("queue %d append %u: other data at LBA %llu", q, i,
						 (unsigned long long)(a + k));
		}
	}
	for (uint64_t l = 0; l < cover; l++)
		if (!owner[l])
			fail_msg("LBA %llu of the zone never handed out", (unsigned long long)l);
	free(owner);
	free(blk);
}

static void test_concurrent_append(void **state)
{
	static struct append_round r;

	reset_all();
	/* 4 queues x 64 one-block appends fill zone 3 exactly. */
	memset(&r, 0, sizeof(r));
	r.nlb = 1;
	r.per_queue = ZS2 / NIO;
	r.zslba = 3 * ZS2;
	append_from_all_queues(&r, 2);
	for (int q = 0; q < NIO; q++)
		for (uint32_t i = 0; i < r.per_queue; i++)
			assert_int_equal(r.status[q][i], 0);
	check_appends(&r, 2, ZS2);
	assert_zone(2, 3, ZS_F, ZS2);

	/* 4 x 40 two-block appends into zone 4: 128 fit, the rest find the
	 * zone Full (and nothing half-written). */
	memset(&r, 0, sizeof(r));
	r.nlb = 2;
	r.per_queue = 40;
	r.zslba = 4 * ZS2;
	append_from_all_queues(&r, 2);
	uint32_t ok = 0;
	for (int q = 0; q < NIO; q++)
		for (uint32_t i = 0; i < r.per_queue; i++) {
			if (r.status[q][i] == 0)
				ok++;
			else
				assert_int_equal(r.status[q][i], ST_ZNS(NVME_SC_ZNS_FULL));
		}
	assert_int_equal(ok, ZS2 / 2);
	check_appends(&r, 2, ZS2);
}

/* ---- a model of namespace 2 that every report must agree with ---- */

struct zmodel {
	uint8_t zs;
	uint32_t wp;                 /* blocks written */
	uint32_t tag[ZS2];           /* which write put each block there */
	uint32_t idx[ZS2];
};

static struct zmodel M[NZ2];

static void model_reset(void)
{
	memset(M, 0, sizeof(M));
	for (uint32_t z = 0; z < NZ2; z++)
		M[z].zs = z == RO2 ? ZS_RO : ZS_E;
}

static void model_write(uint32_t z, uint32_t nlb, uint32_t tag)
{
	for (uint32_t k = 0; k < nlb; k++) {
		M[z].tag[M[z].wp + k] = tag;
		M[z].idx[M[z].wp + k] = k;
	}
	M[z].wp += nlb;
	if (M[z].wp == ZS2)
		M[z].zs = ZS_F;
	else if (M[z].zs != ZS_EO)
		M[z].zs = ZS_IO;
}

/* The model's status for an action, applying it when allowed. */
static uint16_t model_action(uint32_t z, uint8_t zsa)
{
	struct zmodel *m = &M[z];

	switch (zsa) {
	case NVME_ZNS_ZSA_OPEN:
		if (m->zs == ZS_F)
			return ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION);
		m->zs = ZS_EO;
		return 0;
	case NVME_ZNS_ZSA_CLOSE:
		if (m->zs == ZS_C)
			return 0;
		if (m->zs != ZS_IO && m->zs != ZS_EO)
			return ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION);
		m->zs = m->wp ? ZS_C : ZS_E;
		return 0;
	case NVME_ZNS_ZSA_FINISH:
		m->zs = ZS_F;
		return 0;
	default: /* reset */
		memset(m, 0, sizeof(*m));
		m->zs = ZS_E;
		return 0;
	}
}

/* Reports agree with the model, with each other, and the data with it. */
static void check_model(void)
{
	static uint8_t buf[64 + NZ2 * 64], one[64 + 64], data[ZS2 * LBA];
	const struct nvme_zone_report *rep = (const void *)buf;
	uint64_t sum = 0;

	assert_int_equal(zmr(2, 0, 0, NVME_ZNS_ZRAS_REPORT_ALL, false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(rep->nr_zones), NZ2);
	for (uint32_t z = 0; z < NZ2; z++) {
		struct zd d = zd_of(&rep->entries[z]);
		uint64_t wp = (uint64_t)z * ZS2 + (M[z].zs == ZS_F ? ZS2 : M[z].wp);

		if (M[z].zs == ZS_RO) /* no valid write pointer: all ones */
			wp = ~0ull;
		if (d.zs != M[z].zs || d.wp != wp)
			fail_msg("ns 2 zone %u: %s at LBA %#llx, model %s at %#llx", z,
				 zs_name(d.zs), (unsigned long long)d.wp, zs_name(M[z].zs),
				 (unsigned long long)wp);
		/* The same descriptor when asked for this zone alone. */
		assert_int_equal(zmr(2, (uint64_t)z * ZS2, 0, 0, true, one, sizeof(one)), 0);
		assert_memory_equal(one + 64, &rep->entries[z], 64);
		/* Data below the write pointer is what the model wrote. */
		if (!M[z].wp)
			continue;
		assert_int_equal(rd(2, (uint64_t)z * ZS2, data, M[z].wp), 0);
		for (uint32_t k = 0; k < M[z].wp; k++) {
			uint32_t tag, idx;
			bool ok = M[z].tag[k] ? marked(data + (size_t)k * LBA, &tag, &idx) &&
						tag == M[z].tag[k] && idx == M[z].idx[k]
					      : is_zero(data + (size_t)k * LBA, LBA);
			if (!ok)
				fail_msg("ns 2 zone %u block %u: not what the model wrote", z, k);
		}
	}
	/* Every zone is in exactly one state's filtered report. */
	for (uint8_t f = NVME_ZNS_ZRAS_REPORT_EMPTY; f <= NVME_ZNS_ZRAS_REPORT_OFFLINE; f++) {
		static uint8_t fbuf[64 + NZ2 * 64];
		const struct nvme_zone_report *fr = (const void *)fbuf;
		uint64_t n;

		assert_int_equal(zmr(2, 0, 0, f, false, fbuf, sizeof(fbuf)), 0);
		n = le64toh(fr->nr_zones);
		for (uint64_t i = 0; i < n; i++) {
			struct zd d = zd_of(&fr->entries[i]);
			assert_memory_equal(&fr->entries[i], &rep->entries[d.zslba / ZS2], 64);
		}
		sum += n;
	}
	assert_int_equal(sum, NZ2);
}

/* Random writes, appends, Write Zeroes and zone actions on zones 8..31. */
static void test_report_consistency(void **state)
{
	static uint8_t buf[64 * LBA];
	unsigned seed = 4242;
	uint32_t tag = 0x20000;

	reset_all();
	model_reset();
	for (int op = 0; op < 400; op++) {
		uint32_t z = 8 + (uint32_t)(rand_r(&seed) % (NZ2 - 8));
		uint32_t kind = (uint32_t)rand_r(&seed) % 10;
		uint32_t room = M[z].zs == ZS_F ? 0 : ZS2 - M[z].wp;
		uint32_t nlb = 1 + (uint32_t)rand_r(&seed) % 16;
		uint64_t zslba = (uint64_t)z * ZS2;
		int st;

		if (kind < 6) { /* data: Write, Zone Append or Write Zeroes */
			uint16_t want = room == 0 ? ST_ZNS(NVME_SC_ZNS_FULL)
					: nlb > room ? ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR) : 0;
			uint64_t alba = 0;

			mark_run(buf, nlb, ++tag);
			if (kind < 3)
				st = wr(2, zslba + M[z].wp, buf, nlb);
			else if (kind < 5)
				st = append(2, zslba, buf, nlb, &alba);
			else
				st = wzeroes(2, zslba + M[z].wp, nlb);
			if (st != want)
				fail_msg("op %d zone %u: status %#x, expected %#x", op, z, st, want);
			if (st)
				continue;
			if (kind >= 3 && kind < 5)
				assert_int_equal(alba, zslba + M[z].wp);
			model_write(z, nlb, kind == 5 ? 0 : tag);
		} else {
			static const uint8_t acts[4] = { NVME_ZNS_ZSA_OPEN, NVME_ZNS_ZSA_CLOSE,
							 NVME_ZNS_ZSA_FINISH, NVME_ZNS_ZSA_RESET };
			uint8_t zsa = acts[kind - 6];
			uint16_t want = model_action(z, zsa);

			st = zms_on(io(), 2, zslba, zsa, false, NULL, 0);
			if (st != want)
				fail_msg("op %d zone %u action %#x: status %#x, expected %#x", op, z, zsa,
					 st, want);
		}
	}
	check_model();
}

/* ---- Zone Random Write Area (doc/zrwa.md): namespace 4 ---- */

#define ZRWAA (1u << 9)                 /* Zone Management Send cdw13 */

/* Zone Management Send with cdw13 as given (action and flags). */
static int zms_raw(uint32_t nsid, uint64_t slba, uint32_t cdw13)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_send, nsid, slba);
	sqe.cdw13 = htole32(cdw13);
	return nvmf_cmd(io(), &sqe, NULL, 0, NULL, 0, NULL);
}

static int open_zrwa(uint32_t zone)
{
	return zms_raw(4, (uint64_t)zone * ZS1, NVME_ZNS_ZSA_OPEN | ZRWAA);
}

static int zrwa_flush(uint64_t elba)
{
	return zms_raw(4, elba, NVME_ZNS_ZSA_ZRWA_FLUSH);
}

static int wr4(uint64_t slba, uint32_t nlb, uint32_t tag)
{
	uint8_t *b = malloc((size_t)nlb * LBA);

	mark_run(b, nlb, tag);
	int st = wr(4, slba, b, nlb);
	free(b);
	return st;
}

/* Zone z of namespace 4: state, write pointer and ZRWAV, in a partial
 * report of one zone (zone()) and in a full report from it. */
static void assert_zrwa_zone(uint32_t z, uint8_t zs, uint64_t wp_off, bool zrwav)
{
	uint8_t buf[64 + sizeof(struct nvme_zns_desc)];

	assert_zone(4, z, zs, wp_off);
	assert_int_equal(!!(zone(4, z).za & NVME_ZNS_ZA_ZRWAV), zrwav);
	assert_int_equal(zmr(4, (uint64_t)z * ZS1, NVME_ZNS_ZRA_REPORT_ZONES,
			     NVME_ZNS_ZRAS_REPORT_ALL, false, buf, sizeof(buf)), 0);
	struct zd d = zd_of(((struct nvme_zone_report *)buf)->entries);
	assert_int_equal(d.zslba, (uint64_t)z * ZS1);
	assert_int_equal(!!(d.za & NVME_ZNS_ZA_ZRWAV), zrwav);
}

static void test_zrwa_identify(void **state)
{
	static struct nvme_zns_id_ns zns;

	host_up();
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_NS, 4, NVME_CSI_ZNS, &zns,
				       NULL), 0);
	assert_int_equal(le16toh(zns.ozcs) & 2, 2);          /* ZRWASUP */
	assert_int_equal(le32toh(zns.numzrwa), 1);           /* 0's based: 2 */
	assert_int_equal(le16toh(zns.zrwafg), ZRWAFG4);
	assert_int_equal(le16toh(zns.zrwasz), ZRWAS4);
	assert_int_equal(zns.zrwacap & 1, 1);                /* explicit flush */
	/* Namespace 1 has none. */
	assert_int_equal(nvmf_identify(&H.admin, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_ZNS, &zns,
				       NULL), 0);
	assert_int_equal(le16toh(zns.ozcs) & 2, 0);
	assert_int_equal(zns.zrwasz, 0);
	assert_int_equal(zms_raw(1, 0, NVME_ZNS_ZSA_OPEN | ZRWAA),
			 ST_GEN(NVME_SC_INVALID_FIELD));
}

static void test_zrwa_commands(void **state)
{
	static uint8_t blk[LBA];

	host_up();
	assert_int_equal(zms_raw(4, 0, NVME_ZNS_ZSA_RESET | 1u << 8), 0);
	/* Open with ZRWA Allocation; ZRWAV in the reports. */
	assert_int_equal(open_zrwa(0), 0);
	assert_zrwa_zone(0, ZS_EO, 0, true);
	/* ZRWAA: only to an Empty zone, never with Select All, only with
	 * Open / Set Zone Descriptor Extension. */
	assert_int_equal(open_zrwa(0), ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zms_raw(4, 0, NVME_ZNS_ZSA_OPEN | ZRWAA | 1u << 8), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zms_raw(4, ZS1, NVME_ZNS_ZSA_CLOSE | ZRWAA), ST_GEN(NVME_SC_INVALID_FIELD));
	/* Writes anywhere in the window, over each other. */
	assert_int_equal(wr4(8, 4, 0x101), 0);
	assert_int_equal(wr4(0, 2, 0x102), 0);
	assert_int_equal(wr4(1, 2, 0x103), 0);
	assert_zrwa_zone(0, ZS_EO, 0, true);
	assert_block(4, 0, 0x102, 0);
	assert_block(4, 1, 0x103, 0);
	assert_block(4, 2, 0x103, 1);
	assert_zeros(4, 3, 1);
	assert_block(4, 11, 0x101, 3);
	/* Past the Implicit Flush Range; Zone Append. */
	assert_int_equal(wr4(2 * ZRWAS4, 1, 0x104), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	assert_int_equal(append(4, 0, blk, 1, NULL), ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	/* Explicit flush: the write pointer moves to the LBA after it. */
	assert_int_equal(zrwa_flush(2), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zrwa_flush(ZRWAS4), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_int_equal(zrwa_flush(ZS1 + 3), ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zms_raw(4, 3, NVME_ZNS_ZSA_ZRWA_FLUSH | 1u << 8), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zrwa_flush(3), 0);
	assert_zrwa_zone(0, ZS_EO, 4, true);
	assert_int_equal(wr4(3, 1, 0x105), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	/* Implicit flush: a write ending 6 past the window [4, 20) moves the
	 * write pointer up by two granules. */
	assert_int_equal(wr4(20, 6, 0x106), 0);
	assert_zrwa_zone(0, ZS_EO, 12, true);
	assert_block(4, 25, 0x106, 5);
	/* Resources: the third ZRWA is refused. */
	assert_int_equal(open_zrwa(1), 0);
	assert_int_equal(open_zrwa(2), ST_ZNS(NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE));
	assert_zrwa_zone(2, ZS_E, 0, false);
	/* Finish keeps the window's data and releases the ZRWA; so does Reset. */
	assert_int_equal(wr4(ZS1 + 5, 1, 0x107), 0);
	assert_int_equal(zms_raw(4, ZS1, NVME_ZNS_ZSA_FINISH), 0);
	assert_zrwa_zone(1, ZS_F, CAP1, false);
	assert_block(4, ZS1 + 5, 0x107, 0);
	assert_zeros(4, ZS1 + 4, 1);
	assert_int_equal(zms_raw(4, ZS1, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(open_zrwa(2), 0);
	assert_int_equal(zms_raw(4, 2 * ZS1, NVME_ZNS_ZSA_RESET), 0);
	assert_zrwa_zone(2, ZS_E, 0, false);
}

/* kill -9, then a clean restart: zone 0 as test_zrwa_commands left it. */
static void test_zrwa_restart(void **state)
{
	host_up();
	assert_int_equal(wr4(13, 2, 0x108), 0); /* in the window [12, 28) */
	target_kill(&T);
	host_down();
	host_up();
	assert_zrwa_zone(0, ZS_C, 12, true);
	assert_block(4, 0, 0x102, 0);
	assert_block(4, 2, 0x103, 1);
	assert_block(4, 11, 0x101, 3);
	assert_run(4, 13, 2, 0x108);
	assert_block(4, 25, 0x106, 5);
	assert_zeros(4, 28, 1);
	/* Still a ZRWA: writes in the window, a flush reopens it. */
	assert_int_equal(wr4(12, 1, 0x109), 0);
	assert_int_equal(zrwa_flush(15), 0);
	assert_zrwa_zone(0, ZS_IO, 16, true);
	host_down();
	daemon_stop();
	host_up();
	assert_zrwa_zone(0, ZS_C, 16, true);
	assert_block(4, 12, 0x109, 0);
	assert_block(4, 25, 0x106, 5);
	assert_int_equal(zms_raw(4, 0, NVME_ZNS_ZSA_RESET | 1u << 8), 0);
}

/* ---- power cut, kill -9, restart ---- */

/* The host's old connections are gone: the target closed them. */
static void assert_host_dropped(void)
{
	char c;

	H.admin.timeout_ms = 5000;
	assert_int_equal(nvmf_recv_raw(&H.admin, &c, 1), 0);
	host_down();
}

static void test_power_cut_drops_the_volatile(void **state)
{
	static uint8_t zde[64];

	reset_all();
	memset(zde, 0x5a, sizeof(zde));
	/* Namespace 1 has a volatile write cache. Flushed: A and B. */
	wr_ok(1, 0, 4, 0xf1);
	assert_int_equal(append_ok(1, 0, 2, 0xf2), 4);
	assert_int_equal(flush(1), 0);
	/* Zone management is durable when it completes, cache or not (and,
	 * like a Flush, makes the namespace's earlier writes durable too). */
	assert_int_equal(zms(1, 2, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(zms(1, 3, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zms_on(io(), 1, 4 * ZS1, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde, 64), 0);
	/* Not flushed: C and D behind A and B, E opening zone 1. */
	wr_ok(1, 6, 3, 0xf3);
	assert_int_equal(append_ok(1, 0, 1, 0xf4), 9);
	wr_ok(1, ZS1, 2, 0xf5);
	/* Namespace 2 and 3 have no cache: durable when completed. */
	wr_ok(2, 0, 5, 0xf6);
	assert_int_equal(append_ok(2, ZS2, 3, 0xf7), ZS2);
	wr_ok(3, 100, 2, 0xf8);
	assert_zone(1, 0, ZS_IO, 10);

	power_cut();
	assert_host_dropped();
	host_up();

	/* Namespace 1: back to the Flush; the open zone is closed (power-up
	 * rule) and nothing above its write pointer reads back. */
	assert_zone(1, 0, ZS_C, 6);
	assert_run(1, 0, 4, 0xf1);
	assert_run(1, 4, 2, 0xf2);
	assert_zeros(1, 6, 4);
	assert_zone(1, 1, ZS_E, 0);
	assert_zeros(1, ZS1, 2);
	assert_zone(1, 2, ZS_F, CAP1);
	assert_zone(1, 3, ZS_E, 0); /* opened with nothing written: Empty */
	struct zd d = zone(1, 4);
	assert_int_equal(d.zs, ZS_C);
	assert_int_equal(d.za & NVME_ZNS_ZA_ZDEV, NVME_ZNS_ZA_ZDEV);
	assert_zone(1, OFFLINE1, ZS_O, 0);
	assert_zone(1, RO1A, ZS_RO, 0);
	/* Namespaces 2 and 3: everything that completed. */
	assert_zone(2, 0, ZS_C, 5);
	assert_run(2, 0, 5, 0xf6);
	assert_zone(2, 1, ZS_C, 3);
	assert_run(2, ZS2, 3, 0xf7);
	assert_run(3, 100, 2, 0xf8);
	/* And the zones take writes where the write pointers now are. */
	wr_ok(1, 6, 1, 0xf9);
	assert_run(1, 6, 1, 0xf9);
	assert_int_equal(append_ok(2, 0, 1, 0xfa), 5);
}


/*
 * Appends in flight on two queues when the power goes. Namespace 2 has no
 * volatile cache, so every append that completed must be there afterwards;
 * and since a write pointer never passes data that did not land, every
 * block below each write pointer must be a block some append sent, whole
 * appends only, each where its completion (if it got one) said.
 */
#define LOAD_ZONE0 8u
#define LOAD_ZONES (NZ2 - LOAD_ZONE0)
#define LOAD_MAX 8192u

struct load {
	struct nvmf_client c[2];
	uint32_t tag_of[2][NVMF_CLIENT_SLOTS];
	uint32_t sent;                 /* tags 1..sent went out */
	uint32_t done;                 /* completions seen (atomic) */
	uint8_t nlb[LOAD_MAX + 1];
	bool ok[LOAD_MAX + 1];         /* completed successfully, at alba */
	uint64_t alba[LOAD_MAX + 1];
	char why[160];                 /* an unexpected status */
};

static uint32_t load_zone(uint32_t tag)
{
	return LOAD_ZONE0 + tag % LOAD_ZONES;
}

static void *load_main(void *arg)
{
	struct load *l = arg;
	uint8_t *b = malloc(2 * LBA);
	int inflight[2] = { 0, 0 };

	while (!l->c[0].dead || !l->c[1].dead) {
		for (int q = 0; q < 2; q++) {
			struct nvmf_client *c = &l->c[q];

			/* At most two blocks: in-capsule, so b is free again at once. */
			while (!c->dead && inflight[q] < 32 && l->sent < LOAD_MAX) {
				uint32_t tag = l->sent + 1;
				uint8_t nlb = (uint8_t)(1 + tag % 2);
				struct nvme_sqe sqe;

				sqe_init(&sqe, nvme_zns_cmd_append, 2, (uint64_t)load_zone(tag) * ZS2);
				sqe.cdw12 = htole32(nlb - 1u);
				mark_run(b, nlb, tag);
				int cid = nvmf_submit(c, &sqe, b, nlb * LBA, NULL, 0);
				if (cid < 0)
					break;
				l->nlb[tag] = nlb;
				l->tag_of[q][cid] = tag;
				l->sent = tag;
				inflight[q]++;
			}
			if (c->dead || !inflight[q])
				continue;
			struct nvme_cqe cqe;
			uint16_t cid;
			int st = nvmf_wait_any(c, &cid, &cqe);
			if (st < 0)
				continue; /* the power went: this queue is done */
			uint32_t tag = l->tag_of[q][cid];
			inflight[q]--;
			__atomic_add_fetch(&l->done, 1, __ATOMIC_RELEASE);
			if (st == 0) {
				l->ok[tag] = true;
				l->alba[tag] = le64toh(cqe.result);
			} else if (st != ST_ZNS(NVME_SC_ZNS_FULL) &&
				   st != ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR) && !l->why[0]) {
				snprintf(l->why, sizeof(l->why), "append %u: status %#x", tag, st);
			}
		}
		bool waiting = (!l->c[0].dead && inflight[0]) || (!l->c[1].dead && inflight[1]);
		if (l->sent == LOAD_MAX && !waiting)
			break;
	}
	free(b);
	return NULL;
}

static void test_power_cut_under_load(void **state)
{
	static struct load l;
	static uint8_t data[ZS2 * LBA];
	static int64_t start[LOAD_MAX + 1];   /* first LBA of each tag seen, -1 none */
	static uint8_t seen[LOAD_MAX + 1];    /* its blocks seen */
	pthread_t t;

	reset_all();
	memset(&l, 0, sizeof(l));
	for (int q = 0; q < 2; q++)
		host_connect_io(&l.c[q], (uint16_t)(10 + q));
	assert_int_equal(pthread_create(&t, NULL, load_main, &l), 0);
	while (__atomic_load_n(&l.done, __ATOMIC_ACQUIRE) < 300)
		usleep(1000);
	power_cut();
	assert_int_equal(pthread_join(t, NULL), 0);
	nvmf_close(&l.c[0]);
	nvmf_close(&l.c[1]);
	if (l.why[0])
		fail_msg("%s", l.why);
	assert_true(l.sent < LOAD_MAX); /* the cut came while appends were going */
	assert_host_dropped();
	host_up();

	for (uint32_t i = 0; i <= LOAD_MAX; i++)
		start[i] = -1;
	memset(seen, 0, sizeof(seen));
	for (uint32_t z = LOAD_ZONE0; z < NZ2; z++) {
		struct zd d = zone(2, z);
		uint64_t zslba = (uint64_t)z * ZS2, n = d.wp - zslba;

		if (d.zs == ZS_F)
			n = ZS2;
		assert_true(n <= ZS2);
		if (n)
			assert_int_equal(rd(2, zslba, data, (uint32_t)n), 0);
		for (uint64_t k = 0; k < n; k++) {
			uint32_t tag, idx;

			if (!marked(data + k * LBA, &tag, &idx) || tag > l.sent || idx >= l.nlb[tag] ||
			    load_zone(tag) != z)
				fail_msg("zone %u block %llu: not a block any append sent", z,
					 (unsigned long long)k);
			int64_t first = (int64_t)(zslba + k - idx);
			if (start[tag] >= 0 && start[tag] != first)
				fail_msg("append %u in two places", tag);
			start[tag] = first;
			seen[tag]++;
		}
	}
	uint32_t completed = 0;
	for (uint32_t tag = 1; tag <= l.sent; tag++) {
		if (seen[tag] && seen[tag] != l.nlb[tag])
			fail_msg("append %u: %u of %u blocks below the write pointer", tag, seen[tag],
				 l.nlb[tag]);
		if (!l.ok[tag])
			continue;
		completed++;
		if (start[tag] != (int64_t)l.alba[tag])
			fail_msg("append %u completed at LBA %llu but is %s", tag,
				 (unsigned long long)l.alba[tag], start[tag] < 0 ? "gone" : "elsewhere");
	}
	assert_true(completed >= 300 / 2);
}

/*
 * Restart cycles, each ending one of three ways: kill -9, power cut, clean
 * stop. Namespaces 2 and 3 (no cache) keep every completed write; namespace
 * 1 keeps at least what was flushed: exactly that after a power cut,
 * everything after a clean stop, and after kill -9 (which loses no cache:
 * the process dies, the machine does not) anything in between.
 */
static void model_power_up(void)
{
	for (uint32_t z = 0; z < NZ2; z++)
		if (M[z].zs == ZS_IO || M[z].zs == ZS_EO)
			M[z].zs = M[z].wp ? ZS_C : ZS_E;
}

static void test_restart_cycles(void **state)
{
	enum { KILL, CUT, STOP };
	unsigned seed = 77;
	uint32_t tag = 0x40000, flushed = 0, written = 0, tag1[CAP1], idx1[CAP1];
	const uint32_t z1 = 6;

	reset_all();
	model_reset();
	for (int cycle = 0; cycle < 6; cycle++) {
		int how = cycle % 3;

		host_up();
		/* Namespace 2: writes, appends and actions on zones 20..23. */
		for (int op = 0; op < 10; op++) {
			uint32_t z = 20 + (uint32_t)rand_r(&seed) % 4;
			uint32_t nlb = 1 + (uint32_t)rand_r(&seed) % 8;
			uint64_t zslba = (uint64_t)z * ZS2;

			if (M[z].zs == ZS_F || M[z].wp + nlb > ZS2) {
				assert_int_equal(zms_on(io(), 2, zslba, NVME_ZNS_ZSA_RESET, false,
							NULL, 0), 0);
				model_action(z, NVME_ZNS_ZSA_RESET);
			} else if (op % 4 == 3) {
				uint8_t zsa = op % 8 == 3 ? NVME_ZNS_ZSA_OPEN : NVME_ZNS_ZSA_CLOSE;
				assert_int_equal(zms_on(io(), 2, zslba, zsa, false, NULL, 0),
						 model_action(z, zsa));
			} else if (op % 2) {
				assert_int_equal(append_ok(2, zslba, nlb, ++tag), zslba + M[z].wp);
				model_write(z, nlb, tag);
			} else {
				wr_ok(2, zslba + M[z].wp, nlb, ++tag);
				model_write(z, nlb, tag);
			}
		}
		wr_ok(3, (uint64_t)cycle * 8, 8, 0x41000u + (uint32_t)cycle);
		/* Namespace 1: some blocks, Flush, some more. */
		for (int part = 0; part < 2; part++) {
			uint32_t nlb = 1 + (uint32_t)rand_r(&seed) % 10;

			wr_ok(1, z1 * ZS1 + written, nlb, ++tag);
			for (uint32_t k = 0; k < nlb; k++) {
				tag1[written + k] = tag;
				idx1[written + k] = k;
			}
			written += nlb;
			if (!part) {
				assert_int_equal(flush(1), 0);
				flushed = written;
			}
		}

		if (how == KILL) {
			target_kill(&T);
		} else if (how == CUT) {
			power_cut();
		} else {
			host_down();
			daemon_stop();
		}
		host_down();
		host_up();

		model_power_up();
		check_model();
		for (int c = 0; c <= cycle; c++)
			assert_run(3, (uint64_t)c * 8, 8, 0x41000u + (uint32_t)c);
		struct zd d = zone(1, z1);
		uint64_t wp = d.wp - z1 * ZS1;
		assert_int_equal(d.zs, ZS_C);
		if (how == CUT)
			assert_int_equal(wp, flushed);
		else if (how == STOP)
			assert_int_equal(wp, written);
		else if (wp < flushed || wp > written)
			fail_msg("cycle %d: write pointer +%llu, flushed %u, written %u", cycle,
				 (unsigned long long)wp, flushed, written);
		for (uint32_t k = 0; k < wp; k++)
			assert_block(1, z1 * ZS1 + k, tag1[k], idx1[k]);
		written = flushed = (uint32_t)wp;
	}
}

/* ---- Zone Management Send (ZNS 1.1, 3.4.3): each action, Select All ---- */

/* Last: Select All Offline takes the read-only zones offline for good. */
static void test_zone_actions(void **state)
{
	reset_all();
	/* Open (and again), Close with nothing written: back to Empty. */
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_OPEN), 0);
	assert_zone(1, 0, ZS_EO, 0);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_zone(1, 0, ZS_E, 0);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_CLOSE), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	/* With data: Close, Open, Finish, Reset. */
	wr_ok(1, 0, 2, 0x90);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_zone(1, 0, ZS_C, 2);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_OPEN), 0);
	assert_zone(1, 0, ZS_EO, 2);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_FINISH), 0);
	assert_zone(1, 0, ZS_F, CAP1);
	assert_run(1, 0, 2, 0x90);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_OPEN), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_CLOSE), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zms(1, 0, NVME_ZNS_ZSA_RESET), 0);
	assert_zone(1, 0, ZS_E, 0);
	assert_zeros(1, 0, 2);
	/* Finish an Empty zone; Offline only from Read Only. */
	assert_int_equal(zms(1, 1, NVME_ZNS_ZSA_FINISH), 0);
	assert_zone(1, 1, ZS_F, CAP1);
	assert_int_equal(zms(1, 2, NVME_ZNS_ZSA_OFFLINE), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	for (uint8_t zsa = NVME_ZNS_ZSA_CLOSE; zsa <= NVME_ZNS_ZSA_RESET; zsa++) {
		assert_int_equal(zms(1, RO1A, zsa), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
		assert_int_equal(zms(1, OFFLINE1, zsa), ST_ZNS(NVME_SC_ZNS_INVAL_TRANSITION));
	}
	assert_int_equal(zms(1, RO1A, NVME_ZNS_ZSA_OFFLINE), 0);
	assert_zone(1, RO1A, ZS_O, 0);
	assert_int_equal(rd(1, RO1A * ZS1, (uint8_t[LBA]){ 0 }, 1), ST_ZNS(NVME_SC_ZNS_OFFLINE));
	/* Malformed: not a zone start, past the end, unknown action. */
	assert_int_equal(zms_on(io(), 1, 1, NVME_ZNS_ZSA_OPEN, false, NULL, 0),
			 ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zms_on(io(), 1, (uint64_t)NZ1 * ZS1, NVME_ZNS_ZSA_OPEN, false, NULL, 0),
			 ST_GEN(NVME_SC_LBA_RANGE));
	assert_int_equal(zms(1, 0, 0x7), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zms(3, 0, NVME_ZNS_ZSA_OPEN), ST_GEN(NVME_SC_INVALID_OPCODE));

	/* Select All applies each action to the zones it fits and skips the
	 * others (the SLBA is ignored). */
	reset_all();
	wr_ok(1, 2 * ZS1, 1, 0x91);                   /* 2: implicitly open */
	wr_ok(1, 3 * ZS1, 1, 0x92);
	assert_int_equal(zms(1, 3, NVME_ZNS_ZSA_CLOSE), 0); /* 3: closed */
	assert_int_equal(zms(1, 4, NVME_ZNS_ZSA_OPEN), 0);  /* 4: explicitly open, empty */
	assert_int_equal(zms_on(io(), 1, 12345, NVME_ZNS_ZSA_CLOSE, true, NULL, 0), 0);
	assert_zone(1, 2, ZS_C, 1);
	assert_zone(1, 3, ZS_C, 1);
	assert_zone(1, 4, ZS_E, 0);
	assert_int_equal(zms_all(1, NVME_ZNS_ZSA_OPEN), 0);
	assert_zone(1, 2, ZS_EO, 1);
	assert_zone(1, 3, ZS_EO, 1);
	assert_zone(1, 4, ZS_E, 0);
	assert_int_equal(zms_all(1, NVME_ZNS_ZSA_FINISH), 0);
	assert_zone(1, 2, ZS_F, CAP1);
	assert_zone(1, 3, ZS_F, CAP1);
	assert_zone(1, 4, ZS_E, 0);
	assert_int_equal(zms_all(1, NVME_ZNS_ZSA_RESET), 0);
	for (uint32_t z = 0; z < OFFLINE1; z++)
		assert_zone(1, z, ZS_E, 0);
	assert_zone(1, RO1B, ZS_RO, 0);
	assert_int_equal(zms_all(1, NVME_ZNS_ZSA_OFFLINE), 0);
	assert_zone(1, RO1B, ZS_O, 0);
	assert_zone(1, 0, ZS_E, 0);
	/* Durable: the offline zones stay offline after a restart. */
	host_down();
	daemon_stop();
	host_up();
	assert_zone(1, RO1A, ZS_O, 0);
	assert_zone(1, RO1B, ZS_O, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: it needs the zones changed by the formatting start. */
		cmocka_unit_test(test_changed_zones_notice),
		cmocka_unit_test(test_identify),
		cmocka_unit_test(test_zone_append),
		cmocka_unit_test(test_read_write_zoned),
		cmocka_unit_test(test_open_active_limits),
		cmocka_unit_test(test_report_options),
		cmocka_unit_test(test_zone_descriptor_extension),
		cmocka_unit_test(test_concurrent_append),
		cmocka_unit_test(test_report_consistency),
		cmocka_unit_test(test_zrwa_identify),
		cmocka_unit_test(test_zrwa_commands),
		cmocka_unit_test(test_zrwa_restart),
		cmocka_unit_test(test_power_cut_drops_the_volatile),
		cmocka_unit_test(test_power_cut_under_load),
		cmocka_unit_test(test_restart_cycles),
		cmocka_unit_test(test_zone_actions),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
