/*
 * What the target's TLS channel (server/tcp/tcp_tls.c) and the test host's
 * (tests/lib/nvmf_tls.c) share: OpenSSL on a non-blocking socket.
 *
 * tls_errno(): OpenSSL's verdict on a failed SSL_read_ex / SSL_write_ex /
 * SSL_do_handshake on a non-blocking socket, as an errno: EAGAIN to wait
 * (*want_write: for room to write, else for input), 0 when the peer closed
 * the TLS stream cleanly, the socket's errno for a failed system call
 * (EPIPE if it left none), EPROTO for a broken channel (bad record, alert).
 * OpenSSL's error queue is cleared on failure; a caller that wants its
 * reason peeks at it first.
 *
 * tls_readv(): as readv(2) on a non-blocking socket (bytes, 0 at the end
 * of the stream, -1 with errno from tls_errno()). It fills every buffer
 * while OpenSSL has records: OpenSSL returns one record per call, and what
 * it holds (decrypted, or read ahead and not yet decrypted) would not wake
 * poll(2) or a read watcher again. Once OpenSSL holds nothing it returns
 * what it has instead of asking the socket again: both ends read ahead
 * (TLS_READ_BUFFER below), so that one read(2) took all the socket had, and
 * a second would mostly be an EAGAIN; a level-triggered watcher or the
 * caller's next read finds whatever arrived since.
 *
 * TLS_READ_BUFFER: the read-ahead buffer (SSL_CTX_set_default_read_buffer_len
 * with read_ahead on): the ciphertext one read(2) may take. Four full
 * records: a QD32 batch of commands, or of 4 KiB read results, in one
 * system call instead of two per record (header, then body).
 */
#ifndef ZNSTGT_TLS_IO_H
#define ZNSTGT_TLS_IO_H

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* 16384 bytes of plaintext and up to 256 of expansion (RFC 8446, 5.2). */
#define TLS_READ_BUFFER (4u * (16384u + 256u))

static inline int tls_errno(SSL *ssl, int rc, bool *want_write)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		*want_write = false;
		return EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want_write = true;
		return EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL: {
		int e = errno ? errno : EPIPE;
		ERR_clear_error();
		return e;
	}
	default:
		ERR_clear_error();
		return EPROTO;
	}
}

static inline ssize_t tls_readv(SSL *ssl, const struct iovec *iov, int iovcnt, bool *want_write)
{
	size_t total = 0, got;

	for (int i = 0; i < iovcnt; i++) {
		size_t off = 0;

		while (off < iov[i].iov_len) {
			int rc = SSL_read_ex(ssl, (char *)iov[i].iov_base + off,
					     iov[i].iov_len - off, &got);
			if (rc == 1) {
				off += got;
				if (!SSL_has_pending(ssl))
					return (ssize_t)(total + off);
				continue;
			}
			total += off;
			int e = tls_errno(ssl, rc, want_write);
			if (total)
				return (ssize_t)total;
			if (e == 0)
				return 0;
			errno = e;
			return -1;
		}
		total += off;
	}
	return (ssize_t)total;
}

#endif
