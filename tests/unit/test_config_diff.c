/*
 * config_diff(): what a reload would change, and what it refuses, on
 * configurations built here (no files, no target).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_diff.h"

#define NQN_A "nqn.2026-11.io.znstgt:a"
#define NQN_B "nqn.2026-11.io.znstgt:b"
#define NQN_C "nqn.2026-11.io.znstgt:c"
#define HOST_1 "nqn.2026-11.io.znstgt:h1"
#define HOST_2 "nqn.2026-11.io.znstgt:h2"

static struct target_config cur, next;

static void ns_init(struct ns_config *n, uint32_t nsid)
{
	memset(n, 0, sizeof(*n));
	n->nsid = nsid;
	snprintf(n->path, sizeof(n->path), "/tmp/znstgt-diff/ns%u", nsid);
	n->size = 64u << 20;
	n->lba_size = 4096;
	n->zoned = true;
	n->zone_size = n->zone_capacity = 16u << 20;
	n->zone_append_max = 128u << 10;
	n->cross_zone_read = true;
	n->journal_size = 64u << 20;
}

/* Subsystem nqn with namespaces 1..nr_ns and HOST_1 allowed with a secret. */
static void subsys_init(struct subsys_config *sc, const char *file, const char *nqn, int nr_ns)
{
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->file, sizeof(sc->file), "%s", file);
	snprintf(sc->nqn, sizeof(sc->nqn), "%s", nqn);
	snprintf(sc->serial, sizeof(sc->serial), "0123");
	sc->nr_hosts = 1;
	snprintf(sc->hosts[0], sizeof(sc->hosts[0]), HOST_1);
	sc->host_auth[0].section = true;
	sc->host_auth[0].dhchap_secret = (struct nvme_secret){ .kind = NVME_SECRET_DHCHAP,
							       .len = 32 };
	memset(sc->host_auth[0].dhchap_secret.key, 0x11, 32);
	for (int i = 0; i < nr_ns; i++)
		ns_init(&sc->ns[i], (uint32_t)i + 1);
	sc->nr_ns = nr_ns;
}

/* Both configurations: main file, subsystems A (2 namespaces) and B (1). */
static void target_init(struct target_config *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->file, sizeof(t->file), "/etc/znstgt/znstgt.ini");
	t->nr_listeners = 2;
	snprintf(t->listeners[0].addr, sizeof(t->listeners[0].addr), "127.0.0.1");
	snprintf(t->listeners[0].port, sizeof(t->listeners[0].port), "4420");
	snprintf(t->listeners[1].addr, sizeof(t->listeners[1].addr), "::1");
	snprintf(t->listeners[1].port, sizeof(t->listeners[1].port), "4420");
	t->io_threads = 4;
	snprintf(t->data_dir, sizeof(t->data_dir), "/var/lib/znstgt");
	snprintf(t->log_level, sizeof(t->log_level), "info");
	t->max_connections = 4096;
	t->subsys = calloc(2, sizeof(*t->subsys));
	assert_non_null(t->subsys);
	subsys_init(&t->subsys[0], "/etc/znstgt/conf.d/a.ini", NQN_A, 2);
	subsys_init(&t->subsys[1], "/etc/znstgt/conf.d/b.ini", NQN_B, 1);
	t->nr_subsys = 2;
}

static int setup(void **state)
{
	target_init(&cur);
	target_init(&next);
	return 0;
}

static int teardown(void **state)
{
	config_free(&cur);
	config_free(&next);
	return 0;
}

