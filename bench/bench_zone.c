/*
 * Zone engine benchmark (issue 2, item 6). Prints figures; asserts nothing.
 *
 * (a) Durable Zone Appends per second: 4 KiB appends with write-cache-off
 *     semantics (an append counts only once its ns_sync() callback returned)
 *     from 1, 8, 32 and 64 concurrent appenders (one zone each, so the figure
 *     measures the commit path rather than one zone's lock), kept in flight
 *     by at most two submitting threads as the server's worker loops do. Beside
 *     each, the same load on a store without group commit: per append,
 *     pwrite the data, fdatasync the data file, pwrite a 40-byte journal
 *     record, fdatasync the journal - two syncs per operation, whatever the
 *     concurrency (the file system may still merge concurrent syncs).
 *     Then the latency of 32 appenders' appends (submission to durable)
 *     while another thread fills other zones with 1 MiB and resets them.
 * (b) Recovery: a namespace of 16,384 zones whose journal holds 1,000,000
 *     records to replay (zone transitions with a journal too big to
 *     checkpoint), abandoned as a power cut would leave it (ns_abandon);
 *     then the time ns_open takes, against the time of a clean ns_open.
 * (c) RAM per zone: what the engine allocates per zone (from its headers),
 *     and the RSS an ns_open of 16,384 and 262,144 zones adds, measured in
 *     a child process (smaps_rollup: resident anonymous and file pages).
 *
 * Files go to a temporary directory under $TMPDIR (default /tmp); the figures
 * are those of that file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nvme/types.h>

#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "ns.h"
#include "zmeta.h" /* struct zjnl_record / zimg_desc: the sizes the engine uses */
#include "zone.h"  /* struct zone: what the engine keeps in RAM per zone */

#define BLK 4096u
#define RUN_SECONDS 1.0
#define RUNS 3              /* per figure; the median is printed */

