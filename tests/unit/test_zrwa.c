/*
 * Zone engine, Zone Random Write Area (ZNS 1.1; doc/zrwa.md): allocation
 * with Open / Set Zone Descriptor Extension, writes anywhere in the window,
 * implicit and explicit flush, Zone Append refused, the ZRWA released with
 * the zone's active state, the written prefix with ZRWA writes in flight,
 * the power-up rule, and every error status on the way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <nvme/types.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_wire.h"
#include "zone.h"

#define ZSZ 64      /* zone size, LBAs */
#define ZCAP 48     /* zone capacity, LBAs */
#define NZ 4
#define ZRWAS 8     /* window, LBAs */
#define ZRWAFG 4    /* flush granularity, LBAs */
#define NRZRWA 2
#define ZDE 64

#define CS(sc) (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, (sc)) | NVME_STATUS_DNR)
#define GS(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

#include "zone_test.h"

enum { E = NVME_ZNS_ZS_EMPTY, IO = NVME_ZNS_ZS_IMPL_OPEN, EO = NVME_ZNS_ZS_EXPL_OPEN,
       C = NVME_ZNS_ZS_CLOSED, F = NVME_ZNS_ZS_FULL, RO = NVME_ZNS_ZS_READ_ONLY };

static struct zns *mk_geom(uint32_t zrwa_lbas)
{
	struct zns *z = malloc(sizeof(*z));
	struct zns_geom g = { .lba_shift = 12, .zone_size = ZSZ, .zone_cap = ZCAP, .nr_zones = NZ,
			      .max_active = 3, .zde_size = ZDE, .zasl_nlb = 8,
			      .zrwa_lbas = zrwa_lbas, .zrwa_fg = ZRWAFG, .nr_zrwa = NRZRWA };
	assert_int_equal(zns_init(z, &g), 0);
	return z;
}

static struct zns *mk(void) { return mk_geom(ZRWAS); }

static uint16_t open_zrwa(struct zns *z, uint32_t i)
{
	return zns_mgmt_send_zrwaa(z, zs(i), NVME_ZNS_ZSA_OPEN, NULL);
}

static uint16_t zsa(struct zns *z, uint32_t i, uint8_t action)
{
	return zns_mgmt_send(z, zs(i), action, false, NULL);
}

static uint16_t flush(struct zns *z, uint64_t elba)
{
	return zns_mgmt_send(z, elba, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL);
}

static void expect_zone(struct zns *z, uint32_t i, uint8_t state, uint64_t wp_off, bool zrwa)
{
	assert_int_equal(zns_zone_state(z, i), state);
	if (state != F)
		assert_int_equal(zns_zone_wp(z, i), zs(i) + wp_off);
	assert_int_equal(!!(zns_zone_attrs(z, i) & NVME_ZNS_ZA_ZRWAV), zrwa);
	assert_null(zns_check(z));
}

/* The attributes Report Zones gives zone i. */
static uint8_t reported_za(struct zns *z, uint32_t i)
{
	uint8_t buf[64 + NZ * 64];
	assert_int_equal(zns_report(z, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
				    false, buf, sizeof(buf)), 0);
	const struct nvme_zns_desc *d = (const void *)(buf + 64);
	return d[i].za;
}

