/*
 * Crash test of the zone engine's durability.
 *
 * A child process opens a zoned namespace and drives it from several threads:
 * Writes at the write pointer, Zone Appends (several threads into the same
 * zones at once, some of them made slow on purpose so that completions come
 * out of order), Write Zeroes, Open, Close, Finish, Reset and Set Zone
 * Descriptor Extension. Only once an operation is durable - ns_sync()'s
 * callback returned 0 - does the child report it to the parent over a pipe.
 * The parent SIGKILLs the child at a random moment (inside recovery, a group
 * commit, a checkpoint, ...), opens the namespace itself and checks, from
 * what ns.h lets anyone observe (zone reports and reads):
 *
 *   - every reported operation is there: the write pointer is at least where
 *     a reported write left it, a reported Finish left the zone Full, a
 *     reported Set ZDE left its extension, unless a later Reset explains;
 *   - no write pointer lies past durable data: every block below a write
 *     pointer holds exactly what the write that covered it put there (the
 *     zone/LBA/generation pattern, or zeros from a Write Zeroes);
 *   - blocks above the write pointer read as zeros;
 *   - the power-up rule (doc/architecture.md): no open zone, Empty exactly when the
 *     write pointer is at the zone start and no extension is valid, the
 *     limits hold, and every filtered report agrees with the full one.
 *
 * The model. Every block written carries (zone, LBA, generation); a zone's
 * generation changes at every Reset. Messages name the generation they
 * belong to. Reset, Finish and Set ZDE are announced *before* they are issued
 * (an "intent"), so that when the child dies with one in flight the parent
 * knows that both outcomes are legal. Each zone thus has a short list of
 * candidate generations - the last durable one, then those of Resets still
 * in flight - and after the crash it must match one of them. A reported
 * operation of generation g proves every Reset up to g durable (ns_sync
 * covers every transition that completed before it was called), which
 * collapses the list.
 *
 * What SIGKILL can and cannot show. The page cache survives the kill, so a
 * missing fdatasync goes unseen here; what the test does see is the engine's
 * ordering logic - a write pointer recorded past data that never landed, a
 * transition recorded before the data it covers, a callback that fires too
 * early, a torn or half-applied journal or checkpoint.
 *
 * Variants: write cache off (every operation followed by ns_sync), write
 * cache on (writes reported only after a later ns_sync: Flush semantics),
 * and open/active limits. ZNSTGT_CRASH_CYCLES sets the number of kill cycles
 * of each (default 200; `make check-long`: 5000). ZNSTGT_CRASH_SEED repeats
 * a campaign's random choices (the thread timing differs, of course).
 * ZNSTGT_TEST_FILTER runs only the tests whose names match it (cmocka's
 * test filter: `ZNSTGT_TEST_FILTER=test_crash_zrwa`).
 *
 * In those, a zone change owns its zone (a lock of the child's) while writes
 * share it, so that a Reset or Finish never meets a write in flight. The
 * overlap variants (write cache off; on with the limits) hold the lock only
 * while a write begins - its generation is then the zone's, and a change
 * still falls between two generations' writes - and let Resets and Finishes
 * run while writes of their zone are in flight, as hosts do: the engine's
 * fences order them (zns_fence, include/zone.h). A write so overlapped lands
 * first (reported as any other) or is dropped before its data moves: it
 * fails (Zone Invalid Write after a Reset, Zone Is Full after a Finish) and
 * is not reported - accepted only when a change of that kind (a Reset for
 * Zone Invalid Write, a Finish for Zone Is Full) of its zone was issued
 * since it began. A Finish erases the blocks of the writes it drops,
 * which may lie below a write reported since: before it is issued, the child
 * announces the writes then in flight in its zone (their blocks may read as
 * zeros if the zone ends Full by the Finish - an open zone's records never
 * reach past a write that did not land), under a lock that a write leaves
 * only once it ended - so before a report of it, which makes its data
 * required again.
 * The writes that fill a zone are often slow (up to 30 ms) and a zone found
 * Full is sometimes Finished, so that a Finish meets a zone Full in memory
 * with its last writes not landed - and kills land in between.
 *
 * The ZRWA variant: every zone is written through a Zone Random Write Area
 * (doc/zrwa.md): given one by Open or Set ZDE with ZRWA Allocation (when
 * Empty; announced, as Finish is), written anywhere in its window and the
 * Implicit ZRWA Flush Range above it, blocks of the window again and again,
 * flushed explicitly, Closed, Finished and Reset - writes of several threads
 * in flight in one window at once, never on the same blocks, meeting
 * flushes, Resets and Finishes. Every block written carries a version (one
 * per write) instead of the generation. Each write and flush is announced
 * with the write pointer it leaves (the child checks the engine leaves it
 * there), and reported once durable. The model: the write pointer lies
 * between the last durable flush and the highest announced one, on a
 * granule (ZRWAFG); the ZRWA is there if its allocation was durable (or
 * in flight) until the zone is Full; each block below the window's end holds
 * the version of the last write announced there or, while that one is not
 * durable, the one before; above it, zeros - which a block may hold there
 * after a crash only if nothing durable was written to it (power-up erases
 * from the recovered window's end on).
 *
 * Fault variants: once recovered, the child runs with the fault-injecting
 * I/O layer armed (fault_io.h, seeded by the campaign): EIO, ENOSPC, short,
 * torn and crash-point faults at every data and metadata write and sync. A
 * write or sync that fails is simply not reported (nothing failed may turn
 * up as acknowledged, and everything reported must survive: the same
 * checker). Two things the child says more: a failed write whose range
 * stays consumed (ns.h, NS_WRITE_KEPT) is announced before it ends: like a
 * Write Zeroes when its blocks read as zeros, else as undefined (zeroing
 * failed too: they hold what part of the data landed over what they held
 * before, which no acknowledged write covers); and a Reset that
 * fails with an I/O error keeps its intent and is retried, since it may
 * have become durable before its sync or its freeing of blocks failed.
 * A crash-point fault kills the child itself. ZNSTGT_FAULT_CYCLES sets
 * their number of cycles (default 30; `make check-long`: 3000).
 *
 * Record durable, data not. A group commit syncs the data file and the
 * journal at the same time, so a crash can leave a batch's records durable
 * and its data not (zmeta.h). SIGKILL keeps the page cache, so that case is
 * made by hand: a child makes a batch acknowledged (A), then writes a batch
 * B whose data sync fails (EIO: the journal holds B, the data may be lost)
 * or dies at it (a crash-point fault: the journal may hold B), and dies. The
 * parent then loses some of B's data as a power cut could - a block of
 * zeros, of garbage, or nothing lost - and checks every zone: its write
 * pointer is A's when any of its B data is gone (B's when all of it is
 * there, or A's when the journal may not have B), every block below it
 * holds what was written there, every block above reads zeros.
 * ZNSTGT_TORN_ROUNDS sets the number of rounds (default 24).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "crc32c.h"
#include "fault_io.h"
#include "log.h"
#include "ns.h"
#include "nvme_wire.h"
#include "splitmix64.h"
#include "zmeta.h" /* on-disk header layout: read only to count checkpoints */

#include "../lib/now_ms.h"

#define BLK 4096u            /* LBA size of every variant */
#define MAX_NLB 4            /* blocks per write */
#define NTHREADS 8           /* child threads */
#define HOT_ZONES 2          /* zones most appends go to, so they collide */
#define MAX_BATCH 8          /* writes per Flush (write cache on) */
#define MAX_CAND (NTHREADS + 2)
#define PAT_MAGIC 0x5441504853415243ull /* "CRASHPAT" in little-endian bytes */

struct variant {
	const char *name;
	uint32_t nr_zones, zone_lbas, cap_lbas;
	uint32_t max_open, max_active;
	uint32_t zde_size;
	bool write_cache;
	uint32_t fault_one_in;   /* fault variants: one I/O call in this many fails */
	/* Writes hold their zone only while they begin: Resets and Finishes
	 * of the zone meet them in flight (dropped, or landed first). */
	bool overlap;
	/* Zone Random Write Area: every zone is written through one. */
	uint32_t zrwa_lbas, zrwa_fg, nr_zrwa;
};

/* ---- the data pattern ---- */

/* A hash of x: one splitmix64 step from it. */
static uint64_t mix(uint64_t x)
{
	return splitmix64_next(&x);
}

/* The campaigns' generator: the state steps as splitmix64's does, each
 * value is mix() of the new state (so that printed seeds still repeat the
 * runs they came from). */
static uint64_t rng_next(uint64_t *s)
{
	splitmix64_next(s);
	return mix(*s);
}

/* The content of block `lba` (absolute) of `zone` written in generation
 * `gen`: a readable header, then bytes that depend on all three. */
static void pattern_fill(uint8_t *b, uint32_t zone, uint64_t lba, uint32_t gen)
{
	uint64_t w[BLK / 8];
	uint64_t s = mix(((uint64_t)zone << 32 | gen) ^ mix(lba));
	w[0] = PAT_MAGIC;
	w[1] = lba;
	w[2] = (uint64_t)zone << 32 | gen;
	for (size_t i = 3; i < BLK / 8; i++)
		w[i] = s = mix(s + i);
	memcpy(b, w, BLK);
}

static bool block_is_zero(const uint8_t *b)
{
	static const uint8_t zero[BLK];
	return !memcmp(b, zero, BLK);
}

static bool block_is(const uint8_t *b, uint32_t zone, uint64_t lba, uint32_t gen)
{
	uint8_t want[BLK];
	pattern_fill(want, zone, lba, gen);
	return !memcmp(b, want, BLK);
}

/* For error messages: what a block actually holds. */
static void describe_block(const uint8_t *b, char *out, size_t len)
{
	uint64_t h[3];
	memcpy(h, b, sizeof(h));
	if (block_is_zero(b))
		snprintf(out, len, "zeros");
	else if (h[0] == PAT_MAGIC)
		snprintf(out, len, "data of zone %u LBA %#" PRIx64 " generation %u%s",
			 (uint32_t)(h[2] >> 32), h[1], (uint32_t)h[2],
			 block_is(b, (uint32_t)(h[2] >> 32), h[1], (uint32_t)h[2]) ? "" : " (damaged)");
	else
		snprintf(out, len, "unrecognised bytes");
}

/* A zone's descriptor extension set in generation gen. */
static void zde_fill(uint8_t *b, uint32_t size, uint32_t zone, uint32_t gen)
{
	uint64_t s = mix((uint64_t)zone << 32 | gen) ^ 0x5a5a;
	for (uint32_t i = 0; i < size; i++)
		b[i] = (uint8_t)(s = mix(s + i));
}

/* ---- what the child tells the parent ---- */

enum msg_type {
	M_READY = 1, /* ns_open returned */
	M_INTENT,    /* about to issue a Reset / Finish / Set ZDE */
	M_CANCEL,    /* ... which failed, so it never happened */
	M_ZEROES,    /* about to write zeros over [slba, slba + nlb) */
	M_DONE,      /* this operation is durable */
	M_FAILED,    /* fault variants, for the statistics only: an I/O error (op: the
	              * operation, 0 for a sync; nlb: 1 if a write's range was kept) */
	M_UNDEFINED, /* fault variants: [slba, slba + nlb) is a failed write's kept
	              * range that zeroing could not clear: it may hold anything */
	M_DROPPED,   /* overlap variants, for the statistics only: a Reset (op) or
	              * Finish dropped a write before its data moved */
};

enum op { OP_WRITE = 1, OP_APPEND, OP_ZEROES, OP_RESET, OP_FINISH, OP_SET_ZDE, OP_OPEN, OP_CLOSE,
	  OP_ZRWAA, OP_FLUSH };

/*
 * ZRWA variant: a write into a window (OP_WRITE, OP_ZEROES) is announced
 * (M_INTENT) with its version - the tag its blocks carry instead of the
 * generation, as a window's blocks may be written again; a Write Zeroes has
 * one too, so that its report names it alone - and the write
 * pointer its implicit flush moves to (wp, blocks from the zone start); an
 * explicit flush (OP_FLUSH) likewise with its write pointer; both are
 * reported (M_DONE) with the same fields once durable.
 */
struct msg {
	uint8_t type;
	uint8_t op;
	uint16_t rsvd;
	uint32_t zone;
	uint32_t gen;
	uint32_t nlb;
	uint64_t slba; /* absolute LBA */
	uint32_t ver;  /* ZRWA writes: the write's version, which its blocks carry
	                * (a Write Zeroes' read as zeros) */
	uint32_t wp;   /* ZRWA writes and flushes: the write pointer they leave */
};

_Static_assert(sizeof(struct msg) <= PIPE_BUF, "one write(2) per message stays atomic");

/* ---- the child: load, then report what became durable ---- */

/* A write in flight (overlap and ZRWA variants): what a Finish may drop;
 * in a ZRWA, blocks no other write may take until it ended. */
struct flight {
	bool on;
	uint32_t gen, nlb;
	uint64_t slba;
};

/* Resets and Finishes issued in a zone (atomic), counted apart: each drops
 * the writes in flight with its own status. */
struct zchanges {
	uint32_t resets, finishes;
};

struct child {
	struct ns *ns;
	const struct variant *v;
	int fd;
	/* Writes share a zone, state changes own it - in the overlap
	 * variants only while the writes begin, so that a state change
	 * always falls between two generations' writes. */
	pthread_rwlock_t *zlock;
	uint32_t *gen;           /* per zone, under zlock */
	struct zchanges *changes; /* per zone */
	pthread_mutex_t *flock;  /* per zone, over its flights */
	struct flight *flights;  /* per zone, one per thread */
	uint32_t next_gen;       /* atomic; ZRWA writes take their versions from it too */
};

