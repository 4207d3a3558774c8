/*
 * The control socket's request syntax (control_req_parse): each command with
 * its arguments, blanks, and every way a line is refused. The same parser is
 * fuzzed by tests/fuzz/fuzz_control.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <nvme/types.h>

#include "control_req.h"

struct parsed {
	char line[256];
	struct control_req req;
	char err[256];
	int rc;
};

/* Parse text (len bytes, NULs allowed) as control.c would: a copy with a
 * NUL after it. */
static void parse_n(struct parsed *p, const char *text, size_t len)
{
	assert_true(len < sizeof(p->line));
	memcpy(p->line, text, len);
	p->line[len] = '\0';
	p->err[0] = '\0';
	p->rc = control_req_parse(p->line, len, &p->req, p->err, sizeof(p->err));
}

static void parse(struct parsed *p, const char *text)
{
	parse_n(p, text, strlen(text));
}

/* text parses to exactly this request (NULL: the string is not set). */
static void accepted(const char *text, enum control_op op, const char *name, const char *file,
		     const char *nqn, bool format)
{
	struct parsed p;

	parse(&p, text);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.op, op);
	assert_string_equal(p.req.name, name);
	if (file)
		assert_string_equal(p.req.file, file);
	else
		assert_null(p.req.file);
	if (nqn)
		assert_string_equal(p.req.nqn, nqn);
	else
		assert_null(p.req.nqn);
	assert_int_equal(p.req.format, format);
}

static void refused(const char *text, const char *message)
{
	struct parsed p;

	parse(&p, text);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.err, message);
}

static void test_ping_and_power_cut(void **state)
{
	accepted("ping", CONTROL_PING, "ping", NULL, NULL, false);
	accepted(" \tpower-cut\t ", CONTROL_POWER_CUT, "power-cut", NULL, NULL, false);
	refused("ping now", "ping: wrong number of arguments");
	refused("power-cut 1", "power-cut: wrong number of arguments");
}

static void test_status_and_metrics(void **state)
{
	accepted("status", CONTROL_STATUS, "status", NULL, NULL, false);
	accepted("\tmetrics ", CONTROL_METRICS, "metrics", NULL, NULL, false);
	refused("status --json", "status: wrong number of arguments");
	refused("metrics status", "metrics: wrong number of arguments");
}

static void test_add_subsys(void **state)
{
	const enum control_op add = CONTROL_ADD_SUBSYS;

	accepted("add-subsys /etc/znstgt/lab.ini", add, "add-subsys", "/etc/znstgt/lab.ini", NULL,
		 false);
	/* Options in any order, around the file, separated by any blanks. */
	accepted("add-subsys\t/s.ini  --nqn blktests-subsystem-1\t--format", add, "add-subsys",
		 "/s.ini", "blktests-subsystem-1", true);
	accepted("add-subsys --format --nqn x /s.ini", add, "add-subsys", "/s.ini", "x", true);
}

static void test_add_subsys_refused(void **state)
{
	refused("add-subsys", "add-subsys: wrong number of arguments");
	refused("add-subsys conf/s.ini",
		"add-subsys: expected the absolute path of a subsystem file");
	refused("add-subsys --format",
		"add-subsys: expected the absolute path of a subsystem file");
	refused("add-subsys /a.ini /b.ini",
		"add-subsys: unexpected \"/b.ini\" (expected [--format] [--nqn NQN] FILE)");
	/* --nqn as the last word has no NQN: it is not taken as an option. */
	refused("add-subsys /a.ini --nqn",
		"add-subsys: unexpected \"--nqn\" (expected [--format] [--nqn NQN] FILE)");
	refused("add-subsys --force /a.ini",
		"add-subsys: unexpected \"--force\" (expected [--format] [--nqn NQN] FILE)");
	refused("add-subsys --format --nqn a --nqn b /a.ini",
		"add-subsys: wrong number of arguments");
}

static void test_remove_subsys(void **state)
{
	accepted("remove-subsys nqn.2026-11.io.znstgt:zoned0", CONTROL_REMOVE_SUBSYS,
		 "remove-subsys", NULL, "nqn.2026-11.io.znstgt:zoned0", false);
	refused("remove-subsys", "remove-subsys: wrong number of arguments");
	refused("remove-subsys a b", "remove-subsys: wrong number of arguments");
}

static void test_reload(void **state)
{
	accepted("reload", CONTROL_RELOAD, "reload", NULL, NULL, false);
	refused("reload now", "reload: wrong number of arguments");
}

static void test_set_hosts(void **state)
{
	accepted("set-hosts blktests-subsystem-1 /h/s.ini", CONTROL_SET_HOSTS, "set-hosts",
		 "/h/s.ini", "blktests-subsystem-1", false);
	refused("set-hosts blktests-subsystem-1", "set-hosts: wrong number of arguments");
	refused("set-hosts n /a.ini /b.ini", "set-hosts: wrong number of arguments");
	refused("set-hosts n s.ini", "set-hosts: expected the absolute path of a subsystem file");
}

/* zone and inject go to their own parser (control_fault.h; test_inject.c
 * checks their syntax), which gets every word. */
