/*
 * A latency histogram for the load generator and the loopback limit: fixed
 * memory, O(1) insert, mergeable, percentiles within 1/64 (1.6 %) of the
 * true value.
 *
 * The layout is HdrHistogram's idea in its simplest form: values below 64
 * ns get a bucket each; above that every power of two [2^k, 2^(k+1)) is cut
 * into 64 equal buckets, so a bucket is never wider than 1/64 of the values
 * it holds. 59 powers of two cover every uint64_t.
 */
#ifndef ZNSTGT_LAT_HIST_H
#define ZNSTGT_LAT_HIST_H

#include <stdint.h>

#define LAT_SUB_BITS 6
#define LAT_SUB      (1u << LAT_SUB_BITS)
#define LAT_BUCKETS  ((64u - LAT_SUB_BITS + 1u) * LAT_SUB)

struct lat_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t b[LAT_BUCKETS];
};

void lat_hist_reset(struct lat_hist *h);
void lat_hist_add(struct lat_hist *h, uint64_t ns);
void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src);
/* Mean in nanoseconds (0 when empty). */
double lat_hist_mean(const struct lat_hist *h);
/* The value below which pct percent of the samples fall (midpoint of
 * its bucket), in nanoseconds; 0 when empty. */
double lat_hist_pct(const struct lat_hist *h, double pct);

#endif
