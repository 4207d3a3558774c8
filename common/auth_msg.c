/*
 * In-band authentication messages: decode and encode (include/auth_msg.h).
 * Decoding trusts nothing: every variable part is checked against the
 * received length before a pointer to it is handed out.
 */
#include "auth_msg.h"

#include <endian.h>
#include <string.h>

static int decode_negotiate(const uint8_t *b, size_t len, struct auth_msg *m)
{
	const struct auth_negotiate_hdr *h = (const void *)b;
	size_t need;

	if (len < sizeof(*h))
		return AUTH_FAIL_INCORRECT_PAYLOAD;
	m->neg.sc_c = h->sc_c;
	if (h->napd == 0)
		return AUTH_FAIL_INCORRECT_PAYLOAD;
	need = sizeof(*h) + (size_t)h->napd * sizeof(struct auth_protocol_desc);
	if (len < need)
		return AUTH_FAIL_INCORRECT_PAYLOAD;
	for (unsigned i = 0; i < h->napd; i++) {
		struct auth_protocol_desc d;

		memcpy(&d, b + sizeof(*h) + i * sizeof(d), sizeof(d));
		if (d.authid != AUTH_PROTOCOL_DHCHAP)
			continue;   /* a protocol we do not speak: skip it */
		if (m->neg.has_dhchap || d.halen > AUTH_NEG_MAX_IDS || d.dhlen > AUTH_NEG_MAX_IDS)
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		m->neg.has_dhchap = 1;
		m->neg.nhash = d.halen;
		memcpy(m->neg.hash, d.idlist, d.halen);
		m->neg.ndh = d.dhlen;
		memcpy(m->neg.dh, d.idlist + AUTH_NEG_MAX_IDS, d.dhlen);
	}
	return 0;
}

int auth_msg_decode(const void *buf, size_t len, struct auth_msg *m)
{
	const uint8_t *b = buf;
	struct auth_hdr h;

	memset(m, 0, sizeof(*m));
	if (len < sizeof(h))
		return AUTH_FAIL_INCORRECT_PAYLOAD;
	memcpy(&h, b, sizeof(h));
	m->type = h.auth_type;
	m->id = h.auth_id;
	m->tid = le16toh(h.t_id);

	if (h.auth_type == AUTH_TYPE_COMMON) {
		switch (h.auth_id) {
		case AUTH_ID_NEGOTIATE:
			return decode_negotiate(b, len, m);
		case AUTH_ID_FAILURE1:
		case AUTH_ID_FAILURE2: {
			struct auth_failure f;
			if (len < sizeof(f))
				return AUTH_FAIL_INCORRECT_PAYLOAD;
			memcpy(&f, b, sizeof(f));
			m->failure.rescode = f.rescode;
			m->failure.rescode_exp = f.rescode_exp;
			return 0;
		}
		}
		return AUTH_FAIL_INCORRECT_MESSAGE;
	}
	if (h.auth_type != AUTH_TYPE_DHCHAP)
		return AUTH_FAIL_INCORRECT_MESSAGE;

	switch (h.auth_id) {
	case AUTH_ID_CHALLENGE: {
		struct auth_challenge_hdr c;
		if (len < sizeof(c))
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		memcpy(&c, b, sizeof(c));
		m->chal.hl = c.hl;
		m->chal.hashid = c.hashid;
		m->chal.dhgid = c.dhgid;
		m->chal.dhvlen = le16toh(c.dhvlen);
		m->chal.seqnum = le32toh(c.seqnum);
		if (len < sizeof(c) + (size_t)c.hl + m->chal.dhvlen)
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		m->chal.cval = b + sizeof(c);
		m->chal.dhv = m->chal.dhvlen ? b + sizeof(c) + c.hl : NULL;
		return 0;
	}
	case AUTH_ID_REPLY: {
		struct auth_reply_hdr r;
		if (len < sizeof(r))
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		memcpy(&r, b, sizeof(r));
		m->reply.hl = r.hl;
		m->reply.cvalid = r.cvalid;
		m->reply.dhvlen = le16toh(r.dhvlen);
		m->reply.seqnum = le32toh(r.seqnum);
		if (len < sizeof(r) + 2 * (size_t)r.hl + m->reply.dhvlen)
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		m->reply.rval = b + sizeof(r);
		m->reply.cval = b + sizeof(r) + r.hl;
		m->reply.dhv = m->reply.dhvlen ? b + sizeof(r) + 2 * (size_t)r.hl : NULL;
		return 0;
	}
	case AUTH_ID_SUCCESS1: {
		struct auth_success1_hdr s;
		if (len < sizeof(s))
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		memcpy(&s, b, sizeof(s));
		m->success1.hl = s.hl;
		m->success1.rvalid = s.rvalid;
		if (s.rvalid) {
			if (len < sizeof(s) + (size_t)s.hl)
				return AUTH_FAIL_INCORRECT_PAYLOAD;
			m->success1.rval = b + sizeof(s);
		}
		return 0;
	}
	case AUTH_ID_SUCCESS2:
		if (len < sizeof(struct auth_success2))
			return AUTH_FAIL_INCORRECT_PAYLOAD;
		return 0;
	}
	return AUTH_FAIL_INCORRECT_MESSAGE;
}

