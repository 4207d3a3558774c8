/*
 * The hash functions of NVMe in-band authentication and NVMe/TCP TLS PSKs,
 * by their NVMe identifiers (NVMe Base 2.0, 8.13.5.2 "DH-HMAC-CHAP hash
 * function identifiers"; NVMe TCP Transport 1.0, 3.6.1.3 uses 01 and 02 the
 * same way), and the HMAC / HKDF primitives built on them (OpenSSL EVP).
 */
#ifndef ZNSTGT_NVME_HMAC_H
#define ZNSTGT_NVME_HMAC_H

#include <stddef.h>
#include <stdint.h>

enum {
	NVME_HASH_SHA256 = 1,
	NVME_HASH_SHA384 = 2,
	NVME_HASH_SHA512 = 3,
};

#define NVME_HASH_MAX_LEN 64

/* Digest length of hash id 1..3, or 0 for any other id. */
size_t nvme_hash_len(uint8_t hash);
/* "SHA256", "SHA384", "SHA512" (OpenSSL names), or NULL. */
const char *nvme_hash_name(uint8_t hash);

/* One piece of an HMAC message: the input is the concatenation. */
struct nvme_buf {
	const void *p;
	size_t len;
};

/* out = HMAC-hash(key, pieces[0] || ... || pieces[n-1]); 0 or -1. */
int nvme_hmac(uint8_t hash, const void *key, size_t keylen, const struct nvme_buf *pieces,
	      size_t n, uint8_t *out);

/* out = hash(data); 0 or -1. */
int nvme_digest(uint8_t hash, const void *data, size_t len, uint8_t *out);

/*
 * RFC 5869 HKDF-Expand(HKDF-Extract(salt = 0, ikm), info, outlen): the
 * extract step with the default all-zero salt, as NVMe/TCP specifies
 * ("PRK = HKDF-Extract(0, PSK)"). 0 or -1.
 */
int nvme_hkdf(uint8_t hash, const void *ikm, size_t ikmlen, const void *info, size_t infolen,
	      uint8_t *out, size_t outlen);

#endif
