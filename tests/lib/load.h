/*
 * The load generator's engine (tests/tools/znstgt-load.c is its command
 * line): one struct load_queue drives one NVMe/TCP I/O queue (nvmf_queue.h)
 * from one thread, keeping qd commands in flight.
 *
 * The namespace range under load is a list of units: the zones of a zoned
 * namespace (each with its capacity), or equal slices of a conventional one.
 * Queue i owns the units u with u % nqueues == i; everything that needs an
 * order (sequential reads and writes, appends, resets) stays within a
 * queue's own units, so queues never race each other for a zone.
 *
 *   read / write, random      any block-aligned offset of any unit (verified
 *                             writes: within the queue's own units, slot i
 *                             at I/O indexes i mod qd, so none overlap)
 *   read / write, sequential  through the queue's own units in order
 *   write on a zoned ns       sequential only: at the zone's write pointer,
 *                             in submission order (one queue per zone)
 *   append                    Zone Append spread round-robin over
 *                             active_zones open zones of the queue's own
 *   zone full                 (writes, appends) once its last command is
 *                             back the zone is reset and reused
 *
 * Verification (cfg.verify): writes and appends carry a unique pattern and
 * are read back (at the ALBA for appends) and compared; reads check the
 * pattern load_queue_prefill() wrote. A mismatch is an error.
 */
#ifndef ZNSTGT_LOAD_H
#define ZNSTGT_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "lat_hist.h"
#include "nvmf_client.h"
#include "nvmf_queue.h"

enum load_op { LOAD_READ, LOAD_WRITE, LOAD_APPEND };

struct load_unit {
	uint64_t slba;             /* first LBA */
	uint64_t cap;              /* LBAs usable from slba (zone capacity) */
};

/* Shared by every queue, read-only while they run. */
struct load_cfg {
	enum load_op op;
	bool random;
	uint32_t nsid;
	uint32_t lba_shift;
	bool zoned;
	uint32_t bs;               /* bytes per I/O, a multiple of the LBA size */
	int qd;
	const struct load_unit *units;
	uint32_t nunits;
	int nqueues;
	uint32_t active_zones;     /* appends: open zones per queue */
	bool verify;
	uint64_t seed;             /* patterns and random offsets */
	uint32_t prefill_bs;       /* load_queue_prefill(): bytes per write */
	/* When to stop and what counts: I/Os completing in [t_begin, t_end)
	 * (CLOCK_MONOTONIC seconds); none is submitted at or after t_end.
	 * quota > 0: exactly quota I/Os in all instead, split evenly over
	 * the queues, all counted. */
	double t_begin, t_end;
	uint64_t quota;
	int *abort;                /* any queue that fails sets it; all stop */
	bool poll;                 /* spin on the sockets instead of sleeping (nvmfq.poll) */
};

struct load_stats {
	uint64_t ios, bytes;
	struct lat_hist lat;       /* submission to completion, nanoseconds */
	uint64_t verified;         /* I/Os whose data was checked */
	uint64_t resets;           /* zone resets done */
	uint64_t errors;           /* failed commands and data mismatches */
	double t_first, t_last;    /* first submission, last counted completion */
};

struct load_slot;
struct load_zone;

struct load_queue {
	const struct load_cfg *cfg;
	int id;
	struct nvmfq q;
	struct load_stats st;
	char err[256];             /* the first failure */

	/* private */
	struct load_slot *slots;
	uint16_t *idle;
	int nidle;
	bool stopping, prefilling;
	uint64_t quota;            /* this queue's share of cfg->quota */
	uint64_t issued;
	uint64_t rng;
	uint64_t token;            /* unique pattern key of the next write */
	uint32_t *own;             /* indexes into cfg->units */
	uint32_t nown;
	uint32_t cur;              /* sequential / prefill cursor: own[cur] */
	uint64_t pos;              /* LBAs into that unit */
	struct load_zone *zones;   /* per own unit (zoned writes and appends) */
	uint32_t *ring;            /* zone FIFOs: clean ones, drained ones */
	uint32_t clean_head, clean_n, drain_head, drain_n;
	int32_t *active;           /* own indexes appended to, -1 = none */
	uint32_t nactive, rr;
};

/*
 * The units of the first region_lbas LBAs of a namespace, over the I/O
 * queue io: equal slices (one per queue, a multiple of bs each) of a
 * conventional namespace, or the zones of a zoned one that can take the
 * load - not offline, not read-only when written to, at least bs of
 * capacity - each reset first unless empty when writes is set. Returns a
 * malloc'd array (*n units; *skipped zones left out, *resets done), or
 * NULL with a reason in err.
 */
struct nvmf_ns_geom;
struct load_unit *load_units(struct nvmf_client *io, const struct nvmf_ns_geom *g,
			     uint64_t region_lbas, uint32_t bs, int nqueues, bool writes,
			     uint32_t *n, uint32_t *skipped, uint32_t *resets, char *err,
			     size_t errlen);

/* Take over c's socket; c must be an I/O queue of cfg->nsid's controller. */
int load_queue_init(struct load_queue *lq, const struct load_cfg *cfg, int id,
		    struct nvmf_client *c);
/* Write the pattern over every LBA of the queue's own units (zones must be
 * empty). Returns 0 or -1 (lq->err). */
int load_queue_prefill(struct load_queue *lq);
/* The workload, until cfg's limits; stats in lq->st. Returns 0 or -1. */
int load_queue_run(struct load_queue *lq);
void load_queue_destroy(struct load_queue *lq);
/* The generator's random numbers (xorshift64*), from a non-zero seed. */
uint64_t load_rnd(uint64_t *s);

#endif
