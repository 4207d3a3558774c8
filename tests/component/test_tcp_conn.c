/*
 * The NVMe/TCP connection state machine, end to end over loopback TCP:
 * workers + I/O pool + listener + connections, with a test double of the
 * controller core (tcp_core_double.h) and the host-side client library.
 *
 * Covers framing with every digest combination, in-capsule data, R2T +
 * H2CData (split at MAXH2CDATA), C2HData with and without SUCCESS,
 * pipelining, many connections, failed commands that still carry data,
 * data digest errors, malformed PDUs that end only their own connection
 * (with the right C2HTermReq), closing with requests still executing, a
 * disconnect requested by the core, and a clean stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "nvme_tcp.h"
#include "../lib/nvmf_client.h"
#include "tcp.h"
#include "../lib/tcp_core_double.h"
#include "tcp_pdu.h"
#include "../../server/tcp/tcp_sock.h"
#include "worker.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:test-host"
#define SUBNQN "nqn.2024-01.io.znstgt:test"

static struct target_config cfg;
static char port[NVMF_TRSVCID_SIZE];
static struct nvmf_client healthy; /* stays connected through every test */

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 5000 && atomic_load(v) != want; i++)
		usleep(1000);
	assert_int_equal(atomic_load(v), want);
}

static void up(struct nvmf_client *c, bool hd, bool dd, uint16_t qid, uint16_t sqsize,
	       uint8_t cattr)
{
	int rc = nvmf_tcp_connect(c, "127.0.0.1", port, hd, dd);
	if (rc)
		fail_msg("connect: %s", c->err);
	rc = nvmf_connect(c, qid, sqsize, 0, HOSTNQN, SUBNQN, 1, cattr, NULL);
	if (rc)
		fail_msg("fabrics connect: %d %s", rc, c->err);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 12));
}

/* Write len bytes at slba, read them back, compare. */
static void write_read(struct nvmf_client *c, uint64_t slba, uint32_t len, unsigned seed)
{
	uint8_t *out = malloc(len), *in = malloc(len);
	uint32_t nlb = len / DOUBLE_LBA;

	fill(out, len, seed);
	memset(in, 0, len);
	int st = nvmf_write(c, 1, slba, nlb, out, len, NULL);
	if (st)
		fail_msg("write %u bytes: %d %s", len, st, c->err);
	st = nvmf_read(c, 1, slba, nlb, in, len, NULL);
	if (st)
		fail_msg("read %u bytes: %d %s", len, st, c->err);
	assert_memory_equal(in, out, len);
	free(out);
	free(in);
}

static void assert_healthy(void)
{
	write_read(&healthy, 1000, 8192, 99);
}

static int group_setup(void **state)
{
	char err[256];

	cfg.nr_listeners = 1;
	snprintf(cfg.listeners[0].addr, sizeof(cfg.listeners[0].addr), "127.0.0.1");
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "0");
	assert_int_equal(workers_start(2, 2), 0);
	if (tcp_listeners_start(&cfg, err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(port, sizeof(port), "%s", tcp_listener_port(0)->trsvcid);
	assert_string_not_equal(port, "0");
	up(&healthy, false, false, 1, 32, 0);
	return 0;
}

static int group_teardown(void **state)
{
	/* healthy is still connected: stopping must close it and free its
	 * queue, like every other one. */
	tcp_listeners_stop();
	workers_stop();
	assert_int_equal(atomic_load(&double_sq_allocs), atomic_load(&double_sq_frees));
	nvmf_close(&healthy);
	return 0;
}

/* ---- raw PDU helpers ---- */

static void recv_exact(struct nvmf_client *c, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = nvmf_recv_raw(c, (uint8_t *)buf + got, len - got);
		if (r <= 0)
			fail_msg("recv: %s", r ? c->err : "EOF");
		got += (size_t)r;
	}
}

