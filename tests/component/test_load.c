/*
 * The load generator's parts (tests/lib: lat_hist, limits, nvmf_queue,
 * load_units, load_queue) against the whole target in-process on an
 * ephemeral loopback port: every workload with data verification, zone
 * resets when zones fill, a verification that must catch wrong data, the
 * host queue's protocol checks against a fake controller, and the loopback
 * limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/lat_hist.h"
#include "../lib/limits.h"
#include "../lib/load.h"
#include "../lib/nvmf_client.h"
#include "../lib/nvmf_ns.h"
#include "../lib/nvmf_queue.h"
#include "config.h"
#include "crc32c.h"
#include "ctrl.h"
#include "log.h"
#include "nvme_tcp.h"
#include "subsys.h"
#include "tcp.h"
#include "worker.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:3b1f0a52-8c1e-4d55-a0f2-6a7b9c2d4e10"
#define NQN "nqn.2026-11.io.znstgt:load-test"
#define NS_CONV 1
#define NS_ZONED 2
#define MAXQ 4

static char dir[] = "/tmp/znstgt-load-XXXXXX";
static uint16_t next_qid = 1;
static struct target_config cfg;
static char port[NVMF_TRSVCID_SIZE];
static struct nvmf_client admin;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The target with workers = the [target] keys given (threads, poll). */
static int setup_target(const char *worker_keys)
{
	char path[512], text[512], err[512];

	log_set_level(LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/conf", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:4420\n%sio_threads = 2\n"
		 "data_dir = %s/data\nlog_level = error\ninclude = conf/*.ini\n", worker_keys, dir);
	snprintf(path, sizeof(path), "%s/znstgt.ini", dir);
	write_file(path, text);
	/* A conventional namespace and a zoned one of 16 zones of 1 MiB,
	 * small enough that the loads below fill zones and reset them. */
	snprintf(path, sizeof(path), "%s/conf/load.ini", dir);
	write_file(path, "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
			 "[namespace 1]\nsize = 16M\nzoned = no\n"
			 "[namespace 2]\nsize = 16M\nzone_size = 1M\n");
	snprintf(path, sizeof(path), "%s/znstgt.ini", dir);
	if (config_load(path, &cfg, err, sizeof(err)))
		fail_msg("config: %s", err);
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "0");
	if (subsys_registry_init(&cfg, true, err, sizeof(err)))
		fail_msg("registry: %s", err);
	assert_int_equal(workers_start_poll(cfg.threads, cfg.io_threads, cfg.poll), 0);
	if (tcp_listeners_start(&cfg, err, sizeof(err)))
		fail_msg("listeners: %s", err);
	snprintf(port, sizeof(port), "%s", tcp_listener_port(0)->trsvcid);

	if (nvmf_tcp_connect(&admin, "127.0.0.1", port, false, false) ||
	    nvmf_connect(&admin, 0, 32, 0, HOSTNQN, NQN, 0xffff, 0, NULL) ||
	    nvmf_enable(&admin, 5000))
		fail_msg("admin queue: %s", admin.err);
	next_qid = 1;
	return 0;
}

static int setup(void **state)
{
	return setup_target("threads = 2\n");
}

/* One polling worker: every queue on it (server/worker.c, "Spinning on one
 * source"). */
static int setup_polling(void **state)
{
	return setup_target("threads = 1\npoll = yes\n");
}

