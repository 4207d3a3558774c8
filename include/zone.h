/*
 * The zone engine: the in-memory state of every zone of a zoned namespace and
 * the rules of the NVMe ZNS Command Set 1.1 (section numbers below are from
 * that specification): the zone state machine (2.1.1, Figure 7), active and
 * open resource limits (2.1.1.4), Write / Zone Append checks (3.4.4 - 3.4.6),
 * Zone Management Send (3.4.3) and Receive (3.4.2), and the Zone Random
 * Write Area (ZRWA, ZNS 1.1; doc/zrwa.md).
 *
 * It knows nothing about files. The durable side (journal + image, zmeta.h)
 * reads it through zns_take_dirty()/zns_snapshot() and loads it back with
 * zns_load()/zns_power_up().
 *
 * Locking. state_lock serialises every zone state transition and the open /
 * active counters. Each zone's own lock guards its write pointers and its
 * in-flight write list. Lock order: state_lock, then zone locks; dirty_lock
 * is a leaf. The hot path - a write or append to a zone that is already open
 * and does not fill it - takes only that zone's lock, so writes to different
 * zones never contend.
 */
#ifndef ZNSTGT_ZONE_H
#define ZNSTGT_ZONE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ns_write.h"

#define ZONE_NIL UINT32_MAX

/*
 * Someone waiting for a zone's written prefix to reach `target` (a sync
 * that covers a write which ended before an earlier one). ready() is called
 * with the zone lock held once wp_done >= target, or when the zone's writes
 * were dropped by Reset/Finish/Offline; it must not call into the engine.
 */
struct zone_waiter {
	struct zone_waiter *next;
	uint64_t target;
	void (*ready)(struct zone_waiter *zw);
};

struct zone {
	pthread_mutex_t lock;
	uint64_t wp;                 /* next LBA given to a write (reservation) */
	uint64_t wp_done;            /* every LBA below it holds written data */
	uint64_t wp_ended;           /* end of the furthest write that ended */
	struct ns_write *inflight;   /* reserved, not yet ended; oldest first */
	struct ns_write *inflight_tail;
	struct zone_waiter *waiters;
	uint32_t epoch;              /* bumped by Reset/Finish/Offline */
	uint32_t iopen_prev, iopen_next; /* implicitly-open list (state_lock) */
	uint32_t dirty_next;         /* commit list (dirty_lock); 0 = not listed */
	uint8_t state;               /* NVME_ZNS_ZS_* */
	uint8_t za;                  /* zone attributes: NVME_ZNS_ZA_* */
	uint8_t flags;               /* ZONE_F_* */
	uint8_t scrubbing;           /* zeroings of this zone under way (scrub() in zone.c) */
	uint16_t running;            /* writes whose data is moving (zns_write_start) */
	/* Not 0: a flush filled the zone while ZRWA writes were in flight in
	 * its window, and its ZRWA's resource stays counted in nr_zrwa until
	 * they end (zns_snapshot records the zone open with its ZRWA until
	 * then). It is 1 + where that flush started, counted from the zone
	 * start, modulo ZRWAFG (a 16-bit count): the granules that record
	 * counts in. Two bytes, in what was padding: struct zone stays at 112
	 * (RAM per zone, doc/performance.md). */
	uint16_t zrwa_held;
};

#define ZONE_F_FINISHED  0x01   /* Full by Finish (not by writes) */
#define ZONE_F_ZDE_DIRTY 0x02   /* extension changed since the last commit */
#define ZONE_F_GAPPED    0x04   /* wp_ended > wp_done: a write ended ahead of an older one */
#define ZONE_F_UNORDERED 0x08   /* the in-flight list holds ZRWA writes: not in LBA order */
#define ZONE_F_FENCED    0x10   /* a Reset, Finish or ZRWA allocation holds the zone's fence */
#define ZONE_F_WAITED    0x20   /* a thread waits on scrub_cond for this zone */
#define ZONE_F_UNDURABLE 0x40   /* its Reset is not durable: its blocks must not change */
#define ZONE_F_SELECTED  0x80   /* Select All Open: Closed when the command began */

