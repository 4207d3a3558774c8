/*
 * Admin commands of PCIe controllers only (NVMe Base 2.0, 5.4 - 5.7 and
 * 5.9): Create / Delete I/O Completion and Submission Queue, Doorbell
 * Buffer Config. Fabrics controllers refuse them with Invalid Opcode (their
 * I/O queues come with Connect). Their PRP fields name queue memory, not
 * data: the commands move no data.
 */
#include <nvme/types.h>

#include "nvme_cmd.h"
#include "pcie.h"

#define QUEUE_PC  (1u << 0)     /* CDW11: physically contiguous */
#define CQ_IEN    (1u << 1)     /* CDW11: interrupts enabled */

static uint16_t q_id(const struct nvme_req *req) { return le32toh(req->cmd.cdw10) & 0xffff; }
/* QSIZE is 0's based. */
static uint32_t q_entries(const struct nvme_req *req) { return (le32toh(req->cmd.cdw10) >> 16) + 1u; }
static uint32_t q_flags(const struct nvme_req *req) { return le32toh(req->cmd.cdw11); }
static uint64_t q_addr(const struct nvme_req *req) { return le64toh(req->cmd.dptr.prp.prp1); }

/* 5.4 Create I/O Completion Queue: CDW11 IV 31:16, IEN, PC. */
static void execute_create_cq(struct nvme_req *req)
{
	uint32_t f = q_flags(req);
	uint16_t st;

	/* CAP.CQR 1: only contiguous queues (PC 0 is Invalid Field). */
	if (!(f & QUEUE_PC))
		st = nvme_err(NVME_SC_INVALID_FIELD);
	else
		st = nvme_pcie_create_cq(nvme_req_ctrl(req)->pcie, q_id(req), q_addr(req),
					 q_entries(req), (uint16_t)(f >> 16), f & CQ_IEN);
	nvme_req_complete(req, st);
}

/* 5.5 Create I/O Submission Queue: CDW11 CQID 31:16, QPRIO 2:1 (round
 * robin arbitration only: ignored), PC. */
static void execute_create_sq(struct nvme_req *req)
{
	uint32_t f = q_flags(req);
	uint16_t st;

	if (!(f & QUEUE_PC))
		st = nvme_err(NVME_SC_INVALID_FIELD);
	else
		st = nvme_pcie_create_sq(nvme_req_ctrl(req)->pcie, q_id(req), q_addr(req),
					 q_entries(req), (uint16_t)(f >> 16));
	nvme_req_complete(req, st);
}

static void execute_delete_cq(struct nvme_req *req)
{
	nvme_req_complete(req, nvme_pcie_delete_cq(nvme_req_ctrl(req)->pcie, q_id(req)));
}

/* 5.7: completes once the queue's commands came back. */
static void execute_delete_sq(struct nvme_req *req)
{
	uint16_t st = nvme_pcie_delete_sq(nvme_req_ctrl(req)->pcie, q_id(req), req);

	if (st)
		nvme_req_complete(req, st);
}

/* 5.9 Doorbell Buffer Config: PRP1 the shadow doorbells, PRP2 the event
 * indexes. */
static void execute_dbbuf(struct nvme_req *req)
{
	nvme_req_complete(req, nvme_pcie_dbbuf(nvme_req_ctrl(req)->pcie, q_addr(req),
					       le64toh(req->cmd.dptr.prp.prp2)));
}

uint16_t nvme_parse_pcie_admin(struct nvme_req *req)
{
	if (!nvme_req_ctrl(req)->pcie)
		return nvme_err(NVME_SC_INVALID_OPCODE);
	switch (req->cmd.opcode) {
	case nvme_admin_create_cq:
		req->execute = execute_create_cq;
		break;
	case nvme_admin_create_sq:
		req->execute = execute_create_sq;
		break;
	case nvme_admin_delete_cq:
		req->execute = execute_delete_cq;
		break;
	case nvme_admin_delete_sq:
		req->execute = execute_delete_sq;
		break;
	case nvme_admin_dbbuf:
		req->execute = execute_dbbuf;
		break;
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
	return nvme_req_data_len(req, 0);
}