static int teardown(void **state)
{
	tcp_listeners_stop();
	nvme_sq_disconnect_all();
	assert_true(nvme_sq_wait_all_freed(10));
	subsys_registry_destroy();
	workers_stop();
	config_free(&cfg);
	nvmf_close(&admin);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- running a load the way znstgt-load does ---- */

struct run {
	struct load_queue lq;
	pthread_t th;
	pthread_barrier_t *bar;
	bool prefill;
	int rc;
};

static void *run_main(void *arg)
{
	struct run *r = arg;

	r->rc = r->prefill ? load_queue_prefill(&r->lq) : 0;
	/* Reads may go to LBAs another queue prefills. */
	pthread_barrier_wait(r->bar);
	if (!r->rc)
		r->rc = load_queue_run(&r->lq);
	return NULL;
}

/*
 * nq queues of cfg (op, random, bs, qd, quota, verify, seed, nsid set by the
 * caller) over the first region bytes; the rest is filled in here. Returns
 * the summed stats; err gets the first failure, if any.
 */
static struct load_stats run_load(struct load_cfg *c, int nq, uint64_t region, bool prefill,
				  char *err, size_t errlen)
{
	struct nvmf_client cl[MAXQ];
	struct run r[MAXQ];
	struct nvmf_ns_geom g;
	struct load_stats sum = { 0 };
	uint32_t skipped, resets;
	int abort_flag = 0;

	assert_true(nq <= MAXQ);
	assert_int_equal(nvmf_ns_geometry(&admin, c->nsid, &g), 0);
	for (int i = 0; i < nq; i++) {
		if (nvmf_tcp_connect(&cl[i], "127.0.0.1", port, false, false) ||
		    nvmf_connect(&cl[i], next_qid++, (uint16_t)(c->qd + 1), 0, HOSTNQN, NQN,
				 admin.cntlid, 0, NULL))
			fail_msg("I/O queue: %s", cl[i].err);
		cl[i].io_inline = g.io_inline;
	}
	struct load_unit *units = load_units(&cl[0], &g, region >> g.lba_shift, c->bs, nq,
					     c->op != LOAD_READ || prefill, &c->nunits, &skipped,
					     &resets, err, errlen);
	if (!units)
		fail_msg("units: %s", err);
	c->units = units;
	c->lba_shift = g.lba_shift;
	c->zoned = g.zoned;
	c->nqueues = nq;
	c->prefill_bs = 64 * 1024;
	c->abort = &abort_flag;
	if (!c->active_zones)
		c->active_zones = 3;
	err[0] = 0;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nq);
	for (int i = 0; i < nq; i++) {
		if (load_queue_init(&r[i].lq, c, i, &cl[i]))
			fail_msg("%s", r[i].lq.err);
		r[i].prefill = prefill;
		r[i].bar = &bar;
		assert_int_equal(pthread_create(&r[i].th, NULL, run_main, &r[i]), 0);
	}
	for (int i = 0; i < nq; i++) {
		pthread_join(r[i].th, NULL);
		struct load_stats *s = &r[i].lq.st;
		sum.ios += s->ios;
		sum.bytes += s->bytes;
		sum.verified += s->verified;
		sum.resets += s->resets;
		sum.errors += s->errors;
		lat_hist_merge(&sum.lat, &s->lat);
		if (r[i].rc && !err[0])
			snprintf(err, errlen, "%s", r[i].lq.err);
		load_queue_destroy(&r[i].lq);
	}
	pthread_barrier_destroy(&bar);
	free(units);
	return sum;
}

static void expect_clean(const struct load_stats *s, uint64_t ios, const char *err)
{
	if (err[0])
		fail_msg("load failed: %s", err);
	assert_int_equal(s->errors, 0);
	assert_int_equal(s->ios, ios);
	assert_int_equal(s->verified, ios);
	assert_int_equal(s->lat.count, ios);
}

/* ---- tests ---- */

static void test_hist(void **state)
{
	struct lat_hist h, h2;

	lat_hist_reset(&h);
	assert_true(lat_hist_pct(&h, 50) == 0);
	/* Below 64 ns every value has its own bucket: exact. */
	for (uint64_t v = 1; v <= 10; v++)
		lat_hist_add(&h, v);
	assert_true(lat_hist_pct(&h, 50) == 5);
	assert_true(lat_hist_pct(&h, 100) == 10);
	assert_true(lat_hist_mean(&h) == 5.5);
	/* 1..100000 ns: within 1/64 of the true percentile. */
	lat_hist_reset(&h);
	for (uint64_t v = 1; v <= 100000; v++)
		lat_hist_add(&h, v);
	double want[][2] = { { 50, 50000 }, { 99, 99000 }, { 99.9, 99900 } };
	for (int i = 0; i < 3; i++) {
		double got = lat_hist_pct(&h, want[i][0]);
		assert_true(got > want[i][1] * (1 - 1.0 / 64) && got < want[i][1] * (1 + 1.0 / 64));
	}
	/* Merging adds counts; a 10 s outlier keeps its precision too and
	 * moves only the top percentile. */
	lat_hist_reset(&h2);
	lat_hist_add(&h2, 10000000000ull);
	lat_hist_merge(&h, &h2);
	assert_int_equal(h.count, 100001);
	assert_int_equal(h.max_ns, 10000000000ull);
	double top = lat_hist_pct(&h, 100);
	assert_true(top > 1e10 * (1 - 1.0 / 64) && top <= 1e10);
	assert_true(lat_hist_pct(&h, 99.9) < 101000);
}

static void test_random_write_verify(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_WRITE, .random = true, .nsid = NS_CONV, .bs = 8192,
			      .qd = 8, .quota = 1401, .verify = true, .seed = 11 };
	struct load_stats s = run_load(&c, 2, 16u << 20, false, err, sizeof(err));

	expect_clean(&s, 1401, err);
	assert_int_equal(s.bytes, 1401 * 8192);
}

