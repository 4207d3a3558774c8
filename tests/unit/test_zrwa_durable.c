/*
 * Zone Random Write Area through a namespace (doc/zrwa.md): the window
 * reads what was written into it (never what a Reset left in the file),
 * acknowledged window data and flushes survive a crash and a clean
 * restart, blocks above the window that a crash left are erased at
 * power-up, Finish keeps the window, and the image records the ZRWA size
 * (version 2) so that a changed configuration is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <fcntl.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ns.h"
#include "zmeta.h"

#define NZ 4
#define ZLBAS 16  /* 4 KiB LBAs per zone */
#define ZRWAS 4   /* LBAs */
#define ZRWAFG 2  /* LBAs */

struct fixture {
	char dir[64];
	struct ns_config cfg;
	struct ns *ns;
	char data[128], img[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/znstgt-zrwa-XXXXXX");
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
	c->journal_size = 1 << 20;
	c->zrwa_size = ZRWAS * 4096;
	c->zrwa_flush_granularity = ZRWAFG * 4096;
	snprintf(f->data, sizeof(f->data), "%s/ns1/data", f->dir);
	snprintf(f->img, sizeof(f->img), "%s/ns1/zones.img", f->dir);
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

static void must_open(struct fixture *f)
{
	char err[512] = "";
	if (ns_open(&f->cfg, false, &f->ns, err, sizeof(err)))
		fail_msg("ns_open: %s", err);
}

/* A crash: nothing more reaches the files. */
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

/* Write nlb blocks filled with `fill` at slba, then make them durable. */
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
	assert_int_equal(ns_sync_wait(ns), 0);
}

static void open_zrwa(struct ns *ns, uint32_t zone)
{
	assert_int_equal(ns_zone_mgmt_send_zrwaa(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZSA_OPEN,
						 NULL), 0);
	assert_int_equal(ns_sync_wait(ns), 0);
}

static void zrwa_flush(struct ns *ns, uint64_t elba)
{
	assert_int_equal(ns_zone_mgmt_send(ns, elba, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(ns), 0);
}

static void expect_zone(struct ns *ns, uint32_t zone, uint8_t state, uint64_t wp_off,
			bool zrwa)
{
	uint8_t buf[128];
	assert_int_equal(ns_zone_report(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZRA_REPORT_ZONES, 0,
					true, buf, sizeof(buf)), 0);
	struct nvme_zns_desc d;
	memcpy(&d, buf + 64, sizeof(d));
	if (d.zs >> 4 != state || le64toh(d.wp) != (uint64_t)zone * ZLBAS + wp_off ||
	    !!(d.za & NVME_ZNS_ZA_ZRWAV) != zrwa)
		fail_msg("zone %u: state %#x wp %#llx za %#x, want %#x %#llx%s", zone, d.zs >> 4,
			 (unsigned long long)le64toh(d.wp), d.za, state,
			 (unsigned long long)(zone * ZLBAS + wp_off), zrwa ? " ZRWAV" : "");
}

/* Every byte of block lba reads as fill. */
static void expect_block(struct ns *ns, uint64_t lba, uint8_t fill)
{
	uint8_t blk[4096];
	struct iovec iov = { blk, sizeof(blk) };
	assert_int_equal(ns_read(ns, lba, 1, &iov, 1), 0);
	for (size_t i = 0; i < sizeof(blk); i++)
		if (blk[i] != fill)
			fail_msg("LBA %llu byte %zu: %#x, want %#x", (unsigned long long)lba, i,
				 blk[i], fill);
}

static void raw_write(const char *path, uint64_t lba, uint8_t fill)
{
	uint8_t blk[4096];
	memset(blk, fill, sizeof(blk));
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, blk, sizeof(blk), (off_t)(lba * 4096)), (ssize_t)sizeof(blk));
	close(fd);
}

/* The window reads what was written into it - never the blocks a Reset
 * left in the file - and what a crash leaves, acknowledged, stays. */
