/*
 * The admin command set of an I/O controller (NVMe Base 2.0, 5): dispatch,
 * and the small commands: Asynchronous Event Request, Keep Alive, Abort.
 * Identify, Get Log Page and Set/Get Features have files of their own.
 */
#include <nvme/types.h>

#include "ctrl.h"
#include "log.h"
#include "nvme_cmd.h"

/* 5.2: parked until an event; completed by nvme_ctrl_event() or at close. */
void nvme_execute_aer(struct nvme_req *req)
{
	uint16_t st = nvme_ctrl_park_aer(nvme_req_ctrl(req), req);

	if (st)
		nvme_req_complete(req, st);
}

/* 5.25 Keep Alive. With keep alive disabled (KATO 0) it is an error. */
void nvme_execute_keep_alive(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);

	if (!ctrl->kato_ms) {
		nvme_req_complete(req, nvme_err(NVME_SC_KAT_INVALID));
		return;
	}
	nvme_ctrl_keep_alive(ctrl);
	nvme_req_complete(req, 0);
}

/*
 * 5.1 Abort is best effort: we never abort, as the Linux target does not.
 * DW0 bit 0 set = "command not aborted".
 */
static void execute_abort(struct nvme_req *req)
{
	req->result = 1;
	nvme_req_complete(req, 0);
}

uint16_t nvme_parse_admin_cmd(struct nvme_req *req)
{
	/* Before CC.EN / CSTS.RDY only Fabrics commands are allowed. */
	if (!nvme_ctrl_ready(nvme_req_ctrl(req)))
		return nvme_err(NVME_SC_CMD_SEQ_ERROR);

	switch (req->cmd.opcode) {
	case nvme_admin_identify:
		return nvme_parse_identify(req);
	case nvme_admin_get_log_page:
		return nvme_parse_get_log_page(req);
	case nvme_admin_set_features:
	case nvme_admin_get_features:
		return nvme_parse_features(req);
	case nvme_admin_async_event:
		req->execute = nvme_execute_aer;
		return nvme_req_data_len(req, 0);
	case nvme_admin_keep_alive:
		req->execute = nvme_execute_keep_alive;
		return nvme_req_data_len(req, 0);
	case nvme_admin_abort_cmd:
		req->execute = execute_abort;
		return nvme_req_data_len(req, 0);
	default:
		log_debug("ctrl %u: unsupported admin opcode %#x", nvme_req_ctrl(req)->cntlid,
			  req->cmd.opcode);
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}
