/*
 * What a host learns about a namespace before doing I/O to it, over the
 * test client (nvmf_client.h): geometry from Identify, zone descriptors
 * from Zone Management Receive, and Zone Reset. Used by the load generator.
 */
#ifndef ZNSTGT_NVMF_NS_H
#define ZNSTGT_NVMF_NS_H

#include <stdbool.h>
#include <stdint.h>

#include <nvme/types.h>

#include "nvmf_client.h"

struct nvmf_ns_geom {
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t nlbas;            /* NSZE */
	bool vwc;                  /* the controller has a volatile write cache */
	uint32_t mdts_bytes;       /* largest transfer (1 MiB if MDTS says none) */
	uint32_t io_inline;        /* in-capsule data bytes on I/O queues (IOCCSZ) */
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

/*
 * Descriptors of up to max zones starting with the one holding slba, on an
 * I/O queue. *got is how many came back. Returns 0, a status, or -1.
 */
int nvmf_zone_report(struct nvmf_client *io, uint32_t nsid, uint64_t slba,
		     struct nvme_zns_desc *out, uint32_t max, uint32_t *got);

/* Zone Management Send, Reset Zone, for the zone starting at zslba. */
int nvmf_zone_reset(struct nvmf_client *io, uint32_t nsid, uint64_t zslba);

#endif
