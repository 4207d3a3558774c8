/*
 * The ANA keys of the configuration (doc/ana.md): [target] ana_state =
 * LISTENER GROUP STATE and [namespace N] ana_group. Good files give the
 * expected values and defaults; every bad value is refused with a message
 * naming file, section and key; a reload refuses to change either.
 *
 * Each case writes DIR/znstgt.ini and DIR/conf/s.ini into a fresh
 * mkdtemp() directory.
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

#include <nvme/types.h>

#include "config.h"
#include "config_diff.h"

#define TARGET "[target]\ninclude = conf/*.ini\nlisten = 127.0.0.1:4420, [::1]:4421\n"
#define SUBSYS "[subsystem]\nnqn = nqn.2024-01.com.example:ana\n"                   \
	       "[namespace 1]\nsize = 16M\nzone_size = 1M\n"
#define NS2 "[namespace 2]\nsize = 16M\nzone_size = 1M\n"

static char dir[] = "/tmp/znstgt-config-ana-XXXXXX";
static int nr_case;

static void put(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* A directory of its own per case: znstgt.ini and conf/s.ini, loaded. */
static int load(const char *main_ini, const char *subsys, struct target_config *cfg,
		char *file, char *err, size_t errlen)
{
	char d[256], p[320];

	snprintf(d, sizeof(d), "%s/%d", dir, nr_case++);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(p, sizeof(p), "%s/conf", d);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/conf/s.ini", d);
	put(p, subsys);
	snprintf(p, sizeof(p), "%s/znstgt.ini", d);
	put(p, main_ini);
	snprintf(file, PATH_MAX, "%s", p);
	err[0] = '\0';
	return config_load(p, cfg, err, errlen);
}

