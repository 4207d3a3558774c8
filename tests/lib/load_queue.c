/*
 * One queue of the load generator (load.h): what to submit next, what to do
 * with each completion.
 *
 * Every command slot (CID) is always in one of two places: in flight, or on
 * the idle list because nothing could be submitted for it at the time
 * (stopping, quota reached, every zone full and waiting for a reset). After
 * each receive round the idle slots are offered work again.
 *
 * Zones written by this queue (zoned writes and appends) move through
 *   clean -> active (being written; used = LBAs handed out)
 *         -> drain (full; waiting for its commands in flight to come back)
 *         -> reset (Zone Management Send Reset in flight) -> clean.
 * Clean zones and drained zones wait in two FIFOs; a drained zone is reset
 * before anything else is submitted, so the queue never runs dry of zones
 * while it has work.
 */
#include "load.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "limits.h"

enum { K_IO, K_VERIFY, K_RESET, K_PREFILL };
enum { Z_CLEAN, Z_ACTIVE, Z_DRAIN, Z_RESET };

struct load_slot {
	uint8_t kind;
	int32_t zone;              /* own index written to, -1 if none */
	uint64_t slba;
	uint32_t nlb;
	uint64_t t0;               /* submission, ns */
	uint8_t *buf, *vbuf;       /* data; read-back for verification */
};

struct load_zone {
	uint64_t used;             /* LBAs handed out since the last reset */
	uint32_t outstanding;      /* writes / appends in flight */
	uint8_t state;
};

static bool issue(struct load_queue *lq, uint16_t i);

/* ---- helpers ---- */

