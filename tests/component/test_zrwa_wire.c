/*
 * Zone Random Write Area over NVMe/TCP (doc/zrwa.md): the real daemon
 * (build/znstgt as a child process) driven by the host-side client library.
 *
 *   - Identify Namespace (ZNS): ZRWASUP, NUMZRWA, ZRWAFG, ZRWAS, ZRWACAP;
 *   - Zone Management Send Open with ZRWAA (cdw13 bit 9), writes anywhere
 *     in the window and over each other, implicit flush, Flush Explicit
 *     ZRWA Range (action 11h), Zone Append, Finish and Reset, each with the
 *     status the host sees on the wire, and ZRWAV in Report Zones;
 *   - kill -9, then a clean restart: the ZRWA, the write pointer and what
 *     the window held are all back.
 *
 * One namespace: zoned, 8 zones of 1 MiB with 768 KiB capacity, 64 KiB
 * ZRWA (16 blocks) flushed in 16 KiB (4 blocks), 2 ZRWAs, 4 active zones,
 * write cache off.
 */
#include <limits.h>
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
#include "../lib/target_proc.h"

#define NQN "nqn.2026-11.io.znstgt:zrwa-wire"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:1b6e1e0a-3c1f-4f47-8d1e-5a3c2b1d0e9f"
#define LBA 4096u
#define ZS 256u      /* zone size, LBAs */
#define CAP 192u     /* zone capacity, LBAs */
#define ZRWAS 16u
#define ZRWAFG 4u
#define ZRWAA (1u << 9)

#define ST_ZNS(sc) (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, (sc)) | NVME_STATUS_DNR)
#define ST_GEN(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

static char dir[] = "/tmp/znstgt-zrwa-XXXXXX";
static char port[8];
static struct target_proc T;
static struct nvmf_client A, Q; /* admin queue, one I/O queue */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void daemon_start(bool format)
{
	char why[512];

	if (target_start(&T, format, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
}

static void host_down(void)
{
	nvmf_close(&A);
	nvmf_close(&Q);
}

static void host_up(void)
{
	host_down();
	if (nvmf_tcp_connect(&A, "127.0.0.1", port, false, false))
		fail_msg("admin queue: %s", A.err);
	int st = nvmf_connect(&A, 0, 32, 0, HOSTNQN, NQN, 0xffff, 0, NULL);
	if (st)
		fail_msg("admin Connect: %#x %s", st, A.err);
	if (nvmf_enable(&A, 5000))
		fail_msg("enable: %s", A.err);
	if (nvmf_tcp_connect(&Q, "127.0.0.1", port, true, true))
		fail_msg("I/O queue: %s", Q.err);
	st = nvmf_connect(&Q, 1, 64, 0, HOSTNQN, NQN, A.cntlid, 0, NULL);
	if (st)
		fail_msg("I/O Connect: %#x %s", st, Q.err);
}

/* ---- commands ---- */

static void sqe_init(struct nvme_sqe *sqe, uint8_t opcode, uint64_t slba)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(1);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw11 = htole32((uint32_t)(slba >> 32));
}

/* Zone Management Send; cdw13 holds the action and its flags. */
static int zms(uint64_t slba, uint32_t cdw13)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_send, slba);
	sqe.cdw13 = htole32(cdw13);
	return nvmf_cmd(&Q, &sqe, NULL, 0, NULL, 0, NULL);
}

static int open_zrwa(uint32_t zone)
{
	return zms((uint64_t)zone * ZS, NVME_ZNS_ZSA_OPEN | ZRWAA);
}

static int zrwa_flush(uint64_t elba)
{
	return zms(elba, NVME_ZNS_ZSA_ZRWA_FLUSH);
}

/* Every block says which write put it there: (tag, block index). */
static void fill(uint8_t *b, uint32_t nlb, uint32_t tag)
{
	for (uint32_t k = 0; k < nlb; k++) {
		uint8_t *p = b + (size_t)k * LBA;
		memset(p, (int)(tag & 0xff), LBA);
		memcpy(p, &tag, 4);
		memcpy(p + 4, &k, 4);
	}
}

static int wr(uint64_t slba, uint32_t nlb, uint32_t tag)
{
	uint8_t *b = malloc((size_t)nlb * LBA);

	fill(b, nlb, tag);
	int st = nvmf_write(&Q, 1, slba, nlb, b, nlb * LBA, NULL);
	free(b);
	return st;
}

