/*
 * splitmix64 (Steele, Lea, Flood 2014): a small pseudo-random generator that
 * gives the same sequence for the same seed everywhere, for the fault
 * injection of tests (fault_io.h) and of the operator (inject.h), where a
 * seed must repeat a run.
 */
#ifndef ZNSTGT_SPLITMIX64_H
#define ZNSTGT_SPLITMIX64_H

#include <stdint.h>

static inline uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
