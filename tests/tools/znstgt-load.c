/*
 * znstgt-load: an NVMe/TCP load generator that plays the host.
 *
 * It connects to one subsystem of any NVMe/TCP target like a Linux host
 * (ICReq, admin Connect, CC.EN, Identify, Set Features Number of Queues;
 * the target's limits read as tests/lib/nvmf_ns.h says), opens --queues
 * I/O queues of --qd commands each, one thread per queue
 * (tests/lib/load.h), runs a workload for --time seconds
 * or --ios commands and prints IOPS, MB/s and latency (mean, p50, p99,
 * p99.9). Beside every figure it measures, in the same run, what plain TCP
 * over loopback does with the same message sizes between two threads of
 * its own (tests/lib/limits.h), and prints the ratios.
 *
 * Setup before the clock starts: the namespace geometry from Identify; on a
 * zoned namespace the zones from a zone report, and a Reset of every zone
 * of the region that will be written (writes, appends, --prefill); with
 * --prefill (implied by --verify on reads) a known pattern over the region.
 *
 * With --tls-key / --tls-key-file every connection runs TLS 1.3 with the
 * PSK identity and TLS PSK a Linux host derives from that configured PSK
 * (tests/lib/nvmf_tls.h); the loopback limits stay plain TCP.
 *
 * With --vfio-user SOCKET it is instead a VM's polling nvme driver on a
 * vfio-user socket (tests/lib/vfu_nvme.h, load_vfu.h): reads on one queue,
 * the same figures, no loopback limit (make bench puts them beside the
 * same reads over NVMe/TCP).
 *
 * Exit status: 0 success, 1 an error (connection, command failure, data
 * mismatch), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <nvme/types.h>

#include "../lib/lat_hist.h"
#include "../lib/limits.h"
#include "../lib/load.h"
#include "../lib/load_vfu.h"
#include "../lib/nvmf_client.h"
#include "../lib/nvmf_ns.h"
#include "../lib/nvmf_tls.h"
#include "../lib/vfu_nvme.h"
#include "config.h"
#include "nvme_keys.h"
#include "nvme_tcp.h"

#define DEFAULT_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:6c0ad1a7-2f1e-4f5e-9a53-1d0c8e5b7a42"
#define PREFILL_BS (128u * 1024)
#define MAX_QUEUES 64
#define MAX_BS (1u << 20)
#define CAPSULE_LEN ((uint32_t)sizeof(struct nvme_tcp_cmd))  /* 72 */
#define RESPONSE_LEN ((uint32_t)sizeof(struct nvme_tcp_rsp)) /* 24 */

struct opts {
	const char *addr, *port, *subnqn, *hostnqn, *sync_dir, *vfio_user;
	uint32_t nsid;
	const char *workload;
	enum load_op op;
	bool random;
	uint32_t bs;
	int qd, queues;
	double time, ramp, limit_time;
	uint64_t ios, region;
	uint32_t active_zones;
	bool prefill, verify, hdgst, ddgst, no_sqflow, no_limit, terse;
	uint64_t seed;
	int timeout_ms;
	struct limit_cpus cpus;    /* client = --cpu, server = --target-cpu; --poll, --target-poll */
	struct nvmf_tls_cfg tls;   /* tls.psk set: every connection in TLS 1.3 */
	const char *cipher;        /* the TLS cipher suite negotiated, for the report */
	struct nvme_secret *psk;   /* tls.psk's, to free */
};

