/*
 * The seam between a transport and the controller core, besides the
 * request object (req.h): the transport's ops table, ports, and queues.
 *
 * A transport creates one struct nvme_sq per NVMe queue it carries (for a
 * fabrics transport: per connection). The queue starts unbound; the
 * Fabrics Connect command (core) binds it to a controller of a subsystem, or
 * a PCIe transport leaves its queues to the core's PCIe model (pcie.h).
 * All calls for one sq happen on the worker that owns it.
 */
#ifndef ZNSTGT_TRANSPORT_H
#define ZNSTGT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <nvme/types.h>

struct nvme_port;
struct nvme_req;
struct nvme_sq;
struct worker;

/* Data pointers a transport accepts in a command (PSDT, NVMe Base 2.0,
 * 4.1.1): fabrics transports take SGLs only; a PCIe transport PRPs. */
enum {
	NVME_XPORT_SGL = 1u << 0,
	NVME_XPORT_PRP = 1u << 1,
};

/*
 * One table per transport (the model is nvmet's nvmet_fabrics_ops): what
 * the core needs to know about it and the calls it makes into it. Every
 * queue points at its transport's table; the core never names a transport.
 */
struct nvme_transport_ops {
	const char *name;            /* for the log */
	uint8_t trtype;              /* NVMF_TRTYPE_* */
	uint8_t sectype;             /* security type of its ports (TSAS) */
	uint8_t data_ptrs;           /* NVME_XPORT_SGL / _PRP accepted */
	bool fabrics;                /* Connect and Property Get/Set; no AQA/ASQ/ACQ
				      * (NVMe-oF 1.1, 3.5); else a PCIe controller */
	uint32_t admin_inline;       /* in-capsule data: admin queue, Fabrics commands */
	uint32_t io_inline;          /* in-capsule data: I/O queues */
	uint32_t mdts_bytes;         /* largest data transfer of one command */

	/* Identify Controller fields that describe the transport (NVMe Base
	 * 2.0, 5.17.2.1; NVMe-oF 1.1, 4.1). 0 where it has none (PCIe). */
	uint32_t ioccsz;             /* I/O capsule size, 16-byte units */
	uint32_t iorcsz;             /* I/O response capsule size, 16-byte units */
	uint8_t msdbd;               /* SGL descriptors per command */
	uint32_t sgls;               /* SGL support */

	/* The command is done and req->cqe is filled: send its data (if any,
	 * to the host) and the response. On the sq's worker. */
	void (*queue_response)(struct nvme_req *req);
	/* The core wants this queue gone (keep-alive expiry, controller
	 * teardown, subsystem removal): close the connection. Called on the
	 * sq's worker. The transport later calls nvme_sq_free() as usual. */
	void (*disconnect)(void *conn);
	/*
	 * The queue is closed (nvme_sq_close) and the last of its commands came
	 * back from the core: the transport may call nvme_sq_free() now. Called
	 * once, on the sq's worker, from inside nvme_sq_close() or
	 * nvme_req_complete(); so free from a fresh call chain (an event of its
	 * own), never from inside this call.
	 */
	void (*drained)(void *conn);
	/*
	 * Describe port in a Discovery Log Page entry (NVMe-oF 1.1, 5.3 Figure
	 * 38): TRTYPE, ADRFAM, TREQ, TRADDR, TRSVCID and TSAS, as seen by a
	 * host connected through local_addr. False if the port cannot be named
	 * for that host (the entry is left out).
	 */
	bool (*disc_entry)(const struct nvme_port *port, const char *local_addr,
			   struct nvmf_disc_log_entry *e);
};

/*
 * A port: where hosts reach the target (a listening socket of a fabrics
 * transport, a controller socket). A transport registers its ports; the
 * discovery controller walks them. Port IDs are handed out by
 * registration, in order, from 1.
 */
struct nvme_port {
	const struct nvme_transport_ops *ops;
	uint16_t portid;
	uint8_t adrfam;              /* NVMF_ADDR_FAMILY_* */
	char traddr[64];             /* as configured; may be a wildcard */
	char trsvcid[NVMF_TRSVCID_SIZE];
	bool tls;                    /* TLS 1.3 required (tls_listen) */
	struct nvme_port *next;      /* registry (port.c) */
};

/* Add p (its memory stays valid until unregistered); assigns p->portid. */
void nvme_port_register(struct nvme_port *p);
void nvme_port_unregister(struct nvme_port *p);
/* fn(arg, port) for every registered port, in portid order, under the
 * registry's lock (fn must not register or unregister). */
void nvme_ports_for_each(void (*fn)(void *arg, const struct nvme_port *p), void *arg);

/*
 * A new queue that came in on port (its ops are the queue's transport);
 * local_addr: the address the connection was accepted on (what a discovery
 * log entry must report when the port listens on a wildcard address).
 */
struct nvme_sq *nvme_sq_alloc(struct worker *w, const struct nvme_port *port,
			      const char *local_addr, void *conn);
/* The host's end of the connection, for `znstgt-ctl status` ("ADDR:PORT"). */
void nvme_sq_set_peer(struct nvme_sq *sq, const char *peer);
/*
 * The queue's connection is a secure channel whose handshake proved the
 * host holds the PSK of this identity (NVMe/TCP 3.6.1.4; tls_psk.c): its
 * Connect must then name the identity's host and subsystem NQN. 0, or -1
 * if the identity is NULL or malformed (the transport closes the connection).
 */
int nvme_sq_set_tls_identity(struct nvme_sq *sq, const char *identity);
/*
 * The connection is closing (peer gone, transport error, or ops->disconnect):
 * no more commands will be passed to the core. The core completes at once,
 * through ops->queue_response, the commands it holds open indefinitely
 * (Asynchronous Event Requests, with "Command Aborted due to SQ Deletion"),
 * and calls ops->drained once none of its commands is in the core any more
 * (at once if none is). The core counts them: every command the transport
 * runs with nvme_req_execute() until its nvme_req_complete(). Idempotent.
 */
void nvme_sq_close(struct nvme_sq *sq);
/* The connection is gone and the queue drained (ops->drained ran). */
void nvme_sq_free(struct nvme_sq *sq);

/* After Connect: queue id (0 = admin), size (entries, 1's based), and
 * whether SQ flow control is disabled (Connect CATTR bit 2). */
bool nvme_sq_connected(const struct nvme_sq *sq);
uint16_t nvme_sq_qid(const struct nvme_sq *sq);
uint32_t nvme_sq_size(const struct nvme_sq *sq);
bool nvme_sq_sqhd_disabled(const struct nvme_sq *sq);

/* Queue limits of the core (CAP.MQES, Number of Queues). */
#define NVME_MAX_QUEUE_SIZE   1024u     /* CAP.MQES + 1 */
#define NVME_MAX_IO_QUEUES    64u

#endif
