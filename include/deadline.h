/*
 * Absolute CLOCK_REALTIME deadlines for pthread_cond_timedwait(), which
 * takes no relative timeout.
 */
#ifndef ZNSTGT_DEADLINE_H
#define ZNSTGT_DEADLINE_H

#include <time.h>

/* Now plus seconds (fractions allowed), on CLOCK_REALTIME. */
struct timespec deadline_after(double seconds);

#endif