static void failf(struct load_queue *lq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct load_queue *lq, const char *fmt, ...)
{
	va_list ap;

	lq->st.errors++;
	lq->stopping = true;
	__atomic_store_n(lq->cfg->abort, 1, __ATOMIC_RELAXED);
	if (lq->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(lq->err, sizeof(lq->err), fmt, ap);
	va_end(ap);
}

uint64_t load_rnd(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t lba_size(const struct load_queue *lq)
{
	return 1u << lq->cfg->lba_shift;
}

static uint32_t io_nlb(const struct load_queue *lq)
{
	return lq->cfg->bs >> lq->cfg->lba_shift;
}

/*
 * The data of LBA key + i: its key and the run's seed (so stale data from
 * another run or another LBA is told apart), then a pseudo-random stream
 * seeded by both.
 */
static void pattern_fill(uint8_t *p, uint64_t key, uint32_t nlb, uint32_t lbs, uint64_t seed)
{
	for (uint32_t i = 0; i < nlb; i++, p += lbs) {
		uint64_t k = htole64(key + i), s = htole64(seed);
		uint64_t x = ((key + i) * 0x9e3779b97f4a7c15ull) ^ seed;

		memcpy(p, &k, 8);
		memcpy(p + 8, &s, 8);
		x |= 1;
		for (uint32_t o = 16; o + 8 <= lbs; o += 8) {
			uint64_t v = load_rnd(&x);
			memcpy(p + o, &v, 8);
		}
	}
}

/* Index of the first of nlb LBAs in p that is not the pattern of key + i, or -1. */
static int64_t pattern_check(const uint8_t *p, uint64_t key, uint32_t nlb, uint32_t lbs,
			     uint64_t seed, uint8_t *scratch)
{
	for (uint32_t i = 0; i < nlb; i++, p += lbs) {
		pattern_fill(scratch, key + i, 1, lbs, seed);
		if (memcmp(p, scratch, lbs))
			return i;
	}
	return -1;
}

/* ---- submission ---- */

/* The SQE of an I/O command on slot i; the caller may add to it. */
static struct nvme_sqe *prep(struct load_queue *lq, uint16_t i, uint8_t opcode, uint64_t slba,
			     uint32_t nlb)
{
	struct nvme_sqe *sqe = &lq->q.cmds[i].sqe;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(lq->cfg->nsid);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw11 = htole32((uint32_t)(slba >> 32));
	sqe->cdw12 = htole32(nlb - 1);     /* NLB, 0's based */
	return sqe;
}

static bool send_cmd(struct load_queue *lq, uint16_t i, void *buf, uint32_t len, bool write)
{
	struct nvmfq_cmd *cmd = &lq->q.cmds[i];

	cmd->buf = buf;
	cmd->len = len;
	cmd->write = write;
	if (nvmfq_submit(&lq->q, cmd)) {
		failf(lq, "%s", lq->q.err);
		return false;
	}
	return true;
}

static bool submit(struct load_queue *lq, uint16_t i, uint8_t opcode, uint64_t slba,
		   uint32_t nlb, void *buf, bool write)
{
	prep(lq, i, opcode, slba, nlb);
	return send_cmd(lq, i, buf, nlb << lq->cfg->lba_shift, write);
}

/* Zone Management Send, Reset Zone (ZNS 1.1, 3.4.3) for own zone z. */
static bool submit_reset(struct load_queue *lq, uint16_t i, uint32_t z)
{
	struct load_slot *s = &lq->slots[i];
	uint64_t zslba = lq->cfg->units[lq->own[z]].slba;

	s->kind = K_RESET;
	s->zone = (int32_t)z;
	s->slba = zslba;
	s->nlb = 0;
	lq->zones[z].state = Z_RESET;
	struct nvme_sqe *sqe = prep(lq, i, nvme_zns_cmd_mgmt_send, zslba, 1);
	sqe->cdw12 = 0;
	sqe->cdw13 = htole32(NVME_ZNS_ZSA_RESET);
	return send_cmd(lq, i, NULL, 0, false);
}

/* ---- zones ---- */

static void fifo_push(uint32_t *ring, uint32_t n, uint32_t head, uint32_t *count, uint32_t z)
{
	ring[(head + *count) % n] = z;
	(*count)++;
}

static void push_clean(struct load_queue *lq, uint32_t z)
{
	lq->zones[z].state = Z_CLEAN;
	fifo_push(lq->ring, lq->nown, lq->clean_head, &lq->clean_n, z);
}

static void push_drain(struct load_queue *lq, uint32_t z)
{
	fifo_push(lq->ring + lq->nown, lq->nown, lq->drain_head, &lq->drain_n, z);
}

static int32_t pop(const uint32_t *ring, uint32_t n, uint32_t *head, uint32_t *count)
{
	if (!*count)
		return -1;
	uint32_t z = ring[*head];
	*head = (*head + 1) % n;
	(*count)--;
	return (int32_t)z;
}

static int32_t pop_drain(struct load_queue *lq)
{
	return pop(lq->ring + lq->nown, lq->nown, &lq->drain_head, &lq->drain_n);
}

/* A zone with room for nlb more LBAs, or -1 while all are full or resetting. */
static int32_t pick_zone(struct load_queue *lq, uint32_t nlb)
{
	for (uint32_t tries = 0; tries < lq->nactive; tries++) {
		uint32_t a = lq->rr++ % lq->nactive;
		int32_t z = lq->active[a];

		if (z >= 0) {
			struct load_zone *zn = &lq->zones[z];
			if (zn->used + nlb <= lq->cfg->units[lq->own[z]].cap)
				return z;
			/* Full: it is reset once its last command is back. */
			zn->state = Z_DRAIN;
			if (!zn->outstanding)
				push_drain(lq, (uint32_t)z);
			lq->active[a] = -1;
		}
		z = pop(lq->ring, lq->nown, &lq->clean_head, &lq->clean_n);
		if (z < 0)
			continue;
		lq->zones[z].state = Z_ACTIVE;
		lq->zones[z].used = 0;
		lq->active[a] = z;
		return z; /* every unit holds at least one I/O (checked at setup) */
	}
	return -1;
}

/* ---- choosing LBAs ---- */

/*
 * Anywhere in the region. Verified writes stay apart instead: within the
 * queue's own units, slot i only at I/O indexes = i (mod qd), so that no
 * two writes in flight overlap and a read-back sees its own data.
 */
static uint64_t random_lba(struct load_queue *lq, uint16_t slot, uint32_t nlb)
{
	const struct load_cfg *cfg = lq->cfg;

	if (cfg->verify && cfg->op != LOAD_READ) {
		const struct load_unit *u = &cfg->units[lq->own[load_rnd(&lq->rng) % lq->nown]];
		uint64_t per_slot = u->cap / nlb / (uint64_t)cfg->qd;
		return u->slba + ((load_rnd(&lq->rng) % per_slot) * (uint64_t)cfg->qd + slot) * nlb;
	}
	const struct load_unit *u = &cfg->units[load_rnd(&lq->rng) % cfg->nunits];
	return u->slba + (load_rnd(&lq->rng) % (u->cap / nlb)) * nlb;
}

/* The next nlb LBAs through the queue's own units, wrapping around. */
static uint64_t seq_lba(struct load_queue *lq, uint32_t nlb)
{
	const struct load_unit *u = &lq->cfg->units[lq->own[lq->cur]];

	if (lq->pos + nlb > u->cap) {
		lq->cur = (lq->cur + 1) % lq->nown;
		lq->pos = 0;
		u = &lq->cfg->units[lq->own[lq->cur]];
	}
	uint64_t slba = u->slba + lq->pos;
	lq->pos += nlb;
	return slba;
}

/* ---- issuing ---- */

static bool issue_prefill(struct load_queue *lq, uint16_t i)
{
	struct load_slot *s = &lq->slots[i];

	if (lq->stopping || lq->cur >= lq->nown)
		return false;
	const struct load_unit *u = &lq->cfg->units[lq->own[lq->cur]];
	uint64_t left = u->cap - lq->pos;
	uint32_t max = lq->cfg->prefill_bs >> lq->cfg->lba_shift;
	uint32_t nlb = left < max ? (uint32_t)left : max;

	s->kind = K_PREFILL;
	s->zone = -1;
	s->slba = u->slba + lq->pos;
	s->nlb = nlb;
	lq->pos += nlb;
	if (lq->pos == u->cap) {
		lq->cur++;
		lq->pos = 0;
	}
	pattern_fill(s->buf, s->slba, nlb, lba_size(lq), lq->cfg->seed);
	return submit(lq, i, nvme_cmd_write, s->slba, nlb, s->buf, true);
}

static bool issue_io(struct load_queue *lq, uint16_t i)
{
	const struct load_cfg *cfg = lq->cfg;
	struct load_slot *s = &lq->slots[i];
	uint32_t nlb = io_nlb(lq);
	uint8_t opcode;

	if (lq->stopping || (cfg->quota && lq->issued >= lq->quota))
		return false;
	s->kind = K_IO;
	s->zone = -1;
	s->nlb = nlb;
	if (cfg->op == LOAD_READ) {
		opcode = nvme_cmd_read;
		s->slba = cfg->random ? random_lba(lq, i, nlb) : seq_lba(lq, nlb);
	} else if (!cfg->zoned) {
		opcode = nvme_cmd_write;
		s->slba = cfg->random ? random_lba(lq, i, nlb) : seq_lba(lq, nlb);
	} else {
		/* Zones first get their resets, then the writes. */
		int32_t z = pop_drain(lq);
		if (z >= 0)
			return submit_reset(lq, i, (uint32_t)z);
		z = pick_zone(lq, nlb);
		if (z < 0) {
			/* Picking may have found the active zones full: reset
			 * one now rather than leave the slot idle a round. */
			z = pop_drain(lq);
			return z >= 0 && submit_reset(lq, i, (uint32_t)z);
		}
		struct load_zone *zn = &lq->zones[z];
		uint64_t zslba = cfg->units[lq->own[z]].slba;
		/* A Write goes to the write pointer (this queue's writes to
		 * the zone arrive in order); an Append names the zone. */
		opcode = cfg->op == LOAD_APPEND ? nvme_zns_cmd_append : nvme_cmd_write;
		s->slba = cfg->op == LOAD_APPEND ? zslba : zslba + zn->used;
		s->zone = z;
		zn->used += nlb;
		zn->outstanding++;
	}
	if (cfg->verify && cfg->op != LOAD_READ) {
		pattern_fill(s->buf, lq->token, nlb, lba_size(lq), cfg->seed);
		lq->token += nlb;
	}
	lq->issued++;
	s->t0 = limit_now_ns();
	if (!lq->st.t_first)
		lq->st.t_first = (double)s->t0 / 1e9;
	return submit(lq, i, opcode, s->slba, nlb, s->buf, cfg->op != LOAD_READ);
}

static bool issue(struct load_queue *lq, uint16_t i)
{
	return lq->prefilling ? issue_prefill(lq, i) : issue_io(lq, i);
}

/* ---- completions ---- */

static void cmd_failed(struct load_queue *lq, const struct load_slot *s,
		       const struct nvmfq_cmd *cmd)
{
	static const char *const what[] = { "I/O", "read-back", "zone reset", "prefill write" };

	failf(lq, "queue %d: %s (opcode %#x) at LBA %llu, %u blocks: status %#x", lq->id,
	      what[s->kind], cmd->sqe.opcode, (unsigned long long)s->slba, s->nlb, cmd->status);
}

/* A K_IO command is back. Returns true if the slot is busy again (its
 * read-back was submitted). */
static bool io_done(struct load_queue *lq, struct load_slot *s, uint16_t i,
		    const struct nvmfq_cmd *cmd)
{
	const struct load_cfg *cfg = lq->cfg;

	if (s->zone >= 0) {
		struct load_zone *zn = &lq->zones[s->zone];
		if (--zn->outstanding == 0 && zn->state == Z_DRAIN)
			push_drain(lq, (uint32_t)s->zone);
	}
	if (cmd->status) {
		cmd_failed(lq, s, cmd);
		return false;
	}
	if (cfg->op == LOAD_APPEND) {
		/* ZNS 1.1, 4.2.1: the ALBA is where the data went; it must lie
		 * in the zone named. */
		const struct load_unit *u = &cfg->units[lq->own[s->zone]];
		uint64_t alba = le64toh(cmd->cqe.result);
		if (alba < u->slba || alba + s->nlb > u->slba + u->cap) {
			failf(lq, "queue %d: Zone Append to zone at LBA %llu returned ALBA %llu",
			      lq->id, (unsigned long long)u->slba, (unsigned long long)alba);
			return false;
		}
		s->slba = alba;
	}

	uint64_t now = limit_now_ns();
	double t = (double)now / 1e9;
	if (cfg->quota || (t >= cfg->t_begin && t < cfg->t_end)) {
		lq->st.ios++;
		lq->st.bytes += cfg->bs;
		lat_hist_add(&lq->st.lat, now - s->t0);
		lq->st.t_last = t;
	}
	if (!cfg->verify)
		return false;
	if (cfg->op == LOAD_READ) {
		int64_t bad = pattern_check(s->buf, s->slba, s->nlb, lba_size(lq), cfg->seed, s->vbuf);
		if (bad >= 0)
			failf(lq, "queue %d: data mismatch reading LBA %llu", lq->id,
			      (unsigned long long)(s->slba + (uint64_t)bad));
		else
			lq->st.verified++;
		return false;
	}
	s->kind = K_VERIFY;
	return submit(lq, i, nvme_cmd_read, s->slba, s->nlb, s->vbuf, false);
}

static void on_done(struct nvmfq *q, struct nvmfq_cmd *cmd)
{
	struct load_queue *lq = q->arg;
	uint16_t i = (uint16_t)(cmd - q->cmds);
	struct load_slot *s = &lq->slots[i];

	switch (s->kind) {
	case K_PREFILL:
		if (cmd->status)
			cmd_failed(lq, s, cmd);
		break;
	case K_RESET:
		if (cmd->status) {
			cmd_failed(lq, s, cmd);
			break;
		}
		lq->st.resets++;
		push_clean(lq, (uint32_t)s->zone);
		break;
	case K_VERIFY:
		if (cmd->status) {
			cmd_failed(lq, s, cmd);
			break;
		}
		if (memcmp(s->buf, s->vbuf, (size_t)s->nlb << lq->cfg->lba_shift)) {
			uint32_t k = 0, lbs = lba_size(lq);
			while (k < s->nlb && !memcmp(s->buf + (size_t)k * lbs, s->vbuf + (size_t)k * lbs, lbs))
				k++;
			failf(lq, "queue %d: read-back of LBA %llu differs from what was written",
			      lq->id, (unsigned long long)(s->slba + k));
			break;
		}
		lq->st.verified++;
		break;
	case K_IO:
		if (io_done(lq, s, i, cmd))
			return;
		break;
	}
	if (!issue(lq, i))
		lq->idle[lq->nidle++] = i;
}

/* ---- driving ---- */

static int drive(struct load_queue *lq)
{
	const struct load_cfg *cfg = lq->cfg;

	lq->nidle = 0;
	lq->stopping = __atomic_load_n(cfg->abort, __ATOMIC_RELAXED);
	for (uint16_t i = 0; i < cfg->qd; i++)
		if (!issue(lq, i))
			lq->idle[lq->nidle++] = i;
	while (lq->q.inflight) {
		if (nvmfq_process(&lq->q) < 0) {
			failf(lq, "queue %d: %s", lq->id, lq->q.err);
			return -1;
		}
		if (!lq->stopping && (__atomic_load_n(cfg->abort, __ATOMIC_RELAXED) ||
				      (!cfg->quota && !lq->prefilling && limit_now_s() >= cfg->t_end)))
			lq->stopping = true;
		while (lq->nidle && !lq->stopping && issue(lq, lq->idle[lq->nidle - 1]))
			lq->nidle--;
	}
	if (lq->err[0])
		return -1;
	if (!lq->stopping && !lq->prefilling && (!cfg->quota || lq->issued < lq->quota)) {
		failf(lq, "queue %d: stalled: nothing left to submit", lq->id);
		return -1;
	}
	return 0;
}

int load_queue_prefill(struct load_queue *lq)
{
	lq->prefilling = true;
	lq->cur = 0;
	lq->pos = 0;
	int rc = drive(lq);
	lq->prefilling = false;
	lq->cur = 0;
	lq->pos = 0;
	return rc;
}

int load_queue_run(struct load_queue *lq)
{
	return drive(lq);
}

/* ---- setup ---- */

static void *page_alloc(size_t len)
{
	void *p;

	return posix_memalign(&p, 4096, len) ? NULL : p;
}

int load_queue_init(struct load_queue *lq, const struct load_cfg *cfg, int id,
		    struct nvmf_client *c)
{
	uint32_t buflen = cfg->bs > cfg->prefill_bs ? cfg->bs : cfg->prefill_bs;

	memset(lq, 0, sizeof(*lq));
	lq->cfg = cfg;
	lq->id = id;
	lq->rng = cfg->seed ^ ((uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull);
	lq->rng |= 1;
	lq->token = (uint64_t)(id + 1) << 48;
	lq->quota = cfg->quota / (uint64_t)cfg->nqueues +
		    ((uint64_t)id < cfg->quota % (uint64_t)cfg->nqueues);
	lat_hist_reset(&lq->st.lat);
	if (nvmfq_init(&lq->q, c, (uint16_t)cfg->qd, buflen, on_done, lq)) {
		snprintf(lq->err, sizeof(lq->err), "queue %d: %s", id, lq->q.err);
		return -1;
	}
	lq->q.poll = cfg->poll;

	for (uint32_t u = (uint32_t)id; u < cfg->nunits; u += (uint32_t)cfg->nqueues)
		lq->nown++;
	lq->slots = calloc((size_t)cfg->qd, sizeof(*lq->slots));
	lq->idle = calloc((size_t)cfg->qd, sizeof(*lq->idle));
	lq->own = calloc(lq->nown ? lq->nown : 1, sizeof(*lq->own));
	lq->zones = calloc(lq->nown ? lq->nown : 1, sizeof(*lq->zones));
	lq->ring = calloc(2 * (size_t)(lq->nown ? lq->nown : 1), sizeof(*lq->ring));
	lq->active = calloc(lq->nown ? lq->nown : 1, sizeof(*lq->active));
	if (!lq->slots || !lq->idle || !lq->own || !lq->zones || !lq->ring || !lq->active)
		goto oom;
	if (!lq->nown) {
		snprintf(lq->err, sizeof(lq->err), "queue %d: no zone or slice of its own", id);
		return -1;
	}
	for (uint32_t k = 0, u = (uint32_t)id; u < cfg->nunits; u += (uint32_t)cfg->nqueues)
		lq->own[k++] = u;
	/* Verified writes to a conventional namespace must never overlap
	 * while in flight (random_lba(); sequential ones wrap around). */
	if (cfg->verify && cfg->op == LOAD_WRITE && !cfg->zoned)
		for (uint32_t k = 0; k < lq->nown; k++)
			if (cfg->units[lq->own[k]].cap / (cfg->bs >> cfg->lba_shift) <
			    (uint64_t)cfg->qd) {
				snprintf(lq->err, sizeof(lq->err), "queue %d: verified writes need "
					 "at least qd I/Os per queue's share of the region", id);
				return -1;
			}

	/* Writes: one zone at a time, in order. Appends: spread, with a zone
	 * to spare while another one is being reset. */
	lq->nactive = cfg->op == LOAD_APPEND ? cfg->active_zones : 1;
	if (lq->nactive > lq->nown - (lq->nown > 1))
		lq->nactive = lq->nown - (lq->nown > 1);
	if (!lq->nactive)
		lq->nactive = 1;
	for (uint32_t a = 0; a < lq->nactive; a++)
		lq->active[a] = -1;
	for (uint32_t z = 0; z < lq->nown; z++)
		push_clean(lq, z);

	for (int i = 0; i < cfg->qd; i++) {
		struct load_slot *s = &lq->slots[i];
		s->buf = page_alloc(buflen);
		/* The read-back buffer doubles as the scratch of read checks. */
		s->vbuf = cfg->verify ? page_alloc(buflen) : NULL;
		if (!s->buf || (cfg->verify && !s->vbuf))
			goto oom;
		pattern_fill(s->buf, (uint64_t)i, buflen >> cfg->lba_shift, lba_size(lq), cfg->seed);
	}
	return 0;
oom:
	snprintf(lq->err, sizeof(lq->err), "queue %d: out of memory", id);
	return -1;
}

void load_queue_destroy(struct load_queue *lq)
{
	nvmfq_destroy(&lq->q);
	if (lq->slots)
		for (int i = 0; i < lq->cfg->qd; i++) {
			free(lq->slots[i].buf);
			free(lq->slots[i].vbuf);
		}
	free(lq->slots);
	free(lq->idle);
	free(lq->own);
	free(lq->zones);
	free(lq->ring);
	free(lq->active);
	lq->slots = NULL;
}
