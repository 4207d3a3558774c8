/*
 * [subsystem] require_tls (common/config_tls.c): accepted when every host
 * of the subsystem holds a PSK and the target has a tls_listen listener;
 * otherwise refused with a message naming the file, section and key at
 * fault, and never any key text. Reload: a change of require_tls is a
 * change of the subsystem's hosts (applied without a restart).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_diff.h"

#define SUBNQN "nqn.2026-11.io.znstgt:tls-only"
#define HOST_A "nqn.2026-11.io.znstgt:host-a"
#define HOST_B "nqn.2026-11.io.znstgt:host-b"
#define KEY_PSK "NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:"
#define KEY_TEXT "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1" /* must never appear in a message */
#define TARGET_TLS "[target]\ntls_listen = 127.0.0.1:4421\ninclude = conf/*.ini\n"
#define TARGET_PLAIN "[target]\nlisten = 127.0.0.1:4420\ninclude = conf/*.ini\n"
#define SUBSYS "[subsystem]\nnqn = " SUBNQN "\nrequire_tls = yes\n"
#define NS "[namespace 1]\nsize = 1M\nzoned = no\n"

static char dir[64];

static void put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[PATH_MAX];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/znstgt-tlscfg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/conf", dir);
	return mkdir(path, 0755);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* Load target + conf/s.ini: 0 (cfg to free), or -1 with err. */
static int load(const char *target, const char *subsys, struct target_config *cfg, char *err,
		size_t errlen)
{
	char path[PATH_MAX];

	put("znstgt.ini", target);
	put("conf/s.ini", subsys);
	snprintf(path, sizeof(path), "%s/znstgt.ini", dir);
	return config_load(path, cfg, err, errlen);
}

/* Refused, naming the subsystem file, "[section] key" and what. */
static void refused(const char *target, const char *subsys, const char *sec_key,
		    const char *what)
{
	struct target_config cfg;
	char err[1024];

	assert_int_equal(load(target, subsys, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, "conf/s.ini") || !strstr(err, sec_key) || !strstr(err, what))
		fail_msg("expected \"%s\" and \"%s\" in: %s", sec_key, what, err);
	assert_null(strstr(err, KEY_TEXT));
}

static void test_accepted(void **state)
{
	struct target_config cfg;
	char err[1024];

	(void)state;
	assert_int_equal(load(TARGET_TLS, SUBSYS NS "[host " HOST_A "]\npsk = " KEY_PSK "\n"
				 "[host " HOST_B "]\npsk = " KEY_PSK "\n", &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.nr_subsys, 1);
	assert_true(cfg.subsys[0].require_tls);
	config_free(&cfg);
	/* The default: no. */
	assert_int_equal(load(TARGET_PLAIN, "[subsystem]\nnqn = " SUBNQN "\n[namespace 1]\n"
				 "size = 1M\nzoned = no\n", &cfg, err, sizeof(err)), 0);
	assert_false(cfg.subsys[0].require_tls);
	config_free(&cfg);
	/* no, spelled out, needs nothing else. */
	assert_int_equal(load(TARGET_PLAIN, "[subsystem]\nnqn = " SUBNQN "\nrequire_tls = no\n"
				 "[namespace 1]\nsize = 1M\nzoned = no\n", &cfg, err, sizeof(err)), 0);
	assert_false(cfg.subsys[0].require_tls);
	config_free(&cfg);
}

static void test_refused(void **state)
{
	(void)state;
	refused(TARGET_TLS, "[subsystem]\nnqn = " SUBNQN "\nrequire_tls = always\n"
		"[host " HOST_A "]\npsk = " KEY_PSK "\n", "[subsystem] require_tls", "always");
	/* Any host: nobody has a PSK. */
	refused(TARGET_TLS, SUBSYS "allow_any_host = yes\n" NS, "[subsystem] require_tls",
		"any host may connect");
	refused(TARGET_TLS, SUBSYS NS, "[subsystem] require_tls", "any host may connect");
	/* A host with a section but no psk (a DH-HMAC-CHAP secret is not one). */
	refused(TARGET_TLS, SUBSYS NS "[host " HOST_A "]\npsk = " KEY_PSK "\n[host " HOST_B "]\n"
		"dhchap_secret = DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n",
		"[host " HOST_B "] psk", "could never connect");
	/* A host only listed. */
	refused(TARGET_TLS, SUBSYS "allowed_hosts = " HOST_B "\n" NS "[host " HOST_A "]\npsk = "
		KEY_PSK "\n", "[subsystem] allowed_hosts", HOST_B);
	/* No tls_listen in the target file: named in the message too. */
	refused(TARGET_PLAIN, SUBSYS NS "[host " HOST_A "]\npsk = " KEY_PSK "\n",
		"[subsystem] require_tls", "znstgt.ini has no tls_listen");
}

/* A reload that switches require_tls changes the hosts, nothing else. */
static void test_reload_is_a_hosts_change(void **state)
{
	struct target_config a, b;
	struct config_diff d;
	char err[1024];
	const char *hosts = "[host " HOST_A "]\npsk = " KEY_PSK "\n";
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s%s", SUBSYS NS, hosts);
	assert_int_equal(load(TARGET_TLS, text, &a, err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "[subsystem]\nnqn = " SUBNQN "\n[namespace 1]\nsize = 1M\n"
		 "zoned = no\n%s", hosts);
	assert_int_equal(load(TARGET_TLS, text, &b, err, sizeof(err)), 0);
	assert_int_equal(config_diff(&a, &b, &d, err, sizeof(err)), 0);
	assert_int_equal(d.nr_subsys, 1);
	assert_true(d.subsys[0].hosts);
	assert_int_equal(d.subsys[0].nr_ns_add + d.subsys[0].nr_ns_remove, 0);
	config_diff_free(&d);
	config_free(&a);
	config_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_reload_is_a_hosts_change),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
