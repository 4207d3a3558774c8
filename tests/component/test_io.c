/*
 * NVM and ZNS I/O commands end to end through the core, on real namespaces
 * (ns.h backend in a temporary directory): data round trips, range and
 * length checks, Flush, Write Zeroes, Dataset Management, Zone Append
 * (ALBA in the CQE), Zone Management Send/Receive, a Reset whose durability
 * waits for another zone's write, and what happens to I/O queues when the
 * controller resets; reads whose data the namespace lends the transport.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "../lib/core_harness.h"
#include "fault_io.h"
#include "ns.h"
#include "ns_stats.h"
#include "subsys.h"

#define NQN "nqn.2024-01.io.znstgt:io"

#define DNR 0x4000u
#define GEN(sc) ((uint16_t)(DNR | (sc)))
#define CMD(sc) ((uint16_t)(DNR | 0x100u | (sc)))
#define MEDIA(sc) ((uint16_t)(DNR | 0x200u | (sc)))

#define BLK 4096u
#define ZONE_BLKS 256u                   /* 1 MiB zones */
#define ZNS_BLKS (16 * ZONE_BLKS)
#define CONV_BLKS 2048u
#define ZNS_NSID 1
#define CONV_NSID 2                      /* write cache on */

static struct target_config cfg;
static struct subsys_config subs[1];
static char dir[] = "/tmp/znstgt-test-io-XXXXXX";
static struct th_queue *admin, *io;
static uint16_t cntlid;

static void ns_cfg(struct ns_config *n, uint32_t nsid, bool zoned, uint64_t blks, bool cache)
{
	n->nsid = nsid;
	snprintf(n->path, sizeof(n->path), "%s/ns%u", dir, nsid);
	n->size = blks * BLK;
	n->lba_size = BLK;
	n->zoned = zoned;
	n->zone_size = ZONE_BLKS * BLK;
	n->zone_capacity = ZONE_BLKS * BLK;
	n->zone_append_max = 64 * 1024;
	n->cross_zone_read = true;
	n->write_cache = cache;
	n->journal_size = 1 << 20;
}

static int setup(void **state)
{
	char err[512];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.listeners[0].addr, sizeof(cfg.listeners[0].addr), "127.0.0.1");
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "4420");
	cfg.nr_listeners = 1;
	snprintf(subs[0].nqn, sizeof(subs[0].nqn), NQN);
	subs[0].allow_any_host = true;
	ns_cfg(&subs[0].ns[0], ZNS_NSID, true, ZNS_BLKS, false);
	ns_cfg(&subs[0].ns[1], CONV_NSID, false, CONV_BLKS, true);
	subs[0].nr_ns = 2;
	cfg.subsys = subs;
	cfg.nr_subsys = 1;
	if (subsys_registry_init(&cfg, true, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	th_start();
	admin = th_admin(NQN, 0, &cntlid);
	if (th_features(admin, true, NVME_FEAT_FID_NUM_QUEUES, 0x00010001, NULL, 0, NULL) != 0)
		return -1;
	io = th_io(NQN, cntlid, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	th_queue_close(io);
	th_queue_close(admin);
	subsys_registry_destroy();
	th_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct nvme_sqe rw(uint8_t opcode, uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	struct nvme_sqe s = th_sqe(opcode, nsid);

	s.cdw10 = htole32((uint32_t)slba);
	s.cdw11 = htole32((uint32_t)(slba >> 32));
	s.cdw12 = htole32(nlb - 1);
	return s;
}

static uint16_t do_rw(uint8_t opcode, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
		      uint64_t *result)
{
	struct nvme_sqe s = rw(opcode, nsid, slba, nlb);

	return th_exec(io, &s, buf, nlb * BLK, result);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 12));
}

static bool is_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static void test_read_write(void **state)
{
	static uint8_t out[8 * BLK], in[8 * BLK];
	uint64_t r;

	(void)state;
	fill(out, sizeof(out), 1);
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 10, 8, out, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 10, 8, in, &r), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(r, 0);
	/* Never written: zeros. The last block is readable. */
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, CONV_BLKS - 1, 1, in, NULL), 0);
	assert_true(is_zero(in, BLK));
	/* FUA write (cdw12 bit 30) on the cached namespace. */
	struct nvme_sqe s = rw(nvme_cmd_write, CONV_NSID, 100, 2);
	s.cdw12 |= htole32(1u << 30);
	fill(out, 2 * BLK, 9);
	assert_int_equal(th_exec(io, &s, out, 2 * BLK, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 100, 2, in, NULL), 0);
	assert_memory_equal(in, out, 2 * BLK);
	/* A write bigger than in-capsule data (R2T path for a transport). */
	static uint8_t big[64 * BLK], big_in[64 * BLK];
	fill(big, sizeof(big), 3);
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 500, 64, big, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 500, 64, big_in, NULL), 0);
	assert_memory_equal(big_in, big, sizeof(big));
}