/* Block lba holds block idx of write tag (tag 0: zeros). */
static void expect_block(uint64_t lba, uint32_t tag, uint32_t idx)
{
	static uint8_t got[LBA], want[LBA];

	assert_int_equal(nvmf_read(&Q, 1, lba, 1, got, LBA, NULL), 0);
	memset(want, 0, LBA);
	if (tag)
		fill(want, 1, tag);
	if (tag)
		memcpy(want + 4, &idx, 4);
	if (memcmp(got, want, LBA))
		fail_msg("LBA %llu: not block %u of write %#x", (unsigned long long)lba, idx, tag);
}

/* One zone's descriptor as Report Zones gives it: a partial report of one
 * zone, or a full one from it (which counts every zone from there on). */
static void expect_zone_report(uint32_t zone, uint8_t zs, uint64_t wp_off, bool zrwav,
			       bool partial)
{
	uint8_t buf[64 + sizeof(struct nvme_zns_desc)];
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_zns_cmd_mgmt_recv, (uint64_t)zone * ZS);
	sqe.cdw12 = htole32(sizeof(buf) / 4 - 1);
	sqe.cdw13 = htole32(NVME_ZNS_ZRA_REPORT_ZONES | (partial ? 1u << 16 : 0));
	assert_int_equal(nvmf_cmd(&Q, &sqe, NULL, 0, buf, sizeof(buf), NULL), 0);
	const struct nvme_zns_desc *d = ((struct nvme_zone_report *)buf)->entries;
	uint64_t wp = le64toh(d->wp) - (uint64_t)zone * ZS;
	if (d->zs >> 4 != zs || wp != wp_off || !!(d->za & NVME_ZNS_ZA_ZRWAV) != zrwav)
		fail_msg("zone %u (%s report): state %#x wp +%llu za %#x; expected %#x +%llu%s",
			 zone, partial ? "partial" : "full", d->zs >> 4, (unsigned long long)wp,
			 d->za, zs, (unsigned long long)wp_off, zrwav ? " with ZRWAV" : "");
}

static void expect_zone(uint32_t zone, uint8_t zs, uint64_t wp_off, bool zrwav)
{
	expect_zone_report(zone, zs, wp_off, zrwav, false);
	expect_zone_report(zone, zs, wp_off, zrwav, true);
}

/* ---- setup ---- */