/* The same with the generator spinning on its sockets (--poll). */
static void test_random_write_verify_polling(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_WRITE, .random = true, .nsid = NS_CONV, .bs = 8192,
			      .qd = 8, .quota = 701, .verify = true, .seed = 12, .poll = true };
	struct load_stats s = run_load(&c, 2, 16u << 20, false, err, sizeof(err));

	expect_clean(&s, 701, err);
	assert_int_equal(s.bytes, 701 * 8192);
}

/* Reads check the pattern the prefill wrote - and catch data that is not. */
static void test_read_verify_catches_wrong_data(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_READ, .random = true, .nsid = NS_CONV, .bs = 4096,
			      .qd = 4, .quota = 2000, .verify = true, .seed = 21 };
	struct load_stats s = run_load(&c, 2, 4u << 20, true, err, sizeof(err));

	expect_clean(&s, 2000, err);

	/* The same LBAs hold seed 21's pattern: reading them as seed 22 must
	 * fail on the first I/O and stop the run. */
	struct load_cfg bad = { .op = LOAD_READ, .random = false, .nsid = NS_CONV, .bs = 4096,
				.qd = 4, .quota = 100, .verify = true, .seed = 22 };
	s = run_load(&bad, 1, 4u << 20, false, err, sizeof(err));
	assert_true(s.errors > 0);
	assert_non_null(strstr(err, "data mismatch"));
	assert_true(s.verified < 100);
}

/* Sequential writes fill the zones, which are reset and written again. */
static void test_zoned_write_resets(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_WRITE, .nsid = NS_ZONED, .bs = 64 * 1024, .qd = 4,
			      .quota = 300, .verify = true, .seed = 31 };
	/* 3 zones of 16 writes: 300 writes wrap around them six times. */
	struct load_stats s = run_load(&c, 1, 3u << 20, false, err, sizeof(err));

	expect_clean(&s, 300, err);
	assert_true(s.resets >= 15);

	/* One zone and one command at a time: each time the zone is full,
	 * the write waits for its reset. */
	struct load_cfg one = { .op = LOAD_WRITE, .nsid = NS_ZONED, .bs = 64 * 1024, .qd = 1,
				.quota = 40, .verify = true, .seed = 32 };
	s = run_load(&one, 1, 1u << 20, false, err, sizeof(err));
	expect_clean(&s, 40, err);
	assert_int_equal(s.resets, 2);
}

/* Appends spread over the zones; every ALBA is read back and compared. */
static void test_append_verify(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_APPEND, .nsid = NS_ZONED, .bs = 16 * 1024, .qd = 16,
			      .quota = 1000, .verify = true, .seed = 41, .active_zones = 2 };
	struct load_stats s = run_load(&c, 2, 8u << 20, false, err, sizeof(err));

	expect_clean(&s, 1000, err);
	/* 1000 x 16 KiB over 8 zones of 1 MiB: each zone filled twice. */
	assert_true(s.resets >= 8);
}

static void test_zoned_sequential_read_after_prefill(void **state)
{
	char err[256];
	struct load_cfg c = { .op = LOAD_READ, .nsid = NS_ZONED, .bs = 32 * 1024, .qd = 8,
			      .quota = 800, .verify = true, .seed = 51 };
	struct load_stats s = run_load(&c, 2, 4u << 20, true, err, sizeof(err));

	expect_clean(&s, 800, err);
}

/* ---- the host queue's checks, against a fake controller ---- */

struct fake {
	int host, ctrl;              /* socketpair ends */
	struct nvmf_client c;
	struct nvmfq q;
	int done;
	uint16_t status;
	uint8_t buf[4096];
};

static void fake_done(struct nvmfq *q, struct nvmfq_cmd *cmd)
{
	struct fake *f = q->arg;

	f->done++;
	f->status = cmd->status;
}

static void fake_start(struct fake *f, bool ddgst)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->host = sv[0];
	f->ctrl = sv[1];
	nvmf_client_init(&f->c, f->host);
	f->c.maxh2cdata = 128 * 1024;
	f->c.ddgst = ddgst;
	f->c.timeout_ms = 2000;
	assert_int_equal(nvmfq_init(&f->q, &f->c, 4, 4096, fake_done, f), 0);
	/* A 4 KiB read in CID 0. */
	struct nvmfq_cmd *cmd = &f->q.cmds[0];
	memset(&cmd->sqe, 0, sizeof(cmd->sqe));
	cmd->sqe.opcode = nvme_cmd_read;
	cmd->sqe.nsid = htole32(1);
	cmd->buf = f->buf;
	cmd->len = sizeof(f->buf);
	cmd->write = false;
	assert_int_equal(nvmfq_submit(&f->q, cmd), 0);
}

