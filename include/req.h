/*
 * The request: one NVMe command on its way from a transport through the
 * controller core and back (the model is the Linux nvmet target's nvmet_req).
 *
 * Life of a request
 *   1. The transport receives the 64-byte SQE into req->cmd and calls
 *      nvme_req_init(). The core parses it: picks the handler (req->execute),
 *      the direction and the length of the data transfer (req->dir,
 *      req->transfer_len). If the command is refused at this stage the core
 *      has already filled req->cqe; the transport must still consume any
 *      in-capsule data, then call req->ops->queue_response(req).
 *   2. The transport points req->data at a buffer of transfer_len bytes: the
 *      in-capsule data, data it fetched from the host (R2T/H2CData, guest
 *      memory), or an empty buffer for the core to fill (host reads).
 *   3. The transport calls req->execute(req). Handlers run on the worker that
 *      owns the queue; they may finish at once or go asynchronous (I/O thread,
 *      group commit) and finish later, always back on that same worker.
 *   4. The core calls nvme_req_complete(req, status): it fills the CQE and
 *      calls req->ops->queue_response(req). The transport sends req->data to the
 *      host if dir == NVME_DIR_TO_HOST, then the response, and
 *      recycles the request.
 *
 * Handlers never know which transport they serve.
 */
#ifndef ZNSTGT_REQ_H
#define ZNSTGT_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "ns.h"
#include "nvme_wire.h"
#include "transport.h"
#include "worker.h"

struct nvme_req;
struct nvme_sq;   /* core: one submission queue (admin or I/O) of a controller */
struct worker;    /* worker.h */

enum nvme_data_dir {
	NVME_DIR_NONE,
	NVME_DIR_FROM_HOST, /* host -> controller (Write, Set Features with data, Connect) */
	NVME_DIR_TO_HOST,   /* controller -> host (Read, Identify, Get Log Page) */
};

struct nvme_req {
	struct nvme_sqe cmd;
	struct nvme_cqe cqe;
	struct nvme_sq *sq;
	const struct nvme_transport_ops *ops; /* the queue's transport */
	void *transport_priv;        /* the transport's own per-command context */

	/* Set by nvme_req_init(). */
	void (*execute)(struct nvme_req *req);
	enum nvme_data_dir dir;
	uint32_t transfer_len;       /* bytes the command moves (from SGL1 length) */

	/* Set by the transport before execute(): a buffer of transfer_len bytes. */
	void *data;

	/* Core scratch: the namespace and the backend state of an I/O command. */
	struct ns *ns;
	struct ns_write w;
	uint16_t status;             /* status carried across async steps */
	uint64_t result;
	struct io_job job;           /* core: hop to an I/O thread (or a commit
				      * callback) and back to the sq's worker */
};

/*
 * Parse req->cmd as received on sq. Returns true if req->execute is ready to
 * run (after the data is in), false if the command failed already (req->cqe
 * filled; the transport completes it without executing).
 */
bool nvme_req_init(struct nvme_req *req, struct nvme_sq *sq);

/* Finish: fill the CQE (CID, SQID, SQHD, result, status) and hand back. */
void nvme_req_complete(struct nvme_req *req, uint16_t status);

#endif
