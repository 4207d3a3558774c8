/*
 * Zone engine: the ZNS zone state machine, resource limits, write pointer
 * reservation and zone reports. See zone.h for the locking rules.
 *
 * States (ZNS 2.1.1): ZSE Empty, ZSIO Implicitly Opened, ZSEO Explicitly
 * Opened, ZSC Closed, ZSF Full, ZSRO Read Only, ZSO Offline. A zone is
 * "open" in ZSIO/ZSEO and "active" in ZSIO/ZSEO/ZSC.
 */
#include "zone.h"

#include <endian.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_wire.h"


#define S_EMPTY NVME_ZNS_ZS_EMPTY
#define S_IOPEN NVME_ZNS_ZS_IMPL_OPEN
#define S_EOPEN NVME_ZNS_ZS_EXPL_OPEN
#define S_CLOSED NVME_ZNS_ZS_CLOSED
#define S_RO NVME_ZNS_ZS_READ_ONLY
#define S_FULL NVME_ZNS_ZS_FULL
#define S_OFFLINE NVME_ZNS_ZS_OFFLINE

static bool is_open(uint8_t s) { return s == S_IOPEN || s == S_EOPEN; }
static bool is_active(uint8_t s) { return is_open(s) || s == S_CLOSED; }
static bool has_zrwa(const struct zone *zn) { return zn->za & NVME_ZNS_ZA_ZRWAV; }

/* Nothing written and no extension: Close (and power-up) make such an
 * open zone Empty again (Figure 7). A zone with a ZRWA may hold data in
 * its window with the write pointer still at the zone start: not empty. */
static bool holds_nothing(const struct zns *z, uint32_t i)
{
	const struct zone *zn = &z->zones[i];
	return zn->wp == zns_zslba(z, i) && !(zn->za & (NVME_ZNS_ZA_ZDEV | NVME_ZNS_ZA_ZRWAV));
}

int zns_init(struct zns *z, const struct zns_geom *g)
{
	memset(z, 0, sizeof(*z));
	if (!g->nr_zones || !g->zone_size || (g->zone_size & (g->zone_size - 1)) ||
	    !g->zone_cap || g->zone_cap > g->zone_size)
		return -1;
	/* ZRWA: the granularity divides the window and the capacity, so that
	 * flushes can reach the capacity's end. */
	if (g->zrwa_lbas && (!g->zrwa_fg || g->zrwa_lbas % g->zrwa_fg || g->zone_cap % g->zrwa_fg ||
			     g->zrwa_lbas > g->zone_cap))
		return -1;
	z->g = *g;
	z->zone_shift = (uint32_t)__builtin_ctzll(g->zone_size);
	z->zones = calloc(g->nr_zones, sizeof(*z->zones));
	if (g->zde_size)
		z->zde = calloc(g->nr_zones, g->zde_size);
	z->changed_gen_of = calloc(g->nr_zones, sizeof(*z->changed_gen_of));
	z->gapped_map = calloc((g->nr_zones + 63) / 64, sizeof(*z->gapped_map));
	if (!z->zones || (g->zde_size && !z->zde) || !z->changed_gen_of || !z->gapped_map) {
		zns_destroy(z);
		return -1;
	}
	pthread_mutex_init(&z->state_lock, NULL);
	pthread_mutex_init(&z->dirty_lock, NULL);
	pthread_cond_init(&z->scrub_cond, NULL);
	z->iopen_head = z->iopen_tail = ZONE_NIL;
	for (uint32_t i = 0; i < g->nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		pthread_mutex_init(&zn->lock, NULL);
		zn->state = S_EMPTY;
		zn->wp = zn->wp_done = zn->wp_ended = zns_zslba(z, i);
		zn->iopen_prev = zn->iopen_next = ZONE_NIL;
	}
	return 0;
}

void zns_destroy(struct zns *z)
{
	if (z->zones) {
		for (uint32_t i = 0; i < z->g.nr_zones; i++)
			pthread_mutex_destroy(&z->zones[i].lock);
		pthread_mutex_destroy(&z->state_lock);
		pthread_mutex_destroy(&z->dirty_lock);
		pthread_cond_destroy(&z->scrub_cond);
	}
	free(z->zones);
	free(z->zde);
	free(z->changed_gen_of);
	free(z->gapped_map);
	memset(z, 0, sizeof(*z));
}

/* ---- bookkeeping shared by every transition ---- */

static void mark_dirty(struct zns *z, uint32_t i)
{
	pthread_mutex_lock(&z->dirty_lock);
	struct zone *zn = &z->zones[i];
	if (!zn->dirty_next) {
		zn->dirty_next = ZONE_NIL; /* listed, last */
		if (z->dirty_tail)
			z->zones[z->dirty_tail - 1].dirty_next = i + 1;
		else
			z->dirty_head = i + 1;
		z->dirty_tail = i + 1;
	}
	pthread_mutex_unlock(&z->dirty_lock);
}

static void iopen_unlink(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	if (zn->iopen_prev != ZONE_NIL)
		z->zones[zn->iopen_prev].iopen_next = zn->iopen_next;
	else
		z->iopen_head = zn->iopen_next;
	if (zn->iopen_next != ZONE_NIL)
		z->zones[zn->iopen_next].iopen_prev = zn->iopen_prev;
	else
		z->iopen_tail = zn->iopen_prev;
	zn->iopen_prev = zn->iopen_next = ZONE_NIL;
}

static void iopen_append(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	zn->iopen_prev = z->iopen_tail;
	zn->iopen_next = ZONE_NIL;
	if (z->iopen_tail != ZONE_NIL)
		z->zones[z->iopen_tail].iopen_next = i;
	else
		z->iopen_head = i;
	z->iopen_tail = i;
}

/*
 * Move zone i to state `to`, keeping the open/active counters and the
 * implicitly-open list right. Caller holds state_lock and the zone's lock.
 */
static void set_state(struct zns *z, uint32_t i, uint8_t to)
{
	struct zone *zn = &z->zones[i];
	uint8_t from = zn->state;
	if (from == to)
		return;
	if (is_open(from))
		z->nr_open--;
	if (is_active(from))
		z->nr_active--;
	if (from == S_IOPEN)
		iopen_unlink(z, i);
	if (is_open(to))
		z->nr_open++;
	if (is_active(to))
		z->nr_active++;
	if (to == S_IOPEN)
		iopen_append(z, i);
	/* A zone holds a ZRWA only while active: Finish, Reset, a flush that
	 * fills it, Read Only and Offline all release it. */
	if (has_zrwa(zn) && !is_active(to)) {
		zn->za &= (uint8_t)~NVME_ZNS_ZA_ZRWAV;
		z->nr_zrwa--;
	}
	/* Read without a lock (zns_zone_state). */
	__atomic_store_n(&zn->state, to, __ATOMIC_RELAXED);
	if (to != S_FULL)
		zn->flags &= ~ZONE_F_FINISHED;
	mark_dirty(z, i);
}

/*
 * Make room for one more open zone (ZNS 2.1.1.4.1): when the open limit is
 * reached the controller may close an implicitly opened zone. The oldest one
 * is chosen. Returns false if every open zone is explicitly opened.
 */
static bool ensure_open_slot(struct zns *z, uint32_t except)
{
	if (!z->g.max_open || z->nr_open < z->g.max_open)
		return true;
	uint32_t victim = z->iopen_head;
	if (victim == except)
		victim = z->zones[victim].iopen_next;
	if (victim == ZONE_NIL)
		return false;
	struct zone *v = &z->zones[victim];
	pthread_mutex_lock(&v->lock);
	set_state(z, victim, S_CLOSED);
	pthread_mutex_unlock(&v->lock);
	return true;
}

/*
 * Check and take the resources for moving zone i (currently `from`) into an
 * open state (ZNS 2.1.1.4). Caller holds state_lock.
 */
static uint16_t open_resources(struct zns *z, uint32_t i, uint8_t from)
{
	if (from == S_EMPTY && z->g.max_active && z->nr_active >= z->g.max_active)
		return nvme_cmd_err(NVME_SC_ZNS_TOO_MANY_ACTIVE);
	if (!is_open(from) && !ensure_open_slot(z, i))
		return nvme_cmd_err(NVME_SC_ZNS_TOO_MANY_OPENS);
	return 0;
}

