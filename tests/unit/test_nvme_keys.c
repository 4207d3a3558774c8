/*
 * NVMe secrets and TLS PSK derivations (include/nvme_keys.h,
 * include/nvme_psk.h):
 *   - the interchange formats: a vector from libnvme's own test suite, round
 *     trips, and every kind of bad text (prefix, hash id, base64, length,
 *     CRC), with error messages that never quote the secret;
 *   - secret files: accepted only when private to the owner;
 *   - retained PSK, digest, identity and TLS PSK: a PSK identity nvme-cli
 *     put in a Linux keyring (libnvme encoding), the Linux kernel's KUnit
 *     vectors (RFC 8446 encoding), and both encodings recomputed here by a
 *     second route: RFC 5869 HKDF written out with one-shot HMAC and the
 *     HkdfLabel bytes spelled out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nvme_hmac.h"
#include "nvme_keys.h"
#include "nvme_psk.h"

/* libnvme test/psk.c: this configured PSK exports as the string below. */
static const uint8_t libnvme_psk[32] = {
	0x55, 0x12, 0xdb, 0xb6, 0x73, 0x7d, 0x01, 0x06, 0xf6, 0x59, 0x75, 0xb7, 0x73, 0xdf, 0xb0, 0x11,
	0xff, 0xc3, 0x44, 0xbc, 0xf4, 0x42, 0xe2, 0xdd, 0x6d, 0x8b, 0xc4, 0x87, 0x0b, 0x5d, 0x5b, 0x03,
};
static const char libnvme_psk_text[] =
	"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:";

static struct nvme_secret *parse(enum nvme_secret_kind kind, const char *text, char *err)
{
	return nvme_secret_parse(kind, text, err, 256);
}

static void test_crc32(void **state)
{
	/* The CRC-32 check value (IEEE 802.3 / zlib). */
	assert_int_equal(nvme_key_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(nvme_key_crc32("", 0), 0);
}

static void test_tls_psk_vector(void **state)
{
	char err[256], out[160];
	struct nvme_secret *s = parse(NVME_SECRET_TLS_PSK, libnvme_psk_text, err);

	assert_non_null(s);
	assert_int_equal(s->kind, NVME_SECRET_TLS_PSK);
	assert_int_equal(s->hash, 1);
	assert_int_equal(s->len, 32);
	assert_memory_equal(s->key, libnvme_psk, 32);
	assert_int_equal(nvme_secret_format(NVME_SECRET_TLS_PSK, 1, libnvme_psk, 32, out,
					    sizeof(out)),
			 strlen(libnvme_psk_text));
	assert_string_equal(out, libnvme_psk_text);
	nvme_secret_free(s);
}

static void test_round_trips(void **state)
{
	static const struct { enum nvme_secret_kind kind; uint8_t hash; size_t len; } ok[] = {
		{ NVME_SECRET_TLS_PSK, 0, 32 }, { NVME_SECRET_TLS_PSK, 0, 48 },
		{ NVME_SECRET_TLS_PSK, 1, 32 }, { NVME_SECRET_TLS_PSK, 2, 48 },
		{ NVME_SECRET_DHCHAP, 0, 32 },  { NVME_SECRET_DHCHAP, 0, 48 },
		{ NVME_SECRET_DHCHAP, 0, 64 },  { NVME_SECRET_DHCHAP, 1, 32 },
		{ NVME_SECRET_DHCHAP, 2, 48 },  { NVME_SECRET_DHCHAP, 3, 64 },
		{ NVME_SECRET_DHCHAP, 1, 64 },  /* any length with any transform */
	};
	uint8_t key[64];
	char text[160], err[256];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int n = nvme_secret_format(ok[i].kind, ok[i].hash, key, ok[i].len, text,
					   sizeof(text));
		assert_true(n > 0);
		assert_int_equal(strncmp(text, ok[i].kind == NVME_SECRET_DHCHAP ? "DHHC-1:" :
					 "NVMeTLSkey-1:", 7), 0);
		struct nvme_secret *s = parse(ok[i].kind, text, err);
		assert_non_null(s);
		assert_int_equal(s->hash, ok[i].hash);
		assert_int_equal(s->len, ok[i].len);
		assert_memory_equal(s->key, key, ok[i].len);
		nvme_secret_free(s);
	}
	/* Invalid combinations do not format. */
	assert_int_equal(nvme_secret_format(NVME_SECRET_TLS_PSK, 1, key, 48, text, sizeof(text)), -1);
	assert_int_equal(nvme_secret_format(NVME_SECRET_TLS_PSK, 3, key, 48, text, sizeof(text)), -1);
	assert_int_equal(nvme_secret_format(NVME_SECRET_DHCHAP, 4, key, 32, text, sizeof(text)), -1);
	assert_int_equal(nvme_secret_format(NVME_SECRET_DHCHAP, 1, key, 40, text, sizeof(text)), -1);
	assert_int_equal(nvme_secret_format(NVME_SECRET_DHCHAP, 1, key, 32, text, 20), -1);
}