/* A CapsuleCmd with optional in-capsule data, digests as negotiated. */
static size_t capsule(uint8_t *buf, const struct nvmf_client *c, const struct nvme_sqe *sqe,
		      const void *data, uint32_t dlen)
{
	struct nvme_tcp_cmd *p = (struct nvme_tcp_cmd *)buf;
	uint32_t hd = c->hdgst ? 4 : 0, dd = c->ddgst && dlen ? 4 : 0;
	size_t off = sizeof(*p);

	memset(p, 0, sizeof(*p));
	p->hdr.type = NVME_TCP_CMD;
	p->hdr.flags = (c->hdgst ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	p->hdr.hlen = sizeof(*p);
	p->hdr.pdo = dlen ? (uint8_t)(sizeof(*p) + hd) : 0;
	p->hdr.plen = htole32((uint32_t)sizeof(*p) + hd + dlen + dd);
	p->sqe = *sqe;
	if (hd) {
		uint32_t d = htole32(crc32c(p, sizeof(*p)));
		memcpy(buf + off, &d, 4);
		off += 4;
	}
	if (dlen) {
		memcpy(buf + off, data, dlen);
		off += dlen;
		if (dd) {
			uint32_t d = htole32(crc32c(data, dlen));
			memcpy(buf + off, &d, 4);
			off += 4;
		}
	}
	return off;
}

static void rw_sqe(struct nvme_sqe *sqe, uint8_t opc, uint16_t cid, uint64_t slba,
		   uint32_t nlb, uint8_t sgl_type)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opc;
	sqe->flags = 0x40;
	sqe->cid = htole16(cid);
	sqe->nsid = htole32(1);
	sqe->cdw10 = htole32((uint32_t)slba);
	sqe->cdw12 = htole32(nlb - 1);
	sqe->dptr.sgl.length = htole32(nlb * DOUBLE_LBA);
	sqe->dptr.sgl.type = sgl_type;
}

/* Expect the connection to end with a C2HTermReq carrying fes/fei. */
static void expect_term(struct nvmf_client *c, uint16_t fes, uint32_t fei)
{
	if (nvmf_expect_close(c))
		fail_msg("connection not closed: %s", c->err);
	assert_int_equal(c->term_fes, fes);
	assert_int_equal(c->term_fei, fei);
	nvmf_close(c);
	assert_healthy();
}

static void read_rsp(struct nvmf_client *c, struct nvme_tcp_rsp *rsp)
{
	recv_exact(c, rsp, sizeof(*rsp));
	assert_int_equal(rsp->hdr.type, NVME_TCP_RSP);
	if (c->hdgst) {
		uint32_t d;
		recv_exact(c, &d, 4);
		assert_int_equal(le32toh(d), crc32c(rsp, sizeof(*rsp)));
	}
}

/* ---- tests ---- */

static void test_digests_and_sizes(void **state)
{
	for (int combo = 0; combo < 4; combo++) {
		struct nvmf_client c;
		bool hd = combo & 1, dd = combo & 2;

		up(&c, hd, dd, 1, 64, 0);
		assert_int_equal(c.maxh2cdata, TCP_MAXH2CDATA);
		uint64_t base = (uint64_t)combo * 200;
		write_read(&c, base, 4096, 1);              /* in-capsule */
		c.io_inline = TCP_IO_INLINE;
		write_read(&c, base + 1, TCP_IO_INLINE, 2); /* largest in-capsule */
		c.io_inline = 0;
		write_read(&c, base + 8, 4096, 3);           /* R2T, one H2CData */
		write_read(&c, base + 16, 75 * 4096, 4);     /* R2T, three H2CData */
		write_read(&c, base + 100, TCP_MDTS_BYTES / 16, 5);
		nvmf_close(&c);
	}
}

static void test_mdts_transfer(void **state)
{
	struct nvmf_client c;

	up(&c, true, true, 1, 32, 0);
	write_read(&c, 0, TCP_MDTS_BYTES, 7);
	nvmf_close(&c);
}

static void test_admin_queue_inline(void **state)
{
	struct nvmf_client c;

	/* On the admin queue up to 8 KiB goes in-capsule whatever IOCCSZ
	 * says; more needs R2T. */
	up(&c, false, false, 0, 32, 0);
	write_read(&c, 300, 8192, 11);
	write_read(&c, 310, 12288, 12);
	nvmf_close(&c);
}

