/*
 * HMAC, digest and HKDF by NVMe hash identifier (include/nvme_hmac.h), all
 * through OpenSSL 3 EVP so that no secret passes through code of our own.
 */
#include "nvme_hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static const struct {
	const char *name;
	size_t len;
} hashes[] = {
	[NVME_HASH_SHA256] = { "SHA256", 32 },
	[NVME_HASH_SHA384] = { "SHA384", 48 },
	[NVME_HASH_SHA512] = { "SHA512", 64 },
};

size_t nvme_hash_len(uint8_t hash)
{
	return nvme_hash_name(hash) ? hashes[hash].len : 0;
}

const char *nvme_hash_name(uint8_t hash)
{
	if (hash >= sizeof(hashes) / sizeof(hashes[0]))
		return NULL;
	return hashes[hash].name;
}

int nvme_hmac(uint8_t hash, const void *key, size_t keylen, const struct nvme_buf *pieces,
	      size_t n, uint8_t *out)
{
	const char *name = nvme_hash_name(hash);
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac;
	size_t outlen;
	int rc = -1;

	if (!name)
		return -1;
	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (!mac)
		return -1;
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, keylen, params))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (pieces[i].len && !EVP_MAC_update(ctx, pieces[i].p, pieces[i].len))
			goto out;
	if (!EVP_MAC_final(ctx, out, &outlen, nvme_hash_len(hash)) || outlen != nvme_hash_len(hash))
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx); /* cleanses the keyed state */
	EVP_MAC_free(mac);
	return rc;
}

int nvme_digest(uint8_t hash, const void *data, size_t len, uint8_t *out)
{
	const char *name = nvme_hash_name(hash);
	unsigned int outlen;
	EVP_MD *md;
	int ok;

	if (!name)
		return -1;
	md = EVP_MD_fetch(NULL, name, NULL);
	if (!md)
		return -1;
	ok = EVP_Digest(data, len, out, &outlen, md, NULL);
	EVP_MD_free(md);
	return ok && outlen == nvme_hash_len(hash) ? 0 : -1;
}

int nvme_hkdf(uint8_t hash, const void *ikm, size_t ikmlen, const void *info, size_t infolen,
	      uint8_t *out, size_t outlen)
{
	const char *name = nvme_hash_name(hash);
	OSSL_PARAM params[4], *p = params;
	EVP_KDF_CTX *ctx = NULL;
	EVP_KDF *kdf;
	int rc = -1;

	if (!name)
		return -1;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (!kdf)
		return -1;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out;
	/* No salt parameter: RFC 5869 2.2, HashLen zero bytes. */
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)name, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) <= 0)
		goto out;
	rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}
