/*
 * The seam between a transport (NVMe/TCP today, vfio-user later) and the
 * controller core, besides the request object (req.h).
 *
 * A transport creates one struct nvme_sq per NVMe queue it carries (for TCP:
 * per connection, right after ICReq/ICResp). The queue starts unbound; the
 * Fabrics Connect command (core) binds it to a controller of a subsystem, or
 * a PCIe-style transport binds it with nvme_ctrl_* calls of its own (later).
 * All calls for one sq happen on the worker that owns it.
 */
#ifndef ZNSTGT_TRANSPORT_H
#define ZNSTGT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

struct nvme_sq;
struct worker;

/* A listening port, as the discovery log reports it (NVMe-oF 1.1, 5.3). */
struct nvme_port {
	uint16_t portid;
	uint8_t trtype;          /* NVMF_TRTYPE_TCP */
	uint8_t adrfam;          /* NVMF_ADDR_FAMILY_IP4 / _IP6 */
	char traddr[64];         /* as configured; may be a wildcard */
	char trsvcid[8];
};

struct nvme_sq_ops {
	/* The core wants this queue gone (keep-alive expiry, controller
	 * teardown, subsystem removal): close the connection. Called on the
	 * sq's worker. The transport later calls nvme_sq_free() as usual. */
	void (*disconnect)(void *conn);
};

/*
 * local_addr: the address the connection was accepted on (what a discovery
 * log entry must report when the port listens on a wildcard address).
 */
struct nvme_sq *nvme_sq_alloc(struct worker *w, const struct nvme_port *port,
			      const char *local_addr, const struct nvme_sq_ops *ops, void *conn);
/*
 * The connection is closing (peer gone, transport error, or ops->disconnect):
 * no more commands will be passed to the core. The core completes at once,
 * through ops->complete, the commands it holds open indefinitely
 * (Asynchronous Event Requests, with "Command Aborted due to SQ Deletion"),
 * so that the transport can then wait for the rest to finish and call
 * nvme_sq_free(). Idempotent; nvme_sq_free() calls it if it was not called.
 */
void nvme_sq_close(struct nvme_sq *sq);
/* The connection is gone and none of its requests is still executing. */
void nvme_sq_free(struct nvme_sq *sq);

/* After Connect: queue id (0 = admin), size (entries, 1's based), and
 * whether SQ flow control is disabled (Connect CATTR bit 2). */
bool nvme_sq_connected(const struct nvme_sq *sq);
uint16_t nvme_sq_qid(const struct nvme_sq *sq);
uint32_t nvme_sq_size(const struct nvme_sq *sq);
bool nvme_sq_sqhd_disabled(const struct nvme_sq *sq);

/* Limits the core advertises and the transport enforces. */
#define NVME_TCP_ADMIN_INLINE 8192u     /* in-capsule data on the admin queue */
#define NVME_IO_INLINE        16384u    /* IOCCSZ = (64 + this) / 16 */
#define NVME_MDTS_BYTES       (1u << 20) /* MDTS = 8 at 4 KiB pages */
#define NVME_MAX_QUEUE_SIZE   1024u     /* CAP.MQES + 1 */
#define NVME_MAX_IO_QUEUES    64u

#endif
