/*
 * libFuzzer target for a zoned namespace's files read back from a damaged
 * disk (doc/recovery.md): zones.img (header slots, descriptors, extensions)
 * and zones.jnl (header, records), decoded and replayed by common/zmeta.c,
 * ns.id (common/ns_id.c), and the data file's length and the CRCs of the
 * last batch's data, all through ns_open() (`make fuzz`); and the same
 * files through the offline check and inspection of `znstgt-ctl check` and
 * `inspect` (common/ns_inspect.c), which share zmeta's decoders.
 *
 * An input is not the files themselves but damage done to valid ones: at
 * start-up the target makes two small namespaces in a private directory
 * under /dev/shm, runs a fixed workload on each (writes, Zone Appends,
 * Finish, Reset, extensions, ZRWA opens and flushes, with checkpoints
 * between batches) and cuts the power (ns_abandon), so that the journal
 * holds records since the last checkpoint and older generations' records
 * after them. Their files are kept in memory and the directory removed.
 * A fuzzer mutating those files directly would die at the first CRC; here
 * it can seal what it changed, and so reach replay's every rule.
 *
 *   byte 0      bit 0: which namespace (0: 8 zones of 16 512-byte LBAs,
 *               64-byte extensions; 1: the same with a ZRWA, zone capacity
 *               12, max open 3, max active 4, no extensions); bit 1: run
 *               `znstgt-ctl inspect --journal` too (bit 2: with --json)
 *   then ops    one byte: file (bits 0-1: zones.img, zones.jnl, ns.id,
 *               data) and action (bits 2-4), then its arguments; OFF is
 *               two bytes little-endian, a byte offset into the file:
 *       0 WRITE  OFF, N, N % 16 + 1 bytes written there
 *       1 XOR    OFF, a byte XORed into the one there
 *       2 SEAL   OFF: the CRC of what holds OFF made right again - a header
 *                slot, a descriptor (its extension's CRC too), a zone's
 *                extension (its descriptor's CRCs), the journal header, the
 *                journal record at OFF rounded down to 8 bytes, ns.id
 *       3 CUT    OFF: the file is cut (or extended) to OFF bytes
 *       4 DELETE the file is removed
 *       5 COPY   SRC (two bytes), DST (two bytes), N: N + 1 bytes copied
 *       6 ADD    OFF, W, D: the W-byte (1, 2, 4 or 8: W % 4) little-endian
 *                integer at OFF plus D (a signed byte): sequence numbers,
 *                generations, write pointers, batch positions
 *       7 SEALALL every CRC of the file made right (journal: each record
 *                of the run from its start, as long as lengths are sane)
 *
 * Checked on every input, besides no crash, leak, hang or sanitizer report:
 *   - the offline check and inspection never write a file;
 *   - ns_open() without --recover either refuses with a message, leaving
 *     every file as it found it (and then `znstgt-ctl check` reports damage,
 *     unless what is refused is what check cannot know without the
 *     configuration: the geometry, or that a directory with no zone files
 *     is to be zoned), or loads; a refused one is then opened with
 *     --recover, which refuses only with a message;
 *   - a namespace that loads holds a state the engine trusts (zns_check()),
 *     the zone report agrees with it zone by zone, every write pointer is
 *     inside its zone's capacity; it closes, opens again without --recover
 *     to the very same zones, and `znstgt-ctl check` then finds nothing.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <nvme/types.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "ns.h"
#include "ns_inspect.h"
#include "splitmix64.h"
#include "zmeta.h"
#include "zone.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NZ 8
#define ZLBAS 16
#define BLK 512u
#define ZDE 64
#define NR_SEEDS 2
#define OFF_MAX 65536u            /* what an op can reach of a file */
#define JNL_SIZE 16384u           /* the journal's length as its header says */

enum { F_IMG, F_JNL, F_ID, F_DATA, NR_FILES };
static const char *const names[NR_FILES] = { ZMETA_IMG_NAME, ZMETA_JNL_NAME, "ns.id", "data" };

/* One file as it is to be written: buf holds its first cap bytes, the rest
 * up to size (the journal's preallocated tail) is zeros. */
struct file {
	uint8_t *buf;
	size_t cap;
	uint64_t size;
	bool present;
};

struct seed {
	struct ns_config cfg;
	struct file f[NR_FILES];
	uint64_t desc_offset, zde_offset;
	uint32_t zde_size;
};

