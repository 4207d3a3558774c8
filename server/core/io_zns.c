/*
 * Zoned Namespace Command Set I/O (ZNS 1.1, 3.4): Zone Append, Zone
 * Management Send and Receive. Zone states, limits and write pointers are
 * the zone engine's (ns.h); this file decodes the commands, checks what
 * does not need zone state, and makes zone transitions durable (ns_sync;
 * a Reset is durable once ns_zone_mgmt_apply returns) before completing
 * them. Read, Write and Write Zeroes to a zoned namespace take the NVM
 * paths (io_nvm.c); the engine does the zone checks.
 */
#include <nvme/types.h>

#include "ctrl.h"
#include "ns.h"
#include "nvme_cmd.h"

#define ZMS_SELECT_ALL (1u << 8)  /* cdw13 */
#define ZMS_ZRWAA      (1u << 9)  /* cdw13: ZRWA Allocation (Open, Set ZDE) */
#define ZMR_PARTIAL    (1u << 16) /* cdw13 */
#define ZONE_REPORT_HDR 64u       /* struct nvme_zone_report without entries */

static uint64_t zns_slba(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw10) | (uint64_t)le32toh(req->cmd.cdw11) << 32;
}

/* Zone Management Send's action (ZSA: cdw13 bits 7:0). */
static uint8_t zms_action(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw13) & 0xff;
}

static void execute_append(struct nvme_req *req)
{
	nvme_execute_write(req, NS_ZONE_APPEND);
}

static void zms_synced(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	nvme_req_complete(req, req->status);
}

/*
 * On an I/O thread: the transition (a Finish zeroes blocks; a Reset waits
 * for the commit that journals it, which needs no I/O thread: ns.h). The
 * sync that completes any other action is waited for in zms_done, by a
 * callback, never here: it can wait for a write to another zone that ended
 * ahead of an older one (ns_sync), and that older write's end runs on the
 * worker, after an I/O thread ran it. Resets blocking every I/O thread in
 * such a sync once left such a write unfinished and the target silent
 * (worker.h: what an I/O job may wait for).
 */
static void zms_run(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);
	uint32_t cdw13 = le32toh(req->cmd.cdw13);
	uint8_t zsa = zms_action(req);
	void *zde = NULL;

	if (zsa == NVME_ZNS_ZSA_SET_DESC_EXT && !(zde = nvme_req_flat_get(req))) {
		req->status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
		return;
	}
	if (cdw13 & ZMS_ZRWAA)
		req->status = ns_zone_mgmt_send_zrwaa(req->ns, zns_slba(req), zsa, zde);
	else
		req->status = ns_zone_mgmt_apply(req->ns, zns_slba(req), zsa,
						 cdw13 & ZMS_SELECT_ALL, zde);
	if (zde)
		nvme_req_flat_put(req, zde, false);
}

static void zms_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	/* A Reset was durable before zms_run returned (ns_zone_mgmt_apply). */
	if (req->status || zms_action(req) == NVME_ZNS_ZSA_RESET) {
		nvme_req_complete(req, req->status);
		return;
	}
	nvme_req_sync(req, &req->ns, 1, zms_synced);
}

/* 3.4.3 Zone Management Send: the transition is durable when it completes. */
static void execute_zms(struct nvme_req *req)
{
	req->job.worker = req->sq->worker;
	req->job.run = zms_run;
	req->job.done = zms_done;
	io_submit_slow_job(&req->job); /* a Reset waits for a commit */
}

/* 3.4.2 Zone Management Receive: the report straight into the data when
 * it is one buffer (it is on TCP). */
static void execute_zmr(struct nvme_req *req)
{
	uint32_t cdw13 = le32toh(req->cmd.cdw13);
	void *buf = nvme_req_flat_get(req);
	uint16_t st;

	if (!buf) {
		nvme_req_complete(req, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL));
		return;
	}
	st = ns_zone_report(req->ns, zns_slba(req), cdw13 & 0xff, (cdw13 >> 8) & 0xff,
			    cdw13 & ZMR_PARTIAL, buf, req->transfer_len);
	nvme_req_flat_put(req, buf, true);
	nvme_req_complete(req, st);
}