static void test_bad_io(void **state)
{
	static uint8_t buf[4 * BLK];
	struct nvme_sqe s;

	(void)state;
	/* Past the end, and a 64-bit SLBA that wraps. */
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, CONV_BLKS - 1, 2, buf, NULL),
			 GEN(NVME_SC_LBA_RANGE));
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, CONV_BLKS, 1, buf, NULL),
			 GEN(NVME_SC_LBA_RANGE));
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, ~0ull, 2, buf, NULL), GEN(NVME_SC_LBA_RANGE));
	/* Transfer length other than NLB blocks. */
	s = rw(nvme_cmd_write, CONV_NSID, 0, 2);
	assert_int_equal(th_exec(io, &s, buf, BLK, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	s = rw(nvme_cmd_read, CONV_NSID, 0, 1);
	assert_int_equal(th_exec(io, &s, buf, 2 * BLK, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	/* Unknown namespace, unknown opcode, ZNS opcode on a conventional one. */
	assert_int_equal(do_rw(nvme_cmd_read, 5, 0, 1, buf, NULL), GEN(NVME_SC_INVALID_NS));
	assert_int_equal(do_rw(nvme_cmd_read, 0, 0, 1, buf, NULL), GEN(NVME_SC_INVALID_NS));
	s = rw(nvme_cmd_compare, CONV_NSID, 0, 1);
	assert_int_equal(th_exec(io, &s, buf, BLK, NULL), GEN(NVME_SC_INVALID_OPCODE));
	s = rw(nvme_zns_cmd_append, CONV_NSID, 0, 1);
	assert_int_equal(th_exec(io, &s, buf, BLK, NULL), GEN(NVME_SC_INVALID_OPCODE));
	/* Admin commands do not exist on an I/O queue. */
	s = th_sqe(nvme_admin_identify, CONV_NSID);
	s.cdw10 = htole32(1);
	assert_int_equal(th_exec(io, &s, buf, BLK, NULL), GEN(NVME_SC_INVALID_OPCODE));
}

static void test_flush_zeroes_dsm(void **state)
{
	static uint8_t out[4 * BLK], in[4 * BLK];
	struct nvme_dsm_range rg[2];
	struct nvme_sqe s;

	(void)state;
	s = th_sqe(nvme_cmd_flush, CONV_NSID);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	s = th_sqe(nvme_cmd_flush, NVME_NSID_ALL);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	s = th_sqe(nvme_cmd_flush, 7);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_NS));

	/* Write Zeroes: no data, the blocks read back zero. */
	fill(out, sizeof(out), 5);
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 200, 4, out, NULL), 0);
	s = rw(nvme_cmd_write_zeroes, CONV_NSID, 201, 2);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 200, 4, in, NULL), 0);
	assert_memory_equal(in, out, BLK);
	assert_true(is_zero(in + BLK, 2 * BLK));
	assert_memory_equal(in + 3 * BLK, out + 3 * BLK, BLK);
	assert_int_equal(th_exec(io, &s, out, BLK, NULL), GEN(NVME_SC_SGL_INVALID_DATA));

	/* Dataset Management: deallocated blocks read as zero (DLFEAT). */
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 300, 4, out, NULL), 0);
	memset(rg, 0, sizeof(rg));
	rg[0].slba = htole64(300);
	rg[0].nlb = htole32(1);
	rg[1].slba = htole64(303);
	rg[1].nlb = htole32(1);
	s = th_sqe(nvme_cmd_dsm, CONV_NSID);
	s.cdw10 = htole32(1); /* two ranges */
	s.cdw11 = htole32(NVME_DSMGMT_AD);
	assert_int_equal(th_exec(io, &s, rg, sizeof(rg), NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 300, 4, in, NULL), 0);
	assert_true(is_zero(in, BLK));
	assert_memory_equal(in + BLK, out + BLK, 2 * BLK);
	assert_true(is_zero(in + 3 * BLK, BLK));
	/* Without AD it is a hint; a range past the end is out of range; the
	 * buffer must hold exactly the ranges. */
	s.cdw11 = 0;
	assert_int_equal(th_exec(io, &s, rg, sizeof(rg), NULL), 0);
	s.cdw11 = htole32(NVME_DSMGMT_AD);
	rg[1].slba = htole64(CONV_BLKS - 1);
	rg[1].nlb = htole32(2);
	assert_int_equal(th_exec(io, &s, rg, sizeof(rg), NULL), GEN(NVME_SC_LBA_RANGE));
	assert_int_equal(th_exec(io, &s, rg, sizeof(rg[0]), NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	/* A whole page of ranges with NR 1, as Linux sends it: only the
	 * first counts. */
	{
		static struct nvme_dsm_range page[256];

		fill(out, BLK, 21);
		assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 400, 1, out, NULL), 0);
		assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 401, 1, out, NULL), 0);
		memset(page, 0, sizeof(page));
		page[0].slba = htole64(400);
		page[0].nlb = htole32(1);
		page[1].slba = htole64(401);
		page[1].nlb = htole32(1);
		s.cdw10 = 0;
		assert_int_equal(th_exec(io, &s, page, sizeof(page), NULL), 0);
		assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 400, 2, in, NULL), 0);
		assert_true(is_zero(in, BLK));
		assert_memory_equal(in + BLK, out, BLK);
	}
}

