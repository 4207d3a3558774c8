/*
 * Asymmetric Namespace Access in the controller core (ana.h; NVMe Base
 * 2.0, 8.1): what Identify reports, the ANA log page (0Ch, 5.16.1.13), the
 * path statuses of I/O commands and the ANA Change notice. The states
 * themselves are in the port table (ana_port.c).
 */
#include "ana.h"

#include <string.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "nvme_cmd.h"
#include "subsys.h"
#include "transport.h"

#define LSP_RGO 1u /* Get Log Page 0Ch LSP bit 0: Return Groups Only */

/* The port a controller's path is: none for a PCIe controller. */
static uint16_t ctrl_portid(const struct nvme_ctrl *ctrl)
{
	return ctrl->pcie ? 0 : ctrl->port.portid;
}

uint32_t ana_ns_group(const struct subsys *s, uint32_t nsid)
{
	/* A reload that removes the namespace clears the pointer (the
	 * configuration itself lives on while a controller may use it). */
	const struct ns_config *c = nsid >= 1 && nsid <= CFG_MAX_NAMESPACES ?
					    __atomic_load_n(&s->ns_cfg[nsid], __ATOMIC_ACQUIRE) : NULL;

	return c && c->ana_group >= 1 && c->ana_group <= CFG_MAX_ANA_GROUPS ? c->ana_group : 1;
}

static bool subsys_has_group(const struct subsys *s, uint32_t group)
{
	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++)
		if (subsys_ns(s, nsid) && ana_ns_group(s, nsid) == group)
			return true;
	return false;
}

/* ---- state changes and the ANA Change notice ---- */

struct notice_arg {
	uint16_t portid;
	uint32_t group;
};

/* 8.1: every controller of the port whose subsystem has a
 * namespace in the group; dropped by nvme_ctrl_event unless the host enabled
 * ANA Change Notices and read the log since the last one. */
static void notify_subsys(void *arg, struct subsys *s)
{
	const struct notice_arg *n = arg;

	if (s->discovery || !subsys_has_group(s, n->group))
		return;
	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next)
		if (ctrl_portid(c) == n->portid && ana_reported(c))
			nvme_ctrl_event(c, NVME_AER_NOTICE, NVME_AER_NOTICE_ANA, NVME_LOG_LID_ANA, 0,
					NVME_CTRL_OAES_ANA, NVME_AEN_MASK_ANA_CHANGED);
	pthread_mutex_unlock(&s->lock);
}

int ana_set_state(uint16_t portid, uint32_t group, uint8_t state, char *err, size_t errlen)
{
	int changed = ana_port_set(portid, group, state, err, errlen);

	if (changed > 0) {
		struct notice_arg n = { portid, group };

		subsys_for_each(notify_subsys, &n);
	}
	return changed < 0 ? -1 : 0;
}

/* ---- `znstgt-ctl ana show` ---- */

struct print_arg {
	FILE *out;
	uint64_t used;  /* bit g: some namespace is in group g */
	int rc;
};

static void mark_groups(void *arg, struct subsys *s)
{
	struct print_arg *a = arg;

	if (s->discovery)
		return;
	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++)
		if (subsys_ns(s, nsid))
			a->used |= 1ull << ana_ns_group(s, nsid);
}

static void print_port(void *arg, const struct nvme_port *port)
{
	struct print_arg *a = arg;
	struct ana_port_view v;

	ana_port_snapshot(port->portid, &v);
	if (fprintf(a->out, "port %u %s%s%s:%s change-count %llu\n", port->portid,
		    strchr(port->traddr, ':') ? "[" : "", port->traddr,
		    strchr(port->traddr, ':') ? "]" : "", port->trsvcid,
		    (unsigned long long)v.chgcnt) < 0)
		a->rc = -1;
	for (uint32_t g = 1; g <= CFG_MAX_ANA_GROUPS; g++)
		if (((a->used >> g) & 1) || v.state[g] != NVME_ANA_STATE_OPTIMIZED)
			if (fprintf(a->out, "  group %u %s\n", g, ana_state_name(v.state[g])) < 0)
				a->rc = -1;
}

int ana_print(FILE *out)
{
	struct print_arg a = { out, 0, 0 };

	subsys_for_each(mark_groups, &a);
	nvme_ports_for_each(print_port, &a);
	return a.rc;
}

/* ---- Identify, I/O, log page ---- */

bool ana_reported(const struct nvme_ctrl *ctrl)
{
	return !ctrl->discovery && ctrl->subsys->max_nsid > 0;
}