static void set_gapped(struct zns *z, struct zone *zn, bool gapped)
{
	uint32_t i = (uint32_t)(zn - z->zones);
	uint64_t bit = UINT64_C(1) << (i % 64);

	if (gapped == !!(zn->flags & ZONE_F_GAPPED))
		return;
	zn->flags ^= ZONE_F_GAPPED;
	if (gapped)
		__atomic_fetch_or(&z->gapped_map[i / 64], bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&z->gapped_map[i / 64], ~bit, __ATOMIC_RELEASE);
	__atomic_add_fetch(&z->nr_gapped, gapped ? 1u : (uint32_t)-1, __ATOMIC_RELEASE);
}

uint32_t zns_next_gapped(const struct zns *z, uint32_t from)
{
	uint32_t n = z->g.nr_zones;

	for (uint32_t w = from / 64; from < n; w++, from = w * 64) {
		uint64_t bits = __atomic_load_n(&z->gapped_map[w], __ATOMIC_ACQUIRE) >>
				(from % 64);
		if (bits) {
			from += (uint32_t)__builtin_ctzll(bits);
			return from < n ? from : n;
		}
	}
	return n;
}

/* Release the waiters whose target the written prefix reached (all of them
 * when all is set). Caller holds the zone lock. */
static void wake_waiters(struct zone *zn, bool all)
{
	struct zone_waiter **pp = &zn->waiters;
	while (*pp) {
		struct zone_waiter *zw = *pp;
		if (all || zw->target <= zn->wp_done) {
			*pp = zw->next;
			zw->ready(zw);
		} else {
			pp = &zw->next;
		}
	}
}

/* The ZRWA writes still in flight in zn's window, if any. Caller holds the
 * zone lock. */
static bool zrwa_in_flight(const struct zone *zn)
{
	for (const struct ns_write *w = zn->inflight; w; w = w->next)
		if (w->zrwa)
			return true;
	return false;
}

/* zn's ZRWA resource, held since a flush filled the zone over ZRWA writes
 * in flight, is free again once they are gone. Caller holds state_lock and
 * the zone lock. */
static void zrwa_release_held(struct zns *z, struct zone *zn)
{
	if (zn->zrwa_held && !zrwa_in_flight(zn)) {
		zn->zrwa_held = 0;
		z->nr_zrwa--;
	}
}

/*
 * Forget writes still in flight (Reset/Finish/Offline): their completions
 * will be ignored, and nobody waits for them any more; one whose data has
 * not started moving never moves it and fails with st (zns_write_start).
 * The zone is listed dirty before the waiters go: a sync they release must
 * snapshot it, and the snapshot waits for the zone lock, so it sees the
 * caller's new state.
 */
static void drop_inflight(struct zns *z, uint32_t i, uint16_t st)
{
	struct zone *zn = &z->zones[i];
	for (struct ns_write *w = zn->inflight; w; w = w->next)
		w->dropped_st = st;
	zn->epoch++;
	zn->inflight = zn->inflight_tail = NULL;
	zrwa_release_held(z, zn);
	set_gapped(z, zn, false);
	if (zn->waiters) {
		mark_dirty(z, i);
		wake_waiters(zn, true);
	}
}

/* ---- I/O checks (ZNS 3.4.4 Write, 3.4.5 Write Zeroes, 3.4.6 Zone Append) ---- */

uint16_t zns_read_check(struct zns *z, uint64_t slba, uint32_t nlb)
{
	uint64_t n = zns_nlbas(z);
	if (!nlb || slba >= n || nlb > n - slba)
		return nvme_err(NVME_SC_LBA_RANGE);
	uint32_t first = zns_zone_of(z, slba), last = zns_zone_of(z, slba + nlb - 1);
	if (first != last && !z->g.cross_zone_read)
		return nvme_cmd_err(NVME_SC_ZNS_BOUNDARY_ERROR);
	/* Reads of an offline zone fail (ZNS 2.1.1.7); every other state reads. */
	for (uint32_t i = first; i <= last; i++)
		if (__atomic_load_n(&z->zones[i].state, __ATOMIC_RELAXED) == S_OFFLINE)
			return nvme_cmd_err(NVME_SC_ZNS_OFFLINE);
	return 0;
}

static uint16_t state_write_error(uint8_t s)
{
	switch (s) {
	case S_FULL: return nvme_cmd_err(NVME_SC_ZNS_FULL);
	case S_RO: return nvme_cmd_err(NVME_SC_ZNS_READ_ONLY);
	case S_OFFLINE: return nvme_cmd_err(NVME_SC_ZNS_OFFLINE);
	default: return 0;
	}
}

/*
 * Range checks that need the zone's write pointer. Caller holds the zone lock.
 * For Zone Append the LBA is the write pointer; for Write it must equal it.
 */
static uint16_t write_range_check(struct zns *z, struct zone *zn, uint32_t i,
				  enum ns_write_kind kind, uint64_t slba, uint32_t nlb)
{
	uint16_t st = state_write_error(zn->state);
	if (st)
		return st;
	if (zn->flags & ZONE_F_UNDURABLE)
		return __atomic_load_n(&z->undurable_st, __ATOMIC_RELAXED);
	uint64_t end = zns_zslba(z, i) + z->g.zone_cap;
	if (kind == NS_ZONE_APPEND) {
		/* ZRWA: Zone Append is an Invalid Zone Operation Request. */
		if (has_zrwa(zn))
			return nvme_cmd_err(NVME_SC_ZNS_INVALID_OP_REQUEST);
		if (nlb > end - zn->wp)
			return nvme_cmd_err(NVME_SC_ZNS_BOUNDARY_ERROR);
		return 0;
	}
	if (has_zrwa(zn)) {
		/* ZRWA: anywhere in the window [wp, wp + ZRWAS) or the Implicit
		 * ZRWA Flush Range above it (as large again). */
		if (slba < zn->wp || slba - zn->wp >= 2ull * z->g.zrwa_lbas ||
		    nlb > zn->wp + 2ull * z->g.zrwa_lbas - slba)
			return nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE);
		if (slba >= end || nlb > end - slba)
			return nvme_cmd_err(NVME_SC_ZNS_BOUNDARY_ERROR);
		return 0;
	}
	if (slba != zn->wp)
		return nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE);
	if (nlb > end - slba)
		return nvme_cmd_err(NVME_SC_ZNS_BOUNDARY_ERROR);
	return 0;
}

/* Put w on zone i's in-flight list. Caller holds the zone lock. */
static void track(struct zone *zn, uint32_t i, struct ns_write *w)
{
	w->zone = i;
	w->epoch = zn->epoch;
	w->next = NULL;
	w->prev = zn->inflight_tail;
	if (zn->inflight_tail)
		zn->inflight_tail->next = w;
	else
		zn->inflight = w;
	zn->inflight_tail = w;
}

/* Reserve [wp, wp + nlb) for w. Caller holds the zone lock; range checked. */
static void reserve(struct zone *zn, uint32_t i, struct ns_write *w)
{
	w->slba = zn->wp;
	track(zn, i, w);
	zn->wp += w->nlb;
}

/*
 * The written prefix: it ends where the oldest write still in flight starts
 * (writes take LBAs in order), or, when ZRWA writes are in flight, at the
 * lowest LBA any of them writes - never above the write pointer. Caller
 * holds the zone lock.
 */
static uint64_t written_prefix(struct zone *zn)
{
	if (!zn->inflight) {
		zn->flags &= (uint8_t)~ZONE_F_UNORDERED;
		return zn->wp;
	}
	if (!(zn->flags & ZONE_F_UNORDERED))
		return zn->inflight->slba;
	uint64_t lo = zn->wp;
	for (const struct ns_write *w = zn->inflight; w; w = w->next)
		if (w->slba < lo)
			lo = w->slba;
	return lo;
}

static void settle_prefix(struct zns *z, uint32_t i);

/*
 * Flush nlb blocks of zone i's ZRWA (explicit, or implicit by a write past
 * the window): the write pointer moves up by nlb, at most to the end of the
 * capacity, which makes the zone Full (and releases its ZRWA). A sync after
 * this waits until the writes in flight below the new write pointer ended
 * (wp_ended is the target), so that the flush it acknowledges is durable
 * whole. Caller holds state_lock and the zone lock.
 */
