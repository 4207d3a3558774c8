/*
 * Full file system and I/O errors on a namespace, through the fault-injecting
 * I/O layer (fault_io.h): the status the host gets for each cause, write
 * pointers that stay where they were when a write fails (alone, filling its
 * zone, or among concurrent Zone Appends), a failing group commit (data
 * fdatasync, journal write or sync) that fails its waiters and acknowledges
 * nothing, and service that comes back without a restart once the fault is
 * gone. Each case checks the state again after closing or crashing and
 * reopening.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "blockstore.h"
#include "config.h"
#include "fault_io.h"
#include "ns.h"
#include "../lib/dirty_pages.h"
#include "../lib/ns_fixture.h"
#include "nvme_wire.h"

#define NZ 8
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define BS 4096u

#define ST_CAP_EXCEEDED (NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_CAP_EXCEEDED) | NVME_STATUS_DNR)
#define ST_WRITE_FAULT (NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) | NVME_STATUS_DNR)
#define ST_READ_ERROR (NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_READ_ERROR) | NVME_STATUS_DNR)

static int setup_cfg(void **state, bool zoned)
{
	struct ns_fixture *f = ns_fixture_new("ioerr", NZ, ZLBAS, zoned);
	ns_fixture_open(f, false);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_cfg(state, true); }

/* One open and one active zone at most. */
static int setup_limits(void **state)
{
	setup_cfg(state, true);
	struct ns_fixture *f = *state;
	ns_close(f->ns);
	f->cfg.max_open = f->cfg.max_active = 1;
	ns_fixture_open(f, true);
	return 0;
}
static int setup_conventional(void **state) { return setup_cfg(state, false); }

static int teardown(void **state)
{
	struct ns_fixture *f = *state;
	fault_io_disarm();
	ns_fixture_free(f);
	return 0;
}

static void reopen(struct ns_fixture *f, bool crash)
{
	fault_io_disarm();
	if (crash)
		ns_abandon(f->ns);
	else
		ns_close(f->ns);
	ns_fixture_open(f, false);
}

/* The next `count` calls at `points` fail with `kind`. */
static void fail_next(uint32_t points, enum fault_kind kind, uint32_t count)
{
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = points,
					   .kinds = FAULT_KIND(kind), .one_in = 1, .count = count });
}

static uint8_t *pattern(uint32_t nlb, uint8_t fill)
{
	uint8_t *b = malloc((size_t)nlb * BS);
	memset(b, fill, (size_t)nlb * BS);
	return b;
}

/* One whole write (begin, data, end); returns the end status. */
static uint16_t do_write(struct ns *ns, enum ns_write_kind kind, uint64_t slba, uint32_t nlb,
			 uint8_t fill, uint64_t *alba)
{
	uint8_t *b = pattern(nlb, fill);
	struct iovec iov = { b, (size_t)nlb * BS };
	struct ns_write w;
	uint16_t st = ns_write_begin(ns, &w, kind, slba, nlb);
	assert_int_equal(st, 0);
	st = ns_write_data(ns, &w, kind == NS_WRITE_ZEROES ? NULL : &iov, 1);
	ns_write_end(ns, &w, st);
	if (alba)
		*alba = w.slba;
	free(b);
	return st;
}

static struct nvme_zns_desc zone_desc(struct ns *ns, uint32_t zone)
{
	uint8_t buf[128];
	assert_int_equal(ns_zone_report(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZRA_REPORT_ZONES, 0,
					true, buf, sizeof(buf)), 0);
	struct nvme_zns_desc d;
	memcpy(&d, buf + 64, sizeof(d));
	return d;
}

static void expect_zone(struct ns *ns, uint32_t zone, uint8_t state, uint64_t wp_off)
{
	struct nvme_zns_desc d = zone_desc(ns, zone);
	if (d.zs >> 4 != state || le64toh(d.wp) != (uint64_t)zone * ZLBAS + wp_off)
		fail_msg("zone %u: state %#x wp +%llu, want %#x +%llu", zone, d.zs >> 4,
			 (unsigned long long)(le64toh(d.wp) - (uint64_t)zone * ZLBAS), state,
			 (unsigned long long)wp_off);
}

/* Every block of [slba, slba + nlb) holds `fill` bytes. */
static void expect_blocks(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	uint8_t *b = malloc((size_t)nlb * BS);
	struct iovec iov = { b, (size_t)nlb * BS };
	assert_int_equal(ns_read(ns, slba, nlb, &iov, 1), 0);
	for (size_t i = 0; i < (size_t)nlb * BS; i++)
		if (b[i] != fill)
			fail_msg("LBA %llu byte %zu: %#x, want %#x",
				 (unsigned long long)(slba + i / BS), i % BS, b[i], fill);
	free(b);
}