static void fake_stop(struct fake *f)
{
	nvmfq_destroy(&f->q);
	close(f->ctrl);
}

/* The controller's answer: C2HData (4 KiB at datao, SUCCESS), data digest
 * optional (good or bad). */
static void fake_c2h(struct fake *f, uint32_t datao, bool ddgst, bool bad_digest)
{
	uint8_t pdu[24 + 4096 + 4];
	struct nvme_tcp_data *d = (struct nvme_tcp_data *)pdu;
	uint32_t dd_len = ddgst ? 4 : 0;

	memset(pdu, 0, sizeof(pdu));
	d->hdr.type = NVME_TCP_C2H_DATA;
	d->hdr.flags = NVME_TCP_F_LAST_PDU | NVME_TCP_F_SUCCESS | (ddgst ? NVME_TCP_F_DDGST : 0);
	d->hdr.hlen = 24;
	d->hdr.pdo = 24;
	d->hdr.plen = htole32(24 + 4096 + dd_len);
	d->cccid = htole16(0);
	d->datao = htole32(datao);
	d->datal = htole32(4096);
	for (int i = 0; i < 4096; i++)
		pdu[24 + i] = (uint8_t)(i * 7);
	if (ddgst) {
		uint32_t dd = htole32(crc32c(pdu + 24, 4096) ^ (bad_digest ? 1u : 0u));
		memcpy(pdu + 24 + 4096, &dd, 4);
	}
	assert_int_equal(write(f->ctrl, pdu, 24 + 4096 + dd_len), (ssize_t)(24 + 4096 + dd_len));
}

static void test_queue_accepts_good_c2h(void **state)
{
	struct fake f;

	fake_start(&f, true);
	fake_c2h(&f, 0, true, false);
	while (!f.done)
		assert_true(nvmfq_process(&f.q) >= 0);
	assert_int_equal(f.status, 0);
	assert_int_equal(f.q.inflight, 0);
	assert_int_equal(f.buf[4095], (uint8_t)(4095 * 7));
	/* The capsule went out: 72 bytes of CapsuleCmd for a read. */
	uint8_t cap[72];
	assert_int_equal(read(f.ctrl, cap, sizeof(cap)), 72);
	assert_int_equal(cap[0], NVME_TCP_CMD);
	fake_stop(&f);
}

static void test_queue_rejects_c2h_out_of_order(void **state)
{
	struct fake f;

	fake_start(&f, false);
	fake_c2h(&f, 8, false, false);
	assert_int_equal(nvmfq_process(&f.q), -1);
	assert_non_null(strstr(f.q.err, "C2HData offset 8"));
	assert_int_equal(f.done, 0);
	fake_stop(&f);
}

static void test_queue_rejects_bad_data_digest(void **state)
{
	struct fake f;

	fake_start(&f, true);
	fake_c2h(&f, 0, true, true);
	assert_int_equal(nvmfq_process(&f.q), -1);
	assert_non_null(strstr(f.q.err, "data digest"));
	assert_int_equal(f.done, 0);
	fake_stop(&f);
}

static void test_queue_rejects_unknown_cid(void **state)
{
	struct fake f;
	struct nvme_tcp_rsp r;

	fake_start(&f, false);
	memset(&r, 0, sizeof(r));
	r.hdr.type = NVME_TCP_RSP;
	r.hdr.hlen = 24;
	r.hdr.plen = htole32(24);
	r.cqe.cid = htole16(3); /* never submitted */
	assert_int_equal(write(f.ctrl, &r, sizeof(r)), (ssize_t)sizeof(r));
	assert_int_equal(nvmfq_process(&f.q), -1);
	assert_non_null(strstr(f.q.err, "unknown CID 3"));
	fake_stop(&f);
}

/* ---- the loopback limits ---- */

