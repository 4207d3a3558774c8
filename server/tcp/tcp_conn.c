/*
 * One NVMe/TCP connection: the receive state machine and the life of a
 * command on it (NVMe/TCP Transport Specification 1.0, sections 3.3 - 3.6).
 *
 * Receive. Each read takes what the socket has: while a payload is expected,
 * readv() puts its remaining bytes straight into the command's data buffer
 * and anything beyond into a staging buffer; otherwise everything lands in
 * staging. Staging is then consumed completely: header bytes are gathered
 * into c->hdr (a header may straddle two reads), payload bytes are copied to
 * their buffer, digests are collected. Every header is validated before any
 * length in it is used (tcp_pdu.c).
 *
 * A command.
 *   CapsuleCmd -> nvme_req_init() -> in-capsule data? receive it
 *     -> host data still missing? R2T for all of it, H2CData until LAST_PDU
 *     -> nvme_req_execute() -> ... -> tcp_queue_response()
 *     -> C2HData (reads) + CapsuleResp queued (tcp_send.c) -> sent -> context recycled.
 *   A command that fails before executing still has its in-capsule data
 *   consumed (discarded) and is completed in order.
 *
 * Fatal protocol errors send a C2HTermReq (when the send queue is idle, so
 * the stream stays framed) and close. A closing connection frees its queue
 * once the core says it drained (the last executing request came back).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nvme/types.h>

#include "log.h"
#include "tcp.h"
#include "tcp_conn.h"

#define CMD_CHUNK 16             /* contexts are allocated this many at a time */
#define MAX_CMDS (2 * NVME_MAX_QUEUE_SIZE)
#define READS_PER_EVENT 8
#define LINGER_SECONDS 1.
/* ICReq and Fabrics Connect must arrive within this time of the accept;
 * after Connect the controller's keep-alive timer watches the queue. */
#define HANDSHAKE_SECONDS 30.

struct tcp_cmd_chunk {
	struct tcp_cmd_chunk *next;
	struct tcp_cmd cmds[CMD_CHUNK];
};

/* ---- command contexts ---- */

/*
 * Contexts per queue: twice the queue size, since a CID may come back while
 * the response of its previous use is still being sent (host-requirements
 * 2.1, nvmet does the same). Before Connect only the Connect itself may
 * arrive; 32 is the admin queue size.
 */
static uint32_t cmd_limit(const struct tcp_conn *c)
{
	uint32_t size = c->sq && nvme_sq_connected(c->sq) ? nvme_sq_size(c->sq) : 32;
	uint32_t limit = 2 * size;

	return limit < MAX_CMDS ? limit : MAX_CMDS;
}

static struct tcp_cmd *cmd_get(struct tcp_conn *c)
{
	if (!c->free_cmds) {
		if (c->nr_cmds >= cmd_limit(c))
			return NULL;
		struct tcp_cmd_chunk *ch = calloc(1, sizeof(*ch));
		if (!ch)
			return NULL;
		ch->next = c->chunks;
		c->chunks = ch;
		for (int i = CMD_CHUNK - 1; i >= 0; i--) {
			struct tcp_cmd *cmd = &ch->cmds[i];
			cmd->conn = c;
			cmd->ttag = (uint16_t)(c->nr_cmds + (uint32_t)i);
			c->cmds[cmd->ttag] = cmd;
			cmd->next_free = c->free_cmds;
			c->free_cmds = cmd;
		}
		c->nr_cmds += CMD_CHUNK;
	}
	struct tcp_cmd *cmd = c->free_cmds;
	c->free_cmds = cmd->next_free;
	return cmd;
}

void tcp_cmd_put(struct tcp_conn *c, struct tcp_cmd *cmd)
{
	if (cmd->buf)
		tcp_buf_put(c, cmd->buf, cmd->buf_cls);
	cmd->buf = NULL;
	cmd->state = CMD_FREE;
	cmd->next_free = c->free_cmds;
	c->free_cmds = cmd;
}

/* ---- teardown ---- */

static void conn_free(struct tcp_conn *c)
{
	void (*gone)(void *) = c->gone;
	void *arg = c->gone_arg;

	if (c->sq)
		nvme_sq_free(c->sq);
	/* Every context is free by now, its buffer back in the pool. */
	while (c->chunks) {
		struct tcp_cmd_chunk *next = c->chunks->next;
		free(c->chunks);
		c->chunks = next;
	}
	tcp_buf_release_all(c);
	if (c->sock.ops->release)
		c->sock.ops->release(&c->sock);
	free(c->cmds);
	free(c->staging);
	free(c);
	if (gone)
		gone(arg);
}

