/*
 * Inside the controller core: the command parsers nvme_req_init() dispatches
 * to, the handlers shared between them, and small helpers. One file per
 * concern, as in the Linux nvmet target:
 *   req.c            nvme_req_init / nvme_req_complete, SGL and data length
 *   fabrics.c        Connect, Property Get / Set
 *   admin.c          admin dispatch, Asynchronous Event Request, Keep Alive, Abort
 *   admin_identify.c Identify
 *   admin_log.c      Get Log Page
 *   admin_features.c Set / Get Features
 *   discovery.c      the discovery controller's command set and log page 70h
 *   io_nvm.c         NVM Command Set I/O, durability (ns_sync) hops
 *   io_zns.c         Zoned Namespace Command Set I/O
 *
 * A parser validates what it can without the data, sets req->execute and
 * returns 0, or returns the status to fail the command with.
 */
#ifndef ZNSTGT_NVME_CMD_H
#define ZNSTGT_NVME_CMD_H

#include <stddef.h>
#include <stdint.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "req.h"

static inline struct nvme_ctrl *nvme_req_ctrl(const struct nvme_req *req)
{
	return req->sq->ctrl;
}

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

/*
 * Connect Invalid Parameters: CQE DW0 says where (NVMe-oF 1.1, 3.3 Figure
 * 21): IPO = byte offset, IATTR bit 16 = in the Connect data (else the SQE).
 */
#define NVMF_IPO_DATA(field) ((1u << 16) | (uint32_t)offsetof(struct nvmf_connect_data, field))
#define NVMF_IPO_SQE_QID     42u
#define NVMF_IPO_SQE_SQSIZE  44u

/* ---- parsers ---- */
uint16_t nvme_parse_connect_cmd(struct nvme_req *req);  /* unconnected queue */
uint16_t nvme_parse_fabrics_cmd(struct nvme_req *req);  /* connected queue: Property Get/Set,
							   Authentication Send/Receive */
/* Authentication Send / Receive (fabrics_auth.c). */
uint16_t nvme_parse_auth_cmd(struct nvme_req *req);
/*
 * At Connect: a DH-HMAC-CHAP session on sq when ctrl's host has a
 * dhchap_secret. Returns the AUTHREQ bits for the Connect response (0 when
 * none is needed); *st is an error status if the session could not be made.
 */
uint32_t nvme_auth_queue_setup(struct nvme_sq *sq, struct nvme_ctrl *ctrl, uint16_t *st);
/* The controller is freed: the keys it kept go, wiped (ctrl.c). */
void nvme_auth_ctrl_free(struct nvme_ctrl *ctrl);
/* The queue is closing: its authentication deadline goes (sq.c). */
void nvme_auth_queue_close(struct nvme_sq *sq);
/* Authentication Required (with DNR) for any command but Authentication
 * Send/Receive on a connected queue that must and has not authenticated
 * yet; 0 otherwise. */
uint16_t nvme_auth_check(const struct nvme_req *req);
uint16_t nvme_parse_admin_cmd(struct nvme_req *req);
uint16_t nvme_parse_discovery_cmd(struct nvme_req *req);
uint16_t nvme_parse_io_cmd(struct nvme_req *req);
uint16_t nvme_parse_zns_cmd(struct nvme_req *req);      /* from nvme_parse_io_cmd */
uint16_t nvme_parse_identify(struct nvme_req *req);
uint16_t nvme_parse_get_log_page(struct nvme_req *req);

/* ---- handlers shared by the admin and discovery command sets ---- */
uint16_t nvme_parse_features(struct nvme_req *req);     /* Set/Get Features */
void nvme_execute_aer(struct nvme_req *req);
void nvme_execute_keep_alive(struct nvme_req *req);
/* Identify Controller data of ctrl (I/O or discovery), little-endian. */
void nvme_build_id_ctrl(const struct nvme_ctrl *ctrl, struct nvme_id_ctrl *id);

/* Get Log Page fields (NVMe Base 2.0, 5.16), as nvme_log_args() decodes them. */
struct nvme_log_args {
	uint8_t lid;
	uint8_t lsp;
	bool rae;
	uint8_t csi;
	uint64_t lpo;      /* byte offset */
	uint32_t len;      /* bytes */
};
/* Decode and check the fields every log page shares (length, offset). */
uint16_t nvme_log_args(struct nvme_req *req, struct nvme_log_args *a);
/* The discovery log page (discovery.c) into a new buffer of *len bytes. */
void *nvme_discovery_log_build(const struct nvme_ctrl *ctrl, size_t *len);

/* ---- helpers (req.c) ---- */

/*
 * The command's data length, len bytes, from its own fields (each parser's
 * rule, as nvmet's *_data_len). With an SGL the descriptor must say exactly
 * that (else Data SGL Length Invalid); with PRPs it becomes the transfer
 * length.
 */
uint16_t nvme_req_data_len(struct nvme_req *req, uint32_t len);
/* The same for a command whose SGL may carry between min and max bytes
 * (Dataset Management); PRPs move min. */
uint16_t nvme_req_data_len_within(struct nvme_req *req, uint32_t min, uint32_t max);
/*
 * Copy the window [off, off + transfer_len) of a buf_len-byte structure into
 * the data; bytes past its end read as zero. An offset past the end is
 * Invalid Field (NVMe Base 2.0, 5.16: Log Page Offset).
 */
uint16_t nvme_req_copy_window(struct nvme_req *req, const void *buf, size_t buf_len,
			      uint64_t off);

/* ---- durability (io_nvm.c) ---- */

/*
 * Make every write and zone transition that completed on the n namespaces
 * durable (ns_sync), then run done(&req->job) on the sq's worker with the
 * first error, if any, in req->status. Uses req->job and req->result.
 */
void nvme_req_sync(struct nvme_req *req, struct ns *const *nss, int n,
		   void (*done)(struct io_job *job));
/* The same for every namespace of the controller's subsystem. */
void nvme_req_sync_all(struct nvme_req *req, void (*done)(struct io_job *job));
/* Writes on this ns wait for ns_sync: no volatile cache or it is disabled. */
bool nvme_ns_write_through(const struct nvme_ctrl *ctrl, struct ns *ns);
/* Write, Write Zeroes, Zone Append (req->ns set, range checked): reserve,
 * move the data on an I/O thread, publish, make durable as needed. */
void nvme_execute_write(struct nvme_req *req, enum ns_write_kind kind);
/* Operator fault injection (inject.h), for an I/O command about to run:
 * true when a rule took it over (it fails or runs late; io_inject.c). */
bool nvme_inject(struct nvme_req *req);

#endif
