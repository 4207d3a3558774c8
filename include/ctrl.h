/*
 * Controllers and the queues bound to them (NVMe Base 2.0, 3.1; NVMe-oF 1.1,
 * 3.3). A controller is created by the Fabrics Connect of an admin queue and
 * belongs to one subsystem (subsys.h); I/O queues join it with their own
 * Connect. Its queues may live on different workers, so the shared parts
 * are under ctrl->lock; what only the admin queue's worker touches (CC, the
 * keep-alive timer, most features) needs no lock.
 *
 * Lifetime: every bound queue holds a reference, so does every message
 * posted on the controller's behalf. When the admin queue goes away, or the
 * keep-alive timer expires, or the subsystem is removed, the controller is
 * "dead": its other queues are asked to disconnect (through their transport,
 * on their own workers) and the last reference frees it.
 */
#ifndef ZNSTGT_CTRL_H
#define ZNSTGT_CTRL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nvme/types.h>

#include "config.h"
#include "req.h"
#include "resv_cmd.h"
#include "transport.h"
#include "worker.h"

struct subsys;
struct nvme_pcie_ctrl;

#define ZNSTGT_VERSION "0.1"              /* Identify FR, firmware slot 1 */

/* Register values (NVMe Base 2.0, 3.1.3). VS 1.3 is what the Linux target
 * reports, ZNS included; Linux needs >= 1.3 for CNS 03h. */
#define NVME_CTRL_VS        0x00010300u
/* A PCIe controller (vfio-user) reports 2.0: what a PCI NVMe ZNS drive of
 * today says, and nothing a PCIe host does depends on fabrics' 1.3. */
#define NVME_CTRL_VS_PCIE   0x00020000u
#define nvme_ctrl_vs(ctrl)  ((ctrl)->pcie ? NVME_CTRL_VS_PCIE : NVME_CTRL_VS)
#define NVME_CTRL_CAP_TO    15u           /* CAP.TO: 7.5 s in 500 ms units */

#define NVME_CTRL_KAS       10u           /* Keep Alive granularity: 100 ms units */
#define NVME_CTRL_AERL      3u            /* 0's based: four AERs outstanding */
#define NVME_CTRL_ACL       3u            /* 0's based Abort Command Limit */
#define NVME_CTRL_MAX_EVENTS 16           /* queued, not yet reported events */
#define NVME_DISC_KATO_MS   120000u       /* discovery ctrl connected with KATO 0 */

#define NVME_CNTLID_MIN     1u
#define NVME_CNTLID_MAX     0xffefu       /* FFF0h..FFFFh are reserved */

/* IOSQES/IOCQES (6 = 64 B SQE, 4 = 16 B CQE). */
#define NVME_NVM_IOSQES     6u
#define NVME_NVM_IOCQES     4u

/* Zone Descriptor Changed notice (ZNS 1.1, 5.5); libnvme 1.3 lacks it. */
#define NVME_AER_NOTICE_ZONE_DESCR_CHANGED 0xefu

/* One submission queue, as the core sees it (transport.h has the API). */
struct nvme_sq {
	struct worker *worker;
	struct nvme_port port;
	char local_addr[64];
	char peer_addr[72];          /* the host's end, if the transport names it (status) */
	const struct nvme_transport_ops *ops;
	void *conn;

	struct nvme_ctrl *ctrl;      /* set by Connect; NULL before */
	/* DH-HMAC-CHAP of this queue (fabrics.c), NULL when its host has no
	 * dhchap_secret. Freed (secrets wiped) with the queue. */
	struct auth_session *auth;
	ev_timer auth_timer;         /* authentication deadline (fabrics_auth.c) */
	/* A queue that came over TLS (nvme_sq_set_tls_identity): the host and
	 * subsystem NQN of the PSK identity the handshake proved, which its
	 * Connect must name. tls false: a plain connection, nothing bound. */
	bool tls;
	char tls_hostnqn[NVME_NQN_LENGTH];
	char tls_subnqn[NVME_NQN_LENGTH];
	uint16_t qid;
	uint32_t size;               /* entries (1's based) */
	uint16_t sqhd;
	bool sqhd_disabled;
	bool closed;                 /* nvme_sq_close() ran */
	bool drained;                /* ... and ops->drained was called */
	uint32_t inflight;           /* commands executing (nvme_req_execute) */
	bool freed;                  /* the transport let go of it */

	/* The memory outlives nvme_sq_free() while a disconnect message for
	 * it is still queued on its worker. */
	atomic_int refs;
	atomic_bool disconnect_posted;
	struct worker_msg disconnect_msg;
	struct nvme_sq *next, *prev; /* every live sq (sq.c) */
};

