/*
 * Durable zone metadata: recovery from the journal (a torn batch, a damaged
 * last record, replay twice), a crash at each step of a checkpoint, a torn or
 * damaged header slot, damaged descriptors, refusals (damaged records
 * followed by later ones, missing or short files, geometry mismatch, unknown
 * format version, a damaged descriptor whose zone a dropped journal tail may
 * have set, a damaged record of a durable batch), what --recover keeps, reads above the write pointer, and
 * a Zone Random Write Area's window, flushes and image version across
 * crashes and restarts.
 * The files are damaged by hand, at the offsets zmeta.h documents
 * (doc/recovery.md has the rules).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <nvme/types.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "fault_io.h"
#include "ns.h"
#include "ns_inspect.h"
#include "zmeta.h"

#include "../lib/dirty_pages.h"

#define NZ 8
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define ZDE 64

struct fixture {
	char dir[64];
	struct ns_config cfg;
	struct ns *ns;
	char img[128], jnl[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/znstgt-zmeta-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	struct ns_config *c = &f->cfg;
	c->nsid = 1;
	snprintf(c->path, sizeof(c->path), "%s/ns1", f->dir);
	c->lba_size = 4096;
	c->zoned = true;
	c->zone_size = ZLBAS * 4096;
	c->zone_capacity = ZLBAS * 4096;
	c->size = NZ * c->zone_size;
	c->zone_append_max = 8 * 4096;
	c->zde_size = ZDE;
	c->journal_size = 1 << 20;
	snprintf(f->img, sizeof(f->img), "%s/ns1/zones.img", f->dir);
	snprintf(f->jnl, sizeof(f->jnl), "%s/ns1/zones.jnl", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->ns)
		ns_close(f->ns);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int open_ns(struct fixture *f, char *err, size_t len)
{
	return ns_open(&f->cfg, false, &f->ns, err, len);
}

static void must_open(struct fixture *f)
{
	char err[512] = "";
	if (open_ns(f, err, sizeof(err)))
		fail_msg("ns_open: %s", err);
}

/* ---- driving the namespace ---- */

static void sync_ns(struct ns *ns)
{
	assert_int_equal(ns_sync_wait(ns), 0);
}

/* Write nlb blocks at the zone's write pointer, each filled with `fill`;
 * not synced (the next sync commits it with whatever else is pending). */
static void write_unsynced(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	uint8_t *buf = malloc((size_t)nlb * 4096);
	memset(buf, fill, (size_t)nlb * 4096);
	struct iovec iov = { buf, (size_t)nlb * 4096 };
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	assert_int_equal(ns_write_data(ns, &w, &iov, 1), 0);
	ns_write_end(ns, &w, 0);
	free(buf);
}

static void write_blocks(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	write_unsynced(ns, slba, nlb, fill);
	sync_ns(ns);
}

static void zone_action(struct ns *ns, uint32_t zone, uint8_t zsa, const void *zde)
{
	assert_int_equal(ns_zone_mgmt_send(ns, (uint64_t)zone * ZLBAS, zsa, false, zde), 0);
	sync_ns(ns);
}

static struct nvme_zns_desc zone_desc(struct ns *ns, uint32_t zone, uint8_t *zde)
{
	uint8_t buf[64 + 64 + ZDE];
	assert_int_equal(ns_zone_report(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES,
					0, true, buf, sizeof(buf)), 0);
	struct nvme_zns_desc d;
	memcpy(&d, buf + 64, sizeof(d));
	if (zde)
		memcpy(zde, buf + 128, ZDE);
	return d;
}

static void expect_zone(struct ns *ns, uint32_t zone, uint8_t state, uint64_t wp_off)
{
	struct nvme_zns_desc d = zone_desc(ns, zone, NULL);
	if (d.zs >> 4 != state || le64toh(d.wp) != (uint64_t)zone * ZLBAS + wp_off)
		fail_msg("zone %u: state %#x wp %#llx, want %#x %#llx", zone, d.zs >> 4,
			 (unsigned long long)le64toh(d.wp), state,
			 (unsigned long long)(zone * ZLBAS + wp_off));
}

/* Read Only: the report gives no write pointer (ZNS 3.4.2.2.3). */
static void expect_read_only(struct ns *ns, uint32_t zone)
{
	struct nvme_zns_desc d = zone_desc(ns, zone, NULL);
	if (d.zs >> 4 != NVME_ZNS_ZS_READ_ONLY)
		fail_msg("zone %u: state %#x, want Read Only", zone, d.zs >> 4);
}

/* A crash: the process dies, nothing more reaches the files. */
static void crash(struct fixture *f)
{
	ns_abandon(f->ns);
	f->ns = NULL;
}

static void clean_close(struct fixture *f)
{
	ns_close(f->ns);
	f->ns = NULL;
}

/* ---- the files ---- */

static void file_rw(const char *path, off_t off, void *buf, size_t len, bool write_it)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	ssize_t n = write_it ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	assert_int_equal(n, (ssize_t)len);
	close(fd);
}

/* Offset just past the last valid-looking record from the journal's start
 * (records of the current generation after the last checkpoint). */
static off_t last_record(const char *jnl, uint32_t *count)
{
	off_t off = ZJNL_DATA_OFFSET, last = -1;
	uint32_t n = 0, gen = 0;
	for (;;) {
		uint8_t b[sizeof(struct zjnl_record) + ZDE];
		struct zjnl_record r;
		int fd = open(jnl, O_RDONLY);
		ssize_t got = pread(fd, b, sizeof(b), off);
		close(fd);
		if (got < (ssize_t)sizeof(r))
			break;
		memcpy(&r, b, sizeof(r));
		uint16_t len = le16toh(r.len);
		if (len < sizeof(r) || len > got || le32toh(r.crc) != crc32c(b + 4, len - 4u) ||
		    (n && le32toh(r.gen) != gen))
			break;
		gen = le32toh(r.gen);
		last = off;
		off += len;
		n++;
	}
	*count = n;
	return last;
}

/* The slot holding the current header: valid CRC, highest generation. */
static int current_slot(const char *img, struct zimg_header *out)
{
	int best = -1;
	uint64_t gen = 0;
	for (int s = 0; s < 2; s++) {
		struct zimg_header h;
		file_rw(img, (off_t)s * ZIMG_SLOT_SIZE, &h, sizeof(h), false);
		if (memcmp(h.magic, ZIMG_MAGIC, 8) ||
		    le32toh(h.crc) != crc32c(&h, offsetof(struct zimg_header, crc)))
			continue;
		if (best < 0 || le64toh(h.generation) > gen) {
			best = s;
			gen = le64toh(h.generation);
			if (out)
				*out = h;
		}
	}
	return best;
}

/* The fixture's metadata opened directly (no namespace around it), the
 * last batch's data checked by data_crc (NULL: not checked): no data file
 * check, no power-up, no checkpoint - what a crash in the middle of an open
 * leaves. */
static void open_meta_checked(struct fixture *f, struct zns *z, struct zmeta *m,
			      int (*data_crc)(void *, uint64_t, uint32_t, uint32_t *))
{
	struct zmeta_geom g = { .nsid = 1, .lba_shift = 12, .nlbas = NZ * ZLBAS,
				.zone_size = ZLBAS, .zone_cap = ZLBAS, .nr_zones = NZ,
				.zde_size = ZDE, .jnl_limit = 1 << 20, .data_crc = data_crc,
				.data_ctx = f };
	struct zns_geom zg = { .lba_shift = 12, .zone_size = ZLBAS, .zone_cap = ZLBAS,
			       .nr_zones = NZ, .zde_size = ZDE, .zasl_nlb = 8 };
	char err[256];
	assert_int_equal(zns_init(z, &zg), 0);
	if (zmeta_open(m, f->cfg.path, &g, ZMETA_LOAD, z, err, sizeof(err)))
		fail_msg("%s", err);
}

static void open_meta(struct fixture *f, struct zns *z, struct zmeta *m)
{
	open_meta_checked(f, z, m, NULL);
}

/* ---- tests ---- */

/* Does the file have a hole before its end? */
static bool has_hole(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	assert_true(fd >= 0 && !fstat(fd, &st));
	off_t hole = lseek(fd, 0, SEEK_HOLE);
	close(fd);
	return hole < st.st_size;
}

/*
 * The image has a block on disk for every byte, so that a store through
 * its mapping never needs a new one: on a full file system that would be a
 * SIGBUS, and the target would die instead of failing a sync. So after a
 * format, and after an open of an image with a hole where it holds zeros
 * (as the extension area of an image made before was); what the image
 * holds is unchanged.
 */