/* One zone's descriptor from a one-zone Report Zones with Partial set. */
static void report_zone(uint64_t zslba, struct nvme_zns_desc *d, uint64_t *nr)
{
	uint8_t buf[128];
	struct nvme_sqe s = th_sqe(nvme_zns_cmd_mgmt_recv, ZNS_NSID);

	s.cdw10 = htole32((uint32_t)zslba);
	s.cdw12 = htole32(sizeof(buf) / 4 - 1);
	s.cdw13 = htole32(1u << 16); /* all zones, partial report */
	assert_int_equal(th_exec(io, &s, buf, sizeof(buf), NULL), 0);
	memcpy(nr, buf, 8);
	*nr = le64toh(*nr);
	memcpy(d, buf + 64, sizeof(*d));
}

static void test_zoned(void **state)
{
	static uint8_t out[32 * BLK], in[16 * BLK];
	struct nvme_zns_desc d;
	struct nvme_sqe s;
	uint64_t r, nr;

	(void)state;
	/* Sequential writes at the write pointer of zone 0. */
	fill(out, sizeof(out), 11);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, 0, 4, out, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, 4, 4, out + 4 * BLK, NULL), 0);
	report_zone(0, &d, &nr);
	assert_int_equal(nr, 1);
	assert_int_equal(d.zt, NVME_ZONE_TYPE_SEQWRITE_REQ);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_IMPL_OPEN);
	assert_int_equal(le64toh(d.wp), 8);
	assert_int_equal(le64toh(d.zcap), ZONE_BLKS);
	/* Not at the write pointer: Zone Invalid Write. */
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, 20, 1, out, NULL),
			 CMD(NVME_SC_ZNS_INVALID_WRITE));
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, 0, 8, in, NULL), 0);
	assert_memory_equal(in, out, 8 * BLK);

	/* Zone Append to zone 2: the CQE says where each one went. */
	assert_int_equal(do_rw(nvme_zns_cmd_append, ZNS_NSID, 2 * ZONE_BLKS, 2, out, &r), 0);
	assert_int_equal(r, 2 * ZONE_BLKS);
	assert_int_equal(do_rw(nvme_zns_cmd_append, ZNS_NSID, 2 * ZONE_BLKS, 3, out, &r), 0);
	assert_int_equal(r, 2 * ZONE_BLKS + 2);
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, 2 * ZONE_BLKS + 2, 3, in, NULL), 0);
	assert_memory_equal(in, out, 3 * BLK);
	/* Larger than the Zone Append Size Limit (64 KiB). */
	assert_int_equal(do_rw(nvme_zns_cmd_append, ZNS_NSID, 2 * ZONE_BLKS, 32, out, NULL),
			 GEN(NVME_SC_INVALID_FIELD));

	/* Finish zone 2, then reset it: FULL, then EMPTY at its start. */
	s = rw(nvme_zns_cmd_mgmt_send, ZNS_NSID, 2 * ZONE_BLKS, 1);
	s.cdw12 = 0;
	s.cdw13 = htole32(NVME_ZNS_ZSA_FINISH);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	report_zone(2 * ZONE_BLKS, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	s.cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	report_zone(2 * ZONE_BLKS, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
	assert_int_equal(le64toh(d.wp), 2 * ZONE_BLKS);

	/* Bad Zone Management Send: unknown action, set-extension without
	 * extensions, data where none belongs, SLBA past the end. */
	s.cdw13 = htole32(0x07);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_FIELD));
	s.cdw13 = htole32(NVME_ZNS_ZSA_SET_DESC_EXT);
	assert_int_equal(th_exec(io, &s, out, 64, NULL), GEN(NVME_SC_INVALID_FIELD));
	s.cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	assert_int_equal(th_exec(io, &s, out, 64, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	s = rw(nvme_zns_cmd_mgmt_send, ZNS_NSID, ZNS_BLKS, 1);
	s.cdw12 = 0;
	s.cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), GEN(NVME_SC_LBA_RANGE));

	/* Bad Zone Management Receive: buffer smaller than the header, NUMD
	 * not matching the buffer, extended report without extensions. */
	s = th_sqe(nvme_zns_cmd_mgmt_recv, ZNS_NSID);
	s.cdw12 = htole32(32 / 4 - 1);
	assert_int_equal(th_exec(io, &s, in, 32, NULL), GEN(NVME_SC_INVALID_FIELD));
	s.cdw12 = htole32(128 / 4 - 1);
	assert_int_equal(th_exec(io, &s, in, 256, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	s.cdw13 = htole32(NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES);
	assert_int_equal(th_exec(io, &s, in, 128, NULL), GEN(NVME_SC_INVALID_FIELD));

	/* Select All reset: every zone empty again. */
	s = th_sqe(nvme_zns_cmd_mgmt_send, ZNS_NSID);
	s.cdw13 = htole32(NVME_ZNS_ZSA_RESET | 1u << 8);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
	report_zone(0, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
}

static void test_full_report(void **state)
{
	size_t len = 64 + 64 * 16;
	uint8_t *buf = malloc(len);
	struct nvme_sqe s = th_sqe(nvme_zns_cmd_mgmt_recv, ZNS_NSID);
	uint64_t nr;

	(void)state;
	assert_non_null(buf);
	s.cdw12 = htole32((uint32_t)(len / 4 - 1));
	s.cdw13 = htole32(1u << 16);
	assert_int_equal(th_exec(io, &s, buf, (uint32_t)len, NULL), 0);
	memcpy(&nr, buf, 8);
	assert_int_equal(le64toh(nr), 16);
	for (int i = 0; i < 16; i++) {
		struct nvme_zns_desc d;

		memcpy(&d, buf + 64 + 64 * i, sizeof(d));
		assert_int_equal(le64toh(d.zslba), (uint64_t)i * ZONE_BLKS);
	}
	free(buf);
}

/*
 * Commands with PRPs (PSDT 00b) on a transport that takes them: the core
 * finds each command's data length from its own fields (NLB, NUMD, NR,
 * the structure size), since no SGL says it. The harness aborts if the
 * length differs from what the command really moves.
 */
static void test_prp_data_lengths(void **state)
{
	static uint8_t out[8 * BLK], in[8 * BLK];
	struct nvme_id_ctrl id;
	struct nvme_zns_desc d;
	struct nvme_dsm_range range;
	struct nvme_sqe s;
	uint8_t smart[512];
	uint64_t r, nr, ts = 0;

	(void)state;
	th_use_prp(true);
	fill(out, sizeof(out), 21);
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 1200, 8, out, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 1200, 8, in, NULL), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* Zone Append (NLB), Zone Management Receive (NUMD). */
	assert_int_equal(do_rw(nvme_zns_cmd_append, ZNS_NSID, 9 * ZONE_BLKS, 3, out, &r), 0);
	assert_int_equal(r, 9 * ZONE_BLKS);
	report_zone(9 * ZONE_BLKS, &d, &nr);
	assert_int_equal(le64toh(d.wp), 9 * ZONE_BLKS + 3);
	/* Dataset Management: NR ranges of 16 bytes. */
	memset(&range, 0, sizeof(range));
	range.slba = htole64(1200);
	range.nlb = htole32(8);
	s = th_sqe(nvme_cmd_dsm, CONV_NSID);
	s.cdw11 = htole32(NVME_DSMGMT_AD);
	assert_int_equal(th_exec(io, &s, &range, sizeof(range), NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 1200, 8, in, NULL), 0);
	assert_true(is_zero(in, sizeof(in)));
	/* Admin: Identify (4 KiB), Get Log Page (NUMD), features with data. */
	assert_int_equal(th_identify(admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id), 0);
	assert_int_equal(le16toh(id.cntlid), cntlid);
	assert_int_equal(th_get_log(admin, NVME_LOG_LID_SMART, NVME_NSID_ALL, 0, 0, false, smart,
				    sizeof(smart)), 0);
	assert_int_equal(th_features(admin, false, NVME_FEAT_FID_TIMESTAMP, 0, &ts, sizeof(ts), NULL),
			 0);
	th_use_prp(false);
}

/* The next call at points fails with kind. */
static void fail_next(uint32_t points, enum fault_kind kind)
{
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = points, .kinds = FAULT_KIND(kind),
					   .one_in = 1, .count = 1 });
}