static void reap_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	conn_free(t->data);
}

/* Free from a fresh loop callback: the caller may be deep inside our own
 * receive path or the core's completion path, both still using c. */
static void conn_schedule_free(struct tcp_conn *c)
{
	if (!ev_is_active(&c->reap)) {
		ev_timer_set(&c->reap, 0., 0.);
		ev_timer_start(c->loop, &c->reap);
	}
}

/* The core's drained callback: the closed queue has no command left in it. */
void tcp_conn_drained(void *conn)
{
	conn_schedule_free(conn);
}

struct tcp_linger {
	ev_io io;
	ev_timer timer;
};

static void linger_end(struct ev_loop *loop, struct tcp_linger *l)
{
	ev_io_stop(loop, &l->io);
	ev_timer_stop(loop, &l->timer);
	close(l->io.fd);
	free(l);
}

static void linger_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	char buf[4096];
	ssize_t r = read(io->fd, buf, sizeof(buf));

	if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
		return;
	linger_end(loop, io->data);
}

static void linger_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	linger_end(loop, t->data);
}

/*
 * Close after a fatal error. close() with unread input makes the kernel
 * reset the connection, and a reset may destroy the C2HTermReq before the
 * host reads it. So send our FIN after it and read and discard whatever the
 * host still sends until it closes too (or LINGER_SECONDS pass).
 */
static void linger_close(struct ev_loop *loop, int fd)
{
	struct tcp_linger *l = malloc(sizeof(*l));

	if (!l) {
		close(fd);
		return;
	}
	shutdown(fd, SHUT_WR);
	ev_io_init(&l->io, linger_io_cb, fd, EV_READ);
	ev_timer_init(&l->timer, linger_timer_cb, LINGER_SECONDS, 0.);
	l->io.data = l->timer.data = l;
	ev_io_start(loop, &l->io);
	ev_timer_start(loop, &l->timer);
}

static void conn_close(struct tcp_conn *c, bool linger)
{
	if (c->closing)
		return;
	c->closing = true;
	c->rx_state = RX_DEAD;
	worker_spin_forget(&c->spin);
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_prepare_stop(c->loop, &c->flush);
	ev_timer_stop(c->loop, &c->handshake);
	if (linger)
		linger_close(c->loop, c->sock.fd);
	else
		close(c->sock.fd);
	c->sock.fd = -1;
	tcp_tx_drop(c);
	/* Every context not inside the core can go now; those executing
	 * come back through tcp_queue_response(). */
	for (uint32_t i = 0; i < c->nr_cmds; i++) {
		struct tcp_cmd *cmd = c->cmds[i];
		if (cmd->state != CMD_FREE && cmd->state != CMD_EXEC)
			tcp_cmd_put(c, cmd);
	}
	/* The core gives back the commands it parks indefinitely (AERs) and
	 * says when the rest came back (tcp_conn_drained). */
	if (c->sq)
		nvme_sq_close(c->sq);
	else
		conn_schedule_free(c);
}

void tcp_conn_close(struct tcp_conn *c)
{
	conn_close(c, false);
}

void tcp_conn_fail(struct tcp_conn *c, const char *what, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		log_debug("tcp %s: %s: %s", c->peer, what, strerror(err));
	else
		log_warn("tcp %s: %s: %s", c->peer, what, strerror(err));
	tcp_conn_close(c);
}

/* A fatal transport error (3.6.2.5): tell the host why, then close. */
static void conn_fatal(struct tcp_conn *c, const struct tcp_pdu_err *err)
{
	log_warn("tcp %s: %s (FES %u, FEI %u): closing", c->peer, err->why, err->fes, err->fei);
	tcp_send_term(c, err->fes, err->fei);
	conn_close(c, true);
}

/* ---- command flow ---- */

/* All host data of cmd is in (or there is none): run it, ask for the rest,
 * or complete it with the error found on the way. */
