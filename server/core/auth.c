/*
 * DH-HMAC-CHAP, controller side, one queue (include/auth.h). The message
 * sequence and the checks follow NVMe Base 2.0, 8.13 and what Linux hosts
 * send; the cryptography is common/dhchap.c.
 *
 * Every Send either advances the transaction and prepares the message the
 * next Receive returns, or fails it: the prepared message becomes
 * AUTH_Failure1 with the reason. Secrets and per-transaction values (C1,
 * the DH key pair, the session key) are wiped as soon as they are not
 * needed and when the session is freed.
 */
#include "auth.h"
#include "auth_msg.h"
#include "dhchap.h"
#include "nvme_hmac.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

enum expect { EXPECT_NOTHING, EXPECT_REPLY, EXPECT_SUCCESS2 };

struct auth_session {
	char *hostnqn, *subnqn;
	struct nvme_secret *host_secret, *ctrl_secret;
	uint8_t hash_mask, dh_mask;

	enum auth_result result;
	bool authenticated;
	uint8_t failure;

	/* The transaction in progress. */
	enum expect expect;        /* the Send accepted next (besides Negotiate) */
	enum expect after_receive; /* becomes `expect` once out[] was fetched */
	uint16_t tid;
	uint8_t hash, dhgroup;
	uint32_t s1;
	uint8_t c1[NVME_HASH_MAX_LEN];
	struct dhchap_dh *dh;
	size_t out_len;            /* 0: no message pending for Receive */
	uint8_t out[AUTH_MSG_MAX];
};

static void wipe_transaction(struct auth_session *s)
{
	dhchap_dh_free(s->dh);
	s->dh = NULL;
	OPENSSL_cleanse(s->c1, sizeof(s->c1));
	OPENSSL_cleanse(s->out, sizeof(s->out));
	s->out_len = 0;
	s->expect = s->after_receive = EXPECT_NOTHING;
}

/* Fail the transaction: the next Receive returns AUTH_Failure1(reason). */
static void fail(struct auth_session *s, uint8_t reason)
{
	struct auth_msg m = {
		.type = AUTH_TYPE_COMMON, .id = AUTH_ID_FAILURE1, .tid = s->tid,
		.failure = { .rescode = AUTH_RESCODE_FAILED, .rescode_exp = reason },
	};

	wipe_transaction(s);
	s->result = AUTH_FAILED;
	s->authenticated = false;
	s->failure = reason;
	s->out_len = auth_msg_encode(&m, s->out, sizeof(s->out));
}

static bool allowed(uint8_t mask, uint8_t id)
{
	return id < 8 && (mask == 0 || (mask & (1u << id)));
}

static void on_negotiate(struct auth_session *s, const struct auth_msg *m)
{
	uint8_t pub[DHCHAP_DH_MAX_LEN];
	struct auth_msg c = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_CHALLENGE };
	int dhlen, i;

	wipe_transaction(s);
	s->tid = m->tid;
	s->result = AUTH_IN_PROGRESS;
	s->failure = 0;
	s->hash = 0;
	s->dhgroup = 0;
	if (m->neg.sc_c)
		return fail(s, AUTH_FAIL_CONCAT_MISMATCH);
	if (!m->neg.has_dhchap)
		return fail(s, AUTH_FAIL_NOT_USABLE);
	/* The host lists in its order of preference; take the first we allow. */
	for (i = 0; i < m->neg.nhash; i++)
		if (nvme_hash_len(m->neg.hash[i]) && allowed(s->hash_mask, m->neg.hash[i]))
			break;
	if (i == m->neg.nhash)
		return fail(s, AUTH_FAIL_HASH_UNUSABLE);
	s->hash = m->neg.hash[i];
	for (i = 0; i < m->neg.ndh; i++)
		if (dhchap_dh_len(m->neg.dh[i]) >= 0 && allowed(s->dh_mask, m->neg.dh[i]))
			break;
	if (i == m->neg.ndh)
		return fail(s, AUTH_FAIL_DHGROUP_UNUSABLE);
	s->dhgroup = m->neg.dh[i];
	dhlen = dhchap_dh_len(s->dhgroup);

	c.tid = s->tid;
	c.chal.hl = (uint8_t)nvme_hash_len(s->hash);
	c.chal.hashid = s->hash;
	c.chal.dhgid = s->dhgroup;
	c.chal.dhvlen = (uint16_t)dhlen;
	do {
		if (RAND_bytes((unsigned char *)&s->s1, sizeof(s->s1)) != 1)
			return fail(s, AUTH_FAIL_FAILED);
	} while (s->s1 == 0);   /* S1 = 0 is not a sequence number */
	c.chal.seqnum = s->s1;
	if (RAND_bytes(s->c1, c.chal.hl) != 1)
		return fail(s, AUTH_FAIL_FAILED);
	c.chal.cval = s->c1;
	if (dhlen) {
		s->dh = dhchap_dh_new(s->dhgroup);
		if (!s->dh || dhchap_dh_public(s->dh, pub, (size_t)dhlen) < 0)
			return fail(s, AUTH_FAIL_DHGROUP_UNUSABLE);
		c.chal.dhv = pub;
	}
	s->out_len = auth_msg_encode(&c, s->out, sizeof(s->out));
	s->after_receive = EXPECT_REPLY;
}

