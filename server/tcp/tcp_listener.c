/*
 * NVMe/TCP listeners: one listening socket per configured address, served
 * by a listener thread with its own libev loop. Accepted sockets go round
 * robin to the workers (worker_post), where tcp_conn_start() takes over.
 *
 * Every connection is registered on its worker's list so that
 * tcp_listeners_stop() can close them all and wait until each has freed its
 * queue (which waits for the requests still executing).
 *
 * The connection limit (max_connections) is kept at accept. Connections that
 * have not completed Fabrics Connect yet are also on one list in accept
 * order; a connection past the limit closes the oldest of them (eviction)
 * rather than being refused. Why evict rather than reserve: sockets that
 * never send ICReq cost nothing to open, so any share kept for handshaking
 * connections fills up at once and locks real hosts out for the 30 s of the
 * handshake timeout; evicting the oldest one lets a host in as long as its
 * own handshake (a few round trips) beats the arrival of as many new
 * connections as the limit has room for unconnected ones. Connected queues
 * are never evicted: when all are connected, a new connection is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nvme/types.h>

#include "ana.h"
#include "log.h"
#include "tcp.h"
#include "tcp_conn.h"
#include "tcp_sock.h"
#include "worker.h"

/* Room for a burst of connections (hosts reconnecting after a restart, one
 * connection per queue) while the listener thread waits for a CPU: past
 * the backlog the kernel drops SYNs and the host retries a second later. */
#define LISTEN_BACKLOG 1024
#define ACCEPTS_PER_EVENT 64

struct listener {
	int fd;
	ev_io io;
	struct nvme_port port;
};

/* One accepted connection, from accept() until its queue is freed. */
struct accepted {
	struct worker_msg msg;
	int fd;
	int widx;                    /* index of the worker serving it */
	const struct nvme_port *port;
	char local_addr[64];
	struct tcp_conn *conn;
	struct accepted *prev, *next;
	/* Under L.lock: */
	struct accepted *pprev, *pnext; /* L.pending, while not connected */
	bool pending;
	bool connected;              /* Fabrics Connect done */
	bool evicting;               /* evict_msg queued on the worker */
	bool gone;                   /* closed while evict_msg was queued */
	struct worker_msg evict_msg;
};

static struct {
	pthread_t thread;
	struct ev_loop *loop;        /* non-NULL while started */
	ev_async stop;
	ev_timer retry;              /* re-arms accept after EMFILE */
	struct listener l[2 * CFG_MAX_LISTENERS]; /* listen, then tls_listen */
	int nr;
	unsigned rr;

	struct accepted **conns;     /* per worker; touched only by that worker */
	struct worker_msg *close_msgs;
	int nr_workers;

