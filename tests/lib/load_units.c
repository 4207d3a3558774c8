/* The namespace range a load runs on (load.h: load_units()). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "load.h"
#include "nvmf_ns.h"

#define ZONES_PER_REPORT 1024u

static struct load_unit *slices(const struct nvmf_ns_geom *g, uint64_t region_lbas, uint32_t bs,
				int nqueues, uint32_t *n, char *err, size_t errlen)
{
	uint32_t nlb = bs >> g->lba_shift;
	uint64_t per = region_lbas / (uint64_t)nqueues / nlb * nlb;
	struct load_unit *u;

	if (!per) {
		snprintf(err, errlen, "the region holds fewer than %d I/Os of %u bytes", nqueues, bs);
		return NULL;
	}
	u = calloc((size_t)nqueues, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < nqueues; i++)
		u[i] = (struct load_unit){ (uint64_t)i * per, per };
	*n = (uint32_t)nqueues;
	return u;
}

static struct load_unit *zones(struct nvmf_client *io, const struct nvmf_ns_geom *g,
			       uint64_t region_lbas, uint32_t bs, bool writes, uint32_t *n,
			       uint32_t *skipped, uint32_t *resets, char *err, size_t errlen)
{
	uint64_t nzones = (region_lbas + g->zone_size - 1) / g->zone_size;
	uint64_t end = nzones * g->zone_size, slba = 0;
	struct nvme_zns_desc *d = calloc(ZONES_PER_REPORT, sizeof(*d));
	struct load_unit *u = calloc(nzones ? nzones : 1, sizeof(*u));
	uint32_t nlb = bs >> g->lba_shift;

	if (!d || !u) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (slba < end) {
		uint32_t got;
		int st = nvmf_zone_report(io, g, slba, d, ZONES_PER_REPORT, &got);
		if (st || !got) {
			snprintf(err, errlen, "zone report at LBA %" PRIu64 ": %s (status %#x)", slba,
				 st < 0 ? io->err : "no zones", (unsigned)st);
			goto fail;
		}
		for (uint32_t k = 0; k < got && slba < end; k++, slba += g->zone_size) {
			uint64_t zslba = le64toh(d[k].zslba), cap = le64toh(d[k].zcap);
			uint8_t zs = d[k].zs >> 4;

			if (zslba != slba) {
				snprintf(err, errlen, "zone report: zone at LBA %" PRIu64
					 ", expected %" PRIu64, zslba, slba);
				goto fail;
			}
			/* Offline zones hold nothing; read-only ones take no writes. */
			if (zs == NVME_ZNS_ZS_OFFLINE || (writes && zs == NVME_ZNS_ZS_READ_ONLY) ||
			    cap < nlb) {
				(*skipped)++;
				continue;
			}
			if (writes && zs != NVME_ZNS_ZS_EMPTY) {
				st = nvmf_zone_reset(io, g->nsid, zslba);
				if (st) {
					snprintf(err, errlen, "resetting the zone at LBA %" PRIu64
						 ": %s (status %#x)", zslba, st < 0 ? io->err : "refused",
						 (unsigned)st);
					goto fail;
				}
				(*resets)++;
			}
			u[(*n)++] = (struct load_unit){ zslba, cap };
		}
	}
	free(d);
	return u;
fail:
	free(d);
	free(u);
	return NULL;
}

struct load_unit *load_units(struct nvmf_client *io, const struct nvmf_ns_geom *g,
			     uint64_t region_lbas, uint32_t bs, int nqueues, bool writes,
			     uint32_t *n, uint32_t *skipped, uint32_t *resets, char *err,
			     size_t errlen)
{
	*n = *skipped = *resets = 0;
	if (g->zoned)
		return zones(io, g, region_lbas, bs, writes, n, skipped, resets, err, errlen);
	return slices(g, region_lbas, bs, nqueues, n, err, errlen);
}
