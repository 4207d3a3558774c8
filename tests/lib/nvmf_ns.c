/* Namespace geometry and zone commands over the test client (nvmf_ns.h). */
#include "nvmf_ns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX (1u << 20)      /* bytes per Zone Management Receive, at most */

static int identify(struct nvmf_client *c, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf)
{
	return nvmf_identify(c, cns, nsid, csi, buf, NULL);
}

/* page << units, saturating: MDTS and ZASL are powers of two in pages. */
static uint32_t pages_pow2(uint32_t page, uint8_t units)
{
	return units >= 32 || ((uint64_t)page << units) > UINT32_MAX ? UINT32_MAX : page << units;
}

void nvmf_ns_ctrl_limits(struct nvmf_ns_geom *g, uint64_t cap, const struct nvme_id_ctrl *ctrl)
{
	uint32_t page = 4096u << NVME_CAP_MPSMIN(cap);
	uint32_t sgls = le32toh(ctrl->sgls), ioccsz = le32toh(ctrl->ioccsz);

	/* MDTS 0: no limit (Base 5.17.2.1). */
	g->mdts_bytes = ctrl->mdts ? pages_pow2(page, ctrl->mdts) : UINT32_MAX;
	g->max_qd = (uint32_t)NVME_CAP_MQES(cap); /* 0's based: entries - 1 */
	g->vwc = ctrl->vwc & NVME_CTRL_VWC_PRESENT;
	g->cmd_sets = NVME_CAP_CSS(cap) & NVME_CAP_CSS_CSI;
	g->sgl = sgls & NVME_CTRL_SGLS_SUPPORTED;
	/* In-capsule data: IOCCSZ counts the 64-byte SQE too (16-byte units).
	 * NVMe/TCP puts the data right after the SQE, so a non-zero ICDOFF
	 * cannot be honoured, and it is described by an SGL Data Block with
	 * an offset, which the controller must say it takes (SGLS bit 20). */
	g->io_inline = ioccsz > 4 && !le16toh(ctrl->icdoff) && (sgls & NVME_CTRL_SGLS_OFFSET)
			       ? (ioccsz - 4) * 16u : 0;
}

unsigned nvmf_ns_lbaf(const struct nvme_id_ns *ns)
{
	return (ns->flbas & NVME_NS_FLBAS_LOWER_MASK) | ((ns->flbas & 0x60u) >> 1);
}

int nvmf_ns_nvm(struct nvmf_ns_geom *g, const struct nvme_id_ns *ns, char *err, size_t errlen)
{
	unsigned f = nvmf_ns_lbaf(ns);

	g->nlbas = le64toh(ns->nsze);
	if (!g->nlbas) {
		snprintf(err, errlen, "namespace %u is not active (size 0)", g->nsid);
		return -1;
	}
	if (f > ns->nlbaf || f >= sizeof(ns->lbaf) / sizeof(ns->lbaf[0])) {
		snprintf(err, errlen, "namespace %u: LBA format %u in use, %u formats listed", g->nsid,
			 f, ns->nlbaf + 1u);
		return -1;
	}
	g->lba_shift = ns->lbaf[f].ds;
	if (g->lba_shift < 9 || g->lba_shift > 16) {
		snprintf(err, errlen, "namespace %u: LBA data size 2^%u bytes", g->nsid, g->lba_shift);
		return -1;
	}
	/* Metadata interleaved with the data (extended LBAs) would change
	 * every transfer length; separate metadata is never sent here. */
	if (le16toh(ns->lbaf[f].ms) && (ns->flbas & NVME_NS_FLBAS_META_EXT)) {
		snprintf(err, errlen, "namespace %u is formatted with %u bytes of metadata in each "
			 "LBA: not supported", g->nsid, le16toh(ns->lbaf[f].ms));
		return -1;
	}
	return 0;
}

int nvmf_ns_csi(const uint8_t *descs, size_t len)
{
	/* Descriptors back to back, each a 4-byte header and NIDL bytes;
	 * a zero type ends the list (Base 5.17.2.3, Figure 280). */
	for (size_t off = 0; off + sizeof(struct nvme_ns_id_desc) <= len;) {
		const struct nvme_ns_id_desc *d = (const void *)(descs + off);
		if (!d->nidt)
			return -1;
		size_t next = off + sizeof(*d) + d->nidl;
		if (!d->nidl || next > len)
			return -1;
		if (d->nidt == NVME_NIDT_CSI)
			return d->nidl == NVME_NIDT_CSI_LEN ? descs[off + sizeof(*d)] : -1;
		off = next;
	}
	return -1;
}

int nvmf_ns_zns(struct nvmf_ns_geom *g, const struct nvme_zns_id_ns *zns, unsigned lbaf,
		const struct nvme_zns_id_ctrl *zc, uint64_t cap, char *err, size_t errlen)
{
	uint32_t page = 4096u << NVME_CAP_MPSMIN(cap);
	uint32_t mar = le32toh(zns->mar), mor = le32toh(zns->mor);

	g->zone_size = lbaf < sizeof(zns->lbafe) / sizeof(zns->lbafe[0])
			       ? le64toh(zns->lbafe[lbaf].zsze) : 0;
	if (!g->zone_size || g->zone_size > g->nlbas) {
		snprintf(err, errlen, "namespace %u is zoned but reports a zone size of %llu LBAs "
			 "(namespace: %llu LBAs)", g->nsid, (unsigned long long)g->zone_size,
			 (unsigned long long)g->nlbas);
		return -1;
	}
	g->max_active = mar == 0xffffffffu ? 0 : mar + 1; /* 0's based */
	g->max_open = mor == 0xffffffffu ? 0 : mor + 1;
	/* ZASL 0: the same as MDTS (ZNS 4.1.5.1). */
	g->zasl_bytes = zc && zc->zasl ? pages_pow2(page, zc->zasl) : g->mdts_bytes;
	if (g->zasl_bytes > g->mdts_bytes)
		g->zasl_bytes = g->mdts_bytes;
	g->zoned = true;
	return 0;
}

