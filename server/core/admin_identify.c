/*
 * Identify (NVMe Base 2.0, 5.17; NVM Command Set 1.0, 4.1.5; ZNS 1.1, 4.1.5).
 * Every data structure is 4096 bytes, built in an aligned buffer and
 * copied out.
 *
 * The values follow what a Linux host needs (host-requirements.md, 3.2-3.3);
 * the comments say why where it is not obvious.
 */
#include <stdio.h>
#include <string.h>

#include <nvme/types.h>

#include "ana.h"
#include "ctrl.h"
#include "ns.h"
#include "nvme_cmd.h"
#include "subsys.h"

#define MPS_BYTES 4096u /* CAP.MPSMIN: the unit of MDTS and ZASL */

union id_buf {
	uint8_t raw[NVME_IDENTIFY_DATA_SIZE];
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns ns;
	struct nvme_ns_list list;
	struct nvme_nvm_id_ns nvm_ns;
	struct nvme_zns_id_ns zns_ns;
	struct nvme_id_ctrl_nvm nvm_ctrl;
	struct nvme_zns_id_ctrl zns_ctrl;
	struct nvme_id_independent_id_ns indep;
	uint64_t iocs[NVME_IDENTIFY_DATA_SIZE / 8];
};
_Static_assert(sizeof(union id_buf) == NVME_IDENTIFY_DATA_SIZE, "Identify data is 4 KiB");

/* ASCII fields are space padded, not NUL terminated. */
static void pad(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static bool all_zero_id(const uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (id[i])
			return false;
	return true;
}

/* log2(bytes / 4096), rounded down. */
static uint8_t log2_units(uint32_t bytes)
{
	uint8_t k = 0;

	while (bytes >= 2 * MPS_BYTES) {
		bytes >>= 1;
		k++;
	}
	return k;
}

void nvme_build_id_ctrl(const struct nvme_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	const struct subsys *s = ctrl->subsys;

	memset(id, 0, sizeof(*id));
	pad(id->sn, sizeof(id->sn), s->serial);
	pad(id->mn, sizeof(id->mn), s->model);
	pad(id->fr, sizeof(id->fr), ZNSTGT_VERSION);
	id->rab = 6;
	id->mdts = log2_units(ctrl->ops->mdts_bytes);
	id->cntlid = htole16(ctrl->cntlid);
	id->ver = htole32(nvme_ctrl_vs(ctrl));
	id->kas = htole16(NVME_CTRL_KAS);       /* mandatory for fabrics */
	id->aerl = NVME_CTRL_AERL;
	id->lpa = NVME_CTRL_LPA_EXTENDED;       /* LPO, NUMDU: the discovery log needs them */
	id->maxcmd = htole16(NVME_MAX_QUEUE_SIZE); /* Linux 6.12 refuses 0 */
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", ctrl->subnqn);
	/* What the transport supports: SGLs, capsule sizes (16-byte units),
	 * descriptors per command; in-capsule data at offset 0. */
	id->sgls = htole32(ctrl->ops->sgls);
	/* PCIe: the host may use shadow doorbells (5.9). */
	if (ctrl->pcie)
		id->oacs = htole16(NVME_CTRL_OACS_DBBUF_CFG);
	id->ioccsz = htole32(ctrl->ops->ioccsz);
	id->iorcsz = htole32(ctrl->ops->iorcsz);
	id->icdoff = htole16(0);
	id->msdbd = ctrl->ops->msdbd;

	if (ctrl->discovery) {
		id->cntrltype = NVME_CTRL_CNTRLTYPE_DISCOVERY;
		id->oaes = htole32(NVME_CTRL_OAES_DL);
		return;
	}

	id->cntrltype = NVME_CTRL_CNTRLTYPE_IO;
	/* Several controllers (hosts, paths) per subsystem; ANA in ana.c. */
	id->cmic = NVME_CTRL_CMIC_MULTI_CTRL;
	id->oaes = htole32(NVME_CTRL_OAES_NA | (s->zasl_bytes ? NVME_CTRL_OAES_ZD : 0));
	id->ctratt = htole32(NVME_CTRL_CTRATT_128_ID); /* Connect's 16-byte host ID */
	id->acl = NVME_CTRL_ACL;
	id->frmw = 0x3; /* one firmware slot, read-only */
	id->lpa |= NVME_CTRL_LPA_CMD_EFFECTS;
	id->sqes = (NVME_NVM_IOSQES << 4) | NVME_NVM_IOSQES;
	id->cqes = (NVME_NVM_IOCQES << 4) | NVME_NVM_IOCQES;
	id->nn = htole32(s->max_nsid);
	id->mnan = htole32(s->max_nsid);
	id->oncs = htole16(NVME_CTRL_ONCS_DSM | NVME_CTRL_ONCS_WRITE_ZEROES |
			   NVME_CTRL_ONCS_TIMESTAMP | NVME_CTRL_ONCS_RESERVATIONS);
	/* A volatile cache that Flush (also with NSID FFFFFFFFh) makes durable. */
	if (s->any_write_cache)
		id->vwc = NVME_CTRL_VWC_PRESENT | NVME_CTRL_VWC_FLUSH;
	ana_build_id_ctrl(ctrl, id);
}

/* NSID for CNS 00h/05h/08h: 0 and broadcast are invalid, so is one above
 * NN; an unused NSID below it is inactive (*ns = NULL: zero data). */
static uint16_t ns_lookup(const struct nvme_req *req, struct ns **ns)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint32_t nsid = le32toh(req->cmd.nsid);

	if (nsid == 0 || nsid > s->max_nsid)
		return nvme_err(NVME_SC_INVALID_NS);
	*ns = subsys_ns(s, nsid);
	return 0;
}