static void test_image_has_no_holes(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	uint8_t ext[ZDE], got[ZDE], page[4096], zero[4096] = { 0 };

	f->cfg.size = 512 * f->cfg.zone_size; /* extensions over several pages */
	assert_int_equal(ns_open(&f->cfg, true, &f->ns, err, sizeof(err)), 0);
	assert_false(has_hole(f->img));
	memset(ext, 0x3c, sizeof(ext));
	zone_action(f->ns, 0, NVME_ZNS_ZSA_SET_DESC_EXT, ext);
	ns_close(f->ns);
	f->ns = NULL;

	int fd = open(f->img, O_RDWR);
	struct stat st;
	assert_true(fd >= 0 && !fstat(fd, &st));
	off_t punched = -1;
	for (off_t off = st.st_size - 4096; off >= 0 && punched < 0; off -= 4096) {
		assert_int_equal(pread(fd, page, sizeof(page), off), sizeof(page));
		if (!memcmp(page, zero, sizeof(page)))
			punched = off;
	}
	assert_true(punched >= 0); /* a page of zeros: part of the extension area */
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, punched, 4096),
			 0);
	close(fd);
	assert_true(has_hole(f->img));

	must_open(f);
	assert_false(has_hole(f->img));
	zone_desc(f->ns, 0, got);
	assert_memory_equal(got, ext, sizeof(ext));
	for (uint32_t z = 504; z < 512; z++) /* the last page's */
		zone_action(f->ns, z, NVME_ZNS_ZSA_SET_DESC_EXT, ext);
	ns_close(f->ns);
	f->ns = NULL;
	must_open(f);
	for (uint32_t z = 504; z < 512; z++) {
		zone_desc(f->ns, z, got);
		assert_memory_equal(got, ext, sizeof(ext));
	}
}

static void test_state_survives_crash(void **state)
{
	struct fixture *f = *state;
	uint8_t ext[ZDE];
	memset(ext, 0x77, sizeof(ext));
	must_open(f);
	write_blocks(f->ns, 0, 3, 0xa1);
	zone_action(f->ns, 1, NVME_ZNS_ZSA_OPEN, NULL);
	zone_action(f->ns, 2, NVME_ZNS_ZSA_FINISH, NULL);
	zone_action(f->ns, 3, NVME_ZNS_ZSA_SET_DESC_EXT, ext);
	write_blocks(f->ns, 4 * ZLBAS, ZLBAS, 0xb2);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);  /* open -> closed at power-up */
	expect_zone(f->ns, 1, NVME_ZNS_ZS_EMPTY, 0);   /* opened, nothing written */
	expect_zone(f->ns, 2, NVME_ZNS_ZS_FULL, ZLBAS);
	expect_zone(f->ns, 4, NVME_ZNS_ZS_FULL, ZLBAS);
	uint8_t got[ZDE];
	struct nvme_zns_desc d = zone_desc(f->ns, 3, got);
	assert_int_equal(d.zs >> 4, NVME_ZNS_ZS_CLOSED);
	assert_true(d.za & NVME_ZNS_ZA_ZDEV);
	assert_memory_equal(got, ext, ZDE);
	/* The data is there, and blocks above the write pointer read zeros. */
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(f->ns, 2, 1, &iov, 1), 0);
	assert_int_equal(blk[0], 0xa1);
	assert_int_equal(ns_read(f->ns, 3, 1, &iov, 1), 0);
	assert_int_equal(blk[100], 0);
}

/*
 * Two records for zone 0 (wp 2, then wp 4), both acknowledged; damage the
 * second. The image already holds its state (the descriptor follows a record
 * once it is durable), so nothing is lost and nothing is rolled back.
 */
static void damaged_last_record(struct fixture *f, bool torn)
{
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, 2, 2, 2);
	crash(f);
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	assert_int_equal(n, 2);
	if (torn) { /* only the first half is still right */
		uint8_t zero[20] = { 0 };
		file_rw(f->jnl, last + 20, zero, sizeof(zero), true);
	} else {    /* one bit flipped in the write pointer */
		uint8_t b;
		file_rw(f->jnl, last + 32, &b, 1, false);
		b ^= 0x01;
		file_rw(f->jnl, last + 32, &b, 1, true);
	}
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
}

static void test_torn_last_record(void **state) { damaged_last_record(*state, true); }
static void test_bad_checksum_record(void **state) { damaged_last_record(*state, false); }

/* A record as zmeta_write() writes it (no extension). */
static void put_record(const char *jnl, off_t off, uint64_t seq, uint32_t gen, uint32_t batch_pos,
		       uint32_t zone, uint64_t wp, bool good_crc)
{
	struct zjnl_record r = {
		.type = htole16(ZJNL_ZONE), .len = htole16(sizeof(r)), .seq = htole64(seq),
		.gen = htole32(gen), .zone = htole32(zone), .state = NVME_ZNS_ZS_IMPL_OPEN,
		.batch_pos = htole32(batch_pos), .wp = htole64(wp),
	};
	r.crc = htole32(crc32c((uint8_t *)&r + 4, sizeof(r) - 4) ^ (good_crc ? 0 : 1));
	file_rw(jnl, off, &r, sizeof(r), true);
}

/* The journal's last valid record: where the next one goes, its seq, gen. */
static off_t journal_end(struct fixture *f, uint64_t *seq, uint32_t *gen)
{
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	assert_true(n > 0);
	struct zjnl_record r;
	file_rw(f->jnl, last, &r, sizeof(r), false);
	*seq = le64toh(r.seq);
	*gen = le32toh(r.gen);
	return last + le16toh(r.len);
}

/*
 * A torn tail: the last batch, written in part and never synced (so never
 * in the image). Its first record is torn, its second reached the disk
 * whole; nothing valid follows. Recovered as a torn write: dropped.
 */
static void test_torn_batch_dropped(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	crash(f);
	uint64_t seq;
	uint32_t gen;
	off_t end = journal_end(f, &seq, &gen);
	put_record(f->jnl, end, seq + 1, gen, 1, 1, ZLBAS + 3, false);
	put_record(f->jnl, end + (off_t)sizeof(struct zjnl_record), seq + 2, gen, 2, 2,
		   2 * ZLBAS + 3, true);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_EMPTY, 0);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_EMPTY, 0);
}

/*
 * A damaged record followed by a valid one of a later batch is damage, not a
 * torn write: refused, naming the file, the record and its offset and the
 * ways forward. --recover then keeps what the files prove: the image holds
 * every acknowledged state here, so nothing is rolled back.
 */
static void test_damaged_record_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, ZLBAS, 3, 2);
	write_blocks(f->ns, 2 * ZLBAS, 4, 3);
	crash(f);
	uint8_t b;
	off_t first = ZJNL_DATA_OFFSET; /* record 1: zone 0, wp 2 */
	file_rw(f->jnl, first + 32, &b, 1, false);
	b ^= 0x10;
	file_rw(f->jnl, first + 32, &b, 1, true);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.jnl: journal record 1 "));
	assert_non_null(strstr(err, "byte offset 4096"));
	assert_non_null(strstr(err, "--recover NQN/1"));
	assert_non_null(strstr(err, "--format"));
	assert_int_equal(open_ns(f, err, sizeof(err)), -1); /* refusing changed nothing */
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 4);
	clean_close(f);
	f->cfg.recover = false;
	must_open(f); /* the recovery was checkpointed: a plain start works */
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 4);
}

/*
 * A journal cut short (below the size it was made) loses records whose end
 * would look like a torn tail: refused. So is one whose records the image
 * is ahead of, when the image cannot account for every lost record.
 */
static void test_truncated_journal_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	crash(f);
	assert_int_equal(truncate(f->jnl, ZJNL_DATA_OFFSET + 40), 0);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.jnl: is shorter"));
	assert_non_null(strstr(err, "truncated"));
	/* --recover replays what is left (the image holds the rest here) and
	 * gives the journal its size back: the next start is a plain one. */
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
	clean_close(f);
	f->cfg.recover = false;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
}

/* Replaying the same journal twice (a crash during recovery, once the image
 * holds what it replayed and before its checkpoint) gives the same state:
 * records hold absolute values. */
static void test_replay_twice(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 5, 1);
	zone_action(f->ns, 1, NVME_ZNS_ZSA_FINISH, NULL);
	crash(f);

	uint64_t wps[2][NZ];
	uint8_t states[2][NZ];
	for (int round = 0; round < 2; round++) {
		struct zns z;
		struct zmeta m;
		open_meta(f, &z, &m);
		assert_int_equal(m.replayed, 2);
		/* The replayed image reaches the file, as writeback may do. */
		assert_int_equal(zmeta_keep(&m), 0);
		assert_int_equal(msync(m.img, m.img_len, MS_SYNC), 0);
		for (int i = 0; i < NZ; i++) {
			wps[round][i] = z.zones[i].wp;
			states[round][i] = z.zones[i].state;
		}
		zmeta_close(&m);
		zns_destroy(&z);
	}
	assert_memory_equal(wps[0], wps[1], sizeof(wps[0]));
	assert_memory_equal(states[0], states[1], sizeof(states[0]));
	assert_int_equal(wps[0][0], 5);
	assert_int_equal(states[0][1], NVME_ZNS_ZS_FULL);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 5);
}