static struct seed seeds[NR_SEEDS];
static bool verbose;              /* ZNSTGT_FUZZ_VERBOSE: say what each open did */
static struct file work[NR_FILES];
static char root[64];

static void die(const char *what)
{
	fprintf(stderr, "fuzz_zmeta: %s: %s\n", what, strerror(errno));
	abort();
}

/* A failed check: said, then a crash for libFuzzer (the directory is left
 * behind with the files that made it). */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz_zmeta: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", root, name);
}

/* ---- the seeds: a small namespace, a workload, a power cut ---- */

static void config(struct ns_config *c, bool zrwa)
{
	memset(c, 0, sizeof(*c));
	c->nsid = 1;
	snprintf(c->path, sizeof(c->path), "%s", root);
	c->lba_size = BLK;
	c->zoned = true;
	c->zone_size = ZLBAS * BLK;
	c->zone_capacity = (zrwa ? 12 : ZLBAS) * BLK;
	c->size = NZ * c->zone_size;
	c->zone_append_max = 4096;
	c->cross_zone_read = true;
	c->journal_size = 1024; /* a checkpoint every twenty records or so */
	if (zrwa) {
		c->max_open = 3;
		c->max_active = 4;
		c->zrwa_size = 4 * BLK;
		c->zrwa_flush_granularity = 2 * BLK;
		c->zrwa_resources = 2;
	} else {
		c->zde_size = ZDE;
	}
}

static void write_blocks(struct ns *ns, enum ns_write_kind kind, uint64_t slba, uint32_t nlb,
			 uint8_t fill)
{
	static uint8_t buf[4 * BLK];
	struct iovec iov = { buf, (size_t)nlb * BLK };
	struct ns_write w;

	memset(buf, fill, sizeof(buf));
	if (ns_write_begin(ns, &w, kind, slba, nlb))
		return; /* not admitted (a full zone, a limit): nothing to undo */
	ns_write_end(ns, &w, ns_write_data(ns, &w, &iov, 1));
}

/* A fixed workload: the same files every run but for the random instance
 * and UUID, which no input needs to know. */
static void workload(struct ns *ns, bool zrwa)
{
	uint64_t rng = zrwa ? 2 : 1;
	uint8_t zde[ZDE];

	for (int op = 0; op < 40; op++) {
		uint64_t r = splitmix64_next(&rng);
		uint32_t z = (uint32_t)(r % NZ);
		uint64_t zslba = (uint64_t)z * ZLBAS, wp = zns_zone_wp(ns_zones(ns), z);
		uint32_t nlb = 1 + (uint32_t)(r >> 8) % 3;
		uint8_t fill = (uint8_t)(r >> 16);
		switch ((r >> 24) % 10) {
		case 0:
			ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_FINISH, false, NULL);
			break;
		case 1:
			ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_RESET, false, NULL);
			break;
		case 2:
			memset(zde, fill, sizeof(zde));
			if (zrwa)
				ns_zone_mgmt_send_zrwaa(ns, zslba, NVME_ZNS_ZSA_OPEN, NULL);
			else
				ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_SET_DESC_EXT, false, zde);
			break;
		case 3:
			if (zrwa)
				ns_zone_mgmt_send(ns, wp + 1, NVME_ZNS_ZSA_ZRWA_FLUSH, false, NULL);
			else
				ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_OPEN, false, NULL);
			break;
		case 4:
		case 5:
			write_blocks(ns, NS_ZONE_APPEND, zslba, nlb, fill);
			break;
		default:
			write_blocks(ns, NS_WRITE, wp, nlb, fill);
			break;
		}
		/* Most operations acknowledged; some left for a batch of many. */
		if ((r >> 32) % 4)
			ns_sync_wait(ns);
	}
	ns_sync_wait(ns);
	/* The last batch: a write to zone 1 and one to zone 2, synced
	 * together, then written over in the page cache only. */
	write_blocks(ns, NS_WRITE, zns_zone_wp(ns_zones(ns), 1), 1, 0x5a);
	write_blocks(ns, NS_WRITE, zns_zone_wp(ns_zones(ns), 2), 2, 0xa5);
	ns_sync_wait(ns);
	write_blocks(ns, NS_WRITE, zns_zone_wp(ns_zones(ns), 3), 1, 0x33); /* never synced */
}