/* CNS 00h: Identify Namespace, NVM Command Set (also for zoned ones). */
static uint16_t id_ns(struct nvme_req *req, union id_buf *b)
{
	const struct ns_info *info;
	struct ns *ns;
	uint16_t st = ns_lookup(req, &ns);

	if (st || !ns)
		return st;
	info = ns_info(ns);
	b->ns.nsze = b->ns.ncap = b->ns.nuse = htole64(info->nlbas);
	b->ns.nlbaf = 0;      /* one LBA format ... */
	b->ns.flbas = 0;      /* ... in use, no metadata */
	b->ns.lbaf[0].ds = (uint8_t)info->lba_shift;
	/* Shared: every controller of the subsystem reaches it. */
	b->ns.nmic = NVME_NS_NMIC_SHARED;
	b->ns.anagrpid = htole32(ana_ns_group(nvme_req_ctrl(req)->subsys, info->nsid));
	b->ns.rescap = NVME_RESV_RESCAP; /* io_resv.c */
	/* Deallocated blocks read as zeros, and Write Zeroes may deallocate.
	 * Not for zoned namespaces, where deallocation is only advisory. */
	if (!info->zoned)
		b->ns.dlfeat = NVME_NS_DLFEAT_RB_ALL_0S | NVME_NS_DLFEAT_WRITE_ZEROES;
	memcpy(b->ns.nguid, info->nguid, sizeof(b->ns.nguid));
	memcpy(b->ns.eui64, info->eui64, sizeof(b->ns.eui64));
	return 0;
}

/* CNS 02h / 07h: active NSIDs above cmd.nsid, ascending (all or of one CSI). */
static uint16_t id_ns_list(struct nvme_req *req, union id_buf *b, bool by_csi)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint32_t from = le32toh(req->cmd.nsid);
	uint8_t csi = le32toh(req->cmd.cdw11) >> 24;
	int n = 0;

	if (from >= 0xfffffffeu)
		return nvme_err(NVME_SC_INVALID_NS);
	if (by_csi && csi != NVME_CSI_NVM && csi != NVME_CSI_ZNS)
		return nvme_err(NVME_SC_INVALID_FIELD);
	for (uint32_t nsid = from + 1; nsid <= s->max_nsid && n < NVME_ID_NS_LIST_MAX; nsid++) {
		struct ns *ns = subsys_ns(s, nsid);

		if (!ns)
			continue;
		if (by_csi && (ns_info(ns)->zoned ? NVME_CSI_ZNS : NVME_CSI_NVM) != csi)
			continue;
		b->list.ns[n++] = htole32(nsid);
	}
	return 0;
}

