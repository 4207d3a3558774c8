/*
 * DH-HMAC-CHAP cryptography (include/dhchap.h; NVMe Base 2.0, 8.13.5).
 */
#include "dhchap.h"
#include "nvme_hmac.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

static const struct {
	const char *name;
	int len;
} groups[DHCHAP_DH_COUNT] = {
	[DHCHAP_DH_NULL] = { "null", 0 },
	[DHCHAP_DH_FFDHE2048] = { "ffdhe2048", 256 },
	[DHCHAP_DH_FFDHE3072] = { "ffdhe3072", 384 },
	[DHCHAP_DH_FFDHE4096] = { "ffdhe4096", 512 },
	[DHCHAP_DH_FFDHE6144] = { "ffdhe6144", 768 },
	[DHCHAP_DH_FFDHE8192] = { "ffdhe8192", 1024 },
};

int dhchap_dh_len(uint8_t group)
{
	return group < DHCHAP_DH_COUNT ? groups[group].len : -1;
}

const char *dhchap_dh_name(uint8_t group)
{
	return group < DHCHAP_DH_COUNT ? groups[group].name : NULL;
}

int dhchap_transform(const struct nvme_secret *secret, const char *nqn, uint8_t *out,
		     size_t *outlen)
{
	static const char seed[] = "NVMe-over-Fabrics";
	const struct nvme_buf msg[] = { { nqn, strlen(nqn) }, { seed, sizeof(seed) - 1 } };

	if (!secret || secret->kind != NVME_SECRET_DHCHAP)
		return -1;
	if (secret->hash == 0) {
		memcpy(out, secret->key, secret->len);
		*outlen = secret->len;
		return 0;
	}
	*outlen = nvme_hash_len(secret->hash);
	return nvme_hmac(secret->hash, secret->key, secret->len, msg, 2, out);
}

int dhchap_augment(uint8_t hash, const uint8_t *skey, size_t skeylen, const uint8_t *chal,
		   uint8_t *out)
{
	uint8_t hkey[NVME_HASH_MAX_LEN];
	const struct nvme_buf msg = { chal, nvme_hash_len(hash) };
	int rc;

	if (nvme_digest(hash, skey, skeylen, hkey) < 0)
		return -1;
	rc = nvme_hmac(hash, hkey, nvme_hash_len(hash), &msg, 1, out);
	OPENSSL_cleanse(hkey, sizeof(hkey));
	return rc;
}

int dhchap_response(enum dhchap_role role, uint8_t hash, const struct nvme_secret *secret,
		    const uint8_t *chal, uint32_t seqnum, uint16_t tid, const char *hostnqn,
		    const char *subnqn, const uint8_t *skey, size_t skeylen, uint8_t *out)
{
	uint8_t key[NVME_SECRET_MAX], aug[NVME_HASH_MAX_LEN];
	const uint8_t seq[4] = { (uint8_t)seqnum, (uint8_t)(seqnum >> 8), (uint8_t)(seqnum >> 16),
				 (uint8_t)(seqnum >> 24) };
	const uint8_t t[2] = { (uint8_t)tid, (uint8_t)(tid >> 8) };
	const uint8_t zero = 0;
	const char *who = role == DHCHAP_HOST ? "HostHost" : "Controller";
	const char *first = role == DHCHAP_HOST ? hostnqn : subnqn;
	const char *second = role == DHCHAP_HOST ? subnqn : hostnqn;
	size_t keylen, hl = nvme_hash_len(hash);
	int rc = -1;

	if (!hl || dhchap_transform(secret, first, key, &keylen) < 0)
		goto out;
	if (skeylen) {
		if (dhchap_augment(hash, skey, skeylen, chal, aug) < 0)
			goto out;
		chal = aug;
	}
	const struct nvme_buf msg[] = {
		{ chal, hl },   { seq, 4 },     { t, 2 },
		{ &zero, 1 },   { who, strlen(who) },
		{ first, strlen(first) },       { &zero, 1 },
		{ second, strlen(second) },
	};
	rc = nvme_hmac(hash, key, keylen, msg, sizeof(msg) / sizeof(msg[0]), out);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(aug, sizeof(aug));
	return rc;
}

struct dhchap_dh {
	uint8_t group;
	EVP_PKEY *key;
};

struct dhchap_dh *dhchap_dh_new(uint8_t group)
{
	struct dhchap_dh *dh;
	EVP_PKEY_CTX *ctx;
	OSSL_PARAM params[2];

	if (group == DHCHAP_DH_NULL || dhchap_dh_len(group) <= 0)
		return NULL;
	dh = calloc(1, sizeof(*dh));
	if (!dh)
		return NULL;
	dh->group = group;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)groups[group].name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_params(ctx, params) <= 0 ||
	    EVP_PKEY_generate(ctx, &dh->key) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		dhchap_dh_free(dh);
		return NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return dh;
}

void dhchap_dh_free(struct dhchap_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->key);   /* clears the private exponent */
	free(dh);
}

int dhchap_dh_public(struct dhchap_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int rc = -1;

	if ((int)len != dhchap_dh_len(dh->group))
		return -1;
	if (EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, &pub) > 0 &&
	    BN_bn2binpad(pub, out, (int)len) == (int)len)
		rc = 0;
	BN_free(pub);
	return rc;
}

int dhchap_dh_shared(struct dhchap_dh *dh, const uint8_t *peer, size_t len, uint8_t *out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL, *dctx = NULL;
	EVP_PKEY *peerkey = NULL;
	BIGNUM *pub = NULL;
	size_t outlen = len;
	int rc = -1;

	if ((int)len != dhchap_dh_len(dh->group))
		return -1;
	pub = BN_bin2bn(peer, (int)len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!pub || !bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     groups[dh->group].name, 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!params || !pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &peerkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL);
	/*
	 * validate_peer = 1: the peer value must be in [2, p-2] and in the
	 * prime-order subgroup, else a host could force a known session key.
	 * Padding: Ks is used at the full group size, as Linux does.
	 */
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_CTX_set_dh_pad(dctx, 1) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, peerkey, 1) <= 0 ||
	    EVP_PKEY_derive(dctx, out, &outlen) <= 0 || outlen != len)
		goto out;
	rc = 0;
out:
	if (rc)
		OPENSSL_cleanse(out, len);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(peerkey);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(pub);
	return rc;
}
