/*
 * Running as a system service:
 *
 *   - tests/install-test.sh against this build (build/ or build-asan/):
 *     `make install` with DESTDIR and PREFIX, the unit, the manual pages,
 *     the example configuration served by the installed daemon;
 *   - the readiness protocol the unit relies on (Type=notify): the real
 *     daemon, given $NOTIFY_SOCKET, sends READY=1 once it accepts
 *     connections, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 on
 *     SIGTERM, each one datagram, to a path socket and to an abstract one.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../lib/run_script.h"
#include "../lib/target_proc.h"

#define NOTIFY_WAIT_MS 20000

static void test_install_script(void **state)
{
	char port[8], why[512];

	assert_int_equal(target_free_port(port, sizeof(port)), 0);
	if (run_script("install-test.sh", port, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

/* The next datagram on fd, NUL-terminated, or fail. */
static void next_state(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t got;

	if (poll(&p, 1, NOTIFY_WAIT_MS) != 1)
		fail_msg("no notification within %d ms", NOTIFY_WAIT_MS);
	got = recv(fd, buf, len - 1, 0);
	assert_true(got > 0);
	buf[got] = '\0';
}

/* Start the daemon with $NOTIFY_SOCKET = name, bound by the test at sa,
 * and follow it through a reload and a stop. */
static void notify_cycle(const char *name, const struct sockaddr_un *sa, socklen_t salen)
{
	char dir[] = "/tmp/znstgt-ntf-XXXXXX", text[512], port[8], why[256];
	char state[256], expect[64];
	struct target_proc t = { 0 };
	FILE *f;
	int fd;

	assert_non_null(mkdtemp(dir));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (bind(fd, (const struct sockaddr *)sa, salen) != 0)
		fail_msg("bind %s: %s", name, strerror(errno));
	assert_int_equal(target_free_port(port, sizeof(port)), 0);
	assert_int_equal(target_find_bin(t.bin, sizeof(t.bin), why, sizeof(why)), 0);
	snprintf(t.ini, sizeof(t.ini), "%s/znstgt.ini", dir);
	snprintf(t.sock, sizeof(t.sock), "%s/control.sock", dir);
	snprintf(t.log, sizeof(t.log), "%s/znstgt.log", dir);
	snprintf(text, sizeof(text), "[target]\nlisten = 127.0.0.1:%s\nthreads = 1\n"
		 "io_threads = 1\ncontrol_socket = control.sock\n", port);
	f = fopen(t.ini, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	if (target_start(&t, false, why, sizeof(why)) != 0) {
		target_show_log(&t, 10);
		fail_msg("start: %s", why);
	}
	assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
	next_state(fd, state, sizeof(state));
	snprintf(expect, sizeof(expect), "READY=1\nMAINPID=%ld", (long)t.pid);
	assert_string_equal(state, expect);

	assert_int_equal(kill(t.pid, SIGHUP), 0);
	next_state(fd, state, sizeof(state));
	assert_true(strncmp(state, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strspn(state + 27, "0123456789") == strlen(state + 27) && state[27]);
	next_state(fd, state, sizeof(state));
	assert_string_equal(state, "READY=1");
	assert_true(target_log_contains(&t, "SIGHUP: reloaded"));

	assert_int_equal(target_stop(&t, why, sizeof(why)), 0);
	next_state(fd, state, sizeof(state));
	assert_string_equal(state, "STOPPING=1");
	close(fd);
	assert_int_equal(target_finish(&t, dir, why, sizeof(why)), 0);
}

static void test_notify_path(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/znstgt-notify-%ld.sock", (long)getpid());
	unlink(sa.sun_path);
	notify_cycle(sa.sun_path, &sa, sizeof(sa));
	unlink(sa.sun_path);
}

static void test_notify_abstract(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64];
	int n = snprintf(name, sizeof(name), "@znstgt-notify-%ld", (long)getpid());

	/* "@name" stands for the abstract address "\0name" (no file). */
	memcpy(sa.sun_path, name, (size_t)n);
	sa.sun_path[0] = '\0';
	notify_cycle(name, &sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_path),
		cmocka_unit_test(test_notify_abstract),
		cmocka_unit_test(test_install_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
