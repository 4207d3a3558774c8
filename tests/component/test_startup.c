/*
 * Start-up, end to end: the real daemon (build/znstgt) as a child process.
 *
 *   - one namespace that cannot be opened (its zone image no longer matches
 *     the configuration) is logged with its file and reason and left out;
 *     the other namespace is served over NVMe/TCP, and the refused one's
 *     files are left as they were;
 *   - when no configured namespace can be served the daemon exits with 1;
 *   - a failed start leaves no namespace files behind: a listen address in
 *     use, a namespace size the file system refuses;
 *   - a new namespace whose first open fails after those checks passed (its
 *     UUID clashes) is removed again.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_proc.h"

#define NQN "nqn.2026-11.io.znstgt:startup"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:3c0a4f52-61d4-4c1b-8a0e-5b7f0d2e9a11"
#define LBA 4096u
#define GOOD_NS "[namespace 1]\nsize = 4M\nzone_size = 1M\n"

static char dir[32];
static char port[8];
static struct target_proc T;

static void path_in(char *out, size_t len, const char *rel)
{
	int n = snprintf(out, len, "%s/%s", dir, rel);

	assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *rel, const char *text)
{
	target_write_ok(dir, rel, text);
}

static bool exists(const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	path_in(path, sizeof(path), rel);
	return stat(path, &st) == 0;
}

/* znstgt.ini with data in data_dir, and conf/s.ini with these namespaces. */
static void configure(const char *data_dir, const char *namespaces)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 1\nio_threads = 2\ndata_dir = %s\n"
		 "control_socket = control.sock\nlog_level = info\ninclude = conf/*.ini\n", port,
		 data_dir);
	write_file("znstgt.ini", text);
	snprintf(text, sizeof(text), "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n%s",
		 namespaces);
	write_file("conf/s.ini", text);
}

