/*
 * The send path of a connection, all of it: building every PDU the
 * controller sends (NVMe/TCP 1.0, 3.6.2: ICResp, R2T, C2HData, CapsuleResp,
 * C2HTermReq), the response to a completed request, and the send queue.
 *
 * Everything is a struct tcp_tx queued in order. Queuing only arms an
 * ev_prepare watcher: the queue is written just before the loop next goes
 * to sleep, so all completions and R2Ts produced by one loop iteration leave
 * in a single sendmsg() (batching). A partial write (the socket buffer is
 * full) leaves the rest queued and waits for EPOLLOUT; the loop never
 * blocks.
 *
 * Read data lent by a namespace (req->borrowed: the page cache's own pages,
 * blockstore.h) is sent from where it lies, but only until the loop next
 * sleeps: whatever of it the flush could not send is copied into the
 * command's buffer then (tx_unlend). A host that stops reading would
 * otherwise hold the pages for as long as it likes and be sent what was
 * written to those blocks meanwhile - by another host too, one that took a
 * reservation after the read had passed its check.
 */
#include <errno.h>
#include <string.h>

#include <nvme/types.h>

#include "crc32c.h"
#include "nvme_cmd.h"
#include "sigbus_guard.h"
#include "tcp_conn.h"

#define TERM_HLEN ((uint8_t)sizeof(struct nvme_tcp_term))
#define DATA_HLEN ((uint8_t)sizeof(struct nvme_tcp_data))
#define TX_IOV_MAX 64
/* The log's word for a lent page the send could not read (tx_unlend). */
#define LENT_LOST "send (read data lost from the page cache)"

/* ---- builders ---- */

static void put_hdr(void *buf, uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
	struct nvme_tcp_hdr ch = {
		.type = type, .flags = flags, .hlen = hlen, .pdo = pdo, .plen = htole32(plen),
	};
	memcpy(buf, &ch, sizeof(ch));
}

/* Append the header digest over hlen bytes; returns the header length. */
static size_t finish_hdr(void *buf, uint8_t hlen, bool hdgst)
{
	if (!hdgst)
		return hlen;
	uint32_t d = htole32(crc32c(buf, hlen));
	memcpy((uint8_t *)buf + hlen, &d, sizeof(d));
	return hlen + NVME_TCP_DIGEST_LEN;
}

void tcp_build_icresp(struct nvme_tcp_icresp *r, uint8_t dgst, uint32_t maxh2cdata)
{
	memset(r, 0, sizeof(*r));
	put_hdr(r, NVME_TCP_ICRESP, 0, sizeof(*r), 0, sizeof(*r));
	r->pfv = htole16(NVME_TCP_PFV_1_0);
	r->cpda = 0;
	r->dgst = dgst & (NVME_TCP_DGST_HDR | NVME_TCP_DGST_DATA);
	r->maxh2cdata = htole32(maxh2cdata);
}

size_t tcp_build_rsp(void *buf, const struct nvme_cqe *cqe, bool hdgst)
{
	const uint8_t hlen = sizeof(struct nvme_tcp_rsp);
	uint32_t hd = hdgst ? NVME_TCP_DIGEST_LEN : 0;

	put_hdr(buf, NVME_TCP_RSP, hdgst ? NVME_TCP_F_HDGST : 0, hlen, 0, hlen + hd);
	memcpy((uint8_t *)buf + sizeof(struct nvme_tcp_hdr), cqe, sizeof(*cqe));
	return finish_hdr(buf, hlen, hdgst);
}

size_t tcp_build_c2h_data(void *buf, uint16_t cccid, uint32_t datao, uint32_t datal,
			  uint8_t flags, bool hdgst, bool ddgst)
{
	struct nvme_tcp_data d;
	uint32_t hd = hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = ddgst ? NVME_TCP_DIGEST_LEN : 0;

	memset(&d, 0, sizeof(d));
	flags &= NVME_TCP_F_LAST_PDU | NVME_TCP_F_SUCCESS;
	if (hdgst)
		flags |= NVME_TCP_F_HDGST;
	if (ddgst)
		flags |= NVME_TCP_F_DDGST;
	put_hdr(&d, NVME_TCP_C2H_DATA, flags, DATA_HLEN, DATA_HLEN + hd, DATA_HLEN + hd + datal + dd);
	d.cccid = cccid; /* echoed bit-exactly, as received */
	d.datao = htole32(datao);
	d.datal = htole32(datal);
	memcpy(buf, &d, sizeof(d));
	return finish_hdr(buf, DATA_HLEN, hdgst);
}

size_t tcp_build_r2t(void *buf, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
		     bool hdgst)
{
	struct nvme_tcp_r2t r;
	uint32_t hd = hdgst ? NVME_TCP_DIGEST_LEN : 0;

	memset(&r, 0, sizeof(r));
	put_hdr(&r, NVME_TCP_R2T, hdgst ? NVME_TCP_F_HDGST : 0, sizeof(r), 0, sizeof(r) + hd);
	r.cccid = cccid;
	r.ttag = htole16(ttag);
	r.r2to = htole32(r2to);
	r.r2tl = htole32(r2tl);
	memcpy(buf, &r, sizeof(r));
	return finish_hdr(buf, sizeof(r), hdgst);
}

