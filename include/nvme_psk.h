/*
 * NVMe/TCP TLS 1.3 PSKs (NVMe TCP Transport 1.0 / TP 8011 and TP 8018,
 * 3.6.1.2 - 3.6.1.4): from the configured PSK (include/nvme_keys.h) to the
 * retained PSK, the PSK identity a host offers in its ClientHello, and the
 * TLS PSK both ends hand to TLS for that identity.
 *
 *   retained = HKDF-Expand-Label(HKDF-Extract(0, configured), "HostNQN", NQNh, L)
 *              with the configured PSK's hash (01/02); HH 00: retained = configured
 *   identity v0:  "NVMe0R<hh> <NQNh> <NQNc>"
 *   identity v1:  "NVMe1R<hh> <NQNh> <NQNc> <digest>"
 *       digest = Base64(HMAC(retained, NQNh || " " || NQNc || " NVMe-over-Fabrics"))
 *   TLS PSK = HKDF-Expand-Label(HKDF-Extract(0, retained), "nvme-tls-psk", ctx, L)
 *       ctx v0: the identity; v1: "<hh> <digest>"
 * hh is the hash of the cipher suite: 01 SHA-256 (TLS_AES_128_GCM_SHA256),
 * 02 SHA-384 (TLS_AES_256_GCM_SHA384); for HH 00 it follows the key length.
 *
 * Two encodings of HKDF-Expand-Label's info are in use by Linux hosts:
 *   NVME_PSK_KDF_RFC8446: RFC 8446 7.1 HkdfLabel (be16 length, length-prefixed
 *     "tls13 "+label, length-prefixed context): the specification, SPDK, and
 *     libnvme from 1.16 on;
 *   NVME_PSK_KDF_LIBNVME: le16 length || "tls13 " || label || context, with no
 *     length prefixes: libnvme 1.7 .. 1.15, i.e. nvme-cli 2.7 .. 2.15, which
 *     is what `nvme check-tls-key --insert` / `gen-tls-key --insert` put in the
 *     kernel keyring on Debian trixie (nvme-cli 2.13).
 * Both sides must agree; identities v1 differ between the two (the digest is
 * over a different retained PSK), v0 identities do not.
 */
#ifndef ZNSTGT_NVME_PSK_H
#define ZNSTGT_NVME_PSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme_keys.h"

enum nvme_psk_kdf {
	NVME_PSK_KDF_RFC8446,
	NVME_PSK_KDF_LIBNVME,
};

/* 9 ("NVMe1R02 ") + 223 + 1 + 223 + 1 + 64 (SHA-384 digest) + NUL, rounded up. */
#define NVME_PSK_IDENTITY_MAX 544
#define NVME_PSK_DIGEST_MAX 65   /* base64 of 48 bytes + NUL */

struct nvme_tls_psk {
	char identity[NVME_PSK_IDENTITY_MAX];
	uint8_t hash;    /* 1 = SHA-256, 2 = SHA-384: selects the cipher suite */
	uint8_t len;
	uint8_t key[48];
};

/* Hash of the cipher suite for a configured PSK (01/02), 0 if invalid. */
uint8_t nvme_psk_cipher_hash(const struct nvme_secret *configured);

/* Retained PSK (3.6.1.2). out has room for 48 bytes; *outlen = configured->len. */
int nvme_psk_retained(const struct nvme_secret *configured, const char *hostnqn,
		      enum nvme_psk_kdf kdf, uint8_t *out, size_t *outlen);

/* PSK digest (3.6.1.3, identity version 1), base64, NUL-terminated. */
int nvme_psk_digest(uint8_t hash, const uint8_t *psk, size_t len, const char *hostnqn,
		    const char *subnqn, char *out, size_t outlen);

/*
 * PSK identity (3.6.1.4): version 0 or 1, 'R' retained or 'G' generated
 * (secure channel concatenation), digest only for version 1. Returns the
 * length or -1.
 */
int nvme_psk_identity(int version, char type, uint8_t hash, const char *hostnqn,
		      const char *subnqn, const char *digest, char *out, size_t outlen);

/*
 * Split an identity "NVMe<v><R|G><hh> <host NQN> <subsystem NQN>[ <digest>]"
 * (3.6.1.4) into its version and NQNs (each buffer nqnlen bytes). The hash
 * digits and the digest are not checked here: an identity is only trusted
 * once a PSK derived for it matched. 0, or -1 if it does not have that shape.
 */
int nvme_psk_identity_parse(const char *id, int *version, char *hostnqn, char *subnqn,
			    size_t nqnlen);

/*
 * TLS PSK (len bytes, L = len) from an input PSK (retained or generated) of
 * len bytes, with the cipher suite's hash. ctx is the identity (version 0)
 * or the digest (version 1).
 */
int nvme_psk_tls_key(enum nvme_psk_kdf kdf, int version, uint8_t hash, const uint8_t *psk,
		     size_t len, const char *ctx, uint8_t *out);

/*
 * Generated PSK for secure channel concatenation (NVMe Base 2.0, 8.13.5.9):
 * HMAC(KS, C1 || C2), hl bytes each challenge.
 */
int nvme_psk_generated(uint8_t hash, const uint8_t *skey, size_t skeylen, const uint8_t *c1,
		       const uint8_t *c2, size_t hl, uint8_t *out);

/*
 * Everything a TLS server needs for one (host, subsystem) pair: identity and
 * TLS PSK of `version` (0 or 1). The caller wipes *out (OPENSSL_cleanse)
 * when done. 0, or -1 with a message (never key material) in err.
 */
int nvme_tls_psk_derive(const struct nvme_secret *configured, const char *hostnqn,
			const char *subnqn, int version, enum nvme_psk_kdf kdf,
			struct nvme_tls_psk *out, char *err, size_t errlen);

#endif
