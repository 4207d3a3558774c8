/*
 * Durable zone metadata of one zoned namespace: an mmap'd image of every
 * zone descriptor, and an append-only journal of the changes made since the
 * image's last checkpoint (doc/architecture.md, "Durability").
 *
 * ON-DISK FORMAT: image version 1 or 2, journal version 2. All integers
 * little-endian. CRC = CRC32C (crc32c.h, the NVMe/TCP digest function).
 * Image version 2 (written only for a namespace with a Zone Random Write
 * Area, so that an older znstgt refuses it instead of losing the data in
 * ZRWA windows) puts the ZRWA size in the header word version 1 left
 * reserved (written as zero, and read as "no ZRWA"). A zone's ZRWA itself
 * is its ZRWAV attribute bit in the descriptors' and records' za byte.
 *
 * zones.img
 *   offset 0     header slot 0 (struct zimg_header, rest of 4 KiB zero)
 *   offset 4096  header slot 1
 *   desc_offset  nr_zones x struct zimg_desc (32 bytes each)
 *   zde_offset   nr_zones x zde_size bytes of zone descriptor extensions
 *   The valid slot (magic, version, CRC) with the highest generation is the
 *   current one; a checkpoint writes the other slot, so a torn header write
 *   always leaves one valid slot. Each descriptor has its own CRC, and a CRC
 *   of its extension, so damage is found zone by zone. Every byte of the
 *   file has a block on disk (zeros written over holes when it is made or
 *   opened): it is written through its mapping, where a full file system
 *   would be a SIGBUS.
 *
 * zones.jnl
 *   offset 0     struct zjnl_header (rest of 4 KiB zero): ties the journal to
 *                its image (same instance id) and says how large the file was
 *                made (preallocated) when it was created.
 *   offset 4096  records, back to back, each struct zjnl_record followed, for
 *                ZJNL_ZONE_ZDE, by zde_size bytes of extension. A record holds
 *                the absolute state of one zone, so replaying it twice is
 *                harmless. Every record carries the generation of the header
 *                slot it follows, a sequence number that increases by one
 *                (and keeps increasing across generations), and its position
 *                in its batch (one commit: one write, one fdatasync).
 *                Version 2 added to each record the CRC of the data it
 *                makes visible (data_lbas, data_crc; 48-byte records). A
 *                version 1 journal is refused (its records cannot prove
 *                their data): shut down cleanly with the older znstgt, whose
 *                final checkpoint leaves nothing to replay, then start once
 *                with --recover to write a version 2 journal.
 *                After a checkpoint, and after every recovery, the journal is
 *                rewritten from offset 4096 under a new generation, so stale
 *                records can never be picked up again.
 *
 * Ordering. A record is written only after the data it makes visible was
 * written (to the page cache). The data file's fdatasync and the journal's
 * write + fdatasync of one batch run at the same time; a record carries the
 * CRC of the blocks it makes visible - [wp - data_lbas, wp) - so that
 * recovery can tell a record whose data did not reach the disk. Batches are
 * committed one at a time: batch N+1 is written only after both syncs of
 * batch N returned, so at a crash only the last batch in the journal can
 * have its data in flight. Records reach the image (in memory) only after
 * both syncs returned, so the image never runs ahead of the journal nor of
 * the data, and nothing is acknowledged before that either. A record whose
 * visibility does not come from written data (Finish moves the write pointer
 * over blocks it zeroed) has data_lbas 0: the zeroing is synced before the
 * transition is made (ns.c). Checkpoint: msync(MS_SYNC) the descriptors,
 * then write and sync the other header slot with ckpt_seq = last applied
 * record; from then on the journal restarts at offset 4096.
 *
 * Recovery (doc/recovery.md): newest valid slot; refuse on unknown version or
 * a geometry other than the configuration's; check every descriptor CRC;
 * replay the journal from the image's ckpt_seq + 1 (which repairs any
 * descriptor it covers); refuse if a damaged descriptor is left. A record is
 * applied only when it is newer than the descriptor's own seq: replay never
 * moves a zone back. The run of records ends at the first one whose CRC,
 * generation or sequence number is not right. What lies after that point
 * decides what it was:
 *   - nothing valid of the current generation, or only records of the same
 *     batch (batch_pos says where the batch began): a torn tail, the last,
 *     partly written batch, never acknowledged. Recovered: dropped.
 *   - a valid record of the current generation from a later batch: damage
 *     to records that were acknowledged. Refused, naming the file, the
 *     record and its byte offset; only ZMETA_RECOVER goes on (dropping the
 *     damaged records, keeping every valid one after them).
 * The records of the last batch of the run (from the last record's seq
 * back to its batch_pos 1) that the image does not hold yet could have
 * been in flight with their data: each one with data_lbas > 0 whose data
 * CRC does not match the data file now is a torn tail too - its data never
 * reached the disk, the batch was never acknowledged - and is dropped: its
 * zone keeps the state it had before that record. A mismatch in an earlier
 * batch is not looked for: its data was synced before the next batch was
 * written, and what changed it since is damage the journal cannot see.
 * (Data of the last batch damaged after it was acknowledged looks like a
 * torn write and is dropped the same way, as a damaged last record is.) A
 * record's range starts at the write pointer last committed, or at the zone
 * start when the write pointer went back (a Reset, then writes, in one
 * batch); a host that rewrites a zone past its old write pointer before its
 * Reset completed (a race the host started) has only the part above the old
 * write pointer checked.
 * Two things tell damage from a torn tail, and are refused: a dropped record
 * that continues a batch the image holds a record of (the batch was durable),
 * unless the image holds its state; and a descriptor found damaged and
 * repaired from an older record of its zone when the run's end dropped what
 * may be a newer one (a record of that zone, one whose zone is unreadable,
 * or records past the end the image held).
 * Also refused: a journal shorter than its header says (truncated), and an
 * image descriptor set by a record the journal no longer holds. Nothing is
 * reinitialised unless the caller asks (ZMETA_FORMAT).
 * An open replays, repairs and checks a private copy of the image, and the
 * image takes its result only once the namespace has passed every check and
 * the data the last batch's records vouch for is durable (zmeta_keep()):
 * a record the image holds is taken as durable, its data no longer checked,
 * so it must not get there earlier - through a refusal, a crash of the
 * process, or the kernel writing the mapping back before a power cut. An
 * open refused or interrupted before then leaves zones.img as it found it
 * (descriptors found damaged stay damaged): the next start meets what this
 * one met.
 */