struct zns_geom {
	uint32_t lba_shift;
	uint64_t zone_size;          /* LBAs, power of two */
	uint64_t zone_cap;           /* LBAs */
	uint32_t nr_zones;
	uint32_t max_open;           /* 0 = no limit */
	uint32_t max_active;         /* 0 = no limit */
	uint32_t zde_size;           /* bytes */
	uint32_t zasl_nlb;           /* largest Zone Append, in LBAs */
	bool cross_zone_read;
	/* Zone Random Write Area; zrwa_lbas 0 = not supported. zone_cap and
	 * zrwa_lbas are multiples of zrwa_fg. */
	uint32_t zrwa_lbas;          /* ZRWAS: the window above the write pointer */
	uint32_t zrwa_fg;            /* ZRWAFG: flushes move the write pointer by multiples */
	uint32_t nr_zrwa;            /* zones that may hold a ZRWA at once; 0 = no limit */
};

struct zns {
	struct zns_geom g;
	uint32_t zone_shift;         /* log2(zone_size) */
	struct zone *zones;
	uint8_t *zde;                /* nr_zones * zde_size bytes */

	pthread_mutex_t state_lock;
	uint32_t nr_open;            /* implicitly + explicitly opened */
	uint32_t nr_active;          /* opened + closed */
	uint32_t nr_zrwa;            /* zones with a ZRWA (ZRWAV) or holding one's resource */
	uint32_t iopen_head, iopen_tail; /* oldest implicitly opened zone first */

	pthread_mutex_t dirty_lock;
	uint32_t dirty_head, dirty_tail; /* zone index + 1; 0 = empty */

	uint32_t nr_gapped;          /* zones with ZONE_F_GAPPED (atomic) */
	uint16_t undurable_st;       /* writes to a ZONE_F_UNDURABLE zone fail with it (atomic) */
	uint64_t *gapped_map;        /* bit i: zone i has ZONE_F_GAPPED (atomic words) */
	pthread_cond_t scrub_cond;   /* a zone waited on changed (wait_zone in zone.c) */

	/* Zones whose state the controller changed on its own (power-up
	 * offline/read-only, zns_fail_zone): the Changed Zone List log. Each
	 * change takes the next generation; changed_gen_of[i] is zone i's
	 * latest (0: never), and each reader (a host's controller) keeps the
	 * generation it read up to, so that every host sees every change
	 * once. Under state_lock. */
	uint64_t *changed_gen_of;
	uint64_t changed_gen;
};

/* What the durable side records for one zone. */
struct zone_snap {
	uint32_t zone;
	uint8_t state;
	uint8_t za;
	uint64_t wp;
	bool zde_dirty;
	bool finished;               /* Full by Finish: wp moved over unwritten blocks */
};

int zns_init(struct zns *z, const struct zns_geom *g);
void zns_destroy(struct zns *z);

static inline uint32_t zns_zone_of(const struct zns *z, uint64_t lba)
{
	return (uint32_t)(lba >> z->zone_shift);
}
static inline uint64_t zns_zslba(const struct zns *z, uint32_t zone)
{
	return (uint64_t)zone << z->zone_shift;
}
static inline uint64_t zns_nlbas(const struct zns *z)
{
	return (uint64_t)z->g.nr_zones << z->zone_shift;
}
static inline uint32_t zns_nr_zones(const struct zns *z)
{
	return z->g.nr_zones;
}
/* Zone i's state (NVME_ZNS_ZS_*), read without a lock: it may change at
 * once unless the caller keeps it from changing. */
