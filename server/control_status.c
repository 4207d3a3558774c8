/*
 * status and metrics (control_status.h). The registry is copied into a
 * snapshot under its locks (subsys_for_each: registry, subsystem, then
 * controller lock, the registry's order), and the report is written from
 * the copy, so no lock is held while text is formatted. The namespace
 * counters are relaxed atomics (ns_stats.h): reading them stops nothing.
 */
#include "control_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"
#include "ns.h"
#include "ns_stats.h"
#include "subsys.h"

struct ctrl_row {
	uint16_t cntlid;
	char host[NVME_NQN_LENGTH];
	char transport[16];
	char local[112];             /* where the host reached the target */
	char peer[72];               /* the host's end ("" if unknown) */
	uint32_t queues;             /* connected: admin + I/O */
	uint32_t io_granted;         /* Number of Queues feature */
};

struct ns_row {
	uint32_t nsid;
	bool zoned;
	uint32_t nr_zones;
	struct ns_stats_snap st;
};

struct sub_row {
	char nqn[CFG_NQN_MAX];
	bool discovery;
	struct ctrl_row *c;
	size_t nc;
	struct ns_row *n;
	size_t nn;
};

struct snapshot {
	struct sub_row *s;
	size_t n;
	bool oom;
};

static void *grow(void *v, size_t n, size_t size)
{
	return realloc(v, (n + 1) * size);
}

/* Under s->lock, then each controller's lock. */
static void take_ctrls(struct sub_row *r, struct subsys *s, struct snapshot *sn)
{
	pthread_mutex_lock(&s->lock);
	for (struct nvme_ctrl *c = s->ctrls; c; c = c->next) {
		if (atomic_load(&c->dead))
			continue;
		struct ctrl_row *v = grow(r->c, r->nc, sizeof(*v));
		if (!v) {
			sn->oom = true;
			break;
		}
		r->c = v;
		v += r->nc++;
		memset(v, 0, sizeof(*v));
		v->cntlid = c->cntlid;
		snprintf(v->host, sizeof(v->host), "%s", c->hostnqn);
		snprintf(v->transport, sizeof(v->transport), "%s", c->ops ? c->ops->name : "?");
		snprintf(v->local, sizeof(v->local), "%s%s%s",
			 c->local_addr[0] ? c->local_addr : c->port.traddr,
			 c->port.trsvcid[0] ? ":" : "", c->port.trsvcid);
		pthread_mutex_lock(&c->lock);
		for (uint32_t q = 0; q <= NVME_MAX_IO_QUEUES; q++)
			v->queues += c->sqs[q] != NULL;
		if (c->sqs[0])
			snprintf(v->peer, sizeof(v->peer), "%s", c->sqs[0]->peer_addr);
		v->io_granted = c->nr_io_queues;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&s->lock);
}

static void take(void *arg, struct subsys *s)
{
	struct snapshot *sn = arg;
	struct sub_row *r = grow(sn->s, sn->n, sizeof(*r));

	if (!r) {
		sn->oom = true;
		return;
	}
	sn->s = r;
	r += sn->n++;
	memset(r, 0, sizeof(*r));
	snprintf(r->nqn, sizeof(r->nqn), "%s", s->nqn);
	r->discovery = s->discovery;
	take_ctrls(r, s, sn);
	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++) {
		struct ns *ns = subsys_ns(s, nsid);
		if (!ns)
			continue;
		struct ns_row *v = grow(r->n, r->nn, sizeof(*v));
		if (!v) {
			sn->oom = true;
			return;
		}
		r->n = v;
		v += r->nn++;
		v->nsid = nsid;
		v->zoned = ns_info(ns)->zoned;
		v->nr_zones = ns_info(ns)->nr_zones;
		ns_stats_read(ns, &v->st);
	}
}

static void snapshot_free(struct snapshot *sn)
{
	for (size_t i = 0; i < sn->n; i++) {
		free(sn->s[i].c);
		free(sn->s[i].n);
	}
	free(sn->s);
}

static int snapshot_take(struct snapshot *sn)
{
	memset(sn, 0, sizeof(*sn));
	subsys_for_each(take, sn);
	if (!sn->oom)
		return 0;
	snapshot_free(sn);
	return -1;
}