static void cmd_ready(struct tcp_conn *c, struct tcp_cmd *cmd)
{
	struct nvme_req *req = &cmd->req;

	if (!cmd->inited) {
		/* nvme_req_init() filled the CQE already. */
		tcp_queue_response(req);
	} else if (cmd->status) {
		nvme_req_complete(req, cmd->status);
	} else if (req->dir == NVME_DIR_FROM_HOST && cmd->rbytes < req->transfer_len) {
		tcp_send_r2t(c, cmd);
	} else {
		cmd->state = CMD_EXEC;
		cmd->iov.iov_base = cmd->buf;
		cmd->iov.iov_len = req->transfer_len;
		req->iov = &cmd->iov;
		req->iovcnt = cmd->buf ? 1 : 0;
		/* A data digest is computed before the data is sent: it needs
		 * the data to stay as it was, which a borrowed page need not. */
		req->may_borrow = !c->rxp.ddgst && !c->sock.ops->user_copy;
		nvme_req_execute(req);
	}
}

static void rx_next_pdu(struct tcp_conn *c)
{
	c->rx_state = RX_HDR;
	c->hdr_have = 0;
	c->hdr_need = sizeof(struct nvme_tcp_hdr);
}

static void rx_expect_data(struct tcp_conn *c, struct tcp_cmd *cmd, uint8_t *dst)
{
	c->rx_state = RX_DATA;
	c->rx_cmd = cmd;
	c->rx_dst = dst;
	c->rx_have = 0;
}

static void handle_capsule(struct tcp_conn *c)
{
	const struct nvme_tcp_cmd *pdu = (const struct nvme_tcp_cmd *)c->hdr;
	uint32_t inl = c->info.data_len;
	struct tcp_cmd *cmd = cmd_get(c);

	if (!cmd) {
		struct tcp_pdu_err err = { NVME_TCP_FES_PDU_SEQUENCE, 0,
					   "more commands outstanding than the queue holds" };
		conn_fatal(c, &err);
		return;
	}
	memset(&cmd->req, 0, sizeof(cmd->req));
	memcpy(&cmd->req.cmd, &pdu->sqe, sizeof(cmd->req.cmd));
	cmd->status = 0;
	cmd->rbytes = 0;
	cmd->state = CMD_RECV_DATA;
	cmd->inited = nvme_req_init(&cmd->req, c->sq);
	cmd->req.transport_priv = cmd;

	struct nvme_req *req = &cmd->req;
	if (cmd->inited) {
		bool admin = !nvme_sq_connected(c->sq) || nvme_sq_qid(c->sq) == 0;

		cmd->status = tcp_sgl_check(&req->cmd, inl, tcp_inline_limit(&req->cmd, admin),
					    req->transfer_len);
		if (!cmd->status && inl && req->dir != NVME_DIR_FROM_HOST)
			cmd->status = nvme_err(NVME_SC_INVALID_FIELD);
		if (!cmd->status && req->transfer_len && req->dir != NVME_DIR_NONE) {
			cmd->buf = tcp_buf_get(c, req->transfer_len, &cmd->buf_cls);
			if (!cmd->buf)
				cmd->status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
		}
	}
	if (inl) {
		/* Failed commands still consume their data, into nowhere. */
		rx_expect_data(c, cmd, cmd->status || !cmd->inited ? NULL : cmd->buf);
		return;
	}
	cmd_ready(c, cmd);
}

static void handle_h2c(struct tcp_conn *c)
{
	const struct nvme_tcp_data *d = (const struct nvme_tcp_data *)c->hdr;
	uint16_t ttag = le16toh(d->ttag);
	struct tcp_cmd *cmd = ttag < c->nr_cmds ? c->cmds[ttag] : NULL;
	struct tcp_pdu_err err;

	if (!cmd || cmd->state != CMD_WAIT_H2C) {
		err = (struct tcp_pdu_err){ NVME_TCP_FES_INVALID_HEADER,
					    offsetof(struct nvme_tcp_data, ttag),
					    "H2CData for no outstanding R2T" };
		conn_fatal(c, &err);
		return;
	}
	if (d->cccid != cmd->req.cmd.cid) {
		err = (struct tcp_pdu_err){ NVME_TCP_FES_INVALID_HEADER,
					    offsetof(struct nvme_tcp_data, cccid),
					    "H2CData cccid does not match the R2T" };
		conn_fatal(c, &err);
		return;
	}
	if (tcp_pdu_check_h2c(d, c->info.data_len, cmd->rbytes, cmd->req.transfer_len, &err)) {
		conn_fatal(c, &err);
		return;
	}
	rx_expect_data(c, cmd, (uint8_t *)cmd->buf + cmd->rbytes);
}

