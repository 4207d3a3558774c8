/*
 * Reads or writes over vfio-user at a fixed queue depth (load_vfu.h). Slot i owns
 * guest pages data_gpa + i * bs (its data) and one PRP list page after all
 * the data; a command's CID is its slot, so a completion names its slot.
 */
#include "load_vfu.h"

#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <string.h>

#include <nvme/types.h>

#include "limits.h"
#include "vfu_nvme.h"

/*
 * Hybrid polling (as Linux's io_poll_delay): spin on the CQ while
 * completions came in the last HOT_NS, then sleep DOZE_NS between looks.
 * On a machine busy with other jobs a pure spinner burns its CPU share
 * while the device's thread is not even running, and is then descheduled
 * when the completions come: measured at load average 13 - 16 on the
 * 2-CPU development VM, dozing doubled QD1 reads/s and gained a third at
 * QD32; with the device keeping up (completions within 50 us) it never
 * dozes, so a quiet machine's figures do not change.
 */
#define HOT_NS  50000u
#define DOZE_NS 20000

uint32_t load_vfu_pages(uint32_t bs, int qd)
{
	return (uint32_t)qd * (bs / VNVME_PAGE + 1);
}

struct run {
	struct vnvme *v;
	const struct load_vfu_cfg *cfg;
	uint64_t rng, pos, issued;
	uint64_t *t_sub;               /* per slot: submission time (ns) */
};

static void build_io(struct run *r, int slot, struct nvme_sqe *s)
{
	const struct load_vfu_cfg *c = r->cfg;
	uint32_t nlb = c->bs >> c->lba_shift;
	uint64_t blocks = c->region_lbas / nlb, slba;
	uint64_t data = c->data_gpa + (uint64_t)slot * c->bs;
	uint64_t list = c->data_gpa + (uint64_t)c->qd * c->bs + (uint64_t)slot * VNVME_PAGE;
	uint32_t pages = c->bs / VNVME_PAGE;

	if (c->random) {
		slba = load_rnd(&r->rng) % blocks * nlb;
	} else {
		slba = r->pos;
		r->pos = (r->pos + nlb) % (blocks * nlb);
	}
	*s = vnvme_sqe(c->write ? nvme_cmd_write : nvme_cmd_read, c->nsid, (uint32_t)slba, (uint32_t)(slba >> 32));
	s->cdw12 = htole32(nlb - 1);
	s->dptr.prp.prp1 = htole64(data);
	if (pages == 2) {
		s->dptr.prp.prp2 = htole64(data + VNVME_PAGE);
	} else if (pages > 2) {
		uint64_t *l = vnvme_g(r->v, list);

		for (uint32_t i = 1; i < pages; i++)
			l[i - 1] = htole64(data + (uint64_t)i * VNVME_PAGE);
		s->dptr.prp.prp2 = htole64(list);
	}
}

static bool may_submit(const struct run *r)
{
	const struct load_vfu_cfg *c = r->cfg;

	if (c->quota)
		return r->issued < c->quota;
	return limit_now_s() < c->t_end;
}

/* Place slot's next command; its CID names the slot. */
static void put_io(struct run *r, int slot)
{
	struct vnvme_q *q = &r->v->io;
	struct nvme_sqe s;

	build_io(r, slot, &s);
	/* vnvme_put numbers CIDs by one: make this one the slot's number
	 * (a CID need only be unique among the commands in flight). */
	q->cid = (uint16_t)(slot - 1);
	r->t_sub[slot] = limit_now_ns();
	vnvme_put(r->v, q, &s, false);
	r->issued++;
}

int load_vfu_run(struct vnvme *v, const struct load_vfu_cfg *cfg, struct load_stats *st,
		 char *err, size_t errlen)
{
	uint64_t t_sub[256];
	struct run r = { .v = v, .cfg = cfg, .rng = cfg->seed | 1, .t_sub = t_sub };
	struct vnvme_q *q = &v->io;
	int inflight = 0;
	uint32_t unrung = 0;               /* completions taken since the head doorbell */
	double give_up = limit_now_s() + 10;
	uint64_t last_reap = limit_now_ns();

	memset(st, 0, sizeof(*st));
	lat_hist_reset(&st->lat);
	/* A 20 us doze, not the default 50 us of timer slack on top. */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	if (cfg->qd < 1 || cfg->qd > 255 || (uint32_t)cfg->qd + q->size / 4 >= q->size || !cfg->bs ||
	    cfg->bs % VNVME_PAGE || cfg->bs / VNVME_PAGE > VNVME_PAGE / 8 + 1 ||
	    cfg->region_lbas < (cfg->bs >> cfg->lba_shift)) {
		snprintf(err, errlen, "vfio-user: unsupported bs/qd/region");
		return -1;
	}
	for (int i = 0; i < cfg->qd && may_submit(&r); i++, inflight++)
		put_io(&r, i);
	if (inflight && vnvme_ring(v, q, 2u * q->qid, q->tail))
		goto failed;
	while (inflight) {
		struct nvme_cqe e;
		int reaped = 0, placed = 0;

		/* Every completion there is, then one head and one tail
		 * doorbell for the batch, as a driver's poll loop does. */
		while (vnvme_poll(v, q, &e)) {
			uint64_t t = limit_now_ns();
			int slot = le16toh(e.cid), status = le16toh(e.status) >> 1;
			double now = limit_now_s();

			if (slot >= cfg->qd) {
				snprintf(err, errlen, "completion of CID %d: no such command", slot);
				return -1;
			}
			reaped++;
			inflight--;
			if (status) {
				st->errors++;
				snprintf(err, errlen, "%s failed: status %#x", cfg->write ? "write" : "read",
					 status);
				return -1;
			}
			if (cfg->quota || (now >= cfg->t_begin && now < cfg->t_end)) {
				if (!st->t_first)
					st->t_first = (double)t_sub[slot] * 1e-9;
				st->t_last = now;
				st->ios++;
				st->bytes += cfg->bs;
				lat_hist_add(&st->lat, t - t_sub[slot]);
			}
			if (may_submit(&r)) {
				put_io(&r, slot);
				inflight++;
				placed++;
			}
		}
		/* The CQ head only once a quarter of the queue was consumed:
		 * the controller needs it for room, and at most qd entries
		 * are ever outstanding. */
		unrung += reaped;
		if (unrung && (unrung >= q->size / 4 || !inflight)) {
			if (vnvme_ring(v, q, 2u * q->qid + 1, q->head))
				goto failed;
			unrung = 0;
		}
		if (placed && vnvme_ring(v, q, 2u * q->qid, q->tail))
			goto failed;
		if (reaped) {
			give_up = limit_now_s() + 10;
			last_reap = limit_now_ns();
		} else if (limit_now_ns() - last_reap > HOT_NS) {
			nanosleep(&(struct timespec){ 0, DOZE_NS }, NULL);
		}
		if (!reaped && limit_now_s() > give_up) {
			snprintf(err, errlen, "no completion for 10 s (%d in flight)", inflight);
			return -1;
		}
	}
	return 0;
failed:
	snprintf(err, errlen, "%s", v->err);
	return -1;
}
