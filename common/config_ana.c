/*
 * [target] ana_state = LISTENER GROUP STATE (doc/ana.md): the ANA state of
 * one group on one listener at start-up, e.g.
 *
 *   ana_state = 10.0.0.2:4420 1 non-optimized
 *
 * Groups a line does not name are optimized. LISTENER is written as in
 * listen / tls_listen (the port defaults to 4420 there too) and must be one
 * of them; that is checked once the whole [target] section is read, as the
 * keys may come in any order.
 */
#include "config_priv.h"

#include <string.h>

#include "ana.h"

const char *cfg_ana_state_add(struct target_config *cfg, const char *v, char *why,
			      size_t whylen)
{
	char buf[160], *save = NULL, *w[4];
	int n = 0;

	if (strlen(v) >= sizeof(buf))
		return "too long";
	strcpy(buf, v);
	for (char *t = strtok_r(buf, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	if (n != 3)
		return cfg_bad(why, whylen, v, "is not three words");

	struct ana_state_config a = { 0 };
	const char *problem = cfg_parse_listener(w[0], &a.listener);
	if (problem) {
		snprintf(why, whylen, "listener \"%s\" %s", w[0], problem);
		return why;
	}
	if (cfg_parse_u32(w[1], 1, CFG_MAX_ANA_GROUPS, &a.group) != 0) {
		snprintf(why, whylen, "group \"%s\" is not a number in 1..%d", w[1],
			 CFG_MAX_ANA_GROUPS);
		return why;
	}
	if (ana_state_parse(w[2], &a.state) != 0) {
		snprintf(why, whylen, "state \"%s\" is not one of " ANA_STATE_NAMES, w[2]);
		return why;
	}
	for (int i = 0; i < cfg->nr_ana; i++) {
		const struct ana_state_config *o = &cfg->ana[i];
		if (o->group == a.group && strcmp(o->listener.addr, a.listener.addr) == 0 &&
		    strcmp(o->listener.port, a.listener.port) == 0) {
			snprintf(why, whylen, "group %u of %s is given twice", a.group, w[0]);
			return why;
		}
	}
	if (cfg->nr_ana == CFG_MAX_ANA_STATES) {
		snprintf(why, whylen, "more than %d ana_state lines", CFG_MAX_ANA_STATES);
		return why;
	}
	cfg->ana[cfg->nr_ana++] = a;
	return NULL;
}

static bool listed(const struct listener_config *list, int nr, const struct listener_config *l)
{
	for (int i = 0; i < nr; i++)
		if (strcmp(list[i].addr, l->addr) == 0 && strcmp(list[i].port, l->port) == 0)
			return true;
	return false;
}

int cfg_ana_check(const struct target_config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < cfg->nr_ana; i++) {
		const struct listener_config *l = &cfg->ana[i].listener;
		if (!listed(cfg->listeners, cfg->nr_listeners, l) &&
		    !listed(cfg->tls_listeners, cfg->nr_tls_listeners, l)) {
			cfg_error_at(err, errlen, cfg->file, "target", "ana_state", "%s%s%s:%s is not "
				     "a listener (expected an address of listen or tls_listen)",
				     strchr(l->addr, ':') ? "[" : "", l->addr,
				     strchr(l->addr, ':') ? "]" : "", l->port);
			return -1;
		}
	}
	return 0;
}

bool cfg_ana_same(const struct target_config *a, const struct target_config *b)
{
	if (a->nr_ana != b->nr_ana)
		return false;
	for (int i = 0; i < a->nr_ana; i++) {
		const struct ana_state_config *x = &a->ana[i], *y = &b->ana[i];
		if (x->group != y->group || x->state != y->state ||
		    strcmp(x->listener.addr, y->listener.addr) != 0 ||
		    strcmp(x->listener.port, y->listener.port) != 0)
			return false;
	}
	return true;
}