static void read_file(struct file *f, const char *name, size_t cap)
{
	char p[128];
	struct stat st;

	path_of(p, sizeof(p), name);
	int fd = open(p, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die(p);
	f->size = (uint64_t)st.st_size;
	f->cap = cap;
	f->buf = calloc(1, cap);
	f->present = true;
	if (!f->buf || pread(fd, f->buf, cap, 0) < 0)
		die(p);
	close(fd);
}

static void remove_all(void)
{
	static const char *const extra[] = { "resv.state", ZMETA_IMG_NAME ".tmp",
					     ZMETA_JNL_NAME ".tmp", "ns.id.tmp" };
	char p[128];

	for (int i = 0; i < NR_FILES; i++) {
		path_of(p, sizeof(p), names[i]);
		unlink(p);
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		path_of(p, sizeof(p), extra[i]);
		unlink(p);
	}
	if (rmdir(root))
		die(root);
}

/* Set the CRC at crc_at to that of the bytes before it. */
static void seal_range(uint8_t *p, size_t crc_at)
{
	uint32_t c = htole32(crc32c(p, crc_at));
	memcpy(p + crc_at, &c, 4);
}

static void make_seed(struct seed *s, bool zrwa)
{
	struct ns *ns;
	char err[1024];

	config(&s->cfg, zrwa);
	if (ns_open(&s->cfg, true, &ns, err, sizeof(err))) {
		fprintf(stderr, "fuzz_zmeta: %s\n", err);
		abort();
	}
	workload(ns, zrwa);
	ns_abandon(ns);
	read_file(&s->f[F_IMG], ZMETA_IMG_NAME, OFF_MAX);
	read_file(&s->f[F_JNL], ZMETA_JNL_NAME, OFF_MAX);
	read_file(&s->f[F_ID], "ns.id", 64);
	read_file(&s->f[F_DATA], "data", OFF_MAX);
	/* The journal as one made 16 KiB long (its header says so): every
	 * open scans the rest of the file past the run for valid records,
	 * and the preallocated megabyte would be most of the work. */
	struct zjnl_header jh;
	memcpy(&jh, s->f[F_JNL].buf, sizeof(jh));
	jh.size_4k = htole32(JNL_SIZE / 4096);
	memcpy(s->f[F_JNL].buf, &jh, sizeof(jh));
	seal_range(s->f[F_JNL].buf, offsetof(struct zjnl_header, crc));
	s->f[F_JNL].size = JNL_SIZE;
	struct zimg_header h;
	memcpy(&h, s->f[F_IMG].buf, sizeof(h));
	s->desc_offset = le64toh(h.desc_offset);
	s->zde_offset = le64toh(h.zde_offset);
	s->zde_size = le32toh(h.zde_size);
	remove_all();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	verbose = getenv("ZNSTGT_FUZZ_VERBOSE") != NULL;
	/* Recovery warns about every damage it meets: shown only when asked. */
	log_set_level(verbose ? LOG_WARN : LOG_ERROR);
	snprintf(root, sizeof(root), "/dev/shm/znstgt-fuzz-zmeta.%d", (int)getpid());
	for (int i = 0; i < NR_SEEDS; i++) {
		if (mkdir(root, 0700))
			die(root);
		make_seed(&seeds[i], i == 1);
	}
	for (int i = 0; i < NR_FILES; i++)
		if (!(work[i].buf = malloc(OFF_MAX)))
			die("malloc");
	return 0;
}

/* ---- the damage ---- */

static void seal_desc(const struct seed *s, uint8_t *img, uint32_t zone)
{
	uint8_t *d = img + s->desc_offset + (size_t)zone * sizeof(struct zimg_desc);
	if (s->zde_size) {
		uint32_t c = htole32(crc32c(img + s->zde_offset + (size_t)zone * s->zde_size,
					    s->zde_size));
		memcpy(d + offsetof(struct zimg_desc, zde_crc), &c, 4);
	}
	seal_range(d, offsetof(struct zimg_desc, crc));
}

/* A record's length as its header says, if it is one a record can have
 * (and fits the buffer); else the length of one without an extension. */
static size_t record_len(const struct seed *s, const struct file *f, size_t at)
{
	uint16_t len;
	memcpy(&len, f->buf + at + offsetof(struct zjnl_record, len), 2);
	len = le16toh(len);
	return (len == sizeof(struct zjnl_record) || len == sizeof(struct zjnl_record) + s->zde_size) &&
	       at + len <= f->cap ? len : sizeof(struct zjnl_record);
}

static void seal(const struct seed *s, int file, size_t off)
{
	struct file *f = &work[file];
	switch (file) {
	case F_IMG:
		if (off < 2 * ZIMG_SLOT_SIZE) {
			seal_range(f->buf + off / ZIMG_SLOT_SIZE * ZIMG_SLOT_SIZE,
				   offsetof(struct zimg_header, crc));
		} else if (off >= s->desc_offset && off < s->desc_offset + NZ * sizeof(struct zimg_desc)) {
			seal_desc(s, f->buf, (uint32_t)((off - s->desc_offset) / sizeof(struct zimg_desc)));
		} else if (s->zde_size && off >= s->zde_offset &&
			   off < s->zde_offset + (uint64_t)NZ * s->zde_size) {
			seal_desc(s, f->buf, (uint32_t)((off - s->zde_offset) / s->zde_size));
		}
		break;
	case F_JNL:
		if (off < ZJNL_DATA_OFFSET) {
			seal_range(f->buf, offsetof(struct zjnl_header, crc));
		} else {
			size_t at = off & ~(size_t)7;
			if (at + sizeof(struct zjnl_record) > f->cap)
				break;
			size_t len = record_len(s, f, at);
			uint32_t c = htole32(crc32c(f->buf + at + 4, len - 4));
			memcpy(f->buf + at, &c, 4);
		}
		break;
	case F_ID:
		seal_range(f->buf, 36);
		break;
	}
}

static void seal_all(const struct seed *s, int file)
{
	struct file *f = &work[file];
	switch (file) {
	case F_IMG:
		seal(s, F_IMG, 0);
		seal(s, F_IMG, ZIMG_SLOT_SIZE);
		for (uint32_t z = 0; z < NZ; z++)
			seal_desc(s, f->buf, z);
		break;
	case F_JNL:
		seal(s, F_JNL, 0);
		for (size_t at = ZJNL_DATA_OFFSET; at + sizeof(struct zjnl_record) <= f->cap;) {
			uint16_t type;
			memcpy(&type, f->buf + at + offsetof(struct zjnl_record, type), 2);
			if (le16toh(type) != ZJNL_ZONE && le16toh(type) != ZJNL_ZONE_ZDE)
				break;
			seal(s, F_JNL, at);
			at += record_len(s, f, at);
		}
		break;
	case F_ID:
		seal(s, F_ID, 0);
		break;
	}
}

static void add_at(struct file *f, size_t off, unsigned w, int8_t d)
{
	uint64_t v = 0;
	if (off + w > f->cap)
		return;
	memcpy(&v, f->buf + off, w); /* little-endian host: as on disk */
	v = le64toh(v) + (uint64_t)(int64_t)d;
	v = htole64(v);
	memcpy(f->buf + off, &v, w);
}

/* Apply the ops of the input to work[], a copy of seed s's files. */
static void damage(const struct seed *s, const uint8_t *p, const uint8_t *end)
{
#define NEED(n) if (end - p < (n)) return
#define OFF(q) ((size_t)(q)[0] | (size_t)(q)[1] << 8)
	while (p < end) {
		uint8_t op = *p++;
		struct file *f = &work[op & 3];
		switch ((op >> 2) & 7) {
		case 0: {
			NEED(3);
			size_t off = OFF(p), n = p[2] % 16u + 1;
			p += 3;
			NEED((ptrdiff_t)n);
			if (off + n <= f->cap)
				memcpy(f->buf + off, p, n);
			p += n;
			break;
		}
		case 1:
			NEED(3);
			f->buf[OFF(p) % f->cap] ^= p[2];
			p += 3;
			break;
		case 2:
			NEED(2);
			seal(s, op & 3, OFF(p));
			p += 2;
			break;
		case 3:
			NEED(2);
			f->size = OFF(p) < f->cap ? OFF(p) : f->cap;
			memset(f->buf + f->size, 0, f->cap - f->size); /* a later extension reads zeros */
			p += 2;
			break;
		case 4:
			f->present = false;
			break;
		case 5: {
			NEED(5);
			size_t from = OFF(p), to = OFF(p + 2), n = (size_t)p[4] + 1;
			if (from + n <= f->cap && to + n <= f->cap)
				memmove(f->buf + to, f->buf + from, n);
			p += 5;
			break;
		}
		case 6:
			NEED(4);
			add_at(f, OFF(p), 1u << (p[2] % 4), (int8_t)p[3]);
			p += 4;
			break;
		default:
			seal_all(s, op & 3);
			break;
		}
	}
#undef NEED
#undef OFF
}

/* ---- the files on disk ---- */

static void write_files(void)
{
	char p[128];

	if (mkdir(root, 0700))
		die(root);
	for (int i = 0; i < NR_FILES; i++) {
		const struct file *f = &work[i];
		if (!f->present)
			continue;
		path_of(p, sizeof(p), names[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		size_t n = f->size < f->cap ? (size_t)f->size : f->cap;
		if (fd < 0 || write(fd, f->buf, n) != (ssize_t)n ||
		    ftruncate(fd, (off_t)f->size) || close(fd))
			die(p);
	}
}

/* Every file as work[] says, and nothing else in the directory. */
static bool files_unchanged(void)
{
	static uint8_t buf[OFF_MAX];
	char p[128];
	for (int i = 0; i < NR_FILES; i++) {
		const struct file *f = &work[i];
		struct stat st;
		path_of(p, sizeof(p), names[i]);
		int fd = open(p, O_RDONLY);
		if (fd < 0) {
			if (f->present)
				return false;
			continue;
		}
		ssize_t n = pread(fd, buf, f->cap, 0);
		bool same = f->present && !fstat(fd, &st) && (uint64_t)st.st_size == f->size &&
			    n == (ssize_t)(f->size < f->cap ? f->size : f->cap) &&
			    !memcmp(buf, f->buf, (size_t)n);
		close(fd);
		if (!same)
			return false;
	}
	/* Nothing created either (a reservation file, a journal made anew). */
	char p2[128];
	path_of(p2, sizeof(p2), "resv.state");
	return access(p2, F_OK) != 0;
}

/* ---- the properties ---- */

struct zone_view {
	uint8_t state, za;
	uint64_t wp;
	uint8_t zde[ZDE];
};

/* The engine's invariants hold, and the report says what the engine
 * holds, zone by zone, every write pointer inside its zone's capacity. */
static void check_loaded(struct ns *ns, const struct ns_config *c, struct zone_view *v)
{
	static uint8_t buf[sizeof(struct nvme_zone_report) + NZ * (sizeof(struct nvme_zns_desc) + ZDE)];
	struct zns *z = ns_zones(ns);
	uint64_t cap = c->zone_capacity / BLK;
	const char *why = zns_check(z);

	if (why)
		fail("loaded an inconsistent state: %s", why);
	uint16_t st = ns_zone_report(ns, 0, c->zde_size ? NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES
							: NVME_ZNS_ZRA_REPORT_ZONES, 0, false, buf, sizeof(buf));
	size_t step = sizeof(struct nvme_zns_desc) + c->zde_size;
	if (st || le64toh(((struct nvme_zone_report *)buf)->nr_zones) != NZ)
		fail("zone report: status %#x, %llu zones", st,
		     (unsigned long long)le64toh(((struct nvme_zone_report *)buf)->nr_zones));
	for (uint32_t i = 0; i < NZ; i++) {
		struct nvme_zns_desc d;
		memcpy(&d, buf + sizeof(struct nvme_zone_report) + i * step, sizeof(d));
		uint64_t zslba = (uint64_t)i * ZLBAS, wp = zns_zone_wp(z, i);
		uint8_t s = zns_zone_state(z, i);
		v[i] = (struct zone_view){ .state = s, .za = zns_zone_attrs(z, i), .wp = wp };
		memcpy(v[i].zde, buf + sizeof(struct nvme_zone_report) + i * step + sizeof(d),
		       c->zde_size);
		/* The report shows a write pointer where it has one (ZNS 3.4.2.2.3). */
		bool has_wp = s != NVME_ZNS_ZS_FULL && s != NVME_ZNS_ZS_READ_ONLY &&
			      s != NVME_ZNS_ZS_OFFLINE;
		if (d.zs >> 4 != s || d.za != v[i].za || le64toh(d.zslba) != zslba ||
		    le64toh(d.zcap) != cap || wp < zslba || wp > zslba + cap ||
		    (s == NVME_ZNS_ZS_EMPTY && wp != zslba) || (has_wp && le64toh(d.wp) != wp))
			fail("zone %u: engine state %#x za %#x wp %#llx; report state %#x za %#x "
			     "zslba %#llx zcap %#llx wp %#llx", i, s, v[i].za, (unsigned long long)wp,
			     d.zs >> 4, d.za, (unsigned long long)le64toh(d.zslba),
			     (unsigned long long)le64toh(d.zcap), (unsigned long long)le64toh(d.wp));
		if (!(v[i].za & NVME_ZNS_ZA_ZDEV) && c->zde_size && s == NVME_ZNS_ZS_EMPTY) {
			static const uint8_t zero[ZDE];
			if (memcmp(v[i].zde, zero, c->zde_size))
				fail("zone %u: Empty without ZDEV, but holds an extension", i);
		}
	}
}

/* `znstgt-ctl check`: 0 and the number of damaged findings, or -1. */
static long check_dir(void)
{
	struct ns_check_result res;
	char err[1024] = "";

	if (ns_check(root, &res, err, sizeof(err))) {
		if (!err[0])
			abort();
		return -1;
	}
	long n = (long)res.damaged;
	ns_check_free(&res);
	return n;
}

/* The namespace loaded: trusted state; then closed, it opens again
 * without --recover to the same zones, and check finds it sound. */
static void loaded(struct ns *ns, struct ns_config *c)
{
	struct zone_view a[NZ], b[NZ];
	char err[1024] = "";

	check_loaded(ns, c, a);
	ns_close(ns);
	c->recover = false;
	if (ns_open(c, false, &ns, err, sizeof(err)))
		fail("a namespace that loaded is refused next: %s", err);
	check_loaded(ns, c, b);
	ns_close(ns);
	for (uint32_t i = 0; i < NZ; i++)
		if (a[i].state != b[i].state || a[i].za != b[i].za || a[i].wp != b[i].wp ||
		    memcmp(a[i].zde, b[i].zde, c->zde_size))
			fail("zone %u changed across a clean restart: state %#x wp %#llx -> %#x %#llx",
			     i, a[i].state, (unsigned long long)a[i].wp, b[i].state,
			     (unsigned long long)b[i].wp);
	if (check_dir() != 0)
		fail("check finds damage in files the daemon wrote");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	const struct seed *s = &seeds[data[0] & 1];
	struct ns_config c = s->cfg;
	struct ns *ns;
	char err[1024] = "";

	for (int i = 0; i < NR_FILES; i++) {
		work[i].cap = s->f[i].cap;
		work[i].size = s->f[i].size;
		work[i].present = true;
		memcpy(work[i].buf, s->f[i].buf, s->f[i].cap);
	}
	damage(s, data + 1, data + size);
	write_files();

	/* The offline tools read only. */
	long damaged = check_dir();
	if (data[0] & 2) {
		FILE *out = fopen("/dev/null", "w");
		struct ns_inspect_opts o = { .json = data[0] & 4, .journal = true };
		if (!out)
			die("/dev/null");
		if (ns_inspect(root, &o, out, err, sizeof(err)) && !err[0])
			fail("inspect failed without a message");
		fclose(out);
	}
	if (!files_unchanged())
		fail("the offline check wrote a file");

	err[0] = '\0';
	if (verbose)
		fprintf(stderr, "check: %ld damaged finding(s)\n", damaged);
	if (!ns_open(&c, false, &ns, err, sizeof(err))) {
		if (verbose)
			fprintf(stderr, "open: loaded\n");
		loaded(ns, &c);
	} else {
		if (verbose)
			fprintf(stderr, "open: refused: %s\n", err);
		if (!err[0])
			abort();
		if (!files_unchanged())
			fail("a refusal changed the files: %s", err);
		/* Check knows no configuration: not the geometry, nor that a
		 * directory without zone files is to be zoned. */
		bool config_only = strstr(err, "does not match the configuration") ||
				   (!work[F_IMG].present && !work[F_JNL].present);
		if (damaged == 0 && !config_only)
			fail("refused, but check finds nothing: %s", err);
		c.recover = true;
		err[0] = '\0';
		int rc = ns_open(&c, false, &ns, err, sizeof(err));
		if (verbose)
			fprintf(stderr, "open --recover: %s%s\n", rc ? "refused: " : "loaded", rc ? err : "");
		if (!rc)
			loaded(ns, &c);
		else if (!err[0])
			fail("--recover refused without a message");
	}
	remove_all();
	return 0;
}