static void on_reply(struct auth_session *s, const struct auth_msg *m)
{
	uint8_t skey[DHCHAP_DH_MAX_LEN], r1[NVME_HASH_MAX_LEN], r2[NVME_HASH_MAX_LEN];
	struct auth_msg ok = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS1, .tid = s->tid };
	size_t hl = nvme_hash_len(s->hash);
	int dhlen = dhchap_dh_len(s->dhgroup);
	bool bidirectional;
	uint8_t reason = 0;

	if (m->reply.hl != hl || m->reply.dhvlen != dhlen) {
		reason = AUTH_FAIL_INCORRECT_PAYLOAD;
		goto out;
	}
	if (dhlen && dhchap_dh_shared(s->dh, m->reply.dhv, (size_t)dhlen, skey) < 0) {
		reason = AUTH_FAIL_DHGROUP_UNUSABLE;
		goto out;
	}
	if (dhchap_response(DHCHAP_HOST, s->hash, s->host_secret, s->c1, s->s1, s->tid,
			    s->hostnqn, s->subnqn, skey, (size_t)dhlen, r1) < 0 ||
	    CRYPTO_memcmp(r1, m->reply.rval, hl) != 0) {
		reason = AUTH_FAIL_FAILED;
		goto out;
	}
	/*
	 * A challenge with S2 = 0 only seeds a generated PSK for secure channel
	 * concatenation (Base 2.2, 8.3.4.5.4), which Negotiate already refused.
	 */
	bidirectional = m->reply.cvalid && m->reply.seqnum != 0;
	if (bidirectional) {
		if (!s->ctrl_secret ||
		    dhchap_response(DHCHAP_CTRL, s->hash, s->ctrl_secret, m->reply.cval,
				    m->reply.seqnum, s->tid, s->hostnqn, s->subnqn, skey,
				    (size_t)dhlen, r2) < 0) {
			reason = AUTH_FAIL_FAILED;
			goto out;
		}
		ok.success1.rvalid = 1;
		ok.success1.rval = r2;
	}
	ok.success1.hl = (uint8_t)hl;
	wipe_transaction(s);
	s->out_len = auth_msg_encode(&ok, s->out, sizeof(s->out));
	if (bidirectional) {
		s->after_receive = EXPECT_SUCCESS2;
	} else {
		s->result = AUTH_SUCCEEDED;
		s->authenticated = true;
	}
out:
	OPENSSL_cleanse(skey, sizeof(skey));
	OPENSSL_cleanse(r1, sizeof(r1));
	OPENSSL_cleanse(r2, sizeof(r2));
	if (reason)
		fail(s, reason);
}

void auth_session_send(struct auth_session *s, const void *buf, size_t len)
{
	struct auth_msg m;
	int rc = auth_msg_decode(buf, len, &m);
	bool negotiate = len >= sizeof(struct auth_hdr) && m.type == AUTH_TYPE_COMMON &&
			 m.id == AUTH_ID_NEGOTIATE;

	if (rc) {
		if (negotiate)   /* a broken Negotiate starts (and fails) its transaction */
			s->tid = m.tid;
		return fail(s, (uint8_t)rc);
	}
	if (negotiate)
		return on_negotiate(s, &m);
	if (m.type == AUTH_TYPE_COMMON && m.id == AUTH_ID_FAILURE2) {
		/* The host refuses us (our Challenge or R2): valid mid-transaction only. */
		if (s->expect == EXPECT_NOTHING && s->after_receive == EXPECT_NOTHING)
			return fail(s, AUTH_FAIL_INCORRECT_MESSAGE);
		if (m.tid != s->tid)
			return fail(s, AUTH_FAIL_INCORRECT_PAYLOAD);
		fail(s, m.failure.rescode_exp ? m.failure.rescode_exp : AUTH_FAIL_FAILED);
		/* Nothing goes back for a Failure2. */
		OPENSSL_cleanse(s->out, sizeof(s->out));
		s->out_len = 0;
		return;
	}
	/* Anything else must be the one message expected, after its predecessor was fetched. */
	if (s->out_len || !((m.id == AUTH_ID_REPLY && s->expect == EXPECT_REPLY) ||
			    (m.id == AUTH_ID_SUCCESS2 && s->expect == EXPECT_SUCCESS2)) ||
	    m.type != AUTH_TYPE_DHCHAP)
		return fail(s, AUTH_FAIL_INCORRECT_MESSAGE);
	if (m.tid != s->tid)
		return fail(s, AUTH_FAIL_INCORRECT_PAYLOAD);
	if (m.id == AUTH_ID_REPLY)
		return on_reply(s, &m);
	/* Success2: the host accepted our R2. */
	wipe_transaction(s);
	s->result = AUTH_SUCCEEDED;
	s->authenticated = true;
}

