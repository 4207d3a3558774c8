/*
 * Durable zone metadata: recovery from the journal (a torn last record, a bad
 * checksum, replay twice), a crash at each step of a checkpoint, a torn or
 * damaged header slot, damaged descriptors, and refusals (geometry mismatch,
 * unknown format version). The files are damaged by hand, at the offsets
 * zmeta.h documents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <fcntl.h>
#include <nvme/types.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "ns.h"
#include "zmeta.h"

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

/* Write nlb blocks at the zone's write pointer, each filled with `fill`. */
static void write_blocks(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	uint8_t *buf = malloc((size_t)nlb * 4096);
	memset(buf, fill, (size_t)nlb * 4096);
	struct iovec iov = { buf, (size_t)nlb * 4096 };
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	assert_int_equal(ns_write_data(ns, &w, &iov, 1), 0);
	ns_write_end(ns, &w, 0);
	free(buf);
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

/* The fixture's metadata opened directly (no namespace around it): no
 * power-up, no checkpoint - what a crash in the middle of recovery leaves. */
static void open_meta(struct fixture *f, struct zns *z, struct zmeta *m)
{
	struct zmeta_geom g = { .nsid = 1, .lba_shift = 12, .nlbas = NZ * ZLBAS,
				.zone_size = ZLBAS, .zone_cap = ZLBAS, .nr_zones = NZ,
				.zde_size = ZDE, .jnl_limit = 1 << 20 };
	struct zns_geom zg = { .lba_shift = 12, .zone_size = ZLBAS, .zone_cap = ZLBAS,
			       .nr_zones = NZ, .zde_size = ZDE, .zasl_nlb = 8 };
	char err[256];
	assert_int_equal(zns_init(z, &zg), 0);
	if (zmeta_open(m, f->cfg.path, &g, false, z, err, sizeof(err)))
		fail_msg("%s", err);
}

/* ---- tests ---- */

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

/* Two records for zone 0 (wp 2, then wp 4); damage the second. */
static void damaged_last_record(struct fixture *f, bool torn)
{
	must_open(f);
	write_blocks(f->ns, 0, 2, 1);
	write_blocks(f->ns, 2, 2, 2);
	crash(f);
	uint32_t n;
	off_t last = last_record(f->jnl, &n);
	assert_int_equal(n, 2);
	if (torn) { /* only the first half reached the disk */
		uint8_t zero[20] = { 0 };
		file_rw(f->jnl, last + 20, zero, sizeof(zero), true);
	} else {    /* one bit flipped in the write pointer */
		uint8_t b;
		file_rw(f->jnl, last + 32, &b, 1, false);
		b ^= 0x01;
		file_rw(f->jnl, last + 32, &b, 1, true);
	}
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 2);
}

static void test_torn_last_record(void **state) { damaged_last_record(*state, true); }
static void test_bad_checksum_record(void **state) { damaged_last_record(*state, false); }

/* Replaying the same journal twice (a crash during recovery, before its
 * checkpoint) gives the same state: records hold absolute values. */
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
	/* ... while a slot torn during its own write (no records after it yet)
	 * falls back to the other slot: drop the journal's records to model that. */
	uint8_t zero[ZJNL_DATA_OFFSET] = { 0 };
	file_rw(f->jnl, ZJNL_DATA_OFFSET, zero, sizeof(zero), true);
	must_open(f);
	/* Descriptors are only ever updated from durable records, so the
	 * image itself still holds the last committed state (wp 6). */
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
		h.version = htole32(2);
		h.crc = htole32(crc32c(&h, offsetof(struct zimg_header, crc)));
		file_rw(f->img, (off_t)s * ZIMG_SLOT_SIZE, &h, sizeof(h), true);
	}
	char err[512] = "";
	assert_int_equal(open_ns(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown zone image format version 2"));
}

static off_t desc_off(struct fixture *f, uint32_t zone)
{
	struct zimg_header h;
	assert_true(current_slot(f->img, &h) >= 0);
	return (off_t)(le64toh(h.desc_offset) + zone * sizeof(struct zimg_desc));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_survives_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_checksum_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_header_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_geometry_mismatch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_descriptor_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_checkpoints, setup, teardown),
	};
	return cmocka_run_group_tests_name("zmeta", tests, NULL, NULL);
}