/* ---- a write that fails alone ---- */

/* ENOSPC: Capacity Exceeded, and the zone is as it was (Empty, wp at the
 * start); once there is room the same write succeeds. */
static void test_enospc_keeps_wp(void **state)
{
	struct ns_fixture *f = *state;
	fail_next(FAULT_DATA_WRITE, FAULT_ENOSPC, 1);
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0xa1, NULL), ST_CAP_EXCEEDED);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_EMPTY, 0);
	assert_int_equal(fault_io_injected(), 1);
	/* Nothing to make durable, and nothing durable changed. */
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_EMPTY, 0);

	/* Space again: the write lands where the failed one would have. */
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0xa2, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_IMPL_OPEN, 4);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
	expect_blocks(f->ns, 0, 4, 0xa2);
}

/* A torn write (part of the data landed, then EIO): Write Fault; the zone
 * keeps its write pointer and the data below it, the torn blocks read as
 * zeros, and the next write goes where the failed one was to go. */
static void test_torn_write_keeps_wp(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS, 4, 0xb1, NULL), 0);
	fail_next(FAULT_DATA_WRITE, FAULT_TORN, 1);
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS + 4, 8, 0xb2, NULL), ST_WRITE_FAULT);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_IMPL_OPEN, 4);
	fault_io_disarm();
	expect_blocks(f->ns, ZLBAS + 4, 8, 0);
	uint64_t alba;
	assert_int_equal(do_write(f->ns, NS_ZONE_APPEND, ZLBAS, 2, 0xb3, &alba), 0);
	assert_int_equal(alba, ZLBAS + 4);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, false);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 6);
	expect_blocks(f->ns, ZLBAS, 4, 0xb1);
	expect_blocks(f->ns, ZLBAS + 4, 2, 0xb3);
}

/* The write that would fill the zone fails: not Full, open again at the
 * old write pointer, explicitly open if it was. Write Zeroes alike. */
static void test_failed_fill_reopens(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(ns_zone_mgmt_send(f->ns, 2 * ZLBAS, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 2 * ZLBAS, 12, 0xc1, NULL), 0);
	fail_next(FAULT_DATA_WRITE, FAULT_EIO, 1);
	assert_int_equal(do_write(f->ns, NS_WRITE, 2 * ZLBAS + 12, 4, 0xc2, NULL), ST_WRITE_FAULT);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_EXPL_OPEN, 12);

	assert_int_equal(do_write(f->ns, NS_WRITE, 3 * ZLBAS, 12, 0xc3, NULL), 0);
	fail_next(FAULT_DATA_WRITE, FAULT_ENOSPC, 1);
	assert_int_equal(do_write(f->ns, NS_WRITE_ZEROES, 3 * ZLBAS + 12, 4, 0, NULL),
			 ST_CAP_EXCEEDED);
	expect_zone(f->ns, 3, NVME_ZNS_ZS_IMPL_OPEN, 12);
	fault_io_disarm();
	assert_int_equal(do_write(f->ns, NS_WRITE, 3 * ZLBAS + 12, 4, 0xc4, NULL), 0);
	expect_zone(f->ns, 3, NVME_ZNS_ZS_FULL, ZLBAS);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 12);
	expect_zone(f->ns, 3, NVME_ZNS_ZS_FULL, ZLBAS);
	expect_blocks(f->ns, 3 * ZLBAS + 12, 4, 0xc4);
}

/* Reads: EIO is Unrecovered Read Error; the data is there once it clears. */
static void test_read_error(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 2, 0xd1, NULL), 0);
	uint8_t b[2 * BS];
	struct iovec iov = { b, sizeof(b) };
	fail_next(FAULT_DATA_READ, FAULT_EIO, 1);
	uint16_t st = 0;
	/* Armed, reads always reach the file (never served from the cache). */
	assert_false(ns_read_cached(f->ns, 0, 2, &iov, 1, &st));
	assert_int_equal(ns_read(f->ns, 0, 2, &iov, 1), ST_READ_ERROR);
	expect_blocks(f->ns, 0, 2, 0xd1);
	/* A short read is carried on, not an error. */
	fail_next(FAULT_DATA_READ, FAULT_SHORT, 1);
	expect_blocks(f->ns, 0, 2, 0xd1);
}

/* On a conventional namespace ENOSPC is Capacity Exceeded as well, and the
 * blocks the failed write was to replace are not touched. */
