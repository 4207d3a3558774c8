/*
 * Offline inspection and check of a namespace directory (ns_inspect.h;
 * znstgt-ctl inspect / check): a namespace is written through the engine
 * (ns.h), closed cleanly or abandoned (a crash: its changes only in the
 * journal), then copies of its files are damaged one way each - a bit
 * flipped in ns.id, a descriptor, an extension, a header slot, a journal
 * record; a file truncated or deleted - and checked. The check must name
 * the damaged file and, where the format has them, the zone, record and
 * byte offset; never change a byte or add a file; and say nothing is
 * damaged about the untouched files. Inspect must show the geometry, the
 * slots and every zone's state and write pointer as written, with the
 * Report Zones filters, and list the journal's records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "fault_io.h"
#include "log.h"
#include "ns.h"
#include "ns_inspect.h"
#include "zmeta.h"

#define NZ 8
#define ZLBAS 16
#define BLK 4096u
#define ZDE 64
/* zones.img layout for this geometry (zmeta.h): two 4 KiB slots, the
 * descriptors, the extensions from the next 4 KiB boundary. */
#define DESC_OFF (2 * ZIMG_SLOT_SIZE)
#define ZDE_OFF (DESC_OFF + 4096)

static char root[] = "/tmp/znstgt-inspect-XXXXXX";
static char clean[96], crashed[96], work[96];

static void path_of(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void copy_dir(const char *src, const char *dst)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s && cp -a %s %s", dst, src, dst);
	assert_int_equal(system(cmd), 0);
}

static void flip_bit(const char *dir, const char *name, off_t off, unsigned bit)
{
	char p[160];
	uint8_t b;
	path_of(p, sizeof(p), dir, name);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void cut(const char *dir, const char *name, off_t len)
{
	char p[160];
	path_of(p, sizeof(p), dir, name);
	assert_int_equal(truncate(p, len), 0);
}

static void rm(const char *dir, const char *name)
{
	char p[160];
	path_of(p, sizeof(p), dir, name);
	assert_int_equal(unlink(p), 0);
}

/* CRC of every file of dir, names and bytes, in directory order. */
static uint32_t dir_crc(const char *dir)
{
	struct dirent **e;
	int n = scandir(dir, &e, NULL, alphasort);
	uint32_t crc = CRC32C_INIT;
	static uint8_t buf[1 << 16];

	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		char p[400];
		ssize_t got;
		crc = crc32c_update(crc, e[i]->d_name, strlen(e[i]->d_name) + 1);
		snprintf(p, sizeof(p), "%s/%s", dir, e[i]->d_name);
		int fd = open(p, O_RDONLY);
		if (fd >= 0 && e[i]->d_type == DT_REG)
			while ((got = read(fd, buf, sizeof(buf))) > 0)
				crc = crc32c_update(crc, buf, (size_t)got);
		if (fd >= 0)
			close(fd);
		free(e[i]);
	}
	free(e);
	return crc32c_final(crc);
}

/* ---- the namespace ---- */

static void config(struct ns_config *c, const char *dir)
{
	memset(c, 0, sizeof(*c));
	c->nsid = 3;
	c->lba_size = BLK;
	c->zoned = true;
	c->zone_size = ZLBAS * BLK;
	c->zone_capacity = 12 * BLK;
	c->size = NZ * c->zone_size;
	c->zone_append_max = 4 * BLK;
	c->zde_size = ZDE;
	c->max_open = 4;
	c->journal_size = 1 << 20;
	snprintf(c->path, sizeof(c->path), "%s", dir);
}

static void write_lbas(struct ns *ns, uint64_t slba, uint32_t nlb)
{
	static uint8_t buf[12 * BLK];
	struct iovec iov = { buf, (size_t)nlb * BLK };
	struct ns_write w;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	assert_int_equal(ns_write_data(ns, &w, &iov, 1), 0);
	ns_write_end(ns, &w, 0);
	assert_int_equal(ns_sync_wait(ns), 0); /* each its own batch */
}

/*
 * Zone 0 full (written to its capacity), 1 implicitly open (5 written),
 * 2 explicitly open (nothing written), 3 closed (3 written), 4 full by
 * Finish (2 written), 5..7 empty.
 */
