/*
 * Host-side NVMe/TCP client (see nvmf_client.h). It plays the Linux host's
 * part (host-requirements 1.x): ICReq with HPDA 0 and MAXR2T 0, PSDT = SGL,
 * in-capsule data within the limits the host uses, H2CData split at
 * MAXH2CDATA with LAST_PDU on the final one, and it checks what comes back
 * as strictly as the Linux host does (hlen, digests, C2HData order, CID).
 */
#include "nvmf_client.h"

#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <nvme/types.h>

#include "crc32c.h"
#include "iov.h"
#include "nvme_tcp.h"
#include "nvmf_tls.h"

#define ADMIN_INLINE 8192u

static int fail(struct nvmf_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct nvmf_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->dead = true;
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- socket helpers ---- */

/* Wait up to the deadline for events on the socket: 1 ready, 0 timeout. */
static int wait_for(struct nvmf_client *c, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = { .fd = c->fd, .events = events };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r > 0;
	}
}

static int write_full(struct nvmf_client *c, const struct iovec *iov0, int n)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	struct iovec iov[16];
	int cnt = n;

	memcpy(iov, iov0, (size_t)n * sizeof(*iov));
	struct iovec *v = iov;
	while (cnt || (c->tls && nvmf_tls_tx_pending(c->tls))) {
		ssize_t w;
		if (c->tls) {
			w = cnt ? nvmf_tls_writev(c->tls, v, cnt) : nvmf_tls_flush(c->tls);
		} else {
			struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)cnt };
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* TLS: the socket is non-blocking (nvmf_tls.h). */
			if (errno == EAGAIN && c->tls) {
				if (!wait_for(c, nvmf_tls_events(c->tls), deadline))
					return fail(c, "timeout sending to the controller");
				continue;
			}
			return fail(c, "send: %s", strerror(errno));
		}
		iov_consume(&v, &cnt, (size_t)w);
	}
	return 0;
}

/* Up to len bytes by the deadline: bytes, 0 at the end of the stream, or
 * -1 (c->err says why). */
static ssize_t recv_some(struct nvmf_client *c, void *buf, size_t len, int64_t deadline)
{
	for (;;) {
		ssize_t r;
		if (c->tls) {
			/* Read first: OpenSSL may hold input poll cannot see. */
			struct iovec v = { buf, len };
			r = nvmf_tls_readv(c->tls, &v, 1);
			if (r < 0 && errno == EAGAIN) {
				if (!wait_for(c, nvmf_tls_events(c->tls), deadline))
					return fail(c, "timeout waiting for the controller");
				continue;
			}
		} else {
			if (!wait_for(c, POLLIN, deadline))
				return fail(c, "timeout waiting for the controller");
			r = recv(c->fd, buf, len, 0);
		}
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return fail(c, "receive: %s", strerror(errno));
	}
}

static int read_full(struct nvmf_client *c, void *buf, size_t len)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t got = 0;

	while (got < len) {
		ssize_t r = recv_some(c, (char *)buf + got, len - got, deadline);
		if (r < 0)
			return -1;
		if (r == 0)
			return fail(c, "connection closed by the controller");
		got += (size_t)r;
	}
	return 0;
}

void nvmf_client_init(struct nvmf_client *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = 10000;
	c->io_inline = 8192;
}

int nvmf_tcp_socket(struct nvmf_client *c, const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int one = 1;

	nvmf_client_init(c, -1);
	int rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc)
		return fail(c, "%s:%s: %s", addr, port, gai_strerror(rc));
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		freeaddrinfo(ai);
		return fail(c, "connect %s:%s: %s", addr, port, strerror(errno));
	}
	freeaddrinfo(ai);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