ssize_t auth_session_receive(struct auth_session *s, void *buf, size_t al)
{
	size_t n;

	if (!s->out_len)
		fail(s, AUTH_FAIL_INCORRECT_MESSAGE);   /* nothing was asked for */
	n = s->out_len;
	if (al < n)
		return -1;
	memcpy(buf, s->out, n);
	OPENSSL_cleanse(s->out, n);
	s->out_len = 0;
	s->expect = s->after_receive;
	s->after_receive = EXPECT_NOTHING;
	return (ssize_t)n;
}

struct auth_session *auth_session_new(const struct auth_config *cfg)
{
	struct auth_session *s;

	if (!cfg->hostnqn || !cfg->subnqn || !cfg->host_secret ||
	    cfg->host_secret->kind != NVME_SECRET_DHCHAP ||
	    (cfg->ctrl_secret && cfg->ctrl_secret->kind != NVME_SECRET_DHCHAP))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hostnqn = strdup(cfg->hostnqn);
	s->subnqn = strdup(cfg->subnqn);
	s->host_secret = nvme_secret_dup(cfg->host_secret);
	if (cfg->ctrl_secret)
		s->ctrl_secret = nvme_secret_dup(cfg->ctrl_secret);
	s->hash_mask = cfg->hash_mask;
	s->dh_mask = cfg->dhgroup_mask;
	if (!s->hostnqn || !s->subnqn || !s->host_secret ||
	    (cfg->ctrl_secret && !s->ctrl_secret)) {
		auth_session_free(s);
		return NULL;
	}
	return s;
}

int auth_session_set_keys(struct auth_session *s, const struct auth_config *cfg)
{
	struct nvme_secret *host, *ctrl = NULL;

	if (!cfg->host_secret || cfg->host_secret->kind != NVME_SECRET_DHCHAP ||
	    (cfg->ctrl_secret && cfg->ctrl_secret->kind != NVME_SECRET_DHCHAP))
		return -1;
	host = nvme_secret_dup(cfg->host_secret);
	if (cfg->ctrl_secret)
		ctrl = nvme_secret_dup(cfg->ctrl_secret);
	if (!host || (cfg->ctrl_secret && !ctrl)) {
		nvme_secret_free(host);
		nvme_secret_free(ctrl);
		return -1;
	}
	nvme_secret_free(s->host_secret);
	nvme_secret_free(s->ctrl_secret);
	s->host_secret = host;
	s->ctrl_secret = ctrl;
	s->hash_mask = cfg->hash_mask;
	s->dh_mask = cfg->dhgroup_mask;
	return 0;
}

void auth_session_free(struct auth_session *s)
{
	if (!s)
		return;
	wipe_transaction(s);
	nvme_secret_free(s->host_secret);
	nvme_secret_free(s->ctrl_secret);
	free(s->hostnqn);
	free(s->subnqn);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

enum auth_result auth_session_result(const struct auth_session *s) { return s->result; }
bool auth_session_authenticated(const struct auth_session *s) { return s->authenticated; }
bool auth_session_busy(const struct auth_session *s)
{
	return s->out_len || s->expect != EXPECT_NOTHING || s->after_receive != EXPECT_NOTHING;
}
uint8_t auth_session_failure(const struct auth_session *s) { return s->failure; }
uint8_t auth_session_hash(const struct auth_session *s) { return s->hash; }
uint8_t auth_session_dhgroup(const struct auth_session *s) { return s->dhgroup; }

bool auth_cmd_fields_valid(uint8_t secp, uint8_t spsp0, uint8_t spsp1)
{
	return secp == AUTH_SECP_NVME && spsp0 == AUTH_SPSP0 && spsp1 == AUTH_SPSP1;
}