size_t tcp_build_c2h_term(void *buf, uint16_t fes, uint32_t fei, const void *bad_hdr,
			  size_t bad_len)
{
	struct nvme_tcp_term t;

	if (bad_len > NVME_TCP_TERM_MAX_DATA)
		bad_len = NVME_TCP_TERM_MAX_DATA;
	memset(&t, 0, sizeof(t));
	put_hdr(&t, NVME_TCP_C2H_TERM, 0, TERM_HLEN, 0, TERM_HLEN + bad_len);
	t.fes = htole16(fes);
	t.fei = htole32(fei);
	memcpy(buf, &t, sizeof(t));
	if (bad_len)
		memcpy((uint8_t *)buf + sizeof(t), bad_hdr, bad_len);
	return sizeof(t) + bad_len;
}

/* ---- responses ---- */

static void cmd_tx_sent(struct tcp_conn *c, struct tcp_tx *tx)
{
	struct tcp_cmd *cmd = container_of(tx, struct tcp_cmd, tx);

	if (cmd->state == CMD_R2T_QUEUED)
		cmd->state = CMD_WAIT_H2C; /* now the host may answer it */
	else
		tcp_cmd_put(c, cmd);
}

static void tx_add(struct tcp_tx *tx, void *base, size_t len)
{
	if (!len)
		return;
	tx->iov[tx->count].iov_base = base;
	tx->iov[tx->count].iov_len = len;
	tx->count++;
}

static void tx_reset(struct tcp_tx *tx)
{
	tx->first = tx->count = 0;
	tx->lent = -1;
	tx->sent = cmd_tx_sent;
}

/* R2T for everything still missing (one at a time: MAXR2T is 0). */
void tcp_send_r2t(struct tcp_conn *c, struct tcp_cmd *cmd)
{
	size_t len = tcp_build_r2t(cmd->hdr, cmd->req.cmd.cid, cmd->ttag, cmd->rbytes,
				   cmd->req.transfer_len - cmd->rbytes, c->rxp.hdgst);

	cmd->state = CMD_R2T_QUEUED;
	tx_reset(&cmd->tx);
	tx_add(&cmd->tx, cmd->hdr, len);
	tcp_tx_queue(c, &cmd->tx);
}

/*
 * The core is done with req. Reads send their data as one C2HData PDU; with
 * SQ flow control disabled and a plain success (result 0) the PDU carries
 * SUCCESS and replaces the CapsuleResp (3.6.2.9, host-requirements 1.6).
 */
void tcp_queue_response(struct nvme_req *req)
{
	struct tcp_cmd *cmd = req->transport_priv;
	struct tcp_conn *c = cmd->conn;
	bool hdgst = c->rxp.hdgst, ddgst = c->rxp.ddgst;

	if (c->closing) {
		tcp_cmd_put(c, cmd);
		return;
	}
	cmd->state = CMD_SEND;
	tx_reset(&cmd->tx);
	if (ev_is_active(&c->handshake) && nvme_sq_connected(c->sq)) {
		ev_timer_stop(c->loop, &c->handshake);
		if (c->connected)
			c->connected(c->gone_arg);
	}

	bool ok = (le16toh(req->cqe.status) >> 1) == 0;
	/* The data is in our buffer (req->iov describes it to the core), or
	 * lent by the namespace (req->borrowed: sent from the page cache). */
	if (ok && req->dir == NVME_DIR_TO_HOST && req->transfer_len && cmd->buf) {
		const void *data = req->borrowed ? req->borrowed : cmd->buf;
		bool success = c->sq && nvme_sq_sqhd_disabled(c->sq) && req->cqe.result == 0;
		uint8_t flags = NVME_TCP_F_LAST_PDU | (success ? NVME_TCP_F_SUCCESS : 0);
		size_t hl = tcp_build_c2h_data(cmd->hdr, req->cmd.cid, 0, req->transfer_len, flags,
					       hdgst, ddgst);

		tx_add(&cmd->tx, cmd->hdr, hl);
		if (req->borrowed)
			cmd->tx.lent = cmd->tx.count;
		tx_add(&cmd->tx, (void *)data, req->transfer_len);
		if (ddgst) { /* never lent (may_borrow) */
			cmd->ddgst = tcp_ddgst(cmd->buf, req->transfer_len);
			tx_add(&cmd->tx, &cmd->ddgst, sizeof(cmd->ddgst));
		}
		if (success) {
			tcp_tx_queue(c, &cmd->tx);
			return;
		}
	}
	tx_add(&cmd->tx, cmd->rsp, tcp_build_rsp(cmd->rsp, &req->cqe, hdgst));
	tcp_tx_queue(c, &cmd->tx);
}


static void ctl_tx_sent(struct tcp_conn *c, struct tcp_tx *tx)
{
}