int nvmf_icreq(struct nvmf_client *c, bool hdgst, bool ddgst)
{
	struct nvme_tcp_icreq req;
	struct nvme_tcp_icresp rsp;

	memset(&req, 0, sizeof(req));
	req.hdr.type = NVME_TCP_ICREQ;
	req.hdr.hlen = sizeof(req);
	req.hdr.plen = htole32(sizeof(req));
	req.pfv = htole16(NVME_TCP_PFV_1_0);
	req.dgst = (hdgst ? NVME_TCP_DGST_HDR : 0) | (ddgst ? NVME_TCP_DGST_DATA : 0);
	if (nvmf_send_raw(c, &req, sizeof(req)) || read_full(c, &rsp, sizeof(rsp)))
		return -1;
	if (rsp.hdr.type != NVME_TCP_ICRESP || rsp.hdr.hlen != sizeof(rsp) ||
	    le32toh(rsp.hdr.plen) != sizeof(rsp))
		return fail(c, "bad ICResp header (type %u hlen %u plen %u)", rsp.hdr.type,
			    rsp.hdr.hlen, le32toh(rsp.hdr.plen));
	if (le16toh(rsp.pfv) != NVME_TCP_PFV_1_0 || rsp.cpda != 0)
		return fail(c, "ICResp PFV %u CPDA %u", le16toh(rsp.pfv), rsp.cpda);
	if (rsp.dgst != req.dgst)
		return fail(c, "ICResp digests %#x, asked for %#x", rsp.dgst, req.dgst);
	c->maxh2cdata = le32toh(rsp.maxh2cdata);
	if (c->maxh2cdata < 4096 || c->maxh2cdata % 4)
		return fail(c, "ICResp MAXH2CDATA %u", c->maxh2cdata);
	c->hdgst = hdgst;
	c->ddgst = ddgst;
	return 0;
}

int nvmf_tcp_connect(struct nvmf_client *c, const char *addr, const char *port, bool hdgst,
		     bool ddgst)
{
	if (nvmf_tcp_socket(c, addr, port))
		return -1;
	return nvmf_icreq(c, hdgst, ddgst);
}

int nvmf_tls_handshake(struct nvmf_client *c, const struct nvmf_tls_cfg *cfg,
		       const char *hostnqn, const char *subnqn)
{
	char why[sizeof(c->err)];

	c->tls = nvmf_tls_start(c->fd, cfg, hostnqn, subnqn, c->timeout_ms, why, sizeof(why));
	return c->tls ? 0 : fail(c, "%s", why);
}

void nvmf_close(struct nvmf_client *c)
{
	nvmf_tls_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int nvmf_send_raw(struct nvmf_client *c, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };

	return write_full(c, &v, 1);
}

ssize_t nvmf_recv_raw(struct nvmf_client *c, void *buf, size_t len)
{
	return recv_some(c, buf, len, now_ms() + c->timeout_ms);
}

/* ---- PDUs ---- */

static uint32_t hd_len(const struct nvmf_client *c)
{
	return c->hdgst ? NVME_TCP_DIGEST_LEN : 0;
}

static uint32_t dd_len(const struct nvmf_client *c)
{
	return c->ddgst ? NVME_TCP_DIGEST_LEN : 0;
}

/* Send header (hlen bytes, digest appended here) + optional data. */
static int send_pdu(struct nvmf_client *c, void *hdr, uint8_t hlen, const void *data,
		    uint32_t dlen)
{
	uint32_t hd = htole32(crc32c(hdr, hlen));
	uint32_t dd = dlen ? htole32(crc32c(data, dlen)) : 0;
	struct iovec iov[4];
	int n = 0;

	iov[n++] = (struct iovec){ hdr, hlen };
	if (c->hdgst)
		iov[n++] = (struct iovec){ &hd, sizeof(hd) };
	if (dlen) {
		iov[n++] = (struct iovec){ (void *)data, dlen };
		if (c->ddgst)
			iov[n++] = (struct iovec){ &dd, sizeof(dd) };
	}
	return write_full(c, iov, n);
}

static void fill_hdr(const struct nvmf_client *c, struct nvme_tcp_hdr *h, uint8_t type,
		     uint8_t flags, uint8_t hlen, uint32_t dlen)
{
	h->type = type;
	h->flags = flags | (c->hdgst ? NVME_TCP_F_HDGST : 0) |
		   (c->ddgst && dlen ? NVME_TCP_F_DDGST : 0);
	h->hlen = hlen;
	h->pdo = dlen ? (uint8_t)(hlen + hd_len(c)) : 0;
	h->plen = htole32(hlen + hd_len(c) + dlen + (dlen ? dd_len(c) : 0));
}

static struct nvmf_slot *slot_of(struct nvmf_client *c, uint16_t cid)
{
	uint16_t i = le16toh(cid);

	return i < NVMF_CLIENT_SLOTS && c->slots[i].busy ? &c->slots[i] : NULL;
}

