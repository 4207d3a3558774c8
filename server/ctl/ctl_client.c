/*
 * Control socket client (ctl_client.h).
 */
#include "ctl_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The longest answer taken (a status of many namespaces is some MiB). */
#define CTL_ANSWER_MAX (64 << 20)

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

/* Undo the '.' stuffing of body[0..len) in place and drop the final "."
 * line; -1 if there is none (the answer was cut short). */
static int unstuff(char *body, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		char *nl = memchr(body + in, '\n', len - in);
		if (!nl)
			return -1;
		size_t n = (size_t)(nl - (body + in)) + 1;
		if (n == 2 && body[in] == '.') {
			body[out] = '\0';
			return in + n == len ? 0 : -1;
		}
		if (body[in] == '.') {
			in++;
			n--;
		}
		memmove(body + out, body + in, n);
		out += n;
		in += n;
	}
	return -1;
}

int ctl_request(const char *path, const char *request, int connect_wait_ms, int timeout_ms,
		char *reply, size_t replylen)
{
	return ctl_request_body(path, request, connect_wait_ms, timeout_ms, reply, replylen, NULL);
}

int ctl_request_body(const char *path, const char *request, int connect_wait_ms, int timeout_ms,
		     char *reply, size_t replylen, char **body)
{
	char line[4096 + 2], *in = NULL;
	size_t got = 0, cap = 0;
	long long deadline;
	int fd, n, rc = -1;

	if (body)
		*body = NULL;
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
	/* The target closes the connection after its answer. */
	deadline = now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (got + 1 >= cap) {
			char *b = cap < CTL_ANSWER_MAX ? realloc(in, cap ? cap * 2 : 4096) : NULL;
			if (!b) {
				snprintf(reply, replylen, "answer longer than %d bytes", CTL_ANSWER_MAX);
				goto out;
			}
			in = b;
			cap = cap ? cap * 2 : 4096;
		}
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			snprintf(reply, replylen, "no answer within %d ms", timeout_ms);
			goto out;
		}
		r = recv(fd, in + got, cap - 1 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && !memchr(in, '\n', got))) {
			snprintf(reply, replylen, "the target closed the connection without an answer");
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	in[got] = '\0';
	char *rest = strchr(in, '\n');
	*rest++ = '\0';
	size_t rest_len = got - (size_t)(rest - in);
	if (strcmp(in, "ok") == 0 || strncmp(in, "ok ", 3) == 0) {
		snprintf(reply, replylen, "%s", in[2] ? in + 3 : "");
		rc = 0;
	} else if (strncmp(in, "error: ", 7) == 0) {
		snprintf(reply, replylen, "%s", in + 7);
		rc = 1;
	} else {
		snprintf(reply, replylen, "unexpected answer \"%s\"", in);
		goto out;
	}
	if (rest_len && unstuff(rest, rest_len)) {
		snprintf(reply, replylen, "the answer was cut short (no final \".\" line)");
		rc = -1;
	} else if (rest_len && body) {
		*body = strdup(rest);
		if (!*body) {
			snprintf(reply, replylen, "out of memory");
			rc = -1;
		}
	}
out:
	close(fd);
	free(in);
	return rc;
}
