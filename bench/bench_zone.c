/*
 * Zone engine benchmark. Prints figures, each beside its limit where it has
 * one; asserts nothing.
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
 *     while another thread fills other zones with 1 MiB and resets them,
 *     the same without the resets, and the tail of one fdatasync: the
 *     floor of a commit's latency (interleaved runs).
 * (b) Recovery: a namespace of 16,384 zones whose journal holds 1,000,000
 *     records to replay (zone transitions with a journal too big to
 *     checkpoint), abandoned as a power cut would leave it (ns_abandon);
 *     then the time ns_open takes, against the time of a clean ns_open.
 * (c) RAM per zone: what the engine allocates per zone (from its headers),
 *     and the RSS an ns_open of 16,384 and 262,144 zones adds, measured in
 *     a child process (smaps_rollup: resident anonymous and file pages).
 * (d) A large namespace: 16 TiB of 64 MiB zones (262,144 zones), each figure
 *     beside its limit: format; open with a full journal to replay; report
 *     every zone through Zone Management Receive over NVMe/TCP in commands
 *     of MDTS bytes (a host's pages), and through the engine's report
 *     function in one buffer; RAM per zone after that open.
 *
 * Files go to a temporary directory under $TMPDIR (default /tmp); the figures
 * are those of that file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
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

#include "../tests/lib/nvmf_client.h"
#include "../tests/lib/nvmf_ns.h"
#include "config.h"
#include "ctrl.h"
#include "crc32c.h"
#include "log.h"
#include "ns.h"
#include "subsys.h"
#include "tcp.h"
#include "worker.h"
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

static struct ns_config zoned_config_at(const char *path, uint32_t nr_zones, uint32_t zone_lbas,
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
	snprintf(cfg.path, sizeof(cfg.path), "%s", path);
	return cfg;
}

/* The same in a fresh directory `name` under the benchmark's directory. */
static struct ns_config zoned_config(const char *name, uint32_t nr_zones, uint32_t zone_lbas,
				     uint64_t journal_size)
{
	struct ns_config cfg = zoned_config_at("", nr_zones, zone_lbas, journal_size);
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
		/* As the target does: durable when it returns (one commit). */
		uint16_t st = ns_zone_mgmt_apply(r->ns, (uint64_t)z * APPEND_ZONE_LBAS,
						 NVME_ZNS_ZSA_RESET, false, NULL);
		if (st)
			die("zone %u: Reset failed with status %#x", z, st);
		resets++;
	}
	return (void *)(uintptr_t)resets;
}

static int cmp_double(const void *a, const void *b);

/* p50, p99, p99.9 and max of n sorted latencies, as printed below. */
static void print_tail(const double *v, uint32_t n)
{
	printf("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms", v[n / 2], v[n * 99 / 100],
	       v[n * 999 / 1000], v[n - 1]);
}

/* 32 appenders' latency, with zones 32-63 filled and reset meanwhile or
 * not: what the resets add to the tail. */
