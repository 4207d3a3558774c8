/*
 * Test-double transport for the controller core. See core_harness.h.
 *
 * Everything that touches a queue or a request runs on the queue's worker,
 * as in the real transports; the test thread only posts messages and waits
 * on one condition variable for their effects.
 */
#include "core_harness.h"

#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvme/types.h>

#include "req.h"
#include "tcp.h"
#include "transport.h"
#include "worker.h"

/* A command's scatter list: a tiny first piece (so that even small
 * structures straddle two), then odd-sized ones. */
#define TH_SG_FIRST 5u
#define TH_SG_PIECE 4000u

#define container_of_th(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cond = PTHREAD_COND_INITIALIZER;

struct th_queue {
	struct worker *w;
	struct nvme_sq *sq;
	struct nvme_port port;
	char local_addr[64];
	bool closing;           /* worker only */
	bool disconnect_asked;  /* th_lock */
	bool freed;             /* th_lock */
	struct worker_msg msg;
};

struct th_cmd {
	struct nvme_req req;
	struct worker_msg msg;
	struct th_queue *q;
	void *user;
	uint32_t len;
	uint8_t *buf;
	struct iovec *iov;      /* buf cut into TH_SG_PIECE pieces */
	bool done;              /* th_lock */
};

static void fatal(const char *what, uint16_t st)
{
	fprintf(stderr, "core_harness: %s failed: status %#x\n", what, st);
	abort();
}

static void th_complete(struct nvme_req *req);

/* The harness describes itself as the TCP transport does (Identify fields,
 * discovery entries) but completes and disconnects its own way. */
static struct nvme_transport_ops th_ops;

/* Commands go with PRPs, not SGLs (th_use_prp). */
static bool th_prp;
/* Reads may be lent (th_borrow_reads); how many were (th_lock). */
static bool th_borrow;
static unsigned th_borrowed;

/* Ports the test registered (th_port_add), by traddr and trsvcid. */
#define TH_MAX_PORTS 8
static struct nvme_port th_ports[TH_MAX_PORTS];
static int th_nr_ports;
static void th_disconnect(void *conn);
static void th_drained(void *conn);

void th_start(void)
{
	th_ops = tcp_transport;
	th_ops.name = "harness";
	th_ops.queue_response = th_complete;
	th_ops.disconnect = th_disconnect;
	th_ops.drained = th_drained;
	if (workers_start(1, 2) != 0)
		fatal("workers_start", 0);
}

void th_stop(void)
{
	workers_stop();
	for (int i = 0; i < th_nr_ports; i++)
		nvme_port_unregister(&th_ports[i]);
	th_nr_ports = 0;
}

static uint8_t th_adrfam(const char *addr)
{
	return strchr(addr, ':') ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
}

void th_use_prp(bool on)
{
	th_prp = on;
	th_ops.data_ptrs = on ? NVME_XPORT_SGL | NVME_XPORT_PRP : NVME_XPORT_SGL;
}

void th_borrow_reads(bool on)
{
	th_borrow = on;
}

unsigned th_reads_borrowed(void)
{
	pthread_mutex_lock(&th_lock);
	unsigned n = th_borrowed;
	pthread_mutex_unlock(&th_lock);
	return n;
}

uint16_t th_port_add(const char *traddr, const char *trsvcid)
{
	struct nvme_port *p = &th_ports[th_nr_ports];

	if (th_nr_ports == TH_MAX_PORTS)
		fatal("th_port_add: too many ports", 0);
	memset(p, 0, sizeof(*p));
	p->ops = &th_ops;
	p->adrfam = th_adrfam(traddr);
	snprintf(p->traddr, sizeof(p->traddr), "%s", traddr);
	snprintf(p->trsvcid, sizeof(p->trsvcid), "%s", trsvcid);
	nvme_port_register(p);
	th_nr_ports++;
	return p->portid;
}

/* ---- queues ---- */

/* The core said the closed queue drained: free it from an event of our own
 * (transport.h), here a message to the worker. */
static void q_free_msg(struct worker_msg *m)
{
	struct th_queue *q = container_of_th(m, struct th_queue, msg);

	nvme_sq_free(q->sq);
	q->sq = NULL;
	pthread_mutex_lock(&th_lock);
	q->freed = true;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
}

static void q_close(struct th_queue *q)
{
	if (q->closing)
		return;
	q->closing = true;
	nvme_sq_close(q->sq);
}