static void test_pipelined_async(void **state)
{
	struct nvmf_client c;
	enum { N = 100 };
	static uint8_t out[N][4096], in[N][4096];
	int cids[N];

	double_async = true;
	up(&c, true, false, 2, 128, 0);
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe;
		fill(out[i], 4096, (unsigned)i + 20);
		rw_sqe(&sqe, nvme_cmd_write, 0, 400 + (uint64_t)i, 1, 0);
		/* Alternate in-capsule and R2T. */
		c.io_inline = i % 2 ? 0 : 8192;
		cids[i] = nvmf_submit(&c, &sqe, out[i], 4096, NULL, 0);
		assert_true(cids[i] >= 0);
	}
	for (int i = 0; i < N; i++) {
		uint16_t cid;
		struct nvme_cqe cqe;
		assert_int_equal(nvmf_wait_any(&c, &cid, &cqe), 0);
		assert_int_equal(le16toh(cqe.cid), cid);
	}
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe;
		rw_sqe(&sqe, nvme_cmd_read, 0, 400 + (uint64_t)i, 1, 0);
		cids[i] = nvmf_submit(&c, &sqe, NULL, 0, in[i], 4096);
		assert_true(cids[i] >= 0);
	}
	for (int i = N - 1; i >= 0; i--)
		assert_int_equal(nvmf_wait(&c, (uint16_t)cids[i], NULL), 0);
	for (int i = 0; i < N; i++)
		assert_memory_equal(in[i], out[i], 4096);
	nvmf_close(&c);
	double_async = false;
}

static void test_many_connections(void **state)
{
	enum { N = 24 };
	static struct nvmf_client c[N];
	static uint8_t out[N][8192], in[N][8192];
	int cid[N];

	double_async = true;
	for (int i = 0; i < N; i++)
		up(&c[i], i % 2, i % 3 == 0, (uint16_t)(1 + i % 8), 16, 0);
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe;
		fill(out[i], sizeof(out[i]), (unsigned)i + 50);
		rw_sqe(&sqe, nvme_cmd_write, 0, 600 + 2 * (uint64_t)i, 2, 0);
		c[i].io_inline = 0;
		cid[i] = nvmf_submit(&c[i], &sqe, out[i], sizeof(out[i]), NULL, 0);
		assert_true(cid[i] >= 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(nvmf_wait(&c[i], (uint16_t)cid[i], NULL), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(nvmf_read(&c[i], 1, 600 + 2 * (uint64_t)i, 2, in[i], 8192, NULL), 0);
		assert_memory_equal(in[i], out[i], 8192);
		nvmf_close(&c[i]);
	}
	double_async = false;
}

/* SUCCESS only with SQ flow control disabled; then no CapsuleResp. */
static void test_success_flag(void **state)
{
	for (int disabled = 0; disabled < 2; disabled++) {
		struct nvmf_client c;
		struct nvme_sqe sqe;
		struct nvme_tcp_data d;
		struct nvme_tcp_rsp rsp;
		uint8_t buf[128], data[4096], want[4096];

		up(&c, false, false, 1, 32, disabled ? 0x04 : 0);
		write_read(&c, 700, 4096, 30);
		fill(want, sizeof(want), 30);
		rw_sqe(&sqe, nvme_cmd_read, 7, 700, 1, NVME_SGL_TYPE_TRANSPORT_BLOCK);
		assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, NULL, 0)), 0);
		recv_exact(&c, &d, sizeof(d));
		assert_int_equal(d.hdr.type, NVME_TCP_C2H_DATA);
		assert_int_equal(d.hdr.hlen, 24);
		assert_int_equal(d.hdr.pdo, 24);
		assert_int_equal(le32toh(d.hdr.plen), 24 + 4096);
		assert_int_equal(le16toh(d.cccid), 7);
		assert_int_equal(le32toh(d.datao), 0);
		assert_int_equal(le32toh(d.datal), 4096);
		assert_int_equal(d.hdr.flags, NVME_TCP_F_LAST_PDU | (disabled ? NVME_TCP_F_SUCCESS : 0));
		recv_exact(&c, data, sizeof(data));
		assert_memory_equal(data, want, sizeof(data));

		/* The next PDU: the read's CapsuleResp, or (SUCCESS) already
		 * the response to a flush sent now. */
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = nvme_cmd_flush;
		sqe.flags = 0x40;
		sqe.cid = htole16(8);
		sqe.dptr.sgl.type = NVME_SGL_TYPE_TRANSPORT_BLOCK;
		assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, NULL, 0)), 0);
		read_rsp(&c, &rsp);
		assert_int_equal(le16toh(rsp.cqe.cid), disabled ? 8 : 7);
		assert_int_equal(le16toh(rsp.cqe.status) >> 1, 0);
		nvmf_close(&c);
	}
}