/* ---- status: plain text ---- */

static void status_ns(FILE *f, const struct ns_row *n)
{
	const struct ns_stats *c = &n->st.c;

	fprintf(f, "  namespace %u: %s", n->nsid, n->zoned ? "zoned" : "conventional");
	if (n->zoned) {
		fprintf(f, ", %u zones:", n->nr_zones);
		for (int z = 0; z < NS_ZS_COUNT; z++)
			fprintf(f, "%s %s %u", z ? "," : "", ns_zstate_name((enum ns_zstate)z),
				n->st.zones[z]);
	}
	fprintf(f, "\n");
	for (int op = 0; op < NS_OP_COUNT; op++)
		fprintf(f, "    %-13s %llu commands, %llu errors, %llu bytes\n",
			ns_op_name((enum ns_op)op), (unsigned long long)c->cmds[op],
			(unsigned long long)c->errors[op], (unsigned long long)c->bytes[op]);
	fprintf(f, "    group commit: %llu rounds for %llu syncs; %llu journal batches of %llu "
		"records (%.2f a batch); %llu data syncs; %llu checkpoints; %llu failed rounds\n",
		(unsigned long long)c->commits, (unsigned long long)c->sync_requests,
		(unsigned long long)c->batches, (unsigned long long)c->records,
		c->batches ? (double)c->records / (double)c->batches : 0.0,
		(unsigned long long)c->data_syncs, (unsigned long long)c->checkpoints,
		(unsigned long long)c->failures);
	if (n->st.image_lost)
		fprintf(f, "    zone image lost (a page of its mapping faulted): syncs fail until "
			"the namespace is restarted\n");
	else if (n->st.syncs_failing)
		fprintf(f, "    syncs failing: the last group commit failed (see the log)\n");
}

int control_status(FILE *f)
{
	struct snapshot sn;

	if (snapshot_take(&sn))
		return -1;
	fprintf(f, "znstgt %s\n", ZNSTGT_VERSION);
	for (size_t i = 0; i < sn.n; i++) {
		const struct sub_row *s = &sn.s[i];
		fprintf(f, "%s %s: %zu namespace(s), %zu controller(s)\n",
			s->discovery ? "discovery subsystem" : "subsystem", s->nqn, s->nn, s->nc);
		for (size_t k = 0; k < s->nc; k++) {
			const struct ctrl_row *c = &s->c[k];
			fprintf(f, "  controller %u: host %s, %s %s%s%s, %u queue(s) (%u I/O granted)\n",
				c->cntlid, c->host, c->transport, c->local, c->peer[0] ? " from " : "",
				c->peer, c->queues, c->io_granted);
		}
		for (size_t k = 0; k < s->nn; k++)
			status_ns(f, &s->n[k]);
	}
	snapshot_free(&sn);
	return 0;
}

/* ---- metrics: Prometheus text exposition format 0.0.4 ---- */

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fprintf(f, "\\n");
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_ns(FILE *f, const char *name, const struct sub_row *s, const struct ns_row *n,
		      const char *lname, const char *lval, unsigned long long v)
{
	fprintf(f, "%s{subsys=\"", name);
	label(f, s->nqn);
	fprintf(f, "\",nsid=\"%u\"", n->nsid);
	if (lname)
		fprintf(f, ",%s=\"%s\"", lname, lval);
	fprintf(f, "} %llu\n", v);
}

/* Every namespace of every subsystem. */
#define FOR_EACH_NS(sn, s, n)                                                         \
	for (const struct sub_row *s = (sn)->s; s < (sn)->s + (sn)->n; s++)            \
		for (const struct ns_row *n = s->n; n < s->n + s->nn; n++)

static void metrics_ops(FILE *f, const struct snapshot *sn, const char *name, const char *help,
			size_t field)
{
	family(f, name, "counter", help);
	FOR_EACH_NS(sn, s, n) {
		const uint64_t *v = (const uint64_t *)((const char *)&n->st.c + field);
		for (int op = 0; op < NS_OP_COUNT; op++)
			sample_ns(f, name, s, n, "op", ns_op_name((enum ns_op)op), v[op]);
	}
}

