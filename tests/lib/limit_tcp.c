/*
 * Plain TCP over loopback: the stream and request/response limits of
 * limits.h. Every connection gets a client and a server thread; main only
 * sets up the sockets, starts the threads with one shared start time and
 * adds up what they counted.
 */
#include "limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iov.h"

#define MAX_CONNS 256
#define RX_MIN (64u * 1024)
#define IOV_BATCH 1024         /* IOV_MAX on Linux */
#define START_DELAY 0.02       /* lets every thread reach its loop first */

uint64_t limit_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double limit_now_s(void)
{
	return (double)limit_now_ns() / 1e9;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- sockets ---- */

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* n connected pairs over 127.0.0.1: cfd[i] (client) <-> sfd[i] (server). */
static int make_pairs(int n, int *cfd, int *sfd, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int made = 0;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, n) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al)) {
		fail(err, errlen, "loopback listener: %s", strerror(errno));
		goto out;
	}
	for (; made < n; made++) {
		cfd[made] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cfd[made] < 0 || connect(cfd[made], (struct sockaddr *)&a, sizeof(a))) {
			fail(err, errlen, "loopback connect: %s", strerror(errno));
			if (cfd[made] >= 0)
				close(cfd[made]);
			goto out;
		}
		/* One at a time, so that client i and server i are the two
		 * ends of one connection. */
		sfd[made] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (sfd[made] < 0) {
			fail(err, errlen, "loopback accept: %s", strerror(errno));
			close(cfd[made]);
			goto out;
		}
		nodelay(cfd[made]);
		nodelay(sfd[made]);
	}
	close(lfd);
	return 0;
out:
	if (lfd >= 0)
		close(lfd);
	while (made--) {
		close(cfd[made]);
		close(sfd[made]);
	}
	return -1;
}

static int write_full(int fd, struct iovec *v, int cnt)
{
	while (cnt) {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)(cnt < IOV_BATCH ? cnt : IOV_BATCH) };
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		iov_consume(&v, &cnt, (size_t)w);
	}
	return 0;
}

/* read(), or with spin a non-blocking recv repeated until something came:
 * the two ways of waiting the load generator and the target can use
 * (limits.h), measured the same way here. No timeout: the other end is a
 * thread of this process, which always answers or closes. */
static ssize_t read_some(int fd, void *buf, size_t len, bool spin)
{
	for (;;) {
		ssize_t r = spin ? recv(fd, buf, len, MSG_DONTWAIT) : read(fd, buf, len);
		if (r >= 0 || (errno != EINTR && (!spin || (errno != EAGAIN && errno != EWOULDBLOCK))))
			return r;
	}
}

