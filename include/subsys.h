/*
 * The subsystem registry (NVMe Base 2.0, 1.5 "NVM subsystem"): every NVM
 * subsystem of the configuration with its namespaces and host allow-list,
 * plus the discovery subsystem, reachable under the well-known discovery NQN
 * and under the configured unique discovery NQN.
 *
 * Subsystems can be added and removed while the target runs (the blktests
 * hook sets one up per test). Removing one disconnects its controllers; its
 * namespaces are closed when the last controller is gone. Lookups return a
 * reference; the registry's own reference goes at removal.
 *
 * Namespace identifiers (UUID, NGUID, EUI-64) are checked to be unique across
 * every subsystem: a Linux host ignores namespaces whose IDs collide.
 */
#ifndef ZNSTGT_SUBSYS_H
#define ZNSTGT_SUBSYS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct ns;
struct nvme_ctrl;

/*
 * Who may connect and what each host must prove: replaced as a whole when a
 * reload changes it (subsys_set_hosts), so a reader on a worker loop sees
 * one table or the other, never a mix.
 */
struct subsys_hosts {
	bool allow_any_host;
	bool require_tls;                      /* [subsystem] require_tls */
	int nr_hosts;
	char (*hosts)[CFG_NQN_MAX];
	struct host_auth_config *auth;         /* by index in hosts; wiped when freed */
};

/* A namespace removed by a reload while controllers were connected: a
 * command of theirs may still hold it, so it is closed with the subsystem. */
struct subsys_retired_ns {
	struct ns *ns;
	struct ns_config *cfg;
	struct subsys_retired_ns *next;
};

struct subsys {
	char nqn[CFG_NQN_MAX];
	char serial[21];
	char model[41];
	bool discovery;
	struct subsys_hosts *hosts;            /* swapped by a reload: load it atomically */

	struct ns *ns[CFG_MAX_NAMESPACES + 1]; /* by NSID; NULL = inactive */
	struct ns_config *ns_cfg[CFG_MAX_NAMESPACES + 1]; /* by NSID, ours: ns_open keeps
							   * a pointer to it */
	struct subsys_retired_ns *retired;     /* under reg_lock */
	uint32_t max_nsid;                     /* Identify NN */
	int nr_ns;
	bool any_write_cache;                  /* Identify VWC */
	uint32_t zasl_bytes;                   /* smallest Zone Append limit, 0: no zoned ns */

	atomic_int refs;
	bool removed;
	bool detached;                         /* off the registry, counted until freed */
	bool power_cut;                        /* namespaces go with ns_abandon, not ns_close */
	pthread_mutex_t lock;                  /* ctrls, next_cntlid */
	struct nvme_ctrl *ctrls;
	uint16_t next_cntlid;

	/* SMART / Health counters (NVMe Base 2.0, 5.16.1.3). */
	atomic_uint_least64_t bytes_read, bytes_written, host_reads, host_writes;

	struct subsys *next;                   /* registry list */
};

/*
 * Build the registry from cfg: open every namespace (ns_open, format as
 * given). A namespace that cannot be opened is logged (file, section,
 * reason) and left out, the others are served; a subsystem whose namespaces
 * all failed is served without namespaces (as Linux nvmet serves one whose
 * namespaces could not be enabled). Returns -1 with a message, nothing left
 * open, when the configuration names namespaces and none could be opened.
 * The same rule holds when the subsystems come back after a power cut.
 */
int subsys_registry_init(const struct target_config *cfg, bool format, char *err, size_t errlen);
/*
 * Drop every subsystem and close its namespaces (ns_close checkpoints).
 * Call after every queue is gone; waits for closes still running on I/O
 * threads for subsystems removed earlier.
 */
void subsys_registry_destroy(void);

/* Add one subsystem at run time (opens its namespaces). -1 + err on error. */
int subsys_add(const struct subsys_config *sc, bool format, char *err, size_t errlen);
/* Remove one: disconnect its controllers, close its namespaces when they
 * are gone. -1 + err if there is no such subsystem. */
int subsys_remove(const char *nqn, char *err, size_t errlen);
/* Whether subsys_add(sc) would find a namespace directory of sc in use by
 * a served (or removed but still open) namespace: -1 + err. Changes nothing. */
int subsys_dirs_check(const struct subsys_config *sc, char *err, size_t errlen);
/*
 * Changes a reload makes to a served subsystem (server/reload.c). Each takes
 * the subsystem's NQN and returns -1 with the reason in err.
 *
 * subsys_ns_add_check: whether the namespace c could be added live: its
 * NSID free, its directory used by no other namespace, its files as
 * ns_precheck() wants them, and nothing connected hosts read once in
 * Identify Controller made untrue (a volatile write cache where VWC says
 * none, a Zone Append limit below ZASL). Changes nothing.
 * subsys_ns_add: open c and make it active; every controller gets the
 * Namespace Attribute Changed notice and the Changed Namespace List entry
 * (NVMe Base 2.0, 5.16.1.5).
 * subsys_ns_remove: make NSID inactive, with the same notice. Closed at
 * once when no controller is connected, else when the subsystem goes.
 * subsys_set_hosts: allow_any_host, the host list and the [host] keys of
 * sc; connections made before keep going, new ones meet the new rules.
 */