static inline uint8_t zns_zone_state(const struct zns *z, uint32_t i)
{
	return __atomic_load_n(&z->zones[i].state, __ATOMIC_RELAXED);
}
/* Zone i's write pointer (under its lock) and attributes (NVME_ZNS_ZA_*). */
static inline uint64_t zns_zone_wp(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];

	pthread_mutex_lock(&zn->lock);
	uint64_t wp = zn->wp;
	pthread_mutex_unlock(&zn->lock);
	return wp;
}
static inline uint8_t zns_zone_attrs(const struct zns *z, uint32_t i)
{
	return __atomic_load_n(&z->zones[i].za, __ATOMIC_RELAXED);
}
/* Where zone i's readable blocks end: its write pointer, or for a zone with
 * a ZRWA the end of the window above it (its blocks hold what was written
 * there, zeros elsewhere). Blocks from here on read as zeros, and so do
 * some below it (zns_read_run). */
uint64_t zns_zone_readable(struct zns *z, uint32_t i);
/*
 * How a zone's blocks read. A Reset keeps the zone's blocks in the data
 * file (ns.c), so wherever the zone's new writes have not landed the file
 * may hold data from before the Reset; the write pointer is a reservation,
 * taken before a write's data lands, so it alone cannot tell. Hence:
 *   - below the written prefix (wp_done): written - read from the file;
 *   - from zns_zone_readable() on: zeros;
 *   - in between: the blocks of a write still in flight read as zeros (its
 *     data may not be there yet, and what lies under it may
 *     be from before the Reset); the rest - writes that ended, maybe ahead
 *     of an older one and so perhaps acknowledged - from the file. ZRWA
 *     writes in flight read from the file: the zone's blocks were erased
 *     when its ZRWA was allocated, so they hold what the window held before
 *     or the new data, never anything older. So does a failed write that
 *     keeps its range (NS_WRITE_KEPT): the caller zeroed the range before
 *     zns_write_fail(), so it reads as it will once the write ends.
 * For lba's zone, from lba up to end (clamped to the zone's end): returns
 * the end of the run of blocks that read alike, *file set when they read
 * from the data file, clear when as zeros. Decided under the zone lock; a
 * caller reads the file after that, so a write ending meanwhile is read or
 * zeros, and a Reset meanwhile is one the read may be ordered before.
 */
uint64_t zns_read_run(struct zns *z, uint64_t lba, uint64_t end, bool *file);

uint16_t zns_read_check(struct zns *z, uint64_t slba, uint32_t nlb);
uint16_t zns_write_begin(struct zns *z, struct ns_write *w, enum ns_write_kind kind,
			 uint64_t slba, uint32_t nlb);
/*
 * w's data failed; the caller is done with its range. When no write was
 * given LBAs after w in its zone, w's range is given back at once: the
 * write pointer returns to w's start, and a zone that w filled or
 * implicitly opened goes back to its state (Full -> opened when the open
 * and active limits still allow, else the controller finishes it, ZFC;
 * implicitly opened with nothing written -> Empty). Otherwise later writes
 * hold LBAs above w and keep them: w's range stays consumed, and counts as
 * written when w ends (the caller zeroes it first; if that fails too it is
 * undefined - what part of the data landed over what the blocks held
 * before, as a drive's failed write leaves its blocks undefined). Sets
 * w->failed.
 */
void zns_write_fail(struct zns *z, struct ns_write *w);
/* ok = false: the data did not land; zns_write_fail() said what becomes of
 * the range (without it, the range counts as kept). */
void zns_write_end(struct zns *z, struct ns_write *w, bool ok);
/* Zone Management Send. ZRWA Flush (NVME_ZNS_ZSA_ZRWA_FLUSH) takes the last
 * LBA to flush as slba; every other action a zone start. */
uint16_t zns_mgmt_send(struct zns *z, uint64_t slba, uint8_t zsa, bool select_all,
		       const void *zde);
/* Open (or Set Zone Descriptor Extension) with ZRWA Allocation (ZRWAA):
 * an Empty zone becomes active with a ZRWA. Its blocks above the write
 * pointer must read as zeros already (the caller erases them first). */