static void test_fault_requests(void **state)
{
	struct parsed p;

	parse(&p, "zone read-only nqn.2026-11.io.znstgt:zoned0 2 0x100 3");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.op, CONTROL_ZONE);
	assert_string_equal(p.req.fault.nqn, "nqn.2026-11.io.znstgt:zoned0");
	assert_int_equal(p.req.fault.nsid, 2);
	assert_int_equal(p.req.fault.zslba, 256);
	assert_int_equal(p.req.fault.nr_zones, 3);
	/* 16 words: the longest inject request fits. */
	parse(&p, "inject error n 1 op=read lba=0+8 status=2:0x81 dnr=no count=3 prob=0.5 seed=7 "
		  "delay=1ms x=1 y=2 z=3");
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.err, "inject: unexpected \"x=1\" (expected op=, lba=, zone=, "
			    "status=, dnr=, delay=, count=, prob= or seed=)");
	parse(&p, "inject\tlist");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.op, CONTROL_INJECT);
	assert_int_equal(p.req.fault.what, CONTROL_INJECT_LIST);
	refused("zone", "zone: expected offline|read-only NQN NSID ZSLBA [NZONES]");
}

static void test_bad_lines(void **state)
{
	struct parsed p;

	refused("", "empty request");
	refused(" \t ", "empty request");
	refused("reboot", "unknown command \"reboot\" (expected ping, power-cut, add-subsys, "
		"remove-subsys, status, metrics, zone, inject, reload, set-hosts or ana)");
	refused("PING", "unknown command \"PING\" (expected ping, power-cut, add-subsys, "
		"remove-subsys, status, metrics, zone, inject, reload, set-hosts or ana)");
	refused("ping\r", "the request holds a byte that is not printable ASCII");
	refused("remove-subsys caf\xc3\xa9", "the request holds a byte that is not printable ASCII");
	refused("a b c d e f g h i j k l m n o p q", "more than 16 words");

	/* A NUL inside the line: nothing after it may be ignored silently. */
	parse_n(&p, "ping\0power-cut", 14);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.err, "the request holds a NUL byte");
}

/* ana show / ana set PORT GROUP STATE (control_ana.h). */
static void test_ana(void **state)
{
	struct parsed p;

	parse(&p, "ana show");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.op, CONTROL_ANA);
	assert_int_equal(p.req.ana.what, CONTROL_ANA_SHOW);
	parse(&p, "ana set 3 32 persistent-loss");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.ana.what, CONTROL_ANA_SET);
	assert_int_equal(p.req.ana.portid, 3);
	assert_null(p.req.ana.port_addr);
	assert_int_equal(p.req.ana.group, 32);
	assert_int_equal(p.req.ana.state, NVME_ANA_STATE_PERSISTENT_LOSS);
	parse(&p, "ana set [::1]:4420 1 change");
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.req.ana.port_addr, "[::1]:4420");
	assert_int_equal(p.req.ana.portid, 0);
	assert_int_equal(p.req.ana.state, NVME_ANA_STATE_CHANGE);

	refused("ana", "ana: expected ana show, or ana set PORT GROUP STATE");
	refused("ana show all", "ana: expected ana show, or ana set PORT GROUP STATE");
	refused("ana set 1 1", "ana: expected ana show, or ana set PORT GROUP STATE");
	refused("ana set 0 1 optimized",
		"ana set: port \"0\" is neither a port ID nor ADDR:PORT");
	refused("ana set 65536 1 optimized",
		"ana set: port \"65536\" is neither a port ID nor ADDR:PORT");
	refused("ana set 1 0 optimized", "ana set: group \"0\" is not a number in 1..32");
	refused("ana set 1 01 optimized", "ana set: group \"01\" is not a number in 1..32");
	refused("ana set 1 1 Optimized", "ana set: state \"Optimized\" is not one of optimized, "
		"non-optimized, inaccessible, persistent-loss or change");
}

/* Numbers are decimal or 0x hex (doc/fault-injection.md): a leading zero
 * is still decimal, never octal (strtoull base 0 read "010" as 8 and
 * refused "09"). */
static void test_fault_numbers_decimal(void **state)
{
	struct parsed p;

	parse(&p, "zone offline n 1 0100 010");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.fault.zslba, 100);
	assert_int_equal(p.req.fault.nr_zones, 10);
	parse(&p, "zone offline n 1 09");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.fault.zslba, 9);
	parse(&p, "inject error n 010 lba=010+08 status=0:010 delay=010ms");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.fault.nsid, 10);
	assert_int_equal(p.req.fault.rule.slba, 10);
	assert_int_equal(p.req.fault.rule.nlb, 8);
	assert_int_equal(p.req.fault.rule.status & 0xff, 10);
	assert_int_equal(p.req.fault.rule.delay_us, 10000);
	parse(&p, "zone offline n 1 0x100");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.fault.zslba, 256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_and_power_cut),
		cmocka_unit_test(test_status_and_metrics),
		cmocka_unit_test(test_add_subsys),
		cmocka_unit_test(test_add_subsys_refused),
		cmocka_unit_test(test_fault_requests),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_set_hosts),
		cmocka_unit_test(test_remove_subsys),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_ana),
		cmocka_unit_test(test_fault_numbers_decimal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