/* A command refused by nvme_req_init() or by the SGL checks still has its
 * in-capsule data consumed; the connection goes on. */
static void test_failed_commands_consume_data(void **state)
{
	struct nvmf_client c;
	struct nvme_sqe sqe;
	struct nvme_tcp_rsp rsp;
	static uint8_t buf[20000], data[12288];

	up(&c, true, true, 0, 32, 0);
	fill(data, sizeof(data), 40);

	/* Unknown opcode with 4 KiB in-capsule. */
	rw_sqe(&sqe, 0x55, 1, 0, 1, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, data, 4096)), 0);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1,
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE) | NVME_STATUS_DNR);

	/* In-capsule data under a transport SGL descriptor. */
	rw_sqe(&sqe, nvme_cmd_write, 2, 0, 1, NVME_SGL_TYPE_TRANSPORT_BLOCK);
	assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, data, 4096)), 0);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.cid), 2);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1,
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SGL_INVALID_TYPE) | NVME_STATUS_DNR);

	/* 12 KiB in-capsule on the admin queue: over the 8 KiB limit. */
	rw_sqe(&sqe, nvme_cmd_write, 3, 0, 3, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, data, 12288)), 0);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1,
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SGL_INVALID_DATA) | NVME_STATUS_DNR);

	/* SGL length disagreeing with the data sent. */
	rw_sqe(&sqe, nvme_cmd_write, 4, 0, 2, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	assert_int_equal(nvmf_send_raw(&c, buf, capsule(buf, &c, &sqe, data, 4096)), 0);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1,
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SGL_INVALID_DATA) | NVME_STATUS_DNR);

	/* A bad data digest spoils that command only. */
	rw_sqe(&sqe, nvme_cmd_write, 5, 0, 1, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	size_t n = capsule(buf, &c, &sqe, data, 4096);
	buf[n - 1] ^= 0xff;
	assert_int_equal(nvmf_send_raw(&c, buf, n), 0);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1,
			 NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_TRAN_TPORT_ERROR));

	write_read(&c, 800, 4096, 41);
	nvmf_close(&c);
}

/* ---- malformed input: each ends its own connection only ---- */

static void raw_conn(struct nvmf_client *c, bool ic, bool hd, bool dd)
{
	if (nvmf_tcp_socket(c, "127.0.0.1", port))
		fail_msg("%s", c->err);
	if (ic && nvmf_icreq(c, hd, dd))
		fail_msg("%s", c->err);
}

static void bad_icreq(void (*edit)(struct nvme_tcp_icreq *), uint16_t fes, uint32_t fei)
{
	struct nvmf_client c;
	struct nvme_tcp_icreq req;

	raw_conn(&c, false, false, false);
	memset(&req, 0, sizeof(req));
	req.hdr.type = NVME_TCP_ICREQ;
	req.hdr.hlen = sizeof(req);
	req.hdr.plen = htole32(sizeof(req));
	edit(&req);
	assert_int_equal(nvmf_send_raw(&c, &req, sizeof(req)), 0);
	expect_term(&c, fes, fei);
}