struct worker {
	struct child *c;
	uint32_t id;
	uint64_t rng;
	struct msg done[MAX_BATCH + 2]; /* a batch, then a management op's one or two */
	int ndone;
	int batch;               /* writes before the next Flush (write cache on) */
	uint8_t buf[MAX_NLB * BLK];
};

static void child_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void child_die(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "crash child: %s\n", line);
	_exit(3);
}

static void child_send_msg(struct child *c, const struct msg *m)
{
	ssize_t n;
	do
		n = write(c->fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*m))
		_exit(4); /* the parent is gone */
}

static void child_send(struct child *c, uint8_t type, uint8_t op, uint32_t zone, uint32_t gen,
		       uint64_t slba, uint32_t nlb)
{
	child_send_msg(c, &(struct msg){ .type = type, .op = op, .zone = zone, .gen = gen,
					  .slba = slba, .nlb = nlb });
}

/* ns_sync and wait; then everything done so far is durable: report it. */
static void flush_and_report(struct worker *w)
{
	struct child *c = w->c;
	uint16_t st = ns_sync_wait(c->ns);
	if (st && !c->v->fault_one_in)
		child_die("ns_sync failed with status %#x", st);
	if (st)
		child_send(c, M_FAILED, 0, 0, 0, 0, 0);
	/* A failed sync acknowledges nothing: what it covered goes unreported
	 * (an earlier sync may have made some of it durable: that is legal). */
	for (int i = 0; i < w->ndone && !st; i++) {
		w->done[i].type = M_DONE;
		child_send_msg(c, &w->done[i]);
	}
	w->ndone = 0;
	w->batch = 1 + (int)(rng_next(&w->rng) % MAX_BATCH);
}

static void note_done_msg(struct worker *w, const struct msg *m)
{
	w->done[w->ndone++] = *m;
}

static void note_done(struct worker *w, uint8_t op, uint32_t zone, uint32_t gen, uint64_t slba,
		      uint32_t nlb)
{
	note_done_msg(w, &(struct msg){ .op = op, .zone = zone, .gen = gen, .slba = slba,
					.nlb = nlb });
}

static uint64_t zslba_of(const struct variant *v, uint32_t zone)
{
	return (uint64_t)zone * v->zone_lbas;
}

static uint8_t status_sc(uint16_t st) { return (uint8_t)st; }

/* A status that reports a failed file operation (an injected fault). */
static bool io_error(uint16_t st)
{
	uint8_t sct = (uint8_t)((st >> 8) & 7);
	return sct == NVME_SCT_MEDIA || (sct == NVME_SCT_GENERIC && status_sc(st) == NVME_SC_CAP_EXCEEDED);
}

/* State, write pointer and attributes of one zone, from a one-descriptor
 * report. */
static void zone_query_za(struct child *c, uint32_t zone, uint8_t *state, uint64_t *wp,
			  uint8_t *za)
{
	uint8_t buf[sizeof(struct nvme_zone_report) + sizeof(struct nvme_zns_desc)]
		__attribute__((aligned(8)));
	uint16_t st = ns_zone_report(c->ns, zslba_of(c->v, zone), NVME_ZNS_ZRA_REPORT_ZONES,
				     NVME_ZNS_ZRAS_REPORT_ALL, true, buf, sizeof(buf));
	if (st)
		child_die("zone report failed with status %#x", st);
	const struct nvme_zns_desc *d = ((const struct nvme_zone_report *)buf)->entries;
	*state = d->zs >> 4;
	*wp = le64toh(d->wp);
	*za = d->za;
}

static void zone_query(struct child *c, uint32_t zone, uint8_t *state, uint64_t *wp)
{
	uint8_t za;
	zone_query_za(c, zone, state, wp, &za);
}

/*
 * A failed write's range stays consumed (NS_WRITE_KEPT): say what it holds
 * before the write's end publishes it. The engine zeroed it, unless zeroing
 * failed too (ns.h): then it is undefined. Read back now - nothing writes
 * the range again in this generation - so that a range seen as zeros must
 * still read as zeros after the crash.
 */
static void announce_kept(struct child *c, uint32_t zone, uint32_t gen, uint64_t slba,
			  uint32_t nlb, uint8_t *buf)
{
	struct iovec iov = { buf, (size_t)nlb * BLK };
	bool zeros = !ns_read(c->ns, slba, nlb, &iov, 1);
	for (uint32_t i = 0; i < nlb && zeros; i++)
		zeros = block_is_zero(buf + (size_t)i * BLK);
	child_send(c, zeros ? M_ZEROES : M_UNDEFINED, OP_ZEROES, zone, gen, slba, nlb);
}

/* Overlap variants: this thread's write in flight in zone (or none). */
static void flight_set(struct child *c, uint32_t zone, uint32_t id, const struct flight *f)
{
	pthread_mutex_lock(&c->flock[zone]);
	c->flights[zone * NTHREADS + id] = *f;
	pthread_mutex_unlock(&c->flock[zone]);
}

/*
 * Overlap variants: a Finish of zone in generation gen is about to be
 * issued. The writes in flight there that it drops before their data moves
 * leave their blocks erased (zeros), which may lie below a write reported
 * since (zns_fence, include/zone.h): say so first. Under the zone's flight
 * lock, which a write leaves only after it ended - so before it can be
 * reported, and a write reported needs its data there again.
 */
static void announce_flights(struct child *c, uint32_t zone, uint32_t gen)
{
	pthread_mutex_lock(&c->flock[zone]);
	for (uint32_t t = 0; t < NTHREADS; t++) {
		const struct flight *f = &c->flights[zone * NTHREADS + t];
		if (f->on && f->gen == gen)
			child_send(c, M_ZEROES, OP_FINISH, zone, gen, f->slba, f->nlb);
	}
	pthread_mutex_unlock(&c->flock[zone]);
}

/* The Resets and Finishes issued in zone so far. */
static struct zchanges changes_now(struct child *c, uint32_t zone)
{
	return (struct zchanges){
		.resets = __atomic_load_n(&c->changes[zone].resets, __ATOMIC_ACQUIRE),
		.finishes = __atomic_load_n(&c->changes[zone].finishes, __ATOMIC_ACQUIRE),
	};
}

/*
 * Overlap variants: a write whose data was refused because a Reset (Zone
 * Invalid Write) or a Finish (Zone Is Full) of its zone dropped it - legal
 * only if one of that kind was issued since the write began (then).
 */
static bool dropped(struct child *c, uint32_t zone, struct zchanges then, uint16_t st)
{
	bool reset = status_sc(st) == NVME_SC_ZNS_INVALID_WRITE;
	bool finish = status_sc(st) == NVME_SC_ZNS_FULL;
	struct zchanges now = changes_now(c, zone);
	if (!c->v->overlap || ((st >> 8) & 7) != NVME_SCT_CMD_SPECIFIC ||
	    !(reset ? now.resets != then.resets : finish && now.finishes != then.finishes))
		return false;
	child_send(c, M_DROPPED, reset ? OP_RESET : OP_FINISH, zone, 0, 0, 0);
	return true;
}

/* Write, Write Zeroes or Zone Append of 1..MAX_NLB blocks. Returns the
 * engine's status for the caller to react to a full zone or a limit. */
static uint16_t op_write(struct worker *w, uint32_t zone, enum ns_write_kind kind)
{
	struct child *c = w->c;
	uint64_t zslba = zslba_of(c->v, zone), slba = zslba;
	uint32_t nlb = 1 + (uint32_t)(rng_next(&w->rng) % MAX_NLB);
	pthread_rwlock_rdlock(&c->zlock[zone]);
	uint32_t gen = c->gen[zone];
	if (kind != NS_ZONE_APPEND) {
		uint8_t state;
		zone_query(c, zone, &state, &slba);
		if (state == NVME_ZNS_ZS_FULL) {
			pthread_rwlock_unlock(&c->zlock[zone]);
			return NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_FULL);
		}
	}
	/* On the heap and freed at once after ns_write_end, like a
	 * transport's request: the engine must not touch it afterwards. */
	struct ns_write *nw = malloc(sizeof(*nw));
	if (!nw)
		child_die("out of memory");
	uint16_t st = ns_write_begin(c->ns, nw, kind, slba, nlb);
	if (st) { /* full, a limit, or another thread's append moved the wp */
		pthread_rwlock_unlock(&c->zlock[zone]);
		free(nw);
		return st;
	}
	slba = nw->slba;
	struct zchanges changes = changes_now(c, zone);
	if (c->v->overlap) {
		flight_set(c, zone, w->id, &(struct flight){ true, gen, nlb, slba });
		pthread_rwlock_unlock(&c->zlock[zone]);
	}
	if (slba < zslba || slba + nlb > zslba + c->v->cap_lbas)
		child_die("zone %u: write placed at %#" PRIx64 "+%u, outside the zone", zone, slba, nlb);
	struct iovec iov = { w->buf, (size_t)nlb * BLK };
	if (kind == NS_WRITE_ZEROES)
		child_send(c, M_ZEROES, OP_ZEROES, zone, gen, slba, nlb);
	else
		for (uint32_t i = 0; i < nlb; i++)
			pattern_fill(w->buf + (size_t)i * BLK, zone, slba + i, gen);
	/* A slow I/O thread now and then: later writes to the zone complete
	 * first, which is what the engine's in-flight list is for. Often for
	 * the write that fills a zone: the zone is then Full in memory with
	 * data still in flight, which the journal must not record as Full.
	 * Overlap variants: long enough for a Finish of that zone to be
	 * made durable, and a kill to land, before the write lands. */
	bool fills = slba + nlb == zslba + c->v->cap_lbas;
	uint32_t slow_us = fills && c->v->overlap ? 30000 : 1500;
	if (rng_next(&w->rng) % (fills ? 2 : 16) == 0)
		usleep((useconds_t)(100 + rng_next(&w->rng) % slow_us));
	st = ns_write_data(c->ns, nw, &iov, 1);
	bool kept = st && nw->failed == NS_WRITE_KEPT;
	if (kept)
		announce_kept(c, zone, gen, slba, nlb, w->buf);
	ns_write_end(c->ns, nw, st);
	free(nw);
	if (c->v->overlap)
		flight_set(c, zone, w->id, &(struct flight){ false, 0, 0, 0 });
	else
		pthread_rwlock_unlock(&c->zlock[zone]);
	if (st && c->v->fault_one_in && io_error(st)) {
		child_send(c, M_FAILED, OP_WRITE, 0, 0, 0, kept);
		return st; /* not acknowledged, so not reported */
	}
	if (st && dropped(c, zone, changes, st))
		return st; /* failed as if it came after the Reset or Finish */
	if (st)
		child_die("zone %u: write data failed with status %#x", zone, st);
	note_done(w, kind == NS_ZONE_APPEND ? OP_APPEND : kind == NS_WRITE ? OP_WRITE : OP_ZEROES,
		  zone, gen, slba, nlb);
	return 0;
}

/* A zone state change. Reset, Finish and Set ZDE are announced first. */
static uint16_t op_mgmt(struct worker *w, uint32_t zone, enum op op)
{
	struct child *c = w->c;
	static const uint8_t zsa_of[] = {
		[OP_RESET] = NVME_ZNS_ZSA_RESET, [OP_FINISH] = NVME_ZNS_ZSA_FINISH,
		[OP_SET_ZDE] = NVME_ZNS_ZSA_SET_DESC_EXT, [OP_OPEN] = NVME_ZNS_ZSA_OPEN,
		[OP_CLOSE] = NVME_ZNS_ZSA_CLOSE,
	};
	uint8_t zde[16384];
	bool announce = op == OP_RESET || op == OP_FINISH || op == OP_SET_ZDE;
	pthread_rwlock_wrlock(&c->zlock[zone]);
	uint32_t gen = c->gen[zone];
	if (op == OP_RESET)
		gen = __atomic_fetch_add(&c->next_gen, 1, __ATOMIC_RELAXED);
	if (op == OP_SET_ZDE)
		zde_fill(zde, c->v->zde_size, zone, gen);
	if (announce)
		child_send(c, M_INTENT, (uint8_t)op, zone, gen, 0, 0);
	if (op == OP_RESET)
		__atomic_add_fetch(&c->changes[zone].resets, 1, __ATOMIC_RELEASE);
	else if (op == OP_FINISH)
		__atomic_add_fetch(&c->changes[zone].finishes, 1, __ATOMIC_RELEASE);
	/* (In a ZRWA the blocks a Finish's dropped writes would have written
	 * keep their version before - the model's already.) */
	if (op == OP_FINISH && c->v->overlap && !c->v->zrwa_lbas)
		announce_flights(c, zone, gen);
	uint16_t st = ns_zone_mgmt_send(c->ns, zslba_of(c->v, zone), zsa_of[op], false,
					op == OP_SET_ZDE ? zde : NULL);
	/* Under faults a Reset can fail after it became durable (its own sync
	 * failed after another one covered it, or freeing its blocks failed):
	 * its intent stands, and it is retried until it succeeds. */
	for (int tries = 0; st && op == OP_RESET && c->v->fault_one_in && io_error(st); tries++) {
		if (tries == 1000)
			child_die("zone %u: Reset failed 1000 times, last with %#x", zone, st);
		child_send(c, M_FAILED, OP_RESET, 0, 0, 0, 0);
		st = ns_zone_mgmt_send(c->ns, zslba_of(c->v, zone), zsa_of[op], false, NULL);
	}
	if (st && announce && !io_error(st))
		child_send(c, M_CANCEL, (uint8_t)op, zone, gen, 0, 0);
	if (!st && op == OP_RESET)
		c->gen[zone] = gen;
	pthread_rwlock_unlock(&c->zlock[zone]);
	if (!st)
		note_done(w, (uint8_t)op, zone, gen, zslba_of(c->v, zone), 0);
	return st;
}