static uint16_t parse_append(struct nvme_req *req, const struct ns_info *info)
{
	uint64_t slba = zns_slba(req);
	uint32_t nlb = (le32toh(req->cmd.cdw12) & 0xffff) + 1u;
	uint16_t st = nvme_req_data_len(req, nlb << info->lba_shift);

	if (st)
		return st;
	if (slba >= info->nlbas || nlb > info->nlbas - slba)
		return nvme_err(NVME_SC_LBA_RANGE);
	/* 3.4.1: larger than the Zone Append Size Limit -> Invalid Field. */
	if (req->transfer_len > info->zasl_bytes)
		return nvme_err(NVME_SC_INVALID_FIELD);
	req->execute = execute_append;
	return 0;
}

static uint16_t parse_zms(struct nvme_req *req, const struct ns_info *info)
{
	uint32_t cdw13 = le32toh(req->cmd.cdw13);
	uint8_t zsa = zms_action(req);
	uint16_t st;

	switch (zsa) {
	case NVME_ZNS_ZSA_CLOSE:
	case NVME_ZNS_ZSA_FINISH:
	case NVME_ZNS_ZSA_OPEN:
	case NVME_ZNS_ZSA_RESET:
	case NVME_ZNS_ZSA_OFFLINE:
	case NVME_ZNS_ZSA_ZRWA_FLUSH: /* SLBA: the last LBA to flush */
		st = nvme_req_data_len(req, 0);
		break;
	case NVME_ZNS_ZSA_SET_DESC_EXT: /* carries one zone descriptor extension */
		if (!info->zde_size)
			return nvme_err(NVME_SC_INVALID_FIELD);
		st = nvme_req_data_len(req, info->zde_size);
		break;
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
	if (st)
		return st;
	/* ZRWAA allocates a ZRWA to the one zone an Open or Set Zone
	 * Descriptor Extension names; anywhere else it is a reserved bit. */
	if ((cdw13 & ZMS_ZRWAA) && (!info->zrwa_lbas || (cdw13 & ZMS_SELECT_ALL) ||
				    (zsa != NVME_ZNS_ZSA_OPEN && zsa != NVME_ZNS_ZSA_SET_DESC_EXT)))
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!(cdw13 & ZMS_SELECT_ALL) && zns_slba(req) >= info->nlbas)
		return nvme_err(NVME_SC_LBA_RANGE);
	req->execute = execute_zms;
	return 0;
}

static uint16_t parse_zmr(struct nvme_req *req, const struct ns_info *info)
{
	uint32_t cdw13 = le32toh(req->cmd.cdw13);
	uint64_t len = ((uint64_t)le32toh(req->cmd.cdw12) + 1) * 4; /* NUMD, 0's based */
	uint8_t zra = cdw13 & 0xff;

	if (len > UINT32_MAX || nvme_req_data_len(req, (uint32_t)len))
		return nvme_err(NVME_SC_SGL_INVALID_DATA);
	if (len < ZONE_REPORT_HDR)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zra != NVME_ZNS_ZRA_REPORT_ZONES &&
	    !(zra == NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES && info->zde_size))
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (((cdw13 >> 8) & 0xff) > NVME_ZNS_ZRAS_REPORT_OFFLINE)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zns_slba(req) >= info->nlbas)
		return nvme_err(NVME_SC_LBA_RANGE);
	req->execute = execute_zmr;
	return 0;
}

uint16_t nvme_parse_zns_cmd(struct nvme_req *req)
{
	const struct ns_info *info = ns_info(req->ns);

	if (!info->zoned) /* not a command of the NVM command set */
		return nvme_err(NVME_SC_INVALID_OPCODE);
	switch (req->cmd.opcode) {
	case nvme_zns_cmd_append:
		return parse_append(req, info);
	case nvme_zns_cmd_mgmt_send:
		return parse_zms(req, info);
	case nvme_zns_cmd_mgmt_recv:
		return parse_zmr(req, info);
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}
