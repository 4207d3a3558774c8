/*
 * One write's reservation in a namespace (ns.h: ns_write_begin / _data /
 * _end), shared by the namespace API and the zone engine (zone.h), which
 * keeps the zone's writes not yet ended in a list through it. The caller
 * embeds it in its request, so a write allocates nothing.
 */
#ifndef ZNSTGT_NS_WRITE_H
#define ZNSTGT_NS_WRITE_H

#include <stdint.h>

enum ns_write_kind { NS_WRITE, NS_WRITE_ZEROES, NS_ZONE_APPEND };

struct ns_write {
	uint64_t slba;           /* in: requested LBA; out (append): assigned LBA */
	uint32_t nlb;
	uint8_t kind;            /* enum ns_write_kind */
	uint32_t zone;           /* engine-private from here */
	uint32_t epoch;          /* the zone's epoch at begin; Reset/Finish/Offline bump it */
	struct ns_write *prev, *next; /* the zone's writes not yet ended, oldest first */
};

#endif
