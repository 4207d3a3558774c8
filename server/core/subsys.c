/*
 * The subsystem registry. See subsys.h.
 *
 * Locks, outermost first: reg_lock (the list, the generation counter),
 * subsys->lock (its controllers), ctrl->lock. Nothing that holds an inner
 * lock takes an outer one.
 */
#include "subsys.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvme/types.h>
#include <openssl/crypto.h>

#include "config_diff.h"
#include "crc32c.h"
#include "ctrl.h"
#include "deadline.h"
#include "errmsg.h"
#include "log.h"
#include "ns.h"
#include "ns_precheck.h"
#include "nvme_cmd.h"
#include "worker.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct subsys *reg_head;          /* NVM subsystems, in configuration order */
static struct subsys *disc;              /* the discovery subsystem */
static uint64_t genctr = 1;              /* discovery log generation (reg_lock) */
/* Connect-time limits, from the configuration. */
static uint32_t max_ctrls = CFG_DEFAULT_MAX_CONTROLLERS;
static uint32_t max_host_queues = CFG_DEFAULT_MAX_HOST_CONNECTIONS;

/* Subsystems whose namespaces are being closed on an I/O thread, and
 * subsystems taken off the registry (removed, power cut) not yet freed:
 * until they are, their namespace files are still open. */
static pthread_mutex_t close_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t close_cond = PTHREAD_COND_INITIALIZER;
static int pending_closes;
static int nr_detached;

/* ---- lifetime ---- */

static void hosts_free(struct subsys_hosts *h)
{
	if (!h)
		return;
	if (h->auth)
		OPENSSL_cleanse(h->auth, (size_t)h->nr_hosts * sizeof(*h->auth));
	free(h->auth);
	free(h->hosts);
	free(h);
}

/* The host rules of sc as a table of their own, NULL when out of memory. */
static struct subsys_hosts *hosts_new(const struct subsys_config *sc)
{
	struct subsys_hosts *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->allow_any_host = sc->allow_any_host;
	h->require_tls = sc->require_tls;
	h->nr_hosts = sc->nr_hosts;
	if (sc->nr_hosts && (!(h->hosts = calloc(sc->nr_hosts, sizeof(*h->hosts))) ||
			     !(h->auth = calloc(sc->nr_hosts, sizeof(*h->auth))))) {
		hosts_free(h);
		return NULL;
	}
	for (int i = 0; i < sc->nr_hosts; i++) {
		snprintf(h->hosts[i], sizeof(h->hosts[i]), "%s", sc->hosts[i]);
		h->auth[i] = sc->host_auth[i];
	}
	return h;
}

static const struct subsys_hosts *hosts_of(const struct subsys *s)
{
	return __atomic_load_n(&s->hosts, __ATOMIC_ACQUIRE);
}

static void subsys_free(struct subsys *s)
{
	bool detached = s->detached;

	for (uint32_t nsid = 1; nsid <= CFG_MAX_NAMESPACES; nsid++)
		free(s->ns_cfg[nsid]);
	hosts_free(s->hosts);
	pthread_mutex_destroy(&s->lock);
	free(s);
	if (detached) {
		pthread_mutex_lock(&close_lock);
		nr_detached--;
		pthread_cond_broadcast(&close_cond);
		pthread_mutex_unlock(&close_lock);
	}
}

static void close_ns(const struct subsys *s, struct ns *ns)
{
	if (s->power_cut)
		ns_abandon(ns);
	else
		ns_close(ns);
}

static void close_namespaces(struct subsys *s)
{
	for (uint32_t nsid = 1; nsid <= CFG_MAX_NAMESPACES; nsid++)
		if (s->ns[nsid]) {
			close_ns(s, s->ns[nsid]);
			s->ns[nsid] = NULL;
		}
	while (s->retired) {
		struct subsys_retired_ns *r = s->retired;

		s->retired = r->next;
		close_ns(s, r->ns);
		free(r->cfg);
		free(r);
	}
}

struct close_job {
	struct io_job job;
	struct subsys *s;
};

static void close_run(struct io_job *job)
{
	close_namespaces(container_of(job, struct close_job, job)->s);
}

static void close_done(struct io_job *job)
{
	struct close_job *cj = container_of(job, struct close_job, job);

	log_info("subsystem %s: %s", cj->s->nqn, cj->s->power_cut ? "power gone" : "closed");
	subsys_free(cj->s);
	free(cj);
	pthread_mutex_lock(&close_lock);
	pending_closes--;
	pthread_cond_broadcast(&close_cond);
	pthread_mutex_unlock(&close_lock);
}

/*
 * The last reference went: close the namespaces (ns_close blocks while it
 * checkpoints, so never on an event loop: hand it to an I/O thread).
 */
