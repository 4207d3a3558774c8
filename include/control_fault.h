/*
 * The control socket's fault injection requests (doc/fault-injection.md):
 *
 *   zone offline|read-only NQN NSID ZSLBA [NZONES]
 *   inject error NQN NSID status=SCT:SC [dnr=yes|no] [MATCH...] [FIRING...]
 *   inject delay NQN NSID delay=TIME [status=...] [MATCH...] [FIRING...]
 *   inject list
 *   inject clear ID|all
 *
 *   MATCH   op=read,write,append,zmgmt,report   (default: all of them)
 *           lba=SLBA[+NLB] | zone=ZSLBA[+NZONES] (default: the namespace)
 *   FIRING  count=N (then the rule goes) prob=P (0 < P <= 1) seed=N
 *
 * Parsing (control_fault_parse) is apart from acting (control_fault_zone,
 * control_fault_inject, on the main loop), as for every request
 * (control_req.h): the parser is unit tested and fuzzed on its own.
 */
#ifndef ZNSTGT_CONTROL_FAULT_H
#define ZNSTGT_CONTROL_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inject.h"

enum control_inject_what { CONTROL_INJECT_ADD, CONTROL_INJECT_LIST, CONTROL_INJECT_CLEAR };

struct control_fault {
	const char *nqn;             /* zone, inject add */
	uint32_t nsid;
	/* zone */
	uint8_t zone_state;          /* NVME_ZNS_ZS_OFFLINE or NVME_ZNS_ZS_READ_ONLY */
	uint64_t zslba;
	uint32_t nr_zones;
	/* inject */
	enum control_inject_what what;
	struct inject_rule rule;     /* add: every field but nqn and seed (when !seeded) */
	bool zone_range;             /* add: rule.slba/nlb are a ZSLBA and a zone count */
	bool seeded;
	uint32_t clear_id;           /* clear: 0 = all */
};

/* argv[0] is "zone" or "inject". 0, or -1 with the problem in err. */
int control_fault_parse(int argc, char **argv, struct control_fault *f, char *err,
			size_t errlen);

/* Act on a parsed request; the answer's text into reply. true: ok. (inject
 * list answers with the count; the rules follow as a body: inject_print.) */
bool control_fault_zone(const struct control_fault *f, char *reply, size_t len);
bool control_fault_inject(const struct control_fault *f, char *reply, size_t len);

#endif