/*
 * A crash at each step of a checkpoint: (1) descriptors msync'd, header not
 * written; (2) the new header slot torn; (3) header written, journal not yet
 * restarted. Each recovers the same state.
 */
static void test_crash_in_checkpoint(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 5, 1);
	write_blocks(f->ns, ZLBAS, 2, 2);
	crash(f);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp -a %s/ns1 %s/saved", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);

	for (int step = 1; step <= 3; step++) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s/ns1 && cp -a %s/saved %s/ns1", f->dir, f->dir,
			 f->dir);
		assert_int_equal(system(cmd), 0);
		struct zns z;
		struct zmeta m;
		open_meta(f, &z, &m);
		/* The replayed image is a private copy until the open keeps it. */
		assert_int_equal(zmeta_checkpoint(&m), -EBUSY);
		assert_int_equal(zmeta_keep(&m), 0);
		assert_int_equal(msync(m.img, m.img_len, MS_SYNC), 0); /* step 1 done */
		if (step == 2) {
			/* Half of the new header reaches the other slot. */
			struct zimg_header h;
			int cur = current_slot(f->img, &h);
			h.generation = htole64(le64toh(h.generation) + 1);
			h.ckpt_seq = htole64(m.next_seq - 1);
			h.crc = htole32(crc32c(&h, offsetof(struct zimg_header, crc)));
			memcpy(m.img + (size_t)!cur * ZIMG_SLOT_SIZE, &h, sizeof(h) / 2);
			assert_int_equal(msync(m.img, ZIMG_SLOT_SIZE * 2, MS_SYNC), 0);
		} else if (step == 3) {
			assert_int_equal(zmeta_checkpoint(&m), 0);
		}
		zmeta_close(&m);
		zns_destroy(&z);
		must_open(f);
		expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 5);
		expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 2);
		clean_close(f);
	}
}

/*
 * A checkpoint whose msync fails leaves every page of the image dirty: Linux
 * marks the pages it could not write clean and reports the error once, so
 * a retry that found them clean would succeed without writing them, start
 * the journal anew, and a crash would bring back older zone states. The
 * fault layer's torn sync is that failure (the sync runs, then EIO).
 */
static void test_failed_checkpoint_redirties_image(void **state)
{
	struct fixture *f = *state;
	uint8_t ext[ZDE];
	memset(ext, 0x5a, sizeof(ext));
	must_open(f);
	write_blocks(f->ns, 0, 5, 1);
	zone_action(f->ns, 1, NVME_ZNS_ZSA_SET_DESC_EXT, ext);
	sync_ns(f->ns);
	crash(f);

	struct zns z;
	struct zmeta m;
	open_meta(f, &z, &m); /* replays the records into the image */
	assert_int_equal(zmeta_keep(&m), 0);
	off_t from = (off_t)m.hdr.desc_offset;
	uint64_t len = m.img_len - m.hdr.desc_offset;
	assert_int_equal(msync(m.img, m.img_len, MS_SYNC), 0);
	if (!dirty_pages_watchable(m.img_fd, from, len)) {
		zmeta_close(&m);
		zns_destroy(&z);
		skip();
	}

	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_SYNC,
					   .kinds = FAULT_KIND(FAULT_TORN), .one_in = 1,
					   .count = 1 });
	assert_int_equal(zmeta_checkpoint(&m), -EIO);
	fault_io_disarm();
	assert_int_equal(dirty_pages(m.img_fd, from, len), (int64_t)(len / 4096));
	assert_int_equal(zmeta_checkpoint(&m), 0);
	assert_int_equal(dirty_pages(m.img_fd, from, len), 0);
	zmeta_close(&m);
	zns_destroy(&z);

	must_open(f);
	uint8_t got[ZDE];
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 5);
	zone_desc(f->ns, 1, got);
	assert_memory_equal(got, ext, sizeof(ext));
}

/* The current header slot damaged (a torn write of it): the other slot and
 * the journal recover the state. */
static void test_torn_header_slot(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 4, 1);
	clean_close(f); /* checkpoint: the state is in the image */
	must_open(f);   /* power-up checkpoint again: both slots have been written */
	write_blocks(f->ns, 4, 2, 2); /* wp 6; zone implicitly opened */
	crash(f);
	/* Tear the slot written last: the one the next checkpoint would not
	 * write. Its records (of its generation) are then in the journal, so
	 * recovery must refuse rather than fall back silently ... */
	int cur = current_slot(f->img, NULL);
	uint8_t junk[40];
	memset(junk, 0xee, sizeof(junk));
	file_rw(f->img, (off_t)cur * ZIMG_SLOT_SIZE + 30, junk, sizeof(junk), true);
	char err[512] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newest zone image header is damaged"));
	/* ... and --recover replays the newer generation's records instead. */
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 6);
	clean_close(f);
	f->cfg.recover = false;
	/* A slot torn during its own write (no records after it yet) falls
	 * back to the other slot; the journal still holds the older
	 * generation's records, which the image already holds. */
	cur = current_slot(f->img, NULL);
	file_rw(f->img, (off_t)cur * ZIMG_SLOT_SIZE + 30, junk, sizeof(junk), true);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 6);
}

static void test_geometry_mismatch_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 1, 1);
	clean_close(f);
	char err[512] = "";
	f->cfg.zone_size *= 2;
	f->cfg.zone_capacity *= 2;
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zone_size (LBAs) 16 on disk, 32 configured"));
	assert_non_null(strstr(err, "--format"));
	f->cfg.zone_size /= 2;
	f->cfg.zone_capacity /= 2;
	f->cfg.max_open = 2;
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "max_open 0 on disk, 2 configured"));
	f->cfg.max_open = 0;
	must_open(f); /* untouched by the refusals */
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 1);
	clean_close(f);
	/* --format is the explicit way out. */
	f->cfg.zone_size *= 2;
	f->cfg.zone_capacity *= 2;
	f->cfg.size *= 2;
	assert_int_equal(ns_open(&f->cfg, true, &f->ns, err, sizeof(err)), 0);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_EMPTY, 0);
}

static void test_unknown_version_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	clean_close(f);
	for (int s = 0; s < 2; s++) {
		struct zimg_header h;
		file_rw(f->img, (off_t)s * ZIMG_SLOT_SIZE, &h, sizeof(h), false);
		h.version = htole32(ZMETA_VERSION + 1);
		h.crc = htole32(crc32c(&h, offsetof(struct zimg_header, crc)));
		file_rw(f->img, (off_t)s * ZIMG_SLOT_SIZE, &h, sizeof(h), true);
	}
	char err[512] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown zone image format version 3"));
}

/* A version 1 journal (records without a data CRC) is refused, with the
 * way to move on. */
static void test_journal_v1_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	clean_close(f);
	struct zjnl_header h;
	file_rw(f->jnl, 0, &h, sizeof(h), false);
	h.version = htole32(1);
	h.crc = htole32(crc32c(&h, offsetof(struct zjnl_header, crc)));
	file_rw(f->jnl, 0, &h, sizeof(h), true);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown journal format version 1"));
	assert_non_null(strstr(err, "--recover"));
}

static void data_path(struct fixture *f, char *out, size_t len)
{
	snprintf(out, len, "%s/data", f->cfg.path);
}

static void expect_fill(struct fixture *f, uint64_t lba, uint8_t fill)
{
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(f->ns, lba, 1, &iov, 1), 0);
	for (size_t i = 0; i < sizeof(blk); i++)
		if (blk[i] != fill)
			fail_msg("LBA %llu byte %zu: %#x, want %#x", (unsigned long long)lba, i, blk[i],
				 fill);
}

/*
 * A Reset keeps the zone's blocks (no hole punched): the file still holds
 * the old data, reads return zeros at and above the write pointer, a write
 * after it overwrites in place, and a Finish zeroes what it moves the write
 * pointer over - in the file too, so no old data can come back.
 */
static void test_reset_keeps_blocks(void **state)
{
	struct fixture *f = *state;
	char data[sizeof(f->cfg.path) + 8];
	data_path(f, data, sizeof(data));
	must_open(f);
	write_blocks(f->ns, 0, 4, 0x11);
	zone_action(f->ns, 0, NVME_ZNS_ZSA_RESET, NULL);
	uint8_t b;
	file_rw(data, 3 * 4096 + 7, &b, 1, false);
	assert_int_equal(b, 0x11); /* kept */
	for (uint64_t l = 0; l < 4; l++)
		expect_fill(f, l, 0);
	write_blocks(f->ns, 0, 1, 0x22);
	expect_fill(f, 0, 0x22);
	expect_fill(f, 1, 0);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 1);
	expect_fill(f, 0, 0x22);
	expect_fill(f, 1, 0);
	zone_action(f->ns, 0, NVME_ZNS_ZSA_FINISH, NULL);
	expect_fill(f, 1, 0);
	expect_fill(f, 3, 0);
	file_rw(data, 3 * 4096 + 7, &b, 1, false);
	assert_int_equal(b, 0); /* Finish erased it */
}