#ifndef ZNSTGT_ZMETA_H
#define ZNSTGT_ZMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zone.h"

#define ZIMG_MAGIC "ZNSTGTIM"
#define ZJNL_MAGIC "ZNSTGTJL"
#define ZMETA_VERSION 2             /* of zones.img: the newest this reads */
#define ZMETA_VERSION_NO_ZRWA 1     /* written when there is no ZRWA */
#define ZJNL_VERSION 2              /* of zones.jnl */
#define ZMETA_IMG_NAME "zones.img"
#define ZMETA_JNL_NAME "zones.jnl"
#define ZIMG_SLOT_SIZE 4096u
#define ZJNL_DATA_OFFSET 4096u

struct zimg_header {
	char magic[8];
	uint32_t version;
	uint32_t header_bytes;       /* sizeof(struct zimg_header) */
	uint64_t generation;         /* +1 per slot write; newest valid slot wins */
	uint64_t ckpt_seq;           /* records <= this are in the descriptors */
	uint64_t instance;           /* random at format; the journal's must match */
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t nlbas;
	uint64_t zone_size;          /* LBAs */
	uint64_t zone_cap;           /* LBAs */
	uint32_t nr_zones;
	uint32_t zde_size;           /* bytes */
	uint32_t max_open;
	uint32_t max_active;
	uint64_t desc_offset;
	uint64_t zde_offset;
	uint32_t zrwa_lbas;          /* version 2: ZRWA size in LBAs; version 1: 0 */
	uint32_t crc;                /* of every byte before it */
} __attribute__((packed));

