/*
 * Corruption test of recovery (doc/recovery.md): damaged or short files are
 * either refused with a message or recovered with every acknowledged write
 * and zone state intact - never silently rolled back.
 *
 * Each round writes a random workload through the engine (Writes, Zone
 * Appends, Finish, Reset, Set Zone Descriptor Extension, Open), every
 * operation acknowledged (ns_sync_wait() returned 0) and kept in a model,
 * then closes the namespace cleanly or abandons it (a crash) and keeps the
 * files as they are. The untouched files, opened once, must match the model:
 * that is the reference state. Then, trial after trial, a copy of the files
 * is damaged - random bits flipped in a header slot, the descriptors, the
 * extensions, the journal header or records, ns.id; a file truncated at a
 * random length or deleted - and opened. The only outcomes accepted:
 *
 *   - refused, with a message that names the damaged namespace's file and a
 *     way forward (--format or --recover);
 *   - opened, with every zone's state, write pointer, extension and every
 *     block (written data, zeros above the write pointer) equal to the
 *     reference state.
 *
 * A refused copy is then opened with --recover: it must open (or refuse,
 * with a message, the damage it cannot rebuild from), and a plain start
 * after it must open the very state it kept.
 *
 * The data file has no checksums of its own (the media's own ECC is not
 * modelled), so it is only truncated or deleted, never flipped. (Journal
 * records carry a CRC of the data they make visible, but recovery checks it
 * only for the last batch, where a mismatch means a torn write - data that
 * never reached the disk - not damage: test_crash covers that case, and
 * test_zmeta that an earlier batch's data is never checked.)
 *
 * ZNSTGT_CORRUPTION_TRIALS sets the number of damaged opens (default 64;
 * `make check-long`: thousands), ZNSTGT_CORRUPTION_SEED repeats a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "ns.h"
#include "splitmix64.h"
#include "zmeta.h"

#define NZ 8
#define ZLBAS 16
#define BLK 4096u
#define ZDE 64
#define OPS 24                /* acknowledged operations per round */
#define TRIALS_PER_ROUND 8    /* damaged opens of one round's files */

static const char *const files[] = { "zones.img", "zones.jnl", "ns.id", "data" };
enum { F_IMG, F_JNL, F_ID, F_DATA, NR_FILES };

/* What was acknowledged, zone by zone. */
struct zmodel {
	uint32_t written;            /* blocks from the zone start */
	bool full;                   /* Finished or filled */
	bool zdev;
	uint8_t zde[ZDE];
	uint8_t fill[ZLBAS];         /* each written block is this byte throughout */
};

/* A namespace as ns.h shows it. */
struct snap {
	struct nvme_zns_desc d[NZ];
	uint8_t zde[NZ][ZDE];
	uint8_t data[NZ * ZLBAS * BLK];
};

struct run {
	char root[64], pristine[96], work[96];
	struct ns_config cfg;
	uint64_t seed, rng;
	struct zmodel zm[NZ];
	struct snap ref, got;
	int refused, intact;
	int recovered, recover_refused; /* what --recover made of the refused ones */
	int by_kind[8][2];           /* damage kind: refused, intact */
};

static uint64_t below(struct run *r, uint64_t n)
{
	return n ? splitmix64_next(&r->rng) % n : 0;
}

/* ---- files ---- */

static void path_of(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(in >= 0 && out >= 0);
	static uint8_t buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/* dst := a copy of src's namespace files (dst's old ones removed). */
static void copy_dir(const char *src, const char *dst)
{
	mkdir(dst, 0755);
	for (int i = 0; i < NR_FILES; i++) {
		char a[160], b[160];
		path_of(a, sizeof(a), src, files[i]);
		path_of(b, sizeof(b), dst, files[i]);
		unlink(b);
		if (!access(a, F_OK))
			copy_file(a, b);
	}
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void flip_bit(const char *path, off_t off, unsigned bit)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* The end of the journal's written bytes (records, live or stale). */
static off_t journal_high_water(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	static uint8_t buf[1 << 16];
	off_t off = ZJNL_DATA_OFFSET, hw = ZJNL_DATA_OFFSET;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i])
				hw = off + i + 1;
		off += n;
	}
	close(fd);
	return hw;
}

/* ---- driving the namespace ---- */

