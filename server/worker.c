/*
 * Worker threads and the I/O thread pool (include/worker.h).
 *
 * Each worker runs one libev loop, sleeping in it until something is ready or,
 * started with poll (the `poll` key), spinning on it: see worker_main().
 * Other threads hand it work with worker_post(): the message goes on a
 * mutex-protected singly linked list (many producers, one consumer) and
 * ev_async_send() wakes the loop, whose async callback takes the whole list
 * at once and runs the messages in the order they were posted. ev_async_send() coalesces wake-ups, so a burst of
 * posts costs one wake-up.
 *
 * The I/O pool is a plain mutex + condition variable FIFO of io_job. An I/O
 * thread runs job->run() (which may block on file I/O) and then posts the
 * job's embedded message to job->worker, where job->done() runs. No
 * allocation happens per job or per message: both are embedded by the caller.
 *
 * Batching, because waking a thread costs more than most jobs (a 4 KiB
 * write into the page cache; see doc/performance.md). Jobs submitted on a
 * loop are held until the loop is about to sleep and then handed over
 * together: one lock, one wake-up per idle thread needed. An I/O thread
 * links each finished job's message into its worker's list at once, but
 * wakes the worker only when it has no further job to run, after
 * MAX_QUIET_MSGS messages, or before starting a job once the first
 * unannounced message has waited MAX_QUIET_NS or when the job is known to
 * be slow (io_submit_slow_job: a Reset's commit): a burst of jobs comes back
 * in one wake-up instead of one each, and none waits behind a slow job.
 *
 * Spinning on one source (polling workers only; include/worker.h). Each
 * round of a polling loop finds a command with an epoll_wait that reports
 * the socket, then reads it: two system calls where a server that waits on
 * its one socket makes one. So when a round served a queue, the next
 * round's last prepare watcher (after the sends and the hand-off to the I/O
 * pool) retries that queue's try() (a non-blocking read) for up to
 * SPIN_NS, and a command arriving meanwhile is read at once; try() sends
 * what it produced itself. Fairness: a hit (or a failure) ends the spin and
 * the round goes on (epoll_wait: every other socket and timer gets its
 * turn); a message posted to the worker ends it too; and the worker spins
 * only while one queue is active: once a second one has been served (or a
 * vfio-user controller's doorbells rang, worker_spin_other), not before
 * SHARED_S have passed without one, so that busy queues are all found by
 * epoll_wait, each in turn, as before.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MAX_QUIET_MSGS 8          /* completions linked before a wake-up */
#define MAX_QUIET_NS   50000      /* ... or the first of them waited this long */
#define SPIN_NS        20000      /* retry one source this long between rounds */
#define SHARED_S       0.001      /* no spinning this long after a second source */

struct worker {
	struct ev_loop *loop;
	ev_async wake;
	ev_prepare flush_jobs;      /* hands the held jobs to the pool */
	ev_prepare spin_watch;      /* polling only: spin_cb */
	struct io_job *jobs_head, *jobs_tail; /* held jobs (loop thread only) */
	int jobs_n;
	pthread_t thread;
	bool poll;                  /* spin instead of sleeping (workers_start_poll) */
	bool stopped;               /* loop thread only: the stop message ran */
	/* Spinning (loop thread only; see the top of this file). */
	struct worker_spin *spin;   /* to try after this round, or NULL */
	const struct worker_spin *last_served; /* compared, never called */
	ev_tstamp shared_until;     /* another source was served lately */
	pthread_mutex_t lock;       /* guards head, tail, stopping */
	struct worker_msg *head, *tail;
	bool stopping;
};

static struct worker *workers;
static int nr_workers;
static unsigned next_worker;          /* round-robin cursor (atomic) */
static __thread struct worker *self;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct io_job *head, *tail;
	bool stopping;
	pthread_t *threads;
	int nr;
	int idle;                  /* threads waiting on cond */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void pool_push(struct io_job *first, struct io_job *last, int n);

/* ---- workers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = (struct worker *)((char *)a - offsetof(struct worker, wake));

	pthread_mutex_lock(&w->lock);
	struct worker_msg *m = w->head;
	bool stopping = w->stopping;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->lock);

	while (m) {
		struct worker_msg *next = m->next; /* fn may reuse or free m */
		m->fn(m);
		m = next;
	}
	/* Messages posted before the stop request have all run now. */
	if (stopping) {
		w->stopped = true;
		ev_break(loop, EVBREAK_ALL);
	}
}

static void hand_over_jobs(struct worker *w)
{
	if (!w->jobs_head)
		return;
	pool_push(w->jobs_head, w->jobs_tail, w->jobs_n);
	w->jobs_head = w->jobs_tail = NULL;
	w->jobs_n = 0;
}

