/*
 * Durable zone metadata: the image, the journal, checkpoints and recovery.
 * The format and the ordering rules are documented in zmeta.h.
 */
#include "zmeta.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nvme/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "errmsg.h"
#include "fault_io.h"
#include "log.h"
#include "sigbus_guard.h"

#define DEFAULT_JNL_LIMIT (64ull << 20)
#define REPLAY_CHUNK (1u << 20)
#define BATCH_KEEP (1u << 20)     /* bytes of batch buffer kept between commits */

static uint64_t align4k(uint64_t v) { return (v + 4095) & ~4095ull; }


static int write_full(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = fio_pwrite(FIO_META, fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make room for need bytes in *buf (doubling, from first): 0 or -1. */
static int grow(uint8_t **buf, size_t *cap, size_t need, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : first;
	while (c < need)
		c *= 2;
	uint8_t *nb = realloc(*buf, c);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = c;
	return 0;
}

static void path_of(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	int rc = fio_fsync(FIO_META, fd) ? -errno : 0;
	close(fd);
	return rc;
}

/* ---- image layout ---- */

static struct zimg_desc *desc_at(const struct zmeta *m, uint32_t zone)
{
	return (struct zimg_desc *)(m->img + m->hdr.desc_offset) + zone;
}

static uint8_t *zde_at(const struct zmeta *m, uint32_t zone)
{
	return m->img + m->hdr.zde_offset + (size_t)zone * m->hdr.zde_size;
}

static uint32_t zde_crc(const struct zmeta *m, uint32_t zone)
{
	return m->hdr.zde_size ? crc32c(zde_at(m, zone), m->hdr.zde_size) : 0;
}

static void put_desc(struct zmeta *m, uint32_t zone, uint8_t state, uint8_t za, uint64_t wp,
		     uint64_t seq, const uint8_t *zde)
{
	if (zde)
		memcpy(zde_at(m, zone), zde, m->hdr.zde_size);
	struct zimg_desc d = {
		.wp = htole64(wp),
		.seq = htole64(seq),
		.state = state,
		.za = za,
		.zde_crc = htole32(zde_crc(m, zone)),
	};
	d.crc = htole32(crc32c(&d, offsetof(struct zimg_desc, crc)));
	memcpy(desc_at(m, zone), &d, sizeof(d));
}

/* What is wrong with a zone's descriptor. Without its own CRC nothing of
 * it is known, not even its extension's CRC. */
enum { BAD_DESC = 1, BAD_ZDE = 2 };

/* Sequence numbers count records from 1: none reaches this (2^63 records
 * at a billion a second take 292 years). A descriptor beyond it holds no
 * record's state, and taken for state past the journal's end it would
 * number the records after it past 2^64, from 0 again (check_ahead()). */
#define SEQ_BEYOND_ANY (UINT64_C(1) << 63)

static uint8_t desc_damage(const struct zmeta *m, uint32_t zone)
{
	struct zimg_desc d;
	memcpy(&d, desc_at(m, zone), sizeof(d));
	if (le32toh(d.crc) != crc32c(&d, offsetof(struct zimg_desc, crc)) ||
	    le64toh(d.seq) >= SEQ_BEYOND_ANY)
		return BAD_DESC | (m->hdr.zde_size ? BAD_ZDE : 0);
	return le32toh(d.zde_crc) == zde_crc(m, zone) ? 0 : BAD_ZDE;
}

/* Header <-> little-endian slot bytes. */
static void header_encode(const struct zimg_header *h, struct zimg_header *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, ZIMG_MAGIC, 8);
	out->version = htole32(h->version);
	out->header_bytes = htole32(sizeof(*out));
	out->generation = htole64(h->generation);
	out->ckpt_seq = htole64(h->ckpt_seq);
	out->instance = htole64(h->instance);
	out->nsid = htole32(h->nsid);
	out->lba_shift = htole32(h->lba_shift);
	out->nlbas = htole64(h->nlbas);
	out->zone_size = htole64(h->zone_size);
	out->zone_cap = htole64(h->zone_cap);
	out->nr_zones = htole32(h->nr_zones);
	out->zde_size = htole32(h->zde_size);
	out->max_open = htole32(h->max_open);
	out->max_active = htole32(h->max_active);
	out->desc_offset = htole64(h->desc_offset);
	out->zde_offset = htole64(h->zde_offset);
	out->zrwa_lbas = htole32(h->zrwa_lbas);
	out->crc = htole32(crc32c(out, offsetof(struct zimg_header, crc)));
}

enum slot_verdict { SLOT_OK, SLOT_BAD, SLOT_VERSION };

static enum slot_verdict header_decode(const struct zimg_header *in, struct zimg_header *h)
{
	if (memcmp(in->magic, ZIMG_MAGIC, 8) ||
	    le32toh(in->crc) != crc32c(in, offsetof(struct zimg_header, crc)))
		return SLOT_BAD;
	h->version = le32toh(in->version);
	if ((h->version != ZMETA_VERSION && h->version != ZMETA_VERSION_NO_ZRWA) ||
	    le32toh(in->header_bytes) != sizeof(*in))
		return SLOT_VERSION;
	/* Version 1 wrote the word as zero: no ZRWA. */
	h->zrwa_lbas = h->version == ZMETA_VERSION_NO_ZRWA ? 0 : le32toh(in->zrwa_lbas);
	h->generation = le64toh(in->generation);
	h->ckpt_seq = le64toh(in->ckpt_seq);
	h->instance = le64toh(in->instance);
	h->nsid = le32toh(in->nsid);
	h->lba_shift = le32toh(in->lba_shift);
	h->nlbas = le64toh(in->nlbas);
	h->zone_size = le64toh(in->zone_size);
	h->zone_cap = le64toh(in->zone_cap);
	h->nr_zones = le32toh(in->nr_zones);
	h->zde_size = le32toh(in->zde_size);
	h->max_open = le32toh(in->max_open);
	h->max_active = le32toh(in->max_active);
	h->desc_offset = le64toh(in->desc_offset);
	h->zde_offset = le64toh(in->zde_offset);
	return SLOT_OK;
}

static uint64_t image_len(const struct zimg_header *h)
{
	return h->zde_offset + align4k((uint64_t)h->nr_zones * h->zde_size);
}

/*
 * After open, the image is reached through its shared mapping, and a page
 * the kernel cannot back - evicted, then unreadable on a failing disk; or
 * the file cut short behind the target's back - is a SIGBUS on the load or
 * store that needs it, which would end the whole target. So those accesses
 * run under the SIGBUS guard, and one that faults marks the metadata lost:
 * nothing more is journaled or checkpointed (a checkpoint would write an
 * image a faulted store left half updated and start the journal anew over
 * the records it lacks), every sync fails from then on, and the next start
 * reads the image whole and says what is wrong. 0 or -EIO.
 */
static int guarded(struct zmeta *m, void (*fn)(void *arg), void *arg)
{
	if (m->lost)
		return -EIO;
	if (!sigbus_guard_run(fn, arg))
		return 0;
	__atomic_store_n(&m->lost, true, __ATOMIC_RELAXED); /* read by ns_health() */
	log_error("namespace %u: zones.img can no longer be read or written (a page of its "
		  "mapping faulted): syncs fail from now on; restart the namespace once its disk "
		  "works", m->hdr.nsid);
	return -EIO;
}

/*
 * A store into every page of the image past the header slots (write_slot()
 * stores a slot whole each time), so that each is dirty: a page written
 * back is write-protected, so any store faults and marks it. Two uses:
 *   - After a failed msync. Linux has marked the pages it could not write
 *     clean and reports the error once: the retry would succeed without
 *     writing them, the journal holding their records would start anew,
 *     and a crash would bring back older zone states than the host was
 *     told were durable. Done at once, while the pages are still in
 *     memory: a clean page may be evicted, a dirty one is not.
 *   - At open, before recovery reads the image unguarded (its stores go to
 *     a private copy: anonymous memory, never a file block): every page
 *     is then in memory, so none of recovery's loads can fault, and an
 *     image that cannot be written through its mapping (a store needing a
 *     block that a full file system copying on write cannot give) is
 *     refused before anything is replayed, not at zmeta_keep().
 * Run under the SIGBUS guard.
 */
static void redirty_image(void *arg)
{
	struct zmeta *m = arg;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t off = m->hdr.desc_offset & ~(page - 1); off < m->img_len; off += page) {
		volatile uint8_t *p = m->img + off;
		*p = *p;
	}
}

/* Map the image at m->img: 0, or -1 with errno. */
static int map_image(struct zmeta *m, int flags)
{
	m->img = mmap(NULL, m->img_len, PROT_READ | PROT_WRITE, flags, m->img_fd, 0);
	if (m->img != MAP_FAILED)
		return 0;
	m->img = NULL;
	return -1;
}

/*
 * Whether the metadata may be journaled or checkpointed: 0; -EIO once the
 * image is lost; -EBUSY during an open, before zmeta_keep(): the image is
 * then a private copy, and a checkpoint of it would start the journal anew
 * over records zones.img does not hold.
 */