struct zimg_desc {
	uint64_t wp;
	uint64_t seq;                /* journal record that last set it; 0 = format */
	uint8_t state;               /* NVME_ZNS_ZS_* */
	uint8_t za;                  /* NVME_ZNS_ZA_* */
	uint16_t rsvd;
	uint32_t zde_crc;            /* CRC of this zone's extension bytes */
	uint32_t rsvd2;
	uint32_t crc;                /* of bytes 0..27 */
} __attribute__((packed));

struct zjnl_header {
	char magic[8];
	uint32_t version;
	uint32_t size_4k;            /* file size at creation (preallocated), in
				      * 4 KiB units; 0 = unknown (older writers) */
	uint64_t instance;
	uint32_t rsvd2;
	uint32_t crc;                /* of every byte before it */
} __attribute__((packed));

enum { ZJNL_ZONE = 1, ZJNL_ZONE_ZDE = 2 };

struct zjnl_record {
	uint32_t crc;                /* of bytes 4..len-1 (header rest + extension) */
	uint16_t type;               /* ZJNL_ZONE or ZJNL_ZONE_ZDE */
	uint16_t len;                /* whole record, 48 or 48 + zde_size */
	uint64_t seq;
	uint32_t gen;                /* low 32 bits of the image generation it follows */
	uint32_t zone;
	uint8_t state;
	uint8_t za;
	uint16_t rsvd;
	uint32_t batch_pos;          /* 1 + records before it in its batch;
				      * 0 = unknown (older writers) */
	uint64_t wp;
	uint32_t data_lbas;          /* blocks below wp this record makes visible
				      * (0: none, or not checkable) */
	uint32_t data_crc;           /* CRC of those blocks' bytes */
} __attribute__((packed));

_Static_assert(sizeof(struct zimg_header) == 112, "image header layout");
_Static_assert(sizeof(struct zimg_desc) == 32, "image descriptor layout");
_Static_assert(sizeof(struct zjnl_header) == 32, "journal header layout");
_Static_assert(sizeof(struct zjnl_record) == 48, "journal record layout");

/* Journal records on their way: built by zmeta_add(), written by
 * zmeta_write() and applied by zmeta_apply(). Several may be in flight;
 * they are committed in order. */
struct zmeta_batch {
	uint8_t *buf;
	size_t len, cap;
	uint32_t records;
};

/* The open metadata of one namespace. zmeta_add() (with add_seq) is called
 * by one thread, zmeta_write(), zmeta_apply() and zmeta_checkpoint() by one
 * thread (possibly another), in batch order. */
struct zmeta {
	int img_fd, jnl_fd;
	uint8_t *img;                /* mmap of zones.img; during an open, until
				      * zmeta_keep(), a private copy of it */
	size_t img_len;
	int slot;                    /* slot holding the current header */
	struct zimg_header hdr;      /* host-endian copy of the current header */
	uint64_t next_seq;           /* after the last record committed */
	uint64_t add_seq;            /* after the last record added to a batch */
	uint64_t jnl_tail;           /* where the next batch goes */
	uint64_t jnl_limit;          /* checkpoint when the tail passes this */
	/* what the last replay found (for logs and tests) */
	uint64_t replayed;
	uint32_t repaired;
	uint64_t dropped;            /* ZMETA_RECOVER: damaged records skipped */
	uint64_t torn_data;          /* last-batch records whose data was not there */
	uint32_t read_only;          /* ZMETA_RECOVER: zones made Read Only */
	uint8_t *img_shared;         /* during an open, until zmeta_keep(): the shared
				      * mapping of zones.img, as found */
	uint64_t torn_batch_at;      /* during an open, until zmeta_keep(): the offset of
				      * a damaged record that reads as the next one of
				      * the run's last batch (0: none; zmeta.c) */
	bool lost;                   /* a page of the image's mapping faulted: nothing
	                              * more is journaled or checkpointed (zmeta.c;
	                              * atomic for readers off the commit thread) */
};

