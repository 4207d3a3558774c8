/*
 * Zone engine: every state transition and status code of ZNS 1.1 that the
 * engine implements, table-driven; resource limits; Zone Append atomicity
 * under threads; reports; the power-up rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <nvme/types.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_wire.h"
#include "zone.h"

#define ZSZ 16      /* zone size, LBAs */
#define ZCAP 12     /* zone capacity, LBAs */
#define NZ 8
#define ZDE 64

#define CS(sc) (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, (sc)) | NVME_STATUS_DNR)
#define GS(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

#include "zone_test.h"

enum { E = NVME_ZNS_ZS_EMPTY, IO = NVME_ZNS_ZS_IMPL_OPEN, EO = NVME_ZNS_ZS_EXPL_OPEN,
       C = NVME_ZNS_ZS_CLOSED, F = NVME_ZNS_ZS_FULL, RO = NVME_ZNS_ZS_READ_ONLY,
       OFF = NVME_ZNS_ZS_OFFLINE };

static struct zns *mk(uint32_t max_open, uint32_t max_active)
{
	struct zns *z = malloc(sizeof(*z));
	struct zns_geom g = { .lba_shift = 12, .zone_size = ZSZ, .zone_cap = ZCAP, .nr_zones = NZ,
			      .max_open = max_open, .max_active = max_active, .zde_size = ZDE,
			      .zasl_nlb = 8, .cross_zone_read = false };
	assert_int_equal(zns_init(z, &g), 0);
	return z;
}

static uint16_t app(struct zns *z, uint64_t zslba, uint32_t nlb, uint64_t *alba)
{
	struct ns_write w;
	uint16_t st = zns_write_begin(z, &w, NS_ZONE_APPEND, zslba, nlb);
	if (!st) {
		*alba = w.slba;
		zns_write_end(z, &w, true);
	}
	return st;
}

static uint16_t zsa(struct zns *z, uint32_t i, uint8_t action)
{
	static const uint8_t ext[ZDE] = { 0xab };
	return zns_mgmt_send(z, zs(i), action, false, ext);
}

/* Put zone i into state s (with 2 LBAs written for the non-empty ones). */
static void make_state(struct zns *z, uint32_t i, uint8_t s)
{
	switch (s) {
	case E: break;
	case IO: assert_int_equal(wr(z, zs(i), 2), 0); break;
	case EO: assert_int_equal(wr(z, zs(i), 2), 0);
		 assert_int_equal(zsa(z, i, NVME_ZNS_ZSA_OPEN), 0); break;
	case C: assert_int_equal(wr(z, zs(i), 2), 0);
		assert_int_equal(zsa(z, i, NVME_ZNS_ZSA_CLOSE), 0); break;
	case F: assert_int_equal(zsa(z, i, NVME_ZNS_ZSA_FINISH), 0); break;
	case RO: zns_load(z, i, RO, 0, zs(i)); break;
	case OFF: zns_load(z, i, OFF, 0, zs(i)); break;
	}
	assert_int_equal(z->zones[i].state, s);
}

/* ---- Zone Management Send: action x state (ZNS 3.4.3, Figure 7) ---- */

struct mgmt_case {
	uint8_t action, from;
	uint16_t status;
	uint8_t to;
	uint64_t wp_off;   /* expected wp - zslba after */
};

static const struct mgmt_case mgmt_cases[] = {
	{ NVME_ZNS_ZSA_OPEN, E, 0, EO, 0 },
	{ NVME_ZNS_ZSA_OPEN, IO, 0, EO, 2 },
	{ NVME_ZNS_ZSA_OPEN, EO, 0, EO, 2 },
	{ NVME_ZNS_ZSA_OPEN, C, 0, EO, 2 },
	{ NVME_ZNS_ZSA_OPEN, F, CS(NVME_SC_ZNS_INVAL_TRANSITION), F, ZCAP },
	{ NVME_ZNS_ZSA_OPEN, RO, CS(NVME_SC_ZNS_INVAL_TRANSITION), RO, 0 },
	{ NVME_ZNS_ZSA_OPEN, OFF, CS(NVME_SC_ZNS_INVAL_TRANSITION), OFF, 0 },
	{ NVME_ZNS_ZSA_CLOSE, E, CS(NVME_SC_ZNS_INVAL_TRANSITION), E, 0 },
	{ NVME_ZNS_ZSA_CLOSE, IO, 0, C, 2 },
	{ NVME_ZNS_ZSA_CLOSE, EO, 0, C, 2 },
	{ NVME_ZNS_ZSA_CLOSE, C, 0, C, 2 },
	{ NVME_ZNS_ZSA_CLOSE, F, CS(NVME_SC_ZNS_INVAL_TRANSITION), F, ZCAP },
	{ NVME_ZNS_ZSA_CLOSE, RO, CS(NVME_SC_ZNS_INVAL_TRANSITION), RO, 0 },
	{ NVME_ZNS_ZSA_CLOSE, OFF, CS(NVME_SC_ZNS_INVAL_TRANSITION), OFF, 0 },
	{ NVME_ZNS_ZSA_FINISH, E, 0, F, ZCAP },
	{ NVME_ZNS_ZSA_FINISH, IO, 0, F, ZCAP },
	{ NVME_ZNS_ZSA_FINISH, EO, 0, F, ZCAP },
	{ NVME_ZNS_ZSA_FINISH, C, 0, F, ZCAP },
	{ NVME_ZNS_ZSA_FINISH, F, 0, F, ZCAP },
	{ NVME_ZNS_ZSA_FINISH, RO, CS(NVME_SC_ZNS_INVAL_TRANSITION), RO, 0 },
	{ NVME_ZNS_ZSA_FINISH, OFF, CS(NVME_SC_ZNS_INVAL_TRANSITION), OFF, 0 },
	{ NVME_ZNS_ZSA_RESET, E, 0, E, 0 },
	{ NVME_ZNS_ZSA_RESET, IO, 0, E, 0 },
	{ NVME_ZNS_ZSA_RESET, EO, 0, E, 0 },
	{ NVME_ZNS_ZSA_RESET, C, 0, E, 0 },
	{ NVME_ZNS_ZSA_RESET, F, 0, E, 0 },
	{ NVME_ZNS_ZSA_RESET, RO, CS(NVME_SC_ZNS_INVAL_TRANSITION), RO, 0 },
	{ NVME_ZNS_ZSA_RESET, OFF, CS(NVME_SC_ZNS_INVAL_TRANSITION), OFF, 0 },
	{ NVME_ZNS_ZSA_OFFLINE, E, CS(NVME_SC_ZNS_INVAL_TRANSITION), E, 0 },
	{ NVME_ZNS_ZSA_OFFLINE, IO, CS(NVME_SC_ZNS_INVAL_TRANSITION), IO, 2 },
	{ NVME_ZNS_ZSA_OFFLINE, C, CS(NVME_SC_ZNS_INVAL_TRANSITION), C, 2 },
	{ NVME_ZNS_ZSA_OFFLINE, F, CS(NVME_SC_ZNS_INVAL_TRANSITION), F, ZCAP },
	{ NVME_ZNS_ZSA_OFFLINE, RO, 0, OFF, 0 },
	{ NVME_ZNS_ZSA_OFFLINE, OFF, 0, OFF, 0 },
	{ NVME_ZNS_ZSA_SET_DESC_EXT, E, 0, C, 0 },
	{ NVME_ZNS_ZSA_SET_DESC_EXT, IO, CS(NVME_SC_ZNS_INVAL_TRANSITION), IO, 2 },
	{ NVME_ZNS_ZSA_SET_DESC_EXT, C, CS(NVME_SC_ZNS_INVAL_TRANSITION), C, 2 },
	{ NVME_ZNS_ZSA_SET_DESC_EXT, F, CS(NVME_SC_ZNS_INVAL_TRANSITION), F, ZCAP },
	{ NVME_ZNS_ZSA_SET_DESC_EXT, OFF, CS(NVME_SC_ZNS_INVAL_TRANSITION), OFF, 0 },
	{ 0x7, E, GS(NVME_SC_INVALID_FIELD), E, 0 },
};