static int writable(const struct zmeta *m)
{
	return m->lost ? -EIO : m->img_shared ? -EBUSY : 0;
}

struct mem_copy {
	void *to;
	const void *from;
	size_t len;
};

static void copy_mem(void *arg)
{
	const struct mem_copy *c = arg;
	memcpy(c->to, c->from, c->len);
}

/* Write the current header into `slot` of the image and make it durable. */
static int write_slot(struct zmeta *m, int slot)
{
	struct zimg_header raw;
	header_encode(&m->hdr, &raw);
	uint8_t *p = m->img + (size_t)slot * ZIMG_SLOT_SIZE;
	struct mem_copy c = { p, &raw, sizeof(raw) };
	int rc = guarded(m, copy_mem, &c);
	if (rc)
		return rc;
	if (fio_msync(p, ZIMG_SLOT_SIZE))
		return -errno;
	m->slot = slot;
	return 0;
}

/* ---- creating ---- */

static int create_journal(const char *dir, uint64_t instance, uint64_t limit, char *err,
			  size_t errlen)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	path_of(tmp, sizeof(tmp), dir, ZMETA_JNL_NAME ".tmp");
	path_of(path, sizeof(path), dir, ZMETA_JNL_NAME);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errmsg(err, errlen, "%s: %s", tmp, strerror(errno));
	/* Allocate the journal's blocks now so that a group commit's
	 * fdatasync rarely has file-size metadata to write. The header says
	 * how large the file was made: a journal found shorter was truncated,
	 * and its end is then no torn tail (zmeta.h). */
	uint64_t size = ZJNL_DATA_OFFSET + align4k(limit + (1 << 20));
	if (posix_fallocate(fd, 0, (off_t)size)) {
		log_warn("%s: could not preallocate the journal", tmp);
		size = ZJNL_DATA_OFFSET;
	}
	uint8_t page[ZJNL_DATA_OFFSET] = { 0 };
	struct zjnl_header *h = (struct zjnl_header *)page;
	memcpy(h->magic, ZJNL_MAGIC, 8);
	h->version = htole32(ZJNL_VERSION);
	h->size_4k = htole32(size / 4096 <= UINT32_MAX ? (uint32_t)(size / 4096) : 0);
	h->instance = htole64(instance);
	h->crc = htole32(crc32c(h, offsetof(struct zjnl_header, crc)));
	int rc = write_full(fd, page, sizeof(page), 0);
	if (!rc && fio_fsync(FIO_META, fd))
		rc = -errno;
	close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		return errmsg(err, errlen, "%s: %s", path, strerror(-rc));
	return 0;
}

/*
 * Give every byte of the image's first len bytes a block on disk by writing
 * zeros over its holes (which read as zeros already: nothing changes). The
 * image is written through its mapping, and a store into a hole that the
 * file system cannot allocate - it is full - is a SIGBUS that would take
 * the whole target down, where a write returns ENOSPC here instead. The
 * extension area is the part no descriptor write reaches at format (an
 * image made before this stays so until it is opened again). Not for a
 * file system that copies on write, where every store may need a new block.
 */
static int fill_holes(int fd, uint64_t len)
{
	static const uint8_t zeros[64 << 10];
	off_t off = 0;
	while ((uint64_t)off < len) {
		off_t hole = lseek(fd, off, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole >= len)
			break;
		off_t data = lseek(fd, hole, SEEK_DATA); /* ENXIO: no data after it */
		uint64_t end = data < 0 || (uint64_t)data > len ? len : (uint64_t)data;
		for (uint64_t p = (uint64_t)hole; p < end;) {
			size_t n = end - p < sizeof(zeros) ? (size_t)(end - p) : sizeof(zeros);
			int rc = write_full(fd, zeros, n, (off_t)p);
			if (rc)
				return rc;
			p += n;
		}
		off = (off_t)end;
	}
	return 0;
}

static int create_image(const char *dir, const struct zimg_header *h, char *err, size_t errlen)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	path_of(tmp, sizeof(tmp), dir, ZMETA_IMG_NAME ".tmp");
	path_of(path, sizeof(path), dir, ZMETA_IMG_NAME);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errmsg(err, errlen, "%s: %s", tmp, strerror(errno));
	struct zmeta m = { .img_fd = fd, .hdr = *h };
	m.img_len = image_len(h);
	int rc = fio_ftruncate(FIO_META, fd, (off_t)m.img_len) ? -errno : 0;
	if (!rc)
		rc = fill_holes(fd, m.img_len);
	if (!rc) {
		m.img = mmap(NULL, m.img_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m.img == MAP_FAILED) {
			m.img = NULL;
			rc = -errno;
		}
	}
	if (!rc) {
		for (uint32_t i = 0; i < h->nr_zones; i++)
			put_desc(&m, i, NVME_ZNS_ZS_EMPTY, 0, (uint64_t)i * h->zone_size, 0, NULL);
		if (fio_msync(m.img, m.img_len))
			rc = -errno;
	}
	if (!rc)
		rc = write_slot(&m, 0);
	if (m.img)
		munmap(m.img, m.img_len);
	close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		return errmsg(err, errlen, "%s: %s", path, strerror(-rc));
	return 0;
}

static int format(const char *dir, const struct zmeta_geom *g, char *err, size_t errlen)
{
	struct zimg_header h = {
		.version = g->zrwa_lbas ? ZMETA_VERSION : ZMETA_VERSION_NO_ZRWA,
		.generation = 1,
		.nsid = g->nsid,
		.lba_shift = g->lba_shift,
		.nlbas = g->nlbas,
		.zone_size = g->zone_size,
		.zone_cap = g->zone_cap,
		.nr_zones = g->nr_zones,
		.zde_size = g->zde_size,
		.max_open = g->max_open,
		.max_active = g->max_active,
		.zrwa_lbas = g->zrwa_lbas,
		.desc_offset = 2 * ZIMG_SLOT_SIZE,
	};
	h.zde_offset = h.desc_offset + align4k((uint64_t)g->nr_zones * sizeof(struct zimg_desc));
	if (getrandom(&h.instance, sizeof(h.instance), 0) != sizeof(h.instance))
		return errmsg(err, errlen, "getrandom: %s", strerror(errno));
	/* Journal first: an image on disk always has its journal. */
	if (create_journal(dir, h.instance, g->jnl_limit, err, errlen) ||
	    create_image(dir, &h, err, errlen))
		return -1;
	int rc = sync_dir(dir);
	if (rc)
		return errmsg(err, errlen, "%s: %s", dir, strerror(-rc));
	return 0;
}

/* ---- opening and recovery ---- */

/* The ways forward that refusals name (doc/recovery.md). */
#define WAY_FORMAT "or start with --format to erase this namespace's data and zone state"
#define WAY_RECOVER                                                                        \
	"start once with --recover NQN/%u (this subsystem's NQN) to keep what the image and " \
	"journal still prove and log what is dropped, "

static int geometry_diff(const struct zimg_header *h, const struct zmeta_geom *g, char *out,
			 size_t len)
{
	size_t n = 0;
	out[0] = 0;
#define DIFF(field, name)                                                                  \
	if ((uint64_t)h->field != (uint64_t)g->field && n < len)                              \
		n += (size_t)snprintf(out + n, len - n, "%s%s %llu on disk, %llu configured",     \
				      n ? "; " : "", name, (unsigned long long)h->field,           \
				      (unsigned long long)g->field);
	DIFF(lba_shift, "lba_shift")
	DIFF(nlbas, "size (LBAs)")
	DIFF(zone_size, "zone_size (LBAs)")
	DIFF(zone_cap, "zone_capacity (LBAs)")
	DIFF(nr_zones, "zones")
	DIFF(zde_size, "zde_size")
	DIFF(max_open, "max_open")
	DIFF(max_active, "max_active")
	DIFF(zrwa_lbas, "zrwa_size (LBAs)")
#undef DIFF
	return n ? -1 : 0;
}

/* Both header slots of the image at fd, raw and decoded. */
static void read_slots(int fd, struct zimg_header raw[2], struct zimg_header h[2],
		       enum slot_verdict v[2])
{
	for (int s = 0; s < 2; s++) {
		ssize_t n = fio_pread_full(FIO_META, fd, &raw[s], sizeof(raw[s]),
					   (off_t)s * ZIMG_SLOT_SIZE);
		if (n != (ssize_t)sizeof(raw[s]))
			memset(&raw[s], 0, sizeof(raw[s]));
		v[s] = n == (ssize_t)sizeof(raw[s]) ? header_decode(&raw[s], &h[s]) : SLOT_BAD;
	}
}

/* The slot recovery uses: the valid one with the highest generation, or -1. */
static int current_slot(const enum slot_verdict v[2], const struct zimg_header h[2])
{
	if (v[0] != SLOT_OK && v[1] != SLOT_OK)
		return -1;
	return v[0] != SLOT_OK ? 1 : v[1] != SLOT_OK ? 0 : h[1].generation > h[0].generation;
}

/* A never-written slot (fresh image) is all zeros: not damage. */
static bool slot_blank(const struct zimg_header *raw)
{
	static const char zero[8];
	return !memcmp(raw->magic, zero, 8);
}