static void zrwa_advance(struct zns *z, uint32_t i, uint64_t nlb)
{
	struct zone *zn = &z->zones[i];
	uint64_t end = zns_zslba(z, i) + z->g.zone_cap, from = zn->wp;
	zn->wp = nlb < end - zn->wp ? zn->wp + nlb : end;
	if (zn->wp_ended < zn->wp)
		zn->wp_ended = zn->wp;
	if (zn->wp == end) {
		set_state(z, i, S_FULL);
		/* Until the writes in flight in the window end, the zone's
		 * record stays open with its ZRWA (zns_snapshot): a power cut
		 * brings it back so, and its resource must still be there. */
		if (zrwa_in_flight(zn)) {
			zn->zrwa_held = (uint16_t)(1 + (from - zns_zslba(z, i)) % z->g.zrwa_fg);
			z->nr_zrwa++;
		}
	}
	mark_dirty(z, i);
	settle_prefix(z, i);
}

/*
 * A write into zone i's ZRWA: it takes no LBAs from the write pointer and
 * may overwrite what the window holds. One that ends past the window
 * flushes implicitly: the write pointer moves up by the fewest multiples
 * of ZRWAFG that put the write's end inside the window again. Caller holds
 * state_lock and the zone lock; range checked.
 */
static void zrwa_write(struct zns *z, uint32_t i, struct ns_write *w)
{
	struct zone *zn = &z->zones[i];
	w->zrwa = 1;
	track(zn, i, w);
	zn->flags |= ZONE_F_UNORDERED;
	uint64_t wend = w->slba + w->nlb, zend = zn->wp + z->g.zrwa_lbas;
	if (wend > zend) {
		uint64_t fg = z->g.zrwa_fg;
		zrwa_advance(z, i, (wend - zend + fg - 1) / fg * fg);
	}
}

