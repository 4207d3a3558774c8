/*
 * What reads of a zoned namespace return while writes are in flight. A Zone
 * Reset keeps the zone's blocks in the data file (common/ns.c), so the file
 * holds data from before the Reset wherever the zone's new writes have not
 * landed: a read must never return it. Blocks of a write still in flight
 * read as zeros (or its data), blocks of a write that ended read its data -
 * also when it ended ahead of an older write - and ns_read_borrow() lends
 * only ranges that read from the file. A ZRWA's window reads what it holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "config.h"
#include "ns.h"
#include "../lib/ns_fixture.h"

#define NZ 4
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define BS 4096u
#define OLD 0xaa /* what the zone held before its Reset */

static int setup_cfg(void **state, uint64_t zrwa_size)
{
	struct ns_fixture *f = ns_fixture_new("zreads", NZ, ZLBAS, true);
	f->cfg.cross_zone_read = true;
	f->cfg.zrwa_size = zrwa_size;
	f->cfg.zrwa_flush_granularity = zrwa_size ? BS : 0;
	ns_fixture_open(f, false);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_cfg(state, 0); }
static int setup_zrwa(void **state) { return setup_cfg(state, 8 * BS); }

static int teardown(void **state)
{
	ns_fixture_free(*state);
	return 0;
}

/* The data half of a write begun with ns_write_begin(): nlb blocks of fill. */
static uint16_t land(struct ns *ns, struct ns_write *w, uint8_t fill)
{
	size_t len = (size_t)w->nlb * BS;
	uint8_t *b = malloc(len);
	memset(b, fill, len);
	struct iovec iov = { b, len };
	uint16_t st = ns_write_data(ns, w, &iov, 1);
	free(b);
	return st;
}

/* A whole write of nlb blocks of fill at slba. */
static void write_all(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	uint16_t st = land(ns, &w, fill);
	assert_int_equal(st, 0);
	ns_write_end(ns, &w, st);
}

/* Fill a zone with OLD and Reset it: the file still holds OLD there. */
static void reset_over_old(struct ns *ns, uint64_t zslba)
{
	write_all(ns, zslba, ZLBAS, OLD);
	assert_int_equal(ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_RESET, false, NULL), 0);
}

/* Read [slba, slba + nlb) both ways (to the I/O thread and from the page
 * cache) and check that block k holds want[k] throughout, or (alt not
 * NULL) alt[k] throughout. */
static void expect_either(struct ns *ns, uint64_t slba, uint32_t nlb, const uint8_t *want,
			  const uint8_t *alt)
{
	size_t len = (size_t)nlb * BS;
	uint8_t *b = malloc(len);
	for (int cached = 0; cached < 2; cached++) {
		memset(b, 0x5c, len);
		struct iovec iov = { b, len };
		uint16_t st = 0;
		if (cached) {
			if (!ns_read_cached(ns, slba, nlb, &iov, 1, &st))
				continue; /* not cached: the first read was that path */
		} else {
			st = ns_read(ns, slba, nlb, &iov, 1);
		}
		assert_int_equal(st, 0);
		for (uint32_t k = 0; k < nlb; k++) {
			const uint8_t *blk = b + (size_t)k * BS;
			uint8_t v = alt && blk[0] == alt[k] ? alt[k] : want[k];
			for (size_t x = 0; x < BS; x++)
				if (blk[x] != v)
					fail_msg("%s read: LBA %llu byte %zu is %#x, not %#x",
						 cached ? "cached" : "plain",
						 (unsigned long long)(slba + k), x, blk[x], v);
		}
	}
	free(b);
}

static void expect(struct ns *ns, uint64_t slba, uint32_t nlb, const uint8_t *want)
{
	expect_either(ns, slba, nlb, want, NULL);
}

/* A Write at the write pointer of a Reset zone: until it ends its blocks
 * read as zeros, never as what the zone held before the Reset. */