static void make_ns(const char *dir, bool crash)
{
	static struct ns_config c;
	struct ns *ns;
	char err[1024];

	config(&c, dir);
	assert_int_equal(ns_open(&c, false, &ns, err, sizeof(err)), 0);
	write_lbas(ns, 0, 12);
	write_lbas(ns, 1 * ZLBAS, 5);
	assert_int_equal(ns_zone_mgmt_send(ns, 2 * ZLBAS, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
	write_lbas(ns, 3 * ZLBAS, 3);
	assert_int_equal(ns_zone_mgmt_send(ns, 3 * ZLBAS, NVME_ZNS_ZSA_CLOSE, false, NULL), 0);
	write_lbas(ns, 4 * ZLBAS, 2);
	assert_int_equal(ns_zone_mgmt_send(ns, 4 * ZLBAS, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
	assert_int_equal(ns_sync_wait(ns), 0);
	if (crash)
		ns_abandon(ns);
	else
		ns_close(ns);
}

static int setup(void **state)
{
	assert_non_null(mkdtemp(root));
	snprintf(clean, sizeof(clean), "%s/clean", root);
	snprintf(crashed, sizeof(crashed), "%s/crashed", root);
	snprintf(work, sizeof(work), "%s/work", root);
	log_set_level(LOG_ERROR);
	make_ns(clean, false);
	make_ns(crashed, true);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

/* ---- helpers on the output ---- */

static char *inspect(const char *dir, const struct ns_inspect_opts *o)
{
	char *text = NULL, err[256];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(ns_inspect(dir, o, f, err, sizeof(err)), 0);
	fclose(f);
	return text;
}

static void has(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

/* Check dir (a damaged copy): the damage is reported, naming file and
 * want, and the files are untouched. */
static void damaged(const char *dir, const char *file, const char *want)
{
	struct ns_check_result res;
	char err[256];
	uint32_t before = dir_crc(dir);
	bool found = false;

	assert_int_equal(ns_check(dir, &res, err, sizeof(err)), 0);
	assert_int_equal(dir_crc(dir), before);
	for (size_t i = 0; i < res.n; i++)
		if (res.v[i].damage && strcmp(res.v[i].file, file) == 0 &&
		    strstr(res.v[i].text, want))
			found = true;
	if (!found || !res.damaged) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		ns_check_print(dir, &res, false, f);
		fclose(f);
		fail_msg("expected damage in %s naming \"%s\"; got:\n%s", file, want, text);
	}
	ns_check_free(&res);
}

/* ---- tests ---- */

static void test_inspect_clean(void **state)
{
	struct ns_inspect_opts o = { .json = true };
	char *t = inspect(clean, &o);

	has(t, "\"zoned\": true");
	has(t, "\"ns_id\": {\"state\": \"ok\"");
	has(t, "\"geometry\": {\"nsid\": 3, \"lba_size\": 4096, \"nlbas\": 128, \"zone_size\": 16, "
	       "\"zone_capacity\": 12, \"zones\": 8, \"zde_size\": 64, \"max_open\": 4");
	has(t, "\"recovery\": {\"ok\": true");
	/* A clean close checkpoints: nothing left in the journal. */
	has(t, "\"count\": 0");
	has(t, "{\"zone\": 0, \"zslba\": 0, \"state\": \"full\", \"wp\": 12, \"written\": 12");
	has(t, "{\"zone\": 1, \"zslba\": 16, \"state\": \"implicitly-open\", \"wp\": 21, "
	       "\"written\": 5");
	has(t, "{\"zone\": 2, \"zslba\": 32, \"state\": \"explicitly-open\", \"wp\": 32");
	has(t, "{\"zone\": 3, \"zslba\": 48, \"state\": \"closed\", \"wp\": 51, \"written\": 3");
	has(t, "{\"zone\": 4, \"zslba\": 64, \"state\": \"full\", \"wp\": 76");
	has(t, "{\"zone\": 7, \"zslba\": 112, \"state\": \"empty\", \"wp\": 112");
	/* One slot current, the other the checkpoint before it. */
	has(t, "\"current\": true");
	has(t, "\"current\": false");
	free(t);
}

static void test_inspect_filters(void **state)
{
	struct ns_inspect_opts o = { .json = true, .filter = NS_ZF_OPEN };
	char *t = inspect(clean, &o);

	has(t, "\"zone\": 1,");
	has(t, "\"zone\": 2,");
	assert_null(strstr(t, "\"zone\": 0,"));
	assert_null(strstr(t, "\"zone\": 3,"));
	free(t);

	o.filter = NS_ZF_FULL;
	o.slba = 20; /* from zone 1 on: zone 0 left out */
	t = inspect(clean, &o);
	has(t, "\"zone\": 4,");
	assert_null(strstr(t, "\"zone\": 0,"));
	assert_null(strstr(t, "\"zone\": 1,"));
	free(t);

	o.filter = NS_ZF_EMPTY;
	o.slba = 0;
	o.max_zones = 2;
	t = inspect(clean, &o);
	has(t, "\"zone\": 5,");
	has(t, "\"zone\": 6,");
	assert_null(strstr(t, "\"zone\": 7,"));
	free(t);

	enum ns_zone_filter f;
	assert_int_equal(ns_zone_filter_parse("read-only", &f), 0);
	assert_int_equal(f, NS_ZF_READ_ONLY);
	assert_int_equal(ns_zone_filter_parse("opened", &f), -1);

	/* Plain text carries the same values. */
	o = (struct ns_inspect_opts){ .filter = NS_ZF_CLOSED };
	t = inspect(clean, &o);
	has(t, "8 zones of 16 LBAs, capacity 12");
	has(t, "closed");
	has(t, "0x33"); /* zone 3's write pointer, 51 */
	assert_null(strstr(t, "implicitly-open"));
	free(t);
}

/* Abandoned: the changes since the power-up checkpoint are journal records
 * only; inspect replays them as recovery does and lists them. */
static void test_inspect_journal(void **state)
{
	struct ns_inspect_opts o = { .json = true, .journal = true };
	char *t = inspect(crashed, &o), want[160];
	static uint8_t data[12 * BLK];

	has(t, "\"records\": [");
	has(t, "{\"offset\": 4096, \"seq\": 1, ");
	/* Each record carries the CRC of the blocks it makes visible. */
	memset(data, 0xa5, sizeof(data));
	snprintf(want, sizeof(want), "\"batch_pos\": 1, \"zone\": 0, \"state\": \"full\", "
		 "\"za\": 0, \"wp\": 12, \"data_lbas\": 12, \"data_crc\": %u",
		 crc32c(data, sizeof(data)));
	has(t, want);
	has(t, "{\"offset\": 4144, \"seq\": 2, ");
	has(t, "\"zone\": 4, \"state\": \"full\"");
	has(t, "\"damaged\": false");
	has(t, "{\"zone\": 1, \"zslba\": 16, \"state\": \"implicitly-open\", \"wp\": 21");
	has(t, "{\"zone\": 3, \"zslba\": 48, \"state\": \"closed\", \"wp\": 51");
	assert_null(strstr(t, "\"count\": 0,"));
	free(t);
}

static void test_check_clean(void **state)
{
	const char *dirs[] = { clean, crashed };
	for (int i = 0; i < 2; i++) {
		struct ns_check_result res;
		char err[256];
		uint32_t before = dir_crc(dirs[i]);
		assert_int_equal(ns_check(dirs[i], &res, err, sizeof(err)), 0);
		assert_int_equal(res.damaged, 0);
		assert_int_equal(dir_crc(dirs[i]), before);
		ns_check_free(&res);
	}
}

static void test_check_ns_id(void **state)
{
	copy_dir(clean, work);
	flip_bit(work, "ns.id", 20, 3);
	damaged(work, "ns.id", "damaged");
	rm(work, "ns.id");
	damaged(work, "ns.id", "missing");
}

static void test_check_descriptor(void **state)
{
	char want[96];

	copy_dir(clean, work);
	flip_bit(work, ZMETA_IMG_NAME, DESC_OFF + 2 * 32 + 1, 0);
	snprintf(want, sizeof(want), "zone 2: descriptor (byte offset %u) has a bad CRC",
		 DESC_OFF + 2 * 32);
	damaged(work, ZMETA_IMG_NAME, want);
	/* Not covered by the journal (clean close): recovery refuses too. */
	damaged(work, ZMETA_IMG_NAME, "1 zone descriptor(s) damaged (first: zone 2)");

	/* Covered by the journal (abandoned: zone 1's records are there): the
	 * start repairs it - still a damaged file, and the repair is noted. */
	copy_dir(crashed, work);
	flip_bit(work, ZMETA_IMG_NAME, DESC_OFF + 1 * 32 + 8, 4);
	snprintf(want, sizeof(want), "zone 1: descriptor (byte offset %u) has a bad CRC",
		 DESC_OFF + 32);
	damaged(work, ZMETA_IMG_NAME, want);
	struct ns_check_result res;
	char err[256];
	assert_int_equal(ns_check(work, &res, err, sizeof(err)), 0);
	bool noted = false;
	for (size_t i = 0; i < res.n; i++)
		noted |= !res.v[i].damage &&
			 strstr(res.v[i].text, "a start repairs the 1 damaged descriptor(s)");
	assert_true(noted);
	assert_int_equal(res.damaged, 1);
	ns_check_free(&res);

	copy_dir(clean, work);
	flip_bit(work, ZMETA_IMG_NAME, ZDE_OFF + 6 * ZDE + 9, 7);
	snprintf(want, sizeof(want), "zone 6: extension (byte offset %u) has a bad CRC",
		 ZDE_OFF + 6 * ZDE);
	damaged(work, ZMETA_IMG_NAME, want);
}

/* A damaged non-current slot is what a torn checkpoint leaves: a note. A
 * damaged current slot with journal records after it is refused. */
static void test_check_slots(void **state)
{
	struct zmeta m;
	struct zmeta_slot_view s[2];
	struct ns_check_result res;
	char err[512];

	copy_dir(clean, work);
	assert_int_equal(zmeta_view_open(&m, work, s, err, sizeof(err)), 0);
	int cur = m.slot;
	zmeta_close(&m);
	assert_int_equal(s[cur].state, ZMETA_SLOT_OK);
	flip_bit(work, ZMETA_IMG_NAME, (off_t)!cur * ZIMG_SLOT_SIZE + 17, 2);
	assert_int_equal(ns_check(work, &res, err, sizeof(err)), 0);
	assert_int_equal(res.damaged, 0);
	bool noted = false;
	for (size_t i = 0; i < res.n; i++)
		noted |= !res.v[i].damage && strstr(res.v[i].text, "damaged (bad magic or CRC)");
	assert_true(noted);
	ns_check_free(&res);

	copy_dir(crashed, work);
	assert_int_equal(zmeta_view_open(&m, work, s, err, sizeof(err)), 0);
	cur = m.slot;
	zmeta_close(&m);
	flip_bit(work, ZMETA_IMG_NAME, (off_t)cur * ZIMG_SLOT_SIZE + 17, 2);
	damaged(work, ZMETA_JNL_NAME, "the newest zone image header is damaged");
	/* Both slots: nothing to go on. */
	flip_bit(work, ZMETA_IMG_NAME, (off_t)!cur * ZIMG_SLOT_SIZE + 17, 2);
	damaged(work, ZMETA_IMG_NAME, "both header slots are damaged");
}

/* A slot with a valid CRC whose layout is impossible: refused, not walked. */
static void test_check_bogus_header(void **state)
{
	struct zmeta m;
	struct zmeta_slot_view sv[2];
	struct zimg_header h;
	char p[160], err[512];

	copy_dir(clean, work);
	assert_int_equal(zmeta_view_open(&m, work, sv, err, sizeof(err)), 0);
	int cur = m.slot;
	zmeta_close(&m);
	path_of(p, sizeof(p), work, ZMETA_IMG_NAME);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), (off_t)cur * ZIMG_SLOT_SIZE), sizeof(h));
	h.desc_offset = htole64(1ull << 40);
	h.crc = htole32(crc32c(&h, offsetof(struct zimg_header, crc)));
	assert_int_equal(pwrite(fd, &h, sizeof(h), (off_t)cur * ZIMG_SLOT_SIZE), sizeof(h));
	close(fd);
	damaged(work, ZMETA_IMG_NAME, "describes a layout format() never writes");
	struct ns_inspect_opts o = { .json = true };
	char *t = inspect(work, &o);
	has(t, "\"image\": {\"error\": ");
	free(t);
}

static void test_check_journal(void **state)
{
	copy_dir(crashed, work);
	/* The first record after the checkpoint; later batches follow it. */
	flip_bit(work, ZMETA_JNL_NAME, ZJNL_DATA_OFFSET + 30, 1);
	damaged(work, ZMETA_JNL_NAME, "journal record 1 (sequence number");
	damaged(work, ZMETA_JNL_NAME, "byte offset 4096) is damaged");

	copy_dir(crashed, work);
	flip_bit(work, ZMETA_JNL_NAME, 3, 0);
	damaged(work, ZMETA_JNL_NAME, "header (byte offset 0) damaged");

	copy_dir(crashed, work);
	cut(work, ZMETA_JNL_NAME, 8192);
	damaged(work, ZMETA_JNL_NAME, "truncated");

	copy_dir(crashed, work);
	rm(work, ZMETA_JNL_NAME);
	damaged(work, ZMETA_JNL_NAME, "missing");
}

/* A journal header the disk cannot read is reported as that, not as
 * damage (recovery refuses it the same way). */
static void test_check_unreadable_journal_header(void **state)
{
	bool found = false;
	copy_dir(crashed, work);
	/* The header is one of the first metadata reads: fail each in turn. */
	for (uint32_t skip = 0; skip < 32 && !found; skip++) {
		struct ns_check_result res;
		char err[256];
		fault_io_arm(&(struct fault_plan){ .seed = 1, .points = FAULT_META_READ,
						   .kinds = FAULT_KIND(FAULT_EIO), .one_in = 1,
						   .skip = skip, .count = 1 });
		int rc = ns_check(work, &res, err, sizeof(err));
		fault_io_disarm();
		for (size_t i = 0; !rc && i < res.n; i++) {
			if (strcmp(res.v[i].file, ZMETA_JNL_NAME))
				continue;
			assert_null(strstr(res.v[i].text, "header (byte offset 0) damaged"));
			found |= res.v[i].damage &&
				 strstr(res.v[i].text, "header cannot be read (Input/output "
						       "error)") != NULL;
		}
		if (!rc)
			ns_check_free(&res);
	}
	assert_true(found);
}

static void test_check_files(void **state)
{
	copy_dir(clean, work);
	/* Zone 4 is full: written up to its capacity, 76 blocks from the start. */
	cut(work, "data", 70 * BLK);
	damaged(work, "data", "shorter than the written zones need (zone 4 is written up to "
		"byte 311296)");
	rm(work, "data");
	damaged(work, "data", "missing");

	copy_dir(clean, work);
	cut(work, ZMETA_IMG_NAME, 10000);
	damaged(work, ZMETA_IMG_NAME, "truncated");
	rm(work, ZMETA_IMG_NAME);
	damaged(work, ZMETA_IMG_NAME, "No such file");

	/* Not a namespace directory at all. */
	struct ns_check_result res;
	char err[256];
	assert_int_equal(ns_check(root, &res, err, sizeof(err)), -1);
	has(err, "no namespace files");
}

/* The JSON of a finding names level, file and text. */
static void test_check_json(void **state)
{
	struct ns_check_result res;
	char err[256], *text = NULL;
	size_t len = 0;

	copy_dir(clean, work);
	flip_bit(work, "ns.id", 0, 0);
	assert_int_equal(ns_check(work, &res, err, sizeof(err)), 0);
	FILE *f = open_memstream(&text, &len);
	ns_check_print(work, &res, true, f);
	fclose(f);
	has(text, "\"ok\": false, \"damaged\": 1");
	has(text, "{\"level\": \"damage\", \"file\": \"ns.id\", \"text\": \"damaged\"}");
	free(text);
	ns_check_free(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inspect_clean),
		cmocka_unit_test(test_inspect_filters),
		cmocka_unit_test(test_inspect_journal),
		cmocka_unit_test(test_check_clean),
		cmocka_unit_test(test_check_ns_id),
		cmocka_unit_test(test_check_descriptor),
		cmocka_unit_test(test_check_slots),
		cmocka_unit_test(test_check_bogus_header),
		cmocka_unit_test(test_check_journal),
		cmocka_unit_test(test_check_unreadable_journal_header),
		cmocka_unit_test(test_check_files),
		cmocka_unit_test(test_check_json),
	};
	return cmocka_run_group_tests_name("ns_inspect", tests, setup, teardown);
}
