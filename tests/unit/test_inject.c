/*
 * The injection table (inject.h) and the syntax of the requests that fill
 * it (control_fault_parse): which commands a rule matches (subsystem,
 * namespace, kind, LBA range, both ends), counts that run out, chances
 * driven by a seed (the same seed, the same commands; the rate near the
 * chance asked for), statuses and delays combined, list and clear.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "control_fault.h"
#include "inject.h"
#include "nvme_wire.h"

#define NQN "nqn.2026-11.io.znstgt:inject"
#define MEDIA_READ (NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_READ_ERROR) | NVME_STATUS_DNR)

static struct inject_rule rule(uint32_t ops, uint64_t slba, uint64_t nlb, uint16_t status)
{
	struct inject_rule r = { .nsid = 1, .ops = ops, .slba = slba, .nlb = nlb,
				 .status = status, .ppm = INJECT_PPM };

	snprintf(r.nqn, sizeof(r.nqn), "%s", NQN);
	return r;
}

/* The status a command gets (0: none), or -1 when no rule fired. */
static int hit_status(uint32_t op, uint64_t slba, uint64_t nlb)
{
	struct inject_hit h;

	return inject_match(NQN, 1, op, slba, nlb, &h) ? h.status : -1;
}

static int teardown(void **state)
{
	inject_clear(0);
	return 0;
}

static void test_unarmed(void **state)
{
	struct inject_hit h;

	assert_false(inject_on());
	assert_false(inject_match(NQN, 1, INJECT_READ, 0, 1, &h));
	assert_int_equal(h.status, 0);
	assert_int_equal(h.delay_us, 0);
}

static void test_range_and_kind(void **state)
{
	struct inject_rule r = rule(INJECT_READ | INJECT_APPEND, 100, 10, MEDIA_READ);
	struct inject_hit h;

	assert_int_equal(inject_add(&r), 1);
	assert_true(inject_on());
	/* [100, 110): touching it from either side, or inside, matches. */
	assert_int_equal(hit_status(INJECT_READ, 100, 1), MEDIA_READ);
	assert_int_equal(hit_status(INJECT_READ, 109, 1), MEDIA_READ);
	assert_int_equal(hit_status(INJECT_READ, 90, 11), MEDIA_READ);
	assert_int_equal(hit_status(INJECT_READ, 0, 1000), MEDIA_READ);
	assert_int_equal(hit_status(INJECT_APPEND, 105, 2), MEDIA_READ);
	/* Just outside, another kind, namespace or subsystem: nothing. */
	assert_int_equal(hit_status(INJECT_READ, 110, 5), -1);
	assert_int_equal(hit_status(INJECT_READ, 90, 10), -1);
	assert_int_equal(hit_status(INJECT_WRITE, 100, 1), -1);
	assert_int_equal(hit_status(INJECT_ZMGMT, 100, 1), -1);
	assert_false(inject_match(NQN, 2, INJECT_READ, 100, 1, &h));
	assert_false(inject_match(NQN "x", 1, INJECT_READ, 100, 1, &h));
	/* Ranges at the very end of the LBA space do not wrap. */
	assert_int_equal(hit_status(INJECT_READ, UINT64_MAX - 1, 1), -1);
	r = rule(INJECT_WRITE, UINT64_MAX - 4, 4, MEDIA_READ);
	assert_int_equal(inject_add(&r), 2);
	assert_int_equal(hit_status(INJECT_WRITE, UINT64_MAX - 1, 1), MEDIA_READ);
	assert_int_equal(hit_status(INJECT_WRITE, 0, 1), -1);
	/* nlb 0: the whole namespace. */
	r = rule(INJECT_REPORT, 0, 0, 0x4002);
	assert_int_equal(inject_add(&r), 3);
	assert_int_equal(hit_status(INJECT_REPORT, 123456789, 1), 0x4002);
}

static void test_count_runs_out(void **state)
{
	struct inject_rule r = rule(INJECT_WRITE, 0, 0, 0x4006);

	r.count = 3;
	assert_true(inject_add(&r) > 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(inject_count(), 1);
		assert_int_equal(hit_status(INJECT_WRITE, (uint64_t)i, 1), 0x4006);
	}
	assert_int_equal(inject_count(), 0);
	assert_false(inject_on());
	assert_int_equal(hit_status(INJECT_WRITE, 0, 1), -1);
}