	pthread_mutex_t lock;        /* guards live, conns, pending */
	pthread_cond_t cond;
	int live;                    /* accepted, not yet gone + close_msgs not yet run */
	uint32_t conns_open;         /* accepted, not yet closed */
	uint32_t max_conns;
	struct accepted *pend_head, *pend_tail; /* not connected, oldest first */
	time_t refused_at;           /* listener thread: log refusals once a second */
	unsigned refused;
	time_t evicted_at;           /* the same for evictions (lock) */
	unsigned evicted;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void numeric_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a = sa->sa_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

/* ---- the list of connections not connected yet (L.lock) ---- */

static void pending_unlink(struct accepted *a)
{
	if (!a->pending)
		return;
	if (a->pprev)
		a->pprev->pnext = a->pnext;
	else
		L.pend_head = a->pnext;
	if (a->pnext)
		a->pnext->pprev = a->pprev;
	else
		L.pend_tail = a->pprev;
	a->pprev = a->pnext = NULL;
	a->pending = false;
}

static void evict_run(struct worker_msg *msg);

/* Under L.lock: have the oldest unconnected connection closed. False if
 * there is none. */
static bool evict_oldest(void)
{
	struct accepted *a = L.pend_head;

	if (!a)
		return false;
	pending_unlink(a);
	a->evicting = true;
	a->evict_msg.fn = evict_run;
	worker_post(worker_get(a->widx), &a->evict_msg);
	return true;
}

/* ---- on the worker ---- */

static void live_put(void)
{
	pthread_mutex_lock(&L.lock);
	L.live--;
	pthread_cond_broadcast(&L.cond);
	pthread_mutex_unlock(&L.lock);
}

static void conn_gone(void *arg)
{
	struct accepted *a = arg;
	bool keep;

	if (a->prev)
		a->prev->next = a->next;
	else
		L.conns[a->widx] = a->next;
	if (a->next)
		a->next->prev = a->prev;
	pthread_mutex_lock(&L.lock);
	pending_unlink(a);
	L.conns_open--;
	keep = a->evicting; /* its evict_msg is queued: evict_run frees it */
	a->gone = true;
	a->conn = NULL;
	pthread_mutex_unlock(&L.lock);
	if (keep)
		return;
	free(a);
	live_put();
}

static void conn_connected(void *arg)
{
	struct accepted *a = arg;

	pthread_mutex_lock(&L.lock);
	pending_unlink(a);
	a->connected = true;
	pthread_mutex_unlock(&L.lock);
}

/* One log line a second at most, however fast idle sockets come. */
static void log_evicted(const char *peer)
{
	time_t now = time(NULL);
	unsigned n;

	pthread_mutex_lock(&L.lock);
	n = ++L.evicted;
	if (now != L.evicted_at) {
		L.evicted_at = now;
		L.evicted = 0;
	} else {
		n = 0;
	}
	pthread_mutex_unlock(&L.lock);
	if (n)
		log_warn("tcp: %u connection(s) without Fabrics Connect closed to make room for new "
			 "ones, the last from %s: max_connections (%u) reached", n, peer, L.max_conns);
}

static void evict_run(struct worker_msg *msg)
{
	struct accepted *a = (struct accepted *)(void *)((char *)msg -
							   offsetof(struct accepted, evict_msg));
	bool gone, connected;

	pthread_mutex_lock(&L.lock);
	a->evicting = false;
	gone = a->gone;
	connected = a->connected;
	/* It completed Connect after it was chosen: spare it, take the next. */
	if (!gone && connected)
		evict_oldest();
	pthread_mutex_unlock(&L.lock);
	if (gone) {
		free(a);
		live_put();
	} else if (!connected) {
		log_evicted(a->conn->peer);
		tcp_conn_close(a->conn);
	}
}

static void conn_arrived(struct worker_msg *msg)
{
	struct accepted *a = (struct accepted *)msg;
	struct worker *w = worker_get(a->widx);

	a->next = L.conns[a->widx];
	if (a->next)
		a->next->prev = a;
	L.conns[a->widx] = a;
	a->conn = tcp_conn_start(worker_loop(w), w, a->fd,
				 a->port->tls ? &tcp_sock_tls : &tcp_sock_plain, a->port, a->local_addr,
				 conn_gone, a);
	if (!a->conn) {
		conn_gone(a);
		return;
	}
	tcp_conn_on_connected(a->conn, conn_connected);
}

static void close_all(struct worker_msg *msg)
{
	int widx = (int)(msg - L.close_msgs);

	for (struct accepted *a = L.conns[widx], *next; a; a = next) {
		next = a->next;
		tcp_conn_close(a->conn);
	}
	live_put(); /* the message itself: its memory may go now */
}

/* ---- on the listener thread ---- */

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	for (int i = 0; i < L.nr; i++)
		ev_io_start(loop, &L.l[i].io);
}

/*
 * May a new connection come in: below the limit, or once the oldest
 * unconnected one is on its way out? If so a is counted as open (and live),
 * joins the unconnected ones (here rather than on its worker, so that the
 * next accept already sees it) and goes to its worker. Posting under the
 * lock keeps conn_arrived ahead of any evict_msg for a: a worker runs its
 * messages in order.
 */
