/*
 * A namespace: its data file, its identity, and for a zoned namespace the
 * zone engine and its durable metadata, with one group-commit thread.
 *
 * Group commit (doc/architecture.md, "Durability"). ns_sync() queues a
 * callback; the commit thread takes every queued callback at once, then
 *   1. snapshots the zones changed since the last commit into a batch, each
 *      record with the CRC of the blocks it makes visible (read back from
 *      the page cache),
 *   2. fdatasyncs the data file (if anything was written since the last
 *      sync) on the data sync thread, and meanwhile
 *   3. writes the journal records for those zones and fdatasyncs the journal,
 *   4. once both syncs returned, applies the records to the image,
 *      checkpoints when the journal is long,
 *   5. runs the callbacks.
 * Every callback queued before step 1 sees its write or transition durable,
 * and all of them share the two fdatasyncs, which overlap: a commit costs
 * one sync's latency, not two. A record may thus be durable before its
 * data; its data CRC lets recovery tell (zmeta.h), and since the next batch
 * starts only after both syncs, only the last batch can be in that state.
 * A batch with a record the CRC cannot vouch for (a Finish: the write
 * pointer moves over blocks zeroed, not written) syncs the data first, as
 * every batch once did. (Overlapping the snapshot of one batch with the
 * journal write of the previous one was measured and gained nothing on
 * ext4: README, Figures.)
 */
#include "ns.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <nvme/types.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "blockstore.h"
#include "config.h"
#include "crc32c.h"
#include "errmsg.h"
#include "fault_io.h"
#include "iov.h"
#include "log.h"
#include "ns_id.h"
#include "ns_precheck.h"
#include "ns_stats.h"
#include "nvme_wire.h"
#include "resv_store.h"
#include "written_map.h"
#include "zmeta.h"
#include "zone.h"

struct sync_waiter {
	ns_sync_cb cb;
	void *arg;
};

struct waiter_list {
	struct sync_waiter *v;
	size_t n, cap;
};

/* One batch: its journal records and the syncs waiting for it. */
struct commit_item {
	struct zmeta_batch batch;
	struct waiter_list waiters;
	int rc;                      /* of step 1 (and 2 when not overlapped) */
	bool sync_data;              /* the data sync overlaps the journal's */
	uint64_t writes;             /* data_writes the data sync covers */
	uint64_t started;            /* this commit's number (commits_started) */
};

/* Blocks read at a time to compute a record's data CRC. */
#define CRC_CHUNK (256u << 10)

struct ns {
	struct ns_info info;
	char dir[PATH_MAX];
	struct blockstore bs;
	struct zns z;                /* zoned only */
	struct zmeta meta;           /* zoned only */
	const struct ns_config *cfg;

	pthread_t commit_thread;
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cond;
	struct waiter_list queued;   /* under commit_lock */
	struct commit_item item;     /* the commit thread's (or open/close's) */
	bool stop, abandoned;
	uint64_t data_writes;        /* atomic: data writes ended so far */
	uint64_t data_synced;        /* commit thread: data_writes at the last data sync */
	bool failing;                /* commit thread (atomic: ns_health): the last commit failed */
	bool need_ckpt;              /* commit thread: checkpoint before the next record */
	bool redirty;                /* commit thread: a failed data sync's pages are not
	                              * all dirty again yet (redirty_unsynced) */
	struct written_map written;  /* conventional only: what a failed data sync may
	                              * have lost (written_map.h) */
	uint8_t *zde_buf;            /* commit thread: one zone's extension */
	uint8_t *crc_buf;            /* commit thread and recovery: CRC_CHUNK bytes */
	struct ns_stats stats;       /* ns_stats.h */
	struct resv_ns *resv;        /* reservations (resv_store.h) */

	/* Zones whose Reset's commit failed (zns_set_undurable): released by
	 * the first commit that starts after the last of them was marked. */
	uint64_t commits_started;    /* atomic */
	pthread_mutex_t undurable_lock;
	uint64_t undurable_mark;     /* commits_started at the last mark; 0: none (atomic) */
	bool undurable_asked;        /* a commit asked for by a refusal is queued (atomic) */
	uint64_t undurable_ask_at;   /* CLOCK_MONOTONIC ns before which none is asked (atomic) */

	/* The data sync thread: fdatasyncs the data file when the commit
	 * thread asks (dsync_req), alongside the journal's sync. */
	pthread_t dsync_thread;
	pthread_mutex_t dsync_lock;
	pthread_cond_t dsync_cond;
	uint64_t dsync_req, dsync_done;  /* under dsync_lock */
	int dsync_rc;                /* of the sync dsync_done counts */
	bool dsync_stop;
	bool dsync_running;
};

/*
 * A sync that must first wait for written prefixes to catch up (ns_sync,
 * ZONE_F_GAPPED zones): one gap_waiter per gapped zone, each allocated as
 * the scan finds its zone; the last one to be released queues the sync
 * proper.
 */
struct gap_barrier {
	struct ns *ns;
	ns_sync_cb cb;
	void *arg;
	uint32_t pending;            /* waiters not yet released + 1 while arming */
	bool failed;                 /* a waiter could not be allocated (while arming) */
};

struct gap_waiter {
	struct zone_waiter zw;       /* first: gap_ready() gets &zw */
	struct gap_barrier *b;
};

static void queue_sync(struct ns *ns, ns_sync_cb cb, void *arg);


/* ---- identity: ns.id keeps the UUID stable across restarts (ns_id.h) ---- */

/*
 * ns.id names the namespace to hosts (its UUID): a missing or damaged one is
 * refused unless the namespace is new (create) or being recovered, which
 * write a new one.
 */
static int load_identity(struct ns *ns, const struct ns_config *cfg, bool create, char *err,
			 size_t errlen)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/" NS_ID_NAME, ns->dir);
	uint8_t have_uuid[16];
	const char *why;
	int rd = ns_id_read(path, have_uuid, &why);
	if (rd < 0)
		return errmsg(err, errlen, "%s: %s", path, strerror(-rd));
	if (why && !create) {
		if (!cfg->recover)
			return errmsg(err, errlen, "%s: %s; it holds the UUID hosts know this "
				    "namespace by. Restore the file, or start once with --recover "
				    "NQN/%u (this subsystem's NQN; a new file is written, with the "
				    "configured uuid if one is set), or with --format to erase this "
				    "namespace's data and zone state", path, why, cfg->nsid);
		log_warn("%s: %s; writing a new one: %s", path, why,
			 cfg->have_uuid ? "the configured uuid"
					: "a new UUID (hosts will see a different namespace)");
	}
	bool have = !why;
	uint8_t *u = ns->info.uuid;
	if (cfg->have_uuid) {
		memcpy(u, cfg->uuid, 16);
	} else if (have && !create) {
		memcpy(u, have_uuid, 16);
	} else {
		if (getrandom(u, 16, 0) != 16)
			return errmsg(err, errlen, "getrandom: %s", strerror(errno));
		u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
		u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	}
	if (!have || create || memcmp(have_uuid, u, 16)) {
		int rc = ns_id_write(path, u);
		if (rc)
			return errmsg(err, errlen, "%s: %s", path, strerror(-rc));
	}
	/* NGUID and EUI-64 follow from the UUID, so all three are unique and
	 * stable together (host-requirements 3.3). */
	memcpy(ns->info.nguid, u, 16);
	ns->info.nguid[0] ^= 0x5a;
	uint32_t a = crc32c(u, 8), b = crc32c(u + 8, 8);
	memcpy(ns->info.eui64, &a, 4);
	memcpy(ns->info.eui64 + 4, &b, 4);
	return 0;
}

/* ---- group commit ---- */

static void waiters_push(struct waiter_list *l, ns_sync_cb cb, void *arg)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct sync_waiter *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			cb(arg, nvme_err(NVME_SC_INTERNAL));
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct sync_waiter){ cb, arg };
}

/*
 * -errno of a failed file operation -> the status the host gets. No space
 * is Capacity Exceeded (NVMe Base 2.0, generic status 81h), as Linux nvmet
 * maps ENOSPC; anything else is a media error: Write Fault (80h) for what
 * writes or syncs, Unrecovered Read Error (81h) for a read.
 */
static uint16_t io_status(int rc, bool write)
{
	if (!rc)
		return 0;
	if (write && (rc == -ENOSPC || rc == -EDQUOT))
		return nvme_err(NVME_SC_CAP_EXCEEDED);
	return nvme_media_err(write ? NVME_SC_WRITE_FAULT : NVME_SC_READ_ERROR);
}

