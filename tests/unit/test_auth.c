/*
 * DH-HMAC-CHAP (include/dhchap.h, include/auth_msg.h, include/auth.h):
 *   - R1/R2, secret transformation and the augmented challenge recomputed
 *     here with one-shot HMAC from the formulas of NVMe Base 2.0, 8.13.5;
 *   - ffdhe key agreement, and peer values OpenSSL must refuse;
 *   - the message codec: round trips, and every truncation refused;
 *   - full transactions between the controller state machine and the test
 *     host (tests/lib/auth_host.c): every hash with the null group and
 *     ffdhe2048, one way and both ways, every secret transformation,
 *     ffdhe3072 and ffdhe8192 once; re-authentication;
 *   - refusals with the reason code a Linux host sees: wrong secrets either
 *     way, hashes / groups / protocols not allowed, secure channel
 *     concatenation, malformed and out-of-order messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../lib/auth_host.h"
#include "auth.h"
#include "auth_msg.h"
#include "dhchap.h"
#include "nvme_hmac.h"

static const char hostnqn[] = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100";
static const char subnqn[] = "nqn.2026-01.io.znstgt:zns0";

static struct nvme_secret mk_secret(uint8_t hash, uint8_t len, uint8_t seed)
{
	struct nvme_secret s = { .kind = NVME_SECRET_DHCHAP, .hash = hash, .len = len };

	for (int i = 0; i < len; i++)
		s.key[i] = (uint8_t)(seed + i * 13);
	return s;
}

static int io_send(void *arg, const void *buf, size_t len)
{
	auth_session_send(arg, buf, len);
	return 0;
}

static ssize_t io_receive(void *arg, void *buf, size_t al)
{
	return auth_session_receive(arg, buf, al);
}

struct pair {
	struct nvme_secret hkey, ckey;      /* what the controller is configured with */
	struct nvme_secret host_hkey, host_ckey; /* what the host uses */
	bool bidirectional;                 /* host asks for controller authentication */
	bool ctrl_has_ckey;
	uint8_t hash_mask, dh_mask;
	const uint8_t *hashes, *dhgroups;
	uint8_t nhash, ndh;
};

static void pair_defaults(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	p->hkey = p->host_hkey = mk_secret(1, 32, 7);
	p->ckey = p->host_ckey = mk_secret(2, 48, 99);
	p->ctrl_has_ckey = true;
	p->hashes = auth_host_all_hashes;
	p->nhash = 3;
	p->dhgroups = auth_host_all_dhgroups;
	p->ndh = 6;
}

static struct auth_session *new_session(const struct pair *p)
{
	struct auth_config cfg = {
		.hostnqn = hostnqn, .subnqn = subnqn, .host_secret = &p->hkey,
		.ctrl_secret = p->ctrl_has_ckey ? &p->ckey : NULL,
		.hash_mask = p->hash_mask, .dhgroup_mask = p->dh_mask,
	};
	struct auth_session *s = auth_session_new(&cfg);

	assert_non_null(s);
	return s;
}

static int run_host(const struct pair *p, struct auth_session *s, uint16_t tid,
		    struct auth_host_result *res)
{
	struct auth_host_config h = {
		.hostnqn = hostnqn, .subnqn = subnqn, .host_secret = &p->host_hkey,
		.ctrl_secret = p->bidirectional ? &p->host_ckey : NULL,
		.hashes = p->hashes, .nhash = p->nhash, .dhgroups = p->dhgroups, .ndh = p->ndh,
		.tid = tid,
	};
	struct auth_host_io io = { io_send, io_receive, s };

	return auth_host_authenticate(&h, &io, res);
}

/* ---- cryptography ---- */

