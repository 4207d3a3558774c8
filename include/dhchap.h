/*
 * DH-HMAC-CHAP cryptography (NVMe Base 2.0, 8.13.5 "DH-HMAC-CHAP protocol"),
 * shared by the controller (server/core/auth.c) and the test host: secret
 * transformation, augmented challenge, the host and controller responses,
 * and finite-field Diffie-Hellman in the RFC 7919 ffdhe groups (OpenSSL 3
 * EVP "DH" with named groups).
 *
 *   transformed key  Kh' = HMAC(Kh, NQNh || "NVMe-over-Fabrics") when the
 *                    secret's XX is 01..03 (with that hash), Kh otherwise;
 *                    the controller key likewise with NQNc (8.13.5.7)
 *   session key      Ks = g^(xy) mod p, big-endian, padded to the group size
 *   augmented chal.  Ca = HMAC(H(Ks), C1)   (null DH group: Ca = C1)
 *   host response    R1 = HMAC(Kh', Ca || le32(S1) || le16(T_ID) || 00h ||
 *                          "HostHost" || NQNh || 00h || NQNc)
 *   ctrl response    R2 = HMAC(Kc', Cb || le32(S2) || le16(T_ID) || 00h ||
 *                          "Controller" || NQNc || 00h || NQNh)
 * H and HMAC use the hash negotiated for the transaction.
 */
#ifndef ZNSTGT_DHCHAP_H
#define ZNSTGT_DHCHAP_H

#include <stddef.h>
#include <stdint.h>

#include "nvme_keys.h"

/* DH group identifiers (NVMe Base 2.0, figure "DH group identifiers"). */
enum {
	DHCHAP_DH_NULL = 0,
	DHCHAP_DH_FFDHE2048 = 1,
	DHCHAP_DH_FFDHE3072 = 2,
	DHCHAP_DH_FFDHE4096 = 3,
	DHCHAP_DH_FFDHE6144 = 4,
	DHCHAP_DH_FFDHE8192 = 5,
};
#define DHCHAP_DH_COUNT 6
#define DHCHAP_DH_MAX_LEN 1024 /* ffdhe8192 public value / session key */

/* Public value / session key length of a group: 0 for null, -1 if unknown. */
int dhchap_dh_len(uint8_t group);
/* "null", "ffdhe2048", ... or NULL. */
const char *dhchap_dh_name(uint8_t group);

enum dhchap_role { DHCHAP_HOST, DHCHAP_CTRL };

/*
 * Transformed secret for `nqn` into out (room for NVME_SECRET_MAX bytes);
 * *outlen is its length. 0 or -1.
 */
int dhchap_transform(const struct nvme_secret *secret, const char *nqn, uint8_t *out,
		     size_t *outlen);

/* Ca/Cb into out (hash length): HMAC(H(skey), chal). 0 or -1. */
int dhchap_augment(uint8_t hash, const uint8_t *skey, size_t skeylen, const uint8_t *chal,
		   uint8_t *out);

/*
 * R1 (role DHCHAP_HOST: key is the host secret, transformed with hostnqn) or
 * R2 (DHCHAP_CTRL: the controller secret, transformed with subnqn), for
 * challenge chal (hash length) and the session key (skeylen 0: null group).
 * out gets the hash length. 0 or -1.
 */
int dhchap_response(enum dhchap_role role, uint8_t hash, const struct nvme_secret *secret,
		    const uint8_t *chal, uint32_t seqnum, uint16_t tid, const char *hostnqn,
		    const char *subnqn, const uint8_t *skey, size_t skeylen, uint8_t *out);

/* An ephemeral DH key pair in a group (not null). */
struct dhchap_dh;

struct dhchap_dh *dhchap_dh_new(uint8_t group);
void dhchap_dh_free(struct dhchap_dh *dh);
/* Our public value, big-endian, exactly dhchap_dh_len(group) bytes. */
int dhchap_dh_public(struct dhchap_dh *dh, uint8_t *out, size_t len);
/*
 * Session key from the peer's public value (len must be the group size; the
 * value is range- and subgroup-checked by OpenSSL). 0 or -1.
 */
int dhchap_dh_shared(struct dhchap_dh *dh, const uint8_t *peer, size_t len, uint8_t *out);

#endif
