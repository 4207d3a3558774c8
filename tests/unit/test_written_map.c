/*
 * The written regions of a conventional namespace (written_map.h):
 * everything marked at open until a sync succeeds; what a write marks; the
 * set a data sync clears; a write still in flight when a sync starts kept
 * marked through that sync's success; the runs a failed sync gets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "written_map.h"

#define MIB ((uint64_t)1 << WRITTEN_REGION_SHIFT)

struct runs {
	int n;
	uint64_t off[8], len[8];
};

static int collect(void *ctx, uint64_t off, uint64_t len)
{
	struct runs *r = ctx;
	assert_true(r->n < 8);
	r->off[r->n] = off;
	r->len[r->n++] = len;
	return 0;
}

static struct runs runs_of(struct written_map *w)
{
	struct runs r = { 0 };
	assert_int_equal(written_each(w, collect, &r), 0);
	return r;
}

/* A write that begins and ends between two syncs. */
static void write_once(struct written_map *w, uint64_t off, uint64_t len)
{
	written_end(w, written_begin(w, off, len), off, len);
}

/* A good data sync. */
static void sync_ok(struct written_map *w)
{
	written_swap(w);
	written_synced(w);
}

/* Opened: everything is marked (a run before may have left pages
 * unsynced), until a good sync has covered it. */
static void test_all_marked_at_open(void **state)
{
	(void)state;
	struct written_map w;
	assert_int_equal(written_init(&w, 100 * MIB), 0);
	struct runs r = runs_of(&w);
	assert_int_equal(r.n, 1);
	assert_true(r.off[0] == 0 && r.len[0] == 100 * MIB);
	sync_ok(&w);
	assert_int_equal(runs_of(&w).n, 0);
	written_free(&w);

	/* After a failed first sync, the mark stays through the next good
	 * one (it lies in the set that one does not clear), then goes. */
	assert_int_equal(written_init(&w, 100 * MIB), 0);
	written_swap(&w);
	sync_ok(&w);
	assert_int_equal(runs_of(&w).n, 1);
	sync_ok(&w);
	assert_int_equal(runs_of(&w).n, 0);
	written_free(&w);
}

/* Marks become runs of whole regions, adjacent ones merged, across a word
 * of the bitmap and up to a last region the file only partly covers. */
static void test_runs(void **state)
{
	(void)state;
	struct written_map w;
	assert_int_equal(written_init(&w, 200 * MIB + 5), 0); /* 201 regions */
	sync_ok(&w);
	write_once(&w, 10, 1);                  /* region 0 */
	write_once(&w, MIB - 1, 2);             /* regions 0 and 1 */
	write_once(&w, 63 * MIB, 2 * MIB);      /* 63, 64: across a word */
	write_once(&w, 200 * MIB + 4, 1);       /* the last, partial one */
	write_once(&w, 300 * MIB, MIB);         /* past the end: ignored */
	write_once(&w, 5 * MIB, 0);             /* nothing */
	struct runs r = runs_of(&w);
	assert_int_equal(r.n, 3);
	assert_true(r.off[0] == 0 && r.len[0] == 2 * MIB);
	assert_true(r.off[1] == 63 * MIB && r.len[1] == 2 * MIB);
	assert_true(r.off[2] == 200 * MIB && r.len[2] == MIB);
	written_free(&w);
}

/* A sync that succeeds clears what landed before it began, not what came
 * after; after a failed sync everything stays, and the next good sync
 * clears what it covered. */
static void test_sync_clears_what_it_covered(void **state)
{
	(void)state;
	struct written_map w;
	assert_int_equal(written_init(&w, 16 * MIB), 0);
	sync_ok(&w);
	write_once(&w, 0, 1);                   /* before the sync */
	written_swap(&w);                       /* the sync begins */
	write_once(&w, 4 * MIB, 1);             /* after */
	written_synced(&w);
	struct runs r = runs_of(&w);
	assert_int_equal(r.n, 1);
	assert_true(r.off[0] == 4 * MIB);

	written_swap(&w);                       /* a sync that fails */
	write_once(&w, 6 * MIB, 1);
	assert_int_equal(runs_of(&w).n, 2);     /* all of it may be lost */
	written_swap(&w);                       /* the next sync, which works */
	write_once(&w, 8 * MIB, 1);
	written_synced(&w);
	r = runs_of(&w);
	/* It covered 6 (landed before it began); 4 stays with the set it lies
	 * in until the next good sync; 8 came after. */
	assert_int_equal(r.n, 2);
	assert_true(r.off[0] == 4 * MIB && r.off[1] == 8 * MIB);
	sync_ok(&w);
	assert_int_equal(runs_of(&w).n, 0);
	written_free(&w);
}

/*
 * A write whose data is still moving when a sync begins is not covered by
 * that sync, even when it succeeds. Here it begins, a sync begins and
 * succeeds, its data lands, and before its second mark the next sync
 * begins and fails: it must still be marked for redirty_unsynced. Once it
 * has ended, a sync that begins after that covers it.
 */
static void test_inflight_write_kept_through_sync(void **state)
{
	(void)state;
	struct written_map w;
	assert_int_equal(written_init(&w, 16 * MIB), 0);
	sync_ok(&w);
	unsigned held = written_begin(&w, 3 * MIB, 4096);
	sync_ok(&w);                            /* began while the data moved */
	written_swap(&w);                       /* the next one, which fails */
	struct runs r = runs_of(&w);
	assert_int_equal(r.n, 1);
	assert_true(r.off[0] == 3 * MIB && r.len[0] == MIB);
	written_end(&w, held, 3 * MIB, 4096);
	sync_ok(&w);
	sync_ok(&w);
	assert_int_equal(runs_of(&w).n, 0);
	written_free(&w);
}

static int stop_at_second(void *ctx, uint64_t off, uint64_t len)
{
	(void)off;
	(void)len;
	return ++*(int *)ctx == 2 ? -5 : 0;
}

/* written_each stops at the first run fn refuses, with its value. */
static void test_each_stops(void **state)
{
	(void)state;
	struct written_map w;
	int calls = 0;
	assert_int_equal(written_init(&w, 16 * MIB), 0);
	sync_ok(&w);
	for (uint64_t r = 0; r < 16; r += 2)
		write_once(&w, r * MIB, 1);
	assert_int_equal(written_each(&w, stop_at_second, &calls), -5);
	assert_int_equal(calls, 2);
	written_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_marked_at_open),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_sync_clears_what_it_covered),
		cmocka_unit_test(test_inflight_write_kept_through_sync),
		cmocka_unit_test(test_each_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