/* Which of n reads a rule with chance ppm and seed fires on. */
static unsigned fire_map(uint32_t ppm, uint64_t seed, char *map, unsigned n)
{
	struct inject_rule r = rule(INJECT_READ, 0, 0, MEDIA_READ);
	unsigned fired = 0;

	r.ppm = ppm;
	r.seed = seed;
	assert_true(inject_add(&r) > 0);
	for (unsigned i = 0; i < n; i++)
		fired += map[i] = hit_status(INJECT_READ, i, 1) == MEDIA_READ;
	inject_clear(0);
	return fired;
}

static void test_probability_seeded(void **state)
{
	static char a[20000], b[20000], c[20000];
	unsigned n = sizeof(a);

	/* A quarter of 20000: 5000, and well within 4 standard deviations
	 * (61) of it; the same seed fires on exactly the same commands, and
	 * another seed on others. */
	unsigned fa = fire_map(250000, 42, a, n);
	assert_in_range(fa, 5000 - 250, 5000 + 250);
	assert_int_equal(fire_map(250000, 42, b, n), fa);
	assert_memory_equal(a, b, n);
	fire_map(250000, 43, c, n);
	assert_memory_not_equal(a, c, n);
	/* A rare chance is rare, but not never. */
	unsigned rare = fire_map(1000, 7, a, n);
	assert_in_range(rare, 1, 60);
	/* A count bounds the firings of a chance too. */
	struct inject_rule r = rule(INJECT_READ, 0, 0, MEDIA_READ);
	r.ppm = 500000;
	r.count = 5;
	r.seed = 1;
	assert_true(inject_add(&r) > 0);
	unsigned fired = 0;
	for (unsigned i = 0; i < 1000; i++)
		fired += hit_status(INJECT_READ, 0, 1) == MEDIA_READ;
	assert_int_equal(fired, 5);
	assert_int_equal(inject_count(), 0);
}

static void test_status_and_delays_combine(void **state)
{
	struct inject_rule slow = rule(INJECT_READ, 0, 0, 0), fail1, fail2;
	struct inject_hit h;

	slow.delay_us = 1500;
	fail1 = rule(INJECT_READ, 0, 8, MEDIA_READ);
	fail1.count = 1;
	fail2 = rule(INJECT_READ, 0, 0, 0x4006);
	fail2.delay_us = 500;
	int id = inject_add(&slow);
	assert_true(id > 0);
	/* Each rule gets the next ID. */
	assert_int_equal(inject_add(&fail1), id + 1);
	assert_int_equal(inject_add(&fail2), id + 2);
	/* The first rule with a status gives it; the second is not used up;
	 * the delays of the rules that fired add up. */
	assert_true(inject_match(NQN, 1, INJECT_READ, 0, 1, &h));
	assert_int_equal(h.status, MEDIA_READ);
	assert_int_equal(h.delay_us, 1500);
	assert_int_equal(inject_count(), 2);
	assert_true(inject_match(NQN, 1, INJECT_READ, 0, 1, &h));
	assert_int_equal(h.status, 0x4006);
	assert_int_equal(h.delay_us, 2000);
	/* A delay alone is a hit without a status. */
	assert_true(inject_match(NQN, 1, INJECT_WRITE | INJECT_READ, 100, 1, &h));
	assert_int_equal(h.status, 0x4006);
	assert_int_equal(inject_clear((uint32_t)id + 2), 1);
	assert_true(inject_match(NQN, 1, INJECT_READ, 100, 1, &h));
	assert_int_equal(h.status, 0);
	assert_int_equal(h.delay_us, 1500);
}

