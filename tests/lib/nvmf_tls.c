/*
 * TLS 1.3 PSK client channel (nvmf_tls.h), OpenSSL on the non-blocking
 * socket itself, like the target's server/tcp/tcp_tls.c.
 */
#include "nvmf_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "errmsg.h"
#include "tls_io.h"

/* Four full records: a 128 KiB write goes out in eight calls. */
#define STAGE_LEN (64u * 1024)

struct nvmf_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	struct nvme_tls_psk psk;        /* wiped once the handshake is over */
	short events;                   /* what the last EAGAIN waits for */
	size_t out_off, out_len;        /* staged bytes not yet taken by OpenSSL */
	unsigned char out[STAGE_LEN];
};

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		       SSL_SESSION **sess)
{
	/* TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384 (RFC 8446, B.4), by PSK hash. */
	static const unsigned char suite[2][2] = { { 0x13, 0x01 }, { 0x13, 0x02 } };
	struct nvmf_tls *t = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suite[t->psk.hash == 2]);
	SSL_SESSION *s = SSL_SESSION_new();

	(void)md;
	*sess = NULL;
	if (!cipher || !s || !SSL_SESSION_set1_master_key(s, t->psk.key, t->psk.len) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return 0;
	}
	*id = (const unsigned char *)t->psk.identity;
	*idlen = strlen(t->psk.identity);
	*sess = s;
	return 1;
}

/* OpenSSL's verdict as errno (tls_io.h); what to poll for after EAGAIN. */
static int ssl_errno(struct nvmf_tls *t, int rc)
{
	bool want_write = false;
	int e = tls_errno(t->ssl, rc, &want_write);

	if (e == EAGAIN)
		t->events = want_write ? POLLOUT : POLLIN;
	return e;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int handshake(struct nvmf_tls *t, int fd, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		int rc = SSL_connect(t->ssl);
		if (rc == 1)
			return 0;
		unsigned long why = ERR_peek_last_error(); /* before ssl_errno() clears it */
		int e = ssl_errno(t, rc);
		if (e != EAGAIN)
			/* OpenSSL's reason names the step (an alert from the
			 * target, a bad binder), never key material. */
			return errmsg(err, errlen, "TLS handshake failed: %s",
				      why ? ERR_reason_error_string(why)
					  : e ? strerror(e) : "connection closed by the target");
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = t->events };
		int r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno != EINTR)
			return errmsg(err, errlen, "TLS handshake: poll: %s", strerror(errno));
		if (r == 0)
			return errmsg(err, errlen, "TLS handshake: no answer within %d ms",
				      timeout_ms);
	}
}

struct nvmf_tls *nvmf_tls_start(int fd, const struct nvmf_tls_cfg *cfg, const char *hostnqn,
				const char *subnqn, int timeout_ms, char *err, size_t errlen)
{
	struct nvmf_tls *t = calloc(1, sizeof(*t));
	int fl = fcntl(fd, F_GETFL);

	if (!t) {
		errmsg(err, errlen, "out of memory");
		return NULL;
	}
	if (nvme_tls_psk_derive(cfg->psk, hostnqn, subnqn, cfg->version, cfg->kdf, &t->psk, err,
				errlen) != 0)
		goto fail;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx || !SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(t->ctx, t->psk.hash == 2 ? "TLS_AES_256_GCM_SHA384"
							      : "TLS_AES_128_GCM_SHA256")) {
		errmsg(err, errlen, "cannot set up OpenSSL");
		goto fail;
	}
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
	/* Partial writes: flush() keeps its offset into the staging buffer. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* Read what the socket has, not a record header then its body: a
	 * batch of C2HData in one system call instead of two per record.
	 * Buffered input is invisible to poll(2), hence "read first, poll
	 * after EAGAIN" (nvmf_tls.h). */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, TLS_READ_BUFFER);
	SSL_CTX_set_psk_use_session_callback(t->ctx, use_session);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl || !SSL_set_fd(t->ssl, fd) || fl < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		errmsg(err, errlen, "cannot set up the TLS connection");
		goto fail;
	}
	SSL_set_app_data(t->ssl, t);
	if (handshake(t, fd, timeout_ms, err, errlen) != 0)
		goto fail;
	OPENSSL_cleanse(&t->psk, sizeof(t->psk));
	return t;
fail:
	nvmf_tls_free(t);
	return NULL;
}

void nvmf_tls_free(struct nvmf_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* OpenSSL cleanses its key material */
	SSL_CTX_free(t->ctx);
	OPENSSL_cleanse(t, sizeof(*t)); /* the PSK, and staged plaintext */
	free(t);
}

ssize_t nvmf_tls_readv(struct nvmf_tls *t, const struct iovec *iov, int iovcnt)
{
	bool want_write = false;
	ssize_t r = tls_readv(t->ssl, iov, iovcnt, &want_write);

	if (r < 0 && errno == EAGAIN)
		t->events = want_write ? POLLOUT : POLLIN;
	return r;
}

int nvmf_tls_flush(struct nvmf_tls *t)
{
	size_t put;

	while (t->out_off < t->out_len) {
		/* A retry after WANT_WRITE passes the same bytes, as OpenSSL asks. */
		int rc = SSL_write_ex(t->ssl, t->out + t->out_off, t->out_len - t->out_off, &put);
		if (rc != 1) {
			int e = ssl_errno(t, rc);
			errno = e ? e : EPIPE;
			return -1;
		}
		t->out_off += put;
	}
	t->out_off = t->out_len = 0;
	return 0;
}

ssize_t nvmf_tls_writev(struct nvmf_tls *t, const struct iovec *iov, int iovcnt)
{
	size_t took = 0;

	if (nvmf_tls_flush(t) != 0)
		return -1;
	for (int i = 0; i < iovcnt && took < STAGE_LEN; i++) {
		size_t k = iov[i].iov_len < STAGE_LEN - took ? iov[i].iov_len : STAGE_LEN - took;

		memcpy(t->out + took, iov[i].iov_base, k);
		took += k;
	}
	t->out_len = took;
	/* The bytes are taken: only a broken channel is worth reporting now. */
	if (nvmf_tls_flush(t) != 0 && errno != EAGAIN)
		return -1;
	return (ssize_t)took;
}

bool nvmf_tls_tx_pending(const struct nvmf_tls *t)
{
	return t->out_off < t->out_len;
}

short nvmf_tls_events(const struct nvmf_tls *t)
{
	return t->events ? t->events : POLLIN;
}

const char *nvmf_tls_cipher(const struct nvmf_tls *t)
{
	return SSL_get_cipher_name(t->ssl);
}