/* A limit was hit: finish, reset or close a random active zone. */
static void free_a_zone(struct worker *w, bool need_open_slot)
{
	struct child *c = w->c;
	size_t len = sizeof(struct nvme_zone_report) + c->v->nr_zones * sizeof(struct nvme_zns_desc);
	struct nvme_zone_report *r = malloc(len);
	if (!r)
		child_die("out of memory");
	uint16_t st = ns_zone_report(c->ns, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
				     false, r, len);
	if (st)
		child_die("zone report failed with status %#x", st);
	uint32_t pick[256], n = 0;
	for (uint32_t i = 0; i < c->v->nr_zones && n < 256; i++) {
		uint8_t s = r->entries[i].zs >> 4;
		if (s == NVME_ZNS_ZS_EXPL_OPEN || (!need_open_slot && (s == NVME_ZNS_ZS_IMPL_OPEN ||
								      s == NVME_ZNS_ZS_CLOSED)))
			pick[n++] = i;
	}
	free(r);
	if (!n)
		return;
	uint32_t zone = pick[rng_next(&w->rng) % n];
	static const enum op ops[] = { OP_FINISH, OP_RESET, OP_CLOSE };
	enum op op = need_open_slot ? OP_CLOSE : ops[rng_next(&w->rng) % 3];
	if (!op_mgmt(w, zone, op))
		flush_and_report(w);
}

/* ---- the child: ZRWA variant ---- */

/*
 * Give an Empty zone a ZRWA: Open, or Set Zone Descriptor Extension, with
 * ZRWA Allocation (announced, as both may or may not have happened when the
 * child dies). Caller holds the zone's lock for writing. Returns 0 when the
 * zone was not Empty.
 */
static uint16_t zrwa_allocate_locked(struct worker *w, uint32_t zone)
{
	struct child *c = w->c;
	uint8_t state, za, zde[16384];
	uint64_t wp;
	zone_query_za(c, zone, &state, &wp, &za);
	if (state != NVME_ZNS_ZS_EMPTY)
		return 0;
	uint32_t gen = c->gen[zone];
	bool set_zde = c->v->zde_size && rng_next(&w->rng) % 2;
	child_send(c, M_INTENT, OP_ZRWAA, zone, gen, 0, 0);
	if (set_zde) {
		zde_fill(zde, c->v->zde_size, zone, gen);
		child_send(c, M_INTENT, OP_SET_ZDE, zone, gen, 0, 0);
	}
	uint16_t st = ns_zone_mgmt_send_zrwaa(c->ns, zslba_of(c->v, zone),
					      set_zde ? NVME_ZNS_ZSA_SET_DESC_EXT : NVME_ZNS_ZSA_OPEN,
					      set_zde ? zde : NULL);
	if (st && status_sc(st) != NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE)
		child_die("zone %u: ZRWA allocation failed with status %#x", zone, st);
	if (st) {
		child_send(c, M_CANCEL, OP_ZRWAA, zone, gen, 0, 0);
		if (set_zde)
			child_send(c, M_CANCEL, OP_SET_ZDE, zone, gen, 0, 0);
		return st;
	}
	note_done(w, OP_ZRWAA, zone, gen, 0, 0);
	if (set_zde)
		note_done(w, OP_SET_ZDE, zone, gen, 0, 0);
	return 0;
}

/* The write pointer and state a ZRWA write or flush must leave: the zone
 * is Full (its ZRWA released) exactly when the write pointer reaches the
 * capacity. Caller holds the zone's flight lock: nothing else moves it. */
static void zrwa_expect(struct child *c, uint32_t zone, uint32_t wp, const char *what)
{
	uint8_t state, za;
	uint64_t got;
	zone_query_za(c, zone, &state, &got, &za);
	bool full = wp == c->v->cap_lbas;
	if (got - zslba_of(c->v, zone) != wp || (state == NVME_ZNS_ZS_FULL) != full ||
	    !(za & NVME_ZNS_ZA_ZRWAV) == !full)
		child_die("zone %u: after %s the write pointer is +%" PRIu64 " (state %#x, za %#x), "
			  "want +%u", zone, what, got - zslba_of(c->v, zone), state, za, wp);
}

/* Does [off, off + nlb) (from the zone start) meet a write in flight? Caller
 * holds the zone's flight lock. */
static bool meets_flight(struct child *c, uint32_t zone, uint32_t off, uint32_t nlb)
{
	uint64_t slba = zslba_of(c->v, zone) + off;
	for (uint32_t t = 0; t < NTHREADS; t++) {
		const struct flight *f = &c->flights[zone * NTHREADS + t];
		if (f->on && f->slba < slba + nlb && slba < f->slba + f->nlb)
			return true;
	}
	return false;
}

/* Give zone a ZRWA if it is Empty, holding it for writing. */
static uint16_t zrwa_allocate(struct worker *w, uint32_t zone)
{
	pthread_rwlock_wrlock(&w->c->zlock[zone]);
	uint16_t st = zrwa_allocate_locked(w, zone);
	pthread_rwlock_unlock(&w->c->zlock[zone]);
	return st;
}

/*
 * A Write or Write Zeroes of 1..MAX_NLB blocks somewhere in the zone's
 * window or its Implicit ZRWA Flush Range (doc/zrwa.md), which may write
 * blocks of the window again; an Empty zone is given a ZRWA instead.
 * Writes of several threads are in flight in a window at once, and meet
 * flushes, Resets and Finishes there, but never one another's blocks: each
 * block's versions follow one another, so that after a crash it holds the
 * last one whose write ended, or the one whose write was in flight. The
 * write begins under the zone's flight lock, as flushes are made, so that
 * the write pointer it leaves is known.
 */
static uint16_t op_zrwa_write(struct worker *w, uint32_t zone, bool zeroes)
{
	struct child *c = w->c;
	const struct variant *v = c->v;
	uint64_t zslba = zslba_of(v, zone), abs_wp;
	uint8_t state, za;
	pthread_rwlock_rdlock(&c->zlock[zone]);
	pthread_mutex_lock(&c->flock[zone]);
	zone_query_za(c, zone, &state, &abs_wp, &za);
	uint32_t wp = (uint32_t)(abs_wp - zslba);
	uint32_t room = v->cap_lbas - wp < 2 * v->zrwa_lbas ? v->cap_lbas - wp : 2 * v->zrwa_lbas;
	uint32_t off = wp + (uint32_t)(rng_next(&w->rng) % (room ? room : 1));
	uint32_t nlb = 1 + (uint32_t)(rng_next(&w->rng) % MAX_NLB);
	if (state == NVME_ZNS_ZS_EMPTY || state == NVME_ZNS_ZS_FULL ||
	    meets_flight(c, zone, off, nlb)) {
		pthread_mutex_unlock(&c->flock[zone]);
		pthread_rwlock_unlock(&c->zlock[zone]);
		return state == NVME_ZNS_ZS_EMPTY ? zrwa_allocate(w, zone)
		       : state == NVME_ZNS_ZS_FULL ? NVME_STATUS(NVME_SCT_CMD_SPECIFIC,
								 NVME_SC_ZNS_FULL)
						  : 0;
	}
	if (!(za & NVME_ZNS_ZA_ZRWAV))
		child_die("zone %u: state %#x without a ZRWA", zone, state);
	if (nlb > wp + room - off)
		nlb = wp + room - off;
	/* An implicit flush: the fewest granules that bring the end back
	 * into the window, at most to the capacity. */
	uint32_t end = off + nlb, new_wp = wp;
	if (end > wp + v->zrwa_lbas)
		new_wp += (end - wp - v->zrwa_lbas + v->zrwa_fg - 1) / v->zrwa_fg * v->zrwa_fg;
	if (new_wp > v->cap_lbas)
		new_wp = v->cap_lbas;
	uint32_t gen = c->gen[zone];
	struct zchanges changes = changes_now(c, zone);
	uint32_t ver = __atomic_fetch_add(&c->next_gen, 1, __ATOMIC_RELAXED);
	struct msg m = { .type = M_INTENT, .op = zeroes ? OP_ZEROES : OP_WRITE, .zone = zone,
			 .gen = gen, .slba = zslba + off, .nlb = nlb, .ver = ver, .wp = new_wp };
	child_send_msg(c, &m);
	struct ns_write *nw = malloc(sizeof(*nw));
	if (!nw)
		child_die("out of memory");
	uint16_t st = ns_write_begin(c->ns, nw, zeroes ? NS_WRITE_ZEROES : NS_WRITE, m.slba, nlb);
	if (st)
		child_die("zone %u: ZRWA write at +%u+%u (wp +%u) refused with status %#x", zone,
			  off, nlb, wp, st);
	zrwa_expect(c, zone, new_wp, "a write");
	c->flights[zone * NTHREADS + w->id] = (struct flight){ true, gen, nlb, m.slba };
	pthread_mutex_unlock(&c->flock[zone]);
	pthread_rwlock_unlock(&c->zlock[zone]);

	for (uint32_t i = 0; i < nlb && !zeroes; i++)
		pattern_fill(w->buf + (size_t)i * BLK, zone, m.slba + i, ver);
	if (rng_next(&w->rng) % 8 == 0)
		usleep((useconds_t)(100 + rng_next(&w->rng) % 1500));
	struct iovec iov = { w->buf, (size_t)nlb * BLK };
	st = ns_write_data(c->ns, nw, &iov, 1);
	ns_write_end(c->ns, nw, st);
	free(nw);
	flight_set(c, zone, w->id, &(struct flight){ false, 0, 0, 0 });
	if (st && dropped(c, zone, changes, st))
		return st;
	if (st)
		child_die("zone %u: ZRWA write data failed with status %#x", zone, st);
	note_done_msg(w, &m);
	return 0;
}

/* Flush Explicit ZRWA Range: the write pointer moves up by 1..ZRWAS/ZRWAFG
 * granules, at most to the capacity, over writes in flight or not.
 * Announced first. */
static uint16_t op_zrwa_flush(struct worker *w, uint32_t zone)
{
	struct child *c = w->c;
	const struct variant *v = c->v;
	uint64_t zslba = zslba_of(v, zone), abs_wp;
	uint8_t state, za;
	pthread_rwlock_rdlock(&c->zlock[zone]);
	pthread_mutex_lock(&c->flock[zone]);
	zone_query_za(c, zone, &state, &abs_wp, &za);
	uint16_t st = 0;
	struct msg m = { .type = M_INTENT, .op = OP_FLUSH, .zone = zone, .gen = c->gen[zone] };
	if (za & NVME_ZNS_ZA_ZRWAV) {
		uint32_t wp = (uint32_t)(abs_wp - zslba);
		uint32_t room = v->cap_lbas - wp < v->zrwa_lbas ? v->cap_lbas - wp : v->zrwa_lbas;
		m.wp = wp + (1 + (uint32_t)(rng_next(&w->rng) % (room / v->zrwa_fg))) * v->zrwa_fg;
		child_send_msg(c, &m);
		st = ns_zone_mgmt_send(c->ns, zslba + m.wp - 1, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL);
		if (st)
			child_die("zone %u: ZRWA flush to +%u (wp +%u) failed with status %#x", zone,
				  m.wp, wp, st);
		zrwa_expect(c, zone, m.wp, "a flush");
	}
	pthread_mutex_unlock(&c->flock[zone]);
	pthread_rwlock_unlock(&c->zlock[zone]);
	if (za & NVME_ZNS_ZA_ZRWAV)
		note_done_msg(w, &m);
	return st;
}

/* ZRWA variant: writes into windows, flushes, allocations, and the zone
 * changes of the others (Open only as an allocation: a zone opened without
 * a ZRWA would take sequential writes, which this variant leaves to the
 * others). */
static void one_zrwa_op(struct worker *w)
{
	struct child *c = w->c;
	const struct variant *v = c->v;
	uint32_t r = (uint32_t)(rng_next(&w->rng) % 100);
	/* Most writes, and half the rest, to the zones where they meet. */
	bool hot = r < 45 || rng_next(&w->rng) % 2;
	uint32_t zone = (uint32_t)(rng_next(&w->rng) % (hot ? HOT_ZONES : v->nr_zones));
	uint16_t st;
	if (r < 55)
		st = op_zrwa_write(w, zone, r % 8 == 7);
	else if (r < 70)
		st = op_zrwa_flush(w, zone);
	else if (r < 76)
		st = zrwa_allocate(w, zone);
	else if (r == 99) {
		st = ns_zone_mgmt_send(c->ns, 0, NVME_ZNS_ZSA_CLOSE, true, NULL);
		if (st)
			child_die("Close with Select All failed with status %#x", st);
	} else {
		static const enum op ops[] = { OP_RESET, OP_RESET, OP_FINISH, OP_CLOSE };
		st = op_mgmt(w, zone, ops[r % 4]);
	}
	/* Write cache off: each operation is made durable before the next. */
	if (w->ndone)
		flush_and_report(w);
	if (status_sc(st) == NVME_SC_ZNS_FULL && rng_next(&w->rng) % 2 && !op_mgmt(w, zone, OP_RESET))
		flush_and_report(w);
	else if (status_sc(st) == NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE)
		free_a_zone(w, false);
}

