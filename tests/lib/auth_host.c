/*
 * Test host for DH-HMAC-CHAP (auth_host.h). It checks what a careful host
 * checks of the controller's messages, and answers a bad Challenge or a
 * wrong R2 with AUTH_Failure2 as Linux does.
 */
#include "auth_host.h"
#include "auth_msg.h"
#include "dhchap.h"
#include "nvme_hmac.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

const uint8_t auth_host_all_hashes[3] = { NVME_HASH_SHA256, NVME_HASH_SHA384, NVME_HASH_SHA512 };
const uint8_t auth_host_all_dhgroups[6] = {
	DHCHAP_DH_NULL, DHCHAP_DH_FFDHE2048, DHCHAP_DH_FFDHE3072,
	DHCHAP_DH_FFDHE4096, DHCHAP_DH_FFDHE6144, DHCHAP_DH_FFDHE8192,
};

struct run {
	const struct auth_host_config *cfg;
	const struct auth_host_io *io;
	struct auth_host_result *res;
	uint8_t buf[AUTH_MSG_MAX];
};

static int put(struct run *r, const struct auth_msg *m)
{
	size_t n = auth_msg_encode(m, r->buf, sizeof(r->buf));

	return n ? r->io->send(r->io->arg, r->buf, n) : -1;
}

static int host_fails(struct run *r, uint8_t reason)
{
	struct auth_msg f = {
		.type = AUTH_TYPE_COMMON, .id = AUTH_ID_FAILURE2, .tid = r->cfg->tid,
		.failure = { .rescode = AUTH_RESCODE_FAILED, .rescode_exp = reason },
	};

	put(r, &f);
	r->res->reason = reason;
	return -1;
}

/* Fetch the next message; an AUTH_Failure1 ends the run. */
static int get(struct run *r, uint8_t want_id, struct auth_msg *m)
{
	ssize_t n = r->io->receive(r->io->arg, r->buf, sizeof(r->buf));

	if (n < 0 || auth_msg_decode(r->buf, (size_t)n, m) != 0) {
		r->res->reason = AUTH_FAIL_INCORRECT_PAYLOAD;
		return -1;
	}
	if (m->type == AUTH_TYPE_COMMON && m->id == AUTH_ID_FAILURE1) {
		r->res->by_controller = true;
		r->res->reason = m->failure.rescode_exp;
		return -1;
	}
	if (m->type != AUTH_TYPE_DHCHAP || m->id != want_id)
		return host_fails(r, AUTH_FAIL_INCORRECT_MESSAGE);
	if (m->tid != r->cfg->tid)
		return host_fails(r, AUTH_FAIL_INCORRECT_PAYLOAD);
	return 0;
}

static bool offered(const uint8_t *list, uint8_t n, uint8_t id)
{
	return memchr(list, id, n) != NULL;
}

int auth_host_authenticate(const struct auth_host_config *cfg, const struct auth_host_io *io,
			   struct auth_host_result *res)
{
	struct run r = { .cfg = cfg, .io = io, .res = res };
	struct auth_msg m, neg = { .type = AUTH_TYPE_COMMON, .id = AUTH_ID_NEGOTIATE,
				   .tid = cfg->tid };
	struct auth_msg rep = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_REPLY, .tid = cfg->tid };
	struct auth_msg ok2 = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS2, .tid = cfg->tid };
	uint8_t pub[DHCHAP_DH_MAX_LEN], skey[DHCHAP_DH_MAX_LEN];
	uint8_t r1[NVME_HASH_MAX_LEN], r2[NVME_HASH_MAX_LEN], c2[NVME_HASH_MAX_LEN];
	struct dhchap_dh *dh = NULL;
	uint32_t s2 = 0;
	size_t hl;
	int dhlen, rc = -1;

	memset(res, 0, sizeof(*res));
	neg.neg.has_dhchap = 1;
	neg.neg.nhash = cfg->nhash;
	memcpy(neg.neg.hash, cfg->hashes, cfg->nhash);
	neg.neg.ndh = cfg->ndh;
	memcpy(neg.neg.dh, cfg->dhgroups, cfg->ndh);
	if (put(&r, &neg) < 0 || get(&r, AUTH_ID_CHALLENGE, &m) < 0)
		goto out;

	/* The controller must pick from what we offered, with consistent sizes. */
	res->hash = m.chal.hashid;
	res->dhgroup = m.chal.dhgid;
	hl = nvme_hash_len(m.chal.hashid);
	if (!offered(cfg->hashes, cfg->nhash, m.chal.hashid) || m.chal.hl != hl) {
		host_fails(&r, AUTH_FAIL_HASH_UNUSABLE);
		goto out;
	}
	dhlen = dhchap_dh_len(m.chal.dhgid);
	if (!offered(cfg->dhgroups, cfg->ndh, m.chal.dhgid) || dhlen < 0) {
		host_fails(&r, AUTH_FAIL_DHGROUP_UNUSABLE);
		goto out;
	}
	if (m.chal.dhvlen != dhlen) {
		host_fails(&r, AUTH_FAIL_INCORRECT_PAYLOAD);
		goto out;
	}
	if (dhlen) {
		dh = dhchap_dh_new(m.chal.dhgid);
		if (!dh || dhchap_dh_public(dh, pub, (size_t)dhlen) < 0 ||
		    dhchap_dh_shared(dh, m.chal.dhv, (size_t)dhlen, skey) < 0) {
			host_fails(&r, AUTH_FAIL_DHGROUP_UNUSABLE);
			goto out;
		}
	}
	if (dhchap_response(DHCHAP_HOST, m.chal.hashid, cfg->host_secret, m.chal.cval,
			    m.chal.seqnum, cfg->tid, cfg->hostnqn, cfg->subnqn, skey,
			    (size_t)dhlen, r1) < 0) {
		host_fails(&r, AUTH_FAIL_FAILED);
		goto out;
	}
	rep.reply.hl = (uint8_t)hl;
	rep.reply.rval = r1;
	rep.reply.dhvlen = (uint16_t)dhlen;
	rep.reply.dhv = dhlen ? pub : NULL;
	if (cfg->ctrl_secret) {
		while (s2 == 0)
			RAND_bytes((unsigned char *)&s2, sizeof(s2));
		RAND_bytes(c2, (int)hl);
		rep.reply.cvalid = 1;
		rep.reply.seqnum = s2;
		rep.reply.cval = c2;
		if (dhchap_response(DHCHAP_CTRL, m.chal.hashid, cfg->ctrl_secret, c2, s2, cfg->tid,
				    cfg->hostnqn, cfg->subnqn, skey, (size_t)dhlen, r2) < 0) {
			host_fails(&r, AUTH_FAIL_FAILED);
			goto out;
		}
	}
	if (put(&r, &rep) < 0 || get(&r, AUTH_ID_SUCCESS1, &m) < 0)
		goto out;
	if (cfg->ctrl_secret) {
		if (!m.success1.rvalid || m.success1.hl != hl ||
		    CRYPTO_memcmp(m.success1.rval, r2, hl) != 0) {
			host_fails(&r, AUTH_FAIL_FAILED);
			goto out;
		}
		if (put(&r, &ok2) < 0)
			goto out;
	}
	res->ok = true;
	rc = 0;
out:
	dhchap_dh_free(dh);
	OPENSSL_cleanse(skey, sizeof(skey));
	OPENSSL_cleanse(r2, sizeof(r2));
	return rc;
}