static uint16_t sync_status(int err)
{
	return io_status(err, true);
}

/* CRC32C of the blocks [lba, lba + nlb) of bs. */
static int blocks_crc(struct ns *ns, struct blockstore *bs, uint64_t lba, uint32_t nlb,
		      uint32_t *out)
{
	return blockstore_crc(bs, lba, nlb, ns->crc_buf, CRC_CHUNK, out);
}

/*
 * The blocks a zone's record makes visible: from the write pointer last
 * committed to the new one, or from the zone start when the write pointer
 * went back (a Reset, then writes). A Finish moved it over blocks that were
 * zeroed, not written: no CRC, and the batch syncs its data first (*ordered).
 */
static int record_data(struct ns *ns, const struct zone_snap *s, uint32_t *nlb, uint32_t *crc,
		       bool *ordered)
{
	uint64_t from;
	*nlb = 0;
	*crc = 0;
	int rc = zmeta_committed_wp(&ns->meta, s->zone, &from);
	if (rc)
		return rc;
	if (s->wp == from)
		return 0;
	if (s->finished) {
		*ordered = true;
		return 0;
	}
	if (s->wp < from)
		from = zns_zslba(&ns->z, s->zone);
	*nlb = (uint32_t)(s->wp - from); /* within one zone: zone_cap fits 32 bits */
	return *nlb ? blocks_crc(ns, &ns->bs, from, *nlb, crc) : 0;
}

/*
 * A data fdatasync failed. Linux has marked the pages it could not write
 * clean, and reports that once: the next fdatasync would succeed without
 * writing them, and the commit after it would journal write pointers over
 * blocks that never reached the disk - vouching for data a Flush or a write
 * had failed for, and a restart would read back whatever the blocks held
 * before. So every page that may hold data not yet durable is made dirty
 * again while it is still in memory: for a zoned namespace, each zone's
 * blocks between its durable write pointer and the end of what it may have
 * written (its ZRWA window included); for a conventional one, the regions
 * written since the data sync before the last began (written_map.h). Only
 * the pages the page cache holds outside holes are touched. Until that has
 * been done, every commit that would sync data fails with its error.
 */
static int redirty_run(void *ctx, uint64_t off, uint64_t len)
{
	struct ns *ns = ctx;
	uint32_t shift = ns->info.lba_shift;
	return blockstore_redirty(&ns->bs, off >> shift, len >> shift);
}

static int redirty_unsynced(struct ns *ns)
{
	int rc = 0;
	if (!ns->info.zoned)
		rc = written_each(&ns->written, redirty_run, ns);
	for (uint32_t i = 0; ns->info.zoned && i < zns_nr_zones(&ns->z) && !rc; i++) {
		uint64_t zend = zns_zslba(&ns->z, i) + ns->info.zone_size;
		uint64_t durable;
		if (zmeta_committed_wp(&ns->meta, i, &durable))
			durable = zns_zslba(&ns->z, i); /* the image is lost: the whole zone */
		uint64_t wp = zns_zone_wp(&ns->z, i), end = zns_zone_readable(&ns->z, i);
		uint64_t lo = durable < wp ? durable : wp, hi = durable > end ? durable : end;
		if (hi > zend)
			hi = zend;
		if (lo < hi)
			rc = blockstore_redirty(&ns->bs, lo, hi - lo);
	}
	if (rc && !ns->redirty)
		log_error("namespace %u: data a failed sync did not write cannot be queued "
			  "again: %s; syncs fail until it can", ns->info.nsid, strerror(-rc));
	ns->redirty = rc != 0;
	return rc;
}

/* Step 1 of the group commit (see the top of this file), and step 2 unless
 * it may overlap step 3 (overlap: only on the commit thread). */
static int commit_prepare(struct ns *ns, struct commit_item *it, bool overlap)
{
	bool ordered = !overlap || !ns->info.zoned;
	it->sync_data = false;
	it->started = __atomic_add_fetch(&ns->commits_started, 1, __ATOMIC_ACQ_REL);
	if (ns->info.zoned) {
		uint32_t cur = zns_take_dirty(&ns->z);
		struct zone_snap s;
		while (zns_snapshot(&ns->z, &cur, &s, ns->zde_buf)) {
			uint32_t nlb, crc;
			int rc = record_data(ns, &s, &nlb, &crc, &ordered);
			if (!rc)
				rc = zmeta_add(&ns->meta, &it->batch, &s, ns->zde_buf, nlb, crc);
			if (rc)
				return rc;
		}
	}
	/* Read after the snapshot: a write counted here ended before its
	 * write pointer could be seen by the snapshot (ns_write_end). */
	it->writes = __atomic_load_n(&ns->data_writes, __ATOMIC_ACQUIRE);
	it->sync_data = it->writes != ns->data_synced;
	if (it->sync_data && ns->redirty) {
		int rc = redirty_unsynced(ns);
		if (rc)
			return rc;
	}
	if (it->sync_data && (ordered || !it->batch.records)) {
		it->sync_data = false;
		if (!ns->info.zoned)
			written_swap(&ns->written);
		int rc = blockstore_sync(&ns->bs);
		ns_stat_add(&ns->stats.data_syncs, 1);
		if (rc) {
			redirty_unsynced(ns);
			return rc;
		}
		if (!ns->info.zoned)
			written_synced(&ns->written);
		ns->data_synced = it->writes;
	}
	return 0;
}

/* ---- the data sync thread ---- */

static void *dsync_main(void *arg)
{
	struct ns *ns = arg;
	pthread_mutex_lock(&ns->dsync_lock);
	for (;;) {
		while (!ns->dsync_stop && ns->dsync_req == ns->dsync_done)
			pthread_cond_wait(&ns->dsync_cond, &ns->dsync_lock);
		if (ns->dsync_stop)
			break;
		uint64_t req = ns->dsync_req;
		pthread_mutex_unlock(&ns->dsync_lock);
		int rc = blockstore_sync(&ns->bs);
		ns_stat_add(&ns->stats.data_syncs, 1);
		pthread_mutex_lock(&ns->dsync_lock);
		ns->dsync_rc = rc;
		ns->dsync_done = req;
		pthread_cond_broadcast(&ns->dsync_cond);
	}
	pthread_mutex_unlock(&ns->dsync_lock);
	return NULL;
}

static void dsync_start(struct ns *ns)
{
	pthread_mutex_lock(&ns->dsync_lock);
	ns->dsync_req++;
	pthread_cond_broadcast(&ns->dsync_cond);
	pthread_mutex_unlock(&ns->dsync_lock);
}

/* The commit thread has stopped: no sync is asked for any more. */
static void stop_dsync_thread(struct ns *ns)
{
	if (!ns->dsync_running)
		return;
	pthread_mutex_lock(&ns->dsync_lock);
	ns->dsync_stop = true;
	pthread_cond_broadcast(&ns->dsync_cond);
	pthread_mutex_unlock(&ns->dsync_lock);
	pthread_join(ns->dsync_thread, NULL);
	ns->dsync_running = false;
}

static int dsync_wait(struct ns *ns)
{
	pthread_mutex_lock(&ns->dsync_lock);
	while (ns->dsync_done != ns->dsync_req)
		pthread_cond_wait(&ns->dsync_cond, &ns->dsync_lock);
	int rc = ns->dsync_rc;
	pthread_mutex_unlock(&ns->dsync_lock);
	return rc;
}

/*
 * A commit failed: its waiters get the error, so nothing of it is
 * acknowledged. What the host was told had completed is not thrown away
 * while running: the next commit that succeeds makes it durable. For that,
 * every zone is listed again, the data file is synced again (data_synced
 * did not move), and the records go into a fresh journal generation, so
 * that whatever part of this batch reached the journal is never replayed.
 * A file system that has space again thus serves on, without a restart.
 * (What a failed data fdatasync left clean is made dirty again at once:
 * redirty_unsynced.)
 */
static void commit_failed(struct ns *ns, struct commit_item *it, int rc)
{
	if (!ns->failing)
		log_error("namespace %u: group commit failed: %s; syncs fail until one succeeds",
			  ns->info.nsid, strerror(-rc));
	__atomic_store_n(&ns->failing, true, __ATOMIC_RELAXED);
	if (!ns->info.zoned)
		return;
	zmeta_discard(&ns->meta, &it->batch);
	ns->need_ckpt = true;
	zns_mark_all_dirty(&ns->z);
}

