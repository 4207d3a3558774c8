/*
 * Submission queues: the transport's handle on the core (transport.h).
 *
 * Every live queue is on one list so that a target shutdown can ask each
 * transport connection to close and then wait until all are gone: a
 * transport frees a queue only once the core said it drained (none of its
 * commands in flight), so "all freed" also means "every in-flight command
 * finished". The count lives here, not in each transport.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "auth.h"
#include "ctrl.h"
#include "deadline.h"
#include "log.h"
#include "nvme_cmd.h"
#include "transport.h"

static pthread_mutex_t sqs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sqs_gone = PTHREAD_COND_INITIALIZER;
static struct nvme_sq *sqs_head;
static int sqs_live;

static void disconnect_msg(struct worker_msg *msg)
{
	struct nvme_sq *sq = container_of(msg, struct nvme_sq, disconnect_msg);

	/* Once the transport closes or frees the queue, conn is its own. */
	if (!sq->closed && !sq->freed)
		sq->ops->disconnect(sq->conn);
	nvme_sq_put(sq);
}

void nvme_sq_set_peer(struct nvme_sq *sq, const char *peer)
{
	snprintf(sq->peer_addr, sizeof(sq->peer_addr), "%s", peer);
}

struct nvme_sq *nvme_sq_alloc(struct worker *w, const struct nvme_port *port,
			      const char *local_addr, void *conn)
{
	struct nvme_sq *sq = calloc(1, sizeof(*sq));

	if (!sq)
		return NULL;
	sq->worker = w;
	sq->port = *port;
	sq->port.next = NULL;
	snprintf(sq->local_addr, sizeof(sq->local_addr), "%s", local_addr ? local_addr : "");
	sq->ops = port->ops;
	sq->conn = conn;
	atomic_init(&sq->refs, 1); /* the transport's */
	atomic_init(&sq->disconnect_posted, false);
	sq->disconnect_msg.fn = disconnect_msg;

	pthread_mutex_lock(&sqs_lock);
	sq->next = sqs_head;
	if (sqs_head)
		sqs_head->prev = sq;
	sqs_head = sq;
	sqs_live++;
	pthread_mutex_unlock(&sqs_lock);
	return sq;
}

static void sq_check_drained(struct nvme_sq *sq)
{
	if (sq->closed && !sq->inflight && !sq->drained) {
		sq->drained = true;
		sq->ops->drained(sq->conn);
	}
}

void nvme_sq_put_inflight(struct nvme_sq *sq)
{
	sq->inflight--;
	sq_check_drained(sq);
}

void nvme_sq_close(struct nvme_sq *sq)
{
	if (sq->closed)
		return;
	sq->closed = true;
	nvme_auth_queue_close(sq);
	/* AERs wait for events that may never come: give them back now. */
	if (sq->ctrl && sq->qid == 0)
		nvme_ctrl_abort_aers(sq->ctrl);
	sq_check_drained(sq);
}

void nvme_sq_free(struct nvme_sq *sq)
{
	if (!sq->drained)
		log_error("qid %u freed with %u command(s) in flight", sq->qid, sq->inflight);
	nvme_ctrl_unbind_sq(sq);
	auth_session_free(sq->auth);
	sq->auth = NULL;

	pthread_mutex_lock(&sqs_lock);
	if (sq->prev)
		sq->prev->next = sq->next;
	else
		sqs_head = sq->next;
	if (sq->next)
		sq->next->prev = sq->prev;
	if (--sqs_live == 0)
		pthread_cond_broadcast(&sqs_gone);
	pthread_mutex_unlock(&sqs_lock);

	sq->freed = true;
	nvme_sq_put(sq);
}

void nvme_sq_get(struct nvme_sq *sq)
{
	atomic_fetch_add(&sq->refs, 1);
}

void nvme_sq_put(struct nvme_sq *sq)
{
	if (atomic_fetch_sub(&sq->refs, 1) == 1)
		free(sq);
}

void nvme_sq_request_disconnect(struct nvme_sq *sq)
{
	/* One message per queue: a worker_msg can be queued only once. */
	if (atomic_exchange(&sq->disconnect_posted, true))
		return;
	nvme_sq_get(sq);
	worker_post(sq->worker, &sq->disconnect_msg);
}

void nvme_sq_disconnect_all(void)
{
	pthread_mutex_lock(&sqs_lock);
	for (struct nvme_sq *sq = sqs_head; sq; sq = sq->next)
		nvme_sq_request_disconnect(sq);
	pthread_mutex_unlock(&sqs_lock);
}

bool nvme_sq_wait_all_freed(double timeout_s)
{
	struct timespec deadline = deadline_after(timeout_s);
	int rc = 0;
	bool done;
	pthread_mutex_lock(&sqs_lock);
	while (sqs_live > 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&sqs_gone, &sqs_lock, &deadline);
	done = sqs_live == 0;
	if (!done)
		log_warn("%d queue(s) still open", sqs_live);
	pthread_mutex_unlock(&sqs_lock);
	return done;
}

bool nvme_sq_connected(const struct nvme_sq *sq)
{
	return sq->ctrl != NULL;
}

uint16_t nvme_sq_qid(const struct nvme_sq *sq)
{
	return sq->qid;
}

uint32_t nvme_sq_size(const struct nvme_sq *sq)
{
	return sq->size;
}

bool nvme_sq_sqhd_disabled(const struct nvme_sq *sq)
{
	return sq->sqhd_disabled;
}