uint16_t zns_write_begin(struct zns *z, struct ns_write *w, enum ns_write_kind kind,
			 uint64_t slba, uint32_t nlb)
{
	uint64_t n = zns_nlbas(z);
	w->kind = (uint8_t)kind;
	w->nlb = nlb;
	w->failed = NS_WRITE_OK;
	w->zrwa = 0;
	w->data = NS_DATA_WAITING;
	w->dropped_st = 0;
	if (!nlb || slba >= n || nlb > n - slba)
		return nvme_err(NVME_SC_LBA_RANGE);
	uint32_t i = zns_zone_of(z, slba);
	struct zone *zn = &z->zones[i];
	if (kind == NS_ZONE_APPEND) {
		/* ZNS 3.4.6: SLBA must be the zone's start; size within ZASL. */
		if (slba != zns_zslba(z, i))
			return nvme_err(NVME_SC_INVALID_FIELD);
		if (nlb > z->g.zasl_nlb)
			return nvme_err(NVME_SC_INVALID_FIELD);
	}

	/* Fast path: already open, no ZRWA (a flush may change the zone's
	 * state), and this write does not fill the zone. */
	pthread_mutex_lock(&zn->lock);
	if (is_open(zn->state) && !has_zrwa(zn)) {
		uint16_t st = write_range_check(z, zn, i, kind, slba, nlb);
		if (st) {
			pthread_mutex_unlock(&zn->lock);
			return st;
		}
		if (zn->wp + nlb < zns_zslba(z, i) + z->g.zone_cap) {
			w->prior = zn->state;
			reserve(zn, i, w);
			pthread_mutex_unlock(&zn->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&zn->lock);

	/* Slow path: a state transition (implicit open, or full). */
	pthread_mutex_lock(&z->state_lock);
	pthread_mutex_lock(&zn->lock);
	uint16_t st = write_range_check(z, zn, i, kind, slba, nlb);
	w->prior = zn->state;
	if (!st && !is_open(zn->state)) {
		/* Empty or Closed: implicit open (ZNS 2.1.1.4.1). */
		st = open_resources(z, i, zn->state);
		if (!st)
			set_state(z, i, S_IOPEN);
	}
	if (!st && has_zrwa(zn)) {
		w->slba = slba;
		zrwa_write(z, i, w);
	} else if (!st) {
		reserve(zn, i, w);
		if (zn->wp == zns_zslba(z, i) + z->g.zone_cap)
			set_state(z, i, S_FULL);
	}
	pthread_mutex_unlock(&zn->lock);
	pthread_mutex_unlock(&z->state_lock);
	return st;
}

/* Take w off its zone's in-flight list. Caller holds the zone lock. */
static void unlink_write(struct zone *zn, struct ns_write *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		zn->inflight = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		zn->inflight_tail = w->prev;
}

/*
 * After w left the in-flight list (written: its range now holds data): the
 * written prefix ends where the oldest write still in flight starts.
 */
static void settle(struct zns *z, uint32_t i, const struct ns_write *w, bool written)
{
	struct zone *zn = &z->zones[i];
	/* A ZRWA write ends inside the window, above the write pointer: only
	 * a flush moves wp_ended (zrwa_advance). */
	if (written && !w->zrwa && w->slba + w->nlb > zn->wp_ended)
		zn->wp_ended = w->slba + w->nlb;
	settle_prefix(z, i);
}

/* Recompute zone i's written prefix; list it for the next commit and wake
 * the syncs waiting for it when it moved. Caller holds the zone lock. */
static void settle_prefix(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	uint64_t before = zn->wp_done;
	zn->wp_done = written_prefix(zn);
	set_gapped(z, zn, zn->wp_ended > zn->wp_done);
	if (zn->wp_done != before) {
		/* Dirty first: a sync released here must find the zone in its
		 * snapshot (which waits for this lock, so it sees wp_done). */
		mark_dirty(z, i);
		wake_waiters(zn, false);
	}
}

/*
 * w failed and was the zone's newest reservation: the write pointer goes
 * back to w's start and the zone to the state w found it in (zone.h).
 * Caller holds state_lock and the zone lock.
 */
static void give_back(struct zns *z, uint32_t i, const struct ns_write *w)
{
	struct zone *zn = &z->zones[i];
	uint64_t zslba = zns_zslba(z, i);
	zn->wp = w->slba;
	if (zn->state == S_FULL && !(zn->flags & ZONE_F_FINISHED)) {
		/* Implicitly opened and filled by writes that left nothing:
		 * Empty again at once. That needs no resource, so it must not
		 * wait on one (nor close another zone to make room). */
		if (w->prior != S_EOPEN && holds_nothing(z, i) && !zn->inflight) {
			set_state(z, i, S_EMPTY);
			return;
		}
		/* w filled the zone. Full holds no open or active resource:
		 * reopening takes them again (Full counts like Empty here). */
		if (!open_resources(z, i, S_EMPTY)) {
			set_state(z, i, w->prior == S_EOPEN ? S_EOPEN : S_IOPEN);
		} else {
			/* No room any more: Zone Finished by Controller. The
			 * older writes stay in flight with their LBAs below
			 * w's (which the caller zeroed): their blocks read as
			 * zeros until they land, a Reset fences them, a sync
			 * waits for them (the zone is gapped), and the zone
			 * is recorded Full only then (zns_snapshot). */
			zn->wp = zn->wp_ended = zslba + z->g.zone_cap;
			zn->flags |= ZONE_F_FINISHED;
			zn->za |= NVME_ZNS_ZA_ZFC;
			mark_dirty(z, i);
			return;
		}
	}
	/* Opened by writes that left nothing: Empty again, as Close would
	 * (or, when the host closed it meanwhile, as that Close would have
	 * had the writes never been given LBAs). */
	if ((zn->state == S_IOPEN || zn->state == S_CLOSED) && holds_nothing(z, i) &&
	    !zn->inflight)
		set_state(z, i, S_EMPTY);
}

void zns_write_fail(struct zns *z, struct ns_write *w)
{
	uint32_t i = w->zone;
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&z->state_lock); /* giving back may change the zone's state */
	pthread_mutex_lock(&zn->lock);
	w->failed = NS_WRITE_KEPT; /* under the lock: read_run() reads it */
	/* A ZRWA write took no LBAs from the write pointer: nothing to give
	 * back (a flush it caused stays, as the window's blocks it covered
	 * hold what they held). */
	if (w->epoch == zn->epoch && !w->zrwa && w->slba + w->nlb == zn->wp) {
		w->failed = NS_WRITE_GIVEN_BACK;
		unlink_write(zn, w);
		give_back(z, i, w);
		if (w->epoch == zn->epoch)
			settle(z, i, w, false);
	}
	pthread_mutex_unlock(&zn->lock);
	pthread_mutex_unlock(&z->state_lock);
}

void zns_write_end(struct zns *z, struct ns_write *w, bool ok)
{
	(void)ok; /* a failed write's range is kept unless given back */
	struct zone *zn = &z->zones[w->zone];
	if (w->failed == NS_WRITE_GIVEN_BACK)
		return;
	pthread_mutex_lock(&zn->lock);
	if (w->epoch == zn->epoch) {
		unlink_write(zn, w);
		settle(z, w->zone, w, true);
	}
	bool held = zn->zrwa_held;
	pthread_mutex_unlock(&zn->lock);
	/* Rare (a flush filled the zone over this write): the resource count
	 * is state_lock's, taken before the zone lock. */
	if (held) {
		pthread_mutex_lock(&z->state_lock);
		pthread_mutex_lock(&zn->lock);
		zrwa_release_held(z, zn);
		pthread_mutex_unlock(&zn->lock);
		pthread_mutex_unlock(&z->state_lock);
	}
}

/* ---- Zone Management Send (ZNS 3.4.3) ---- */

/*
 * ZRWA Allocation with Open or Set Zone Descriptor Extension: only an Empty
 * zone gets a ZRWA (Invalid Zone Operation Request otherwise), and only while
 * fewer zones than NUMZRWA hold one (ZRWA Resources Unavailable). Caller
 * holds state_lock and the zone's lock.
 */
static uint16_t zrwa_allocatable(struct zns *z, uint32_t i)
{
	if (z->zones[i].state != S_EMPTY)
		return nvme_cmd_err(NVME_SC_ZNS_INVALID_OP_REQUEST);
	if (z->g.nr_zrwa && z->nr_zrwa >= z->g.nr_zrwa)
		return nvme_cmd_err(NVME_SC_ZNS_ZRWA_RESOURCES_UNAVAILABLE);
	return 0;
}

static void zrwa_allocate(struct zns *z, uint32_t i)
{
	z->zones[i].za |= NVME_ZNS_ZA_ZRWAV;
	z->nr_zrwa++;
	mark_dirty(z, i);
}

/*
 * Flush Explicit ZRWA Range (Zone Management Send action 11h): the write
 * pointer moves up to elba + 1. elba must lie in the window, and the blocks
 * flushed must be a multiple of ZRWAFG (Invalid Field). A Closed zone is
 * opened implicitly, as a write to it would. Caller holds state_lock and
 * the zone's lock.
 */
static uint16_t zrwa_flush(struct zns *z, uint32_t i, uint64_t elba)
{
	struct zone *zn = &z->zones[i];
	if (!has_zrwa(zn))
		return nvme_cmd_err(NVME_SC_ZNS_INVALID_OP_REQUEST);
	if (elba < zn->wp || elba - zn->wp >= z->g.zrwa_lbas ||
	    elba >= zns_zslba(z, i) + z->g.zone_cap)
		return nvme_cmd_err(NVME_SC_ZNS_BOUNDARY_ERROR);
	uint64_t nlb = elba - zn->wp + 1;
	if (nlb % z->g.zrwa_fg)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (!is_open(zn->state)) {
		uint16_t st = open_resources(z, i, zn->state);
		if (st)
			return st;
		set_state(z, i, S_IOPEN);
	}
	zrwa_advance(z, i, nlb);
	return 0;
}

/* One action on one zone (zrwaa: with ZRWA Allocation). Caller holds
 * state_lock and the zone's lock. */
static uint16_t zone_action(struct zns *z, uint32_t i, uint8_t zsa, bool zrwaa, const void *zde)
{
	struct zone *zn = &z->zones[i];
	uint64_t zslba = zns_zslba(z, i);
	uint8_t s = zn->state;
	uint16_t st;

	if (zrwaa && (st = zrwa_allocatable(z, i)))
		return st;
	switch (zsa) {
	case NVME_ZNS_ZSA_OPEN: /* 3.4.3.1.3 */
		if (s == S_EOPEN)
			return 0;
		if (s != S_EMPTY && s != S_IOPEN && s != S_CLOSED)
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		st = open_resources(z, i, s);
		if (st)
			return st;
		set_state(z, i, S_EOPEN);
		if (zrwaa)
			zrwa_allocate(z, i);
		return 0;
	case NVME_ZNS_ZSA_CLOSE: /* 3.4.3.1.1 */
		if (s == S_CLOSED)
			return 0;
		if (!is_open(s))
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		/* An open zone with nothing written goes back to Empty
		 * (Figure 7: ZSIO/ZSEO -> ZSE when the write pointer is at
		 * the start and no extension is valid). A zone keeps its
		 * ZRWA while Closed. */
		set_state(z, i, holds_nothing(z, i) ? S_EMPTY : S_CLOSED);
		return 0;
	case NVME_ZNS_ZSA_FINISH: /* 3.4.3.1.2 */
		/* Full with writes still in flight (they filled it, or the
		 * controller finished it over them): its record still says
		 * open at the written prefix (zns_snapshot), so the Finish
		 * must act - drop them, as it drops those of an open zone -
		 * or its acknowledgement would vouch for a Full zone that a
		 * power cut brings back open. The caller erased their
		 * blocks (zns_zone_in_flight). */
		if (s == S_FULL && !zn->inflight)
			return 0;
		if (s == S_EMPTY) {
			if (z->g.max_active && z->nr_active >= z->g.max_active)
				return nvme_cmd_err(NVME_SC_ZNS_TOO_MANY_ACTIVE);
		} else if (!is_active(s) && s != S_FULL) {
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		}
		drop_inflight(z, i, nvme_cmd_err(NVME_SC_ZNS_FULL));
		zn->wp = zn->wp_done = zn->wp_ended = zslba + z->g.zone_cap;
		set_state(z, i, S_FULL);
		zn->flags |= ZONE_F_FINISHED;
		/* From Full, set_state() changes nothing and lists nothing,
		 * while the record may still say open at the written prefix
		 * (a commit took it since the writes filled the zone). */
		mark_dirty(z, i);
		return 0;
	case NVME_ZNS_ZSA_RESET: /* 3.4.3.1.4 */
		if (s == S_RO || s == S_OFFLINE)
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		drop_inflight(z, i, nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE));
		zn->wp = zn->wp_done = zn->wp_ended = zslba;
		if (zn->za & NVME_ZNS_ZA_ZDEV) {
			zn->za &= (uint8_t)~NVME_ZNS_ZA_ZDEV;
			memset(z->zde + (size_t)i * z->g.zde_size, 0, z->g.zde_size);
			zn->flags |= ZONE_F_ZDE_DIRTY;
		}
		zn->za &= (uint8_t)~(NVME_ZNS_ZA_ZFC | NVME_ZNS_ZA_FZR | NVME_ZNS_ZA_RZR);
		set_state(z, i, S_EMPTY);
		mark_dirty(z, i);
		return 0;
	case NVME_ZNS_ZSA_OFFLINE: /* 3.4.3.1.5: only from Read Only */
		if (s == S_OFFLINE)
			return 0;
		if (s != S_RO)
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		drop_inflight(z, i, nvme_cmd_err(NVME_SC_ZNS_OFFLINE));
		zn->za &= (uint8_t)~NVME_ZNS_ZA_ZDEV;
		set_state(z, i, S_OFFLINE);
		return 0;
	case NVME_ZNS_ZSA_SET_DESC_EXT: /* 3.4.3.1.6: Empty -> Closed, ZDEV */
		if (!z->g.zde_size)
			return nvme_err(NVME_SC_INVALID_FIELD);
		if (s != S_EMPTY)
			return nvme_cmd_err(NVME_SC_ZNS_INVAL_TRANSITION);
		if (z->g.max_active && z->nr_active >= z->g.max_active)
			return nvme_cmd_err(NVME_SC_ZNS_TOO_MANY_ACTIVE);
		memcpy(z->zde + (size_t)i * z->g.zde_size, zde, z->g.zde_size);
		zn->za |= NVME_ZNS_ZA_ZDEV;
		zn->flags |= ZONE_F_ZDE_DIRTY;
		set_state(z, i, S_CLOSED);
		if (zrwaa)
			zrwa_allocate(z, i);
		return 0;
	default:
		return nvme_err(NVME_SC_INVALID_FIELD);
	}
}