static bool admit(struct accepted *a)
{
	bool ok;

	pthread_mutex_lock(&L.lock);
	ok = L.conns_open < L.max_conns || evict_oldest();
	if (ok) {
		L.conns_open++;
		L.live++;
		a->pending = true;
		a->pprev = L.pend_tail;
		if (L.pend_tail)
			L.pend_tail->pnext = a;
		else
			L.pend_head = a;
		L.pend_tail = a;
		worker_post(worker_get(a->widx), &a->msg);
	}
	pthread_mutex_unlock(&L.lock);
	return ok;
}

/* Every connection is connected and the limit reached: close the new one.
 * Logged at most once a second, with the number refused. */
static void refuse(int fd, const struct listener *l)
{
	time_t now = time(NULL);

	close(fd);
	L.refused++;
	if (now == L.refused_at)
		return;
	log_warn("tcp: %u connection(s) on %s:%s refused: max_connections (%u) connected queues "
		 "open", L.refused, l->port.traddr, l->port.trsvcid, L.max_conns);
	L.refused_at = now;
	L.refused = 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = io->data;

	for (int n = 0; n < ACCEPTS_PER_EVENT; n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pause accepting instead of spinning. */
				log_warn("tcp: accept on %s:%s: %s; pausing", l->port.traddr,
					 l->port.trsvcid, strerror(errno));
				for (int i = 0; i < L.nr; i++)
					ev_io_stop(loop, &L.l[i].io);
				ev_timer_set(&L.retry, 0.5, 0.);
				ev_timer_start(loop, &L.retry);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_warn("tcp: accept on %s:%s: %s", l->port.traddr, l->port.trsvcid,
					 strerror(errno));
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

		struct accepted *a = calloc(1, sizeof(*a));
		if (!a) {
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			numeric_addr((struct sockaddr *)&ss, a->local_addr, sizeof(a->local_addr));
		a->fd = fd;
		a->port = &l->port;
		a->widx = (int)(L.rr % (unsigned)L.nr_workers);
		a->msg.fn = conn_arrived;
		if (!admit(a)) {
			refuse(fd, l);
			free(a);
			continue;
		}
		L.rr++;
	}
}

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void *listener_main(void *arg)
{
	ev_run(L.loop, 0);
	return NULL;
}

/* ---- start / stop ---- */

static int open_listener(const struct listener_config *lc, bool tls, struct listener *l,
			 char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	int one = 1;
	int rc = getaddrinfo(lc->addr, lc->port, &hints, &ai);

	if (rc) {
		snprintf(err, errlen, "listener %s:%s: %s", lc->addr, lc->port, gai_strerror(rc));
		return -1;
	}
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		goto sys_fail;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* An IPv6 listener serves IPv6 only; "0.0.0.0" is its own listener. */
	if (ai->ai_family == AF_INET6)
		setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(l->fd, LISTEN_BACKLOG) < 0)
		goto sys_fail;

	/* Port 0 asks for an ephemeral port: report the real one. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned port = 0;
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						      : ((struct sockaddr_in *)&ss)->sin_port);
	memset(&l->port, 0, sizeof(l->port));
	l->port.ops = &tcp_transport;
	l->port.tls = tls;
	l->port.adrfam = ai->ai_family == AF_INET6 ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
	snprintf(l->port.traddr, sizeof(l->port.traddr), "%s", lc->addr);
	snprintf(l->port.trsvcid, sizeof(l->port.trsvcid), "%u", port);
	freeaddrinfo(ai);
	nvme_port_register(&l->port);
	log_info("tcp: listening on %s port %s (port ID %u%s)", l->port.traddr, l->port.trsvcid,
		 l->port.portid, tls ? ", TLS 1.3 required" : "");
	return 0;
sys_fail:
	snprintf(err, errlen, "listener %s:%s: %s", lc->addr, lc->port, strerror(errno));
	if (l->fd >= 0)
		close(l->fd);
	freeaddrinfo(ai);
	return -1;
}

static void close_listeners(void)
{
	for (int i = 0; i < L.nr; i++) {
		nvme_port_unregister(&L.l[i].port);
		close(L.l[i].fd);
	}
	L.nr = 0;
}

int tcp_listeners_bind(const struct target_config *cfg, char *err, size_t errlen)
{
	if (cfg->nr_tls_listeners && tcp_tls_init(err, errlen) != 0)
		return -1;
	for (int i = 0; i < cfg->nr_listeners + cfg->nr_tls_listeners; i++) {
		bool tls = i >= cfg->nr_listeners;
		const struct listener_config *lc =
			tls ? &cfg->tls_listeners[i - cfg->nr_listeners] : &cfg->listeners[i];

		if (open_listener(lc, tls, &L.l[i], err, errlen) < 0) {
			close_listeners();
			return -1;
		}
		ana_port_configure(L.l[i].port.portid, cfg, lc);
		L.nr = i + 1;
	}
	L.max_conns = cfg->max_connections ? cfg->max_connections : CFG_DEFAULT_MAX_CONNECTIONS;
	return 0;
}

int tcp_listeners_run(char *err, size_t errlen)
{
	L.nr_workers = workers_count();
	if (L.nr_workers <= 0) {
		snprintf(err, errlen, "tcp: no worker threads running");
		close_listeners();
		return -1;
	}
	L.conns = calloc((size_t)L.nr_workers, sizeof(*L.conns));
	L.close_msgs = calloc((size_t)L.nr_workers, sizeof(*L.close_msgs));
	L.loop = ev_loop_new(EVFLAG_AUTO);
	if (!L.conns || !L.close_msgs || !L.loop) {
		snprintf(err, errlen, "tcp: out of memory starting the listeners");
		goto fail;
	}
	ev_async_init(&L.stop, stop_cb);
	ev_async_start(L.loop, &L.stop);
	ev_timer_init(&L.retry, retry_cb, 0.5, 0.);
	for (int i = 0; i < L.nr; i++) {
		ev_io_init(&L.l[i].io, accept_cb, L.l[i].fd, EV_READ);
		L.l[i].io.data = &L.l[i];
		ev_io_start(L.loop, &L.l[i].io);
	}
	int rc = pthread_create(&L.thread, NULL, listener_main, NULL);
	if (rc) {
		snprintf(err, errlen, "tcp: listener thread: %s", strerror(rc));
		goto fail;
	}
	return 0;
fail:
	if (L.loop)
		ev_loop_destroy(L.loop);
	L.loop = NULL;
	free(L.conns);
	free(L.close_msgs);
	L.conns = NULL;
	L.close_msgs = NULL;
	close_listeners();
	return -1;
}

int tcp_listeners_start(const struct target_config *cfg, char *err, size_t errlen)
{
	if (tcp_listeners_bind(cfg, err, errlen) != 0)
		return -1;
	return tcp_listeners_run(err, errlen);
}

const struct nvme_port *tcp_listener_port(int i)
{
	return L.loop && i >= 0 && i < L.nr ? &L.l[i].port : NULL;
}

void tcp_listeners_stop(void)
{
	if (!L.loop) {
		close_listeners(); /* bound, never run */
		return;
	}
	ev_async_send(L.loop, &L.stop);
	pthread_join(L.thread, NULL);
	ev_loop_destroy(L.loop);
	L.loop = NULL;
	close_listeners();

	/* Accepted sockets already posted reach their worker before this. */
	pthread_mutex_lock(&L.lock);
	L.live += L.nr_workers;
	pthread_mutex_unlock(&L.lock);
	for (int i = 0; i < L.nr_workers; i++) {
		L.close_msgs[i].fn = close_all;
		worker_post(worker_get(i), &L.close_msgs[i]);
	}
	pthread_mutex_lock(&L.lock);
	while (L.live > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (pthread_cond_timedwait(&L.cond, &L.lock, &ts) == ETIMEDOUT)
			log_warn("tcp: still waiting for connections to finish their requests");
	}
	pthread_mutex_unlock(&L.lock);
	free(L.conns);
	free(L.close_msgs);
	L.conns = NULL;
	L.close_msgs = NULL;
	tcp_tls_exit();
}