static void test_conventional_enospc(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 10, 4, 0xe1, NULL), 0);
	fail_next(FAULT_DATA_WRITE, FAULT_ENOSPC, 1);
	assert_int_equal(do_write(f->ns, NS_WRITE, 10, 4, 0xe2, NULL), ST_CAP_EXCEEDED);
	fault_io_disarm();
	expect_blocks(f->ns, 10, 4, 0xe1);
	assert_int_equal(do_write(f->ns, NS_WRITE, 10, 4, 0xe3, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, false);
	expect_blocks(f->ns, 10, 4, 0xe3);
}

/* ---- concurrent appends, one failing ---- */

struct append {
	struct ns_write w;
	uint8_t *buf;
	uint16_t st;
};

static void append_begin(struct ns_fixture *f, struct append *a, uint32_t zone, uint32_t nlb,
			 uint8_t fill)
{
	a->buf = pattern(nlb, fill);
	assert_int_equal(ns_write_begin(f->ns, &a->w, NS_ZONE_APPEND, (uint64_t)zone * ZLBAS, nlb), 0);
}

/* Appends of 3, 4 and 5 blocks to zone, reserved in that order. */
static void three_appends(struct ns_fixture *f, uint32_t zone, struct append *a, struct append *b,
			  struct append *c, uint8_t fill)
{
	append_begin(f, a, zone, 3, fill);
	append_begin(f, b, zone, 4, (uint8_t)(fill + 1));
	append_begin(f, c, zone, 5, (uint8_t)(fill + 2));
	assert_int_equal(a->w.slba, zone * ZLBAS);
	assert_int_equal(b->w.slba, zone * ZLBAS + 3);
	assert_int_equal(c->w.slba, zone * ZLBAS + 7);
}

static void append_data(struct ns_fixture *f, struct append *a, bool fails)
{
	struct iovec iov = { a->buf, (size_t)a->w.nlb * BS };
	if (fails)
		fail_next(FAULT_DATA_WRITE, FAULT_TORN, 1);
	a->st = ns_write_data(f->ns, &a->w, &iov, 1);
	fault_io_disarm();
	free(a->buf);
}

/*
 * Three appends reserved in order a, b, c; b's data fails; they end c, b, a.
 * c already holds LBAs above b, so b's range cannot be given back: it reads
 * as zeros and counts as written, b's host gets Write Fault, a and c keep
 * their data at their LBAs, and the written prefix covers b's range only
 * after it was zeroed and b ended.
 */
static void test_append_fails_between_others(void **state)
{
	struct ns_fixture *f = *state;
	struct append a, b, c;
	three_appends(f, 4, &a, &b, &c, 0x11);
	append_data(f, &a, false);
	append_data(f, &b, true);
	append_data(f, &c, false);
	assert_int_equal(b.st, ST_WRITE_FAULT);
	assert_int_equal(b.w.failed, NS_WRITE_KEPT);
	ns_write_end(f->ns, &c.w, c.st);
	assert_int_equal(c.st, 0);
	ns_write_end(f->ns, &b.w, b.st);
	assert_int_equal(b.st, ST_WRITE_FAULT);
	/* a is still in flight: the reservation stands, b's range is zeros. */
	expect_zone(f->ns, 4, NVME_ZNS_ZS_IMPL_OPEN, 12);
	expect_blocks(f->ns, 4 * ZLBAS + 3, 4, 0);
	ns_write_end(f->ns, &a.w, a.st);
	assert_int_equal(a.st, 0);
	expect_zone(f->ns, 4, NVME_ZNS_ZS_IMPL_OPEN, 12);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 4, NVME_ZNS_ZS_CLOSED, 12);
	expect_blocks(f->ns, 4 * ZLBAS, 3, 0x11);
	expect_blocks(f->ns, 4 * ZLBAS + 3, 4, 0);
	expect_blocks(f->ns, 4 * ZLBAS + 7, 5, 0x13);
}

/*
 * As above, but zeroing b's range fails too (the crash test found this
 * double fault): the range still counts as written - a and c keep their
 * data and LBAs, the written prefix passes b once it ended, also after a
 * crash - and holds what part of b's data landed over what it held before
 * (here a hole: zeros). No acknowledged block is touched.
 */