static void flush_jobs_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	hand_over_jobs((struct worker *)((char *)p - offsetof(struct worker, flush_jobs)));
}

void worker_spin_served(struct worker_spin *s)
{
	struct worker *w = self;

	if (!w || !w->poll)
		return;
	if (w->last_served && w->last_served != s)
		w->shared_until = ev_now(w->loop) + SHARED_S;
	w->last_served = s;
	w->spin = s;
}

void worker_spin_other(void)
{
	struct worker *w = self;

	if (w && w->poll)
		w->shared_until = ev_now(w->loop) + SHARED_S;
}

void worker_spin_forget(struct worker_spin *s)
{
	struct worker *w = self;

	if (!w)
		return;
	if (w->spin == s)
		w->spin = NULL;
	if (w->last_served == s)
		w->last_served = NULL;
}

/* The last prepare watcher of a polling loop: retry the source served in
 * the last round, if it is the only one active (see the top of this file). */
static void spin_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = (struct worker *)((char *)p - offsetof(struct worker, spin_watch));
	struct worker_spin *s = w->spin;

	w->spin = NULL;
	if (!s || ev_now(loop) < w->shared_until)
		return;
	uint64_t end = now_ns() + SPIN_NS;
	/* ev_async_pending(): a message (an I/O completion, a new queue, the
	 * stop request) waits for the loop. */
	while (!s->try(s))
		if (ev_async_pending(&w->wake) || now_ns() >= end)
			return;
	/* A hit: what it submitted leaves now, not a round later. */
	hand_over_jobs(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	self = w;
	if (w->poll) {
		/* Each round runs the prepare watchers (sends, I/O pool
		 * hand-off, the spin), epoll_wait(0) and whatever is ready,
		 * then comes straight back: a command that arrives finds its
		 * worker running, not asleep. ev_run() clears the break on
		 * entry, hence the flag. */
		while (!w->stopped)
			ev_run(w->loop, EVRUN_NOWAIT);
	} else {
		ev_run(w->loop, 0);
	}
	self = NULL;
	return NULL;
}

static int io_pool_start(int n);
static void io_pool_stop(void);

int workers_start(int n, int io_threads)
{
	return workers_start_poll(n, io_threads, false);
}

int workers_start_poll(int n, int io_threads, bool poll)
{
	if (n <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (int)cpus : 1;
	}
	workers = calloc((size_t)n, sizeof(*workers));
	if (!workers)
		return -1;
	for (int i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		w->loop = ev_loop_new(EVFLAG_AUTO);
		if (!w->loop) {
			log_error("worker %d: cannot create an event loop", i);
			goto fail;
		}
		w->poll = poll;
		pthread_mutex_init(&w->lock, NULL);
		ev_async_init(&w->wake, wake_cb);
		ev_async_start(w->loop, &w->wake);
		/* Always armed, and the last prepare watcher to run but the
		 * spin: a job that another prepare callback submits still leaves
		 * in this round. */
		ev_prepare_init(&w->flush_jobs, flush_jobs_cb);
		ev_set_priority(&w->flush_jobs, EV_MINPRI + 1);
		ev_prepare_start(w->loop, &w->flush_jobs);
		if (poll) {
			ev_prepare_init(&w->spin_watch, spin_cb);
			ev_set_priority(&w->spin_watch, EV_MINPRI);
			ev_prepare_start(w->loop, &w->spin_watch);
		}
		int rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc) {
			log_error("worker %d: pthread_create: %s", i, strerror(rc));
			ev_loop_destroy(w->loop);
			goto fail;
		}
		nr_workers = i + 1;
	}
	if (io_pool_start(io_threads) < 0)
		goto fail;
	return 0;
fail:
	workers_stop();
	return -1;
}

void workers_stop(void)
{
	/* I/O threads first: their done() callbacks still need the loops. */
	io_pool_stop();
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];

		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		pthread_mutex_unlock(&w->lock);
		ev_async_send(w->loop, &w->wake);
	}
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->thread, NULL);
		ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->lock);
	}
	free(workers);
	workers = NULL;
	nr_workers = 0;
}

int workers_count(void)
{
	return nr_workers;
}

struct worker *worker_get(int i)
{
	return i >= 0 && i < nr_workers ? &workers[i] : NULL;
}

struct worker *worker_next(void)
{
	if (!nr_workers)
		return NULL;
	unsigned i = __atomic_fetch_add(&next_worker, 1, __ATOMIC_RELAXED);
	return &workers[i % (unsigned)nr_workers];
}