static void subsys_release(struct subsys *s)
{
	struct close_job *cj;

	if (worker_self() && (cj = calloc(1, sizeof(*cj)))) {
		cj->s = s;
		cj->job.worker = worker_self();
		cj->job.run = close_run;
		cj->job.done = close_done;
		pthread_mutex_lock(&close_lock);
		pending_closes++;
		pthread_mutex_unlock(&close_lock);
		io_submit_slow_job(&cj->job); /* ns_close commits and checkpoints */
		return;
	}
	close_namespaces(s);
	if (!s->discovery)
		log_info("subsystem %s: %s", s->nqn, s->power_cut ? "power gone" : "closed");
	subsys_free(s);
}

void subsys_get(struct subsys *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void subsys_put(struct subsys *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1)
		subsys_release(s);
}

static struct subsys *subsys_new(const char *nqn)
{
	struct subsys *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	snprintf(s->nqn, sizeof(s->nqn), "%s", nqn);
	atomic_init(&s->refs, 1); /* the registry's */
	pthread_mutex_init(&s->lock, NULL);
	s->next_cntlid = NVME_CNTLID_MIN;
	return s;
}

/* ---- namespace identifiers ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Which identifier a and b share, if any (NVMe Base 2.0, 4.5.1). */
static const char *ids_clash(const struct ns_info *a, const struct ns_info *b)
{
	if (!all_zero(a->uuid, 16) && memcmp(a->uuid, b->uuid, 16) == 0)
		return "UUID";
	if (!all_zero(a->nguid, 16) && memcmp(a->nguid, b->nguid, 16) == 0)
		return "NGUID";
	if (!all_zero(a->eui64, 8) && memcmp(a->eui64, b->eui64, 8) == 0)
		return "EUI-64";
	return NULL;
}

/* Under reg_lock: does a, namespace i of new, share an ID with a namespace
 * of a served subsystem, or with another namespace of new? */
static bool ns_ids_unique(const struct subsys *new, uint32_t i, const struct ns_info *a,
			  char *err, size_t errlen)
{
	for (const struct subsys *o = reg_head; o; o = o->next)
		for (uint32_t j = 1; j <= CFG_MAX_NAMESPACES; j++) {
			const char *what;

			if (!o->ns[j] || o == new)
				continue;
			what = ids_clash(a, ns_info(o->ns[j]));
			if (what) {
				snprintf(err, errlen,
					 "subsystem %s: namespace %u has the same %s as namespace %u of %s "
					 "(copied data directory? set a distinct uuid)",
					 new->nqn, i, what, j, o->nqn);
				return false;
			}
		}
	for (uint32_t j = 1; j <= CFG_MAX_NAMESPACES; j++) {
		const char *what;

		if (!new->ns[j] || j == i)
			continue;
		what = ids_clash(a, ns_info(new->ns[j]));
		if (what) {
			snprintf(err, errlen, "subsystem %s: namespaces %u and %u have the same %s",
				 new->nqn, i < j ? i : j, i < j ? j : i, what);
			return false;
		}
	}
	return true;
}

/* Under reg_lock: ns_ids_unique() for every namespace of new. */
static bool ids_unique(const struct subsys *new, char *err, size_t errlen)
{
	for (uint32_t i = 1; i <= CFG_MAX_NAMESPACES; i++)
		if (new->ns[i] && !ns_ids_unique(new, i, ns_info(new->ns[i]), err, errlen))
			return false;
	return true;
}

/* ---- registry ---- */

static bool is_discovery_nqn(const char *nqn)
{
	return strcmp(nqn, NVME_DISC_SUBSYS_NAME) == 0 || (disc && strcmp(nqn, disc->nqn) == 0);
}

static struct subsys *find_locked(const char *nqn)
{
	if (is_discovery_nqn(nqn))
		return disc;
	for (struct subsys *s = reg_head; s; s = s->next)
		if (strcmp(s->nqn, nqn) == 0)
			return s;
	return NULL;
}

/* Under reg_lock: the discovery log changed (NVMe-oF 1.1, 5.3). */
static void discovery_changed(void)
{
	genctr++;
	if (!disc)
		return;
	pthread_mutex_lock(&disc->lock);
	for (struct nvme_ctrl *c = disc->ctrls; c; c = c->next)
		nvme_ctrl_event(c, NVME_AER_NOTICE, NVME_AER_NOTICE_DISC_CHANGED, NVME_LOG_LID_DISCOVER,
				0, NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE,
				NVME_AEN_MASK_DISC_CHANGED);
	pthread_mutex_unlock(&disc->lock);
}

/*
 * Open one namespace of s with its own copy of c (the namespace keeps a
 * pointer to it), not yet active: *out, *nc_out. Nothing is created unless
 * ns_precheck() passed, and a first open that fails takes back what it
 * created. Its IDs must differ from every namespace served so far and from
 * s's others.
 */