static void one_op(struct worker *w)
{
	struct child *c = w->c;
	const struct variant *v = c->v;
	uint32_t r = (uint32_t)(rng_next(&w->rng) % 100);
	/* Overlap variants: a quarter of the zone changes go to the zones
	 * most appends go to, where they meet writes in flight - few enough
	 * that these zones still fill up between two Resets. */
	bool hot = r < 45 || (v->overlap && r >= 70 && rng_next(&w->rng) % 4 == 0);
	uint32_t zone = (uint32_t)(rng_next(&w->rng) % (hot ? HOT_ZONES : v->nr_zones));
	uint16_t st;
	bool mgmt = false;
	if (r < 45)
		st = op_write(w, zone, NS_ZONE_APPEND);
	else if (r < 65)
		st = op_write(w, zone, NS_WRITE);
	else if (r < 70)
		st = op_write(w, zone, NS_WRITE_ZEROES);
	else if (r == 99) {
		/* Close every open zone, writes in flight or not: it needs no
		 * zone lock, as it changes nothing a power cut would keep. */
		st = ns_zone_mgmt_send(c->ns, 0, NVME_ZNS_ZSA_CLOSE, true, NULL);
		if (st)
			child_die("Close with Select All failed with status %#x", st);
		mgmt = true;
	} else {
		static const enum op ops[] = { OP_RESET, OP_RESET, OP_FINISH, OP_OPEN, OP_CLOSE,
					       OP_SET_ZDE };
		enum op op = ops[(r - 70) % 6];
		if (op == OP_SET_ZDE && !v->zde_size)
			op = OP_RESET;
		st = op_mgmt(w, zone, op);
		mgmt = !st;
	}
	/* Zone transitions are made durable before they complete, in both
	 * cache modes (as the core does); writes wait for a Flush when the
	 * write cache is on. */
	if (mgmt || (w->ndone && (!v->write_cache || w->ndone >= w->batch)))
		flush_and_report(w);
	switch (status_sc(st)) {
	case NVME_SC_ZNS_FULL:
		/* Overlap variants: a zone Full by writes may still have some
		 * in flight - the writes that filled it, slow on purpose -
		 * and a Finish must then finish it for real. */
		if (v->overlap && rng_next(&w->rng) % 4 == 0 && !op_mgmt(w, zone, OP_FINISH))
			flush_and_report(w);
		/* fall through */
	case NVME_SC_ZNS_BOUNDARY_ERROR:
		if (rng_next(&w->rng) % 2 && !op_mgmt(w, zone, OP_RESET))
			flush_and_report(w);
		break;
	case NVME_SC_ZNS_TOO_MANY_ACTIVE:
		free_a_zone(w, false);
		break;
	case NVME_SC_ZNS_TOO_MANY_OPENS:
		free_a_zone(w, true);
		break;
	}
}

static void *child_thread(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		if (w->c->v->zrwa_lbas)
			one_zrwa_op(w);
		else
			one_op(w);
	}
	return NULL;
}

/* Runs in the forked child; never returns (the parent kills it). */
static void child_main(const struct ns_config *cfg, const struct variant *v, const uint32_t *gens,
		       uint32_t next_gen, int fd, uint64_t seed) __attribute__((noreturn));
static void child_main(const struct ns_config *cfg, const struct variant *v, const uint32_t *gens,
		       uint32_t next_gen, int fd, uint64_t seed)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* CMocka's handlers would turn a crash into a quiet exit(255). */
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], SIG_DFL);
	static struct child c;
	c = (struct child){ .v = v, .fd = fd, .next_gen = next_gen };
	char err[512];
	if (ns_open(cfg, false, &c.ns, err, sizeof(err))) {
		fprintf(stderr, "crash child: recovery failed: %s\n", err);
		_exit(2);
	}
	child_send(&c, M_READY, 0, 0, 0, 0, 0);
	if (v->fault_one_in)
		fault_io_arm(&(struct fault_plan){
			.seed = seed, .points = FAULT_ALL_WRITES | FAULT_ALL_SYNCS,
			.kinds = FAULT_KIND(FAULT_EIO) | FAULT_KIND(FAULT_ENOSPC) |
				 FAULT_KIND(FAULT_SHORT) | FAULT_KIND(FAULT_TORN) |
				 FAULT_KIND(FAULT_CRASH),
			.one_in = v->fault_one_in });
	c.zlock = calloc(v->nr_zones, sizeof(*c.zlock));
	c.gen = calloc(v->nr_zones, sizeof(*c.gen));
	c.changes = calloc(v->nr_zones, sizeof(*c.changes));
	c.flock = calloc(v->nr_zones, sizeof(*c.flock));
	c.flights = calloc((size_t)v->nr_zones * NTHREADS, sizeof(*c.flights));
	static struct worker w[NTHREADS];
	if (!c.zlock || !c.gen || !c.changes || !c.flock || !c.flights)
		child_die("out of memory");
	/* Writer-preferring: a Reset of a hot zone must not starve behind
	 * appends. No thread ever holds two zone locks, so it cannot deadlock. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (uint32_t i = 0; i < v->nr_zones; i++) {
		pthread_rwlock_init(&c.zlock[i], &attr);
		pthread_mutex_init(&c.flock[i], NULL);
		c.gen[i] = gens[i];
	}
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .c = &c, .id = (uint32_t)i, .rng = mix(seed + (uint64_t)i),
					.batch = 1 };
		pthread_t t;
		if (i && pthread_create(&t, NULL, child_thread, &w[i]))
			child_die("pthread_create failed");
	}
	child_thread(&w[0]);
	_exit(0);
}

/* ---- the parent: the model of what must have survived ---- */

/* What a block not (yet) covered by a durable write of its generation may
 * also hold besides that write's data. */
enum { ZERO_OK = 1 /* zeros: a Write Zeroes or a zeroed kept range covers it */,
       UNDEFINED = 2 /* anything: a kept range zeroing could not clear */,
       /* zeros if the zone is Full by a Finish: a write in flight when it
        * was issued, which it may have dropped and erased (an open zone
        * never has its write pointer past a write that never landed) */
       FINISH_ZEROS = 4 };

/* One generation a zone may be in after the crash. */
struct cand {
	uint32_t gen;
	uint32_t wp_min;         /* blocks from the zone start known written and durable */
	bool fin_done, zde_done; /* a Finish / Set ZDE of this generation is durable */
	uint16_t fin_pend, zde_pend; /* ... or was announced and may have happened */
	uint8_t *zero_ok;        /* per block: ZERO_OK, UNDEFINED or 0 (must hold its data) */
	/* ZRWA variant. A zone's write pointer lies between what a durable
	 * flush (explicit, or implicit by a write) left and the highest one
	 * announced; each block holds the version of the last write to it
	 * (cur) or, while that one is not durable, the one before (prev);
	 * model versions (ver_content: what the block reads). */
	bool zrwa_done;          /* the ZRWA allocation is durable */
	uint16_t zrwa_pend;      /* ... or was announced and may have happened */
	uint32_t wp_max;         /* the highest write pointer announced */
	uint32_t *cur, *prev;
	uint8_t *floor;          /* per block: FLOOR_CUR, FLOOR_PREV or 0 */
};

/* ZRWA variant: the model's version of a Write Zeroes is its own, marked
 * (its blocks read as zeros): reported late, it must not be taken for a
 * later Write Zeroes of the same blocks. Version 0: zeros no write of this
 * campaign put there. */
#define ZEROS_VER 0x80000000u

/* What a block of model version ver reads: the version its data carries,
 * 0 for zeros. */
static uint32_t ver_content(uint32_t ver)
{
	return ver & ZEROS_VER ? 0 : ver;
}

/* ZRWA variant: what a block may no longer lose. */
enum { FLOOR_PREV = 1 /* a durable version was there: the block stays in the window */,
       FLOOR_CUR = 2  /* cur is durable: the block holds it */ };

struct zmodel {
	struct cand c[MAX_CAND]; /* c[0]: the durable generation; then Resets in flight */
	uint32_t nc;
	bool zfc;                /* Finished by the controller at an earlier power-up */
};

struct campaign {
	const struct variant *v;
	struct ns_config cfg;
	struct zmodel *zm;
	uint8_t *zero_mem;
	uint32_t *ver_mem;       /* ZRWA variant: every candidate's cur and prev */
	uint8_t *floor_mem;
	uint32_t next_gen;
	uint64_t seed, rng;
	int cycle;
	bool ready;
	double ready_ms;         /* average time from fork to READY */
	uint32_t nready;
	/* statistics */
	uint64_t kills_in_open, done_ops, stale_ops, intents, blocks_checked;
	uint64_t ckpt_commit, ckpt_open, resets_in_flight, zfc;
	uint64_t self_kills;     /* fault variants: crash-point faults */
	uint64_t failed_syncs, failed_writes, kept_writes, undefined_writes, failed_resets;
	uint64_t dropped_by_reset, dropped_by_finish; /* overlap variants */
	uint64_t zrwa_rewrites, zrwa_flushes;         /* ZRWA variant: blocks, explicit ones */
};

static void cand_reset(struct campaign *cp, struct cand *c, uint32_t gen)
{
	*c = (struct cand){ .gen = gen, .zero_ok = c->zero_ok, .cur = c->cur, .prev = c->prev,
			    .floor = c->floor };
	memset(c->zero_ok, 0, cp->v->zone_lbas);
	if (cp->v->zrwa_lbas) {
		memset(c->cur, 0, cp->v->zone_lbas * sizeof(*c->cur));
		memset(c->prev, 0, cp->v->zone_lbas * sizeof(*c->prev));
		memset(c->floor, 0, cp->v->zone_lbas);
	}
}

/* ZRWA variant: a write of version ver over [slba, slba + nlb) was
 * announced; the one before it in each block has ended. */
static void zrwa_announced(struct campaign *cp, struct cand *c, uint32_t from, uint32_t nlb,
			   uint32_t ver)
{
	for (uint32_t i = from; i < from + nlb; i++) {
		cp->zrwa_rewrites += c->cur[i] != 0;
		c->prev[i] = c->cur[i];
		c->cur[i] = ver;
		c->floor[i] = c->floor[i] ? FLOOR_PREV : 0;
	}
}

/* ZRWA variant: the write of version ver is durable: each block holds it
 * or a version written after it. */
static void zrwa_durable(struct cand *c, uint32_t from, uint32_t nlb, uint32_t ver)
{
	for (uint32_t i = from; i < from + nlb; i++)
		c->floor[i] = c->cur[i] == ver ? FLOOR_CUR : FLOOR_PREV > c->floor[i] ? FLOOR_PREV
										: c->floor[i];
}

/* ZRWA variant: the model version of the write m announces or reports. */
static uint32_t model_ver(const struct msg *m)
{
	return m->op == OP_ZEROES ? m->ver | ZEROS_VER : m->ver;
}

static struct cand *cand_find(struct zmodel *zm, uint32_t gen)
{
	for (uint32_t i = 0; i < zm->nc; i++)
		if (zm->c[i].gen == gen)
			return &zm->c[i];
	return NULL;
}

/* Remove candidate k, keeping its zero_ok buffer for reuse. */
static void cand_remove(struct zmodel *zm, uint32_t k)
{
	struct cand t = zm->c[k];
	memmove(&zm->c[k], &zm->c[k + 1], (zm->nc - k - 1) * sizeof(t));
	zm->c[--zm->nc] = t;
}

/* Generation gen is durable: every older candidate is gone for good. */
static struct cand *cand_make_durable(struct zmodel *zm, uint32_t gen)
{
	while (zm->nc && zm->c[0].gen != gen)
		cand_remove(zm, 0);
	return zm->nc ? &zm->c[0] : NULL;
}

