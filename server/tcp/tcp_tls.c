/*
 * TLS 1.3 behind the socket I/O seam (tcp_sock.h), NVMe/TCP 1.0 3.6.1.4
 * with TP 8011: PSK only, the host's configured PSK ([host NQN] psk of the
 * subsystem it names) turned into the TLS PSK of the identity it offers
 * (common/nvme_psk.c), cipher suites TLS_AES_128_GCM_SHA256 and
 * TLS_AES_256_GCM_SHA384, no session tickets, no early data. OpenSSL works
 * on the non-blocking socket itself; WANT_READ / WANT_WRITE become EAGAIN
 * for the connection's libev watchers.
 */
#include "tcp_sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "nvme_psk.h"
#include "tcp.h"
#include "tls_io.h"

static SSL_CTX *tls_ctx;

/* One connection's channel (tcp_sock.priv). */
struct tls_chan {
	SSL *ssl;
	/* The PSK identity the handshake accepted: the core binds the queue's
	 * Connect to its host and subsystem NQN (tcp_sock_ops.peer_identity). */
	char identity[NVME_PSK_IDENTITY_MAX];
};

static SSL *chan_ssl(const struct tcp_sock *s)
{
	return ((struct tls_chan *)s->priv)->ssl;
}

int (*tcp_tls_find_psk)(const char *identity, struct nvme_tls_psk *out);

static int find_session(SSL *ssl, const unsigned char *identity, size_t len,
			SSL_SESSION **sess)
{
	/* TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384 (RFC 8446, B.4), by PSK hash. */
	static const unsigned char suite[2][2] = { { 0x13, 0x01 }, { 0x13, 0x02 } };
	struct tls_chan *ch = SSL_get_app_data(ssl);
	char id[NVME_PSK_IDENTITY_MAX];
	struct nvme_tls_psk psk;
	const SSL_CIPHER *cipher;
	SSL_SESSION *s;

	*sess = NULL;
	if (len == 0 || len >= sizeof(id) || memchr(identity, '\0', len))
		return 1;
	memcpy(id, identity, len);
	id[len] = '\0';
	if (tcp_tls_find_psk(id, &psk) != 0) {
		log_warn("tls: unknown PSK identity (%zu bytes)", len);
		return 1;
	}
	cipher = SSL_CIPHER_find(ssl, suite[psk.hash == 2]);
	s = SSL_SESSION_new();
	if (!cipher || !s || !SSL_SESSION_set1_master_key(s, psk.key, psk.len) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		OPENSSL_cleanse(&psk, sizeof(psk));
		return 0;
	}
	OPENSSL_cleanse(&psk, sizeof(psk));
	/* Only a found PSK names the peer; a failed handshake leaves it empty.
	 * OpenSSL calls this once per offered identity (Linux offers one). */
	memcpy(ch->identity, id, len + 1);
	*sess = s;
	return 1;
}

int tcp_tls_init(char *err, size_t errlen)
{
	if (tls_ctx)
		return 0;
	if (!tcp_tls_find_psk) {
		snprintf(err, errlen, "tls: no PSK lookup configured");
		return -1;
	}
	tls_ctx = SSL_CTX_new(TLS_server_method());
	if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") ||
	    !SSL_CTX_set_num_tickets(tls_ctx, 0) || !SSL_CTX_set_max_early_data(tls_ctx, 0)) {
		snprintf(err, errlen, "tls: cannot set up OpenSSL");
		SSL_CTX_free(tls_ctx);
		tls_ctx = NULL;
		return -1;
	}
	/* A host that just closes the socket ends the stream like any other. */
	SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read what the socket has into one large buffer (tls_io.h): a
	 * host's batch of commands in one read(2), not a record header then
	 * its body for each record. What the handshake reads ahead past the
	 * host's Finished (an ICReq sent with it) is not lost: the handshake
	 * ends on that read, in the read callback, which goes on to read
	 * PDUs, starting with what OpenSSL holds. */
	SSL_CTX_set_read_ahead(tls_ctx, 1);
	SSL_CTX_set_default_read_buffer_len(tls_ctx, TLS_READ_BUFFER);
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_psk_find_session_callback(tls_ctx, find_session);
	return 0;
}

