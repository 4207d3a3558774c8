/*
 * Private to the NVMe/TCP connection code (tcp_conn.c: receive path and
 * command flow; tcp_send.c: the send path; tcp_buf.c: data buffers). One
 * struct tcp_conn is one TCP connection = one NVMe queue, owned by one loop,
 * so nothing here is locked.
 */
#ifndef ZNSTGT_TCP_CONN_H
#define ZNSTGT_TCP_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "req.h"
#include "tcp_pdu.h"
#include "tcp_sock.h"
#include "transport.h"
#include "worker.h"

struct tcp_conn;

/* One entry of the send queue: up to four pieces (header, data, data
 * digest, CapsuleResp) sent back to back. A partial write advances iov in
 * place. */
struct tcp_tx {
	struct tcp_tx *next;
	struct iovec iov[4];
	int first, count;                 /* unsent pieces: iov[first .. count) */
	int lent;                         /* the piece lent by a namespace, or -1
					   * (a command's read data: tcp_send.c) */
	void (*sent)(struct tcp_conn *c, struct tcp_tx *tx);
};

enum tcp_cmd_state {
	CMD_FREE,
	CMD_RECV_DATA,   /* in-capsule data arriving */
	CMD_R2T_QUEUED,  /* R2T in the send queue: no H2CData accepted yet */
	CMD_WAIT_H2C,    /* R2T sent: H2CData expected */
	CMD_EXEC,        /* in the core (req->execute called, not completed) */
	CMD_SEND,        /* C2HData / CapsuleResp in the send queue */
};

/* Per-command context, preallocated; its index is the R2T transfer tag. */
struct tcp_cmd {
	struct nvme_req req;
	struct tcp_conn *conn;
	struct tcp_tx tx;
	struct tcp_cmd *next_free;
	uint16_t ttag;
	uint8_t state;           /* enum tcp_cmd_state */
	bool inited;             /* nvme_req_init() accepted the command */
	uint16_t status;         /* transport error to complete with, 0 if none */
	uint32_t rbytes;         /* host data received so far */
	void *buf;               /* data buffer (tcp_buf_get) or NULL */
	struct iovec iov;        /* the request's scatter list: buf, one piece */
	uint8_t buf_cls;
	uint32_t ddgst;          /* C2HData digest, wire order */
	uint8_t hdr[sizeof(struct nvme_tcp_data) + NVME_TCP_DIGEST_LEN]; /* R2T or C2HData */
	uint8_t rsp[sizeof(struct nvme_tcp_rsp) + NVME_TCP_DIGEST_LEN];
};

enum tcp_rx_state {
	RX_HANDSHAKE, /* the channel's handshake (tcp_sock.h), before ICReq */
	RX_HDR,     /* collecting a PDU header (+ header digest) into c->hdr */
	RX_DATA,    /* payload into rx_dst (NULL: discarded) */
	RX_DDGST,   /* the payload's data digest */
	RX_DEAD,    /* closing: input ignored */
};

#define TCP_BUF_CLASSES 9        /* 4 KiB << 0..8: up to TCP_MDTS_BYTES */
#define TCP_RX_STAGING (32u * 1024)

struct tcp_conn {
	struct ev_loop *loop;
	struct worker *worker;
	struct tcp_sock sock;    /* every read and write goes through it */
	ev_io rio, wio;
	ev_prepare flush;        /* batched send just before the loop sleeps */
	ev_timer reap;           /* frees the connection outside any call chain */
	ev_timer handshake;      /* ICReq + Connect deadline */
	struct worker_spin spin; /* a polling worker's retry of this socket (worker.h) */
	struct nvme_sq *sq;
	const struct nvme_port *port;
	char local_addr[64];
	char peer[72];
	bool closing;
	void (*gone)(void *arg);
	void (*connected)(void *arg); /* tcp_conn_on_connected() */
	void *gone_arg;

	/* receive */
	struct tcp_rx_params rxp;
	uint8_t rx_state;        /* enum tcp_rx_state */
	uint8_t *staging;        /* what one read brought beyond the current payload */
	size_t st_off, st_len;
	uint8_t hdr[TCP_MAX_HDR + NVME_TCP_DIGEST_LEN];
	uint32_t hdr_have, hdr_need;
	struct tcp_pdu_info info;
	struct tcp_cmd *rx_cmd;
	uint8_t *rx_dst;
	uint32_t rx_have;
	uint8_t ddgst[NVME_TCP_DIGEST_LEN];
	uint32_t ddgst_have;

	/* commands */
	struct tcp_cmd **cmds;   /* by transfer tag */
	uint32_t nr_cmds;
	struct tcp_cmd *free_cmds;
	struct tcp_cmd_chunk *chunks;

	/* send */
	struct tcp_tx *tx_head, *tx_tail;
	struct tcp_tx ctl_tx;    /* ICResp */
	struct nvme_tcp_icresp icresp;

	/* data buffers: free lists per size class */
	void *free_bufs[TCP_BUF_CLASSES];
	size_t cached_bytes;
};

/* tcp_send.c: everything that goes to the host */
void tcp_queue_response(struct nvme_req *req);   /* the core completed req */
void tcp_send_r2t(struct tcp_conn *c, struct tcp_cmd *cmd);
void tcp_send_icresp(struct tcp_conn *c, uint8_t dgst);
void tcp_send_term(struct tcp_conn *c, uint16_t fes, uint32_t fei);
void tcp_tx_queue(struct tcp_conn *c, struct tcp_tx *tx);
void tcp_tx_flush(struct tcp_conn *c);
/* Send now what waits for the flush watcher (none waiting: nothing). */
void tcp_tx_send_queued(struct tcp_conn *c);
void tcp_tx_drop(struct tcp_conn *c);
void tcp_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents);
void tcp_wio_cb(struct ev_loop *loop, ev_io *w, int revents);

/* tcp_buf.c */
void *tcp_buf_get(struct tcp_conn *c, uint32_t len, uint8_t *cls);
void tcp_buf_put(struct tcp_conn *c, void *buf, uint8_t cls);
void tcp_buf_release_all(struct tcp_conn *c);

/* tcp_conn.c */
void tcp_conn_fail(struct tcp_conn *c, const char *what, int err);
/* Recycle a command context (and its data buffer). */
void tcp_cmd_put(struct tcp_conn *c, struct tcp_cmd *cmd);
/* Advance the channel's handshake (socket readable or writable). */
void tcp_conn_handshake(struct tcp_conn *c);
/* The transport's drained callback (transport.h): free the connection soon. */
void tcp_conn_drained(void *conn);

#endif
