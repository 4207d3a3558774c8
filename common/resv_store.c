/*
 * The resv.state file and the locked state of a namespace's reservations
 * (format and rules in resv_store.h).
 */
#include "resv_store.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nvme/types.h>

#include "crc32c.h"
#include "errmsg.h"
#include "fault_io.h"
#include "log.h"
#include "nvme_wire.h"

#define MAGIC "ZNSTGTRV"
#define VERSION 1u
#define HDR 32u
#define ENTRY 32u
#define NO_HOLDER 0xffffffffu

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

size_t resv_encode(const struct resv_state *s, uint8_t *buf)
{
	/* Without PTPL a power loss clears everything: only PTPL is kept. */
	uint32_t nr = s->ptpl ? s->nr : 0, holder = NO_HOLDER;
	size_t len = HDR + ENTRY * nr + 4;

	memset(buf, 0, len);
	memcpy(buf, MAGIC, 8);
	put32(buf + 8, VERSION);
	put32(buf + 12, nr);
	put32(buf + 16, s->ptpl ? s->gen : 0);
	buf[20] = s->ptpl ? s->rtype : RESV_NONE;
	buf[21] = s->ptpl;
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t *e = buf + HDR + ENTRY * i;
		uint64_t key = htole64(s->regs[i].key);

		memcpy(e, s->regs[i].hostid, 16);
		memcpy(e + 16, &key, 8);
		if (s->rtype != RESV_NONE && !resv_all_registrants(s->rtype) &&
		    !memcmp(s->holder, s->regs[i].hostid, 16))
			holder = i;
	}
	put32(buf + 24, holder);
	put32(buf + len - 4, crc32c(buf, len - 4));
	return len;
}

int resv_decode(const void *data, size_t len, struct resv_state *s, const char **why)
{
	const uint8_t *buf = data;

	memset(s, 0, sizeof(*s));
	*why = NULL;
	if (len < HDR + 4 || memcmp(buf, MAGIC, 8)) {
		*why = "is not a reservation state file (short, or a bad magic)";
		return -1;
	}
	uint32_t nr = get32(buf + 12);
	if (nr > RESV_MAX_REGS || len != HDR + ENTRY * (size_t)nr + 4) {
		*why = "has the wrong size for its registrant count (truncated?)";
		return -1;
	}
	if (get32(buf + len - 4) != crc32c(buf, len - 4)) {
		*why = "is damaged (CRC mismatch)";
		return -1;
	}
	if (get32(buf + 8) != VERSION) {
		*why = "has an unknown format version (written by a newer znstgt?)";
		return -1;
	}
	uint8_t rtype = buf[20], ptpl = buf[21];
	uint32_t gen = get32(buf + 16), holder = get32(buf + 24);
	bool ar = resv_all_registrants(rtype);
	/* Without PTPL the writer keeps nothing, not even the generation. */
	if (rtype > RESV_EA_AR || ptpl > 1 || (!ptpl && (nr || rtype || gen)) ||
	    (rtype == RESV_NONE || ar ? holder != NO_HOLDER : holder >= nr) || (ar && !nr)) {
		*why = "holds an impossible state";
		return -1;
	}
	s->gen = gen;
	s->rtype = rtype;
	s->ptpl = ptpl;
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *e = buf + HDR + ENTRY * i;
		uint64_t key;

		if (resv_find(s, e)) { /* among the entries before it */
			*why = "holds an impossible state (a host registered twice)";
			memset(s, 0, sizeof(*s));
			return -1;
		}
		memcpy(&key, e + 16, 8);
		memcpy(s->regs[i].hostid, e, 16);
		s->regs[i].key = le64toh(key);
		s->nr++;
	}
	if (holder != NO_HOLDER)
		memcpy(s->holder, s->regs[holder].hostid, 16);
	return 0;
}

static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fio_fsync(FIO_META, fd) ? -errno : 0;
	close(fd);
	return rc;
}

/* The file replaced atomically: temporary file, sync, rename, sync the
 * directory. *renamed (if not NULL): whether the rename happened, so that
 * a failure after it left the new file in place. */
static int store(const char *path, const struct resv_state *s, bool *renamed)
{
	uint8_t buf[RESV_FILE_MAX];
	size_t len = resv_encode(s, buf);
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = fio_pwrite(FIO_META, fd, buf, len, 0) == (ssize_t)len && !fio_fsync(FIO_META, fd)
		 ? 0 : -EIO;
	close(fd);
	if (renamed)
		*renamed = false;
	if (!rc && rename(tmp, path))
		rc = -errno;
	else if (!rc && renamed)
		*renamed = true;
	if (!rc)
		rc = sync_dir(path);
	if (rc)
		unlink(tmp);
	return rc;
}

