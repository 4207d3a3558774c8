/* Latency histogram (lat_hist.h). */
#include "lat_hist.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	if (v < LAT_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - LAT_SUB_BITS;   /* v >> shift is in [LAT_SUB, 2 LAT_SUB) */

	return (shift + 1u) * LAT_SUB + (unsigned)((v >> shift) - LAT_SUB);
}

/* Lowest value of bucket i and its width. */
static void bucket_range(unsigned i, double *lo, double *width)
{
	unsigned e = i / LAT_SUB, m = i % LAT_SUB;

	if (e == 0) {
		*lo = m;
		*width = 1;
		return;
	}
	*lo = (double)((uint64_t)(LAT_SUB + m) << (e - 1u));
	*width = (double)(1ull << (e - 1u));
}

void lat_hist_reset(struct lat_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void lat_hist_add(struct lat_hist *h, uint64_t ns)
{
	h->b[bucket_of(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src)
{
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

double lat_hist_mean(const struct lat_hist *h)
{
	return h->count ? (double)h->sum_ns / (double)h->count : 0;
}

double lat_hist_pct(const struct lat_hist *h, double pct)
{
	if (!h->count)
		return 0;
	/* The rank of the sample asked for, 1-based: p50 of 10 is the 5th. */
	double want = pct / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			double lo, width;
			bucket_range(i, &lo, &width);
			double mid = lo + (width - 1) / 2;
			return mid > (double)h->max_ns ? (double)h->max_ns : mid;
		}
	}
	return (double)h->max_ns;
}