static void test_allocation(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	expect_zone(z, 0, EO, 0, true);
	assert_true(reported_za(z, 0) & NVME_ZNS_ZA_ZRWAV);
	assert_false(reported_za(z, 1) & NVME_ZNS_ZA_ZRWAV);
	/* Only an Empty zone gets one: Invalid Zone Operation Request. */
	assert_int_equal(open_zrwa(z, 0), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(wr(z, zs(1), 2), 0);
	assert_int_equal(open_zrwa(z, 1), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(open_zrwa(z, 1), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(open_zrwa(z, 1), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	expect_zone(z, 1, F, ZCAP, false);
	/* Set Zone Descriptor Extension with ZRWAA: Closed, with a ZRWA. */
	static const uint8_t ext[ZDE] = { 0x5a };
	assert_int_equal(zns_mgmt_send_zrwaa(z, zs(2), NVME_ZNS_ZSA_SET_DESC_EXT, ext), 0);
	expect_zone(z, 2, C, 0, true);
	assert_int_equal(zns_zone_attrs(z, 2), NVME_ZNS_ZA_ZRWAV | NVME_ZNS_ZA_ZDEV);
	/* NUMZRWA (2) in use: ZRWA Resources Unavailable, the zone unchanged. */
	assert_int_equal(open_zrwa(z, 3), CS(NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE));
	expect_zone(z, 3, E, 0, false);
	/* ZRWAA with another action, a bad LBA or a zone's middle. */
	assert_int_equal(zns_mgmt_send_zrwaa(z, zs(3), NVME_ZNS_ZSA_CLOSE, NULL),
			 GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(zns_mgmt_send_zrwaa(z, zs(NZ), NVME_ZNS_ZSA_OPEN, NULL),
			 GS(NVME_SC_LBA_RANGE));
	assert_int_equal(zns_mgmt_send_zrwaa(z, zs(3) + 1, NVME_ZNS_ZSA_OPEN, NULL),
			 GS(NVME_SC_INVALID_FIELD));
	/* A Reset gives the resource back. */
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_RESET), 0);
	expect_zone(z, 0, E, 0, false);
	assert_int_equal(open_zrwa(z, 3), 0);
	expect_zone(z, 3, EO, 0, true);
	rm(z);
}

/* Without a ZRWA (ZRWASUP 0) the ZRWAA bit is a reserved one. */
static void test_not_supported(void **state)
{
	(void)state;
	struct zns *z = mk_geom(0);
	assert_int_equal(open_zrwa(z, 0), GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(flush(z, zs(0)), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	expect_zone(z, 0, E, 0, false);
	rm(z);
	/* A geometry whose window the granularity does not divide. */
	struct zns bad;
	struct zns_geom g = { .lba_shift = 12, .zone_size = ZSZ, .zone_cap = ZCAP, .nr_zones = NZ,
			      .zasl_nlb = 8, .zrwa_lbas = 6, .zrwa_fg = 4 };
	assert_int_equal(zns_init(&bad, &g), -1);
}

static void test_window_writes(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	/* Anywhere in [wp, wp + ZRWAS), in any order, over and over: the
	 * write pointer stays. */
	assert_int_equal(wr(z, zs(0) + 5, 3), 0);
	assert_int_equal(wr(z, zs(0), 2), 0);
	assert_int_equal(wr(z, zs(0) + 1, 4), 0);
	expect_zone(z, 0, EO, 0, true);
	assert_int_equal(zns_zone_readable(z, 0), zs(0) + ZRWAS);
	/* Past the Implicit ZRWA Flush Range (wp + 2 x ZRWAS): Zone Invalid
	 * Write, as is a write below the write pointer. */
	assert_int_equal(wr(z, zs(0) + 2 * ZRWAS - 1, 2), CS(NVME_SC_ZNS_INVALID_WRITE));
	assert_int_equal(wr(z, zs(0) + 2 * ZRWAS, 1), CS(NVME_SC_ZNS_INVALID_WRITE));
	assert_int_equal(flush(z, zs(0) + 3), 0);
	assert_int_equal(wr(z, zs(0) + 3, 1), CS(NVME_SC_ZNS_INVALID_WRITE));
	expect_zone(z, 0, EO, 4, true);
	/* Zone Append: Invalid Zone Operation Request. */
	struct ns_write w;
	assert_int_equal(zns_write_begin(z, &w, NS_ZONE_APPEND, zs(0), 1),
			 CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	/* Across the capacity's end: Zone Boundary Error. */
	assert_int_equal(flush(z, zs(0) + 11), 0);
	assert_int_equal(flush(z, zs(0) + 19), 0);
	assert_int_equal(flush(z, zs(0) + 27), 0);
	assert_int_equal(flush(z, zs(0) + 35), 0);
	expect_zone(z, 0, EO, 36, true);
	assert_int_equal(wr(z, zs(0) + ZCAP - 2, 3), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	/* The window never reaches past the capacity. */
	assert_int_equal(flush(z, zs(0) + 39), 0);
	assert_int_equal(zns_zone_readable(z, 0), zs(0) + ZCAP);
	rm(z);
}

static void test_implicit_flush(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	/* Ends 3 past the window: the write pointer moves up by one ZRWAFG. */
	assert_int_equal(wr(z, zs(0) + 6, 5), 0);
	expect_zone(z, 0, EO, ZRWAFG, true);
	/* Ends 5 past it: two granules. */
	assert_int_equal(wr(z, zs(0) + 12, 5), 0);
	expect_zone(z, 0, EO, 12, true);
	/* Ending exactly at the window's end flushes nothing. */
	assert_int_equal(wr(z, zs(0) + 12, ZRWAS), 0);
	expect_zone(z, 0, EO, 12, true);
	/* A Closed zone is opened implicitly by a write and keeps its ZRWA. */
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_CLOSE), 0);
	expect_zone(z, 0, C, 12, true);
	assert_int_equal(wr(z, zs(0) + 2 * ZRWAS + 4, ZRWAS), 0);
	expect_zone(z, 0, IO, 2 * ZRWAS + 4, true);
	/* Anywhere in the Implicit ZRWA Flush Range: as many granules as the
	 * write's end needs. */
	assert_int_equal(wr(z, zs(0) + 28, ZRWAS), 0);
	expect_zone(z, 0, IO, 28, true);
	assert_int_equal(wr(z, zs(0) + 36, ZRWAS), 0);
	expect_zone(z, 0, IO, 36, true);
	/* A flush that reaches the capacity fills the zone and releases its
	 * ZRWA. */
	assert_int_equal(wr(z, zs(0) + ZCAP - ZRWAS, ZRWAS), 0);
	expect_zone(z, 0, IO, ZCAP - ZRWAS, true);
	assert_int_equal(flush(z, zs(0) + ZCAP - 1), 0);
	expect_zone(z, 0, F, ZCAP, false);
	assert_int_equal(z->nr_zrwa, 0);
	rm(z);
}

static void test_explicit_flush(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	assert_int_equal(wr(z, zs(0), ZRWAS), 0);
	/* The last LBA must lie in the window. */
	assert_int_equal(flush(z, zs(0) + ZRWAS), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	/* A multiple of ZRWAFG from the write pointer: Invalid Field. */
	assert_int_equal(flush(z, zs(0) + 1), GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(flush(z, zs(0) + 7), 0);
	expect_zone(z, 0, EO, ZRWAS, true);
	assert_int_equal(flush(z, zs(0) + ZRWAS - 1), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	/* Never Select All; a zone without a ZRWA: Invalid Zone Operation. */
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_ZRWA_FLUSH, true, NULL),
			 GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(flush(z, zs(1) + 3), CS(NVME_SC_ZNS_INVALID_OP_REQUEST));
	assert_int_equal(flush(z, zs(NZ)), GS(NVME_SC_LBA_RANGE));
	/* A Closed zone: opened implicitly, as a write would. */
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(flush(z, zs(0) + ZRWAS + 3), 0);
	expect_zone(z, 0, IO, ZRWAS + 4, true);
	rm(z);
}

/* A ZRWA zone with nothing flushed may hold data in its window: Close and
 * the power-up rule keep it Closed (never Empty), with its ZRWA. */
static void test_close_and_power_up_keep_zrwa(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_CLOSE), 0);
	expect_zone(z, 0, C, 0, true);
	assert_int_equal(open_zrwa(z, 1), 0);
	assert_int_equal(wr(z, zs(1) + 2, 2), 0);
	uint32_t ro = 1;
	assert_int_equal(zns_power_up(z, NULL, 0, &ro, 1), 2);
	expect_zone(z, 0, C, 0, true);
	/* Read Only releases the ZRWA. */
	assert_int_equal(zns_zone_state(z, 1), RO);
	assert_false(zns_zone_attrs(z, 1) & NVME_ZNS_ZA_ZRWAV);
	assert_int_equal(z->nr_zrwa, 1);
	rm(z);
}

static void test_finish_releases(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	assert_int_equal(open_zrwa(z, 1), 0);
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_FINISH), 0);
	expect_zone(z, 0, F, ZCAP, false);
	assert_int_equal(zns_zone_readable(z, 0), zs(0) + ZCAP);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_FINISH, true, NULL), 0);
	expect_zone(z, 1, F, ZCAP, false);
	assert_int_equal(z->nr_zrwa, 0);
	rm(z);
}

/*
 * ZRWA writes land in any order: the written prefix stops at the lowest one
 * still in flight - what a commit may record is the granule (ZRWAFG) at or
 * below it, as only flushes move the write pointer, by whole granules - and
 * a sync after a flush over it waits (the zone is gapped) until it ended.
 */
static void test_prefix_with_writes_in_flight(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	struct ns_write a, b;
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, zs(0) + 2, 2), 0);
	assert_int_equal(zns_write_begin(z, &b, NS_WRITE, zs(0) + 1, 1), 0);
	assert_int_equal(flush(z, zs(0) + 7), 0);
	struct zone *zn = &z->zones[0];
	assert_int_equal(zn->wp, zs(0) + 8);
	assert_int_equal(zn->wp_done, zs(0) + 1);
	assert_int_equal(zns_next_gapped(z, 0), 0);
	/* ZRWA writes in flight read from the file (it holds the window's
	 * older data or theirs: the blocks were erased when the ZRWA was
	 * allocated), with the written prefix below them, up to the window's
	 * end. */
	bool file;
	assert_int_equal(zns_read_run(z, zs(0), zs(1), &file), zs(0) + 8 + ZRWAS);
	assert_true(file);
	zns_write_end(z, &b, true);
	assert_int_equal(zn->wp_done, zs(0) + 2);
	uint32_t cur = zns_take_dirty(z);
	struct zone_snap s;
	assert_true(zns_snapshot(z, &cur, &s, NULL));
	assert_int_equal(s.wp, zs(0)); /* the prefix, +2, lies in the first granule */
	assert_true(s.za & NVME_ZNS_ZA_ZRWAV);
	zns_write_end(z, &a, true);
	assert_int_equal(zn->wp_done, zs(0) + 8);
	assert_true(zns_next_gapped(z, 0) > 0);
	/* A failed ZRWA write takes nothing back from the write pointer. */
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, zs(0) + 8, 6), 0);
	expect_zone(z, 0, EO, 8, true);
	zns_write_fail(z, &a);
	assert_int_equal(a.failed, NS_WRITE_KEPT);
	zns_write_end(z, &a, false);
	expect_zone(z, 0, EO, 8, true);
	assert_int_equal(zn->wp_done, zs(0) + 8);
	rm(z);
}