/*
 * A commit that succeeded after starting past the last zone marked
 * undurable journaled every zone a failed Reset left (commit_failed listed
 * them all again, and every commit since either failed, listing them again,
 * or made what it took durable): their blocks may change again.
 */
static void release_undurable(struct ns *ns, uint64_t started)
{
	if (!__atomic_load_n(&ns->undurable_mark, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&ns->undurable_lock);
	if (ns->undurable_mark && started > ns->undurable_mark) {
		zns_clear_undurable(&ns->z);
		__atomic_store_n(&ns->undurable_mark, 0, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&ns->undurable_lock);
}

static void undurable_asked_done(void *arg, uint16_t status)
{
	(void)status;
	__atomic_store_n(&((struct ns *)arg)->undurable_asked, false, __ATOMIC_RELEASE);
}

/* Refusals ask for a commit at most this often (undurable_refusal). */
#define UNDURABLE_ASK_NS 100000000ull

/*
 * Zone i's Reset is not durable yet (commit_resets): the status whatever
 * would write its blocks fails with, or 0. A refusal asks for the commit
 * that would make it durable - a host that only writes never sends the
 * Flush that would - one at a time and at most every UNDURABLE_ASK_NS: a
 * commit after a failed one journals every zone, and a journal that keeps
 * failing is not to be retried once per refused command.
 */
static uint16_t undurable_refusal(struct ns *ns, uint32_t i)
{
	uint16_t st = zns_undurable(&ns->z, i);
	if (!st)
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (now >= __atomic_load_n(&ns->undurable_ask_at, __ATOMIC_ACQUIRE) &&
	    !__atomic_exchange_n(&ns->undurable_asked, true, __ATOMIC_ACQ_REL)) {
		__atomic_store_n(&ns->undurable_ask_at, now + UNDURABLE_ASK_NS, __ATOMIC_RELEASE);
		queue_sync(ns, undurable_asked_done, ns);
	}
	return st;
}

/* Steps 2 (when it overlaps) to 5. */
static void commit_journal(struct ns *ns, struct commit_item *it)
{
	int rc = it->rc;
	if (!rc && ns->info.zoned && it->batch.records) {
		if (it->sync_data)
			dsync_start(ns);
		if (ns->need_ckpt) {
			rc = zmeta_checkpoint(&ns->meta);
			ns->need_ckpt = rc != 0;
			ns_stat_add(&ns->stats.checkpoints, !rc);
		}
		if (!rc) {
			uint32_t records = it->batch.records;
			rc = zmeta_write(&ns->meta, &it->batch);
			if (!rc) {
				ns_stat_add(&ns->stats.batches, 1);
				ns_stat_add(&ns->stats.records, records);
			}
		}
		if (it->sync_data) {
			int drc = dsync_wait(ns);
			if (!drc)
				ns->data_synced = it->writes;
			else
				redirty_unsynced(ns);
			if (drc && !rc)
				rc = drc; /* the records written are never applied (commit_failed) */
		}
		/* Both syncs returned: the image may follow, and the records are
		 * durable whatever the checkpoint does; a failed one is retried
		 * before the next record. */
		if (!rc) {
			/* Failing, it has logged why; the batch is durable all
			 * the same, and the commits after it fail. */
			(void)zmeta_apply(&ns->meta, &it->batch);
			if (zmeta_needs_checkpoint(&ns->meta)) {
				ns->need_ckpt = zmeta_checkpoint(&ns->meta) != 0;
				ns_stat_add(&ns->stats.checkpoints, !ns->need_ckpt);
			}
		}
	}
	if (rc) {
		commit_failed(ns, it, rc);
	} else {
		release_undurable(ns, it->started);
		if (ns->failing) {
			log_info("namespace %u: group commit works again", ns->info.nsid);
			__atomic_store_n(&ns->failing, false, __ATOMIC_RELAXED);
		}
	}
	it->batch.len = 0;
	it->batch.records = 0;
	it->rc = rc;
	ns_stat_add(&ns->stats.commits, 1);
	ns_stat_add(&ns->stats.sync_requests, it->waiters.n);
	ns_stat_add(&ns->stats.failures, rc != 0);
	for (size_t i = 0; i < it->waiters.n; i++)
		it->waiters.v[i].cb(it->waiters.v[i].arg, sync_status(rc));
	it->waiters.n = 0;
}

/* The whole commit on the calling thread (open and close). */
static int commit_now(struct ns *ns)
{
	ns->item.rc = commit_prepare(ns, &ns->item, false);
	commit_journal(ns, &ns->item);
	return ns->item.rc;
}

static void *commit_main(void *arg)
{
	struct ns *ns = arg;
	struct commit_item *it = &ns->item;
	pthread_mutex_lock(&ns->commit_lock);
	for (;;) {
		while (!ns->stop && !ns->queued.n)
			pthread_cond_wait(&ns->commit_cond, &ns->commit_lock);
		if (ns->abandoned || (ns->stop && !ns->queued.n))
			break;
		struct waiter_list t = it->waiters;
		it->waiters = ns->queued;
		ns->queued = t;
		pthread_mutex_unlock(&ns->commit_lock);

		it->rc = commit_prepare(ns, it, true);
		commit_journal(ns, it);

		pthread_mutex_lock(&ns->commit_lock);
	}
	pthread_mutex_unlock(&ns->commit_lock);
	return NULL;
}

static void queue_sync(struct ns *ns, ns_sync_cb cb, void *arg)
{
	pthread_mutex_lock(&ns->commit_lock);
	waiters_push(&ns->queued, cb, arg);
	pthread_cond_signal(&ns->commit_cond);
	pthread_mutex_unlock(&ns->commit_lock);
}

/* The commit thread runs a sync whose barrier failed to arm: it fails. */
static void barrier_failed(void *arg, uint16_t status)
{
	struct gap_barrier *b = arg;
	(void)status;
	b->cb(b->arg, nvme_err(NVME_SC_INTERNAL));
	free(b);
}

static void barrier_put(struct gap_barrier *b)
{
	if (__atomic_sub_fetch(&b->pending, 1, __ATOMIC_ACQ_REL))
		return;
	/* Possibly under a zone lock (gap_ready): the caller's callback runs
	 * on the commit thread, even to report the failure. */
	if (b->failed) {
		queue_sync(b->ns, barrier_failed, b);
		return;
	}
	queue_sync(b->ns, b->cb, b->arg);
	free(b);
}

static void gap_ready(struct zone_waiter *zw)
{
	struct gap_waiter *gw = (struct gap_waiter *)zw;
	struct gap_barrier *b = gw->b;
	free(gw);
	barrier_put(b);
}

void ns_sync(struct ns *ns, ns_sync_cb cb, void *arg)
{
	if (!ns->info.zoned || !zns_gapped(&ns->z)) {
		queue_sync(ns, cb, arg);
		return;
	}
	/*
	 * Rare path (a write ended before an older one to the same zone):
	 * wait for the prefix of each such zone. More zones may gap meanwhile;
	 * those need not be waited for, but nothing tells them from the ones
	 * gapped at this call, which must be. So the scan visits every zone,
	 * and cannot stop after as many gapped zones as zns_gapped() counted:
	 * one that gapped meanwhile, found first, would take the place of one
	 * gapped at this call - whose write, ended before this sync, would
	 * then be acknowledged by a commit recording its zone below it.
	 * (The walk is over the gapped zones' bitmap: zns_next_gapped.)
	 */
	struct gap_barrier *b = malloc(sizeof(*b));
	if (!b) {
		cb(arg, nvme_err(NVME_SC_INTERNAL));
		return;
	}
	*b = (struct gap_barrier){ .ns = ns, .cb = cb, .arg = arg, .pending = 1 };
	struct gap_waiter *gw = NULL; /* allocated, not parked yet */
	for (uint32_t i = zns_next_gapped(&ns->z, 0); i < zns_nr_zones(&ns->z);
	     i = zns_next_gapped(&ns->z, i + 1)) {
		if (!gw && !(gw = malloc(sizeof(*gw)))) {
			b->failed = true;
			break;
		}
		*gw = (struct gap_waiter){ .zw.ready = gap_ready, .b = b };
		__atomic_add_fetch(&b->pending, 1, __ATOMIC_ACQ_REL);
		if (zns_wait_gap(&ns->z, i, &gw->zw))
			gw = NULL; /* parked: gap_ready() frees it */
		else
			__atomic_sub_fetch(&b->pending, 1, __ATOMIC_ACQ_REL);
	}
	free(gw);
	barrier_put(b);
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	uint16_t status;
};

static void sync_wait_cb(void *arg, uint16_t status)
{
	struct sync_wait *sw = arg;
	pthread_mutex_lock(&sw->lock);
	sw->done = true;
	sw->status = status;
	pthread_cond_signal(&sw->cond);
	pthread_mutex_unlock(&sw->lock);
}

/* Queue a sync with sync (ns_sync or queue_sync) and wait for its status. */
static uint16_t wait_for(struct ns *ns, void (*sync)(struct ns *, ns_sync_cb, void *))
{
	struct sync_wait sw = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };
	sync(ns, sync_wait_cb, &sw);
	pthread_mutex_lock(&sw.lock);
	while (!sw.done)
		pthread_cond_wait(&sw.cond, &sw.lock);
	pthread_mutex_unlock(&sw.lock);
	return sw.status;
}

uint16_t ns_sync_wait(struct ns *ns)
{
	return wait_for(ns, ns_sync);
}

/* ---- open / close ---- */

/*
 * Room for the data file. preallocate = yes: allocate all of it now, or
 * refuse with the reason. Otherwise (thin provisioning) warn when its file
 * system has less free space than the file may still take: writes will
 * then fail with Capacity Exceeded once it fills.
 */
static int data_space(struct ns *ns, const struct ns_config *cfg, const char *path, char *err,
		      size_t errlen)
{
	uint64_t size = ns->info.nlbas << ns->info.lba_shift;
	if (cfg->preallocate) {
		int rc = blockstore_preallocate(&ns->bs);
		if (rc)
			return errmsg(err, errlen, "%s: cannot allocate its %llu bytes (preallocate = "
				      "yes): %s", path, (unsigned long long)size,
				      rc == -EOPNOTSUPP ? "the file system cannot preallocate"
							 : strerror(-rc));
		return 0;
	}
	struct statvfs vfs;
	uint64_t need = blockstore_unallocated(&ns->bs);
	if (need && !fstatvfs(ns->bs.fd, &vfs) && (uint64_t)vfs.f_bavail * vfs.f_frsize < need)
		log_warn("namespace %u: %s may still take %llu bytes, but its file system has %llu "
			 "free: writes will fail with Capacity Exceeded when it is full (set "
			 "preallocate = yes to reserve the space)", ns->info.nsid, path,
			 (unsigned long long)need,
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize);
	return 0;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static void fill_info(struct ns *ns, const struct ns_config *cfg)
{
	struct ns_info *in = &ns->info;
	in->nsid = cfg->nsid;
	in->zoned = cfg->zoned;
	in->lba_shift = cfg->lba_size == 512 ? 9 : 12;
	in->nlbas = cfg->size >> in->lba_shift;
	in->write_cache = cfg->write_cache;
	if (!cfg->zoned)
		return;
	in->zone_size = cfg->zone_size >> in->lba_shift;
	in->zone_cap = (cfg->zone_capacity ? cfg->zone_capacity : cfg->zone_size) >> in->lba_shift;
	in->nr_zones = (uint32_t)(in->nlbas / in->zone_size);
	in->max_open = cfg->max_open;
	in->max_active = cfg->max_active;
	in->zde_size = cfg->zde_size;
	in->zasl_bytes = cfg->zone_append_max ? cfg->zone_append_max : 128 * 1024;
	in->cross_zone_read = cfg->cross_zone_read;
	in->zrwa_lbas = (uint32_t)(cfg->zrwa_size >> in->lba_shift);
	in->zrwa_fg = (uint32_t)(cfg->zrwa_flush_granularity >> in->lba_shift);
	in->nr_zrwa = !in->zrwa_lbas ? 0 : cfg->zrwa_resources ? cfg->zrwa_resources
				   : in->max_active ? in->max_active : in->nr_zones;
}

/* Config lists -> zone indexes: an explicit list, or the last N zones. */
static uint32_t zone_list(const uint32_t *list, uint32_t len, uint32_t count, uint32_t nr_zones,
			  uint32_t *out)
{
	if (len) {
		memcpy(out, list, len * sizeof(*out));
		return len;
	}
	uint32_t n = count < nr_zones ? count : nr_zones;
	for (uint32_t k = 0; k < n; k++)
		out[k] = nr_zones - n + k;
	return n;
}

/*
 * A namespace keeps these files in its directory. One with none of them is
 * new and is created; one with only some of them is refused (only --format,
 * or --recover where it can, makes state anew): making a missing file afresh
 * would silently throw away what the others describe.
 */
static const char *const ns_files[] = { NS_ID_NAME, "data", ZMETA_IMG_NAME, ZMETA_JNL_NAME };

static int dir_is_new(const char *dir, bool *fresh, char *err, size_t errlen)
{
	*fresh = true;
	for (size_t i = 0; i < sizeof(ns_files) / sizeof(ns_files[0]); i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/%s", dir, ns_files[i]);
		if (!access(p, F_OK))
			*fresh = false;
		else if (errno != ENOENT)
			return errmsg(err, errlen, "%s: %s", p, strerror(errno));
	}
	return 0;
}

/*
 * A conventional namespace has no zone state: a directory holding one is a
 * zoned namespace's, and opening it conventional would ignore its zones (every
 * block readable and writable, above the write pointers too) and leave them
 * disagreeing with the data when it is zoned again. Refused, as any change of
 * the geometry; --format drops them (it erases the data they describe).
 */
static int zone_files(const char *dir, bool format, char *err, size_t errlen)
{
	static const char *const names[] = { ZMETA_IMG_NAME, ZMETA_JNL_NAME };
	for (size_t i = 0; i < 2; i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		if (format) {
			if (unlink(p) && errno != ENOENT)
				return errmsg(err, errlen, "%s: %s", p, strerror(errno));
			continue;
		}
		if (!access(p, F_OK))
			return errmsg(err, errlen, "%s: this directory holds a zoned namespace's zone "
				    "state, but the configuration makes the namespace conventional. Fix "
				    "the configuration (zoned = yes), or start once with --format to "
				    "erase this namespace's data and zone state", p);
		if (errno != ENOENT)
			return errmsg(err, errlen, "%s: %s", p, strerror(errno));
	}
	return 0;
}

/*
 * The data file must hold every block below a write pointer. A missing or
 * shorter one is refused; --recover keeps it (or makes an empty one) and
 * makes each zone whose written blocks it lacks Read Only, so that the host
 * sees which zones lost data (the lost blocks read as zeros).
 */
static int check_data(struct ns *ns, const struct ns_config *cfg, const char *path, char *err,
		      size_t errlen)
{
	struct stat st;
	bool missing = stat(path, &st) != 0;
	if (missing && errno != ENOENT)
		return errmsg(err, errlen, "%s: %s", path, strerror(errno));
	uint32_t last = 0;
	uint64_t have = missing ? 0 : (uint64_t)st.st_size;
	uint64_t need = ns->info.zoned ? ns_data_needed(&ns->z, &last) : 0;
	if (!missing && have >= need)
		return 0;
	char what[128];
	if (need)
		snprintf(what, sizeof(what), "%s (zone %u is written up to byte %llu)",
			 missing ? "missing" : "shorter than the written zones need", last,
			 (unsigned long long)need);
	else
		snprintf(what, sizeof(what), "missing");
	if (!cfg->recover)
		return errmsg(err, errlen, "%s: %s. Restore the file, or start once with --recover "
			    "NQN/%u (this subsystem's NQN; %s), or with --format to erase this "
			    "namespace's data and zone state", path, what, cfg->nsid,
			    ns->info.zoned ? "the zones whose data it lacks become Read Only"
					   : "an empty data file is made");
	log_warn("%s: %s; %s", path, what, missing ? "making an empty one" : "keeping it");
	for (uint32_t i = 0; ns->info.zoned && i < zns_nr_zones(&ns->z); i++) {
		uint8_t state = zns_zone_state(&ns->z, i);
		uint64_t wp = zns_zone_wp(&ns->z, i);
		if (state == NVME_ZNS_ZS_OFFLINE || state == NVME_ZNS_ZS_READ_ONLY ||
		    wp == zns_zslba(&ns->z, i) || wp << ns->info.lba_shift <= have)
			continue;
		log_warn("%s: zone %u: written blocks lost (write pointer %#llx): made Read Only",
			 path, i, (unsigned long long)wp);
		zns_load(&ns->z, i, NVME_ZNS_ZS_READ_ONLY, zns_zone_attrs(&ns->z, i), wp);
	}
	return 0;
}

/* Recovery reads the data file before the block store is opened (and
 * before the file is checked: what cannot be read is left to that check). */
struct recovery_data {
	struct ns *ns;
	struct blockstore bs;
};

static int recovery_crc(void *ctx, uint64_t lba, uint32_t nlb, uint32_t *crc)
{
	struct recovery_data *rd = ctx;
	return blocks_crc(rd->ns, &rd->bs, lba, nlb, crc);
}

static int load_zoned(struct ns *ns, const struct ns_config *cfg, enum zmeta_mode mode,
		      char *err, size_t errlen)
{
	const struct ns_info *in = &ns->info;
	struct zns_geom g = {
		.lba_shift = in->lba_shift,
		.zone_size = in->zone_size,
		.zone_cap = in->zone_cap,
		.nr_zones = in->nr_zones,
		.max_open = in->max_open,
		.max_active = in->max_active,
		.zde_size = in->zde_size,
		.zasl_nlb = in->zasl_bytes >> in->lba_shift,
		.cross_zone_read = in->cross_zone_read,
		.zrwa_lbas = in->zrwa_lbas,
		.zrwa_fg = in->zrwa_fg,
		.nr_zrwa = in->nr_zrwa,
	};
	if (zns_init(&ns->z, &g) || (in->zde_size && !(ns->zde_buf = malloc(in->zde_size))) ||
	    !(ns->crc_buf = malloc(CRC_CHUNK)))
		return errmsg(err, errlen, "namespace %u: bad zone geometry or out of memory", in->nsid);
	char data[PATH_MAX + 8];
	snprintf(data, sizeof(data), "%s/data", ns->dir);
	struct recovery_data rd = {
		.ns = ns,
		.bs = { .fd = mode == ZMETA_FORMAT ? -1 : open(data, O_RDONLY | O_CLOEXEC),
			.lba_shift = in->lba_shift, .nlbas = in->nlbas },
	};
	struct zmeta_geom mg = {
		.nsid = in->nsid,
		.lba_shift = in->lba_shift,
		.nlbas = in->nlbas,
		.zone_size = in->zone_size,
		.zone_cap = in->zone_cap,
		.nr_zones = in->nr_zones,
		.zde_size = in->zde_size,
		.max_open = in->max_open,
		.max_active = in->max_active,
		.zrwa_lbas = in->zrwa_lbas,
		.jnl_limit = cfg->journal_size,
		.data_crc = rd.bs.fd >= 0 ? recovery_crc : NULL,
		.data_ctx = &rd,
	};
	int rc = zmeta_open(&ns->meta, ns->dir, &mg, mode, &ns->z, err, errlen);
	blockstore_close(&rd.bs);
	if (rc)
		return -1;
	if (ns->meta.torn_data)
		log_warn("namespace %u: %llu journal record(s) of the last batch dropped: their data "
			 "had not reached the disk (a torn write)", in->nsid,
			 (unsigned long long)ns->meta.torn_data);
	if (ns->meta.replayed)
		log_info("namespace %u: replayed %llu journal record(s)", in->nsid,
			 (unsigned long long)ns->meta.replayed);
	if (mode == ZMETA_RECOVER)
		log_warn("namespace %u: recovered: %llu damaged journal record(s) dropped, %u "
			 "zone(s) made Read Only", in->nsid, (unsigned long long)ns->meta.dropped,
			 ns->meta.read_only);
	return 0;
}

/*
 * Zones the power-up rule finishes get their write pointer moved to the end
 * of their capacity without being written: what the file holds above the
 * old write pointer (writes that never became durable) must read as zeros
 * from now on, so it is erased first - before the Finish is journaled.
 */
static int power_up(struct ns *ns, const struct ns_config *cfg, char *err, size_t errlen)
{
	const struct ns_info *in = &ns->info;
	uint32_t *off = calloc(in->nr_zones, sizeof(*off)), *ro = calloc(in->nr_zones, sizeof(*ro));
	uint64_t *wp = calloc(in->nr_zones, sizeof(*wp));
	if (!off || !ro || !wp) {
		free(off);
		free(ro);
		free(wp);
		return errmsg(err, errlen, "out of memory");
	}
	for (uint32_t i = 0; i < in->nr_zones; i++)
		wp[i] = zns_zone_wp(&ns->z, i);
	uint32_t noff = zone_list(cfg->offline_list, cfg->offline_list_len, cfg->offline_count,
				  in->nr_zones, off);
	uint32_t nro = zone_list(cfg->readonly_list, cfg->readonly_list_len, cfg->readonly_count,
				 in->nr_zones, ro);
	uint32_t changed = zns_power_up(&ns->z, off, noff, ro, nro);
	free(off);
	free(ro);
	/* A zone with a ZRWA keeps what its window holds (acknowledged writes
	 * into it are as durable as any), but the blocks above the window
	 * hold only writes never acknowledged - data that an implicit flush
	 * not made durable would have covered: erased, or a later flush would
	 * make them readable. */
	int rc = 0;
	for (uint32_t i = 0; !rc && i < in->nr_zones; i++) {
		uint64_t from = zns_zone_wp(&ns->z, i) > wp[i] ? wp[i]
			      : zns_zone_attrs(&ns->z, i) & NVME_ZNS_ZA_ZRWAV
				? zns_zone_readable(&ns->z, i) : UINT64_MAX;
		uint64_t end = zns_zslba(&ns->z, i) + in->zone_size;
		if (from < end)
			rc = blockstore_zero(&ns->bs, from, end - from);
	}
	free(wp);
	if (changed)
		log_info("namespace %u: power-up closed, emptied or finished %u zone(s)", in->nsid,
			 changed);
	if (rc)
		return errmsg(err, errlen, "namespace %u: %s", in->nsid, strerror(-rc));
	const char *bad = zns_check(&ns->z);
	if (bad)
		return errmsg(err, errlen, "namespace %u: recovered zone state is inconsistent: %s",
			    in->nsid, bad);
	/* Start a fresh journal generation before anything is written to it
	 * (zmeta.h: what lies past the replayed run - a torn batch, damaged
	 * records - can then never be mistaken for records of this run),
	 * record the power-up changes, and checkpoint them. */
	rc = blockstore_sync(&ns->bs);
	if (rc) {
		/* Replay vouched for the data of the last batch by what the
		 * page cache holds: pages the failed sync left clean would pass
		 * the next open's sync unwritten (redirty_unsynced). */
		(void)blockstore_redirty(&ns->bs, 0, in->nlbas);
	}
	/* Every check passed and the data is durable: the replayed image
	 * (a private copy until now) becomes zones.img. */
	if (!rc)
		rc = zmeta_keep(&ns->meta);
	if (!rc)
		rc = zmeta_checkpoint(&ns->meta);
	if (!rc)
		rc = commit_now(ns);
	if (!rc)
		rc = zmeta_checkpoint(&ns->meta);
	if (rc)
		return errmsg(err, errlen, "namespace %u: %s", in->nsid, strerror(-rc));
	return 0;
}

/*
 * Open order: identity, zone state (which says how much data there must
 * be), the data file checked against it, then the power-up rule. Nothing is
 * written before every check has passed, except what --recover repairs.
 */
int ns_open(const struct ns_config *cfg, bool format, struct ns **out, char *err, size_t errlen)
{
	struct ns *ns = calloc(1, sizeof(*ns));
	if (!ns)
		return errmsg(err, errlen, "out of memory");
	ns->cfg = cfg;
	ns->bs.fd = -1;
	ns->meta.img_fd = ns->meta.jnl_fd = -1;
	fill_info(ns, cfg);
	snprintf(ns->dir, sizeof(ns->dir), "%s", cfg->path);
	bool fresh;
	int rc = mkdir_p(ns->dir);
	if (rc) {
		errmsg(err, errlen, "%s: %s", ns->dir, strerror(-rc));
		goto out;
	}
	if (dir_is_new(ns->dir, &fresh, err, errlen))
		goto out;
	bool create = format || fresh;
	if (!ns->info.zoned && zone_files(ns->dir, format, err, errlen))
		goto out;
	if (load_identity(ns, cfg, create, err, errlen))
		goto out;
	if (resv_ns_open(ns->dir, cfg->nsid, create, cfg->recover, &ns->resv, err, errlen))
		goto out;
	enum zmeta_mode mode = create ? ZMETA_FORMAT : cfg->recover ? ZMETA_RECOVER : ZMETA_LOAD;
	if (ns->info.zoned && load_zoned(ns, cfg, mode, err, errlen))
		goto out;
	char data[PATH_MAX + 8];
	snprintf(data, sizeof(data), "%s/data", ns->dir);
	if (!create && check_data(ns, cfg, data, err, errlen))
		goto out;
	rc = blockstore_open(&ns->bs, data, ns->info.lba_shift, ns->info.nlbas, format);
	if (rc) {
		errmsg(err, errlen, "%s: %s", data, strerror(-rc));
		goto out;
	}
	if (data_space(ns, cfg, data, err, errlen))
		goto out;
	if (!ns->info.zoned && written_init(&ns->written, ns->info.nlbas << ns->info.lba_shift)) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	if (ns->info.zoned && power_up(ns, cfg, err, errlen))
		goto out;
	pthread_mutex_init(&ns->commit_lock, NULL);
	pthread_cond_init(&ns->commit_cond, NULL);
	pthread_mutex_init(&ns->undurable_lock, NULL);
	pthread_mutex_init(&ns->dsync_lock, NULL);
	pthread_cond_init(&ns->dsync_cond, NULL);
	/* Only a zoned namespace overlaps the data sync (commit_prepare). */
	if (ns->info.zoned) {
		if (pthread_create(&ns->dsync_thread, NULL, dsync_main, ns)) {
			errmsg(err, errlen, "namespace %u: cannot start its data sync thread",
			       ns->info.nsid);
			goto out;
		}
		ns->dsync_running = true;
	}
	if (pthread_create(&ns->commit_thread, NULL, commit_main, ns)) {
		errmsg(err, errlen, "namespace %u: cannot start its commit thread", ns->info.nsid);
		stop_dsync_thread(ns);
		goto out;
	}
	/* An open frees megabytes it needed only while opening (the replay
	 * buffer, the power-up commit's batch, the power-up rule's lists). glibc
	 * keeps freed heap pages resident, and once a large block has been
	 * freed it serves the next ones from the heap rather than mapping
	 * them, so they would stay: give the pages back (RAM per zone,
	 * doc/performance.md). */
	malloc_trim(0);
	*out = ns;
	return 0;
out:
	if (ns->info.zoned) {
		zmeta_close(&ns->meta); /* before zmeta_keep(), zones.img stays as found */
		zns_destroy(&ns->z);
	}
	blockstore_close(&ns->bs);
	written_free(&ns->written);
	zmeta_batch_free(&ns->item.batch);
	resv_ns_close(ns->resv);
	free(ns->zde_buf);
	free(ns->crc_buf);
	free(ns);
	return -1;
}

static void stop_commit_thread(struct ns *ns, bool abandon)
{
	pthread_mutex_lock(&ns->commit_lock);
	ns->stop = true;
	ns->abandoned = abandon;
	pthread_cond_signal(&ns->commit_cond);
	pthread_mutex_unlock(&ns->commit_lock);
	pthread_join(ns->commit_thread, NULL);
	stop_dsync_thread(ns);
}

static void ns_free(struct ns *ns)
{
	if (ns->info.zoned) {
		zmeta_close(&ns->meta);
		zns_destroy(&ns->z);
	}
	blockstore_close(&ns->bs);
	pthread_mutex_destroy(&ns->commit_lock);
	pthread_cond_destroy(&ns->commit_cond);
	pthread_mutex_destroy(&ns->undurable_lock);
	pthread_mutex_destroy(&ns->dsync_lock);
	pthread_cond_destroy(&ns->dsync_cond);
	free(ns->queued.v);
	free(ns->item.waiters.v);
	written_free(&ns->written);
	zmeta_batch_free(&ns->item.batch);
	resv_ns_close(ns->resv);
	free(ns->zde_buf);
	free(ns->crc_buf);
	free(ns);
}

void ns_close(struct ns *ns)
{
	stop_commit_thread(ns, false);
	int rc = commit_now(ns);
	if (!rc && ns->info.zoned)
		rc = zmeta_checkpoint(&ns->meta);
	if (rc)
		log_error("namespace %u: final checkpoint failed: %s", ns->info.nsid,
			  strerror(-rc));
	ns_free(ns);
}

void ns_abandon(struct ns *ns)
{
	stop_commit_thread(ns, true);
	ns_free(ns);
}

const struct ns_info *ns_info(const struct ns *ns)
{
	return &ns->info;
}

struct ns_stats *ns_stats(struct ns *ns)
{
	return &ns->stats;
}

struct resv_ns *ns_resv(struct ns *ns)
{
	return ns->resv;
}

struct zns *ns_zones(struct ns *ns)
{
	return ns->info.zoned ? &ns->z : NULL;
}

void ns_health(struct ns *ns, bool *syncs_failing, bool *image_lost)
{
	*syncs_failing = __atomic_load_n(&ns->failing, __ATOMIC_RELAXED);
	*image_lost = ns->info.zoned && __atomic_load_n(&ns->meta.lost, __ATOMIC_RELAXED);
}

/* ---- I/O ---- */

static uint16_t range_check(const struct ns *ns, uint64_t slba, uint64_t nlb)
{
	if (!nlb || slba >= ns->info.nlbas || nlb > ns->info.nlbas - slba)
		return nvme_err(NVME_SC_LBA_RANGE);
	return 0;
}

uint16_t ns_read_check(struct ns *ns, uint64_t slba, uint32_t nlb)
{
	return ns->info.zoned ? zns_read_check(&ns->z, slba, nlb) : range_check(ns, slba, nlb);
}

/*
 * Reads of a zoned namespace: blocks at or above a zone's write pointer read
 * as zeros (DLFEAT; ZNS 2.1.4.1) whatever the file holds there - writes that
 * never became durable before a crash, or zone state recovery dropped. The
 * write pointer decides, so recovery never erases the file: only a Reset, a
 * Finish or a write changes what it holds. Below the write pointer, the
 * blocks of writes still in flight read as zeros too: the write pointer
 * moved when they were admitted, and until their data lands the file holds
 * there what the zone held before its last Reset (zns_read_run() has the
 * whole rule). Each run of blocks is decided before it is read, so a write
 * landing meanwhile is either read or zeros, never data from before it.
 */
typedef int (*read_fn)(struct blockstore *bs, uint64_t lba, uint32_t nlb,
		       const struct iovec *iov, int iovcnt);

static void iov_zero(const struct iovec *iov, int iovcnt, size_t off, size_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t n = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		memset((char *)iov[i].iov_base + off, 0, n);
		len -= n;
		off = 0;
	}
}

/* Read [from, to) of the range [slba, end) that iov holds. */
static int read_part(struct ns *ns, uint64_t slba, uint64_t end, uint64_t from, uint64_t to,
		     const struct iovec *iov, int iovcnt, read_fn fn)
{
	if (from >= to)
		return 0;
	if (from == slba && to == end)
		return fn(&ns->bs, from, (uint32_t)(to - from), iov, iovcnt);
	/* As many pieces as the block store takes: a PCIe read in guest
	 * pages has one per page (257 for 1 MiB). */
	struct iovec part[IOV_MAX];
	if (iovcnt > IOV_MAX)
		return -EINVAL;
	memcpy(part, iov, sizeof(*iov) * (size_t)iovcnt);
	struct iovec *v = part;
	int n = iovcnt;
	iov_consume(&v, &n, (size_t)(from - slba) << ns->info.lba_shift);
	size_t left = (size_t)(to - from) << ns->info.lba_shift;
	int used = 0;
	for (; used < n && left; used++) {
		if (v[used].iov_len > left)
			v[used].iov_len = left;
		left -= v[used].iov_len;
	}
	if (left)
		return -EINVAL; /* iovec shorter than the range */
	return fn(&ns->bs, from, (uint32_t)(to - from), v, used);
}

static int read_zoned(struct ns *ns, uint64_t slba, uint32_t nlb, const struct iovec *iov,
		      int iovcnt, read_fn fn)
{
	uint64_t end = slba + nlb, run = slba; /* [run, lba): from the file, not read yet */
	for (uint64_t lba = slba; lba < end;) {
		bool file;
		uint64_t to = zns_read_run(&ns->z, lba, end, &file);
		if (!file) {
			int rc = read_part(ns, slba, end, run, lba, iov, iovcnt, fn);
			if (rc)
				return rc;
			iov_zero(iov, iovcnt, (size_t)(lba - slba) << ns->info.lba_shift,
				 (size_t)(to - lba) << ns->info.lba_shift);
			run = to;
		}
		lba = to;
	}
	return read_part(ns, slba, end, run, end, iov, iovcnt, fn);
}

uint16_t ns_read(struct ns *ns, uint64_t slba, uint32_t nlb, const struct iovec *iov, int iovcnt)
{
	int rc = ns->info.zoned ? read_zoned(ns, slba, nlb, iov, iovcnt, blockstore_read)
				: blockstore_read(&ns->bs, slba, nlb, iov, iovcnt);
	return io_status(rc, false);
}

bool ns_read_cached(struct ns *ns, uint64_t slba, uint32_t nlb, const struct iovec *iov,
		    int iovcnt, uint16_t *status)
{
	int rc = ns->info.zoned ? read_zoned(ns, slba, nlb, iov, iovcnt, blockstore_read_cached)
				: blockstore_read_cached(&ns->bs, slba, nlb, iov, iovcnt);

	if (rc == -EAGAIN)
		return false;
	*status = io_status(rc, false);
	return true;
}

const void *ns_read_borrow(struct ns *ns, uint64_t slba, uint32_t nlb)
{
	/* Only a range that reads from the file whole, by read_zoned()'s rule:
	 * one run within one zone. */
	bool file;
	if (ns->info.zoned && (zns_read_run(&ns->z, slba, slba + nlb, &file) != slba + nlb || !file))
		return NULL;
	return blockstore_borrow(&ns->bs, slba, nlb);
}

uint16_t ns_write_begin(struct ns *ns, struct ns_write *w, enum ns_write_kind kind,
			uint64_t slba, uint32_t nlb)
{
	if (ns->info.zoned) {
		uint16_t st = zns_write_begin(&ns->z, w, kind, slba, nlb);
		if (st && __atomic_load_n(&ns->undurable_mark, __ATOMIC_ACQUIRE) &&
		    slba < ns->info.nlbas)
			undurable_refusal(ns, zns_zone_of(&ns->z, slba));
		return st;
	}
	if (kind == NS_ZONE_APPEND)
		return nvme_err(NVME_SC_INVALID_OPCODE);
	w->kind = (uint8_t)kind;
	w->slba = slba;
	w->nlb = nlb;
	return range_check(ns, slba, nlb);
}

static int zero_range(void *ctx, uint64_t lba, uint64_t nlb)
{
	return blockstore_zero(&((struct ns *)ctx)->bs, lba, nlb);
}

uint16_t ns_write_data(struct ns *ns, struct ns_write *w, const struct iovec *iov, int iovcnt)
{
	if (ns->info.zoned) {
		/* After zeroing and fences in the zone; a Reset or Finish that
		 * dropped w meanwhile says what w fails with. */
		uint16_t st = zns_write_start(&ns->z, w);
		if (st)
			return st;
	}
	uint64_t off = w->slba << ns->info.lba_shift, len = (uint64_t)w->nlb << ns->info.lba_shift;
	unsigned held = ns->info.zoned ? 0 : written_begin(&ns->written, off, len);
	int rc = w->kind == NS_WRITE_ZEROES ? blockstore_zero(&ns->bs, w->slba, w->nlb)
					    : blockstore_write(&ns->bs, w->slba, w->nlb, iov, iovcnt);
	if (!ns->info.zoned)
		written_end(&ns->written, held, off, len);
	/* Part of the data may have landed (a short or torn write). While the
	 * range is still w's, make it read as zeros (best effort: it is above
	 * the write pointer once given back, or indeterminate if kept), which
	 * also frees the space a full file system needs; then give it back or
	 * keep it (zns_write_fail). Never on a conventional namespace, whose
	 * blocks held data before. */
	if (rc && ns->info.zoned) {
		zns_on_failed(&ns->z, w, zero_range, ns);
		/* The zeroing is a data write: a commit that records the
		 * zone after zns_write_fail() (Finished by Controller over
		 * the range) syncs it first. */
		__atomic_add_fetch(&ns->data_writes, 1, __ATOMIC_RELEASE);
		zns_write_fail(&ns->z, w);
	}
	if (ns->info.zoned)
		zns_write_landed(&ns->z, w);
	return io_status(rc, true);
}

void ns_write_end(struct ns *ns, struct ns_write *w, uint16_t status)
{
	/* Count the write before publishing its write pointer (commit_prepare
	 * reads the counter after its snapshot). */
	__atomic_add_fetch(&ns->data_writes, 1, __ATOMIC_RELEASE);
	if (ns->info.zoned)
		zns_write_end(&ns->z, w, status == 0);
}

uint16_t ns_deallocate(struct ns *ns, uint64_t slba, uint64_t nlb)
{
	uint16_t st = range_check(ns, slba, nlb);
	if (st)
		return st;
	/* On a zoned namespace deallocation is advisory (it would move no
	 * write pointer), so it is not done: the zone's data stays readable. */
	if (ns->info.zoned)
		return 0;
	uint64_t off = slba << ns->info.lba_shift, len = nlb << ns->info.lba_shift;
	unsigned held = written_begin(&ns->written, off, len);
	int rc = blockstore_zero(&ns->bs, slba, nlb);
	written_end(&ns->written, held, off, len);
	if (!rc)
		__atomic_add_fetch(&ns->data_writes, 1, __ATOMIC_RELEASE);
	return io_status(rc, true);
}

/* ---- ZNS ---- */

static uint16_t not_zoned(void)
{
	return nvme_err(NVME_SC_INVALID_OPCODE);
}

/*
 * Finish moves a zone's write pointer to the end of its capacity without
 * writing: what the file holds above the write pointer (writes that never
 * became durable before a crash) and under the writes in flight that the
 * Finish drops before their data moves would become readable, so it is
 * erased first, and counted as a data write so that the erasure is synced
 * before the Finish is journaled. Whether a zone needs it: not when Full,
 * Read Only or Offline (the Finish changes nothing or is refused), nor when
 * Empty under Select All (which leaves it).
 */
static bool finish_erases(uint8_t s, bool select_all)
{
	return s != NVME_ZNS_ZS_FULL && s != NVME_ZNS_ZS_READ_ONLY && s != NVME_ZNS_ZS_OFFLINE &&
	       !(select_all && s == NVME_ZNS_ZS_EMPTY);
}

/*
 * Zones reset whose fences stay up until their Resets are durable. A Reset
 * keeps the zone's blocks (below), and until its record is durable a crash
 * brings the zone back as it was, write pointer and data: so nothing may
 * change those blocks before then - not the zone's next writes (they wait
 * in zns_write_start(), as for any fence), not a Finish's or a ZRWA
 * allocation's erasure (they take the fence). The wait is for one commit
 * (queue_sync: no wait for gapped zones as ns_sync has), which needs no I/O
 * thread and no event loop, so an I/O thread may wait for it. A Select All
 * Reset holds the fences of every zone it resets for one commit, not a
 * commit per zone (RESET_HELD at a time if it cannot have the memory for
 * them all). If the commit fails, the host is told the Reset failed and its
 * zones stay closed to whatever would write their blocks until a later
 * commit journals every zone (zns_set_undurable, release_undurable): writes
 * to them fail with the commit's status, and each one refused asks for a
 * commit, so that writes go on once the journal can be written again
 * (doc/io-errors.md).
 */
#define RESET_HELD 64

struct resets_held {
	uint32_t n, cap;
	uint32_t *zone;              /* cap entries */
};

/*
 * The Resets done so far made durable, then the fences held dropped: st, or
 * the commit's status. A Reset waits even when it held no fence (its zone
 * read Empty): that zone may be Empty by a Reset whose commit failed, and
 * this one's success must mean durable without a sync of its own.
 */
static uint16_t commit_resets(struct ns *ns, struct resets_held *h, uint16_t st)
{
	uint16_t cst = wait_for(ns, queue_sync);
	if (cst && h->n) {
		/* The mark first: a write refused as soon as its zone is
		 * marked must see it (ns_write_begin). */
		pthread_mutex_lock(&ns->undurable_lock);
		__atomic_store_n(&ns->undurable_mark,
				 __atomic_load_n(&ns->commits_started, __ATOMIC_ACQUIRE),
				 __ATOMIC_RELEASE);
		for (uint32_t k = 0; k < h->n; k++)
			zns_set_undurable(&ns->z, h->zone[k], cst);
		pthread_mutex_unlock(&ns->undurable_lock);
	}
	for (uint32_t k = 0; k < h->n; k++)
		zns_unfence(&ns->z, h->zone[k]);
	h->n = 0;
	return st ? st : cst;
}

/*
 * A Reset or Finish of zone i (alone, or its part of a Select All), ordered
 * after the writes whose data is moving in the zone and before those that
 * have not started, which it drops (zns_fence, include/zone.h).
 *
 * A Reset keeps the zone's blocks: reads at or above the write pointer
 * return zeros whatever the file holds (read_zoned), the zone's next writes
 * overwrite them - cheaper to sync than blocks allocated anew - and no hole
 * punching of up to a zone holds the file's lock while other zones' writes
 * wait. A Finish still zeroes what it moves the write pointer over. The
 * space stays the file's: the data file keeps the largest size each zone was
 * written to, as a preallocated one keeps all of it. A Reset of a zone that
 * held anything leaves its fence to h (struct resets_held), which has room.
 */
static uint16_t fenced_action(struct ns *ns, uint32_t i, uint8_t zsa, bool select_all,
			      struct resets_held *h)
{
	uint16_t st = 0;
	bool erased = false;
	zns_fence(&ns->z, i);
	uint8_t before = zns_zone_state(&ns->z, i);
	/* A Full zone whose writes are still in flight is finished for real
	 * (zone_action): the blocks of those not landed are erased first. */
	bool erases = zsa == NVME_ZNS_ZSA_FINISH &&
		      (finish_erases(before, select_all) ||
		       (before == NVME_ZNS_ZS_FULL && !select_all && zns_zone_in_flight(&ns->z, i)));
	if (erases)
		st = undurable_refusal(ns, i); /* its erasure would write the zone */
	if (erases && !st) {
		int rc = zns_erase_unwritten(&ns->z, i, zero_range, ns);
		__atomic_add_fetch(&ns->data_writes, 1, __ATOMIC_RELEASE);
		st = io_status(rc, true);
		erased = !rc;
	}
	if (!st)
		st = zns_mgmt_fenced(&ns->z, i, zsa, select_all, erased);
	/* The states a Reset empties are those Select All resets (ZNS
	 * 3.4.3.1): an Empty zone stays as it was, others refuse. */
	if (!st && zsa == NVME_ZNS_ZSA_RESET && zns_select_all_applies(zsa, before)) {
		h->zone[h->n++] = i;
		return 0;
	}
	zns_unfence(&ns->z, i);
	return st;
}

/*
 * A ZRWA's window reads what its blocks hold, so the zone's blocks - which
 * a Reset left as they were - are erased first, and the erasure made
 * durable by a commit before the allocation can be journaled: a commit,
 * not an fdatasync of its own, because Linux reports a writeback error to
 * one fdatasync of the file only, and that must be a commit's, so that the
 * Flush covering the writes it lost fails too. Only an Empty zone can get a
 * ZRWA; for any other the engine refuses (nothing is erased that holds
 * data: an Empty zone's blocks all read as zeros already).
 */
uint16_t ns_zone_mgmt_send_zrwaa(struct ns *ns, uint64_t slba, uint8_t zsa, const void *zde)
{
	if (!ns->info.zoned)
		return not_zoned();
	if (!ns->info.zrwa_lbas || slba >= ns->info.nlbas)
		return zns_mgmt_send_zrwaa(&ns->z, slba, zsa, zde);
	/* Fenced: no Reset can empty the zone again between the erasure and
	 * the allocation, over data landed meanwhile (a write that begins
	 * meanwhile opens the zone, and the engine refuses the allocation). */
	uint32_t i = zns_zone_of(&ns->z, slba);
	zns_fence(&ns->z, i);
	uint16_t st = undurable_refusal(ns, i);
	if (!st && zns_zone_state(&ns->z, i) == NVME_ZNS_ZS_EMPTY) {
		int rc = zns_erase_unwritten(&ns->z, i, zero_range, ns);
		__atomic_add_fetch(&ns->data_writes, 1, __ATOMIC_RELEASE);
		st = rc ? io_status(rc, true) : wait_for(ns, queue_sync);
	}
	if (!st)
		st = zns_mgmt_send_zrwaa(&ns->z, slba, zsa, zde);
	zns_unfence(&ns->z, i);
	return st;
}

uint16_t ns_zone_mgmt_apply(struct ns *ns, uint64_t slba, uint8_t zsa, bool select_all,
			    const void *zde)
{
	if (!ns->info.zoned)
		return not_zoned();
	if (zsa != NVME_ZNS_ZSA_FINISH && zsa != NVME_ZNS_ZSA_RESET)
		return zns_mgmt_send(&ns->z, slba, zsa, select_all, zde);
	uint32_t few[RESET_HELD];
	struct resets_held h = { .cap = RESET_HELD, .zone = few };
	if (!select_all) {
		/* Past the namespace or not a zone start: the engine says so,
		 * before anything is erased. */
		if (slba >= ns->info.nlbas || slba & (ns->info.zone_size - 1))
			return zns_mgmt_send(&ns->z, slba, zsa, false, zde);
		uint16_t st = fenced_action(ns, zns_zone_of(&ns->z, slba), zsa, false, &h);
		return zsa == NVME_ZNS_ZSA_RESET ? commit_resets(ns, &h, st) : st;
	}
	/* Select All, zone by zone: each fenced only while it is acted on
	 * (a Reset: until it is durable). A zone it does not apply to is
	 * passed over without a fence; one that a write opens meanwhile is
	 * left, that write being later. Fences are taken in zone order. */
	uint32_t *all = zsa == NVME_ZNS_ZSA_RESET ? malloc(zns_nr_zones(&ns->z) * sizeof(*all))
						   : NULL;
	if (all) {
		h.zone = all;
		h.cap = zns_nr_zones(&ns->z);
	}
	uint16_t st = 0;
	for (uint32_t i = 0; i < zns_nr_zones(&ns->z) && !st; i++) {
		if (!zns_select_all_applies(zsa, zns_zone_state(&ns->z, i)))
			continue;
		if (h.n == h.cap)
			st = commit_resets(ns, &h, 0);
		if (!st)
			st = fenced_action(ns, i, zsa, true, &h);
	}
	if (zsa == NVME_ZNS_ZSA_RESET)
		st = commit_resets(ns, &h, st);
	free(all);
	return st;
}

uint16_t ns_zone_mgmt_send(struct ns *ns, uint64_t slba, uint8_t zsa, bool select_all,
			   const void *zde)
{
	uint16_t st = ns_zone_mgmt_apply(ns, slba, zsa, select_all, zde);
	if (st || zsa != NVME_ZNS_ZSA_RESET)
		return st;
	return ns_sync_wait(ns);
}

uint16_t ns_zone_report(struct ns *ns, uint64_t slba, uint8_t zra, uint8_t zrasf, bool partial,
			void *buf, size_t len)
{
	if (!ns->info.zoned)
		return not_zoned();
	return zns_report(&ns->z, slba, zra, zrasf, partial, buf, len);
}

int ns_zone_fail(struct ns *ns, uint64_t zslba, uint32_t nr, uint8_t to, char *err,
		 size_t errlen)
{
	if (!ns->info.zoned)
		return errmsg(err, errlen, "namespace %u is not zoned", ns->info.nsid);
	uint32_t first = zns_zone_of(&ns->z, zslba);
	if (zslba & (ns->info.zone_size - 1) || zslba >= ns->info.nlbas || !nr ||
	    nr > ns->info.nr_zones - first)
		return errmsg(err, errlen, "namespace %u: %llu zone(s) from LBA %llu: not a zone "
			      "start, or past the last of its %u zones (zone size %llu LBAs)",
			      ns->info.nsid, (unsigned long long)nr, (unsigned long long)zslba,
			      ns->info.nr_zones, (unsigned long long)ns->info.zone_size);
	int changed = 0;
	for (uint32_t i = first; i < first + nr; i++) {
		int rc = zns_fail_zone(&ns->z, i, to);
		if (rc < 0)
			log_warn("namespace %u: zone %u is offline: it stays offline",
				 ns->info.nsid, i);
		else
			changed += rc;
	}
	uint16_t st = changed ? ns_sync_wait(ns) : 0;
	if (st)
		return errmsg(err, errlen, "namespace %u: %d zone(s) changed, but the change is "
			      "not durable yet: the group commit failed (status %#x)",
			      ns->info.nsid, changed, st);
	return changed;
}

uint16_t ns_changed_zones(struct ns *ns, uint64_t *seen, uint64_t *zids, uint16_t max)
{
	return ns->info.zoned ? zns_changed_zones(&ns->z, seen, zids, max) : 0;
}

bool ns_has_changed_zones(struct ns *ns, uint64_t seen)
{
	return ns->info.zoned && zns_has_changed_zones(&ns->z, seen);
}