static int load_header(struct zmeta *m, const char *path, char *err, size_t errlen)
{
	struct zimg_header raw[2], h[2];
	enum slot_verdict v[2];
	read_slots(m->img_fd, raw, h, v);
	int s = current_slot(v, h);
	if (s < 0) {
		if (v[0] == SLOT_VERSION || v[1] == SLOT_VERSION)
			return errmsg(err, errlen,
				    "%s: unknown zone image format version %u (this znstgt reads "
				    "versions 1 to %u); refusing to touch it",
				    path, le32toh(raw[v[0] == SLOT_VERSION ? 0 : 1].version),
				    ZMETA_VERSION);
		return errmsg(err, errlen, "%s: both header slots are damaged (bad magic or "
			    "checksum) or missing (file truncated). Restore the file, " WAY_FORMAT,
			    path);
	}
	if (v[!s] == SLOT_BAD && !slot_blank(&raw[!s]))
		log_warn("%s: header slot %d is damaged; using slot %d", path, !s, s);
	m->hdr = h[s];
	m->slot = s;
	return 0;
}

/* The journal's records, read front to back in chunks. */
struct jreader {
	int fd;
	uint8_t *buf;
	size_t have, pos;
	size_t need;                 /* the largest record */
	uint64_t buf_off;            /* file offset of buf[0] */
};

static uint64_t jr_off(const struct jreader *jr)
{
	return jr->buf_off + jr->pos;
}

/* Bytes readable at the position: at least need unless the file ends. */
static ssize_t jr_fill(struct jreader *jr)
{
	if (jr->have - jr->pos < jr->need) {
		memmove(jr->buf, jr->buf + jr->pos, jr->have - jr->pos);
		jr->buf_off += jr->pos;
		jr->have -= jr->pos;
		jr->pos = 0;
		ssize_t n = fio_pread_full(FIO_META, jr->fd, jr->buf + jr->have, REPLAY_CHUNK,
				      (off_t)(jr->buf_off + jr->have));
		if (n < 0)
			return n;
		jr->have += (size_t)n;
	}
	return (ssize_t)(jr->have - jr->pos);
}

/* Is there a well-formed record (type, length, CRC, zone) at the position? */
static bool jr_record(const struct zmeta *m, const struct jreader *jr, ssize_t avail,
		      struct zjnl_record *r)
{
	if (avail < (ssize_t)sizeof(*r))
		return false;
	const uint8_t *p = jr->buf + jr->pos;
	memcpy(r, p, sizeof(*r));
	uint16_t type = le16toh(r->type), len = le16toh(r->len);
	if ((type != ZJNL_ZONE && type != ZJNL_ZONE_ZDE) ||
	    len != sizeof(*r) + (type == ZJNL_ZONE_ZDE ? m->hdr.zde_size : 0) || len > avail)
		return false;
	return le32toh(r->crc) == crc32c(p + 4, len - 4u) && le32toh(r->zone) < m->hdr.nr_zones;
}

/*
 * Move to the next well-formed record of generation gen: other generations'
 * records are skipped whole, anything else 8 bytes at a time (every record
 * starts 8-byte aligned: its length is 48 + a multiple of 64). 1 when found
 * (the reader is on it), 0 at the end of the file, or -errno.
 */
static int jr_next_of_gen(const struct zmeta *m, struct jreader *jr, uint32_t gen,
			  struct zjnl_record *r)
{
	for (;;) {
		ssize_t avail = jr_fill(jr);
		if (avail < 0)
			return (int)avail;
		if (avail < (ssize_t)sizeof(*r))
			return 0;
		if (!jr_record(m, jr, avail, r))
			jr->pos += 8;
		else if (le32toh(r->gen) == gen)
			return 1;
		else
			jr->pos += le16toh(r->len);
	}
}

/* Apply one record of the run, unless the image already holds its zone's
 * state from that record or a later one: replay never moves a zone back.
 * True when it did hold it: then the record's batch was durable (the image
 * follows the journal only once a batch is). */
static bool apply(struct zmeta *m, const struct jreader *jr, const struct zjnl_record *r,
		  uint8_t *bad)
{
	uint32_t zone = le32toh(r->zone);
	uint64_t seq = le64toh(r->seq);
	struct zimg_desc d;
	memcpy(&d, desc_at(m, zone), sizeof(d));
	m->replayed++;
	if (!(bad[zone] & BAD_DESC) && le64toh(d.seq) >= seq)
		return true;
	bool zde = le16toh(r->type) == ZJNL_ZONE_ZDE;
	put_desc(m, zone, r->state, r->za, le64toh(r->wp), seq,
		 zde ? jr->buf + jr->pos + sizeof(*r) : NULL);
	/* A record without an extension repairs the descriptor, not a
	 * damaged extension (settle_extensions() sees to that). */
	if (!bad[zone])
		return false;
	bad[zone] &= zde ? 0 : BAD_ZDE;
	if (!bad[zone])
		m->repaired++;
	return false;
}

/*
 * What the run's end dropped, beside what bad[] says: a zone whose
 * descriptor was damaged and is repaired from an older record cannot be
 * trusted when a newer record of it may be among the dropped ones
 * (check_tail()).
 */
struct zone_note {
	struct zimg_desc raw;        /* NOTE_DESC: the damaged descriptor, as read */
	uint64_t tail_wp, tail_seq;  /* NOTE_TAIL: the dropped record's */
	uint8_t flags;
};
enum { NOTE_DESC = 1, NOTE_TAIL = 2 };

struct tail_drop {
	struct zone_note *note;      /* one per zone */
	bool unreadable;             /* a damaged record of the run was dropped, zone unknown */
	bool durable;                /* ... and it continued a batch the image holds */
	uint64_t seq, offset;        /* ... its sequence number and byte offset */
	uint64_t read_wp;            /* ... and what it reads, not to be trusted */
	uint32_t read_zone;
};

static void note_tail(struct tail_drop *td, uint32_t zone, uint64_t seq, uint64_t wp)
{
	td->note[zone].flags |= NOTE_TAIL;
	td->note[zone].tail_seq = seq;
	td->note[zone].tail_wp = wp;
}

/*
 * Where the run of records ended (at sequence number seq): look at the rest
 * of the file for a valid record of the run's generation. Records of the
 * batch that holds seq may follow a bad one (a torn write of that batch);
 * one of a later batch means acknowledged records were damaged. Returns 1
 * with the reader on such a record (ZMETA_RECOVER: on the next one after
 * seq), 0 for a torn tail, or -errno.
 */
static int damage_after(const struct zmeta *m, struct jreader *jr, uint32_t gen, uint64_t seq,
			enum zmeta_mode mode, struct zjnl_record *r, struct tail_drop *td)
{
	int found;
	while ((found = jr_next_of_gen(m, jr, gen, r)) == 1) {
		uint64_t s = le64toh(r->seq);
		uint32_t pos = le32toh(r->batch_pos);
		bool same_batch = pos && s >= seq && s - (pos - 1) <= seq;
		if (mode == ZMETA_RECOVER ? s > seq : !same_batch)
			break;
		if (td && s >= seq) /* dropped with the torn batch, if it is one */
			note_tail(td, le32toh(r->zone), s, le64toh(r->wp));
		jr->pos += le16toh(r->len);
	}
	return found;
}

/*
 * The records of the batch being replayed whose data is to be checked, each
 * with what its zone held before it (descriptor, extension, damage), so that
 * one whose data is not on disk can be taken back once the run has ended and
 * its batch is known to be the last (zmeta.h, "Recovery").
 */
struct undo {
	uint8_t *buf;
	size_t len, cap, entry;      /* entry: bytes per record */
};

struct undo_head {
	uint64_t seq, lba;
	uint32_t zone, nlb, crc;
	uint8_t bad;
};

static int undo_push(const struct zmeta *m, struct undo *u, const struct zjnl_record *r,
		     const uint8_t *bad)
{
	uint32_t zone = le32toh(r->zone), nlb = le32toh(r->data_lbas);
	uint64_t seq = le64toh(r->seq), wp = le64toh(r->wp);
	struct zimg_desc d;
	memcpy(&d, desc_at(m, zone), sizeof(d));
	/* Nothing to check, or the image holds it already (then its batch
	 * was complete, data synced: zmeta_apply() runs after both syncs). */
	if (!nlb || (!(bad[zone] & BAD_DESC) && le64toh(d.seq) >= seq))
		return 0;
	if (grow(&u->buf, &u->cap, u->len + u->entry, 64 * u->entry))
		return -ENOMEM;
	uint8_t *p = u->buf + u->len;
	struct undo_head h = { .seq = seq, .zone = zone, .nlb = nlb, .lba = wp - nlb,
			       .crc = le32toh(r->data_crc), .bad = bad[zone] };
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), &d, sizeof(d));
	memcpy(p + sizeof(h) + sizeof(d), zde_at(m, zone), m->hdr.zde_size);
	u->len += u->entry;
	return 0;
}