/* ICResp (3.6.2.3) echoing the host's digest choice. */
void tcp_send_icresp(struct tcp_conn *c, uint8_t dgst)
{
	tcp_build_icresp(&c->icresp, dgst, TCP_MAXH2CDATA);
	c->ctl_tx.first = 0;
	c->ctl_tx.iov[0].iov_base = &c->icresp;
	c->ctl_tx.iov[0].iov_len = sizeof(c->icresp);
	c->ctl_tx.count = 1;
	c->ctl_tx.lent = -1;
	c->ctl_tx.sent = ctl_tx_sent;
	tcp_tx_queue(c, &c->ctl_tx);
}

/*
 * A C2HTermReq quoting the header at fault (3.6.2.5). It goes out only when
 * nothing else is half-sent (it must start on a PDU boundary), written
 * directly since the connection closes right after; it is a courtesy
 * either way, the host resets the association on the close.
 */
void tcp_send_term(struct tcp_conn *c, uint16_t fes, uint32_t fei)
{
	uint8_t term[TCP_TERM_MAX];
	size_t len = tcp_build_c2h_term(term, fes, fei, c->hdr, c->hdr_have);

	tcp_tx_flush(c);
	if (!c->closing && !c->tx_head) {
		struct iovec v = { .iov_base = term, .iov_len = len };
		ssize_t w = c->sock.ops->writev(&c->sock, &v, 1);
		(void)w;
	}
}

/* ---- the send queue ---- */

void tcp_tx_queue(struct tcp_conn *c, struct tcp_tx *tx)
{
	tx->next = NULL;
	if (c->tx_tail)
		c->tx_tail->next = tx;
	else
		c->tx_head = tx;
	c->tx_tail = tx;
	/* Waiting for writability already: the write watcher will flush - but
	 * lent data must be sent or copied before the loop sleeps. */
	if ((!ev_is_active(&c->wio) || tx->lent >= 0) && !ev_is_active(&c->flush))
		ev_prepare_start(c->loop, &c->flush);
}

/* Copy what is left to send of tx's lent piece into its command's buffer,
 * where a copying read would have put it. -EFAULT: the page is gone (the
 * disk could not read it back, or the file was cut short). */
static int tx_unlend(struct tcp_tx *tx)
{
	struct tcp_cmd *cmd = container_of(tx, struct tcp_cmd, tx);
	struct iovec *v = &tx->iov[tx->lent];
	size_t sent = (size_t)((const char *)v->iov_base - (const char *)cmd->req.borrowed);
	struct iovec dst = { (char *)cmd->buf + sent, v->iov_len };

	if (tx->first <= tx->lent && sigbus_guard_copy(&dst, 1, v->iov_base, v->iov_len))
		return -EFAULT;
	v->iov_base = dst.iov_base;
	tx->lent = -1;
	return 0;
}

/* Account for n bytes written: finish fully sent entries in order. */
static void tx_advance(struct tcp_conn *c, size_t n)
{
	while (n) {
		struct tcp_tx *tx = c->tx_head;
		struct iovec *v = &tx->iov[tx->first];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		tx->first++;
		/* Entries are complete once their last piece is out; empty
		 * pieces are never queued. */
		if (tx->first == tx->count) {
			c->tx_head = tx->next;
			if (!c->tx_head)
				c->tx_tail = NULL;
			tx->sent(c, tx);
		}
	}
}

void tcp_tx_flush(struct tcp_conn *c)
{
	while (c->tx_head && !c->closing) {
		struct iovec iov[TX_IOV_MAX];
		int n = 0;

		for (struct tcp_tx *tx = c->tx_head; tx && n < TX_IOV_MAX; tx = tx->next)
			for (int i = tx->first; i < tx->count && n < TX_IOV_MAX; i++)
				iov[n++] = tx->iov[i];

		ssize_t w = c->sock.ops->writev(&c->sock, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* EFAULT: the kernel could not read a lent page. */
			tcp_conn_fail(c, errno == EFAULT ? LENT_LOST : "send", errno);
			return;
		}
		size_t total = 0;
		for (int i = 0; i < n; i++)
			total += iov[i].iov_len;
		tx_advance(c, (size_t)w);
		if ((size_t)w < total)
			break; /* socket buffer full */
	}
	if (c->closing)
		return;
	for (struct tcp_tx *tx = c->tx_head; tx; tx = tx->next)
		if (tx->lent >= 0 && tx_unlend(tx)) {
			tcp_conn_fail(c, LENT_LOST, EFAULT);
			return;
		}
	if (c->tx_head)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
}

void tcp_tx_send_queued(struct tcp_conn *c)
{
	if (!ev_is_active(&c->flush))
		return;
	ev_prepare_stop(c->loop, &c->flush);
	tcp_tx_flush(c);
}

void tcp_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	tcp_tx_send_queued(p->data);
}

void tcp_wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = w->data;

	/* A handshake that waits for room to write (tcp_sock.h). */
	if (c->rx_state == RX_HANDSHAKE) {
		tcp_conn_handshake(c);
		return;
	}
	tcp_tx_flush(c);
}

/* The connection is closing: forget what was never sent. Entries belong to
 * commands, which the caller recycles. */
void tcp_tx_drop(struct tcp_conn *c)
{
	c->tx_head = c->tx_tail = NULL;
}