static void apply_msg(struct campaign *cp, const struct msg *m)
{
	const struct variant *v = cp->v;
	if (m->type == M_READY) {
		cp->ready = true;
		return;
	}
	if (m->type == M_FAILED) {
		cp->failed_syncs += m->op == 0;
		cp->failed_writes += m->op == OP_WRITE;
		cp->kept_writes += m->op == OP_WRITE && m->nlb;
		cp->failed_resets += m->op == OP_RESET;
		return;
	}
	if (m->type == M_DROPPED) {
		cp->dropped_by_reset += m->op == OP_RESET;
		cp->dropped_by_finish += m->op == OP_FINISH;
		return;
	}
	if (m->zone >= v->nr_zones)
		fail_msg("cycle %d: message for zone %u of %u", cp->cycle, m->zone, v->nr_zones);
	struct zmodel *zm = &cp->zm[m->zone];
	uint64_t zslba = zslba_of(v, m->zone);
	if (m->gen + 1 > cp->next_gen)
		cp->next_gen = m->gen + 1;
	if (m->ver + 1 > cp->next_gen)
		cp->next_gen = m->ver + 1;
	if (m->gen < zm->c[0].gen) { /* a durable Reset came after it */
		cp->stale_ops += m->type == M_DONE;
		return;
	}
	if (m->type == M_INTENT && m->op == OP_RESET) {
		assert_true(zm->nc < MAX_CAND);
		struct cand *c = &zm->c[zm->nc++];
		cand_reset(cp, c, m->gen);
		cp->intents++;
		return;
	}
	struct cand *c = cand_find(zm, m->gen);
	if (!c)
		fail_msg("cycle %d: zone %u: message type %u op %u names generation %u, which no "
			 "Reset announced", cp->cycle, m->zone, m->type, m->op, m->gen);
	bool zrwa_write = v->zrwa_lbas && (m->op == OP_WRITE || m->op == OP_ZEROES);
	if ((zrwa_write || m->op == OP_FLUSH) && (m->wp > v->cap_lbas ||
	    (zrwa_write && (m->slba < zslba || m->slba + m->nlb > zslba + v->cap_lbas))))
		fail_msg("cycle %d: zone %u: ZRWA write or flush announced outside the zone",
			 cp->cycle, m->zone);
	switch (m->type) {
	case M_INTENT:
		cp->intents++;
		if (zrwa_write)
			zrwa_announced(cp, c, (uint32_t)(m->slba - zslba), m->nlb, model_ver(m));
		if (zrwa_write || m->op == OP_FLUSH)
			c->wp_max = m->wp > c->wp_max ? m->wp : c->wp_max;
		else if (m->op == OP_ZRWAA)
			c->zrwa_pend++;
		else if (m->op == OP_FINISH)
			c->fin_pend++;
		else
			c->zde_pend++;
		return;
	case M_CANCEL:
		if (m->op == OP_RESET)
			cand_remove(zm, (uint32_t)(c - zm->c));
		else if (m->op == OP_ZRWAA)
			c->zrwa_pend--;
		else if (m->op == OP_FINISH)
			c->fin_pend--;
		else
			c->zde_pend--;
		return;
	case M_ZEROES:
	case M_UNDEFINED:
		if (m->slba < zslba || m->slba + m->nlb > zslba + v->cap_lbas)
			fail_msg("cycle %d: zone %u: zeros or undefined blocks announced outside the "
				 "zone", cp->cycle, m->zone);
		if (m->op == OP_FINISH)
			for (uint32_t i = 0; i < m->nlb; i++)
				c->zero_ok[m->slba - zslba + i] |= FINISH_ZEROS;
		else
			memset(c->zero_ok + (m->slba - zslba),
			       m->type == M_ZEROES ? ZERO_OK : UNDEFINED, m->nlb);
		cp->undefined_writes += m->type == M_UNDEFINED;
		return;
	case M_DONE:
		break;
	default:
		fail_msg("cycle %d: unknown message type %u", cp->cycle, m->type);
	}
	/* Durable: so is every Reset before it. */
	c = cand_make_durable(zm, m->gen);
	cp->done_ops++;
	if (zrwa_write || m->op == OP_FLUSH) {
		if (zrwa_write)
			zrwa_durable(c, (uint32_t)(m->slba - zslba), m->nlb, model_ver(m));
		cp->zrwa_flushes += m->op == OP_FLUSH;
		c->wp_min = m->wp > c->wp_min ? m->wp : c->wp_min;
		return;
	}
	switch (m->op) {
	case OP_ZRWAA:
		c->zrwa_done = true;
		c->zrwa_pend--;
		break;
	case OP_WRITE:
	case OP_APPEND:
		/* Durable data: zeros or undefined blocks announced for the
		 * range before (under faults, a failed write that gave its
		 * range back, or a kept range not durable before a crash) no
		 * longer excuse anything there. */
		memset(c->zero_ok + (m->slba - zslba), 0, m->nlb);
		/* fall through */
	case OP_ZEROES:
		if (m->slba + m->nlb - zslba > c->wp_min)
			c->wp_min = (uint32_t)(m->slba + m->nlb - zslba);
		break;
	case OP_FINISH:
		c->fin_done = true;
		c->fin_pend--;
		break;
	case OP_SET_ZDE:
		c->zde_done = true;
		c->zde_pend--;
		break;
	}
}

/* ---- the parent: checking what recovery produced ---- */

static const char *state_name(uint8_t s)
{
	switch (s) {
	case NVME_ZNS_ZS_EMPTY: return "Empty";
	case NVME_ZNS_ZS_IMPL_OPEN: return "Implicitly Opened";
	case NVME_ZNS_ZS_EXPL_OPEN: return "Explicitly Opened";
	case NVME_ZNS_ZS_CLOSED: return "Closed";
	case NVME_ZNS_ZS_FULL: return "Full";
	case NVME_ZNS_ZS_READ_ONLY: return "Read Only";
	case NVME_ZNS_ZS_OFFLINE: return "Offline";
	default: return "unknown";
	}
}

struct observed {
	uint32_t zone;
	uint8_t state, za;
	uint32_t wp;             /* blocks from the zone start */
	const uint8_t *zde;      /* NULL without extensions */
	const uint8_t *data;     /* the whole zone */
};