/* File errors as the host sees them: Capacity Exceeded for a full file
 * system (no ALBA, write pointer unchanged), Write Fault for a failed
 * write-through sync, Unrecovered Read Error for a failed read. */
static void test_io_error_status(void **state)
{
	static uint8_t out[4 * BLK], in[4 * BLK];
	struct nvme_zns_desc d;
	uint64_t r = 0, nr, zslba = 12 * ZONE_BLKS;

	(void)state;
	fill(out, sizeof(out), 77);
	fail_next(FAULT_DATA_WRITE, FAULT_ENOSPC);
	assert_int_equal(do_rw(nvme_zns_cmd_append, ZNS_NSID, zslba, 4, out, &r),
			 GEN(NVME_SC_CAP_EXCEEDED));
	assert_int_equal(r, 0);
	report_zone(zslba, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
	assert_int_equal(le64toh(d.wp), zslba);

	fail_next(FAULT_DATA_SYNC, FAULT_EIO);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, zslba, 4, out, NULL),
			 MEDIA(NVME_SC_WRITE_FAULT));
	fault_io_disarm();
	struct nvme_sqe s = th_sqe(nvme_cmd_flush, ZNS_NSID);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);

	fail_next(FAULT_DATA_READ, FAULT_EIO);
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, zslba, 4, in, NULL),
			 MEDIA(NVME_SC_READ_ERROR));
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, zslba, 4, in, NULL), 0);
	assert_memory_equal(in, out, sizeof(out));
	/* Spent, but armed until disarmed: reads would all avoid the page
	 * cache paths (fault_io_on()) in the tests after this one. */
	fault_io_disarm();
}