static size_t add_desc(uint8_t *p, size_t off, uint8_t nidt, const void *val, uint8_t len)
{
	struct nvme_ns_id_desc d = { .nidt = nidt, .nidl = len };

	memcpy(p + off, &d, sizeof(d));
	memcpy(p + off + sizeof(d), val, len);
	return off + sizeof(d) + len;
}

/* CNS 03h: Namespace Identification Descriptors. Linux needs the CSI one
 * (with CC.CSS = 110b it drops a namespace without it). */
static uint16_t id_ns_descs(struct nvme_req *req, union id_buf *b)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	struct ns *ns = subsys_ns(s, le32toh(req->cmd.nsid));
	const struct ns_info *info;
	uint8_t csi;
	size_t off = 0;

	if (!ns)
		return nvme_err(NVME_SC_INVALID_NS);
	info = ns_info(ns);
	csi = info->zoned ? NVME_CSI_ZNS : NVME_CSI_NVM;
	if (!all_zero_id(info->eui64, sizeof(info->eui64)))
		off = add_desc(b->raw, off, NVME_NIDT_EUI64, info->eui64, NVME_NIDT_EUI64_LEN);
	if (!all_zero_id(info->nguid, sizeof(info->nguid)))
		off = add_desc(b->raw, off, NVME_NIDT_NGUID, info->nguid, NVME_NIDT_NGUID_LEN);
	if (!all_zero_id(info->uuid, sizeof(info->uuid)))
		off = add_desc(b->raw, off, NVME_NIDT_UUID, info->uuid, NVME_NIDT_UUID_LEN);
	add_desc(b->raw, off, NVME_NIDT_CSI, &csi, NVME_NIDT_CSI_LEN);
	return 0;
}

/* CNS 05h: I/O command set specific Identify Namespace. */
static uint16_t id_csi_ns(struct nvme_req *req, union id_buf *b)
{
	uint8_t csi = le32toh(req->cmd.cdw11) >> 24;
	const struct ns_info *info;
	struct ns *ns;
	uint16_t st = ns_lookup(req, &ns);

	if (st)
		return st;
	if (csi != NVME_CSI_NVM && csi != NVME_CSI_ZNS)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!ns)
		return 0;
	info = ns_info(ns);
	if (csi == NVME_CSI_NVM)
		return 0; /* no protection information, no extended formats: all zero */
	if (!info->zoned)
		return nvme_err(NVME_SC_INVALID_FIELD);

	/* ZNS 1.1, 4.1.5.1. ZOC 0 (fixed zone capacity, no excursions): Linux
	 * refuses anything else. MAR/MOR are 0's based, FFFFFFFFh = no limit. */
	b->zns_ns.zoc = 0;
	b->zns_ns.ozcs = htole16((info->cross_zone_read ? 1 : 0) |  /* RAZB */
				 (info->zrwa_lbas ? 2 : 0));       /* ZRWASUP */
	if (info->zrwa_lbas) {
		/* Zone Random Write Area: NUMZRWA is 0's based; explicit
		 * flush (Zone Management Send 11h) is supported (ZRWACAP
		 * bit 0, EXPFLUSHSUP). */
		b->zns_ns.numzrwa = htole32(info->nr_zrwa - 1);
		b->zns_ns.zrwafg = htole16((uint16_t)info->zrwa_fg);
		b->zns_ns.zrwasz = htole16((uint16_t)info->zrwa_lbas);
		b->zns_ns.zrwacap = 1;
	}
	b->zns_ns.mar = htole32(info->max_active ? info->max_active - 1 : 0xffffffffu);
	b->zns_ns.mor = htole32(info->max_open ? info->max_open - 1 : 0xffffffffu);
	b->zns_ns.lbafe[0].zsze = htole64(info->zone_size);
	b->zns_ns.lbafe[0].zdes = (uint8_t)(info->zde_size / 64);
	return 0;
}