/*
 * A read across a write pointer in many small pieces (a PCIe read in guest
 * pages has one per page): the written part comes from the file, the rest
 * is zeros, whatever the number of pieces.
 */
static void test_read_across_wp_many_pieces(void **state)
{
	struct fixture *f = *state;
	enum { PIECE = 128, NLB = 4, PIECES = NLB * 4096 / PIECE };
	static uint8_t buf[NLB * 4096];
	struct iovec iov[PIECES];

	must_open(f);
	write_blocks(f->ns, 0, 2, 0x44);
	memset(buf, 0xee, sizeof(buf));
	for (int i = 0; i < PIECES; i++)
		iov[i] = (struct iovec){ .iov_base = buf + i * PIECE, .iov_len = PIECE };
	assert_int_equal(ns_read(f->ns, 0, NLB, iov, PIECES), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], i < 2 * 4096 ? 0x44 : 0);
}

/*
 * Only the last batch's data is checked at recovery: an earlier batch's
 * data was synced before the next batch was written, so a change to it
 * since is no torn write and never rolls its zone back.
 */
static void test_earlier_batch_data_not_rolled_back(void **state)
{
	struct fixture *f = *state;
	char data[sizeof(f->cfg.path) + 8];
	data_path(f, data, sizeof(data));
	must_open(f);
	write_blocks(f->ns, 0, 2, 0x31);     /* batch A */
	write_blocks(f->ns, ZLBAS, 3, 0x32); /* batch B, the last */
	crash(f);
	uint8_t b = 0x99;
	file_rw(data, 1 * 4096 + 5, &b, 1, true);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

static off_t desc_off(struct fixture *f, uint32_t zone)
{
	struct zimg_header h;
	assert_true(current_slot(f->img, &h) >= 0);
	return (off_t)(le64toh(h.desc_offset) + zone * sizeof(struct zimg_desc));
}

/* Block lba never reached the disk: it holds something else. */
static void lose_block(struct fixture *f, uint64_t lba)
{
	char data[sizeof(f->cfg.path) + 8];
	uint8_t blk[4096];
	data_path(f, data, sizeof(data));
	memset(blk, 0xee, sizeof(blk));
	file_rw(data, (off_t)lba * 4096, blk, sizeof(blk), true);
}

/* A damaged descriptor that the journal covers is repaired... */
static void test_damaged_descriptor_repaired(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 1);
	crash(f);
	uint8_t junk[8];
	memset(junk, 0x99, sizeof(junk));
	file_rw(f->img, desc_off(f, 1), junk, sizeof(junk), true);
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/* ... one that it does not cover is refused, never guessed. */
static void test_damaged_descriptor_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 1);
	clean_close(f); /* journal restarted: nothing covers zone 1 now */
	uint8_t junk[8];
	memset(junk, 0x99, sizeof(junk));
	file_rw(f->img, desc_off(f, 1), junk, sizeof(junk), true);
	char err[512] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "damaged (first: zone 1)"));
}

/*
 * --recover makes a zone whose descriptor nothing can repair Read Only, with
 * every block readable: the data stays, the host is told.
 */
static void test_damaged_descriptor_recovered_read_only(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 0x5c);
	clean_close(f);
	uint8_t junk[8];
	memset(junk, 0x99, sizeof(junk));
	file_rw(f->img, desc_off(f, 1), junk, sizeof(junk), true);
	f->cfg.recover = true;
	must_open(f);
	expect_read_only(f->ns, 1);
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(f->ns, ZLBAS + 2, 1, &iov, 1), 0);
	assert_int_equal(blk[7], 0x5c);
	clean_close(f);
	f->cfg.recover = false;
	must_open(f);
	expect_read_only(f->ns, 1);
}

/*
 * A descriptor with a valid CRC whose sequence number no journal reaches
 * (here the largest there is): damage, like a bad CRC. Taken for state the
 * image holds beyond the journal's end, --recover would number the records
 * after it from there - past 2^64, back to 0 - and the next plain start
 * would refuse what --recover loaded.
 */
static void test_descriptor_seq_beyond_any_journal(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, ZLBAS, 0x5c);   /* Full: the power-up keeps it */
	write_blocks(f->ns, 2 * ZLBAS, 3, 0x5d); /* open: the power-up closes it */
	clean_close(f);
	struct zimg_desc d;
	file_rw(f->img, desc_off(f, 1), &d, sizeof(d), false);
	d.seq = htole64(UINT64_MAX);
	d.crc = htole32(crc32c(&d, offsetof(struct zimg_desc, crc)));
	file_rw(f->img, desc_off(f, 1), &d, sizeof(d), true);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	f->cfg.recover = true;
	must_open(f);
	clean_close(f);
	f->cfg.recover = false;
	if (open_ns(f, err, sizeof(err)))
		fail_msg("what --recover loaded is refused next: %s", err);
	expect_read_only(f->ns, 1);
}

/* Flip one bit of the byte at off in path. */
static void flip(const char *path, off_t off, uint8_t mask)
{
	uint8_t b;
	file_rw(path, off, &b, 1, false);
	b ^= mask;
	file_rw(path, off, &b, 1, true);
}

/*
 * Zone 1's descriptor damaged, and the journal's last record - zone 1's
 * newest state, acknowledged - damaged too. The descriptor can only be
 * repaired from the record before; the damaged last record looks like a
 * torn write. Loading would move zone 1 back (wp 7 -> 5, blocks 5 and 6
 * reading zeros): refused, naming both files, the zone and --recover.
 * --recover goes on with the record before and says so; the next plain
 * start loads what it kept.
 */
static void test_damaged_descriptor_and_tail_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, ZLBAS, 3, 2);
	write_blocks(f->ns, 2 * ZLBAS, 4, 3);
	clean_close(f); /* a checkpoint: the journal restarts */
	must_open(f);
	write_blocks(f->ns, ZLBAS + 3, 2, 4);  /* zone 1: wp 5 */
	write_blocks(f->ns, 2 * ZLBAS + 4, 1, 5);
	write_blocks(f->ns, ZLBAS + 5, 2, 6);  /* zone 1: wp 7, the last record */
	crash(f);
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	assert_int_equal(n, 3);
	struct zjnl_record r;
	file_rw(f->jnl, last, &r, sizeof(r), false);
	assert_int_equal(le32toh(r.zone), 1);
	flip(f->jnl, last + 1, 0x40);          /* its CRC */
	flip(f->img, desc_off(f, 1) + 3, 0x08); /* zone 1's descriptor */
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.img"));
	assert_non_null(strstr(err, "zones.jnl"));
	assert_non_null(strstr(err, "zone 1"));
	assert_non_null(strstr(err, "--recover NQN/1"));
	assert_non_null(strstr(err, "--format"));
	print_message("%s\n", err);
	assert_int_equal(open_ns(f, err, sizeof(err)), -1); /* refusing changed nothing */
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 5); /* what the journal still proves */
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 5);
	clean_close(f);
	f->cfg.recover = false;
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 5);
}

/*
 * Any refusal leaves a damaged descriptor as it found it, not only the
 * refusals of a dropped tail: zone 1's damaged descriptor, which replay
 * repairs from record 2 before it meets the damaged record 3 (a valid
 * record 4 after it: damage, refused), is damaged again in zones.img once
 * the open is refused, and --recover still sees (and repairs) it.
 */
static void test_refusal_keeps_damaged_descriptor(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, ZLBAS, 3, 2);      /* record 2: zone 1, wp 3 */
	write_blocks(f->ns, 2 * ZLBAS, 4, 3);  /* record 3: zone 2 */
	write_blocks(f->ns, 2, 1, 4);          /* record 4: zone 0 */
	crash(f);
	off_t third = ZJNL_DATA_OFFSET;
	struct zjnl_record r;
	for (int i = 0; i < 2; i++) {
		file_rw(f->jnl, third, &r, sizeof(r), false);
		third += le16toh(r.len);
	}
	file_rw(f->jnl, third, &r, sizeof(r), false);
	assert_int_equal(le32toh(r.zone), 2);
	flip(f->jnl, third + 1, 0x40);          /* its CRC */
	flip(f->img, desc_off(f, 1) + 3, 0x08); /* zone 1's descriptor */
	struct zimg_desc found, after;
	file_rw(f->img, desc_off(f, 1), &found, sizeof(found), false);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.jnl: journal record 3 "));
	file_rw(f->img, desc_off(f, 1), &after, sizeof(after), false);
	assert_memory_equal(&after, &found, sizeof(found));
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * Zone 1's descriptor damaged, and the data of its last record not on disk
 * (as after a torn write): the record is dropped, and the descriptor could
 * be repaired only from the record before. Which of the two was the zone's
 * state is unknown: refused, not loaded at wp 3.
 */
static void test_damaged_descriptor_and_torn_data_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 1);
	write_blocks(f->ns, ZLBAS + 3, 2, 2); /* the last record: wp 5 */
	crash(f);
	lose_block(f, ZLBAS + 4);
	flip(f->img, desc_off(f, 1) + 3, 0x08);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zone 1's descriptor is damaged"));
	assert_non_null(strstr(err, "(write pointer 0x15) was dropped"));
	assert_non_null(strstr(err, "--recover NQN/1"));
}