static void sync_ok(struct ns *ns)
{
	assert_int_equal(ns_sync_wait(ns), 0);
}

static void op_write(struct run *r, struct ns *ns, uint32_t z, bool append)
{
	struct zmodel *m = &r->zm[z];
	if (m->full)
		return;
	uint32_t nlb = 1 + (uint32_t)below(r, 3);
	if (nlb > ZLBAS - m->written)
		nlb = ZLBAS - m->written;
	uint8_t fill = (uint8_t)(1 + below(r, 255));
	static uint8_t buf[3 * BLK];
	memset(buf, fill, sizeof(buf));
	struct iovec iov = { buf, (size_t)nlb * BLK };
	struct ns_write w;
	uint64_t slba = (uint64_t)z * ZLBAS + (append ? 0 : m->written);
	assert_int_equal(ns_write_begin(ns, &w, append ? NS_ZONE_APPEND : NS_WRITE, slba, nlb), 0);
	assert_int_equal(w.slba, (uint64_t)z * ZLBAS + m->written);
	assert_int_equal(ns_write_data(ns, &w, &iov, 1), 0);
	ns_write_end(ns, &w, 0);
	sync_ok(ns);
	memset(m->fill + m->written, fill, nlb);
	m->written += nlb;
	m->full = m->written == ZLBAS;
}

static uint8_t zone_state(struct ns *ns, uint32_t z)
{
	uint8_t buf[64 + 64 + ZDE];
	assert_int_equal(ns_zone_report(ns, (uint64_t)z * ZLBAS, NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES,
					0, true, buf, sizeof(buf)), 0);
	return ((struct nvme_zns_desc *)(buf + 64))->zs >> 4;
}

static void op_mgmt(struct run *r, struct ns *ns, uint32_t z, uint8_t zsa)
{
	struct zmodel *m = &r->zm[z];
	uint8_t zde[ZDE] = { 0 };
	if (zsa == NVME_ZNS_ZSA_SET_DESC_EXT) {
		if (zone_state(ns, z) != NVME_ZNS_ZS_EMPTY)
			return; /* only from Empty (ZNS 3.4.3.1.6) */
		for (int i = 0; i < ZDE; i++)
			zde[i] = (uint8_t)splitmix64_next(&r->rng);
	}
	if (zsa == NVME_ZNS_ZSA_OPEN && m->full)
		return;
	assert_int_equal(ns_zone_mgmt_send(ns, (uint64_t)z * ZLBAS, zsa, false, zde), 0);
	sync_ok(ns);
	if (zsa == NVME_ZNS_ZSA_FINISH) {
		m->full = true;
	} else if (zsa == NVME_ZNS_ZSA_RESET) {
		memset(m, 0, sizeof(*m));
	} else if (zsa == NVME_ZNS_ZSA_SET_DESC_EXT) {
		m->zdev = true;
		memcpy(m->zde, zde, ZDE);
	}
}

static void workload(struct run *r, struct ns *ns)
{
	for (int i = 0; i < OPS; i++) {
		uint32_t z = (uint32_t)below(r, NZ);
		switch (below(r, 10)) {
		case 0: op_mgmt(r, ns, z, NVME_ZNS_ZSA_FINISH); break;
		case 1: op_mgmt(r, ns, z, NVME_ZNS_ZSA_RESET); break;
		case 2: op_mgmt(r, ns, z, NVME_ZNS_ZSA_SET_DESC_EXT); break;
		case 3: op_mgmt(r, ns, z, NVME_ZNS_ZSA_OPEN); break;
		case 4: case 5: op_write(r, ns, z, true); break;
		default: op_write(r, ns, z, false); break;
		}
	}
}

static void take_snap(struct ns *ns, struct snap *s)
{
	for (uint32_t z = 0; z < NZ; z++) {
		uint8_t buf[64 + 64 + ZDE];
		assert_int_equal(ns_zone_report(ns, (uint64_t)z * ZLBAS,
						NVME_ZNS_ZRA_EXTENDED_REPORT_ZONES, 0, true, buf,
						sizeof(buf)), 0);
		memcpy(&s->d[z], buf + 64, sizeof(s->d[z]));
		memcpy(s->zde[z], buf + 128, ZDE);
		struct iovec iov = { s->data + (size_t)z * ZLBAS * BLK, (size_t)ZLBAS * BLK };
		assert_int_equal(ns_read(ns, (uint64_t)z * ZLBAS, ZLBAS, &iov, 1), 0);
	}
}