static void handle_icreq(struct tcp_conn *c)
{
	const struct nvme_tcp_icreq *req = (const struct nvme_tcp_icreq *)c->hdr;
	struct tcp_pdu_err err;

	if (tcp_pdu_check_icreq(req, &err)) {
		conn_fatal(c, &err);
		return;
	}
	c->sq = nvme_sq_alloc(c->worker, c->port, c->local_addr, c);
	if (!c->sq) {
		log_error("tcp %s: cannot allocate a queue", c->peer);
		tcp_conn_close(c);
		return;
	}
	nvme_sq_set_peer(c->sq, c->peer);
	/* A secure channel's peer: the queue's Connect is bound to it. */
	if (c->sock.ops->peer_identity &&
	    nvme_sq_set_tls_identity(c->sq, c->sock.ops->peer_identity(&c->sock)) != 0) {
		log_error("tcp %s: %s channel without a usable peer identity", c->peer,
			  c->sock.ops->name);
		tcp_conn_close(c);
		return;
	}
	/* Echo the digest choice exactly; the host refuses any difference. */
	c->rxp.hdgst = req->dgst & NVME_TCP_DGST_HDR;
	c->rxp.ddgst = req->dgst & NVME_TCP_DGST_DATA;
	c->rxp.ic_done = true;
	tcp_send_icresp(c, req->dgst);
}

/* A payload (and its digest) is complete. */
static void rx_payload_done(struct tcp_conn *c)
{
	struct tcp_cmd *cmd = c->rx_cmd;
	const struct nvme_tcp_hdr *ch = (const struct nvme_tcp_hdr *)c->hdr;

	rx_next_pdu(c);
	c->rx_cmd = NULL;
	/* A data digest error spoils only this command, which completes
	 * with Transient Transport Error (SPDK's target does the same; nvmet
	 * drops the connection). The framing is intact: plen was checked and
	 * the header digest, if any, too. */
	if (c->info.ddgst_len && c->rx_dst) {
		uint32_t got;
		memcpy(&got, c->ddgst, sizeof(got));
		if (got != tcp_ddgst(c->rx_dst, c->info.data_len)) {
			log_warn("tcp %s: data digest error on CID %u", c->peer,
				 le16toh(cmd->req.cmd.cid));
			cmd->status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_TRAN_TPORT_ERROR);
		}
	}
	cmd->rbytes += c->info.data_len;
	if (ch->type == NVME_TCP_CMD) {
		cmd_ready(c, cmd);
	} else if (cmd->rbytes == cmd->req.transfer_len) {
		cmd_ready(c, cmd);
	}
}

static void rx_data_done(struct tcp_conn *c)
{
	if (c->info.ddgst_len) {
		c->rx_state = RX_DDGST;
		c->ddgst_have = 0;
	} else {
		rx_payload_done(c);
	}
}

/* The whole header (+ digest) is in c->hdr. */
static void rx_header_done(struct tcp_conn *c)
{
	const struct nvme_tcp_hdr *ch = (const struct nvme_tcp_hdr *)c->hdr;
	struct tcp_pdu_err err;

	if (c->rxp.hdgst && ch->type != NVME_TCP_H2C_TERM &&
	    tcp_pdu_check_hdgst(c->hdr, ch->hlen, &err)) {
		conn_fatal(c, &err);
		return;
	}
	switch (ch->type) {
	case NVME_TCP_ICREQ:
		handle_icreq(c);
		break;
	case NVME_TCP_H2C_TERM: {
		const struct nvme_tcp_term *t = (const struct nvme_tcp_term *)c->hdr;
		log_warn("tcp %s: host terminated the connection (FES %u, FEI %u)", c->peer,
			 le16toh(t->fes), le32toh(t->fei));
		tcp_conn_close(c);
		return;
	}
	case NVME_TCP_CMD:
		handle_capsule(c);
		break;
	case NVME_TCP_H2C_DATA:
		handle_h2c(c);
		break;
	}
	/* No payload follows: the next header starts here. */
	if (c->rx_state == RX_HDR)
		rx_next_pdu(c);
}