/*
 * A batch of two records (zone 0, then zone 1) made durable; the image
 * holds zone 0's record but not yet zone 1's (the process died inside
 * zmeta_apply(), or the page holding zone 1's descriptor never reached the
 * disk); then zone 1's record is damaged. Its batch was durable - the image
 * holds a record of it - so this is damage, not a torn write: refused, not
 * rolled back to wp 3. --recover drops it, and says so.
 */
static void test_damaged_record_of_durable_batch_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, ZLBAS, 3, 2);
	struct zimg_desc before;
	file_rw(f->img, desc_off(f, 1), &before, sizeof(before), false);
	assert_int_equal(le64toh(before.wp), ZLBAS + 3);
	write_unsynced(f->ns, 2, 2, 3);
	write_unsynced(f->ns, ZLBAS + 3, 2, 4);
	sync_ns(f->ns);
	crash(f);
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	struct zjnl_record r;
	file_rw(f->jnl, last, &r, sizeof(r), false);
	assert_int_equal(le32toh(r.zone), 1);
	assert_int_equal(le32toh(r.batch_pos), 2); /* one batch: zone 0, zone 1 */
	file_rw(f->img, desc_off(f, 1), &before, sizeof(before), true);
	flip(f->jnl, last + 36, 0x01); /* its wp */
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.jnl: journal record with sequence number"));
	assert_non_null(strstr(err, "batch was durable"));
	assert_non_null(strstr(err, "--recover NQN/1"));
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/* The same damage to the descriptor of a zone the last record did not
 * change, with a whole journal: repaired, nothing refused. */
static void test_damaged_descriptor_other_zone_repaired(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 2);
	write_blocks(f->ns, 2 * ZLBAS, 4, 3);
	crash(f);
	flip(f->img, desc_off(f, 1) + 3, 0x08);
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_CLOSED, 4);
}

static void path_in(struct fixture *f, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/ns1/%s", f->dir, name);
}

static void run(const char *fmt, struct fixture *f, const char *name)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), fmt, f->dir, name, f->dir, name);
	assert_int_equal(system(cmd), 0);
}

/*
 * Each file of an existing namespace missing: refused, naming the file and
 * the way forward, and nothing re-created; back in place, the namespace
 * opens with its state. (A directory with none of them is a new namespace.)
 */
static void test_missing_file_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = { "zones.img", "zones.jnl", "ns.id", "data" };
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x31);
	clean_close(f);
	for (size_t k = 0; k < 4; k++) {
		run("mv %s/ns1/%s %s/%s.saved", f, names[k]);
		char err[1024] = "", path[256];
		path_in(f, names[k], path, sizeof(path));
		assert_int_equal(open_ns(f, err, sizeof(err)), -1);
		if (!strstr(err, path) || !strstr(err, "missing") || !strstr(err, "--format"))
			fail_msg("%s missing: %s", names[k], err);
		assert_int_equal(access(path, F_OK), -1); /* not made anew */
		run("mv %s/%s.saved %s/ns1/%s", f, names[k]);
		must_open(f);
		expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);
		clean_close(f);
	}
}

/* Short files: the image below its header's length, the data file below the
 * highest write pointer. Refused; --recover keeps what is there. */
static void test_short_files(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x31);
	write_blocks(f->ns, 3 * ZLBAS, 5, 0x32);
	clean_close(f);
	char data[256], err[1024] = "";
	path_in(f, "data", data, sizeof(data));
	run("cp %s/ns1/%s %s/%s.saved", f, "zones.img");
	assert_int_equal(truncate(f->img, 2 * ZIMG_SLOT_SIZE + 100), 0);
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zones.img: file is shorter"));
	run("mv %s/%s.saved %s/ns1/%s", f, "zones.img");

	/* Shorter than the namespace but holding every written block: fine
	 * (it grows back; nothing written is lost). */
	assert_int_equal(truncate(data, (3 * ZLBAS + 5) * 4096), 0);
	must_open(f);
	expect_zone(f->ns, 3, NVME_ZNS_ZS_CLOSED, 5);
	clean_close(f);
	assert_int_equal(truncate(data, (3 * ZLBAS + 2) * 4096), 0);
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "data: shorter than the written zones need"));
	assert_non_null(strstr(err, "--recover NQN/1"));
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);    /* its data is all there */
	expect_read_only(f->ns, 3); /* it lost blocks */
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(f->ns, 3 * ZLBAS + 1, 1, &iov, 1), 0);
	assert_int_equal(blk[9], 0x32);
	assert_int_equal(ns_read(f->ns, 3 * ZLBAS + 4, 1, &iov, 1), 0);
	assert_int_equal(blk[9], 0);
}

/*
 * An image the disk cannot read back is refused with the reason before it
 * is mapped: a load from an unreadable page of the mapping would be a
 * SIGBUS, the end of the whole target. So is a journal whose header cannot
 * be read. Once they read again, the namespace opens as it was.
 */
static void test_unreadable_image_refused(void **state)
{
	struct fixture *f = *state;
	char err[1024] = "";
	uint8_t uuid[16];
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x41);
	memcpy(uuid, ns_info(f->ns)->uuid, sizeof(uuid));
	clean_close(f);
	/* ns.id, read first: a read error is no damage, refused even with
	 * --recover, which would write a new UUID over the one hosts know. */
	f->cfg.recover = true;
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_READ,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
					   .skip = 0, .count = 1 });
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	fault_io_disarm();
	if (!strstr(err, "ns.id: Input/output error"))
		fail_msg("%s", err);
	f->cfg.recover = false;
	must_open(f);
	assert_memory_equal(ns_info(f->ns)->uuid, uuid, sizeof(uuid));
	clean_close(f);
	/* Past ns.id and the two header slots, read first (a slot that cannot
	 * be read is one the other stands in for). */
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_READ,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
					   .skip = 3, .count = 1 });
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	fault_io_disarm();
	if (!strstr(err, "zones.img: cannot be read (Input/output error) in bytes 0-16383: the "
			 "disk under it fails"))
		fail_msg("%s", err);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);
	clean_close(f);

	/* The journal's header, read next (the image is one read here): a
	 * read error is no damage, refused even with --recover, which would
	 * make a new journal over records it may still hold. */
	f->cfg.recover = true;
	fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_READ,
					   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
					   .skip = 4, .count = 1 });
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	fault_io_disarm();
	if (!strstr(err, "zones.jnl: cannot be read (Input/output error): the disk under it"))
		fail_msg("%s", err);
	f->cfg.recover = false;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * The image cut short behind the target's back while the namespace runs:
 * the next load from its mapping would be a SIGBUS, the end of the whole
 * target. It is caught: that sync fails, and so does every one after it
 * (nothing more is journaled or checkpointed); reads go on, another
 * namespace of the process is untouched, and the next start refuses the
 * image with the reason.
 */
static void test_image_cut_short_while_open(void **state)
{
	struct fixture *f = *state;
	char err[1024] = "";
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x51);
	struct ns_config other = f->cfg;
	other.nsid = 2;
	snprintf(other.path, sizeof(other.path), "%s/ns2", f->dir);
	struct ns *ns2 = NULL;
	if (ns_open(&other, false, &ns2, err, sizeof(err)))
		fail_msg("%s", err);

	bool failing, lost;
	ns_health(f->ns, &failing, &lost);
	assert_true(!failing && !lost);
	assert_int_equal(truncate(f->img, 2 * ZIMG_SLOT_SIZE), 0);
	write_unsynced(f->ns, 3, 2, 0x52);
	assert_int_not_equal(ns_sync_wait(f->ns), 0);
	write_unsynced(f->ns, ZLBAS, 1, 0x53);
	assert_int_not_equal(ns_sync_wait(f->ns), 0);
	ns_health(f->ns, &failing, &lost); /* what status and metrics report */
	assert_true(failing && lost);
	ns_health(ns2, &failing, &lost);
	assert_true(!failing && !lost);
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(f->ns, 2, 1, &iov, 1), 0);
	assert_int_equal(blk[7], 0x51);
	write_blocks(ns2, 0, 2, 0x54);
	ns_close(ns2);
	ns_close(f->ns); /* its final checkpoint fails, logged */
	f->ns = NULL;
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	if (!strstr(err, "zones.img: file is shorter than its header says"))
		fail_msg("%s", err);
}

/*
 * The fault in applying a batch (the extension area cut short, the
 * descriptors still there): the commit whose records are durable succeeds,
 * every later one fails, nothing more reaches the journal, and the next
 * start refuses the image with the reason.
 */
