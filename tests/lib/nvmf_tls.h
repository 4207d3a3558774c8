/*
 * TLS 1.3 for the test host and the load generator (NVMe/TCP 1.0, 3.6.1.4
 * with TP 8011): PSK only, the identity and TLS PSK a Linux host derives
 * from its configured PSK (common/nvme_psk.c, nvme_tls_psk_derive()),
 * offered through OpenSSL's PSK session callback. The cipher suite follows
 * the PSK's hash: SHA-256 TLS_AES_128_GCM_SHA256, SHA-384
 * TLS_AES_256_GCM_SHA384. No session tickets, no early data, no
 * certificate.
 *
 * After the handshake the socket is non-blocking and the channel behaves
 * like one: nvmf_tls_readv() / nvmf_tls_writev() move bytes or fail with
 * errno EAGAIN, and nvmf_tls_events() says what poll(2) must wait for (a
 * TLS read may need the socket writable, and the reverse). Written bytes
 * are copied into one staging buffer that OpenSSL cuts into records, so a
 * PDU header and its data share a record instead of costing one each;
 * whatever OpenSSL could not send yet stays there until nvmf_tls_flush()
 * (nvmf_tls_tx_pending() says so). Input OpenSSL has already read from
 * the socket does not wake poll(2): read first, and poll only after EAGAIN.
 */
#ifndef ZNSTGT_NVMF_TLS_H
#define ZNSTGT_NVMF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "nvme_keys.h"
#include "nvme_psk.h"

struct nvmf_tls;

struct nvmf_tls_cfg {
	const struct nvme_secret *psk;  /* the configured PSK (NVMeTLSkey-1) */
	int version;                    /* PSK identity version, 0 or 1 */
	enum nvme_psk_kdf kdf;          /* HKDF-Expand-Label encoding (nvme_psk.h) */
};

/*
 * TLS client handshake on the connected socket fd as hostnqn for subnqn,
 * bounded by timeout_ms. Returns the channel (fd stays the caller's to
 * close) or NULL with a reason in err (never key material).
 */
struct nvmf_tls *nvmf_tls_start(int fd, const struct nvmf_tls_cfg *cfg, const char *hostnqn,
				const char *subnqn, int timeout_ms, char *err, size_t errlen);
void nvmf_tls_free(struct nvmf_tls *t);

/* As readv(2) on a non-blocking socket: bytes, 0 at the end of the stream,
 * or -1 with errno (EAGAIN: wait for nvmf_tls_events(); EPROTO: broken). */
ssize_t nvmf_tls_readv(struct nvmf_tls *t, const struct iovec *iov, int iovcnt);
/* Takes (copies) up to the staging buffer's size from iov and sends what it
 * can: bytes taken, or -1 with errno (EAGAIN: the buffer is still full). */
ssize_t nvmf_tls_writev(struct nvmf_tls *t, const struct iovec *iov, int iovcnt);
/* Send what is staged: 0 when all is out, -1 with errno (EAGAIN: wait). */
int nvmf_tls_flush(struct nvmf_tls *t);
bool nvmf_tls_tx_pending(const struct nvmf_tls *t);
/* POLLIN and/or POLLOUT: what the last call that returned EAGAIN waits for. */
short nvmf_tls_events(const struct nvmf_tls *t);
/* The negotiated cipher suite's name (after the handshake). */
const char *nvmf_tls_cipher(const struct nvmf_tls *t);

#endif
