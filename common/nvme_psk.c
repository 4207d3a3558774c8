/*
 * NVMe/TCP TLS PSK derivations (include/nvme_psk.h; NVMe TCP Transport 1.0
 * with TP 8018, 3.6.1.2 - 3.6.1.4).
 */
#include "nvme_psk.h"
#include "errmsg.h"
#include "nvme_hmac.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* "tls13 " + the longest label ("nvme-tls-psk") and context (an identity). */
#define HKDF_INFO_MAX (2 + 1 + 6 + 12 + 1 + NVME_PSK_IDENTITY_MAX)

/*
 * HKDF-Expand-Label's info for the two encodings (see the header). Returns
 * its length, or -1 if label or context do not fit (RFC 8446: 255 bytes).
 */
static int hkdf_label(enum nvme_psk_kdf kdf, size_t outlen, const char *label,
		      const char *ctx_a, const char *ctx_b, uint8_t *info)
{
	size_t ll = strlen(label), la = strlen(ctx_a), lb = ctx_b ? strlen(ctx_b) : 0;
	size_t n = 0;

	if (6 + ll > 255 || 2 + 1 + 6 + ll + 1 + la + lb > HKDF_INFO_MAX)
		return -1;
	if (kdf == NVME_PSK_KDF_RFC8446) {
		if (la + lb > 255)
			return -1;
		info[n++] = (uint8_t)(outlen >> 8);
		info[n++] = (uint8_t)outlen;
		info[n++] = (uint8_t)(6 + ll);
	} else {
		info[n++] = (uint8_t)outlen;
		info[n++] = (uint8_t)(outlen >> 8);
	}
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	if (kdf == NVME_PSK_KDF_RFC8446)
		info[n++] = (uint8_t)(la + lb);
	memcpy(info + n, ctx_a, la);
	n += la;
	if (lb)
		memcpy(info + n, ctx_b, lb);
	n += lb;
	return (int)n;
}

uint8_t nvme_psk_cipher_hash(const struct nvme_secret *configured)
{
	if (!configured || configured->kind != NVME_SECRET_TLS_PSK)
		return 0;
	if (configured->hash)
		return configured->hash;
	return configured->len == 48 ? NVME_HASH_SHA384 : NVME_HASH_SHA256;
}

int nvme_psk_retained(const struct nvme_secret *configured, const char *hostnqn,
		      enum nvme_psk_kdf kdf, uint8_t *out, size_t *outlen)
{
	uint8_t info[HKDF_INFO_MAX];
	int n;

	if (!configured || configured->kind != NVME_SECRET_TLS_PSK)
		return -1;
	*outlen = configured->len;
	if (configured->hash == 0) {
		memcpy(out, configured->key, configured->len);
		return 0;
	}
	n = hkdf_label(kdf, configured->len, "HostNQN", hostnqn, NULL, info);
	if (n < 0)
		return -1;
	return nvme_hkdf(configured->hash, configured->key, configured->len, info, (size_t)n,
			 out, configured->len);
}