static void test_mgmt_transitions(void **state)
{
	for (size_t k = 0; k < sizeof(mgmt_cases) / sizeof(mgmt_cases[0]); k++) {
		const struct mgmt_case *c = &mgmt_cases[k];
		struct zns *z = mk(0, 0);
		make_state(z, 3, c->from);
		uint16_t st = zsa(z, 3, c->action);
		if (st != c->status || z->zones[3].state != c->to)
			fail_msg("case %zu: action %#x from %#x: status %#x state %#x, want %#x %#x", k,
				 c->action, c->from, st, z->zones[3].state, c->status, c->to);
		if (c->to != RO && c->to != OFF)
			assert_int_equal(z->zones[3].wp - zs(3), c->wp_off);
		rm(z);
	}
}

static void test_mgmt_bad_lba(void **state)
{
	struct zns *z = mk(0, 0);
	assert_int_equal(zns_mgmt_send(z, 5, NVME_ZNS_ZSA_OPEN, false, NULL), GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(zns_mgmt_send(z, zs(NZ), NVME_ZNS_ZSA_OPEN, false, NULL),
			 GS(NVME_SC_LBA_RANGE));
	/* Select All ignores the LBA, and Set ZDE cannot be applied to all. */
	assert_int_equal(zns_mgmt_send(z, 5, NVME_ZNS_ZSA_FINISH, true, NULL), 0);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_SET_DESC_EXT, true, NULL),
			 GS(NVME_SC_INVALID_FIELD));
	rm(z);
}

static void test_close_unwritten_goes_empty(void **state)
{
	struct zns *z = mk(0, 0);
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(z->zones[1].state, E);
	assert_int_equal(z->nr_active, 0);
	rm(z);
}

static void test_zde(void **state)
{
	struct zns *z = mk(0, 0);
	uint8_t ext[ZDE];
	memset(ext, 0x5c, sizeof(ext));
	assert_int_equal(zns_mgmt_send(z, zs(2), NVME_ZNS_ZSA_SET_DESC_EXT, false, ext), 0);
	assert_int_equal(z->zones[2].state, C);
	assert_true(z->zones[2].za & NVME_ZNS_ZA_ZDEV);
	assert_memory_equal(z->zde + 2 * ZDE, ext, ZDE);
	/* Extended report carries it. */
	uint8_t buf[64 + 2 * (64 + ZDE)];
	assert_int_equal(zns_report(z, zs(2), NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, 0, true, buf,
				    sizeof(buf)), 0);
	struct nvme_zns_desc *d = (void *)(buf + 64);
	assert_true(d->za & NVME_ZNS_ZA_ZDEV);
	assert_memory_equal(buf + 64 + 64, ext, ZDE);
	/* Reset drops the extension. */
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_RESET), 0);
	assert_false(z->zones[2].za & NVME_ZNS_ZA_ZDEV);
	assert_int_equal(z->zde[2 * ZDE], 0);
	/* No extension configured: Set ZDE and extended reports are invalid. */
	struct zns *n = malloc(sizeof(*n));
	struct zns_geom g = z->g;
	g.zde_size = 0;
	assert_int_equal(zns_init(n, &g), 0);
	assert_int_equal(zns_mgmt_send(n, 0, NVME_ZNS_ZSA_SET_DESC_EXT, false, ext),
			 GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(zns_report(n, 0, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, 0, true, buf,
				    sizeof(buf)), GS(NVME_SC_INVALID_FIELD));
	rm(n);
	rm(z);
}

/* ---- Write / Zone Append checks (ZNS 3.4.4 - 3.4.6) ---- */

struct write_case {
	uint8_t from;
	int append;
	int64_t slba_off;  /* relative to the zone start */
	uint32_t nlb;
	uint16_t status;
	uint8_t to;
};

static const struct write_case write_cases[] = {
	{ E, 0, 0, 1, 0, IO },
	{ E, 0, 1, 1, CS(NVME_SC_ZNS_INVALID_WRITE), E },
	{ IO, 0, 2, 3, 0, IO },
	{ IO, 0, 0, 1, CS(NVME_SC_ZNS_INVALID_WRITE), IO },
	{ IO, 0, 2, ZCAP - 2, 0, F },
	{ IO, 0, 2, ZCAP - 1, CS(NVME_SC_ZNS_BOUNDARY_ERROR), IO },
	{ EO, 0, 2, 1, 0, EO },
	{ C, 0, 2, 1, 0, IO },
	{ F, 0, ZCAP, 1, CS(NVME_SC_ZNS_FULL), F },
	{ F, 0, 0, 1, CS(NVME_SC_ZNS_FULL), F },
	{ RO, 0, 0, 1, CS(NVME_SC_ZNS_READ_ONLY), RO },
	{ OFF, 0, 0, 1, CS(NVME_SC_ZNS_OFFLINE), OFF },
	{ E, 1, 0, 4, 0, IO },
	{ E, 1, 1, 4, GS(NVME_SC_INVALID_FIELD), E },     /* SLBA must be the zone start */
	{ E, 1, 0, 9, GS(NVME_SC_INVALID_FIELD), E },     /* over ZASL (8 LBAs) */
	{ IO, 1, 0, 8, 0, IO },
	{ IO, 1, 0, ZCAP - 2, GS(NVME_SC_INVALID_FIELD), IO }, /* 10 > ZASL */
	{ C, 1, 0, 8, 0, IO },
	{ F, 1, 0, 1, CS(NVME_SC_ZNS_FULL), F },
	{ RO, 1, 0, 1, CS(NVME_SC_ZNS_READ_ONLY), RO },
	{ OFF, 1, 0, 1, CS(NVME_SC_ZNS_OFFLINE), OFF },
};

static void test_write_checks(void **state)
{
	for (size_t k = 0; k < sizeof(write_cases) / sizeof(write_cases[0]); k++) {
		const struct write_case *c = &write_cases[k];
		struct zns *z = mk(0, 0);
		make_state(z, 4, c->from);
		uint64_t alba = 0;
		uint64_t wp_before = z->zones[4].wp;
		uint16_t st = c->append ? app(z, zs(4) + (uint64_t)c->slba_off, c->nlb, &alba)
					: wr(z, zs(4) + (uint64_t)c->slba_off, c->nlb);
		if (st != c->status || z->zones[4].state != c->to)
			fail_msg("case %zu: from %#x append %d: status %#x state %#x, want %#x %#x", k,
				 c->from, c->append, st, z->zones[4].state, c->status, c->to);
		if (!st && c->append)
			assert_int_equal(alba, wp_before);
		rm(z);
	}
}

