/*
 * The control socket's `ana set` (control_ana.h), acted on: the port named
 * by ID or by its listening address, then ana_set_state, which tells the
 * hosts on that port (ANA Change notice).
 */
#include "control_ana.h"

#include <stdio.h>
#include <string.h>

#include "ana.h"
#include "log.h"
#include "transport.h"

struct find_arg {
	const char *addr;
	uint16_t portid;
};

/* "ADDR:PORT" as a port listens, IPv6 addresses in brackets. */
static void match_port(void *arg, const struct nvme_port *p)
{
	struct find_arg *f = arg;
	char name[sizeof(p->traddr) + sizeof(p->trsvcid) + 4];
	bool v6 = strchr(p->traddr, ':') != NULL;

	snprintf(name, sizeof(name), "%s%s%s:%s", v6 ? "[" : "", p->traddr, v6 ? "]" : "",
		 p->trsvcid);
	if (!f->portid && strcmp(name, f->addr) == 0)
		f->portid = p->portid;
}

static void match_id(void *arg, const struct nvme_port *p)
{
	struct find_arg *f = arg;

	if (p->portid == f->portid)
		f->addr = "";
}

bool control_ana_set(const struct control_ana *a, char *reply, size_t len)
{
	struct find_arg f = { a->port_addr, a->portid };
	char err[128];

	if (a->port_addr) {
		nvme_ports_for_each(match_port, &f);
		if (!f.portid) {
			snprintf(reply, len, "no port listens on %s", a->port_addr);
			return false;
		}
	} else {
		nvme_ports_for_each(match_id, &f);
		if (!f.addr) {
			snprintf(reply, len, "no port %u", a->portid);
			return false;
		}
	}
	if (ana_set_state(f.portid, a->group, a->state, err, sizeof(err)) != 0) {
		snprintf(reply, len, "%s", err);
		return false;
	}
	log_info("ANA group %u on port %u set %s by the operator", a->group, f.portid,
		 ana_state_name(a->state));
	snprintf(reply, len, "port %u group %u %s", f.portid, a->group, ana_state_name(a->state));
	return true;
}