struct ev_loop *worker_loop(struct worker *w)
{
	return w->loop;
}

struct worker *worker_self(void)
{
	return self;
}

/* Link msg into w's list; the caller wakes the loop (ev_async_send). */
static void post_quiet(struct worker *w, struct worker_msg *msg)
{
	msg->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = msg;
	else
		w->head = msg;
	w->tail = msg;
	pthread_mutex_unlock(&w->lock);
}

void worker_post(struct worker *w, struct worker_msg *msg)
{
	post_quiet(w, msg);
	ev_async_send(w->loop, &w->wake);
}

/* ---- I/O pool ---- */

static void job_done_msg(struct worker_msg *msg)
{
	struct io_job *job = (struct io_job *)((char *)msg - offsetof(struct io_job, msg));

	job->done(job);
}

/* Completions an I/O thread linked into a worker's list but has not
 * announced yet (see the top of this file). */
struct quiet {
	struct worker *w;
	int n;
	uint64_t since;
};

static void quiet_flush(struct quiet *q)
{
	if (q->n)
		ev_async_send(q->w->loop, &q->w->wake);
	q->n = 0;
}

static void quiet_add(struct quiet *q, struct io_job *job)
{
	/* Read before the hand-over: once the message is in the worker's
	 * list, the worker may run done() (woken by any other post) and
	 * reuse or free the job at once. */
	struct worker *w = job->worker;

	if (q->n && q->w != w)
		quiet_flush(q);
	post_quiet(w, &job->msg);
	if (!q->n++) {
		q->w = w;
		q->since = now_ns();
	}
	if (q->n >= MAX_QUIET_MSGS)
		quiet_flush(q);
}

static void *io_main(void *arg)
{
	struct quiet q = { 0 };

	(void)arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		if (!pool.head && q.n) {
			/* Nothing else to do: announce before sleeping. */
			pthread_mutex_unlock(&pool.lock);
			quiet_flush(&q);
			pthread_mutex_lock(&pool.lock);
			continue;
		}
		while (!pool.head && !pool.stopping) {
			pool.idle++;
			pthread_cond_wait(&pool.cond, &pool.lock);
			pool.idle--;
		}
		struct io_job *job = pool.head;
		if (!job)
			break; /* stopping and nothing left */
		pool.head = job->next_job;
		if (!pool.head)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.lock);

		/* The job may block for long: announce what has waited. */
		if (q.n && (job->slow || now_ns() - q.since > MAX_QUIET_NS))
			quiet_flush(&q);
		job->run(job);
		job->msg.fn = job_done_msg;
		quiet_add(&q, job);

		pthread_mutex_lock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.lock);
	quiet_flush(&q);
	return NULL;
}

static int io_pool_start(int n)
{
	if (n < 1)
		n = 1;
	pool.threads = calloc((size_t)n, sizeof(*pool.threads));
	if (!pool.threads)
		return -1;
	pool.stopping = false;
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&pool.threads[i], NULL, io_main, NULL);
		if (rc) {
			log_error("I/O thread %d: pthread_create: %s", i, strerror(rc));
			return -1;
		}
		pool.nr = i + 1;
	}
	return 0;
}

/* Queued jobs still run; then the threads exit. */
static void io_pool_stop(void)
{
	pthread_mutex_lock(&pool.lock);
	pool.stopping = true;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (int i = 0; i < pool.nr; i++)
		pthread_join(pool.threads[i], NULL);
	free(pool.threads);
	pool.threads = NULL;
	pool.nr = 0;
}

/* Queue the chain first..last of n jobs; wake an idle thread per job. */
static void pool_push(struct io_job *first, struct io_job *last, int n)
{
	last->next_job = NULL;
	pthread_mutex_lock(&pool.lock);
	if (pool.tail)
		pool.tail->next_job = first;
	else
		pool.head = first;
	pool.tail = last;
	for (int i = 0; i < n && i < pool.idle; i++)
		pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}

static void submit_job(struct io_job *job, bool slow)
{
	struct worker *w = self;

	job->slow = slow;
	if (!w) {
		pool_push(job, job, 1);
		return;
	}
	/* On a loop: held until the loop is about to sleep (flush_jobs_cb). */
	job->next_job = NULL;
	if (w->jobs_tail)
		w->jobs_tail->next_job = job;
	else
		w->jobs_head = job;
	w->jobs_tail = job;
	w->jobs_n++;
}

void io_submit_job(struct io_job *job)
{
	submit_job(job, false);
}

void io_submit_slow_job(struct io_job *job)
{
	submit_job(job, true);
}
