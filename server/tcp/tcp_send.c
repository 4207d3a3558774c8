/*
 * The send queue of a connection.
 *
 * Everything the controller sends (ICResp, R2T, C2HData + payload + digest,
 * CapsuleResp) is a struct tcp_tx queued in order. Queuing only arms an
 * ev_prepare watcher: the queue is written just before the loop next goes
 * to sleep, so all completions and R2Ts produced by one loop iteration leave
 * in a single sendmsg() (batching). A partial write (the socket buffer is
 * full) leaves the rest queued and waits for EPOLLOUT; the loop never
 * blocks.
 */
#include <errno.h>
#include <sys/socket.h>

#include "tcp_conn.h"

#define TX_IOV_MAX 64

void tcp_tx_queue(struct tcp_conn *c, struct tcp_tx *tx)
{
	tx->next = NULL;
	if (c->tx_tail)
		c->tx_tail->next = tx;
	else
		c->tx_head = tx;
	c->tx_tail = tx;
	/* Waiting for writability already: the write watcher will flush. */
	if (!ev_is_active(&c->wio) && !ev_is_active(&c->flush))
		ev_prepare_start(c->loop, &c->flush);
}

/* Account for n bytes written: finish fully sent entries in order. */
static void tx_advance(struct tcp_conn *c, size_t n)
{
	while (n) {
		struct tcp_tx *tx = c->tx_head;
		struct iovec *v = &tx->iov[tx->first];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		tx->first++;
		/* Entries are complete once their last piece is out; empty
		 * pieces are never queued. */
		if (tx->first == tx->count) {
			c->tx_head = tx->next;
			if (!c->tx_head)
				c->tx_tail = NULL;
			tx->sent(c, tx);
		}
	}
}

void tcp_tx_flush(struct tcp_conn *c)
{
	while (c->tx_head && !c->closing) {
		struct iovec iov[TX_IOV_MAX];
		int n = 0;

		for (struct tcp_tx *tx = c->tx_head; tx && n < TX_IOV_MAX; tx = tx->next)
			for (int i = tx->first; i < tx->count && n < TX_IOV_MAX; i++)
				iov[n++] = tx->iov[i];

		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			tcp_conn_fail(c, "send", errno);
			return;
		}
		size_t total = 0;
		for (int i = 0; i < n; i++)
			total += iov[i].iov_len;
		tx_advance(c, (size_t)w);
		if ((size_t)w < total)
			break; /* socket buffer full */
	}
	if (c->closing)
		return;
	if (c->tx_head)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
}

void tcp_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct tcp_conn *c = p->data;

	ev_prepare_stop(loop, p);
	tcp_tx_flush(c);
}

void tcp_wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	tcp_tx_flush(w->data);
}

/* The connection is closing: forget what was never sent. Entries belong to
 * commands, which the caller recycles. */
void tcp_tx_drop(struct tcp_conn *c)
{
	c->tx_head = c->tx_tail = NULL;
}
