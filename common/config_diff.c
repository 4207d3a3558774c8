/*
 * The difference between a running configuration and a reloaded one
 * (config_diff.h). Subsystems are matched by NQN, namespaces by NSID and
 * hosts by NQN; the file a subsystem was read from may change freely.
 */
#include "config_diff.h"

#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

#define RESTART "cannot change while the target runs (restart it to apply)"

/* ---- [target] ---- */

static bool has_listener(const struct listener_config *list, int nr,
			 const struct listener_config *l)
{
	for (int i = 0; i < nr; i++)
		if (strcmp(list[i].addr, l->addr) == 0 && strcmp(list[i].port, l->port) == 0)
			return true;
	return false;
}

/* The same addresses, in any order (the parser refuses duplicates). */
static bool same_listeners(const struct listener_config *a, int nr_a,
			   const struct listener_config *b, int nr_b)
{
	if (nr_a != nr_b)
		return false;
	for (int i = 0; i < nr_a; i++)
		if (!has_listener(b, nr_b, &a[i]))
			return false;
	return true;
}

/* The first [target] key that differs and cannot change live, or NULL.
 * The listeners are bound before the workers start and the workers' number
 * is fixed (main.c); the rest shape what is already served. */
static const char *target_key_changed(const struct target_config *a,
				      const struct target_config *b)
{
	if (!same_listeners(a->listeners, a->nr_listeners, b->listeners, b->nr_listeners))
		return "listen";
	if (!same_listeners(a->tls_listeners, a->nr_tls_listeners, b->tls_listeners,
			    b->nr_tls_listeners))
		return "tls_listen";
	if (a->threads != b->threads)
		return "threads";
	if (a->io_threads != b->io_threads)
		return "io_threads";
	if (a->poll != b->poll)
		return "poll";
	if (strcmp(a->data_dir, b->data_dir) != 0)
		return "data_dir";
	if (strcmp(a->discovery_nqn, b->discovery_nqn) != 0)
		return "discovery_nqn";
	if (strcmp(a->control_socket, b->control_socket) != 0)
		return "control_socket";
	if (a->max_connections != b->max_connections)
		return "max_connections";
	if (a->max_host_connections != b->max_host_connections)
		return "max_connections_per_host";
	if (a->max_controllers != b->max_controllers)
		return "max_controllers";
	if (!cfg_ana_same(a, b))
		return "ana_state"; /* live, the states are `znstgt-ctl ana set`'s business */
	return NULL;
}

/* ---- [namespace N] ---- */

static bool same_zone_set(uint32_t count_a, const uint32_t *list_a, uint32_t len_a,
			  uint32_t count_b, const uint32_t *list_b, uint32_t len_b)
{
	return count_a == count_b && len_a == len_b &&
	       memcmp(list_a, list_b, len_a * sizeof(*list_a)) == 0;
}

/* Each key is part of what the namespace's files were made with or what a
 * connected host read in Identify, so none changes under it. */
_Static_assert(CFG_NR_NS_KEYS == 21, "a new [namespace N] key: compare it here");
const char *config_ns_key_changed(const struct ns_config *a, const struct ns_config *b)
{
	if (!config_same_dir(a->path, b->path))
		return "path";
	if (a->size != b->size)
		return "size";
	if (a->lba_size != b->lba_size)
		return "lba_size";
	if (a->zoned != b->zoned)
		return "zoned";
	if (a->zone_size != b->zone_size)
		return "zone_size";
	if (a->zone_capacity != b->zone_capacity)
		return "zone_capacity";
	if (a->max_open != b->max_open)
		return "max_open";
	if (a->max_active != b->max_active)
		return "max_active";
	if (a->zone_append_max != b->zone_append_max)
		return "zone_append_max";
	if (a->zde_size != b->zde_size)
		return "zde_size";
	if (a->cross_zone_read != b->cross_zone_read)
		return "cross_zone_read";
	if (a->write_cache != b->write_cache)
		return "write_cache";
	if (a->preallocate != b->preallocate)
		return "preallocate";
	if (!same_zone_set(a->offline_count, a->offline_list, a->offline_list_len,
			   b->offline_count, b->offline_list, b->offline_list_len))
		return "offline_zones";
	if (!same_zone_set(a->readonly_count, a->readonly_list, a->readonly_list_len,
			   b->readonly_count, b->readonly_list, b->readonly_list_len))
		return "read_only_zones";
	if (a->journal_size != b->journal_size)
		return "journal_size";
	if (a->have_uuid != b->have_uuid || memcmp(a->uuid, b->uuid, sizeof(a->uuid)) != 0)
		return "uuid";
	if (a->zrwa_size != b->zrwa_size)
		return "zrwa_size";
	if (a->zrwa_flush_granularity != b->zrwa_flush_granularity)
		return "zrwa_flush_granularity";
	if (a->zrwa_resources != b->zrwa_resources)
		return "zrwa_resources";
	if (a->ana_group != b->ana_group)
		return "ana_group";
	return NULL;
}

static const struct ns_config *find_ns(const struct subsys_config *sc, uint32_t nsid)
{
	for (int i = 0; i < sc->nr_ns; i++)
		if (sc->ns[i].nsid == nsid)
			return &sc->ns[i];
	return NULL;
}

/* ---- hosts ---- */

static bool same_secret(const struct nvme_secret *a, const struct nvme_secret *b)
{
	return a->kind == b->kind && a->hash == b->hash && a->len == b->len &&
	       memcmp(a->key, b->key, a->len) == 0;
}