static void append_latency(bool resets)
{
	struct ns_config cfg = zoned_config("append", MAX_APPENDERS, APPEND_ZONE_LBAS, 64 << 20);
	struct append_run r = { .ns = open_ns(&cfg, true) };
	lat = malloc(MAX_LAT * sizeof(*lat));
	if (!lat)
		die("out of memory");
	nlat = 0;
	pthread_t t;
	if (resets && pthread_create(&t, NULL, resetter, &r))
		die("pthread_create failed");
	double rate = run_group_commit(&r, 32);
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	void *nresets = NULL;
	if (resets)
		pthread_join(t, &nresets);
	uint32_t n = nlat < MAX_LAT ? nlat : MAX_LAT;
	qsort(lat, n, sizeof(*lat), cmp_double);
	if (n) {
		if (resets)
			printf("    32 appenders, zones of 1 MiB reset meanwhile (%.0f resets/s): ",
			       (double)(uintptr_t)nresets / RUN_SECONDS);
		else
			printf("    32 appenders, no resets:                        ");
		printf("%5.0f appends/s, latency ", rate);
		print_tail(lat, n);
		printf("%s\n", resets ? " (target p99.9 < 2 ms)" : "");
	}
	free(lat);
	lat = NULL;
	ns_close(r.ns);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The floor of an append's latency: a commit waits for at least one
 * fdatasync of the data file. Its tail, over RUN_SECONDS of 4 KiB overwrites
 * each followed by fdatasync, on the same file system. */
static void sync_tail(void)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s/tail", base_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	static double t[MAX_LAT / 8];
	uint8_t buf[BLK] = { 1 };
	for (int i = 0; i < 256; i++)
		write_full(fd, buf, BLK, (off_t)i * BLK);
	if (fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	uint32_t n = 0;
	for (double end = now_s() + RUN_SECONDS; now_s() < end && n < MAX_LAT / 8; n++) {
		double t0 = now_s();
		write_full(fd, buf, BLK, (off_t)(n % 256) * BLK);
		if (fdatasync(fd))
			die("fdatasync: %s", strerror(errno));
		t[n] = (now_s() - t0) * 1e3;
	}
	close(fd);
	unlink(path);
	qsort(t, n, sizeof(t[0]), cmp_double);
	printf("    limit: one 4 KiB overwrite + fdatasync (%u of them):      ", n);
	print_tail(t, n);
	printf("\n");
}

/* Interleaved, so that a change in the machine's load hits all three. */
static void append_latency_under_resets(void)
{
	for (int k = 0; k < RUNS; k++) {
		append_latency(true);
		append_latency(false);
		sync_tail();
		fflush(stdout);
	}
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

/* Journal `records` zone transitions on the first nr_zones zones: each
 * round opens (or closes) zone after zone, then one ns_sync journals every
 * zone it touched, one record per zone per round. */
static void fill_journal(struct ns *ns, uint32_t nr_zones, uint64_t zone_lbas, uint32_t records)
{
	uint32_t made = 0;
	for (uint32_t round = 0; made < records; round++) {
		uint8_t zsa = round % 2 ? NVME_ZNS_ZSA_CLOSE : NVME_ZNS_ZSA_OPEN;
		for (uint32_t z = 0; z < nr_zones && made < records; z++, made++) {
			uint16_t st = ns_zone_mgmt_apply(ns, (uint64_t)z * zone_lbas, zsa, false, NULL);
			if (st)
				die("zone %u: zone management %#x failed with %#x", z, zsa, st);
		}
		sync_and_wait(ns);
	}
}

static void bench_recovery(void)
{
	struct ns_config cfg = zoned_config("recovery", RECOVERY_ZONES, 64, 64 << 20);
	struct ns *ns = open_ns(&cfg, true);
	double t0 = now_s();
	fill_journal(ns, RECOVERY_ZONES, 64, RECOVERY_RECORDS);
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

/* ---- (d) a large namespace ---- */

#define LARGE_ZONES 262144u
#define LARGE_ZONE_LBAS 16384u        /* 64 MiB zones: 16 TiB */
#define LARGE_SIZE_INI "16T"
#define LARGE_JOURNAL (64ull << 20)   /* the default journal_size */
/* A full journal: as many records as fit before a checkpoint is due. */
#define LARGE_RECORDS ((uint32_t)((LARGE_JOURNAL - 1) / sizeof(struct zjnl_record)))
#define LIMIT_S 1.0
#define LIMIT_RAM 128.0               /* bytes per zone */
#define LARGE_NQN "nqn.2026-11.io.znstgt:bench-large"
#define LARGE_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:5e0c1b2a-7d4f-4a8e-9b61-0f3c2d1e4a57"

static char sparse_data[1100];        /* the data file, when not in the namespace directory */

static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[1 << 20];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	if (in < 0 || out < 0)
		die("copying %s to %s: %s", from, to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("%s: %s", to, strerror(errno));
	/* On disk, as the files of a machine that lost power would be: the
	 * timed open must not pay for writing them back. */
	if (n < 0 || fsync(out))
		die("copying %s to %s: %s", from, to, strerror(errno));
	close(in);
	close(out);
}

/* Save (or put back) the zone image and journal of the namespace in dir. */
static void meta_files(const char *dir, bool save)
{
	static const char *const names[] = { "zones.img", "zones.jnl" };
	for (int i = 0; i < 2; i++) {
		char live[1200], saved[1200];
		snprintf(live, sizeof(live), "%s/%s", dir, names[i]);
		snprintf(saved, sizeof(saved), "%s/saved.%s", base_dir, names[i]);
		copy_file(save ? live : saved, save ? saved : live);
	}
}

static void remove_sparse_data(void)
{
	if (sparse_data[0])
		unlink(sparse_data);
}

/*
 * The data file must be sparse and 16 TiB long. ext4 stops 4 KiB short of
 * that (its largest file with 4 KiB blocks), so when the namespace's file
 * system refuses, the file goes to one that takes it (ZNSTGT_BENCH_SPARSE_DIR,
 * default /dev/shm) and the namespace directory links to it; the zone
 * metadata stays where the other figures are measured.
 */
static void place_data(const struct ns_config *cfg)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/data", cfg->path);
	if (mkdir(cfg->path, 0755) && errno != EEXIST)
		die("%s: %s", cfg->path, strerror(errno));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	int rc = ftruncate(fd, (off_t)cfg->size) ? errno : 0;
	close(fd);
	if (!rc)
		return;
	unlink(path);
	const char *alt = getenv("ZNSTGT_BENCH_SPARSE_DIR");
	alt = alt && *alt ? alt : "/dev/shm";
	snprintf(sparse_data, sizeof(sparse_data), "%s/znstgt-bench-data-XXXXXX", alt);
	fd = mkstemp(sparse_data);
	if (fd < 0 || ftruncate(fd, (off_t)cfg->size))
		die("neither %s (%s) nor %s (%s) takes a sparse file of %" PRIu64 " bytes; set "
		    "ZNSTGT_BENCH_SPARSE_DIR to a directory that does", cfg->path, strerror(rc),
		    alt, strerror(errno), cfg->size);
	close(fd);
	atexit(remove_sparse_data); /* die() too: 16 TiB files should not pile up */
	if (symlink(sparse_data, path))
		die("%s: %s", path, strerror(errno));
}

/* Every zone reported once, in order, as the engine keeps it. */
static void check_zones(const struct nvme_zns_desc *d, uint32_t n, const char *how)
{
	if (n != LARGE_ZONES)
		die("%s: %u zones reported, not %u", how, n, LARGE_ZONES);
	for (uint32_t i = 0; i < n; i++)
		if (le64toh(d[i].zslba) != (uint64_t)i * LARGE_ZONE_LBAS ||
		    le64toh(d[i].zcap) != LARGE_ZONE_LBAS)
			die("%s: descriptor %u is of the zone at LBA %" PRIu64, how, i,
			    (uint64_t)le64toh(d[i].zslba));
}

struct figure {
	double v[RUNS];
};

static void print_figure(const char *name, struct figure *f, const char *note)
{
	qsort(f->v, RUNS, sizeof(f->v[0]), cmp_double);
	double med = f->v[RUNS / 2];
	printf("    %-44s %8.3f s %6.1f s %7.2f  %.3f-%.3f s%s%s\n", name, med, LIMIT_S,
	       med / LIMIT_S, f->v[0], f->v[RUNS - 1], note ? "  " : "", note ? note : "");
	fflush(stdout);
}

/* The whole report through ns_zone_report(), one buffer. */
static double engine_report(struct ns *ns, uint8_t *buf, size_t len)
{
	double t0 = now_s();
	uint16_t st = ns_zone_report(ns, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
				     false, buf, len);
	double t = now_s() - t0;
	if (st)
		die("ns_zone_report failed with status %#x", st);
	const struct nvme_zone_report *r = (const void *)buf;
	check_zones(r->entries, (uint32_t)le64toh(r->nr_zones), "ns_zone_report");
	return t;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		die("%s: %s", path, strerror(errno));
}

/* The target in this process, serving the namespace on an ephemeral port. */
static void start_target(const struct ns_config *ns_cfg, bool format, struct target_config *tc,
			 char *port, size_t portlen)
{
	char path[1200], text[6000], err[512];
	snprintf(path, sizeof(path), "%s/tgtconf", base_dir);
	if (mkdir(path, 0755))
		die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/tgtconf/large.ini", base_dir);
	snprintf(text, sizeof(text), "[subsystem]\nnqn = %s\nallow_any_host = yes\n"
		 "[namespace 1]\npath = %s\nsize = %s\nzone_size = %" PRIu64 "\n", LARGE_NQN,
		 ns_cfg->path, LARGE_SIZE_INI, ns_cfg->zone_size);
	write_text(path, text);
	snprintf(path, sizeof(path), "%s/tgt.ini", base_dir);
	snprintf(text, sizeof(text), "[target]\nlisten = 127.0.0.1:4420\nthreads = 1\n"
		 "io_threads = 2\ndata_dir = %s/tgtdata\nlog_level = warn\n"
		 "include = tgtconf/*.ini\n", base_dir);
	write_text(path, text);
	if (config_load(path, tc, err, sizeof(err)))
		die("%s", err);
	snprintf(tc->listeners[0].port, sizeof(tc->listeners[0].port), "0");
	if (subsys_registry_init(tc, format, err, sizeof(err)))
		die("%s", err);
	if (workers_start(tc->threads, tc->io_threads))
		die("cannot start the workers");
	if (tcp_listeners_start(tc, err, sizeof(err)))
		die("%s", err);
	snprintf(port, portlen, "%s", tcp_listener_port(0)->trsvcid);
}

static void stop_target(struct target_config *tc)
{
	tcp_listeners_stop();
	nvme_sq_disconnect_all();
	if (!nvme_sq_wait_all_freed(10))
		die("the target's queues did not go away");
	subsys_registry_destroy();
	workers_stop();
	config_free(tc);
}

/* Every zone over NVMe/TCP, as a host reads them: Zone Management Receive
 * after Zone Management Receive, each of MDTS bytes, partial reports. */
static double tcp_report(struct nvmf_client *io, const struct nvmf_ns_geom *g,
			 struct nvme_zns_desc *d, uint32_t *cmds)
{
	uint32_t n = 0;
	*cmds = 0;
	double t0 = now_s();
	while (n < LARGE_ZONES) {
		uint32_t got;
		int st = nvmf_zone_report(io, g, (uint64_t)n * LARGE_ZONE_LBAS, d + n,
					  LARGE_ZONES - n, &got);
		if (st || !got)
			die("Zone Management Receive at zone %u: %s (status %#x)", n,
			    st < 0 ? io->err : "no zones", (unsigned)st);
		n += got;
		(*cmds)++;
	}
	double t = now_s() - t0;
	check_zones(d, n, "Zone Management Receive");
	return t;
}

/*
 * The target checks that the namespace directory's own file system takes
 * the data file, so with the data file linked from elsewhere (place_data)
 * it serves a namespace formatted anew in a directory beside that file
 * instead: the zones are then all empty, which changes nothing a report
 * does per zone.
 */
static void bench_tcp_report(const struct ns_config *large)
{
	static struct nvmf_client admin, io;
	struct ns_config cfg = *large;
	struct target_config tc;
	struct nvmf_ns_geom g;
	char port[NVMF_TRSVCID_SIZE], fresh[1200] = "";
	if (sparse_data[0]) {
		snprintf(fresh, sizeof(fresh), "%s", sparse_data);
		snprintf(strrchr(fresh, '/'), sizeof(fresh) - (size_t)(strrchr(fresh, '/') - fresh),
			 "/znstgt-bench-ns-XXXXXX");
		if (!mkdtemp(fresh))
			die("%s: %s", fresh, strerror(errno));
		snprintf(cfg.path, sizeof(cfg.path), "%s", fresh);
	}
	start_target(&cfg, fresh[0] != 0, &tc, port, sizeof(port));
	if (nvmf_tcp_connect(&admin, "127.0.0.1", port, false, false) ||
	    nvmf_connect(&admin, 0, 32, 0, LARGE_HOSTNQN, LARGE_NQN, 0xffff, 0, NULL) ||
	    nvmf_enable(&admin, 5000) || nvmf_ns_geometry(&admin, 1, &g) ||
	    nvmf_tcp_connect(&io, "127.0.0.1", port, false, false) ||
	    nvmf_connect(&io, 1, 32, 0, LARGE_HOSTNQN, LARGE_NQN, admin.cntlid, 0, NULL))
		die("connecting to the target: %s / %s", admin.err, io.err);
	struct nvme_zns_desc *d = calloc(LARGE_ZONES, sizeof(*d));
	if (!d)
		die("out of memory");
	struct figure f;
	uint32_t cmds = 0;
	for (int k = 0; k < RUNS; k++)
		f.v[k] = tcp_report(&io, &g, d, &cmds);
	char note[1300];
	snprintf(note, sizeof(note), "(%u commands of %u KiB%s%s)", cmds, g.mdts_bytes >> 10,
		 fresh[0] ? "; namespace formatted anew in " : "", fresh);
	print_figure("report: Zone Mgmt Receive over NVMe/TCP", &f, note);
	free(d);
	nvmf_close(&io);
	nvmf_close(&admin);
	stop_target(&tc);
	if (fresh[0])
		nftw(fresh, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/*
 * RAM per zone of an ns_open that replays a full journal, in a fresh
 * process (this one's heap holds freed pages the open would reuse, hiding
 * what it costs): the heap it allocated (mallinfo2: in use, arena and
 * mmap'd chunks, touched or not) and the anonymous memory it made resident
 * (smaps_rollup: heap pages, thread stacks). The figure is the larger. The
 * image's mmap'd page cache is printed apart and not counted.
 */
static void large_ram_child(const char *path)
{
	struct ns_config cfg = zoned_config_at(path, LARGE_ZONES, LARGE_ZONE_LBAS, LARGE_JOURNAL);
	uint64_t a0, f0, a1, f1;
	struct mallinfo2 m0 = mallinfo2();
	rss(&a0, &f0);
	struct ns *ns = open_ns(&cfg, false);
	struct mallinfo2 m1 = mallinfo2();
	rss(&a1, &f1);
	double heap = (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / LARGE_ZONES;
	double anon = (double)(a1 - a0) / LARGE_ZONES, file = (double)(f1 - f0) / LARGE_ZONES;
	double ram = heap > anon ? heap : anon;
	printf("    %-44s %8.1f B %6.0f B %7.2f  heap %.1f B, anonymous %.1f B; image pages %.1f B "
	       "(not counted)\n", "RAM per zone after that open", ram, LIMIT_RAM, ram / LIMIT_RAM,
	       heap, anon, file);
	fflush(stdout);
	ns_close(ns);
}

static void large_ram(const char *path)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/proc/self/exe", "bench_zone", "--large-ram", path, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("the RAM measurement of the large namespace failed");
}

static void bench_large(void)
{
	struct ns_config cfg = zoned_config("large", LARGE_ZONES, LARGE_ZONE_LBAS, LARGE_JOURNAL);
	char data[4200];
	struct figure f;
	snprintf(data, sizeof(data), "%s/data", cfg.path);
	place_data(&cfg);
	printf("(d) large namespace: %" PRIu64 " TiB, %u zones of %u MiB, a full journal of %u "
	       "records (%llu MiB)\n", cfg.size >> 40, LARGE_ZONES, LARGE_ZONE_LBAS * BLK >> 20,
	       LARGE_RECORDS, LARGE_JOURNAL >> 20);
	if (sparse_data[0])
		printf("    zone metadata in %s; the data file in %s (the first file system does not "
		       "take a %" PRIu64 " TiB file)\n", cfg.path, sparse_data, cfg.size >> 40);
	printf("    median of %d runs                              figure    limit   ratio  "
	       "spread\n", RUNS);

	for (int k = 0; k < RUNS; k++) {
		double t0 = now_s();
		struct ns *ns = open_ns(&cfg, true);
		f.v[k] = now_s() - t0;
		ns_close(ns);
	}
	print_figure("format (ns_open, format)", &f, NULL);

	struct ns *ns = open_ns(&cfg, true);
	double t0 = now_s();
	fill_journal(ns, LARGE_ZONES, LARGE_ZONE_LBAS, LARGE_RECORDS);
	double gen = now_s() - t0;
	ns_abandon(ns);
	meta_files(cfg.path, true);
	uint64_t replayed = 0;
	for (int k = 0; k < RUNS; k++) {
		meta_files(cfg.path, false);
		ns = timed_open(&cfg, &f.v[k], &replayed);
		if (replayed != LARGE_RECORDS)
			die("ns_open replayed %" PRIu64 " records, not %u", replayed, LARGE_RECORDS);
		if (k < RUNS - 1)
			ns_close(ns);
	}
	char note[96];
	snprintf(note, sizeof(note), "(%u records, written in %.1f s)", LARGE_RECORDS, gen);
	print_figure("open after a power cut, full journal", &f, note);

	size_t len = sizeof(struct nvme_zone_report) + (size_t)LARGE_ZONES * sizeof(struct nvme_zns_desc);
	uint8_t *buf = malloc(len);
	if (!buf)
		die("out of memory");
	for (int k = 0; k < RUNS; k++)
		f.v[k] = engine_report(ns, buf, len);
	snprintf(note, sizeof(note), "(one buffer of %zu MiB)", len >> 20);
	print_figure("report: ns_zone_report, all zones", &f, note);
	free(buf);
	ns_close(ns);

	bench_tcp_report(&cfg);

	meta_files(cfg.path, false);
	large_ram(cfg.path);

	struct stat st;
	if (stat(data, &st))
		die("%s: %s", data, strerror(errno));
	printf("    data file: %" PRIu64 " bytes long, %" PRIu64 " bytes allocated\n\n",
	       (uint64_t)st.st_size, (uint64_t)st.st_blocks * 512);
	nftw(cfg.path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	remove_sparse_data();
	sparse_data[0] = 0;
}

int main(int argc, char **argv)
{
	log_set_level(LOG_WARN);
	if (argc == 3 && !strcmp(argv[1], "--large-ram")) { /* large_ram()'s child */
		large_ram_child(argv[2]);
		return 0;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(base_dir, sizeof(base_dir), "%s/znstgt-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base_dir))
		die("mkdtemp %s: %s", base_dir, strerror(errno));
	struct statfs sf;
	printf("bench_zone: data in %s (file system magic %#lx)\n\n", base_dir,
	       statfs(base_dir, &sf) ? 0ul : (unsigned long)sf.f_type);
	/* Sections named on the command line, else all of them. */
	static const struct {
		const char *name;
		void (*run)(void);
	} sections[] = {
		{ "memory", bench_memory }, /* first: its children must not inherit a heap
					     * with free pages */
		{ "appends", bench_appends },
		{ "recovery", bench_recovery },
		{ "large", bench_large },
	};
	for (int i = 1; i < argc; i++) {
		bool known = false;
		for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++)
			known |= !strcmp(argv[i], sections[k].name);
		if (!known)
			die("usage: bench_zone [memory|appends|recovery|large]...");
	}
	for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++) {
		bool run = argc == 1;
		for (int i = 1; i < argc; i++)
			run |= !strcmp(argv[i], sections[k].name);
		if (run)
			sections[k].run();
	}
	nftw(base_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