/* Zone Management Send Reset of one zone, not waited for. */
static struct th_cmd *submit_reset(uint32_t zone)
{
	struct nvme_sqe s = rw(nvme_zns_cmd_mgmt_send, ZNS_NSID, (uint64_t)zone * ZONE_BLKS, 1);

	s.cdw12 = 0;
	s.cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	return th_submit(io, &s, NULL, 0, false);
}

/*
 * A Reset is durable when it completes, so it waits for the group commit
 * that journals it. A sync with Flush semantics (ns_sync) would also wait
 * for a write that ended ahead of an older one in the same zone until that
 * older one ends too, and the older write's end runs on the worker's loop:
 * Resets that waited for such a sync on I/O threads could hold every I/O
 * thread while the write they waited for needed one - or sat, finished, in
 * the worker's queue of completions not yet announced - and the target
 * stopped answering (seen as 32 Zone Appends unanswered under a load with
 * resets). Here another queue's older append to zone 5 is held in flight
 * while a younger one ended; two Resets (as many as there are I/O threads)
 * must complete without waiting for it, and a write to the other namespace
 * must be served meanwhile.
 */
static void test_reset_holds_no_io_thread(void **state)
{
	static uint8_t out[BLK];
	struct subsys *sub = subsys_find(NQN);
	struct ns *ns = subsys_ns(sub, ZNS_NSID);
	struct iovec v = { out, BLK };
	struct ns_write older, younger;
	struct th_cmd *reset[2];
	struct nvme_zns_desc d;
	uint64_t nr, z5 = 5 * ZONE_BLKS;

	(void)state;
	fill(out, sizeof(out), 31);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, 6 * ZONE_BLKS, 1, out, NULL), 0);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, 7 * ZONE_BLKS, 1, out, NULL), 0);
	/* Zone 5: the younger append ended, the older one is still in flight. */
	memset(&older, 0, sizeof(older));
	memset(&younger, 0, sizeof(younger));
	assert_int_equal(ns_write_begin(ns, &older, NS_ZONE_APPEND, z5, 1), 0);
	assert_int_equal(ns_write_begin(ns, &younger, NS_ZONE_APPEND, z5, 1), 0);
	assert_int_equal(ns_write_data(ns, &younger, &v, 1), 0);
	ns_write_end(ns, &younger, 0);

	uint64_t commits = ns_stats(ns)->commits;
	reset[0] = submit_reset(6);
	reset[1] = submit_reset(7);
	uint16_t served = do_rw(nvme_cmd_write, CONV_NSID, 40, 1, out, NULL);
	bool done = th_wait(reset[0], TH_WAIT_MS) && th_wait(reset[1], TH_WAIT_MS);
	/* End the older append whatever happened, so nothing stays blocked. */
	assert_int_equal(ns_write_data(ns, &older, &v, 1), 0);
	ns_write_end(ns, &older, 0);
	assert_int_equal(served, 0);
	assert_true(done); /* with zone 5's older append still in flight */
	assert_true(ns_stats(ns)->commits > commits); /* they waited for a commit */
	assert_int_equal(th_finish(reset[0], NULL, NULL), 0);
	assert_int_equal(th_finish(reset[1], NULL, NULL), 0);
	report_zone(6 * ZONE_BLKS, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
	report_zone(7 * ZONE_BLKS, &d, &nr);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
	report_zone(z5, &d, &nr);
	assert_int_equal(le64toh(d.wp), z5 + 2);
	subsys_put(sub);
}

