/*
 * The load generator as a program (build/tools/znstgt-load) against the
 * daemon (build/znstgt) in another process, the way it drives any NVMe/TCP
 * target: a conventional namespace takes every read and write workload,
 * random and sequential, with its data verified; a zone workload on it is
 * refused with a message that says a zoned namespace is needed; the same
 * zone workload runs on a zoned namespace.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../lib/target_check.h"
#include "../lib/target_proc.h"

#define NQN "nqn.2026-11.io.znstgt:load-tool-test"

extern char **environ;

static char dir[] = "/tmp/znstgt-load-tool-XXXXXX";
static char tool[PATH_MAX];
static char port[16];
static struct target_proc T;

static void write_file(const char *rel, const char *text)
{
	target_write_ok(dir, rel, text);
}

static int setup(void **state)
{
	char text[1024], why[512];

	assert_non_null(mkdtemp(dir));
	if (target_find_bin(T.bin, sizeof(T.bin), why, sizeof(why)))
		fail_msg("%s", why);
	/* The tool of the same build: <build>/znstgt -> <build>/tools/znstgt-load. */
	const char *env = getenv("ZNSTGT_LOAD_BIN");
	if (env) {
		snprintf(tool, sizeof(tool), "%s", env);
	} else {
		snprintf(tool, sizeof(tool), "%s", T.bin);
		char *slash = strrchr(tool, '/');
		snprintf(slash, sizeof(tool) - (size_t)(slash - tool), "/tools/znstgt-load");
	}
	if (access(tool, X_OK))
		fail_msg("no load generator at %s (make all, or set ZNSTGT_LOAD_BIN)", tool);

	assert_int_equal(target_free_port(port, sizeof(port)), 0);
	snprintf(T.ini, sizeof(T.ini), "%s/znstgt.ini", dir);
	snprintf(T.sock, sizeof(T.sock), "%s/control.sock", dir);
	snprintf(T.log, sizeof(T.log), "%s/znstgt.log", dir);
	snprintf(text, sizeof(text), "%s/conf", dir);
	assert_int_equal(mkdir(text, 0755), 0);
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 1\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\nlog_level = warn\ninclude = conf/*.ini\n", port);
	write_file("znstgt.ini", text);
	write_file("conf/load.ini", "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
				    "[namespace 1]\nsize = 8M\nzoned = no\n"
				    "[namespace 2]\nsize = 8M\nzone_size = 1M\n"
				    "[vfio-user]\nsocket = vm.sock\n");
	if (target_start(&T, true, why, sizeof(why))) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
	return 0;
}

static int teardown(void **state)
{
	target_finish_ok(&T, dir);
	return 0;
}

/*
 * Run the tool with `args` (NULL-terminated) after the connection options;
 * its stdout and stderr end up in out. Returns its exit status.
 */
static int run_tool(char *out, size_t outlen, const char *const *args)
{
	char path[600];
	const char *argv[32] = { "znstgt-load", "-a", "127.0.0.1", "-p", port, "-n", NQN,
				 "--no-limit", "--timeout", "5000" };
	int argc = 10;
	for (int i = 0; args[i]; i++) {
		assert_true(argc < 31);
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;

	snprintf(path, sizeof(path), "%s/tool.out", dir);
	posix_spawn_file_actions_t fa;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC,
							  0644), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, tool, &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, outlen - 1, f);
	out[n] = 0;
	fclose(f);
	return WEXITSTATUS(status);
}

/* The value of key=N in a --terse line, or -1. */
static long long terse(const char *out, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(out, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static void expect_verified(const char *workload, const char *nsid, const char *bs)
{
	char out[4096];
	const char *args[] = { "-N", nsid, "-w", workload, "-b", bs, "-q", "8", "-j", "2",
			       "-i", "400", "--verify", "--terse", NULL };
	int rc = run_tool(out, sizeof(out), args);
	if (rc)
		fail_msg("%s on namespace %s: exit %d: %s", workload, nsid, rc, out);
	assert_int_equal(terse(out, "ios"), 400);
	assert_int_equal(terse(out, "verified"), 400);
	assert_int_equal(terse(out, "errors"), 0);
	assert_int_equal(terse(out, "zoned"), strcmp(nsid, "2") ? 0 : 1);
}

static void test_conventional_workloads(void **state)
{
	expect_verified("randread", "1", "4K");
	expect_verified("read", "1", "16K");
	expect_verified("randwrite", "1", "8K");
	expect_verified("write", "1", "64K");
}

static void test_conventional_refuses_zone_workload(void **state)
{
	char out[4096];
	const char *args[] = { "-N", "1", "-w", "append", "-i", "10", NULL };
	assert_int_equal(run_tool(out, sizeof(out), args), 1);
	assert_non_null(strstr(out, "needs a zoned namespace"));
	assert_non_null(strstr(out, "conventional"));
}

static void test_zoned_append(void **state)
{
	expect_verified("append", "2", "4K");
}

/* What the target reported, said before the run. */
static void test_describes_target(void **state)
{
	char out[4096];
	const char *args[] = { "-N", "1", "-w", "randread", "-i", "20", NULL };
	assert_int_equal(run_tool(out, sizeof(out), args), 0);
	assert_non_null(strstr(out, "target: MDTS 1024 KiB"));
	assert_non_null(strstr(out, "namespace 1 conventional"));
}

/* --vfio-user: the same reads and writes as a polling VM driver, counted
 * the same way; appends or more than one queue are a usage error. */
static void test_vfio_user_reads(void **state)
{
	char out[4096], sock[600];
	(void)state;
	snprintf(sock, sizeof(sock), "%s/data/vm.sock", dir);
	const char *rand[] = { "--vfio-user", sock, "-w", "randread", "-q", "8", "--ios", "300",
			       "--terse", NULL };
	assert_int_equal(run_tool(out, sizeof(out), rand), 0);
	assert_int_equal(terse(out, "ios"), 300);
	assert_int_equal(terse(out, "errors"), 0);
	const char *seq[] = { "--vfio-user", sock, "-w", "read", "-b", "128K", "-q", "4", "--ios",
			      "40", "--terse", NULL };
	assert_int_equal(run_tool(out, sizeof(out), seq), 0);
	assert_int_equal(terse(out, "ios"), 40);
	assert_int_equal(terse(out, "bs"), 131072);
	/* Writes to the conventional namespace; not to the zoned one; no
	 * appends (usage). */
	const char *write[] = { "--vfio-user", sock, "-w", "randwrite", "-q", "4", "--ios", "10",
				"--terse", NULL };
	assert_int_equal(run_tool(out, sizeof(out), write), 0);
	assert_int_equal(terse(out, "ios"), 10);
	assert_int_equal(terse(out, "errors"), 0);
	const char *zwrite[] = { "--vfio-user", sock, "-N", "2", "-w", "write", "--ios", "10", NULL };
	assert_int_equal(run_tool(out, sizeof(out), zwrite), 1);
	assert_non_null(strstr(out, "is zoned"));
	const char *append[] = { "--vfio-user", sock, "-N", "2", "-w", "append", "--ios", "10", NULL };
	assert_int_equal(run_tool(out, sizeof(out), append), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conventional_workloads),
		cmocka_unit_test(test_conventional_refuses_zone_workload),
		cmocka_unit_test(test_zoned_append),
		cmocka_unit_test(test_describes_target),
		cmocka_unit_test(test_vfio_user_reads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