static char base_dir[1024]; /* leaves room for a name in ns_config.path */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_zone: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh namespace directory under the benchmark's temporary directory. */
static void ns_dir(struct ns_config *cfg, const char *name)
{
	snprintf(cfg->path, sizeof(cfg->path), "%s/%s", base_dir, name);
	nftw(cfg->path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static struct ns_config zoned_config(const char *name, uint32_t nr_zones, uint32_t zone_lbas,
				     uint64_t journal_size)
{
	struct ns_config cfg = {
		.nsid = 1,
		.zoned = true,
		.lba_size = BLK,
		.size = (uint64_t)nr_zones * zone_lbas * BLK,
		.zone_size = (uint64_t)zone_lbas * BLK,
		.zone_capacity = (uint64_t)zone_lbas * BLK,
		.zone_append_max = 128 * 1024,
		.cross_zone_read = true,
		.journal_size = journal_size,
	};
	ns_dir(&cfg, name);
	return cfg;
}

static struct ns *open_ns(const struct ns_config *cfg, bool format)
{
	struct ns *ns;
	char err[512];
	if (ns_open(cfg, format, &ns, err, sizeof(err)))
		die("ns_open: %s", err);
	return ns;
}

static void sync_and_wait(struct ns *ns)
{
	uint16_t st = ns_sync_wait(ns);
	if (st)
		die("ns_sync failed with status %#x", st);
}

/* ---- (a) durable Zone Appends per second ---- */

#define APPEND_ZONE_LBAS (1u << 16) /* 256 MiB zones: none fills during a run */
#define MAX_APPENDERS 64

struct append_run {
	struct ns *ns;           /* group commit */
	int data_fd, jnl_fd;     /* one sync per operation */
	uint64_t jnl_next;       /* atomic: next record slot of the journal */
	bool stop;               /* atomic */
	uint64_t ops;            /* atomic */
};

struct appender {
	struct append_run *run;
	uint32_t zone;
	uint64_t next;           /* one sync per op: next block of its zone */
	double t0;               /* group commit: when its append was issued */
	uint8_t buf[BLK];
};

/* Append latencies (ms) of the run under resets; NULL: not recorded. */
#define MAX_LAT (1u << 21)
static double *lat;
static uint32_t nlat;            /* atomic */

/*
 * Group commit is driven the way the server drives it: a few submitting
 * threads (the worker loops; at most SUBMITTERS) each keep their share of
 * the n appenders outstanding. An appender issues its next append when the
 * ns_sync() callback of the previous one arrives, so n appends are always
 * in flight, without n blocked threads.
 */
#define SUBMITTERS 2

struct submitter;

struct gc_slot {
	struct submitter *s;
	int idx;                     /* in the submitter's share */
};

struct submitter {
	struct append_run *r;
	struct appender *app;        /* its share of the appenders */
	struct gc_slot *slots;
	int count;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready[MAX_APPENDERS];    /* appenders whose last append is durable */
	int nready;
	int outstanding;
};

static void gc_synced(void *arg, uint16_t status)
{
	struct gc_slot *slot = arg;
	struct submitter *s = slot->s;
	if (status)
		die("ns_sync failed with status %#x", status);
	__atomic_add_fetch(&s->r->ops, 1, __ATOMIC_RELAXED);
	uint32_t k = lat ? __atomic_fetch_add(&nlat, 1, __ATOMIC_RELAXED) : MAX_LAT;
	if (k < MAX_LAT)
		lat[k] = (now_s() - s->app[slot->idx].t0) * 1e3;
	pthread_mutex_lock(&s->lock);
	s->ready[s->nready++] = slot->idx;
	s->outstanding--;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void gc_append(struct submitter *s, int idx)
{
	struct appender *a = &s->app[idx];
	struct iovec iov = { a->buf, BLK };
	struct ns_write w;
	a->t0 = now_s();
	uint16_t st = ns_write_begin(s->r->ns, &w, NS_ZONE_APPEND,
				     (uint64_t)a->zone * APPEND_ZONE_LBAS, 1);
	if (st)
		die("zone %u: Zone Append failed with status %#x", a->zone, st);
	st = ns_write_data(s->r->ns, &w, &iov, 1);
	ns_write_end(s->r->ns, &w, st);
	if (st)
		die("zone %u: append data failed with status %#x", a->zone, st);
	pthread_mutex_lock(&s->lock);
	s->outstanding++;
	pthread_mutex_unlock(&s->lock);
	ns_sync(s->r->ns, gc_synced, &s->slots[idx]);
}

static void *group_commit_submitter(void *arg)
{
	struct submitter *s = arg;
	int batch[MAX_APPENDERS], n = s->count;
	for (int i = 0; i < n; i++)
		batch[i] = i;
	pthread_mutex_lock(&s->lock);
	while (!__atomic_load_n(&s->r->stop, __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&s->lock);
		for (int i = 0; i < n; i++)
			gc_append(s, batch[i]);
		pthread_mutex_lock(&s->lock);
		while (!s->nready)
			pthread_cond_wait(&s->cond, &s->lock);
		n = s->nready;
		memcpy(batch, s->ready, (size_t)n * sizeof(int));
		s->nready = 0;
	}
	while (s->outstanding) /* callbacks still refer to s */
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* n appenders kept in flight by min(n, SUBMITTERS) threads; appends/s. */
static double run_group_commit(struct append_run *r, int n)
{
	static struct appender app[MAX_APPENDERS];
	static struct gc_slot slots[MAX_APPENDERS];
	static struct submitter subs[SUBMITTERS];
	pthread_t t[SUBMITTERS];
	int nsub = n < SUBMITTERS ? n : SUBMITTERS;
	r->stop = false;
	r->ops = 0;
	for (int i = 0; i < n; i++) {
		app[i].run = r;
		app[i].zone = (uint32_t)i;
		memset(app[i].buf, 0xa5 ^ i, BLK);
	}
	for (int k = 0; k < nsub; k++) {
		struct submitter *s = &subs[k];
		int lo = k * n / nsub, hi = (k + 1) * n / nsub;
		*s = (struct submitter){ .r = r, .app = &app[lo], .slots = &slots[lo], .count = hi - lo };
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->cond, NULL);
		for (int i = lo; i < hi; i++)
			slots[i] = (struct gc_slot){ s, i - lo };
	}
	double t0 = now_s();
	for (int k = 0; k < nsub; k++)
		if (pthread_create(&t[k], NULL, group_commit_submitter, &subs[k]))
			die("pthread_create failed");
	struct timespec d = { (time_t)RUN_SECONDS,
			      (long)((RUN_SECONDS - (double)(time_t)RUN_SECONDS) * 1e9) };
	nanosleep(&d, NULL);
	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	for (int k = 0; k < nsub; k++) {
		pthread_join(t[k], NULL);
		pthread_mutex_destroy(&subs[k].lock);
		pthread_cond_destroy(&subs[k].cond);
	}
	return (double)r->ops / (now_s() - t0);
}

static void write_full(int fd, const void *buf, size_t len, off_t off)
{
	if (pwrite(fd, buf, len, off) != (ssize_t)len)
		die("pwrite: %s", strerror(errno));
}

/* What a store without group commit does for every append. The data goes
 * where the engine would put it: at the appender's zone's write pointer. */
static void *sync_per_op_appender(void *arg)
{
	struct appender *a = arg;
	struct append_run *r = a->run;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t blk = (uint64_t)a->zone * APPEND_ZONE_LBAS + a->next++;
		write_full(r->data_fd, a->buf, BLK, (off_t)(blk * BLK));
		if (fdatasync(r->data_fd))
			die("fdatasync: %s", strerror(errno));
		/* A record of the engine's size, with its CRC to compute. */
		uint64_t seq = __atomic_fetch_add(&r->jnl_next, 1, __ATOMIC_RELAXED);
		struct zjnl_record rec = {
			.type = ZJNL_ZONE, .len = sizeof(rec), .seq = seq, .zone = a->zone,
			.state = NVME_ZNS_ZS_IMPL_OPEN, .wp = blk + 1,
		};
		rec.crc = crc32c((uint8_t *)&rec + 4, sizeof(rec) - 4);
		write_full(r->jnl_fd, &rec, sizeof(rec), (off_t)(ZJNL_DATA_OFFSET + seq * sizeof(rec)));
		if (fdatasync(r->jnl_fd))
			die("fdatasync: %s", strerror(errno));
		__atomic_add_fetch(&r->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Run n appenders for RUN_SECONDS; returns operations per second. */
static double run_appenders(struct append_run *r, int n, void *(*fn)(void *))
{
	static struct appender a[MAX_APPENDERS];
	pthread_t t[MAX_APPENDERS];
	r->stop = false;
	r->ops = 0;
	for (int i = 0; i < n; i++) {
		a[i].run = r;
		a[i].zone = (uint32_t)i;
		a[i].next = 0;
		memset(a[i].buf, 0xa5 ^ i, BLK);
		if (pthread_create(&t[i], NULL, fn, &a[i]))
			die("pthread_create failed");
	}
	double t0 = now_s();
	struct timespec d = { (time_t)RUN_SECONDS,
			      (long)((RUN_SECONDS - (double)(time_t)RUN_SECONDS) * 1e9) };
	nanosleep(&d, NULL);
	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return (double)r->ops / (now_s() - t0);
}

static double group_commit_rate(int n)
{
	struct ns_config cfg = zoned_config("append", MAX_APPENDERS, APPEND_ZONE_LBAS, 64 << 20);
	struct append_run r = { .ns = open_ns(&cfg, true) };
	double rate = run_group_commit(&r, n);
	ns_close(r.ns);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rate;
}

/*
 * The same on zones whose blocks were written before and kept by a Reset
 * (the steady state of a zoned drive in use): `blocks` blocks of each
 * appender's zone are written to the data file, zones empty, before the run.
 */
static double group_commit_rate_reused(int n, uint32_t blocks)
{
	struct ns_config cfg = zoned_config("append", MAX_APPENDERS, APPEND_ZONE_LBAS, 64 << 20);
	ns_close(open_ns(&cfg, true));
	char data[sizeof(cfg.path) + 8];
	snprintf(data, sizeof(data), "%s/data", cfg.path);
	int fd = open(data, O_RDWR | O_CLOEXEC);
	size_t len = (size_t)blocks * BLK;
	uint8_t *buf = malloc(len);
	if (fd < 0 || !buf)
		die("%s: %s", data, strerror(errno));
	memset(buf, 0x5a, len);
	for (int i = 0; i < n; i++)
		write_full(fd, buf, len, (off_t)i * APPEND_ZONE_LBAS * BLK);
	if (fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	close(fd);
	free(buf);
	struct append_run r = { .ns = open_ns(&cfg, false) };
	double rate = run_group_commit(&r, n);
	ns_close(r.ns);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rate;
}

static double sync_per_op_rate(int n)
{
	char data[4200], jnl[4200];
	snprintf(data, sizeof(data), "%s/baseline.data", base_dir);
	snprintf(jnl, sizeof(jnl), "%s/baseline.jnl", base_dir);
	struct append_run r = {
		.data_fd = open(data, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
		.jnl_fd = open(jnl, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
	};
	if (r.data_fd < 0 || r.jnl_fd < 0)
		die("%s: %s", base_dir, strerror(errno));
	/* The same file layout as the engine's: a sparse data file, and a
	 * journal preallocated so that its syncs carry no size updates. */
	if (ftruncate(r.data_fd, (off_t)MAX_APPENDERS * APPEND_ZONE_LBAS * BLK) ||
	    posix_fallocate(r.jnl_fd, 0, 64 << 20) || fsync(r.data_fd) || fsync(r.jnl_fd))
		die("preparing the baseline files: %s", strerror(errno));
	double rate = run_appenders(&r, n, sync_per_op_appender);
	close(r.data_fd);
	close(r.jnl_fd);
	unlink(data);
	unlink(jnl);
	return rate;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Latency of one 4 KiB write + fdatasync on this file system, into a hole
 * (allocating) or over written blocks: what one sync per operation costs
 * when nothing else is going on. */
static double sync_latency_ms(bool overwrite)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/latency", base_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	uint8_t buf[BLK] = { 1 };
	double t[51];
	for (int i = 0; overwrite && i < 51; i++)
		write_full(fd, buf, BLK, (off_t)i * BLK);
	if (overwrite && fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	for (int i = 0; i < 51; i++) {
		double t0 = now_s();
		write_full(fd, buf, BLK, (off_t)i * BLK);
		if (fdatasync(fd))
			die("fdatasync: %s", strerror(errno));
		t[i] = (now_s() - t0) * 1e3;
	}
	close(fd);
	unlink(path);
	qsort(t, 51, sizeof(t[0]), cmp_double);
	return t[25];
}

/* Other zones than the appenders': fill with 1 MiB, make it durable, reset. */
static void *resetter(void *arg)
{
	struct append_run *r = arg;
	static uint8_t buf[128 * 1024];
	struct iovec iov = { buf, sizeof(buf) };
	uint64_t resets = 0;
	for (uint32_t z = 32; !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); z = z == 63 ? 32 : z + 1) {
		for (int i = 0; i < 8; i++) {
			struct ns_write w;
			uint16_t st = ns_write_begin(r->ns, &w, NS_ZONE_APPEND,
						     (uint64_t)z * APPEND_ZONE_LBAS, sizeof(buf) / BLK);
			if (!st)
				st = ns_write_data(r->ns, &w, &iov, 1);
			ns_write_end(r->ns, &w, st);
			if (st)
				die("zone %u: append failed with status %#x", z, st);
		}
		sync_and_wait(r->ns);
		uint16_t st = ns_zone_mgmt_send(r->ns, (uint64_t)z * APPEND_ZONE_LBAS,
						NVME_ZNS_ZSA_RESET, false, NULL);
		if (st)
			die("zone %u: Reset failed with status %#x", z, st);
		resets++;
	}
	return (void *)(uintptr_t)resets;
}

static int cmp_double(const void *a, const void *b);

/* 32 appenders' latency while zones 32-63 are filled and reset. */
static void append_latency_under_resets(void)
{
	struct ns_config cfg = zoned_config("append", MAX_APPENDERS, APPEND_ZONE_LBAS, 64 << 20);
	struct append_run r = { .ns = open_ns(&cfg, true) };
	lat = malloc(MAX_LAT * sizeof(*lat));
	if (!lat)
		die("out of memory");
	nlat = 0;
	pthread_t t;
	if (pthread_create(&t, NULL, resetter, &r))
		die("pthread_create failed");
	double rate = run_group_commit(&r, 32);
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	void *resets;
	pthread_join(t, &resets);
	uint32_t n = nlat < MAX_LAT ? nlat : MAX_LAT;
	qsort(lat, n, sizeof(*lat), cmp_double);
	if (n)
		printf("    32 appenders, zones of 1 MiB reset meanwhile (%.0f resets/s): %.0f appends/s, "
		       "latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms (target p99.9 < 2 ms)\n",
		       (double)(uintptr_t)resets / RUN_SECONDS, rate, lat[n / 2], lat[n * 99 / 100],
		       lat[n * 999 / 1000], lat[n - 1]);
	free(lat);
	lat = NULL;
	ns_close(r.ns);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void bench_appends(void)
{
	static const int counts[] = { 1, 8, 32, 64 };
	double gc[4], one[4];
	printf("(a) durable 4 KiB Zone Appends per second (write cache off: an append counts once "
	       "its ns_sync callback returned)\n");
	double sync_ms = sync_latency_ms(false), over_ms = sync_latency_ms(true);
	printf("    4 KiB write + fdatasync on this file system: %.2f ms into a hole, %.2f ms "
	       "overwriting (median of 51): one fdatasync per append = %.0f/s\n", sync_ms, over_ms,
	       1e3 / sync_ms);
	printf("    median of %d interleaved runs of %.1f s each\n", RUNS, RUN_SECONDS);
	printf("    %-10s %14s %18s %8s\n", "appenders", "group commit", "one sync per op",
	       "ratio");
	for (int i = 0; i < 4; i++) {
		/* Interleaved, so that a change in the machine's load hits both. */
		double g[RUNS], o[RUNS];
		for (int k = 0; k < RUNS; k++) {
			g[k] = group_commit_rate(counts[i]);
			o[k] = sync_per_op_rate(counts[i]);
		}
		qsort(g, RUNS, sizeof(g[0]), cmp_double);
		qsort(o, RUNS, sizeof(o[0]), cmp_double);
		gc[i] = g[RUNS / 2];
		one[i] = o[RUNS / 2];
		printf("    %-10d %14.0f %18.0f %7.1fx\n", counts[i], gc[i], one[i], gc[i] / one[i]);
		fflush(stdout);
	}
	printf("    group commit @32 / one fdatasync per append: %.1fx (target >= 20x)\n",
	       gc[2] * sync_ms / 1e3);
	double reused[RUNS];
	uint32_t blocks = (uint32_t)(gc[2] * RUN_SECONDS / 32 * 3) + 256;
	for (int k = 0; k < RUNS; k++)
		reused[k] = group_commit_rate_reused(32, blocks < APPEND_ZONE_LBAS ? blocks
										 : APPEND_ZONE_LBAS);
	qsort(reused, RUNS, sizeof(reused[0]), cmp_double);
	printf("    group commit @32 on zones written before and reset (blocks kept): %.0f/s = %.1fx "
	       "one fdatasync per append\n", reused[RUNS / 2], reused[RUNS / 2] * sync_ms / 1e3);
	printf("    group commit @32 / one sync per op @1:  %.1fx\n", gc[2] / one[0]);
	printf("    group commit @64 / one sync per op @1:  %.1fx\n", gc[3] / one[0]);
	printf("    group commit @64 / one sync per op @64: %.1fx (concurrent syncs: the file "
	       "system batches them too)\n", gc[3] / one[3]);
	append_latency_under_resets();
	printf("\n");
}

/* ---- (b) recovery time ---- */

#define RECOVERY_ZONES 16384u
#define RECOVERY_RECORDS 1000000u

/*
 * ns_open, returning how many journal records it says it replayed (its info
 * log line, captured from stderr) and how long it took.
 */
static struct ns *timed_open(const struct ns_config *cfg, double *secs, uint64_t *replayed)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/open.log", base_dir);
	int log_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int saved = dup(STDERR_FILENO);
	if (log_fd < 0 || saved < 0 || dup2(log_fd, STDERR_FILENO) < 0)
		die("capturing the log: %s", strerror(errno));
	enum log_level lvl = log_get_level();
	log_set_level(LOG_INFO);
	double t0 = now_s();
	struct ns *ns = open_ns(cfg, false);
	*secs = now_s() - t0;
	log_set_level(lvl);
	dup2(saved, STDERR_FILENO);
	close(saved);

	char text[4096] = "";
	ssize_t n = pread(log_fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = 0;
	close(log_fd);
	unlink(path);
	const char *p = strstr(text, "replayed ");
	*replayed = p ? strtoull(p + 9, NULL, 10) : 0;
	return ns;
}

static void bench_recovery(void)
{
	struct ns_config cfg = zoned_config("recovery", RECOVERY_ZONES, 64, 64 << 20);
	struct ns *ns = open_ns(&cfg, true);
	/* Each round opens (or closes) zone after zone, then one ns_sync
	 * journals every zone it touched: one record per zone per round. */
	double t0 = now_s();
	uint32_t made = 0;
	for (uint32_t round = 0; made < RECOVERY_RECORDS; round++) {
		uint8_t zsa = round % 2 ? NVME_ZNS_ZSA_CLOSE : NVME_ZNS_ZSA_OPEN;
		for (uint32_t z = 0; z < RECOVERY_ZONES && made < RECOVERY_RECORDS; z++, made++) {
			uint16_t st = ns_zone_mgmt_send(ns, (uint64_t)z * 64, zsa, false, NULL);
			if (st)
				die("zone %u: zone management %#x failed with %#x", z, zsa, st);
		}
		sync_and_wait(ns);
	}
	double gen = now_s() - t0;
	ns_abandon(ns);

	double secs, clean;
	uint64_t replayed, none;
	ns = timed_open(&cfg, &secs, &replayed);
	ns_close(ns);
	ns = timed_open(&cfg, &clean, &none);
	ns_close(ns);
	printf("(b) recovery of %u zones (%u journal records generated in %.1f s)\n",
	       RECOVERY_ZONES, RECOVERY_RECORDS, gen);
	printf("    ns_open after ns_abandon: %.3f s, %" PRIu64 " records replayed (target <= 1 s)\n",
	       secs, replayed);
	printf("    ns_open after ns_close:   %.3f s (nothing to replay: the fixed cost of an "
	       "open)\n\n", clean);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- (c) RAM per zone ---- */

/* Resident anonymous and file-backed memory of this process, in bytes.
 * smaps_rollup walks the page tables: exact, unlike the RSS counters of
 * /proc/self/status, which the kernel keeps per CPU and sums lazily. */
static void rss(uint64_t *anon, uint64_t *file)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	uint64_t total = 0;
	*anon = 0;
	if (!f)
		die("/proc/self/smaps_rollup: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			total = kb << 10;
		else if (sscanf(line, "Anonymous: %llu kB", &kb) == 1)
			*anon = kb << 10;
	}
	fclose(f);
	*file = total - *anon;
}

/* Open (format) a namespace of nr_zones zones in a child process and print
 * the RSS it added. A child of a process that has not allocated much yet, so
 * that the engine's allocations cannot reuse pages already resident. */
static void measure_rss(uint32_t nr_zones, uint32_t zde_size)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		struct ns_config cfg = zoned_config("rss", nr_zones, 16, 64 << 10);
		cfg.zde_size = zde_size;
		uint64_t a0, f0, a1, f1;
		rss(&a0, &f0);
		struct ns *ns = open_ns(&cfg, true);
		rss(&a1, &f1);
		printf("    %-8u %-9u %14.1f %14.1f %14.1f\n", nr_zones, zde_size,
		       (double)(a1 - a0) / nr_zones, (double)(f1 - f0) / nr_zones,
		       (double)(a1 + f1 - a0 - f0) / nr_zones);
		fflush(stdout);
		ns_close(ns);
		nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("the RSS measurement for %u zones failed", nr_zones);
}

static void bench_memory(void)
{
	size_t heap = sizeof(struct zone) + sizeof(uint64_t);
	size_t mapped = sizeof(struct zimg_desc);
	printf("(c) RAM per zone (target <= 128 bytes + extension)\n");
	printf("    from the engine's allocations (bytes per zone):\n");
	printf("      struct zone (zns_init)                    %4zu\n", sizeof(struct zone));
	printf("      changed-zone list entry (zns_init)        %4zu\n", sizeof(uint64_t));
	printf("      heap total                                %4zu  + zde_size (RAM copy of "
	       "the extension)\n", heap);
	printf("      image descriptor, mmap'd (page cache)     %4zu  + zde_size (extension in "
	       "the image)\n", mapped);
	printf("      all                                       %4zu  + 2 x zde_size\n",
	       heap + mapped);
	printf("    measured: RSS added by ns_open (format), bytes per zone:\n");
	printf("    %-8s %-9s %14s %14s %14s\n", "zones", "zde_size", "anonymous", "file (image)",
	       "total");
	measure_rss(16384, 0);
	measure_rss(262144, 0);
	measure_rss(262144, 64);
	printf("\n");
}

int main(void)
{
	log_set_level(LOG_WARN);
	const char *tmp = getenv("TMPDIR");
	snprintf(base_dir, sizeof(base_dir), "%s/znstgt-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base_dir))
		die("mkdtemp %s: %s", base_dir, strerror(errno));
	struct statfs sf;
	printf("bench_zone: data in %s (file system magic %#lx)\n\n", base_dir,
	       statfs(base_dir, &sf) ? 0ul : (unsigned long)sf.f_type);
	bench_memory(); /* first: its children must not inherit a heap with free pages */
	bench_appends();
	bench_recovery();
	nftw(base_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
