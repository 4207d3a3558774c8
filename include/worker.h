/*
 * Worker threads: one libev loop each (doc/architecture.md, "Threads and the event
 * loop"). A queue (TCP connection, vfio-user controller) lives on exactly one
 * worker for its whole life, so per-queue state needs no locks.
 *
 * Other threads (the listener, I/O threads, a namespace's commit thread)
 * talk to a worker only through worker_post(): a lock-protected MPSC list
 * drained by the worker's ev_async watcher.
 *
 * The I/O pool runs blocking backend calls (ns_read, ns_write_data, ...) off
 * the loops: io_submit_job() queues job->run for an I/O thread and, when it
 * returns, runs job->done back on job->worker. Jobs submitted on a loop are
 * handed to the pool together when that loop is about to sleep (worker.c).
 *
 * job->run may block on file I/O, but must never wait for something that
 * needs a worker's loop or another job to move: the I/O thread may hold
 * completions it has not yet announced to their worker (worker.c), and the
 * other I/O threads may be blocked the same way. Waiting for a sync with
 * Flush semantics is such a wait (ns_sync_wait: it can wait for a write's
 * end, which runs in a job's done()); ask for the callback (ns_sync)
 * instead. A commit alone needs neither: a Reset waits for the one that
 * journals it (ns_zone_mgmt_apply).
 */
#ifndef ZNSTGT_WORKER_H
#define ZNSTGT_WORKER_H

#include <ev.h>
#include <stdbool.h>

struct worker;

struct worker_msg {
	void (*fn)(struct worker_msg *msg);
	struct worker_msg *next;
};

struct io_job {
	struct worker_msg msg;      /* how done() gets back to the worker */
	struct worker *worker;      /* where done() runs */
	void (*run)(struct io_job *job);   /* on an I/O thread; may block */
	void (*done)(struct io_job *job);  /* on job->worker's loop */
	struct io_job *next_job;
	bool slow;                  /* run waits for a commit or a sync (io_submit_slow_job) */
};

/* Start n workers (n = 0: one per online CPU) and io_threads I/O threads. */
int workers_start(int n, int io_threads);
/*
 * The same; with poll, every worker spins on its loop (ev_run with
 * EVRUN_NOWAIT: epoll_wait with a zero timeout) instead of sleeping in it, so
 * that no command waits for its worker to be woken (the `poll` key,
 * doc/configuration.md). Each worker then uses a whole CPU.
 */
int workers_start_poll(int n, int io_threads, bool poll);
/* Stop all loops after their pending messages ran; join the threads. */
void workers_stop(void);
int workers_count(void);
struct worker *worker_get(int i);
/* Round-robin choice for a new connection. */
struct worker *worker_next(void);
struct ev_loop *worker_loop(struct worker *w);
/* The worker whose loop runs on the calling thread, or NULL. */
struct worker *worker_self(void);

/* Run msg->fn on w's loop, soon. Safe from any thread. */
void worker_post(struct worker *w, struct worker_msg *msg);

/*
 * A polling worker's shortcut for one busy queue (worker.c, "Spinning on
 * one source"). A queue that has just been served input calls
 * worker_spin_served() from its callback; after that round of the loop
 * the polling worker calls try() over and over for a short while instead
 * of the loop's epoll_wait, as long as that queue is the only one it served
 * lately. At queue depth 1 the next command arrives on that very queue, and
 * try() reads it without an epoll_wait first. No effect on a sleeping
 * worker or off the worker threads.
 */
struct worker_spin {
	/* Look for input without blocking and serve what there is; false:
	 * nothing there (try again), true: done (input served, or the queue
	 * failed or closed: the worker goes back to its loop). */
	bool (*try)(struct worker_spin *s);
};
void worker_spin_served(struct worker_spin *s);
/* s is going away: never try it again (call before freeing s). */
void worker_spin_forget(struct worker_spin *s);
/* Work that no try() serves was done (a vfio-user controller's doorbells
 * rang): the polling worker does not spin for a while either. */
void worker_spin_other(void);

void io_submit_job(struct io_job *job);
/* The same for a job whose run() waits for a group commit or an fsync:
 * its I/O thread first announces the jobs it finished, which would
 * otherwise wait that long for their worker to hear of them. */
void io_submit_slow_job(struct io_job *job);

/*
 * Return once every worker loop has run past this call (worker_sync.c), so
 * that what was unlinked from shared state before it is no longer used by
 * any loop. Not on a worker; -1 (nothing waited for) there or when out of
 * memory.
 */
int workers_sync(void);

#endif
