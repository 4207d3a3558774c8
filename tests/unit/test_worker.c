/*
 * Worker loops, worker_post() and the I/O pool (server/worker.c): messages
 * from many threads all run on the target worker's thread, in each
 * producer's order; I/O jobs run off the loops and finish on their worker;
 * workers_stop() runs what was posted before it; a polling worker retries
 * the one source it served between rounds, and only then. Every test runs
 * with sleeping workers and again with polling ones (workers_start_poll).
 */
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker.h"

enum { PRODUCERS = 4, PER_PRODUCER = 5000 };

static bool sleeping = false, polling = true;

static bool poll_of(void **state)
{
	return *(bool *)*state;
}

struct tmsg {
	struct worker_msg msg;
	struct worker *want;
	int producer, seq;
};

static struct tmsg msgs[PRODUCERS][PER_PRODUCER];
static int last_seq[PRODUCERS];
static atomic_int ran, misplaced, out_of_order;

static void tmsg_fn(struct worker_msg *m)
{
	struct tmsg *t = (struct tmsg *)m;

	if (worker_self() != t->want)
		atomic_fetch_add(&misplaced, 1);
	/* Only this worker's thread touches last_seq[producer]. */
	if (t->seq != last_seq[t->producer] + 1)
		atomic_fetch_add(&out_of_order, 1);
	last_seq[t->producer] = t->seq;
	atomic_fetch_add(&ran, 1);
}

static void *producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	struct worker *w = worker_get(1);

	for (int i = 0; i < PER_PRODUCER; i++) {
		msgs[p][i] = (struct tmsg){ .msg.fn = tmsg_fn, .want = w, .producer = p, .seq = i };
		worker_post(w, &msgs[p][i].msg);
	}
	return NULL;
}

/* Wait (up to 10 s) for a counter going up or down to reach want. */
static void wait_count(atomic_int *v, int want)
{
	for (int i = 0; i < 10000 && atomic_load(v) != want; i++)
		usleep(1000);
	assert_int_equal(atomic_load(v), want);
}

static void test_post_from_many_threads(void **state)
{
	pthread_t th[PRODUCERS];

	atomic_store(&ran, 0);
	atomic_store(&misplaced, 0);
	atomic_store(&out_of_order, 0);
	assert_int_equal(workers_start_poll(3, 2, poll_of(state)), 0);
	assert_int_equal(workers_count(), 3);
	assert_null(worker_self());
	assert_null(worker_get(3));
	for (int p = 0; p < PRODUCERS; p++)
		last_seq[p] = -1;
	for (int p = 0; p < PRODUCERS; p++)
		pthread_create(&th[p], NULL, producer, (void *)(intptr_t)p);
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(th[p], NULL);
	wait_count(&ran, PRODUCERS * PER_PRODUCER);
	assert_int_equal(atomic_load(&misplaced), 0);
	assert_int_equal(atomic_load(&out_of_order), 0);

	/* Round robin visits every worker. */
	struct worker *a = worker_next(), *b = worker_next(), *c = worker_next();
	assert_true(a != b && b != c && a != c);
	assert_ptr_equal(worker_next(), a);
	assert_non_null(worker_loop(a));
	workers_stop();
}

struct tjob {
	struct io_job job;
	bool run_on_worker, done_on_worker;
};

static struct tjob jobs[64];
static atomic_int jobs_done;

static void job_run(struct io_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->run_on_worker = worker_self() != NULL;
	usleep(1000); /* blocking is what the pool is for */
}

static void job_done(struct io_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->done_on_worker = worker_self() == j->worker;
	atomic_fetch_add(&jobs_done, 1);
}

static void test_io_pool(void **state)
{
	atomic_store(&jobs_done, 0);
	assert_int_equal(workers_start_poll(2, 3, poll_of(state)), 0);
	for (int i = 0; i < 64; i++) {
		jobs[i].job.worker = worker_get(i % 2);
		jobs[i].job.run = job_run;
		jobs[i].job.done = job_done;
		io_submit_job(&jobs[i].job);
	}
	wait_count(&jobs_done, 64);
	for (int i = 0; i < 64; i++) {
		assert_false(jobs[i].run_on_worker);
		assert_true(jobs[i].done_on_worker);
	}
	workers_stop();
}

/*
 * A job's done() may free the job (a connection or a PCIe queue that goes
 * away with its last command): once an I/O thread linked the job's message
 * into its worker's list, the worker may run done() at any time (woken by
 * another thread's post), so the I/O thread must not read the job again.
 * done() poisons job->worker before freeing it; under ThreadSanitizer (or
 * ASan, when the timing hits) a read after the hand-over is reported.
 */
enum { FREED_JOBS = 4000 };
static atomic_int freed_done;

static void freed_run(struct io_job *j)
{
	(void)j;
}