static void test_append_fills_to_boundary(void **state)
{
	struct zns *z = mk(0, 0);
	uint64_t a;
	assert_int_equal(app(z, zs(1), 8, &a), 0);
	assert_int_equal(a, zs(1));
	assert_int_equal(app(z, zs(1), 5, &a), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	assert_int_equal(app(z, zs(1), 4, &a), 0);
	assert_int_equal(a, zs(1) + 8);
	assert_int_equal(z->zones[1].state, F);
	assert_int_equal(z->nr_active, 0);
	rm(z);
}

static void test_lba_range(void **state)
{
	struct zns *z = mk(0, 0);
	assert_int_equal(wr(z, zs(NZ), 1), GS(NVME_SC_LBA_RANGE));
	assert_int_equal(wr(z, 0, 0), GS(NVME_SC_LBA_RANGE));
	assert_int_equal(zns_read_check(z, zs(NZ) - 1, 2), GS(NVME_SC_LBA_RANGE));
	/* Reads: anywhere in a zone, beyond the wp and beyond the capacity;
	 * across a boundary only with cross_zone_read. */
	assert_int_equal(zns_read_check(z, zs(1) + ZCAP, ZSZ - ZCAP), 0);
	assert_int_equal(zns_read_check(z, zs(1) + 8, 16), CS(NVME_SC_ZNS_BOUNDARY_ERROR));
	z->g.cross_zone_read = true;
	assert_int_equal(zns_read_check(z, zs(1) + 8, 16), 0);
	make_state(z, 2, OFF);
	assert_int_equal(zns_read_check(z, zs(1) + 8, 16), CS(NVME_SC_ZNS_OFFLINE));
	assert_int_equal(zns_read_check(z, zs(3), 1), 0);
	make_state(z, 3, RO);
	assert_int_equal(zns_read_check(z, zs(3), 1), 0);
	rm(z);
}

/* ---- resource limits (ZNS 2.1.1.4) ---- */

static void test_implicit_open_closes_oldest(void **state)
{
	struct zns *z = mk(2, 0);
	assert_int_equal(wr(z, zs(0), 1), 0);
	assert_int_equal(wr(z, zs(1), 1), 0);
	assert_int_equal(wr(z, zs(2), 1), 0); /* zone 0, the oldest, is closed */
	assert_int_equal(z->zones[0].state, C);
	assert_int_equal(z->zones[1].state, IO);
	assert_int_equal(z->zones[2].state, IO);
	/* Writing zone 0 again reopens it, closing zone 1. */
	assert_int_equal(wr(z, zs(0) + 1, 1), 0);
	assert_int_equal(z->zones[1].state, C);
	assert_int_equal(z->nr_open, 2);
	rm(z);
}

static void test_explicit_opens_are_not_closed(void **state)
{
	struct zns *z = mk(2, 0);
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(wr(z, zs(2), 1), CS(NVME_SC_ZNS_TOO_MANY_OPENS));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_OPEN), CS(NVME_SC_ZNS_TOO_MANY_OPENS));
	assert_int_equal(z->zones[2].state, E);
	/* A write to an already open zone needs no new resource. */
	assert_int_equal(wr(z, zs(0), 1), 0);
	/* Explicit open may close an implicitly opened zone too. */
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(wr(z, zs(3), 1), 0);
	assert_int_equal(zsa(z, 4, NVME_ZNS_ZSA_OPEN), 0);
	assert_int_equal(z->zones[3].state, C);
	rm(z);
}

static void test_active_limit(void **state)
{
	struct zns *z = mk(0, 2);
	assert_int_equal(wr(z, zs(0), 1), 0);
	assert_int_equal(wr(z, zs(1), 1), 0);
	assert_int_equal(wr(z, zs(2), 1), CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_OPEN), CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_FINISH), CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_SET_DESC_EXT), CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	/* Closing keeps the zone active; finishing releases it. */
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(wr(z, zs(2), 1), CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(wr(z, zs(2), 1), 0);
	/* Filling a zone by writes releases it too. */
	assert_int_equal(wr(z, zs(1) + 1, ZCAP - 1), 0);
	assert_int_equal(z->zones[1].state, F);
	assert_int_equal(wr(z, zs(3), 1), 0);
	rm(z);
}

static void test_select_all(void **state)
{
	struct zns *z = mk(0, 0);
	make_state(z, 0, IO);
	make_state(z, 1, EO);
	make_state(z, 2, C);
	make_state(z, 3, F);
	make_state(z, 4, RO);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_CLOSE, true, NULL), 0);
	assert_int_equal(z->zones[0].state, C);
	assert_int_equal(z->zones[1].state, C);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_OPEN, true, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(z->zones[i].state, EO);
	assert_int_equal(z->zones[5].state, E); /* empty zones are not opened */
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_FINISH, true, NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(z->zones[i].state, F);
	assert_int_equal(z->zones[5].state, E); /* empty zones are not finished */
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_RESET, true, NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(z->zones[i].state, E);
	assert_int_equal(z->zones[4].state, RO); /* read-only is untouched */
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_OFFLINE, true, NULL), 0);
	assert_int_equal(z->zones[4].state, OFF);
	rm(z);
}

static void test_select_all_open_over_limit(void **state)
{
	struct zns *z = mk(2, 0);
	make_state(z, 0, C);
	make_state(z, 1, C);
	make_state(z, 2, C);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_OPEN, true, NULL),
			 CS(NVME_SC_ZNS_TOO_MANY_OPENS));
	for (int i = 0; i < 3; i++)
		assert_int_equal(z->zones[i].state, C); /* all or nothing */
	rm(z);
}

/* The check above lets it through (one open zone, implicitly opened, plus
 * two closed ones fit in two); the controller closes the implicitly opened
 * zone to make room. That zone, closed by the command itself, is not one
 * the command selected: it must not be opened in turn, and the command
 * must not fail halfway with Too Many Open Zones. */
static void test_select_all_open_does_not_reopen_what_it_closed(void **state)
{
	struct zns *z = mk(2, 0);
	make_state(z, 0, C);
	make_state(z, 1, C);
	make_state(z, 2, IO);
	assert_int_equal(zns_mgmt_send(z, 0, NVME_ZNS_ZSA_OPEN, true, NULL), 0);
	assert_int_equal(z->zones[0].state, EO);
	assert_int_equal(z->zones[1].state, EO);
	assert_int_equal(z->zones[2].state, C);
	rm(z);
}

/* ---- write pointer publication ---- */

static void test_out_of_order_completion(void **state)
{
	struct zns *z = mk(0, 0);
	struct ns_write a, b, c;
	assert_int_equal(zns_write_begin(z, &a, NS_ZONE_APPEND, zs(0), 2), 0);
	assert_int_equal(zns_write_begin(z, &b, NS_ZONE_APPEND, zs(0), 3), 0);
	assert_int_equal(zns_write_begin(z, &c, NS_WRITE, zs(0) + 5, 1), 0);
	assert_int_equal(a.slba, 0);
	assert_int_equal(b.slba, 2);
	assert_int_equal(z->zones[0].wp, 6);
	zns_write_end(z, &c, true);
	zns_write_end(z, &b, true);
	assert_int_equal(z->zones[0].wp_done, 0); /* a has not landed */
	struct zone_snap s;
	uint32_t cur = zns_take_dirty(z);
	while (zns_snapshot(z, &cur, &s, NULL))
		assert_int_equal(s.wp, 0);
	zns_write_end(z, &a, true);
	assert_int_equal(z->zones[0].wp_done, 6);
	cur = zns_take_dirty(z);
	assert_true(zns_snapshot(z, &cur, &s, NULL));
	assert_int_equal(s.zone, 0);
	assert_int_equal(s.wp, 6);
	assert_false(zns_snapshot(z, &cur, &s, NULL));
	rm(z);
}