static void diff_ok(struct config_diff *d)
{
	char err[512] = "";

	if (config_diff(&cur, &next, d, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void refused(const char *expect)
{
	struct config_diff d;
	char err[512] = "";

	assert_int_equal(config_diff(&cur, &next, &d, err, sizeof(err)), -1);
	if (strcmp(err, expect) != 0)
		fail_msg("refused with \"%s\", expected \"%s\"", err, expect);
	assert_null(d.subsys);
}

static void test_same(void **state)
{
	struct config_diff d;

	/* Listeners in another order, a path spelt otherwise, subsystems from
	 * other files: the same configuration. */
	next.listeners[0] = cur.listeners[1];
	next.listeners[1] = cur.listeners[0];
	snprintf(next.subsys[0].ns[0].path, sizeof(next.subsys[0].ns[0].path),
		 "/tmp//znstgt-diff/./ns1/");
	snprintf(next.subsys[1].file, sizeof(next.subsys[1].file), "/etc/znstgt/conf.d/z.ini");
	diff_ok(&d);
	assert_true(config_diff_empty(&d));
	config_diff_free(&d);
}

static void test_subsystems(void **state)
{
	struct config_diff d;

	/* B goes, C comes. */
	subsys_init(&next.subsys[1], "/etc/znstgt/conf.d/c.ini", NQN_C, 1);
	diff_ok(&d);
	assert_false(config_diff_empty(&d));
	assert_int_equal(d.nr_subsys, 2);
	assert_int_equal(d.subsys[0].old_i, 1);
	assert_int_equal(d.subsys[0].new_i, -1);
	assert_int_equal(d.subsys[1].old_i, -1);
	assert_int_equal(d.subsys[1].new_i, 1);
	config_diff_free(&d);
}

static void test_namespaces(void **state)
{
	struct config_diff d;

	/* A: namespace 1 goes, 2 stays, 5 comes; B: 3 comes. */
	next.subsys[0].ns[0] = next.subsys[0].ns[1];
	ns_init(&next.subsys[0].ns[1], 5);
	ns_init(&next.subsys[1].ns[1], 3);
	next.subsys[1].nr_ns = 2;
	diff_ok(&d);
	assert_int_equal(d.nr_subsys, 2);
	assert_int_equal(d.subsys[0].old_i, 0);
	assert_int_equal(d.subsys[0].new_i, 0);
	assert_int_equal(d.subsys[0].nr_ns_add, 1);
	assert_int_equal(d.subsys[0].ns_add[0], 5);
	assert_int_equal(d.subsys[0].nr_ns_remove, 1);
	assert_int_equal(d.subsys[0].ns_remove[0], 1);
	assert_false(d.subsys[0].hosts);
	assert_int_equal(d.subsys[1].nr_ns_add, 1);
	assert_int_equal(d.subsys[1].ns_add[0], 3);
	assert_int_equal(d.subsys[1].nr_ns_remove, 0);
	config_diff_free(&d);
}

static void test_hosts(void **state)
{
	struct config_diff d;

	/* A: one more host; B: its host's secret differs in one byte. */
	next.subsys[0].nr_hosts = 2;
	snprintf(next.subsys[0].hosts[1], sizeof(next.subsys[0].hosts[1]), HOST_2);
	next.subsys[1].host_auth[0].dhchap_secret.key[31] ^= 1;
	diff_ok(&d);
	assert_int_equal(d.nr_subsys, 2);
	assert_true(d.subsys[0].hosts);
	assert_true(d.subsys[1].hosts);
	assert_int_equal(d.subsys[0].nr_ns_add + d.subsys[0].nr_ns_remove, 0);
	config_diff_free(&d);

	/* The same hosts listed in another order: no change. */
	cur.subsys[0] = next.subsys[0];
	snprintf(next.subsys[0].hosts[0], sizeof(next.subsys[0].hosts[0]), HOST_2);
	snprintf(next.subsys[0].hosts[1], sizeof(next.subsys[0].hosts[1]), HOST_1);
	next.subsys[0].host_auth[1] = cur.subsys[0].host_auth[0];
	next.subsys[0].host_auth[0] = cur.subsys[0].host_auth[1];
	next.subsys[1] = cur.subsys[1];
	diff_ok(&d);
	assert_true(config_diff_empty(&d));
	config_diff_free(&d);

	/* allow_any_host alone. */
	next.subsys[1].allow_any_host = true;
	next.subsys[1].nr_hosts = 0;
	diff_ok(&d);
	assert_int_equal(d.nr_subsys, 1);
	assert_int_equal(d.subsys[0].new_i, 1);
	assert_true(d.subsys[0].hosts);
	config_diff_free(&d);
}

static void test_log_level(void **state)
{
	struct config_diff d;

	snprintf(next.log_level, sizeof(next.log_level), "debug");
	diff_ok(&d);
	assert_true(d.log_level);
	assert_int_equal(d.nr_subsys, 0);
	assert_false(config_diff_empty(&d));
	config_diff_free(&d);
}

/* Every key of a namespace kept: changed alone, the reload is refused
 * naming it. */
static void test_namespace_keys_refused(void **state)
{
	static const char *const keys[] = {
		"path", "size", "lba_size", "zoned", "zone_size", "zone_capacity", "max_open",
		"max_active", "zone_append_max", "zde_size", "cross_zone_read", "write_cache",
		"preallocate", "offline_zones", "read_only_zones", "journal_size", "uuid",
		"zrwa_size", "zrwa_flush_granularity", "zrwa_resources",
	};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		struct ns_config *n = &next.subsys[0].ns[1];
		char expect[256];

		ns_init(n, 2);
		switch (k) {
		case 0: snprintf(n->path, sizeof(n->path), "/tmp/znstgt-diff/other"); break;
		case 1: n->size *= 2; break;
		case 2: n->lba_size = 512; break;
		case 3: n->zoned = false; break;
		case 4: n->zone_size *= 2; break;
		case 5: n->zone_capacity /= 2; break;
		case 6: n->max_open = 2; break;
		case 7: n->max_active = 2; break;
		case 8: n->zone_append_max *= 2; break;
		case 9: n->zde_size = 64; break;
		case 10: n->cross_zone_read = false; break;
		case 11: n->write_cache = true; break;
		case 12: n->preallocate = true; break;
		case 13: n->offline_list[0] = 1; n->offline_list_len = 1; break;
		case 14: n->readonly_count = 1; break;
		case 15: n->journal_size /= 2; break;
		case 16: n->have_uuid = true; n->uuid[0] = 1; break;
		case 17: n->zrwa_size = 1u << 20; break;
		case 18: n->zrwa_flush_granularity = 8192; break;
		case 19: n->zrwa_resources = 2; break;
		}
		snprintf(expect, sizeof(expect), "/etc/znstgt/conf.d/a.ini: [namespace 2] %s: "
			 NQN_A ": cannot change while the target runs (restart it to apply) (the "
			 "namespace is served with the value it was opened with)", keys[k]);
		refused(expect);
	}
}

static void test_subsystem_keys_refused(void **state)
{
	snprintf(next.subsys[1].model, sizeof(next.subsys[1].model), "other");
	refused("/etc/znstgt/conf.d/b.ini: [subsystem] model: " NQN_B ": cannot change while "
		"the target runs (restart it to apply) (hosts read it in Identify)");
	next.subsys[1] = cur.subsys[1];
	snprintf(next.subsys[1].vfio_user_socket, sizeof(next.subsys[1].vfio_user_socket),
		 "/run/b.sock");
	refused("/etc/znstgt/conf.d/b.ini: [vfio-user] socket: " NQN_B ": cannot change while "
		"the target runs (restart it to apply)");
}

static void test_target_keys_refused(void **state)
{
	/* A refusal wins over changes that could apply. */
	subsys_init(&next.subsys[1], "/etc/znstgt/conf.d/c.ini", NQN_C, 1);
	snprintf(next.listeners[1].port, sizeof(next.listeners[1].port), "4421");
	refused("/etc/znstgt/znstgt.ini: [target] listen: cannot change while the target runs "
		"(restart it to apply)");
	next.listeners[1] = cur.listeners[1];
	next.io_threads = 8;
	refused("/etc/znstgt/znstgt.ini: [target] io_threads: cannot change while the target "
		"runs (restart it to apply)");
	next.io_threads = cur.io_threads;
	next.poll = !cur.poll;
	refused("/etc/znstgt/znstgt.ini: [target] poll: cannot change while the target runs "
		"(restart it to apply)");
	next.poll = cur.poll;
	snprintf(next.control_socket, sizeof(next.control_socket), "/run/znstgt.sock");
	refused("/etc/znstgt/znstgt.ini: [target] control_socket: cannot change while the "
		"target runs (restart it to apply)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsystems, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_keys_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsystem_keys_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_keys_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
