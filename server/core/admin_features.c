/*
 * Set Features / Get Features (NVMe Base 2.0, 5.27 and 5.15). None of our
 * features is saveable; Get Features SEL "saved" returns the default.
 *
 * Discovery controllers have only Keep Alive Timer and Asynchronous Event
 * Configuration (NVMe-oF 1.1, 5 Figure 41).
 */
#include <string.h>
#include <time.h>

#include <nvme/types.h>

#include "ana.h"
#include "ctrl.h"
#include "log.h"
#include "ns.h"
#include "nvme_cmd.h"
#include "pcie.h"
#include "subsys.h"

#define FEAT_SV        (1u << 31)   /* Set Features: save */
#define SEL_CURRENT    0
#define SEL_DEFAULT    1
#define SEL_SAVED      2
#define SEL_SUPPORTED  3
#define CAP_CHANGEABLE (1u << 2)    /* Get Features SEL 3 result */

static uint8_t feat_fid(const struct nvme_req *req) { return le32toh(req->cmd.cdw10) & 0xff; }
static uint8_t feat_sel(const struct nvme_req *req) { return (le32toh(req->cmd.cdw10) >> 8) & 7; }
static uint32_t feat_cdw11(const struct nvme_req *req) { return le32toh(req->cmd.cdw11); }

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The events this controller can report (Identify OAES), plus the SMART
 * critical warnings every controller may enable. */
static uint32_t aec_supported(const struct nvme_ctrl *ctrl)
{
	if (ctrl->discovery)
		return NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE;
	return 0xffu | NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES |
	       (ctrl->subsys->zasl_bytes ? NVME_CTRL_OAES_ZD : 0) |
	       (ana_reported(ctrl) ? NVME_CTRL_OAES_ANA : 0);
}

static uint32_t queues_result(uint16_t n)
{
	return (uint32_t)(n - 1) | (uint32_t)(n - 1) << 16; /* NSQA, NCQA: 0's based */
}

/* ---- Set Features ---- */

static void vwc_synced(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	nvme_req_complete(req, req->status);
}

static void execute_set_features(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	uint32_t v = feat_cdw11(req);
	uint16_t st = 0;

	switch (feat_fid(req)) {
	case NVME_FEAT_FID_NUM_QUEUES: {
		uint16_t nsqr = v & 0xffff, ncqr = v >> 16, n;
		bool busy = false;

		if (nsqr == 0xffff || ncqr == 0xffff) { /* 65536 queues: invalid */
			st = nvme_err(NVME_SC_INVALID_FIELD);
			break;
		}
		/* Fabrics queues come in SQ/CQ pairs: grant the smaller request. */
		n = (nsqr < ncqr ? nsqr : ncqr) + 1;
		if (n > NVME_MAX_IO_QUEUES)
			n = NVME_MAX_IO_QUEUES;
		/* On PCIe a completion queue alone is an I/O queue too. */
		busy = ctrl->pcie && nvme_pcie_has_io_cq(ctrl->pcie);
		pthread_mutex_lock(&ctrl->lock);
		for (unsigned i = 1; i <= NVME_MAX_IO_QUEUES; i++)
			busy |= ctrl->sqs[i] != NULL;
		if (!busy)
			ctrl->nr_io_queues = n;
		pthread_mutex_unlock(&ctrl->lock);
		if (busy) /* only before I/O queues exist (5.27.1.5) */
			st = nvme_err(NVME_SC_CMD_SEQ_ERROR);
		else
			req->result = queues_result(n);
		break;
	}
	case NVME_FEAT_FID_ASYNC_EVENT:
		if (v & ~aec_supported(ctrl)) {
			st = nvme_err(NVME_SC_INVALID_FIELD);
			break;
		}
		pthread_mutex_lock(&ctrl->lock);
		ctrl->aec = v;
		pthread_mutex_unlock(&ctrl->lock);
		/* Zones changed at power-up, before anyone listened: say so now. */
		if (v & NVME_CTRL_OAES_ZD)
			subsys_report_changed_zones(ctrl);
		break;
	case NVME_FEAT_FID_KATO:
		nvme_ctrl_set_kato(ctrl, v ? v : ctrl->discovery ? NVME_DISC_KATO_MS : 0);
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		if (!ctrl->subsys->any_write_cache) { /* no cache to switch */
			st = nvme_err(NVME_SC_INVALID_FIELD);
			break;
		}
		atomic_store(&ctrl->wce, v & 1);
		if (!(v & 1)) {
			/* Write-through from now on: what the cache holds goes too. */
			nvme_req_sync_all(req, vwc_synced);
			return;
		}
		break;
	case NVME_FEAT_FID_HOST_BEHAVIOR:
		nvme_req_copy_from(req, 0, &ctrl->host_behavior, sizeof(ctrl->host_behavior));
		break;
	case NVME_FEAT_FID_IOCS_PROFILE:
		/* Index into the Identify CNS 1Ch list: we have combination 0 only. */
		if ((v & 0x1ff) != 0)
			st = nvme_cmd_err(NVME_SC_IOCS_COMBINATION_REJECTED);
		break;
	case NVME_FEAT_FID_IRQ_COALESCE:
	case NVME_FEAT_FID_IRQ_CONFIG: {
		uint32_t unused;

		st = nvme_pcie_feature(ctrl->pcie, feat_fid(req), true, v, &unused);
		break;
	}
	case NVME_FEAT_FID_TIMESTAMP: {
		struct nvme_timestamp ts;
		uint64_t ms = 0;

		nvme_req_copy_from(req, 0, &ts, sizeof(ts));
		for (int i = 5; i >= 0; i--)
			ms = ms << 8 | ts.timestamp[i];
		ctrl->ts_origin_ms = ms;
		ctrl->ts_set_at_ms = now_ms();
		ctrl->ts_set = true;
		break;
	}
	default:
		st = nvme_err(NVME_SC_INVALID_FIELD);
		break;
	}
	nvme_req_complete(req, st);
}

