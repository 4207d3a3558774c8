/*
 * The discovery controller (NVMe-oF 1.1, 5): its admin command set and the
 * Discovery log page (70h).
 *
 * The log is built fresh for every Get Log Page from one snapshot of the
 * registry, so GENCTR and the entries always agree; the host reads it in
 * pieces (libnvme: the 20-byte header, then entries from offset 1024 in
 * 4 KiB chunks, then the header again) and retries when GENCTR moved.
 *
 * Entry 0 describes this discovery subsystem (SUBTYPE 3), then one entry
 * per (NVM subsystem the host may connect to, port): first the port this
 * connection came in on, then the other registered ports (transport.h).
 * Each port's transport fills the transport fields of its entries (it may
 * report the address the host reached us on for a wildcard address).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "ctrl.h"
#include "log.h"
#include "nvme_cmd.h"
#include "subsys.h"

#define DISC_ASQSZ 32 /* the admin queue size a host should use */
#define DISC_MAX_PORTS 64 /* ports reported; more are left out */

struct disc_log {
	uint8_t *buf;     /* header + entries */
	size_t cap;
	uint64_t numrec;
	bool oom;
	const struct nvme_ctrl *ctrl;
	/* Per port: the entry's transport fields, filled by its transport. */
	struct nvmf_disc_log_entry ports[DISC_MAX_PORTS];
	int nr_ports;
};

static void add_port(struct disc_log *dl, const struct nvme_port *p)
{
	struct nvmf_disc_log_entry *e = &dl->ports[dl->nr_ports];

	if (dl->nr_ports == DISC_MAX_PORTS || !p->ops)
		return;
	memset(e, 0, sizeof(*e));
	if (!p->ops->disc_entry(p, dl->ctrl->local_addr, e))
		return;
	e->portid = htole16(p->portid);
	dl->nr_ports++;
}

static void add_other_port(void *arg, const struct nvme_port *p)
{
	struct disc_log *dl = arg;

	if (p->portid != dl->ctrl->port.portid)
		add_port(dl, p);
}

/* The ports to report: this connection's first, then the other registered
 * ones, each described by its own transport. */
static void collect_ports(const struct nvme_ctrl *ctrl, struct disc_log *dl)
{
	dl->ctrl = ctrl;
	dl->nr_ports = 0;
	add_port(dl, &ctrl->port);
	nvme_ports_for_each(add_other_port, dl);
}

static void add_entry(struct disc_log *dl, const struct nvmf_disc_log_entry *port,
		      const char *subnqn, uint8_t subtype)
{
	size_t off = sizeof(struct nvmf_discovery_log) +
		     (size_t)dl->numrec * sizeof(struct nvmf_disc_log_entry);
	struct nvmf_disc_log_entry e;

	if (dl->oom)
		return;
	if (off + sizeof(e) > dl->cap) {
		size_t cap = dl->cap * 2;
		uint8_t *b = realloc(dl->buf, cap);

		if (!b) {
			dl->oom = true;
			return;
		}
		memset(b + dl->cap, 0, cap - dl->cap);
		dl->buf = b;
		dl->cap = cap;
	}
	e = *port;
	e.subtype = subtype;
	e.cntlid = htole16(0xffff);       /* dynamic controller model */
	e.asqsz = htole16(DISC_ASQSZ);
	if (subtype == NVME_NQN_CURR) /* the host is connected to it already and may stay */
		e.eflags = htole16(NVMF_DISC_EFLAGS_DUPRETINFO | NVMF_DISC_EFLAGS_EPCSD);
	snprintf(e.subnqn, sizeof(e.subnqn), "%s", subnqn);
	memcpy(dl->buf + off, &e, sizeof(e));
	dl->numrec++;
}

static void add_subsys(void *arg, const struct subsys *s)
{
	struct disc_log *dl = arg;
	bool tls_only = subsys_requires_tls(s);

	/* require_tls: offered on the TLS ports only, as nvmet lists a
	 * subsystem with the ports it is linked to. */
	for (int i = 0; i < dl->nr_ports; i++)
		if (!tls_only || (dl->ports[i].trtype == NVMF_TRTYPE_TCP &&
				  dl->ports[i].tsas.tcp.sectype == NVMF_TCP_SECTYPE_TLS13))
			add_entry(dl, &dl->ports[i], s->nqn, NVME_NQN_NVME);
}