static void test_response_formula(void **state)
{
	struct nvme_secret hk = mk_secret(1, 32, 1), ck = mk_secret(0, 48, 2);
	uint8_t c1[32], tkey[32], want[64], got[64], msg[512];
	unsigned int len;
	size_t n = 0;

	for (int i = 0; i < 32; i++)
		c1[i] = (uint8_t)(0xa0 ^ i);
	/* Kh' = HMAC-SHA256(Kh, NQNh || "NVMe-over-Fabrics") */
	n = (size_t)sprintf((char *)msg, "%sNVMe-over-Fabrics", hostnqn);
	HMAC(EVP_sha256(), hk.key, 32, msg, n, tkey, &len);
	/* R1 = HMAC(Kh', C1 || le32 S1 || le16 T_ID || 0 || "HostHost" || NQNh || 0 || NQNc) */
	n = 0;
	memcpy(msg, c1, 32);
	n = 32;
	memcpy(msg + n, (uint8_t[]){ 0x78, 0x56, 0x34, 0x12, 0xcd, 0xab, 0x00 }, 7);
	n += 7;
	n += (size_t)sprintf((char *)msg + n, "HostHost%s", hostnqn) + 1;
	n += (size_t)sprintf((char *)msg + n, "%s", subnqn);
	HMAC(EVP_sha256(), tkey, 32, msg, n, want, &len);
	assert_int_equal(dhchap_response(DHCHAP_HOST, NVME_HASH_SHA256, &hk, c1, 0x12345678, 0xabcd,
					 hostnqn, subnqn, NULL, 0, got), 0);
	assert_memory_equal(got, want, 32);

	/* R2 with an untransformed 48-byte controller secret and SHA-384. */
	uint8_t c2[48];
	for (int i = 0; i < 48; i++)
		c2[i] = (uint8_t)(3 * i);
	memcpy(msg, c2, 48);
	n = 48;
	memcpy(msg + n, (uint8_t[]){ 1, 0, 0, 0, 2, 0, 0 }, 7);
	n += 7;
	n += (size_t)sprintf((char *)msg + n, "Controller%s", subnqn) + 1;
	n += (size_t)sprintf((char *)msg + n, "%s", hostnqn);
	HMAC(EVP_sha384(), ck.key, 48, msg, n, want, &len);
	assert_int_equal(dhchap_response(DHCHAP_CTRL, NVME_HASH_SHA384, &ck, c2, 1, 2, hostnqn,
					 subnqn, NULL, 0, got), 0);
	assert_memory_equal(got, want, 48);

	/* Augmented challenge: Ca = HMAC(H(Ks), C1), then R1 over Ca. */
	uint8_t ks[256], hks[32], ca[32];
	for (int i = 0; i < 256; i++)
		ks[i] = (uint8_t)(i * 5);
	EVP_Digest(ks, sizeof(ks), hks, &len, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), hks, 32, c1, 32, ca, &len);
	assert_int_equal(dhchap_augment(NVME_HASH_SHA256, ks, sizeof(ks), c1, got), 0);
	assert_memory_equal(got, ca, 32);
	uint8_t r_aug[32];
	assert_int_equal(dhchap_response(DHCHAP_HOST, NVME_HASH_SHA256, &hk, ca, 7, 9, hostnqn,
					 subnqn, NULL, 0, want), 0);
	assert_int_equal(dhchap_response(DHCHAP_HOST, NVME_HASH_SHA256, &hk, c1, 7, 9, hostnqn,
					 subnqn, ks, sizeof(ks), r_aug), 0);
	assert_memory_equal(r_aug, want, 32);

	/* Transformation with SHA-512 of a 32-byte secret gives 64 bytes. */
	struct nvme_secret t3 = mk_secret(3, 32, 5);
	uint8_t out[64];
	size_t outlen;
	assert_int_equal(dhchap_transform(&t3, subnqn, out, &outlen), 0);
	assert_int_equal(outlen, 64);
	n = (size_t)sprintf((char *)msg, "%sNVMe-over-Fabrics", subnqn);
	HMAC(EVP_sha512(), t3.key, 32, msg, n, want, &len);
	assert_memory_equal(out, want, 64);
	assert_int_equal(dhchap_response(DHCHAP_HOST, 4, &hk, c1, 1, 1, hostnqn, subnqn, NULL, 0, got), -1);
}