/* Sleep until CLOCK_MONOTONIC reads t seconds. */
static void wait_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void limit_pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int thread_on(pthread_t *th, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int rc;

	pthread_attr_init(&attr);
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	rc = pthread_create(th, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc;
}

/*
 * Two threads per connection: th[2i] runs a(arg_a + i) on the server CPU,
 * th[2i + 1] runs b(arg_b + i) on the client CPU. Returns how many pairs
 * started; if not all, the sockets are shut down so that the started ones
 * end at once.
 */
static int start_pairs(const struct limit_cpus *cpus, int n, pthread_t *th, void *(*a)(void *),
		       void *arg_a, size_t size_a, void *(*b)(void *), void *arg_b, size_t size_b,
		       const int *cfd, const int *sfd)
{
	for (int i = 0; i < n; i++) {
		if (thread_on(&th[2 * i], cpus->server, a, (char *)arg_a + (size_t)i * size_a))
			goto fail;
		if (thread_on(&th[2 * i + 1], cpus->client, b, (char *)arg_b + (size_t)i * size_b)) {
			shutdown(cfd[i], SHUT_RDWR);
			shutdown(sfd[i], SHUT_RDWR);
			pthread_join(th[2 * i], NULL);
			goto fail;
		}
		continue;
fail:
		for (int j = 0; j < i; j++) {
			shutdown(cfd[j], SHUT_RDWR);
			shutdown(sfd[j], SHUT_RDWR);
		}
		return i;
	}
	return n;
}

/* ---- request / response ---- */

struct rr_client {
	int fd, qd;
	bool spin;
	uint32_t req_len, rsp_len;
	double t_start;            /* the first request goes out */
	double t_begin, t_end;     /* counting window; no request after t_end */
	uint64_t ops;
	struct lat_hist lat;
	int err;                   /* errno of a failure, 0 if none */
};

struct rr_server {
	int fd;
	bool spin;
	uint32_t req_len, rsp_len;
};

static void *rr_client_main(void *arg)
{
	struct rr_client *c = arg;
	size_t rlen = c->rsp_len > RX_MIN ? c->rsp_len : RX_MIN;
	uint8_t *req = calloc(1, c->req_len), *rbuf = malloc(rlen);
	uint64_t *stamp = calloc((size_t)c->qd, sizeof(*stamp));
	struct iovec *iov = calloc((size_t)c->qd, sizeof(*iov));
	int head = 0, inflight = 0;
	size_t partial = 0;

	if (!req || !rbuf || !stamp || !iov) {
		c->err = ENOMEM;
		goto out;
	}
	wait_until(c->t_start);
	for (;;) {
		/* Refill: every free slot gets a request, all in one writev. */
		int k = 0;
		if (limit_now_s() < c->t_end) {
			uint64_t t = limit_now_ns();
			for (; inflight < c->qd; inflight++, k++) {
				stamp[(head + inflight) % c->qd] = t;
				iov[k] = (struct iovec){ req, c->req_len };
			}
		}
		if (k && write_full(c->fd, iov, k)) {
			c->err = errno;
			break;
		}
		if (!inflight)
			break;
		ssize_t r = read_some(c->fd, rbuf, rlen, c->spin);
		if (r <= 0) {
			c->err = r < 0 ? errno : ECONNRESET;
			break;
		}
		partial += (size_t)r;
		uint64_t t = limit_now_ns();
		double ts = (double)t / 1e9;
		while (partial >= c->rsp_len && inflight) {
			partial -= c->rsp_len;
			if (ts >= c->t_begin && ts < c->t_end) {
				lat_hist_add(&c->lat, t - stamp[head]);
				c->ops++;
			}
			head = (head + 1) % c->qd;
			inflight--;
		}
	}
	shutdown(c->fd, SHUT_WR);
out:
	free(req);
	free(rbuf);
	free(stamp);
	free(iov);
	return NULL;
}

static void *rr_server_main(void *arg)
{
	struct rr_server *s = arg;
	uint8_t *rbuf = malloc(RX_MIN), *rsp = calloc(1, s->rsp_len);
	struct iovec *iov = calloc(IOV_BATCH, sizeof(*iov));
	size_t partial = 0;

	if (!rbuf || !rsp || !iov)
		goto out;
	for (;;) {
		ssize_t r = read_some(s->fd, rbuf, RX_MIN, s->spin);
		if (r <= 0)
			break; /* the client is done (or gone) */
		partial += (size_t)r;
		size_t k = partial / s->req_len;
		partial %= s->req_len;
		while (k) {
			int n = k < IOV_BATCH ? (int)k : IOV_BATCH;
			for (int i = 0; i < n; i++)
				iov[i] = (struct iovec){ rsp, s->rsp_len };
			if (write_full(s->fd, iov, n))
				goto out;
			k -= (size_t)n;
		}
	}
out:
	free(rbuf);
	free(rsp);
	free(iov);
	return NULL;
}

int limit_tcp_rr(const struct limit_cpus *cpus, int conns, int qd, uint32_t req_len,
		 uint32_t rsp_len, double ramp, double seconds, double *ops_per_s,
		 struct lat_hist *lat, char *err, size_t errlen)
{
	int cfd[MAX_CONNS], sfd[MAX_CONNS];
	struct rr_client *cl;
	struct rr_server *sv;
	pthread_t *th;
	int rc = 0;

	if (conns < 1 || conns > MAX_CONNS || qd < 1 || !req_len || !rsp_len || seconds <= 0)
		return fail(err, errlen, "bad request/response parameters");
	if (make_pairs(conns, cfd, sfd, err, errlen))
		return -1;
	cl = calloc((size_t)conns, sizeof(*cl));
	sv = calloc((size_t)conns, sizeof(*sv));
	th = calloc(2 * (size_t)conns, sizeof(*th));
	if (!cl || !sv || !th) {
		rc = fail(err, errlen, "out of memory");
		goto out;
	}
	double t0 = limit_now_s() + START_DELAY;
	for (int i = 0; i < conns; i++) {
		cl[i] = (struct rr_client){ .fd = cfd[i], .spin = cpus->client_poll, .qd = qd,
					    .req_len = req_len,
					    .rsp_len = rsp_len, .t_start = t0, .t_begin = t0 + ramp,
					    .t_end = t0 + ramp + seconds };
		sv[i] = (struct rr_server){ .fd = sfd[i], .spin = cpus->server_poll,
					    .req_len = req_len, .rsp_len = rsp_len };
	}
	int started = start_pairs(cpus, conns, th, rr_server_main, sv, sizeof(*sv), rr_client_main, cl,
				  sizeof(*cl), cfd, sfd);
	if (started < conns)
		rc = fail(err, errlen, "cannot start the loopback threads");
	lat_hist_reset(lat);
	uint64_t ops = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(th[2 * i + 1], NULL);
		pthread_join(th[2 * i], NULL);
		if (cl[i].err && !rc)
			rc = fail(err, errlen, "loopback request/response: %s", strerror(cl[i].err));
		ops += cl[i].ops;
		lat_hist_merge(lat, &cl[i].lat);
	}
	*ops_per_s = (double)ops / seconds;
out:
	for (int i = 0; i < conns; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	free(cl);
	free(sv);
	free(th);
	return rc;
}

/* ---- stream ---- */

struct stream_end {
	int fd;
	bool spin;                 /* the receiver polls */
	uint32_t msg_len;
	double t_start, t_begin, t_end;
	uint64_t bytes;            /* receiver: bytes inside the window */
	int err;
};

static void *stream_send_main(void *arg)
{
	struct stream_end *s = arg;
	uint8_t *buf = calloc(1, s->msg_len);

	if (!buf) {
		s->err = ENOMEM;
		return NULL;
	}
	wait_until(s->t_start);
	while (limit_now_s() < s->t_end) {
		struct iovec v = { buf, s->msg_len };
		if (write_full(s->fd, &v, 1)) {
			s->err = errno;
			break;
		}
	}
	shutdown(s->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static void *stream_recv_main(void *arg)
{
	struct stream_end *s = arg;
	size_t len = s->msg_len > RX_MIN ? s->msg_len : RX_MIN;
	uint8_t *buf = malloc(len);

	if (!buf) {
		s->err = ENOMEM;
		return NULL;
	}
	for (;;) {
		ssize_t r = read_some(s->fd, buf, len, s->spin);
		if (r <= 0) {
			if (r < 0)
				s->err = errno;
			break;
		}
		double t = limit_now_s();
		if (t >= s->t_begin && t < s->t_end)
			s->bytes += (uint64_t)r;
	}
	free(buf);
	return NULL;
}

int limit_tcp_stream(const struct limit_cpus *cpus, int conns, uint32_t msg_len, double ramp,
		     double seconds, double *bytes_per_s, char *err, size_t errlen)
{
	int cfd[MAX_CONNS], sfd[MAX_CONNS];
	struct stream_end *snd, *rcv;
	pthread_t *th;
	int rc = 0;

	if (conns < 1 || conns > MAX_CONNS || !msg_len || seconds <= 0)
		return fail(err, errlen, "bad stream parameters");
	if (make_pairs(conns, cfd, sfd, err, errlen))
		return -1;
	snd = calloc((size_t)conns, sizeof(*snd));
	rcv = calloc((size_t)conns, sizeof(*rcv));
	th = calloc(2 * (size_t)conns, sizeof(*th));
	if (!snd || !rcv || !th) {
		rc = fail(err, errlen, "out of memory");
		goto out;
	}
	double t0 = limit_now_s() + START_DELAY;
	for (int i = 0; i < conns; i++) {
		/* The target sends read data to the host: server -> client. */
		snd[i] = (struct stream_end){ .fd = sfd[i], .msg_len = msg_len, .t_start = t0,
					      .t_end = t0 + ramp + seconds };
		rcv[i] = (struct stream_end){ .fd = cfd[i], .spin = cpus->client_poll, .msg_len = msg_len,
					      .t_begin = t0 + ramp, .t_end = t0 + ramp + seconds };
	}
	/* The target sends read data to the host: the sender on the server's
	 * CPU, the receiver on the client's. */
	int started = start_pairs(cpus, conns, th, stream_send_main, snd, sizeof(*snd),
				  stream_recv_main, rcv, sizeof(*rcv), cfd, sfd);
	if (started < conns)
		rc = fail(err, errlen, "cannot start the loopback threads");
	uint64_t bytes = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(th[2 * i], NULL);
		pthread_join(th[2 * i + 1], NULL);
		int e = snd[i].err ? snd[i].err : rcv[i].err;
		if (e && !rc)
			rc = fail(err, errlen, "loopback stream: %s", strerror(e));
		bytes += rcv[i].bytes;
	}
	*bytes_per_s = (double)bytes / seconds;
out:
	for (int i = 0; i < conns; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	free(snd);
	free(rcv);
	free(th);
	return rc;
}
