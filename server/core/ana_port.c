/*
 * The ANA state table (ana.h): per port ID and ANA group, the state and the
 * change counts the ANA log page reports (NVMe Base 2.0, 5.16.1.13). Kept
 * apart from the rest of ana.c so that a transport opening its listeners
 * needs nothing else of the core.
 *
 * A state is one byte read without the lock by every I/O command; changes,
 * and the change counts that go with them, are made under ana_lock.
 */
#include "ana.h"

#include <pthread.h>
#include <string.h>

#include <nvme/types.h>

struct ana_port {
	uint8_t state[CFG_MAX_ANA_GROUPS + 1];         /* 0: never configured = optimized */
	uint64_t group_chgcnt[CFG_MAX_ANA_GROUPS + 1]; /* chgcnt when the group last changed */
	uint64_t chgcnt;                               /* the log page's Change Count */
};

static pthread_mutex_t ana_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ana_port ports[ANA_MAX_PORTS + 1]; /* by port ID; 0: no port (PCIe) */

static bool valid_port(uint16_t portid)
{
	return portid >= 1 && portid <= ANA_MAX_PORTS;
}

static bool valid_group(uint32_t group)
{
	return group >= 1 && group <= CFG_MAX_ANA_GROUPS;
}

void ana_port_configure(uint16_t portid, const struct target_config *cfg,
			const struct listener_config *lc)
{
	if (!valid_port(portid))
		return;
	pthread_mutex_lock(&ana_lock);
	struct ana_port *p = &ports[portid];
	memset(p, 0, sizeof(*p));
	for (uint32_t g = 1; g <= CFG_MAX_ANA_GROUPS; g++)
		__atomic_store_n(&p->state[g], NVME_ANA_STATE_OPTIMIZED, __ATOMIC_RELAXED);
	for (int i = 0; i < cfg->nr_ana; i++)
		if (strcmp(cfg->ana[i].listener.addr, lc->addr) == 0 &&
		    strcmp(cfg->ana[i].listener.port, lc->port) == 0)
			__atomic_store_n(&p->state[cfg->ana[i].group], cfg->ana[i].state,
					 __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ana_lock);
}

uint8_t ana_state(uint16_t portid, uint32_t group)
{
	uint8_t st = 0;

	if (valid_port(portid) && valid_group(group))
		st = __atomic_load_n(&ports[portid].state[group], __ATOMIC_RELAXED);
	return st ? st : NVME_ANA_STATE_OPTIMIZED;
}

int ana_port_set(uint16_t portid, uint32_t group, uint8_t state, char *err, size_t errlen)
{
	int changed = 0;

	if (!valid_port(portid)) {
		snprintf(err, errlen, "no port %u", portid);
		return -1;
	}
	if (!valid_group(group)) {
		snprintf(err, errlen, "group %u is not in 1..%d", group, CFG_MAX_ANA_GROUPS);
		return -1;
	}
	pthread_mutex_lock(&ana_lock);
	struct ana_port *p = &ports[portid];
	if (ana_state(portid, group) != state) {
		__atomic_store_n(&p->state[group], state, __ATOMIC_RELAXED);
		p->group_chgcnt[group] = ++p->chgcnt;
		changed = 1;
	}
	pthread_mutex_unlock(&ana_lock);
	return changed;
}

void ana_port_snapshot(uint16_t portid, struct ana_port_view *v)
{
	memset(v, 0, sizeof(*v));
	for (uint32_t g = 1; g <= CFG_MAX_ANA_GROUPS; g++)
		v->state[g] = NVME_ANA_STATE_OPTIMIZED;
	if (!valid_port(portid))
		return;
	pthread_mutex_lock(&ana_lock);
	v->chgcnt = ports[portid].chgcnt;
	for (uint32_t g = 1; g <= CFG_MAX_ANA_GROUPS; g++) {
		v->state[g] = ana_state(portid, g);
		v->group_chgcnt[g] = ports[portid].group_chgcnt[g];
	}
	pthread_mutex_unlock(&ana_lock);
}