static void test_kept_range_zeroing_fails(void **state)
{
	struct ns_fixture *f = *state;
	struct append a, b, c;
	three_appends(f, 4, &a, &b, &c, 0x21);
	append_data(f, &a, false);
	append_data(f, &c, false);
	struct iovec iov = { b.buf, (size_t)b.w.nlb * BS };
	fail_next(FAULT_DATA_WRITE, FAULT_TORN, 2); /* the data, then the zeroing */
	b.st = ns_write_data(f->ns, &b.w, &iov, 1);
	assert_int_equal(fault_io_injected(), 2);
	fault_io_disarm();
	free(b.buf);
	assert_int_equal(b.st, ST_WRITE_FAULT);
	assert_int_equal(b.w.failed, NS_WRITE_KEPT);
	ns_write_end(f->ns, &a.w, a.st);
	ns_write_end(f->ns, &b.w, b.st);
	ns_write_end(f->ns, &c.w, c.st);
	assert_int_equal(ns_sync_wait(f->ns), 0);

	/* What landed: a prefix of b's bytes (this seed tears inside the
	 * range, so both parts are there), zeros after it. */
	uint8_t got[4 * BS];
	struct iovec r = { got, sizeof(got) };
	assert_int_equal(ns_read(f->ns, 4 * ZLBAS + 3, 4, &r, 1), 0);
	size_t landed = 0;
	while (landed < sizeof(got) && got[landed] == 0x22)
		landed++;
	assert_true(landed > 0 && landed < sizeof(got));
	for (size_t i = landed; i < sizeof(got); i++)
		if (got[i])
			fail_msg("byte %zu of the kept range: %#x after %zu landed", i, got[i], landed);

	reopen(f, true);
	expect_zone(f->ns, 4, NVME_ZNS_ZS_CLOSED, 12);
	expect_blocks(f->ns, 4 * ZLBAS, 3, 0x21);
	expect_blocks(f->ns, 4 * ZLBAS + 7, 5, 0x23);
	uint8_t again[4 * BS];
	r.iov_base = again;
	assert_int_equal(ns_read(f->ns, 4 * ZLBAS + 3, 4, &r, 1), 0);
	assert_memory_equal(again, got, sizeof(got));
}

/*
 * The newest appends fail while an older one is in flight: each gives its
 * range back as soon as its data fails (c, then b, now the newest), the
 * write pointer ends after a, and the next append goes right after a.
 */
static void test_newest_appends_fail(void **state)
{
	struct ns_fixture *f = *state;
	struct append a, b, c;
	three_appends(f, 5, &a, &b, &c, 0x44);
	append_data(f, &c, true);
	assert_int_equal(c.w.failed, NS_WRITE_GIVEN_BACK);
	expect_zone(f->ns, 5, NVME_ZNS_ZS_IMPL_OPEN, 7);
	append_data(f, &b, true);
	assert_int_equal(b.w.failed, NS_WRITE_GIVEN_BACK);
	expect_zone(f->ns, 5, NVME_ZNS_ZS_IMPL_OPEN, 3);
	append_data(f, &a, false);
	ns_write_end(f->ns, &b.w, b.st);
	assert_int_equal(b.st, ST_WRITE_FAULT);
	ns_write_end(f->ns, &c.w, c.st);
	assert_int_equal(c.st, ST_WRITE_FAULT);
	ns_write_end(f->ns, &a.w, a.st);
	assert_int_equal(a.st, 0);
	uint64_t alba;
	assert_int_equal(do_write(f->ns, NS_ZONE_APPEND, 5 * ZLBAS, 2, 0x77, &alba), 0);
	assert_int_equal(alba, 5 * ZLBAS + 3);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 5, NVME_ZNS_ZS_CLOSED, 5);
	expect_blocks(f->ns, 5 * ZLBAS, 3, 0x44);
	expect_blocks(f->ns, 5 * ZLBAS + 3, 2, 0x77);
}

/* The only write of a zone fails with others in flight in other zones:
 * their zones are not affected. */
static void test_failure_stays_in_its_zone(void **state)
{
	struct ns_fixture *f = *state;
	struct append a, b;
	append_begin(f, &a, 6, 4, 0x88);
	append_begin(f, &b, 7, 4, 0x99);
	append_data(f, &a, true);
	append_data(f, &b, false);
	ns_write_end(f->ns, &a.w, a.st);
	assert_int_equal(a.st, ST_WRITE_FAULT);
	ns_write_end(f->ns, &b.w, b.st);
	assert_int_equal(b.st, 0);
	expect_zone(f->ns, 6, NVME_ZNS_ZS_EMPTY, 0);
	expect_zone(f->ns, 7, NVME_ZNS_ZS_IMPL_OPEN, 4);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 6, NVME_ZNS_ZS_EMPTY, 0);
	expect_zone(f->ns, 7, NVME_ZNS_ZS_CLOSED, 4);
}

/*
 * The append that filled a zone fails after another zone took the only
 * active resource the zone gave up by becoming Full: it cannot open again,
 * so the controller finishes it (Full, Zone Finished by Controller).
 */
