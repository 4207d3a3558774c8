/*
 * Operator fault injection on the I/O path (inject.h,
 * doc/fault-injection.md): an I/O command a rule matches completes with the
 * rule's status instead of running, or runs (or fails) only after the
 * rule's delay. The delay is a timer on the queue's own loop, so that the
 * queue's other commands, and every other queue, go on meanwhile, as they
 * do around a slow command of a drive. The command counts as in flight
 * all along: a queue that goes away waits for it like for any other.
 */
#include <stdlib.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "inject.h"
#include "log.h"
#include "nvme_cmd.h"
#include "subsys.h"

struct late_cmd {
	ev_timer timer;
	struct nvme_req *req;
	uint16_t status;
};

static uint64_t cmd_slba(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw10) | (uint64_t)le32toh(req->cmd.cdw11) << 32;
}

/* The command's INJECT_* kind and LBA range; false: not one rules match. */
static bool classify(const struct nvme_req *req, uint32_t *op, uint64_t *slba, uint64_t *nlb)
{
	const struct ns_info *in = ns_info(req->ns);

	*slba = cmd_slba(req);
	*nlb = (le32toh(req->cmd.cdw12) & 0xffff) + 1u;
	switch (req->cmd.opcode) {
	case nvme_cmd_read:
		*op = INJECT_READ;
		return true;
	case nvme_cmd_write:
	case nvme_cmd_write_zeroes:
		*op = INJECT_WRITE;
		return true;
	case nvme_zns_cmd_append:
		*op = INJECT_APPEND;
		return true;
	case nvme_zns_cmd_mgmt_send:
		/* The zone it names, or with Select All every zone. */
		*op = INJECT_ZMGMT;
		if (le32toh(req->cmd.cdw13) & (1u << 8)) {
			*slba = 0;
			*nlb = in->nlbas;
		} else {
			*nlb = in->zone_size;
		}
		return true;
	case nvme_zns_cmd_mgmt_recv:
		/* A report covers the zones from the one holding SLBA on. */
		*op = INJECT_REPORT;
		*nlb = in->nlbas - *slba;
		return true;
	default:
		return false;
	}
}

static void late_fire(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct late_cmd *lc = t->data;
	struct nvme_req *req = lc->req;
	uint16_t status = lc->status;

	ev_timer_stop(loop, t);
	free(lc);
	if (status)
		nvme_req_complete(req, status);
	else
		req->execute(req);
}

bool nvme_inject(struct nvme_req *req)
{
	struct inject_hit hit;
	uint64_t slba, nlb;
	uint32_t op;

	if (!classify(req, &op, &slba, &nlb) ||
	    !inject_match(nvme_req_ctrl(req)->subsys->nqn, ns_info(req->ns)->nsid, op, slba, nlb,
			  &hit))
		return false;
	log_debug("nsid %u: opcode %#x at LBA %llu: injected status %#x, delay %u us",
		  ns_info(req->ns)->nsid, req->cmd.opcode, (unsigned long long)slba, hit.status,
		  hit.delay_us);
	if (hit.delay_us) {
		struct late_cmd *lc = malloc(sizeof(*lc));

		if (lc) {
			lc->req = req;
			lc->status = hit.status;
			ev_timer_init(&lc->timer, late_fire, hit.delay_us / 1e6, 0.);
			lc->timer.data = lc;
			ev_timer_start(worker_loop(req->sq->worker), &lc->timer);
			return true;
		}
		/* No memory for the timer: the status (if any) at once. */
	}
	if (!hit.status)
		return false;
	nvme_req_complete(req, hit.status);
	return true;
}