size_t auth_msg_size(const struct auth_msg *m)
{
	if (m->type == AUTH_TYPE_COMMON) {
		switch (m->id) {
		case AUTH_ID_NEGOTIATE:
			return sizeof(struct auth_negotiate_hdr) + sizeof(struct auth_protocol_desc);
		case AUTH_ID_FAILURE1:
		case AUTH_ID_FAILURE2:
			return sizeof(struct auth_failure);
		}
		return 0;
	}
	if (m->type != AUTH_TYPE_DHCHAP)
		return 0;
	switch (m->id) {
	case AUTH_ID_CHALLENGE:
		return sizeof(struct auth_challenge_hdr) + m->chal.hl + m->chal.dhvlen;
	case AUTH_ID_REPLY:
		return sizeof(struct auth_reply_hdr) + 2 * (size_t)m->reply.hl + m->reply.dhvlen;
	case AUTH_ID_SUCCESS1:
		return sizeof(struct auth_success1_hdr) + (m->success1.rvalid ? m->success1.hl : 0);
	case AUTH_ID_SUCCESS2:
		return sizeof(struct auth_success2);
	}
	return 0;
}

static void put_or_zero(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (src)
		memcpy(dst, src, len);
	else
		memset(dst, 0, len);
}

size_t auth_msg_encode(const struct auth_msg *m, void *buf, size_t cap)
{
	size_t size = auth_msg_size(m);
	uint8_t *b = buf;
	struct auth_hdr h = { .auth_type = m->type, .auth_id = m->id, .t_id = htole16(m->tid) };

	if (size == 0 || size > cap)
		return 0;
	memset(b, 0, size);
	memcpy(b, &h, sizeof(h));
	if (m->type == AUTH_TYPE_COMMON && m->id == AUTH_ID_NEGOTIATE) {
		struct auth_negotiate_hdr *n = (void *)b;
		struct auth_protocol_desc d = { .authid = AUTH_PROTOCOL_DHCHAP };

		if (m->neg.nhash > AUTH_NEG_MAX_IDS || m->neg.ndh > AUTH_NEG_MAX_IDS)
			return 0;
		n->sc_c = m->neg.sc_c;
		n->napd = 1;
		d.halen = m->neg.nhash;
		d.dhlen = m->neg.ndh;
		memcpy(d.idlist, m->neg.hash, m->neg.nhash);
		memcpy(d.idlist + AUTH_NEG_MAX_IDS, m->neg.dh, m->neg.ndh);
		memcpy(b + sizeof(*n), &d, sizeof(d));
	} else if (m->type == AUTH_TYPE_COMMON) {
		struct auth_failure *f = (void *)b;

		f->rescode = m->failure.rescode;
		f->rescode_exp = m->failure.rescode_exp;
	} else if (m->id == AUTH_ID_CHALLENGE) {
		struct auth_challenge_hdr *c = (void *)b;

		c->hl = m->chal.hl;
		c->hashid = m->chal.hashid;
		c->dhgid = m->chal.dhgid;
		c->dhvlen = htole16(m->chal.dhvlen);
		c->seqnum = htole32(m->chal.seqnum);
		put_or_zero(b + sizeof(*c), m->chal.cval, m->chal.hl);
		put_or_zero(b + sizeof(*c) + m->chal.hl, m->chal.dhv, m->chal.dhvlen);
	} else if (m->id == AUTH_ID_REPLY) {
		struct auth_reply_hdr *r = (void *)b;

		r->hl = m->reply.hl;
		r->cvalid = m->reply.cvalid;
		r->dhvlen = htole16(m->reply.dhvlen);
		r->seqnum = htole32(m->reply.seqnum);
		put_or_zero(b + sizeof(*r), m->reply.rval, m->reply.hl);
		put_or_zero(b + sizeof(*r) + m->reply.hl, m->reply.cval, m->reply.hl);
		put_or_zero(b + sizeof(*r) + 2 * (size_t)m->reply.hl, m->reply.dhv, m->reply.dhvlen);
	} else if (m->id == AUTH_ID_SUCCESS1) {
		struct auth_success1_hdr *s = (void *)b;

		s->hl = m->success1.hl;
		s->rvalid = m->success1.rvalid;
		if (m->success1.rvalid)
			put_or_zero(b + sizeof(*s), m->success1.rval, m->success1.hl);
	}
	return size;
}