uint16_t zns_mgmt_send_zrwaa(struct zns *z, uint64_t slba, uint8_t zsa, const void *zde);
uint16_t zns_report(struct zns *z, uint64_t slba, uint8_t zra, uint8_t zrasf, bool partial,
		    void *buf, size_t len);
/* The zones changed after generation *seen, by ZSLBA (up to max; 0xffff
 * when more changed), and *seen moves to the latest generation. */
uint16_t zns_changed_zones(struct zns *z, uint64_t *seen, uint64_t *zids, uint16_t max);
/*
 * The controller takes zone i Read Only or Offline (to: NVME_ZNS_ZS_READ_ONLY
 * or NVME_ZNS_ZS_OFFLINE) on its own, as a drive does when a zone fails
 * (ZNS 2.1.1.6, 2.1.1.7), and lists it in the Changed Zone List. Returns 1
 * when the zone changed, 0 when it was in that state already, -1 when it
 * cannot (no such zone or state; an Offline zone stays Offline).
 */
int zns_fail_zone(struct zns *z, uint32_t i, uint8_t to);
/* Did zones change after generation seen (without taking them)? */
bool zns_has_changed_zones(struct zns *z, uint64_t seen);

/* ---- durable side ---- */

/*
 * Park zw on zone i until its written prefix reaches the furthest write that
 * has ended (zw->target is set here). Returns false, without parking, when
 * there is no such gap.
 */
bool zns_wait_gap(struct zns *z, uint32_t i, struct zone_waiter *zw);
static inline uint32_t zns_gapped(struct zns *z)
{
	return __atomic_load_n(&z->nr_gapped, __ATOMIC_ACQUIRE);
}
/* The first zone from `from` on that has a write that ended ahead of an
 * older one (ZONE_F_GAPPED; see zns_wait_gap), or the number of zones: a
 * walk over a bitmap, so that a sync finds the gapped zones of a namespace
 * of 262,144 zones in microseconds. */
uint32_t zns_next_gapped(const struct zns *z, uint32_t from);

/* Detach the list of zones changed since the last call; iterate with
 * zns_snapshot() until it returns false. */
uint32_t zns_take_dirty(struct zns *z);
/* Durable view of the next zone of the list started at *cursor. When the
 * extension changed (out->zde_dirty) it is copied into zde (zde_size bytes). */
bool zns_snapshot(struct zns *z, uint32_t *cursor, struct zone_snap *out, uint8_t *zde);
/*
 * Run fn (which may block) on every range of zone i that would read as data
 * without having been written, were the zone to read to its end: the blocks
 * from zns_zone_readable() on (above the write pointer, and above the ZRWA
 * window if it has one), and those of the writes in flight whose data has
 * not moved. A Finish (between zns_fence() and the Finish, which drops those
 * writes) and a ZRWA allocation (of an Empty zone: the blocks above the
 * write pointer only) erase them. Writes whose data landed keep their
 * blocks (they may have been acknowledged), whether they ended or not. The
 * zone lock is not held while fn runs - event loops never wait for file
 * I/O - so a write given a range in the zone meanwhile must call
 * zns_write_start() before its data moves: it then lands after fn.
 */
int zns_erase_unwritten(struct zns *z, uint32_t i,
			int (*fn)(void *ctx, uint64_t lba, uint64_t nlb), void *ctx);
/* Run fn (which may block) on the range of w, whose data failed, unless a
 * Reset or Finish took the range from w meanwhile (then 0): writes given
 * ranges in the zone meanwhile wait in zns_write_start(), as for
 * zns_erase_unwritten(). */
int zns_on_failed(struct zns *z, const struct ns_write *w,
		  int (*fn)(void *ctx, uint64_t lba, uint64_t nlb), void *ctx);

