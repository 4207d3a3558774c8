/*
 * The notification datagram (sd_notify.h). systemd reads one message per
 * datagram, so the whole state goes in a single sendto().
 */
#include "sd_notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

int sd_notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t plen, len = strlen(state);
	ssize_t sent;
	int fd;

	if (!path || !path[0])
		return 0;
	plen = strlen(path);
	/* Only AF_UNIX addresses; a path must fit sun_path with its NUL. */
	if ((path[0] != '/' && path[0] != '@') || plen < 2 || plen >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sent = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen));
	if (sent >= 0 && (size_t)sent != len)
		errno = EMSGSIZE;
	close(fd);
	return sent >= 0 && (size_t)sent == len ? 0 : -1;
}

void sd_notify_log(const char *fmt, ...)
{
	char state[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(state)) {
		log_warn("sd_notify: state longer than %zu bytes not sent", sizeof(state) - 1);
		return;
	}
	if (sd_notify_send(state) != 0)
		log_warn("sd_notify: NOTIFY_SOCKET %s: %s", getenv("NOTIFY_SOCKET"), strerror(errno));
}