/*
 * Select All (ZNS 3.4.3.1): which zones an action applies to. Zones in other
 * states are skipped, not errors.
 */
bool zns_select_all_applies(uint8_t zsa, uint8_t s)
{
	switch (zsa) {
	case NVME_ZNS_ZSA_OPEN: return s == S_CLOSED;
	case NVME_ZNS_ZSA_CLOSE: return is_open(s);
	case NVME_ZNS_ZSA_FINISH: return is_active(s);
	case NVME_ZNS_ZSA_RESET: return is_active(s) || s == S_FULL;
	case NVME_ZNS_ZSA_OFFLINE: return s == S_RO;
	default: return false;
	}
}

static uint16_t select_all(struct zns *z, uint8_t zsa)
{
	if (zsa == NVME_ZNS_ZSA_SET_DESC_EXT)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zsa != NVME_ZNS_ZSA_OPEN && zsa != NVME_ZNS_ZSA_CLOSE && zsa != NVME_ZNS_ZSA_FINISH &&
	    zsa != NVME_ZNS_ZSA_RESET && zsa != NVME_ZNS_ZSA_OFFLINE)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zsa == NVME_ZNS_ZSA_OPEN && z->g.max_open) {
		/* Opening every closed zone must fit in the open limit as a
		 * whole (closed zones are already active); implicitly opened
		 * zones may be closed to make room. */
		uint32_t closed = 0, iopen = 0;
		for (uint32_t i = 0; i < z->g.nr_zones; i++) {
			closed += z->zones[i].state == S_CLOSED;
			iopen += z->zones[i].state == S_IOPEN;
		}
		if (z->nr_open - iopen + closed > z->g.max_open)
			return nvme_cmd_err(NVME_SC_ZNS_TOO_MANY_OPENS);
	}
	/* Open acts on the zones Closed when it began, not on those it closes
	 * itself to make room (ensure_open_slot): marked first. No zone
	 * leaves Closed meanwhile: that takes state_lock, which we hold. */
	if (zsa == NVME_ZNS_ZSA_OPEN)
		for (uint32_t i = 0; i < z->g.nr_zones; i++) {
			struct zone *zn = &z->zones[i];
			pthread_mutex_lock(&zn->lock);
			if (zn->state == S_CLOSED)
				zn->flags |= ZONE_F_SELECTED;
			pthread_mutex_unlock(&zn->lock);
		}
	uint16_t st = 0;
	for (uint32_t i = 0; i < z->g.nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		pthread_mutex_lock(&zn->lock);
		bool applies = zns_select_all_applies(zsa, zn->state) &&
			       (zsa != NVME_ZNS_ZSA_OPEN || (zn->flags & ZONE_F_SELECTED));
		zn->flags &= (uint8_t)~ZONE_F_SELECTED;
		if (!st && applies)
			st = zone_action(z, i, zsa, false, NULL);
		pthread_mutex_unlock(&zn->lock);
	}
	return st;
}

static uint16_t mgmt_send(struct zns *z, uint64_t slba, uint8_t zsa, bool all, bool zrwaa,
			  const void *zde)
{
	uint16_t st;
	/* ZRWA Flush names any LBA of the zone, and never every zone. */
	bool flush = zsa == NVME_ZNS_ZSA_ZRWA_FLUSH;
	pthread_mutex_lock(&z->state_lock);
	if (all) {
		st = flush ? nvme_err(NVME_SC_INVALID_FIELD) : select_all(z, zsa);
	} else if (slba >= zns_nlbas(z)) {
		st = nvme_err(NVME_SC_LBA_RANGE);
	} else if (!flush && (slba & (z->g.zone_size - 1))) {
		st = nvme_err(NVME_SC_INVALID_FIELD); /* not a zone start */
	} else {
		uint32_t i = zns_zone_of(z, slba);
		pthread_mutex_lock(&z->zones[i].lock);
		st = flush ? zrwa_flush(z, i, slba) : zone_action(z, i, zsa, zrwaa, zde);
		pthread_mutex_unlock(&z->zones[i].lock);
	}
	pthread_mutex_unlock(&z->state_lock);
	return st;
}

uint16_t zns_mgmt_fenced(struct zns *z, uint32_t i, uint8_t zsa, bool all, bool erased)
{
	struct zone *zn = &z->zones[i];
	uint16_t st = 0;
	pthread_mutex_lock(&z->state_lock);
	pthread_mutex_lock(&zn->lock);
	if (!all || (zns_select_all_applies(zsa, zn->state) &&
		     (zsa != NVME_ZNS_ZSA_FINISH || erased)))
		st = zone_action(z, i, zsa, false, NULL);
	pthread_mutex_unlock(&zn->lock);
	pthread_mutex_unlock(&z->state_lock);
	return st;
}

uint16_t zns_mgmt_send(struct zns *z, uint64_t slba, uint8_t zsa, bool all, const void *zde)
{
	return mgmt_send(z, slba, zsa, all, false, zde);
}

uint16_t zns_mgmt_send_zrwaa(struct zns *z, uint64_t slba, uint8_t zsa, const void *zde)
{
	/* ZRWAA means something only to these two actions, and only where a
	 * ZRWA exists (else it is a reserved bit set). */
	if (!z->g.zrwa_lbas || (zsa != NVME_ZNS_ZSA_OPEN && zsa != NVME_ZNS_ZSA_SET_DESC_EXT))
		return nvme_err(NVME_SC_INVALID_FIELD);
	return mgmt_send(z, slba, zsa, false, true, zde);
}

/* Caller holds the zone lock. */
static uint64_t readable_end(const struct zns *z, uint32_t i)
{
	const struct zone *zn = &z->zones[i];
	uint64_t end = zns_zslba(z, i) + z->g.zone_cap;
	if (!has_zrwa(zn))
		return zn->wp;
	return z->g.zrwa_lbas < end - zn->wp ? zn->wp + z->g.zrwa_lbas : end;
}

uint64_t zns_zone_readable(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	uint64_t r = readable_end(z, i);
	pthread_mutex_unlock(&zn->lock);
	return r;
}

/*
 * zns_read_run() for zone i, lba < end <= the zone's end (zone.h has the
 * rule). Reads below the written prefix - nearly all - decide with a
 * few comparisons; only a read of blocks reserved by writes not all ended
 * walks the in-flight list. Plain writes take their LBAs from the write
 * pointer in turn and never overlap, so the list holds them in LBA order
 * (ZRWA writes, skipped, are the only ones out of it). A failed write that
 * keeps its range is skipped too: its blocks were zeroed before
 * zns_write_fail() marked it (ns_write_data), so they read now as they
 * will once it ends (zeros, or undefined when zeroing failed too). Caller
 * holds the zone lock.
 */
static uint64_t read_run(const struct zns *z, uint32_t i, uint64_t lba, uint64_t end, bool *file)
{
	const struct zone *zn = &z->zones[i];
	uint64_t readable = readable_end(z, i);
	*file = lba < readable;
	if (!*file)
		return end;
	if (end > readable)
		end = readable;
	if (end <= zn->wp_done)
		return end;
	/* No write in flight starts below wp_done, so none covers a block
	 * below it: a run from there reads from the file up to the first. */
	for (const struct ns_write *w = zn->inflight; w; w = w->next) {
		if (w->zrwa || w->failed == NS_WRITE_KEPT || w->slba + w->nlb <= lba)
			continue;
		if (w->slba >= end)
			break;
		if (w->slba > lba)
			return w->slba;
		*file = false;
		return w->slba + w->nlb < end ? w->slba + w->nlb : end;
	}
	return end;
}

uint64_t zns_read_run(struct zns *z, uint64_t lba, uint64_t end, bool *file)
{
	uint32_t i = zns_zone_of(z, lba);
	struct zone *zn = &z->zones[i];
	uint64_t zend = zns_zslba(z, i) + z->g.zone_size;
	pthread_mutex_lock(&zn->lock);
	uint64_t r = read_run(z, i, lba, end < zend ? end : zend, file);
	pthread_mutex_unlock(&zn->lock);
	return r;
}

/* ---- Zone Management Receive (ZNS 3.4.2) ---- */

