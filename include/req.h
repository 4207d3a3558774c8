/*
 * The request: one NVMe command on its way from a transport through the
 * controller core and back (the model is the Linux nvmet target's nvmet_req).
 *
 * Life of a request
 *   1. The transport receives the 64-byte SQE into req->cmd and calls
 *      nvme_req_init(). The core parses it: picks the handler (req->execute),
 *      the direction and the length of the data transfer (req->dir,
 *      req->transfer_len). The length is the command's own (each parser's
 *      data-length rule, as nvmet's *_data_len): with an SGL the descriptor
 *      must agree with it, with PRPs it is the length. If the command is
 *      refused at this stage the core has already filled req->cqe; the
 *      transport must still consume any in-capsule data, then call
 *      req->ops->queue_response(req).
 *   2. The transport describes the data as a scatter list of transfer_len
 *      bytes (req->iov, req->iovcnt): the in-capsule data, data it fetched
 *      from the host (R2T/H2CData), mapped guest memory (PRP entries), or
 *      buffers for the core to fill (host reads). Handlers reach it only
 *      through the iovecs and the copy helpers below; they never repoint it.
 *   3. The transport calls nvme_req_execute(req), which counts the command
 *      in flight on its queue and runs req->execute. Handlers run on the worker that
 *      owns the queue; they may finish at once or go asynchronous (I/O thread,
 *      group commit) and finish later, always back on that same worker.
 *   4. The core calls nvme_req_complete(req, status): it fills the CQE and
 *      calls req->ops->queue_response(req). The transport sends the data to
 *      the host if dir == NVME_DIR_TO_HOST, then the response, and recycles
 *      the request.
 *
 * Handlers never know which transport they serve.
 */
#ifndef ZNSTGT_REQ_H
#define ZNSTGT_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

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
	bool prp;                    /* PSDT 00b: PRPs, not an SGL */
	bool sgl_mem;                /* PSDT 01b on PCIe: an SGL in guest memory */
	bool in_flight;              /* nvme_req_execute() ran, not completed yet */
	uint32_t transfer_len;       /* bytes the command moves */

	/* Set by the transport before execute(): the data, iovcnt pieces of
	 * transfer_len bytes in all. */
	const struct iovec *iov;
	int iovcnt;
	/* The transport sends read data with a system call and needs it
	 * stable for no digest: the core may lend it instead (borrowed). */
	bool may_borrow;

	/* Core scratch: the namespace and the backend state of an I/O command. */
	struct ns *ns;
	struct ns_write w;
	uint16_t status;             /* status carried across async steps */
	uint64_t result;
	/* A read whose data the namespace lent (ns_read_borrow(), may_borrow):
	 * transfer_len bytes to send from here, iov left untouched. */
	const void *borrowed;
	struct io_job job;           /* core: hop to an I/O thread (or a commit
				      * callback) and back to the sq's worker */
};

/*
 * Parse req->cmd as received on sq. Returns true if req->execute is ready to
 * run (after the data is in), false if the command failed already (req->cqe
 * filled; the transport completes it without executing).
 */
bool nvme_req_init(struct nvme_req *req, struct nvme_sq *sq);

/* Run the parsed command (its data is in): counted in flight on its queue
 * until nvme_req_complete(). */
void nvme_req_execute(struct nvme_req *req);

/* Finish: fill the CQE (CID, SQID, SQHD, result, status) and hand back. */
void nvme_req_complete(struct nvme_req *req, uint16_t status);

/* ---- the data (req->iov): copies bounded by the scatter list ---- */

/* len bytes of buf into the data at byte off (controller -> host). */
void nvme_req_copy_to(struct nvme_req *req, size_t off, const void *buf, size_t len);
/* len bytes of the data at byte off into buf (host -> controller). */
void nvme_req_copy_from(const struct nvme_req *req, size_t off, void *buf, size_t len);
/* Zeros into the data from byte off to its end. */
void nvme_req_zero_from(struct nvme_req *req, size_t off);
/*
 * The data as one flat buffer, for backend calls that take one: the
 * transport's own when it is one piece, otherwise a bounce buffer holding a
 * copy of it (NULL: out of memory). nvme_req_flat_put() copies a bounce
 * buffer back into the data when to_host, and frees it.
 */
void *nvme_req_flat_get(struct nvme_req *req);
void nvme_req_flat_put(struct nvme_req *req, void *flat, bool to_host);

#endif