int nvmf_ns_command_set(uint32_t nsid, int csi, int zns_status, uint64_t zsze, char *err,
			size_t errlen)
{
	if (csi == NVME_CSI_NVM)
		return NVME_CSI_NVM;
	if (csi == NVME_CSI_ZNS) {
		if (zns_status) {
			snprintf(err, errlen, "namespace %u is zoned but its ZNS Identify Namespace "
				 "failed (status %#x)", nsid, (unsigned)zns_status);
			return -1;
		}
		return NVME_CSI_ZNS;
	}
	if (csi >= 0) {
		snprintf(err, errlen, "namespace %u uses command set %d: neither NVM nor Zoned "
			 "Namespace", nsid, csi);
		return -1;
	}
	/* Not said: some targets answer the ZNS Identify for a conventional
	 * namespace too, with zeros. */
	return !zns_status && zsze ? NVME_CSI_ZNS : NVME_CSI_NVM;
}

/* The CSI descriptor of the namespace: its CSI, -1 if none is listed (or
 * the controller has no command sets but NVM: NVME_CSI_NVM), -2 when the
 * connection failed. */
static int namespace_csi(struct nvmf_client *admin, const struct nvmf_ns_geom *g, void *buf)
{
	if (!g->cmd_sets)
		return NVME_CSI_NVM; /* CAP.CSS: NVM is the only command set */
	if (identify(admin, NVME_IDENTIFY_CNS_NS_DESC_LIST, g->nsid, NVME_CSI_NVM, buf) == 0)
		return nvmf_ns_csi(buf, NVME_IDENTIFY_DATA_SIZE);
	return admin->dead ? -2 : -1;
}

int nvmf_ns_geometry(struct nvmf_client *admin, uint32_t nsid, struct nvmf_ns_geom *g)
{
	union {
		struct nvme_id_ctrl ctrl;
		struct nvme_id_ns ns;
		struct nvme_zns_id_ns zns;
		struct nvme_zns_id_ctrl zctrl;
		uint8_t raw[NVME_IDENTIFY_DATA_SIZE];
	} *id = malloc(sizeof(*id));
	struct nvme_zns_id_ns *zns = malloc(sizeof(*zns));
	uint64_t cap;
	int st;

	memset(g, 0, sizeof(*g));
	if (!id || !zns) {
		snprintf(admin->err, sizeof(admin->err), "out of memory");
		st = -1;
		goto out;
	}
	g->nsid = nsid;
	st = nvmf_prop_get(admin, NVME_REG_CAP, true, &cap);
	if (st)
		goto out;
	st = identify(admin, NVME_IDENTIFY_CNS_CTRL, 0, NVME_CSI_NVM, id);
	if (st)
		goto out;
	nvmf_ns_ctrl_limits(g, cap, &id->ctrl);

	st = identify(admin, NVME_IDENTIFY_CNS_NS, nsid, NVME_CSI_NVM, id);
	if (st)
		goto out;
	if (nvmf_ns_nvm(g, &id->ns, admin->err, sizeof(admin->err))) {
		st = -1;
		goto out;
	}
	unsigned lbaf = nvmf_ns_lbaf(&id->ns);

	int csi = namespace_csi(admin, g, id), zst = 0;
	uint64_t zsze = 0;
	if (csi == -2) {
		st = -1;
		goto out;
	}
	if (csi != NVME_CSI_NVM) {
		zst = identify(admin, NVME_IDENTIFY_CNS_CSI_NS, nsid, NVME_CSI_ZNS, zns);
		if (zst < 0) {
			st = -1;
			goto out;
		}
		zsze = zst ? 0 : le64toh(zns->lbafe[lbaf].zsze);
	}
	csi = nvmf_ns_command_set(nsid, csi, zst, zsze, admin->err, sizeof(admin->err));
	if (csi != NVME_CSI_ZNS) {
		st = csi < 0 ? -1 : 0;
		goto out;
	}
	st = identify(admin, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_ZNS, id);
	if (st < 0)
		goto out;
	if (nvmf_ns_zns(g, zns, lbaf, st ? NULL : &id->zctrl, cap, admin->err, sizeof(admin->err)))
		st = -1;
	else
		st = 0;
out:
	free(zns);
	free(id);
	return st;
}

int nvmf_zone_report(struct nvmf_client *io, const struct nvmf_ns_geom *g, uint64_t slba,
		     struct nvme_zns_desc *out, uint32_t max, uint32_t *got)
{
	uint64_t want = sizeof(struct nvme_zone_report) + (uint64_t)max * sizeof(*out);
	uint32_t len = g->mdts_bytes < REPORT_MAX ? g->mdts_bytes : REPORT_MAX;
	struct nvme_zone_report *r;
	struct nvme_sqe sqe;

	*got = 0;
	if (want < len)
		len = (uint32_t)want;
	if (len < sizeof(*r) + sizeof(*out)) {
		snprintf(io->err, sizeof(io->err), "a zone report of %u bytes holds no zone", len);
		return -1;
	}
	r = calloc(1, len);
	if (!r) {
		snprintf(io->err, sizeof(io->err), "out of memory");
		return -1;
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_zns_cmd_mgmt_recv;
	sqe.nsid = htole32(g->nsid);
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