static void ic_pfv(struct nvme_tcp_icreq *r) { r->pfv = htole16(1); }
static void ic_hpda(struct nvme_tcp_icreq *r) { r->hpda = 2; }
static void ic_hlen(struct nvme_tcp_icreq *r) { r->hdr.hlen = 127; }
static void ic_plen(struct nvme_tcp_icreq *r) { r->hdr.plen = htole32(132); }
static void ic_type(struct nvme_tcp_icreq *r) { r->hdr.type = NVME_TCP_CMD; }

static void test_bad_icreq(void **state)
{
	bad_icreq(ic_pfv, NVME_TCP_FES_UNSUPPORTED, 8);
	bad_icreq(ic_hpda, NVME_TCP_FES_UNSUPPORTED, 10);
	bad_icreq(ic_hlen, NVME_TCP_FES_INVALID_HEADER, 2);
	bad_icreq(ic_plen, NVME_TCP_FES_INVALID_HEADER, 4);
	bad_icreq(ic_type, NVME_TCP_FES_PDU_SEQUENCE, 0);
}

/* Send a capsule after ICReq (and Connect), edited by the caller. */
static void bad_capsule(bool hd, void (*edit)(uint8_t *buf, size_t *len), uint16_t fes,
			uint32_t fei)
{
	struct nvmf_client c;
	struct nvme_sqe sqe;
	uint8_t data[4096];
	static uint8_t buf[40000];

	up(&c, hd, false, 1, 32, 0);
	fill(data, sizeof(data), 60);
	rw_sqe(&sqe, nvme_cmd_write, 1, 0, 1, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	size_t n = capsule(buf, &c, &sqe, data, sizeof(data));
	edit(buf, &n);
	assert_int_equal(nvmf_send_raw(&c, buf, n), 0);
	expect_term(&c, fes, fei);
}

static void cap_type(uint8_t *b, size_t *n) { b[0] = 0x42; }
static void cap_c2h_type(uint8_t *b, size_t *n) { b[0] = NVME_TCP_C2H_DATA; }
static void cap_icreq_again(uint8_t *b, size_t *n) { b[0] = NVME_TCP_ICREQ; }
static void cap_hlen(uint8_t *b, size_t *n) { b[2] = 71; }
static void cap_pdo(uint8_t *b, size_t *n) { b[3] = 80; }
static void cap_flags(uint8_t *b, size_t *n) { b[1] |= 0x10; }
static void cap_ddgst_flag(uint8_t *b, size_t *n) { b[1] |= NVME_TCP_F_DDGST; }
static void cap_plen_short(uint8_t *b, size_t *n)
{
	uint32_t plen = htole32(40);
	memcpy(b + 4, &plen, 4);
	*n = 8;
}
static void cap_plen_huge(uint8_t *b, size_t *n)
{
	uint32_t plen = htole32(72 + TCP_IO_INLINE + 1);
	memcpy(b + 4, &plen, 4);
}
static void cap_hdgst_bad(uint8_t *b, size_t *n) { b[72] ^= 1; }
static void cap_hdgst_flag_missing(uint8_t *b, size_t *n) { b[1] &= (uint8_t)~NVME_TCP_F_HDGST; }

static void test_bad_capsules(void **state)
{
	bad_capsule(false, cap_type, NVME_TCP_FES_INVALID_HEADER, 0);
	bad_capsule(false, cap_c2h_type, NVME_TCP_FES_INVALID_HEADER, 0);
	bad_capsule(false, cap_icreq_again, NVME_TCP_FES_PDU_SEQUENCE, 0);
	bad_capsule(false, cap_hlen, NVME_TCP_FES_INVALID_HEADER, 2);
	bad_capsule(false, cap_pdo, NVME_TCP_FES_INVALID_HEADER, 3);
	bad_capsule(false, cap_flags, NVME_TCP_FES_INVALID_HEADER, 1);
	bad_capsule(false, cap_ddgst_flag, NVME_TCP_FES_INVALID_HEADER, 1);
	bad_capsule(false, cap_plen_short, NVME_TCP_FES_INVALID_HEADER, 4);
	bad_capsule(false, cap_plen_huge, NVME_TCP_FES_DATA_LIMIT, 4);
	bad_capsule(true, cap_hdgst_bad, NVME_TCP_FES_HDR_DIGEST, 0);
	bad_capsule(true, cap_hdgst_flag_missing, NVME_TCP_FES_INVALID_HEADER, 1);
}

/* Start a 64 KiB write by R2T and return the R2T received. */
static void start_r2t_write(struct nvmf_client *c, struct nvme_tcp_r2t *r2t)
{
	struct nvme_sqe sqe;
	uint8_t buf[128];

	up(c, false, false, 1, 32, 0);
	rw_sqe(&sqe, nvme_cmd_write, 9, 0, 16, NVME_SGL_TYPE_TRANSPORT_BLOCK);
	assert_int_equal(nvmf_send_raw(c, buf, capsule(buf, c, &sqe, NULL, 0)), 0);
	recv_exact(c, r2t, sizeof(*r2t));
	assert_int_equal(r2t->hdr.type, NVME_TCP_R2T);
	assert_int_equal(r2t->hdr.hlen, 24);
	assert_int_equal(le32toh(r2t->hdr.plen), 24);
	assert_int_equal(le16toh(r2t->cccid), 9);
	assert_int_equal(le32toh(r2t->r2to), 0);
	assert_int_equal(le32toh(r2t->r2tl), 65536);
}

static void h2c(struct nvmf_client *c, uint16_t cccid, uint16_t ttag, uint32_t datao,
		uint32_t datal, uint8_t flags)
{
	static uint8_t buf[24 + 65536];
	struct nvme_tcp_data *d = (struct nvme_tcp_data *)buf;

	memset(buf, 0, sizeof(buf));
	d->hdr.type = NVME_TCP_H2C_DATA;
	d->hdr.flags = flags;
	d->hdr.hlen = 24;
	d->hdr.pdo = 24;
	d->hdr.plen = htole32(24 + datal);
	d->cccid = htole16(cccid);
	d->ttag = htole16(ttag);
	d->datao = htole32(datao);
	d->datal = htole32(datal);
	assert_int_equal(nvmf_send_raw(c, buf, 24 + datal), 0);
}

static void test_bad_h2c(void **state)
{
	struct nvmf_client c;
	struct nvme_tcp_r2t r;
	struct nvme_tcp_rsp rsp;

	/* H2CData for a command that does not exist. */
	up(&c, false, false, 1, 32, 0);
	h2c(&c, 1, 5, 0, 4096, NVME_TCP_F_LAST_PDU);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, offsetof(struct nvme_tcp_data, ttag));

	start_r2t_write(&c, &r);
	h2c(&c, 9, le16toh(r.ttag), 4096, 4096, 0);
	expect_term(&c, NVME_TCP_FES_DATA_RANGE, offsetof(struct nvme_tcp_data, datao));

	start_r2t_write(&c, &r);
	h2c(&c, 10, le16toh(r.ttag), 0, 4096, 0);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, offsetof(struct nvme_tcp_data, cccid));

	start_r2t_write(&c, &r);
	h2c(&c, 9, le16toh(r.ttag), 0, 4096, NVME_TCP_F_LAST_PDU);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, 1);

	start_r2t_write(&c, &r);
	h2c(&c, 9, le16toh(r.ttag), 0, 32768, 0);
	h2c(&c, 9, le16toh(r.ttag), 32768, 32768, 0); /* LAST missing */
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, 1);

	/* And done right: two PDUs, the second LAST. */
	start_r2t_write(&c, &r);
	h2c(&c, 9, le16toh(r.ttag), 0, 32768, 0);
	h2c(&c, 9, le16toh(r.ttag), 32768, 32768, NVME_TCP_F_LAST_PDU);
	read_rsp(&c, &rsp);
	assert_int_equal(le16toh(rsp.cqe.cid), 9);
	assert_int_equal(le16toh(rsp.cqe.status) >> 1, 0);
	/* The command is finished: its transfer tag is dead now. */
	h2c(&c, 9, le16toh(r.ttag), 0, 4096, NVME_TCP_F_LAST_PDU);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, offsetof(struct nvme_tcp_data, ttag));
}

