/*
 * A test double of the controller core for transport tests and the PDU
 * fuzzer: it defines the core's side of req.h and transport.h, so a binary
 * that includes this file (once) links the TCP transport without the real
 * core. It knows just enough NVMe to drive the transport:
 *
 *   - a queue must start with Fabrics Connect (1024 bytes in-capsule);
 *     CATTR bit 2 disables SQ flow control (C2HData SUCCESS);
 *   - Write (01h) / Read (02h) on a 4 MiB RAM disk with 4 KiB blocks,
 *     run inline or, with double_async, on the I/O pool (worker.h);
 *     double_gate_close() holds those I/O jobs until double_gate_open();
 *   - Flush (00h) with cdw10 = DOUBLE_DISCONNECT asks the transport to
 *     disconnect the queue from inside execute();
 *   - PSDT != SGL -> Invalid Field; any other opcode -> Invalid Opcode
 *     (refused in nvme_req_init, as the real core does).
 */
#ifndef ZNSTGT_TCP_CORE_DOUBLE_H
#define ZNSTGT_TCP_CORE_DOUBLE_H

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "req.h"
#include "transport.h"
#include "worker.h"

#define DOUBLE_LBA 4096u
#define DOUBLE_NLBAS 1024u
#define DOUBLE_DISCONNECT 0xdeadu

struct nvme_sq {
	struct worker *w;
	const struct nvme_transport_ops *ops;
	void *conn;
	bool connected, sqhd_disabled;
	bool closed, drained;
	uint32_t inflight;
	uint16_t qid, sqhd;
	uint32_t size;
};

static uint8_t double_disk[DOUBLE_LBA * DOUBLE_NLBAS];
static bool double_async;
static atomic_int double_sq_allocs, double_sq_frees, double_executed;
static pthread_mutex_t double_gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t double_gate_cond = PTHREAD_COND_INITIALIZER;
static bool double_gate_closed;
static atomic_int double_gate_waiting;

static inline void double_gate_close(void)
{
	pthread_mutex_lock(&double_gate_lock);
	double_gate_closed = true;
	pthread_mutex_unlock(&double_gate_lock);
}

static inline void double_gate_open(void)
{
	pthread_mutex_lock(&double_gate_lock);
	double_gate_closed = false;
	pthread_cond_broadcast(&double_gate_cond);
	pthread_mutex_unlock(&double_gate_lock);
}

struct nvme_sq *nvme_sq_alloc(struct worker *w, const struct nvme_port *port,
			      const char *local_addr, void *conn)
{
	struct nvme_sq *sq = calloc(1, sizeof(*sq));

	if (!sq)
		return NULL;
	sq->w = w;
	sq->ops = port->ops;
	sq->conn = conn;
	atomic_fetch_add(&double_sq_allocs, 1);
	return sq;
}

/* The connection tests run plain channels only: no peer to bind. */
int nvme_sq_set_tls_identity(struct nvme_sq *sq, const char *identity)
{
	(void)sq;
	return identity ? 0 : -1;
}

/* The core's contract: drained once closed with nothing in flight. */
static void double_check_drained(struct nvme_sq *sq)
{
	if (sq->closed && !sq->inflight && !sq->drained) {
		sq->drained = true;
		sq->ops->drained(sq->conn);
	}
}

/* The double parks no commands (no AERs): nothing to give back. */
void nvme_sq_set_peer(struct nvme_sq *sq, const char *peer)
{
}

void nvme_sq_close(struct nvme_sq *sq)
{
	sq->closed = true;
	double_check_drained(sq);
}

void nvme_sq_free(struct nvme_sq *sq)
{
	atomic_fetch_add(&double_sq_frees, 1);
	free(sq);
}

bool nvme_sq_connected(const struct nvme_sq *sq) { return sq->connected; }
uint16_t nvme_sq_qid(const struct nvme_sq *sq) { return sq->qid; }
uint32_t nvme_sq_size(const struct nvme_sq *sq) { return sq->size; }
bool nvme_sq_sqhd_disabled(const struct nvme_sq *sq) { return sq->sqhd_disabled; }

static void double_fill_cqe(struct nvme_req *req, uint16_t status)
{
	struct nvme_sq *sq = req->sq;

	memset(&req->cqe, 0, sizeof(req->cqe));
	req->cqe.cid = req->cmd.cid;
	req->cqe.status = htole16((uint16_t)(status << 1));
	req->cqe.sqid = htole16(sq->qid);
	if (sq->connected && sq->size)
		sq->sqhd = (uint16_t)((sq->sqhd + 1) % sq->size);
	req->cqe.sqhd = htole16(sq->sqhd_disabled ? 0xffff : sq->sqhd);
	req->cqe.result = htole64(status ? 0 : req->result);
}

void nvme_req_execute(struct nvme_req *req)
{
	req->in_flight = true;
	req->sq->inflight++;
	req->execute(req);
}