/*
 * The run has ended: the records kept in u are those of its last batch.
 * Each whose data does not match the data file is a torn tail: its zone
 * goes back to what it held before the record. Data that cannot be read is
 * left to the data file's own checks (the caller's).
 */
static void undo_torn(struct zmeta *m, const struct zmeta_geom *g, struct undo *u, uint8_t *bad,
		      struct tail_drop *td, const char *path)
{
	for (size_t off = u->len; g->data_crc && off;) {
		off -= u->entry;
		const uint8_t *p = u->buf + off;
		struct undo_head h;
		memcpy(&h, p, sizeof(h));
		uint64_t zslba = (uint64_t)h.zone * m->hdr.zone_size;
		uint32_t crc;
		if (h.lba < zslba || h.lba + h.nlb > zslba + m->hdr.zone_cap ||
		    g->data_crc(g->data_ctx, h.lba, h.nlb, &crc) || crc == h.crc)
			continue;
		memcpy(desc_at(m, h.zone), p + sizeof(h), sizeof(struct zimg_desc));
		memcpy(zde_at(m, h.zone), p + sizeof(h) + sizeof(struct zimg_desc), m->hdr.zde_size);
		if (h.bad && !bad[h.zone])
			m->repaired--; /* apply() counted it repaired */
		bad[h.zone] = h.bad;
		m->torn_data++;
		note_tail(td, h.zone, h.seq, h.lba + h.nlb);
		log_warn("%s: journal record %llu (zone %u, write pointer %#llx) is of the last "
			 "batch, and its data (LBAs %#llx-%#llx) never reached the disk: a torn "
			 "write, never acknowledged; the zone keeps its previous state", path,
			 (unsigned long long)h.seq, h.zone, (unsigned long long)(h.lba + h.nlb),
			 (unsigned long long)h.lba, (unsigned long long)(h.lba + h.nlb - 1));
	}
	u->len = 0;
}

/* Replay journal records after the checkpoint into the image. */
static int replay(struct zmeta *m, const struct zmeta_geom *g, const char *path,
		  enum zmeta_mode mode, uint8_t *bad, struct tail_drop *td, char *err,
		  size_t errlen)
{
	struct undo u = { .entry = sizeof(struct undo_head) + sizeof(struct zimg_desc) +
				   m->hdr.zde_size };
	struct jreader jr = { .fd = m->jnl_fd, .need = sizeof(struct zjnl_record) + m->hdr.zde_size,
			      .buf_off = ZJNL_DATA_OFFSET };
	jr.buf = malloc(REPLAY_CHUNK + jr.need);
	if (!jr.buf)
		return errmsg(err, errlen, "out of memory");
	uint64_t seq = m->hdr.ckpt_seq + 1, tail = ZJNL_DATA_OFFSET, idx = 0;
	uint32_t gen = (uint32_t)m->hdr.generation, nsid = m->hdr.nsid;
	uint32_t last_pos = 0;       /* batch_pos of the run's last record */
	bool batch_held = false;     /* the image holds a record of its batch */
	struct zjnl_record r;
	int rc = 0;

	/* A valid first record of a newer generation means a newer header
	 * was written completely (records follow a header write) and has been
	 * damaged since: the older slot cannot account for those records. The
	 * descriptors hold at least that header's checkpoint (they were
	 * msync'd before it), so recovery may replay the newer run instead. */
	ssize_t avail = jr_fill(&jr);
	if (avail >= 0 && jr_record(m, &jr, avail, &r) && (int32_t)(le32toh(r.gen) - gen) > 0) {
		if (mode != ZMETA_RECOVER) {
			rc = errmsg(err, errlen, "%s: the newest zone image header is damaged and "
				    "the journal holds records written after it; refusing to fall "
				    "back to an older checkpoint. Restore the files, " WAY_RECOVER
				    WAY_FORMAT, path, nsid);
			goto out;
		}
		log_warn("%s: the newest zone image header is damaged; replaying the journal's "
			 "records of its generation (%u) from sequence number %llu", path,
			 le32toh(r.gen), (unsigned long long)le64toh(r.seq));
		m->hdr.generation += le32toh(r.gen) - gen;
		gen = le32toh(r.gen);
		seq = le64toh(r.seq);
		m->hdr.ckpt_seq = seq - 1;
	}
	for (;;) {
		avail = jr_fill(&jr);
		if (avail < 0)
			break;
		if (jr_record(m, &jr, avail, &r) && le32toh(r.gen) == gen && le64toh(r.seq) == seq) {
			last_pos = le32toh(r.batch_pos);
			if (last_pos <= 1) {
				u.len = 0; /* a new batch: the one before was not the last */
				batch_held = false;
			}
			if (undo_push(m, &u, &r, bad)) {
				rc = errmsg(err, errlen, "out of memory");
				goto out;
			}
			batch_held |= apply(m, &jr, &r, bad);
			jr.pos += le16toh(r.len);
			tail = jr_off(&jr);
			seq++;
			idx++;
			continue;
		}
		uint64_t stop = jr_off(&jr);
		struct zjnl_record at = { 0 };
		bool seen = avail >= (ssize_t)sizeof(at);
		if (seen) {
			memcpy(&at, jr.buf + jr.pos, sizeof(at));
			seen = le32toh(at.gen) == gen || le64toh(at.seq) == seq;
		}
		int found = damage_after(m, &jr, gen, seq, mode, &r, td);
		if (found <= 0) {
			/* A torn tail. The bytes where the run stopped, when they
			 * still name its generation or the next sequence number
			 * (one damaged field cannot hide both; older runs' records
			 * carry other generations and lower numbers), are a record
			 * of it that is dropped: its zone is not to be trusted. One
			 * that says it continues a batch the image already holds
			 * was durable: damage, not a torn write (check_tail()) -
			 * when the fields that say so lie in one sector (FIO_SECTOR),
			 * so that a torn write of the next batch over older bytes
			 * (sectors are written whole) cannot mix them. */
			td->unreadable = seen;
			td->seq = seq;
			td->offset = stop;
			td->read_zone = le32toh(at.zone);
			td->read_wp = le64toh(at.wp);
			bool continues = seen && last_pos &&
					 le32toh(at.gen) == gen && le64toh(at.seq) == seq &&
					 le32toh(at.batch_pos) == last_pos + 1 &&
					 (stop + offsetof(struct zjnl_record, seq)) / FIO_SECTOR ==
					 (stop + offsetof(struct zjnl_record, wp) - 1) / FIO_SECTOR;
			td->durable = continues && batch_held;
			m->torn_batch_at = continues ? stop : 0; /* zmeta_keep() */
			avail = found;
			break;
		}
		if (mode != ZMETA_RECOVER) {
			rc = errmsg(err, errlen, "%s: journal record %llu (sequence number %llu, byte "
				    "offset %llu) is damaged - bad checksum, sequence number or "
				    "generation - and valid records written after it follow (byte "
				    "offset %llu): the journal was damaged after it was written, this "
				    "is no torn write. Refusing to roll zone state back. Restore the "
				    "file, " WAY_RECOVER WAY_FORMAT,
				    path, (unsigned long long)idx + 1, (unsigned long long)seq,
				    (unsigned long long)stop, (unsigned long long)jr_off(&jr), nsid);
			goto out;
		}
		uint64_t next = le64toh(r.seq);
		log_warn("%s: journal records with sequence numbers %llu to %llu (byte offsets %llu "
			 "to %llu) are damaged: dropped. The zones they changed (unknown: the "
			 "records are unreadable) keep their last state the files prove",
			 path, (unsigned long long)seq, (unsigned long long)next - 1,
			 (unsigned long long)stop, (unsigned long long)jr_off(&jr));
		m->dropped += next - seq;
		seq = next;
		u.len = 0; /* what follows may start inside a batch */
		last_pos = 0;
		batch_held = false;
	}
	if (avail < 0)
		rc = errmsg(err, errlen, "%s: %s", path, strerror((int)-avail));
	else
		undo_torn(m, g, &u, bad, td, path);
	m->next_seq = m->add_seq = seq;
	m->jnl_tail = tail;
out:
	free(jr.buf);
	free(u.buf);
	return rc;
}

/* The journal: open, check its header and length. 1 (ZMETA_RECOVER only)
 * when it is missing or unusable and must be made anew. */
