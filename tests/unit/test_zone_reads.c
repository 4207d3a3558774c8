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

#include <fcntl.h>
#include <nvme/types.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ns.h"
#include "ns_stats.h"
#include "fault_io.h"
#include "nvme_wire.h"
#include "../lib/ns_fixture.h"

#define NZ 4
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define BS 4096u
#define OLD 0xaa /* what the zone held before its Reset */

static int setup_cfg(void **state, uint64_t zrwa_size, uint64_t zrwa_fg)
{
	struct ns_fixture *f = ns_fixture_new("zreads", NZ, ZLBAS, true);
	f->cfg.cross_zone_read = true;
	f->cfg.zrwa_size = zrwa_size;
	f->cfg.zrwa_flush_granularity = zrwa_fg;
	ns_fixture_open(f, false);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_cfg(state, 0, 0); }
static int setup_zrwa(void **state) { return setup_cfg(state, 8 * BS, BS); }
/* A ZRWA of 8 blocks flushed 2 blocks at a time (ZRWAFG). */
static int setup_zrwa_fg2(void **state) { return setup_cfg(state, 8 * BS, 2 * BS); }

static int teardown(void **state)
{
	fault_io_disarm(); /* a test that failed while armed leaves the next ones alone */
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

/* The data of a begun write lands and the write ends, successfully. */
static void land_ok(struct ns *ns, struct ns_write *w, uint8_t fill)
{
	uint16_t st = land(ns, w, fill);
	assert_int_equal(st, 0);
	ns_write_end(ns, w, st);
}

/* A whole write of nlb blocks of fill at slba. */
static void write_all(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	land_ok(ns, &w, fill);
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

/* The descriptor of the zone starting at zslba into *d; false (and *d
 * zeroed) if the report failed - no assertion: a child process's threads
 * call it too. */
static bool zone_desc(struct ns *ns, uint64_t zslba, struct nvme_zns_desc *d)
{
	struct nvme_zns_desc r[2] = { 0 }; /* the report's 64-byte header, then the zone */
	uint16_t st = ns_zone_report(ns, zslba, NVME_ZNS_ZRA_REPORT_ZONES, 0, true, r, sizeof(r));

	*d = r[1];
	return !st;
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

/* A Reset zone over OLD, then three writes given LBAs in turn: w1 at its
 * start, w2 an append (next to it), w3 after them; four blocks each. */
static void begin_three(struct ns *ns, uint64_t z, struct ns_write *w1, struct ns_write *w2,
			struct ns_write *w3)
{
	reset_over_old(ns, z);
	assert_int_equal(ns_write_begin(ns, w1, NS_WRITE, z, 4), 0);
	assert_int_equal(ns_write_begin(ns, w2, NS_ZONE_APPEND, z, 4), 0);
	assert_int_equal(ns_write_begin(ns, w3, NS_WRITE, z + 8, 4), 0);
	assert_int_equal(w2->slba, z + 4);
}

/* Writes that end out of order: one that ended reads its data (it may have
 * been acknowledged) while older and newer ones in flight read as zeros. */
static void test_out_of_order_ends(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 2 * ZLBAS;
	struct ns_write w1, w2, w3;

	begin_three(ns, z, &w1, &w2, &w3);

	land_ok(ns, &w2, 0x22);
	const uint8_t mid[14] = { 0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22 };
	expect(ns, z, 14, mid);
	expect(ns, z + 5, 2, mid + 5);
	assert_non_null(ns_read_borrow(ns, z + 4, 4));
	assert_null(ns_read_borrow(ns, z + 3, 2));
	assert_null(ns_read_borrow(ns, z + 7, 2));
	assert_null(ns_read_borrow(ns, z, 8));

	/* The newest lands first: the oldest is still in flight. */
	land_ok(ns, &w3, 0x33);
	const uint8_t late[14] = { 0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33 };
	expect(ns, z, 14, late);
	assert_non_null(ns_read_borrow(ns, z + 4, 8));
	assert_null(ns_read_borrow(ns, z + 2, 4));

	land_ok(ns, &w1, 0x11);
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

/* A Write given LBAs before a Reset, whose data had not started moving when
 * the Reset came, never lands: not under the zone's next write, which the
 * host may have been told is done. It fails with Zone Invalid Write (its
 * LBAs are no longer the write pointer's). */
static void test_reset_drops_unstarted_write(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 1 * ZLBAS;
	const uint8_t newer[4] = { 0x22, 0x22, 0x22, 0x22 };

	reset_over_old(ns, z);
	struct ns_write w1;
	assert_int_equal(ns_write_begin(ns, &w1, NS_WRITE, z, 4), 0);
	assert_int_equal(ns_zone_mgmt_send(ns, z, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	write_all(ns, z, 4, 0x22);
	uint16_t st = land(ns, &w1, 0x11);
	assert_int_equal(st, nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE));
	ns_write_end(ns, &w1, st);
	expect(ns, z, 4, newer);
}

/* A Finish moves the write pointer over the blocks of writes in flight
 * that have not started moving: they read as zeros, never as what the
 * zone held before its Reset, and the writes fail with Zone Is Full (the
 * Finish came first). A write that ended ahead of them keeps its data. */
static void test_finish_erases_unstarted_writes(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 2 * ZLBAS;
	struct ns_write w1, w2, w3;

	begin_three(ns, z, &w1, &w2, &w3);
	land_ok(ns, &w3, 0x33);

	assert_int_equal(ns_zone_mgmt_send(ns, z, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	uint8_t want[ZLBAS] = { 0 };
	memset(want + 8, 0x33, 4);
	expect(ns, z, ZLBAS, want);
	struct ns_write *dropped[] = { &w1, &w2 };
	for (int k = 0; k < 2; k++) {
		uint16_t st = land(ns, dropped[k], 0x11);
		assert_int_equal(st, nvme_cmd_err(NVME_SC_ZNS_FULL));
		ns_write_end(ns, dropped[k], st);
	}
	expect(ns, z, ZLBAS, want);
}

/* A write whose data landed but whose end has not run yet (its completion
 * is on its way to the loop) when a Finish comes: it succeeds, so its
 * blocks keep its data - also after a Finish the engine refuses (not a zone
 * start), which must erase nothing. */
static void test_finish_keeps_landed_write(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 3 * ZLBAS;
	uint8_t want[ZLBAS] = { 0 };
	memset(want, 0x11, 4);

	for (int bad = 1; bad >= 0; bad--) {
		struct ns_write w;
		assert_int_equal(ns_zone_mgmt_send(ns, z, NVME_ZNS_ZSA_RESET, false, NULL), 0);
		reset_over_old(ns, z);
		assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, z, 4), 0);
		uint16_t st = land(ns, &w, 0x11);
		assert_int_equal(st, 0);
		assert_int_equal(ns_zone_mgmt_send(ns, z + (uint64_t)bad, NVME_ZNS_ZSA_FINISH, false,
						   NULL),
				 bad ? nvme_err(NVME_SC_INVALID_FIELD) : 0);
		ns_write_end(ns, &w, st);
		expect(ns, z, bad ? 4 : ZLBAS, want);
	}
}

/* The controller finishes a zone when the write that filled it fails and
 * it cannot open again (max_open 1). An older write still in flight keeps
 * its LBAs: its blocks read as zeros until it lands, then its data; if it
 * fails, zeros; a Reset drops it like any write in flight, so it never lands
 * over the zone's next write. Never what the zone held before its Reset. */
static int setup_open1(void **state)
{
	struct ns_fixture *f = ns_fixture_new("zreads", NZ, ZLBAS, true);
	f->cfg.cross_zone_read = true;
	f->cfg.max_open = 1;
	ns_fixture_open(f, false);
	*state = f;
	return 0;
}

static void fail_next_write(void)
{
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_WRITE,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1, .count = 1 });
}

/* Zone z finished by the controller with w0 (its first four blocks) in flight. */
static void finished_over(struct ns *ns, uint64_t z, struct ns_write *w0)
{
	struct ns_write w1;
	assert_int_equal(ns_zone_mgmt_send(ns, 2 * ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	assert_int_equal(ns_zone_mgmt_send(ns, z, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	reset_over_old(ns, z);
	assert_int_equal(ns_write_begin(ns, w0, NS_WRITE, z, 4), 0);
	assert_int_equal(ns_write_begin(ns, &w1, NS_WRITE, z + 4, ZLBAS - 4), 0); /* fills it */
	assert_int_equal(ns_zone_mgmt_send(ns, 2 * ZLBAS, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
	fail_next_write();
	uint16_t st = land(ns, &w1, 0x22);
	fault_io_disarm();
	assert_int_not_equal(st, 0);
	ns_write_end(ns, &w1, st);
	struct nvme_zns_desc d;
	assert_true(zone_desc(ns, z, &d));
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	assert_true(d.za & NVME_ZNS_ZA_ZFC);
}

static void test_finished_by_controller_over_writes(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 1 * ZLBAS;
	const uint8_t zeros[ZLBAS] = { 0 };
	uint8_t landed[ZLBAS] = { 0 }, newer[4];
	memset(landed, 0x11, 4);
	memset(newer, 0x33, 4);
	struct ns_write w0;

	finished_over(ns, z, &w0);
	expect(ns, z, ZLBAS, zeros);
	land_ok(ns, &w0, 0x11);
	expect(ns, z, ZLBAS, landed);

	finished_over(ns, z, &w0);
	fail_next_write();
	uint16_t st = land(ns, &w0, 0x11);
	fault_io_disarm();
	assert_int_not_equal(st, 0);
	ns_write_end(ns, &w0, st);
	expect(ns, z, ZLBAS, zeros);

	finished_over(ns, z, &w0);
	assert_int_equal(ns_zone_mgmt_send(ns, 2 * ZLBAS, NVME_ZNS_ZSA_CLOSE, false, NULL), 0);
	assert_int_equal(ns_zone_mgmt_send(ns, z, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	write_all(ns, z, 4, 0x33);
	st = land(ns, &w0, 0x11);
	assert_int_equal(st, nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE));
	ns_write_end(ns, &w0, st);
	expect(ns, z, 4, newer);
}

/* The failed write that filled a zone, with nothing older in flight: the
 * controller finishes the zone over the failed range at once, so the next
 * commit records it Full - after a data sync that makes the range's zeroing
 * durable (or a power cut could bring back a Full zone reading data from
 * before its Reset). */
static void test_finished_by_controller_synced_first(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 1 * ZLBAS;
	struct ns_write w;

	reset_over_old(ns, z);
	write_all(ns, z, 2, 0x11);
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, z + 2, ZLBAS - 2), 0); /* fills it */
	assert_int_equal(ns_zone_mgmt_send(ns, 2 * ZLBAS, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
	assert_int_equal(ns_sync_wait(ns), 0);
	fail_next_write();
	uint16_t st = land(ns, &w, 0x44);
	fault_io_disarm();
	assert_int_not_equal(st, 0);
	const struct ns_stats *s = ns_stats(ns);
	uint64_t syncs = s->data_syncs, records = s->records;
	assert_int_equal(ns_sync_wait(ns), 0); /* a Flush before the write's end */
	assert_true(s->records > records);
	assert_true(s->data_syncs > syncs);
	ns_write_end(ns, &w, st);
}

/* What test_reset_durable_first does to a zone it sees reset. */
enum after_reset { THEN_WRITE, THEN_FINISH, THEN_ZRWA };

struct after_racer {
	struct ns *ns;
	enum after_reset then;
	volatile bool stop;
};

/* Wait until zone 1 reads Empty (its Reset applied), then act on it. */
static void *after_reset_racer(void *p)
{
	struct after_racer *r = p;
	static uint8_t b[2 * BS];
	struct iovec iov = { b, sizeof(b) };
	struct nvme_zns_desc d;
	struct ns_write w;

	memset(b, 0x77, sizeof(b));
	while (!r->stop) {
		if (!zone_desc(r->ns, ZLBAS, &d) || d.zs >> 4 != NVME_ZNS_ZS_EMPTY)
			continue;
		if (r->then == THEN_FINISH)
			ns_zone_mgmt_apply(r->ns, ZLBAS, NVME_ZNS_ZSA_FINISH, false, NULL);
		else if (r->then == THEN_ZRWA)
			ns_zone_mgmt_send_zrwaa(r->ns, ZLBAS, NVME_ZNS_ZSA_OPEN, NULL);
		else if (!ns_write_begin(r->ns, &w, NS_WRITE, ZLBAS, 2))
			ns_write_end(r->ns, &w, ns_write_data(r->ns, &w, &iov, 1));
		break;
	}
	return NULL;
}

/*
 * The child of test_reset_durable_first: half of zone 1 written with OLD
 * durably, then the zone reset while another thread waits to write to it
 * again from its start, finish it or give it a ZRWA as soon as it reads
 * Empty; the next metadata write kills it. Exit status 2-5: a step it
 * needed failed.
 */
static void reset_then_crash(struct ns_config *cfg, enum after_reset then, uint64_t seed)
{
	char err[256];
	struct ns *ns;
	struct ns_write w;
	uint8_t *b = malloc(ZLBAS / 2 * BS);
	struct iovec iov = { b, ZLBAS / 2 * BS };
	pthread_t t;

	if (!b || ns_open(cfg, false, &ns, err, sizeof(err)))
		_exit(2);
	memset(b, OLD, ZLBAS / 2 * BS);
	if (ns_zone_mgmt_send(ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL) ||
	    ns_write_begin(ns, &w, NS_WRITE, ZLBAS, ZLBAS / 2) || ns_write_data(ns, &w, &iov, 1))
		_exit(3);
	ns_write_end(ns, &w, 0);
	if (ns_sync_wait(ns))
		_exit(4);
	struct after_racer r = { .ns = ns, .then = then };
	if (pthread_create(&t, NULL, after_reset_racer, &r))
		_exit(4);
	fault_io_arm(&(struct fault_plan){ .seed = seed, .points = FAULT_META_WRITE,
					   .kinds = FAULT_KIND(FAULT_CRASH), .one_in = 1 });
	/* Returns only if its commit did not reach the journal: the other
	 * thread then acts before the commit that kills this process. */
	if (ns_zone_mgmt_apply(ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL))
		r.stop = true;
	pthread_join(t, NULL);
	ns_sync_wait(ns);
	_exit(5); /* no metadata write came */
}

/*
 * A Reset is durable before anything changes its zone's blocks, which it
 * keeps: until its record is durable a crash brings the zone back as it
 * was, and the blocks must then hold what they held. After each crash the
 * zone is either as it was (written to its middle with OLD) or reset
 * (Empty or with a ZRWA; or holding the new write, or Full of zeros after
 * the Finish). Before Resets waited for their commit, the new write's data
 * or the erasure landed in the blocks of a zone that came back as it was;
 * so it did with a Reset that let its fence go before that commit.
 */
static void test_reset_durable_first(void **state)
{
	struct ns_fixture *f = *state;
	static const char *const names[] = { "write", "Finish", "ZRWA allocation" };
	uint8_t *b = malloc(ZLBAS * BS);

	ns_close(f->ns);
	f->ns = NULL;
	for (uint64_t seed = 1; seed <= 8; seed++) {
		for (enum after_reset t = THEN_WRITE; t <= THEN_ZRWA; t++) {
			int status;
			pid_t pid = fork();
			assert_true(pid >= 0);
			if (pid == 0)
				reset_then_crash(&f->cfg, t, seed);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
				fail_msg("child: exit status %d, not killed", WEXITSTATUS(status));
			ns_fixture_open(f, false);
			struct nvme_zns_desc d;
			assert_true(zone_desc(f->ns, ZLBAS, &d));
			uint8_t zs = d.zs >> 4;
			uint64_t wp = le64toh(d.wp) - ZLBAS;
			struct iovec iov = { b, ZLBAS * BS };
			assert_int_equal(ns_read(f->ns, ZLBAS, ZLBAS, &iov, 1), 0);
			/* As it was: OLD below the middle. Reset: nothing written,
			 * the new write (2 blocks), or Full of zeros (the Finish). */
			uint8_t below = wp == ZLBAS / 2 ? OLD : 0x77;
			if (zs == NVME_ZNS_ZS_FULL ? t != THEN_FINISH
						   : wp != 0 && wp != 2 && wp != ZLBAS / 2)
				fail_msg("seed %llu: zone 1 came back in state %u, write pointer +%llu",
					 (unsigned long long)seed, zs, (unsigned long long)wp);
			for (uint32_t l = 0; l < ZLBAS; l++) {
				uint8_t want = zs != NVME_ZNS_ZS_FULL && l < wp ? below : 0;
				for (size_t x = 0; x < BS; x++)
					if (b[(size_t)l * BS + x] != want)
						fail_msg("seed %llu, %s: zone 1 state %u wp +%llu: LBA %u "
							 "byte %zu is %#x, not %#x",
							 (unsigned long long)seed,
							 names[t],
							 zs, (unsigned long long)wp, l, x,
							 b[(size_t)l * BS + x], want);
			}
			ns_close(f->ns);
			f->ns = NULL;
		}
	}
	free(b);
}

/* The status of a Reset whose commit fails: a journal write that fails
 * with EIO is a Write Fault. */
static uint16_t fault_st(void)
{
	return nvme_media_err(NVME_SC_WRITE_FAULT);
}

/* Zone 1 holds two blocks of OLD, durably; then its Reset fails in its
 * commit, whose journal write fails (and so do the next count - 1 of them;
 * count 0: all until disarmed). */
static void fail_reset_of_zone1(struct ns *ns, uint32_t count)
{
	write_all(ns, ZLBAS, 2, OLD);
	assert_int_equal(ns_sync_wait(ns), 0);
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_WRITE,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
					   .count = count });
	assert_int_equal(ns_zone_mgmt_apply(ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL),
			 fault_st());
}

/* A crash (no commit runs after it), with faults off again, and a reopen. */
static void crash_and_reopen(struct ns_fixture *f)
{
	ns_abandon(f->ns);
	fault_io_disarm();
	f->ns = NULL;
	ns_fixture_open(f, false);
}

/*
 * A Reset whose commit failed left its zone Empty in memory; the host
 * retries it, and the retry's success must mean durable too, though the
 * zone it resets already reads Empty: a crash then brings the zone back
 * Empty.
 */
static void test_reset_retried_after_failed_commit(void **state)
{
	struct ns_fixture *f = *state;
	struct nvme_zns_desc d;

	fail_reset_of_zone1(f->ns, 1);
	fault_io_disarm();
	assert_int_equal(ns_zone_mgmt_apply(f->ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	crash_and_reopen(f);
	assert_true(zone_desc(f->ns, ZLBAS, &d));
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
}

/*
 * A Reset whose commit failed leaves the zone's blocks as they were until a
 * commit journals it, so that a crash brings back the zone whole, data and
 * write pointer: writes to it (Write, Zone Append) are refused with the
 * commit's status, and so is a Finish (whose erasure would write it), while
 * other zones take writes.
 */
static void test_failed_reset_keeps_blocks(void **state)
{
	struct ns_fixture *f = *state;
	struct nvme_zns_desc d;
	struct ns_write w;

	fail_reset_of_zone1(f->ns, 0);
	assert_int_equal(ns_write_begin(f->ns, &w, NS_WRITE, ZLBAS, 1), fault_st());
	assert_int_equal(ns_write_begin(f->ns, &w, NS_ZONE_APPEND, ZLBAS, 1), fault_st());
	assert_int_equal(ns_zone_mgmt_apply(f->ns, ZLBAS, NVME_ZNS_ZSA_FINISH, false, NULL),
			 fault_st());
	write_all(f->ns, 2 * ZLBAS, 1, 0x11);
	crash_and_reopen(f); /* before any commit succeeded (the refusals asked for some) */
	assert_true(zone_desc(f->ns, ZLBAS, &d));
	assert_int_equal(le64toh(d.wp), ZLBAS + 2);
	const uint8_t old[2] = { OLD, OLD };
	expect_either(f->ns, ZLBAS, 2, old, NULL);
}

/* The same on a namespace with ZRWAs: a ZRWA allocation erases the zone,
 * so it is refused too. */
static void test_failed_reset_refuses_zrwa(void **state)
{
	struct ns_fixture *f = *state;

	fail_reset_of_zone1(f->ns, 0);
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, ZLBAS, NVME_ZNS_ZSA_OPEN, NULL),
			 fault_st());
	crash_and_reopen(f);
	const uint8_t old[2] = { OLD, OLD };
	expect_either(f->ns, ZLBAS, 2, old, NULL);
}

/*
 * Once the journal can be written again, writes to that zone resume without
 * the host sending a Flush: the first one refused asks for the commit. The
 * zone is then durably Empty and takes writes from its start.
 */
static void test_failed_reset_then_writes_resume(void **state)
{
	struct ns_fixture *f = *state;
	struct nvme_zns_desc d;
	struct ns_write w;

	fail_reset_of_zone1(f->ns, 1);
	fault_io_disarm();
	uint16_t st = ns_write_begin(f->ns, &w, NS_WRITE, ZLBAS, 1);
	assert_int_equal(st, fault_st());
	for (int k = 0; st && k < 60000; k++) { /* up to a minute: a loaded machine */
		usleep(1000);
		st = ns_write_begin(f->ns, &w, NS_WRITE, ZLBAS, 1);
	}
	assert_int_equal(st, 0);
	land_ok(f->ns, &w, 0x33);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	crash_and_reopen(f);
	assert_true(zone_desc(f->ns, ZLBAS, &d));
	assert_int_equal(le64toh(d.wp), ZLBAS + 1);
	const uint8_t want[2] = { 0x33, 0 };
	expect_either(f->ns, ZLBAS, 2, want, NULL);
}

/*
 * A write given LBAs after the Reset, waiting at its fence when the commit
 * fails, is dropped with the commit's status and gives its LBAs back: its
 * data never lands over the blocks the crash would bring back. A thread
 * resets zone 1 while this one tries to write at the zone's start, which
 * only a Reset applied makes possible; the commit fails in its data sync
 * (data written just before: the journal's own sync runs meanwhile, which
 * leaves time to be given LBAs).
 */
static void *reset_zone1_st(void *p)
{
	return (void *)(uintptr_t)ns_zone_mgmt_apply(p, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL);
}

/* The first byte of each of nlb blocks from lba, as the data file holds them. */
static void file_blocks(const struct ns_fixture *f, uint64_t lba, uint32_t nlb, uint8_t *out)
{
	char path[sizeof(f->cfg.path) + 8];
	snprintf(path, sizeof(path), "%s/data", f->cfg.path);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	for (uint32_t k = 0; k < nlb; k++)
		assert_int_equal(pread(fd, &out[k], 1, (off_t)((lba + k) * BS)), 1);
	close(fd);
}

static void test_failed_reset_drops_waiting_writes(void **state)
{
	struct ns_fixture *f = *state;
	struct ns *ns = f->ns;
	int admitted = 0;

	for (int round = 0; round < 200 && admitted < 5; round++) {
		assert_int_equal(ns_sync_wait(ns), 0); /* zone 1 durably Empty: writes go on */
		write_all(ns, ZLBAS, 2, OLD);
		fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_SYNC,
						   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
						   .count = 1 });
		pthread_t t;
		void *rst;
		pthread_create(&t, NULL, reset_zone1_st, ns);
		uint16_t st;
		struct ns_write w;
		do
			st = ns_write_begin(ns, &w, NS_WRITE, ZLBAS, 1);
		while (st == nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE));
		if (!st) {
			admitted++;
			st = land(ns, &w, 0x44);
			ns_write_end(ns, &w, st);
			assert_int_equal(st, fault_st());
		} else {
			assert_int_equal(st, fault_st());
		}
		pthread_join(t, &rst);
		fault_io_disarm();
		assert_int_equal((uintptr_t)rst, fault_st());
		struct nvme_zns_desc d;
		assert_true(zone_desc(ns, ZLBAS, &d));
		assert_int_equal(le64toh(d.wp), ZLBAS);
		assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_EMPTY);
		uint8_t held[2];
		file_blocks(f, ZLBAS, 2, held);
		assert_int_equal(held[0], OLD);
		assert_int_equal(held[1], OLD);
	}
	assert_true(admitted > 0);
}

/*
 * A commit that fails while it snapshots the zones (a record's data CRC
 * cannot be read) leaves none of them behind: the next commit that
 * succeeds journals every zone, those it had not reached too. Zone 0 is
 * listed first and fails; zone 1's write must still be durable after the
 * Flush that succeeds next.
 */
static void test_failed_snapshot_lists_every_zone(void **state)
{
	struct ns_fixture *f = *state;
	struct nvme_zns_desc d;

	write_all(f->ns, 0, 1, 0x22);
	write_all(f->ns, ZLBAS, 1, 0x33);
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_READ,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1, .count = 1 });
	assert_int_not_equal(ns_sync_wait(f->ns), 0);
	fault_io_disarm();
	assert_int_equal(ns_sync_wait(f->ns), 0);
	crash_and_reopen(f);
	for (uint32_t z = 0; z < 2; z++) {
		assert_true(zone_desc(f->ns, z * ZLBAS, &d));
		assert_int_equal(le64toh(d.wp), z * ZLBAS + 1);
	}
}

/* The same when the commit that fails is a Reset's: the zone stays closed
 * to writes until a commit has journaled it, and what is written after
 * that survives a crash. */
static void test_failed_reset_snapshot(void **state)
{
	struct ns_fixture *f = *state;
	struct nvme_zns_desc d;
	struct ns_write w;

	write_all(f->ns, ZLBAS, 2, OLD);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	write_all(f->ns, 0, 1, 0x22); /* listed before zone 1: its CRC read fails */
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_READ,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1, .count = 1 });
	assert_int_not_equal(ns_zone_mgmt_apply(f->ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	fault_io_disarm();
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(ns_write_begin(f->ns, &w, NS_WRITE, ZLBAS, 1), 0);
	land_ok(f->ns, &w, 0x77);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	crash_and_reopen(f);
	assert_true(zone_desc(f->ns, ZLBAS, &d));
	assert_int_equal(le64toh(d.wp), ZLBAS + 1);
	const uint8_t want[2] = { 0x77, 0 };
	expect_either(f->ns, ZLBAS, 2, want, NULL);
}

/*
 * A ZRWA allocation's erasure is made durable by a group commit, not by an
 * fdatasync of its own: Linux reports a writeback error to one fdatasync of
 * the file only, and it must fail a commit (and so the Flush covering the
 * writes it lost), not only the allocation. A data sync that fails under an
 * allocation fails it, and is a failed commit.
 */
static void test_zrwa_allocation_synced_by_commit(void **state)
{
	struct ns_fixture *f = *state;
	const struct ns_stats *s = ns_stats(f->ns);
	uint64_t failures = s->failures, commits = s->commits;

	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_DATA_SYNC,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1, .count = 1 });
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, ZLBAS, NVME_ZNS_ZSA_OPEN, NULL), fault_st());
	fault_io_disarm();
	assert_int_equal(s->failures, failures + 1);
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, ZLBAS, NVME_ZNS_ZSA_OPEN, NULL), 0);
	assert_true(s->commits >= commits + 2);
}