/* zns_next_gapped() finds exactly the gapped zones, across the words of
 * its bitmap (zones 3, 64 and 129 of 130), and loses each as it catches up. */
static void test_next_gapped(void **state)
{
	static const uint32_t gap[] = { 3, 64, 129 };
	struct zns *z = malloc(sizeof(*z));
	struct zns_geom g = { .lba_shift = 12, .zone_size = 16, .zone_cap = 16, .nr_zones = 130,
			      .zasl_nlb = 8 };
	struct ns_write a[3], b[3];

	assert_int_equal(zns_init(z, &g), 0);
	assert_int_equal(zns_next_gapped(z, 0), 130);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(zns_write_begin(z, &a[k], NS_ZONE_APPEND, gap[k] * 16, 1), 0);
		assert_int_equal(zns_write_begin(z, &b[k], NS_ZONE_APPEND, gap[k] * 16, 1), 0);
		zns_write_end(z, &b[k], true); /* ahead of a[k] */
	}
	assert_int_equal(zns_gapped(z), 3);
	assert_int_equal(zns_next_gapped(z, 0), 3);
	assert_int_equal(zns_next_gapped(z, 3), 3);
	assert_int_equal(zns_next_gapped(z, 4), 64);
	assert_int_equal(zns_next_gapped(z, 65), 129);
	assert_int_equal(zns_next_gapped(z, 130), 130);
	zns_write_end(z, &a[1], true);
	assert_int_equal(zns_next_gapped(z, 4), 129);
	zns_write_end(z, &a[0], true);
	zns_write_end(z, &a[2], true);
	assert_int_equal(zns_next_gapped(z, 0), 130);
	assert_int_equal(zns_gapped(z), 0);
	rm(z);
}

static void test_full_with_data_in_flight_is_recorded_open(void **state)
{
	struct zns *z = mk(0, 0);
	struct ns_write a, b;
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, zs(0), 6), 0);
	assert_int_equal(zns_write_begin(z, &b, NS_WRITE, zs(0) + 6, 6), 0);
	assert_int_equal(z->zones[0].state, F);
	zns_write_end(z, &b, true);
	struct zone_snap s;
	uint32_t cur = zns_take_dirty(z);
	assert_true(zns_snapshot(z, &cur, &s, NULL));
	assert_int_equal(s.state, IO);
	assert_int_equal(s.wp, 0);
	zns_write_end(z, &a, true);
	cur = zns_take_dirty(z);
	assert_true(zns_snapshot(z, &cur, &s, NULL));
	assert_int_equal(s.state, F);
	assert_int_equal(s.wp, ZCAP);
	rm(z);
}

static void test_reset_drops_inflight(void **state)
{
	struct zns *z = mk(0, 0);
	struct ns_write a;
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, zs(0), 4), 0);
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_RESET), 0);
	zns_write_end(z, &a, true); /* lands after the reset: ignored */
	assert_int_equal(z->zones[0].wp_done, 0);
	assert_int_equal(z->zones[0].wp, 0);
	assert_int_equal(z->zones[0].state, E);
	rm(z);
}

/* ---- a write given a range during a scrub waits for it ---- */

struct scrub_arg {
	struct zns *z;
	volatile int started, released, finished;
};

/* The zeroing holds until the test releases it, so that the write is
 * given its range while the scrub surely runs, however slow the machine;
 * then it takes a while more, so that a wait that does not wait would
 * find it unfinished. */
static int slow_zero(void *ctx, uint64_t lba, uint64_t nlb)
{
	struct scrub_arg *a = ctx;
	assert_int_equal(lba, zs(2));
	assert_int_equal(nlb, ZSZ);
	__atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&a->released, __ATOMIC_ACQUIRE))
		sched_yield();
	struct timespec t = { 0, 100 * 1000 * 1000 };
	nanosleep(&t, NULL);
	__atomic_store_n(&a->finished, 1, __ATOMIC_RELEASE);
	return 0;
}

static void *scrubber(void *p)
{
	struct scrub_arg *a = p;
	assert_int_equal(zns_erase_unwritten(a->z, 2, slow_zero, a), 0);
	return NULL;
}

static void test_write_waits_for_scrub(void **state)
{
	struct zns *z = mk(0, 0);
	struct scrub_arg a = { .z = z };
	pthread_t t;
	pthread_create(&t, NULL, scrubber, &a);
	while (!__atomic_load_n(&a.started, __ATOMIC_ACQUIRE))
		sched_yield();
	/* The loop side never blocks: the reservation goes through at once. */
	struct ns_write w;
	assert_int_equal(zns_write_begin(z, &w, NS_WRITE, zs(2), 1), 0);
	assert_int_equal(__atomic_load_n(&a.finished, __ATOMIC_ACQUIRE), 0);
	__atomic_store_n(&a.released, 1, __ATOMIC_RELEASE);
	assert_int_equal(zns_write_start(z, &w), 0); /* the data may move only now */
	assert_int_equal(__atomic_load_n(&a.finished, __ATOMIC_ACQUIRE), 1);
	zns_write_landed(z, &w);
	zns_write_end(z, &w, true);
	pthread_join(t, NULL);
	rm(z);
}

/* ---- Reset and Finish fences ---- */

struct fence_arg {
	struct zns *z;
	struct ns_write *w;      /* for starter() */
	volatile int done;
	uint16_t st;
};

