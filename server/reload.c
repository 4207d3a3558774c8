/*
 * Live reload. See reload.h; the rules are in doc/configuration.md.
 *
 * Order: load and compare (config_diff), check every addition against the
 * running registry, then apply the steps that can fail (subsystems and
 * namespaces added, host tables replaced), taking them back if one does,
 * and last the steps that cannot fail (removals, log level). Then the new
 * configuration is the running one.
 */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "config_diff.h"
#include "control.h"
#include "errmsg.h"
#include "log.h"
#include "ns_precheck.h"
#include "subsys.h"
#include "target_subsys.h"
#include "vfio_nvme.h"

static struct {
	struct target_config *cfg;
	bool from_file;
} R;

void reload_init(struct target_config *running, bool from_file)
{
	R.cfg = running;
	R.from_file = from_file;
}

static const struct ns_config *ns_of(const struct subsys_config *sc, uint32_t nsid)
{
	for (int i = 0; i < sc->nr_ns; i++)
		if (sc->ns[i].nsid == nsid)
			return &sc->ns[i];
	return NULL;
}

/* ---- checks: nothing changes ---- */

static int check_added_subsys(const struct subsys_config *sc, char *msg, size_t msglen)
{
	struct subsys *s = subsys_find(sc->nqn);
	char why[1024];

	if (s) {
		subsys_put(s);
		return errmsg(msg, msglen, "%s: [subsystem] nqn: %s is served already (added "
			      "through the control socket?)", sc->file, sc->nqn);
	}
	if (vfio_nvme_check(sc, msg, msglen) != 0)
		return -1;
	/* Checked again by subsys_add, but then other steps may have applied. */
	if (subsys_dirs_check(sc, msg, msglen) != 0)
		return -1;
	for (int i = 0; i < sc->nr_ns; i++)
		if (ns_precheck(&sc->ns[i], why, sizeof(why)) != 0)
			return errmsg(msg, msglen, "%s: [namespace %u]: %s", sc->file, sc->ns[i].nsid,
				      why);
	return 0;
}

static int check(const struct config_diff *d, const struct target_config *next, char *msg,
		 size_t msglen)
{
	for (int k = 0; k < d->nr_subsys; k++) {
		const struct subsys_diff *sd = &d->subsys[k];
		const struct subsys_config *sc = sd->new_i >= 0 ? &next->subsys[sd->new_i] : NULL;
		char why[1024];

		if (sd->new_i < 0)
			continue;
		if (sd->old_i < 0) {
			if (check_added_subsys(sc, msg, msglen) != 0)
				return -1;
			continue;
		}
		for (int j = 0; j < sd->nr_ns_add; j++)
			if (subsys_ns_add_check(sc->nqn, ns_of(sc, sd->ns_add[j]), why,
						sizeof(why)) != 0)
				return errmsg(msg, msglen, "%s: [namespace %u]: %s", sc->file,
					      sd->ns_add[j], why);
	}
	return 0;
}

/* ---- the steps that can fail, and taking them back ---- */

/* How far apply_adds() got: entries of d->subsys before `subsys` are done,
 * and in that one the first `ns` namespaces. */
struct progress {
	int subsys;
	int ns;
};

static void take_back(const struct config_diff *d, const struct target_config *cur,
		      const struct target_config *next, const struct progress *p)
{
	for (int k = p->subsys; k >= 0; k--) {
		const struct subsys_diff *sd = k < d->nr_subsys ? &d->subsys[k] : NULL;
		const char *nqn;
		char why[512];

		if (!sd || sd->new_i < 0)
			continue;
		nqn = next->subsys[sd->new_i].nqn;
		if (sd->old_i < 0) {
			if (k < p->subsys && target_subsys_remove(nqn, why, sizeof(why)) != 0)
				log_error("reload: taking back %s: %s", nqn, why);
			continue;
		}
		if (k < p->subsys && sd->hosts &&
		    subsys_set_hosts(nqn, &cur->subsys[sd->old_i], why, sizeof(why)) != 0)
			log_error("reload: taking back the hosts of %s: %s", nqn, why);
		for (int j = (k < p->subsys ? sd->nr_ns_add : p->ns) - 1; j >= 0; j--)
			if (subsys_ns_remove(nqn, sd->ns_add[j], why, sizeof(why)) != 0)
				log_error("reload: taking back namespace %u of %s: %s",
					  sd->ns_add[j], nqn, why);
	}
	if (!subsys_wait_detached(CONTROL_DRAIN_SECONDS))
		log_error("reload: subsystems taken back still close after %.0f s",
			  CONTROL_DRAIN_SECONDS);
}

/* Subsystems added, namespaces added, host tables replaced, in the order of d. */
static int apply_adds(const struct config_diff *d, const struct target_config *next,
		      struct progress *p, char *msg, size_t msglen)
{
	char why[1024];