static bool why(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool why(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
	return false;
}

/* Does the zone's extension match candidate c? */
static bool zde_matches(struct campaign *cp, const struct cand *c, const struct observed *o,
			char *out, size_t len)
{
	bool zdev = o->za & NVME_ZNS_ZA_ZDEV;
	if (zdev && !c->zde_done && !c->zde_pend)
		return why(out, len, "extension valid, but none was set in this generation");
	if (!zdev && c->zde_done)
		return why(out, len, "a durable Set ZDE, yet the extension is not valid");
	if (zdev && o->zde) {
		uint8_t want[16384];
		zde_fill(want, cp->v->zde_size, o->zone, c->gen);
		if (memcmp(want, o->zde, cp->v->zde_size))
			return why(out, len, "extension bytes differ from the ones set");
	}
	return true;
}

/* ZRWA variant: the version a block holds (0: zeros), or -1 for anything
 * that is no version's data. */
static int64_t block_version(const uint8_t *b, uint32_t zone, uint64_t lba)
{
	uint64_t h[3];
	memcpy(h, b, sizeof(h));
	if (block_is_zero(b))
		return 0;
	if (h[0] != PAT_MAGIC || h[1] != lba || h[2] >> 32 != zone || !(uint32_t)h[2] ||
	    !block_is(b, zone, lba, (uint32_t)h[2]))
		return -1;
	return (uint32_t)h[2];
}

/* Where a recovered zone's readable blocks end (zns_zone_readable). */
static uint32_t zrwa_readable(const struct variant *v, const struct observed *o)
{
	if (o->state == NVME_ZNS_ZS_FULL)
		return v->cap_lbas;
	if (!(o->za & NVME_ZNS_ZA_ZRWAV))
		return o->wp;
	return v->cap_lbas - o->wp < v->zrwa_lbas ? v->cap_lbas : o->wp + v->zrwa_lbas;
}

/*
 * ZRWA variant: does the zone as recovered match candidate c? Its ZRWA
 * is there when allocated durably (or maybe), until Full; its write pointer
 * lies between the last durable flush and the highest announced; below
 * the end of its window each block holds the last version written there
 * or, while that is not durable, the one before; above it zeros, which a
 * block with no durable version may also hold there (power-up erases from
 * the end of the recovered window on: writes whose implicit flush was not
 * durable).
 */
static bool zrwa_zone_matches(struct campaign *cp, const struct cand *c, const struct observed *o,
			      char *out, size_t len)
{
	const struct variant *v = cp->v;
	bool zrwav = o->za & NVME_ZNS_ZA_ZRWAV;
	bool full = o->state == NVME_ZNS_ZS_FULL;
	if (zrwav && !c->zrwa_done && !c->zrwa_pend)
		return why(out, len, "a ZRWA, but none was allocated in this generation");
	if (!zrwav && !full && c->zrwa_done)
		return why(out, len, "a durable ZRWA allocation, yet the zone is %s without one",
			   state_name(o->state));
	if (!zrwav && o->state == NVME_ZNS_ZS_CLOSED)
		return why(out, len, "Closed without a ZRWA, which this variant never writes");
	if (full && !c->fin_done && !c->fin_pend && c->wp_max < v->cap_lbas)
		return why(out, len, "Full, but no Finish and no flush to the capacity");
	if (!full && c->fin_done)
		return why(out, len, "a durable Finish, yet the zone is %s", state_name(o->state));
	uint32_t wp = full ? v->cap_lbas : o->wp;
	if (!full && (wp < c->wp_min || wp > c->wp_max))
		return why(out, len, "write pointer +%u outside what durable (+%u) and announced "
			   "(+%u) flushes allow", wp, c->wp_min, c->wp_max);
	if (!zde_matches(cp, c, o, out, len))
		return false;
	uint32_t readable = zrwa_readable(v, o);
	uint64_t zslba = zslba_of(v, o->zone);
	for (uint32_t i = 0; i < v->zone_lbas; i++) {
		const uint8_t *b = o->data + (size_t)i * BLK;
		int64_t got = block_version(b, o->zone, zslba + i);
		bool ok = got == ver_content(c->cur[i]) ||
			  (c->floor[i] < FLOOR_CUR && got == ver_content(c->prev[i])) ||
			  (i >= readable && !c->floor[i] && got == 0);
		if (ok && i >= readable && got)
			ok = false; /* the read path must give zeros there */
		if (!ok) {
			char what[160];
			describe_block(b, what, sizeof(what));
			return why(out, len, "LBA %#" PRIx64 " (+%u, %s; write pointer +%u) holds %s, "
				   "want version %u%s", zslba + i, i,
				   i < readable ? "readable" : "above the window", wp, what,
				   ver_content(c->cur[i]),
				   c->floor[i] == FLOOR_CUR ? " (durable)" : " or the one before");
		}
	}
	cp->blocks_checked += v->zone_lbas;
	return true;
}

/*
 * Does the zone as recovered match candidate c? Strict blocks must hold the
 * generation's data (or zeros a Write Zeroes asked for); lenient ones - the
 * part of a Finished zone above what was reported - may also be zeros.
 */
static bool zone_matches(struct campaign *cp, const struct cand *c, const struct observed *o,
			 char *out, size_t len)
{
	const struct variant *v = cp->v;
	if (v->zrwa_lbas)
		return zrwa_zone_matches(cp, c, o, out, len);
	uint64_t zslba = zslba_of(v, o->zone);
	bool full = o->state == NVME_ZNS_ZS_FULL;
	bool finished = c->fin_done || c->fin_pend || (o->za & NVME_ZNS_ZA_ZFC);
	uint32_t strict, lenient;
	uint8_t zeros = ZERO_OK | (full && (c->fin_done || c->fin_pend) ? FINISH_ZEROS : 0);
	if (full && finished) {
		strict = c->wp_min;
		lenient = v->cap_lbas;
	} else if (full) {
		strict = lenient = v->cap_lbas; /* filled by writes */
	} else {
		if (c->fin_done)
			return why(out, len, "a durable Finish, yet the zone is %s",
				   state_name(o->state));
		if (o->wp < c->wp_min)
			return why(out, len, "write pointer +%u, but a durable write ended at +%u",
				   o->wp, c->wp_min);
		strict = lenient = o->wp;
	}
	if (!zde_matches(cp, c, o, out, len))
		return false;
	for (uint32_t i = 0; i < v->zone_lbas; i++) {
		const uint8_t *b = o->data + (size_t)i * BLK;
		uint64_t lba = zslba + i;
		bool ok;
		if (i < lenient && (c->zero_ok[i] & UNDEFINED))
			ok = true;
		else if (i < strict)
			ok = block_is(b, o->zone, lba, c->gen) ||
			     ((c->zero_ok[i] & zeros) && block_is_zero(b));
		else if (i < lenient)
			ok = block_is(b, o->zone, lba, c->gen) || block_is_zero(b);
		else
			ok = block_is_zero(b);
		if (!ok) {
			char what[160];
			describe_block(b, what, sizeof(what));
			return why(out, len, "LBA %#" PRIx64 " (+%u, %s; write pointer +%u) holds %s",
				   lba, i,
				   i < strict ? "written: must hold its data"
				   : i < lenient ? "skipped by Finish: its data or zeros"
						 : "above the write pointer: must read zeros",
				   full ? v->cap_lbas : o->wp, what);
		}
	}
	cp->blocks_checked += v->zone_lbas;
	return true;
}

static size_t report_entry_size(const struct variant *v)
{
	return sizeof(struct nvme_zns_desc) + v->zde_size;
}

/* Counts of every state, checked against the filtered reports. */
static void check_filters(struct campaign *cp, struct ns *ns, const uint32_t *count)
{
	static const uint8_t filters[] = {
		NVME_ZNS_ZRAS_REPORT_EMPTY, NVME_ZNS_ZRAS_REPORT_IMPL_OPENED,
		NVME_ZNS_ZRAS_REPORT_EXPL_OPENED, NVME_ZNS_ZRAS_REPORT_CLOSED,
		NVME_ZNS_ZRAS_REPORT_FULL, NVME_ZNS_ZRAS_REPORT_READ_ONLY,
		NVME_ZNS_ZRAS_REPORT_OFFLINE,
	};
	static const uint8_t state_of[] = {
		[NVME_ZNS_ZRAS_REPORT_EMPTY] = NVME_ZNS_ZS_EMPTY,
		[NVME_ZNS_ZRAS_REPORT_IMPL_OPENED] = NVME_ZNS_ZS_IMPL_OPEN,
		[NVME_ZNS_ZRAS_REPORT_EXPL_OPENED] = NVME_ZNS_ZS_EXPL_OPEN,
		[NVME_ZNS_ZRAS_REPORT_CLOSED] = NVME_ZNS_ZS_CLOSED,
		[NVME_ZNS_ZRAS_REPORT_FULL] = NVME_ZNS_ZS_FULL,
		[NVME_ZNS_ZRAS_REPORT_READ_ONLY] = NVME_ZNS_ZS_READ_ONLY,
		[NVME_ZNS_ZRAS_REPORT_OFFLINE] = NVME_ZNS_ZS_OFFLINE,
	};
	for (size_t k = 0; k < sizeof(filters); k++) {
		struct nvme_zone_report hdr;
		uint16_t st = ns_zone_report(ns, 0, NVME_ZNS_ZRA_REPORT_ZONES, filters[k], false, &hdr,
					     sizeof(hdr));
		if (st)
			fail_msg("cycle %d: filtered report %u failed with %#x", cp->cycle, filters[k], st);
		uint64_t n = le64toh(hdr.nr_zones);
		if (n != count[state_of[filters[k]]])
			fail_msg("cycle %d: report of %s zones counts %" PRIu64 ", the full report %u",
				 cp->cycle, state_name(state_of[filters[k]]), n,
				 count[state_of[filters[k]]]);
	}
}

/* Power-up rule and report sanity, for one zone whatever its generation. */
static void check_state(struct campaign *cp, const struct nvme_zns_desc *d, uint32_t zone,
			struct observed *o)
{
	const struct variant *v = cp->v;
	uint64_t zslba = zslba_of(v, zone), wp = le64toh(d->wp);
	o->zone = zone;
	o->state = d->zs >> 4;
	o->za = d->za;
	if (le64toh(d->zslba) != zslba || le64toh(d->zcap) != v->cap_lbas ||
	    d->zt != NVME_ZONE_TYPE_SEQWRITE_REQ)
		fail_msg("cycle %d: zone %u: report says zslba %#llx zcap %llu type %u", cp->cycle,
			 zone, (unsigned long long)le64toh(d->zslba),
			 (unsigned long long)le64toh(d->zcap), d->zt);
	if (wp < zslba || wp > zslba + v->cap_lbas)
		fail_msg("cycle %d: zone %u (%s): write pointer %#" PRIx64 " outside the zone",
			 cp->cycle, zone, state_name(o->state), wp);
	o->wp = (uint32_t)(wp - zslba);
	bool zdev = o->za & NVME_ZNS_ZA_ZDEV, zrwav = o->za & NVME_ZNS_ZA_ZRWAV;
	const char *bad = NULL;
	switch (o->state) {
	case NVME_ZNS_ZS_EMPTY:
		if (o->wp || zdev || zrwav)
			bad = "Empty with data, an extension or a ZRWA";
		break;
	case NVME_ZNS_ZS_CLOSED:
		/* A ZRWA's window may hold data at any write pointer. */
		if (!o->wp && !zdev && !zrwav)
			bad = "Closed with nothing written, no extension and no ZRWA (should be "
			      "Empty)";
		else if (o->wp == v->cap_lbas)
			bad = "Closed at the end of its capacity (should be Full)";
		break;
	case NVME_ZNS_ZS_FULL:
		if (o->wp != v->cap_lbas)
			bad = "Full with the write pointer short of the capacity";
		else if (zrwav)
			bad = "Full with a ZRWA";
		break;
	case NVME_ZNS_ZS_IMPL_OPEN:
	case NVME_ZNS_ZS_EXPL_OPEN:
		bad = "open after power-up";
		break;
	default:
		bad = "in a state this configuration never produces";
	}
	if ((o->za & NVME_ZNS_ZA_ZFC) && (!v->max_active || o->state != NVME_ZNS_ZS_FULL))
		bad = "finished by the controller without an active limit to enforce";
	if (zrwav && !v->zrwa_lbas)
		bad = "a ZRWA in a namespace without one";
	/* Only flushes move a ZRWA's write pointer, by whole granules. */
	else if (zrwav && o->wp % v->zrwa_fg)
		bad = "a ZRWA with the write pointer off the flush granularity";
	if (bad)
		fail_msg("cycle %d: zone %u: %s (state %s, wp +%u, za %#x)", cp->cycle, zone, bad,
			 state_name(o->state), o->wp, o->za);
}

/* ZRWA variant: what recovery left is the next cycle's starting point,
 * durable as it is (recovery checkpoints it). */
static void zrwa_rebase(struct campaign *cp, struct cand *c, const struct observed *o)
{
	const struct variant *v = cp->v;
	bool full = o->state == NVME_ZNS_ZS_FULL;
	c->wp_min = c->wp_max = full ? v->cap_lbas : o->wp;
	c->zrwa_done = o->za & NVME_ZNS_ZA_ZRWAV;
	c->fin_done = full;
	c->zde_done = o->za & NVME_ZNS_ZA_ZDEV;
	c->zrwa_pend = c->fin_pend = c->zde_pend = 0;
	/* Every block holds what it holds for good - but zeros above the
	 * window, which a crash after it is written there may erase again. */
	uint32_t readable = zrwa_readable(v, o);
	for (uint32_t i = 0; i < v->zone_lbas; i++) {
		c->cur[i] = c->prev[i] = (uint32_t)block_version(o->data + (size_t)i * BLK, o->zone,
								 zslba_of(v, o->zone) + i);
		c->floor[i] = i < readable || c->cur[i] ? FLOOR_CUR : 0;
	}
}

/* Open the namespace as recovery leaves it and hold it against the model. */
static void verify(struct campaign *cp)
{
	const struct variant *v = cp->v;
	struct ns *ns;
	char err[512];
	if (ns_open(&cp->cfg, false, &ns, err, sizeof(err)))
		fail_msg("cycle %d: recovery failed: %s", cp->cycle, err);
	const struct ns_info *in = ns_info(ns);
	assert_int_equal(in->nr_zones, v->nr_zones);

	size_t esize = report_entry_size(v);
	size_t len = sizeof(struct nvme_zone_report) + v->nr_zones * esize;
	uint8_t *rep = malloc(len), *data = malloc((size_t)v->zone_lbas * BLK);
	assert_non_null(rep);
	assert_non_null(data);
	uint16_t st = ns_zone_report(ns, 0, v->zde_size ? NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES
							: NVME_ZNS_ZRA_REPORT_ZONES,
				     NVME_ZNS_ZRAS_REPORT_ALL, false, rep, len);
	if (st)
		fail_msg("cycle %d: zone report failed with %#x", cp->cycle, st);
	if (le64toh(((struct nvme_zone_report *)rep)->nr_zones) != v->nr_zones)
		fail_msg("cycle %d: report counts %llu zones", cp->cycle,
			 (unsigned long long)le64toh(((struct nvme_zone_report *)rep)->nr_zones));

	uint32_t count[16] = { 0 }, active = 0;
	for (uint32_t z = 0; z < v->nr_zones; z++) {
		const uint8_t *e = rep + sizeof(struct nvme_zone_report) + z * esize;
		struct observed o;
		check_state(cp, (const struct nvme_zns_desc *)e, z, &o);
		count[o.state]++;
		active += o.state == NVME_ZNS_ZS_CLOSED;
		o.zde = v->zde_size ? e + sizeof(struct nvme_zns_desc) : NULL;
		o.data = data;
		uint64_t zslba = zslba_of(v, z);
		struct iovec iov = { data, (size_t)v->zone_lbas * BLK };
		st = ns_read_check(ns, zslba, v->zone_lbas);
		if (!st)
			st = ns_read(ns, zslba, v->zone_lbas, &iov, 1);
		if (st)
			fail_msg("cycle %d: zone %u: read failed with %#x", cp->cycle, z, st);

		/* Newest candidate first: an empty zone matches several. */
		struct zmodel *zm = &cp->zm[z];
		char reasons[MAX_CAND][300];
		int hit = -1;
		for (int k = (int)zm->nc - 1; k >= 0 && hit < 0; k--)
			if (zone_matches(cp, &zm->c[k], &o, reasons[k], sizeof(reasons[k])))
				hit = k;
		if (hit < 0) {
			char all[MAX_CAND * 340];
			size_t n = 0;
			for (uint32_t k = 0; k < zm->nc; k++)
				n += (size_t)snprintf(all + n, sizeof(all) - n,
						      "\n    generation %u%s (wp_min +%u%s%s): %s",
						      zm->c[k].gen, k ? " (Reset in flight)" : "",
						      zm->c[k].wp_min,
						      zm->c[k].fin_done ? ", finished"
						      : zm->c[k].fin_pend ? ", Finish in flight" : "",
						      zm->c[k].zde_pend ? ", Set ZDE in flight" : "",
						      reasons[k]);
			fail_msg("cycle %d (seed %#" PRIx64 "): zone %u recovered as %s, wp +%u, za "
				 "%#x, matching no possible history:%s\n  data dir kept: %s",
				 cp->cycle, cp->seed, z, state_name(o.state), o.wp, o.za, all,
				 cp->cfg.path);
		}
		cp->resets_in_flight += hit > 0;
		cp->zfc += (o.za & NVME_ZNS_ZA_ZFC) && !zm->zfc;
		zm->zfc = o.za & NVME_ZNS_ZA_ZFC;
		/* The recovered zone is the next cycle's starting point. */
		cand_make_durable(zm, zm->c[hit].gen);
		zm->nc = 1;
		struct cand *c = &zm->c[0];
		if (v->zrwa_lbas) {
			zrwa_rebase(cp, c, &o);
			continue;
		}
		bool full = o.state == NVME_ZNS_ZS_FULL;
		bool by_finish = full && (c->fin_done || c->fin_pend);
		bool finished = by_finish || (full && (o.za & NVME_ZNS_ZA_ZFC));
		if (!finished)
			c->wp_min = full ? v->cap_lbas : o.wp;
		c->fin_done = finished;
		c->zde_done = o.za & NVME_ZNS_ZA_ZDEV;
		c->fin_pend = c->zde_pend = 0;
		/* Above the write pointer nothing is consumed any more: what the
		 * next writes put there is checked afresh, so zeros or undefined
		 * blocks announced there before no longer excuse anything. Nor
		 * does a Finish that did not happen: no write is in flight now. */
		memset(c->zero_ok + o.wp, 0, v->zone_lbas - o.wp);
		for (uint32_t i = 0; i < o.wp && !by_finish; i++)
			c->zero_ok[i] &= (uint8_t)~FINISH_ZEROS;
	}
	check_filters(cp, ns, count);
	if (v->max_active && active > v->max_active)
		fail_msg("cycle %d: %u active zones, limit %u", cp->cycle, active, v->max_active);
	free(rep);
	free(data);
	/* Reading changed nothing and recovery made its own changes durable:
	 * no need for ns_close's checkpoint. */
	ns_abandon(ns);
}

/* ---- the parent: one kill cycle ---- */

/* The newest valid header slot's generation: +1 per checkpoint. */
static uint64_t image_generation(const struct campaign *cp)
{
	char path[sizeof(cp->cfg.path) + 16];
	snprintf(path, sizeof(path), "%s/zones.img", cp->cfg.path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	uint64_t gen = 0;
	for (int s = 0; s < 2; s++) {
		struct zimg_header h;
		if (pread(fd, &h, sizeof(h), (off_t)s * ZIMG_SLOT_SIZE) != (ssize_t)sizeof(h) ||
		    memcmp(h.magic, ZIMG_MAGIC, 8) ||
		    le32toh(h.crc) != crc32c(&h, offsetof(struct zimg_header, crc)))
			continue;
		if (le64toh(h.generation) > gen)
			gen = le64toh(h.generation);
	}
	close(fd);
	return gen;
}

/*
 * When to kill. A quarter of the kills aim at recovery: a delay from the fork
 * within the time recovery usually takes. The rest land in the load phase,
 * measured in work rather than time so that a slow or busy disk changes
 * nothing: after the child has reported 0 to LOAD_OPS durable operations
 * (a few journals' worth, so the commit thread checkpoints in most cycles),
 * wait 0 to 2 ms more - or give up waiting after LOAD_CAP_MS.
 */
#define LOAD_OPS 100
#define LOAD_CAP_MS 300.0
#define HANG_MS 20000.0      /* a child that stays silent this long is stuck */

struct kill_plan {
	bool in_load;
	uint32_t ops;            /* in_load: durable operations to wait for */
	double delay_ms;         /* from the fork, or from the ops-th report */
};

static struct kill_plan kill_plan(struct campaign *cp)
{
	uint64_t r = rng_next(&cp->rng);
	double u = (double)(rng_next(&cp->rng) % 1000000) / 1e6;
	if (r % 4 == 0)
		return (struct kill_plan){ false, 0, u * 1.2 * (cp->nready ? cp->ready_ms : 5.0) };
	return (struct kill_plan){ true, (uint32_t)(rng_next(&cp->rng) % (LOAD_OPS + 1)), u * 2.0 };
}

static void apply_bytes(struct campaign *cp, uint8_t *buf, size_t *have)
{
	size_t n = *have / sizeof(struct msg);
	for (size_t i = 0; i < n; i++) {
		struct msg m;
		memcpy(&m, buf + i * sizeof(m), sizeof(m));
		apply_msg(cp, &m);
	}
	memmove(buf, buf + n * sizeof(struct msg), *have - n * sizeof(struct msg));
	*have -= n * sizeof(struct msg);
}

static void run_cycle(struct campaign *cp)
{
	const struct variant *v = cp->v;
	uint32_t *gens = malloc(v->nr_zones * sizeof(*gens));
	assert_non_null(gens);
	for (uint32_t z = 0; z < v->nr_zones; z++)
		gens[z] = cp->zm[z].c[0].gen;
	uint64_t gen0 = image_generation(cp);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct kill_plan plan = kill_plan(cp);
	uint64_t child_seed = rng_next(&cp->rng);
	fflush(stdout);
	fflush(stderr);
	double t0 = now_ms(), deadline = plan.in_load ? t0 + HANG_MS : t0 + plan.delay_ms;
	uint64_t ops0 = cp->done_ops;
	bool counting = false;   /* in_load: READY seen, waiting for the ops */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_main(&cp->cfg, v, gens, cp->next_gen, p[1], child_seed);
	}
	close(p[1]);
	free(gens);
	cp->ready = false;

	/* Apply the child's messages as they come; kill at the deadline;
	 * then drain what it wrote before it died. */
	uint8_t buf[64 * sizeof(struct msg)];
	size_t have = 0;
	bool killed = false;
	for (;;) {
		double left = deadline - now_ms();
		if (!killed && left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
		}
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		double sec = left > 0 ? left / 1e3 : 0;
		struct timespec ts = { (time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9) };
		int r = ppoll(&pfd, 1, killed ? NULL : &ts, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r >= 0);
		if (!r)
			continue;
		ssize_t n = read(p[0], buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (!n)
			break;
		bool was_ready = cp->ready;
		have += (size_t)n;
		apply_bytes(cp, buf, &have);
		double t = now_ms();
		if (!was_ready && cp->ready) {
			cp->ready_ms = (cp->ready_ms * cp->nready + (t - t0)) / (cp->nready + 1);
			cp->nready++;
			if (plan.in_load && !killed) {
				deadline = t + LOAD_CAP_MS;
				counting = true;
			}
		}
		if (counting && cp->done_ops - ops0 >= plan.ops) {
			deadline = t + plan.delay_ms;
			counting = false;
		}
	}
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* A crash-point fault (fault variants) kills the child itself. */
	if ((!killed && !v->fault_one_in) || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("cycle %d: the child %s %d before it was killed - see its message above",
			 cp->cycle, WIFSIGNALED(status) ? "died of signal" : "exited with status",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	cp->self_kills += !killed;
	if (plan.in_load && !cp->ready)
		fail_msg("cycle %d: recovery took more than %.0f s", cp->cycle, HANG_MS / 1e3);
	if (have)
		fail_msg("cycle %d: %zu bytes of a torn message", cp->cycle, have);

	uint64_t ckpts = image_generation(cp) - gen0;
	if (!cp->ready) {
		cp->kills_in_open++;
		cp->ckpt_open += ckpts;
	} else {
		cp->ckpt_open += ckpts ? 1 : 0;
		cp->ckpt_commit += ckpts ? ckpts - 1 : 0;
	}
	verify(cp);
}

/* ---- campaigns ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int env_int(const char *name, int def)
{
	const char *s = getenv(name);
	return s && *s ? atoi(s) : def;
}

/* A seed from the environment in any base strtoull reads, so that the
 * hexadecimal one a run prints repeats it. */
static uint64_t env_seed(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 0) : def;
}

/* A campaign whose model has every zone Empty in generation 0. */
static struct campaign *campaign_new(const struct variant *v)
{
	struct campaign *cp = calloc(1, sizeof(*cp));
	assert_non_null(cp);
	cp->v = v;
	cp->zm = calloc(v->nr_zones, sizeof(*cp->zm));
	cp->zero_mem = calloc((size_t)v->nr_zones * MAX_CAND, v->zone_lbas);
	assert_non_null(cp->zm);
	assert_non_null(cp->zero_mem);
	size_t per_zone = v->zrwa_lbas ? (size_t)MAX_CAND * v->zone_lbas : 0;
	cp->ver_mem = calloc(v->nr_zones * per_zone * 2 + 1, sizeof(*cp->ver_mem));
	cp->floor_mem = calloc(v->nr_zones * per_zone + 1, 1);
	assert_non_null(cp->ver_mem);
	assert_non_null(cp->floor_mem);
	for (uint32_t z = 0; z < v->nr_zones; z++) {
		for (uint32_t k = 0; k < MAX_CAND; k++) {
			struct cand *c = &cp->zm[z].c[k];
			size_t at = ((size_t)z * MAX_CAND + k) * v->zone_lbas;
			c->zero_ok = cp->zero_mem + at;
			if (v->zrwa_lbas) {
				c->cur = cp->ver_mem + 2 * at;
				c->prev = c->cur + v->zone_lbas;
				c->floor = cp->floor_mem + at;
			}
		}
		cp->zm[z].nc = 1; /* generation 0, empty */
	}
	cp->next_gen = 1;
	return cp;
}

static void campaign_free(struct campaign *cp)
{
	free(cp->ver_mem);
	free(cp->floor_mem);
	free(cp->zero_mem);
	free(cp->zm);
	free(cp);
}

static void run_campaign(const struct variant *v)
{
	struct campaign *cp = campaign_new(v);
	static uint64_t campaigns;
	cp->seed = env_seed("ZNSTGT_CRASH_SEED",
			    mix(mix((uint64_t)time(NULL)) ^ (uint64_t)getpid() << 32 ^ mix(++campaigns)));
	cp->rng = cp->seed;
	/* Now, not only in the summary: a failed cycle ends the campaign. */
	printf("[ crash    ] %s: seed %#" PRIx64 "\n", v->name, cp->seed);
	fflush(stdout); /* shown even if the run dies of a signal */
	const char *tmp = getenv("TMPDIR");
	snprintf(cp->cfg.path, sizeof(cp->cfg.path), "%s/znstgt-crash-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(cp->cfg.path));
	cp->cfg.nsid = 1;
	cp->cfg.zoned = true;
	cp->cfg.lba_size = BLK;
	cp->cfg.size = (uint64_t)v->nr_zones * v->zone_lbas * BLK;
	cp->cfg.zone_size = (uint64_t)v->zone_lbas * BLK;
	cp->cfg.zone_capacity = (uint64_t)v->cap_lbas * BLK;
	cp->cfg.max_open = v->max_open;
	cp->cfg.max_active = v->max_active;
	cp->cfg.zone_append_max = MAX_NLB * BLK;
	cp->cfg.zde_size = v->zde_size;
	cp->cfg.cross_zone_read = true;
	cp->cfg.write_cache = v->write_cache;
	/* A journal of ~25 records, far below what the configuration allows
	 * (64K): a child lives for about a hundred operations and every
	 * recovery restarts the journal, so only a tiny one makes the commit
	 * thread checkpoint in most cycles - and kills land inside them. */
	cp->cfg.journal_size = 1 << 10;
	cp->cfg.zrwa_size = (uint64_t)v->zrwa_lbas * BLK;
	cp->cfg.zrwa_flush_granularity = (uint64_t)v->zrwa_fg * BLK;
	cp->cfg.zrwa_resources = v->nr_zrwa;
	/* The ZRWA variant reports each operation as durable before the next
	 * (write cache off), and runs without faults. */
	assert_false(v->zrwa_lbas && (v->write_cache || v->fault_one_in));
	/* A write that fails under faults may keep its range: reading it back
	 * says what it holds only while no Reset can come in between. */
	assert_false(v->overlap && v->fault_one_in);

	struct ns *ns;
	char err[512];
	if (ns_open(&cp->cfg, true, &ns, err, sizeof(err)))
		fail_msg("format: %s", err);
	ns_close(ns);

	int cycles = v->fault_one_in ? env_int("ZNSTGT_FAULT_CYCLES", 30)
				     : env_int("ZNSTGT_CRASH_CYCLES", 200);
	double t0 = now_ms();
	for (cp->cycle = 1; cp->cycle <= cycles; cp->cycle++)
		run_cycle(cp);
	printf("[ crash    ] %s: %d kill cycles in %.1f s (seed %#" PRIx64 ")\n"
	       "             kills: %" PRIu64 " during recovery (%.1f ms on average), %" PRIu64
	       " under load\n"
	       "             durable operations verified: %" PRIu64 " (and %" PRIu64 " superseded by "
	       "a later Reset); intents: %" PRIu64 "\n"
	       "             zones recovered: %" PRIu64 " matching a Reset in flight, %" PRIu64
	       " finished by the power-up rule; %" PRIu64 " blocks read back\n"
	       "             checkpoints: %" PRIu64 " by the commit thread, %" PRIu64 " at recovery\n"
	       "             faults: %" PRIu64 " crash points (the child killed itself), %" PRIu64
	       " failed syncs, %" PRIu64 " failed writes (%" PRIu64 " ranges kept, %" PRIu64
	       " of them undefined), %" PRIu64 " Resets retried\n"
	       "             overlap: writes dropped by %" PRIu64 " Resets, %" PRIu64 " Finishes; "
	       "ZRWA: %" PRIu64 " blocks written again, %" PRIu64 " explicit flushes\n",
	       v->name, cycles, (now_ms() - t0) / 1e3, cp->seed, cp->kills_in_open, cp->ready_ms,
	       cycles - cp->kills_in_open, cp->done_ops, cp->stale_ops, cp->intents,
	       cp->resets_in_flight, cp->zfc, cp->blocks_checked, cp->ckpt_commit, cp->ckpt_open,
	       cp->self_kills, cp->failed_syncs, cp->failed_writes, cp->kept_writes,
	       cp->undefined_writes, cp->failed_resets, cp->dropped_by_reset, cp->dropped_by_finish,
	       cp->zrwa_rewrites, cp->zrwa_flushes);
	nftw(cp->cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	campaign_free(cp);
}

/* Write cache off: every operation is made durable before it is reported. */
static void test_crash_write_through(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "write cache off", .nr_zones = 32, .zone_lbas = 128, .cap_lbas = 128,
		.zde_size = 64,
	};
	run_campaign(&v);
}

/* Write cache on: writes are reported only after a later Flush (ns_sync);
 * zone capacity below the zone size. */
static void test_crash_write_cache(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "write cache on", .nr_zones = 32, .zone_lbas = 64, .cap_lbas = 48,
		.write_cache = true,
	};
	run_campaign(&v);
}

/* Open and active limits: implicit closes, Too Many Active/Open, and the
 * power-up rule finishing zones over the active limit. */
static void test_crash_limits(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "max_open 3, max_active 5", .nr_zones = 24, .zone_lbas = 64, .cap_lbas = 64,
		.max_open = 3, .max_active = 5, .zde_size = 64,
	};
	run_campaign(&v);
}

/* Faults armed, write cache off: each operation synced before reported. */
static void test_faults_write_through(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "faults, write cache off", .nr_zones = 32, .zone_lbas = 128, .cap_lbas = 128,
		.zde_size = 64, .fault_one_in = 40,
	};
	run_campaign(&v);
}

/* Faults armed, write cache on and open/active limits: batches of writes
 * behind one Flush, implicit closes, and zones given back past the limits. */
static void test_faults_write_cache_limits(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "faults, write cache on, max_open 3, max_active 5", .nr_zones = 24,
		.zone_lbas = 64, .cap_lbas = 48, .max_open = 3, .max_active = 5, .zde_size = 64,
		.write_cache = true, .fault_one_in = 40,
	};
	run_campaign(&v);
}