/* Geometry the configuration asks for; checked against the image. */
struct zmeta_geom {
	uint32_t nsid;
	uint32_t lba_shift;
	uint64_t nlbas;
	uint64_t zone_size, zone_cap;
	uint32_t nr_zones, zde_size, max_open, max_active;
	uint32_t zrwa_lbas;          /* 0 = no ZRWA */
	uint64_t jnl_limit;          /* bytes; 0 = default (64 MiB) */
	/* CRC32C of the data file's blocks [lba, lba + nlb) into *crc: 0, or
	 * -errno when they cannot be read (the data file's own checks then
	 * decide). NULL: records' data is not checked at recovery. */
	int (*data_crc)(void *ctx, uint64_t lba, uint32_t nlb, uint32_t *crc);
	void *data_ctx;
};

enum zmeta_mode {
	ZMETA_LOAD,      /* recover; refuse anything missing, damaged or short */
	ZMETA_FORMAT,    /* create anew, replacing whatever is there */
	ZMETA_RECOVER,   /* load keeping what the files still prove, logging
			  * what is dropped (doc/recovery.md) */
	ZMETA_CHECK,     /* ZMETA_LOAD's checks and replay without touching
			  * anything: the files opened read-only, the image
			  * mapped private (replay changes a copy), nothing
			  * created (znstgt-ctl check) */
};

/*
 * Open the metadata in dir into the (freshly initialised) engine z. Recovery
 * replays the journal into the image and loads every zone into z. Returns 0,
 * or -1 with a reason (the file, what is wrong, the way forward) in err.
 */
int zmeta_open(struct zmeta *m, const char *dir, const struct zmeta_geom *g,
	       enum zmeta_mode mode, struct zns *z, char *err, size_t errlen);
/* After zmeta_open() (not ZMETA_CHECK), the open's result is in a private
 * copy of the image: nothing is journaled or checkpointed (-EBUSY) until
 * zmeta_keep() writes it into zones.img's mapping. Call it once the
 * namespace has passed every check (the data file, the power-up rule) and
 * the data file is synced, so that the image never holds a replayed record
 * whose data is not durable (a record the image holds is taken as durable,
 * its data no longer checked). When the journal's run ended in a batch
 * written in part whose damaged record still reads as the batch's next one,
 * that record is erased from the journal first: the image may hold the
 * batch's earlier records, and to the next start a damaged record
 * continuing a batch the image holds means a durable batch, damaged. 0, or
 * -errno: -EIO when the image cannot be written (lost), or the journal's
 * write or sync failed (zones.img then untouched). zmeta_close() before it
 * drops the open's result: a refused start leaves zones.img as it found
 * it. */
int zmeta_keep(struct zmeta *m);
/* Add a zone's state (and its extension when zde_dirty) to batch b;
 * data_lbas blocks below s->wp, whose CRC is data_crc, become visible. */
int zmeta_add(struct zmeta *m, struct zmeta_batch *b, const struct zone_snap *s,
	      const uint8_t *zde, uint32_t data_lbas, uint32_t data_crc);
/* The write pointer of zone i as last committed (what the image holds)
 * into *wp: 0, or -EIO when the image cannot be read (lost). */
int zmeta_committed_wp(struct zmeta *m, uint32_t zone, uint64_t *wp);
/* Write batch b (stamped with the current generation) and fdatasync the
 * journal. -errno (b is then emptied). On success, once the data the batch
 * covers is synced too, zmeta_apply() it. */
int zmeta_write(struct zmeta *m, struct zmeta_batch *b);
/* Apply a written batch to the image and empty it: 0, or -EIO when the
 * image cannot be written (lost: the batch is durable in the journal, and
 * nothing more is journaled or checkpointed). */
