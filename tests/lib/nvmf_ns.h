/*
 * What a host learns about a namespace before doing I/O to it, over the
 * test client (nvmf_client.h): the controller's limits and the namespace's
 * geometry from Identify, zone descriptors from Zone Management Receive,
 * and Zone Reset. Used by the load generator and the benchmarks.
 *
 * Written for any NVMe/TCP target, not only znstgt: what the Identify data
 * says is read the way the specifications define it (MDTS 0 = no limit,
 * in-capsule data only as IOCCSZ, ICDOFF and SGLS allow, the command set
 * of a namespace from its CSI descriptor), and a controller without the
 * Zoned Namespace Command Set just has conventional namespaces.
 */
#ifndef ZNSTGT_NVMF_NS_H
#define ZNSTGT_NVMF_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nvme/types.h>

#include "nvmf_client.h"

struct nvmf_ns_geom {
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t nlbas;            /* NSZE */
	bool vwc;                  /* the controller has a volatile write cache */
	uint32_t mdts_bytes;       /* largest transfer; UINT32_MAX when MDTS is 0 (no limit) */
	uint32_t io_inline;        /* in-capsule data bytes on I/O queues (0: none) */
	uint32_t max_qd;           /* entries an I/O queue holds, less one (CAP.MQES) */
	bool sgl;                  /* SGLS says SGLs are supported (Fabrics requires it) */
	bool cmd_sets;             /* CAP.CSS: I/O command sets other than NVM, named by CSI */
	/* zoned namespaces (ZNS 1.1, 4.1) */
	bool zoned;
	uint64_t zone_size;        /* LBAs */
	uint32_t max_open;         /* 0 = no limit */
	uint32_t max_active;       /* 0 = no limit */
	uint32_t zasl_bytes;       /* largest Zone Append */
};

/*
 * Identify Controller, Identify Namespace and, when the namespace is zoned,
 * the ZNS Identify structures, on a connected and enabled admin queue.
 * Returns 0, an NVMe status, or -1 (admin->err says why).
 */
int nvmf_ns_geometry(struct nvmf_client *admin, uint32_t nsid, struct nvmf_ns_geom *g);

/* ---- the parts of nvmf_ns_geometry(), for tests with another target's data ---- */

/* Controller limits from CAP and Identify Controller (NVMe 2.0 Base 3.1.4.1, 5.17.2.1). */
void nvmf_ns_ctrl_limits(struct nvmf_ns_geom *g, uint64_t cap, const struct nvme_id_ctrl *ctrl);
/* Size and LBA size from Identify Namespace (NVM 1.0, 4.1.5.1). Returns 0, or
 * -1 with a reason in err (inactive namespace, LBA format we cannot drive). */
int nvmf_ns_nvm(struct nvmf_ns_geom *g, const struct nvme_id_ns *ns, char *err, size_t errlen);
/* The LBA format in use: FLBAS bits 3:0, and bits 6:5 above 16 formats. */
unsigned nvmf_ns_lbaf(const struct nvme_id_ns *ns);
/* The Command Set Identifier in a Namespace Identification Descriptor list
 * (Identify CNS 03h, 4096 bytes; NVMe 2.0 Base 5.17.2.3), or -1 if it lists
 * none (a controller older than command sets) or the list is malformed. */
int nvmf_ns_csi(const uint8_t *descs, size_t len);
/*
 * Zoned or conventional, from what Identify said: csi from the descriptor
 * list (-1: none), zns_status and zsze from a ZNS Identify Namespace (its
 * zone size for the LBA format in use). A namespace whose CSI says nothing
 * is zoned only if that Identify worked and gave a zone size. Returns
 * NVME_CSI_NVM, NVME_CSI_ZNS, or -1 with a reason in err.
 */
int nvmf_ns_command_set(uint32_t nsid, int csi, int zns_status, uint64_t zsze, char *err,
			size_t errlen);
/* Zone geometry from the ZNS Identify Namespace for LBA format lbaf and
 * the ZNS Identify Controller (ZNS 1.1, 4.1.5.1 and 4.1.5.2); zc may be
 * NULL (ZASL then = MDTS). Returns 0, or -1 with a reason in err. */
int nvmf_ns_zns(struct nvmf_ns_geom *g, const struct nvme_zns_id_ns *zns, unsigned lbaf,
		const struct nvme_zns_id_ctrl *zc, uint64_t cap, char *err, size_t errlen);

/*
 * Descriptors of up to max zones starting with the one holding slba, on an
 * I/O queue, in one Zone Management Receive of at most MDTS bytes (Partial
 * Report set, as the Linux host sends it). *got is how many came back.
 * Returns 0, a status, or -1.
 */
int nvmf_zone_report(struct nvmf_client *io, const struct nvmf_ns_geom *g, uint64_t slba,
		     struct nvme_zns_desc *out, uint32_t max, uint32_t *got);

/* Zone Management Send, Reset Zone, for the zone starting at zslba. */
int nvmf_zone_reset(struct nvmf_client *io, uint32_t nsid, uint64_t zslba);

#endif