static void freed_done_fn(struct io_job *j)
{
	j->worker = NULL;
	free(j);
	atomic_fetch_add(&freed_done, 1);
}

static void test_done_frees_job(void **state)
{
	atomic_store(&freed_done, 0);
	assert_int_equal(workers_start_poll(1, 2, poll_of(state)), 0);
	for (int i = 0; i < FREED_JOBS; i++) {
		struct io_job *j = calloc(1, sizeof(*j));
		assert_non_null(j);
		j->worker = worker_get(0);
		j->run = freed_run;
		j->done = freed_done_fn;
		io_submit_job(j);
	}
	wait_count(&freed_done, FREED_JOBS);
	workers_stop();
}

static atomic_int late;

static void late_fn(struct worker_msg *m)
{
	atomic_fetch_add(&late, 1);
}

/* Jobs queued and messages posted before workers_stop() still run. */
static void test_stop_drains(void **state)
{
	static struct worker_msg m[100];
	static struct tjob j[16];

	atomic_store(&jobs_done, 0);
	atomic_store(&late, 0);
	assert_int_equal(workers_start_poll(1, 1, poll_of(state)), 0);
	for (int i = 0; i < 16; i++) {
		j[i].job.worker = worker_get(0);
		j[i].job.run = job_run;
		j[i].job.done = job_done;
		io_submit_job(&j[i].job);
	}
	for (int i = 0; i < 100; i++) {
		m[i].fn = late_fn;
		worker_post(worker_get(0), &m[i]);
	}
	workers_stop();
	assert_int_equal(atomic_load(&late), 100);
	assert_int_equal(atomic_load(&jobs_done), 16);
	assert_int_equal(workers_count(), 0);
}

/* A job submitted by a loop's own callback is held until the loop's round
 * ends (worker.c): a polling loop, which never sleeps, still hands it over. */
static struct tjob loop_job;

static void submit_from_loop(struct worker_msg *m)
{
	loop_job.job.worker = worker_self();
	loop_job.job.run = job_run;
	loop_job.job.done = job_done;
	io_submit_job(&loop_job.job);
}

static void test_job_from_loop(void **state)
{
	static struct worker_msg m = { .fn = submit_from_loop };

	atomic_store(&jobs_done, 0);
	loop_job = (struct tjob){ 0 };
	assert_int_equal(workers_start_poll(1, 2, poll_of(state)), 0);
	worker_post(worker_get(0), &m);
	wait_count(&jobs_done, 1);
	assert_false(loop_job.run_on_worker);
	assert_true(loop_job.done_on_worker);
	workers_stop();
}

/*
 * A slow job (io_submit_slow_job: a Reset waiting for its commit) does not
 * hold the completion of the job its I/O thread finished just before: that
 * one is announced first. One I/O thread; both jobs handed over together
 * from the loop; the slow one waits up to 2 s for the other's done().
 */
static struct tjob fast_job, slow_job;
static atomic_bool fast_done_seen;

static void fast_run(struct io_job *j)
{
	(void)j;
}

static void slow_run(struct io_job *j)
{
	(void)j;
	for (int i = 0; i < 2000 && atomic_load(&jobs_done) == 0; i++)
		usleep(1000);
	atomic_store(&fast_done_seen, atomic_load(&jobs_done) == 1);
}

static void submit_fast_then_slow(struct worker_msg *m)
{
	(void)m;
	fast_job = (struct tjob){ .job = { .worker = worker_self(), .run = fast_run,
					   .done = job_done } };
	slow_job = (struct tjob){ .job = { .worker = worker_self(), .run = slow_run,
					   .done = job_done } };
	io_submit_job(&fast_job.job);
	io_submit_slow_job(&slow_job.job);
}

static void test_slow_job_announces_first(void **state)
{
	static struct worker_msg m = { .fn = submit_fast_then_slow };

	atomic_store(&jobs_done, 0);
	atomic_store(&fast_done_seen, false);
	assert_int_equal(workers_start_poll(1, 1, poll_of(state)), 0);
	worker_post(worker_get(0), &m);
	wait_count(&jobs_done, 2);
	assert_true(atomic_load(&fast_done_seen));
	workers_stop();
}

/* ---- spinning on one source ---- */

/* A source whose every try is a hit while it has hits left (then misses);
 * a hit serves it again, as a queue that read a command does. Hits never
 * depend on how many tries fit in one spin's time bound, so a slow or
 * preempted run (valgrind, a loaded machine) sees the same. */
struct tsrc {
	struct worker_spin spin;
	atomic_int tries, off_worker, hits_left;
};

static struct tsrc src_a, src_b;

static bool tsrc_try(struct worker_spin *s)
{
	struct tsrc *t = (struct tsrc *)s;

	if (worker_self() != worker_get(0))
		atomic_fetch_add(&t->off_worker, 1);
	atomic_fetch_add(&t->tries, 1);
	if (atomic_load(&t->hits_left) == 0)
		return false;
	atomic_fetch_sub(&t->hits_left, 1);
	worker_spin_served(s);
	return true;
}