static void test_failed_fill_without_room(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 12, 0x31, NULL), 0);
	struct append fill;
	append_begin(f, &fill, 0, 4, 0x32);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_FULL, ZLBAS);
	assert_int_equal(ns_zone_mgmt_send(f->ns, ZLBAS, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
	append_data(f, &fill, true);
	assert_int_equal(fill.w.failed, NS_WRITE_GIVEN_BACK);
	ns_write_end(f->ns, &fill.w, fill.st);
	struct nvme_zns_desc d = zone_desc(f->ns, 0);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	assert_true(d.za & NVME_ZNS_ZA_ZFC);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	d = zone_desc(f->ns, 0);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	assert_true(d.za & NVME_ZNS_ZA_ZFC);
	expect_blocks(f->ns, 0, 12, 0x31);
	expect_blocks(f->ns, 12, 4, 0);
}

/* ---- a failing group commit ---- */

/*
 * The data fdatasync fails (EIO, then ENOSPC): each sync gets its status
 * and nothing it covered is acknowledged, but what the host was told had
 * completed stays (a write in flight meanwhile completes too); once the
 * file system works again, without a restart, the next sync makes all of
 * it durable.
 */
static void test_data_sync_failure(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0x51, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);

	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 4, 0x52, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS, 4, 0x53, NULL), 0);
	struct append inflight;
	append_begin(f, &inflight, 2, 2, 0x54);
	append_data(f, &inflight, false);
	fail_next(FAULT_DATA_SYNC, FAULT_EIO, 1);
	assert_int_equal(ns_sync_wait(f->ns), ST_WRITE_FAULT);
	ns_write_end(f->ns, &inflight.w, inflight.st);
	assert_int_equal(inflight.st, 0);
	fail_next(FAULT_DATA_SYNC, FAULT_ENOSPC, 1);
	assert_int_equal(ns_sync_wait(f->ns), ST_CAP_EXCEEDED);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_IMPL_OPEN, 8);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_IMPL_OPEN, 4);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_IMPL_OPEN, 2);
	bool failing, lost;
	ns_health(f->ns, &failing, &lost); /* what status and metrics report */
	assert_true(failing && !lost);

	/* Space is back. */
	fault_io_disarm();
	assert_int_equal(do_write(f->ns, NS_WRITE, 8, 4, 0x55, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	ns_health(f->ns, &failing, &lost);
	assert_true(!failing && !lost);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 12);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 4);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 2);
	expect_blocks(f->ns, 0, 4, 0x51);
	expect_blocks(f->ns, 4, 4, 0x52);
	expect_blocks(f->ns, 8, 4, 0x55);
	expect_blocks(f->ns, ZLBAS, 4, 0x53);
	expect_blocks(f->ns, 2 * ZLBAS, 2, 0x54);
}

/* The namespace's data file, opened for dirty_pages(); skips the test
 * where that cannot be watched (dirty_pages_watchable). */
static int data_fd_or_skip(struct ns_fixture *f)
{
	char path[sizeof(f->cfg.path) + 8];
	snprintf(path, sizeof(path), "%s/data", f->cfg.path);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	if (!dirty_pages_watchable(fd, 0, (uint64_t)NZ * ZLBAS * BS)) {
		close(fd);
		skip();
	}
	return fd;
}

/* The next data sync fails as Linux's does (a torn sync: the pages end
 * clean, the error is reported once): Write Fault. */
static void torn_data_sync(struct ns_fixture *f)
{
	fail_next(FAULT_DATA_SYNC, FAULT_TORN, 1);
	assert_int_equal(ns_sync_wait(f->ns), ST_WRITE_FAULT);
	fault_io_disarm();
}

/*
 * A data fdatasync that fails as Linux's does - a torn sync: the pages end
 * clean, the error is reported once - leaves the pages of every write not
 * yet durable dirty again, so that the next sync writes them; those of
 * data already durable are left alone.
 */
static void test_failed_data_sync_redirties(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0x81, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 3, 0x82, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS, 2, 0x83, NULL), 0);
	torn_data_sync(f);
	assert_int_equal(dirty_pages(fd, 0, 4 * BS), 0);
	assert_int_equal(dirty_pages(fd, 4 * BS, 3 * BS), 3);
	assert_int_equal(dirty_pages(fd, ZLBAS * BS, 2 * BS), 2);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(dirty_pages(fd, 0, (uint64_t)NZ * ZLBAS * BS), 0);
	close(fd);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 7);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 2);
	expect_blocks(f->ns, 4, 3, 0x82);
	expect_blocks(f->ns, ZLBAS, 2, 0x83);
}