static bool report_matches(uint8_t zrasf, uint8_t s)
{
	switch (zrasf) {
	case NVME_ZNS_ZRAS_REPORT_ALL: return true;
	case NVME_ZNS_ZRAS_REPORT_EMPTY: return s == S_EMPTY;
	case NVME_ZNS_ZRAS_REPORT_IMPL_OPENED: return s == S_IOPEN;
	case NVME_ZNS_ZRAS_REPORT_EXPL_OPENED: return s == S_EOPEN;
	case NVME_ZNS_ZRAS_REPORT_CLOSED: return s == S_CLOSED;
	case NVME_ZNS_ZRAS_REPORT_FULL: return s == S_FULL;
	case NVME_ZNS_ZRAS_REPORT_READ_ONLY: return s == S_RO;
	case NVME_ZNS_ZRAS_REPORT_OFFLINE: return s == S_OFFLINE;
	default: return false;
	}
}

static void fill_desc(struct zns *z, uint32_t i, struct nvme_zns_desc *d)
{
	struct zone *zn = &z->zones[i];
	uint64_t zslba = zns_zslba(z, i);
	memset(d, 0, sizeof(*d));
	d->zt = NVME_ZONE_TYPE_SEQWRITE_REQ;
	d->zs = (uint8_t)(zn->state << 4);
	d->za = zn->za;
	d->zcap = htole64(z->g.zone_cap);
	d->zslba = htole64(zslba);
	/* The write pointer is not valid in Full, Read Only and Offline
	 * (ZNS 3.4.2.2.3): report the end of the capacity / all ones. */
	uint64_t wp = zn->wp;
	if (zn->state == S_FULL)
		wp = zslba + z->g.zone_cap;
	else if (zn->state == S_OFFLINE || zn->state == S_RO)
		wp = UINT64_MAX;
	d->wp = htole64(wp);
}

uint16_t zns_report(struct zns *z, uint64_t slba, uint8_t zra, uint8_t zrasf, bool partial,
		    void *buf, size_t len)
{
	if (slba >= zns_nlbas(z))
		return nvme_err(NVME_SC_LBA_RANGE);
	if (zra != NVME_ZNS_ZRA_REPORT_ZONES && zra != NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zra == NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES && !z->g.zde_size)
		return nvme_err(NVME_SC_INVALID_FIELD);
	if (zrasf > NVME_ZNS_ZRAS_REPORT_OFFLINE || len < sizeof(struct nvme_zone_report))
		return nvme_err(NVME_SC_INVALID_FIELD);

	size_t esize = sizeof(struct nvme_zns_desc) +
		       (zra == NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES ? z->g.zde_size : 0);
	size_t room = (len - sizeof(struct nvme_zone_report)) / esize;
	uint8_t *out = (uint8_t *)buf + sizeof(struct nvme_zone_report);
	uint64_t matched = 0, copied = 0;

	memset(buf, 0, len);
	/* The report is a snapshot under state_lock: no zone changes state
	 * halfway through it. */
	pthread_mutex_lock(&z->state_lock);
	for (uint32_t i = zns_zone_of(z, slba); i < z->g.nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		pthread_mutex_lock(&zn->lock);
		if (report_matches(zrasf, zn->state)) {
			matched++;
			if (copied < room) {
				fill_desc(z, i, (struct nvme_zns_desc *)out);
				if (esize > sizeof(struct nvme_zns_desc))
					memcpy(out + sizeof(struct nvme_zns_desc),
					       z->zde + (size_t)i * z->g.zde_size, z->g.zde_size);
				out += esize;
				copied++;
			}
		}
		pthread_mutex_unlock(&zn->lock);
		if (partial && copied == room)
			break; /* the rest would not be counted anyway */
	}
	pthread_mutex_unlock(&z->state_lock);
	/* Partial Report: the number of descriptors returned; otherwise the
	 * number of matching zones from slba on (3.4.2.2). */
	((struct nvme_zone_report *)buf)->nr_zones = htole64(partial ? copied : matched);
	return 0;
}

uint16_t zns_changed_zones(struct zns *z, uint64_t *seen, uint64_t *zids, uint16_t max)
{
	uint32_t n = 0;
	pthread_mutex_lock(&z->state_lock);
	for (uint32_t i = 0; *seen < z->changed_gen && i < z->g.nr_zones; i++)
		if (z->changed_gen_of[i] > *seen) {
			if (n < max)
				zids[n] = zns_zslba(z, i);
			n++;
		}
	*seen = z->changed_gen;
	pthread_mutex_unlock(&z->state_lock);
	return n > max ? 0xffff : (uint16_t)n;
}

bool zns_has_changed_zones(struct zns *z, uint64_t seen)
{
	pthread_mutex_lock(&z->state_lock);
	bool any = z->changed_gen > seen;
	pthread_mutex_unlock(&z->state_lock);
	return any;
}

/* ---- durable side ---- */

bool zns_wait_gap(struct zns *z, uint32_t i, struct zone_waiter *zw)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	bool gap = zn->wp_ended > zn->wp_done;
	if (gap) {
		zw->target = zn->wp_ended;
		zw->next = zn->waiters;
		zn->waiters = zw;
	}
	pthread_mutex_unlock(&zn->lock);
	return gap;
}

/* Wait on scrub_cond for zone i's state to change: the changer wakes the
 * waiters only when one said it waits (ZONE_F_WAITED), so that Select All
 * passing over many zones wakes nobody it need not. Caller holds the lock. */
static void wait_zone(struct zns *z, struct zone *zn)
{
	zn->flags |= ZONE_F_WAITED;
	pthread_cond_wait(&z->scrub_cond, &zn->lock);
}

static void wake_zone(struct zns *z, struct zone *zn)
{
	if (zn->flags & ZONE_F_WAITED) {
		zn->flags &= (uint8_t)~ZONE_F_WAITED;
		pthread_cond_broadcast(&z->scrub_cond);
	}
}

/* Run fn on [lba, lba + nlb) of zn without its lock, which the caller
 * holds; writes given ranges meanwhile wait in zns_write_start(). */
static int scrub(struct zns *z, struct zone *zn, uint64_t lba, uint64_t nlb,
		 int (*fn)(void *ctx, uint64_t lba, uint64_t nlb), void *ctx)
{
	zn->scrubbing++;
	pthread_mutex_unlock(&zn->lock);
	int rc = fn(ctx, lba, nlb);
	pthread_mutex_lock(&zn->lock);
	if (--zn->scrubbing == 0)
		wake_zone(z, zn);
	pthread_mutex_unlock(&zn->lock);
	return rc;
}

int zns_on_failed(struct zns *z, const struct ns_write *w,
		  int (*fn)(void *ctx, uint64_t lba, uint64_t nlb), void *ctx)
{
	struct zone *zn = &z->zones[w->zone];
	pthread_mutex_lock(&zn->lock);
	if (w->epoch != zn->epoch) {
		pthread_mutex_unlock(&zn->lock);
		return 0; /* a Reset (or Finish) dropped w: the range is not its own */
	}
	return scrub(z, zn, w->slba, w->nlb, fn, ctx);
}

/*
 * The next range of zone i from lo on that zns_erase_unwritten() erases:
 * the first write in flight whose data has not landed that ends above lo -
 * plain writes are listed in LBA order, ZRWA writes write into blocks the
 * window already erased - or, after them, everything from
 * zns_zone_readable() on. Sets *last for that
 * final range; returns false when there is nothing left. Caller holds the
 * zone lock.
 */
static bool next_unwritten(const struct zns *z, uint32_t i, uint64_t lo, uint64_t *a,
			   uint64_t *b, bool *last)
{
	const struct zone *zn = &z->zones[i];
	uint64_t readable = readable_end(z, i);
	for (const struct ns_write *w = zn->inflight; w; w = w->next) {
		if (w->zrwa || w->data == NS_DATA_LANDED || w->slba + w->nlb <= lo ||
		    w->slba >= readable)
			continue;
		*a = w->slba > lo ? w->slba : lo;
		*b = w->slba + w->nlb;
		*last = false;
		return true;
	}
	*a = readable > lo ? readable : lo;
	*b = zns_zslba(z, i) + z->g.zone_size;
	*last = true;
	return *a < *b;
}