static bool same_host_auth(const struct host_auth_config *a, const struct host_auth_config *b)
{
	return a->section == b->section && a->listed == b->listed &&
	       same_secret(&a->dhchap_secret, &b->dhchap_secret) &&
	       same_secret(&a->dhchap_ctrl_secret, &b->dhchap_ctrl_secret) &&
	       same_secret(&a->psk, &b->psk) && a->dhchap_hashes == b->dhchap_hashes &&
	       a->dhchap_dhgroups == b->dhchap_dhgroups;
}

/* The same hosts (in any order) with the same keys, and the same
 * require_tls (who may connect, and how: subsys_set_hosts). */
static bool same_hosts(const struct subsys_config *a, const struct subsys_config *b)
{
	if (a->allow_any_host != b->allow_any_host || a->require_tls != b->require_tls ||
	    a->nr_hosts != b->nr_hosts)
		return false;
	for (int i = 0; i < a->nr_hosts; i++) {
		int j = 0;

		while (j < b->nr_hosts && strcmp(a->hosts[i], b->hosts[j]) != 0)
			j++;
		if (j == b->nr_hosts || !same_host_auth(&a->host_auth[i], &b->host_auth[j]))
			return false;
	}
	return true;
}

/* ---- subsystems ---- */

static int find_subsys(const struct target_config *cfg, const char *nqn)
{
	for (int i = 0; i < cfg->nr_subsys; i++)
		if (strcmp(cfg->subsys[i].nqn, nqn) == 0)
			return i;
	return -1;
}

/* A subsystem in both: what changed, or -1 with err when something that
 * cannot change did. */
static int diff_subsys(const struct subsys_config *a, const struct subsys_config *b,
		       struct subsys_diff *sd, char *err, size_t errlen)
{
	if (strcmp(a->serial, b->serial) != 0 || strcmp(a->model, b->model) != 0) {
		cfg_error_at(err, errlen, b->file, "subsystem", strcmp(a->serial, b->serial) ?
			     "serial" : "model", "%s: " RESTART " (hosts read it in Identify)",
			     b->nqn);
		return -1;
	}
	if (strcmp(a->vfio_user_socket, b->vfio_user_socket) != 0) {
		cfg_error_at(err, errlen, b->file, "vfio-user", "socket", "%s: " RESTART, b->nqn);
		return -1;
	}
	if (a->vfio_user_msg_doorbells != b->vfio_user_msg_doorbells) {
		cfg_error_at(err, errlen, b->file, "vfio-user", "doorbells", "%s: " RESTART, b->nqn);
		return -1;
	}
	for (int i = 0; i < b->nr_ns; i++) {
		const struct ns_config *was = find_ns(a, b->ns[i].nsid);
		const char *key;
		char sec[32];

		if (!was) {
			sd->ns_add[sd->nr_ns_add++] = b->ns[i].nsid;
			continue;
		}
		key = config_ns_key_changed(was, &b->ns[i]);
		if (key) {
			snprintf(sec, sizeof(sec), "namespace %u", b->ns[i].nsid);
			cfg_error_at(err, errlen, b->file, sec, key, "%s: " RESTART " (the namespace "
				     "is served with the value it was opened with)", b->nqn);
			return -1;
		}
	}
	for (int i = 0; i < a->nr_ns; i++)
		if (!find_ns(b, a->ns[i].nsid))
			sd->ns_remove[sd->nr_ns_remove++] = a->ns[i].nsid;
	sd->hosts = !same_hosts(a, b);
	return 0;
}

int config_diff(const struct target_config *cur, const struct target_config *next,
		struct config_diff *d, char *err, size_t errlen)
{
	const char *key = target_key_changed(cur, next);

	memset(d, 0, sizeof(*d));
	if (key) {
		cfg_error_at(err, errlen, next->file, "target", key, RESTART);
		return -1;
	}
	d->log_level = strcmp(cur->log_level, next->log_level) != 0;
	if (cur->nr_subsys + next->nr_subsys == 0)
		return 0;
	d->subsys = calloc((size_t)(cur->nr_subsys + next->nr_subsys), sizeof(*d->subsys));
	if (!d->subsys) {
		cfg_error_at(err, errlen, next->file, NULL, NULL, "out of memory");
		return -1;
	}
	for (int i = 0; i < cur->nr_subsys; i++)
		if (find_subsys(next, cur->subsys[i].nqn) < 0)
			d->subsys[d->nr_subsys++] = (struct subsys_diff){ .old_i = i, .new_i = -1 };
	for (int j = 0; j < next->nr_subsys; j++) {
		struct subsys_diff *sd = &d->subsys[d->nr_subsys];
		int i = find_subsys(cur, next->subsys[j].nqn);

		*sd = (struct subsys_diff){ .old_i = i, .new_i = j };
		if (i >= 0 && diff_subsys(&cur->subsys[i], &next->subsys[j], sd, err, errlen)) {
			config_diff_free(d);
			return -1;
		}
		if (i < 0 || sd->hosts || sd->nr_ns_add || sd->nr_ns_remove)
			d->nr_subsys++;
	}
	return 0;
}

void config_diff_free(struct config_diff *d)
{
	free(d->subsys);
	memset(d, 0, sizeof(*d));
}

bool config_diff_empty(const struct config_diff *d)
{
	return !d->log_level && d->nr_subsys == 0;
}