/* What inject_print() writes now, in a static buffer. */
static const char *printed(void)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(f);
	assert_int_equal(inject_print(f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_list_clear_and_full(void **state)
{
	struct inject_rule r = rule(INJECT_READ | INJECT_WRITE, 8, 16, MEDIA_READ);
	char want[512];

	assert_string_equal(printed(), "");
	r.count = 2;
	r.ppm = 250000;
	int id = inject_add(&r);
	assert_true(id > 0);
	r = rule(INJECT_APPEND, 0, 0, 0);
	r.delay_us = 5000;
	assert_int_equal(inject_add(&r), id + 1);
	assert_int_equal(hit_status(INJECT_APPEND, 0, 1), 0);
	snprintf(want, sizeof(want), "#%d " NQN " 1 op=read,write lba=8+16 status=2:0x81 dnr=yes "
		 "prob=0.250000 left=2 fired=0\n#%d " NQN " 1 op=append delay=5000us fired=1\n",
		 id, id + 1);
	assert_string_equal(printed(), want);
	/* A stream that cannot take it: an error, not a crash. */
	char tiny[16];
	FILE *f = fmemopen(tiny, sizeof(tiny), "w");
	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(inject_print(f), -1);
	fclose(f);
	assert_int_equal(inject_clear((uint32_t)id + 7), 0);
	assert_int_equal(inject_clear((uint32_t)id), 1);
	assert_int_equal(inject_count(), 1);
	for (int i = 1; i < INJECT_MAX_RULES; i++)
		assert_true(inject_add(&r) > 0);
	assert_int_equal(inject_add(&r), -1);
	assert_int_equal(inject_clear(0), INJECT_MAX_RULES);
	assert_false(inject_on());
}

/* ---- the requests' syntax ---- */

static int parse(const char *text, struct control_fault *f, char *err, size_t errlen)
{
	static char line[512];
	char *argv[20];
	int argc = 0;

	snprintf(line, sizeof(line), "%s", text);
	for (char *save = NULL, *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	err[0] = '\0';
	return control_fault_parse(argc, argv, f, err, errlen);
}

static void refused(const char *text, const char *message)
{
	struct control_fault f;
	char err[256];

	if (parse(text, &f, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", text);
	assert_string_equal(err, message);
}

static void test_parse_zone(void **state)
{
	struct control_fault f;
	char err[256];

	assert_int_equal(parse("zone offline " NQN " 2 0x100", &f, err, sizeof(err)), 0);
	assert_int_equal(f.zone_state, NVME_ZNS_ZS_OFFLINE);
	assert_string_equal(f.nqn, NQN);
	assert_int_equal(f.nsid, 2);
	assert_int_equal(f.zslba, 256);
	assert_int_equal(f.nr_zones, 1);
	assert_int_equal(parse("zone read-only " NQN " 1 512 3", &f, err, sizeof(err)), 0);
	assert_int_equal(f.zone_state, NVME_ZNS_ZS_READ_ONLY);
	assert_int_equal(f.nr_zones, 3);
	refused("zone broken " NQN " 1 0", "zone: \"broken\": expected offline or read-only");
	refused("zone offline " NQN " 0 0", "\"0\": expected a namespace ID");
	refused("zone offline " NQN " 1 -1", "zone: \"-1\": expected the zone's start LBA");
	refused("zone offline " NQN " 1 12x", "zone: \"12x\": expected the zone's start LBA");
	refused("zone offline " NQN " 1 0 0", "zone: \"0\": expected a number of zones");
	refused("zone offline " NQN " 1", "zone: expected offline|read-only NQN NSID ZSLBA [NZONES]");
	refused("zone offline " NQN " 1 0 1 1",
		"zone: expected offline|read-only NQN NSID ZSLBA [NZONES]");
}

static void test_parse_inject(void **state)
{
	struct control_fault f;
	char err[256];

	assert_int_equal(parse("inject error " NQN " 1 status=2:0x81", &f, err, sizeof(err)), 0);
	assert_int_equal(f.what, CONTROL_INJECT_ADD);
	assert_int_equal(f.rule.status, MEDIA_READ);
	assert_int_equal(f.rule.ops, INJECT_ALL_OPS);
	assert_int_equal(f.rule.nlb, 0);
	assert_int_equal(f.rule.ppm, INJECT_PPM);
	assert_false(f.seeded);
	assert_int_equal(parse("inject error " NQN " 3 dnr=no status=1:0xb9 op=write,append "
			       "zone=512+2 count=4 prob=0.05 seed=9", &f, err, sizeof(err)), 0);
	assert_int_equal(f.nsid, 3);
	assert_int_equal(f.rule.status, NVME_STATUS(NVME_SCT_CMD_SPECIFIC, 0xb9));
	assert_int_equal(f.rule.ops, INJECT_WRITE | INJECT_APPEND);
	assert_true(f.zone_range);
	assert_int_equal(f.rule.slba, 512);
	assert_int_equal(f.rule.nlb, 2);
	assert_int_equal(f.rule.count, 4);
	assert_int_equal(f.rule.ppm, 50000);
	assert_true(f.seeded);
	assert_int_equal(f.rule.seed, 9);
	assert_int_equal(parse("inject delay " NQN " 1 delay=250ms lba=7 op=zmgmt,report", &f, err,
			       sizeof(err)), 0);
	assert_int_equal(f.rule.delay_us, 250000);
	assert_int_equal(f.rule.status, 0);
	assert_false(f.zone_range);
	assert_int_equal(f.rule.slba, 7);
	assert_int_equal(f.rule.nlb, 1);
	assert_int_equal(f.rule.ops, INJECT_ZMGMT | INJECT_REPORT);
	assert_int_equal(parse("inject delay " NQN " 1 delay=10s prob=1", &f, err, sizeof(err)), 0);
	assert_int_equal(f.rule.delay_us, 10000000);
	assert_int_equal(parse("inject list", &f, err, sizeof(err)), 0);
	assert_int_equal(f.what, CONTROL_INJECT_LIST);
	assert_int_equal(parse("inject clear all", &f, err, sizeof(err)), 0);
	assert_int_equal(f.what, CONTROL_INJECT_CLEAR);
	assert_int_equal(f.clear_id, 0);
	assert_int_equal(parse("inject clear 12", &f, err, sizeof(err)), 0);
	assert_int_equal(f.clear_id, 12);
}

static void test_parse_inject_refused(void **state)
{
	refused("inject", "inject: expected error, delay, list or clear ID|all");
	refused("inject clear", "inject: expected error, delay, list or clear ID|all");
	refused("inject clear 0", "inject clear: \"0\": expected an ID or all");
	refused("inject error " NQN " 1", "inject error: expected status=SCT:SC");
	refused("inject delay " NQN " 1 status=2:0x81", "inject delay: expected delay=TIME (us, ms "
		"or s)");
	refused("inject error " NQN " 1 dnr=no delay=1ms",
		"inject error: dnr= without status=");
	refused("inject error " NQN " 1 status=2:0x81 fast=yes",
		"inject: unexpected \"fast=yes\" (expected op=, lba=, zone=, status=, dnr=, "
		"delay=, count=, prob= or seed=)");
	refused("inject error " NQN " 1 status=2:0x81 status", "inject: unexpected \"status\" "
		"(expected op=, lba=, zone=, status=, dnr=, delay=, count=, prob= or seed=)");
	refused("inject error " NQN " 1 status=2:0x81 lba=0 zone=0",
		"inject: \"zone=0\": the range or option is given twice");
	static const char *const bad[] = {
		"status=0:0", "status=8:1", "status=2:0x100", "status=2", "status=:1",
		"status=2:-1", "op=", "op=read,", "op=read,read", "op=flush", "lba=1+0",
		"lba=18446744073709551615+2", "lba=+1", "delay=0ms", "delay=5", "delay=11s", "delay=10001ms",
		"delay=1m", "delay=ms", "count=0", "count=-1", "prob=0", "prob=1.5", "prob=2",
		"prob=0.", "prob=0.0000001", "prob=.5", "prob=0.5x", "dnr=maybe", "seed=x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128], msg[160];

		snprintf(text, sizeof(text), "inject error " NQN " 1 status=2:0x81 %s", bad[i]);
		if (!strncmp(bad[i], "status=", 7))
			snprintf(text, sizeof(text), "inject error " NQN " 1 %s", bad[i]);
		snprintf(msg, sizeof(msg), "inject: \"%s\": bad value (doc/fault-injection.md)",
			 bad[i]);
		refused(text, msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unarmed, teardown),
		cmocka_unit_test_teardown(test_range_and_kind, teardown),
		cmocka_unit_test_teardown(test_count_runs_out, teardown),
		cmocka_unit_test_teardown(test_probability_seeded, teardown),
		cmocka_unit_test_teardown(test_status_and_delays_combine, teardown),
		cmocka_unit_test_teardown(test_list_clear_and_full, teardown),
		cmocka_unit_test(test_parse_zone),
		cmocka_unit_test(test_parse_inject),
		cmocka_unit_test(test_parse_inject_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