	for (p->subsys = 0; p->subsys < d->nr_subsys; p->subsys++) {
		const struct subsys_diff *sd = &d->subsys[p->subsys];
		const struct subsys_config *sc;

		p->ns = 0;
		if (sd->new_i < 0)
			continue;
		sc = &next->subsys[sd->new_i];
		if (sd->old_i < 0) {
			if (target_subsys_add(sc, false, why, sizeof(why)) != 0)
				return errmsg(msg, msglen, "%s", why);
			continue;
		}
		for (; p->ns < sd->nr_ns_add; p->ns++)
			if (subsys_ns_add(sc->nqn, ns_of(sc, sd->ns_add[p->ns]), why,
					  sizeof(why)) != 0)
				return errmsg(msg, msglen, "%s: [namespace %u]: %s", sc->file,
					      sd->ns_add[p->ns], why);
		if (sd->hosts && subsys_set_hosts(sc->nqn, sc, why, sizeof(why)) != 0)
			return errmsg(msg, msglen, "%s: hosts: %s", sc->file, why);
	}
	return 0;
}

/* ---- the steps that cannot fail ---- */

/* A subsystem or namespace already gone (remove-subsys, or never served
 * because it could not be opened at start) is not an error here. */
static void apply_removals(const struct config_diff *d, const struct target_config *cur)
{
	char why[512];

	for (int k = 0; k < d->nr_subsys; k++) {
		const struct subsys_diff *sd = &d->subsys[k];
		const char *nqn = sd->old_i >= 0 ? cur->subsys[sd->old_i].nqn : NULL;

		if (!nqn)
			continue;
		if (sd->new_i < 0) {
			if (target_subsys_remove(nqn, why, sizeof(why)) != 0)
				log_info("reload: %s", why);
			continue;
		}
		for (int j = 0; j < sd->nr_ns_remove; j++)
			if (subsys_ns_remove(nqn, sd->ns_remove[j], why, sizeof(why)) != 0)
				log_info("reload: %s", why);
	}
	/* Removed subsystems checkpoint as they close: done before the answer,
	 * as remove-subsys does, so their files may be reused at once. */
	if (!subsys_wait_detached(CONTROL_DRAIN_SECONDS))
		log_warn("reload: removed subsystems still close after %.0f s",
			 CONTROL_DRAIN_SECONDS);
}

static void summarize(const struct config_diff *d, const struct target_config *next, char *msg,
		      size_t msglen)
{
	int sub_add = 0, sub_rm = 0, ns_add = 0, ns_rm = 0, hosts = 0;

	for (int k = 0; k < d->nr_subsys; k++) {
		const struct subsys_diff *sd = &d->subsys[k];

		sub_add += sd->old_i < 0;
		sub_rm += sd->new_i < 0;
		ns_add += sd->nr_ns_add;
		ns_rm += sd->nr_ns_remove;
		hosts += sd->old_i >= 0 && sd->hosts;
	}
	snprintf(msg, msglen, "reloaded %s: %d subsystem(s) added, %d removed; %d namespace(s) "
		 "added, %d removed; hosts of %d subsystem(s) changed; log level %s%s", next->file,
		 sub_add, sub_rm, ns_add, ns_rm, hosts, next->log_level[0] ? next->log_level : "info",
		 d->log_level ? " (changed)" : "");
}

int reload_run(char *msg, size_t msglen)
{
	struct target_config next;
	struct config_diff d;
	struct progress p = { 0 };
	char err[1024];
	int level;

	if (!R.cfg || !R.from_file)
		return errmsg(msg, msglen, "no configuration file to re-read (started with the "
			      "built-in configuration: start with -c FILE)");
	if (config_load(R.cfg->file, &next, err, sizeof(err)) != 0)
		return errmsg(msg, msglen, "%s", err);
	if (config_diff(R.cfg, &next, &d, err, sizeof(err)) != 0) {
		config_free(&next);
		return errmsg(msg, msglen, "%s", err);
	}
	if (check(&d, &next, msg, msglen) != 0) {
		config_diff_free(&d);
		config_free(&next);
		return -1;
	}
	if (apply_adds(&d, &next, &p, msg, msglen) != 0) {
		take_back(&d, R.cfg, &next, &p);
		config_diff_free(&d);
		config_free(&next);
		return -1;
	}
	apply_removals(&d, R.cfg);
	level = log_level_parse(next.log_level);
	if (d.log_level && level >= 0)
		log_set_level((enum log_level)level);
	summarize(&d, &next, msg, msglen);
	config_diff_free(&d);
	config_free(R.cfg);
	*R.cfg = next;
	return 0;
}
