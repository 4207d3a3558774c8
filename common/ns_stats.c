/*
 * Per-namespace counters (ns_stats.h).
 */
#include "ns_stats.h"

#include <nvme/types.h>
#include <string.h>

#include "ns.h"
#include "zone.h"

static enum ns_op op_of(uint8_t opcode)
{
	switch (opcode) {
	case nvme_cmd_read: return NS_OP_READ;
	case nvme_cmd_write: return NS_OP_WRITE;
	case nvme_cmd_write_zeroes: return NS_OP_WRITE_ZEROES;
	case nvme_zns_cmd_append: return NS_OP_APPEND;
	case nvme_cmd_flush: return NS_OP_FLUSH;
	case nvme_zns_cmd_mgmt_send: return NS_OP_ZONE_SEND;
	case nvme_zns_cmd_mgmt_recv: return NS_OP_ZONE_RECV;
	default: return NS_OP_OTHER;
	}
}

void ns_stats_command(struct ns *ns, uint8_t opcode, uint16_t status, uint64_t bytes)
{
	struct ns_stats *st = ns_stats(ns);
	enum ns_op op = op_of(opcode);

	ns_stat_add(&st->cmds[op], 1);
	if (status)
		ns_stat_add(&st->errors[op], 1);
	else if (bytes)
		ns_stat_add(&st->bytes[op], bytes);
}

static uint64_t get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static int zstate_of(uint8_t s)
{
	switch (s) {
	case NVME_ZNS_ZS_EMPTY: return NS_ZS_EMPTY;
	case NVME_ZNS_ZS_IMPL_OPEN: return NS_ZS_IMPL_OPEN;
	case NVME_ZNS_ZS_EXPL_OPEN: return NS_ZS_EXPL_OPEN;
	case NVME_ZNS_ZS_CLOSED: return NS_ZS_CLOSED;
	case NVME_ZNS_ZS_FULL: return NS_ZS_FULL;
	case NVME_ZNS_ZS_READ_ONLY: return NS_ZS_READ_ONLY;
	case NVME_ZNS_ZS_OFFLINE: return NS_ZS_OFFLINE;
	default: return -1;
	}
}

void ns_stats_read(struct ns *ns, struct ns_stats_snap *out)
{
	const struct ns_stats *st = ns_stats(ns);
	struct zns *z = ns_zones(ns);

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < NS_OP_COUNT; i++) {
		out->c.cmds[i] = get(&st->cmds[i]);
		out->c.errors[i] = get(&st->errors[i]);
		out->c.bytes[i] = get(&st->bytes[i]);
	}
	out->c.commits = get(&st->commits);
	out->c.sync_requests = get(&st->sync_requests);
	out->c.batches = get(&st->batches);
	out->c.records = get(&st->records);
	out->c.data_syncs = get(&st->data_syncs);
	out->c.checkpoints = get(&st->checkpoints);
	out->c.failures = get(&st->failures);
	ns_health(ns, &out->syncs_failing, &out->image_lost);
	for (uint32_t i = 0; z && i < zns_nr_zones(z); i++) {
		int s = zstate_of(zns_zone_state(z, i));
		if (s >= 0)
			out->zones[s]++;
	}
}

const char *ns_op_name(enum ns_op op)
{
	static const char *const names[NS_OP_COUNT] = {
		"read", "write", "write-zeroes", "append", "flush", "zone-send", "zone-receive",
		"other",
	};
	return op < NS_OP_COUNT ? names[op] : "?";
}

const char *ns_zstate_name(enum ns_zstate s)
{
	static const char *const names[NS_ZS_COUNT] = {
		"empty", "implicitly-open", "explicitly-open", "closed", "full", "read-only",
		"offline",
	};
	return s < NS_ZS_COUNT ? names[s] : "?";
}