static int open_one(struct subsys *s, const struct ns_config *c, bool format, struct ns **out,
		    struct ns_config **nc_out, char *err, size_t errlen)
{
	struct ns_config *nc;
	struct ns_fresh fresh;
	struct ns *ns;
	bool unique;

	if (c->nsid < 1 || c->nsid > CFG_MAX_NAMESPACES || s->ns[c->nsid])
		return errmsg(err, errlen, "namespace ID invalid or used twice");
	if (!(nc = malloc(sizeof(*nc))))
		return errmsg(err, errlen, "out of memory");
	*nc = *c;
	if (ns_precheck(nc, err, errlen) != 0)
		goto fail;
	ns_fresh_note(nc, &fresh);
	if (ns_open(nc, format, &ns, err, errlen) != 0) {
		ns_fresh_undo(nc, &fresh);
		goto fail;
	}
	pthread_mutex_lock(&reg_lock);
	unique = ns_ids_unique(s, nc->nsid, ns_info(ns), err, errlen);
	pthread_mutex_unlock(&reg_lock);
	if (!unique) {
		ns_close(ns);
		ns_fresh_undo(nc, &fresh);
		goto fail;
	}
	*out = ns;
	*nc_out = nc;
	return 0;
fail:
	free(nc);
	return -1;
}

/* Make ns (opened by open_one) active in s: readers on other threads see
 * it whole (subsys_ns). Under reg_lock once s is on the registry. */
static void publish_ns(struct subsys *s, struct ns *ns, struct ns_config *nc)
{
	const struct ns_info *info = ns_info(ns);

	/* Both read without a lock (subsys_ns, ana_ns_group). */
	__atomic_store_n(&s->ns_cfg[nc->nsid], nc, __ATOMIC_RELEASE);
	__atomic_store_n(&s->ns[nc->nsid], ns, __ATOMIC_RELEASE);
	s->nr_ns++;
	if (nc->nsid > s->max_nsid)
		s->max_nsid = nc->nsid;
	s->any_write_cache |= info->write_cache;
	if (info->zoned && (!s->zasl_bytes || info->zasl_bytes < s->zasl_bytes))
		s->zasl_bytes = info->zasl_bytes;
}

/*
 * Open the namespaces of sc. tolerant (start, power-up): one that cannot be
 * opened is logged and left out, and the others are served. Otherwise (a
 * subsystem added at run time) the first failure fails the whole add.
 */
static int open_namespaces(struct subsys *s, const struct subsys_config *sc, bool format,
			   bool tolerant, char *err, size_t errlen)
{
	for (int i = 0; i < sc->nr_ns; i++) {
		struct ns_config *nc;
		struct ns *ns;
		char why[1024];

		if (open_one(s, &sc->ns[i], format, &ns, &nc, why, sizeof(why)) == 0) {
			publish_ns(s, ns, nc);
			continue;
		}
		if (!tolerant) {
			snprintf(err, errlen, "subsystem %s: namespace %u: %s", s->nqn,
				 sc->ns[i].nsid, why);
			return -1;
		}
		log_error("%s: [namespace %u] of %s not served: %s", sc->file, sc->ns[i].nsid,
			  s->nqn, why);
	}
	if (tolerant && sc->nr_ns && !s->nr_ns)
		log_warn("subsystem %s: served without namespaces: none of its %d could be opened",
			 s->nqn, sc->nr_ns);
	return 0;
}

/*
 * Under reg_lock: does a namespace of sc live in a directory that a served
 * subsystem's namespace uses? Opening it twice would corrupt both (and a
 * format would erase the other's data). Subsystems still closing after a
 * removal are not on the list: wait for them first (subsys_wait_detached).
 */
static bool dir_in_use(const char *file, const struct ns_config *c, char *err, size_t errlen)
{
	for (const struct subsys *o = reg_head; o; o = o->next) {
		for (uint32_t j = 1; j <= CFG_MAX_NAMESPACES; j++)
			if (o->ns_cfg[j] && config_same_dir(c->path, o->ns_cfg[j]->path)) {
				snprintf(err, errlen, "%s: namespace %u: %s is the directory of "
					 "namespace %u of %s", file, c->nsid, c->path, j, o->nqn);
				return true;
			}
		for (const struct subsys_retired_ns *r = o->retired; r; r = r->next)
			if (config_same_dir(c->path, r->cfg->path)) {
				snprintf(err, errlen, "%s: namespace %u: %s is the directory of "
					 "namespace %u removed from %s while hosts were connected "
					 "(open until the subsystem is removed)", file, c->nsid,
					 c->path, r->cfg->nsid, o->nqn);
				return true;
			}
	}
	return false;
}

static bool path_in_use(const struct subsys_config *sc, char *err, size_t errlen)
{
	for (int i = 0; i < sc->nr_ns; i++)
		if (dir_in_use(sc->file, &sc->ns[i], err, errlen))
			return true;
	return false;
}

