/*
 * Get Log Page (NVMe Base 2.0, 5.16) for I/O controllers. Each log is built
 * whole and the requested window (LPO, NUMD) copied out; bytes past the
 * end of a log read as zero. The discovery log lives in discovery.c.
 */
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "ana.h"
#include "ctrl.h"
#include "ns.h"
#include "nvme_cmd.h"
#include "subsys.h"

#define GLP_RAE (1u << 15)
#define GLP_OT  (1u << 23) /* Offset Type: LPO is an index, not bytes */

uint16_t nvme_log_args(struct nvme_req *req, struct nvme_log_args *a)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint32_t cdw14 = le32toh(req->cmd.cdw14);
	uint64_t numd = (cdw10 >> 16) | (uint64_t)(cdw11 & 0xffff) << 16; /* 0's based dwords */
	uint64_t len = (numd + 1) * 4;

	a->lid = cdw10 & 0xff;
	a->lsp = (cdw10 >> 8) & 0x7f;
	a->rae = cdw10 & GLP_RAE;
	a->csi = cdw14 >> 24;
	a->lpo = le32toh(req->cmd.cdw12) | (uint64_t)le32toh(req->cmd.cdw13) << 32;
	a->len = (uint32_t)len;

	if (len > UINT32_MAX || nvme_req_data_len(req, (uint32_t)len))
		return nvme_err(NVME_SC_SGL_INVALID_DATA);
	if ((a->lpo & 3) || (cdw14 & GLP_OT)) /* byte offsets, dword aligned */
		return nvme_err(NVME_SC_INVALID_FIELD);
	return 0;
}

static void log_complete(struct nvme_req *req, const void *log, size_t len)
{
	struct nvme_log_args a;

	nvme_log_args(req, &a);
	nvme_req_complete(req, nvme_req_copy_window(req, log, len, a.lpo));
}

/* 01h: we keep no error history (Identify ELPE 0: one empty entry). */
static void execute_log_error(struct nvme_req *req)
{
	struct nvme_error_log_page e;

	memset(&e, 0, sizeof(e));
	log_complete(req, &e, sizeof(e));
}

/* 128-bit little-endian counter from a 64-bit value. */
static void put_u128(uint8_t dst[16], uint64_t v)
{
	uint64_t le = htole64(v);

	memset(dst, 0, 16);
	memcpy(dst, &le, sizeof(le));
}

/* 02h SMART / Health, for the whole subsystem (LPA bit 0 clear). */
static void execute_log_smart(struct nvme_req *req)
{
	struct subsys *s = nvme_req_ctrl(req)->subsys;
	struct nvme_smart_log sl;
	const uint64_t unit = 512 * 1000; /* data units: thousands of 512 B, rounded up */

	memset(&sl, 0, sizeof(sl));
	sl.avail_spare = 100;
	sl.spare_thresh = 10;
	put_u128(sl.data_units_read, (atomic_load(&s->bytes_read) + unit - 1) / unit);
	put_u128(sl.data_units_written, (atomic_load(&s->bytes_written) + unit - 1) / unit);
	put_u128(sl.host_reads, atomic_load(&s->host_reads));
	put_u128(sl.host_writes, atomic_load(&s->host_writes));
	log_complete(req, &sl, sizeof(sl));
}

/* 03h: one read-only slot, active, holding this version. */
static void execute_log_fw_slot(struct nvme_req *req)
{
	struct nvme_firmware_slot fw;
	size_t l = strlen(ZNSTGT_VERSION);

	memset(&fw, 0, sizeof(fw));
	fw.afi = 1;
	memset(fw.frs[0], ' ', sizeof(fw.frs[0]));
	memcpy(fw.frs[0], ZNSTGT_VERSION, l < sizeof(fw.frs[0]) ? l : sizeof(fw.frs[0]));
	log_complete(req, &fw, sizeof(fw));
}

/* 04h Changed Namespace List: cleared by reading it. */
static void execute_log_changed_ns(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	struct nvme_ns_list l;
	struct nvme_log_args a;

	nvme_log_args(req, &a);
	if (a.lpo > sizeof(l)) { /* a failed read clears nothing */
		nvme_req_complete(req, nvme_err(NVME_SC_INVALID_FIELD));
		return;
	}
	memset(&l, 0, sizeof(l));
	/* The list is emptied and the notice re-armed at once, under the lock
	 * nvme_ctrl_ns_changed() adds to the list with: a namespace that
	 * changes now is either in what the host reads or raises a new notice
	 * (nvmet: nvmet_execute_get_log_changed_ns). */
	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->nr_changed_ns > NVME_ID_NS_LIST_MAX)
		l.ns[0] = htole32(NVME_NSID_ALL); /* more than fit */
	else
		for (int i = 0; i < ctrl->nr_changed_ns; i++)
			l.ns[i] = htole32(ctrl->changed_ns[i]);
	ctrl->nr_changed_ns = 0;
	if (!a.rae)
		ctrl->aen_masked &= ~(uint32_t)NVME_AEN_MASK_NS_CHANGED;
	pthread_mutex_unlock(&ctrl->lock);
	log_complete(req, &l, sizeof(l));
}

