/*
 * workers_sync(): a grace period over the worker loops (worker.h). What a
 * loop reads of shared state it reads within one callback, so once every
 * loop has run a message posted after a pointer was swapped, none of them
 * still uses what the pointer pointed to before: it may be freed.
 */
#include <pthread.h>
#include <stdlib.h>

#include "worker.h"

struct sync_point {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
};

struct sync_msg {
	struct worker_msg msg;
	struct sync_point *point;
};

static void sync_reached(struct worker_msg *msg)
{
	struct sync_point *p = ((struct sync_msg *)msg)->point;

	pthread_mutex_lock(&p->lock);
	if (--p->pending == 0)
		pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int workers_sync(void)
{
	struct sync_point p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	int n = workers_count();
	struct sync_msg *msgs;

	if (n == 0)
		return 0;
	/* A worker waiting for its own message would wait forever. */
	if (worker_self() || !(msgs = calloc((size_t)n, sizeof(*msgs))))
		return -1;
	p.pending = n;
	for (int i = 0; i < n; i++) {
		msgs[i].msg.fn = sync_reached;
		msgs[i].point = &p;
		worker_post(worker_get(i), &msgs[i].msg);
	}
	pthread_mutex_lock(&p.lock);
	while (p.pending > 0)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	free(msgs);
	return 0;
}