int zns_erase_unwritten(struct zns *z, uint32_t i,
			int (*fn)(void *ctx, uint64_t lba, uint64_t nlb), void *ctx)
{
	struct zone *zn = &z->zones[i];
	uint64_t lo = zns_zslba(z, i), a, b;
	bool last = false;
	/* Range by range in LBA order: a write given LBAs meanwhile takes
	 * them at the write pointer, above lo, and is found in its turn (or
	 * lies in the final range). */
	while (!last) {
		pthread_mutex_lock(&zn->lock);
		if (!next_unwritten(z, i, lo, &a, &b, &last)) {
			pthread_mutex_unlock(&zn->lock);
			return 0;
		}
		int rc = scrub(z, zn, a, b - a, fn, ctx);
		if (rc)
			return rc;
		lo = b;
	}
	return 0;
}

void zns_fence(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	while (zn->flags & ZONE_F_FENCED)
		wait_zone(z, zn);
	zn->flags |= ZONE_F_FENCED;
	while (zn->running)
		wait_zone(z, zn);
	pthread_mutex_unlock(&zn->lock);
}

void zns_unfence(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	zn->flags &= (uint8_t)~ZONE_F_FENCED;
	wake_zone(z, zn);
	pthread_mutex_unlock(&zn->lock);
}

void zns_set_undurable(struct zns *z, uint32_t i, uint16_t st)
{
	struct zone *zn = &z->zones[i];
	__atomic_store_n(&z->undurable_st, st, __ATOMIC_RELAXED);
	pthread_mutex_lock(&z->state_lock); /* giving back may change the zone's state */
	pthread_mutex_lock(&zn->lock);
	zn->flags |= ZONE_F_UNDURABLE;
	if (zn->inflight) {
		/* Writes given LBAs since the Reset, none of which has moved
		 * data (the fence held them): dropped, and the write pointer
		 * back at the start. What the host did to the zone meanwhile
		 * without writing stays (an explicit Open, an extension),
		 * but a zone those writes opened or filled is closed as Zone
		 * Close closes it (Empty unless it holds an extension). From
		 * Full that takes an active resource for Closed; if none is
		 * left, the zone is reset again instead, extension and all. */
		drop_inflight(z, i, st);
		zn->wp = zn->wp_ended = zn->wp_done; /* the start: nothing landed */
		bool holds = !holds_nothing(z, i);
		if (zn->state == S_FULL && holds && z->g.max_active &&
		    z->nr_active >= z->g.max_active)
			zone_action(z, i, NVME_ZNS_ZSA_RESET, false, NULL);
		else if (zn->state == S_IOPEN || zn->state == S_FULL ||
			 (zn->state == S_CLOSED && !holds))
			set_state(z, i, holds ? S_CLOSED : S_EMPTY);
		mark_dirty(z, i);
	}
	pthread_mutex_unlock(&zn->lock);
	pthread_mutex_unlock(&z->state_lock);
}

bool zns_zone_in_flight(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	bool any = zn->inflight != NULL;
	pthread_mutex_unlock(&zn->lock);
	return any;
}

uint16_t zns_undurable(struct zns *z, uint32_t i)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&zn->lock);
	bool u = zn->flags & ZONE_F_UNDURABLE;
	pthread_mutex_unlock(&zn->lock);
	return u ? __atomic_load_n(&z->undurable_st, __ATOMIC_RELAXED) : 0;
}

void zns_clear_undurable(struct zns *z)
{
	for (uint32_t i = 0; i < z->g.nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		pthread_mutex_lock(&zn->lock);
		zn->flags &= (uint8_t)~ZONE_F_UNDURABLE;
		pthread_mutex_unlock(&zn->lock);
	}
}

uint16_t zns_write_start(struct zns *z, struct ns_write *w)
{
	struct zone *zn = &z->zones[w->zone];
	pthread_mutex_lock(&zn->lock);
	while ((zn->scrubbing || (zn->flags & ZONE_F_FENCED)) && w->epoch == zn->epoch)
		wait_zone(z, zn);
	uint16_t st = w->epoch == zn->epoch ? 0 : w->dropped_st;
	if (!st) {
		w->data = NS_DATA_MOVING;
		zn->running++;
	}
	pthread_mutex_unlock(&zn->lock);
	return st;
}

void zns_write_landed(struct zns *z, struct ns_write *w)
{
	struct zone *zn = &z->zones[w->zone];
	pthread_mutex_lock(&zn->lock);
	if (w->data == NS_DATA_MOVING && --zn->running == 0)
		wake_zone(z, zn);
	w->data = NS_DATA_LANDED;
	pthread_mutex_unlock(&zn->lock);
}

uint32_t zns_take_dirty(struct zns *z)
{
	pthread_mutex_lock(&z->dirty_lock);
	uint32_t head = z->dirty_head;
	z->dirty_head = z->dirty_tail = 0;
	pthread_mutex_unlock(&z->dirty_lock);
	return head;
}

/*
 * The write pointer a record of a zone with a ZRWA keeps, its written
 * prefix being prefix and base a write pointer it had (where it is), or a
 * point on the same granules (where the flush that filled it started,
 * zone.h zrwa_held). The prefix may end inside a
 * granule (at a write in flight below the flushed write pointer), and only
 * flushes move the write pointer, by whole granules (ZRWAFG) from where it
 * is: the record keeps the highest such point at or below the prefix,
 * counted from base - not from the zone start, which a restart with another
 * zrwa_flush_granularity leaves between two granules. That is never below
 * the last record (the prefix only grows while the zone holds its ZRWA, and
 * each write pointer it had meanwhile - where it was allocated or loaded, or
 * a flush left it - is one of those points), no acknowledged flush is undone
 * by it - the one acknowledged last waited for every write below it - and
 * the blocks between stay readable in the window.
 */
static uint64_t zrwa_record_wp(const struct zns *z, uint64_t base, uint64_t prefix)
{
	uint64_t fg = z->g.zrwa_fg;
	return prefix >= base ? base + (prefix - base) / fg * fg
			      : base - (base - prefix + fg - 1) / fg * fg;
}

bool zns_snapshot(struct zns *z, uint32_t *cursor, struct zone_snap *out, uint8_t *zde)
{
	if (!*cursor || *cursor == ZONE_NIL)
		return false;
	uint32_t i = *cursor - 1;
	struct zone *zn = &z->zones[i];
	/* Unlink first: a change after this point lists the zone again. */
	pthread_mutex_lock(&z->dirty_lock);
	*cursor = zn->dirty_next;
	zn->dirty_next = 0;
	pthread_mutex_unlock(&z->dirty_lock);

	pthread_mutex_lock(&zn->lock);
	out->zone = i;
	out->state = zn->state;
	out->za = zn->za;
	out->wp = has_zrwa(zn) ? zrwa_record_wp(z, zn->wp, zn->wp_done) : zn->wp_done;
	out->zde_dirty = zn->flags & ZONE_F_ZDE_DIRTY;
	zn->flags &= (uint8_t)~ZONE_F_ZDE_DIRTY;
	if (out->zde_dirty)
		memcpy(zde, z->zde + (size_t)i * z->g.zde_size, z->g.zde_size);
	/* A Full zone with data still in flight (writes filled it, or the
	 * controller finished it over older writes) is recorded as still
	 * open at the last written LBA: the record must never claim data
	 * that may not be there. A Finish leaves nothing in flight. */
	bool unsettled = zn->state == S_FULL && zn->wp_done < zns_zslba(z, i) + z->g.zone_cap;
	out->finished = zn->state == S_FULL && (zn->flags & ZONE_F_FINISHED) && !unsettled;
	if (unsettled) {
		out->state = S_IOPEN;
		out->za &= (uint8_t)~NVME_ZNS_ZA_ZFC;
	}
	/* A flush filled it over writes still in flight in its window. Open
	 * at the prefix without its ZRWA would put the window's blocks -
	 * acknowledged writes among them - above the write pointer, where
	 * power-up erases them; and no record at all would leave the last
	 * one, below the flushes a sync taken before the zone filled has
	 * acknowledged since. So it is recorded with the ZRWA, whose resource
	 * it holds until the writes end (zrwa_advance). */
	if (unsettled && zn->zrwa_held) {
		out->za |= NVME_ZNS_ZA_ZRWAV;
		out->wp = zrwa_record_wp(z, zns_zslba(z, i) + zn->zrwa_held - 1, zn->wp_done);
	}
	pthread_mutex_unlock(&zn->lock);
	return true;
}