/* The reference state against the model: the power-up rule's states (an
 * opened zone with nothing written and no extension is Empty, other
 * unfinished ones Closed), write pointers, extensions, data, zeros. */
static void check_model(struct run *r)
{
	for (uint32_t z = 0; z < NZ; z++) {
		const struct zmodel *m = &r->zm[z];
		const struct nvme_zns_desc *d = &r->ref.d[z];
		uint8_t want = m->full ? NVME_ZNS_ZS_FULL
			       : !m->written && !m->zdev ? NVME_ZNS_ZS_EMPTY : NVME_ZNS_ZS_CLOSED;
		if (d->zs >> 4 != want)
			fail_msg("seed %#" PRIx64 ": zone %u state %#x, model %#x", r->seed, z,
				 d->zs >> 4, want);
		if (!m->full && le64toh(d->wp) != (uint64_t)z * ZLBAS + m->written)
			fail_msg("zone %u: wp %#" PRIx64 ", model +%u", z, le64toh(d->wp), m->written);
		assert_int_equal(!!(d->za & NVME_ZNS_ZA_ZDEV), m->zdev);
		if (m->zdev)
			assert_memory_equal(r->ref.zde[z], m->zde, ZDE);
		for (uint32_t b = 0; b < ZLBAS; b++) {
			const uint8_t *p = r->ref.data + ((size_t)z * ZLBAS + b) * BLK;
			uint8_t v = b < m->written ? m->fill[b] : 0;
			for (uint32_t i = 0; i < BLK; i++)
				if (p[i] != v)
					fail_msg("zone %u block %u byte %u: %#x, model %#x", z, b, i,
						 p[i], v);
		}
	}
}

/* ---- damage ---- */

enum kind { K_HEADER, K_DESC, K_ZDE, K_JNL_HEADER, K_JNL_RECORDS, K_ID, K_TRUNCATE, K_DELETE };
static const char *const kind_name[] = { "image header slot", "descriptors", "extensions",
					 "journal header", "journal records", "ns.id",
					 "truncated file", "deleted file" };

/* Damage r->work once, in a kind other than `avoid` (a bit mask of kinds);
 * describe it in what. */
static enum kind damage(struct run *r, unsigned avoid, char *what, size_t len)
{
	char img[160], jnl[160], id[160];
	path_of(img, sizeof(img), r->work, files[F_IMG]);
	path_of(jnl, sizeof(jnl), r->work, files[F_JNL]);
	path_of(id, sizeof(id), r->work, files[F_ID]);
	/* The regions zmeta.h documents (version 1: the geometry is fixed). */
	const off_t desc_off = 2 * ZIMG_SLOT_SIZE, zde_off = desc_off + 4096;
	enum kind k = (enum kind)below(r, 8);
	while (avoid & 1u << k) /* the next kind: the same draws as without it */
		k = (enum kind)((k + 1) % 8);
	const char *file = NULL;
	off_t lo = 0, hi = 0;
	switch (k) {
	case K_HEADER:
		file = img;
		lo = (off_t)below(r, 2) * ZIMG_SLOT_SIZE;
		hi = lo + (off_t)sizeof(struct zimg_header);
		break;
	case K_DESC:
		file = img, lo = desc_off, hi = desc_off + NZ * (off_t)sizeof(struct zimg_desc);
		break;
	case K_ZDE:
		file = img, lo = zde_off, hi = zde_off + NZ * ZDE;
		break;
	case K_JNL_HEADER:
		file = jnl, lo = 0, hi = sizeof(struct zjnl_header);
		break;
	case K_JNL_RECORDS:
		file = jnl, lo = ZJNL_DATA_OFFSET;
		hi = access(jnl, F_OK) ? lo : journal_high_water(jnl);
		if (hi == lo)
			hi = lo + 40;
		break;
	case K_ID:
		file = id, lo = 0, hi = access(id, F_OK) ? 0 : file_size(id);
		break;
	case K_TRUNCATE:
	case K_DELETE: {
		char p[160];
		const char *name = files[below(r, NR_FILES)];
		path_of(p, sizeof(p), r->work, name);
		if (access(p, F_OK)) {
			snprintf(what, len, "%s already gone", name);
		} else if (k == K_DELETE) {
			assert_int_equal(unlink(p), 0);
			snprintf(what, len, "%s deleted", name);
		} else {
			off_t size = file_size(p), to = (off_t)below(r, (uint64_t)size);
			assert_int_equal(truncate(p, to), 0);
			snprintf(what, len, "%s truncated from %lld to %lld bytes", name,
				 (long long)size, (long long)to);
		}
		return k;
	}
	}
	if (!access(file, F_OK) && hi > file_size(file))
		hi = file_size(file); /* an earlier damage truncated it */
	if (access(file, F_OK) || hi <= lo) {
		snprintf(what, len, "%s: nothing to flip in %s", kind_name[k], strrchr(file, '/') + 1);
		return k;
	}
	int bits = 1 + (int)below(r, 3);
	size_t n = (size_t)snprintf(what, len, "%s: bits flipped in %s at", kind_name[k],
				    strrchr(file, '/') + 1);
	for (int i = 0; i < bits; i++) {
		off_t off = lo + (off_t)below(r, (uint64_t)(hi - lo));
		unsigned bit = (unsigned)below(r, 8);
		flip_bit(file, off, bit);
		if (n < len)
			n += (size_t)snprintf(what + n, len - n, " %lld.%u", (long long)off, bit);
	}
	return k;
}

