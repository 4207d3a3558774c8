/*
 * Offline inspection and check of one namespace directory (the files of
 * doc/recovery.md), for `znstgt-ctl inspect` and `znstgt-ctl check`
 * (doc/operations.md). No daemon is needed and nothing is written: every
 * file is opened read-only, and the check runs the daemon's own recovery
 * (zmeta_open in ZMETA_CHECK mode) on a private copy of the image, so what
 * it finds is what a start would find.
 */
#ifndef ZNSTGT_NS_INSPECT_H
#define ZNSTGT_NS_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Which zones inspect lists: the Report Zones filters (ZNS 3.4.2.2.1,
 * Zone Receive Action Specific field), plus both kinds of open. */
enum ns_zone_filter {
	NS_ZF_ALL,
	NS_ZF_EMPTY,
	NS_ZF_IMPL_OPEN,
	NS_ZF_EXPL_OPEN,
	NS_ZF_CLOSED,
	NS_ZF_FULL,
	NS_ZF_READ_ONLY,
	NS_ZF_OFFLINE,
	NS_ZF_OPEN,                  /* implicitly or explicitly */
};

/* "all", "empty", "implicitly-open", "explicitly-open", "open", "closed",
 * "full", "read-only", "offline" -> 0 and *out; -1 for anything else. */
int ns_zone_filter_parse(const char *s, enum ns_zone_filter *out);

struct ns_inspect_opts {
	bool json;
	bool journal;                /* list the records since the checkpoint */
	enum ns_zone_filter filter;
	uint64_t slba;               /* start at the zone holding this LBA */
	uint64_t max_zones;          /* at most this many listed; 0 = all */
};

/* Print what dir holds to out. 0, or -1 with err when dir is no namespace
 * directory (damage is shown, not an error). */
int ns_inspect(const char *dir, const struct ns_inspect_opts *o, FILE *out, char *err,
	       size_t errlen);

/* One thing the check found. */
struct ns_finding {
	bool damage;                 /* false: a note (recovery handles it alone) */
	char file[16];               /* "ns.id", "data", "zones.img", "zones.jnl" */
	char text[1536];             /* what, where (zone, record, byte offset) */
};

struct ns_check_result {
	struct ns_finding *v;
	size_t n;
	size_t damaged;              /* findings with damage set */
};

/* Check dir: every CRC and invariant recovery checks, plus the files'
 * presence and lengths. 0 (res filled; res->damaged says the verdict), or
 * -1 with err when dir cannot be checked at all. */
int ns_check(const char *dir, struct ns_check_result *res, char *err, size_t errlen);
void ns_check_print(const char *dir, const struct ns_check_result *res, bool json, FILE *out);
void ns_check_free(struct ns_check_result *res);

#endif