static void test_good(void **state)
{
	struct target_config cfg;
	char file[PATH_MAX], err[1024];

	if (load(TARGET "ana_state = 127.0.0.1:4420 2 inaccessible\n"
		 "ana_state = [::1]:4421 1 non-optimized\n"
		 "ana_state = 127.0.0.1 1 persistent-loss\n"
		 "ana_state = [::1]:4421 32 change\n",
		 SUBSYS NS2 "ana_group = 32\n", &cfg, file, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.nr_ana, 4);
	assert_string_equal(cfg.ana[0].listener.addr, "127.0.0.1");
	assert_string_equal(cfg.ana[0].listener.port, "4420");
	assert_int_equal(cfg.ana[0].group, 2);
	assert_int_equal(cfg.ana[0].state, NVME_ANA_STATE_INACCESSIBLE);
	assert_string_equal(cfg.ana[1].listener.addr, "::1");
	assert_string_equal(cfg.ana[1].listener.port, "4421");
	assert_int_equal(cfg.ana[1].state, NVME_ANA_STATE_NONOPTIMIZED);
	/* The port defaults to 4420, as in listen. */
	assert_string_equal(cfg.ana[2].listener.port, "4420");
	assert_int_equal(cfg.ana[2].state, NVME_ANA_STATE_PERSISTENT_LOSS);
	assert_int_equal(cfg.ana[3].group, 32);
	assert_int_equal(cfg.ana[3].state, NVME_ANA_STATE_CHANGE);
	/* ana_group: 1 unless given. */
	assert_int_equal(cfg.subsys[0].ns[0].ana_group, 1);
	assert_int_equal(cfg.subsys[0].ns[1].ana_group, 32);
	config_free(&cfg);

	/* None given: no lines (every group optimized). */
	if (load(TARGET, SUBSYS, &cfg, file, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.nr_ana, 0);
	config_free(&cfg);
}

static const struct bad_case {
	const char *target_keys;     /* after TARGET */
	const char *ns_keys;         /* after SUBSYS */
	bool in_subsys;              /* the message names conf/s.ini */
	const char *where;           /* "[section] key: " */
	const char *what;
} bad[] = {
	{ "ana_state = 127.0.0.1:4422 1 optimized\n", "", false, "[target] ana_state: ",
	  "127.0.0.1:4422 is not a listener" },
	{ "ana_state = [::1]:4420 1 optimized\n", "", false, "[target] ana_state: ",
	  "[::1]:4420 is not a listener" },
	{ "ana_state = 127.0.0.1:4420 0 optimized\n", "", false, "[target] ana_state: ",
	  "group \"0\" is not a number in 1..32" },
	{ "ana_state = 127.0.0.1:4420 33 optimized\n", "", false, "[target] ana_state: ",
	  "group \"33\"" },
	{ "ana_state = 127.0.0.1:4420 one optimized\n", "", false, "[target] ana_state: ",
	  "group \"one\"" },
	{ "ana_state = 127.0.0.1:4420 1 degraded\n", "", false, "[target] ana_state: ",
	  "state \"degraded\" is not one of optimized, non-optimized" },
	{ "ana_state = 127.0.0.1:4420 1\n", "", false, "[target] ana_state: ",
	  "is not three words" },
	{ "ana_state = 127.0.0.1:4420 1 optimized x\n", "", false, "[target] ana_state: ",
	  "is not three words" },
	{ "ana_state = 127.0.0.1:x 1 optimized\n", "", false, "[target] ana_state: ",
	  "listener \"127.0.0.1:x\"" },
	{ "ana_state = 127.0.0.1:4420 1 optimized\nana_state = 127.0.0.1 1 change\n", "", false,
	  "[target] ana_state: ", "group 1 of 127.0.0.1 is given twice" },
	{ "", "ana_group = 0\n", true, "[namespace 1] ana_group: ",
	  "\"0\" is not a number in 1..32" },
	{ "", "ana_group = 33\n", true, "[namespace 1] ana_group: ", "\"33\"" },
	{ "", "ana_group = two\n", true, "[namespace 1] ana_group: ", "\"two\"" },
};

static void test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *c = &bad[i];
		struct target_config cfg;
		char main_ini[512], subsys[512], file[PATH_MAX], err[1024], want[PATH_MAX + 64];

		snprintf(main_ini, sizeof(main_ini), TARGET "%s", c->target_keys);
		snprintf(subsys, sizeof(subsys), SUBSYS "%s", c->ns_keys);
		int r = load(main_ini, subsys, &cfg, file, err, sizeof(err));
		if (c->in_subsys)
			strcpy(strrchr(file, '/'), "/conf/s.ini");
		snprintf(want, sizeof(want), "%s: %s", file, c->where);
		if (r != -1 || strncmp(err, want, strlen(want)) != 0 || !strstr(err, c->what))
			fail_msg("bad case %zu: got r=%d \"%s\"\nwant \"%s...%s...\"", i, r, err,
				 want, c->what);
		config_free(&cfg);
	}
}

/* A reload may change neither: both are what hosts were told (ANAGRPID
 * does not change while attached) or what `ana set` has changed since. */
static void test_reload_refuses(void **state)
{
	struct target_config cur, next;
	struct config_diff d;
	char file[PATH_MAX], err[1024], t1[512], t2[512];

	/* One data_dir for both: each load is in a directory of its own. */
	snprintf(t1, sizeof(t1), TARGET "data_dir = %s/data\n"
		 "ana_state = 127.0.0.1:4420 1 inaccessible\n", dir);
	snprintf(t2, sizeof(t2), TARGET "data_dir = %s/data\n"
		 "ana_state = 127.0.0.1:4420 1 optimized\n", dir);
	if (load(t1, SUBSYS NS2, &cur, file, err, sizeof(err)))
		fail_msg("%s", err);

	if (load(t1, SUBSYS NS2, &next, file, err, sizeof(err)))
		fail_msg("%s", err);
	if (config_diff(&cur, &next, &d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(config_diff_empty(&d));
	config_diff_free(&d);
	config_free(&next);

	if (load(t2, SUBSYS NS2, &next, file, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(config_diff(&cur, &next, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ana_state"));
	config_free(&next);

	if (load(t1, SUBSYS NS2 "ana_group = 2\n", &next, file, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(config_diff(&cur, &next, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ana_group"));
	config_free(&next);
	config_free(&cur);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_reload_refuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