static int open_journal(struct zmeta *m, const char *path, enum zmeta_mode mode, char *err,
			size_t errlen)
{
	const char *why = NULL;
	char whybuf[160];
	m->jnl_fd = open(path, (mode == ZMETA_CHECK ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (m->jnl_fd < 0 && errno != ENOENT)
		return errmsg(err, errlen, "%s: %s", path, strerror(errno));
	struct zjnl_header jh;
	struct stat st;
	ssize_t got = m->jnl_fd < 0 ? 0 : fio_pread_full(FIO_META, m->jnl_fd, &jh, sizeof(jh), 0);
	if (got < 0) {
		/* Not damage: what the header holds is unknown, and --recover
		 * would make a new journal over records it may still hold. */
		return errmsg(err, errlen, "%s: cannot be read (%s): the disk under it fails. "
			    "Copy what it holds to a sound disk or restore it, " WAY_FORMAT,
			    path, strerror((int)-got));
	} else if (m->jnl_fd < 0) {
		why = "is missing";
	} else if (got != (ssize_t)sizeof(jh) || memcmp(jh.magic, ZJNL_MAGIC, 8) ||
		   le32toh(jh.crc) != crc32c(&jh, offsetof(struct zjnl_header, crc))) {
		why = "has a damaged header";
	} else if (le32toh(jh.version) != ZJNL_VERSION) {
		return errmsg(err, errlen, "%s: unknown journal format version %u (this znstgt "
			    "reads version %u); refusing to touch it%s", path, le32toh(jh.version),
			    ZJNL_VERSION, le32toh(jh.version) == 1 ?
			    " (version 1 records carry no data checksum: shut down cleanly with "
			    "the znstgt that wrote it, then start once with --recover)" : "");
	} else if (le64toh(jh.instance) != m->hdr.instance) {
		why = "belongs to another zone image";
	} else if (fstat(m->jnl_fd, &st)) {
		return errmsg(err, errlen, "%s: %s", path, strerror(errno));
	} else if ((uint64_t)st.st_size < (uint64_t)le32toh(jh.size_4k) * 4096) {
		snprintf(whybuf, sizeof(whybuf), "is shorter (%lld bytes) than it was made (%llu "
			 "bytes): truncated", (long long)st.st_size,
			 (unsigned long long)le32toh(jh.size_4k) * 4096);
		if (mode != ZMETA_RECOVER)
			return errmsg(err, errlen, "%s: %s; its end is no torn write. Restore the "
				    "file, " WAY_RECOVER WAY_FORMAT, path, whybuf, m->hdr.nsid);
		log_warn("%s: %s; replaying what is left", path, whybuf);
		/* Back to its size, so that the next start does not refuse
		 * it again (the records lost stay lost). */
		if (posix_fallocate(m->jnl_fd, 0, (off_t)le32toh(jh.size_4k) * 4096))
			return errmsg(err, errlen, "%s: cannot extend it back to %llu bytes", path,
				    (unsigned long long)le32toh(jh.size_4k) * 4096);
	}
	if (!why)
		return 0;
	if (mode != ZMETA_RECOVER)
		return errmsg(err, errlen, "%s: %s, so the zone changes since the image's last "
			    "checkpoint are unknown. Restore the file, " WAY_RECOVER WAY_FORMAT,
			    path, why, m->hdr.nsid);
	log_warn("%s: %s; making a new journal: the zone state is the image's (checkpoint at "
		 "sequence number %llu, and descriptors written since); changes journaled after "
		 "that are lost", path, why, (unsigned long long)m->hdr.ckpt_seq);
	if (m->jnl_fd >= 0)
		close(m->jnl_fd);
	m->jnl_fd = -1;
	return 1;
}

static bool state_known(uint8_t s)
{
	return s == NVME_ZNS_ZS_EMPTY || s == NVME_ZNS_ZS_IMPL_OPEN || s == NVME_ZNS_ZS_EXPL_OPEN ||
	       s == NVME_ZNS_ZS_CLOSED || s == NVME_ZNS_ZS_FULL || s == NVME_ZNS_ZS_READ_ONLY ||
	       s == NVME_ZNS_ZS_OFFLINE;
}

static bool desc_possible(const struct zmeta *m, uint32_t i)
{
	struct zimg_desc d;
	memcpy(&d, desc_at(m, i), sizeof(d));
	uint64_t wp = le64toh(d.wp), zslba = (uint64_t)i * m->hdr.zone_size;
	bool zrwa = d.za & NVME_ZNS_ZA_ZRWAV;
	/* A ZRWA only in an active zone of a namespace that has ZRWAs. */
	if (zrwa && (!m->hdr.zrwa_lbas || (d.state != NVME_ZNS_ZS_IMPL_OPEN &&
					   d.state != NVME_ZNS_ZS_EXPL_OPEN &&
					   d.state != NVME_ZNS_ZS_CLOSED)))
		return false;
	return state_known(d.state) && wp >= zslba && wp <= zslba + m->hdr.zone_cap &&
	       (d.state != NVME_ZNS_ZS_EMPTY || wp == zslba);
}

/*
 * Load the image's descriptors into the engine, validating each. A zone the
 * files cannot vouch for (bad[i], or an impossible state) is refused, or with
 * ZMETA_RECOVER made Read Only with every block readable (ZNS 2.1.1.6: the
 * host may read it, never write it) and its extension dropped.
 */
static int load_zones(struct zmeta *m, struct zns *z, const uint8_t *bad, enum zmeta_mode mode,
		      const char *path, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		if (bad[i] || !desc_possible(m, i)) {
			struct zimg_desc d;
			memcpy(&d, desc_at(m, i), sizeof(d));
			if (mode != ZMETA_RECOVER && !bad[i])
				return errmsg(err, errlen, "%s: zone %u has an impossible state %#x / "
					    "write pointer %#llx. Restore the file, " WAY_RECOVER
					    WAY_FORMAT, path, i, d.state,
					    (unsigned long long)le64toh(d.wp), m->hdr.nsid);
			if (m->hdr.zde_size)
				memset(zde_at(m, i), 0, m->hdr.zde_size);
			put_desc(m, i, NVME_ZNS_ZS_READ_ONLY, 0, zns_zslba(z, i) + m->hdr.zone_cap,
				 m->next_seq - 1, NULL);
			log_warn("%s: zone %u: state unknown (damaged descriptor): made Read Only, "
				 "every block readable", path, i);
			m->read_only++;
		}
		struct zimg_desc d;
		memcpy(&d, desc_at(m, i), sizeof(d));
		zns_load(z, i, d.state, d.za, le64toh(d.wp));
		if (m->hdr.zde_size)
			memcpy(z->zde + (size_t)i * m->hdr.zde_size, zde_at(m, i), m->hdr.zde_size);
	}
	/* Loading is not a change: nothing needs journaling yet. */
	uint32_t cur = zns_take_dirty(z);
	struct zone_snap s;
	while (zns_snapshot(z, &cur, &s, NULL))
		;
	return 0;
}

/*
 * A damaged extension of a zone that has no valid one (ZDEV clear) holds
 * nothing the host may rely on: it is made zeros, as a Reset leaves it.
 */
static void settle_extensions(struct zmeta *m, uint8_t *bad, const char *img)
{
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		struct zimg_desc d;
		memcpy(&d, desc_at(m, i), sizeof(d));
		if (bad[i] != BAD_ZDE || (d.za & NVME_ZNS_ZA_ZDEV))
			continue;
		memset(zde_at(m, i), 0, m->hdr.zde_size);
		put_desc(m, i, d.state, d.za, le64toh(d.wp), le64toh(d.seq), NULL);
		bad[i] = 0;
		log_warn("%s: zone %u: damaged extension (not valid: ZDEV clear) made zeros", img, i);
	}
}

/*
 * Descriptors set by records past the journal's end. The image follows the
 * journal only once a batch is durable, so such a record was acknowledged
 * and then lost (damaged at the journal's end, or the journal truncated or
 * replaced). When every lost record's sequence number is still some zone's
 * descriptor, the image holds all they said and nothing is lost; otherwise
 * a zone may silently lack a change: refused (ZMETA_RECOVER keeps the image's
 * state). Either way new records are numbered after them.
 */
static int check_ahead(struct zmeta *m, const uint8_t *bad, enum zmeta_mode mode, const char *jnl,
		       bool *ahead, char *err, size_t errlen)
{
	uint64_t max = 0, held = 0;
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		struct zimg_desc d;
		memcpy(&d, desc_at(m, i), sizeof(d));
		uint64_t seq = le64toh(d.seq);
		if ((bad[i] & BAD_DESC) || seq < m->next_seq)
			continue;
		held++;
		if (seq > max)
			max = seq;
	}
	*ahead = held;
	if (!held)
		return 0;
	uint64_t lost = max - m->next_seq + 1;
	if (held != lost) {
		if (mode != ZMETA_RECOVER)
			return errmsg(err, errlen, "%s: the journal ends at record %llu, but the "
				    "image holds zone state up to record %llu: %llu acknowledged "
				    "record(s) were lost (the journal damaged at its end, truncated or "
				    "replaced) and the image does not hold all of them. Restore the "
				    "file, " WAY_RECOVER WAY_FORMAT, jnl,
				    (unsigned long long)m->next_seq, (unsigned long long)max,
				    (unsigned long long)lost, m->hdr.nsid);
		log_warn("%s: %llu acknowledged journal record(s) up to %llu were lost; keeping the "
			 "zone state the image holds", jnl, (unsigned long long)lost,
			 (unsigned long long)max);
	}
	m->next_seq = m->add_seq = max + 1;
	return 0;
}