/* The same on a conventional namespace: every page it holds of the file. */
static void test_failed_data_sync_redirties_conventional(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 2, 0x91, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(do_write(f->ns, NS_WRITE, 40, 3, 0x92, NULL), 0);
	torn_data_sync(f);
	assert_int_equal(dirty_pages(fd, 40 * BS, 3 * BS), 3);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(dirty_pages(fd, 0, (uint64_t)NZ * ZLBAS * BS), 0);
	close(fd);
	reopen(f, true);
	expect_blocks(f->ns, 0, 2, 0x91);
	expect_blocks(f->ns, 40, 3, 0x92);
}

/* The same when a Finish in the batch has the data synced before the
 * journal is written (the ordered path). */
static void test_failed_ordered_sync_redirties(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0x81, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 3 * ZLBAS, 1, 0x84, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 3, 0x82, NULL), 0);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 3 * ZLBAS, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	torn_data_sync(f);
	assert_int_equal(dirty_pages(fd, 4 * BS, 3 * BS), 3);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	close(fd);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 7);
	expect_zone(f->ns, 3, NVME_ZNS_ZS_FULL, ZLBAS);
	expect_blocks(f->ns, 4, 3, 0x82);
}

/*
 * The data sync of an open fails as Linux's does. Recovery replayed a batch
 * whose data it checked against the page cache only: pages the failed sync
 * left clean would pass the next open's sync unwritten, and the namespace
 * would vouch for them. They are dirty again.
 */
static void test_failed_open_sync_redirties(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0x81, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 3, 0x82, NULL), 0);
	/* The journal holds the batch; its data is still only in memory. */
	fail_next(FAULT_DATA_SYNC, FAULT_EIO, 1);
	assert_int_equal(ns_sync_wait(f->ns), ST_WRITE_FAULT);
	fault_io_disarm();
	ns_abandon(f->ns);
	f->ns = NULL;
	assert_int_equal(dirty_pages(fd, 4 * BS, 3 * BS), 3);
	fail_next(FAULT_DATA_SYNC, FAULT_TORN, 1);
	char err[512];
	struct ns *ns = NULL;
	assert_int_not_equal(ns_open(&f->cfg, false, &ns, err, sizeof(err)), 0);
	fault_io_disarm();
	assert_int_equal(dirty_pages(fd, 4 * BS, 3 * BS), 3);
	close(fd);
	ns_fixture_open(f, false);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 7);
	expect_blocks(f->ns, 4, 3, 0x82);
}

/* The process's address space in bytes. */
static uint64_t vm_size(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%lu", &pages), 1);
	fclose(fp);
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * The pages cannot be made dirty again (no address space left to map the
 * file): the next commit fails although its own fdatasync would succeed;
 * once the file can be mapped, the retry makes them dirty and the commit
 * after it succeeds.
 */
static void test_failed_redirty_fails_commits(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	skip(); /* ASan's allocator needs address space of its own */
#endif
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0x81, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 3, 0x82, NULL), 0);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
	lim = old;
	lim.rlim_cur = vm_size();
	assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
	fail_next(FAULT_DATA_SYNC, FAULT_TORN, 1);
	uint16_t failed = ns_sync_wait(f->ns);
	fault_io_disarm();
	uint16_t retried = ns_sync_wait(f->ns);
	int64_t dirty = dirty_pages(fd, 4 * BS, 3 * BS);
	assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
	assert_int_equal(failed, ST_WRITE_FAULT);
	assert_int_not_equal(retried, 0);
	assert_int_equal(dirty, 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	close(fd);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 7);
	expect_blocks(f->ns, 4, 3, 0x82);
}

/*
 * The journal write reaches the file but its fdatasync fails; a crash
 * follows the next, successful commit. Its records (a fresh journal
 * generation) must be the ones replayed, and the data of both.
 */
static void test_journal_sync_failure(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 2, 0x61, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS, 2, 0x62, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 2, 2, 0x63, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, ZLBAS + 2, 4, 0x64, NULL), 0);
	fail_next(FAULT_META_SYNC, FAULT_EIO, 1);
	assert_int_equal(ns_sync_wait(f->ns), ST_WRITE_FAULT);
	fault_io_disarm();
	assert_int_equal(do_write(f->ns, NS_WRITE, 4, 2, 0x65, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 6);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 6);
	expect_blocks(f->ns, 0, 2, 0x61);
	expect_blocks(f->ns, 2, 2, 0x63);
	expect_blocks(f->ns, 4, 2, 0x65);
	expect_blocks(f->ns, ZLBAS + 2, 4, 0x64);
}

/*
 * A Reset whose journal write is torn reports Write Fault and is not
 * durable: after a crash the zone holds its data. Retried on a full disk:
 * Capacity Exceeded. Once there is room, the Reset goes through.
 */
