/*
 * The durable-write limit of limits.h: one fdatasync per write, nothing
 * batched - what a Zone Append costs when every one must be durable before
 * it completes and nobody shares a sync.
 */
#include "limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A sparse file, written in order like a zone: every write allocates
 * blocks, as an append to an empty zone of the target's data file does.
 * Wraps around after FILE_BYTES (minutes at any plausible rate). */
#define FILE_BYTES (1u << 30)

int limit_sync(const char *dir, uint32_t len, double seconds, double *ops_per_s,
	       struct lat_hist *lat, char *err, size_t errlen)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/sync-limit-XXXXXX", dir);
	uint8_t *buf;
	int fd;

	if (n < 0 || (size_t)n >= sizeof(path) || !len || len > FILE_BYTES || seconds <= 0) {
		snprintf(err, errlen, "bad fdatasync limit parameters");
		return -1;
	}
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	unlink(path);
	buf = malloc(len);
	if (!buf || ftruncate(fd, FILE_BYTES)) {
		snprintf(err, errlen, "%s", buf ? strerror(errno) : "out of memory");
		close(fd);
		free(buf);
		return -1;
	}
	memset(buf, 0x5a, len);
	lat_hist_reset(lat);

	uint64_t ops = 0, off = 0;
	double t0 = limit_now_s(), t = t0;
	int rc = 0;
	while (t - t0 < seconds) {
		uint64_t s = limit_now_ns();
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len || fdatasync(fd)) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
			rc = -1;
			break;
		}
		uint64_t e = limit_now_ns();
		lat_hist_add(lat, e - s);
		ops++;
		off = (off + len) % (FILE_BYTES - FILE_BYTES % len);
		t = (double)e / 1e9;
	}
	*ops_per_s = t > t0 ? (double)ops / (t - t0) : 0;
	free(buf);
	close(fd);
	return rc;
}