int subsys_dirs_check(const struct subsys_config *sc, char *err, size_t errlen)
{
	bool used;

	pthread_mutex_lock(&reg_lock);
	used = path_in_use(sc, err, errlen);
	pthread_mutex_unlock(&reg_lock);
	return used ? -1 : 0;
}

/* subsys_add(); tolerant: see open_namespaces(). */
static int add_subsys(const struct subsys_config *sc, bool format, bool tolerant, char *err,
		      size_t errlen)
{
	struct subsys *s;
	bool dup;

	if (!sc->nqn[0]) {
		snprintf(err, errlen, "%s: subsystem without an NQN", sc->file);
		return -1;
	}
	pthread_mutex_lock(&reg_lock);
	dup = find_locked(sc->nqn) != NULL;
	if (dup)
		snprintf(err, errlen, "%s: subsystem %s exists already%s", sc->file, sc->nqn,
			 is_discovery_nqn(sc->nqn) ? " (it is a discovery NQN)" : "");
	else
		dup = path_in_use(sc, err, errlen);
	pthread_mutex_unlock(&reg_lock);
	if (dup)
		return -1;

	s = subsys_new(sc->nqn);
	if (!s || !(s->hosts = hosts_new(sc))) {
		snprintf(err, errlen, "subsystem %s: out of memory", sc->nqn);
		if (s)
			subsys_free(s);
		return -1;
	}
	if (sc->serial[0])
		snprintf(s->serial, sizeof(s->serial), "%s", sc->serial);
	else /* stable across restarts, like the parser's default */
		snprintf(s->serial, sizeof(s->serial), "%08x", crc32c(sc->nqn, strlen(sc->nqn)));
	snprintf(s->model, sizeof(s->model), "%s", sc->model[0] ? sc->model : "znstgt");

	/* Opening may take long (format): not under the registry lock. */
	if (open_namespaces(s, sc, format, tolerant, err, errlen) != 0) {
		close_namespaces(s);
		subsys_free(s);
		return -1;
	}

	pthread_mutex_lock(&reg_lock);
	if (find_locked(sc->nqn)) {
		snprintf(err, errlen, "%s: subsystem %s exists already", sc->file, sc->nqn);
		dup = true;
	} else if (!ids_unique(s, err, errlen)) {
		dup = true;
	} else {
		struct subsys **tail = &reg_head;

		while (*tail)
			tail = &(*tail)->next;
		*tail = s;
		discovery_changed();
	}
	pthread_mutex_unlock(&reg_lock);
	if (dup) {
		close_namespaces(s);
		subsys_free(s);
		return -1;
	}
	log_info("subsystem %s: %d namespace(s), %s", s->nqn, s->nr_ns,
		 s->hosts->allow_any_host ? "any host" : "allow-listed hosts");
	return 0;
}

int subsys_add(const struct subsys_config *sc, bool format, char *err, size_t errlen)
{
	return add_subsys(sc, format, false, err, errlen);
}

/*
 * s is off the registry: no new controller may join it, the existing ones
 * are told to go, and the registry's reference goes. s counts as detached
 * until it is freed (its namespaces closed, or abandoned on a power cut).
 */
static void detach(struct subsys *s, bool power_cut, const char *why)
{
	struct nvme_ctrl **ctrls = NULL;
	int n = 0, cap = 0;

	pthread_mutex_lock(&close_lock);
	nr_detached++;
	pthread_mutex_unlock(&close_lock);
	s->detached = true;
	s->power_cut = power_cut;

	pthread_mutex_lock(&s->lock);
	s->removed = true;
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
		cap++;
	if (cap && (ctrls = calloc(cap, sizeof(*ctrls))))
		for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
			if (nvme_ctrl_tryget(c))
				ctrls[n++] = c;
	pthread_mutex_unlock(&s->lock);
	if (cap && !ctrls)
		log_error("subsystem %s: out of memory: its controllers stay until they go", s->nqn);
	for (int i = 0; i < n; i++) {
		nvme_ctrl_fatal(ctrls[i], why);
		nvme_ctrl_put(ctrls[i]);
	}
	free(ctrls);
	subsys_put(s);
}