/* Half a PDU, then the host goes away: nothing to answer, nothing leaks. */
static void test_truncated(void **state)
{
	struct nvmf_client c;
	struct nvme_sqe sqe;
	uint8_t buf[8192];
	int frees = atomic_load(&double_sq_frees);

	up(&c, false, true, 1, 32, 0);
	memset(buf, 0x5a, sizeof(buf));
	rw_sqe(&sqe, nvme_cmd_write, 1, 0, 1, NVME_SGL_TYPE_DATA_BLOCK_OFFSET);
	size_t n = capsule(buf, &c, &sqe, buf + 4096, 2048);
	assert_int_equal(nvmf_send_raw(&c, buf, n / 2), 0);
	nvmf_close(&c);
	wait_for(&double_sq_frees, frees + 1);

	raw_conn(&c, false, false, false);
	assert_int_equal(nvmf_send_raw(&c, "\0\0\x80", 3), 0);
	nvmf_close(&c);
	assert_healthy();
}

/* More commands than twice the queue size holds. */
static void test_too_many_commands(void **state)
{
	struct nvmf_client c;
	static uint8_t in[40][4096];

	double_async = true;
	double_gate_close();
	up(&c, false, false, 1, 4, 0);
	int frees = atomic_load(&double_sq_frees);
	int executed = atomic_load(&double_executed);
	/* Contexts come in chunks of 16, the first one before Connect. */
	for (int i = 0; i < 17; i++) {
		struct nvme_sqe sqe;
		rw_sqe(&sqe, nvme_cmd_read, 0, (uint64_t)i, 1, 0);
		assert_true(nvmf_submit(&c, &sqe, NULL, 0, in[i], 4096) >= 0);
	}
	if (nvmf_expect_close(&c))
		fail_msg("%s", c.err);
	assert_int_equal(c.term_fes, NVME_TCP_FES_PDU_SEQUENCE);
	nvmf_close(&c);
	/* 16 reads are still executing: the queue must stay allocated. */
	wait_for(&double_executed, executed + 16);
	usleep(50 * 1000);
	assert_int_equal(atomic_load(&double_sq_frees), frees);
	double_gate_open();
	wait_for(&double_sq_frees, frees + 1);
	double_async = false;
	assert_healthy();
}