static void test_dh(void **state)
{
	uint8_t pa[256], pb[256], ka[256], kb[256], bad[256];
	struct dhchap_dh *a = dhchap_dh_new(DHCHAP_DH_FFDHE2048);
	struct dhchap_dh *b = dhchap_dh_new(DHCHAP_DH_FFDHE2048);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(dhchap_dh_public(a, pa, sizeof(pa)), 0);
	assert_int_equal(dhchap_dh_public(b, pb, sizeof(pb)), 0);
	assert_memory_not_equal(pa, pb, sizeof(pa));
	assert_int_equal(dhchap_dh_shared(a, pb, sizeof(pb), ka), 0);
	assert_int_equal(dhchap_dh_shared(b, pa, sizeof(pa), kb), 0);
	assert_memory_equal(ka, kb, sizeof(ka));
	/* Wrong sizes, and values outside the subgroup: 0, 1, p-1, p, 0xff..ff. */
	assert_int_equal(dhchap_dh_public(a, pa, 255), -1);
	assert_int_equal(dhchap_dh_shared(a, pb, 255, ka), -1);
	memset(bad, 0, sizeof(bad));
	assert_int_equal(dhchap_dh_shared(a, bad, sizeof(bad), ka), -1);
	bad[255] = 1;
	assert_int_equal(dhchap_dh_shared(a, bad, sizeof(bad), ka), -1);
	memset(bad, 0xff, sizeof(bad));   /* ffdhe2048's p is 2^2048 - 2^1984 + ...; > p */
	assert_int_equal(dhchap_dh_shared(a, bad, sizeof(bad), ka), -1);
	bad[255] = 0xfe;                  /* ffdhe p ends in ...ff, so this is p - 1 */
	assert_int_equal(dhchap_dh_shared(a, bad, sizeof(bad), ka), -1);
	dhchap_dh_free(a);
	dhchap_dh_free(b);
	assert_null(dhchap_dh_new(DHCHAP_DH_NULL));
	assert_null(dhchap_dh_new(6));
	assert_int_equal(dhchap_dh_len(DHCHAP_DH_FFDHE8192), 1024);
	assert_int_equal(dhchap_dh_len(6), -1);
}

/* ---- messages ---- */

static void test_codec(void **state)
{
	uint8_t c[64], d[256], r[64], buf[AUTH_MSG_MAX];
	struct auth_msg out, msgs[7] = {
		{ .type = AUTH_TYPE_COMMON, .id = AUTH_ID_NEGOTIATE, .tid = 5,
		  .neg = { .has_dhchap = 1, .nhash = 2, .hash = { 1, 3 }, .ndh = 3, .dh = { 0, 1, 5 } } },
		{ .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_CHALLENGE, .tid = 6,
		  .chal = { .hl = 48, .hashid = 2, .dhgid = 1, .dhvlen = 256, .seqnum = 0x01020304,
			    .cval = c, .dhv = d } },
		{ .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_REPLY, .tid = 7,
		  .reply = { .hl = 64, .cvalid = 1, .dhvlen = 256, .seqnum = 9, .rval = r, .cval = c,
			     .dhv = d } },
		{ .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS1, .tid = 8,
		  .success1 = { .hl = 32, .rvalid = 1, .rval = r } },
		{ .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS2, .tid = 9 },
		{ .type = AUTH_TYPE_COMMON, .id = AUTH_ID_FAILURE1, .tid = 10,
		  .failure = { .rescode = 1, .rescode_exp = AUTH_FAIL_HASH_UNUSABLE } },
		{ .type = AUTH_TYPE_COMMON, .id = AUTH_ID_FAILURE2, .tid = 11,
		  .failure = { .rescode = 1, .rescode_exp = AUTH_FAIL_FAILED } },
	};
	static const size_t sizes[7] = { 72, 16 + 48 + 256, 16 + 128 + 256, 16 + 32, 16, 8, 8 };

	for (int i = 0; i < 64; i++)
		c[i] = (uint8_t)i, r[i] = (uint8_t)(~i);
	for (int i = 0; i < 256; i++)
		d[i] = (uint8_t)(i * 3);
	for (int i = 0; i < 7; i++) {
		size_t n = auth_msg_encode(&msgs[i], buf, sizeof(buf));
		assert_int_equal(n, sizes[i]);
		assert_int_equal(auth_msg_encode(&msgs[i], buf, n - 1), 0);
		assert_int_equal(auth_msg_encode(&msgs[i], buf, n), n);
		assert_int_equal(auth_msg_decode(buf, n, &out), 0);
		assert_int_equal(out.type, msgs[i].type);
		assert_int_equal(out.id, msgs[i].id);
		assert_int_equal(out.tid, msgs[i].tid);
		/* Every truncation is refused as an incorrect payload. */
		for (size_t t = 0; t < n; t++)
			assert_int_equal(auth_msg_decode(buf, t, &out), AUTH_FAIL_INCORRECT_PAYLOAD);
		/* Bytes past the message are ignored, as Linux does. */
		assert_int_equal(auth_msg_decode(buf, n + 16 <= sizeof(buf) ? n + 16 : n, &out), 0);
	}
	/* Field values survive. */
	auth_msg_encode(&msgs[2], buf, sizeof(buf));
	auth_msg_decode(buf, sizes[2], &out);
	assert_int_equal(out.reply.hl, 64);
	assert_int_equal(out.reply.cvalid, 1);
	assert_int_equal(out.reply.dhvlen, 256);
	assert_int_equal(out.reply.seqnum, 9);
	assert_memory_equal(out.reply.rval, r, 64);
	assert_memory_equal(out.reply.cval, c, 64);
	assert_memory_equal(out.reply.dhv, d, 256);
	auth_msg_encode(&msgs[0], buf, sizeof(buf));
	auth_msg_decode(buf, sizes[0], &out);
	assert_int_equal(out.neg.nhash, 2);
	assert_int_equal(out.neg.hash[1], 3);
	assert_int_equal(out.neg.ndh, 3);
	assert_int_equal(out.neg.dh[2], 5);
	/* Little-endian on the wire. */
	auth_msg_encode(&msgs[1], buf, sizeof(buf));
	assert_memory_equal(buf + 12, ((uint8_t[]){ 4, 3, 2, 1 }), 4);
	assert_int_equal(buf[4], 6);
	/* Unknown type / id; a negotiate with halen 31 or no descriptors. */
	buf[0] = 2;
	assert_int_equal(auth_msg_decode(buf, sizes[1], &out), AUTH_FAIL_INCORRECT_MESSAGE);
	buf[0] = AUTH_TYPE_DHCHAP;
	buf[1] = 0x05;
	assert_int_equal(auth_msg_decode(buf, sizes[1], &out), AUTH_FAIL_INCORRECT_MESSAGE);
	auth_msg_encode(&msgs[0], buf, sizeof(buf));
	buf[10] = 31;
	assert_int_equal(auth_msg_decode(buf, sizes[0], &out), AUTH_FAIL_INCORRECT_PAYLOAD);
	buf[10] = 2;
	buf[7] = 0;
	assert_int_equal(auth_msg_decode(buf, sizes[0], &out), AUTH_FAIL_INCORRECT_PAYLOAD);
	buf[7] = 2;   /* claims two descriptors, carries one */
	assert_int_equal(auth_msg_decode(buf, sizes[0], &out), AUTH_FAIL_INCORRECT_PAYLOAD);

	assert_true(auth_cmd_fields_valid(0xe9, 1, 1));
	assert_false(auth_cmd_fields_valid(0xea, 1, 1));
	assert_false(auth_cmd_fields_valid(0xe9, 0, 1));
	assert_false(auth_cmd_fields_valid(0xe9, 1, 2));
}

