/*
 * Control socket client (ctl_client.h).
 */
#include "ctl_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_retrying(const char *path, int wait_ms, char *reply, size_t replylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + wait_ms;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(reply, replylen, "%s: path too long for a UNIX socket", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			snprintf(reply, replylen, "socket: %s", strerror(errno));
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		close(fd);
		/* Not there yet, or nobody listening yet: a target starting up. */
		if ((e != ENOENT && e != ECONNREFUSED) || now_ms() >= deadline) {
			snprintf(reply, replylen, "%s: %s", path, strerror(e));
			return -1;
		}
		usleep(20 * 1000);
	}
}

int ctl_request(const char *path, const char *request, int connect_wait_ms, int timeout_ms,
		char *reply, size_t replylen)
{
	char line[4096 + 2], in[2048];
	size_t got = 0;
	long long deadline;
	int fd, n;

	n = snprintf(line, sizeof(line), "%s\n", request);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		snprintf(reply, replylen, "request too long");
		return -1;
	}
	fd = connect_retrying(path, connect_wait_ms, reply, replylen);
	if (fd < 0)
		return -1;
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(reply, replylen, "send: %s", strerror(errno));
		close(fd);
		return -1;
	}
	deadline = now_ms() + timeout_ms;
	while (got < sizeof(in) - 1 && !memchr(in, '\n', got)) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			snprintf(reply, replylen, "no answer within %d ms", timeout_ms);
			close(fd);
			return -1;
		}
		r = recv(fd, in + got, sizeof(in) - 1 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(reply, replylen, "the target closed the connection without an answer");
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	in[got] = '\0';
	in[strcspn(in, "\n")] = '\0';
	if (strcmp(in, "ok") == 0 || strncmp(in, "ok ", 3) == 0) {
		snprintf(reply, replylen, "%s", in[2] ? in + 3 : "");
		return 0;
	}
	if (strncmp(in, "error: ", 7) == 0) {
		snprintf(reply, replylen, "%s", in + 7);
		return 1;
	}
	snprintf(reply, replylen, "unexpected answer \"%s\"", in);
	return -1;
}