void tcp_tls_exit(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

static int tls_open(struct tcp_sock *s)
{
	struct tls_chan *ch = calloc(1, sizeof(*ch));
	SSL *ssl = ch && tls_ctx ? SSL_new(tls_ctx) : NULL;

	if (!ssl || !SSL_set_fd(ssl, s->fd)) {
		SSL_free(ssl);
		free(ch);
		return -ENOMEM;
	}
	SSL_set_accept_state(ssl);
	SSL_set_app_data(ssl, ch);
	ch->ssl = ssl;
	s->priv = ch;
	return 0;
}

/* OpenSSL's verdict as errno (tls_io.h); s->want_write for the watchers. */
static int ssl_errno(struct tcp_sock *s, int rc)
{
	return tls_errno(chan_ssl(s), rc, &s->want_write);
}

static int tls_handshake(struct tcp_sock *s)
{
	int rc = SSL_do_handshake(chan_ssl(s));
	unsigned long why;
	int e;

	if (rc == 1)
		return 1;
	why = ERR_peek_last_error(); /* before ssl_errno() clears the queue */
	e = ssl_errno(s, rc);
	if (e == EAGAIN)
		return 0;
	/* OpenSSL's reason names the step (bad binder, no shared cipher, an
	 * alert from the peer), never key material. */
	if (why)
		log_warn("tls: handshake failed: %s", ERR_reason_error_string(why));
	return -(e ? e : EPROTO);
}

static ssize_t chan_readv(struct tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	return tls_readv(chan_ssl(s), iov, iovcnt, &s->want_write);
}

/*
 * The pieces of iov go out gathered into records of up to 16 KiB (the
 * largest TLS plaintext, RFC 8446 5.1): a C2HData header, its 4 KiB of data
 * and the next command's PDUs share a record (one encryption, one send)
 * instead of costing one each; a whole record's worth inside one piece (the
 * data of a large read) is written from where it is, without the copy.
 * The gathered copy lives on the stack: after
 * WANT_WRITE the connection passes the same bytes again from where the
 * last full record ended, the retry OpenSSL asks for (with
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), and gathering greedily from the
 * same start never makes it shorter.
 */
#define TLS_RECORD_MAX 16384

/*
 * OpenSSL sends each record with its own write(2), and on loopback or a
 * fast link each write is a TCP segment of its own, sent at once: the
 * peer wakes for every record. When the pieces make more than one record
 * (QD32's completions coming out together), TCP_CORK holds them until the
 * last is written, so that the batch leaves as full segments, the way a
 * single sendmsg(2) of the plain socket does; uncorking sends what is held.
 */
static void cork(struct tcp_sock *s, int on)
{
	/* A failure only costs segments: the bytes go out either way. */
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static ssize_t tls_write_records(struct tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	unsigned char rec[TLS_RECORD_MAX];
	size_t total = 0, off = 0, put;
	int i = 0;

	while (i < iovcnt) {
		const unsigned char *p = rec;
		size_t n = 0;

		if (iov[i].iov_len - off >= sizeof(rec)) {
			p = (const unsigned char *)iov[i].iov_base + off;
			n = sizeof(rec);
			off += n;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		while (p == rec && i < iovcnt && n < sizeof(rec)) {
			size_t k = iov[i].iov_len - off;

			if (k > sizeof(rec) - n)
				k = sizeof(rec) - n;
			memcpy(rec + n, (const char *)iov[i].iov_base + off, k);
			n += k;
			off += k;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (!n)
			break;
		int rc = SSL_write_ex(chan_ssl(s), p, n, &put);
		if (rc != 1) {
			int e = ssl_errno(s, rc);
			if (total)
				return (ssize_t)total;
			errno = e ? e : EPIPE;
			return -1;
		}
		total += put;
		if (put < n)
			break; /* a record is not a partial write: cannot happen */
	}
	return (ssize_t)total;
}

static ssize_t tls_writev(struct tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	size_t len = 0;
	ssize_t w;

	for (int i = 0; i < iovcnt && len <= TLS_RECORD_MAX; i++)
		len += iov[i].iov_len;
	if (len <= TLS_RECORD_MAX)
		return tls_write_records(s, iov, iovcnt);
	cork(s, 1);
	w = tls_write_records(s, iov, iovcnt);
	int e = errno;
	cork(s, 0);
	errno = e;
	return w;
}

static const char *tls_peer_identity(const struct tcp_sock *s)
{
	const struct tls_chan *ch = s->priv;

	return ch->identity[0] ? ch->identity : NULL;
}

static void tls_release(struct tcp_sock *s)
{
	struct tls_chan *ch = s->priv;

	SSL_free(ch->ssl); /* OpenSSL cleanses its key material */
	free(ch);
	s->priv = NULL;
}

const struct tcp_sock_ops tcp_sock_tls = {
	.name = "tls",
	.open = tls_open,
	.handshake = tls_handshake,
	.readv = chan_readv,
	.writev = tls_writev,
	.user_copy = true,
	.peer_identity = tls_peer_identity,
	.release = tls_release,
};