static void test_window_survives_crash(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	write_blocks(f->ns, 0, 8, 0xaa);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 0, NVME_ZNS_ZSA_RESET, false, NULL), 0);
	open_zrwa(f->ns, 0);
	for (uint64_t lba = 0; lba < ZLBAS; lba++)
		expect_block(f->ns, lba, 0);
	write_blocks(f->ns, 1, 1, 0x11);
	write_blocks(f->ns, 0, 2, 0x22); /* overwrites block 1 */
	write_blocks(f->ns, 3, 1, 0x33);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_EXPL_OPEN, 0, true);
	crash(f);
	must_open(f);
	/* Power-up closes it; it keeps its ZRWA and what its window holds. */
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 0, true);
	expect_block(f->ns, 0, 0x22);
	expect_block(f->ns, 1, 0x22);
	expect_block(f->ns, 2, 0);
	expect_block(f->ns, 3, 0x33);
	expect_block(f->ns, 4, 0);
	/* Flushes (explicit, then implicit) are durable once acknowledged. */
	zrwa_flush(f->ns, 1);
	write_blocks(f->ns, 6, 2, 0x66); /* ends 2 past [2, 6): flushes 2 */
	expect_zone(f->ns, 0, NVME_ZNS_ZS_IMPL_OPEN, 4, true);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4, true);
	expect_block(f->ns, 1, 0x22);
	expect_block(f->ns, 3, 0x33);
	expect_block(f->ns, 6, 0x66);
	expect_block(f->ns, 7, 0x66);
	/* A clean restart too. */
	clean_close(f);
	must_open(f);
	expect_zone(f->ns, 0, NVME_ZNS_ZS_CLOSED, 4, true);
	expect_block(f->ns, 7, 0x66);
}

/* Above the window a crash can leave only writes never acknowledged (an
 * implicit flush that did not become durable): erased at power-up, so
 * that a later flush does not make them readable. */
static void test_above_window_erased(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	open_zrwa(f->ns, 1);
	write_blocks(f->ns, ZLBAS + 1, 1, 0x11);
	crash(f);
	raw_write(f->data, ZLBAS + ZRWAS, 0xee);
	raw_write(f->data, ZLBAS + ZRWAS + 1, 0xee);
	raw_write(f->data, ZLBAS + ZRWAS - 1, 0x44); /* inside the window: kept */
	must_open(f);
	zrwa_flush(f->ns, ZLBAS + ZRWAFG - 1);
	expect_zone(f->ns, 1, NVME_ZNS_ZS_IMPL_OPEN, ZRWAFG, true);
	expect_block(f->ns, ZLBAS + 1, 0x11);
	expect_block(f->ns, ZLBAS + ZRWAS - 1, 0x44);
	expect_block(f->ns, ZLBAS + ZRWAS, 0);
	expect_block(f->ns, ZLBAS + ZRWAS + 1, 0);
}

/* Finish keeps what the window holds (it becomes readable with the whole
 * capacity) and erases the rest. */
static void test_finish_keeps_window(void **state)
{
	struct fixture *f = *state;
	must_open(f);
	open_zrwa(f->ns, 2);
	write_blocks(f->ns, 2 * ZLBAS + 2, 2, 0x55);
	assert_int_equal(ns_zone_mgmt_send(f->ns, 2 * ZLBAS, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_FULL, ZLBAS, false);
	crash(f);
	must_open(f);
	expect_zone(f->ns, 2, NVME_ZNS_ZS_FULL, ZLBAS, false);
	expect_block(f->ns, 2 * ZLBAS + 1, 0);
	expect_block(f->ns, 2 * ZLBAS + 3, 0x55);
	expect_block(f->ns, 2 * ZLBAS + ZRWAS, 0);
}

static uint32_t image_version(struct fixture *f, uint32_t *zrwa_lbas)
{
	struct zimg_header h[2];
	int fd = open(f->img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h[0], sizeof(h[0]), 0), (ssize_t)sizeof(h[0]));
	assert_int_equal(pread(fd, &h[1], sizeof(h[1]), ZIMG_SLOT_SIZE), (ssize_t)sizeof(h[1]));
	close(fd);
	int s = le64toh(h[1].generation) > le64toh(h[0].generation);
	*zrwa_lbas = le32toh(h[s].zrwa_lbas);
	return le32toh(h[s].version);
}

/* Image version 2 holds the ZRWA size, and only a namespace with a ZRWA
 * writes it; a changed zrwa_size is refused as any geometry change is. */
static void test_image_version(void **state)
{
	struct fixture *f = *state;
	uint32_t lbas;
	must_open(f);
	open_zrwa(f->ns, 0);
	clean_close(f);
	assert_int_equal(image_version(f, &lbas), 2);
	assert_int_equal(lbas, ZRWAS);
	char err[512] = "";
	f->cfg.zrwa_size = 2 * ZRWAS * 4096;
	assert_int_equal(ns_open(&f->cfg, false, &f->ns, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zrwa_size (LBAs) 4 on disk, 8 configured"));
	f->cfg.zrwa_size = 0;
	f->cfg.zrwa_flush_granularity = 0;
	assert_int_equal(ns_open(&f->cfg, false, &f->ns, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zrwa_size (LBAs) 4 on disk, 0 configured"));
	/* Without a ZRWA: version 1, as before. */
	assert_int_equal(ns_open(&f->cfg, true, &f->ns, err, sizeof(err)), 0);
	clean_close(f);
	assert_int_equal(image_version(f, &lbas), 1);
	assert_int_equal(lbas, 0);
	must_open(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window_survives_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_above_window_erased, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_keeps_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