static int handle_r2t(struct nvmf_client *c, const struct nvme_tcp_r2t *r)
{
	struct nvmf_slot *s = slot_of(c, r->cccid);
	uint32_t off = le32toh(r->r2to), len = le32toh(r->r2tl);

	if (!s)
		return fail(c, "R2T for unknown CID %u", le16toh(r->cccid));
	/* The checks of host/tcp.c:nvme_tcp_handle_r2t(). */
	if (!len || off < s->sent || off + len > s->outlen || off + len < off)
		return fail(c, "bad R2T: offset %u length %u (sent %u of %u)", off, len, s->sent,
			    s->outlen);
	while (len) {
		uint32_t n = len < c->maxh2cdata ? len : c->maxh2cdata;
		struct nvme_tcp_data d;

		memset(&d, 0, sizeof(d));
		fill_hdr(c, &d.hdr, NVME_TCP_H2C_DATA, n == len ? NVME_TCP_F_LAST_PDU : 0,
			 sizeof(d), n);
		d.cccid = r->cccid;
		d.ttag = r->ttag;
		d.datao = htole32(off);
		d.datal = htole32(n);
		if (send_pdu(c, &d, sizeof(d), s->out + off, n))
			return -1;
		off += n;
		len -= n;
		s->sent = off;
	}
	return 0;
}

static int handle_c2h(struct nvmf_client *c, const struct nvme_tcp_data *d)
{
	struct nvmf_slot *s = slot_of(c, d->cccid);
	uint32_t off = le32toh(d->datao), len = le32toh(d->datal);
	uint32_t plen = le32toh(d->hdr.plen);

	if (!s || !s->in)
		return fail(c, "C2HData for CID %u without a read buffer", le16toh(d->cccid));
	if (d->hdr.pdo != sizeof(*d) + hd_len(c) ||
	    plen != sizeof(*d) + hd_len(c) + len + dd_len(c))
		return fail(c, "C2HData pdo %u plen %u for datal %u", d->hdr.pdo, plen, len);
	if (!(d->hdr.flags & NVME_TCP_F_DDGST) != !c->ddgst)
		return fail(c, "C2HData data digest flag does not match");
	/* The Linux host ignores datao and copies in order: insist on it. */
	if (off != s->got || len > s->inlen - s->got || !len)
		return fail(c, "C2HData offset %u length %u, expected offset %u of %u", off, len,
			    s->got, s->inlen);
	if (read_full(c, s->in + off, len))
		return -1;
	if (c->ddgst) {
		uint32_t dd;
		if (read_full(c, &dd, sizeof(dd)))
			return -1;
		if (le32toh(dd) != crc32c(s->in + off, len))
			return fail(c, "C2HData data digest mismatch");
	}
	s->got += len;
	if (d->hdr.flags & NVME_TCP_F_SUCCESS) {
		if (!(d->hdr.flags & NVME_TCP_F_LAST_PDU))
			return fail(c, "C2HData SUCCESS without LAST_PDU");
		memset(&s->cqe, 0, sizeof(s->cqe));
		s->cqe.cid = d->cccid;
		s->done = true;
	}
	return 0;
}

static int handle_term(struct nvmf_client *c, const struct nvme_tcp_term *t)
{
	uint32_t plen = le32toh(t->hdr.plen);
	uint8_t quoted[NVME_TCP_TERM_MAX_DATA];

	c->term_fes = le16toh(t->fes);
	c->term_fei = le32toh(t->fei);
	if (plen > sizeof(*t) && plen - sizeof(*t) <= sizeof(quoted))
		read_full(c, quoted, plen - sizeof(*t));
	return fail(c, "C2HTermReq: FES %u FEI %u", c->term_fes, c->term_fei);
}