/* Read the file: 1 when there is none, 0 and *s, or -1 with err. */
static int load(const char *path, struct resv_state *s, const char **why, char *err,
		size_t errlen)
{
	uint8_t buf[RESV_FILE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*why = NULL;
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return errmsg(err, errlen, "%s: %s", path, strerror(errno));
	}
	/* One byte more than the largest file, so that a longer one shows;
	 * a short read goes on where it stopped. */
	ssize_t n = fio_pread_full(FIO_META, fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return errmsg(err, errlen, "%s: %s", path, strerror((int)-n));
	if (resv_decode(buf, (size_t)n, s, why))
		return -1;
	return 0;
}

int resv_file_check(const char *dir, const char **why)
{
	char path[PATH_MAX + 16], err[PATH_MAX + 64];
	struct resv_state s;

	snprintf(path, sizeof(path), "%s/" RESV_FILE_NAME, dir);
	if (load(path, &s, why, err, sizeof(err)) >= 0)
		return 0;
	if (!*why)
		*why = "cannot be read";
	return 1;
}

int resv_ns_open(const char *dir, uint32_t nsid, bool format, bool recover, struct resv_ns **out,
		 char *err, size_t errlen)
{
	struct resv_ns *r = calloc(1, sizeof(*r));
	const char *why = NULL;

	if (!r)
		return errmsg(err, errlen, "out of memory");
	snprintf(r->path, sizeof(r->path), "%s/" RESV_FILE_NAME, dir);
	if (format) {
		if (unlink(r->path) && errno != ENOENT) {
			errmsg(err, errlen, "%s: %s", r->path, strerror(errno));
			free(r);
			return -1;
		}
	} else if (load(r->path, &r->st, &why, err, errlen) < 0) {
		if (!why) {
			free(r);
			return -1;
		}
		if (!recover) {
			errmsg(err, errlen, "%s: %s; it holds the namespace's reservations and "
			       "registrations. Restore the file, or start once with --recover "
			       "NQN/%u (this subsystem's NQN; the reservations are dropped and "
			       "hosts must register again), or with --format to erase this "
			       "namespace", r->path, why, nsid);
			free(r);
			return -1;
		}
		log_warn("%s: %s; dropping the reservations and registrations it held "
			 "(hosts must register again)", r->path, why);
		memset(&r->st, 0, sizeof(r->st));
		int rc = store(r->path, &r->st, NULL);
		if (rc) {
			errmsg(err, errlen, "%s: %s", r->path, strerror(-rc));
			free(r);
			return -1;
		}
	}
	resv_power_up(&r->st);
	atomic_init(&r->reserved, r->st.rtype != RESV_NONE);
	pthread_mutex_init(&r->op_lock, NULL);
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void resv_ns_close(struct resv_ns *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->op_lock);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

uint16_t resv_ns_apply(struct resv_ns *r, resv_op_fn op, void *arg)
{
	struct resv_state next;
	uint8_t before[RESV_FILE_MAX], after[RESV_FILE_MAX];
	uint16_t st;

	pthread_mutex_lock(&r->op_lock);
	pthread_mutex_lock(&r->lock);
	next = r->st;
	pthread_mutex_unlock(&r->lock);
	size_t blen = resv_encode(&next, before);
	st = op(&next, arg);
	if (!st) {
		size_t alen = resv_encode(&next, after);
		if (alen != blen || memcmp(before, after, alen)) {
			bool renamed;
			int rc = store(r->path, &next, &renamed);
			if (rc) {
				log_error("%s: %s; the reservation change is refused", r->path,
					  strerror(-rc));
				st = nvme_err(NVME_SC_INTERNAL);
				/* The directory's sync failed after the rename: the
				 * refused change is in the file. Put the state back,
				 * or a restart would bring the change back. */
				if (renamed && (rc = store(r->path, &r->st, NULL)))
					log_error("%s: %s; it may hold the refused change", r->path,
						  strerror(-rc));
			}
		}
	}
	if (!st) {
		pthread_mutex_lock(&r->lock);
		r->st = next;
		atomic_store(&r->reserved, next.rtype != RESV_NONE);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->op_lock);
	return st;
}

bool resv_ns_conflict(struct resv_ns *r, const uint8_t host[16], enum resv_access a)
{
	bool c;

	/* No reservation, no conflict: the common case takes no lock. */
	if (!atomic_load_explicit(&r->reserved, memory_order_acquire))
		return false;
	pthread_mutex_lock(&r->lock);
	c = resv_conflict(&r->st, host, a);
	pthread_mutex_unlock(&r->lock);
	return c;
}

void resv_ns_get(struct resv_ns *r, struct resv_state *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	pthread_mutex_unlock(&r->lock);
}