int subsys_ns_add_check(const char *nqn, const struct ns_config *c, char *err, size_t errlen);
int subsys_ns_add(const char *nqn, const struct ns_config *c, char *err, size_t errlen);
int subsys_ns_remove(const char *nqn, uint32_t nsid, char *err, size_t errlen);
int subsys_set_hosts(const char *nqn, const struct subsys_config *sc, char *err, size_t errlen);

/* Wait until every subsystem removed (or power cut) so far has closed its
 * namespaces, so that their files may be reused. False on timeout. */
bool subsys_wait_detached(double timeout_s);

/*
 * Power-cut simulation (doc/power-cut.md): take every NVM subsystem off the
 * registry and drop every connection; once the commands in flight have
 * drained (up to timeout_s), abandon the namespaces (ns_abandon: whatever
 * was not durable is lost) and add the subsystems again from their
 * configuration, as at power-up. Returns the number of subsystems back, or
 * -1 with err when one could not come back (the others are back).
 */
int subsys_power_cut(double timeout_s, char *err, size_t errlen);

/* NQN -> subsystem with a reference (the discovery NQNs included). */
struct subsys *subsys_find(const char *nqn);
void subsys_get(struct subsys *s);
void subsys_put(struct subsys *s);

bool subsys_host_allowed(const struct subsys *s, const char *hostnqn);
struct nvme_tls_psk;
/*
 * The TLS PSK for a PSK identity "NVMe<v>R<hh> <host NQN> <subsystem NQN>
 * [<digest>]" (tls_psk.c): 0 and *out when the subsystem gives that host a
 * psk whose derived identity is exactly this one, else -1.
 */
int subsys_tls_psk_find(const char *identity, struct nvme_tls_psk *out);
/* [subsystem] require_tls: only queues that came in over TLS may connect. */
bool subsys_requires_tls(const struct subsys *s);
struct nvme_sq;
/*
 * A Connect (admin or I/O) on sq to s that require_tls refuses: sq is not
 * a TLS queue (tls_psk.c). The caller answers as for a subsystem the port
 * does not offer. Logs the refusal.
 */
bool nvme_sq_tls_refused(const struct nvme_sq *sq, const struct subsys *s, const char *hostnqn);
/* What hostnqn must prove to s ([host NQN] section), NULL if nothing. */
const struct host_auth_config *subsys_host_auth(const struct subsys *s, const char *hostnqn);

/* A reload publishes and withdraws namespaces while commands run. */
static inline struct ns *subsys_ns(const struct subsys *s, uint32_t nsid)
{
	return nsid >= 1 && nsid <= CFG_MAX_NAMESPACES ?
		       __atomic_load_n(&s->ns[nsid], __ATOMIC_ACQUIRE) : NULL;
}

/*
 * Connect-time limits (max_controllers, max_connections_per_host), each with
 * a log line when refused. Whether s may get one more controller (those
 * being torn down do not count), and whether hostnqn may connect one more
 * queue (admin or I/O, any subsystem, discovery included). The caller
 * serialises check and creation (fabrics.c), so the bounds are exact.
 */
bool subsys_may_add_ctrl(struct subsys *s, const char *hostnqn);
bool subsys_may_add_host_queue(const char *hostnqn);

/* SMART counters: one finished read or write of len bytes. */
void subsys_count_io(struct subsys *s, bool write, uint64_t len);

/*
 * Call fn for every subsystem, the discovery subsystem last, under the
 * registry lock: fn may take s->lock and then a controller's lock (the lock
 * order), and must not call back into the registry. For status reports.
 */
void subsys_for_each(void (*fn)(void *arg, struct subsys *s), void *arg);

/* ---- discovery ---- */

/* The configured discovery NQN (entry 0 of the discovery log). */
const char *subsys_discovery_nqn(void);
/*
 * Call fn for every NVM subsystem hostnqn may connect to, under the registry
 * lock, in registry order. Returns the generation counter of that snapshot.
 */
uint64_t subsys_for_each_allowed(const char *hostnqn,
				 void (*fn)(void *arg, const struct subsys *s), void *arg);
/* The discovery log's generation counter now. */
uint64_t subsys_discovery_genctr(void);

/* ---- events (any thread; the zone engine may call these) ---- */

/* ns changed (capacity, attributes): Namespace Attribute Changed notice
 * and Changed Namespace List entry on every controller that sees it. */
void subsys_ns_changed(struct ns *ns);
/* Zone descriptors of ns changed (zones taken offline / read-only): Zone
 * Descriptor Changed notice (log BFh lists them: ns_changed_zones). */
void subsys_zone_desc_changed(struct ns *ns);
/* The same notice to ctrl alone, for the first namespace of its subsystem
 * whose Changed Zone List is not empty: the zones changed at power-up, before
 * any host could listen. Called when the host enables the notice and after
 * it read log BFh (the notice is masked until then: one at a time). */
void subsys_report_changed_zones(struct nvme_ctrl *ctrl);

#endif
