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

#define IMG_NAME "zones.img"
#define JNL_NAME "zones.jnl"
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

static ssize_t read_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = fio_pread(FIO_META, fd, p + got, len - got, off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
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

static bool desc_valid(const struct zmeta *m, uint32_t zone)
{
	struct zimg_desc d;
	memcpy(&d, desc_at(m, zone), sizeof(d));
	return le32toh(d.crc) == crc32c(&d, offsetof(struct zimg_desc, crc)) &&
	       le32toh(d.zde_crc) == zde_crc(m, zone);
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
	out->crc = htole32(crc32c(out, offsetof(struct zimg_header, crc)));
}

enum slot_verdict { SLOT_OK, SLOT_BAD, SLOT_VERSION };

static enum slot_verdict header_decode(const struct zimg_header *in, struct zimg_header *h)
{
	if (memcmp(in->magic, ZIMG_MAGIC, 8) ||
	    le32toh(in->crc) != crc32c(in, offsetof(struct zimg_header, crc)))
		return SLOT_BAD;
	h->version = le32toh(in->version);
	if (h->version != ZMETA_VERSION || le32toh(in->header_bytes) != sizeof(*in))
		return SLOT_VERSION;
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

/* Write the current header into `slot` of the image and make it durable. */
static int write_slot(struct zmeta *m, int slot)
{
	struct zimg_header raw;
	header_encode(&m->hdr, &raw);
	uint8_t *p = m->img + (size_t)slot * ZIMG_SLOT_SIZE;
	memcpy(p, &raw, sizeof(raw));
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
	path_of(tmp, sizeof(tmp), dir, JNL_NAME ".tmp");
	path_of(path, sizeof(path), dir, JNL_NAME);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errmsg(err, errlen, "%s: %s", tmp, strerror(errno));
	uint8_t page[ZJNL_DATA_OFFSET] = { 0 };
	struct zjnl_header *h = (struct zjnl_header *)page;
	memcpy(h->magic, ZJNL_MAGIC, 8);
	h->version = htole32(ZMETA_VERSION);
	h->instance = htole64(instance);
	h->crc = htole32(crc32c(h, offsetof(struct zjnl_header, crc)));
	int rc = write_full(fd, page, sizeof(page), 0);
	/* Allocate the journal's blocks now so that a group commit's
	 * fdatasync rarely has file-size metadata to write. */
	if (!rc && posix_fallocate(fd, ZJNL_DATA_OFFSET, (off_t)limit + (1 << 20)))
		log_warn("%s: could not preallocate the journal", tmp);
	if (!rc && fio_fsync(FIO_META, fd))
		rc = -errno;
	close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		return errmsg(err, errlen, "%s: %s", path, strerror(-rc));
	return 0;
}

static int create_image(const char *dir, const struct zimg_header *h, char *err, size_t errlen)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	path_of(tmp, sizeof(tmp), dir, IMG_NAME ".tmp");
	path_of(path, sizeof(path), dir, IMG_NAME);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errmsg(err, errlen, "%s: %s", tmp, strerror(errno));
	struct zmeta m = { .img_fd = fd, .hdr = *h };
	m.img_len = image_len(h);
	int rc = fio_ftruncate(FIO_META, fd, (off_t)m.img_len) ? -errno : 0;
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
		.version = ZMETA_VERSION,
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
#undef DIFF
	return n ? -1 : 0;
}

static int load_header(struct zmeta *m, const char *path, char *err, size_t errlen)
{
	struct zimg_header raw[2], h[2];
	enum slot_verdict v[2];
	for (int s = 0; s < 2; s++) {
		ssize_t n = read_full(m->img_fd, &raw[s], sizeof(raw[s]), (off_t)s * ZIMG_SLOT_SIZE);
		v[s] = n == (ssize_t)sizeof(raw[s]) ? header_decode(&raw[s], &h[s]) : SLOT_BAD;
	}
	if (v[0] != SLOT_OK && v[1] != SLOT_OK) {
		if (v[0] == SLOT_VERSION || v[1] == SLOT_VERSION)
			return errmsg(err, errlen,
				    "%s: unknown zone image format version %u (this znstgt reads "
				    "version %u); refusing to touch it",
				    path, le32toh(raw[v[0] == SLOT_VERSION ? 0 : 1].version),
				    ZMETA_VERSION);
		return errmsg(err, errlen, "%s: both header slots are damaged (bad magic or checksum)",
			    path);
	}
	int s = v[0] != SLOT_OK ? 1 : v[1] != SLOT_OK ? 0 : h[1].generation > h[0].generation;
	/* A never-written slot (fresh image) is all zeros: not damage. */
	static const char zero[8];
	if (v[!s] == SLOT_BAD && memcmp(raw[!s].magic, zero, 8))
		log_warn("%s: header slot %d is damaged; using slot %d", path, !s, s);
	m->hdr = h[s];
	m->slot = s;
	return 0;
}

/* Replay journal records after the checkpoint into the image. */
static int replay(struct zmeta *m, const char *path, uint8_t *bad, char *err, size_t errlen)
{
	struct zjnl_header jh;
	if (read_full(m->jnl_fd, &jh, sizeof(jh), 0) != (ssize_t)sizeof(jh) ||
	    memcmp(jh.magic, ZJNL_MAGIC, 8) ||
	    le32toh(jh.crc) != crc32c(&jh, offsetof(struct zjnl_header, crc)))
		return errmsg(err, errlen, "%s: journal header is damaged", path);
	if (le32toh(jh.version) != ZMETA_VERSION)
		return errmsg(err, errlen, "%s: unknown journal format version %u", path,
			    le32toh(jh.version));
	if (le64toh(jh.instance) != m->hdr.instance)
		return errmsg(err, errlen, "%s: journal belongs to another zone image", path);

	/* A valid first record of a newer generation means a newer header
	 * was written completely (records follow a header write) and has been
	 * damaged since: the older slot cannot account for those records. */
	size_t rec_max = sizeof(struct zjnl_record) + m->hdr.zde_size;
	uint8_t *buf = malloc(REPLAY_CHUNK + rec_max);
	if (!buf)
		return errmsg(err, errlen, "out of memory");
	struct zjnl_record first;
	ssize_t got = read_full(m->jnl_fd, buf, rec_max, ZJNL_DATA_OFFSET);
	memcpy(&first, buf, sizeof(first));
	size_t flen = le16toh(first.len);
	if (got >= (ssize_t)sizeof(first) && flen >= sizeof(first) && flen <= (size_t)got &&
	    le32toh(first.crc) == crc32c(buf + 4, flen - 4) &&
	    (int32_t)(le32toh(first.gen) - (uint32_t)m->hdr.generation) > 0) {
		free(buf);
		return errmsg(err, errlen, "%s: the newest zone image header is damaged and the "
			    "journal holds records written after it; refusing to fall back to an "
			    "older checkpoint. Restore the files, or start with --format to erase "
			    "this namespace's data and zone state", path);
	}
	uint64_t seq = m->hdr.ckpt_seq + 1, off = ZJNL_DATA_OFFSET;
	uint32_t gen = (uint32_t)m->hdr.generation;
	size_t have = 0, pos = 0;
	uint64_t buf_off = off;
	for (;;) {
		if (have - pos < rec_max) { /* refill, keeping the partial record */
			memmove(buf, buf + pos, have - pos);
			buf_off += pos;
			have -= pos;
			pos = 0;
			ssize_t n = read_full(m->jnl_fd, buf + have, REPLAY_CHUNK, (off_t)(buf_off + have));
			if (n < 0) {
				free(buf);
				return errmsg(err, errlen, "%s: %s", path, strerror((int)-n));
			}
			have += (size_t)n;
		}
		if (have - pos < sizeof(struct zjnl_record))
			break;
		struct zjnl_record r;
		memcpy(&r, buf + pos, sizeof(r));
		uint16_t type = le16toh(r.type), len = le16toh(r.len);
		size_t want = sizeof(r) + (type == ZJNL_ZONE_ZDE ? m->hdr.zde_size : 0);
		if ((type != ZJNL_ZONE && type != ZJNL_ZONE_ZDE) || len != want || have - pos < len ||
		    le32toh(r.crc) != crc32c(buf + pos + 4, len - 4u) || le64toh(r.seq) != seq ||
		    le32toh(r.gen) != gen || le32toh(r.zone) >= m->hdr.nr_zones)
			break;
		uint32_t zone = le32toh(r.zone);
		put_desc(m, zone, r.state, r.za, le64toh(r.wp), seq,
			 type == ZJNL_ZONE_ZDE ? buf + pos + sizeof(r) : NULL);
		if (bad[zone]) {
			bad[zone] = 0;
			m->repaired++;
		}
		m->replayed++;
		seq++;
		pos += len;
	}
	free(buf);
	m->next_seq = m->add_seq = seq;
	m->jnl_tail = buf_off + pos;
	return 0;
}

static bool state_known(uint8_t s)
{
	return s == NVME_ZNS_ZS_EMPTY || s == NVME_ZNS_ZS_IMPL_OPEN || s == NVME_ZNS_ZS_EXPL_OPEN ||
	       s == NVME_ZNS_ZS_CLOSED || s == NVME_ZNS_ZS_FULL || s == NVME_ZNS_ZS_READ_ONLY ||
	       s == NVME_ZNS_ZS_OFFLINE;
}

/* Load the image's descriptors into the engine, validating each. */
static int load_zones(struct zmeta *m, struct zns *z, const char *path, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		struct zimg_desc d;
		memcpy(&d, desc_at(m, i), sizeof(d));
		uint64_t wp = le64toh(d.wp), zslba = zns_zslba(z, i);
		if (!state_known(d.state) || wp < zslba || wp > zslba + m->hdr.zone_cap ||
		    (d.state == NVME_ZNS_ZS_EMPTY && wp != zslba))
			return errmsg(err, errlen, "%s: zone %u has an impossible state %#x / write "
				    "pointer %#llx", path, i, d.state, (unsigned long long)wp);
		zns_load(z, i, d.state, d.za, wp);
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

int zmeta_open(struct zmeta *m, const char *dir, const struct zmeta_geom *g, bool fmt,
	       struct zns *z, char *err, size_t errlen)
{
	char img[PATH_MAX], jnl[PATH_MAX];
	memset(m, 0, sizeof(*m));
	m->img_fd = m->jnl_fd = -1;
	m->jnl_limit = g->jnl_limit ? g->jnl_limit : DEFAULT_JNL_LIMIT;
	path_of(img, sizeof(img), dir, IMG_NAME);
	path_of(jnl, sizeof(jnl), dir, JNL_NAME);

	if (fmt || access(img, F_OK) != 0) {
		if (!fmt && errno != ENOENT)
			return errmsg(err, errlen, "%s: %s", img, strerror(errno));
		if (format(dir, g, err, errlen))
			return -1;
	}
	m->img_fd = open(img, O_RDWR | O_CLOEXEC);
	m->jnl_fd = open(jnl, O_RDWR | O_CLOEXEC);
	if (m->img_fd < 0 || m->jnl_fd < 0) {
		errmsg(err, errlen, "%s: %s", m->img_fd < 0 ? img : jnl, strerror(errno));
		goto out;
	}
	if (load_header(m, img, err, errlen))
		goto out;
	char diff[512];
	if (geometry_diff(&m->hdr, g, diff, sizeof(diff))) {
		errmsg(err, errlen, "%s: zone state on disk does not match the configuration (%s). "
		     "Fix the configuration, or start once with --format to erase this "
		     "namespace's data and zone state", img, diff);
		goto out;
	}
	struct stat st;
	m->img_len = image_len(&m->hdr);
	if (fstat(m->img_fd, &st) || (uint64_t)st.st_size < m->img_len) {
		errmsg(err, errlen, "%s: file is shorter than its header says (%lld < %llu bytes)",
		     img, (long long)st.st_size, (unsigned long long)m->img_len);
		goto out;
	}
	m->img = mmap(NULL, m->img_len, PROT_READ | PROT_WRITE, MAP_SHARED, m->img_fd, 0);
	if (m->img == MAP_FAILED) {
		m->img = NULL;
		errmsg(err, errlen, "%s: mmap: %s", img, strerror(errno));
		goto out;
	}
	uint8_t *bad = calloc(m->hdr.nr_zones, 1);
	if (!bad) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nr_bad = 0;
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++)
		if (!desc_valid(m, i))
			bad[i] = 1, nr_bad++;
	int rc = replay(m, jnl, bad, err, errlen);
	uint32_t first_bad = UINT32_MAX, left = 0;
	for (uint32_t i = 0; !rc && i < m->hdr.nr_zones; i++)
		if (bad[i] && left++ == 0)
			first_bad = i;
	free(bad);
	if (rc)
		goto out;
	if (left) {
		errmsg(err, errlen, "%s: %u zone descriptor(s) damaged (first: zone %u) and not "
		     "covered by the journal; refusing to guess their state. Restore the file, or "
		     "start with --format to erase this namespace's data and zone state",
		     img, left, first_bad);
		goto out;
	}
	if (nr_bad)
		log_warn("%s: repaired %u damaged zone descriptor(s) from the journal", img, nr_bad);
	if (load_zones(m, z, img, err, errlen))
		goto out;
	return 0;
out:
	zmeta_close(m);
	return -1;
}

/* ---- journaling ---- */

int zmeta_add(struct zmeta *m, struct zmeta_batch *b, const struct zone_snap *s,
	      const uint8_t *zde)
{
	size_t len = sizeof(struct zjnl_record) + (s->zde_dirty ? m->hdr.zde_size : 0);
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64 * 1024;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return -ENOMEM;
		b->buf = nb;
		b->cap = cap;
	}
	uint8_t *p = b->buf + b->len;
	struct zjnl_record r = {
		.type = htole16(s->zde_dirty ? ZJNL_ZONE_ZDE : ZJNL_ZONE),
		.len = htole16((uint16_t)len),
		.seq = htole64(m->add_seq++),
		.zone = htole32(s->zone),
		.state = s->state,
		.za = s->za,
		.wp = htole64(s->wp),
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

int zmeta_commit(struct zmeta *m, struct zmeta_batch *b)
{
	if (!b->records)
		return 0;
	stamp(m, b);
	int rc = write_full(m->jnl_fd, b->buf, b->len, (off_t)m->jnl_tail);
	if (!rc && fio_fdatasync(FIO_META, m->jnl_fd))
		rc = -errno;
	if (rc) {
		b->len = 0;
		b->records = 0;
		return rc;
	}
	/* Durable: now the image may follow. */
	for (size_t off = 0; off < b->len;) {
		struct zjnl_record r;
		memcpy(&r, b->buf + off, sizeof(r));
		uint16_t len = le16toh(r.len);
		put_desc(m, le32toh(r.zone), r.state, r.za, le64toh(r.wp), le64toh(r.seq),
			 le16toh(r.type) == ZJNL_ZONE_ZDE ? b->buf + off + sizeof(r) : NULL);
		off += len;
	}
	m->jnl_tail += b->len;
	m->next_seq += b->records;
	b->len = 0;
	b->records = 0;
	/* A batch of many zones (the power-up of an open, a Reset of every
	 * zone) would keep its buffer, 40 bytes a zone, for good. */
	if (b->cap > BATCH_KEEP)
		zmeta_batch_free(b);
	return 0;
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
	if (fio_msync(m->img, m->img_len))
		return -errno;
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
	if (m->img_fd >= 0)
		close(m->img_fd);
	if (m->jnl_fd >= 0)
		close(m->jnl_fd);
	memset(m, 0, sizeof(*m));
	m->img_fd = m->jnl_fd = -1;
}