static void *fencer(void *p)
{
	struct fence_arg *a = p;
	zns_fence(a->z, 1);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *starter(void *p)
{
	struct fence_arg *a = p;
	a->st = zns_write_start(a->z, a->w);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Not done after 100 ms: a wait that does not wait shows by then. */
static void assert_still_waiting(const struct fence_arg *a)
{
	struct timespec t = { 0, 100 * 1000 * 1000 };
	nanosleep(&t, NULL);
	assert_int_equal(__atomic_load_n(&a->done, __ATOMIC_ACQUIRE), 0);
}

/* A fence waits for the write whose data is moving in its zone, and keeps
 * the zone's other writes from starting; a Reset under the fence drops
 * those, which then fail without moving their data. */
static void test_fence(void **state)
{
	(void)state;
	struct zns *z = mk(0, 0);
	struct ns_write moving, queued, other;
	assert_int_equal(zns_write_begin(z, &moving, NS_WRITE, zs(1), 2), 0);
	assert_int_equal(zns_write_start(z, &moving), 0);
	assert_int_equal(zns_write_begin(z, &queued, NS_ZONE_APPEND, zs(1), 2), 0);

	struct fence_arg f = { .z = z };
	pthread_t tf, ts;
	pthread_create(&tf, NULL, fencer, &f);
	assert_still_waiting(&f);
	/* Another zone's writes are not held. */
	assert_int_equal(zns_write_begin(z, &other, NS_WRITE, zs(2), 1), 0);
	assert_int_equal(zns_write_start(z, &other), 0);
	zns_write_landed(z, &other);
	zns_write_end(z, &other, true);

	zns_write_landed(z, &moving);
	pthread_join(tf, NULL);
	assert_int_equal(f.done, 1);
	zns_write_end(z, &moving, true);

	struct fence_arg s = { .z = z, .w = &queued };
	pthread_create(&ts, NULL, starter, &s);
	assert_still_waiting(&s);
	assert_int_equal(zns_mgmt_send(z, zs(1), NVME_ZNS_ZSA_RESET, false, NULL), 0);
	zns_unfence(z, 1);
	pthread_join(ts, NULL);
	assert_int_equal(s.st, nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE));
	zns_write_end(z, &queued, false);
	assert_int_equal(zns_zone_wp(z, 1), zs(1));

	/* Unfenced and not dropped, a write starts at once. */
	assert_int_equal(zns_write_begin(z, &queued, NS_WRITE, zs(1), 1), 0);
	assert_int_equal(zns_write_start(z, &queued), 0);
	zns_write_landed(z, &queued);
	zns_write_end(z, &queued, true);
	assert_int_equal(zns_zone_wp(z, 1), zs(1) + 1);
	rm(z);
}

/* ---- Zone Append atomicity under threads ---- */

#define APP_THREADS 8
#define APP_EACH 2000

struct app_arg {
	struct zns *z;
	uint64_t *got;
	int n;
};

static void *appender(void *p)
{
	struct app_arg *a = p;
	struct zns *z = a->z;
	while (a->n < APP_EACH) {
		struct ns_write w;
		uint32_t zone = (uint32_t)(a->n % z->g.nr_zones);
		uint16_t st = zns_write_begin(z, &w, NS_ZONE_APPEND, (uint64_t)zone << z->zone_shift, 1);
		if (st == (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_FULL) | NVME_STATUS_DNR)) {
			a->got[a->n++] = UINT64_MAX; /* zone filled by others */
			continue;
		}
		assert_int_equal(st, 0);
		a->got[a->n++] = w.slba;
		zns_write_end(z, &w, true);
	}
	return NULL;
}

static void test_append_threads(void **state)
{
	struct zns *z = malloc(sizeof(*z));
	struct zns_geom g = { .lba_shift = 12, .zone_size = 4096, .zone_cap = 4000, .nr_zones = 4,
			      .zasl_nlb = 8 };
	assert_int_equal(zns_init(z, &g), 0);
	pthread_t t[APP_THREADS];
	struct app_arg args[APP_THREADS];
	for (int i = 0; i < APP_THREADS; i++) {
		args[i] = (struct app_arg){ z, calloc(APP_EACH, sizeof(uint64_t)), 0 };
		pthread_create(&t[i], NULL, appender, &args[i]);
	}
	for (int i = 0; i < APP_THREADS; i++)
		pthread_join(t[i], NULL);
	/* Every LBA handed out exactly once, and each zone's given LBAs form
	 * [zslba, wp) with no hole. */
	uint8_t *seen = calloc(4 * 4096, 1);
	uint64_t given = 0;
	for (int i = 0; i < APP_THREADS; i++) {
		for (int k = 0; k < APP_EACH; k++) {
			uint64_t l = args[i].got[k];
			if (l == UINT64_MAX)
				continue;
			assert_true(l < 4 * 4096);
			assert_int_equal(seen[l], 0);
			seen[l] = 1;
			given++;
		}
		free(args[i].got);
	}
	uint64_t sum = 0;
	for (uint32_t zi = 0; zi < 4; zi++) {
		struct zone *zn = &z->zones[zi];
		assert_int_equal(zn->wp, zn->wp_done);
		for (uint64_t l = zi * 4096ull; l < zn->wp; l++)
			assert_int_equal(seen[l], 1);
		sum += zn->wp - zi * 4096ull;
	}
	assert_int_equal(sum, given);
	free(seen);
	rm(z);
}

/* ---- reports (ZNS 3.4.2) ---- */

static void test_report_filters_and_partial(void **state)
{
	struct zns *z = mk(0, 0);
	make_state(z, 1, IO);
	make_state(z, 2, EO);
	make_state(z, 3, C);
	make_state(z, 4, F);
	make_state(z, 5, RO);
	make_state(z, 6, OFF);
	uint8_t buf[64 + NZ * 64];
	struct nvme_zone_report *r = (void *)buf;
	static const struct { uint8_t zrasf; uint64_t n; uint32_t first; } f[] = {
		{ NVME_ZNS_ZRAS_REPORT_ALL, NZ, 0 },
		{ NVME_ZNS_ZRAS_REPORT_EMPTY, 2, 0 },
		{ NVME_ZNS_ZRAS_REPORT_IMPL_OPENED, 1, 1 },
		{ NVME_ZNS_ZRAS_REPORT_EXPL_OPENED, 1, 2 },
		{ NVME_ZNS_ZRAS_REPORT_CLOSED, 1, 3 },
		{ NVME_ZNS_ZRAS_REPORT_FULL, 1, 4 },
		{ NVME_ZNS_ZRAS_REPORT_READ_ONLY, 1, 5 },
		{ NVME_ZNS_ZRAS_REPORT_OFFLINE, 1, 6 },
	};
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		assert_int_equal(zns_report(z, 0, 0, f[k].zrasf, false, buf, sizeof(buf)), 0);
		assert_int_equal(le64toh(r->nr_zones), f[k].n);
		assert_int_equal(le64toh(r->entries[0].zslba), zs(f[k].first));
		assert_int_equal(r->entries[0].zs >> 4, z->zones[f[k].first].state);
	}
	/* Descriptor contents. */
	assert_int_equal(zns_report(z, zs(1), 0, 0, false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(r->nr_zones), NZ - 1);
	assert_int_equal(r->entries[0].zt, NVME_ZONE_TYPE_SEQWRITE_REQ);
	assert_int_equal(le64toh(r->entries[0].zcap), ZCAP);
	assert_int_equal(le64toh(r->entries[0].wp), zs(1) + 2);
	assert_int_equal(le64toh(r->entries[3].wp), zs(4) + ZCAP); /* full */
	/* SLBA inside a zone starts at that zone. */
	assert_int_equal(zns_report(z, zs(3) + 5, 0, 0, false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(r->entries[0].zslba), zs(3));
	/* A buffer for 2 descriptors: partial counts what was returned, not
	 * partial counts every match. */
	assert_int_equal(zns_report(z, 0, 0, 0, true, buf, 64 + 2 * 64), 0);
	assert_int_equal(le64toh(r->nr_zones), 2);
	assert_int_equal(zns_report(z, 0, 0, 0, false, buf, 64 + 2 * 64 + 10), 0);
	assert_int_equal(le64toh(r->nr_zones), NZ);
	assert_int_equal(le64toh(r->entries[1].zslba), zs(1));
	/* Errors. */
	assert_int_equal(zns_report(z, zs(NZ), 0, 0, false, buf, sizeof(buf)), GS(NVME_SC_LBA_RANGE));
	assert_int_equal(zns_report(z, 0, 2, 0, false, buf, sizeof(buf)), GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(zns_report(z, 0, 0, 8, false, buf, sizeof(buf)), GS(NVME_SC_INVALID_FIELD));
	assert_int_equal(zns_report(z, 0, 0, 0, false, buf, 63), GS(NVME_SC_INVALID_FIELD));
	/* A header-only buffer is fine: it reports the count. */
	assert_int_equal(zns_report(z, 0, 0, 0, false, buf, 64), 0);
	assert_int_equal(le64toh(r->nr_zones), NZ);
	rm(z);
}

/* ---- power-up rule and changed zones ---- */

static void test_power_up(void **state)
{
	struct zns *z = mk(0, 3);
	make_state(z, 0, IO);
	make_state(z, 1, EO);
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_OPEN), 0); /* open, nothing written */
	assert_int_equal(zns_mgmt_send(z, zs(3), NVME_ZNS_ZSA_SET_DESC_EXT, false, (uint8_t[ZDE]){1}),
			 CS(NVME_SC_ZNS_TOO_MANY_ACTIVE));
	uint32_t ro = 6, off = 7;
	zns_power_up(z, &off, 1, &ro, 1);
	assert_int_equal(z->zones[0].state, C);
	assert_int_equal(z->zones[1].state, C);
	assert_int_equal(z->zones[2].state, E);
	assert_int_equal(z->zones[6].state, RO);
	assert_int_equal(z->zones[7].state, OFF);
	assert_int_equal(z->nr_open, 0);
	uint64_t ids[8], seen = 0, other = 0;
	assert_int_equal(zns_changed_zones(z, &seen, ids, 8), 2);
	assert_int_equal(ids[0], zs(6));
	assert_int_equal(ids[1], zs(7));
	assert_int_equal(zns_changed_zones(z, &seen, ids, 8), 0); /* read clears */
	/* for that reader: another still sees both, and more than fit is 0xffff */
	assert_int_equal(zns_changed_zones(z, &other, ids, 1), 0xffff);
	assert_int_equal(zns_changed_zones(z, &other, ids, 1), 0);
	rm(z);
}