int nvme_psk_digest(uint8_t hash, const uint8_t *psk, size_t len, const char *hostnqn,
		    const char *subnqn, char *out, size_t outlen)
{
	static const char seed[] = " NVMe-over-Fabrics";
	const struct nvme_buf msg[] = {
		{ hostnqn, strlen(hostnqn) },
		{ " ", 1 },
		{ subnqn, strlen(subnqn) },
		{ seed, sizeof(seed) - 1 },
	};
	uint8_t mac[NVME_HASH_MAX_LEN];
	int n;

	/* Only the two TLS 1.3 cipher suite hashes have a digest (3.6.1.3). */
	if (hash != NVME_HASH_SHA256 && hash != NVME_HASH_SHA384)
		return -1;
	if (nvme_hmac(hash, psk, len, msg, 4, mac) < 0)
		return -1;
	n = nvme_base64_encode(mac, nvme_hash_len(hash), out, outlen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return n;
}

int nvme_psk_identity(int version, char type, uint8_t hash, const char *hostnqn,
		      const char *subnqn, const char *digest, char *out, size_t outlen)
{
	int n;

	if ((hash != NVME_HASH_SHA256 && hash != NVME_HASH_SHA384) ||
	    (type != 'R' && type != 'G'))
		return -1;
	if (version == 0)
		n = snprintf(out, outlen, "NVMe0%c%02u %s %s", type, hash, hostnqn, subnqn);
	else if (version == 1 && digest)
		n = snprintf(out, outlen, "NVMe1%c%02u %s %s %s", type, hash, hostnqn, subnqn,
			     digest);
	else
		return -1;
	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int nvme_psk_identity_parse(const char *id, int *version, char *hostnqn, char *subnqn,
			    size_t nqnlen)
{
	const char *h, *sp, *end;

	if (strncmp(id, "NVMe", 4) != 0 || (id[4] != '0' && id[4] != '1') ||
	    (id[5] != 'R' && id[5] != 'G') || !id[6] || !id[7] || id[8] != ' ')
		return -1;
	*version = id[4] - '0';
	h = id + 9;
	sp = strchr(h, ' ');
	if (!sp || sp == h || (size_t)(sp - h) >= nqnlen)
		return -1;
	memcpy(hostnqn, h, (size_t)(sp - h));
	hostnqn[sp - h] = '\0';
	end = strchr(sp + 1, ' ');
	if (!end)
		end = sp + 1 + strlen(sp + 1);
	if (end == sp + 1 || (size_t)(end - sp - 1) >= nqnlen)
		return -1;
	memcpy(subnqn, sp + 1, (size_t)(end - sp - 1));
	subnqn[end - sp - 1] = '\0';
	return 0;
}

int nvme_psk_tls_key(enum nvme_psk_kdf kdf, int version, uint8_t hash, const uint8_t *psk,
		     size_t len, const char *ctx, uint8_t *out)
{
	uint8_t info[HKDF_INFO_MAX];
	char prefix[8] = "";
	int n;

	if (hash != NVME_HASH_SHA256 && hash != NVME_HASH_SHA384)
		return -1;
	if (version == 1)
		snprintf(prefix, sizeof(prefix), "%02u ", hash);
	else if (version != 0)
		return -1;
	n = hkdf_label(kdf, len, "nvme-tls-psk", prefix, ctx, info);
	if (n < 0)
		return -1;
	return nvme_hkdf(hash, psk, len, info, (size_t)n, out, len);
}

int nvme_psk_generated(uint8_t hash, const uint8_t *skey, size_t skeylen, const uint8_t *c1,
		       const uint8_t *c2, size_t hl, uint8_t *out)
{
	const struct nvme_buf msg[] = { { c1, hl }, { c2, hl } };

	return nvme_hmac(hash, skey, skeylen, msg, 2, out);
}

int nvme_tls_psk_derive(const struct nvme_secret *configured, const char *hostnqn,
			const char *subnqn, int version, enum nvme_psk_kdf kdf,
			struct nvme_tls_psk *out, char *err, size_t errlen)
{
	uint8_t retained[48];
	char digest[NVME_PSK_DIGEST_MAX];
	uint8_t hash = nvme_psk_cipher_hash(configured);
	size_t len;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!hash)
		return errmsg(err, errlen, "not a TLS PSK");
	if (version != 0 && version != 1)
		return errmsg(err, errlen, "PSK identity version %d is not 0 or 1", version);
	if (nvme_psk_retained(configured, hostnqn, kdf, retained, &len) < 0) {
		errmsg(err, errlen, "cannot derive the retained PSK for host %s", hostnqn);
		goto out;
	}
	if (version == 1 &&
	    nvme_psk_digest(hash, retained, len, hostnqn, subnqn, digest, sizeof(digest)) < 0) {
		errmsg(err, errlen, "cannot compute the PSK digest");
		goto out;
	}
	if (nvme_psk_identity(version, 'R', hash, hostnqn, subnqn, digest, out->identity,
			      sizeof(out->identity)) < 0) {
		errmsg(err, errlen, "PSK identity for host %s and subsystem %s is too long",
		       hostnqn, subnqn);
		goto out;
	}
	if (nvme_psk_tls_key(kdf, version, hash, retained, len,
			     version == 0 ? out->identity : digest, out->key) < 0) {
		errmsg(err, errlen, "cannot derive the TLS PSK (NQNs too long for HkdfLabel?)");
		goto out;
	}
	out->hash = hash;
	out->len = (uint8_t)len;
	rc = 0;
out:
	OPENSSL_cleanse(retained, sizeof(retained));
	OPENSSL_cleanse(digest, sizeof(digest));
	if (rc)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}