static void th_drained(void *conn)
{
	struct th_queue *q = conn;

	q->msg.fn = q_free_msg;
	worker_post(q->w, &q->msg);
}

static void th_disconnect(void *conn)
{
	struct th_queue *q = conn;

	pthread_mutex_lock(&th_lock);
	q->disconnect_asked = true;
	pthread_mutex_unlock(&th_lock);
	q_close(q);
}


/* Run fn(q) on q's worker and wait for it. */
struct th_call {
	struct worker_msg msg;
	void (*fn)(struct th_queue *q);
	struct th_queue *q;
	bool done;
};

static void call_msg(struct worker_msg *m)
{
	struct th_call *c = container_of_th(m, struct th_call, msg);

	c->fn(c->q);
	pthread_mutex_lock(&th_lock);
	c->done = true;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
}

static void call_on_worker(struct th_queue *q, void (*fn)(struct th_queue *q))
{
	struct th_call c = { .fn = fn, .q = q };

	c.msg.fn = call_msg;
	worker_post(q->w, &c.msg);
	pthread_mutex_lock(&th_lock);
	while (!c.done)
		pthread_cond_wait(&th_cond, &th_lock);
	pthread_mutex_unlock(&th_lock);
}

static void q_alloc(struct th_queue *q)
{
	q->sq = nvme_sq_alloc(q->w, &q->port, q->local_addr, q);
}

struct th_queue *th_queue_open(const char *traddr, const char *trsvcid, const char *local_addr)
{
	struct th_queue *q = calloc(1, sizeof(*q));

	if (!q)
		abort();
	q->w = worker_get(0);
	/* A registered port if the test added this one, else a port of its
	 * own (ID 1) that the discovery log does not list otherwise. */
	for (int i = 0; i < th_nr_ports; i++)
		if (!strcmp(th_ports[i].traddr, traddr) && !strcmp(th_ports[i].trsvcid, trsvcid))
			q->port = th_ports[i];
	if (!q->port.ops) {
		q->port.ops = &th_ops;
		q->port.portid = 1;
		q->port.adrfam = th_adrfam(local_addr);
		snprintf(q->port.traddr, sizeof(q->port.traddr), "%s", traddr);
		snprintf(q->port.trsvcid, sizeof(q->port.trsvcid), "%s", trsvcid);
	}
	snprintf(q->local_addr, sizeof(q->local_addr), "%s", local_addr);
	call_on_worker(q, q_alloc);
	if (!q->sq)
		fatal("nvme_sq_alloc", 0);
	return q;
}

bool th_queue_disconnected(struct th_queue *q)
{
	bool r;

	pthread_mutex_lock(&th_lock);
	r = q->disconnect_asked;
	pthread_mutex_unlock(&th_lock);
	return r;
}

static bool wait_flag(bool *flag, int timeout_ms)
{
	struct timespec dl;
	bool r;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&th_lock);
	while (!*flag && pthread_cond_timedwait(&th_cond, &th_lock, &dl) == 0)
		;
	r = *flag;
	pthread_mutex_unlock(&th_lock);
	return r;
}

bool th_queue_wait_freed(struct th_queue *q, int timeout_ms)
{
	return wait_flag(&q->freed, timeout_ms);
}

void th_queue_close(struct th_queue *q)
{
	call_on_worker(q, q_close);
	if (!th_queue_wait_freed(q, TH_WAIT_MS))
		fatal("closing a queue (a command never completed)", 0);
	free(q);
}

/* ---- commands ---- */

static void th_complete(struct nvme_req *req)
{
	struct th_cmd *c = container_of_th(req, struct th_cmd, req);

	/* Lent data goes out here, as a transport's send would copy it. */
	if (req->borrowed)
		memcpy(c->buf, req->borrowed, c->len);
	pthread_mutex_lock(&th_lock);
	th_borrowed += req->borrowed != NULL;
	c->done = true;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
}

