/*
 * A namespace backend: the data file (block store) and, for a zoned
 * namespace, the zone engine with its durable metadata (journal + image).
 * Transport-neutral and thread-safe: any worker thread may call any function.
 *
 * Blocking vs non-blocking. Functions marked (blocks) do file I/O and must be
 * called from an I/O thread, never from an event loop. The others only take
 * short in-memory locks and may be called from a loop.
 *
 * Status values are znstgt status words (nvme_wire.h): 0 on success, else
 * nvme_err() / nvme_cmd_err() / nvme_media_err() as the spec calls for.
 */
#ifndef ZNSTGT_NS_H
#define ZNSTGT_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ns_write.h"

struct ns;
struct ns_config; /* config.h */
struct zns;       /* zone.h */
struct resv_ns;   /* resv_store.h */

/* Geometry and identity, fixed after ns_open(). */
struct ns_info {
	uint32_t nsid;
	bool zoned;
	uint32_t lba_shift;    /* 9 or 12 */
	uint64_t nlbas;        /* namespace size in LBAs (NSZE = NCAP) */
	bool write_cache;      /* report VWC; Flush makes prior writes durable */
	uint8_t uuid[16];      /* stable across restarts (kept in the data dir) */
	uint8_t nguid[16];
	uint8_t eui64[8];
	/* zoned only */
	uint64_t zone_size;    /* LBAs, power of two */
	uint64_t zone_cap;     /* LBAs, <= zone_size */
	uint32_t nr_zones;
	uint32_t max_open;     /* 0 = no limit */
	uint32_t max_active;   /* 0 = no limit */
	uint32_t zde_size;     /* bytes, multiple of 64, 0 = none */
	uint32_t zasl_bytes;   /* largest Zone Append, bytes */
	bool cross_zone_read;  /* reads may cross zone boundaries (OZCS.RAZB) */
	uint32_t zrwa_lbas;    /* Zone Random Write Area size (ZRWAS), 0 = none */
	uint32_t zrwa_fg;      /* ZRWA flush granularity (ZRWAFG), LBAs */
	uint32_t nr_zrwa;      /* zones that may hold a ZRWA at once (NUMZRWA + 1) */
};

/*
 * Open the namespace described by cfg, keeping its files in cfg's data path:
 * created when the directory holds none of them, otherwise recovered
 * (doc/recovery.md) - a missing, short or damaged file is refused unless
 * cfg->recover is set (znstgt --recover), which keeps what the files still
 * prove. format = true re-initialises zone state and data (the only way
 * state is ever thrown away). On failure returns -1 and writes a one-line
 * reason, naming the file, what is wrong and the way forward, into err.
 */
int ns_open(const struct ns_config *cfg, bool format, struct ns **out, char *err, size_t errlen);
/* Finish pending durability work, checkpoint the zone image, close. (blocks) */
void ns_close(struct ns *ns);
const struct ns_info *ns_info(const struct ns *ns);
/* The zone engine of a zoned namespace (NULL otherwise): for reports that
 * read zone states without a lock (ns_stats.h). */
struct zns *ns_zones(struct ns *ns);
/* Whether its syncs fail now: the last group commit failed (the cause may
 * pass: the next good one clears it), or the zone image faulted and every
 * sync fails until the namespace is restarted (doc/io-errors.md). */
void ns_health(struct ns *ns, bool *syncs_failing, bool *image_lost);
/* Its reservations (resv_store.h), kept in its directory. */
struct resv_ns *ns_resv(struct ns *ns);

/* ---- NVM I/O (NVM Command Set 1.0, 3.3) ---- */

/* Bounds and zone checks for a Read (ZNS 2.1.4.1). */
uint16_t ns_read_check(struct ns *ns, uint64_t slba, uint32_t nlb);
/* Read nlb blocks into iov; never-written blocks, and on a zoned namespace
 * every block at or above its zone's write pointer or under a write still
 * in flight (zns_read_run()), read as zeros. (blocks) */
uint16_t ns_read(struct ns *ns, uint64_t slba, uint32_t nlb, const struct iovec *iov, int iovcnt);
/*
 * ns_read() from the page cache only, so an event loop may call it: true
 * when the read is done (*status set), false when some of the data would
 * need the disk (nothing was changed; call ns_read() on an I/O thread).
 * Saves the hop to an I/O thread and back for reads of hot data.
 */
bool ns_read_cached(struct ns *ns, uint64_t slba, uint32_t nlb, const struct iovec *iov,
		    int iovcnt, uint16_t *status);
/*
 * What ns_read() would return, lent instead of copied: a pointer to the
 * page cache's copy of the blocks (blockstore_borrow(), whose rules hold),
 * or NULL when no one pointer can stand for them - some of them not known
 * to be cached, or on a zoned namespace some of them reading as zeros
 * (at or above the write pointer, or under a write still in flight), which
 * the file need not hold. Valid while the
 * namespace is open. (ns_read_check() first.)
 */
const void *ns_read_borrow(struct ns *ns, uint64_t slba, uint32_t nlb);

/*
 * Writes go in three steps so that the zone engine can reserve the range on
 * the loop, the data move on an I/O thread, and the write pointer advance in
 * submission order even when the data of concurrent writes lands out of
 * order. The caller embeds a struct ns_write in its request (no allocation).
 *
 *   st = ns_write_begin(ns, w, kind, slba, nlb);   non-blocking; validates,
 *        reserves (Zone Append: picks the LBA, returned in w->slba), opens.
 *   st = ns_write_data(ns, w, iov, iovcnt);         (blocks) pwrite / zeroes
 *   ns_write_end(ns, w, st);                        non-blocking; publishes
 *
 * Every successful begin must be followed by exactly one end; after end the
 * engine no longer refers to w. Durability is separate: see ns_sync().
 *
 * A write whose data fails (ENOSPC, EIO, ...) leaves the zone as it was: its
 * range is given back and the write pointer stays where it was. The one
 * exception is a failure with later writes to the same zone already holding
 * LBAs above it (concurrent Zone Appends): those keep their places, and the
 * failed range reads as zeros and counts as written. ns_write_data() decides
 * which, and says so in w->failed, before ns_write_end() can publish it.
 */