/*
 * What --recover does with a refused copy: it opens it (or refuses, with a
 * message, what it cannot rebuild: the image), every zone in a state the
 * engine accepts and every block readable; and it checkpoints what it kept,
 * so that a plain start then opens the same state without --recover.
 */
static void try_recover(struct run *r, int no, const char *what)
{
	struct ns *ns;
	char err[1024] = "";
	r->cfg.recover = true;
	int rc = ns_open(&r->cfg, false, &ns, err, sizeof(err));
	r->cfg.recover = false;
	if (rc) {
		if (!strstr(err, r->work) || !strstr(err, "--format"))
			fail_msg("seed %#" PRIx64 " trial %d (%s): --recover refused without a way "
				 "forward: %s", r->seed, no, what, err);
		r->recover_refused++;
		return;
	}
	take_snap(ns, &r->got);
	ns_close(ns);
	static struct snap again;
	if (ns_open(&r->cfg, false, &ns, err, sizeof(err)))
		fail_msg("seed %#" PRIx64 " trial %d (%s): refused after --recover: %s", r->seed, no,
			 what, err);
	take_snap(ns, &again);
	ns_close(ns);
	if (memcmp(&again, &r->got, sizeof(again)))
		fail_msg("seed %#" PRIx64 " trial %d (%s): the state --recover kept changed at the "
			 "next start", r->seed, no, what);
	r->recovered++;
}

/* One damaged open of the round's files. */
static void trial(struct run *r, int no)
{
	copy_dir(r->pristine, r->work);
	char what[256];
	int kinds = 1 + (below(r, 4) == 0); /* now and then two at once */
	enum kind k = damage(r, 0, what, sizeof(what));
	if (kinds == 2) {
		/* Any two, a zone's descriptor with the journal's last record
		 * too: recovery must not repair the one from an older record
		 * when the other, dropped as a torn tail, held the zone's
		 * newest state (doc/recovery.md). */
		size_t n = strlen(what);
		snprintf(what + n, sizeof(what) - n, "; then ");
		n = strlen(what);
		damage(r, 0, what + n, sizeof(what) - n);
	}
	struct ns *ns;
	char err[1024] = "";
	if (ns_open(&r->cfg, false, &ns, err, sizeof(err))) {
		if (!strstr(err, r->work) || (!strstr(err, "--format") && !strstr(err, "--recover")))
			fail_msg("seed %#" PRIx64 " trial %d (%s): refused without naming the file and a way "
				 "forward: %s", r->seed, no, what, err);
		r->refused++;
		r->by_kind[k][0]++;
		try_recover(r, no, what);
		return;
	}
	take_snap(ns, &r->got);
	ns_close(ns);
	for (uint32_t z = 0; z < NZ; z++) {
		const struct nvme_zns_desc *a = &r->got.d[z], *b = &r->ref.d[z];
		if (a->zs != b->zs || a->wp != b->wp || a->za != b->za ||
		    memcmp(r->got.zde[z], r->ref.zde[z], ZDE))
			fail_msg("seed %#" PRIx64 " trial %d (%s): opened, but zone %u is state %#x wp %#" PRIx64
				 " za %#x, acknowledged: state %#x wp %#" PRIx64 " za %#x", r->seed, no,
				 what,
				 z, a->zs >> 4, le64toh(a->wp), a->za, b->zs >> 4, le64toh(b->wp),
				 b->za);
	}
	for (size_t b = 0; b < (size_t)NZ * ZLBAS; b++)
		if (memcmp(r->got.data + b * BLK, r->ref.data + b * BLK, BLK))
			fail_msg("seed %#" PRIx64 " trial %d (%s): opened, but block %zu differs "
				 "from what was acknowledged", r->seed, no, what, b);
	r->intact++;
	r->by_kind[k][1]++;
}