static void test_power_up_finishes_over_active_limit(void **state)
{
	/* Recovered state that exceeds a (lowered) active limit. */
	struct zns *z = mk(0, 2);
	zns_load(z, 0, C, 0, zs(0) + 3);
	zns_load(z, 1, C, 0, zs(1) + 3);
	zns_load(z, 2, IO, 0, zs(2) + 3);
	zns_power_up(z, NULL, 0, NULL, 0);
	assert_int_equal(z->nr_active, 2);
	assert_int_equal(z->zones[2].state, F);
	assert_true(z->zones[2].za & NVME_ZNS_ZA_ZFC);
	assert_int_equal(z->zones[0].state, C);
	rm(z);
}

/* The controller takes zones Read Only / Offline while they are in use
 * (zns_fail_zone): counters follow, each zone is listed once in the
 * Changed Zone List, I/O and actions then get a drive's statuses, and
 * Offline is final. */
/* The runs zns_read_run() gives from `from` to the end of its zone, each
 * [start, end) reading from the file (1) or as zeros (0). */
static void expect_runs(struct zns *z, uint64_t from, const uint64_t (*want)[3], size_t n)
{
	uint64_t lba = from, zend = from - from % ZSZ + ZSZ;
	for (size_t k = 0; k < n; k++) {
		bool file;
		assert_int_equal(lba, want[k][0]);
		lba = zns_read_run(z, lba, zend, &file);
		assert_int_equal(lba, want[k][1]);
		assert_int_equal(file, want[k][2]);
	}
	assert_int_equal(lba, zend);
}

/* zns_read_run(): the written prefix reads from the file; writes in flight
 * read as zeros (their blocks may hold what the zone held before a Reset),
 * writes that ended ahead of them - or failed and kept their range - from
 * the file, and zeros from the write pointer on. */
static void test_read_runs(void **state)
{
	(void)state;
	struct zns *z = mk(0, 0);
	struct ns_write a, b, c;
	const uint64_t s = zs(1);
	bool file;

	assert_int_equal(wr(z, s, 2), 0);
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, s + 2, 2), 0);
	assert_int_equal(zns_write_begin(z, &b, NS_ZONE_APPEND, s, 3), 0);
	assert_int_equal(zns_write_begin(z, &c, NS_WRITE, s + 7, 1), 0);
	const uint64_t in_flight[][3] = { { s, s + 2, 1 }, { s + 2, s + 4, 0 }, { s + 4, s + 7, 0 },
					  { s + 7, s + 8, 0 }, { s + 8, s + ZSZ, 0 } };
	expect_runs(z, s, in_flight, 5);

	zns_write_end(z, &b, true); /* ahead of a */
	const uint64_t gapped[][3] = { { s, s + 2, 1 }, { s + 2, s + 4, 0 }, { s + 4, s + 7, 1 },
				       { s + 7, s + 8, 0 }, { s + 8, s + ZSZ, 0 } };
	expect_runs(z, s, gapped, 5);
	/* From inside a run, to a given end, and clamped to the zone. */
	assert_int_equal(zns_read_run(z, s + 3, s + 5, &file), s + 4);
	assert_false(file);
	assert_int_equal(zns_read_run(z, s + 1, s + 2, &file), s + 2);
	assert_true(file);
	assert_int_equal(zns_read_run(z, s + 4, s + 5, &file), s + 5);
	assert_true(file);
	assert_int_equal(zns_read_run(z, s + 7, zs(3), &file), s + 8);
	assert_false(file);
	assert_int_equal(zns_read_run(z, s + 8, zs(3), &file), zs(2));
	assert_false(file);

	zns_write_end(z, &c, true);
	zns_write_end(z, &a, true);
	const uint64_t ended[][3] = { { s, s + 8, 1 }, { s + 8, s + ZSZ, 0 } };
	expect_runs(z, s, ended, 2);

	/* Reset: nothing reads from the file, a write in flight included. */
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(zns_write_begin(z, &a, NS_WRITE, s, 4), 0);
	assert_int_equal(zns_write_begin(z, &b, NS_WRITE, s + 4, 2), 0);
	const uint64_t reset[][3] = { { s, s + 4, 0 }, { s + 4, s + 6, 0 }, { s + 6, s + ZSZ, 0 } };
	expect_runs(z, s, reset, 3);
	/* A failed write that keeps its range: zeroed before it was marked
	 * (ns_write_data), so it reads from the file already. */
	zns_write_fail(z, &a);
	assert_int_equal(a.failed, NS_WRITE_KEPT);
	const uint64_t kept[][3] = { { s, s + 4, 1 }, { s + 4, s + 6, 0 }, { s + 6, s + ZSZ, 0 } };
	expect_runs(z, s, kept, 3);
	zns_write_end(z, &a, false);
	zns_write_end(z, &b, true);

	/* Finish: what it moved the write pointer over reads from the file
	 * (ns.c erased it), up to the capacity. */
	assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_FINISH), 0);
	const uint64_t finished[][3] = { { s, s + ZCAP, 1 }, { s + ZCAP, s + ZSZ, 0 } };
	expect_runs(z, s, finished, 2);
	rm(z);
}