/* Consume everything in staging. */
static void rx_process(struct tcp_conn *c)
{
	while (c->st_off < c->st_len && c->rx_state != RX_DEAD) {
		const uint8_t *p = c->staging + c->st_off;
		size_t avail = c->st_len - c->st_off;
		size_t k;

		switch (c->rx_state) {
		case RX_HDR:
			k = c->hdr_need - c->hdr_have;
			if (k > avail)
				k = avail;
			memcpy(c->hdr + c->hdr_have, p, k);
			c->hdr_have += (uint32_t)k;
			c->st_off += k;
			if (c->hdr_have < c->hdr_need)
				break;
			if (c->hdr_need == sizeof(struct nvme_tcp_hdr)) {
				struct tcp_pdu_err err;
				if (tcp_pdu_check_hdr((const struct nvme_tcp_hdr *)c->hdr, &c->rxp,
						      &c->info, &err)) {
					conn_fatal(c, &err);
					return;
				}
				c->hdr_need = c->info.hdr_len;
				if (c->hdr_have < c->hdr_need)
					break;
			}
			rx_header_done(c);
			break;
		case RX_DATA:
			k = c->info.data_len - c->rx_have;
			if (k > avail)
				k = avail;
			if (c->rx_dst)
				memcpy(c->rx_dst + c->rx_have, p, k);
			c->rx_have += (uint32_t)k;
			c->st_off += k;
			if (c->rx_have == c->info.data_len)
				rx_data_done(c);
			break;
		case RX_DDGST:
			k = NVME_TCP_DIGEST_LEN - c->ddgst_have;
			if (k > avail)
				k = avail;
			memcpy(c->ddgst + c->ddgst_have, p, k);
			c->ddgst_have += (uint32_t)k;
			c->st_off += k;
			if (c->ddgst_have == NVME_TCP_DIGEST_LEN)
				rx_payload_done(c);
			break;
		}
	}
}

void tcp_conn_handshake(struct tcp_conn *c)
{
	int rc = c->sock.ops->handshake(&c->sock);

	if (rc < 0) {
		tcp_conn_fail(c, "secure channel handshake", -rc);
		return;
	}
	if (rc == 0) {
		if (c->sock.want_write)
			ev_io_start(c->loop, &c->wio);
		else
			ev_io_stop(c->loop, &c->wio);
		return;
	}
	log_debug("tcp %s: %s channel up", c->peer, c->sock.ops->name);
	ev_io_stop(c->loop, &c->wio);
	rx_next_pdu(c);
}

enum rx_read {
	RX_READ_AGAIN,   /* nothing there */
	RX_READ_DRAINED, /* took what there was */
	RX_READ_FULL,    /* filled the buffers: more may be waiting */
	RX_READ_ENDED,   /* the connection closed or failed */
};

/* One read of what the socket has, all of it consumed. */
static enum rx_read rx_read_once(struct tcp_conn *c)
{
	struct iovec iov[2];
	int n = 0;
	size_t direct_room = 0;

	/* A payload in progress goes straight to its buffer. */
	if (c->rx_state == RX_DATA && c->rx_dst) {
		direct_room = c->info.data_len - c->rx_have;
		iov[n].iov_base = c->rx_dst + c->rx_have;
		iov[n++].iov_len = direct_room;
	}
	iov[n].iov_base = c->staging;
	iov[n++].iov_len = TCP_RX_STAGING;

	ssize_t r = c->sock.ops->readv(&c->sock, iov, n);
	if (r < 0) {
		if (errno == EINTR)
			return RX_READ_FULL; /* nothing lost: read again */
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return RX_READ_AGAIN;
		tcp_conn_fail(c, "receive", errno);
		return RX_READ_ENDED;
	}
	if (r == 0) {
		log_debug("tcp %s: connection closed by the host", c->peer);
		tcp_conn_close(c);
		return RX_READ_ENDED;
	}
	size_t direct = (size_t)r < direct_room ? (size_t)r : direct_room;
	c->st_off = 0;
	c->st_len = (size_t)r - direct;
	if (direct) {
		c->rx_have += (uint32_t)direct;
		if (c->rx_have == c->info.data_len)
			rx_data_done(c);
	}
	rx_process(c);
	if (c->rx_state == RX_DEAD)
		return RX_READ_ENDED;
	return (size_t)r < direct_room + TCP_RX_STAGING ? RX_READ_DRAINED : RX_READ_FULL;
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = w->data;
	enum rx_read got = RX_READ_AGAIN;