/* Writes meet Resets and Finishes of their zone in flight, write cache
 * off: a write is dropped (not reported) or lands first. A small capacity,
 * so that zones fill up - with the writes that filled them in flight - and
 * a Finish meets a zone Full in memory but not yet on disk. */
static void test_crash_overlap(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "overlap, write cache off", .nr_zones = 32, .zone_lbas = 64, .cap_lbas = 32,
		.zde_size = 64, .overlap = true,
	};
	run_campaign(&v);
}

/* The same with the write cache on and open/active limits: batches of
 * writes behind one Flush, zones Finished and Reset to free resources with
 * writes in flight. */
static void test_crash_overlap_cache_limits(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "overlap, write cache on, max_open 3, max_active 5", .nr_zones = 24,
		.zone_lbas = 64, .cap_lbas = 48, .max_open = 3, .max_active = 5, .zde_size = 64,
		.write_cache = true, .overlap = true,
	};
	run_campaign(&v);
}

/* Zone Random Write Areas: zones given one (some with an extension), writes
 * anywhere in the window and its implicit flush range, explicit flushes,
 * Close, Finish and Reset of zones holding one; fewer ZRWAs than zones. */
static void test_crash_zrwa(void **state)
{
	(void)state;
	static const struct variant v = {
		.name = "ZRWA of 8 blocks, granularity 2, 6 resources", .nr_zones = 16,
		.zone_lbas = 64, .cap_lbas = 48, .zde_size = 64, .zrwa_lbas = 8, .zrwa_fg = 2,
		.nr_zrwa = 6, .overlap = true,
	};
	run_campaign(&v);
}

/* ---- the model itself ---- */

/*
 * The blocks of a write in flight when a Finish was issued may read as
 * zeros only if the zone is Full by that Finish: it erased them as it
 * dropped the write. Killed before the Finish, the zone is open where
 * its records left it, none of them past a write that never landed - so
 * zeros there below the write pointer are a record vouching for data
 * that is not there, whatever the Finish announced.
 */