int subsys_remove(const char *nqn, char *err, size_t errlen)
{
	struct subsys *s = NULL;

	pthread_mutex_lock(&reg_lock);
	for (struct subsys **p = &reg_head; *p; p = &(*p)->next)
		if (strcmp((*p)->nqn, nqn) == 0) {
			s = *p;
			*p = s->next;
			s->next = NULL;
			discovery_changed();
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	if (!s) {
		snprintf(err, errlen, "no subsystem %s", nqn);
		return -1;
	}
	log_info("subsystem %s: removed", nqn);
	detach(s, false, "subsystem removed");
	return 0;
}

bool subsys_wait_detached(double timeout_s)
{
	struct timespec deadline = deadline_after(timeout_s);
	int rc = 0;
	bool done;
	pthread_mutex_lock(&close_lock);
	while (nr_detached > 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&close_cond, &close_lock, &deadline);
	done = nr_detached == 0;
	pthread_mutex_unlock(&close_lock);
	return done;
}

/* ---- live changes (a reload) ---- */

/* An NVM subsystem on the registry, with a reference, or NULL and err. */
static struct subsys *find_nvm(const char *nqn, char *err, size_t errlen)
{
	struct subsys *s = subsys_find(nqn);

	if (s && !s->discovery)
		return s;
	if (s)
		subsys_put(s);
	snprintf(err, errlen, "no subsystem %s", nqn);
	return NULL;
}

/*
 * Under reg_lock: the link to the namespace of s that a reload removed
 * while hosts were connected and that c names again, unchanged: it is
 * still open, so it is made active again rather than opened twice. NULL
 * if there is none.
 */
static struct subsys_retired_ns **retired_same(struct subsys *s, const struct ns_config *c)
{
	for (struct subsys_retired_ns **r = &s->retired; *r; r = &(*r)->next)
		if ((*r)->cfg->nsid == c->nsid && !config_ns_key_changed((*r)->cfg, c))
			return r;
	return NULL;
}

/* Under reg_lock: whether c cannot be added to s live (err says why). */
static bool ns_add_refused(struct subsys *s, const struct ns_config *c, char *err,
			   size_t errlen)
{
	if (c->nsid < 1 || c->nsid > CFG_MAX_NAMESPACES || s->ns[c->nsid]) {
		snprintf(err, errlen, "namespace %u is already active", c->nsid);
		return true;
	}
	/* Identify Controller is read once per connection: VWC and ZASL must
	 * stay true for what hosts already read (NVMe Base 2.0, 5.17.2.1;
	 * ZNS 1.1, 4.1.1). */
	if (c->write_cache && !s->any_write_cache) {
		snprintf(err, errlen, "write_cache = yes: %s reports no volatile write cache to "
			 "the hosts connected (Identify VWC); restart the target to add it",
			 s->nqn);
		return true;
	}
	if (c->zoned && s->zasl_bytes && c->zone_append_max < s->zasl_bytes) {
		snprintf(err, errlen, "zone_append_max %u is below the Zone Append limit %u that "
			 "%s reports to the hosts connected (ZASL); restart the target to add it",
			 c->zone_append_max, s->zasl_bytes, s->nqn);
		return true;
	}
	return !retired_same(s, c) && dir_in_use(s->nqn, c, err, errlen);
}

int subsys_ns_add_check(const char *nqn, const struct ns_config *c, char *err, size_t errlen)
{
	struct subsys *s = find_nvm(nqn, err, errlen);
	bool refused, open;

	if (!s)
		return -1;
	pthread_mutex_lock(&reg_lock);
	refused = ns_add_refused(s, c, err, errlen);
	open = retired_same(s, c) != NULL;
	pthread_mutex_unlock(&reg_lock);
	subsys_put(s);
	return refused || (!open && ns_precheck(c, err, errlen) != 0) ? -1 : 0;
}

/* Under reg_lock: NSID of s changed; tell every controller of s. */
static void ns_changed_locked(struct subsys *s, uint32_t nsid)
{
	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
		nvme_ctrl_ns_changed(c, nsid);
	pthread_mutex_unlock(&s->lock);
}

int subsys_ns_add(const char *nqn, const struct ns_config *c, char *err, size_t errlen)
{
	struct subsys *s = find_nvm(nqn, err, errlen);
	struct subsys_retired_ns **link, *r = NULL;
	struct ns_config *nc;
	struct ns *ns;
	int rc = -1;

	if (!s || subsys_ns_add_check(nqn, c, err, errlen) != 0)
		goto out;
	pthread_mutex_lock(&reg_lock);
	link = retired_same(s, c);
	if (link) {
		r = *link;
		*link = r->next;
		publish_ns(s, r->ns, r->cfg);
		ns_changed_locked(s, c->nsid);
	}
	pthread_mutex_unlock(&reg_lock);
	if (r) {
		log_info("subsystem %s: namespace %u active again", s->nqn, c->nsid);
		free(r);
		rc = 0;
		goto out;
	}
	/* Opening blocks (a new namespace's files are made): not under a lock.
	 * Only the thread that reloads adds namespaces, so the NSID stays free. */
	if (open_one(s, c, false, &ns, &nc, err, errlen) == 0) {
		pthread_mutex_lock(&reg_lock);
		publish_ns(s, ns, nc);
		ns_changed_locked(s, nc->nsid);
		pthread_mutex_unlock(&reg_lock);
		log_info("subsystem %s: namespace %u added", s->nqn, nc->nsid);
		rc = 0;
	}
out:
	if (s)
		subsys_put(s);
	return rc;
}

int subsys_ns_remove(const char *nqn, uint32_t nsid, char *err, size_t errlen)
{
	struct subsys *s = find_nvm(nqn, err, errlen);
	struct subsys_retired_ns *r = calloc(1, sizeof(*r));
	struct ns_config *nc = NULL;
	struct ns *ns = NULL;
	bool connected;

	if (!s || !r) {
		if (s)
			snprintf(err, errlen, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&reg_lock);
	ns = subsys_ns(s, nsid);
	if (ns) {
		nc = s->ns_cfg[nsid];
		__atomic_store_n(&s->ns[nsid], NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&s->ns_cfg[nsid], NULL, __ATOMIC_RELEASE);
		s->nr_ns--;
		/* A command holds its namespace from its parse to its completion,
		 * and only a controller's queues send any: with none connected, no
		 * command can hold ns (new controllers see it inactive). */
		pthread_mutex_lock(&s->lock);
		connected = s->ctrls != NULL;
		pthread_mutex_unlock(&s->lock);
		if (connected) {
			*r = (struct subsys_retired_ns){ ns, nc, s->retired };
			s->retired = r;
			r = NULL;
			ns_changed_locked(s, nsid);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (!ns) {
		snprintf(err, errlen, "%s: namespace %u is not active", nqn, nsid);
		goto out;
	}
	if (r) { /* nobody connected: close it now (ns_close checkpoints) */
		ns_close(ns);
		free(nc);
	}
	log_info("subsystem %s: namespace %u removed%s", nqn, nsid,
		 r ? "" : " (kept open, inactive: controllers are connected)");
out:
	free(r);
	if (s)
		subsys_put(s);
	return ns ? 0 : -1;
}

int subsys_set_hosts(const char *nqn, const struct subsys_config *sc, char *err, size_t errlen)
{
	struct subsys *s = find_nvm(nqn, err, errlen);
	struct subsys_hosts *h, *old;

	if (!s)
		return -1;
	h = hosts_new(sc);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		subsys_put(s);
		return -1;
	}
	pthread_mutex_lock(&reg_lock);
	old = __atomic_exchange_n(&s->hosts, h, __ATOMIC_ACQ_REL);
	discovery_changed(); /* the log a host sees lists what it may reach */
	pthread_mutex_unlock(&reg_lock);
	/* Connect, authentication and TLS read the table within one worker
	 * callback: once every loop went past this point, none reads old. */
	if (workers_sync() != 0)
		log_warn("subsystem %s: previous host list kept in memory", s->nqn);
	else
		hosts_free(old);
	log_info("subsystem %s: hosts now %s, %d listed", s->nqn,
		 h->allow_any_host ? "any" : "allow-listed", h->nr_hosts);
	subsys_put(s);
	return 0;
}

/* What subsys_add needs to bring s back after a power cut: s as configured
 * (the namespaces' own configuration is kept in s->ns_cfg). */
static void restart_config(const struct subsys *s, struct subsys_config *sc)
{
	snprintf(sc->file, sizeof(sc->file), "(power-up of %s)", s->nqn);
	snprintf(sc->nqn, sizeof(sc->nqn), "%s", s->nqn);
	snprintf(sc->serial, sizeof(sc->serial), "%s", s->serial);
	snprintf(sc->model, sizeof(sc->model), "%s", s->model);
	sc->allow_any_host = s->hosts->allow_any_host;
	sc->require_tls = s->hosts->require_tls;
	sc->nr_hosts = s->hosts->nr_hosts;
	for (int i = 0; i < sc->nr_hosts; i++) {
		snprintf(sc->hosts[i], sizeof(sc->hosts[i]), "%s", s->hosts->hosts[i]);
		sc->host_auth[i] = s->hosts->auth[i];
	}
	for (uint32_t nsid = 1; nsid <= CFG_MAX_NAMESPACES; nsid++)
		if (s->ns_cfg[nsid])
			sc->ns[sc->nr_ns++] = *s->ns_cfg[nsid];
}

int subsys_power_cut(double timeout_s, char *err, size_t errlen)
{
	struct subsys_config *cfgs = NULL;
	struct subsys *list;
	int n = 0, back = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct subsys *s = reg_head; s; s = s->next)
		n++;
	/* Taken before the cut, so that running out of memory cuts nothing. */
	if (n && !(cfgs = calloc((size_t)n, sizeof(*cfgs)))) {
		pthread_mutex_unlock(&reg_lock);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	list = reg_head;
	reg_head = NULL;
	if (list)
		discovery_changed();
	pthread_mutex_unlock(&reg_lock);
	log_warn("power cut: %d subsystem(s) go down", n);

	n = 0;
	for (struct subsys *s = list, *next; s; s = next) {
		next = s->next;
		s->next = NULL;
		restart_config(s, &cfgs[n++]);
		detach(s, true, "power cut");
	}
	/* Power gone means every link gone, discovery controllers included. */
	nvme_sq_disconnect_all();
	if (!subsys_wait_detached(timeout_s)) {
		snprintf(err, errlen, "commands still running after %.0f s; the subsystems stay down",
			 timeout_s);
		for (int i = 0; i < n; i++)
			config_subsys_wipe(&cfgs[i]);
		free(cfgs);
		return -1;
	}

	err[0] = '\0';
	for (int i = 0; i < n; i++) {
		char why[512];

		if (add_subsys(&cfgs[i], false, true, why, sizeof(why)) == 0)
			back++;
		else if (!err[0])
			snprintf(err, errlen, "%s", why);
	}
	for (int i = 0; i < n; i++)
		config_subsys_wipe(&cfgs[i]);
	free(cfgs);
	log_warn("power cut: %d of %d subsystem(s) powered up again", back, n);
	return err[0] ? -1 : back;
}

int subsys_registry_init(const struct target_config *cfg, bool format, char *err, size_t errlen)
{
	const char *dnqn = cfg->discovery_nqn[0] ? cfg->discovery_nqn : NVME_DISC_SUBSYS_NAME;
	int configured = 0, served = 0;

	if (cfg->max_controllers)
		max_ctrls = cfg->max_controllers;
	if (cfg->max_host_connections)
		max_host_queues = cfg->max_host_connections;

	disc = subsys_new(dnqn);
	if (!disc) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	disc->discovery = true;
	disc->hosts = calloc(1, sizeof(*disc->hosts));
	if (!disc->hosts) {
		subsys_free(disc);
		disc = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	disc->hosts->allow_any_host = true;
	/* A stable serial number of our own for the discovery controller. */
	snprintf(disc->serial, sizeof(disc->serial), "%08x", crc32c(dnqn, strlen(dnqn)));
	snprintf(disc->model, sizeof(disc->model), "znstgt discovery");

	/* One namespace or subsystem that cannot be served never stops the
	 * others: each is logged and left out. */
	for (int i = 0; i < cfg->nr_subsys; i++) {
		char why[1024];

		configured += cfg->subsys[i].nr_ns;
		if (add_subsys(&cfg->subsys[i], format, true, why, sizeof(why)) != 0)
			log_error("%s: subsystem %s not served: %s", cfg->subsys[i].file,
				  cfg->subsys[i].nqn, why);
	}
	pthread_mutex_lock(&reg_lock);
	for (const struct subsys *s = reg_head; s; s = s->next)
		served += s->nr_ns;
	pthread_mutex_unlock(&reg_lock);
	if (configured && !served) {
		snprintf(err, errlen, "none of the %d configured namespace(s) can be served", configured);
		subsys_registry_destroy();
		return -1;
	}
	return 0;
}

void subsys_registry_destroy(void)
{
	struct subsys *list, *d;

	pthread_mutex_lock(&reg_lock);
	list = reg_head;
	reg_head = NULL;
	d = disc;
	disc = NULL;
	pthread_mutex_unlock(&reg_lock);

	while (list) {
		struct subsys *s = list;

		list = s->next;
		pthread_mutex_lock(&s->lock);
		s->removed = true;
		pthread_mutex_unlock(&s->lock);
		subsys_put(s);
	}
	if (d)
		subsys_put(d);

	pthread_mutex_lock(&close_lock);
	while (pending_closes > 0)
		pthread_cond_wait(&close_cond, &close_lock);
	pthread_mutex_unlock(&close_lock);
}

struct subsys *subsys_find(const char *nqn)
{
	struct subsys *s;

	pthread_mutex_lock(&reg_lock);
	s = find_locked(nqn);
	if (s)
		subsys_get(s);
	pthread_mutex_unlock(&reg_lock);
	return s;
}

bool subsys_host_allowed(const struct subsys *s, const char *hostnqn)
{
	const struct subsys_hosts *h = hosts_of(s);

	if (h->allow_any_host)
		return true;
	for (int i = 0; i < h->nr_hosts; i++)
		if (strcmp(h->hosts[i], hostnqn) == 0)
			return true;
	return false;
}

bool subsys_requires_tls(const struct subsys *s)
{
	return hosts_of(s)->require_tls;
}

const struct host_auth_config *subsys_host_auth(const struct subsys *s, const char *hostnqn)
{
	const struct subsys_hosts *h = hosts_of(s);

	for (int i = 0; i < h->nr_hosts; i++)
		if (strcmp(h->hosts[i], hostnqn) == 0)
			return &h->auth[i];
	return NULL;
}

void subsys_count_io(struct subsys *s, bool write, uint64_t len)
{
	if (write) {
		atomic_fetch_add_explicit(&s->host_writes, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->bytes_written, len, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&s->host_reads, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->bytes_read, len, memory_order_relaxed);
	}
}

/* ---- limits ---- */

/* Under s->lock: the controllers of s not being torn down. */
static uint32_t live_ctrls(const struct subsys *s, const char *hostnqn, uint32_t *queues)
{
	uint32_t n = 0;

	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next) {
		if (atomic_load(&c->dead))
			continue;
		n++;
		if (!hostnqn || strcmp(c->hostnqn, hostnqn) != 0)
			continue;
		pthread_mutex_lock(&c->lock);
		for (uint32_t q = 0; q <= NVME_MAX_IO_QUEUES; q++)
			*queues += c->sqs[q] != NULL;
		pthread_mutex_unlock(&c->lock);
	}
	return n;
}

bool subsys_may_add_ctrl(struct subsys *s, const char *hostnqn)
{
	uint32_t n, q = 0;

	pthread_mutex_lock(&s->lock);
	n = live_ctrls(s, NULL, &q);
	pthread_mutex_unlock(&s->lock);
	if (n < max_ctrls)
		return true;
	log_warn("connect from %s to %s refused: %u controllers, max_controllers reached", hostnqn,
		 s->nqn, n);
	return false;
}

bool subsys_may_add_host_queue(const char *hostnqn)
{
	uint32_t q = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct subsys *s = reg_head; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		live_ctrls(s, hostnqn, &q);
		pthread_mutex_unlock(&s->lock);
	}
	if (disc) {
		pthread_mutex_lock(&disc->lock);
		live_ctrls(disc, hostnqn, &q);
		pthread_mutex_unlock(&disc->lock);
	}
	pthread_mutex_unlock(&reg_lock);
	if (q < max_host_queues)
		return true;
	log_warn("connect from %s refused: %u queues of that host connected, "
		 "max_connections_per_host reached", hostnqn, q);
	return false;
}

/* ---- discovery ---- */

const char *subsys_discovery_nqn(void)
{
	return disc ? disc->nqn : NVME_DISC_SUBSYS_NAME;
}

uint64_t subsys_for_each_allowed(const char *hostnqn,
				 void (*fn)(void *arg, const struct subsys *s), void *arg)
{
	uint64_t g;

	pthread_mutex_lock(&reg_lock);
	for (const struct subsys *s = reg_head; s; s = s->next)
		if (subsys_host_allowed(s, hostnqn))
			fn(arg, s);
	g = genctr;
	pthread_mutex_unlock(&reg_lock);
	return g;
}

uint64_t subsys_discovery_genctr(void)
{
	uint64_t g;

	pthread_mutex_lock(&reg_lock);
	g = genctr;
	pthread_mutex_unlock(&reg_lock);
	return g;
}

void subsys_for_each(void (*fn)(void *arg, struct subsys *s), void *arg)
{
	pthread_mutex_lock(&reg_lock);
	for (struct subsys *s = reg_head; s; s = s->next)
		fn(arg, s);
	if (disc)
		fn(arg, disc);
	pthread_mutex_unlock(&reg_lock);
}

/* ---- events ---- */

enum ns_event { NS_EVENT_CHANGED, NS_EVENT_ZONES };

/* ZNS 1.1, 5.5: DW1 of the completion names the namespace. */
static void zone_notice(struct nvme_ctrl *ctrl, uint32_t nsid)
{
	nvme_ctrl_event(ctrl, NVME_AER_NOTICE, NVME_AER_NOTICE_ZONE_DESCR_CHANGED,
			NVME_LOG_LID_ZNS_CHANGED_ZONES, nsid, NVME_CTRL_OAES_ZD,
			NVME_AEN_MASK_ZONE_CHANGED);
}

static void ns_event(struct ns *ns, enum ns_event ev)
{
	if (!ns)
		return;
	pthread_mutex_lock(&reg_lock);
	for (struct subsys *s = reg_head; s; s = s->next)
		for (uint32_t nsid = 1; nsid <= CFG_MAX_NAMESPACES; nsid++) {
			if (s->ns[nsid] != ns)
				continue;
			pthread_mutex_lock(&s->lock);
			for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
				if (ev == NS_EVENT_CHANGED)
					nvme_ctrl_ns_changed(c, nsid);
				else
					zone_notice(c, nsid);
			pthread_mutex_unlock(&s->lock);
		}
	pthread_mutex_unlock(&reg_lock);
}

void subsys_ns_changed(struct ns *ns)
{
	ns_event(ns, NS_EVENT_CHANGED);
}

void subsys_zone_desc_changed(struct ns *ns)
{
	ns_event(ns, NS_EVENT_ZONES);
}

void subsys_report_changed_zones(struct nvme_ctrl *ctrl)
{
	const struct subsys *s = ctrl->subsys;

	/* A namespace stays open while ctrl holds its subsystem: one a reload
	 * removes meanwhile is only made inactive (subsys_ns_remove). */
	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++)
		if (subsys_ns(s, nsid) &&
		    ns_has_changed_zones(subsys_ns(s, nsid), ctrl->zones_seen[nsid])) {
			zone_notice(ctrl, nsid);
			return;
		}
}
