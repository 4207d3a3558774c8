/*
 * NVMe secrets in their text interchange formats, and where they are kept.
 *
 *   TLS PSK (NVMe TCP Transport 1.0, 3.6.1.5 "PSK Interchange Format"):
 *       NVMeTLSkey-1:HH:<base64(PSK || CRC-32)>:
 *     HH = 00 no transform (the configured PSK is used as the retained PSK;
 *     32 or 48 bytes), 01 = SHA-256 (32 bytes), 02 = SHA-384 (48 bytes).
 *
 *   DH-HMAC-CHAP secret (NVMe Base 2.0, 8.3.4.5.1 / 8.13.5.x):
 *       DHHC-1:XX:<base64(secret || CRC-32)>:
 *     XX = 00 untransformed, 01/02/03 = transformed with SHA-256/384/512
 *     (HMAC(secret, NQN || "NVMe-over-Fabrics") before use); the secret is
 *     32, 48 or 64 bytes whatever XX is.
 *
 * In both the CRC-32 is the IEEE 802.3 one (zlib crc32(): reflected
 * polynomial 0xEDB88320, init and final xor ~0) of the raw key bytes,
 * appended little-endian before base64 (RFC 4648, with '=' padding).
 *
 * A parsed secret lives in a struct nvme_secret, which nvme_secret_free()
 * wipes with OPENSSL_cleanse before freeing. No function here ever puts
 * secret material (not even a fragment of the text) into an error message.
 */
#ifndef ZNSTGT_NVME_KEYS_H
#define ZNSTGT_NVME_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define NVME_SECRET_MAX 64

enum nvme_secret_kind {
	NVME_SECRET_TLS_PSK,  /* NVMeTLSkey-1 */
	NVME_SECRET_DHCHAP,   /* DHHC-1 */
};

struct nvme_secret {
	enum nvme_secret_kind kind;
	uint8_t hash;     /* HH resp. XX of the text form (see above) */
	uint8_t len;      /* bytes used in key[] */
	uint8_t key[NVME_SECRET_MAX];
};

/*
 * Parse the text form of `kind`. Returns a new secret (free it with
 * nvme_secret_free) or NULL with a message in err that names what is wrong
 * but never quotes the text.
 */
struct nvme_secret *nvme_secret_parse(enum nvme_secret_kind kind, const char *text,
				      char *err, size_t errlen);

/*
 * Read the text form from a file (leading/trailing white space ignored). The
 * file must be a regular file not readable, writable or executable by group
 * or others (st_mode & 077 == 0): a secret that anybody else can read is
 * refused rather than used.
 */
struct nvme_secret *nvme_secret_load_file(enum nvme_secret_kind kind, const char *path,
					  char *err, size_t errlen);

/*
 * The text form of (kind, hash, key[len]) into out (NUL-terminated). Returns
 * the string length, or -1 if the arguments are not a valid secret or out is
 * too small. out holds secret material: wipe it after use.
 */
int nvme_secret_format(enum nvme_secret_kind kind, uint8_t hash, const uint8_t *key,
		       size_t len, char *out, size_t outlen);

/* A copy (or NULL on allocation failure); free with nvme_secret_free. */
struct nvme_secret *nvme_secret_dup(const struct nvme_secret *s);

/* Wipe and free; NULL is fine. */
void nvme_secret_free(struct nvme_secret *s);

/* CRC-32 (IEEE 802.3 / zlib) of buf: the checksum of both formats. */
uint32_t nvme_key_crc32(const void *buf, size_t len);

/*
 * Strict RFC 4648 base64 (standard alphabet, length a multiple of 4, '='
 * only as padding). Returns the decoded length or -1. Encode returns the
 * encoded length (NUL-terminated) or -1 if out is too small.
 */
int nvme_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);
int nvme_base64_encode(const uint8_t *in, size_t inlen, char *out, size_t outlen);

#endif
