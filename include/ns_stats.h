/*
 * Per-namespace counters for `znstgt-ctl status` and `metrics`
 * (doc/operations.md): commands by operation with their errors and bytes,
 * and what the group commit did (common/ns.c). Each counter is a relaxed
 * atomic added to where the event happens - no lock on the I/O path - and
 * read the same way, so a report is a set of values each exact at some
 * instant, not one snapshot of them all.
 */
#ifndef ZNSTGT_NS_STATS_H
#define ZNSTGT_NS_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct ns;

/* The operations counted apart (NVM Command Set 1.0, 3; ZNS 1.1, 3.4). */
enum ns_op {
	NS_OP_READ,
	NS_OP_WRITE,
	NS_OP_WRITE_ZEROES,
	NS_OP_APPEND,
	NS_OP_FLUSH,
	NS_OP_ZONE_SEND,             /* Zone Management Send */
	NS_OP_ZONE_RECV,             /* Zone Management Receive */
	NS_OP_OTHER,                 /* Dataset Management, anything else */
	NS_OP_COUNT,
};

struct ns_stats {
	uint64_t cmds[NS_OP_COUNT];      /* completed, whatever the status */
	uint64_t errors[NS_OP_COUNT];    /* ... with a status other than success */
	uint64_t bytes[NS_OP_COUNT];     /* data moved by the successful ones */
	/* Group commit (ns.c, the commit and data sync threads). */
	uint64_t commits;                /* rounds: one per wake-up of the commit thread */
	uint64_t sync_requests;          /* ns_sync() callers those rounds answered */
	uint64_t batches;                /* journal batches written (one write + fdatasync) */
	uint64_t records;                /* journal records in them */
	uint64_t data_syncs;             /* fdatasyncs of the data file */
	uint64_t checkpoints;
	uint64_t failures;               /* rounds that failed (their syncs got an error) */
};

static inline void ns_stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* The namespace's counters (ns.c). */
struct ns_stats *ns_stats(struct ns *ns);

/* One command on ns completed with status (0: success), bytes of data. */
void ns_stats_command(struct ns *ns, uint8_t opcode, uint16_t status, uint64_t bytes);

/* Zone states as counted by ns_stats_read(). */
enum ns_zstate {
	NS_ZS_EMPTY,
	NS_ZS_IMPL_OPEN,
	NS_ZS_EXPL_OPEN,
	NS_ZS_CLOSED,
	NS_ZS_FULL,
	NS_ZS_READ_ONLY,
	NS_ZS_OFFLINE,
	NS_ZS_COUNT,
};

struct ns_stats_snap {
	struct ns_stats c;
	uint32_t zones[NS_ZS_COUNT];     /* zoned namespaces only */
	bool syncs_failing, image_lost;  /* ns_health() */
};

/* Read ns's counters and count its zones by state (no lock). */
void ns_stats_read(struct ns *ns, struct ns_stats_snap *out);

/* Names for reports: "read", "write", ...; "empty", "implicitly-open", ... */
const char *ns_op_name(enum ns_op op);
const char *ns_zstate_name(enum ns_zstate s);

#endif