static void test_journal_write_failure(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 6, 0x71, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	fail_next(FAULT_META_WRITE, FAULT_TORN, 1);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 0, NVME_ZNS_ZSA_RESET, false, NULL),
			 ST_WRITE_FAULT);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 6);
	expect_blocks(f->ns, 0, 6, 0x71);

	fail_next(FAULT_META_WRITE, FAULT_ENOSPC, 1);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 0, NVME_ZNS_ZSA_RESET, false, NULL),
			 ST_CAP_EXCEEDED);
	fault_io_disarm();
	assert_int_equal(ns_zone_mgmt_send(f->ns, 0, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	expect_blocks(f->ns, 0, 6, 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 1, 0x72, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	reopen(f, true);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 1);
	expect_blocks(f->ns, 0, 1, 0x72);
}

/*
 * On a conventional namespace what a failed sync makes dirty again is what
 * was written since the sync before the last began (1 MiB regions): data
 * long durable, though the page cache holds it, is left alone.
 */
static int setup_big_conventional(void **state)
{
	struct ns_fixture *f = ns_fixture_new("ioerr-big", 64, 64, false); /* 16 MiB */
	ns_fixture_open(f, false);
	*state = f;
	return 0;
}

static void test_failed_sync_redirties_only_written(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t mib = 1 << 20;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0xa1, NULL), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 2 * mib / BS, 4, 0xa2, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 8 * mib / BS, 1, 0xa3, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0); /* the sync before the last */
	int fd = data_fd_or_skip(f);
	expect_blocks(f->ns, 2 * mib / BS, 4, 0xa2); /* cached, durable */
	assert_int_equal(do_write(f->ns, NS_WRITE, 4 * mib / BS, 2, 0xa4, NULL), 0);
	torn_data_sync(f);
	assert_int_equal(dirty_pages(fd, 4 * mib, 2 * BS), 2);
	assert_int_equal(dirty_pages(fd, 0, 4 * BS), 0);
	assert_int_equal(dirty_pages(fd, 2 * mib, 4 * BS), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(dirty_pages(fd, 0, 16 * mib), 0);
	close(fd);
}

static uint64_t allocated_bytes(const struct ns_fixture *f);

/*
 * On a conventional namespace the pages made dirty again are those of data
 * in the file: zeros the host read back from Deallocated blocks (cached over
 * holes) are passed over, so a failed sync gives no block back to them.
 */
static void test_failed_sync_keeps_holes(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 16, 0x91, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	int fd = data_fd_or_skip(f);
	assert_int_equal(ns_deallocate(f->ns, 0, 16), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	uint64_t before = allocated_bytes(f);
	expect_blocks(f->ns, 0, 16, 0);
	assert_int_equal(do_write(f->ns, NS_WRITE, 40, 1, 0x92, NULL), 0);
	torn_data_sync(f);
	assert_int_equal(dirty_pages(fd, 0, 16 * BS), 0);
	assert_int_equal(dirty_pages(fd, 40 * BS, BS), 1);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_true(allocated_bytes(f) <= before + BS);
	close(fd);
}

/* Whether the data file has a block allocated in [off, off + len). */
static bool allocated_in(const struct ns_fixture *f, off_t off, off_t len)
{
	char path[sizeof(f->cfg.path) + 8];
	snprintf(path, sizeof(path), "%s/data", f->cfg.path);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	off_t data = lseek(fd, off, SEEK_DATA);
	close(fd);
	return data >= 0 && data < off + len;
}

/* A Deallocate of LBAs 0-15 on an I/O thread, started by a redirty once it
 * has seen which pages are resident and before it stores into them. */
static struct {
	struct ns *ns;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started, done;
	uint16_t status;
} dealloc = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *dealloc_main(void *arg)
{
	(void)arg;
	uint16_t st = ns_deallocate(dealloc.ns, 0, 16);
	pthread_mutex_lock(&dealloc.lock);
	dealloc.status = st;
	dealloc.done = true;
	pthread_cond_broadcast(&dealloc.cond);
	pthread_mutex_unlock(&dealloc.lock);
	return NULL;
}

/* The first pause only: the Deallocate gets a second to end (it must not
 * before the redirty's stores are done, and then waits that long). */
static void dealloc_in_redirty(void)
{
	if (dealloc.started)
		return;
	dealloc.started = true;
	assert_int_equal(pthread_create(&dealloc.thread, NULL, dealloc_main, NULL), 0);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&dealloc.lock);
	while (!dealloc.done &&
	       pthread_cond_timedwait(&dealloc.cond, &dealloc.lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&dealloc.lock);
}

/*
 * A failed sync's redirty races a Deallocate of blocks it found resident
 * over data: the hole the Deallocate punches stays a hole (a store into a
 * page there would allocate its block again - the space a full file system
 * was given back, or a SIGBUS when it has none), and the blocks read as
 * zeros, also after a crash.
 */
static void test_failed_sync_racing_deallocate(void **state)
{
	struct ns_fixture *f = *state;
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 16, 0x91, NULL), 0);
	dealloc.ns = f->ns;
	dealloc.started = dealloc.done = false;
	blockstore_redirty_pause = dealloc_in_redirty;
	torn_data_sync(f);
	blockstore_redirty_pause = NULL;
	assert_true(dealloc.started);
	assert_int_equal(pthread_join(dealloc.thread, NULL), 0);
	assert_int_equal(dealloc.status, 0);
	expect_blocks(f->ns, 0, 16, 0);
	assert_false(allocated_in(f, 0, 16 * BS));
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_false(allocated_in(f, 0, 16 * BS));
	reopen(f, true);
	expect_blocks(f->ns, 0, 16, 0);
}

