/*
 * Request entry and exit: nvme_req_init() checks what every command shares
 * (flags, data pointer, data direction, transfer length) and hands the rest
 * to the parser of the queue's command set; nvme_req_complete() fills the
 * CQE. Below them, the data helpers over the request's scatter list.
 */
#include "req.h"

#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "inject.h"
#include "log.h"
#include "ns_stats.h"
#include "nvme_cmd.h"
#include "transport.h"

#define NVME_FLAGS_FUSE_MASK 0x03u
#define NVME_FLAGS_PSDT_MASK 0xc0u
#define NVME_FLAGS_PSDT_PRP  0x00u   /* PRPs for data */
#define NVME_FLAGS_PSDT_SGL  0x40u   /* SGL for data, metadata in one buffer */

/*
 * Data direction from bits 1:0 of the opcode (NVMe Base 2.0, 5 Figure 28);
 * Fabrics commands carry it in the fctype (NVMe-oF 1.1, 6.1).
 */
static enum nvme_data_dir opcode_dir(const struct nvme_sqe *c)
{
	uint8_t op = c->opcode == nvme_admin_fabrics ? nvme_sqe_fctype(c) : c->opcode;

	switch (op & 3u) {
	case NVME_DATA_TFR_HOST_TO_CTRL:
		return NVME_DIR_FROM_HOST;
	case NVME_DATA_TFR_CTRL_TO_HOST:
		return NVME_DIR_TO_HOST;
	default:
		return NVME_DIR_NONE; /* bidirectional: no command of ours */
	}
}

/*
 * SGL 1 (NVMe Base 2.0, 4.3.2; NVMe-oF 1.1, 2.3.1): in-capsule data is a
 * Data Block with an offset relative to ICDOFF (0); data the transport
 * moves by its own means is a Transport Data Block. A command without data may also come
 * with an all-zero descriptor.
 */
static uint16_t parse_sgl(struct nvme_req *req)
{
	const struct nvme_sgl_desc *sgl = &req->cmd.dptr.sgl;
	uint32_t len = le32toh(sgl->length);

	switch (sgl->type) {
	case NVME_SGL_TYPE_DATA_BLOCK_OFFSET:
		if (le64toh(sgl->addr) != 0)
			return nvme_err(NVME_SC_SGL_INVALID_OFFSET);
		if (len && req->dir != NVME_DIR_FROM_HOST)
			return nvme_err(NVME_SC_INVALID_FIELD);
		break;
	case NVME_SGL_TYPE_TRANSPORT_BLOCK:
		break;
	case 0:
		if (len != 0)
			return nvme_err(NVME_SC_SGL_INVALID_TYPE);
		break;
	default:
		return nvme_err(NVME_SC_SGL_INVALID_TYPE);
	}
	req->transfer_len = len;
	return 0;
}