struct limits {
	bool have;
	double rr_ops, stream_bps, sync_ops;
	struct lat_hist rr_lat, sync_lat;
	uint32_t rr_req, rr_rsp;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: znstgt-load -n SUBNQN [options]\n"
"Drive an NVMe/TCP subsystem as a host and compare with plain TCP over loopback.\n\n"
"  -a, --addr ADDR        target address (127.0.0.1)\n"
"  -p, --port PORT        target port (4420)\n"
"  -n, --subnqn NQN       subsystem to connect to (required)\n"
"      --hostnqn NQN      host NQN (a fixed one)\n"
"  -N, --nsid N           namespace (1)\n"
"  -w, --workload W       randread | read | randwrite | write | append (randread)\n"
"                         read/write without rand: sequential; on a zoned namespace\n"
"                         writes are sequential per zone, appends spread over zones\n"
"  -b, --bs SIZE          bytes per I/O, 512 to 1M, a multiple of the LBA size (4K)\n"
"  -q, --qd N             commands in flight per queue, 1..%d (1)\n"
"  -j, --queues N         I/O queues, one connection and thread each, 1..%d (1)\n"
"  -t, --time SECONDS     measured run time (5)\n"
"  -i, --ios N            instead of a time: N I/Os in total, all measured\n"
"      --ramp SECONDS     run before measuring starts (0.5)\n"
"      --region SIZE      use the first SIZE bytes of the namespace (all of it)\n"
"      --zones N          appends: zones open at once per queue (4)\n"
"      --prefill          write a pattern over the region first (for reads)\n"
"      --verify           check data: reads against the prefilled pattern (implies\n"
"                         --prefill), writes and appends by reading them back\n"
"      --digest WHICH     hdgst, ddgst or both: NVMe/TCP digests (none)\n"
"      --no-sqflow        Connect with SQ flow control disabled (reads then end in\n"
"                         C2HData with SUCCESS, without a CapsuleResp)\n"
"      --limit-time SEC   length of each loopback measurement (the run time, at most 2)\n"
"      --no-limit         skip the loopback measurements\n"
"      --sync-dir DIR     also measure one fdatasync per write of bs bytes on a file\n"
"                         in DIR (the baseline of durable appends)\n"
"      --cpu N            run the queue threads (and the loopback clients) on CPU N\n"
"      --target-cpu N     run the loopback servers on CPU N: where the target runs\n"
"      --poll             the queue threads (and the loopback clients) spin on their\n"
"                         sockets instead of sleeping in them\n"
"      --target-poll      the loopback servers spin too: for a target with poll = yes\n"
"      --terse            print one line of key=value pairs (for scripts)\n"
"      --seed N           random offsets and patterns (1)\n"
"      --timeout MS       a command not answered for this long is an error (10000)\n"
"      --tls-key-file FILE  TLS 1.3: the configured PSK (NVMeTLSkey-1:..., a file\n"
"                         only its owner may read); 01 (SHA-256) keys use\n"
"                         TLS_AES_128_GCM_SHA256, 02 (SHA-384) TLS_AES_256_GCM_SHA384\n"
"      --tls-key KEY      the same, from the command line (visible to ps)\n"
"      --tls-identity N   PSK identity version 0 (NVMe0R..) or 1 (NVMe1R.., default)\n"
"      --tls-hkdf WHICH   rfc8446 or libnvme: the HKDF-Expand-Label encoding (rfc8446\n"
"                         for identity 1, libnvme, as nvme-cli 2.7-2.15, for 0)\n"
"      --vfio-user SOCKET instead of NVMe/TCP: be a VM's polling nvme driver on that\n"
"                         vfio-user socket (reads on one queue; no loopback limit)\n"
"  -h, --help             this text\n\n"
"Exit status: 0 success, 1 error (including a data mismatch), 2 usage.\n",
		NVMF_CLIENT_SLOTS - 1, MAX_QUEUES);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "znstgt-load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "znstgt-load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	usage(stderr);
	exit(2);
}

/* ---- options ---- */

static double parse_seconds(const char *name, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0) || v > 86400)
		bad_usage("%s: '%s' is not a number of seconds", name, s);
	return v;
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s || *end || errno || *s == '-' || v < lo || v > hi)
		bad_usage("%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, name, s, lo, hi);
	return v;
}

static uint64_t parse_bytes(const char *name, const char *s)
{
	uint64_t v;

	if (config_parse_size(s, &v) || !v)
		bad_usage("%s: '%s' is not a size (e.g. 4096, 4K, 128K, 1M)", name, s);
	return v;
}

