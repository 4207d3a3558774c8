/* Namespace geometry and zone commands over the test client (nvmf_ns.h). */
#include "nvmf_ns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FALLBACK_MDTS (1u << 20)
#define REPORT_MAX (64u * 1024)    /* bytes per Zone Management Receive */

static int identify(struct nvmf_client *c, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf)
{
	return nvmf_identify(c, cns, nsid, csi, buf, NULL);
}

int nvmf_ns_geometry(struct nvmf_client *admin, uint32_t nsid, struct nvmf_ns_geom *g)
{
	union {
		struct nvme_id_ctrl ctrl;
		struct nvme_id_ns ns;
		struct nvme_zns_id_ns zns;
		struct nvme_zns_id_ctrl zctrl;
	} *id = malloc(sizeof(*id));
	uint64_t cap;
	int st;

	memset(g, 0, sizeof(*g));
	if (!id)
		return -1;
	g->nsid = nsid;
	st = nvmf_prop_get(admin, NVME_REG_CAP, true, &cap);
	if (st)
		goto out;
	uint32_t page = 4096u << NVME_CAP_MPSMIN(cap);

	st = identify(admin, NVME_IDENTIFY_CNS_CTRL, 0, NVME_CSI_NVM, id);
	if (st)
		goto out;
	g->mdts_bytes = id->ctrl.mdts && id->ctrl.mdts < 20 ? page << id->ctrl.mdts : FALLBACK_MDTS;
	g->io_inline = le32toh(id->ctrl.ioccsz) * 16u > 64u ? le32toh(id->ctrl.ioccsz) * 16u - 64u : 0;
	g->vwc = id->ctrl.vwc & NVME_CTRL_VWC_PRESENT;

	st = identify(admin, NVME_IDENTIFY_CNS_NS, nsid, NVME_CSI_NVM, id);
	if (st)
		goto out;
	g->nlbas = le64toh(id->ns.nsze);
	g->lba_shift = id->ns.lbaf[id->ns.flbas & NVME_NS_FLBAS_LOWER_MASK].ds;
	if (!g->nlbas || g->lba_shift < 9 || g->lba_shift > 16) {
		st = -1;
		snprintf(admin->err, sizeof(admin->err), "namespace %u: size %llu, LBA shift %u",
			 nsid, (unsigned long long)g->nlbas, g->lba_shift);
		goto out;
	}

	/* Zoned: the ZNS Identify Namespace exists for it (a conventional
	 * namespace answers Invalid Field). */
	if (identify(admin, NVME_IDENTIFY_CNS_CSI_NS, nsid, NVME_CSI_ZNS, id) == 0) {
		g->zoned = true;
		g->zone_size = le64toh(id->zns.lbafe[0].zsze);
		uint32_t mar = le32toh(id->zns.mar), mor = le32toh(id->zns.mor);
		g->max_active = mar == 0xffffffffu ? 0 : mar + 1; /* 0's based */
		g->max_open = mor == 0xffffffffu ? 0 : mor + 1;
		st = identify(admin, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_ZNS, id);
		if (st)
			goto out;
		g->zasl_bytes = id->zctrl.zasl && id->zctrl.zasl < 20 ? page << id->zctrl.zasl
								     : g->mdts_bytes;
		if (!g->zone_size || g->zone_size > g->nlbas) {
			st = -1;
			snprintf(admin->err, sizeof(admin->err), "namespace %u: zone size %llu",
				 nsid, (unsigned long long)g->zone_size);
		}
	} else if (admin->dead) {
		st = -1;
	}
out:
	free(id);
	return st;
}

int nvmf_zone_report(struct nvmf_client *io, uint32_t nsid, uint64_t slba,
		     struct nvme_zns_desc *out, uint32_t max, uint32_t *got)
{
	uint32_t len = (uint32_t)sizeof(struct nvme_zone_report) + max * (uint32_t)sizeof(*out);
	struct nvme_zone_report *r;
	struct nvme_sqe sqe;

	*got = 0;
	if (len > REPORT_MAX)
		len = REPORT_MAX;
	r = calloc(1, len);
	if (!r)
		return -1;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_zns_cmd_mgmt_recv;
	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32((uint32_t)slba);
	sqe.cdw11 = htole32((uint32_t)(slba >> 32));
	sqe.cdw12 = htole32(len / 4 - 1); /* NUMD, 0's based */
	/* ZRA Report Zones, all states, Partial Report: nr_zones = returned. */
	sqe.cdw13 = htole32(NVME_ZNS_ZRA_REPORT_ZONES | (NVME_ZNS_ZRAS_REPORT_ALL << 8) | (1u << 16));
	int st = nvmf_cmd(io, &sqe, NULL, 0, r, len, NULL);
	if (st == 0) {
		uint64_t n = le64toh(r->nr_zones);
		uint32_t fit = (len - (uint32_t)sizeof(*r)) / (uint32_t)sizeof(*out);
		if (n > fit)
			n = fit;
		if (n > max)
			n = max;
		memcpy(out, r->entries, (size_t)n * sizeof(*out));
		*got = (uint32_t)n;
	}
	free(r);
	return st;
}

int nvmf_zone_reset(struct nvmf_client *io, uint32_t nsid, uint64_t zslba)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_zns_cmd_mgmt_send;
	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32((uint32_t)zslba);
	sqe.cdw11 = htole32((uint32_t)(zslba >> 32));
	sqe.cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	return nvmf_cmd(io, &sqe, NULL, 0, NULL, 0, NULL);
}