/* Put crc after len key bytes, little-endian, as both formats store it. */
static void put_crc(uint8_t *raw, size_t len, uint32_t crc)
{
	raw[len] = (uint8_t)crc;
	raw[len + 1] = (uint8_t)(crc >> 8);
	raw[len + 2] = (uint8_t)(crc >> 16);
	raw[len + 3] = (uint8_t)(crc >> 24);
}

/* Text with the given body bytes (key || crc as given), for broken CRCs/lengths. */
static void text_of(const char *prefix, const uint8_t *raw, size_t len, char *out, size_t cap)
{
	char b64[160];

	assert_true(nvme_base64_encode(raw, len, b64, sizeof(b64)) > 0);
	snprintf(out, cap, "%s%s:", prefix, b64);
}

static void expect_bad(enum nvme_secret_kind kind, const char *text, const char *why)
{
	char err[256] = "";
	struct nvme_secret *s = parse(kind, text, err);
	const char *field = strchr(text, ':');

	if (s)
		fail_msg("accepted bad secret (%s)", why);
	assert_true(strlen(err) > 0);
	/* The message never quotes the key field (nor any long part of the text). */
	if (field && (field = strchr(field + 1, ':')) && strlen(field + 1) > 4) {
		char frag[5];
		memcpy(frag, field + 1, 4);
		frag[4] = 0;
		if (strstr(err, frag))
			fail_msg("error message quotes the secret: %s", err);
	}
}

