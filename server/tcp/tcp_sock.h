/*
 * The socket I/O seam of an NVMe/TCP connection: every byte the connection
 * reads or writes goes through a struct tcp_sock_ops, so that a secure
 * channel (TLS, NVMe/TCP 1.0, 3.6.1.4 / TP 8011) can sit between the PDUs
 * and the socket without the connection knowing. The plain socket is
 * tcp_sock_plain; a listener picks the ops its connections use.
 *
 * A channel may need a handshake before the first PDU (ICReq): the
 * connection then starts in a handshake state and calls ops->handshake
 * whenever the socket is readable (or writable, if the handshake asked for
 * it) until it reports done. All calls are non-blocking and happen on the
 * connection's loop.
 */
#ifndef ZNSTGT_TCP_SOCK_H
#define ZNSTGT_TCP_SOCK_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tcp_sock;

struct tcp_sock_ops {
	const char *name;                   /* for the log: "plain", "tls" */
	/* Set up per-connection state (priv); 0 or -errno. May be NULL. */
	int (*open)(struct tcp_sock *s);
	/*
	 * Advance the handshake: 1 when done, 0 when it must wait (for input,
	 * or for output when it set s->want_write), -errno on failure (the
	 * connection closes). NULL: no handshake, PDUs from the first byte.
	 */
	int (*handshake)(struct tcp_sock *s);
	/* As readv(2) / a non-blocking sendmsg(2) without SIGPIPE: bytes moved,
	 * 0 at end of stream (readv), or -1 with errno (EAGAIN: try later). */
	ssize_t (*readv)(struct tcp_sock *s, const struct iovec *iov, int iovcnt);
	ssize_t (*writev)(struct tcp_sock *s, const struct iovec *iov, int iovcnt);
	/* writev reads the data in user space (TLS encrypts it): it must not
	 * be given pages that may fault, such as a borrowed read's
	 * (blockstore.h, "Borrowed reads"). */
	bool user_copy;
	/* Who the handshake proved the peer to be (TLS: the PSK identity it
	 * offered and that matched), or NULL. NULL op: an anonymous channel. */
	const char *(*peer_identity)(const struct tcp_sock *s);
	/* Free what open() set up (the connection closes the fd). May be NULL. */
	void (*release)(struct tcp_sock *s);
};

struct tcp_sock {
	const struct tcp_sock_ops *ops;
	int fd;
	void *priv;                         /* the channel's own state */
	bool want_write;                    /* handshake waits for POLLOUT */
};

/* The socket as it is: no handshake, readv(2) and sendmsg(2). */
extern const struct tcp_sock_ops tcp_sock_plain;

/* TLS 1.3 with the hosts' configured PSKs (tcp_tls.c). tcp_tls_init() sets
 * up the shared OpenSSL context before the first TLS listener opens. */
extern const struct tcp_sock_ops tcp_sock_tls;
/* It finds PSKs through tcp_tls_find_psk (tcp.h). */
int tcp_tls_init(char *err, size_t errlen);
void tcp_tls_exit(void);

#endif
