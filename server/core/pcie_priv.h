/*
 * Inside the PCIe controller model (include/pcie.h): the objects shared by
 * pcie_ctrl.c (device, registers, reset, shutdown) and pcie_queue.c
 * (submission and completion queues in guest memory, doorbells).
 * Everything here is touched on the controller's worker only.
 */
#ifndef ZNSTGT_PCIE_PRIV_H
#define ZNSTGT_PCIE_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pcie.h"
#include "worker.h"

struct pcie_sq;

/* One command slot of a submission queue. */
struct pcie_req {
	struct nvme_req req;
	struct pcie_sq *psq;
	struct iovec *iov;           /* guest pages of the data (PRPs) */
	int iov_cap;
	struct pcie_req *next;       /* free list, or a CQ's backlog */
};

/* A completion queue (NVMe Base 2.0, 4.6): size entries of 16 bytes,
 * physically contiguous at addr. */
struct pcie_cq {
	bool live;
	uint64_t addr;
	uint32_t size, head, tail;
	bool phase;                  /* the phase tag of the next CQE posted */
	bool ien;
	uint16_t iv;
	int nr_sqs;                  /* submission queues that post here */
	/* Completions waiting for room (the host has not consumed enough). */
	struct pcie_req *backlog, **backlog_tail;
};

/* A submission queue (4.1): size entries of 64 bytes at addr. */
struct pcie_sq {
	struct nvme_pcie_ctrl *pc;
	struct nvme_sq *sq;          /* the core's queue (in-flight counting) */
	uint16_t qid, cqid;
	uint64_t addr;
	uint32_t size, head, tail;
	struct pcie_req *free;       /* idle slots */
	uint32_t nr_reqs;            /* slots allocated, at most size */
	bool fetching, refetch;      /* sq_fetch() is on the stack / must loop */
	bool closing;                /* being deleted: fetch nothing more */
	struct nvme_req *delete_req; /* Delete I/O SQ completing once freed */
	struct worker_msg free_msg;
};

/* One MSI-X vector's interrupt coalescing state (feature 08h). */
struct pcie_vec {
	struct nvme_pcie_ctrl *pc;
	uint16_t iv;
	uint16_t pending;            /* entries posted since it last fired */
	ev_timer timer;              /* the aggregation time, from the first of them */
};

struct nvme_pcie_ctrl {
	struct nvme_ctrl *ctrl;      /* holds the creator's reference */
	struct nvme_pcie_host h;
	struct nvme_port port;
	struct pcie_sq *sqs[NVME_MAX_IO_QUEUES + 1];
	struct pcie_cq cqs[NVME_MAX_IO_QUEUES + 1];
	int closing_sqs;             /* closed, not freed yet */
	bool resetting;              /* CC.EN 1 -> 0 until the queues are gone */
	bool failed;                 /* CSTS.CFS: no fetch, no post until reset */
	uint64_t dbbuf_shadow, dbbuf_eventidx; /* Doorbell Buffer Config; 0: none */
	uint32_t irq_coalescing;     /* feature 08h, as set */
	bool iv_cd[NVME_PCIE_MAX_VECTORS]; /* feature 09h: coalescing disabled */
	struct pcie_vec vecs[NVME_PCIE_MAX_VECTORS];
	struct nvme_req shutdown_req; /* carries the shutdown's namespace sync */
	bool shutting_down;
	bool shutdown_again;         /* CC.SHN set anew while the sync was out */
	uint32_t reset_gen;          /* controller resets so far */
	uint32_t shutdown_gen;       /* reset_gen when the sync out began */
	bool destroying;
	void (*destroy_done)(void *arg);
	void *destroy_arg;
};

/* pcie_queue.c */
bool pcie_gm_range_ok(const struct nvme_pcie_ctrl *pc, uint64_t addr, uint64_t len);
struct pcie_sq *pcie_sq_new(struct nvme_pcie_ctrl *pc, uint16_t qid, uint64_t addr,
			    uint32_t entries, uint16_t cqid);
void pcie_cq_init(struct pcie_cq *cq, uint64_t addr, uint32_t entries, uint16_t iv, bool ien);
void pcie_sq_close(struct pcie_sq *psq);
void pcie_doorbell(struct nvme_pcie_ctrl *pc, uint32_t idx, uint32_t val);
/* A queue was created: its doorbell idx starts at 0 (nvme_pcie_host.db_reset). */
void pcie_db_reset(struct nvme_pcie_ctrl *pc, uint32_t idx);
void pcie_vecs_init(struct nvme_pcie_ctrl *pc);
/* Drop what coalescing holds back (reset, removal): no interrupt. */
void pcie_vecs_stop(struct nvme_pcie_ctrl *pc);
/* pcie_ctrl.c */
void pcie_fatal(struct nvme_pcie_ctrl *pc, const char *why);
void pcie_sq_gone(struct nvme_pcie_ctrl *pc);

#endif