static void test_reset_drops_io(void **state)
{
	static uint8_t buf[BLK];

	(void)state;
	/* A controller reset (CC.EN 1 -> 0) takes the I/O queue away; after
	 * re-enabling, a new one works. */
	assert_int_equal(th_prop_set(admin, NVME_REG_CC, 0), 0);
	assert_true(th_queue_wait_freed(io, TH_WAIT_MS));
	th_queue_close(io);
	assert_int_equal(th_prop_set(admin, NVME_REG_CC, th_cc_enable()), 0);
	io = th_io(NQN, cntlid, 1);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 0, 1, buf, NULL), 0);
}

static void zone_action(uint64_t zslba, uint8_t zsa)
{
	struct nvme_sqe s = rw(nvme_zns_cmd_mgmt_send, ZNS_NSID, zslba, 1);

	s.cdw12 = 0;
	s.cdw13 = htole32(zsa);
	assert_int_equal(th_exec(io, &s, NULL, 0, NULL), 0);
}

/*
 * A transport that may borrow read data (TCP without data digest) gets the
 * page cache's own bytes for written, cached blocks, and the data is the
 * same as a copied read's; it gets a copy wherever the file does not hold
 * what the read returns: a zone at or above its write pointer - also after
 * a Reset, which keeps the old blocks in the file.
 */