/*
 * The run ended by dropping records as a torn tail. That is sound only
 * when they can have been a write never acknowledged and the image does
 * not depend on them:
 *   - a dropped record that continued a batch the image holds (replay found
 *     one of its records already there) was durable: it is damage, refused
 *     unless the image holds the state it set (check_ahead() saw to that);
 *   - a zone whose damaged descriptor the journal repaired from an older
 *     record may have been set by a dropped one - a record of it dropped
 *     at the end (torn, damaged, or its data not on disk), an unreadable
 *     one (its zone unknown), or records lost past the journal's end that
 *     the image held (ahead): its newest state is unknown. Refused.
 * ZMETA_RECOVER goes on with what the journal proves, logging each zone.
 */
static int check_tail(struct zmeta *m, const uint8_t *bad, const struct tail_drop *td, bool ahead,
		      enum zmeta_mode mode, const char *img, const char *jnl, char *err,
		      size_t errlen)
{
	if (td->durable && !ahead) {
		if (mode != ZMETA_RECOVER)
			return errmsg(err, errlen, "%s: journal record with sequence number %llu (byte "
				    "offset %llu) is damaged, and the image holds an earlier record "
				    "of its batch, so the batch was durable: this is no torn write. "
				    "Refusing to roll zone state back. Restore the file, "
				    WAY_RECOVER WAY_FORMAT, jnl, (unsigned long long)td->seq,
				    (unsigned long long)td->offset, m->hdr.nsid);
		log_warn("%s: journal record with sequence number %llu (byte offset %llu) of a "
			 "durable batch is damaged: dropped. The zone it changed (unknown: the "
			 "record is unreadable) keeps its last state the files prove", jnl,
			 (unsigned long long)td->seq, (unsigned long long)td->offset);
	}
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		const struct zone_note *n = &td->note[i];
		if (!(n->flags & NOTE_DESC) || (bad[i] & BAD_DESC) ||
		    !(n->flags & NOTE_TAIL || td->unreadable || ahead))
			continue;
		struct zimg_desc d;
		memcpy(&d, desc_at(m, i), sizeof(d));
		char why[200];
		if (n->flags & NOTE_TAIL)
			snprintf(why, sizeof(why), "its record %llu (write pointer %#llx) was dropped",
				 (unsigned long long)n->tail_seq, (unsigned long long)n->tail_wp);
		else if (td->unreadable)
			snprintf(why, sizeof(why), "the damaged record %llu (byte offset %llu; it "
				 "reads zone %u, write pointer %#llx, not to be trusted) was dropped",
				 (unsigned long long)td->seq, (unsigned long long)td->offset,
				 td->read_zone, (unsigned long long)td->read_wp);
		else
			snprintf(why, sizeof(why), "records the image held were lost after record "
				 "%llu", (unsigned long long)m->next_seq - 1);
		if (mode != ZMETA_RECOVER)
			return errmsg(err, errlen, "%s, %s: zone %u's descriptor is damaged and the "
				    "journal repairs it only from record %llu (write pointer %#llx), "
				    "but the journal's end may hold a newer state of it (%s): its "
				    "newest state is unknown. Refusing to roll it back. Restore the "
				    "files, " WAY_RECOVER "(the zone keeps record %llu's state), "
				    WAY_FORMAT, img, jnl, i, (unsigned long long)le64toh(d.seq),
				    (unsigned long long)le64toh(d.wp), why, m->hdr.nsid,
				    (unsigned long long)le64toh(d.seq));
		/* The write pointer it leaves: the dropped record's when it is
		 * known, else what the damaged bytes read. */
		bool known = n->flags & NOTE_TAIL, rec = !known && td->unreadable && td->read_zone == i;
		log_warn("%s: zone %u: damaged descriptor repaired from journal record %llu, though "
			 "%s: write pointer %#llx (%s) -> %#llx", img, i,
			 (unsigned long long)le64toh(d.seq), why,
			 (unsigned long long)(known ? n->tail_wp : rec ? td->read_wp : le64toh(n->raw.wp)),
			 known ? "the dropped record's" : rec ? "the damaged record's, as read" :
			 "the damaged descriptor's, as read", (unsigned long long)le64toh(d.wp));
	}
	return 0;
}

/*
 * Read the whole image once with pread(2) before it is mapped. A page of
 * the mapping that the disk cannot read is a SIGBUS on the first load from
 * it, which would take the whole target down, every namespace with it; a
 * read says EIO instead, and the namespace alone is refused. The pages stay
 * in the page cache for the loads that follow. 0, or -errno (-ENODATA: the
 * file ended early) and the bytes [*at, *to) that failed.
 */
#define READ_THROUGH_CHUNK (256u << 10)

static int read_through(int fd, uint64_t len, uint64_t *at, uint64_t *to)
{
	size_t chunk = READ_THROUGH_CHUNK;
	uint8_t *buf = malloc(chunk);
	int rc = buf ? 0 : -ENOMEM;
	for (*at = 0; !rc && *at < len;) {
		size_t n = len - *at < chunk ? (size_t)(len - *at) : chunk;
		ssize_t got = fio_pread_full(FIO_META, fd, buf, n, (off_t)*at);
		*to = *at + n;
		rc = got < 0 ? (int)got : (size_t)got < n ? -ENODATA : 0;
		if (!rc)
			*at += n;
	}
	free(buf);
	return rc;
}

/* Why read_through() failed, for err. */
static int read_through_failed(char *err, size_t errlen, const char *img, int rc,
			       uint64_t at, uint64_t to, bool way)
{
	if (rc == -ENOMEM)
		return errmsg(err, errlen, "%s: out of memory to read it", img);
	if (rc == -ENODATA)
		return errmsg(err, errlen, "%s: became shorter while it was read (at byte %llu)",
			      img, (unsigned long long)at);
	return errmsg(err, errlen, "%s: cannot be read (%s) in bytes %llu-%llu: the disk under "
		      "it fails%s", img, strerror(-rc), (unsigned long long)at,
		      (unsigned long long)to - 1,
		      way ? ". Copy what it holds to a sound disk or restore it, " WAY_FORMAT : "");
}

/*
 * The layout format() writes, derived from the geometry: a header that
 * says otherwise cannot be walked safely - desc_at() and zde_at() trust its
 * offsets, so a slot with a valid CRC that lies (a malicious or badly
 * damaged disk) would send them outside the mapping, or over the header
 * slots. The daemon and znstgt-ctl check both refuse it.
 */
static bool layout_possible(const struct zimg_header *h)
{
	uint64_t desc_end = 2 * ZIMG_SLOT_SIZE + align4k((uint64_t)h->nr_zones *
							  sizeof(struct zimg_desc));
	return (h->lba_shift == 9 || h->lba_shift == 12) && h->nr_zones && h->zone_size &&
	       !(h->zone_size & (h->zone_size - 1)) && h->zone_cap && h->zone_cap <= h->zone_size &&
	       h->zde_size % 64 == 0 && h->zde_size <= (1u << 20) &&
	       h->nlbas / h->zone_size == h->nr_zones && h->desc_offset == 2 * ZIMG_SLOT_SIZE &&
	       h->zde_offset == desc_end;
}

int zmeta_open(struct zmeta *m, const char *dir, const struct zmeta_geom *g,
	       enum zmeta_mode mode, struct zns *z, char *err, size_t errlen)
{
	char img[PATH_MAX], jnl[PATH_MAX];
	uint8_t *bad = NULL;
	struct tail_drop td = { 0 };
	memset(m, 0, sizeof(*m));
	m->img_fd = m->jnl_fd = -1;
	m->jnl_limit = g->jnl_limit ? g->jnl_limit : DEFAULT_JNL_LIMIT;
	path_of(img, sizeof(img), dir, ZMETA_IMG_NAME);
	path_of(jnl, sizeof(jnl), dir, ZMETA_JNL_NAME);