static void tsrc_init(struct tsrc *t, int hits)
{
	t->spin.try = tsrc_try;
	atomic_store(&t->tries, 0);
	atomic_store(&t->off_worker, 0);
	atomic_store(&t->hits_left, hits);
}

/* What a message does on the worker: which sources it served, forgot. */
struct spin_msg {
	struct worker_msg msg;
	struct tsrc *served[2], *forget;
	atomic_int ran;
};

static void spin_msg_fn(struct worker_msg *m)
{
	struct spin_msg *sm = (struct spin_msg *)m;

	for (int i = 0; i < 2; i++)
		if (sm->served[i])
			worker_spin_served(&sm->served[i]->spin);
	if (sm->forget)
		worker_spin_forget(&sm->forget->spin);
	atomic_store(&sm->ran, 1);
}

/* Run the message on worker 0 and wait until it ran: the rounds before it
 * (and their spins) are over. */
static void on_worker(struct tsrc *a, struct tsrc *b, struct tsrc *forget)
{
	static struct spin_msg sm;

	sm = (struct spin_msg){ .msg.fn = spin_msg_fn, .served = { a, b }, .forget = forget };
	worker_post(worker_get(0), &sm.msg);
	wait_count(&sm.ran, 1);
}

static void wait_at_least(atomic_int *v, int want)
{
	for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
		usleep(1000);
	assert_true(atomic_load(v) >= want);
}

/* A served source is tried on its worker's thread, round after round while
 * it has hits, and no more once it missed; a sleeping worker never tries. */
static void test_spin_on_served_source(void **state)
{
	bool poll = poll_of(state);

	tsrc_init(&src_a, 10);
	assert_int_equal(workers_start_poll(1, 1, poll), 0);
	on_worker(&src_a, NULL, NULL);
	if (poll) {
		wait_count(&src_a.hits_left, 0);
		on_worker(NULL, NULL, NULL); /* the last spin (a miss) is over */
		int tries = atomic_load(&src_a.tries);
		assert_true(tries > 10); /* the tenth hit served it: tried again, missed */
		on_worker(NULL, NULL, NULL);
		assert_int_equal(atomic_load(&src_a.tries), tries);
	} else {
		on_worker(NULL, NULL, NULL);
		assert_int_equal(atomic_load(&src_a.tries), 0);
	}
	assert_int_equal(atomic_load(&src_a.off_worker), 0);
	workers_stop();
}

/* Two sources served: neither is tried (both are left to epoll_wait) until
 * the worker has served only one for a while. A forgotten source is never
 * tried. */
static void test_spin_only_one_active(void **state)
{
	tsrc_init(&src_a, 0);
	tsrc_init(&src_b, 0);
	assert_int_equal(workers_start_poll(1, 1, poll_of(state)), 0);
	on_worker(&src_a, &src_b, NULL);
	on_worker(NULL, NULL, NULL);
	assert_int_equal(atomic_load(&src_a.tries), 0);
	assert_int_equal(atomic_load(&src_b.tries), 0);
	/* The other source quiet for longer than the worker waits (1 ms). */
	usleep(20000);
	on_worker(&src_b, NULL, NULL);
	if (poll_of(state))
		wait_at_least(&src_b.tries, 1);
	on_worker(NULL, NULL, NULL);
	int tries = atomic_load(&src_b.tries);
	on_worker(&src_b, NULL, &src_b);
	on_worker(NULL, NULL, NULL);
	assert_int_equal(atomic_load(&src_b.tries), tries);
	assert_int_equal(atomic_load(&src_a.tries), 0);
	workers_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_post_from_many_threads, &sleeping),
		cmocka_unit_test_prestate(test_io_pool, &sleeping),
		cmocka_unit_test_prestate(test_done_frees_job, &sleeping),
		cmocka_unit_test_prestate(test_stop_drains, &sleeping),
		cmocka_unit_test_prestate(test_job_from_loop, &sleeping),
		cmocka_unit_test_prestate(test_slow_job_announces_first, &sleeping),
		cmocka_unit_test_prestate(test_spin_on_served_source, &sleeping),
		cmocka_unit_test_prestate(test_spin_only_one_active, &sleeping),
		cmocka_unit_test_prestate(test_post_from_many_threads, &polling),
		cmocka_unit_test_prestate(test_io_pool, &polling),
		cmocka_unit_test_prestate(test_done_frees_job, &polling),
		cmocka_unit_test_prestate(test_stop_drains, &polling),
		cmocka_unit_test_prestate(test_job_from_loop, &polling),
		cmocka_unit_test_prestate(test_slow_job_announces_first, &polling),
		cmocka_unit_test_prestate(test_spin_on_served_source, &polling),
		cmocka_unit_test_prestate(test_spin_only_one_active, &polling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