static void test_borrowed_reads(void **state)
{
	static uint8_t out[32 * BLK], in[32 * BLK];
	const uint64_t zslba = 10 * ZONE_BLKS;
	unsigned lent;

	(void)state;
	th_borrow_reads(true);
	fill(out, sizeof(out), 21);
	/* Conventional: written just now, so cached. */
	assert_int_equal(do_rw(nvme_cmd_write, CONV_NSID, 1024, 32, out, NULL), 0);
	lent = th_reads_borrowed();
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 1026, 8, in, NULL), 0);
	assert_memory_equal(in, out + 2 * BLK, 8 * BLK);
	assert_int_equal(th_reads_borrowed(), lent + 1);

	/* Zoned, below the write pointer: lent. */
	zone_action(zslba, NVME_ZNS_ZSA_RESET);
	assert_int_equal(do_rw(nvme_cmd_write, ZNS_NSID, zslba, 32, out, NULL), 0);
	lent = th_reads_borrowed();
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, zslba + 3, 16, in, NULL), 0);
	assert_memory_equal(in, out + 3 * BLK, 16 * BLK);
	assert_int_equal(th_reads_borrowed(), lent + 1);
	/* Across the write pointer: copied, zeros above it. */
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, zslba + 30, 4, in, NULL), 0);
	assert_memory_equal(in, out + 30 * BLK, 2 * BLK);
	assert_true(is_zero(in + 2 * BLK, 2 * BLK));
	assert_int_equal(th_reads_borrowed(), lent + 1);
	/* Reset: the file and the page cache still hold the old blocks, the
	 * zone reads zeros. */
	zone_action(zslba, NVME_ZNS_ZSA_RESET);
	assert_int_equal(do_rw(nvme_cmd_read, ZNS_NSID, zslba, 8, in, NULL), 0);
	assert_true(is_zero(in, 8 * BLK));
	assert_int_equal(th_reads_borrowed(), lent + 1);

	/* Not allowed to borrow: the same data, copied. */
	th_borrow_reads(false);
	assert_int_equal(do_rw(nvme_cmd_read, CONV_NSID, 1026, 8, in, NULL), 0);
	assert_memory_equal(in, out + 2 * BLK, 8 * BLK);
	assert_int_equal(th_reads_borrowed(), lent + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_bad_io),
		cmocka_unit_test(test_flush_zeroes_dsm),
		cmocka_unit_test(test_zoned),
		cmocka_unit_test(test_full_report),
		cmocka_unit_test(test_prp_data_lengths),
		cmocka_unit_test(test_io_error_status),
		cmocka_unit_test(test_reset_holds_no_io_thread),
		cmocka_unit_test(test_reset_drops_io),
		cmocka_unit_test(test_borrowed_reads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