/* ---- preallocate = yes ---- */

static uint64_t allocated_bytes(const struct ns_fixture *f)
{
	char path[sizeof(f->cfg.path) + 8];
	snprintf(path, sizeof(path), "%s/data", f->cfg.path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* Every block allocated at open, and still after a Reset (which zeroes in
 * place); a file system that cannot allocate it gets the namespace refused
 * with the reason. */
static void test_preallocate(void **state)
{
	struct ns_fixture *f = *state;
	ns_close(f->ns);
	f->ns = NULL;
	f->cfg.preallocate = true;
	fail_next(FAULT_DATA_WRITE, FAULT_ENOSPC, 1);
	char err[512] = "";
	assert_int_not_equal(ns_open(&f->cfg, false, &f->ns, err, sizeof(err)), 0);
	f->ns = NULL;
	if (!strstr(err, "cannot allocate") || !strstr(err, "No space left"))
		fail_msg("unexpected refusal: %s", err);
	fault_io_disarm();
	if (ns_open(&f->cfg, false, &f->ns, err, sizeof(err)))
		fail_msg("ns_open: %s", err);
	uint64_t size = f->cfg.size;
	assert_true(allocated_bytes(f) >= size);
	assert_int_equal(do_write(f->ns, NS_WRITE, 0, 4, 0xf1, NULL), 0);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 0, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	expect_blocks(f->ns, 0, 4, 0);
	assert_true(allocated_bytes(f) >= size);
}

/* Thin provisioning on a file system with less room than the namespace:
 * a warning at open that says so. (A conventional namespace: no zone
 * state to build for a size twice the free space.) */
static void test_thin_warning(void **state)
{
	struct ns_fixture *f = *state;
	ns_close(f->ns);
	f->ns = NULL;
	struct statvfs vfs;
	assert_int_equal(statvfs(f->dir, &vfs), 0);
	uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	f->cfg.size = (free_bytes * 2 + (1 << 20)) & ~((uint64_t)(1 << 20) - 1);

	/* The log goes to stderr: catch it in a file for the open. */
	char log[96];
	snprintf(log, sizeof(log), "%s/log", f->dir);
	FILE *cap = fopen(log, "w+");
	assert_non_null(cap);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
	char err[512] = "";
	int rc = ns_open(&f->cfg, false, &f->ns, err, sizeof(err));
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (rc)
		fail_msg("ns_open: %s", err);
	char text[2048] = "";
	rewind(cap);
	size_t n = fread(text, 1, sizeof(text) - 1, cap);
	text[n] = 0;
	fclose(cap);
	if (!strstr(text, "warn") || !strstr(text, "Capacity Exceeded") ||
	    !strstr(text, "preallocate = yes"))
		fail_msg("no thin-provisioning warning in: %s", text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enospc_keeps_wp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_write_keeps_wp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_fill_reopens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conventional_enospc, setup_conventional,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_fails_between_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_range_zeroing_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newest_appends_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_stays_in_its_zone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_fill_without_room, setup_limits, teardown),
		cmocka_unit_test_setup_teardown(test_data_sync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_data_sync_redirties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_data_sync_redirties_conventional,
						setup_conventional, teardown),
		cmocka_unit_test_setup_teardown(test_failed_ordered_sync_redirties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_open_sync_redirties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_redirty_fails_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_sync_racing_deallocate,
						setup_conventional, teardown),
		cmocka_unit_test_setup_teardown(test_failed_sync_keeps_holes, setup_conventional,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_sync_redirties_only_written,
						setup_big_conventional, teardown),
		cmocka_unit_test_setup_teardown(test_journal_sync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preallocate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thin_warning, setup_conventional, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