static void test_write_in_flight_after_reset(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 1 * ZLBAS;
	const uint8_t zeros[8] = { 0 }, landed[8] = { 0x11, 0x11, 0x11, 0x11 };

	reset_over_old(ns, z);
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, z, 4), 0);
	expect(ns, z, 8, zeros);
	assert_null(ns_read_borrow(ns, z, 4));
	assert_null(ns_read_borrow(ns, z + 1, 1));

	/* Its data landed but it has not ended: zeros or its data. */
	uint16_t st = land(ns, &w, 0x11);
	assert_int_equal(st, 0);
	expect_either(ns, z, 8, zeros, landed);

	ns_write_end(ns, &w, st);
	expect(ns, z, 8, landed);
	assert_non_null(ns_read_borrow(ns, z, 4));
	assert_null(ns_read_borrow(ns, z, 5)); /* above the write pointer */
}

/* Writes that end out of order: one that ended reads its data (it may have
 * been acknowledged) while older and newer ones in flight read as zeros. */
static void test_out_of_order_ends(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 2 * ZLBAS;
	struct ns_write w1, w2, w3;

	reset_over_old(ns, z);
	assert_int_equal(ns_write_begin(ns, &w1, NS_WRITE, z, 4), 0);
	assert_int_equal(ns_write_begin(ns, &w2, NS_ZONE_APPEND, z, 4), 0);
	assert_int_equal(ns_write_begin(ns, &w3, NS_WRITE, z + 8, 4), 0);
	assert_int_equal(w2.slba, z + 4);

	uint16_t st = land(ns, &w2, 0x22);
	assert_int_equal(st, 0);
	ns_write_end(ns, &w2, st);
	const uint8_t mid[14] = { 0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22 };
	expect(ns, z, 14, mid);
	expect(ns, z + 5, 2, mid + 5);
	assert_non_null(ns_read_borrow(ns, z + 4, 4));
	assert_null(ns_read_borrow(ns, z + 3, 2));
	assert_null(ns_read_borrow(ns, z + 7, 2));
	assert_null(ns_read_borrow(ns, z, 8));

	/* The newest lands first: the oldest is still in flight. */
	st = land(ns, &w3, 0x33);
	assert_int_equal(st, 0);
	ns_write_end(ns, &w3, st);
	const uint8_t late[14] = { 0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33 };
	expect(ns, z, 14, late);
	assert_non_null(ns_read_borrow(ns, z + 4, 8));
	assert_null(ns_read_borrow(ns, z + 2, 4));

	st = land(ns, &w1, 0x11);
	assert_int_equal(st, 0);
	ns_write_end(ns, &w1, st);
	const uint8_t all[14] = { 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22,
				  0x33, 0x33, 0x33, 0x33 };
	expect(ns, z, 14, all);
	assert_non_null(ns_read_borrow(ns, z, 12));
}

/* A read across two zones takes each zone's own rule. */
static void test_across_zones(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 0;

	write_all(ns, z, ZLBAS, 0x44);
	reset_over_old(ns, z + ZLBAS);
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, z + ZLBAS, 2), 0);
	uint8_t want[6] = { 0x44, 0x44, 0x44, 0x44, 0, 0 };
	expect(ns, z + ZLBAS - 4, 6, want);
	assert_null(ns_read_borrow(ns, z + ZLBAS - 4, 6));
	uint16_t st = land(ns, &w, 0x55);
	ns_write_end(ns, &w, st);
	want[4] = want[5] = 0x55;
	expect(ns, z + ZLBAS - 4, 6, want);
}

/* A ZRWA's window reads what its blocks hold (they were erased when the
 * ZRWA was allocated): a write in flight over data written there before
 * reads as that data or its own, not as zeros. */
static void test_zrwa_window_in_flight(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 3 * ZLBAS;

	reset_over_old(ns, z);
	assert_int_equal(ns_zone_mgmt_send_zrwaa(ns, z, NVME_ZNS_ZSA_OPEN, NULL), 0);
	write_all(ns, z + 2, 2, 0x66);
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, z + 2, 4), 0);
	const uint8_t want[10] = { 0, 0, 0x66, 0x66 };
	const uint8_t after[10] = { 0, 0, 0x77, 0x77, 0x77, 0x77 };
	expect(ns, z, 10, want);
	uint16_t st = land(ns, &w, 0x77);
	expect_either(ns, z, 10, want, after);
	ns_write_end(ns, &w, st);
	expect(ns, z, 10, after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_in_flight_after_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_across_zones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_window_in_flight, setup_zrwa, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