static void test_core_disconnect(void **state)
{
	struct nvmf_client c;
	struct nvme_sqe sqe;
	int frees = atomic_load(&double_sq_frees);

	up(&c, false, false, 1, 32, 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_cmd_flush;
	sqe.cdw10 = htole32(DOUBLE_DISCONNECT);
	assert_true(nvmf_submit(&c, &sqe, NULL, 0, NULL, 0) >= 0);
	assert_int_equal(nvmf_expect_close(&c), 0);
	assert_int_equal(c.term_fes, 0);
	nvmf_close(&c);
	wait_for(&double_sq_frees, frees + 1);
	assert_healthy();
}

/*
 * The socket I/O seam: a channel whose handshake is an 8-byte greeting from
 * the host stands in for TLS. The connection must read no PDU before the
 * handshake is done, then run as usual through the channel's read and
 * write calls; a failed handshake closes it.
 */
#define GREETING "ZNSTGT-H"

struct greet {
	char buf[8];
	size_t have;
};

static atomic_int greet_handshakes_done;

static int greet_open(struct tcp_sock *s)
{
	s->priv = calloc(1, sizeof(struct greet));
	return s->priv ? 0 : -ENOMEM;
}

static int greet_handshake(struct tcp_sock *s)
{
	struct greet *g = s->priv;
	/* Exactly the greeting: what follows is the first PDU. */
	ssize_t r = read(s->fd, g->buf + g->have, sizeof(g->buf) - g->have);

	if (r == 0)
		return -ECONNRESET;
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	g->have += (size_t)r;
	if (g->have < sizeof(g->buf))
		return 0;
	if (memcmp(g->buf, GREETING, sizeof(g->buf)) != 0)
		return -EPROTO;
	atomic_fetch_add(&greet_handshakes_done, 1);
	return 1;
}

static ssize_t greet_readv(struct tcp_sock *s, const struct iovec *iov, int n)
{
	return tcp_sock_plain.readv(s, iov, n);
}

static ssize_t greet_writev(struct tcp_sock *s, const struct iovec *iov, int n)
{
	return tcp_sock_plain.writev(s, iov, n);
}

static void greet_release(struct tcp_sock *s)
{
	free(s->priv);
}

static const struct tcp_sock_ops greet_ops = {
	.name = "greeting",
	.open = greet_open,
	.handshake = greet_handshake,
	.readv = greet_readv,
	.writev = greet_writev,
	.release = greet_release,
};

static struct nvme_port greet_port = { .ops = &tcp_transport, .portid = 1 };
static atomic_int greet_gone;

struct greet_start {
	struct worker_msg msg;
	int fd;
};

static void greet_conn_gone(void *arg)
{
	atomic_fetch_add(&greet_gone, 1);
}

static void greet_start_msg(struct worker_msg *m)
{
	struct greet_start *st = (struct greet_start *)m;
	struct worker *w = worker_get(0);

	tcp_conn_start(worker_loop(w), w, st->fd, &greet_ops, &greet_port, "local",
		       greet_conn_gone, NULL);
}

/* A connection over the greeting channel; returns the host's socket. */
static int greet_conn(struct nvmf_client *c)
{
	static struct greet_start st;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	st.fd = sv[0];
	st.msg.fn = greet_start_msg;
	worker_post(worker_get(0), &st.msg);
	/* The host's end blocks, as the client library expects. */
	int fl = fcntl(sv[1], F_GETFL);
	assert_int_equal(fcntl(sv[1], F_SETFL, fl & ~O_NONBLOCK), 0);
	nvmf_client_init(c, sv[1]);
	return sv[1];
}

static void test_sock_handshake(void **state)
{
	struct nvmf_client c;
	int gone = atomic_load(&greet_gone), done = atomic_load(&greet_handshakes_done);

	/* The greeting in two pieces, then the usual life of a queue. */
	greet_conn(&c);
	assert_int_equal(nvmf_send_raw(&c, GREETING, 3), 0);
	assert_int_equal(nvmf_send_raw(&c, GREETING + 3, 5), 0);
	if (nvmf_icreq(&c, true, true))
		fail_msg("icreq: %s", c.err);
	assert_int_equal(atomic_load(&greet_handshakes_done), done + 1);
	if (nvmf_connect(&c, 7, 32, 0, HOSTNQN, SUBNQN, 1, 0, NULL))
		fail_msg("connect: %s", c.err);
	write_read(&c, 300, 65536, 11);
	nvmf_close(&c);
	wait_for(&greet_gone, gone + 1);

	/* An ICReq header where the greeting should be: the handshake fails
	 * and the connection closes without reading it as a PDU (no
	 * C2HTermReq: nothing was framed yet). */
	greet_conn(&c);
	uint8_t icreq[8] = { NVME_TCP_ICREQ, 0, 128, 0, 128 };
	assert_int_equal(nvmf_send_raw(&c, icreq, sizeof(icreq)), 0);
	assert_int_equal(nvmf_expect_close(&c), 0);
	nvmf_close(&c);
	wait_for(&greet_gone, gone + 2);
	assert_int_equal(atomic_load(&greet_handshakes_done), done + 1);
	assert_healthy();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digests_and_sizes),
		cmocka_unit_test(test_mdts_transfer),
		cmocka_unit_test(test_admin_queue_inline),
		cmocka_unit_test(test_pipelined_async),
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_success_flag),
		cmocka_unit_test(test_failed_commands_consume_data),
		cmocka_unit_test(test_bad_icreq),
		cmocka_unit_test(test_bad_capsules),
		cmocka_unit_test(test_bad_h2c),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_too_many_commands),
		cmocka_unit_test(test_core_disconnect),
		cmocka_unit_test(test_sock_handshake),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
