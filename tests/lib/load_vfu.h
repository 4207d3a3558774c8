/*
 * The load generator's engine over vfio-user (znstgt-load --vfio-user): one
 * I/O queue of a guest NVMe driver (vfu_nvme.h) kept qd commands deep with
 * reads or writes (a conventional namespace), random or sequential, over
 * the first region_lbas LBAs. Like a polling guest driver (SPDK's, Linux
 * poll queues) it spins on the completion queue's memory (the queue is
 * made without interrupts; past 50 us without a completion it sleeps
 * 20 us between looks, load_vfu.c), takes
 * every completion there is, then rings the CQ head and the SQ tail once
 * for the batch: stores into the mapped doorbell page when the device
 * offers one, else posted writes as QEMU forwards a guest's MMIO stores.
 */
#ifndef ZNSTGT_LOAD_VFU_H
#define ZNSTGT_LOAD_VFU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "load.h"

struct vnvme;

struct load_vfu_cfg {
	uint32_t nsid;
	bool random;
	bool write;                /* Write commands (the slots' data as it is) */
	uint32_t bs;               /* bytes per read, a multiple of the LBA size */
	uint32_t lba_shift;
	uint64_t region_lbas;
	int qd;                    /* < the I/O queue's entries */
	uint64_t data_gpa;         /* qd slots of bs bytes, then qd PRP list pages */
	uint64_t seed;
	/* As struct load_cfg: I/Os completing in [t_begin, t_end) count, none
	 * submitted at or after t_end; or quota I/Os, all counted. */
	double t_begin, t_end;
	uint64_t quota;
};

/* Guest pages the slots need (data and PRP lists). */
uint32_t load_vfu_pages(uint32_t bs, int qd);
/* Run on v's I/O queue; stats in *st. 0, or -1 with err. */
int load_vfu_run(struct vnvme *v, const struct load_vfu_cfg *cfg, struct load_stats *st,
		 char *err, size_t errlen);

#endif