	if (c->rx_state == RX_HANDSHAKE) {
		tcp_conn_handshake(c);
		if (c->rx_state == RX_HANDSHAKE || c->rx_state == RX_DEAD)
			return;
	}
	for (int round = 0; round < READS_PER_EVENT; round++) {
		enum rx_read r = rx_read_once(c);

		if (r == RX_READ_ENDED)
			return;
		if (r == RX_READ_AGAIN)
			break;
		got = r;
		if (r == RX_READ_DRAINED)
			break;
	}
	if (got != RX_READ_AGAIN)
		worker_spin_served(&c->spin);
}

/* The polling worker's retry (worker_spin_served), after the loop's send
 * watchers ran: one read, whatever it brought served as rio_cb would, and
 * the replies it produced sent at once (the loop's next send watchers are
 * a round away). Anything but "nothing there" ends the spin. */
static bool spin_try(struct worker_spin *s)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)s - offsetof(struct tcp_conn, spin));
	enum rx_read r = rx_read_once(c);

	if (r == RX_READ_AGAIN)
		return false;
	if (r != RX_READ_ENDED) {
		tcp_tx_send_queued(c);
		if (!c->closing) /* a failed send closes, which forgot s */
			worker_spin_served(s);
	}
	return true;
}

/* ---- start ---- */

void tcp_conn_on_connected(struct tcp_conn *c, void (*fn)(void *arg))
{
	c->connected = fn;
}

static void handshake_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct tcp_conn *c = t->data;

	log_warn("tcp %s: no %s within %.0f s: closing", c->peer,
		 c->rx_state == RX_HANDSHAKE ? "secure channel"
		 : c->rxp.ic_done	    ? "Fabrics Connect"
					    : "ICReq",
		 HANDSHAKE_SECONDS);
	tcp_conn_close(c);
}

static void describe_peer(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
		} else {
			snprintf(host, sizeof(host), "local");
		}
	}
	snprintf(out, outlen, "%s:%u", host, port);
}

struct tcp_conn *tcp_conn_start(struct ev_loop *loop, struct worker *w, int fd,
				const struct tcp_sock_ops *sock, const struct nvme_port *port,
				const char *local_addr, void (*gone)(void *arg), void *arg)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		goto fail;
	c->staging = malloc(TCP_RX_STAGING);
	c->cmds = calloc(MAX_CMDS, sizeof(*c->cmds));
	if (!c->staging || !c->cmds)
		goto fail;
	c->loop = loop;
	c->worker = w;
	c->sock.ops = sock ? sock : &tcp_sock_plain;
	c->sock.fd = fd;
	if (c->sock.ops->open && c->sock.ops->open(&c->sock) < 0) {
		log_error("tcp: %s channel setup failed", c->sock.ops->name);
		free(c->staging);
		free(c->cmds);
		free(c);
		close(fd);
		return NULL;
	}
	c->port = port;
	snprintf(c->local_addr, sizeof(c->local_addr), "%s", local_addr ? local_addr : "");
	describe_peer(fd, c->peer, sizeof(c->peer));
	c->gone = gone;
	c->gone_arg = arg;
	if (c->sock.ops->handshake)
		c->rx_state = RX_HANDSHAKE;
	else
		rx_next_pdu(c);

	ev_io_init(&c->rio, rio_cb, fd, EV_READ);
	ev_io_init(&c->wio, tcp_wio_cb, fd, EV_WRITE);
	ev_prepare_init(&c->flush, tcp_flush_cb);
	ev_timer_init(&c->reap, reap_cb, 0., 0.);
	ev_timer_init(&c->handshake, handshake_cb, HANDSHAKE_SECONDS, 0.);
	c->rio.data = c->wio.data = c->flush.data = c->reap.data = c->handshake.data = c;
	c->spin.try = spin_try;
	ev_io_start(loop, &c->rio);
	ev_timer_start(loop, &c->handshake);
	log_debug("tcp %s: connected", c->peer);
	return c;
fail:
	log_error("tcp: out of memory for a new connection");
	if (c) {
		free(c->staging);
		free(c->cmds);
		free(c);
	}
	close(fd);
	return NULL;
}