static void test_model_finish_zeros_need_the_finish(void **state)
{
	(void)state;
	static const struct variant v = { .name = "model", .nr_zones = 1, .zone_lbas = 16,
					  .cap_lbas = 8, .overlap = true };
	struct campaign *cp = campaign_new(&v);
	/* Appends of [0,2), [2,4) and [4,8): the first reported, the other
	 * two in flight when a Finish is announced; [4,8) lands first and is
	 * reported, [2,4) is dropped. */
	const struct msg msgs[] = {
		{ .type = M_DONE, .op = OP_APPEND, .slba = 0, .nlb = 2 },
		{ .type = M_INTENT, .op = OP_FINISH },
		{ .type = M_ZEROES, .op = OP_FINISH, .slba = 2, .nlb = 2 },
		{ .type = M_ZEROES, .op = OP_FINISH, .slba = 4, .nlb = 4 },
		{ .type = M_DONE, .op = OP_APPEND, .slba = 4, .nlb = 4 },
	};
	for (size_t k = 0; k < sizeof(msgs) / sizeof(msgs[0]); k++)
		apply_msg(cp, &msgs[k]);
	uint8_t *data = calloc(v.zone_lbas, BLK);
	assert_non_null(data);
	for (uint32_t i = 0; i < v.cap_lbas; i++)
		if (i < 2 || i >= 4)
			pattern_fill(data + (size_t)i * BLK, 0, i, 0);
	struct observed o = { .state = NVME_ZNS_ZS_FULL, .wp = v.cap_lbas, .data = data };
	char why_not[300] = "";
	if (!zone_matches(cp, &cp->zm[0].c[0], &o, why_not, sizeof(why_not)))
		fail_msg("Full by the Finish, the dropped append's blocks zeros: refused (%s)",
			 why_not);
	o.state = NVME_ZNS_ZS_CLOSED;
	if (zone_matches(cp, &cp->zm[0].c[0], &o, why_not, sizeof(why_not)))
		fail_msg("Closed at +8 with the blocks of an append that never landed zeros below "
			 "the write pointer: accepted");
	free(data);
	campaign_free(cp);
}

/*
 * ZRWA variant: a write's report may come after later writes to its blocks
 * were announced (it ended, then waited for its sync), and says only that
 * its own version is durable there. Write Zeroes are no exception: the
 * report of an older one must not stand for a later one still in flight
 * over the same block, which the crash may have kept from landing - the
 * block then holds the write between them, whose data landed.
 */
static void test_model_zeroes_reported_late(void **state)
{
	(void)state;
	static const struct variant v = { .name = "model", .nr_zones = 1, .zone_lbas = 16,
					  .cap_lbas = 16, .overlap = true, .zrwa_lbas = 8,
					  .zrwa_fg = 2 };
	struct campaign *cp = campaign_new(&v);
	/* Zeroes over [2,4) (version 1) ended, then a write of version 2 at
	 * +3 ended, then zeroes over [2,4) again (version 3) were issued; the
	 * first zeroes are reported, the rest not. */
	const struct msg msgs[] = {
		{ .type = M_INTENT, .op = OP_ZRWAA },
		{ .type = M_DONE, .op = OP_ZRWAA },
		{ .type = M_INTENT, .op = OP_ZEROES, .slba = 2, .nlb = 2, .ver = 1 },
		{ .type = M_INTENT, .op = OP_WRITE, .slba = 3, .nlb = 1, .ver = 2 },
		{ .type = M_INTENT, .op = OP_ZEROES, .slba = 2, .nlb = 2, .ver = 3 },
		{ .type = M_DONE, .op = OP_ZEROES, .slba = 2, .nlb = 2, .ver = 1 },
	};
	for (size_t k = 0; k < sizeof(msgs) / sizeof(msgs[0]); k++)
		apply_msg(cp, &msgs[k]);
	uint8_t *data = calloc(v.zone_lbas, BLK);
	assert_non_null(data);
	pattern_fill(data + 3 * BLK, 0, 3, 2);
	struct observed o = { .state = NVME_ZNS_ZS_CLOSED, .za = NVME_ZNS_ZA_ZRWAV, .data = data };
	char why_not[300] = "";
	if (!zone_matches(cp, &cp->zm[0].c[0], &o, why_not, sizeof(why_not)))
		fail_msg("the last zeroes not landed, +3 holding the write before them: refused (%s)",
			 why_not);
	const struct msg last = { .type = M_DONE, .op = OP_ZEROES, .slba = 2, .nlb = 2, .ver = 3 };
	apply_msg(cp, &last);
	if (zone_matches(cp, &cp->zm[0].c[0], &o, why_not, sizeof(why_not)))
		fail_msg("the last zeroes reported, +3 holding the write before them: accepted");
	free(data);
	campaign_free(cp);
}

/*
 * A write dropped in flight fails with the status of what dropped it: Zone
 * Invalid Write after a Reset, Zone Is Full after a Finish. The other one
 * is no drop the child may leave unreported.
 */
static void test_model_drop_status_names_the_change(void **state)
{
	(void)state;
	static const struct variant v = { .name = "model", .nr_zones = 1, .zone_lbas = 16,
					  .cap_lbas = 8, .overlap = true };
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct zchanges changes = { 0, 0 };
	struct child c = { .v = &v, .fd = fds[1], .changes = &changes };
	const struct zchanges began = changes_now(&c, 0);
	const uint16_t invalid_write = NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_INVALID_WRITE);
	const uint16_t full = NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_FULL);
	changes.finishes++; /* a Finish of the zone since the write began */
	assert_false(dropped(&c, 0, began, invalid_write));
	assert_true(dropped(&c, 0, began, full));
	changes = (struct zchanges){ .resets = 1 }; /* a Reset instead */
	assert_false(dropped(&c, 0, began, full));
	assert_true(dropped(&c, 0, began, invalid_write));
	close(fds[0]);
	close(fds[1]);
}

/* ---- record durable, data not ---- */

#define TORN_ZONES 8
#define TORN_LBAS 64

enum torn_loss { LOSS_NONE, LOSS_ZEROS, LOSS_GARBAGE };

static struct ns_config torn_config(const char *dir)
{
	struct ns_config cfg = {
		.nsid = 1, .zoned = true, .lba_size = BLK, .size = TORN_ZONES * TORN_LBAS * BLK,
		.zone_size = TORN_LBAS * BLK, .zone_capacity = TORN_LBAS * BLK,
		.zone_append_max = 8 * BLK, .journal_size = 1 << 20,
	};
	snprintf(cfg.path, sizeof(cfg.path), "%s/ns", dir);
	return cfg;
}

static void torn_write(struct ns *ns, uint32_t zone, uint32_t from, uint32_t nlb)
{
	uint64_t zslba = (uint64_t)zone * TORN_LBAS;
	uint8_t buf[BLK];
	for (uint32_t i = 0; i < nlb; i++) {
		pattern_fill(buf, zone, zslba + from + i, 1);
		struct iovec iov = { buf, BLK };
		struct ns_write w;
		uint16_t st = ns_write_begin(ns, &w, NS_ZONE_APPEND, zslba, 1);
		if (!st)
			st = ns_write_data(ns, &w, &iov, 1);
		ns_write_end(ns, &w, st);
		if (st || w.slba != zslba + from + i)
			_exit(3);
	}
}

/* The child: A acknowledged, B's data sync failed (or died at), then dies. */
static void torn_child(const struct ns_config *cfg, const uint32_t *a, const uint32_t *b,
		       bool die_at_sync)
{
	struct ns *ns;
	char err[512];
	if (ns_open(cfg, true, &ns, err, sizeof(err)))
		_exit(2);
	for (uint32_t z = 0; z < TORN_ZONES; z++)
		torn_write(ns, z, 0, a[z]);
	if (ns_sync_wait(ns))
		_exit(4);
	for (uint32_t z = 0; z < TORN_ZONES; z++)
		torn_write(ns, z, a[z], b[z]);
	fault_io_arm(&(struct fault_plan){
		.seed = 1, .points = FAULT_DATA_SYNC, .one_in = 1, .count = 1,
		.kinds = FAULT_KIND(die_at_sync ? FAULT_CRASH : FAULT_EIO),
	});
	if (!ns_sync_wait(ns))
		_exit(5); /* B must not be acknowledged */
	raise(SIGKILL);
	_exit(6);
}

static void torn_round(uint64_t *rng, const char *dir)
{
	struct ns_config cfg = torn_config(dir);
	uint32_t a[TORN_ZONES], b[TORN_ZONES];
	enum torn_loss loss[TORN_ZONES];
	bool die_at_sync = rng_next(rng) & 1;
	for (uint32_t z = 0; z < TORN_ZONES; z++) {
		a[z] = (uint32_t)(rng_next(rng) % 9);
		b[z] = (uint32_t)(rng_next(rng) % 3 ? rng_next(rng) % 8 + 1 : 0);
		loss[z] = b[z] ? (enum torn_loss)(rng_next(rng) % 3) : LOSS_NONE;
	}
	/* Without any B there is nothing for the data sync to fail on: the
	 * commit would succeed, rightly, and the round would test nothing. */
	bool any_b = false;
	for (uint32_t z = 0; z < TORN_ZONES; z++)
		any_b |= b[z] != 0;
	if (!any_b) {
		uint32_t z = (uint32_t)(rng_next(rng) % TORN_ZONES);
		b[z] = 1;
		loss[z] = (enum torn_loss)(rng_next(rng) % 3);
	}
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		torn_child(&cfg, a, b, die_at_sync);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("torn child: %s %d", WIFEXITED(status) ? "exit" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));

	/* Lose some of B's data, as a power cut before the data sync could. */
	char data[sizeof(cfg.path) + 8];
	snprintf(data, sizeof(data), "%s/data", cfg.path);
	int fd = open(data, O_RDWR);
	assert_true(fd >= 0);
	for (uint32_t z = 0; z < TORN_ZONES; z++) {
		if (loss[z] == LOSS_NONE)
			continue;
		uint8_t blk[BLK];
		uint64_t lba = (uint64_t)z * TORN_LBAS + a[z] + rng_next(rng) % b[z];
		for (size_t i = 0; i < BLK; i++)
			blk[i] = loss[z] == LOSS_ZEROS ? 0 : (uint8_t)rng_next(rng);
		assert_int_equal(pwrite(fd, blk, BLK, (off_t)(lba * BLK)), (ssize_t)BLK);
	}
	close(fd);

	struct ns *ns;
	char err[512];
	if (ns_open(&cfg, false, &ns, err, sizeof(err)))
		fail_msg("recovery refused: %s", err);
	for (uint32_t z = 0; z < TORN_ZONES; z++) {
		uint64_t zslba = (uint64_t)z * TORN_LBAS;
		uint8_t rep_buf[64 + 64];
		assert_int_equal(ns_zone_report(ns, zslba, NVME_ZNS_ZRA_REPORT_ZONES, 0, true, rep_buf,
						sizeof(rep_buf)), 0);
		struct nvme_zns_desc d;
		memcpy(&d, rep_buf + 64, sizeof(d));
		uint64_t wp = le64toh(d.wp) - zslba;
		/* Any of B's data lost: B is gone. All of it there: B stays
		 * when its records are durable, as they are once the journal
		 * sync returned beside a failed data sync; a death at the data
		 * sync may come before the journal write. */
		bool ok = loss[z] != LOSS_NONE ? wp == a[z]
			  : die_at_sync      ? wp == a[z] || wp == a[z] + b[z]
					     : wp == a[z] + b[z];
		if (!ok)
			fail_msg("zone %u: write pointer %llu, A %u, B %u, loss %d, %s", z,
				 (unsigned long long)wp, a[z], b[z], loss[z],
				 die_at_sync ? "died at the data sync" : "data sync failed");
		uint8_t want_state = wp ? NVME_ZNS_ZS_CLOSED : NVME_ZNS_ZS_EMPTY;
		if (d.zs >> 4 != want_state)
			fail_msg("zone %u: state %#x, want %#x", z, d.zs >> 4, want_state);
		for (uint64_t l = 0; l < TORN_LBAS; l++) {
			uint8_t blk[BLK];
			struct iovec iov = { blk, BLK };
			assert_int_equal(ns_read(ns, zslba + l, 1, &iov, 1), 0);
			if (l < wp ? !block_is(blk, z, zslba + l, 1) : !block_is_zero(blk)) {
				char what[128];
				describe_block(blk, what, sizeof(what));
				fail_msg("zone %u LBA %llu (write pointer %llu): holds %s", z,
					 (unsigned long long)l, (unsigned long long)wp, what);
			}
		}
	}
	ns_close(ns);
}

static void test_record_durable_data_lost(void **state)
{
	(void)state;
	char dir[] = "/tmp/znstgt-torn-XXXXXX";
	assert_non_null(mkdtemp(dir));
	uint64_t rng = env_seed("ZNSTGT_CRASH_SEED", (uint64_t)time(NULL));
	int rounds = env_int("ZNSTGT_TORN_ROUNDS", 24);
	printf("[ torn     ] %d rounds (seed %#" PRIx64 ")\n", rounds, rng);
	fflush(stdout); /* shown even if the run dies of a signal */
	log_set_level(LOG_ERROR); /* each recovery warns about the records it drops */
	for (int i = 0; i < rounds; i++)
		torn_round(&rng, dir);
	log_set_level(LOG_WARN);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	/* Each recovery logs what it replayed; a campaign opens the namespace
	 * hundreds of times. Warnings and errors still show. */
	log_set_level(LOG_WARN);
	if (getenv("ZNSTGT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ZNSTGT_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_write_through),
		cmocka_unit_test(test_crash_write_cache),
		cmocka_unit_test(test_crash_limits),
		cmocka_unit_test(test_crash_overlap),
		cmocka_unit_test(test_crash_overlap_cache_limits),
		cmocka_unit_test(test_crash_zrwa),
		cmocka_unit_test(test_faults_write_through),
		cmocka_unit_test(test_faults_write_cache_limits),
		cmocka_unit_test(test_record_durable_data_lost),
		cmocka_unit_test(test_model_finish_zeros_need_the_finish),
		cmocka_unit_test(test_model_drop_status_names_the_change),
		cmocka_unit_test(test_model_zeroes_reported_late),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