static void start_ok(bool format)
{
	char why[512];

	if (target_start(&T, format, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
}

static void stop_ok(void)
{
	char why[512];

	if (target_stop(&T, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("%s", why);
	}
}

/* The start must fail with exit status 1. */
static void start_fails(void)
{
	char why[512];

	if (target_start(&T, false, why, sizeof(why)) == 0) {
		target_kill(&T);
		fail_msg("the daemon started");
	}
	if (!strstr(why, "exited at start (wait status 0x100)")) {
		target_show_log(&T, 15);
		fail_msg("not an exit with status 1: %s", why);
	}
}

/* The daemon's log holds every one of the strings. */
static void assert_logged(const char *what, ...)
{
	va_list ap;

	va_start(ap, what);
	for (const char *s = what; s; s = va_arg(ap, const char *))
		if (!target_log_contains(&T, s)) {
			target_show_log(&T, 15);
			fail_msg("not in the log: \"%s\"", s);
		}
	va_end(ap);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/znstgt-start-XXXXXX");
	target_dir_ok(&T, dir, port, sizeof(port));
	return 0;
}

static int teardown(void **state)
{
	target_finish_ok(&T, dir);
	return 0;
}

/* ---- one namespace's failure never stops another ---- */

static void host_checks_ns1_only(void)
{
	static struct nvmf_client admin, io;
	uint8_t buf[4096], out[LBA], in[LBA];
	uint32_t list[1024];

	if (nvmf_admin_up(&admin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", admin.err);
	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, buf, NULL), 0);
	memcpy(list, buf, sizeof(list));
	assert_int_equal(le32toh(list[0]), 1);
	assert_int_equal(list[1], 0);

	if (nvmf_tcp_connect(&io, "127.0.0.1", port, false, false))
		fail_msg("I/O queue: %s", io.err);
	assert_int_equal(nvmf_connect(&io, 1, 32, 0, HOSTNQN, NQN, admin.cntlid, 0, NULL), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(nvmf_write(&io, 1, 0, 1, out, sizeof(out), NULL), 0);
	assert_int_equal(nvmf_read(&io, 1, 0, 1, in, sizeof(in), NULL), 0);
	assert_memory_equal(in, out, sizeof(out));
	nvmf_close(&io);
	nvmf_close(&admin);
}

static void test_broken_namespace_left_out(void **state)
{
	configure("data", GOOD_NS "[namespace 2]\nsize = 4M\nzone_size = 1M\n");
	start_ok(true);
	stop_ok();
	assert_true(exists("data/s/ns2/zones.img"));

	/* Namespace 2's zone image now has another geometry than its section. */
	configure("data", GOOD_NS "[namespace 2]\nsize = 4M\nzone_size = 2M\n");
	start_ok(false);
	assert_logged("conf/s.ini: [namespace 2] of " NQN " not served: ",
		      "data/s/ns2/zones.img: zone state on disk does not match the configuration",
		      NULL);
	host_checks_ns1_only();
	stop_ok();
	/* Left out, not erased. */
	assert_true(exists("data/s/ns2/zones.img"));
	assert_true(exists("data/s/ns2/data"));

	/* Nothing at all to serve: the start fails. */
	configure("data", "[namespace 2]\nsize = 4M\nzone_size = 2M\n");
	start_fails();
	assert_logged("none of the 1 configured namespace(s) can be served", NULL);
}

/* ---- a failed start leaves nothing behind ---- */

static void test_listen_address_in_use(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	configure("fresh", GOOD_NS);
	start_fails();
	close(fd);
	assert_logged("Address already in use", NULL);
	assert_false(exists("fresh"));
	assert_false(exists("control.sock"));
}

/* Whether dir's file system refuses a file of size bytes (ext4: 16 TiB). */
static bool fs_refuses(uint64_t size)
{
	int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	bool refused;

	assert_true(fd >= 0);
	refused = ftruncate(fd, (off_t)size) != 0;
	close(fd);
	return refused;
}

static void test_size_refused(void **state)
{
	if (!fs_refuses(32ull << 40))
		skip(); /* a file system that takes 32 TiB files (tmpfs, xfs) */

	/* Next to a good namespace: left out, nothing of it created. */
	configure("big", GOOD_NS "[namespace 2]\nzoned = no\nsize = 32T\n");
	start_ok(false);
	assert_logged("[namespace 2] of " NQN " not served: ",
		      "/big/s/ns2: the file system refuses a data file of 35184372088832 bytes",
		      NULL);
	stop_ok();
	assert_true(exists("big/s/ns1/zones.img"));
	assert_false(exists("big/s/ns2"));

	/* Alone: the start fails and leaves no directory. */
	configure("fresh", "[namespace 2]\nzoned = no\nsize = 32T\n");
	start_fails();
	assert_false(exists("fresh"));
}

/*
 * A first open that fails after the checks passed takes back what it created.
 * Here: namespace 1 of a second subsystem, new, is given the UUID that
 * namespace 1 of the first one keeps in its ns.id (as a copied
 * configuration would): it is created, found to clash, and removed again.
 */
static void test_failed_first_open_undone(void **state)
{
	char path[PATH_MAX], text[512];
	uint8_t id[40], *u = id + 16; /* ns.id: magic, version, reserved, UUID */
	FILE *f;

	configure("data", GOOD_NS);
	start_ok(true);
	stop_ok();
	path_in(path, sizeof(path), "data/s/ns1/ns.id");
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(id, 1, sizeof(id), f), sizeof(id));
	fclose(f);
	snprintf(text, sizeof(text),
		 "[subsystem]\nnqn = nqn.2026-11.io.znstgt:second\n[namespace 1]\nsize = 4M\n"
		 "zone_size = 1M\nuuid = %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x\n", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
		 u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	write_file("conf/t.ini", text);
	start_ok(false);
	assert_logged("conf/t.ini: [namespace 1] of nqn.2026-11.io.znstgt:second not served: ",
		      "has the same UUID as namespace 1 of " NQN,
		      "subsystem nqn.2026-11.io.znstgt:second: served without namespaces", NULL);
	host_checks_ns1_only();
	stop_ok();
	assert_false(exists("data/t"));
	assert_true(exists("data/s/ns1/zones.img"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_broken_namespace_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_address_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_first_open_undone, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