static uint16_t parse(struct nvme_req *req)
{
	const struct nvme_sqe *c = &req->cmd;
	struct nvme_sq *sq = req->sq;
	uint16_t st;

	/* No fused operations (nvmet's rule). The data pointer (NVMe Base
	 * 2.0, 4.1.1) is what the transport takes: an SGL (PSDT 01b) on
	 * fabrics, PRPs (00b) on PCIe. */
	if (c->flags & NVME_FLAGS_FUSE_MASK)
		return nvme_err(NVME_SC_INVALID_FIELD);
	switch (c->flags & NVME_FLAGS_PSDT_MASK) {
	case NVME_FLAGS_PSDT_SGL:
		if (!(req->ops->data_ptrs & NVME_XPORT_SGL))
			return nvme_err(NVME_SC_INVALID_FIELD);
		/* On PCIe the SGL lives in guest memory: the transport walks
		 * it; the length is the command's, as with PRPs. */
		req->sgl_mem = !req->ops->fabrics;
		break;
	case NVME_FLAGS_PSDT_PRP:
		if (!(req->ops->data_ptrs & NVME_XPORT_PRP))
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->prp = true;
		break;
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}

	req->dir = opcode_dir(c);
	if (!req->prp && !req->sgl_mem) {
		st = parse_sgl(req);
		if (st)
			return st;
	}
	/* MDTS (Identify Controller) bounds every transfer. */
	if (req->transfer_len > req->ops->mdts_bytes)
		return nvme_err(NVME_SC_INVALID_FIELD);

	/* Any command counts as life from the host for the keep-alive timer,
	 * as nvmet does: a host that is still setting up its queues sends
	 * its first Keep Alive only KATO/2 after the last one connected. */
	if (sq->ctrl)
		atomic_store(&sq->ctrl->ka_traffic, true);
	if (!sq->ctrl)
		st = nvme_parse_connect_cmd(req);
	else if ((st = nvme_auth_check(req)))
		;
	else if (c->opcode == nvme_admin_fabrics)
		/* 7Fh is NVMe over Fabrics' own: a PCIe controller has its
		 * registers in BAR0, and a Property Set of CC from its own
		 * admin queue would reset it under the command. */
		st = req->ops->fabrics ? nvme_parse_fabrics_cmd(req)
				       : nvme_err(NVME_SC_INVALID_OPCODE);
	else if (sq->qid == 0)
		st = sq->ctrl->discovery ? nvme_parse_discovery_cmd(req) : nvme_parse_admin_cmd(req);
	else
		st = nvme_parse_io_cmd(req);
	if (st)
		return st;
	/* The same bound for a PRP command, whose length the parser set. */
	if (req->transfer_len > req->ops->mdts_bytes)
		return nvme_err(NVME_SC_INVALID_FIELD);

	/* Every parser checks the length it expects; this catches a command
	 * whose opcode moves no data but whose SGL says otherwise. */
	if (req->transfer_len == 0)
		req->dir = NVME_DIR_NONE;
	else if (req->dir == NVME_DIR_NONE)
		return nvme_err(NVME_SC_SGL_INVALID_DATA);
	return 0;
}

static void fill_cqe(struct nvme_req *req, uint16_t status)
{
	struct nvme_sq *sq = req->sq;

	/* Every I/O command on a namespace ends here, refused or executed. */
	if (req->ns && sq->qid)
		ns_stats_command(req->ns, req->cmd.opcode, status, req->transfer_len);

	/* SQHD advances per completion (nvmet does the same); with SQ flow
	 * control disabled (Connect CATTR bit 2) it is reserved: FFFFh. */
	if (sq->sqhd_disabled) {
		req->cqe.sqhd = htole16(0xffff);
	} else {
		if (sq->size)
			sq->sqhd = (uint16_t)((sq->sqhd + 1u) % sq->size);
		req->cqe.sqhd = htole16(sq->sqhd);
	}
	req->cqe.result = htole64(req->result);
	req->cqe.sqid = htole16(sq->qid);
	req->cqe.cid = req->cmd.cid; /* echoed bit-exactly: the host keeps a generation in it */
	req->cqe.status = htole16((uint16_t)(status << 1));
}

bool nvme_req_init(struct nvme_req *req, struct nvme_sq *sq)
{
	uint16_t st;

	req->sq = sq;
	req->ops = sq->ops;
	req->execute = NULL;
	req->dir = NVME_DIR_NONE;
	req->prp = false;
	req->sgl_mem = false;
	req->in_flight = false;
	req->transfer_len = 0;
	req->iov = NULL;
	req->iovcnt = 0;
	req->may_borrow = false;
	req->ns = NULL;
	req->borrowed = NULL;
	req->status = 0;
	req->result = 0;
	memset(&req->cqe, 0, sizeof(req->cqe));

	st = parse(req);
	if (st) {
		log_debug("qid %u cid %u: opcode %#x refused: status %#x", sq->qid,
			  le16toh(req->cmd.cid), req->cmd.opcode, st);
		req->execute = NULL;
		fill_cqe(req, st);
		return false;
	}
	return true;
}