/* Receive and handle one PDU. */
static int recv_pdu(struct nvmf_client *c)
{
	uint8_t buf[sizeof(struct nvme_tcp_data) + NVME_TCP_DIGEST_LEN];
	struct nvme_tcp_hdr *h = (struct nvme_tcp_hdr *)buf;
	uint32_t rest;

	if (c->dead)
		return -1;
	if (read_full(c, h, sizeof(*h)))
		return -1;
	/* Like the Linux host: every PDU after ICResp has a 24-byte header. */
	if (h->hlen != 24)
		return fail(c, "PDU type %u with hlen %u", h->type, h->hlen);
	if (h->type == NVME_TCP_C2H_TERM) {
		if (read_full(c, buf + sizeof(*h), 24 - sizeof(*h)))
			return -1;
		return handle_term(c, (struct nvme_tcp_term *)buf);
	}
	rest = 24 - sizeof(*h) + hd_len(c);
	if (read_full(c, buf + sizeof(*h), rest))
		return -1;
	if (!(h->flags & NVME_TCP_F_HDGST) != !c->hdgst)
		return fail(c, "header digest flag does not match");
	if (c->hdgst) {
		uint32_t d;
		memcpy(&d, buf + 24, sizeof(d));
		if (le32toh(d) != crc32c(buf, 24))
			return fail(c, "header digest mismatch on PDU type %u", h->type);
	}
	switch (h->type) {
	case NVME_TCP_RSP: {
		const struct nvme_tcp_rsp *r = (const struct nvme_tcp_rsp *)buf;
		struct nvmf_slot *s = slot_of(c, r->cqe.cid);
		if (!s || s->done)
			return fail(c, "CapsuleResp for unknown CID %u", le16toh(r->cqe.cid));
		if (le32toh(h->plen) != 24 + hd_len(c))
			return fail(c, "CapsuleResp plen %u", le32toh(h->plen));
		s->cqe = r->cqe;
		s->done = true;
		return 0;
	}
	case NVME_TCP_C2H_DATA:
		return handle_c2h(c, (const struct nvme_tcp_data *)buf);
	case NVME_TCP_R2T:
		return handle_r2t(c, (const struct nvme_tcp_r2t *)buf);
	default:
		return fail(c, "unexpected PDU type %u", h->type);
	}
}

/* ---- commands ---- */

int nvmf_submit(struct nvmf_client *c, struct nvme_sqe *sqe, const void *out, uint32_t outlen,
		void *in, uint32_t inlen)
{
	struct nvmf_slot *s = NULL;
	uint16_t cid = 0;

	for (int i = 0; i < NVMF_CLIENT_SLOTS; i++) {
		cid = (uint16_t)((c->next_slot + i) % NVMF_CLIENT_SLOTS);
		if (!c->slots[cid].busy) {
			s = &c->slots[cid];
			break;
		}
	}
	if (!s)
		return fail(c, "more than %d commands in flight", NVMF_CLIENT_SLOTS);
	c->next_slot = (uint16_t)(cid + 1);

	uint32_t limit = (c->qid == 0 || sqe->opcode == nvme_admin_fabrics) ? ADMIN_INLINE
									   : c->io_inline;
	bool inl = outlen && outlen <= limit;

	*s = (struct nvmf_slot){ .busy = true, .out = out, .outlen = outlen, .in = in,
				 .inlen = inlen };
	sqe->cid = htole16(cid);
	sqe->flags = (uint8_t)((sqe->flags & ~0xc0) | 0x40); /* PSDT 01b: SGL */
	memset(&sqe->dptr, 0, sizeof(sqe->dptr));
	sqe->dptr.sgl.length = htole32(outlen ? outlen : inlen);
	sqe->dptr.sgl.type = inl ? NVME_SGL_TYPE_DATA_BLOCK_OFFSET : NVME_SGL_TYPE_TRANSPORT_BLOCK;
	if (inl)
		s->sent = outlen;

	struct nvme_tcp_cmd pdu;
	fill_hdr(c, &pdu.hdr, NVME_TCP_CMD, 0, sizeof(pdu), inl ? outlen : 0);
	pdu.sqe = *sqe;
	if (send_pdu(c, &pdu, sizeof(pdu), out, inl ? outlen : 0)) {
		s->busy = false;
		return -1;
	}
	return cid;
}

static int finish(struct nvmf_client *c, uint16_t cid, struct nvme_cqe *cqe)
{
	struct nvmf_slot *s = &c->slots[cid];

	if (s->in && s->got != s->inlen && (le16toh(s->cqe.status) >> 1) == 0) {
		s->busy = false;
		return fail(c, "CID %u completed with %u of %u data bytes", cid, s->got, s->inlen);
	}
	if (cqe)
		*cqe = s->cqe;
	s->busy = false;
	return le16toh(s->cqe.status) >> 1;
}

int nvmf_wait(struct nvmf_client *c, uint16_t cid, struct nvme_cqe *cqe)
{
	if (cid >= NVMF_CLIENT_SLOTS || !c->slots[cid].busy)
		return fail(c, "CID %u is not in flight", cid);
	while (!c->slots[cid].done)
		if (recv_pdu(c))
			return -1;
	return finish(c, cid, cqe);
}

int nvmf_wait_any(struct nvmf_client *c, uint16_t *cid, struct nvme_cqe *cqe)
{
	for (;;) {
		for (uint16_t i = 0; i < NVMF_CLIENT_SLOTS; i++) {
			if (c->slots[i].busy && c->slots[i].done) {
				*cid = i;
				return finish(c, i, cqe);
			}
		}
		if (recv_pdu(c))
			return -1;
	}
}