static void submit_msg(struct worker_msg *m)
{
	struct th_cmd *c = container_of_th(m, struct th_cmd, msg);
	struct th_queue *q = c->q;

	if (q->closing || !q->sq) {
		c->req.cqe.status = htole16((uint16_t)(NVME_STATUS(NVME_SCT_PATH, NVME_SC_HOST_PATH_ERROR) << 1));
		th_complete(&c->req);
		return;
	}
	if (!nvme_req_init(&c->req, q->sq)) {
		th_complete(&c->req);
		return;
	}
	/* With PRPs the length is the command's own: it must be what the
	 * test meant to move. */
	if (c->req.transfer_len != c->len)
		fatal(c->req.prp ? "transfer length (command's data length)"
				 : "transfer length (harness SGL)", 0);
	/* Junk where the controller must write: a handler that leaves a
	 * field unset shows up. */
	if (c->req.dir == NVME_DIR_TO_HOST)
		memset(c->buf, 0xa5, c->len);
	/* The data as a scatter list of odd-sized pieces, as guest memory
	 * reached through PRPs would be: every handler must cope. */
	c->iov = calloc(c->len / TH_SG_PIECE + 2, sizeof(*c->iov));
	if (!c->iov)
		abort();
	for (uint32_t off = 0, n; off < c->len; off += n) {
		n = off ? TH_SG_PIECE : TH_SG_FIRST;
		if (n > c->len - off)
			n = c->len - off;
		c->iov[c->req.iovcnt].iov_base = c->buf + off;
		c->iov[c->req.iovcnt++].iov_len = n;
	}
	c->req.iov = c->iov;
	c->req.may_borrow = th_borrow;
	nvme_req_execute(&c->req);
}

static bool host_to_ctrl(const struct nvme_sqe *sqe)
{
	uint8_t op = sqe->opcode == nvme_admin_fabrics ? nvme_sqe_fctype(sqe) : sqe->opcode;

	return (op & 3) == NVME_DATA_TFR_HOST_TO_CTRL;
}

struct th_cmd *th_submit(struct th_queue *q, const struct nvme_sqe *sqe, void *data, uint32_t len,
			 bool raw)
{
	struct th_cmd *c = calloc(1, sizeof(*c));

	if (!c || !(c->buf = calloc(1, len ? len : 1)))
		abort();
	c->q = q;
	c->user = data;
	c->len = len;
	c->req.cmd = *sqe;
	if (!raw && th_prp) {
		c->req.cmd.flags = 0x00; /* PSDT 00b: PRP (the harness moves the data) */
		memset(&c->req.cmd.dptr, 0, sizeof(c->req.cmd.dptr));
	} else if (!raw) {
		c->req.cmd.flags = 0x40; /* PSDT 01b: SGL */
		memset(&c->req.cmd.dptr, 0, sizeof(c->req.cmd.dptr));
		c->req.cmd.dptr.sgl.length = htole32(len);
		c->req.cmd.dptr.sgl.type = len && host_to_ctrl(sqe) && len <= 8192
						   ? NVME_SGL_TYPE_DATA_BLOCK_OFFSET
						   : NVME_SGL_TYPE_TRANSPORT_BLOCK;
	}
	if (len && data)
		memcpy(c->buf, data, len);
	c->msg.fn = submit_msg;
	worker_post(q->w, &c->msg);
	return c;
}

bool th_wait(struct th_cmd *c, int timeout_ms)
{
	return wait_flag(&c->done, timeout_ms);
}

uint16_t th_finish(struct th_cmd *c, uint64_t *result, struct nvme_cqe *cqe)
{
	uint16_t st;

	if (!th_wait(c, 0))
		return TH_TIMEOUT; /* still owned by the core: leak it */
	st = le16toh(c->req.cqe.status) >> 1;
	if (result)
		*result = le64toh(c->req.cqe.result);
	if (cqe)
		*cqe = c->req.cqe;
	if (c->user && c->len && c->req.dir == NVME_DIR_TO_HOST)
		memcpy(c->user, c->buf, c->len);
	free(c->iov);
	free(c->buf);
	free(c);
	return st;
}

uint16_t th_exec(struct th_queue *q, const struct nvme_sqe *sqe, void *data, uint32_t len,
		 uint64_t *result)
{
	struct th_cmd *c = th_submit(q, sqe, data, len, false);

	th_wait(c, TH_WAIT_MS);
	return th_finish(c, result, NULL);
}

/* ---- building blocks ---- */

static uint16_t next_cid = 1;

struct nvme_sqe th_sqe(uint8_t opcode, uint32_t nsid)
{
	struct nvme_sqe s;

	memset(&s, 0, sizeof(s));
	s.opcode = opcode;
	s.cid = htole16(__atomic_fetch_add(&next_cid, 1, __ATOMIC_RELAXED));
	s.nsid = htole32(nsid);
	return s;
}

static const uint8_t th_hostid[16] = { 0x0f, 0x01, 0xfb, 0x42, 0x9f, 0x7f, 0x48, 0x56,
				       0xb0, 0xb0, 0x51, 0xe6, 0x0b, 0x8d, 0xe3, 0x49 };

