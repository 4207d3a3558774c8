/*
 * Operator fault injection on the I/O path (doc/fault-injection.md): rules,
 * added and cleared at run time through the control socket, that make
 * commands of a namespace fail with an NVMe status of the operator's choice
 * or complete late, as a failing drive's do. (Not to be confused with
 * fault_io.h, which makes the target's own file I/O fail in tests.)
 *
 * A rule names a subsystem and namespace, the commands it applies to (read,
 * write, append, zone management, report), an LBA range (or the whole
 * namespace), and what it does: a status, a delay, or both. It fires on a
 * matching command once, N times or until cleared, each time with a chance
 * (a seeded generator, so a seed repeats a run).
 *
 * Cost when nothing is injected: inject_on(), one relaxed atomic load. With
 * rules, every I/O command takes the table's mutex once: injection is for
 * tests, not for speed. Safe from any thread.
 */
#ifndef ZNSTGT_INJECT_H
#define ZNSTGT_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* What a command is, for matching (one bit each). */
#define INJECT_READ   (1u << 0)  /* Read */
#define INJECT_WRITE  (1u << 1)  /* Write, Write Zeroes */
#define INJECT_APPEND (1u << 2)  /* Zone Append */
#define INJECT_ZMGMT  (1u << 3)  /* Zone Management Send */
#define INJECT_REPORT (1u << 4)  /* Zone Management Receive */
#define INJECT_ALL_OPS 0x1fu

#define INJECT_MAX_RULES 16
#define INJECT_PPM 1000000u      /* a chance of 1, in millionths */
/* A delayed command still counts as in flight: a stop or power cut waits
 * for it (30 s at most, control.h and main.c), so delays stay well below. */
#define INJECT_MAX_DELAY_US (10u * 1000000u)

struct inject_rule {
	char nqn[CFG_NQN_MAX];
	uint32_t nsid;
	uint32_t ops;                /* INJECT_* bits */
	uint64_t slba, nlb;          /* LBA range; nlb 0: the whole namespace */
	uint16_t status;             /* znstgt status word (nvme_wire.h); 0: none */
	uint32_t delay_us;           /* complete this much later; 0: at once */
	uint32_t count;              /* fire this many times, then go; 0: until cleared */
	uint32_t ppm;                /* chance to fire on a matching command */
	uint64_t seed;
	/* kept by the table */
	uint32_t id;
	uint64_t fired;
	uint64_t rng;
};

/* What the matching rules ask of one command. */
struct inject_hit {
	uint16_t status;             /* 0: the command runs */
	uint32_t delay_us;
};

extern int inject_armed_;        /* rules in the table; read through inject_on() */

static inline bool inject_on(void)
{
	return __builtin_expect(__atomic_load_n(&inject_armed_, __ATOMIC_RELAXED), 0);
}

/* Add a copy of r (its id, fired and rng are set here). Returns the new
 * rule's id (>= 1), or -1 when INJECT_MAX_RULES rules are in place. */
int inject_add(const struct inject_rule *r);
/* Remove rule id, or every rule (id 0). Returns how many went. */
uint32_t inject_clear(uint32_t id);
/* Rules in the table. */
uint32_t inject_count(void);
/*
 * A command of kind op (one INJECT_* bit) on [slba, slba + nlb) of nsid of
 * subsystem nqn: true, with *hit, when a rule fires on it. The first firing
 * rule with a status gives the status; the delays of all firing rules add
 * up. A rule whose count runs out goes.
 */
bool inject_match(const char *nqn, uint32_t nsid, uint32_t op, uint64_t slba, uint64_t nlb,
		  struct inject_hit *hit);
/* The rules, one a line, in the order they were added. 0, or -1 when out
 * cannot be written. */
int inject_print(FILE *out);

/* "read", "write", ... for one INJECT_* bit (NULL for anything else). */
const char *inject_op_name(uint32_t bit);

#endif