struct nvme_ctrl {
	pthread_mutex_t lock;
	atomic_int refs;
	struct subsys *subsys;
	uint16_t cntlid;
	bool discovery;
	char subnqn[NVME_NQN_LENGTH];    /* the NQN the host connected to */
	char hostnqn[NVME_NQN_LENGTH];
	uint8_t hostid[16];
	const struct nvme_transport_ops *ops; /* the admin queue's transport */
	struct nvme_port port;           /* where the admin queue came in */
	char local_addr[64];
	struct nvme_ctrl *next;          /* subsys->ctrls, under subsys->lock */
	/* DH-HMAC-CHAP keys of the host at the admin Connect (fabrics_auth.c),
	 * or NULL: its I/O queues prove them even if the host left the table. */
	struct host_auth_config *auth_keys;

	/* Registers (nvme_ctrl_reg_*). CC, AQA, ASQ, ACQ only on the admin
	 * worker; CSTS read by any queue. */
	uint32_t cc;
	_Atomic uint32_t csts;
	uint32_t aqa;                    /* PCIe controllers only */
	uint64_t asq, acq;
	struct nvme_pcie_ctrl *pcie;     /* the PCIe model (pcie.h); NULL on fabrics */
	struct worker_msg lost_msg;      /* PCIe: tells the device it was torn down */

	/* Queues (lock). sqs[0] is the admin queue. */
	struct nvme_sq *sqs[NVME_MAX_IO_QUEUES + 1];
	uint16_t nr_io_queues;           /* granted (Number of Queues feature) */
	atomic_bool dead;                /* torn down: no new queues, no events */

	/* Keep alive (admin worker). */
	struct worker *worker;
	ev_timer ka_timer;
	uint32_t kato_ms;
	atomic_bool ka_traffic;          /* a command came since the timer last ran */

	/* Features (admin worker, except wce: read by every I/O queue). */
	uint32_t aec;                    /* Asynchronous Event Configuration (lock) */
	atomic_bool wce;                 /* Volatile Write Cache enabled */
	bool ts_set;
	uint64_t ts_origin_ms;           /* host's timestamp ... */
	uint64_t ts_set_at_ms;           /* ... at this CLOCK_MONOTONIC time */
	struct nvme_feat_host_behavior host_behavior;

	/* Asynchronous events (lock; matched on the admin worker). */
	struct nvme_req *aers[NVME_CTRL_AERL + 1];
	int nr_aers;
	uint64_t events[NVME_CTRL_MAX_EVENTS]; /* completion DW0-1 of each */
	int nr_events;
	uint32_t aen_masked;             /* NVME_AEN_MASK_* reported, log not read yet */
	bool aen_posted;
	struct worker_msg aen_msg;

	/* Changed Namespace List log (lock). */
	uint32_t changed_ns[NVME_ID_NS_LIST_MAX];
	int nr_changed_ns;               /* > NVME_ID_NS_LIST_MAX: overflowed */
	/* Changed Zone List (admin worker): per NSID, how far it was read
	 * (ns_changed_zones). */
	uint64_t zones_seen[CFG_MAX_NAMESPACES + 1];
	/* Reservation notifications and their mask (lock; io_resv.c). */
	struct nvme_resv_ctrl resv;
};

/* Which reported event waits for which log page to be read (with RAE 0). */
enum {
	NVME_AEN_MASK_NS_CHANGED = 1u << 0,  /* log 04h */
	NVME_AEN_MASK_ZONE_CHANGED = 1u << 1, /* log BFh */
	NVME_AEN_MASK_DISC_CHANGED = 1u << 2, /* log 70h */
	NVME_AEN_MASK_ANA_CHANGED = 1u << 3, /* log 0Ch (ana.c) */
	NVME_AEN_MASK_RESV = 1u << 6,         /* log 80h */
};

/* ---- queues (sq.c; transport.h has the transport's side) ---- */

/* A command of sq left the core: tell the transport if that drained it. */
void nvme_sq_put_inflight(struct nvme_sq *sq);

void nvme_sq_get(struct nvme_sq *sq);
void nvme_sq_put(struct nvme_sq *sq);
/* Have the transport close sq, on sq's worker (any thread; at most once). */
void nvme_sq_request_disconnect(struct nvme_sq *sq);
/* Target shutdown: ask every queue, connected or not, to disconnect ... */
void nvme_sq_disconnect_all(void);
/* ... and wait until the transports freed them all. False on timeout. */
bool nvme_sq_wait_all_freed(double timeout_s);

/* ---- lifetime (ctrl.c) ---- */

/* Why a host may not have a controller of a subsystem. */
enum nvme_ctrl_refusal {
	NVME_CTRL_NO_SUBSYS,     /* no such subsystem (or it is being removed) */
	NVME_CTRL_HOST_DENIED,   /* not on its allowed hosts */
};

/* The subsystem named subnqn, with a reference, if hostnqn may have a
 * controller of it (any host may use the discovery subsystem); else NULL
 * and why, logged. */
struct subsys *nvme_ctrl_subsys_for_host(const char *subnqn, const char *hostnqn,
					 enum nvme_ctrl_refusal *why);

/* A new controller: its transport, where its admin queue will live, how the
 * host reached it and who the host is. */
