/*
 * Helpers the zone engine's unit tests share (test_zone.c, test_zrwa.c):
 * free a zone set after checking its invariants, the first LBA of a zone,
 * one whole write. The including test defines ZSZ (its zone size in LBAs)
 * and includes cmocka.h and zone.h first.
 */
#ifndef ZNSTGT_ZONE_TEST_H
#define ZNSTGT_ZONE_TEST_H

#ifndef ZSZ
#error "define ZSZ (zone size, LBAs) before including zone_test.h"
#endif

/* zns_check() finds nothing wrong, then z is gone. */
static inline void rm(struct zns *z)
{
	assert_null(zns_check(z));
	zns_destroy(z);
	free(z);
}

/* The first LBA of zone i. */
static inline uint64_t zs(uint32_t i) { return (uint64_t)i * ZSZ; }

/* A Write of nlb LBAs at slba, begun and (if admitted) ended: its status. */
static inline uint16_t wr(struct zns *z, uint64_t slba, uint32_t nlb)
{
	struct ns_write w;
	uint16_t st = zns_write_begin(z, &w, NS_WRITE, slba, nlb);
	if (!st)
		zns_write_end(z, &w, true);
	return st;
}

#endif