int zmeta_apply(struct zmeta *m, struct zmeta_batch *b);
void zmeta_batch_free(struct zmeta_batch *b);
/* Drop batch b, which will never be committed: its sequence numbers are
 * given back for the next batch. (After a failed zmeta_write() the journal
 * may hold part of it: checkpoint before the next commit so that no such
 * record can be replayed.) */
void zmeta_discard(struct zmeta *m, struct zmeta_batch *b);
bool zmeta_needs_checkpoint(const struct zmeta *m);
/* msync the image, write the other header slot, restart the journal. -errno. */
int zmeta_checkpoint(struct zmeta *m);
void zmeta_close(struct zmeta *m);

/* ---- read-only inspection (znstgt-ctl inspect / check; doc/operations.md) ----
 * The files are read by the same decoding and checks as recovery; nothing
 * is written, created or locked. */

/* What a header slot of zones.img holds. */
enum zmeta_slot_state {
	ZMETA_SLOT_OK,
	ZMETA_SLOT_BLANK,            /* never written (all zeros, or past the end) */
	ZMETA_SLOT_DAMAGED,          /* bad magic or CRC */
	ZMETA_SLOT_VERSION,          /* valid CRC, unknown format version */
};

struct zmeta_slot_view {
	enum zmeta_slot_state state;
	uint32_t version;            /* as found (ZMETA_SLOT_OK, _VERSION) */
	uint32_t crc;                /* as stored */
	struct zimg_header hdr;      /* host-endian (ZMETA_SLOT_OK) */
};

/*
 * Open dir's zones.img (and zones.jnl, if there is one) read-only into m for
 * the calls below, with the current header slot chosen as recovery chooses
 * it; nothing is replayed. slots[] (may be NULL) gets both slots. 0, or -1
 * with the reason in err (missing, both slots unusable, truncated).
 * zmeta_close() it.
 */
int zmeta_view_open(struct zmeta *m, const char *dir, struct zmeta_slot_view slots[2],
		    char *err, size_t errlen);
/* The geometry the image header describes (for ZMETA_CHECK). */
void zmeta_view_geom(const struct zmeta *m, struct zmeta_geom *g);

/* One zone descriptor as the image holds it. */
struct zmeta_desc_view {
	uint64_t wp, seq;
	uint8_t state, za;
	bool desc_ok;                /* its CRC, and a sequence number below 2^63 */
	bool zde_ok;                 /* its extension's CRC (true: no extensions) */
	bool possible;               /* a state and write pointer a zone can have */
};
void zmeta_view_desc(const struct zmeta *m, uint32_t zone, struct zmeta_desc_view *out);

/* One journal record of the run recovery would replay. */
struct zmeta_rec_view {
	uint64_t offset;             /* byte offset in zones.jnl */
	uint64_t seq;
	uint32_t gen, zone, batch_pos, data_lbas, data_crc;
	uint64_t wp;
	uint8_t state, za;
	bool zde;                    /* carries the zone's extension */
};

/* How the run of records ends. */
struct zmeta_run_end {
	uint64_t offset;             /* first byte after the run */
	uint64_t next_seq;           /* the sequence number expected there */
	bool no_journal;             /* zones.jnl missing */
	bool jnl_header_ok;          /* magic, CRC, version, instance */
	bool damaged;                /* a valid record of a later batch follows */
	uint64_t damaged_seq, damaged_offset; /* ... that record */
};

/*
 * Walk the journal's records since the checkpoint, the run recovery would
 * replay (same generation, consecutive sequence numbers), calling fn for
 * each, and say in *end where and how it ends. 0, or -1 with err on a read
 * error.
 */
int zmeta_view_journal(const struct zmeta *m, void (*fn)(void *arg, const struct zmeta_rec_view *r),
		       void *arg, struct zmeta_run_end *end, char *err, size_t errlen);

#endif