void nvme_req_complete(struct nvme_req *req, uint16_t status)
{
	struct nvme_sq *sq = req->sq;
	bool in_flight = req->in_flight;

	double_fill_cqe(req, status);
	req->in_flight = false;
	req->ops->queue_response(req);
	if (in_flight) {
		sq->inflight--;
		double_check_drained(sq);
	}
}

static void double_connect(struct nvme_req *req)
{
	struct nvme_sq *sq = req->sq;
	uint32_t cdw11 = le32toh(req->cmd.cdw11);

	if (req->transfer_len != sizeof(struct nvmf_connect_data)) {
		nvme_req_complete(req, nvme_err(NVME_SC_INVALID_FIELD));
		return;
	}
	sq->qid = (uint16_t)(le32toh(req->cmd.cdw10) >> 16);
	sq->size = (cdw11 & 0xffff) + 1;
	sq->sqhd_disabled = (cdw11 >> 16) & 0x04;
	sq->connected = true;
	req->result = 1; /* cntlid */
	nvme_req_complete(req, 0);
}

/* Range check and the copy itself; the status goes to req->status. */
static void double_rw_run(struct io_job *job)
{
	struct nvme_req *req = (struct nvme_req *)((char *)job - offsetof(struct nvme_req, job));
	uint64_t slba = le32toh(req->cmd.cdw10) | (uint64_t)le32toh(req->cmd.cdw11) << 32;
	uint32_t nlb = (le32toh(req->cmd.cdw12) & 0xffff) + 1;

	pthread_mutex_lock(&double_gate_lock);
	atomic_fetch_add(&double_gate_waiting, 1);
	while (double_gate_closed)
		pthread_cond_wait(&double_gate_cond, &double_gate_lock);
	atomic_fetch_sub(&double_gate_waiting, 1);
	pthread_mutex_unlock(&double_gate_lock);

	if (slba + nlb > DOUBLE_NLBAS) {
		req->status = nvme_err(NVME_SC_LBA_RANGE);
	} else if (req->transfer_len != nlb * DOUBLE_LBA) {
		req->status = nvme_err(NVME_SC_SGL_INVALID_DATA);
	} else {
		uint8_t *disk = double_disk + slba * DOUBLE_LBA;
		/* The TCP transport hands over one piece. */
		if (req->iovcnt != 1 || req->iov[0].iov_len != req->transfer_len)
			abort();
		if (req->cmd.opcode == nvme_cmd_write)
			memcpy(disk, req->iov[0].iov_base, req->transfer_len);
		else if (req->may_borrow)
			req->borrowed = disk; /* lent, as the core lends the page cache */
		else
			memcpy(req->iov[0].iov_base, disk, req->transfer_len);
		req->status = 0;
	}
}

static void double_rw_done(struct io_job *job)
{
	struct nvme_req *req = (struct nvme_req *)((char *)job - offsetof(struct nvme_req, job));

	nvme_req_complete(req, req->status);
}

static void double_rw(struct nvme_req *req)
{
	atomic_fetch_add(&double_executed, 1);
	req->job.run = double_rw_run;
	req->job.done = double_rw_done;
	if (double_async && req->sq->w) {
		req->job.worker = req->sq->w;
		io_submit_job(&req->job);
		return;
	}
	double_rw_run(&req->job);
	double_rw_done(&req->job);
}

static void double_flush(struct nvme_req *req)
{
	struct nvme_sq *sq = req->sq;

	atomic_fetch_add(&double_executed, 1);
	if (le32toh(req->cmd.cdw10) == DOUBLE_DISCONNECT)
		sq->ops->disconnect(sq->conn);
	nvme_req_complete(req, 0);
}

bool nvme_req_init(struct nvme_req *req, struct nvme_sq *sq)
{
	req->sq = sq;
	req->ops = sq->ops;
	req->transfer_len = le32toh(req->cmd.dptr.sgl.length);
	req->dir = NVME_DIR_NONE;

	uint16_t bad = 0;
	if ((req->cmd.flags & 0xc0) != 0x40) {
		bad = nvme_err(NVME_SC_INVALID_FIELD);
	} else if (!sq->connected) {
		if (req->cmd.opcode == nvme_admin_fabrics &&
		    nvme_sqe_fctype(&req->cmd) == nvme_fabrics_type_connect) {
			req->dir = NVME_DIR_FROM_HOST;
			req->execute = double_connect;
		} else {
			bad = nvme_err(NVME_SC_CMD_SEQ_ERROR);
		}
	} else if (req->cmd.opcode == nvme_cmd_write) {
		req->dir = NVME_DIR_FROM_HOST;
		req->execute = double_rw;
	} else if (req->cmd.opcode == nvme_cmd_read) {
		req->dir = NVME_DIR_TO_HOST;
		req->execute = double_rw;
	} else if (req->cmd.opcode == nvme_cmd_flush) {
		req->transfer_len = 0;
		req->execute = double_flush;
	} else {
		bad = nvme_err(NVME_SC_INVALID_OPCODE);
	}
	if (bad) {
		double_fill_cqe(req, bad);
		return false;
	}
	return true;
}

#endif