uint16_t ns_write_begin(struct ns *ns, struct ns_write *w, enum ns_write_kind kind,
			uint64_t slba, uint32_t nlb);
uint16_t ns_write_data(struct ns *ns, struct ns_write *w, const struct iovec *iov, int iovcnt);
void ns_write_end(struct ns *ns, struct ns_write *w, uint16_t status);

/* Deallocate (Dataset Management, AD): punch holes; advisory on zoned ns. (blocks) */
uint16_t ns_deallocate(struct ns *ns, uint64_t slba, uint64_t nlb);

/*
 * Durability (group commit; Flush semantics). Calls cb(arg, status) from the
 * namespace's commit thread once every write and zone transition that ended
 * (ns_write_end or ns_zone_mgmt_send returned) before this call is durable:
 * data file synced, then the zone journal records that make it visible
 * synced. A write that ended while an earlier write to the same zone is
 * still in flight becomes durable only with that earlier one (a write
 * pointer never skips unwritten blocks), so the callback waits for it.
 * Many callers share one fdatasync. Never blocks. If the commit fails
 * (a data or journal write or sync), status says why (Capacity Exceeded for
 * a full file system, else Write Fault) and nothing it covered is
 * acknowledged; nothing is dropped either: the next sync tries again.
 */
typedef void (*ns_sync_cb)(void *arg, uint16_t status);
void ns_sync(struct ns *ns, ns_sync_cb cb, void *arg);
/* ns_sync() and wait for it; returns its status. (blocks) Not for a thread
 * that ends writes (a worker's loop) or that a write's end needs (an I/O
 * thread): the sync may wait for a write still in flight. */
uint16_t ns_sync_wait(struct ns *ns);

/* ---- ZNS (NVMe ZNS Command Set 1.1) ---- */

/*
 * Zone Management Send (ZNS 3.4.3). zde: zde_size bytes for SET_DESC_EXT.
 * ns_zone_mgmt_apply() makes the transition (blocks: a Finish zeroes what
 * its write pointer moves over); it is durable with the next ns_sync(). A
 * Reset is durable when this returns: it waits for the commit that
 * journals it, and a zone that held anything takes no write before then;
 * that commit needs no I/O thread nor loop, so an I/O thread may call it.
 * ns_zone_mgmt_send() (tests and tools) adds a sync with Flush semantics
 * after a Reset, as a host's Flush would: never call it where that sync
 * may wait for something the caller's thread holds up (a worker's loop, an
 * I/O thread: worker.h).
 */
uint16_t ns_zone_mgmt_apply(struct ns *ns, uint64_t slba, uint8_t zsa, bool select_all,
			    const void *zde);
/* Open or Set Zone Descriptor Extension with ZRWA Allocation (ZRWAA).
 * (blocks) Erases the zone's blocks first: its window reads what they hold.
 * Durable with the next ns_sync(), as ns_zone_mgmt_apply(). */
uint16_t ns_zone_mgmt_send_zrwaa(struct ns *ns, uint64_t slba, uint8_t zsa, const void *zde);
uint16_t ns_zone_mgmt_send(struct ns *ns, uint64_t slba, uint8_t zsa, bool select_all,
			   const void *zde);

/*
 * Zone Management Receive (ZNS 3.4.2): fills buf (len bytes) with a report
 * header and descriptors (extended: + extensions) starting with the zone that
 * holds slba. zra: 0 report, 1 extended; zrasf: reporting filter; partial:
 * the Partial Report bit.
 */
uint16_t ns_zone_report(struct ns *ns, uint64_t slba, uint8_t zra, uint8_t zrasf,
			bool partial, void *buf, size_t len);

/*
 * Zones whose attributes the controller changed (taken offline or read-only
 * by configuration at power-up, or by ns_zone_fail): the Changed Zone List
 * log (ZNS 5.3.1). Each reader (a host's controller) keeps *seen, where it
 * read up to (0 at first). Copies up to max zone IDs changed since, moves
 * *seen on; returns the number copied, or 0xffff if more changed than fit.
 */
uint16_t ns_changed_zones(struct ns *ns, uint64_t *seen, uint64_t *zids, uint16_t max);
/* Whether zones changed since *seen (a notice is due). */
bool ns_has_changed_zones(struct ns *ns, uint64_t seen);
/*
 * Take nr zones from the one starting at zslba Read Only or Offline (to:
 * NVME_ZNS_ZS_READ_ONLY / NVME_ZNS_ZS_OFFLINE), as a drive does when zones
 * fail (zns_fail_zone), and list them in the Changed Zone List; the caller
 * sends the notice (subsys_zone_desc_changed). Returns the number of zones
 * changed once the change is durable, or -1 with a reason in err. (blocks)
 */
int ns_zone_fail(struct ns *ns, uint64_t zslba, uint32_t nr, uint8_t to, char *err,
		 size_t errlen);

/*
 * Power-cut simulation: drop everything a drive with a volatile write cache
 * would lose (writes and zone transitions not yet made durable), as if power
 * went away now. The namespace must be closed without checkpointing.
 */
void ns_abandon(struct ns *ns);

#endif