void zns_load(struct zns *z, uint32_t i, uint8_t state, uint8_t za, uint64_t wp)
{
	struct zone *zn = &z->zones[i];
	pthread_mutex_lock(&z->state_lock);
	pthread_mutex_lock(&zn->lock);
	drop_inflight(z, i, nvme_cmd_err(NVME_SC_ZNS_INVALID_WRITE)); /* none: before any I/O */
	zn->wp = zn->wp_done = zn->wp_ended = wp;
	if (has_zrwa(zn))
		z->nr_zrwa--;
	/* A ZRWA only in an active state (set_state's rule). */
	zn->za = is_active(state) ? za : za & (uint8_t)~NVME_ZNS_ZA_ZRWAV;
	if (has_zrwa(zn))
		z->nr_zrwa++;
	set_state(z, i, state);
	if (state == S_FULL && wp == zns_zslba(z, i) + z->g.zone_cap)
		zn->flags &= (uint8_t)~ZONE_F_FINISHED;
	else if (state == S_FULL)
		zn->flags |= ZONE_F_FINISHED;
	pthread_mutex_unlock(&zn->lock);
	pthread_mutex_unlock(&z->state_lock);
}

void zns_mark_all_dirty(struct zns *z)
{
	if (z->g.zde_size) {
		for (uint32_t i = 0; i < z->g.nr_zones; i++) {
			struct zone *zn = &z->zones[i];
			pthread_mutex_lock(&zn->lock);
			zn->flags |= ZONE_F_ZDE_DIRTY;
			pthread_mutex_unlock(&zn->lock);
		}
	}
	/* A list built anew, not mark_dirty() zone by zone: a commit that
	 * failed while snapshotting left the zones it had not reached on its
	 * detached list (dirty_next set), which mark_dirty() would take for
	 * listed - and no later commit would record them. */
	pthread_mutex_lock(&z->dirty_lock);
	for (uint32_t i = 0; i < z->g.nr_zones; i++)
		z->zones[i].dirty_next = i + 1 < z->g.nr_zones ? i + 2 : ZONE_NIL;
	z->dirty_head = 1;
	z->dirty_tail = z->g.nr_zones;
	pthread_mutex_unlock(&z->dirty_lock);
}

/* Zone i for the Changed Zone List. Caller holds state_lock. */
static void note_changed(struct zns *z, uint32_t i)
{
	z->changed_gen_of[i] = ++z->changed_gen;
}

/*
 * The controller moves zone i to Read Only or Offline on its own (ZNS
 * 2.1.1.6, 2.1.1.7). Writes in flight to a zone going Offline are dropped,
 * as Zone Management Send Offline drops them; a zone going Read Only keeps
 * what its writes in flight land. Caller holds state_lock.
 */
static bool force_state(struct zns *z, uint32_t i, uint8_t to)
{
	struct zone *zn = &z->zones[i];
	if (zn->state == to || zn->state == S_OFFLINE)
		return false; /* offline is final */
	pthread_mutex_lock(&zn->lock);
	if (to == S_OFFLINE) {
		drop_inflight(z, i, nvme_cmd_err(NVME_SC_ZNS_OFFLINE));
		zn->za &= (uint8_t)~NVME_ZNS_ZA_ZDEV;
	}
	set_state(z, i, to);
	pthread_mutex_unlock(&zn->lock);
	note_changed(z, i);
	return true;
}

int zns_fail_zone(struct zns *z, uint32_t i, uint8_t to)
{
	if (i >= z->g.nr_zones || (to != S_RO && to != S_OFFLINE))
		return -1;
	pthread_mutex_lock(&z->state_lock);
	uint8_t s = z->zones[i].state;
	int rc = s == to ? 0 : s == S_OFFLINE ? -1 : force_state(z, i, to);
	pthread_mutex_unlock(&z->state_lock);
	return rc;
}

uint32_t zns_power_up(struct zns *z, const uint32_t *offline, uint32_t nr_offline,
		      const uint32_t *readonly, uint32_t nr_readonly)
{
	uint32_t changed = 0;
	pthread_mutex_lock(&z->state_lock);
	/* Open zones close; an open or closed zone with nothing written (and
	 * no valid extension) goes back to Empty, as drive firmware does. A
	 * zone can be closed with nothing written when its only writes were
	 * still in flight at the crash. */
	for (uint32_t i = 0; i < z->g.nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		if (!is_active(zn->state))
			continue;
		pthread_mutex_lock(&zn->lock);
		uint8_t to = holds_nothing(z, i) ? S_EMPTY : S_CLOSED;
		if (to != zn->state)
			changed++;
		set_state(z, i, to);
		pthread_mutex_unlock(&zn->lock);
	}
	/* Over the active limit (the configuration lowered it, or zones were
	 * opened past it before): finish the excess, highest zones first. */
	for (uint32_t i = z->g.nr_zones; i-- > 0 && z->g.max_active &&
					  z->nr_active > z->g.max_active;) {
		struct zone *zn = &z->zones[i];
		if (zn->state != S_CLOSED)
			continue;
		pthread_mutex_lock(&zn->lock);
		zn->wp = zn->wp_done = zn->wp_ended = zns_zslba(z, i) + z->g.zone_cap;
		set_state(z, i, S_FULL);
		zn->flags |= ZONE_F_FINISHED;
		zn->za |= NVME_ZNS_ZA_ZFC; /* Zone Finished by Controller */
		pthread_mutex_unlock(&zn->lock);
		changed++;
	}
	for (uint32_t k = 0; k < nr_readonly; k++)
		if (readonly[k] < z->g.nr_zones)
			changed += force_state(z, readonly[k], S_RO);
	for (uint32_t k = 0; k < nr_offline; k++)
		if (offline[k] < z->g.nr_zones)
			changed += force_state(z, offline[k], S_OFFLINE);
	pthread_mutex_unlock(&z->state_lock);
	return changed;
}

const char *zns_check(struct zns *z)
{
	static __thread char why[160];
	uint32_t open = 0, active = 0, iopen = 0, zrwa = 0;
	pthread_mutex_lock(&z->state_lock);
	for (uint32_t i = 0; i < z->g.nr_zones; i++) {
		struct zone *zn = &z->zones[i];
		uint64_t zslba = zns_zslba(z, i);
		open += is_open(zn->state);
		active += is_active(zn->state);
		iopen += zn->state == S_IOPEN;
		zrwa += has_zrwa(zn) || zn->zrwa_held != 0;
		const char *bad = NULL;
		if (zn->state != S_EMPTY && zn->state != S_IOPEN && zn->state != S_EOPEN &&
		    zn->state != S_CLOSED && zn->state != S_FULL && zn->state != S_RO &&
		    zn->state != S_OFFLINE)
			bad = "unknown state";
		else if (zn->wp_done > zn->wp || zn->wp_ended > zn->wp)
			bad = "written pointer past reservation";
		else if (zn->wp < zslba || zn->wp > zslba + z->g.zone_cap)
			bad = "write pointer outside the zone's capacity";
		else if (zn->state == S_EMPTY && zn->wp != zslba)
			bad = "empty zone with write pointer past its start";
		else if (has_zrwa(zn) && !is_active(zn->state))
			bad = "ZRWA in a zone that is not active";
		if (bad) {
			snprintf(why, sizeof(why), "zone %u: %s (state %#x wp %#llx)", i, bad,
				 zn->state, (unsigned long long)zn->wp);
			pthread_mutex_unlock(&z->state_lock);
			return why;
		}
	}
	uint32_t listed = 0;
	for (uint32_t i = z->iopen_head; i != ZONE_NIL && listed <= iopen; i = z->zones[i].iopen_next)
		listed++;
	const char *bad = NULL;
	if (open != z->nr_open || active != z->nr_active)
		bad = "open/active counters disagree with zone states";
	else if (listed != iopen)
		bad = "implicitly-open list disagrees with zone states";
	else if (z->g.max_open && open > z->g.max_open)
		bad = "more open zones than the limit";
	else if (z->g.max_active && active > z->g.max_active)
		bad = "more active zones than the limit";
	else if (zrwa != z->nr_zrwa || (z->g.nr_zrwa && zrwa > z->g.nr_zrwa))
		bad = "ZRWA count disagrees with the zones or the limit";
	pthread_mutex_unlock(&z->state_lock);
	return bad;
}