void nvme_req_execute(struct nvme_req *req)
{
	req->in_flight = true;
	req->sq->inflight++;
	/* Checked as it runs, not when parsed: a reservation taken while its
	 * data came in already counts (resv_cmd.h). */
	if (req->ns && req->sq->qid && nvme_resv_conflict(req)) {
		nvme_req_complete(req, nvme_err(NVME_SC_RESERVATION_CONFLICT));
		return;
	}
	if (inject_on() && req->ns && req->sq->qid && nvme_inject(req))
		return;
	req->execute(req);
}

void nvme_req_complete(struct nvme_req *req, uint16_t status)
{
	struct nvme_sq *sq = req->sq;
	bool in_flight = req->in_flight;

	fill_cqe(req, status);
	req->in_flight = false;
	/* The transport may recycle req at once: req is not touched after. */
	req->ops->queue_response(req);
	if (in_flight)
		nvme_sq_put_inflight(sq);
}

uint16_t nvme_req_data_len(struct nvme_req *req, uint32_t len)
{
	return nvme_req_data_len_within(req, len, len);
}

uint16_t nvme_req_data_len_within(struct nvme_req *req, uint32_t min, uint32_t max)
{
	if (req->prp || req->sgl_mem) {
		req->transfer_len = min;
		return 0;
	}
	return req->transfer_len >= min && req->transfer_len <= max
		       ? 0 : nvme_err(NVME_SC_SGL_INVALID_DATA);
}

/* ---- the scatter list ---- */

enum sg_op { SG_TO, SG_FROM, SG_ZERO };

/* Walk len bytes of the data from byte off; stops at its end. */
static void sg_copy(const struct nvme_req *req, size_t off, uint8_t *buf, size_t len,
		    enum sg_op op)
{
	for (int i = 0; i < req->iovcnt && len; i++) {
		const struct iovec *v = &req->iov[i];
		size_t n;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		n = v->iov_len - off < len ? v->iov_len - off : len;
		if (op == SG_TO)
			memcpy((uint8_t *)v->iov_base + off, buf, n);
		else if (op == SG_FROM)
			memcpy(buf, (const uint8_t *)v->iov_base + off, n);
		else
			memset((uint8_t *)v->iov_base + off, 0, n);
		if (buf)
			buf += n;
		len -= n;
		off = 0;
	}
}

void nvme_req_copy_to(struct nvme_req *req, size_t off, const void *buf, size_t len)
{
	sg_copy(req, off, (uint8_t *)(uintptr_t)buf, len, SG_TO);
}

void nvme_req_copy_from(const struct nvme_req *req, size_t off, void *buf, size_t len)
{
	sg_copy(req, off, buf, len, SG_FROM);
}

void nvme_req_zero_from(struct nvme_req *req, size_t off)
{
	if (off < req->transfer_len)
		sg_copy(req, off, NULL, req->transfer_len - off, SG_ZERO);
}

void *nvme_req_flat_get(struct nvme_req *req)
{
	void *flat;

	if (req->iovcnt == 1 && req->iov[0].iov_len >= req->transfer_len)
		return req->iov[0].iov_base;
	flat = malloc(req->transfer_len ? req->transfer_len : 1);
	if (flat)
		nvme_req_copy_from(req, 0, flat, req->transfer_len);
	return flat;
}

void nvme_req_flat_put(struct nvme_req *req, void *flat, bool to_host)
{
	if (req->iovcnt == 1 && flat == req->iov[0].iov_base)
		return;
	if (to_host)
		nvme_req_copy_to(req, 0, flat, req->transfer_len);
	free(flat);
}

uint16_t nvme_req_copy_window(struct nvme_req *req, const void *buf, size_t buf_len, uint64_t off)
{
	size_t n;

	if (off > buf_len)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (req->transfer_len == 0)
		return 0;
	n = buf_len - (size_t)off;
	if (n > req->transfer_len)
		n = req->transfer_len;
	nvme_req_copy_to(req, 0, (const uint8_t *)buf + off, n);
	nvme_req_zero_from(req, n);
	return 0;
}