static void test_image_fault_in_apply(void **state)
{
	struct fixture *f = *state;
	char err[1024] = "";
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x51);
	assert_int_equal(truncate(f->img, 3 * ZIMG_SLOT_SIZE), 0); /* slots, descriptors */
	uint8_t ext[ZDE];
	memset(ext, 0xa5, sizeof(ext));
	zone_action(f->ns, 2, NVME_ZNS_ZSA_SET_DESC_EXT, ext);
	sync_ns(f->ns); /* journaled, synced: durable; its apply faults */
	struct stat st;
	assert_int_equal(stat(f->jnl, &st), 0);
	size_t jlen = (size_t)st.st_size;
	uint8_t *before = malloc(jlen), *after = malloc(jlen);
	file_rw(f->jnl, 0, before, jlen, false);
	write_unsynced(f->ns, 3, 2, 0x52);
	assert_int_not_equal(ns_sync_wait(f->ns), 0);
	write_unsynced(f->ns, ZLBAS, 1, 0x53);
	assert_int_not_equal(ns_sync_wait(f->ns), 0);
	ns_close(f->ns);
	f->ns = NULL;
	file_rw(f->jnl, 0, after, jlen, false);
	assert_memory_equal(before, after, jlen);
	free(before);
	free(after);
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	if (!strstr(err, "zones.img: file is shorter than its header says"))
		fail_msg("%s", err);
}

/* --recover writes what is missing anew where it can: a journal (the image's
 * state is kept) and an identity file. */
static void test_recover_missing_journal_and_id(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 3, 0x31);
	clean_close(f);
	assert_int_equal(unlink(f->jnl), 0);
	char id[256];
	path_in(f, "ns.id", id, sizeof(id));
	assert_int_equal(unlink(id), 0);
	f->cfg.recover = true;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);
	clean_close(f);
	f->cfg.recover = false;
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * Blocks above a write pointer read as zeros because the read path knows the
 * write pointer; start-up erases nothing. A write over them, or a Finish,
 * replaces them.
 */
static void test_above_wp_reads_zero_not_erased(void **state)
{
	struct fixture *f = *state;
	f->cfg.cross_zone_read = true;
	must_open(f);
	write_blocks(f->ns, 0, 2, 0x11);
	write_blocks(f->ns, ZLBAS, 2, 0x22);
	crash(f);
	/* What a write that never became durable leaves in the file. */
	char data[256];
	path_in(f, "data", data, sizeof(data));
	uint8_t junk[2 * 4096];
	memset(junk, 0xee, sizeof(junk));
	file_rw(data, 2 * 4096, junk, sizeof(junk), true);
	file_rw(data, (ZLBAS + 2) * 4096, junk, sizeof(junk), true);
	must_open(f);
	uint8_t blk[3 * 4096];
	struct iovec iov[2] = { { blk, 4096 + 100 }, { blk + 4096 + 100, 2 * 4096 - 100 } };
	assert_int_equal(ns_read(f->ns, 1, 3, iov, 2), 0); /* wp 2: one block, then zeros */
	assert_int_equal(blk[0], 0x11);
	assert_int_equal(blk[4095], 0x11);
	for (size_t i = 4096; i < sizeof(blk); i++)
		assert_int_equal(blk[i], 0);
	/* A read across zones (cross_zone_read): zone 0's tail, zone 1's head. */
	uint8_t two[2 * 4096];
	struct iovec iov2 = { two, sizeof(two) };
	assert_int_equal(ns_read_check(f->ns, ZLBAS - 1, 2), 0);
	assert_int_equal(ns_read(f->ns, ZLBAS - 1, 2, &iov2, 1), 0);
	assert_int_equal(two[0], 0);
	assert_int_equal(two[4096], 0x22);
	/* The file still holds it: nothing was erased. */
	uint8_t raw[4096];
	file_rw(data, 2 * 4096, raw, sizeof(raw), false);
	assert_int_equal(raw[0], 0xee);
	/* Finish: the zone's unwritten blocks are zeros, not the old bytes. */
	zone_action(f->ns, 1, NVME_ZNS_ZSA_FINISH, NULL);
	iov2 = (struct iovec){ two, 4096 };
	assert_int_equal(ns_read(f->ns, ZLBAS + 2, 1, &iov2, 1), 0);
	assert_int_equal(two[0], 0);
	/* A write at the write pointer replaces them. */
	write_blocks(f->ns, 2, 1, 0x33);
	iov2 = (struct iovec){ two, 2 * 4096 };
	assert_int_equal(ns_read(f->ns, 2, 2, &iov2, 1), 0);
	assert_int_equal(two[0], 0x33);
	assert_int_equal(two[4096], 0);
	/* Reset: zeros. */
	zone_action(f->ns, 0, NVME_ZNS_ZSA_RESET, NULL);
	assert_int_equal(ns_read(f->ns, 0, 2, &iov2, 1), 0);
	assert_int_equal(two[0], 0);
	assert_int_equal(two[4096], 0);
}

/* Many checkpoints (a tiny journal) keep everything. */
static void test_many_checkpoints(void **state)
{
	struct fixture *f = *state;
	f->cfg.journal_size = 64 * 1024; /* ~1600 records */
	must_open(f);
	for (int round = 0; round < 40; round++) {
		for (uint32_t z = 0; z < NZ; z++) {
			for (uint32_t l = 0; l < ZLBAS; l++)
				write_blocks(f->ns, z * ZLBAS + l, 1, (uint8_t)round);
			zone_action(f->ns, z, NVME_ZNS_ZSA_RESET, NULL);
		}
	}
	write_blocks(f->ns, 0, 7, 0x42);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 7);
	for (uint32_t z = 1; z < NZ; z++)
		expect_zone(f->ns, z, NVME_ZNS_ZS_EMPTY, 0);
}

/* ---- Zone Random Write Area (doc/zrwa.md) ---- */

#define ZRWAS 4   /* LBAs */
#define ZRWAFG 2  /* LBAs */

static void zrwa_on(struct fixture *f)
{
	f->cfg.zrwa_size = ZRWAS * 4096;
	f->cfg.zrwa_flush_granularity = ZRWAFG * 4096;
}

static void open_zrwa(struct ns *ns, uint32_t zone)
{
	assert_int_equal(ns_zone_mgmt_send_zrwaa(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZSA_OPEN,
						 NULL), 0);
	sync_ns(ns);
}

static void zrwa_flush(struct ns *ns, uint64_t elba)
{
	assert_int_equal(ns_zone_mgmt_send(ns, elba, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	sync_ns(ns);
}

static void expect_zrwa(struct ns *ns, uint32_t zone, bool zrwav)
{
	assert_int_equal(!!(zone_desc(ns, zone, NULL).za & NVME_ZNS_ZA_ZRWAV), zrwav);
}

static void raw_block(struct fixture *f, uint64_t lba, uint8_t fill)
{
	char data[256];
	uint8_t blk[4096];
	path_in(f, "data", data, sizeof(data));
	memset(blk, fill, sizeof(blk));
	file_rw(data, (off_t)(lba * 4096), blk, sizeof(blk), true);
}

/* The window reads what was written into it - never the blocks a Reset
 * left in the file - and what a crash leaves, acknowledged, stays. */
static void test_zrwa_window_survives_crash(void **state)
{
	struct fixture *f = *state;
	zrwa_on(f);
	must_open(f);
	write_blocks(f->ns, 0, 8, 0xaa);
	zone_action(f->ns, 0, NVME_ZNS_ZSA_RESET, NULL);
	open_zrwa(f->ns, 0);
	for (uint64_t lba = 0; lba < ZLBAS; lba++)
		expect_fill(f, lba, 0);
	write_blocks(f->ns, 1, 1, 0x11);
	write_blocks(f->ns, 0, 2, 0x22); /* overwrites block 1 */
	write_blocks(f->ns, 3, 1, 0x33);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_EXPL_OPEN, 0);
	crash(f);
	must_open(f);
	/* Power-up closes it; it keeps its ZRWA and what its window holds. */
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 0);
	expect_zrwa(f->ns, 0, true);
	expect_fill(f, 0, 0x22);
	expect_fill(f, 1, 0x22);
	expect_fill(f, 2, 0);
	expect_fill(f, 3, 0x33);
	expect_fill(f, 4, 0);
	/* Flushes (explicit, then implicit) are durable once acknowledged. */
	zrwa_flush(f->ns, 1);
	write_blocks(f->ns, 6, 2, 0x66); /* ends 2 past [2, 6): flushes 2 */
	expect_zone(f->ns, 0, NVME_ZNS_ZS_IMPL_OPEN, 4);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
	expect_zrwa(f->ns, 0, true);
	expect_fill(f, 1, 0x22);
	expect_fill(f, 3, 0x33);
	expect_fill(f, 6, 0x66);
	expect_fill(f, 7, 0x66);
	/* A clean restart too. */
	clean_close(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
	expect_zrwa(f->ns, 0, true);
	expect_fill(f, 7, 0x66);
}

/* Above the window a crash can leave only writes never acknowledged (an
 * implicit flush that did not become durable): erased at power-up, so
 * that a later flush does not make them readable. */
static void test_zrwa_above_window_erased(void **state)
{
	struct fixture *f = *state;
	zrwa_on(f);
	must_open(f);
	open_zrwa(f->ns, 1);
	write_blocks(f->ns, ZLBAS + 1, 1, 0x11);
	crash(f);
	raw_block(f, ZLBAS + ZRWAS, 0xee);
	raw_block(f, ZLBAS + ZRWAS + 1, 0xee);
	raw_block(f, ZLBAS + ZRWAS - 1, 0x44); /* inside the window: kept */
	must_open(f);
	zrwa_flush(f->ns, ZLBAS + ZRWAFG - 1);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_IMPL_OPEN, ZRWAFG);
	expect_fill(f, ZLBAS + 1, 0x11);
	expect_fill(f, ZLBAS + ZRWAS - 1, 0x44);
	expect_fill(f, ZLBAS + ZRWAS, 0);
	expect_fill(f, ZLBAS + ZRWAS + 1, 0);
}