/* ---- full transactions ---- */

static void expect_success(struct pair *p, uint8_t hash, uint8_t dh)
{
	struct auth_host_result res;
	struct auth_session *s;

	p->hash_mask = (uint8_t)(1u << hash);
	p->dh_mask = (uint8_t)(1u << dh);
	s = new_session(p);
	assert_int_equal(auth_session_result(s), AUTH_IN_PROGRESS);
	assert_false(auth_session_authenticated(s));
	if (run_host(p, s, 0x1234, &res) != 0)
		fail_msg("hash %u dh %u bidi %d: failed, reason %u (by controller: %d)", hash, dh,
			 p->bidirectional, res.reason, res.by_controller);
	assert_true(res.ok);
	assert_int_equal(res.hash, hash);
	assert_int_equal(res.dhgroup, dh);
	assert_int_equal(auth_session_hash(s), hash);
	assert_int_equal(auth_session_dhgroup(s), dh);
	assert_int_equal(auth_session_result(s), AUTH_SUCCEEDED);
	assert_true(auth_session_authenticated(s));
	assert_int_equal(auth_session_failure(s), 0);
	auth_session_free(s);
}

static void test_exchange_all_hashes(void **state)
{
	struct pair p;

	pair_defaults(&p);
	for (int bidi = 0; bidi < 2; bidi++) {
		p.bidirectional = bidi;
		for (uint8_t hash = 1; hash <= 3; hash++) {
			expect_success(&p, hash, DHCHAP_DH_NULL);
			expect_success(&p, hash, DHCHAP_DH_FFDHE2048);
		}
	}
}