/* The group commit's counters: one family each. */
static const struct commit_family {
	const char *name, *help;
	size_t field;                /* in struct ns_stats */
} commit_families[] = {
	{ "znstgt_group_commits_total",
	  "Group commit rounds (one per wake-up of the commit thread).",
	  offsetof(struct ns_stats, commits) },
	{ "znstgt_sync_requests_total",
	  "Sync requests (Flush, FUA, write-through, zone transitions) answered.",
	  offsetof(struct ns_stats, sync_requests) },
	{ "znstgt_journal_batches_total",
	  "Zone journal batches written (one write and fdatasync each).",
	  offsetof(struct ns_stats, batches) },
	{ "znstgt_journal_records_total", "Zone journal records written.",
	  offsetof(struct ns_stats, records) },
	{ "znstgt_data_syncs_total", "fdatasyncs of the data file.",
	  offsetof(struct ns_stats, data_syncs) },
	{ "znstgt_checkpoints_total", "Zone image checkpoints by the group commit.",
	  offsetof(struct ns_stats, checkpoints) },
	{ "znstgt_group_commit_failures_total",
	  "Group commit rounds that failed (their syncs got an error).",
	  offsetof(struct ns_stats, failures) },
};

static void metrics_commit(FILE *f, const struct snapshot *sn, const struct commit_family *c)
{
	family(f, c->name, "counter", c->help);
	FOR_EACH_NS(sn, s, n)
		sample_ns(f, c->name, s, n, NULL, NULL,
			  *(const uint64_t *)((const char *)&n->st.c + c->field));
}

int control_metrics(FILE *f)
{
	struct snapshot sn;

	if (snapshot_take(&sn))
		return -1;
	family(f, "znstgt_info", "gauge", "The running target; its version in a label.");
	fprintf(f, "znstgt_info{version=\"%s\"} 1\n", ZNSTGT_VERSION);
	family(f, "znstgt_controllers", "gauge", "Controllers of a subsystem.");
	for (size_t i = 0; i < sn.n; i++) {
		fprintf(f, "znstgt_controllers{subsys=\"");
		label(f, sn.s[i].nqn);
		fprintf(f, "\"} %zu\n", sn.s[i].nc);
	}
	family(f, "znstgt_queues", "gauge", "Queues (admin and I/O) connected to a subsystem.");
	for (size_t i = 0; i < sn.n; i++) {
		uint32_t q = 0;
		for (size_t k = 0; k < sn.s[i].nc; k++)
			q += sn.s[i].c[k].queues;
		fprintf(f, "znstgt_queues{subsys=\"");
		label(f, sn.s[i].nqn);
		fprintf(f, "\"} %u\n", q);
	}
	family(f, "znstgt_syncs_failing", "gauge",
	       "1 while the last group commit of a namespace failed.");
	FOR_EACH_NS(&sn, s, n)
		sample_ns(f, "znstgt_syncs_failing", s, n, NULL, NULL, n->st.syncs_failing);
	family(f, "znstgt_zone_image_lost", "gauge",
	       "1 once the zone image of a namespace faulted: syncs fail until it is restarted.");
	FOR_EACH_NS(&sn, s, n)
		sample_ns(f, "znstgt_zone_image_lost", s, n, NULL, NULL, n->st.image_lost);
	family(f, "znstgt_zones", "gauge", "Zones of a zoned namespace by state.");
	FOR_EACH_NS(&sn, s, n)
		for (int z = 0; n->zoned && z < NS_ZS_COUNT; z++)
			sample_ns(f, "znstgt_zones", s, n, "state", ns_zstate_name((enum ns_zstate)z),
				  n->st.zones[z]);
	metrics_ops(f, &sn, "znstgt_commands_total", "I/O commands completed, by operation.",
		    offsetof(struct ns_stats, cmds));
	metrics_ops(f, &sn, "znstgt_command_errors_total",
		    "I/O commands completed with an error status, by operation.",
		    offsetof(struct ns_stats, errors));
	metrics_ops(f, &sn, "znstgt_bytes_total",
		    "Data bytes moved by successful I/O commands, by operation.",
		    offsetof(struct ns_stats, bytes));
	for (size_t i = 0; i < sizeof(commit_families) / sizeof(commit_families[0]); i++)
		metrics_commit(f, &sn, &commit_families[i]);
	snapshot_free(&sn);
	return 0;
}