	int grc = sigbus_guard_install(); /* for guarded(), format's included */
	if (grc)
		return errmsg(err, errlen, "%s: SIGBUS handler: %s", img, strerror(-grc));
	if (mode == ZMETA_FORMAT && format(dir, g, err, errlen))
		return -1;
	m->img_fd = open(img, (mode == ZMETA_CHECK ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (m->img_fd < 0) {
		if (errno == ENOENT)
			errmsg(err, errlen, "%s: missing, so the state of every zone is unknown "
			       "(--recover cannot rebuild it). Restore the file, " WAY_FORMAT, img);
		else
			errmsg(err, errlen, "%s: %s", img, strerror(errno));
		goto out;
	}
	if (load_header(m, img, err, errlen))
		goto out;
	m->hdr.nsid = g->nsid; /* messages name the configured namespace */
	char diff[512];
	if (geometry_diff(&m->hdr, g, diff, sizeof(diff))) {
		errmsg(err, errlen, "%s: zone state on disk does not match the configuration (%s). "
		     "Fix the configuration, or start once with --format to erase this "
		     "namespace's data and zone state", img, diff);
		goto out;
	}
	if (!layout_possible(&m->hdr)) {
		errmsg(err, errlen, "%s: header slot %d has a valid CRC but describes a layout "
		       "format() never writes (descriptors at byte %llu, extensions at byte %llu). "
		       "Restore the file, " WAY_FORMAT, img, m->slot,
		       (unsigned long long)m->hdr.desc_offset, (unsigned long long)m->hdr.zde_offset);
		goto out;
	}
	struct stat st;
	m->img_len = image_len(&m->hdr);
	if (fstat(m->img_fd, &st) || (uint64_t)st.st_size < m->img_len) {
		errmsg(err, errlen, "%s: file is shorter than its header says (%lld < %llu bytes): "
		     "truncated. Restore the file, " WAY_FORMAT, img, (long long)st.st_size,
		     (unsigned long long)m->img_len);
		goto out;
	}
	uint64_t at, to;
	int rrc = read_through(m->img_fd, m->img_len, &at, &to);
	if (rrc) {
		read_through_failed(err, errlen, img, rrc, at, to, true);
		goto out;
	}
	int frc = mode == ZMETA_CHECK ? 0 : fill_holes(m->img_fd, m->img_len);
	if (frc) {
		errmsg(err, errlen, "%s: cannot give the image its blocks on disk (%s): free "
		     "space on its file system", img, strerror(-frc));
		goto out;
	}
	if (mode != ZMETA_CHECK && map_image(m, MAP_SHARED)) {
		errmsg(err, errlen, "%s: mmap: %s", img, strerror(errno));
		goto out;
	}
	if (mode != ZMETA_CHECK && sigbus_guard_run(redirty_image, m)) {
		errmsg(err, errlen, "%s: cannot be written through its mapping (a full file system "
		       "that copies on write, or a failing disk): free space, or copy it to a "
		       "sound disk", img);
		goto out;
	}
	/* Replay, repairs and checks change a private copy: ZMETA_CHECK's
	 * for good, the others' until zmeta_keep() (zmeta.h). */
	m->img_shared = m->img;
	if (map_image(m, MAP_PRIVATE)) {
		errmsg(err, errlen, "%s: mmap: %s", img, strerror(errno));
		goto out;
	}
	int rc = open_journal(m, jnl, mode, err, errlen);
	if (rc > 0) {
		if (create_journal(dir, m->hdr.instance, m->jnl_limit, err, errlen))
			goto out;
		m->jnl_fd = open(jnl, O_RDWR | O_CLOEXEC);
		if (m->jnl_fd < 0) {
			errmsg(err, errlen, "%s: %s", jnl, strerror(errno));
			goto out;
		}
	} else if (rc < 0) {
		goto out;
	}
	bad = calloc(m->hdr.nr_zones, 1);
	td.note = calloc(m->hdr.nr_zones, sizeof(*td.note));
	if (!bad || !td.note) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nr_bad = 0;
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		if (!(bad[i] = desc_damage(m, i)))
			continue;
		nr_bad++;
		if (!(bad[i] & BAD_DESC))
			continue;
		struct zone_note *n = &td.note[i];
		n->flags = NOTE_DESC;
		memcpy(&n->raw, desc_at(m, i), sizeof(n->raw));
	}
	bool ahead = false;
	if (replay(m, g, jnl, mode, bad, &td, err, errlen) ||
	    check_ahead(m, bad, mode, jnl, &ahead, err, errlen) ||
	    check_tail(m, bad, &td, ahead, mode, img, jnl, err, errlen))
		goto out;
	settle_extensions(m, bad, img);
	uint32_t first_bad = UINT32_MAX, left = 0;
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++)
		if (bad[i] && left++ == 0)
			first_bad = i;
	if (left && mode != ZMETA_RECOVER) {
		errmsg(err, errlen, "%s: %u zone descriptor(s) damaged (first: zone %u) and not "
		     "covered by the journal; refusing to guess their state. Restore the file, "
		     WAY_RECOVER "(those zones become Read Only), " WAY_FORMAT,
		     img, left, first_bad, m->hdr.nsid);
		goto out;
	}
	if (nr_bad > left)
		log_warn("%s: repaired %u damaged zone descriptor(s) from the journal", img,
			 nr_bad - left);
	if (load_zones(m, z, bad, mode, img, err, errlen))
		goto out;
	free(bad);
	free(td.note);
	return 0;
out:
	free(bad);
	free(td.note);
	zmeta_close(m);
	return -1;
}

/*
 * The run ended in a batch written in part (never durable) whose damaged
 * record still reads as the batch's next one, and replay kept the batch's
 * earlier records. Once zones.img holds them, a start before the open's
 * checkpoint would take the batch for durable (the image follows the
 * journal only once a batch is) and that record for damage, and refuse.
 * Zeroed and synced before the image takes anything, it reads as the end
 * of the run, as the open took it.
 */
static int erase_torn_record(struct zmeta *m)
{
	static const uint8_t zeros[sizeof(struct zjnl_record)];
	if (!m->torn_batch_at)
		return 0;
	int rc = write_full(m->jnl_fd, zeros, sizeof(zeros), (off_t)m->torn_batch_at);
	if (!rc && fio_fdatasync(FIO_META, m->jnl_fd))
		rc = -errno;
	if (!rc)
		m->torn_batch_at = 0;
	return rc;
}

int zmeta_keep(struct zmeta *m)
{
	if (!m->img_shared)
		return 0;
	int jrc = erase_torn_record(m);
	if (jrc)
		return jrc;
	size_t from = m->hdr.desc_offset; /* the header slots are the checkpoint's */
	struct mem_copy c = { m->img_shared + from, m->img + from, m->img_len - from };
	uint8_t *copy = m->img;
	m->img = m->img_shared; /* guarded() marks this mapping lost if a store faults */
	m->img_shared = NULL;
	int rc = guarded(m, copy_mem, &c);
	munmap(copy, m->img_len);
	return rc;
}

/* ---- journaling ---- */

int zmeta_add(struct zmeta *m, struct zmeta_batch *b, const struct zone_snap *s,
	      const uint8_t *zde, uint32_t data_lbas, uint32_t data_crc)
{
	size_t len = sizeof(struct zjnl_record) + (s->zde_dirty ? m->hdr.zde_size : 0);
	if (grow(&b->buf, &b->cap, b->len + len, 64 * 1024))
		return -ENOMEM;
	uint8_t *p = b->buf + b->len;
	struct zjnl_record r = {
		.type = htole16(s->zde_dirty ? ZJNL_ZONE_ZDE : ZJNL_ZONE),
		.len = htole16((uint16_t)len),
		.seq = htole64(m->add_seq++),
		.batch_pos = htole32(b->records + 1),
		.zone = htole32(s->zone),
		.state = s->state,
		.za = s->za,
		.wp = htole64(s->wp),
		.data_lbas = htole32(data_lbas),
		.data_crc = htole32(data_crc),
	};
	memcpy(p, &r, sizeof(r));
	if (s->zde_dirty)
		memcpy(p + sizeof(r), zde, m->hdr.zde_size);
	b->len += len;
	b->records++;
	return 0;
}

/* The generation (and so the CRC) is set when the batch is written: a
 * checkpoint may have started a new generation since it was built. */
static void stamp(struct zmeta *m, struct zmeta_batch *b)
{
	uint32_t gen = htole32((uint32_t)m->hdr.generation);
	for (size_t off = 0; off < b->len;) {
		uint8_t *p = b->buf + off;
		struct zjnl_record r;
		memcpy(&r, p, sizeof(r));
		r.gen = gen;
		memcpy(p, &r, sizeof(r));
		uint16_t len = le16toh(r.len);
		uint32_t crc = htole32(crc32c(p + 4, len - 4u));
		memcpy(p, &crc, 4);
		off += len;
	}
}

struct desc_load {
	const struct zimg_desc *from;
	struct zimg_desc d;
};

static void load_desc(void *arg)
{
	struct desc_load *l = arg;
	memcpy(&l->d, l->from, sizeof(l->d));
}

int zmeta_committed_wp(struct zmeta *m, uint32_t zone, uint64_t *wp)
{
	struct desc_load l = { .from = desc_at(m, zone) };
	int rc = guarded(m, load_desc, &l);
	*wp = le64toh(l.d.wp);
	return rc;
}

int zmeta_write(struct zmeta *m, struct zmeta_batch *b)
{
	if (!b->records)
		return 0;
	int rc = writable(m);
	if (!rc) {
		stamp(m, b);
		rc = write_full(m->jnl_fd, b->buf, b->len, (off_t)m->jnl_tail);
	}
	if (!rc && fio_fdatasync(FIO_META, m->jnl_fd))
		rc = -errno;
	if (rc) {
		b->len = 0;
		b->records = 0;
	}
	return rc;
}

struct batch_apply {
	struct zmeta *m;
	const struct zmeta_batch *b;
};

static void put_batch(void *arg)
{
	const struct batch_apply *a = arg;
	for (size_t off = 0; off < a->b->len;) {
		struct zjnl_record r;
		memcpy(&r, a->b->buf + off, sizeof(r));
		uint16_t len = le16toh(r.len);
		put_desc(a->m, le32toh(r.zone), r.state, r.za, le64toh(r.wp), le64toh(r.seq),
			 le16toh(r.type) == ZJNL_ZONE_ZDE ? a->b->buf + off + sizeof(r) : NULL);
		off += len;
	}
}