static void test_exchange_transforms(void **state)
{
	static const struct { uint8_t hash, len; } keys[] = {
		{ 0, 32 }, { 0, 48 }, { 0, 64 }, { 1, 32 }, { 2, 48 }, { 3, 64 }, { 1, 64 }, { 3, 32 },
	};
	struct pair p;

	pair_defaults(&p);
	p.bidirectional = true;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		p.hkey = p.host_hkey = mk_secret(keys[i].hash, keys[i].len, (uint8_t)(i + 1));
		p.ckey = p.host_ckey = mk_secret(keys[(i + 3) % 8].hash, keys[(i + 3) % 8].len,
						 (uint8_t)(i + 50));
		expect_success(&p, (uint8_t)(i % 3 + 1), DHCHAP_DH_NULL);
	}
}

static void test_exchange_big_groups(void **state)
{
	struct pair p;

	pair_defaults(&p);
	p.bidirectional = true;
	expect_success(&p, NVME_HASH_SHA384, DHCHAP_DH_FFDHE3072);
	expect_success(&p, NVME_HASH_SHA512, DHCHAP_DH_FFDHE8192);
}

static void test_negotiation_preference(void **state)
{
	static const uint8_t hashes[] = { 3, 9, 1 }, groups[] = { 7, 1, 0 };
	struct auth_host_result res;
	struct pair p;
	struct auth_session *s;

	/* No restriction: the host's first usable choice (unknown ids skipped). */
	pair_defaults(&p);
	p.hashes = hashes;
	p.nhash = 3;
	p.dhgroups = groups;
	p.ndh = 3;
	s = new_session(&p);
	assert_int_equal(run_host(&p, s, 1, &res), 0);
	assert_int_equal(res.hash, 3);
	assert_int_equal(res.dhgroup, 1);
	auth_session_free(s);
	/* Linux's offer with no restriction: SHA-256 and null. */
	pair_defaults(&p);
	s = new_session(&p);
	assert_int_equal(run_host(&p, s, 1, &res), 0);
	assert_int_equal(res.hash, 1);
	assert_int_equal(res.dhgroup, 0);
	auth_session_free(s);
}

static void expect_refusal(struct pair *p, bool by_controller, uint8_t reason)
{
	struct auth_host_result res;
	struct auth_session *s = new_session(p);

	assert_int_equal(run_host(p, s, 77, &res), -1);
	assert_false(res.ok);
	assert_int_equal(res.by_controller, by_controller);
	assert_int_equal(res.reason, reason);
	assert_int_equal(auth_session_result(s), AUTH_FAILED);
	assert_false(auth_session_authenticated(s));
	assert_int_equal(auth_session_failure(s), reason);
	auth_session_free(s);
}

static void test_refusals(void **state)
{
	static const uint8_t sha256[] = { 1 }, nullgrp[] = { 0 };
	struct pair p;

	/* Wrong host secret, with and without DH: AUTH_Failure1 "failed". */
	pair_defaults(&p);
	p.host_hkey.key[5] ^= 1;
	expect_refusal(&p, true, AUTH_FAIL_FAILED);
	p.dh_mask = 1u << DHCHAP_DH_FFDHE2048;
	expect_refusal(&p, true, AUTH_FAIL_FAILED);
	/* Same bytes, other transformation. */
	pair_defaults(&p);
	p.host_hkey.hash = 2;
	expect_refusal(&p, true, AUTH_FAIL_FAILED);

	/* The host expects another controller secret: it sends AUTH_Failure2. */
	pair_defaults(&p);
	p.bidirectional = true;
	p.host_ckey.key[0] ^= 0x80;
	expect_refusal(&p, false, AUTH_FAIL_FAILED);
	p.dh_mask = 1u << DHCHAP_DH_FFDHE2048;
	expect_refusal(&p, false, AUTH_FAIL_FAILED);

	/* The host asks for controller authentication, we have no secret for it. */
	pair_defaults(&p);
	p.bidirectional = true;
	p.ctrl_has_ckey = false;
	expect_refusal(&p, true, AUTH_FAIL_FAILED);

	/* Nothing in common. */
	pair_defaults(&p);
	p.hash_mask = 1u << NVME_HASH_SHA512;
	p.hashes = sha256;
	p.nhash = 1;
	expect_refusal(&p, true, AUTH_FAIL_HASH_UNUSABLE);
	pair_defaults(&p);
	p.dh_mask = 1u << DHCHAP_DH_FFDHE2048;
	p.dhgroups = nullgrp;
	p.ndh = 1;
	expect_refusal(&p, true, AUTH_FAIL_DHGROUP_UNUSABLE);
	pair_defaults(&p);
	p.nhash = 0;
	expect_refusal(&p, true, AUTH_FAIL_HASH_UNUSABLE);
}

