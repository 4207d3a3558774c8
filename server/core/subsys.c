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

static void subsys_free(struct subsys *s)
{
	bool detached = s->detached;

	free(s->ns_cfg);
	free(s->hosts);
	if (s->host_auth)
		OPENSSL_cleanse(s->host_auth, (size_t)s->nr_hosts * sizeof(*s->host_auth));
	free(s->host_auth);
	pthread_mutex_destroy(&s->lock);
	free(s);
	if (detached) {
		pthread_mutex_lock(&close_lock);
		nr_detached--;
		pthread_cond_broadcast(&close_cond);
		pthread_mutex_unlock(&close_lock);
	}
}

static void close_namespaces(struct subsys *s)
{
	for (uint32_t nsid = 1; nsid <= CFG_MAX_NAMESPACES; nsid++)
		if (s->ns[nsid]) {
			if (s->power_cut)
				ns_abandon(s->ns[nsid]);
			else
				ns_close(s->ns[nsid]);
			s->ns[nsid] = NULL;
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
		io_submit_job(&cj->job);
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

/* Under reg_lock: does namespace i of new share an ID with a namespace of a
 * served subsystem, or with another namespace of new (not yet on the list)? */
static bool ns_ids_unique(const struct subsys *new, uint32_t i, char *err, size_t errlen)
{
	const struct ns_info *a = ns_info(new->ns[i]);

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
		if (new->ns[i] && !ns_ids_unique(new, i, err, errlen))
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
 * Open one namespace into the next free slot of s->ns_cfg (the namespace
 * keeps a pointer to it). Nothing is created unless ns_precheck() passed, and
 * a first open that fails takes back what it created. Its IDs must differ
 * from every namespace served so far and from s's others.
 */
static int open_one(struct subsys *s, const struct ns_config *c, bool format, char *err,
		    size_t errlen)
{
	struct ns_config *nc = &s->ns_cfg[s->nr_ns];
	const struct ns_info *info;
	struct ns_fresh fresh;
	struct ns *ns;
	bool unique;

	*nc = *c;
	if (nc->nsid < 1 || nc->nsid > CFG_MAX_NAMESPACES || s->ns[nc->nsid])
		return errmsg(err, errlen, "namespace ID invalid or used twice");
	if (ns_precheck(nc, err, errlen) != 0)
		return -1;
	ns_fresh_note(nc, &fresh);
	if (ns_open(nc, format, &ns, err, errlen) != 0) {
		ns_fresh_undo(nc, &fresh);
		return -1;
	}
	s->ns[nc->nsid] = ns;
	pthread_mutex_lock(&reg_lock);
	unique = ns_ids_unique(s, nc->nsid, err, errlen);
	pthread_mutex_unlock(&reg_lock);
	if (!unique) {
		s->ns[nc->nsid] = NULL;
		ns_close(ns);
		ns_fresh_undo(nc, &fresh);
		return -1;
	}
	s->nr_ns++;
	info = ns_info(ns);
	if (nc->nsid > s->max_nsid)
		s->max_nsid = nc->nsid;
	s->any_write_cache |= info->write_cache;
	if (info->zoned && (!s->zasl_bytes || info->zasl_bytes < s->zasl_bytes))
		s->zasl_bytes = info->zasl_bytes;
	return 0;
}

/*
 * Open the namespaces of sc. tolerant (start, power-up): one that cannot be
 * opened is logged and left out, and the others are served. Otherwise (a
 * subsystem added at run time) the first failure fails the whole add.
 */
static int open_namespaces(struct subsys *s, const struct subsys_config *sc, bool format,
			   bool tolerant, char *err, size_t errlen)
{
	/* The namespaces keep pointers to their configuration: keep a copy
	 * that lives as long as they do. */
	if (sc->nr_ns && !(s->ns_cfg = calloc(sc->nr_ns, sizeof(*s->ns_cfg)))) {
		snprintf(err, errlen, "subsystem %s: out of memory", s->nqn);
		return -1;
	}
	for (int i = 0; i < sc->nr_ns; i++) {
		char why[1024];

		if (open_one(s, &sc->ns[i], format, why, sizeof(why)) == 0)
			continue;
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
static bool same_dir(const char *a, const char *b)
{
	char ka[PATH_MAX], kb[PATH_MAX];

	if (config_path_key(a, ka, sizeof(ka)) || config_path_key(b, kb, sizeof(kb)))
		return strcmp(a, b) == 0;
	return strcmp(ka, kb) == 0;
}

static bool path_in_use(const struct subsys_config *sc, char *err, size_t errlen)
{
	for (const struct subsys *o = reg_head; o; o = o->next)
		for (int j = 0; j < o->nr_ns; j++)
			for (int i = 0; i < sc->nr_ns; i++)
				if (same_dir(sc->ns[i].path, o->ns_cfg[j].path)) {
					snprintf(err, errlen, "%s: namespace %u: %s is the directory of "
						 "namespace %u of %s", sc->file, sc->ns[i].nsid,
						 sc->ns[i].path, o->ns_cfg[j].nsid, o->nqn);
					return true;
				}
	return false;
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
	if (!s || (sc->nr_hosts && (!(s->hosts = calloc(sc->nr_hosts, sizeof(*s->hosts))) ||
				    !(s->host_auth = calloc(sc->nr_hosts,
							    sizeof(*s->host_auth)))))) {
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
	s->allow_any_host = sc->allow_any_host;
	s->nr_hosts = sc->nr_hosts;
	for (int i = 0; i < sc->nr_hosts; i++) {
		snprintf(s->hosts[i], sizeof(s->hosts[i]), "%s", sc->hosts[i]);
		s->host_auth[i] = sc->host_auth[i];
	}

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
		 s->allow_any_host ? "any host" : "allow-listed hosts");
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

/* What subsys_add needs to bring s back after a power cut: s as configured
 * (the namespaces' own configuration is kept in s->ns_cfg). */
static void restart_config(const struct subsys *s, struct subsys_config *sc)
{
	snprintf(sc->file, sizeof(sc->file), "(power-up of %s)", s->nqn);
	snprintf(sc->nqn, sizeof(sc->nqn), "%s", s->nqn);
	snprintf(sc->serial, sizeof(sc->serial), "%s", s->serial);
	snprintf(sc->model, sizeof(sc->model), "%s", s->model);
	sc->allow_any_host = s->allow_any_host;
	sc->nr_hosts = s->nr_hosts;
	for (int i = 0; i < s->nr_hosts; i++) {
		snprintf(sc->hosts[i], sizeof(sc->hosts[i]), "%s", s->hosts[i]);
		sc->host_auth[i] = s->host_auth[i];
	}
	sc->nr_ns = s->nr_ns;
	for (int i = 0; i < s->nr_ns; i++)
		sc->ns[i] = s->ns_cfg[i];
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
	disc->allow_any_host = true;
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
	if (s->allow_any_host)
		return true;
	for (int i = 0; i < s->nr_hosts; i++)
		if (strcmp(s->hosts[i], hostnqn) == 0)
			return true;
	return false;
}

const struct host_auth_config *subsys_host_auth(const struct subsys *s, const char *hostnqn)
{
	for (int i = 0; i < s->nr_hosts; i++)
		if (strcmp(s->hosts[i], hostnqn) == 0)
			return &s->host_auth[i];
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

	/* The namespaces stay as they are while ctrl holds its subsystem. */
	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++)
		if (s->ns[nsid] && ns_has_changed_zones(s->ns[nsid], ctrl->zones_seen[nsid])) {
			zone_notice(ctrl, nsid);
			return;
		}
}