static void test_fail_zone(void **state)
{
	struct zns *z = mk(2, 3);
	uint64_t zids[NZ];
	uint8_t buf[4096];

	make_state(z, 0, IO);
	make_state(z, 1, C);
	make_state(z, 2, F);
	assert_int_equal(zns_fail_zone(z, 0, RO), 1);
	assert_int_equal(zns_fail_zone(z, 1, OFF), 1);
	assert_int_equal(zns_fail_zone(z, 2, RO), 1);
	assert_int_equal(zns_fail_zone(z, 0, RO), 0);        /* already */
	assert_int_equal(zns_fail_zone(z, 0, OFF), 1);       /* Read Only -> Offline */
	assert_int_equal(zns_fail_zone(z, 1, RO), -1);       /* Offline is final */
	assert_int_equal(zns_fail_zone(z, NZ, RO), -1);
	assert_int_equal(zns_fail_zone(z, 3, C), -1);        /* not a failure state */
	assert_int_equal(z->nr_open, 0);
	assert_int_equal(z->nr_active, 0);
	assert_null(zns_check(z));
	/* Zone 0 changed twice, listed once; each reader sees each change. */
	uint64_t seen = 0, other = 0;
	assert_true(zns_has_changed_zones(z, seen));
	assert_int_equal(zns_changed_zones(z, &seen, zids, NZ), 3);
	assert_int_equal(zids[0], zs(0));
	assert_int_equal(zids[1], zs(1));
	assert_int_equal(zids[2], zs(2));
	assert_false(zns_has_changed_zones(z, seen));
	assert_int_equal(zns_changed_zones(z, &seen, zids, NZ), 0);
	assert_int_equal(zns_fail_zone(z, 4, RO), 1);
	assert_int_equal(zns_changed_zones(z, &seen, zids, NZ), 1);
	assert_int_equal(zids[0], zs(4));
	assert_int_equal(zns_changed_zones(z, &other, zids, NZ), 4);
	/* Read Only: reads work, writes and every action but Offline fail;
	 * Offline: reads fail too (ZNS 2.1.1.6, 2.1.1.7, 3.4.3). */
	assert_int_equal(wr(z, zs(2), 1), CS(NVME_SC_ZNS_READ_ONLY));
	assert_int_equal(zns_read_check(z, zs(2), 4), 0);
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_RESET), CS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_OPEN), CS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_FINISH), CS(NVME_SC_ZNS_INVAL_TRANSITION));
	assert_int_equal(zsa(z, 2, NVME_ZNS_ZSA_OFFLINE), 0);
	assert_int_equal(zns_read_check(z, zs(1), 1), CS(NVME_SC_ZNS_OFFLINE));
	assert_int_equal(wr(z, zs(1), 1), CS(NVME_SC_ZNS_OFFLINE));
	uint64_t alba;
	assert_int_equal(app(z, zs(0), 1, &alba), CS(NVME_SC_ZNS_OFFLINE));
	/* The report says so. */
	assert_int_equal(zns_report(z, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_OFFLINE,
				    false, buf, sizeof(buf)), 0);
	assert_int_equal(le64toh(((struct nvme_zone_report *)buf)->nr_zones), 3);
	rm(z);
}

/*
 * A Reset whose commit failed (zns_set_undurable) while writes admitted
 * after it wait at its fence, here writes that filled the zone, while
 * another zone took the last open or active resource: the writes are
 * dropped with the commit's status, and the zone is Empty again with its
 * write pointer at its start (which needs no resource), consistent, and
 * refuses writes until zns_clear_undurable().
 */
