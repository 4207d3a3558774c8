/*
 * Host-side NVMe/TCP I/O queue (nvmf_queue.h), NVMe/TCP 1.0 section 3.
 *
 * Receive mirrors the target's state machine (server/tcp/tcp_conn.c) in small:
 * one readv takes what the socket has, straight into the payload buffer of
 * the data PDU in progress and the rest into rbuf; rbuf is then consumed
 * completely. Every PDU after ICResp has a 24-byte header (CapsuleResp,
 * C2HData, R2T, C2HTermReq), so a header is 8 bytes to learn its type and
 * lengths, then the rest of 24 (+ header digest).
 *
 * Send: submit and R2T handling only append iovecs pointing into the
 * command (its header bytes, its data buffer) to txv; nvmfq_process()
 * writes them all with sendmsg(MSG_DONTWAIT) and waits for writability only
 * while something is left over. A command's memory stays put until it
 * completes, which cannot happen before all of its bytes were sent.
 */
#include "nvmf_queue.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "iov.h"
#include "nvmf_client.h"
#include "nvmf_tls.h"

#define RBUF_LEN (64u * 1024)
#define IOV_BATCH 1024           /* IOV_MAX */
#define HDR_LEN ((uint32_t)sizeof(struct nvme_tcp_data)) /* 24, every PDU we receive */

enum { RX_HDR, RX_DATA, RX_DDGST };

static int fail(struct nvmfq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct nvmfq *q, const char *fmt, ...)
{
	va_list ap;

	if (q->err[0])
		return -1; /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return -1;
}

static uint32_t hd_len(const struct nvmfq *q)
{
	return q->hdgst ? NVME_TCP_DIGEST_LEN : 0;
}

static uint32_t dd_len(const struct nvmfq *q)
{
	return q->ddgst ? NVME_TCP_DIGEST_LEN : 0;
}

/* ---- setup ---- */

