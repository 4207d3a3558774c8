/*
 * Connection limits, end to end: the real daemon (build/znstgt) as a child
 * process, hosts played by the test client.
 *
 *   - 2,000 idle TCP connections that never send ICReq fill max_connections;
 *     a real host still connects (admin and I/O queues) and does I/O: each
 *     of its connections closes the oldest idle one, and only that;
 *   - max_connections_per_host and max_controllers: the Connect past the
 *     bound gets Connect Controller Busy (with DNR);
 *   - when every connection is a connected queue, a new connection is
 *     refused at accept.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_proc.h"

#define NQN "nqn.2026-11.io.znstgt:limits"
#define HOST_A "nqn.2014-08.org.nvmexpress:uuid:8f2c7d10-3b5e-4a61-9c0d-1e2f3a4b5c6d"
#define HOST_B "nqn.2026-11.io.znstgt:host-b"
#define HOST_C "nqn.2026-11.io.znstgt:host-c"
#define LBA 4096u
#define IDLE 2000
#define BUSY (NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_CTRL_BUSY) | NVME_STATUS_DNR)
#define WAIT_MS 20000               /* upper bound for the target to act */

static char dir[32];
static char port[8];
static struct target_proc T;
static int idle[IDLE];

static void write_file(const char *rel, const char *text)
{
	target_write_ok(dir, rel, text);
}

/* Start the daemon with these [target] limit keys. */
static void start(const char *limits)
{
	char text[1024], why[512];

	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 2\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\nlog_level = info\ninclude = conf/*.ini\n%s",
		 port, limits);
	write_file("znstgt.ini", text);
	write_file("conf/s.ini", "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	if (target_start(&T, true, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
}

static int tcp_open(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail_msg("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

/* Whether the target closed fd (EOF or reset is readable at once). */
static bool closed_by_target(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	return poll(&p, 1, timeout_ms) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static void admin_up(struct nvmf_client *c, const char *host)
{
	if (nvmf_admin_up(c, "127.0.0.1", port, host, NQN))
		fail_msg("%s: %s", host, c->err);
}

static int io_connect(struct nvmf_client *c, const struct nvmf_client *admin, uint16_t qid,
		      const char *host)
{
	if (nvmf_tcp_connect(c, "127.0.0.1", port, false, false))
		fail_msg("I/O queue %u: %s", qid, c->err);
	return nvmf_connect(c, qid, 32, 0, host, NQN, admin->cntlid, 0, NULL);
}

static void assert_logged(const char *s)
{
	if (!target_log_contains(&T, s)) {
		target_show_log(&T, 15);
		fail_msg("not in the log: \"%s\"", s);
	}
}

static int setup(void **state)
{
	struct rlimit rl;

	/* The idle sockets, the hosts' and the daemon's own, on one machine. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < IDLE + 256) {
		fprintf(stderr, "RLIMIT_NOFILE hard limit %llu: too low for %d connections\n",
			(unsigned long long)rl.rlim_max, IDLE);
		return -1;
	}
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	snprintf(dir, sizeof(dir), "/tmp/znstgt-lim-XXXXXX");
	target_dir_ok(&T, dir, port, sizeof(port));
	for (int i = 0; i < IDLE; i++)
		idle[i] = -1;
	return 0;
}

static int teardown(void **state)
{
	for (int i = 0; i < IDLE; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	target_finish_ok(&T, dir);
	return 0;
}

/*
 * Wait until the target closed at least `want` more idle sockets, then
 * check that the closed ones are the oldest: those evicted to make room
 * are, and so are those that reached the handshake timeout (30 s after
 * their accept, should this machine be that slow).
 */
static void idle_closed(int want)
{
	int n = 0, first_open = -1;

	for (int i = 0; i < IDLE; i++) {
		if (idle[i] < 0)
			continue;
		/* Only the oldest open one can be next. */
		if (!closed_by_target(idle[i], n < want && first_open < 0 ? WAIT_MS : 0)) {
			if (first_open < 0)
				first_open = i;
			continue;
		}
		if (first_open >= 0)
			fail_msg("idle connection %d closed while the older %d is open", i, first_open);
		close(idle[i]);
		idle[i] = -1;
		n++;
	}
	if (n < want)
		fail_msg("%d idle connection(s) closed, expected %d", n, want);
}

static void test_idle_connections(void **state)
{
	static struct nvmf_client a, a_io[3], b, c;
	uint8_t out[LBA], in[LBA];

	start("max_connections = 2000\nmax_connections_per_host = 3\nmax_controllers = 2\n");
	for (int i = 0; i < IDLE; i++)
		idle[i] = tcp_open();

	/* The limit is reached: the host's admin queue and I/O queue each
	 * close the oldest idle connection. */
	admin_up(&a, HOST_A);
	assert_int_equal(io_connect(&a_io[0], &a, 1, HOST_A), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(nvmf_write(&a_io[0], 1, 8, 1, out, sizeof(out), NULL), 0);
	assert_int_equal(nvmf_read(&a_io[0], 1, 8, 1, in, sizeof(in), NULL), 0);
	assert_memory_equal(in, out, sizeof(out));
	idle_closed(2);

	/* max_connections_per_host = 3: a third queue yes, a fourth no. */
	assert_int_equal(io_connect(&a_io[1], &a, 2, HOST_A), 0);
	assert_int_equal(io_connect(&a_io[2], &a, 3, HOST_A), BUSY);
	/* max_controllers = 2: host B gets the second, host C none. */
	admin_up(&b, HOST_B);
	if (nvmf_tcp_connect(&c, "127.0.0.1", port, false, false))
		fail_msg("admin queue of C: %s", c.err);
	assert_int_equal(nvmf_connect(&c, 0, 32, 0, HOST_C, NQN, 0xffff, 0, NULL), BUSY);
	/* Each of those 4 connections took an idle one's place. */
	idle_closed(4);
	/* The host's queues still work. */
	assert_int_equal(nvmf_read(&a_io[1], 1, 8, 1, in, sizeof(in), NULL), 0);
	assert_memory_equal(in, out, sizeof(out));
	assert_logged("connection(s) without Fabrics Connect closed to make room for new ones, "
		      "the last from 127.0.0.1:");
	assert_logged("max_connections (2000) reached");
	assert_logged("connect from " HOST_A " refused: 3 queues of that host connected, "
		      "max_connections_per_host reached");
	assert_logged("connect from " HOST_C " to " NQN " refused: 2 controllers, "
		      "max_controllers reached");

	nvmf_close(&c);
	nvmf_close(&b);
	for (int i = 0; i < 3; i++)
		nvmf_close(&a_io[i]);
	nvmf_close(&a);
}

static void test_all_connected_refuses(void **state)
{
	static struct nvmf_client a, io, extra;

	start("max_connections = 2\n");
	idle[0] = tcp_open();
	admin_up(&a, HOST_A);
	assert_int_equal(io_connect(&io, &a, 1, HOST_A), 0); /* takes idle[0]'s place */
	idle_closed(1);
	/* Both places are connected queues: the next connection is closed
	 * at accept, before its ICReq is answered. */
	assert_int_equal(nvmf_tcp_connect(&extra, "127.0.0.1", port, false, false), -1);
	nvmf_close(&extra);
	assert_logged("1 connection(s) on 127.0.0.1:");
	assert_logged("refused: max_connections (2) connected queues open");
	assert_int_equal(nvmf_identify(&a, NVME_IDENTIFY_CNS_CTRL, 0, 0, (uint8_t[4096]){ 0 },
				       NULL), 0);
	nvmf_close(&io);
	nvmf_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_connected_refuses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