int zmeta_apply(struct zmeta *m, struct zmeta_batch *b)
{
	/* Durable, with its data: now the image may follow. */
	struct batch_apply a = { m, b };
	int rc = guarded(m, put_batch, &a);
	m->jnl_tail += b->len;
	m->next_seq += b->records;
	b->len = 0;
	b->records = 0;
	/* A batch of many zones (the power-up of an open, a Reset of every
	 * zone) would keep its buffer, 48 bytes a zone, for good. */
	if (b->cap > BATCH_KEEP)
		zmeta_batch_free(b);
	return rc;
}

void zmeta_batch_free(struct zmeta_batch *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

void zmeta_discard(struct zmeta *m, struct zmeta_batch *b)
{
	m->add_seq = m->next_seq;
	b->len = 0;
	b->records = 0;
}

bool zmeta_needs_checkpoint(const struct zmeta *m)
{
	return m->jnl_tail - ZJNL_DATA_OFFSET >= m->jnl_limit;
}

int zmeta_checkpoint(struct zmeta *m)
{
	int wrc = writable(m);
	if (wrc)
		return wrc;
	if (fio_msync(m->img, m->img_len)) {
		int rc = -errno;
		guarded(m, redirty_image, m);
		return rc;
	}
	struct zimg_header old = m->hdr;
	m->hdr.ckpt_seq = m->next_seq - 1;
	m->hdr.generation++;
	int rc = write_slot(m, !m->slot);
	if (rc) {
		m->hdr = old;
		return rc;
	}
	m->jnl_tail = ZJNL_DATA_OFFSET;
	return 0;
}

void zmeta_close(struct zmeta *m)
{
	if (m->img)
		munmap(m->img, m->img_len);
	if (m->img_shared)
		munmap(m->img_shared, m->img_len);
	if (m->img_fd >= 0)
		close(m->img_fd);
	if (m->jnl_fd >= 0)
		close(m->jnl_fd);
	memset(m, 0, sizeof(*m));
	m->img_fd = m->jnl_fd = -1;
}

/* ---- read-only inspection ---- */

int zmeta_view_open(struct zmeta *m, const char *dir, struct zmeta_slot_view slots[2],
		    char *err, size_t errlen)
{
	char img[PATH_MAX], jnl[PATH_MAX];
	struct zimg_header raw[2], h[2];
	enum slot_verdict v[2];
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->img_fd = m->jnl_fd = -1;
	path_of(img, sizeof(img), dir, ZMETA_IMG_NAME);
	path_of(jnl, sizeof(jnl), dir, ZMETA_JNL_NAME);
	m->img_fd = open(img, O_RDONLY | O_CLOEXEC);
	if (m->img_fd < 0)
		return errmsg(err, errlen, "%s: %s", img, strerror(errno));
	read_slots(m->img_fd, raw, h, v);
	for (int s = 0; slots && s < 2; s++) {
		struct zmeta_slot_view *sv = &slots[s];
		memset(sv, 0, sizeof(*sv));
		sv->crc = le32toh(raw[s].crc);
		sv->version = le32toh(raw[s].version);
		sv->state = v[s] == SLOT_OK ? ZMETA_SLOT_OK : v[s] == SLOT_VERSION ? ZMETA_SLOT_VERSION
			  : slot_blank(&raw[s]) ? ZMETA_SLOT_BLANK : ZMETA_SLOT_DAMAGED;
		if (v[s] == SLOT_OK)
			sv->hdr = h[s];
	}
	if (load_header(m, img, err, errlen))
		goto fail;
	if (!layout_possible(&m->hdr)) {
		errmsg(err, errlen, "%s: the current header slot (%d) has a valid CRC but describes "
		       "a layout format() never writes", img, m->slot);
		goto fail;
	}
	m->img_len = image_len(&m->hdr);
	if (fstat(m->img_fd, &st) || (uint64_t)st.st_size < m->img_len) {
		errmsg(err, errlen, "%s: file is shorter than its header says (%lld < %llu bytes): "
		       "truncated", img, (long long)st.st_size, (unsigned long long)m->img_len);
		goto fail;
	}
	uint64_t at, to;
	int rrc = read_through(m->img_fd, m->img_len, &at, &to);
	if (rrc) {
		read_through_failed(err, errlen, img, rrc, at, to, false);
		goto fail;
	}
	m->img = mmap(NULL, m->img_len, PROT_READ, MAP_PRIVATE, m->img_fd, 0);
	if (m->img == MAP_FAILED) {
		m->img = NULL;
		errmsg(err, errlen, "%s: mmap: %s", img, strerror(errno));
		goto fail;
	}
	m->jnl_fd = open(jnl, O_RDONLY | O_CLOEXEC);
	if (m->jnl_fd < 0 && errno != ENOENT) {
		errmsg(err, errlen, "%s: %s", jnl, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	zmeta_close(m);
	return -1;
}

void zmeta_view_geom(const struct zmeta *m, struct zmeta_geom *g)
{
	memset(g, 0, sizeof(*g));
	g->nsid = m->hdr.nsid;
	g->lba_shift = m->hdr.lba_shift;
	g->nlbas = m->hdr.nlbas;
	g->zone_size = m->hdr.zone_size;
	g->zone_cap = m->hdr.zone_cap;
	g->nr_zones = m->hdr.nr_zones;
	g->zde_size = m->hdr.zde_size;
	g->max_open = m->hdr.max_open;
	g->max_active = m->hdr.max_active;
	g->zrwa_lbas = m->hdr.zrwa_lbas;
}

void zmeta_view_desc(const struct zmeta *m, uint32_t zone, struct zmeta_desc_view *out)
{
	struct zimg_desc d;
	uint8_t bad = desc_damage(m, zone);

	memcpy(&d, desc_at(m, zone), sizeof(d));
	out->wp = le64toh(d.wp);
	out->seq = le64toh(d.seq);
	out->state = d.state;
	out->za = d.za;
	out->desc_ok = !(bad & BAD_DESC);
	out->zde_ok = !bad;
	out->possible = desc_possible(m, zone);
}

/* The journal header is one recovery would accept (open_journal): 1, 0,
 * or -errno when it cannot be read. */
static int jnl_header_ok(const struct zmeta *m)
{
	struct zjnl_header jh;
	ssize_t got = fio_pread_full(FIO_META, m->jnl_fd, &jh, sizeof(jh), 0);

	if (got < 0)
		return (int)got;
	return got == (ssize_t)sizeof(jh) && !memcmp(jh.magic, ZJNL_MAGIC, 8) &&
	       le32toh(jh.crc) == crc32c(&jh, offsetof(struct zjnl_header, crc)) &&
	       le32toh(jh.version) == ZJNL_VERSION && le64toh(jh.instance) == m->hdr.instance;
}

int zmeta_view_journal(const struct zmeta *m, void (*fn)(void *arg, const struct zmeta_rec_view *r),
		       void *arg, struct zmeta_run_end *end, char *err, size_t errlen)
{
	struct jreader jr = { .fd = m->jnl_fd, .need = sizeof(struct zjnl_record) + m->hdr.zde_size,
			      .buf_off = ZJNL_DATA_OFFSET };
	uint64_t seq = m->hdr.ckpt_seq + 1;
	uint32_t gen = (uint32_t)m->hdr.generation;
	struct zjnl_record r;
	ssize_t avail;
	int found;

	memset(end, 0, sizeof(*end));
	end->offset = ZJNL_DATA_OFFSET;
	end->next_seq = seq;
	if (m->jnl_fd < 0) {
		end->no_journal = true;
		return 0;
	}
	int hdr = jnl_header_ok(m);
	if (hdr < 0)
		return errmsg(err, errlen, "header cannot be read (%s): the disk under it fails",
			      strerror(-hdr));
	end->jnl_header_ok = hdr;
	jr.buf = malloc(REPLAY_CHUNK + jr.need);
	if (!jr.buf)
		return errmsg(err, errlen, "out of memory");
	/* The run, as replay() walks it. */
	while ((avail = jr_fill(&jr)) >= 0 && jr_record(m, &jr, avail, &r) &&
	       le32toh(r.gen) == gen && le64toh(r.seq) == seq) {
		struct zmeta_rec_view rv = {
			.offset = jr_off(&jr), .seq = seq, .gen = gen, .zone = le32toh(r.zone),
			.batch_pos = le32toh(r.batch_pos), .data_lbas = le32toh(r.data_lbas),
			.data_crc = le32toh(r.data_crc), .wp = le64toh(r.wp), .state = r.state,
			.za = r.za, .zde = le16toh(r.type) == ZJNL_ZONE_ZDE,
		};
		fn(arg, &rv);
		jr.pos += le16toh(r.len);
		seq++;
	}
	end->offset = jr_off(&jr);
	end->next_seq = seq;
	found = avail < 0 ? (int)avail : damage_after(m, &jr, gen, seq, ZMETA_LOAD, &r, NULL);
	free(jr.buf);
	if (found < 0)
		return errmsg(err, errlen, "%s: %s", ZMETA_JNL_NAME, strerror(-found));
	if (found) {
		end->damaged = true;
		end->damaged_seq = le64toh(r.seq);
		end->damaged_offset = jr_off(&jr);
	}
	return 0;
}