/* Finish keeps what the window holds (it becomes readable with the whole
 * capacity) and erases the rest. */
static void test_zrwa_finish_keeps_window(void **state)
{
	struct fixture *f = *state;
	zrwa_on(f);
	must_open(f);
	open_zrwa(f->ns, 2);
	write_blocks(f->ns, 2 * ZLBAS + 2, 2, 0x55);
	zone_action(f->ns, 2, NVME_ZNS_ZSA_FINISH, NULL);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_FULL, ZLBAS);
	expect_zrwa(f->ns, 2, false);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_FULL, ZLBAS);
	expect_fill(f, 2 * ZLBAS + 1, 0);
	expect_fill(f, 2 * ZLBAS + 3, 0x55);
	expect_fill(f, 2 * ZLBAS + ZRWAS, 0);
}

/* The newest header slot's version and ZRWA size. */
static uint32_t image_version(struct fixture *f, uint32_t *zrwa_lbas)
{
	struct zimg_header h[2];
	file_rw(f->img, 0, &h[0], sizeof(h[0]), false);
	file_rw(f->img, ZIMG_SLOT_SIZE, &h[1], sizeof(h[1]), false);
	int s = le64toh(h[1].generation) > le64toh(h[0].generation);
	*zrwa_lbas = le32toh(h[s].zrwa_lbas);
	return le32toh(h[s].version);
}

/* Image version 2 holds the ZRWA size, and only a namespace with a ZRWA
 * writes it; a changed zrwa_size is refused as any geometry change is. */
static void test_zrwa_image_version(void **state)
{
	struct fixture *f = *state;
	uint32_t lbas;
	zrwa_on(f);
	must_open(f);
	open_zrwa(f->ns, 0);
	clean_close(f);
	assert_int_equal(image_version(f, &lbas), 2);
	assert_int_equal(lbas, ZRWAS);
	char err[512] = "";
	f->cfg.zrwa_size = 2 * ZRWAS * 4096;
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zrwa_size (LBAs) 4 on disk, 8 configured"));
	f->cfg.zrwa_size = 0;
	f->cfg.zrwa_flush_granularity = 0;
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zrwa_size (LBAs) 4 on disk, 0 configured"));
	/* Without a ZRWA: version 1, as before. */
	assert_int_equal(ns_open(&f->cfg, true, &f->ns, err, sizeof(err)), 0);
	clean_close(f);
	assert_int_equal(image_version(f, &lbas), 1);
	assert_int_equal(lbas, 0);
	must_open(f);
}

/* ---- found in review: impossible headers, check on a ZRWA namespace ---- */

/* Rewrite the current header slot with a valid CRC after fn changed it. */
static void bend_header(struct fixture *f, void (*fn)(struct zimg_header *h))
{
	struct zimg_header h;
	int cur = current_slot(f->img, &h);
	assert_true(cur >= 0);
	fn(&h);
	h.crc = htole32(crc32c(&h, offsetof(struct zimg_header, crc)));
	file_rw(f->img, (off_t)cur * ZIMG_SLOT_SIZE, &h, sizeof(h), true);
}

static void far_desc(struct zimg_header *h) { h->desc_offset = htole64(1ull << 40); }
static void wrap_zde(struct zimg_header *h) { h->zde_offset = htole64(UINT64_MAX - 4095); }
static void slot_desc(struct zimg_header *h) { h->desc_offset = htole64(0); }

/* A header slot whose CRC is valid but whose layout (desc_offset,
 * zde_offset) is not the one format() writes must be refused with a
 * message, as `znstgt-ctl check` does (layout_possible()), never walked:
 * the daemon checks only the geometry against the configuration. */
static void test_header_bogus_layout_refused(void **state)
{
	struct fixture *f = *state;
	void (*bend[])(struct zimg_header *) = { far_desc, wrap_zde, slot_desc };
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	clean_close(f);
	char img_copy[300];
	snprintf(img_copy, sizeof(img_copy), "cp %s %s.orig", f->img, f->img);
	assert_int_equal(system(img_copy), 0);
	for (size_t k = 0; k < sizeof(bend) / sizeof(bend[0]); k++) {
		snprintf(img_copy, sizeof(img_copy), "cp %s.orig %s", f->img, f->img);
		assert_int_equal(system(img_copy), 0);
		bend_header(f, bend[k]);
		char err[512] = "";
		if (open_ns(f, err, sizeof(err)) == 0)
			fail_msg("layout %zu: a header with an impossible layout was loaded", k);
		assert_non_null(strstr(err, "zones.img"));
	}
}

/* `znstgt-ctl check` on a healthy namespace with a ZRWA: the daemon loads
 * it, so check must find nothing damaged. */
static void test_check_zrwa_namespace_clean(void **state)
{
	struct fixture *f = *state;
	zrwa_on(f);
	must_open(f);
	open_zrwa(f->ns, 0);
	write_blocks(f->ns, 0, 2, 0x11);
	clean_close(f);
	must_open(f); /* the daemon loads it */
	clean_close(f);
	struct ns_check_result res;
	char err[256];
	assert_int_equal(ns_check(f->cfg.path, &res, err, sizeof(err)), 0);
	if (res.damaged) {
		char *text = NULL;
		size_t len = 0;
		FILE *o = open_memstream(&text, &len);
		ns_check_print(f->cfg.path, &res, false, o);
		fclose(o);
		fail_msg("check disagrees with the daemon:\n%s", text);
	}
	ns_check_free(&res);
}

/* A start refused after replay (here: the data file missing) must leave
 * the next start to meet what this one met. The last batch's record whose
 * data never reached the disk is dropped when the data file is there; a
 * refused start in between must not make the image vouch for it. */
/* Zone 1 written to wp 3, then its last batch (one record: wp 5) made
 * durable in the journal; the process died before that batch reached the
 * image (zone 1's descriptor holds wp 3) and, with data_lost, before the
 * data of LBA 4 reached the disk (a power cut lost it). */
static void last_batch_unapplied(struct fixture *f, bool data_lost)
{
	must_open(f);
	write_blocks(f->ns, ZLBAS, 3, 1);
	write_blocks(f->ns, ZLBAS + 3, 2, 2); /* the last record: wp 5 */
	crash(f);
	if (data_lost)
		lose_block(f, ZLBAS + 4);
	struct zimg_desc d;
	file_rw(f->img, desc_off(f, 1), &d, sizeof(d), false);
	d.wp = htole64(ZLBAS + 3);
	d.seq = htole64(le64toh(d.seq) - 1);
	d.crc = htole32(crc32c(&d, offsetof(struct zimg_desc, crc)));
	file_rw(f->img, desc_off(f, 1), &d, sizeof(d), true);
}

static void test_refused_start_keeps_torn_data_undecided(void **state)
{
	struct fixture *f = *state;
	last_batch_unapplied(f, true);
	char data[sizeof(f->cfg.path) + 8], away[sizeof(data) + 8];
	data_path(f, data, sizeof(data));
	snprintf(away, sizeof(away), "%s.away", data);
	assert_int_equal(rename(data, away), 0);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "data: missing"));
	assert_int_equal(rename(away, data), 0);
	must_open(f);
	/* As without the refused start: the torn record dropped. */
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/* The data of blocks [lba, lba + nlb) of the fixture's data file, as the
 * page cache holds it (ns.c checks recovery's records the same way). */
static int data_file_crc(void *ctx, uint64_t lba, uint32_t nlb, uint32_t *crc)
{
	struct fixture *f = ctx;
	char data[sizeof(f->cfg.path) + 8];
	size_t len = (size_t)nlb * 4096;
	uint8_t *buf = malloc(len);
	data_path(f, data, sizeof(data));
	file_rw(data, (off_t)lba * 4096, buf, len, false);
	*crc = crc32c(buf, len);
	free(buf);
	return 0;
}

/* The process dies at the check of the last batch's data. */
static int die_at_data_check(void *ctx, uint64_t lba, uint32_t nlb, uint32_t *crc)
{
	raise(SIGKILL);
	return -EIO;
}