/* CNS 06h: I/O command set specific Identify Controller. */
static uint16_t id_csi_ctrl(struct nvme_req *req, union id_buf *b)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint8_t csi = le32toh(req->cmd.cdw11) >> 24;

	switch (csi) {
	case NVME_CSI_NVM:
		return 0; /* no Verify / Write Zeroes / DSM limits beyond the command formats */
	case NVME_CSI_ZNS: {
		/* ZASL: a power of two in MPS units, never above MDTS. 0 means
		 * "as MDTS", so a 4 KiB limit cannot be expressed (the config
		 * should not ask for one). */
		uint8_t zasl = s->zasl_bytes ? log2_units(s->zasl_bytes) : 0;
		uint8_t mdts = log2_units(nvme_req_ctrl(req)->ops->mdts_bytes);

		b->zns_ctrl.zasl = zasl < mdts ? zasl : mdts;
		return 0;
	}
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
}

/* CNS 08h: I/O command set independent Identify Namespace. */
static uint16_t id_indep_ns(struct nvme_req *req, union id_buf *b)
{
	struct ns *ns;
	uint16_t st = ns_lookup(req, &ns);

	if (st || !ns)
		return st;
	b->indep.nmic = NVME_NS_NMIC_SHARED;
	b->indep.anagrpid = htole32(ana_ns_group(nvme_req_ctrl(req)->subsys,
						 le32toh(req->cmd.nsid)));
	b->indep.nstat = 1; /* namespace ready */
	return 0;
}

static void execute_identify(struct nvme_req *req)
{
	union id_buf b;
	uint16_t st;

	memset(&b, 0, sizeof(b));
	switch (le32toh(req->cmd.cdw10) & 0xff) {
	case NVME_IDENTIFY_CNS_NS:
		st = id_ns(req, &b);
		break;
	case NVME_IDENTIFY_CNS_CTRL:
		nvme_build_id_ctrl(nvme_req_ctrl(req), &b.ctrl);
		st = 0;
		break;
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST:
		st = id_ns_list(req, &b, false);
		break;
	case NVME_IDENTIFY_CNS_NS_DESC_LIST:
		st = id_ns_descs(req, &b);
		break;
	case NVME_IDENTIFY_CNS_CSI_NS:
		st = id_csi_ns(req, &b);
		break;
	case NVME_IDENTIFY_CNS_CSI_CTRL:
		st = id_csi_ctrl(req, &b);
		break;
	case NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST:
		st = id_ns_list(req, &b, true);
		break;
	case NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS:
		st = id_indep_ns(req, &b);
		break;
	case NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE:
		/* One I/O command set combination: NVM + ZNS (bits 0 and 2). */
		b.iocs[0] = htole64((1u << NVME_CSI_NVM) | (1u << NVME_CSI_ZNS));
		st = 0;
		break;
	default: /* filtered by nvme_parse_identify */
		st = nvme_err(NVME_SC_INVALID_FIELD);
		break;
	}
	if (!st)
		nvme_req_copy_to(req, 0, &b, sizeof(b));
	nvme_req_complete(req, st);
}

uint16_t nvme_parse_identify(struct nvme_req *req)
{
	switch (le32toh(req->cmd.cdw10) & 0xff) {
	case NVME_IDENTIFY_CNS_NS:
	case NVME_IDENTIFY_CNS_CTRL:
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST:
	case NVME_IDENTIFY_CNS_NS_DESC_LIST:
	case NVME_IDENTIFY_CNS_CSI_NS:
	case NVME_IDENTIFY_CNS_CSI_CTRL:
	case NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST:
	case NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS:
	case NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE:
		req->execute = execute_identify;
		return nvme_req_data_len(req, NVME_IDENTIFY_DATA_SIZE);
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
}