/* One round: a workload, its files kept, then damaged opens of them. */
static void round_(struct run *r, int trials, int *done)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/ns %s %s", r->root, r->pristine, r->work);
	assert_int_equal(system(cmd), 0);
	memset(r->zm, 0, sizeof(r->zm));
	snprintf(r->cfg.path, sizeof(r->cfg.path), "%s/ns", r->root);
	struct ns *ns;
	char err[1024];
	if (ns_open(&r->cfg, false, &ns, err, sizeof(err))) /* a new namespace */
		fail_msg("create: %s", err);
	workload(r, ns);
	if (below(r, 2))
		ns_close(ns);
	else
		ns_abandon(ns); /* a crash: every operation was acknowledged */
	copy_dir(r->cfg.path, r->pristine);

	snprintf(r->cfg.path, sizeof(r->cfg.path), "%s", r->work);
	copy_dir(r->pristine, r->work);
	if (ns_open(&r->cfg, false, &ns, err, sizeof(err)))
		fail_msg("undamaged files refused: %s", err);
	take_snap(ns, &r->ref);
	ns_close(ns);
	check_model(r);
	for (int i = 0; i < TRIALS_PER_ROUND && *done < trials; i++)
		trial(r, ++*done);
}

static void test_corruption(void **state)
{
	(void)state;
	static struct run r;
	const char *seed = getenv("ZNSTGT_CORRUPTION_SEED"), *n = getenv("ZNSTGT_CORRUPTION_TRIALS");
	uint64_t s = seed && *seed ? strtoull(seed, NULL, 0)
				   : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	int trials = n && *n ? atoi(n) : 64;
	r.seed = r.rng = s;
	/* Now, not only in the summary: not every failure names it. */
	printf("[ corrupt  ] seed %#" PRIx64 "\n", s);
	fflush(stdout); /* shown even if the run dies of a signal */
	strcpy(r.root, "/tmp/znstgt-corrupt-XXXXXX");
	assert_non_null(mkdtemp(r.root));
	snprintf(r.pristine, sizeof(r.pristine), "%s/pristine", r.root);
	snprintf(r.work, sizeof(r.work), "%s/work", r.root);
	struct ns_config *c = &r.cfg;
	c->nsid = 1;
	c->lba_size = BLK;
	c->zoned = true;
	c->zone_size = ZLBAS * BLK;
	c->zone_capacity = ZLBAS * BLK;
	c->size = NZ * c->zone_size;
	c->zone_append_max = 4 * BLK;
	c->zde_size = ZDE;
	c->cross_zone_read = true;
	c->journal_size = 2048; /* ~40 records: checkpoints happen inside the workload */
	log_set_level(LOG_ERROR); /* recovery warns about every damage it meets */

	int done = 0;
	while (done < trials)
		round_(&r, trials, &done);
	printf("[ corrupt  ] %d damaged opens (seed %#" PRIx64 "): %d refused with a message, "
	       "%d intact\n", done, s, r.refused, r.intact);
	printf("             --recover on the refused: %d opened (and reopened the same without "
	       "it), %d refused\n", r.recovered, r.recover_refused);
	for (int k = 0; k < 8; k++)
		printf("             %-18s %4d refused, %4d intact\n", kind_name[k], r.by_kind[k][0],
		       r.by_kind[k][1]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r.root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corruption),
	};
	return cmocka_run_group_tests_name("corruption", tests, NULL, NULL);
}