int nvmf_cmd(struct nvmf_client *c, struct nvme_sqe *sqe, const void *out, uint32_t outlen,
	     void *in, uint32_t inlen, struct nvme_cqe *cqe)
{
	int cid = nvmf_submit(c, sqe, out, outlen, in, inlen);

	if (cid < 0)
		return -1;
	return nvmf_wait(c, (uint16_t)cid, cqe);
}

int nvmf_expect_close(struct nvmf_client *c)
{
	uint8_t buf[4096];
	struct nvme_tcp_term t;
	size_t have = 0;

	/* Tests call this right after the bad input, so whatever arrives
	 * before EOF must be a single C2HTermReq. */
	for (;;) {
		ssize_t r = nvmf_recv_raw(c, buf, sizeof(buf));
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (have < sizeof(t)) {
			size_t k = (size_t)r < sizeof(t) - have ? (size_t)r : sizeof(t) - have;
			memcpy((uint8_t *)&t + have, buf, k);
		}
		have += (size_t)r;
	}
	c->dead = true;
	if (have >= sizeof(t)) {
		if (t.hdr.type != NVME_TCP_C2H_TERM)
			return fail(c, "PDU type %u before the close", t.hdr.type);
		c->term_fes = le16toh(t.fes);
		c->term_fei = le32toh(t.fei);
	}
	return 0;
}

/* ---- conveniences ---- */

int nvmf_connect(struct nvmf_client *c, uint16_t qid, uint16_t sqsize, uint32_t kato_ms,
		 const char *hostnqn, const char *subnqn, uint16_t cntlid, uint8_t cattr,
		 struct nvme_cqe *cqe)
{
	struct nvmf_connect_data data;
	struct nvme_sqe sqe;
	struct nvme_cqe local;

	memset(&data, 0, sizeof(data));
	memset(&sqe, 0, sizeof(sqe));
	/* A host ID derived from the host NQN: stable per host. */
	for (size_t i = 0; hostnqn[i]; i++)
		data.hostid[i % sizeof(data.hostid)] ^= (uint8_t)hostnqn[i];
	data.cntlid = htole16(cntlid);
	snprintf(data.subsysnqn, sizeof(data.subsysnqn), "%s", subnqn);
	snprintf(data.hostnqn, sizeof(data.hostnqn), "%s", hostnqn);
	sqe.opcode = nvme_admin_fabrics;
	((uint8_t *)&sqe)[4] = nvme_fabrics_type_connect;
	sqe.cdw10 = htole32((uint32_t)qid << 16);
	sqe.cdw11 = htole32((uint32_t)(sqsize - 1) | ((uint32_t)cattr << 16));
	sqe.cdw12 = htole32(kato_ms);
	c->qid = qid;
	if (!cqe)
		cqe = &local;
	int st = nvmf_cmd(c, &sqe, &data, sizeof(data), NULL, 0, cqe);
	if (st == 0 && qid == 0)
		c->cntlid = (uint16_t)le64toh(cqe->result);
	return st;
}

static void prop_sqe(struct nvme_sqe *sqe, uint8_t fctype, uint32_t off, bool size8)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = nvme_admin_fabrics;
	((uint8_t *)sqe)[4] = fctype;
	sqe->cdw10 = htole32(size8 ? 1 : 0);
	sqe->cdw11 = htole32(off);
}

int nvmf_prop_get(struct nvmf_client *c, uint32_t off, bool size8, uint64_t *val)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	prop_sqe(&sqe, nvme_fabrics_type_property_get, off, size8);
	int st = nvmf_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe);
	if (st == 0)
		*val = le64toh(cqe.result);
	return st;
}

int nvmf_prop_set(struct nvmf_client *c, uint32_t off, bool size8, uint64_t val)
{
	struct nvme_sqe sqe;

	prop_sqe(&sqe, nvme_fabrics_type_property_set, off, size8);
	sqe.cdw12 = htole32((uint32_t)val);
	sqe.cdw13 = htole32((uint32_t)(val >> 32));
	return nvmf_cmd(c, &sqe, NULL, 0, NULL, 0, NULL);
}