/* The wait of a Reset for its commit: one commit for a Select All Reset of
 * every zone (of 4 here, of 200 below), one for a Reset of one zone, Empty
 * or not (test_reset_retried_after_failed_commit says why). */
static void test_reset_commits(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const struct ns_stats *s = ns_stats(ns);

	for (uint32_t z = 0; z < NZ; z++)
		write_all(ns, (uint64_t)z * ZLBAS, 2, OLD);
	assert_int_equal(ns_sync_wait(ns), 0);
	uint64_t commits = s->commits;
	assert_int_equal(ns_zone_mgmt_apply(ns, 0, NVME_ZNS_ZSA_RESET, true, NULL), 0);
	assert_int_equal(s->commits, commits + 1);
	assert_int_equal(ns_zone_mgmt_apply(ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	assert_int_equal(s->commits, commits + 2);
	write_all(ns, ZLBAS, 2, OLD);
	assert_int_equal(ns_zone_mgmt_apply(ns, ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	assert_int_equal(s->commits, commits + 3);

	struct ns_fixture *many = ns_fixture_new("zreads-many", 200, ZLBAS, true);
	ns_fixture_open(many, false);
	s = ns_stats(many->ns);
	for (uint32_t z = 0; z < 200; z++)
		write_all(many->ns, (uint64_t)z * ZLBAS, 1, OLD);
	assert_int_equal(ns_sync_wait(many->ns), 0);
	commits = s->commits;
	assert_int_equal(ns_zone_mgmt_apply(many->ns, 0, NVME_ZNS_ZSA_RESET, true, NULL), 0);
	assert_int_equal(s->commits, commits + 1);
	ns_fixture_free(many);
}

/* Resets and Finishes of one zone from two threads: a Reset never comes
 * between a Finish's erasure and the Finish, so a Full zone never reads
 * what it held before its last Reset. */
static void *reset_zone1(void *p)
{
	uint16_t st = ns_zone_mgmt_apply(p, 1 * ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL);
	return (void *)(uintptr_t)st;
}

static void test_finish_and_reset_race(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	const uint64_t z = 1 * ZLBAS;
	uint8_t *b = malloc(ZLBAS * BS);
	for (int k = 0; k < 3000; k++) {
		assert_int_equal(ns_zone_mgmt_apply(ns, z, NVME_ZNS_ZSA_RESET, false, NULL), 0);
		write_all(ns, z, 8, OLD);
		pthread_t t;
		void *rst;
		pthread_create(&t, NULL, reset_zone1, ns);
		assert_int_equal(ns_zone_mgmt_apply(ns, z, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
		pthread_join(t, &rst);
		assert_int_equal((uintptr_t)rst, 0);
		struct iovec iov = { b, ZLBAS * BS };
		assert_int_equal(ns_read(ns, z, ZLBAS, &iov, 1), 0);
		for (uint32_t l = 0; l < ZLBAS; l++)
			if (b[(size_t)l * BS] == OLD)
				fail_msg("round %d: LBA %u reads data from before the Reset", k, l);
	}
	free(b);
}

/*
 * The same under threads: appenders give each write a pause between its
 * reservation and its data (as a queued I/O job has; some longer than a
 * Reset takes) while another thread resets and finishes the zone. An append that no Reset or Finish overlapped
 * (a sequence lock around them) must read back its own data; no read may
 * return anything but whole tagged blocks or zeros (never OLD).
 */
#define RACE_THREADS 3
#define RACE_ROUNDS 400

struct race_zone {
	struct ns *ns;
	uint64_t z;
	uint32_t gen;            /* odd while a Reset or Finish runs */
	int stop;
	pthread_mutex_t lock;
	uint32_t acked[ZLBAS];   /* tags of the appends checked since the last Reset */
	unsigned verified;
};

struct race {
	struct race_zone *rz;
	int id;
	unsigned overlapped, checked, refused;
};

static void tag_block(uint8_t *b, uint32_t tag)
{
	for (size_t x = 0; x < BS; x += 4)
		memcpy(b + x, &tag, 4);
}

/* A block is zeros or one tag throughout: returns the tag (0 for zeros). */
static uint32_t block_tag(const uint8_t *b)
{
	uint32_t tag;
	memcpy(&tag, b, 4);
	for (size_t x = 0; x < BS; x += 4)
		if (memcmp(b + x, &tag, 4))
			fail_msg("a block mixes data: %#x at byte 0, not at byte %zu", tag, x);
	if (tag && (tag >> 24) == OLD)
		fail_msg("a block holds data from before a Reset");
	return tag;
}

static void *race_appender(void *p)
{
	struct race *r = p;
	struct race_zone *rz = r->rz;
	uint8_t *b = malloc(2 * BS), *back = malloc(2 * BS);
	unsigned seed = (unsigned)r->id * 7919u;
	for (uint32_t n = 1; n <= RACE_ROUNDS; n++) {
		uint32_t tag = (uint32_t)(r->id + 1) << 24 | n;
		tag_block(b, tag);
		tag_block(b + BS, tag);
		uint32_t g0 = __atomic_load_n(&rz->gen, __ATOMIC_ACQUIRE);
		struct ns_write w;
		if (ns_write_begin(rz->ns, &w, NS_ZONE_APPEND, rz->z, 2)) {
			r->refused++; /* Full: the resetter empties it again */
			struct timespec t = { 0, 50 * 1000 };
			nanosleep(&t, NULL);
			continue;
		}
		/* Mostly short; one in eight outlasts a Reset and its commit. */
		long us = rand_r(&seed) % 8 ? rand_r(&seed) % 200 : 3000;
		struct timespec t = { 0, us * 1000 };
		nanosleep(&t, NULL);
		struct iovec iov = { b, 2 * BS };
		uint16_t st = ns_write_data(rz->ns, &w, &iov, 1);
		ns_write_end(rz->ns, &w, st);
		if (st) {
			r->refused++;
			continue;
		}
		struct iovec bi = { back, 2 * BS };
		assert_int_equal(ns_read(rz->ns, w.slba, 2, &bi, 1), 0);
		uint32_t t0 = block_tag(back), t1 = block_tag(back + BS);
		uint32_t g1 = __atomic_load_n(&rz->gen, __ATOMIC_ACQUIRE);
		if (g0 == g1 && !(g0 & 1)) {
			if (t0 != tag || t1 != tag)
				fail_msg("append %#x at LBA %llu, no Reset since: reads %#x %#x", tag,
					 (unsigned long long)w.slba, t0, t1);
			r->checked++;
			/* It must still read so when the next Reset comes. */
			pthread_mutex_lock(&rz->lock);
			if (__atomic_load_n(&rz->gen, __ATOMIC_ACQUIRE) == g0)
				rz->acked[w.slba - rz->z] = rz->acked[w.slba - rz->z + 1] = tag;
			pthread_mutex_unlock(&rz->lock);
		} else {
			r->overlapped++;
		}
	}
	free(b);
	free(back);
	return NULL;
}

static void *race_resetter(void *p)
{
	struct race_zone *rz = p;
	for (unsigned k = 0; !__atomic_load_n(&rz->stop, __ATOMIC_ACQUIRE); k++) {
		struct timespec t = { 0, 300 * 1000 };
		nanosleep(&t, NULL);
		uint32_t acked[ZLBAS];
		pthread_mutex_lock(&rz->lock);
		__atomic_add_fetch(&rz->gen, 1, __ATOMIC_ACQ_REL);
		memcpy(acked, rz->acked, sizeof(acked));
		memset(rz->acked, 0, sizeof(rz->acked));
		pthread_mutex_unlock(&rz->lock);
		/* What the appends acknowledged since the last Reset wrote is
		 * still there: no write from before that Reset landed over it. */
		uint8_t *b = malloc(BS);
		for (uint32_t l = 0; l < ZLBAS; l++) {
			if (!acked[l])
				continue;
			struct iovec iov = { b, BS };
			assert_int_equal(ns_read(rz->ns, rz->z + l, 1, &iov, 1), 0);
			uint32_t now = block_tag(b);
			if (now != acked[l])
				fail_msg("LBA %u: append %#x was acknowledged, now reads %#x", l,
					 acked[l], now);
			rz->verified++;
		}
		free(b);
		uint8_t zsa = k % 4 == 3 ? NVME_ZNS_ZSA_FINISH : NVME_ZNS_ZSA_RESET;
		uint16_t st = ns_zone_mgmt_send(rz->ns, rz->z, zsa, false, NULL);
		__atomic_add_fetch(&rz->gen, 1, __ATOMIC_ACQ_REL);
		if (st)
			fail_msg("zone action %#x: status %#x", zsa, st);
	}
	return NULL;
}

static void test_reset_race(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	struct race_zone rz = { .ns = ns, .z = 1 * ZLBAS, .lock = PTHREAD_MUTEX_INITIALIZER };
	reset_over_old(ns, rz.z);
	struct race r[RACE_THREADS];
	pthread_t t[RACE_THREADS], rt;
	pthread_create(&rt, NULL, race_resetter, &rz);
	for (int k = 0; k < RACE_THREADS; k++) {
		r[k] = (struct race){ .rz = &rz, .id = k };
		pthread_create(&t[k], NULL, race_appender, &r[k]);
	}
	unsigned checked = 0, overlapped = 0;
	for (int k = 0; k < RACE_THREADS; k++) {
		pthread_join(t[k], NULL);
		checked += r[k].checked;
		overlapped += r[k].overlapped;
	}
	__atomic_store_n(&rz.stop, 1, __ATOMIC_RELEASE);
	pthread_join(rt, NULL);
	printf("race: %u appends checked, %u overlapped a Reset or Finish, %u blocks checked "
	       "again before a Reset\n", checked, overlapped, rz.verified);
	assert_true(checked > 0 && overlapped > 0 && rz.verified > 0);
}

/*
 * A ZRWA allocation against writes and Resets of the same zone from another
 * thread: the window just allocated never reads a write from before the
 * zone's last Reset (the erasure and the allocation are fenced together).
 */
struct zrwa_race {
	struct ns *ns;
	uint64_t z;
	int stop;
};

static void *zrwa_race_writer(void *p)
{
	struct zrwa_race *r = p;
	uint8_t *b = malloc(4 * BS);
	for (uint32_t n = 1; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); n++) {
		struct ns_write w;
		if (!ns_write_begin(r->ns, &w, NS_WRITE, r->z, 4)) {
			for (int k = 0; k < 4; k++)
				tag_block(b + (size_t)k * BS, (w.zrwa ? 0xb2u : 0xb1u) << 24 | n);
			struct iovec iov = { b, 4 * BS };
			uint16_t st = ns_write_data(r->ns, &w, &iov, 1);
			ns_write_end(r->ns, &w, st);
		}
		ns_zone_mgmt_apply(r->ns, r->z, NVME_ZNS_ZSA_RESET, false, NULL);
		/* Pauses of up to some ms, so that allocations (with their
		 * sync) get through now and then. */
		struct timespec t = { 0, (long)(n % 16) * 250000 };
		nanosleep(&t, NULL);
	}
	free(b);
	return NULL;
}

static void test_zrwa_allocation_and_reset_race(void **state)
{
	struct zrwa_race r = { .ns = ((struct ns_fixture *)*state)->ns, .z = 2 * ZLBAS };
	pthread_t t;
	pthread_create(&t, NULL, zrwa_race_writer, &r);
	uint8_t *b = malloc(8 * BS);
	unsigned allocs = 0;
	uint32_t old = 0;
	uint16_t st = 0;
	for (int round = 0; round < 5000 && allocs < 50 && !old && !st; round++) {
		if (ns_zone_mgmt_send_zrwaa(r.ns, r.z, NVME_ZNS_ZSA_OPEN, NULL)) {
			struct timespec later = { 0, 100000 }; /* not Empty now */
			nanosleep(&later, NULL);
			continue;
		}
		struct iovec iov = { b, 8 * BS };
		st = ns_read(r.ns, r.z, 8, &iov, 1);
		allocs++;
		/* Word by word: a window write of the other thread (0xb2) may
		 * be half done, but no word may come from before the Reset. */
		for (size_t x = 0; x < 8 * BS && !st && !old; x += 4) {
			uint32_t word;
			memcpy(&word, b + x, 4);
			if (word >> 24 == 0xb1)
				old = word;
		}
	}
	/* The writer stops before the test may fail: it uses r. */
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	free(b);
	assert_int_equal(st, 0);
	if (old)
		fail_msg("a ZRWA window just allocated reads %#x, written before a Reset", old);
	assert_true(allocs > 0);
}

/*
 * Appends to every zone with pauses, Select All Resets and Finishes, and
 * single-zone ones, all at once: no hang (fences, waits) and no failed
 * action. An alarm ends the process if anything stops moving.
 */
#define MIX_ACTIONS 300

struct mix {
	struct ns *ns;
	int id;
	int *stop;
	unsigned ops;
};

static void *mix_appender(void *p)
{
	struct mix *m = p;
	uint8_t *b = calloc(2, BS);
	unsigned seed = (unsigned)m->id * 131u + 7u;
	while (!__atomic_load_n(m->stop, __ATOMIC_ACQUIRE)) {
		uint64_t z = (uint64_t)(rand_r(&seed) % NZ) * ZLBAS;
		struct ns_write w;
		if (ns_write_begin(m->ns, &w, NS_ZONE_APPEND, z, 2))
			continue;
		if (rand_r(&seed) % 4 == 0) {
			struct timespec t = { 0, (long)(rand_r(&seed) % 300) * 1000 };
			nanosleep(&t, NULL);
		}
		struct iovec iov = { b, 2 * BS };
		uint16_t st = ns_write_data(m->ns, &w, &iov, 1);
		ns_write_end(m->ns, &w, st);
		m->ops++;
	}
	free(b);
	return NULL;
}

/* Even ids act on every zone (Select All), odd ones on one zone at a time. */
static void *mix_actor(void *p)
{
	struct mix *m = p;
	unsigned seed = (unsigned)m->id * 17u;
	for (; m->ops < MIX_ACTIONS; m->ops++) {
		uint8_t zsa = rand_r(&seed) % 2 ? NVME_ZNS_ZSA_FINISH : NVME_ZNS_ZSA_RESET;
		uint64_t z = (uint64_t)(rand_r(&seed) % NZ) * ZLBAS;
		uint16_t st = ns_zone_mgmt_apply(m->ns, z, zsa, m->id % 2 == 0, NULL);
		if (st)
			fail_msg("zone action %#x (select all %d): status %#x", zsa, m->id % 2 == 0, st);
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_zone_reads: zone actions and appends hang\n";
	ssize_t n = write(2, msg, sizeof(msg) - 1);
	_exit(n < 0 ? 4 : 3);
}

static void test_actions_and_appends_mix(void **state)
{
	struct ns *ns = ((struct ns_fixture *)*state)->ns;
	enum { APPENDERS = 4, ACTORS = 2 };
	int stop = 0;
	struct mix m[APPENDERS + ACTORS];
	pthread_t t[APPENDERS + ACTORS];
	signal(SIGALRM, on_alarm);
	alarm(120);
	for (int k = 0; k < APPENDERS + ACTORS; k++) {
		m[k] = (struct mix){ .ns = ns, .id = k, .stop = &stop };
		pthread_create(&t[k], NULL, k < APPENDERS ? mix_appender : mix_actor, &m[k]);
	}
	for (int k = APPENDERS; k < APPENDERS + ACTORS; k++)
		pthread_join(t[k], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	unsigned appends = 0;
	for (int k = 0; k < APPENDERS; k++) {
		pthread_join(t[k], NULL);
		appends += m[k].ops;
	}
	alarm(0);
	assert_true(appends > 0);
}

/*
 * Appends in flight fill a zone (Full in memory; the record still says
 * open at the written prefix), and the host finishes it: Finish of a Full
 * zone changes nothing, and its sync succeeds. The Finish was acknowledged
 * durable, so a power cut must bring the zone back Full - not open (or
 * Empty) at the prefix the appends in flight had not reached.
 */
static void test_finish_of_zone_filled_in_flight(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 1 * ZLBAS;
	struct ns_write a, b;
	write_all(f->ns, z, 4, 0x11);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(ns_write_begin(f->ns, &a, NS_ZONE_APPEND, z, 6), 0);
	assert_int_equal(ns_write_begin(f->ns, &b, NS_ZONE_APPEND, z, 6), 0); /* fills it */
	struct nvme_zns_desc d;
	assert_true(zone_desc(f->ns, z, &d));
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	/* Zone Management Send Finish: the action, then its sync (zms_done). */
	assert_int_equal(ns_zone_mgmt_send(f->ns, z, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_true(zone_desc(f->ns, z, &d));
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	/* The Finish completed: power cut (the appends never complete). */
	ns_abandon(f->ns);
	ns_fixture_open(f, false);
	assert_true(zone_desc(f->ns, z, &d));
	if (d.zs >> 4 != NVME_ZNS_ZS_FULL)
		fail_msg("an acknowledged Finish rolled back: zone state %#x wp +%llu after the "
			 "power cut, want Full", d.zs >> 4,
			 (unsigned long long)(le64toh(d.wp) - z));
}

/*
 * The same with a commit between the appends that fill the zone and the
 * Finish (a Flush, or any other zone's transition): it records the zone
 * open at the written prefix and takes it off the list of zones to record.
 * The Finish leaves the zone in the state it was in (Full), so it must
 * list the zone again itself, or its sync records nothing and a power cut
 * brings the acknowledged Finish back as an open zone.
 */
static void test_finish_of_zone_filled_in_flight_after_commit(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 1 * ZLBAS;
	struct ns_write a, b;
	write_all(f->ns, z, 4, 0x11);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	assert_int_equal(ns_write_begin(f->ns, &a, NS_ZONE_APPEND, z, 6), 0);
	assert_int_equal(ns_write_begin(f->ns, &b, NS_ZONE_APPEND, z, 6), 0); /* fills it */
	assert_int_equal(ns_sync_wait(f->ns), 0); /* records it open at +4 */
	assert_int_equal(ns_zone_mgmt_send(f->ns, z, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	ns_abandon(f->ns); /* power cut; the appends never complete */
	ns_fixture_open(f, false);
	struct nvme_zns_desc d;
	assert_true(zone_desc(f->ns, z, &d));
	if (d.zs >> 4 != NVME_ZNS_ZS_FULL)
		fail_msg("an acknowledged Finish rolled back: zone state %#x wp +%llu after the "
			 "power cut, want Full", d.zs >> 4,
			 (unsigned long long)(le64toh(d.wp) - z));
}

/*
 * A flush of a zone's ZRWA that reaches the zone capacity makes the zone
 * Full (and releases its ZRWA) while a write into the window is still in
 * flight: until it ends, the record says open at the written prefix. The
 * window above that prefix holds acknowledged, durable writes; a commit
 * meanwhile (here a Reset of another zone) and a power cut must not lose
 * them (doc/zrwa.md: acknowledged writes into the window are as durable as
 * any write).
 */
static void test_zrwa_flush_to_full_keeps_window(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 3 * ZLBAS;
	uint8_t want[ZLBAS];
	memset(want, 0x11, 8);
	memset(want + 8, 0x22, 8);

	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, z, NVME_ZNS_ZSA_OPEN, NULL), 0);
	write_all(f->ns, z, 8, 0x11);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 7, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	write_all(f->ns, z + 8, 8, 0x22); /* the window, above the write pointer */
	assert_int_equal(ns_sync_wait(f->ns), 0); /* acknowledged: durable */
	expect(f->ns, z, ZLBAS, want);

	struct ns_write w; /* rewrites the window's first block: in flight */
	assert_int_equal(ns_write_begin(f->ns, &w, NS_WRITE, z + 8, 1), 0);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 15, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	struct nvme_zns_desc d;
	assert_true(zone_desc(f->ns, z, &d));
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_FULL);
	/* Another zone's Reset commits (without waiting for gapped zones). */
	write_all(f->ns, 1 * ZLBAS, 2, 0x33);
	assert_int_equal(ns_zone_mgmt_apply(f->ns, 1 * ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);

	ns_abandon(f->ns); /* power cut; w never completes */
	ns_fixture_open(f, false);
	assert_true(zone_desc(f->ns, z, &d));
	uint8_t *b = malloc(ZLBAS * BS);
	struct iovec iov = { b, ZLBAS * BS };
	assert_int_equal(ns_read(f->ns, z, ZLBAS, &iov, 1), 0);
	for (uint32_t k = 8; k < ZLBAS; k++)
		if (b[(size_t)k * BS] != 0x22 && !(k == 8 && b[(size_t)k * BS] == 0x44))
			fail_msg("after the power cut zone 3 is state %#x za %#x wp +%llu, and "
				 "LBA +%u reads %#x: the acknowledged window write (0x22) is lost",
				 d.zs >> 4, d.za, (unsigned long long)(le64toh(d.wp) - z), k,
				 b[(size_t)k * BS]);
	free(b);
}

/*
 * Flushes move a ZRWA's write pointer by whole granules (ZRWAFG), so the
 * write pointer is always a granule from the zone start - after a power cut
 * too, where the last durable flush left it (doc/zrwa.md). A flush over a
 * write still in flight in the window is recorded only up to that write
 * (the record never claims data that may not be there); a commit then (here
 * another zone's Reset) must not record a write pointer between granules.
 */
static void test_zrwa_record_on_granule(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 2 * ZLBAS;
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, z, NVME_ZNS_ZSA_OPEN, NULL), 0);
	write_all(f->ns, z, 2, 0x11);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 1, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0); /* acknowledged: wp +2 */
	write_all(f->ns, z + 2, 3, 0x22);
	struct ns_write w; /* in the window at +5: in flight */
	assert_int_equal(ns_write_begin(f->ns, &w, NS_WRITE, z + 5, 1), 0);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 5, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	/* Another zone's Reset commits (without waiting for gapped zones). */
	write_all(f->ns, 1 * ZLBAS, 2, 0x33);
	assert_int_equal(ns_zone_mgmt_apply(f->ns, 1 * ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);

	ns_abandon(f->ns); /* power cut; w never completes */
	ns_fixture_open(f, false);
	struct nvme_zns_desc d;
	assert_true(zone_desc(f->ns, z, &d));
	uint64_t wp = le64toh(d.wp) - z;
	if (wp % 2 || wp < 2 || wp > 6 || !(d.za & NVME_ZNS_ZA_ZRWAV))
		fail_msg("after the power cut the zone is state %#x za %#x wp +%llu: want a ZRWA "
			 "and the write pointer on a granule from +2 to +6", d.zs >> 4, d.za,
			 (unsigned long long)wp);
	uint8_t want[5] = { 0x11, 0x11, 0x22, 0x22, 0x22 };
	expect(f->ns, z, 5, want); /* in the window or below it: all readable */
}

/*
 * ZRWAFG is the namespace's configuration, not its image's: a restart may
 * change it, and a ZRWA's write pointer then lies where flushes of the old
 * granularity left it, between two granules of the new one. Flushes still
 * move it by whole granules from there (doc/zrwa.md), so the write pointer
 * a record keeps must be one of those: a granule counted from the zone
 * start would lie below an acknowledged flush, which a power cut would
 * undo (and a commit of the zone alone would move its write pointer back).
 */
static void test_zrwa_record_after_granularity_change(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 2 * ZLBAS;
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, z, NVME_ZNS_ZSA_OPEN, NULL), 0);
	write_all(f->ns, z, 3, 0x11);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 2, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	ns_close(f->ns); /* wp +3, granules of one block */
	f->cfg.zrwa_flush_granularity = 2 * BS;
	ns_fixture_open(f, false);
	write_all(f->ns, z + 3, 2, 0x22);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 4, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0); /* acknowledged: wp +5 */

	ns_abandon(f->ns); /* power cut */
	ns_fixture_open(f, false);
	struct nvme_zns_desc d;
	assert_true(zone_desc(f->ns, z, &d));
	if (le64toh(d.wp) != z + 5 || !(d.za & NVME_ZNS_ZA_ZRWAV))
		fail_msg("after the power cut the zone is state %#x za %#x wp +%llu: want its ZRWA "
			 "and the write pointer of the acknowledged flush, +5", d.zs >> 4, d.za,
			 (unsigned long long)(le64toh(d.wp) - z));
	uint8_t want[5] = { 0x11, 0x11, 0x11, 0x22, 0x22 };
	expect(f->ns, z, 5, want);
}

/*
 * A flush that fills a zone over a write in flight in its window keeps the
 * zone's record open with its ZRWA until the write ends (zns_snapshot), so
 * the ZRWA's resource is not free before then: given to another zone and
 * journaled there, a power cut would bring back more zones with a ZRWA than
 * NUMZRWA allows, and the next start would refuse the namespace.
 */
static void test_zrwa_full_in_flight_keeps_resource(void **state)
{
	struct ns_fixture *f = *state;
	const uint64_t z = 3 * ZLBAS;
	ns_close(f->ns);
	f->cfg.zrwa_resources = 1;
	ns_fixture_open(f, false);
	assert_int_equal(ns_zone_mgmt_send_zrwaa(f->ns, z, NVME_ZNS_ZSA_OPEN, NULL), 0);
	write_all(f->ns, z, 8, 0x11);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 7, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	struct ns_write w; /* in the window: in flight */
	assert_int_equal(ns_write_begin(f->ns, &w, NS_WRITE, z + 8, 1), 0);
	assert_int_equal(ns_zone_mgmt_send(f->ns, z + 15, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	/* Another zone asks for a ZRWA; its allocation commits (a commit
	 * that waits for nothing), and is made durable. */
	uint16_t st = ns_zone_mgmt_send_zrwaa(f->ns, 2 * ZLBAS, NVME_ZNS_ZSA_OPEN, NULL);
	if (st && (uint8_t)st != NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE)
		fail_msg("ZRWA allocation failed with %#x", st);
	assert_int_equal(ns_zone_mgmt_apply(f->ns, 1 * ZLBAS, NVME_ZNS_ZSA_RESET, false, NULL), 0);

	ns_abandon(f->ns); /* power cut; w never completes */
	char err[512] = "";
	if (ns_open(&f->cfg, false, &f->ns, err, sizeof(err))) {
		f->ns = NULL;
		fail_msg("after the power cut the namespace does not start (%s): the ZRWA of the zone "
			 "filled over a write in flight was given to another zone (%s)", err,
			 st ? "refused" : "allocated");
	}
	uint8_t want[8];
	memset(want, 0x11, 8);
	expect(f->ns, z, 8, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_in_flight_after_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_across_zones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_window_in_flight, setup_zrwa, teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_unstarted_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_erases_unstarted_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_keeps_landed_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finished_by_controller_over_writes, setup_open1,
						teardown),
		cmocka_unit_test_setup_teardown(test_finished_by_controller_synced_first, setup_open1,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_durable_first, setup_zrwa, teardown),
		cmocka_unit_test_setup_teardown(test_reset_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_retried_after_failed_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_snapshot_lists_every_zone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_reset_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_reset_keeps_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_reset_refuses_zrwa, setup_zrwa,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_reset_then_writes_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_reset_drops_waiting_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_allocation_synced_by_commit, setup_zrwa,
						teardown),
		cmocka_unit_test_setup_teardown(test_finish_and_reset_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_allocation_and_reset_race, setup_zrwa,
						teardown),
		cmocka_unit_test_setup_teardown(test_actions_and_appends_mix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_actions_and_appends_mix, setup_open1, teardown),
		cmocka_unit_test_setup_teardown(test_finish_of_zone_filled_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_of_zone_filled_in_flight_after_commit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_record_on_granule, setup_zrwa_fg2, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_record_after_granularity_change, setup_zrwa,
						teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_flush_to_full_keeps_window, setup_zrwa,
						teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_full_in_flight_keeps_resource, setup_zrwa,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