/* Send raw bytes, return the reason of the AUTH_Failure1 that must follow. */
static uint8_t failure_after(struct auth_session *s, const void *msg, size_t len, uint16_t tid)
{
	uint8_t buf[AUTH_MSG_MAX];
	struct auth_msg m;
	ssize_t n;

	auth_session_send(s, msg, len);
	n = auth_session_receive(s, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(auth_msg_decode(buf, (size_t)n, &m), 0);
	assert_int_equal(m.type, AUTH_TYPE_COMMON);
	assert_int_equal(m.id, AUTH_ID_FAILURE1);
	assert_int_equal(m.tid, tid);
	assert_int_equal(m.failure.rescode, AUTH_RESCODE_FAILED);
	assert_int_equal(auth_session_result(s), AUTH_FAILED);
	assert_false(auth_session_authenticated(s));
	assert_int_equal(auth_session_failure(s), m.failure.rescode_exp);
	return m.failure.rescode_exp;
}

static size_t negotiate(uint8_t *buf, uint16_t tid)
{
	struct auth_msg m = { .type = AUTH_TYPE_COMMON, .id = AUTH_ID_NEGOTIATE, .tid = tid,
			      .neg = { .has_dhchap = 1, .nhash = 1, .hash = { 1 }, .ndh = 1, .dh = { 0 } } };

	return auth_msg_encode(&m, buf, AUTH_MSG_MAX);
}

/* Negotiate and fetch the challenge; returns it decoded (pointers into chal). */
static void start(struct auth_session *s, uint16_t tid, uint8_t *chal, struct auth_msg *m)
{
	uint8_t buf[AUTH_MSG_MAX];
	ssize_t n;

	auth_session_send(s, buf, negotiate(buf, tid));
	n = auth_session_receive(s, chal, AUTH_MSG_MAX);
	assert_true(n > 0);
	assert_int_equal(auth_msg_decode(chal, (size_t)n, m), 0);
	assert_int_equal(m->id, AUTH_ID_CHALLENGE);
	assert_int_equal(m->tid, tid);
}

static size_t reply(struct pair *p, const struct auth_msg *chal, uint16_t tid, uint8_t *buf)
{
	uint8_t r1[64];
	struct auth_msg m = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_REPLY, .tid = tid,
			      .reply = { .hl = chal->chal.hl, .rval = r1 } };

	assert_int_equal(dhchap_response(DHCHAP_HOST, chal->chal.hashid, &p->host_hkey,
					 chal->chal.cval, chal->chal.seqnum, tid, hostnqn, subnqn,
					 NULL, 0, r1), 0);
	return auth_msg_encode(&m, buf, AUTH_MSG_MAX);
}