static int setup(void **state)
{
	char path[PATH_MAX + 32], text[1024], why[256];

	if (target_find_bin(T.bin, sizeof(T.bin), why, sizeof(why)) != 0)
		fail_msg("%s", why);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(target_free_port(port, sizeof(port)), 0);
	snprintf(T.ini, sizeof(T.ini), "%s/znstgt.ini", dir);
	snprintf(T.sock, sizeof(T.sock), "%s/control.sock", dir);
	snprintf(T.log, sizeof(T.log), "%s/znstgt.log", dir);
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 2\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\nlog_level = warn\ninclude = conf/*.ini\n", port);
	write_file(T.ini, text);
	snprintf(path, sizeof(path), "%s/conf", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/conf/zrwa.ini", dir);
	write_file(path,
		   "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
		   "[namespace 1]\nsize = 8M\nzone_size = 1M\nzone_capacity = 768K\n"
		   "max_active = 4\nzrwa_size = 64K\nzrwa_flush_granularity = 16K\n"
		   "zrwa_resources = 2\n");
	daemon_start(true);
	host_up();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128], why[256];
	int stopped = 0;

	host_down();
	if (T.pid && (stopped = target_stop(&T, why, sizeof(why))) != 0)
		target_show_log(&T, 15);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	if (stopped)
		fail_msg("%s", why);
	return 0;
}

/* ---- tests ---- */

static void test_identify(void **state)
{
	static struct nvme_zns_id_ns zns;

	assert_int_equal(nvmf_identify(&A, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_ZNS, &zns, NULL),
			 0);
	assert_int_equal(le16toh(zns.ozcs) & 2, 2);          /* ZRWASUP */
	assert_int_equal(le32toh(zns.numzrwa), 1);           /* 0's based: 2 */
	assert_int_equal(le16toh(zns.zrwafg), ZRWAFG);
	assert_int_equal(le16toh(zns.zrwasz), ZRWAS);
	assert_int_equal(zns.zrwacap & 1, 1);                /* explicit flush */
}

static void test_commands(void **state)
{
	/* Open with ZRWA Allocation; ZRWAV in the report. */
	assert_int_equal(open_zrwa(0), 0);
	expect_zone(0, NVME_ZNS_ZS_EXPL_OPEN, 0, true);
	/* ZRWAA: only to an Empty zone, never with Select All, only with
	 * Open / Set Zone Descriptor Extension. */
	assert_int_equal(open_zrwa(0), ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zms(0, NVME_ZNS_ZSA_OPEN | ZRWAA | 1u << 8), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zms(ZS, NVME_ZNS_ZSA_CLOSE | ZRWAA), ST_GEN(NVME_SC_INVALID_FIELD));
	/* Writes anywhere in the window, over each other. */
	assert_int_equal(wr(8, 4, 0x101), 0);
	assert_int_equal(wr(0, 2, 0x102), 0);
	assert_int_equal(wr(1, 2, 0x103), 0);
	expect_zone(0, NVME_ZNS_ZS_EXPL_OPEN, 0, true);
	expect_block(0, 0x102, 0);
	expect_block(1, 0x103, 0);
	expect_block(2, 0x103, 1);
	expect_block(3, 0, 0);
	expect_block(11, 0x101, 3);
	/* Past the Implicit Flush Range; Zone Append. */
	assert_int_equal(wr(2 * ZRWAS, 1, 0x104), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	struct nvme_sqe sqe;
	static uint8_t blk[LBA];
	sqe_init(&sqe, nvme_zns_cmd_append, 0);
	assert_int_equal(nvmf_cmd(&Q, &sqe, blk, LBA, NULL, 0, NULL),
			 ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	/* Explicit flush: the write pointer moves to the LBA after it. */
	assert_int_equal(zrwa_flush(2), ST_GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(zrwa_flush(ZRWAS), ST_ZNS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_int_equal(zrwa_flush(ZS + 3), ST_ZNS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zrwa_flush(3), 0);
	expect_zone(0, NVME_ZNS_ZS_EXPL_OPEN, 4, true);
	assert_int_equal(wr(3, 1, 0x105), ST_ZNS(NVME_SC_ZNS_INVALID_WRITE));
	/* Implicit flush: a write ending 6 past the window [4, 20) moves the
	 * write pointer up by two granules. */
	assert_int_equal(wr(20, 6, 0x106), 0);
	expect_zone(0, NVME_ZNS_ZS_EXPL_OPEN, 12, true);
	expect_block(25, 0x106, 5);
	/* Resources: the third ZRWA is refused. */
	assert_int_equal(open_zrwa(1), 0);
	assert_int_equal(open_zrwa(2), ST_ZNS(NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE));
	expect_zone(2, NVME_ZNS_ZS_EMPTY, 0, false);
	/* Finish keeps the window's data and releases the ZRWA; so does Reset. */
	assert_int_equal(wr(ZS + 5, 1, 0x107), 0);
	assert_int_equal(zms(ZS, NVME_ZNS_ZSA_FINISH), 0);
	expect_zone(1, NVME_ZNS_ZS_FULL, CAP, false);
	expect_block(ZS + 5, 0x107, 0);
	expect_block(ZS + 4, 0, 0);
	assert_int_equal(zms(ZS, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(open_zrwa(2), 0);
	assert_int_equal(zms(2 * ZS, NVME_ZNS_ZSA_RESET), 0);
	expect_zone(2, NVME_ZNS_ZS_EMPTY, 0, false);
}

/* kill -9, then a clean restart: zone 0 as test_commands left it. */
static void test_restart(void **state)
{
	assert_int_equal(wr(13, 2, 0x108), 0); /* in the window [12, 28) */
	target_kill(&T);
	host_down();
	daemon_start(false);
	host_up();
	expect_zone(0, NVME_ZNS_ZS_CLOSED, 12, true);
	expect_block(0, 0x102, 0);
	expect_block(2, 0x103, 1);
	expect_block(11, 0x101, 3);
	expect_block(13, 0x108, 0);
	expect_block(14, 0x108, 1);
	expect_block(25, 0x106, 5);
	expect_block(28, 0, 0);
	/* Still a ZRWA: writes in the window, a flush reopens it. */
	assert_int_equal(wr(12, 1, 0x109), 0);
	assert_int_equal(zrwa_flush(15), 0);
	expect_zone(0, NVME_ZNS_ZS_IMPL_OPEN, 16, true);
	char why[256];
	host_down();
	if (target_stop(&T, why, sizeof(why)))
		fail_msg("%s", why);
	daemon_start(false);
	host_up();
	expect_zone(0, NVME_ZNS_ZS_CLOSED, 16, true);
	expect_block(12, 0x109, 0);
	expect_block(25, 0x106, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_restart),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