void ana_build_id_ctrl(const struct nvme_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	if (!ana_reported(ctrl))
		return;
	id->cmic |= NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
	id->oaes |= htole32(NVME_CTRL_OAES_ANA);
	id->anatt = ANA_TT_SECONDS;
	/* Every state may be reported; ANAGRPID does not change while the
	 * namespace is attached (a reload refuses a new ana_group). */
	id->anacap = NVME_CTRL_ANACAP_OPT | NVME_CTRL_ANACAP_NON_OPT |
		     NVME_CTRL_ANACAP_INACCESSIBLE | NVME_CTRL_ANACAP_PERSISTENT_LOSS |
		     NVME_CTRL_ANACAP_CHANGE | NVME_CTRL_ANACAP_GRPID_NO_CHG;
	id->anagrpmax = htole32(CFG_MAX_ANA_GROUPS);
	id->nanagrpid = htole32(CFG_MAX_ANA_GROUPS);
}

uint16_t ana_io_status(const struct nvme_ctrl *ctrl, uint32_t nsid)
{
	/* Path errors (Status Code Type 3h, 4.6.1.2) carry no DNR: the
	 * command may succeed on another path. */
	switch (ana_state(ctrl_portid(ctrl), ana_ns_group(ctrl->subsys, nsid))) {
	case NVME_ANA_STATE_INACCESSIBLE:
		return NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE);
	case NVME_ANA_STATE_PERSISTENT_LOSS:
		return NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS);
	case NVME_ANA_STATE_CHANGE:
		return NVME_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION);
	default:
		return 0;
	}
}

/* Header, a descriptor per group, every NSID once. */
#define ANA_LOG_MAX (sizeof(struct nvme_ana_log) +                                  \
		     CFG_MAX_ANA_GROUPS * sizeof(struct nvme_ana_group_desc) +             \
		     CFG_MAX_NAMESPACES * sizeof(uint32_t))

/*
 * 5.16.1.13: a descriptor for each group holding namespaces of the
 * controller's subsystem, in group order, each with the state on the
 * controller's port and its NSIDs in ascending order (none with RGO).
 */
static void execute_log_ana(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	const struct subsys *s = ctrl->subsys;
	_Alignas(8) uint8_t buf[ANA_LOG_MAX];
	struct nvme_ana_log *hdr = (struct nvme_ana_log *)buf;
	struct nvme_log_args a;
	struct ana_port_view v, now;
	size_t off = sizeof(*hdr);
	uint16_t ngrps = 0, st;

	nvme_log_args(req, &a);
	memset(buf, 0, sizeof(buf));
	ana_port_snapshot(ctrl_portid(ctrl), &v);
	hdr->chgcnt = htole64(v.chgcnt);
	for (uint32_t g = 1; g <= CFG_MAX_ANA_GROUPS; g++) {
		struct nvme_ana_group_desc d = { .grpid = htole32(g) };
		size_t ids = off + sizeof(d);
		uint32_t n = 0;

		for (uint32_t nsid = 1; nsid <= s->max_nsid && nsid <= CFG_MAX_NAMESPACES; nsid++) {
			if (!subsys_ns(s, nsid) || ana_ns_group(s, nsid) != g)
				continue;
			if (!(a.lsp & LSP_RGO)) {
				uint32_t le = htole32(nsid);

				memcpy(buf + ids + n * sizeof(le), &le, sizeof(le));
			}
			n++;
		}
		if (!n)
			continue;
		if (a.lsp & LSP_RGO)
			n = 0;
		d.nnsids = htole32(n);
		d.chgcnt = htole64(v.group_chgcnt[g]);
		d.state = v.state[g];
		memcpy(buf + off, &d, sizeof(d));
		off = ids + n * sizeof(uint32_t);
		ngrps++;
	}
	hdr->ngrps = htole16(ngrps);
	st = nvme_req_copy_window(req, buf, off, a.lpo);
	if (!st && !a.rae) {
		/* Re-armed; a state that changed since the snapshot (its notice
		 * dropped, still masked) is told now (nvmet re-arms under
		 * nvmet_ana_sem, which state changes take for writing). */
		nvme_ctrl_event_unmask(ctrl, NVME_AEN_MASK_ANA_CHANGED);
		ana_port_snapshot(ctrl_portid(ctrl), &now);
		if (now.chgcnt != v.chgcnt)
			nvme_ctrl_event(ctrl, NVME_AER_NOTICE, NVME_AER_NOTICE_ANA, NVME_LOG_LID_ANA, 0,
					NVME_CTRL_OAES_ANA, NVME_AEN_MASK_ANA_CHANGED);
	}
	nvme_req_complete(req, st);
}

uint16_t ana_parse_log_page(struct nvme_req *req, const struct nvme_log_args *a)
{
	if (!ana_reported(nvme_req_ctrl(req)) || (a->lsp & ~LSP_RGO))
		return nvme_err(NVME_SC_INVALID_FIELD);
	req->execute = execute_log_ana;
	return 0;
}