static void test_malformed_and_out_of_order(void **state)
{
	uint8_t buf[AUTH_MSG_MAX], chal[AUTH_MSG_MAX];
	struct auth_msg c;
	struct pair p;
	struct auth_session *s;
	size_t n;

	pair_defaults(&p);
	s = new_session(&p);

	/* Out of order: a Reply, a Success2, a Receive before any Negotiate. */
	start(s, 3, chal, &c);
	n = reply(&p, &c, 3, buf);
	auth_session_free(s);
	s = new_session(&p);
	assert_int_equal(failure_after(s, buf, n, 0), AUTH_FAIL_INCORRECT_MESSAGE);
	struct auth_msg ok2 = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS2, .tid = 3 };
	assert_int_equal(failure_after(s, buf, auth_msg_encode(&ok2, buf, sizeof(buf)), 0),
			 AUTH_FAIL_INCORRECT_MESSAGE);
	auth_session_free(s);
	s = new_session(&p);
	assert_true(auth_session_receive(s, buf, sizeof(buf)) == 8);
	assert_int_equal(auth_session_failure(s), AUTH_FAIL_INCORRECT_MESSAGE);

	/* A Reply before the Challenge was fetched. */
	auth_session_send(s, buf, negotiate(buf, 4));
	assert_int_equal(failure_after(s, buf, reply(&p, &(struct auth_msg){ .chal = { .hl = 32, .hashid = 1, .cval = chal } }, 4, buf), 4),
			 AUTH_FAIL_INCORRECT_MESSAGE);

	/* Success2 where a Reply is due; Success2 after a one-way Success1. */
	start(s, 5, chal, &c);
	assert_int_equal(failure_after(s, buf, auth_msg_encode(&ok2, buf, sizeof(buf)), 5),
			 AUTH_FAIL_INCORRECT_MESSAGE);
	start(s, 6, chal, &c);
	auth_session_send(s, buf, reply(&p, &c, 6, buf));
	assert_true(auth_session_receive(s, buf, sizeof(buf)) > 0);
	assert_true(auth_session_authenticated(s));
	ok2.tid = 6;
	assert_int_equal(failure_after(s, buf, auth_msg_encode(&ok2, buf, sizeof(buf)), 6),
			 AUTH_FAIL_INCORRECT_MESSAGE);

	/* A second Reply after success. */
	start(s, 7, chal, &c);
	n = reply(&p, &c, 7, buf);
	auth_session_send(s, buf, n);
	assert_true(auth_session_receive(s, chal, sizeof(chal)) > 0);
	assert_true(auth_session_authenticated(s));
	assert_int_equal(failure_after(s, buf, n, 7), AUTH_FAIL_INCORRECT_MESSAGE);

	/* Host-to-controller messages the controller only sends. */
	start(s, 8, chal, &c);
	assert_int_equal(failure_after(s, chal, 16 + 32, 8), AUTH_FAIL_INCORRECT_MESSAGE);

	/* Malformed: wrong T_ID, wrong HL, DH value in a null-group Reply, truncation. */
	start(s, 9, chal, &c);
	n = reply(&p, &c, 10, buf);
	assert_int_equal(failure_after(s, buf, n, 9), AUTH_FAIL_INCORRECT_PAYLOAD);
	start(s, 11, chal, &c);
	n = reply(&p, &c, 11, buf);
	buf[6] = 48;
	assert_int_equal(failure_after(s, buf, n + 32, 11), AUTH_FAIL_INCORRECT_PAYLOAD);
	start(s, 12, chal, &c);
	n = reply(&p, &c, 12, buf);
	buf[10] = 1;   /* dhvlen = 1 */
	assert_int_equal(failure_after(s, buf, n + 1, 12), AUTH_FAIL_INCORRECT_PAYLOAD);
	start(s, 13, chal, &c);
	n = reply(&p, &c, 13, buf);
	assert_int_equal(failure_after(s, buf, n - 1, 13), AUTH_FAIL_INCORRECT_PAYLOAD);
	assert_int_equal(failure_after(s, buf, 3, 13), AUTH_FAIL_INCORRECT_PAYLOAD);
	/* Unknown message type. */
	buf[0] = 0x42;
	assert_int_equal(failure_after(s, buf, n, 13), AUTH_FAIL_INCORRECT_MESSAGE);

	/* Negotiate: truncated, SC_C set, no DH-HMAC-CHAP descriptor. */
	n = negotiate(buf, 14);
	assert_int_equal(failure_after(s, buf, n - 1, 14), AUTH_FAIL_INCORRECT_PAYLOAD);
	buf[6] = 1;
	assert_int_equal(failure_after(s, buf, n, 14), AUTH_FAIL_CONCAT_MISMATCH);
	buf[6] = 0;
	buf[8] = 2;
	assert_int_equal(failure_after(s, buf, n, 14), AUTH_FAIL_NOT_USABLE);

	/* Failure2 with nothing in progress is itself out of order. */
	struct auth_msg f2 = { .type = AUTH_TYPE_COMMON, .id = AUTH_ID_FAILURE2, .tid = 14,
			       .failure = { 1, AUTH_FAIL_FAILED } };
	assert_int_equal(failure_after(s, buf, auth_msg_encode(&f2, buf, sizeof(buf)), 14),
			 AUTH_FAIL_INCORRECT_MESSAGE);
	/* Failure2 after the Challenge: the session fails with the host's reason, silently. */
	start(s, 15, chal, &c);
	f2.tid = 15;
	f2.failure.rescode_exp = AUTH_FAIL_DHGROUP_UNUSABLE;
	auth_session_send(s, buf, auth_msg_encode(&f2, buf, sizeof(buf)));
	assert_int_equal(auth_session_result(s), AUTH_FAILED);
	assert_int_equal(auth_session_failure(s), AUTH_FAIL_DHGROUP_UNUSABLE);

	/* Too small an allocation length leaves the message pending. */
	start(s, 16, chal, &c);
	auth_session_send(s, buf, reply(&p, &c, 16, buf));
	assert_int_equal(auth_session_receive(s, buf, 15), -1);
	assert_int_equal(auth_session_receive(s, buf, 16), 16);
	assert_true(auth_session_authenticated(s));
	auth_session_free(s);
}