/*
 * A write that starts past the Implicit ZRWA Flush Range, or past the zone
 * capacity, is refused (doc/zrwa.md: past wp + 2 x ZRWAS: Zone Invalid
 * Write; past the capacity: Zone Boundary Error), and moves nothing: the
 * range checks must not wrap around.
 */
static void test_write_far_past_window(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	/* Starts past wp + 2 x ZRWAS (16), well inside the capacity (48). */
	assert_int_equal(wr(z, zs(0) + 2 * ZRWAS + 4, 1), CS(NVME_SC_ZNS_INVALID_WRITE));
	expect_zone(z, 0, EO, 0, true);
	/* The last window; a write between the capacity and the zone size. */
	assert_int_equal(flush(z, zs(0) + 7), 0);
	assert_int_equal(flush(z, zs(0) + 15), 0);
	assert_int_equal(flush(z, zs(0) + 23), 0);
	assert_int_equal(flush(z, zs(0) + 31), 0);
	assert_int_equal(flush(z, zs(0) + 39), 0);
	expect_zone(z, 0, EO, ZCAP - ZRWAS, true);
	/* Inside wp + 2 x ZRWAS, past the capacity: doc/zrwa.md says which. */
	assert_int_equal(wr(z, zs(0) + ZCAP + 1, 1), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	expect_zone(z, 0, EO, ZCAP - ZRWAS, true);
	rm(z);
}

/*
 * A flush that fills the zone while ZRWA writes are in flight in the window
 * leaves no true Full record until they end (zns_snapshot). A sync called
 * before that flush - the one acknowledging the flush before it, which found
 * nothing to wait for - may be committed after it: the record it gets must
 * hold that earlier flush (open with the ZRWA, on a granule at or below the
 * writes in flight), not leave the zone out and a power cut undo the flush.
 * The ZRWA's resource stays taken meanwhile, so that the zone a power cut
 * brings back with it never exceeds NUMZRWA with a ZRWA given away since.
 */
static void test_flush_to_full_over_writes_in_flight(void **state)
{
	(void)state;
	struct zns *z = mk();
	assert_int_equal(open_zrwa(z, 0), 0);
	for (uint64_t wp = 0; wp < ZCAP - ZRWAS; wp += ZRWAS)
		assert_int_equal(flush(z, zs(0) + wp + ZRWAS - 1), 0);
	struct ns_write w;
	assert_int_equal(zns_write_begin(z, &w, NS_WRITE, zs(0) + ZCAP - 3, 2), 0);
	uint32_t cur = zns_take_dirty(z);
	struct zone_snap s;
	while (zns_snapshot(z, &cur, &s, NULL))
		;
	/* Acknowledged by a sync that finds no gap to wait for... */
	assert_int_equal(flush(z, zs(0) + ZCAP - ZRWAFG - 1), 0);
	assert_int_equal(zns_next_gapped(z, 0), NZ);
	/* ...and committed only after this one filled the zone over w. */
	assert_int_equal(flush(z, zs(0) + ZCAP - 1), 0);
	expect_zone(z, 0, F, ZCAP, false);
	cur = zns_take_dirty(z);
	if (!zns_snapshot(z, &cur, &s, NULL) || s.zone != 0)
		fail_msg("the zone filled over a write in flight has no record: a power cut undoes "
			 "the flush to +%u acknowledged before", ZCAP - ZRWAFG);
	assert_int_equal(s.state, IO);
	assert_true(s.za & NVME_ZNS_ZA_ZRWAV);
	assert_int_equal(s.wp, zs(0) + ZCAP - ZRWAFG);
	/* Its ZRWA's resource is not free until w ended. */
	assert_int_equal(open_zrwa(z, 1), 0);
	assert_int_equal(open_zrwa(z, 2), CS(NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE));
	assert_null(zns_check(z));
	zns_write_end(z, &w, true);
	assert_null(zns_check(z));
	cur = zns_take_dirty(z); /* zone 1's allocation, then zone 0 */
	do
		assert_true(zns_snapshot(z, &cur, &s, NULL));
	while (s.zone != 0);
	assert_int_equal(s.state, F);
	assert_false(s.za & NVME_ZNS_ZA_ZRWAV);
	assert_int_equal(s.wp, zs(0) + ZCAP);
	assert_int_equal(open_zrwa(z, 2), 0);
	rm(z);
}

/* Loading keeps a ZRWA only in an active zone, and counts it. */
static void test_load(void **state)
{
	(void)state;
	struct zns *z = mk();
	zns_load(z, 0, C, NVME_ZNS_ZA_ZRWAV, zs(0) + 4);
	zns_load(z, 1, F, NVME_ZNS_ZA_ZRWAV, zs(1) + ZCAP);
	expect_zone(z, 0, C, 4, true);
	expect_zone(z, 1, F, ZCAP, false);
	assert_int_equal(z->nr_zrwa, 1);
	zns_load(z, 0, C, NVME_ZNS_ZA_ZRWAV, zs(0) + 8);
	assert_int_equal(z->nr_zrwa, 1);
	zns_load(z, 0, E, 0, zs(0));
	assert_int_equal(z->nr_zrwa, 0);
	rm(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocation),
		cmocka_unit_test(test_not_supported),
		cmocka_unit_test(test_window_writes),
		cmocka_unit_test(test_implicit_flush),
		cmocka_unit_test(test_explicit_flush),
		cmocka_unit_test(test_close_and_power_up_keep_zrwa),
		cmocka_unit_test(test_finish_releases),
		cmocka_unit_test(test_prefix_with_writes_in_flight),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_write_far_past_window),
		cmocka_unit_test(test_flush_to_full_over_writes_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