uint16_t th_connect_ex(struct th_queue *q, const char *subnqn, const char *hostnqn,
		       const uint8_t hostid[16], uint16_t qid, uint16_t sqsize, uint16_t cntlid,
		       uint32_t kato, uint64_t *result)
{
	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);
	struct nvmf_connect_data d;

	((uint8_t *)&s)[4] = nvme_fabrics_type_connect;
	s.cdw10 = htole32((uint32_t)qid << 16);
	s.cdw11 = htole32(sqsize);
	s.cdw12 = htole32(kato);
	memset(&d, 0, sizeof(d));
	memcpy(d.hostid, hostid ? hostid : th_hostid, 16);
	d.cntlid = htole16(cntlid);
	snprintf(d.subsysnqn, sizeof(d.subsysnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", hostnqn);
	return th_exec(q, &s, &d, sizeof(d), result);
}

uint16_t th_connect(struct th_queue *q, const char *subnqn, uint16_t qid, uint16_t cntlid,
		    uint32_t kato, uint64_t *result)
{
	return th_connect_ex(q, subnqn, TH_HOSTNQN, NULL, qid, qid ? 127 : 31, cntlid, kato,
			     result);
}

uint16_t th_prop_get(struct th_queue *q, uint32_t off, bool eight, uint64_t *val)
{
	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);

	((uint8_t *)&s)[4] = nvme_fabrics_type_property_get;
	s.cdw10 = htole32(eight ? 1 : 0);
	s.cdw11 = htole32(off);
	return th_exec(q, &s, NULL, 0, val);
}

uint16_t th_prop_set(struct th_queue *q, uint32_t off, uint32_t val)
{
	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);

	((uint8_t *)&s)[4] = nvme_fabrics_type_property_set;
	s.cdw11 = htole32(off);
	s.cdw12 = htole32(val);
	return th_exec(q, &s, NULL, 0, NULL);
}

uint32_t th_cc_enable(void)
{
	return 1u | NVME_CC_CSS_CSI << NVME_CC_CSS_SHIFT | 6u << NVME_CC_IOSQES_SHIFT |
	       4u << NVME_CC_IOCQES_SHIFT;
}

struct th_queue *th_admin(const char *subnqn, uint32_t kato, uint16_t *cntlid)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint64_t r = 0;
	uint16_t st = th_connect(q, subnqn, 0, 0xffff, kato, &r);

	if (st)
		fatal("admin connect", st);
	if (cntlid)
		*cntlid = (uint16_t)r;
	st = th_prop_set(q, NVME_REG_CC, th_cc_enable());
	if (st)
		fatal("enable", st);
	return q;
}

struct th_queue *th_io(const char *subnqn, uint16_t cntlid, uint16_t qid)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint16_t st = th_connect(q, subnqn, qid, cntlid, 0, NULL);

	if (st)
		fatal("I/O connect", st);
	return q;
}

uint16_t th_identify(struct th_queue *q, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf)
{
	struct nvme_sqe s = th_sqe(nvme_admin_identify, nsid);

	s.cdw10 = htole32(cns);
	s.cdw11 = htole32((uint32_t)csi << 24);
	return th_exec(q, &s, buf, NVME_IDENTIFY_DATA_SIZE, NULL);
}

uint16_t th_get_log(struct th_queue *q, uint8_t lid, uint32_t nsid, uint8_t csi, uint64_t lpo,
		    bool rae, void *buf, uint32_t len)
{
	struct nvme_sqe s = th_sqe(nvme_admin_get_log_page, nsid);
	uint32_t numd = len / 4 - 1;

	s.cdw10 = htole32(lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16);
	s.cdw11 = htole32(numd >> 16);
	s.cdw12 = htole32((uint32_t)lpo);
	s.cdw13 = htole32((uint32_t)(lpo >> 32));
	s.cdw14 = htole32((uint32_t)csi << 24);
	return th_exec(q, &s, buf, len, NULL);
}

uint16_t th_features(struct th_queue *q, bool set, uint8_t fid, uint32_t cdw11, void *buf,
		     uint32_t len, uint64_t *result)
{
	struct nvme_sqe s = th_sqe(set ? nvme_admin_set_features : nvme_admin_get_features, 0);

	s.cdw10 = htole32(fid);
	s.cdw11 = htole32(cdw11);
	return th_exec(q, &s, buf, len, result);
}