struct nvme_ctrl_args {
	const struct nvme_transport_ops *ops;
	struct worker *worker;       /* the admin queue's: keep alive, events */
	const struct nvme_port *port;
	const char *local_addr;
	const char *subnqn;          /* as the host named it */
	const char *hostnqn;
	const uint8_t *hostid;       /* 16 bytes */
	uint32_t kato_ms;            /* 0: none; discovery: NVME_DISC_KATO_MS */
};

/*
 * Create a controller of s, with no queue yet: by a fabrics Connect, or by
 * a PCIe transport when its device appears (its admin queue comes with
 * CC.EN). The caller holds the one reference, which the admin queue takes
 * over (nvme_ctrl_bind_admin_queue) or the caller gives back
 * (nvme_ctrl_fatal + nvme_ctrl_put). Returns 0 or a status (no controller
 * ID left, subsystem being removed).
 */
uint16_t nvme_ctrl_new(struct subsys *s, const struct nvme_ctrl_args *a, struct nvme_ctrl **out);
/* sq becomes queue 0 of sqsize entries, owning the creator's reference. */
void nvme_ctrl_bind_admin_queue(struct nvme_ctrl *ctrl, struct nvme_sq *sq, uint32_t sqsize);
/* I/O Connect: the live controller cntlid of s, with a reference, or NULL. */
struct nvme_ctrl *nvme_ctrl_find(struct subsys *s, uint16_t cntlid);
/* Bind sq as I/O queue qid. Returns 0 or a status; on success the queue
 * owns the reference the caller got from nvme_ctrl_find(). */
uint16_t nvme_ctrl_bind_io_queue(struct nvme_ctrl *ctrl, struct nvme_sq *sq, uint16_t qid,
				 uint32_t sqsize);
void nvme_ctrl_get(struct nvme_ctrl *ctrl);
/* A reference unless the count already reached zero (walking a
 * subsystem's list under its lock, where dying controllers still are). */
bool nvme_ctrl_tryget(struct nvme_ctrl *ctrl);
void nvme_ctrl_put(struct nvme_ctrl *ctrl);
/* Tear the controller down: every queue is asked to disconnect. Any thread. */
void nvme_ctrl_fatal(struct nvme_ctrl *ctrl, const char *why);
/* The transport let go of sq (called from nvme_sq_free on sq's worker). */
void nvme_ctrl_unbind_sq(struct nvme_sq *sq);
/* The admin queue is closing: abort the parked AERs (nvme_sq_close). */
void nvme_ctrl_abort_aers(struct nvme_ctrl *ctrl);

/* ---- registers (admin worker) ---- */

/*
 * The controller registers (NVMe Base 2.0, 3.1.3): CAP, VS, CC, CSTS, NSSR,
 * AQA, ASQ, ACQ, CMBLOC, CMBSZ, read and written with their own sizes (4 or
 * 8 bytes) through one API: a fabrics Property Get/Set and a PCIe BAR0
 * alike. A CC write runs the EN and SHN transitions. AQA, ASQ and ACQ exist
 * on PCIe controllers only (reserved on fabrics, NVMe-oF 1.1, 3.5); NSSR,
 * CMBLOC and CMBSZ read as zero (no subsystem reset, no memory buffer).
 * Returns 0 or Invalid Field (unknown offset, wrong size, read-only).
 */
uint16_t nvme_ctrl_reg_read(const struct nvme_ctrl *ctrl, uint32_t off, unsigned size,
			    uint64_t *val);
uint16_t nvme_ctrl_reg_write(struct nvme_ctrl *ctrl, uint32_t off, unsigned size, uint64_t val);
/* CSTS.RDY: the controller accepts admin (non-Fabrics) and I/O commands. */
static inline bool nvme_ctrl_ready(const struct nvme_ctrl *ctrl)
{
	return atomic_load_explicit(&ctrl->csts, memory_order_acquire) & 1u;
}

/* ---- keep alive (admin worker) ---- */

void nvme_ctrl_keep_alive(struct nvme_ctrl *ctrl);
void nvme_ctrl_set_kato(struct nvme_ctrl *ctrl, uint32_t kato_ms);

/* ---- asynchronous events ---- */

/* Park an Asynchronous Event Request (admin worker). Returns 0, or the
 * status to complete it with at once (limit exceeded). */
uint16_t nvme_ctrl_park_aer(struct nvme_ctrl *ctrl, struct nvme_req *req);
/*
 * Report an event (any thread): type (NVME_AER_*), info, log page, and the
 * completion's DW1 (the NSID for zone events). It is dropped if the host
 * did not enable it (aec_bit not in the Asynchronous Event Configuration)
 * or the same kind (mask) still waits for its log page to be read.
 */
void nvme_ctrl_event(struct nvme_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid,
		     uint32_t dw1, uint32_t aec_bit, uint32_t mask);
/* The host read the log page of a masked event with RAE 0 (any thread). */
void nvme_ctrl_event_unmask(struct nvme_ctrl *ctrl, uint32_t mask);
/* Namespace nsid changed: log 04h entry + Namespace Attribute notice. */
void nvme_ctrl_ns_changed(struct nvme_ctrl *ctrl, uint32_t nsid);

#endif