/* Does `znstgt-ctl check` say that recovery drops a record whose data
 * never reached the disk? */
static bool check_sees_torn_data(struct fixture *f)
{
	struct ns_check_result res;
	char err[256];
	bool seen = false;
	assert_int_equal(ns_check(f->cfg.path, &res, err, sizeof(err)), 0);
	for (size_t i = 0; i < res.n; i++)
		seen |= strstr(res.v[i].text, "never reached the disk") != NULL;
	ns_check_free(&res);
	return seen;
}

/*
 * The process dies during an open, once replay has applied the last batch
 * and before it has checked that batch's data. The next start (and `check`)
 * must still find the record whose data is not on disk and drop it, not
 * take it for durable because the image holds it.
 */
static void test_crash_in_replay_keeps_torn_data_undecided(void **state)
{
	struct fixture *f = *state;
	last_batch_unapplied(f, true);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zns z;
		struct zmeta m;
		open_meta_checked(f, &z, &m, die_at_data_check);
		_exit(1); /* not reached: the data check kills it */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_true(check_sees_torn_data(f));
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * An open checks the last batch's data against what the page cache holds
 * (after a crash of the process alone, data that may not be on disk yet)
 * and makes it durable only at the power-up's data sync. Until then the
 * image must not hold that batch: the kernel may write the image back, and
 * a power cut then lose the data, as here; the next start must drop the
 * record again.
 */
static void test_power_cut_in_open_keeps_torn_data_undecided(void **state)
{
	struct fixture *f = *state;
	last_batch_unapplied(f, false);
	struct zns z;
	struct zmeta m;
	open_meta_checked(f, &z, &m, data_file_crc);
	assert_int_equal(m.torn_data, 0); /* the data is in the page cache */
	assert_int_equal(z.zones[1].wp, ZLBAS + 5);
	assert_int_equal(msync(m.img, m.img_len, MS_SYNC), 0); /* writeback */
	zmeta_close(&m); /* the power goes */
	zns_destroy(&z);
	lose_block(f, ZLBAS + 4);
	assert_true(check_sees_torn_data(f));
	must_open(f);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * A crash at every write and sync of an open (its power-up's data sync,
 * checkpoints and commit), whatever the files then hold: the next start
 * must load them and find what `expect` says.
 */
static void crash_at_each_step_of_open(struct fixture *f, void (*expect)(struct fixture *f))
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp -a %s/ns1 %s/saved", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	for (uint32_t skip = 0;; skip++) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s/ns1 && cp -a %s/saved %s/ns1", f->dir, f->dir,
			 f->dir);
		assert_int_equal(system(cmd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			fault_io_arm(&(struct fault_plan){ .seed = 1,
				.points = FAULT_ALL_WRITES | FAULT_ALL_SYNCS,
				.kinds = FAULT_KIND(FAULT_CRASH), .one_in = 1, .skip = skip,
				.count = 1 });
			char err[512];
			_exit(open_ns(f, err, sizeof(err)) ? 2 : 0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		bool opened = WIFEXITED(status);
		if (opened)
			assert_int_equal(WEXITSTATUS(status), 0);
		else
			assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		char err[1024] = "";
		if (open_ns(f, err, sizeof(err)))
			fail_msg("after a crash at write or sync %u of an open: %s", skip, err);
		expect(f);
		clean_close(f);
		if (opened)
			break; /* no write or sync of the open was left */
	}
}

/* The record whose data never reached the disk dropped, zone 1 at the
 * state its last acknowledged record set. */
static void expect_torn_data_dropped(struct fixture *f)
{
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

static void test_crash_at_each_step_of_open(void **state)
{
	struct fixture *f = *state;
	last_batch_unapplied(f, true);
	crash_at_each_step_of_open(f, expect_torn_data_dropped);
}

/* Zone 0's record kept, zone 1's dropped with the torn batch's end. */
static void expect_torn_batch_prefix(struct fixture *f)
{
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_CLOSED, 3);
}

/*
 * The last batch (zone 0: wp 4, then zone 1: wp 5) written in part: its
 * first record whole, its second torn after the fields that place it in the
 * batch, and the image holds neither. An open keeps the first record (its
 * data is on disk) and drops the second as a torn tail. Once that open has
 * put zone 0's record into zones.img, the image holds a record of a batch
 * that was never durable: a crash before the new journal generation's
 * header must not make the next start take the batch for durable and the
 * torn record for damage.
 */
static void test_crash_in_open_after_torn_batch(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, ZLBAS, 3, 2);
	struct zimg_desc d0, d1;
	file_rw(f->img, desc_off(f, 0), &d0, sizeof(d0), false);
	file_rw(f->img, desc_off(f, 1), &d1, sizeof(d1), false);
	write_unsynced(f->ns, 2, 2, 3);
	write_unsynced(f->ns, ZLBAS + 3, 2, 4);
	sync_ns(f->ns);
	crash(f);
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	struct zjnl_record r;
	file_rw(f->jnl, last, &r, sizeof(r), false);
	assert_int_equal(le32toh(r.zone), 1);
	assert_int_equal(le32toh(r.batch_pos), 2); /* one batch: zone 0, zone 1 */
	file_rw(f->img, desc_off(f, 0), &d0, sizeof(d0), true);
	file_rw(f->img, desc_off(f, 1), &d1, sizeof(d1), true);
	flip(f->jnl, last + 36, 0x01); /* its wp */
	crash_at_each_step_of_open(f, expect_torn_batch_prefix);
}

/* The same for an extension: a refused start leaves the image's extension
 * as found. */
static void test_refused_start_puts_extension_back(void **state)
{
	struct fixture *f = *state;
	uint8_t a[ZDE], b[ZDE], got[ZDE];
	struct zimg_header h;
	struct zimg_desc da, dgot;
	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	must_open(f);
	zone_action(f->ns, 2, NVME_ZNS_ZSA_SET_DESC_EXT, a);
	clean_close(f); /* checkpointed: the image holds extension a */
	assert_true(current_slot(f->img, &h) >= 0);
	off_t zde = (off_t)(le64toh(h.zde_offset) + 2 * ZDE);
	file_rw(f->img, desc_off(f, 2), &da, sizeof(da), false);
	must_open(f);
	zone_action(f->ns, 2, NVME_ZNS_ZSA_RESET, NULL);
	zone_action(f->ns, 2, NVME_ZNS_ZSA_SET_DESC_EXT, b);
	crash(f);
	/* The process died before those records reached the image. */
	file_rw(f->img, desc_off(f, 2), &da, sizeof(da), true);
	file_rw(f->img, zde, a, sizeof(a), true);
	char data[sizeof(f->cfg.path) + 8], away[sizeof(data) + 8];
	data_path(f, data, sizeof(data));
	snprintf(away, sizeof(away), "%s.away", data);
	assert_int_equal(rename(data, away), 0);
	char err[1024] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_int_equal(rename(away, data), 0);
	file_rw(f->img, zde, got, sizeof(got), false);
	assert_memory_equal(got, a, sizeof(a));
	file_rw(f->img, desc_off(f, 2), &dgot, sizeof(dgot), false);
	assert_memory_equal(&dgot, &da, sizeof(da));
	must_open(f); /* and the journal still gives b */
	zone_desc(f->ns, 2, got);
	assert_memory_equal(got, b, sizeof(b));
}

/* A zoned namespace's directory configured as conventional: its zone state
 * would be ignored (every block, above the write pointers too, readable and
 * writable with no zone rule) and then disagree with the data when it is
 * zoned again. A configuration change like any geometry change: refused. */
static void test_zoned_dir_as_conventional_refused(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 2, 0x11);
	clean_close(f);
	f->cfg.zoned = false;
	char err[512] = "";
	if (open_ns(f, err, sizeof(err)) == 0) {
		ns_close(f->ns);
		f->ns = NULL;
		fail_msg("a zoned namespace's directory was opened as a conventional one");
	}
	assert_non_null(strstr(err, "zones.img"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_survives_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_has_no_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_checksum_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_batch_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_journal_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_header_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_checkpoint_redirties_image, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_geometry_mismatch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_recovered_read_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_and_tail_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_other_zone_repaired, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_record_of_durable_batch_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refusal_keeps_damaged_descriptor, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_and_torn_data_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_image_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_cut_short_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_fault_in_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_missing_journal_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_above_wp_reads_zero_not_erased, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_v1_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_keeps_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_across_wp_many_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_earlier_batch_data_not_rolled_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_window_survives_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_above_window_erased, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_finish_keeps_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zrwa_image_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_bogus_layout_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_zrwa_namespace_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_start_keeps_torn_data_undecided, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_replay_keeps_torn_data_undecided, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_power_cut_in_open_keeps_torn_data_undecided,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_at_each_step_of_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_open_after_torn_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_seq_beyond_any_journal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refused_start_puts_extension_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoned_dir_as_conventional_refused, setup, teardown),
	};
	return cmocka_run_group_tests_name("zmeta", tests, NULL, NULL);
}
