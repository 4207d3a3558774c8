/*
 * Parsing one control socket request (protocol in control.h), apart from
 * acting on it: the line is untrusted input, and this part needs no socket,
 * loop or subsystem, so it is unit tested and fuzzed on its own
 * (tests/fuzz/fuzz_control.c).
 */
#ifndef ZNSTGT_CONTROL_REQ_H
#define ZNSTGT_CONTROL_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "control_ana.h"
#include "control_fault.h"

enum control_op {
	CONTROL_PING,
	CONTROL_POWER_CUT,
	CONTROL_ADD_SUBSYS,
	CONTROL_REMOVE_SUBSYS,
	CONTROL_STATUS,
	CONTROL_METRICS,
	CONTROL_ZONE,
	CONTROL_INJECT,
	CONTROL_RELOAD,
	CONTROL_SET_HOSTS,
	CONTROL_ANA,
};

struct control_req {
	enum control_op op;
	const char *name;        /* the command word */
	bool format;             /* add-subsys --format */
	const char *nqn;         /* add-subsys --nqn (or NULL), remove-subsys NQN,
				  set-hosts NQN */
	const char *file;        /* add-subsys, set-hosts: an absolute path */
	struct control_fault fault; /* zone, inject (control_fault.h) */
	struct control_ana ana;     /* ana (control_ana.h) */
};

/*
 * Parse the request in line[0..len) (the line without its '\n'; line[len]
 * must be '\0'). Splits line in place: the strings of *req point into it.
 * Returns 0, or -1 with what is wrong in err (the text of the
 * "error: ..." answer). Only the syntax is checked here; whether the NQN
 * or the file is acceptable is the command's business.
 */
int control_req_parse(char *line, size_t len, struct control_req *req, char *err,
		      size_t errlen);

#endif