int nvmfq_init(struct nvmfq *q, struct nvmf_client *c, uint16_t depth, uint32_t max_len,
	       nvmfq_done_fn done, void *arg)
{
	memset(q, 0, sizeof(*q));
	q->fd = c->fd;
	q->tls = c->tls;
	c->fd = -1;
	c->tls = NULL;
	q->hdgst = c->hdgst;
	q->ddgst = c->ddgst;
	q->io_inline = c->io_inline;
	q->maxh2cdata = c->maxh2cdata;
	q->timeout_ms = c->timeout_ms;
	q->depth = depth;
	q->max_len = max_len;
	q->done = done;
	q->arg = arg;
	q->hdr_need = sizeof(struct nvme_tcp_hdr);

	uint32_t nh2c = q->maxh2cdata ? (max_len + q->maxh2cdata - 1) / q->maxh2cdata : 0;
	if (!depth || depth > NVMF_CLIENT_SLOTS || !nh2c)
		return fail(q, "bad queue parameters (depth %u, MAXH2CDATA %u)", depth,
			    q->maxh2cdata);
	q->cmds = calloc(depth, sizeof(*q->cmds));
	q->rbuf = malloc(RBUF_LEN);
	/* Pending pieces never exceed what the commands in flight can queue:
	 * capsule header, data, digest, and three per H2CData PDU. */
	q->tx_cap = depth * (3 + 3 * (int)nh2c);
	q->txv = calloc((size_t)q->tx_cap, sizeof(*q->txv));
	if (!q->cmds || !q->rbuf || !q->txv)
		return fail(q, "out of memory");
	for (uint16_t i = 0; i < depth; i++) {
		q->cmds[i].h2c = calloc(nh2c, sizeof(*q->cmds[i].h2c));
		q->cmds[i].h2c_ddgst = calloc(nh2c, sizeof(uint32_t));
		if (!q->cmds[i].h2c || !q->cmds[i].h2c_ddgst)
			return fail(q, "out of memory");
	}
	/* Waiting for input blocks in readv; the receive timeout bounds it. */
	struct timeval tv = { .tv_sec = q->timeout_ms / 1000,
			      .tv_usec = (q->timeout_ms % 1000) * 1000 };
	setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

void nvmfq_destroy(struct nvmfq *q)
{
	nvmf_tls_free(q->tls);
	q->tls = NULL;
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	if (q->cmds)
		for (uint16_t i = 0; i < q->depth; i++) {
			free(q->cmds[i].h2c);
			free(q->cmds[i].h2c_ddgst);
		}
	free(q->cmds);
	free(q->rbuf);
	free(q->txv);
	q->cmds = NULL;
	q->rbuf = NULL;
	q->txv = NULL;
}

/* ---- send ---- */

static void tx_add(struct nvmfq *q, void *base, size_t len)
{
	if (q->tx_n == q->tx_cap && q->tx_first) {
		memmove(q->txv, q->txv + q->tx_first,
			(size_t)(q->tx_n - q->tx_first) * sizeof(*q->txv));
		q->tx_n -= q->tx_first;
		q->tx_first = 0;
	}
	/* tx_cap covers every piece the commands in flight can queue: the
	 * capsule or (one R2T per command, each at most max_len) H2CData. */
	q->txv[q->tx_n++] = (struct iovec){ base, len };
}

/* Some of iov out without blocking: bytes, or -1 with errno. */
static ssize_t tx_some(struct nvmfq *q, struct iovec *iov, int cnt)
{
	if (q->tls)
		return nvmf_tls_writev(q->tls, iov, cnt);
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
	return sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int tx_flush(struct nvmfq *q)
{
	while (q->tx_first < q->tx_n) {
		int cnt = q->tx_n - q->tx_first;
		ssize_t w = tx_some(q, q->txv + q->tx_first, cnt < IOV_BATCH ? cnt : IOV_BATCH);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return fail(q, "send: %s", strerror(errno));
		}
		struct iovec *v = q->txv + q->tx_first;
		iov_consume(&v, &cnt, (size_t)w);
		q->tx_first = (int)(v - q->txv);
	}
	q->tx_first = q->tx_n = 0;
	/* TLS keeps what the socket did not take in its staging buffer. */
	if (q->tls && nvmf_tls_flush(q->tls) != 0 && errno != EAGAIN)
		return fail(q, "send: %s", strerror(errno));
	return 0;
}

static bool tx_pending(const struct nvmfq *q)
{
	return q->tx_n || (q->tls && nvmf_tls_tx_pending(q->tls));
}

/* One read of what has arrived, up to the timeout: bytes, or -1 with errno
 * (EAGAIN: nothing came in time). The plain socket blocks in readv with
 * SO_RCVTIMEO; TLS reads first (OpenSSL may hold input poll cannot see)
 * and polls only when it has nothing. */
static ssize_t rx_some(struct nvmfq *q, const struct iovec *iov, int n)
{
	for (;;) {
		ssize_t r = q->tls ? nvmf_tls_readv(q->tls, iov, n) : readv(q->fd, iov, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (!q->tls || errno != EAGAIN)
			return -1;
		struct pollfd p = { .fd = q->fd, .events = nvmf_tls_events(q->tls) };
		int pr = poll(&p, 1, q->timeout_ms);
		if (pr == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (pr < 0 && errno != EINTR)
			return -1;
	}
}

static void fill_hdr(const struct nvmfq *q, struct nvme_tcp_hdr *h, uint8_t type, uint8_t flags,
		     uint8_t hlen, uint32_t dlen)
{
	h->type = type;
	h->flags = flags | (q->hdgst ? NVME_TCP_F_HDGST : 0) |
		   (q->ddgst && dlen ? NVME_TCP_F_DDGST : 0);
	h->hlen = hlen;
	h->pdo = dlen ? (uint8_t)(hlen + hd_len(q)) : 0;
	h->plen = htole32(hlen + hd_len(q) + dlen + (dlen ? dd_len(q) : 0));
}

/* Header (+ its digest, computed here) and data (+ digest) as iovecs. */
static void queue_pdu(struct nvmfq *q, uint8_t *hdr, uint8_t hlen, void *data, uint32_t dlen,
		      uint32_t *ddgst)
{
	if (q->hdgst) {
		uint32_t d = htole32(crc32c(hdr, hlen));
		memcpy(hdr + hlen, &d, sizeof(d));
	}
	tx_add(q, hdr, hlen + hd_len(q));
	if (!dlen)
		return;
	tx_add(q, data, dlen);
	if (q->ddgst) {
		*ddgst = htole32(crc32c(data, dlen));
		tx_add(q, ddgst, sizeof(*ddgst));
	}
}

int nvmfq_submit(struct nvmfq *q, struct nvmfq_cmd *cmd)
{
	uint16_t cid = (uint16_t)(cmd - q->cmds);

	if (cid >= q->depth || cmd->busy || cmd->len > q->max_len || (cmd->len && !cmd->buf))
		return fail(q, "bad submission (slot %u, %u bytes)", cid, cmd->len);
	bool inl = cmd->write && cmd->len && cmd->len <= q->io_inline;

	cmd->busy = true;
	cmd->r2t_seen = false;
	cmd->got = 0;
	cmd->sqe.cid = htole16(cid);
	cmd->sqe.flags = (uint8_t)((cmd->sqe.flags & ~0xc0) | 0x40); /* PSDT 01b: SGL */
	memset(&cmd->sqe.dptr, 0, sizeof(cmd->sqe.dptr));
	cmd->sqe.dptr.sgl.length = htole32(cmd->len);
	cmd->sqe.dptr.sgl.type = inl ? NVME_SGL_TYPE_DATA_BLOCK_OFFSET
				     : NVME_SGL_TYPE_TRANSPORT_BLOCK;

	struct nvme_tcp_cmd *pdu = (struct nvme_tcp_cmd *)cmd->pdu;
	fill_hdr(q, &pdu->hdr, NVME_TCP_CMD, 0, sizeof(*pdu), inl ? cmd->len : 0);
	pdu->sqe = cmd->sqe;
	queue_pdu(q, cmd->pdu, sizeof(*pdu), cmd->buf, inl ? cmd->len : 0, &cmd->ddgst);
	q->inflight++;
	return 0;
}

/* ---- receive ---- */

static struct nvmfq_cmd *cmd_of(struct nvmfq *q, uint16_t cid_le)
{
	uint16_t cid = le16toh(cid_le);

	return cid < q->depth && q->cmds[cid].busy ? &q->cmds[cid] : NULL;
}

static void complete(struct nvmfq *q, struct nvmfq_cmd *cmd)
{
	cmd->status = le16toh(cmd->cqe.status) >> 1;
	cmd->busy = false;
	q->inflight--;
	q->completed++;
	q->done(q, cmd);
}

/* R2T (3.6.2.10): send the range asked for as H2CData PDUs of at most
 * MAXH2CDATA, LAST_PDU on the final one. */
static int handle_r2t(struct nvmfq *q, const struct nvme_tcp_r2t *r)
{
	struct nvmfq_cmd *cmd = cmd_of(q, r->cccid);
	uint32_t off = le32toh(r->r2to), len = le32toh(r->r2tl);

	if (!cmd || !cmd->write)
		return fail(q, "R2T for CID %u, which writes nothing", le16toh(r->cccid));
	if (cmd->r2t_seen)
		return fail(q, "second R2T for CID %u (MAXR2T is 1)", le16toh(r->cccid));
	cmd->r2t_seen = true;
	if (le32toh(r->hdr.plen) != HDR_LEN + hd_len(q))
		return fail(q, "R2T plen %u", le32toh(r->hdr.plen));
	/* Nothing went in-capsule (or it would not ask), so all of it. */
	if (off != 0 || len != cmd->len)
		return fail(q, "R2T for offset %u length %u of a %u-byte write", off, len,
			    cmd->len);
	for (uint32_t i = 0; len; i++) {
		uint32_t n = len < q->maxh2cdata ? len : q->maxh2cdata;
		struct nvme_tcp_data *d = (struct nvme_tcp_data *)cmd->h2c[i];

		memset(d, 0, sizeof(*d));
		fill_hdr(q, &d->hdr, NVME_TCP_H2C_DATA, n == len ? NVME_TCP_F_LAST_PDU : 0,
			 sizeof(*d), n);
		d->cccid = r->cccid;
		d->ttag = r->ttag;
		d->datao = htole32(off);
		d->datal = htole32(n);
		queue_pdu(q, cmd->h2c[i], sizeof(*d), (uint8_t *)cmd->buf + off, n,
			  &cmd->h2c_ddgst[i]);
		off += n;
		len -= n;
	}
	return 0;
}

static int handle_c2h(struct nvmfq *q, const struct nvme_tcp_data *d)
{
	struct nvmfq_cmd *cmd = cmd_of(q, d->cccid);
	uint32_t off = le32toh(d->datao), len = le32toh(d->datal), plen = le32toh(d->hdr.plen);

	if (!cmd || cmd->write || !cmd->len)
		return fail(q, "C2HData for CID %u, which reads nothing", le16toh(d->cccid));
	if (d->hdr.pdo != HDR_LEN + hd_len(q) || plen != HDR_LEN + hd_len(q) + len + dd_len(q))
		return fail(q, "C2HData pdo %u plen %u for datal %u", d->hdr.pdo, plen, len);
	if (!(d->hdr.flags & NVME_TCP_F_DDGST) != !q->ddgst)
		return fail(q, "C2HData data digest flag does not match");
	/* The Linux host copies in order whatever datao says: insist. */
	if (!len || off != cmd->got || len > cmd->len - cmd->got)
		return fail(q, "C2HData offset %u length %u, expected offset %u of %u", off, len,
			    cmd->got, cmd->len);
	if ((d->hdr.flags & NVME_TCP_F_SUCCESS) && !(d->hdr.flags & NVME_TCP_F_LAST_PDU))
		return fail(q, "C2HData SUCCESS without LAST_PDU");
	q->rx_state = RX_DATA;
	q->rx_cmd = cmd;
	q->rx_dst = (uint8_t *)cmd->buf + off;
	q->rx_left = q->rx_dlen = len;
	return 0;
}

static int handle_rsp(struct nvmfq *q, const struct nvme_tcp_rsp *r)
{
	struct nvmfq_cmd *cmd = cmd_of(q, r->cqe.cid);

	if (!cmd)
		return fail(q, "CapsuleResp for unknown CID %u", le16toh(r->cqe.cid));
	if (le32toh(r->hdr.plen) != HDR_LEN + hd_len(q))
		return fail(q, "CapsuleResp plen %u", le32toh(r->hdr.plen));
	cmd->cqe = r->cqe;
	if (!cmd->write && cmd->len && (le16toh(r->cqe.status) >> 1) == 0 && cmd->got != cmd->len)
		return fail(q, "CID %u succeeded with %u of %u data bytes", le16toh(r->cqe.cid),
			    cmd->got, cmd->len);
	complete(q, cmd);
	return 0;
}

/* A payload (and its digest) is in. */
static int payload_done(struct nvmfq *q)
{
	const struct nvme_tcp_data *d = (const struct nvme_tcp_data *)q->hdr;
	struct nvmfq_cmd *cmd = q->rx_cmd;

	if (q->ddgst) {
		uint32_t got;
		memcpy(&got, q->ddg, sizeof(got));
		if (le32toh(got) != crc32c(q->rx_dst, q->rx_dlen))
			return fail(q, "C2HData data digest mismatch on CID %u",
				    le16toh(d->cccid));
	}
	cmd->got += q->rx_dlen;
	q->rx_state = RX_HDR;
	q->rx_cmd = NULL;
	if (d->hdr.flags & NVME_TCP_F_SUCCESS) {
		if (cmd->got != cmd->len)
			return fail(q, "C2HData SUCCESS after %u of %u bytes", cmd->got, cmd->len);
		memset(&cmd->cqe, 0, sizeof(cmd->cqe));
		cmd->cqe.cid = d->cccid;
		complete(q, cmd);
	}
	return 0;
}

static int data_done(struct nvmfq *q)
{
	if (!q->ddgst)
		return payload_done(q);
	q->rx_state = RX_DDGST;
	q->ddg_have = 0;
	return 0;
}

/* The whole header (+ digest) is in q->hdr. */
static int header_done(struct nvmfq *q)
{
	const struct nvme_tcp_hdr *h = (const struct nvme_tcp_hdr *)q->hdr;

	q->hdr_have = 0;
	q->hdr_need = sizeof(struct nvme_tcp_hdr);
	if (h->type == NVME_TCP_C2H_TERM) {
		const struct nvme_tcp_term *t = (const struct nvme_tcp_term *)q->hdr;
		return fail(q, "C2HTermReq: FES %u FEI %u", le16toh(t->fes), le32toh(t->fei));
	}
	if (!(h->flags & NVME_TCP_F_HDGST) != !q->hdgst)
		return fail(q, "header digest flag does not match on PDU type %u", h->type);
	if (q->hdgst) {
		uint32_t d;
		memcpy(&d, q->hdr + HDR_LEN, sizeof(d));
		if (le32toh(d) != crc32c(q->hdr, HDR_LEN))
			return fail(q, "header digest mismatch on PDU type %u", h->type);
	}
	switch (h->type) {
	case NVME_TCP_RSP:
		return handle_rsp(q, (const struct nvme_tcp_rsp *)q->hdr);
	case NVME_TCP_C2H_DATA:
		return handle_c2h(q, (const struct nvme_tcp_data *)q->hdr);
	case NVME_TCP_R2T:
		return handle_r2t(q, (const struct nvme_tcp_r2t *)q->hdr);
	default:
		return fail(q, "unexpected PDU type %u", h->type);
	}
}

/* Consume rbuf[r_off, r_len). Returns -1 on a protocol error. */
static int rx_parse(struct nvmfq *q)
{
	while (q->r_off < q->r_len) {
		const uint8_t *p = q->rbuf + q->r_off;
		size_t avail = q->r_len - q->r_off, k;

		switch (q->rx_state) {
		case RX_HDR:
			k = q->hdr_need - q->hdr_have;
			k = k < avail ? k : avail;
			memcpy(q->hdr + q->hdr_have, p, k);
			q->hdr_have += (uint32_t)k;
			q->r_off += k;
			if (q->hdr_have < q->hdr_need)
				break;
			if (q->hdr_need == sizeof(struct nvme_tcp_hdr)) {
				const struct nvme_tcp_hdr *h = (const struct nvme_tcp_hdr *)q->hdr;
				/* Like the Linux host: 24 bytes, whatever the type. */
				if (h->hlen != HDR_LEN)
					return fail(q, "PDU type %u with hlen %u", h->type, h->hlen);
				q->hdr_need = HDR_LEN + (h->type == NVME_TCP_C2H_TERM ? 0 : hd_len(q));
				break;
			}
			if (header_done(q))
				return -1;
			break;
		case RX_DATA:
			k = q->rx_left < avail ? q->rx_left : avail;
			memcpy(q->rx_dst + (q->rx_dlen - q->rx_left), p, k);
			q->rx_left -= (uint32_t)k;
			q->r_off += k;
			if (!q->rx_left && data_done(q))
				return -1;
			break;
		case RX_DDGST:
			k = NVME_TCP_DIGEST_LEN - q->ddg_have;
			k = k < avail ? k : avail;
			memcpy(q->ddg + q->ddg_have, p, k);
			q->ddg_have += (uint32_t)k;
			q->r_off += k;
			if (q->ddg_have == NVME_TCP_DIGEST_LEN && payload_done(q))
				return -1;
			break;
		}
	}
	return 0;
}

/* Wait for input and take what there is: sleeping in readv (the receive
 * timeout bounds it), or with q->poll spinning on non-blocking reads, as a
 * polling host driver does, until the same timeout. */
static ssize_t rx_read(struct nvmfq *q, struct iovec *iov, int n)
{
	ssize_t r;

	if (!q->poll || q->tls) /* a TLS queue sleeps in poll() between records */
		return rx_some(q, iov, n);
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	uint64_t give_up = 0;
	for (;;) {
		r = recvmsg(q->fd, &mh, MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return r;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (!give_up)
			give_up = now + (uint64_t)q->timeout_ms * 1000000u;
		else if (now > give_up) {
			errno = EAGAIN;
			return -1;
		}
	}
}

int nvmfq_process(struct nvmfq *q)
{
	if (q->err[0] || tx_flush(q))
		return -1;
	if (!q->inflight)
		return fail(q, "waiting with nothing in flight");
	/* Left-over sends: wait for room as well as for input (the target
	 * may be waiting for those very bytes). */
	while (tx_pending(q)) {
		struct pollfd p = { .fd = q->fd, .events = POLLIN | POLLOUT };
		int r = poll(&p, 1, q->timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fail(q, r ? "poll: %s" : "timeout (send)%s", r ? strerror(errno) : "");
		if ((p.revents & POLLOUT) && tx_flush(q))
			return -1;
		if (p.revents & (POLLIN | POLLERR | POLLHUP))
			break;
	}

	struct iovec iov[2];
	int n = 0;
	size_t direct = 0;
	if (q->rx_state == RX_DATA) {
		direct = q->rx_left;
		iov[n++] = (struct iovec){ q->rx_dst + (q->rx_dlen - q->rx_left), direct };
	}
	iov[n++] = (struct iovec){ q->rbuf, RBUF_LEN };
	ssize_t r = rx_read(q, iov, n);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return fail(q, "timeout: no answer within %d ms (%u in flight)", q->timeout_ms,
			    q->inflight);
	if (r < 0)
		return fail(q, "receive: %s", strerror(errno));
	if (r == 0)
		return fail(q, "connection closed by the controller");

	uint64_t before = q->completed;
	size_t into_payload = (size_t)r < direct ? (size_t)r : direct;
	if (into_payload) {
		q->rx_left -= (uint32_t)into_payload;
		if (!q->rx_left && data_done(q))
			return -1;
	}
	q->r_off = 0;
	q->r_len = (size_t)r - into_payload;
	if (rx_parse(q))
		return -1;
	return (int)(q->completed - before);
}