static void undurable_after_fill(uint32_t max_open, uint32_t max_active, uint32_t nw)
{
	struct zns z;
	struct zns_geom g = { .lba_shift = 12, .zone_size = 16, .zone_cap = 16, .nr_zones = 4,
			      .max_open = max_open, .max_active = max_active, .zasl_nlb = 16 };
	const uint16_t fault = nvme_media_err(NVME_SC_WRITE_FAULT);
	struct ns_write w0, w1, w2, wz[4];

	assert_int_equal(zns_init(&z, &g), 0);
	assert_int_equal(zns_write_begin(&z, &w0, NS_WRITE, 0, 1), 0);  /* zone 0 open */
	assert_int_equal(zns_write_begin(&z, &w1, NS_WRITE, 16, 2), 0); /* zone 1 written */
	zns_write_end(&z, &w0, true);
	zns_write_end(&z, &w1, true);
	zns_fence(&z, 1);
	assert_int_equal(zns_mgmt_fenced(&z, 1, NVME_ZNS_ZSA_RESET, false, false), 0);
	for (uint32_t k = 0; k < nw; k++)
		assert_int_equal(zns_write_begin(&z, &wz[k], NS_WRITE, 16 + k * (16 / nw), 16 / nw),
				 0);
	assert_int_equal(zns_zone_state(&z, 1), NVME_ZNS_ZS_FULL);
	assert_int_equal(zns_write_begin(&z, &w2, NS_WRITE, 32, 1), 0); /* the last resource */
	zns_set_undurable(&z, 1, fault);
	assert_int_equal(zns_zone_state(&z, 1), NVME_ZNS_ZS_EMPTY);
	assert_int_equal(zns_zone_readable(&z, 1), 16);
	assert_null(zns_check(&z));
	assert_int_equal(zns_zone_state(&z, 0), NVME_ZNS_ZS_IMPL_OPEN); /* not closed for it */
	for (uint32_t k = 0; k < nw; k++)
		assert_int_equal(zns_write_start(&z, &wz[k]), fault);
	zns_unfence(&z, 1);
	assert_int_equal(zns_undurable(&z, 1), fault);
	assert_int_equal(zns_write_begin(&z, &w1, NS_WRITE, 16, 1), fault);
	assert_int_equal(zns_write_begin(&z, &w1, NS_ZONE_APPEND, 16, 1), fault);
	zns_clear_undurable(&z);
	assert_int_equal(zns_undurable(&z, 1), 0);
	zns_write_end(&z, &w2, true); /* zone 2 gives its resource back */
	assert_int_equal(zns_mgmt_send(&z, 32, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	assert_int_equal(zns_write_begin(&z, &w1, NS_WRITE, 16, 1), 0);
	zns_write_end(&z, &w1, true);
	assert_null(zns_check(&z));
	zns_destroy(&z);
}

/*
 * What the host did to the zone between the Reset and the failure of its
 * commit without writing stays: an explicit Open, an extension (Set Zone
 * Descriptor Extension makes an Empty zone Closed). A zone that writes
 * admitted meanwhile opened is closed as Zone Close closes it.
 */
static void undurable_keeps(uint8_t zsa, uint32_t nlb, uint8_t want)
{
	struct zns z;
	struct zns_geom g = { .lba_shift = 12, .zone_size = 16, .zone_cap = 16, .nr_zones = 4,
			      .zde_size = 64, .zasl_nlb = 16 };
	const uint16_t fault = nvme_media_err(NVME_SC_WRITE_FAULT);
	uint8_t zde[64];
	struct ns_write w;

	memset(zde, 0x5a, sizeof(zde));
	assert_int_equal(zns_init(&z, &g), 0);
	zns_fence(&z, 1);
	assert_int_equal(zns_mgmt_fenced(&z, 1, NVME_ZNS_ZSA_RESET, false, false), 0);
	assert_int_equal(zns_mgmt_send(&z, 16, zsa, false, zde), 0);
	assert_int_equal(zns_write_begin(&z, &w, NS_WRITE, 16, nlb), 0);
	zns_set_undurable(&z, 1, fault);
	assert_int_equal(zns_write_start(&z, &w), fault);
	zns_unfence(&z, 1);
	assert_int_equal(zns_zone_state(&z, 1), want);
	assert_int_equal(zns_zone_readable(&z, 1), 16);
	if (zsa == NVME_ZNS_ZSA_SET_DESC_EXT)
		assert_memory_equal(z.zde + 1 * 64, zde, sizeof(zde));
	assert_null(zns_check(&z));
	zns_destroy(&z);
}

static void test_undurable_reset_keeps_host_changes(void **state)
{
	(void)state;
	undurable_keeps(NVME_ZNS_ZSA_OPEN, 1, NVME_ZNS_ZS_EXPL_OPEN);
	undurable_keeps(NVME_ZNS_ZSA_SET_DESC_EXT, 1, NVME_ZNS_ZS_CLOSED);
	undurable_keeps(NVME_ZNS_ZSA_SET_DESC_EXT, 16, NVME_ZNS_ZS_CLOSED); /* filled it */
}

static void test_undurable_reset_after_fill(void **state)
{
	(void)state;
	undurable_after_fill(0, 2, 1); /* one write filled it; no active resource left */
	undurable_after_fill(0, 2, 4); /* four did */
	undurable_after_fill(2, 0, 1); /* no open resource left */
}

/*
 * A failed write that had implicitly opened an Empty zone and filled it
 * gives its range back: the zone holds nothing and goes back to Empty
 * (zone.h, zns_write_fail: "implicitly opened with nothing written ->
 * Empty"), which needs no open or active resource - even when another
 * zone took the last one meanwhile. It must not be Finished by the
 * Controller (Full, ZFC: a whole zone's capacity lost to a failed write),
 * nor close another zone to make room it does not need.
 */
static void fill_fails(uint32_t max_open, uint32_t max_active, bool explicit_other)
{
	struct zns *z = mk(max_open, max_active);
	struct ns_write w;
	assert_int_equal(zns_write_begin(z, &w, NS_WRITE, zs(0), ZCAP), 0);
	assert_int_equal(zns_zone_state(z, 0), F);
	if (explicit_other)
		assert_int_equal(zsa(z, 1, NVME_ZNS_ZSA_OPEN), 0);
	else
		assert_int_equal(wr(z, zs(1), 2), 0);
	zns_write_fail(z, &w);
	zns_write_end(z, &w, false);
	assert_int_equal(w.failed, NS_WRITE_GIVEN_BACK);
	assert_int_equal(zns_zone_state(z, 0), E);
	assert_int_equal(zns_zone_wp(z, 0), zs(0));
	assert_false(zns_zone_attrs(z, 0) & NVME_ZNS_ZA_ZFC);
	assert_int_equal(zns_zone_state(z, 1), explicit_other ? EO : IO);
	rm(z);
}

static void test_failed_fill_of_empty_zone_goes_empty(void **state)
{
	(void)state;
	fill_fails(0, 1, false); /* the last active resource taken meanwhile */
	fill_fails(1, 0, true);  /* the last open resource, explicitly */
	fill_fails(1, 0, false); /* implicitly: not closed for nothing */
}

/*
 * A write implicitly opens an Empty zone, the host closes it (Closed: the
 * write holds LBAs), and the write fails, giving its range back: the zone
 * holds nothing, and - as Close and the power-up rule would make it - is
 * Empty again, not Closed with nothing written holding an active resource
 * (here the only one: the next write to another zone would fail with Too
 * Many Active Zones).
 */
static void test_failed_write_in_closed_zone_goes_empty(void **state)
{
	(void)state;
	struct zns *z = mk(0, 1);
	struct ns_write w;
	assert_int_equal(zns_write_begin(z, &w, NS_WRITE, zs(0), 2), 0);
	assert_int_equal(zsa(z, 0, NVME_ZNS_ZSA_CLOSE), 0);
	assert_int_equal(zns_zone_state(z, 0), C);
	zns_write_fail(z, &w);
	zns_write_end(z, &w, false);
	assert_int_equal(w.failed, NS_WRITE_GIVEN_BACK);
	assert_int_equal(zns_zone_wp(z, 0), zs(0));
	assert_int_equal(zns_zone_state(z, 0), E);
	assert_int_equal(wr(z, zs(1), 1), 0);
	rm(z);
}

/* The same when the host closed the zone those writes opened, before the
 * Reset's commit failed: nothing written, so Empty, not Closed. */
static void test_undurable_reset_closed_by_host(void **state)
{
	(void)state;
	struct zns z;
	struct zns_geom g = { .lba_shift = 12, .zone_size = 16, .zone_cap = 16, .nr_zones = 4,
			      .max_active = 1, .zasl_nlb = 16 };
	const uint16_t fault = nvme_media_err(NVME_SC_WRITE_FAULT);
	struct ns_write w;

	assert_int_equal(zns_init(&z, &g), 0);
	zns_fence(&z, 1);
	assert_int_equal(zns_mgmt_fenced(&z, 1, NVME_ZNS_ZSA_RESET, false, false), 0);
	assert_int_equal(zns_write_begin(&z, &w, NS_WRITE, 16, 2), 0);
	assert_int_equal(zns_mgmt_send(&z, 16, NVME_ZNS_ZSA_CLOSE, false, NULL), 0);
	zns_set_undurable(&z, 1, fault);
	assert_int_equal(zns_write_start(&z, &w), fault);
	zns_unfence(&z, 1);
	assert_int_equal(zns_zone_readable(&z, 1), 16);
	assert_int_equal(zns_zone_state(&z, 1), NVME_ZNS_ZS_EMPTY);
	assert_null(zns_check(&z));
	zns_destroy(&z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mgmt_transitions),
		cmocka_unit_test(test_failed_fill_of_empty_zone_goes_empty),
		cmocka_unit_test(test_failed_write_in_closed_zone_goes_empty),
		cmocka_unit_test(test_undurable_reset_closed_by_host),
		cmocka_unit_test(test_undurable_reset_after_fill),
		cmocka_unit_test(test_undurable_reset_keeps_host_changes),
		cmocka_unit_test(test_mgmt_bad_lba),
		cmocka_unit_test(test_close_unwritten_goes_empty),
		cmocka_unit_test(test_zde),
		cmocka_unit_test(test_write_checks),
		cmocka_unit_test(test_append_fills_to_boundary),
		cmocka_unit_test(test_lba_range),
		cmocka_unit_test(test_implicit_open_closes_oldest),
		cmocka_unit_test(test_explicit_opens_are_not_closed),
		cmocka_unit_test(test_active_limit),
		cmocka_unit_test(test_select_all),
		cmocka_unit_test(test_select_all_open_over_limit),
		cmocka_unit_test(test_select_all_open_does_not_reopen_what_it_closed),
		cmocka_unit_test(test_out_of_order_completion),
		cmocka_unit_test(test_next_gapped),
		cmocka_unit_test(test_full_with_data_in_flight_is_recorded_open),
		cmocka_unit_test(test_reset_drops_inflight),
		cmocka_unit_test(test_write_waits_for_scrub),
		cmocka_unit_test(test_fence),
		cmocka_unit_test(test_append_threads),
		cmocka_unit_test(test_report_filters_and_partial),
		cmocka_unit_test(test_power_up),
		cmocka_unit_test(test_power_up_finishes_over_active_limit),
		cmocka_unit_test(test_fail_zone),
		cmocka_unit_test(test_read_runs),
	};
	return cmocka_run_group_tests_name("zone", tests, NULL, NULL);
}
