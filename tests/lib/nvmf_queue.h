/*
 * A fast host-side NVMe/TCP I/O queue for the load generator: many commands
 * in flight on one connection, completions delivered by callback, sends
 * batched. nvmf_client.h sets the connection up (ICReq, Fabrics Connect);
 * this takes over its socket for the I/O.
 *
 *   struct nvmfq q;
 *   nvmfq_init(&q, &client, depth, max_len, done_cb, arg);
 *   cmd = &q.cmds[i];  fill cmd->sqe (opcode, nsid, cdw10..15), buf, len, write
 *   nvmfq_submit(&q, cmd);            queued, not sent yet
 *   while (...) nvmfq_process(&q);    sends what is queued in one sendmsg,
 *                                     waits for input, runs done_cb for every
 *                                     command it completes; done_cb may
 *                                     submit again (that goes out with the
 *                                     next nvmfq_process)
 *   nvmfq_destroy(&q);                closes the socket
 *
 * Costs per round at steady state: one sendmsg for everything queued, one
 * readv that takes whatever arrived (payloads land straight in their
 * buffers when a read starts inside one), no allocation. The protocol is
 * checked as strictly as nvmf_client.c does (and as the Linux host does):
 * header and data digests, PDU lengths, C2HData offsets in order, R2T
 * ranges; anything wrong ends the queue with a reason in q->err.
 */
#ifndef ZNSTGT_NVMF_QUEUE_H
#define ZNSTGT_NVMF_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvme_tcp.h"
#include "nvme_wire.h"

struct nvmf_client;
struct nvmf_tls;
struct nvmfq;

struct nvmfq_cmd {
	/* Filled by the caller before nvmfq_submit(); CID, PSDT and SGL 1
	 * are the queue's. */
	struct nvme_sqe sqe;
	void *buf;                 /* data in or out */
	uint32_t len;              /* bytes (0: no data) */
	bool write;                /* data goes to the controller */
	uint64_t tag;              /* the caller's */

	/* Valid in the done callback. */
	struct nvme_cqe cqe;
	uint16_t status;           /* cqe status without the phase bit, 0 = success */

	/* The queue's. */
	bool busy;
	bool r2t_seen;
	uint32_t got;              /* data bytes received (reads) */
	uint8_t pdu[sizeof(struct nvme_tcp_cmd) + NVME_TCP_DIGEST_LEN]; /* CapsuleCmd (+ digest) */
	uint32_t ddgst;            /* in-capsule data digest */
	uint8_t (*h2c)[sizeof(struct nvme_tcp_data) + NVME_TCP_DIGEST_LEN];
	uint32_t *h2c_ddgst;
};

typedef void (*nvmfq_done_fn)(struct nvmfq *q, struct nvmfq_cmd *cmd);

struct nvmfq {
	int fd;
	struct nvmf_tls *tls;      /* the client's TLS channel (nvmf_tls.h), or NULL */
	bool hdgst, ddgst;
	uint32_t io_inline;        /* in-capsule data limit */
	uint32_t maxh2cdata;
	int timeout_ms;            /* no input for this long while waiting: error */
	bool poll;                 /* wait for input spinning on non-blocking reads */
	uint16_t depth;
	uint32_t max_len;
	struct nvmfq_cmd *cmds;    /* depth of them; index = CID */
	uint32_t inflight;
	uint64_t completed;
	nvmfq_done_fn done;
	void *arg;                 /* the caller's */
	char err[160];

	/* receive */
	uint8_t *rbuf;
	size_t r_off, r_len;
	uint8_t rx_state;
	uint8_t hdr[sizeof(struct nvme_tcp_data) + NVME_TCP_DIGEST_LEN];
	uint32_t hdr_have, hdr_need;
	struct nvmfq_cmd *rx_cmd;  /* whose payload is arriving */
	uint8_t *rx_dst;
	uint32_t rx_left;          /* payload bytes still to come */
	uint32_t rx_dlen;          /* the current payload's length */
	uint8_t ddg[NVME_TCP_DIGEST_LEN];
	uint32_t ddg_have;

	/* send */
	struct iovec *txv;
	int tx_first, tx_n, tx_cap;
};

/*
 * Take over c's socket (c must be connected: ICResp and Connect done; its
 * digests, MAXH2CDATA, io_inline and timeout are used). depth commands at
 * most, each moving at most max_len bytes. c is left closed (fd -1).
 */
int nvmfq_init(struct nvmfq *q, struct nvmf_client *c, uint16_t depth, uint32_t max_len,
	       nvmfq_done_fn done, void *arg);
void nvmfq_destroy(struct nvmfq *q);
/* Queue cmd (one of q->cmds, not busy) for sending. -1 if it cannot be. */
int nvmfq_submit(struct nvmfq *q, struct nvmfq_cmd *cmd);
/* Send what is queued, wait for input, handle it. Returns the number of
 * commands completed (0 is possible), or -1 (q->err says why). */
int nvmfq_process(struct nvmfq *q);

#endif
