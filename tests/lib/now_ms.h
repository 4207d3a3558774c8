/*
 * Monotonic milliseconds, for tests that measure how long the host itself
 * took: a loaded machine may hold a test back longer than a timeout it
 * drives (keep alive), and the test must tell that from a failure.
 */
#ifndef ZNSTGT_TEST_NOW_MS_H
#define ZNSTGT_TEST_NOW_MS_H

#include <time.h>

static inline double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

#endif