/*
 * 05h Commands Supported and Effects, per command set. Linux needs CSI 2
 * to list Zone Append, or it makes the namespace read-only. Only CSUPP and
 * LBCC: the other effect bits make the host freeze queues around
 * passthrough commands.
 */
static void execute_log_cmd_effects(struct nvme_req *req)
{
	const uint32_t sup = NVME_CMD_EFFECTS_CSUPP, lbcc = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
	struct nvme_cmd_effects_log l;
	struct nvme_log_args a;

	nvme_log_args(req, &a);
	memset(&l, 0, sizeof(l));
	l.acs[nvme_admin_get_log_page] = htole32(sup);
	l.acs[nvme_admin_identify] = htole32(sup);
	l.acs[nvme_admin_abort_cmd] = htole32(sup);
	l.acs[nvme_admin_set_features] = htole32(sup);
	l.acs[nvme_admin_get_features] = htole32(sup);
	l.acs[nvme_admin_async_event] = htole32(sup);
	l.acs[nvme_admin_keep_alive] = htole32(sup);
	if (nvme_req_ctrl(req)->pcie) { /* admin_pcie.c (nvmet: nvmet_is_pci_ctrl) */
		l.acs[nvme_admin_create_cq] = htole32(sup);
		l.acs[nvme_admin_create_sq] = htole32(sup);
		l.acs[nvme_admin_delete_cq] = htole32(sup);
		l.acs[nvme_admin_delete_sq] = htole32(sup);
		l.acs[nvme_admin_dbbuf] = htole32(sup);
	}

	l.iocs[nvme_cmd_flush] = htole32(sup);
	l.iocs[nvme_cmd_write] = htole32(lbcc);
	l.iocs[nvme_cmd_read] = htole32(sup);
	l.iocs[nvme_cmd_write_zeroes] = htole32(lbcc);
	l.iocs[nvme_cmd_dsm] = htole32(lbcc);
	if (a.csi == NVME_CSI_ZNS) {
		l.iocs[nvme_zns_cmd_mgmt_send] = htole32(lbcc);
		l.iocs[nvme_zns_cmd_mgmt_recv] = htole32(sup);
		l.iocs[nvme_zns_cmd_append] = htole32(lbcc);
	}
	nvme_resv_cmd_effects(&l);
	log_complete(req, &l, sizeof(l));
}

/* BFh Changed Zone List (ZNS 1.1, 5.3.1): zones the controller took
 * offline or read-only; cleared by reading it (for this controller: every
 * controller has its own). */
static void execute_log_changed_zones(struct nvme_req *req)
{
	struct nvme_zns_changed_zone_log zl;
	uint64_t zids[NVME_ZNS_CHANGED_ZONES_MAX];
	struct nvme_log_args a;
	uint16_t n;

	nvme_log_args(req, &a);
	memset(&zl, 0, sizeof(zl));
	n = ns_changed_zones(req->ns, &nvme_req_ctrl(req)->zones_seen[ns_info(req->ns)->nsid],
			     zids, NVME_ZNS_CHANGED_ZONES_MAX);
	zl.nrzid = htole16(n);
	for (uint16_t i = 0; n != 0xffff && i < n && i < NVME_ZNS_CHANGED_ZONES_MAX; i++)
		zl.zid[i] = htole64(zids[i]);
	if (!a.rae) {
		/* Unmasked: the next namespace with changed zones may tell. */
		nvme_ctrl_event_unmask(nvme_req_ctrl(req), NVME_AEN_MASK_ZONE_CHANGED);
		subsys_report_changed_zones(nvme_req_ctrl(req));
	}
	log_complete(req, &zl, sizeof(zl));
}

uint16_t nvme_parse_get_log_page(struct nvme_req *req)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint32_t nsid = le32toh(req->cmd.nsid);
	struct nvme_log_args a;
	uint16_t st = nvme_log_args(req, &a);

	if (st)
		return st;
	switch (a.lid) {
	case NVME_LOG_LID_ERROR:
		req->execute = execute_log_error;
		return 0;
	case NVME_LOG_LID_SMART:
		if (nsid != 0 && nsid != NVME_NSID_ALL) /* no per-namespace data */
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = execute_log_smart;
		return 0;
	case NVME_LOG_LID_FW_SLOT:
		req->execute = execute_log_fw_slot;
		return 0;
	case NVME_LOG_LID_CHANGED_NS:
		req->execute = execute_log_changed_ns;
		return 0;
	case NVME_LOG_LID_CMD_EFFECTS:
		if (a.csi != NVME_CSI_NVM && a.csi != NVME_CSI_ZNS)
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = execute_log_cmd_effects;
		return 0;
	case NVME_LOG_LID_RESERVATION:
		return nvme_parse_resv_log(req); /* io_resv.c */
	case NVME_LOG_LID_ZNS_CHANGED_ZONES:
		if (a.csi != NVME_CSI_ZNS)
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->ns = subsys_ns(s, nsid);
		if (!req->ns)
			return nvme_err(NVME_SC_INVALID_NS);
		if (!ns_info(req->ns)->zoned)
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = execute_log_changed_zones;
		return 0;
	case NVME_LOG_LID_ANA:
		return ana_parse_log_page(req, &a);
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
}
