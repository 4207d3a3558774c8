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

/* What became of the range of a write whose data failed (zoned only). */
enum ns_write_failed {
	NS_WRITE_OK,             /* the data did not fail */
	NS_WRITE_GIVEN_BACK,     /* the write pointer went back to the write's start */
	NS_WRITE_KEPT,           /* later writes hold LBAs above it: the range stays
	                          * consumed and reads as zeros (or, if even zeroing
	                          * failed, is undefined: as much of the data as
	                          * landed over what the blocks held before) */
};

/* Where a write's data is (zoned only; zns_write_start / _landed). */
enum ns_write_data {
	NS_DATA_WAITING,         /* not moved yet */
	NS_DATA_MOVING,          /* its pwrite is under way */
	NS_DATA_LANDED,          /* moved (or failed): the blocks hold what it left */
};

struct ns_write {
	uint64_t slba;           /* in: requested LBA; out (append): assigned LBA */
	uint32_t nlb;
	uint8_t kind;            /* enum ns_write_kind */
	uint32_t zone;           /* engine-private from here */
	uint32_t epoch;          /* the zone's epoch at begin; Reset/Finish/Offline bump it */
	uint8_t failed;          /* out, after a failed ns_write_data(): enum ns_write_failed */
	uint8_t prior;           /* the zone's state before this write opened or filled it */
	uint8_t zrwa;            /* a write into a ZRWA: took no LBAs from the write pointer */
	uint8_t data;            /* enum ns_write_data: where its data is */
	uint16_t dropped_st;     /* the status it fails with when a Reset/Finish/Offline
	                          * dropped it before its data moved */
	struct ns_write *prev, *next; /* the zone's writes not yet ended, oldest first */
};

#endif
