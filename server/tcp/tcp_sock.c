/*
 * The plain socket behind the I/O seam (tcp_sock.h).
 */
#include "tcp_sock.h"

#include <sys/socket.h>

static ssize_t plain_readv(struct tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	return readv(s->fd, iov, iovcnt);
}

static ssize_t plain_writev(struct tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

	return sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

const struct tcp_sock_ops tcp_sock_plain = {
	.name = "plain",
	.readv = plain_readv,
	.writev = plain_writev,
};