/*
 * A write's data moves between zns_write_start() and zns_write_landed()
 * (both on the I/O thread, around the pwrite). A Reset or Finish is ordered
 * against the writes in flight in its zone by a fence:
 *   - zns_fence() waits until nobody else (a Reset, a Finish, a ZRWA
 *     allocation: common/ns.c) holds zone i's fence
 *     and no write's data is moving in it, and keeps every write of the zone
 *     from starting until zns_unfence();
 *   - the Reset or Finish then drops the writes in flight, none of which has
 *     started: their data never moves (zns_write_start() returns the status
 *     they fail with), so none lands after the Reset under a newer write, or
 *     in a Finished zone over blocks the Finish erased;
 *   - writes that were moving end first: the Reset or Finish comes after.
 * The waits are for pwrites under way only, never for a job still queued
 * (worker.h), so I/O threads waiting here cannot hold up what they wait for.
 */
void zns_fence(struct zns *z, uint32_t i);
void zns_unfence(struct zns *z, uint32_t i);

/*
 * Zone i was reset, but the commit that was to journal the Reset failed,
 * and the caller still holds the zone's fence (common/ns.c, commit_resets).
 * A Reset keeps the zone's blocks, so a crash now brings the zone back as
 * it was, write pointer and data: until zns_clear_undurable(), nothing may
 * write those blocks. zns_set_undurable() drops the writes admitted since
 * the Reset (all waiting at the fence: none has moved data) with st and
 * puts the write pointer back at the zone's start; new writes are refused
 * with st at admission; a Finish or ZRWA allocation asks zns_undurable()
 * (st, or 0 when the zone's blocks may change) and refuses.
 */
void zns_set_undurable(struct zns *z, uint32_t i, uint16_t st);
uint16_t zns_undurable(struct zns *z, uint32_t i);
/* Whether zone i has writes not yet ended (given LBAs, maybe landed). */
bool zns_zone_in_flight(struct zns *z, uint32_t i);
/* Every zone's state is durable again (a commit journaled them all). */
void zns_clear_undurable(struct zns *z);
/*
 * A Reset or Finish of zone i under its fence (the caller orders and erases,
 * common/ns.c). all: zone i's part of a Select All - nothing when Select All
 * does not apply to its state, and a Finish only when erased (a zone that
 * was Empty when the caller looked, and that a write opened since, is left:
 * that write came after the Finish). Otherwise the action on the zone.
 */
uint16_t zns_mgmt_fenced(struct zns *z, uint32_t i, uint8_t zsa, bool all, bool erased);
/* Whether Select All applies zsa to a zone in state s (ZNS 3.4.3.1). */
bool zns_select_all_applies(uint8_t zsa, uint8_t s);
/* (blocks) Before w's data moves: wait until no zeroing
 * (zns_erase_unwritten(), zns_on_failed()) and no fence holds w's zone. 0: go
 * (w is moving until zns_write_landed()); otherwise a Reset, Finish or
 * Offline dropped w, its data must not move, and this is its status. */
uint16_t zns_write_start(struct zns *z, struct ns_write *w);
/* w's data stopped moving (landed or failed; after zns_write_fail()). */
void zns_write_landed(struct zns *z, struct ns_write *w);
/* Put a zone's recovered state back (before any I/O). */
void zns_load(struct zns *z, uint32_t zone, uint8_t state, uint8_t za, uint64_t wp);
/* List every zone (and its extension) for the next commit again: the
 * records of a failed one never became durable. */
void zns_mark_all_dirty(struct zns *z);
/* Power-up rule (doc/architecture.md): open zones become closed, and open or closed
 * zones with nothing written (and no extension) become empty; zones over the
 * active limit become full; then the configured
 * offline / read-only zones. Marks every changed zone dirty. Returns the
 * number of zones changed. */
uint32_t zns_power_up(struct zns *z, const uint32_t *offline, uint32_t nr_offline,
		      const uint32_t *readonly, uint32_t nr_readonly);
/* Check the engine's invariants (counters, lists, write pointers); returns
 * NULL or a description of the first violation. For tests and recovery. */
const char *zns_check(struct zns *z);

#endif