/* A session a bidirectional transaction (TID 1) authenticated, with p's
 * defaults. */
static struct auth_session *authenticated_session(struct pair *p, struct auth_host_result *res)
{
	struct auth_session *s;

	pair_defaults(p);
	p->bidirectional = true;
	s = new_session(p);
	assert_int_equal(run_host(p, s, 1, res), 0);
	return s;
}

static void test_reauthentication(void **state)
{
	struct auth_host_result res;
	uint8_t chal[AUTH_MSG_MAX];
	struct auth_msg c;
	struct pair p;
	struct auth_session *s = authenticated_session(&p, &res);

	/* Again, with a new transaction: still authenticated throughout. */
	start(s, 2, chal, &c);
	assert_true(auth_session_authenticated(s));
	assert_int_equal(auth_session_result(s), AUTH_IN_PROGRESS);
	assert_int_equal(run_host(&p, s, 3, &res), 0);
	assert_true(auth_session_authenticated(s));
	/* A failed re-authentication ends it ... */
	p.host_hkey.key[0] ^= 1;
	assert_int_equal(run_host(&p, s, 4, &res), -1);
	assert_false(auth_session_authenticated(s));
	/* ... and a later correct one restores it. */
	p.host_hkey.key[0] ^= 1;
	assert_int_equal(run_host(&p, s, 5, &res), 0);
	assert_true(auth_session_authenticated(s));
	auth_session_free(s);

	struct auth_config bad = { .hostnqn = hostnqn, .subnqn = subnqn };
	assert_null(auth_session_new(&bad));
	struct nvme_secret tls = { .kind = NVME_SECRET_TLS_PSK, .hash = 1, .len = 32 };
	bad.host_secret = &tls;
	assert_null(auth_session_new(&bad));
}

/* New keys, hash and group between transactions (the keys changed on the
 * target while the host stays connected): the next transaction uses them. */
static void test_new_keys(void **state)
{
	struct auth_host_result res;
	struct pair p;
	struct auth_session *s = authenticated_session(&p, &res);

	assert_int_equal(res.hash, 1); /* the host's first choices */
	assert_int_equal(res.dhgroup, DHCHAP_DH_NULL);

	struct nvme_secret hk = mk_secret(3, 64, 41), ck = mk_secret(0, 32, 42);
	struct auth_config cfg = {
		.host_secret = &hk, .ctrl_secret = &ck,
		.hash_mask = 1u << 3, .dhgroup_mask = 1u << DHCHAP_DH_FFDHE2048,
	};
	assert_int_equal(auth_session_set_keys(s, &cfg), 0);
	/* the host still holds the old keys: refused, by the controller */
	assert_int_equal(run_host(&p, s, 2, &res), -1);
	assert_true(res.by_controller);
	p.host_hkey = hk;
	p.host_ckey = ck;
	assert_int_equal(run_host(&p, s, 3, &res), 0);
	assert_int_equal(res.hash, 3);
	assert_int_equal(res.dhgroup, DHCHAP_DH_FFDHE2048);
	/* without a controller key, a host asking for controller authentication
	 * is refused; invalid keys change nothing */
	cfg.ctrl_secret = NULL;
	assert_int_equal(auth_session_set_keys(s, &cfg), 0);
	assert_int_equal(run_host(&p, s, 4, &res), -1);
	struct nvme_secret tls = { .kind = NVME_SECRET_TLS_PSK, .hash = 1, .len = 32 };
	cfg.host_secret = &tls;
	assert_int_equal(auth_session_set_keys(s, &cfg), -1);
	p.bidirectional = false;
	assert_int_equal(run_host(&p, s, 5, &res), 0);
	auth_session_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_formula),
		cmocka_unit_test(test_dh),
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_exchange_all_hashes),
		cmocka_unit_test(test_exchange_transforms),
		cmocka_unit_test(test_exchange_big_groups),
		cmocka_unit_test(test_negotiation_preference),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_malformed_and_out_of_order),
		cmocka_unit_test(test_reauthentication),
		cmocka_unit_test(test_new_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