void *nvme_discovery_log_build(const struct nvme_ctrl *ctrl, size_t *len)
{
	struct disc_log dl = { 0 };
	struct nvmf_discovery_log hdr;
	uint64_t gen;

	dl.cap = sizeof(struct nvmf_discovery_log) + 4 * sizeof(struct nvmf_disc_log_entry);
	dl.buf = calloc(1, dl.cap);
	if (!dl.buf)
		return NULL;
	collect_ports(ctrl, &dl);
	if (dl.nr_ports)
		add_entry(&dl, &dl.ports[0], subsys_discovery_nqn(), NVME_NQN_CURR);
	gen = subsys_for_each_allowed(ctrl->hostnqn, add_subsys, &dl);
	if (dl.oom) {
		free(dl.buf);
		return NULL;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.genctr = htole64(gen);
	hdr.numrec = htole64(dl.numrec);
	hdr.recfmt = htole16(0);
	memcpy(dl.buf, &hdr, sizeof(hdr));
	*len = sizeof(hdr) + (size_t)dl.numrec * sizeof(struct nvmf_disc_log_entry);
	return dl.buf;
}

static void execute_disc_get_log(struct nvme_req *req)
{
	struct nvme_ctrl *ctrl = nvme_req_ctrl(req);
	struct nvme_log_args a;
	uint64_t gen;
	size_t len;
	void *log;
	uint16_t st;

	nvme_log_args(req, &a);
	log = nvme_discovery_log_build(ctrl, &len);
	if (!log) {
		nvme_req_complete(req, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL));
		return;
	}
	gen = le64toh(((const struct nvmf_discovery_log *)log)->genctr);
	st = nvme_req_copy_window(req, log, len, a.lpo);
	free(log);
	/* Reading the log without RAE re-arms the discovery change event; a
	 * change since the log was built (its notice dropped, still masked)
	 * is told now (nvmet re-arms under nvmet_config_sem). */
	if (!st && !a.rae) {
		nvme_ctrl_event_unmask(ctrl, NVME_AEN_MASK_DISC_CHANGED);
		if (subsys_discovery_genctr() != gen)
			nvme_ctrl_event(ctrl, NVME_AER_NOTICE, NVME_AER_NOTICE_DISC_CHANGED,
					NVME_LOG_LID_DISCOVER, 0,
					NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE,
					NVME_AEN_MASK_DISC_CHANGED);
	}
	nvme_req_complete(req, st);
}

static void execute_disc_identify(struct nvme_req *req)
{
	struct nvme_id_ctrl id;

	nvme_build_id_ctrl(nvme_req_ctrl(req), &id);
	nvme_req_copy_to(req, 0, &id, sizeof(id));
	nvme_req_complete(req, 0);
}

/* The discovery admin command set (NVMe-oF 1.1, 5 Figure 41). */
uint16_t nvme_parse_discovery_cmd(struct nvme_req *req)
{
	struct nvme_log_args a;
	uint16_t st;

	if (!nvme_ctrl_ready(nvme_req_ctrl(req)))
		return nvme_err(NVME_SC_CMD_SEQ_ERROR);

	switch (req->cmd.opcode) {
	case nvme_admin_identify:
		if ((le32toh(req->cmd.cdw10) & 0xff) != NVME_IDENTIFY_CNS_CTRL)
			return nvme_err(NVME_SC_INVALID_FIELD);
		st = nvme_req_data_len(req, NVME_IDENTIFY_DATA_SIZE);
		req->execute = execute_disc_identify;
		return st;
	case nvme_admin_get_log_page:
		st = nvme_log_args(req, &a);
		if (st)
			return st;
		if (a.lid != NVME_LOG_LID_DISCOVER)
			return nvme_err(NVME_SC_INVALID_FIELD);
		req->execute = execute_disc_get_log;
		return 0;
	case nvme_admin_set_features:
	case nvme_admin_get_features:
		return nvme_parse_features(req);
	case nvme_admin_async_event:
		req->execute = nvme_execute_aer;
		return nvme_req_data_len(req, 0);
	case nvme_admin_keep_alive:
		req->execute = nvme_execute_keep_alive;
		return nvme_req_data_len(req, 0);
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}