static void parse_workload(struct opts *o)
{
	static const struct {
		const char *name;
		enum load_op op;
		bool random;
	} w[] = {
		{ "randread", LOAD_READ, true },   { "read", LOAD_READ, false },
		{ "randwrite", LOAD_WRITE, true }, { "write", LOAD_WRITE, false },
		{ "append", LOAD_APPEND, false },
	};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (!strcmp(o->workload, w[i].name)) {
			o->op = w[i].op;
			o->random = w[i].random;
			return;
		}
	bad_usage("--workload: unknown '%s'", o->workload);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_HOSTNQN = 256, O_RAMP, O_REGION, O_ZONES, O_PREFILL, O_VERIFY, O_DIGEST,
	       O_NOSQFLOW, O_LIMIT_TIME, O_NO_LIMIT, O_SYNC_DIR, O_TERSE, O_SEED, O_TIMEOUT,
	       O_CPU, O_TARGET_CPU, O_VFIO_USER, O_TLS_KEY, O_TLS_KEY_FILE, O_TLS_IDENTITY,
	       O_TLS_HKDF, O_POLL, O_TARGET_POLL };
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "subnqn", required_argument, NULL, 'n' },
		{ "hostnqn", required_argument, NULL, O_HOSTNQN },
		{ "nsid", required_argument, NULL, 'N' },
		{ "workload", required_argument, NULL, 'w' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'j' },
		{ "time", required_argument, NULL, 't' },
		{ "ios", required_argument, NULL, 'i' },
		{ "ramp", required_argument, NULL, O_RAMP },
		{ "region", required_argument, NULL, O_REGION },
		{ "zones", required_argument, NULL, O_ZONES },
		{ "prefill", no_argument, NULL, O_PREFILL },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "digest", required_argument, NULL, O_DIGEST },
		{ "no-sqflow", no_argument, NULL, O_NOSQFLOW },
		{ "limit-time", required_argument, NULL, O_LIMIT_TIME },
		{ "no-limit", no_argument, NULL, O_NO_LIMIT },
		{ "sync-dir", required_argument, NULL, O_SYNC_DIR },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "target-cpu", required_argument, NULL, O_TARGET_CPU },
		{ "poll", no_argument, NULL, O_POLL },
		{ "target-poll", no_argument, NULL, O_TARGET_POLL },
		{ "terse", no_argument, NULL, O_TERSE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "vfio-user", required_argument, NULL, O_VFIO_USER },
		{ "tls-key", required_argument, NULL, O_TLS_KEY },
		{ "tls-key-file", required_argument, NULL, O_TLS_KEY_FILE },
		{ "tls-identity", required_argument, NULL, O_TLS_IDENTITY },
		{ "tls-hkdf", required_argument, NULL, O_TLS_HKDF },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tls_key = NULL, *tls_key_file = NULL, *tls_hkdf = NULL;
	char why[256];
	int c;

	*o = (struct opts){ .addr = "127.0.0.1", .port = "4420", .hostnqn = DEFAULT_HOSTNQN,
			    .nsid = 1, .workload = "randread", .bs = 4096, .qd = 1, .queues = 1,
			    .time = 5, .ramp = 0.5, .limit_time = -1, .active_zones = 4,
			    .seed = 1, .timeout_ms = 10000, .cpus = { .client = -1, .server = -1 },
			    .tls = { .version = 1 } };
	while ((c = getopt_long(argc, argv, "a:p:n:N:w:b:q:j:t:i:h", lo, NULL)) != -1) {
		switch (c) {
		case 'a': o->addr = optarg; break;
		case 'p': o->port = optarg; break;
		case 'n': o->subnqn = optarg; break;
		case O_HOSTNQN: o->hostnqn = optarg; break;
		case 'N': o->nsid = (uint32_t)parse_u64("--nsid", optarg, 1, 0xfffffffe); break;
		case 'w': o->workload = optarg; break;
		case 'b': {
			uint64_t v = parse_bytes("--bs", optarg);
			if (v < 512 || v > MAX_BS || v % 512)
				bad_usage("--bs: %s is not a multiple of 512 from 512 to 1M", optarg);
			o->bs = (uint32_t)v;
			break;
		}
		case 'q': o->qd = (int)parse_u64("--qd", optarg, 1, NVMF_CLIENT_SLOTS - 1); break;
		case 'j': o->queues = (int)parse_u64("--queues", optarg, 1, MAX_QUEUES); break;
		case 't': o->time = parse_seconds("--time", optarg); break;
		case 'i': o->ios = parse_u64("--ios", optarg, 1, UINT64_MAX / 2); break;
		case O_RAMP: o->ramp = parse_seconds("--ramp", optarg); break;
		case O_REGION: o->region = parse_bytes("--region", optarg); break;
		case O_ZONES: o->active_zones = (uint32_t)parse_u64("--zones", optarg, 1, 4096); break;
		case O_PREFILL: o->prefill = true; break;
		case O_VERIFY: o->verify = true; break;
		case O_DIGEST:
			if (!strcmp(optarg, "hdgst") || !strcmp(optarg, "both"))
				o->hdgst = true;
			if (!strcmp(optarg, "ddgst") || !strcmp(optarg, "both"))
				o->ddgst = true;
			if (!o->hdgst && !o->ddgst)
				bad_usage("--digest: '%s' is not hdgst, ddgst or both", optarg);
			break;
		case O_NOSQFLOW: o->no_sqflow = true; break;
		case O_LIMIT_TIME: o->limit_time = parse_seconds("--limit-time", optarg); break;
		case O_NO_LIMIT: o->no_limit = true; break;
		case O_SYNC_DIR: o->sync_dir = optarg; break;
		case O_CPU: o->cpus.client = (int)parse_u64("--cpu", optarg, 0, CPU_SETSIZE - 1); break;
		case O_POLL: o->cpus.client_poll = true; break;
		case O_TARGET_POLL: o->cpus.server_poll = true; break;
		case O_TARGET_CPU:
			o->cpus.server = (int)parse_u64("--target-cpu", optarg, 0, CPU_SETSIZE - 1);
			break;
		case O_TERSE: o->terse = true; break;
		case O_SEED: o->seed = parse_u64("--seed", optarg, 0, UINT64_MAX); break;
		case O_TIMEOUT: o->timeout_ms = (int)parse_u64("--timeout", optarg, 100, 3600000); break;
		case O_VFIO_USER: o->vfio_user = optarg; break;
		case O_TLS_KEY: tls_key = optarg; break;
		case O_TLS_KEY_FILE: tls_key_file = optarg; break;
		case O_TLS_IDENTITY:
			o->tls.version = (int)parse_u64("--tls-identity", optarg, 0, 1);
			break;
		case O_TLS_HKDF: tls_hkdf = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (!o->subnqn && !o->vfio_user)
		bad_usage("--subnqn is required");
	parse_workload(o);
	if (!o->ios && o->time <= 0)
		bad_usage("--time must be above 0");
	if (o->verify && o->op == LOAD_READ)
		o->prefill = true;
	if (o->limit_time < 0)
		o->limit_time = o->ios ? 1 : (o->time < 2 ? o->time : 2);
	if (o->limit_time <= 0)
		o->no_limit = true;

	if (tls_key && tls_key_file)
		bad_usage("--tls-key and --tls-key-file: one of them");
	if (tls_hkdf && strcmp(tls_hkdf, "rfc8446") && strcmp(tls_hkdf, "libnvme"))
		bad_usage("--tls-hkdf: '%s' is not rfc8446 or libnvme", tls_hkdf);
	if ((tls_hkdf || o->tls.version != 1) && !tls_key && !tls_key_file)
		bad_usage("--tls-identity and --tls-hkdf need --tls-key or --tls-key-file");
	if (tls_key && o->vfio_user)
		bad_usage("--tls-key: not with --vfio-user");
	o->tls.kdf = tls_hkdf ? (strcmp(tls_hkdf, "libnvme") ? NVME_PSK_KDF_RFC8446
							     : NVME_PSK_KDF_LIBNVME)
			      : o->tls.version ? NVME_PSK_KDF_RFC8446 : NVME_PSK_KDF_LIBNVME;
	if (tls_key)
		o->psk = nvme_secret_parse(NVME_SECRET_TLS_PSK, tls_key, why, sizeof(why));
	else if (tls_key_file)
		o->psk = nvme_secret_load_file(NVME_SECRET_TLS_PSK, tls_key_file, why, sizeof(why));
	o->tls.psk = o->psk;
	if ((tls_key || tls_key_file) && !o->psk)
		bad_usage("%s: %s", tls_key ? "--tls-key" : tls_key_file, why);
}

/* ---- the target ---- */

/* TCP, TLS if asked for, ICReq: one queue's connection. */
static int tcp_up(const struct opts *o, struct nvmf_client *c)
{
	if (nvmf_tcp_socket(c, o->addr, o->port))
		return -1;
	c->timeout_ms = o->timeout_ms;
	if (o->tls.psk && nvmf_tls_handshake(c, &o->tls, o->hostnqn, o->subnqn))
		return -1;
	return nvmf_icreq(c, o->hdgst, o->ddgst);
}

static void connect_admin(const struct opts *o, struct nvmf_client *admin)
{
	struct nvme_cqe cqe;
	int st;

	if (tcp_up(o, admin))
		die("%s", admin->err);
	st = nvmf_connect(admin, 0, 32, 0, o->hostnqn, o->subnqn, 0xffff, 0, &cqe);
	if (st)
		die("admin Connect to %s: %s (status %#x)", o->subnqn, admin->err, st);
	st = nvmf_enable(admin, 5000);
	if (st)
		die("enabling the controller: %s (status %#x)", admin->err, st);
}

static void connect_io(const struct opts *o, const struct nvmf_client *admin,
		       const struct nvmf_ns_geom *g, uint16_t qid, struct nvmf_client *c)
{
	/* sqsize one above the depth: a queue of N entries holds N - 1. */
	uint8_t cattr = o->no_sqflow ? 1u << 2 : 0;
	int st;

	if (tcp_up(o, c))
		die("I/O queue %u: %s", qid, c->err);
	st = nvmf_connect(c, qid, (uint16_t)(o->qd + 1), 0, o->hostnqn, o->subnqn, admin->cntlid,
			  cattr, NULL);
	if (st)
		die("I/O queue %u Connect: %s (status %#x)", qid, c->err, st);
	c->io_inline = g->io_inline;
}

/*
 * Ask for the I/O queues before connecting them (Set Features, Number of
 * Queues, NVMe 2.0 Base 5.27.1.5), as a host does: a target may give fewer.
 */
static void request_queues(const struct opts *o, struct nvmf_client *admin)
{
	struct nvme_sqe sqe = { .opcode = nvme_admin_set_features };
	struct nvme_cqe cqe;
	uint32_t n = (uint32_t)o->queues - 1; /* 0's based */

	sqe.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
	sqe.cdw11 = htole32(n | n << 16);
	int st = nvmf_cmd(admin, &sqe, NULL, 0, NULL, 0, &cqe);
	if (st)
		die("Set Features (Number of Queues): %s (status %#x)",
		    st < 0 ? admin->err : "refused", st);
	uint32_t sq = (uint32_t)(le64toh(cqe.result) & 0xffff) + 1;
	uint32_t cq = (uint32_t)((le64toh(cqe.result) >> 16) & 0xffff) + 1;
	if (sq < (uint32_t)o->queues || cq < (uint32_t)o->queues)
		die("the target allows %u I/O queue(s) per controller: use --queues %u or fewer",
		    sq < cq ? sq : cq, sq < cq ? sq : cq);
}

static void check_geometry(const struct opts *o, const struct nvmf_ns_geom *g)
{
	uint32_t lbs = 1u << g->lba_shift;

	if (o->bs % lbs)
		die("--bs %u is not a multiple of the namespace's %u-byte LBAs", o->bs, lbs);
	if (o->bs > g->mdts_bytes)
		die("--bs %u is above the controller's MDTS (%u bytes)", o->bs, g->mdts_bytes);
	if ((uint32_t)o->qd > g->max_qd)
		die("--qd %d: the target's I/O queues hold %u commands (CAP.MQES)", o->qd, g->max_qd);
	if (o->op == LOAD_APPEND && !g->zoned)
		die("append (Zone Append) needs a zoned namespace; namespace %u is conventional "
		    "(NVM command set): use read, randread, write or randwrite", o->nsid);
	if (o->op == LOAD_APPEND && o->bs > g->zasl_bytes)
		die("--bs %u is above the Zone Append size limit (%u bytes)", o->bs, g->zasl_bytes);
	if (o->op == LOAD_WRITE && o->random && g->zoned)
		die("randwrite on zoned namespace %u: zones are written sequentially (use write "
		    "or append)", o->nsid);
}

/* What the run depends on, as the target reported it. */
static void describe_target(const struct nvmf_ns_geom *g)
{
	char mdts[32], zone[64] = "";

	if (g->mdts_bytes == UINT32_MAX)
		snprintf(mdts, sizeof(mdts), "no limit");
	else
		snprintf(mdts, sizeof(mdts), "%u KiB", g->mdts_bytes >> 10);
	if (g->zoned)
		snprintf(zone, sizeof(zone), ", zones of %" PRIu64 " LBAs",
			 (uint64_t)g->zone_size);
	printf("  target: MDTS %s, in-capsule data %u bytes, queues of %u commands%s; namespace "
	       "%u %s%s\n", mdts, g->io_inline, g->max_qd, g->sgl ? "" : ", no SGL support reported",
	       g->nsid, g->zoned ? "zoned" : "conventional", zone);
}

/*
 * Zones a queue may keep open at once within the namespace's open and
 * active limits (ZNS 1.1, 2.1.1): one to spare per queue, for a zone being
 * left while its last writes are in flight. 0 = no limit.
 */
static uint32_t open_zones_per_queue(const struct opts *o, const struct nvmf_ns_geom *g)
{
	uint32_t lim = g->max_open;

	if (!lim || (g->max_active && g->max_active < lim))
		lim = g->max_active;
	if (!lim || (o->op == LOAD_READ && !o->prefill))
		return 0;
	if (lim / (uint32_t)o->queues < 2)
		die("namespace %u keeps at most %u zones open: use at most %u queue(s)", o->nsid,
		    lim, lim / 2 ? lim / 2 : 1);
	return lim / (uint32_t)o->queues - 1;
}

/* ---- loopback limits ---- */

static void measure_limits(const struct opts *o, struct limits *l)
{
	double ramp = o->ramp < 0.2 ? o->ramp : 0.2;
	char err[256];

	/* The NVMe/TCP exchange in plain TCP: a read is a 72-byte capsule
	 * answered by the block; a write (or append) sends the block with
	 * its capsule and gets a 24-byte response back. */
	l->rr_req = o->op == LOAD_READ ? CAPSULE_LEN : CAPSULE_LEN + o->bs;
	l->rr_rsp = o->op == LOAD_READ ? o->bs : RESPONSE_LEN;
	if (limit_tcp_rr(&o->cpus, o->queues, o->qd, l->rr_req, l->rr_rsp, ramp, o->limit_time, &l->rr_ops,
			 &l->rr_lat, err, sizeof(err)))
		die("%s", err);
	if (limit_tcp_stream(&o->cpus, o->queues, o->bs, ramp, o->limit_time, &l->stream_bps, err,
			     sizeof(err)))
		die("%s", err);
	if (o->sync_dir && limit_sync(o->sync_dir, o->bs, o->limit_time, &l->sync_ops,
				      &l->sync_lat, err, sizeof(err)))
		die("%s", err);
	l->have = true;
}

/* ---- the run ---- */

struct runner {
	struct load_queue lq;
	pthread_t th;
	pthread_barrier_t *bar;
	bool prefill;
	int cpu;
	int rc;
};

static void *runner_main(void *arg)
{
	struct runner *r = arg;

	limit_pin(r->cpu);
	r->rc = r->prefill ? load_queue_prefill(&r->lq) : 0;
	pthread_barrier_wait(r->bar); /* every queue prefilled */
	pthread_barrier_wait(r->bar); /* the clock is set */
	if (!r->rc)
		r->rc = load_queue_run(&r->lq);
	return NULL;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- report ---- */

static const char *size_str(uint64_t b, char *buf, size_t len)
{
	if (b >= (1u << 20) && b % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 " MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 " KiB", b >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
	return buf;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void report(const struct opts *o, const struct nvmf_ns_geom *g, uint64_t region,
		   const struct load_stats *st, double secs, double cpu, const struct limits *l,
		   const char *err)
{
	double iops = ratio((double)st->ios, secs), mbps = ratio((double)st->bytes, secs) / 1e6;
	const struct lat_hist *h = &st->lat;
	double us = 1e-3;

	if (o->terse) {
		printf("workload=%s bs=%u qd=%d queues=%d nsid=%u zoned=%d seconds=%.3f ios=%" PRIu64
		       " iops=%.0f mbps=%.1f lat_mean_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f"
		       " lat_p999_us=%.1f cpu_pct=%.0f verified=%" PRIu64 " resets=%" PRIu64
		       " errors=%" PRIu64,
		       o->workload, o->bs, o->qd, o->queues, o->nsid, g->zoned, secs, st->ios, iops,
		       mbps, lat_hist_mean(h) * us, lat_hist_pct(h, 50) * us,
		       lat_hist_pct(h, 99) * us, lat_hist_pct(h, 99.9) * us,
		       ratio(cpu, secs) * 100, st->verified, st->resets, st->errors);
		if (o->cipher)
			printf(" tls=%s", o->cipher);
		if (l->have) {
			printf(" rr_ops=%.0f rr_mean_us=%.1f rr_p50_us=%.1f stream_mbps=%.1f"
			       " iops_per_rr=%.3f lat_per_rr=%.3f p50_per_rr=%.3f mbps_per_stream=%.3f",
			       l->rr_ops, lat_hist_mean(&l->rr_lat) * us,
			       lat_hist_pct(&l->rr_lat, 50) * us, l->stream_bps / 1e6,
			       ratio(iops, l->rr_ops),
			       ratio(lat_hist_mean(h), lat_hist_mean(&l->rr_lat)),
			       ratio(lat_hist_pct(h, 50), lat_hist_pct(&l->rr_lat, 50)),
			       ratio(mbps * 1e6, l->stream_bps));
			if (o->sync_dir)
				printf(" sync_ops=%.0f iops_per_sync=%.2f", l->sync_ops,
				       ratio(iops, l->sync_ops));
		}
		printf("\n");
		if (err)
			fprintf(stderr, "znstgt-load: %s\n", err);
		return;
	}

	char b1[32], b2[32], b3[32];
	printf("znstgt-load: %s, %s I/Os, %d queue(s) x QD %d, nsid %u (%s, %u-byte LBAs, %s "
	       "region)\n", o->workload, size_str(o->bs, b1, sizeof(b1)), o->queues, o->qd, o->nsid,
	       g->zoned ? "zoned" : "conventional", 1u << g->lba_shift,
	       size_str(region, b2, sizeof(b2)));
	if (o->cipher)
		printf("  TLS 1.3, %s, PSK identity version %d\n", o->cipher, o->tls.version);
	if (o->ios)
		printf("  %" PRIu64 " I/Os in %.2f s\n", o->ios, secs);
	else
		printf("  measured %.1f s after a %.1f s ramp\n", secs, o->ramp);
	printf("  %-15s %10.0f IOPS %10.1f MB/s   latency us: mean %.1f  p50 %.1f  "
	       "p99 %.1f  p99.9 %.1f\n", o->vfio_user ? "vfio-user" : "NVMe/TCP", iops, mbps,
	       lat_hist_mean(h) * us,
	       lat_hist_pct(h, 50) * us, lat_hist_pct(h, 99) * us, lat_hist_pct(h, 99.9) * us);
	if (l->have) {
		printf("  TCP round trip  %10.0f /s   (%s -> %s)   latency us: mean %.1f  p50 %.1f  "
		       "p99 %.1f  p99.9 %.1f\n", l->rr_ops, size_str(l->rr_req, b1, sizeof(b1)),
		       size_str(l->rr_rsp, b3, sizeof(b3)), lat_hist_mean(&l->rr_lat) * us,
		       lat_hist_pct(&l->rr_lat, 50) * us, lat_hist_pct(&l->rr_lat, 99) * us,
		       lat_hist_pct(&l->rr_lat, 99.9) * us);
		printf("  TCP stream      %10.1f MB/s (%s messages)\n", l->stream_bps / 1e6,
		       size_str(o->bs, b1, sizeof(b1)));
		printf("  vs. loopback    IOPS %.2f of the round trips; latency mean %.2fx, p50 %.2fx "
		       "the round trip; MB/s %.2f of the stream\n", ratio(iops, l->rr_ops),
		       ratio(lat_hist_mean(h), lat_hist_mean(&l->rr_lat)),
		       ratio(lat_hist_pct(h, 50), lat_hist_pct(&l->rr_lat, 50)),
		       ratio(mbps * 1e6, l->stream_bps));
		if (o->sync_dir)
			printf("  fdatasync/write %10.0f /s   (%.0f us each): IOPS %.1fx that\n",
			       l->sync_ops, lat_hist_mean(&l->sync_lat) * us, ratio(iops, l->sync_ops));
	}
	printf("  generator CPU   %.0f%% of one core, %.2f us per I/O\n", ratio(cpu, secs) * 100,
	       ratio(cpu * 1e6, (double)st->ios));
	if (o->verify)
		printf("  verified        %" PRIu64 " I/Os\n", st->verified);
	if (st->resets)
		printf("  zone resets     %" PRIu64 "\n", st->resets);
	if (err)
		printf("  ERROR           %" PRIu64 " error(s); first: %s\n", st->errors ? st->errors : 1,
		       err);
}

/* ---- over vfio-user (--vfio-user) ---- */

#define VFU_IOVA 0x100000000ull
#define VFU_GPA(page) (VFU_IOVA + (uint64_t)(page) * VNVME_PAGE)
/* Guest pages: admin SQ, CQ, Identify, I/O CQ, I/O SQ (up to 256 entries),
 * then the slots' data and PRP lists. */
enum { VP_ASQ = 0, VP_ACQ = 1, VP_ID = 2, VP_IOCQ = 3, VP_IOSQ = 4, VP_DATA = 8 };

static int run_vfio(const struct opts *o)
{
	static struct vnvme v;
	struct nvme_sqe s;
	struct nvmf_ns_geom g = { .nsid = o->nsid };
	struct limits lim = { 0 };
	struct load_stats st;
	char why[256];
	int rc;

	if (o->op != LOAD_READ || o->queues != 1 || o->prefill || o->qd > 191)
		bad_usage("--vfio-user: reads (randread, read) on one queue of at most QD 191, "
			  "without --prefill or --verify (prefill over NVMe/TCP first)");
	if (vnvme_open(&v, o->vfio_user, VFU_IOVA, VP_DATA + load_vfu_pages(o->bs, o->qd)) ||
	    vnvme_enable(&v, VFU_GPA(VP_ASQ), VFU_GPA(VP_ACQ), 16))
		die("%s: %s", o->vfio_user, v.err);
	s = vnvme_sqe(nvme_admin_identify, o->nsid, NVME_IDENTIFY_CNS_NS, 0);
	s.dptr.prp.prp1 = htole64(VFU_GPA(VP_ID));
	rc = vnvme_exec(&v, &v.admin, &s, NULL);
	if (rc)
		die("namespace %u: %s (status %#x)", o->nsid, rc < 0 ? v.err : "Identify failed", rc);
	if (nvmf_ns_nvm(&g, vnvme_g(&v, VFU_GPA(VP_ID)), why, sizeof(why)))
		die("namespace %u: %s", o->nsid, why);
	/* Zoned if it answers the ZNS Identify Namespace (for the report). */
	s = vnvme_sqe(nvme_admin_identify, o->nsid, NVME_IDENTIFY_CNS_CSI_NS,
		      (uint32_t)NVME_CSI_ZNS << 24);
	s.dptr.prp.prp1 = htole64(VFU_GPA(VP_ID));
	rc = vnvme_exec(&v, &v.admin, &s, NULL);
	if (rc < 0)
		die("%s: %s", o->vfio_user, v.err);
	g.zoned = rc == 0;
	if (o->bs % (1u << g.lba_shift) || o->bs % VNVME_PAGE)
		die("--bs %u: not a multiple of the LBA size and the 4 KiB page", o->bs);
	/* 256 entries (4 pages of SQ, one of CQ): room for the CQ head
	 * doorbell to be rung once per quarter queue, not per batch. */
	if (vnvme_io_queue(&v, VFU_GPA(VP_IOSQ), VFU_GPA(VP_IOCQ), 256, true))
		die("%s: %s", o->vfio_user, v.err);
	v.posted = true;

	uint64_t ns_bytes = g.nlbas << g.lba_shift;
	uint64_t region = o->region && o->region < ns_bytes ? o->region : ns_bytes;
	struct load_vfu_cfg cfg = {
		.nsid = o->nsid, .random = o->random, .bs = o->bs, .lba_shift = g.lba_shift,
		.region_lbas = region >> g.lba_shift, .qd = o->qd, .data_gpa = VFU_GPA(VP_DATA),
		.seed = o->seed, .quota = o->ios,
	};
	limit_pin(o->cpus.client);
	double t0 = limit_now_s();
	cfg.t_begin = o->ios ? 0 : t0 + o->ramp;
	cfg.t_end = o->ios ? 0 : cfg.t_begin + o->time;
	double cpu0 = cpu_seconds();
	rc = load_vfu_run(&v, &cfg, &st, why, sizeof(why));
	double cpu = cpu_seconds() - cpu0;
	double secs = o->ios ? st.t_last - st.t_first : o->time;
	if (!o->ios)
		cpu *= secs / (limit_now_s() - t0);
	report(o, &g, region, &st, secs, cpu, &lim, rc ? why : NULL);
	vnvme_close(&v);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct nvmf_client admin, clients[MAX_QUEUES];
	struct opts o;
	struct nvmf_ns_geom g;
	struct limits lim = { 0 };
	int st;

	parse_opts(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.vfio_user)
		return run_vfio(&o);

	connect_admin(&o, &admin);
	if (admin.tls)
		o.cipher = nvmf_tls_cipher(admin.tls);
	st = nvmf_ns_geometry(&admin, o.nsid, &g);
	if (st)
		die("namespace %u: %s (status %#x)", o.nsid, st < 0 ? admin.err : "Identify failed",
		    st);
	check_geometry(&o, &g);
	if (!o.terse)
		describe_target(&g);
	request_queues(&o, &admin);
	uint64_t ns_bytes = g.nlbas << g.lba_shift;
	uint64_t region = o.region && o.region < ns_bytes ? o.region : ns_bytes;
	uint64_t region_lbas = region >> g.lba_shift;
	for (int i = 0; i < o.queues; i++)
		connect_io(&o, &admin, &g, (uint16_t)(i + 1), &clients[i]);

	uint32_t nunits, skipped, resets;
	char err_units[256];
	struct load_unit *units = load_units(&clients[0], &g, region_lbas, o.bs, o.queues,
					     o.op != LOAD_READ || o.prefill, &nunits, &skipped,
					     &resets, err_units, sizeof(err_units));
	if (!units)
		die("%s", err_units);
	if (skipped && !o.terse)
		printf("  %u zone(s) left out (offline, read-only or smaller than --bs)\n", skipped);
	if (resets && !o.terse)
		printf("  %u zone(s) reset before the run\n", resets);
	if (nunits < (uint32_t)o.queues)
		die("%u usable zone(s) in the region for %d queues: each queue needs its own",
		    nunits, o.queues);

	if (!o.no_limit)
		measure_limits(&o, &lim);

	uint32_t zones_per_queue = open_zones_per_queue(&o, &g);
	if (zones_per_queue && o.active_zones > zones_per_queue)
		o.active_zones = zones_per_queue;

	int abort_flag = 0;
	struct load_cfg cfg = {
		.op = o.op, .random = o.random, .nsid = o.nsid, .lba_shift = g.lba_shift,
		.zoned = g.zoned, .bs = o.bs, .qd = o.qd, .units = units, .nunits = nunits,
		.nqueues = o.queues, .active_zones = o.active_zones, .verify = o.verify,
		.seed = o.seed,
		.prefill_bs = PREFILL_BS < g.mdts_bytes ? PREFILL_BS : g.mdts_bytes,
		.quota = o.ios,
		.abort = &abort_flag,
		.poll = o.cpus.client_poll,
	};
	struct runner *r = calloc((size_t)o.queues, sizeof(*r));
	pthread_barrier_t bar;
	if (!r)
		die("out of memory");
	pthread_barrier_init(&bar, NULL, (unsigned)o.queues + 1);
	for (int i = 0; i < o.queues; i++) {
		if (load_queue_init(&r[i].lq, &cfg, i, &clients[i]))
			die("%s", r[i].lq.err);
		r[i].bar = &bar;
		r[i].prefill = o.prefill;
		r[i].cpu = o.cpus.client;
	}
	for (int i = 0; i < o.queues; i++)
		if (pthread_create(&r[i].th, NULL, runner_main, &r[i]))
			die("cannot start queue thread %d", i);

	pthread_barrier_wait(&bar);
	double t0 = limit_now_s();
	cfg.t_begin = o.ios ? 0 : t0 + o.ramp;
	cfg.t_end = o.ios ? 0 : cfg.t_begin + o.time;
	double cpu0 = cpu_seconds();
	pthread_barrier_wait(&bar);

	struct load_stats total = { 0 };
	const char *err = NULL;
	double first = 0, last = 0;
	for (int i = 0; i < o.queues; i++) {
		pthread_join(r[i].th, NULL);
		struct load_stats *s = &r[i].lq.st;
		total.ios += s->ios;
		total.bytes += s->bytes;
		total.verified += s->verified;
		total.resets += s->resets;
		total.errors += s->errors;
		lat_hist_merge(&total.lat, &s->lat);
		if (s->t_first && (!first || s->t_first < first))
			first = s->t_first;
		if (s->t_last > last)
			last = s->t_last;
		if (r[i].rc && !err)
			err = r[i].lq.err[0] ? r[i].lq.err : "failed";
	}
	double cpu = cpu_seconds() - cpu0;
	double secs = o.ios ? last - first : o.time;
	if (!o.ios)
		cpu *= secs / (limit_now_s() - t0); /* the ramp and the drain are not measured */
	report(&o, &g, region, &total, secs, cpu, &lim, err);

	for (int i = 0; i < o.queues; i++)
		load_queue_destroy(&r[i].lq);
	nvmf_close(&admin);
	nvme_secret_free(o.psk);
	pthread_barrier_destroy(&bar);
	free(r);
	free(units);
	return err ? 1 : 0;
}