static void test_bad_texts(void **state)
{
	uint8_t raw[68];
	char text[200];
	uint32_t crc;

	for (size_t i = 0; i < 64; i++)
		raw[i] = (uint8_t)(200 - i);

	expect_bad(NVME_SECRET_TLS_PSK, "", "empty");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-2:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "version");
	expect_bad(NVME_SECRET_DHCHAP, libnvme_psk_text, "TLS text as DH-HMAC-CHAP");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:1:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "one digit");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:0x:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hex digit");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hash 03");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "02 with 32 bytes");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ", "no closing colon");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ::", "two closing colons");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9Lr*:", "bad base64 char");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9Lr:", "base64 length");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/D LzQuLdbYvEhwtdWwNf9LrZ:", "space inside");
	expect_bad(NVME_SECRET_TLS_PSK, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:", "CRC (last char)");
	expect_bad(NVME_SECRET_DHCHAP, "DHHC-1:01::", "empty key");
	expect_bad(NVME_SECRET_DHCHAP, "DHHC-1:04:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hash 04");

	/* A right-length key whose CRC is off by one bit. */
	put_crc(raw, 32, nvme_key_crc32(raw, 32) ^ 1);
	text_of("DHHC-1:01:", raw, 36, text, sizeof(text));
	expect_bad(NVME_SECRET_DHCHAP, text, "CRC bit");
	/* The CRC stored big-endian instead of little-endian. */
	crc = nvme_key_crc32(raw, 32);
	memcpy(raw + 32, (uint8_t[]){ crc >> 24, crc >> 16, crc >> 8, crc }, 4);
	text_of("DHHC-1:01:", raw, 36, text, sizeof(text));
	expect_bad(NVME_SECRET_DHCHAP, text, "CRC byte order");
	/* Valid CRC, invalid lengths: 40 and 16 bytes, and a TLS PSK of 64. */
	put_crc(raw, 40, nvme_key_crc32(raw, 40));
	text_of("DHHC-1:00:", raw, 44, text, sizeof(text));
	expect_bad(NVME_SECRET_DHCHAP, text, "40-byte secret");
	put_crc(raw, 16, nvme_key_crc32(raw, 16));
	text_of("NVMeTLSkey-1:00:", raw, 20, text, sizeof(text));
	expect_bad(NVME_SECRET_TLS_PSK, text, "16-byte PSK");
	put_crc(raw, 64, nvme_key_crc32(raw, 64));
	text_of("NVMeTLSkey-1:00:", raw, 68, text, sizeof(text));
	expect_bad(NVME_SECRET_TLS_PSK, text, "64-byte PSK");
	/* ... while the same 64 bytes make a fine DH-HMAC-CHAP secret. */
	text_of("DHHC-1:03:", raw, 68, text, sizeof(text));
	char err[256];
	struct nvme_secret *s = parse(NVME_SECRET_DHCHAP, text, err);
	assert_non_null(s);
	assert_int_equal(s->len, 64);
	nvme_secret_free(s);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_secret_files(void **state)
{
	char dir[] = "/tmp/znstgt-keys-XXXXXX", path[128], text[200], err[256];
	struct nvme_secret *s;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/psk", dir);
	snprintf(text, sizeof(text), "  %s\n\n", libnvme_psk_text);

	write_file(path, text, 0600);
	s = nvme_secret_load_file(NVME_SECRET_TLS_PSK, path, err, sizeof(err));
	assert_non_null(s);
	assert_memory_equal(s->key, libnvme_psk, 32);
	nvme_secret_free(s);

	write_file(path, text, 0400);
	s = nvme_secret_load_file(NVME_SECRET_TLS_PSK, path, err, sizeof(err));
	assert_non_null(s);
	nvme_secret_free(s);

	static const mode_t open_modes[] = { 0640, 0604, 0660, 0610, 0601, 0644 };
	for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
		write_file(path, text, open_modes[i]);
		err[0] = 0;
		assert_null(nvme_secret_load_file(NVME_SECRET_TLS_PSK, path, err, sizeof(err)));
		assert_non_null(strstr(err, "group or others"));
		assert_non_null(strstr(err, path));
		assert_null(strstr(err, "VRLb"));
	}

	/* A malformed secret in a private file: the path is named, the text is not. */
	write_file(path, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:\n", 0600);
	assert_null(nvme_secret_load_file(NVME_SECRET_TLS_PSK, path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "CRC"));
	assert_null(strstr(err, "VRLb"));

	/* Not a regular file, missing file, too long. */
	assert_null(nvme_secret_load_file(NVME_SECRET_TLS_PSK, dir, err, sizeof(err)));
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_null(nvme_secret_load_file(NVME_SECRET_TLS_PSK, path, err, sizeof(err)));
	snprintf(path, sizeof(path), "%s/long", dir);
	char big[400];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	write_file(path, big, 0600);
	assert_null(nvme_secret_load_file(NVME_SECRET_DHCHAP, path, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
	assert_null(strstr(err, "AAAA"));

	unlink(path);
	snprintf(path, sizeof(path), "%s/psk", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- TLS PSK derivations ---- */

/* RFC 5869 HKDF (salt = HashLen zeros) written out with one-shot HMAC. */
static void ref_hkdf(const EVP_MD *md, const uint8_t *ikm, size_t ikmlen, const uint8_t *info,
		     size_t infolen, uint8_t *out, size_t L)
{
	uint8_t zeros[64] = { 0 }, prk[64], t[64], msg[64 + 700];
	unsigned int plen, tlen = 0;
	size_t done = 0;

	assert_non_null(HMAC(md, zeros, EVP_MD_get_size(md), ikm, ikmlen, prk, &plen));
	for (uint8_t i = 1; done < L; i++) {
		size_t n = 0;
		memcpy(msg, t, tlen);
		n += tlen;
		memcpy(msg + n, info, infolen);
		n += infolen;
		msg[n++] = i;
		assert_non_null(HMAC(md, prk, (int)plen, msg, n, t, &tlen));
		memcpy(out + done, t, L - done < tlen ? L - done : tlen);
		done += tlen;
	}
}

/* HkdfLabel by hand: RFC 8446 7.1, or libnvme's le16 + unprefixed strings. */
static size_t ref_label(bool rfc, size_t L, const char *label, const char *ctx, uint8_t *info)
{
	size_t n = 0, ll = strlen(label), cl = strlen(ctx);

	if (rfc) {
		info[n++] = L >> 8;
		info[n++] = L & 0xff;
		info[n++] = 6 + ll;
	} else {
		info[n++] = L & 0xff;
		info[n++] = L >> 8;
	}
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	if (rfc)
		info[n++] = cl;
	memcpy(info + n, ctx, cl);
	return n + cl;
}

static const char hostnqn[] = "nqn.2014-08.org.nvmexpress:uuid:713b3816-f9bf-ba43-b95a-5e4bf8c726e9";
static const char subnqn[] = "nqn.1992-08.com.netapp:sn.2f7701d3542f11efb872005056bba694:subsystem.ss1";

static void test_psk_nvme_cli_identity(void **state)
{
	/*
	 * `nvme gen-tls-key -n <hostnqn> -c <subnqn> -m 1 -I 1 -i` (nvme-cli 2.10,
	 * libnvme 1.10) printed this key and put this identity in the keyring.
	 */
	char err[256];
	struct nvme_tls_psk t;
	struct nvme_secret *s = parse(NVME_SECRET_TLS_PSK,
		"NVMeTLSkey-1:01:5ldrsnYzSywCj8FMdxV6kfLAMs/4torA6QhS8d9f0UTCGhPy:", err);

	assert_non_null(s);
	assert_int_equal(nvme_tls_psk_derive(s, hostnqn, subnqn, 1, NVME_PSK_KDF_LIBNVME, &t, err,
					     sizeof(err)), 0);
	assert_string_equal(t.identity,
		"NVMe1R01 nqn.2014-08.org.nvmexpress:uuid:713b3816-f9bf-ba43-b95a-5e4bf8c726e9 "
		"nqn.1992-08.com.netapp:sn.2f7701d3542f11efb872005056bba694:subsystem.ss1 "
		"nQlz29o14678dui139NFoI7EeqVvpYsTlV7zQpdKdR4=");
	assert_int_equal(t.hash, 1);
	assert_int_equal(t.len, 32);
	/* The RFC 8446 encoding gives another retained PSK, hence another digest. */
	assert_int_equal(nvme_tls_psk_derive(s, hostnqn, subnqn, 1, NVME_PSK_KDF_RFC8446, &t, err,
					     sizeof(err)), 0);
	assert_null(strstr(t.identity, "nQlz29o14678dui139NFoI7EeqVvpYsTlV7zQpdKdR4="));
	nvme_secret_free(s);
}

/* drivers/nvme/common/tests/auth_kunit.c (Linux): generated PSK, digest, TLS PSK. */
static void kunit_case(uint8_t hash, const uint8_t *exp_psk, const char *exp_digest,
		       const uint8_t *exp_tls)
{
	uint8_t skey[64], c1[64], c2[64], psk[64], tls[64];
	size_t hl = nvme_hash_len(hash);
	char digest[NVME_PSK_DIGEST_MAX];

	for (int i = 0; i < 64; i++) {
		skey[i] = 'A' + i;
		c1[i] = i;
		c2[i] = 0xff - i;
	}
	assert_int_equal(nvme_psk_generated(hash, skey, hl, c1, c2, hl, psk), 0);
	assert_memory_equal(psk, exp_psk, hl);
	assert_int_equal(nvme_psk_digest(hash, psk, hl, "hostnqn", "subsysnqn", digest,
					 sizeof(digest)), (int)strlen(exp_digest));
	assert_string_equal(digest, exp_digest);
	assert_int_equal(nvme_psk_tls_key(NVME_PSK_KDF_RFC8446, 1, hash, psk, hl, digest, tls), 0);
	assert_memory_equal(tls, exp_tls, hl);
}

static void test_psk_kernel_vectors(void **state)
{
	static const uint8_t psk256[] = {
		0x17, 0x33, 0xc5, 0x9f, 0xa7, 0xf4, 0x8f, 0xcf, 0x37, 0xf5, 0xf2, 0x6f, 0xc4, 0xff, 0x02, 0x68,
		0xad, 0x4f, 0x78, 0xe0, 0x30, 0xf4, 0xf3, 0xb0, 0xbf, 0xd1, 0xd4, 0x7e, 0x7b, 0xb1, 0x44, 0x7a,
	};
	static const uint8_t tls256[] = {
		0x3c, 0x17, 0xda, 0x62, 0x84, 0x74, 0xa0, 0x4d, 0x22, 0x47, 0xc4, 0xca, 0xb4, 0x79, 0x68, 0xc9,
		0x15, 0x38, 0x81, 0x93, 0xf7, 0xc0, 0x71, 0xbd, 0x94, 0x89, 0xcc, 0x36, 0x66, 0xcd, 0x7c, 0xc8,
	};
	static const uint8_t psk384[] = {
		0xf1, 0x4b, 0x2d, 0xd3, 0x23, 0x4c, 0x45, 0x96, 0x94, 0xd3, 0xbc, 0x63, 0xf8, 0x96, 0x8b, 0xd6,
		0xb3, 0x7c, 0x2c, 0x6d, 0xe8, 0x49, 0xe2, 0x2e, 0x11, 0x87, 0x49, 0x00, 0x1c, 0xe4, 0xbb, 0xe8,
		0x64, 0x0b, 0x9e, 0x3a, 0x74, 0x8c, 0xb1, 0x1c, 0xe4, 0xb1, 0xd7, 0x1d, 0x35, 0x9c, 0xce, 0x39,
	};
	static const uint8_t tls384[] = {
		0x27, 0x74, 0x75, 0x32, 0x33, 0x53, 0x7b, 0x3f, 0xa5, 0x0e, 0xb7, 0xd1, 0x6a, 0x8e, 0x43, 0x45,
		0x7d, 0x85, 0xf4, 0x90, 0x6c, 0x00, 0x5b, 0x22, 0x36, 0x61, 0x6c, 0x5d, 0x80, 0x93, 0x9d, 0x08,
		0x98, 0xff, 0xf1, 0x5b, 0xb8, 0xb7, 0x71, 0x19, 0xd2, 0xbe, 0x0a, 0xac, 0x42, 0x3e, 0x75, 0x90,
	};
	static const uint8_t psk512[] = {
		0x9c, 0x9f, 0x08, 0x9a, 0x61, 0x8b, 0x47, 0xd2, 0xd7, 0x5f, 0x4b, 0x6c, 0x28, 0x07, 0x04, 0x24,
		0x48, 0x7b, 0x44, 0x5d, 0xd9, 0x6e, 0x70, 0xc4, 0xc0, 0x9b, 0x55, 0xe8, 0xb6, 0x00, 0x01, 0x52,
		0xa3, 0x36, 0x3c, 0x34, 0x54, 0x04, 0x3f, 0x38, 0xf0, 0xb8, 0x50, 0x36, 0xde, 0xd4, 0x06, 0x55,
		0x35, 0x0a, 0xa8, 0x7b, 0x8b, 0x6a, 0x28, 0x2b, 0x5c, 0x1a, 0xca, 0xe1, 0x62, 0x33, 0xdd, 0x5b,
	};
	uint8_t skey[64], c1[64], c2[64], psk[64];
	char digest[100];

	kunit_case(NVME_HASH_SHA256, psk256, "OldoKuTfKddMuyCznAZojkWD7P4D9/AtzDzLimtOxqI=", tls256);
	kunit_case(NVME_HASH_SHA384, psk384,
		   "cffMWk8TSS7HOQebjgYEIkrPrjWPV4JE5cdPB8WhEvY4JBW5YynKyv66XscN4A9n", tls384);
	/* SHA-512: a generated PSK exists, a digest (TLS 1.3 has no such suite) not. */
	for (int i = 0; i < 64; i++) {
		skey[i] = 'A' + i;
		c1[i] = i;
		c2[i] = 0xff - i;
	}
	assert_int_equal(nvme_psk_generated(NVME_HASH_SHA512, skey, 64, c1, c2, 64, psk), 0);
	assert_memory_equal(psk, psk512, 64);
	assert_int_equal(nvme_psk_digest(NVME_HASH_SHA512, psk, 64, "h", "s", digest,
					 sizeof(digest)), -1);
}

/* Retained and TLS PSK, both encodings, both identity versions, by the second route. */
static void test_psk_second_route(void **state)
{
	static const struct { uint8_t hash; size_t len; } keys[] = { { 1, 32 }, { 2, 48 }, { 0, 32 }, { 0, 48 } };
	uint8_t key[48], retained[48], want_retained[48], want_tls[48], info[800];
	char err[256];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 3);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		struct nvme_secret s = { .kind = NVME_SECRET_TLS_PSK, .hash = keys[k].hash,
					 .len = (uint8_t)keys[k].len };
		uint8_t cipher = keys[k].len == 48 ? 2 : 1;
		const EVP_MD *md = cipher == 2 ? EVP_sha384() : EVP_sha256();
		size_t L = keys[k].len, n;

		memcpy(s.key, key, L);
		assert_int_equal(nvme_psk_cipher_hash(&s), cipher);
		for (int rfc = 0; rfc < 2; rfc++) {
			enum nvme_psk_kdf kdf = rfc ? NVME_PSK_KDF_RFC8446 : NVME_PSK_KDF_LIBNVME;

			/* Retained PSK: HH 00 is the configured PSK itself. */
			if (keys[k].hash) {
				n = ref_label(rfc, L, "HostNQN", hostnqn, info);
				ref_hkdf(md, key, L, info, n, want_retained, L);
			} else {
				memcpy(want_retained, key, L);
			}
			assert_int_equal(nvme_psk_retained(&s, hostnqn, kdf, retained, &n), 0);
			assert_int_equal(n, L);
			assert_memory_equal(retained, want_retained, L);

			for (int version = 0; version < 2; version++) {
				struct nvme_tls_psk t;
				char ident[NVME_PSK_IDENTITY_MAX], ctx[NVME_PSK_IDENTITY_MAX];
				uint8_t mac[48];
				unsigned int maclen;
				char msg[400], digest[80];

				/* Digest: HMAC(retained, NQNh " " NQNc " NVMe-over-Fabrics"). */
				snprintf(msg, sizeof(msg), "%s %s NVMe-over-Fabrics", hostnqn, subnqn);
				HMAC(md, want_retained, (int)L, (uint8_t *)msg, strlen(msg), mac, &maclen);
				EVP_EncodeBlock((uint8_t *)digest, mac, (int)maclen);
				if (version == 0)
					snprintf(ident, sizeof(ident), "NVMe0R0%u %s %s", cipher, hostnqn, subnqn);
				else
					snprintf(ident, sizeof(ident), "NVMe1R0%u %s %s %s", cipher, hostnqn,
						 subnqn, digest);
				if (version == 0)
					snprintf(ctx, sizeof(ctx), "%s", ident);
				else
					snprintf(ctx, sizeof(ctx), "0%u %s", cipher, digest);
				n = ref_label(rfc, L, "nvme-tls-psk", ctx, info);
				ref_hkdf(md, want_retained, L, info, n, want_tls, L);

				assert_int_equal(nvme_tls_psk_derive(&s, hostnqn, subnqn, version, kdf,
								     &t, err, sizeof(err)), 0);
				assert_string_equal(t.identity, ident);
				assert_int_equal(t.hash, cipher);
				assert_int_equal(t.len, L);
				assert_memory_equal(t.key, want_tls, L);
			}
		}
	}
}

static void test_psk_limits(void **state)
{
	char longnqn[224], err[256], out[40];
	struct nvme_tls_psk t;
	struct nvme_secret s = { .kind = NVME_SECRET_TLS_PSK, .hash = 1, .len = 32 };

	memset(longnqn, 'n', sizeof(longnqn) - 1);
	longnqn[sizeof(longnqn) - 1] = 0;
	/* Version 0 context (the identity) exceeds HkdfLabel's 255 bytes in RFC form. */
	assert_int_equal(nvme_tls_psk_derive(&s, longnqn, longnqn, 0, NVME_PSK_KDF_RFC8446, &t,
					     err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	for (size_t i = 0; i < sizeof(t); i++)
		assert_int_equal(((uint8_t *)&t)[i], 0);   /* wiped on failure */
	/* Version 1's context is short: fine with the longest NQNs. */
	assert_int_equal(nvme_tls_psk_derive(&s, longnqn, longnqn, 1, NVME_PSK_KDF_RFC8446, &t,
					     err, sizeof(err)), 0);
	assert_int_equal(nvme_tls_psk_derive(&s, "h", "s", 2, NVME_PSK_KDF_RFC8446, &t, err,
					     sizeof(err)), -1);
	struct nvme_secret d = { .kind = NVME_SECRET_DHCHAP, .hash = 1, .len = 32 };
	assert_int_equal(nvme_tls_psk_derive(&d, "h", "s", 0, NVME_PSK_KDF_RFC8446, &t, err,
					     sizeof(err)), -1);
	assert_int_equal(nvme_psk_identity(0, 'R', 1, "h", "s", NULL, out, sizeof(out)), 12);
	assert_string_equal(out, "NVMe0R01 h s");
	assert_int_equal(nvme_psk_identity(0, 'G', 2, "h", "s", NULL, out, sizeof(out)), 12);
	assert_string_equal(out, "NVMe0G02 h s");
	assert_int_equal(nvme_psk_identity(1, 'R', 1, "h", "s", NULL, out, sizeof(out)), -1);
	assert_int_equal(nvme_psk_identity(0, 'R', 3, "h", "s", NULL, out, sizeof(out)), -1);
	assert_int_equal(nvme_psk_identity(0, 'R', 1, longnqn, "s", NULL, out, sizeof(out)), -1);
}

static void test_base64(void **state)
{
	uint8_t out[16];

	assert_int_equal(nvme_base64_decode("Zm9v", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(nvme_base64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_int_equal(nvme_base64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_int_equal(nvme_base64_decode("Zg=", 3, out, sizeof(out)), -1);
	assert_int_equal(nvme_base64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(nvme_base64_decode("Zg=a", 4, out, sizeof(out)), -1);
	assert_int_equal(nvme_base64_decode(" Zm9", 4, out, sizeof(out)), -1);
	assert_int_equal(nvme_base64_decode("Zm9vZm9vZm9vZm9vZm9vZm9v", 24, out, sizeof(out)), -1);
	char enc[8];
	assert_int_equal(nvme_base64_encode((const uint8_t *)"foo", 3, enc, sizeof(enc)), 4);
	assert_string_equal(enc, "Zm9v");
	assert_int_equal(nvme_base64_encode((const uint8_t *)"foob", 4, enc, sizeof(enc)), -1);
}

/* Identities split into version and NQNs; anything not of that shape refused. */
static void test_psk_identity_parse(void **state)
{
	char h[32], c[32], long_nqn[80];
	int v = -1;

	(void)state;
	assert_int_equal(nvme_psk_identity_parse("NVMe0R01 nqn.h nqn.s", &v, h, c, sizeof(h)), 0);
	assert_int_equal(v, 0);
	assert_string_equal(h, "nqn.h");
	assert_string_equal(c, "nqn.s");
	assert_int_equal(nvme_psk_identity_parse("NVMe1R02 nqn.a nqn.b ZGlnZXN0", &v, h, c,
						 sizeof(h)), 0);
	assert_int_equal(v, 1);
	assert_string_equal(h, "nqn.a");
	assert_string_equal(c, "nqn.b");
	static const char *const bad[] = {
		"", "NVMe", "NVMe0R", "NVMe0R0", "NVMe0R01", "NVMe0R01 ", "NVMe0R01 nqn.h",
		"NVMe0R01 nqn.h ", "NVMe0R01  nqn.s", "NVMe2R01 nqn.h nqn.s",
		"NVMe0X01 nqn.h nqn.s", "nvme0R01 nqn.h nqn.s", "NVMe0R01-nqn.h nqn.s",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(nvme_psk_identity_parse(bad[i], &v, h, c, sizeof(h)), -1);
	/* An NQN longer than the caller's buffer. */
	memset(long_nqn, 'q', sizeof(long_nqn));
	memcpy(long_nqn + sizeof(long_nqn) - 8, " nqn.s", 7);
	memcpy(long_nqn, "NVMe0R01 ", 9);
	assert_int_equal(nvme_psk_identity_parse(long_nqn, &v, h, c, sizeof(h)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_tls_psk_vector),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_bad_texts),
		cmocka_unit_test(test_secret_files),
		cmocka_unit_test(test_psk_nvme_cli_identity),
		cmocka_unit_test(test_psk_kernel_vectors),
		cmocka_unit_test(test_psk_second_route),
		cmocka_unit_test(test_psk_limits),
		cmocka_unit_test(test_psk_identity_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