static void test_limits(void **state)
{
	struct limit_cpus cpus = { .client = -1, .server = -1 };
	struct lat_hist h;
	double ops = 0, bps = 0;
	char err[256];

	/* Only "something was measured": a loaded machine may be slow. */
	assert_int_equal(limit_tcp_rr(&cpus, 2, 4, 72, 4096, 0.01, 0.3, &ops, &h, err, sizeof(err)), 0);
	assert_true(ops > 0);
	assert_true(h.count > 0);
	assert_true(lat_hist_pct(&h, 50) > 0);
	assert_int_equal(limit_tcp_stream(&cpus, 1, 65536, 0.01, 0.3, &bps, err, sizeof(err)), 0);
	assert_true(bps > 0);
	/* Both ends spinning (--poll, --target-poll) complete, and count each
	 * round trip once with its latency. (How many there were depends on
	 * how much CPU the spinning threads got: not asserted.) */
	struct limit_cpus spin = { .client = -1, .server = -1, .client_poll = true,
				   .server_poll = true };
	assert_int_equal(limit_tcp_rr(&spin, 1, 1, 72, 4096, 0.01, 0.2, &ops, &h, err, sizeof(err)), 0);
	assert_int_equal(h.count, (uint64_t)(ops * 0.2 + 0.5));
	assert_int_equal(limit_tcp_stream(&spin, 1, 65536, 0.01, 0.2, &bps, err, sizeof(err)), 0);
	assert_int_equal(limit_sync(dir, 4096, 0.05, &ops, &h, err, sizeof(err)), 0);
	assert_true(ops > 0 && h.count >= 1);
	/* Parameters out of range are refused with a reason. */
	assert_int_equal(limit_tcp_rr(&cpus, 0, 1, 72, 24, 0, 0.1, &ops, &h, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "parameters"));
	assert_int_equal(limit_sync("/nonexistent-dir", 4096, 0.05, &ops, &h, err, sizeof(err)), -1);
}

/*
 * A polling worker retries the one queue it serves between the rounds of
 * its loop (server/worker.c): at QD1, with the host spinning too, most
 * commands are read that way, their replies and R2Ts sent from there,
 * their writes handed to the I/O threads from there. Every write and read
 * verified.
 */
static void test_polling_worker_one_queue(void **state)
{
	char err[256];
	struct load_cfg w = { .op = LOAD_WRITE, .random = true, .nsid = NS_CONV, .bs = 8192,
			      .qd = 1, .quota = 400, .verify = true, .seed = 31, .poll = true };
	struct load_stats s = run_load(&w, 1, 4u << 20, false, err, sizeof(err));

	expect_clean(&s, 400, err);
	struct load_cfg r = { .op = LOAD_READ, .random = true, .nsid = NS_CONV, .bs = 4096,
			      .qd = 1, .quota = 400, .verify = true, .seed = 32, .poll = true };
	s = run_load(&r, 1, 4u << 20, true, err, sizeof(err));
	expect_clean(&s, 400, err);
}

/* Two queues on the one polling worker, each at QD1 (their hosts sleeping
 * between commands, so that the worker spins between their commands too):
 * neither is starved by the worker spinning on the other (each gets its
 * share done). */
static void test_polling_worker_two_queues(void **state)
{
	char err[256];
	struct load_cfg w = { .op = LOAD_WRITE, .random = true, .nsid = NS_CONV, .bs = 4096,
			      .qd = 1, .quota = 600, .verify = true, .seed = 33 };
	struct load_stats s = run_load(&w, 2, 4u << 20, false, err, sizeof(err));

	expect_clean(&s, 600, err);
	struct load_cfg r = { .op = LOAD_READ, .random = true, .nsid = NS_CONV, .bs = 4096,
			      .qd = 1, .quota = 600, .verify = true, .seed = 34 };
	s = run_load(&r, 2, 4u << 20, true, err, sizeof(err));
	expect_clean(&s, 600, err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist),
		cmocka_unit_test(test_random_write_verify),
		cmocka_unit_test(test_random_write_verify_polling),
		cmocka_unit_test(test_read_verify_catches_wrong_data),
		cmocka_unit_test(test_zoned_write_resets),
		cmocka_unit_test(test_append_verify),
		cmocka_unit_test(test_zoned_sequential_read_after_prefill),
		cmocka_unit_test(test_queue_accepts_good_c2h),
		cmocka_unit_test(test_queue_rejects_c2h_out_of_order),
		cmocka_unit_test(test_queue_rejects_bad_data_digest),
		cmocka_unit_test(test_queue_rejects_unknown_cid),
		cmocka_unit_test(test_limits),
	};

	const struct CMUnitTest polling[] = {
		cmocka_unit_test(test_polling_worker_one_queue),
		cmocka_unit_test(test_polling_worker_two_queues),
	};

	int failed = cmocka_run_group_tests(tests, setup, teardown);
	/* The directory again, for the second target. */
	snprintf(dir, sizeof(dir), "/tmp/znstgt-load-XXXXXX");
	return failed + cmocka_run_group_tests(polling, setup_polling, teardown);
}
