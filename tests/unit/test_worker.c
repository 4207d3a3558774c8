/*
 * Worker loops, worker_post() and the I/O pool (server/worker.c): messages
 * from many threads all run on the target worker's thread, in each
 * producer's order; I/O jobs run off the loops and finish on their worker;
 * workers_stop() runs what was posted before it. Every test runs with
 * sleeping workers and again with polling ones (workers_start_poll).
 */
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
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

static void wait_count(atomic_int *v, int want)
{
	for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_post_from_many_threads, &sleeping),
		cmocka_unit_test_prestate(test_io_pool, &sleeping),
		cmocka_unit_test_prestate(test_stop_drains, &sleeping),
		cmocka_unit_test_prestate(test_job_from_loop, &sleeping),
		cmocka_unit_test_prestate(test_post_from_many_threads, &polling),
		cmocka_unit_test_prestate(test_io_pool, &polling),
		cmocka_unit_test_prestate(test_stop_drains, &polling),
		cmocka_unit_test_prestate(test_job_from_loop, &polling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