/* ---- Get Features ---- */

static void get_timestamp(const struct nvme_ctrl *ctrl, struct nvme_timestamp *ts)
{
	uint64_t ms;

	memset(ts, 0, sizeof(*ts));
	if (ctrl->ts_set) {
		ms = ctrl->ts_origin_ms + (now_ms() - ctrl->ts_set_at_ms);
		ts->attr = 1u << 1; /* Timestamp Origin 001b: set by the host */
	} else {
		ms = now_ms();      /* origin 000b: time since (our) reset */
	}
	for (int i = 0; i < 6; i++)
		ts->timestamp[i] = (uint8_t)(ms >> (8 * i));
}

static void execute_get_features(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	bool dflt = feat_sel(req) == SEL_DEFAULT || feat_sel(req) == SEL_SAVED;
	uint16_t st = 0;

	if (feat_sel(req) == SEL_SUPPORTED) {
		req->result = CAP_CHANGEABLE;
		nvme_req_complete(req, 0);
		return;
	}
	switch (feat_fid(req)) {
	case NVME_FEAT_FID_NUM_QUEUES:
		req->result = queues_result(dflt ? NVME_MAX_IO_QUEUES : ctrl->nr_io_queues);
		break;
	case NVME_FEAT_FID_ASYNC_EVENT:
		pthread_mutex_lock(&ctrl->lock);
		req->result = dflt ? 0 : ctrl->aec;
		pthread_mutex_unlock(&ctrl->lock);
		break;
	case NVME_FEAT_FID_KATO:
		req->result = dflt ? 0 : ctrl->kato_ms;
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		req->result = dflt ? ctrl->subsys->any_write_cache
				   : ctrl->subsys->any_write_cache && atomic_load(&ctrl->wce);
		break;
	case NVME_FEAT_FID_HOST_BEHAVIOR: {
		struct nvme_feat_host_behavior hb;

		memset(&hb, 0, sizeof(hb));
		if (!dflt)
			hb = ctrl->host_behavior;
		nvme_req_copy_to(req, 0, &hb, sizeof(hb));
		break;
	}
	case NVME_FEAT_FID_IOCS_PROFILE:
		req->result = 0;
		break;
	case NVME_FEAT_FID_IRQ_COALESCE:
	case NVME_FEAT_FID_IRQ_CONFIG: {
		uint32_t r;

		/* Defaults: no coalescing, and so nothing to disable. */
		st = nvme_pcie_feature(ctrl->pcie, feat_fid(req), false, feat_cdw11(req), &r);
		req->result = dflt ? (feat_fid(req) == NVME_FEAT_FID_IRQ_CONFIG ? (r & 0xffff) : 0) : r;
		break;
	}
	case NVME_FEAT_FID_TIMESTAMP: {
		struct nvme_timestamp ts;

		get_timestamp(ctrl, &ts);
		nvme_req_copy_to(req, 0, &ts, sizeof(ts));
		break;
	}
	default:
		st = nvme_err(NVME_SC_INVALID_FIELD);
		break;
	}
	nvme_req_complete(req, st);
}

uint16_t nvme_parse_features(struct nvme_req *req)
{
	bool set = req->cmd.opcode == nvme_admin_set_features;
	uint32_t len = 0;

	switch (feat_fid(req)) {
	case NVME_FEAT_FID_KATO:
	case NVME_FEAT_FID_ASYNC_EVENT:
		break;
	case NVME_FEAT_FID_HOST_ID:
	case NVME_FEAT_FID_RESV_MASK:
	case NVME_FEAT_FID_RESV_PERSIST:
		return nvme_parse_resv_feature(req); /* io_resv.c */
	case NVME_FEAT_FID_NUM_QUEUES:
	case NVME_FEAT_FID_VOLATILE_WC:
	case NVME_FEAT_FID_IOCS_PROFILE:
		if (nvme_req_ctrl(req)->discovery)
			return nvme_err(NVME_SC_INVALID_FIELD);
		break;
	case NVME_FEAT_FID_IRQ_COALESCE:
	case NVME_FEAT_FID_IRQ_CONFIG:
		if (!nvme_req_ctrl(req)->pcie) /* interrupts: PCIe only */
			return nvme_err(NVME_SC_INVALID_FIELD);
		break;
	case NVME_FEAT_FID_HOST_BEHAVIOR:
		if (nvme_req_ctrl(req)->discovery)
			return nvme_err(NVME_SC_INVALID_FIELD);
		len = sizeof(struct nvme_feat_host_behavior);
		break;
	case NVME_FEAT_FID_TIMESTAMP:
		if (nvme_req_ctrl(req)->discovery)
			return nvme_err(NVME_SC_INVALID_FIELD);
		len = sizeof(struct nvme_timestamp);
		break;
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
	if (set && (le32toh(req->cmd.cdw10) & FEAT_SV))
		return nvme_cmd_err(NVME_SC_FEATURE_NOT_SAVEABLE);
	if (!set && feat_sel(req) > SEL_SUPPORTED)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!set && feat_sel(req) == SEL_SUPPORTED)
		len = 0; /* capabilities come in DW0 */
	req->execute = set ? execute_set_features : execute_get_features;
	return nvme_req_data_len(req, len);
}