int nvmf_enable(struct nvmf_client *c, int timeout_ms)
{
	uint64_t cap, csts;
	int st = nvmf_prop_get(c, NVME_REG_CAP, true, &cap);

	if (st)
		return st;
	uint32_t css = (NVME_CAP_CSS(cap) & NVME_CAP_CSS_CSI) ? NVME_CC_CSS_CSI : NVME_CC_CSS_NVM;
	uint32_t cc = 1u | (css << NVME_CC_CSS_SHIFT) | (6u << NVME_CC_IOSQES_SHIFT) |
		      (4u << NVME_CC_IOCQES_SHIFT);
	st = nvmf_prop_set(c, NVME_REG_CC, false, cc);
	if (st)
		return st;
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		st = nvmf_prop_get(c, NVME_REG_CSTS, false, &csts);
		if (st)
			return st;
		if (NVME_CSTS_CFS(csts))
			return fail(c, "controller fatal status after enable");
		if (NVME_CSTS_RDY(csts))
			return 0;
		if (now_ms() > deadline)
			return fail(c, "CSTS.RDY not set within %d ms", timeout_ms);
		usleep(1000);
	}
}

int nvmf_admin_up(struct nvmf_client *c, const char *addr, const char *port,
		  const char *hostnqn, const char *subnqn)
{
	char why[sizeof(c->err)];
	int st;

	if (nvmf_tcp_connect(c, addr, port, false, false) != 0)
		snprintf(why, sizeof(why), "admin queue: %.120s", c->err);
	else if ((st = nvmf_connect(c, 0, 32, 0, hostnqn, subnqn, 0xffff, 0, NULL)) != 0)
		snprintf(why, sizeof(why), "admin Connect: %#x %.120s", (unsigned)st, c->err);
	else if (nvmf_enable(c, 5000) != 0)
		snprintf(why, sizeof(why), "enable: %.120s", c->err);
	else
		return 0;
	memcpy(c->err, why, sizeof(c->err));
	return -1;
}

int nvmf_io_up(struct nvmf_client *c, const char *addr, const char *port, const char *hostnqn,
	       const char *subnqn, uint16_t cntlid, uint16_t qid, uint16_t sqsize)
{
	char why[sizeof(c->err)];
	int st;

	if (nvmf_tcp_connect(c, addr, port, false, false) != 0)
		snprintf(why, sizeof(why), "I/O queue %u: %.120s", qid, c->err);
	else if ((st = nvmf_connect(c, qid, sqsize, 0, hostnqn, subnqn, cntlid, 0, NULL)) != 0)
		snprintf(why, sizeof(why), "I/O queue %u Connect: %#x %.110s", qid, (unsigned)st,
			 c->err);
	else
		return 0;
	memcpy(c->err, why, sizeof(c->err));
	return -1;
}

int nvmf_identify(struct nvmf_client *c, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf,
		  struct nvme_cqe *cqe)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_identify;
	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32(cns);
	sqe.cdw11 = htole32((uint32_t)csi << 24);
	return nvmf_cmd(c, &sqe, NULL, 0, buf, NVME_IDENTIFY_DATA_SIZE, cqe);
}

int nvmf_listen_aer(struct nvmf_client *c, uint32_t aec)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_set_features;
	sqe.cdw10 = htole32(NVME_FEAT_FID_ASYNC_EVENT);
	sqe.cdw11 = htole32(aec);
	if (nvmf_cmd(c, &sqe, NULL, 0, NULL, 0, NULL) != 0)
		return -1;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_async_event;
	return nvmf_submit(c, &sqe, NULL, 0, NULL, 0);
}

static void rw_sqe(struct nvme_sqe *sqe, uint8_t opcode, uint32_t nsid, uint64_t slba,
		   uint32_t nlb)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(nsid);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw11 = htole32((uint32_t)(slba >> 32));
	sqe->cdw12 = htole32((nlb - 1) & 0xffff);
}

int nvmf_read(struct nvmf_client *c, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
	      uint32_t len, struct nvme_cqe *cqe)
{
	struct nvme_sqe sqe;

	rw_sqe(&sqe, nvme_cmd_read, nsid, slba, nlb);
	return nvmf_cmd(c, &sqe, NULL, 0, buf, len, cqe);
}

int nvmf_write(struct nvmf_client *c, uint32_t nsid, uint64_t slba, uint32_t nlb,
	       const void *buf, uint32_t len, struct nvme_cqe *cqe)
{
	struct nvme_sqe sqe;

	rw_sqe(&sqe, nvme_cmd_write, nsid, slba, nlb);
	return nvmf_cmd(c, &sqe, buf, len, NULL, 0, cqe);
}
