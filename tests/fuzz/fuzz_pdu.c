/*
 * libFuzzer target for the NVMe/TCP receive path (`make fuzz`).
 *
 * Each input is used twice:
 *   1. the pure checks of tcp_pdu.c on its first bytes, with every
 *      combination of negotiated digests;
 *   2. as the byte stream a host sends on one connection: a real tcp_conn
 *      on a socketpair, served by a loop in this thread, with the test
 *      double of the core (tests/lib/tcp_core_double.h) executing Connect,
 *      Read, Write and Flush.
 *
 * The first byte picks how the stream starts, so the fuzzer spends its time
 * past the handshake instead of rediscovering it:
 *   bit 0-1  0: raw bytes; 1: a valid ICReq first; 2-3: ICReq + Connect
 *   bit 2-3  digests asked for in that ICReq (header, data)
 *   bit 4    fix header/data digests of the PDUs that follow, so that
 *            mutations reach the code behind the digest checks
 *   bit 5    Connect with SQ flow control disabled (C2HData SUCCESS)
 *   bit 6    the rest is a program of operations (see build_ops): well
 *            formed capsules, H2CData, reads, with fuzzed fields, and
 *            pauses that let the connection answer (an R2T must be out
 *            before its H2CData is legal)
 * Whatever happens, the connection must end without a crash, a leak, a
 * hang or a sanitizer report once the host side closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/tcp_core_double.h"
#include "crc32c.h"
#include "log.h"
#include "nvme_tcp.h"
#include "tcp.h"
#include "tcp_pdu.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAM (256 * 1024)

static struct ev_loop *loop;
static struct nvme_port port = { .ops = &tcp_transport, .portid = 1 };
static uint8_t stream[MAX_STREAM + 2048];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR);
	loop = ev_loop_new(EVFLAG_AUTO);
	return 0;
}

/* ---- 1. the pure checks ---- */

static void fuzz_checks(const uint8_t *data, size_t size)
{
	uint8_t hdr[TCP_MAX_HDR + NVME_TCP_DIGEST_LEN] = { 0 };
	struct tcp_pdu_info info;
	struct tcp_pdu_err err;

	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	for (int m = 0; m < 8; m++) {
		struct tcp_rx_params p = { .ic_done = m & 1, .hdgst = m & 2, .ddgst = m & 4 };
		if (tcp_pdu_check_hdr((struct nvme_tcp_hdr *)hdr, &p, &info, &err))
			continue;
		/* A valid header never asks for more than we can hold. */
		if (info.hdr_len > sizeof(hdr) || info.data_len > TCP_IO_INLINE + TCP_MAXH2CDATA)
			abort();
		if (p.hdgst)
			tcp_pdu_check_hdgst(hdr, hdr[2], &err);
		if (hdr[0] == NVME_TCP_ICREQ)
			tcp_pdu_check_icreq((struct nvme_tcp_icreq *)hdr, &err);
		if (hdr[0] == NVME_TCP_H2C_DATA) {
			uint32_t total = 1u << (hdr[24 % sizeof(hdr)] % 21);
			uint32_t received = total > info.data_len ? total - info.data_len : 0;
			tcp_pdu_check_h2c((struct nvme_tcp_data *)hdr, info.data_len, received, total, &err);
		}
	}
	struct nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	memcpy(&sqe, data, size < sizeof(sqe) ? size : sizeof(sqe));
	uint32_t inl = size > 68 ? data[64] | (uint32_t)data[65] << 8 : 0;
	uint32_t xfer = size > 68 ? data[66] | (uint32_t)data[67] << 16 : 0;
	tcp_sgl_check(&sqe, inl, tcp_inline_limit(&sqe, size & 1), xfer);
}

/* ---- 2. the connection ---- */

static size_t put_icreq(uint8_t *p, uint8_t dgst)
{
	struct nvme_tcp_icreq r;

	memset(&r, 0, sizeof(r));
	r.hdr.type = NVME_TCP_ICREQ;
	r.hdr.hlen = sizeof(r);
	r.hdr.plen = htole32(sizeof(r));
	r.dgst = dgst;
	memcpy(p, &r, sizeof(r));
	return sizeof(r);
}

static size_t put_connect(uint8_t *p, bool hd, bool dd, uint8_t cattr)
{
	struct nvme_tcp_cmd c;
	struct nvmf_connect_data cd;
	uint32_t hdl = hd ? 4 : 0, ddl = dd ? 4 : 0;
	size_t off = 0;

	memset(&c, 0, sizeof(c));
	memset(&cd, 0, sizeof(cd));
	c.hdr.type = NVME_TCP_CMD;
	c.hdr.flags = (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0);
	c.hdr.hlen = sizeof(c);
	c.hdr.pdo = (uint8_t)(sizeof(c) + hdl);
	c.hdr.plen = htole32((uint32_t)(sizeof(c) + hdl + sizeof(cd) + ddl));
	c.sqe.opcode = nvme_admin_fabrics;
	c.sqe.flags = 0x40;
	((uint8_t *)&c.sqe)[4] = nvme_fabrics_type_connect;
	c.sqe.cdw10 = htole32(1u << 16);
	c.sqe.cdw11 = htole32(7u | (uint32_t)cattr << 16);
	c.sqe.dptr.sgl.type = NVME_SGL_TYPE_DATA_BLOCK_OFFSET;
	c.sqe.dptr.sgl.length = htole32(sizeof(cd));
	memcpy(p, &c, sizeof(c));
	off = sizeof(c);
	if (hd) {
		uint32_t d = htole32(crc32c(&c, sizeof(c)));
		memcpy(p + off, &d, 4);
		off += 4;
	}
	memcpy(p + off, &cd, sizeof(cd));
	off += sizeof(cd);
	if (dd) {
		uint32_t d = htole32(crc32c(&cd, sizeof(cd)));
		memcpy(p + off, &d, 4);
		off += 4;
	}
	return off;
}

/* Walk the PDUs by their plen and make their digests right. */
static void fix_digests(uint8_t *p, size_t len, bool hd, bool dd)
{
	size_t off = 0;

	while (off + sizeof(struct nvme_tcp_hdr) <= len) {
		uint8_t hlen = p[off + 2], pdo = p[off + 3];
		uint32_t plen;
		memcpy(&plen, p + off + 4, 4);
		plen = le32toh(plen);
		if (plen < sizeof(struct nvme_tcp_hdr) || plen > len - off)
			return;
		if (hd && hlen >= 8 && (uint32_t)hlen + 4 <= plen) {
			uint32_t d = htole32(crc32c(p + off, hlen));
			memcpy(p + off + hlen, &d, 4);
		}
		if (dd && pdo && (uint32_t)pdo + 4 < plen) {
			uint32_t d = htole32(crc32c(p + off + pdo, plen - pdo - 4));
			memcpy(p + off + plen - 4, &d, 4);
		}
		off += plen;
	}
}

/* ---- the operation program (mode bit 6) ---- */

struct prog {
	const uint8_t *in;
	size_t in_len, in_off;
	uint8_t *out;
	size_t len, cap;
	bool hd, dd;
	size_t pauses[64];   /* stream offsets after which the loop runs */
	int nr_pauses;
};

static uint8_t next(struct prog *p)
{
	return p->in_off < p->in_len ? p->in[p->in_off++] : 0;
}

static uint32_t next32(struct prog *p)
{
	uint32_t v = next(p);
	v |= (uint32_t)next(p) << 8;
	v |= (uint32_t)next(p) << 16;
	return v | (uint32_t)next(p) << 24;
}

/* Append one PDU: header (hlen bytes, digest added) + data (+ digest). */
static void emit(struct prog *p, const void *hdr, uint8_t hlen, const uint8_t *data, uint32_t dlen)
{
	size_t need = hlen + 4u + dlen + 4u;

	if (p->len + need > p->cap)
		return;
	memcpy(p->out + p->len, hdr, hlen);
	struct nvme_tcp_hdr *ch = (struct nvme_tcp_hdr *)(p->out + p->len);
	ch->flags |= (p->hd ? NVME_TCP_F_HDGST : 0) | (p->dd && dlen ? NVME_TCP_F_DDGST : 0);
	ch->pdo = dlen ? (uint8_t)(hlen + (p->hd ? 4 : 0)) : 0;
	ch->plen = htole32(hlen + (p->hd ? 4u : 0) + dlen + (p->dd && dlen ? 4u : 0));
	p->len += hlen;
	if (p->hd) {
		uint32_t d = htole32(crc32c(ch, hlen));
		memcpy(p->out + p->len, &d, 4);
		p->len += 4;
	}
	if (dlen) {
		memcpy(p->out + p->len, data, dlen);
		p->len += dlen;
		if (p->dd) {
			uint32_t d = htole32(crc32c(data, dlen));
			memcpy(p->out + p->len, &d, 4);
			p->len += 4;
		}
	}
}

static void pause_here(struct prog *p)
{
	if (p->nr_pauses < 64)
		p->pauses[p->nr_pauses++] = p->len;
}

static void op_capsule(struct prog *p, uint8_t opc, uint8_t sgl_type, uint32_t xfer,
		       uint32_t inl, const uint8_t *data)
{
	struct nvme_tcp_cmd c;

	memset(&c, 0, sizeof(c));
	c.hdr.type = NVME_TCP_CMD;
	c.hdr.hlen = sizeof(c);
	c.sqe.opcode = opc;
	c.sqe.flags = 0x40;
	c.sqe.cid = htole16(next(p));
	c.sqe.nsid = htole32(1);
	c.sqe.cdw10 = htole32(next(p) % (DOUBLE_NLBAS + 8));
	c.sqe.cdw12 = htole32(xfer / DOUBLE_LBA ? xfer / DOUBLE_LBA - 1 : next(p));
	c.sqe.dptr.sgl.type = sgl_type;
	c.sqe.dptr.sgl.length = htole32(xfer);
	emit(p, &c, sizeof(c), data, inl);
}

static void build_ops(struct prog *p)
{
	static uint8_t pattern[TCP_IO_INLINE + 4096];
	const uint8_t tr = NVME_SGL_TYPE_TRANSPORT_BLOCK, icd = NVME_SGL_TYPE_DATA_BLOCK_OFFSET;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 31);
	while (p->in_off < p->in_len && p->len + 64 < p->cap) {
		uint8_t op = next(p);
		uint32_t n = 1u + ((op >> 3) & 3);

		switch (op & 7) {
		case 0: { /* raw bytes */
			uint32_t k = next(p);
			while (k-- && p->len < p->cap)
				p->out[p->len++] = next(p);
			break;
		}
		case 1: /* write, in-capsule */
			op_capsule(p, nvme_cmd_write, icd, n * DOUBLE_LBA, n * DOUBLE_LBA, pattern);
			break;
		case 2: /* write by R2T: the H2CData come in later ops */
			op_capsule(p, nvme_cmd_write, tr, n * DOUBLE_LBA, 0, NULL);
			pause_here(p);
			break;
		case 3: /* read */
			op_capsule(p, nvme_cmd_read, tr, n * DOUBLE_LBA, 0, NULL);
			break;
		case 4: /* flush, or any SQE with fuzzed bytes */
			if (op & 0x80) {
				struct nvme_tcp_cmd c;
				memset(&c, 0, sizeof(c));
				c.hdr.type = NVME_TCP_CMD;
				c.hdr.hlen = sizeof(c);
				for (size_t i = 0; i < sizeof(c.sqe); i++)
					((uint8_t *)&c.sqe)[i] = next(p);
				uint32_t inl = (uint32_t)next(p) * 64u;
				emit(p, &c, sizeof(c), pattern, inl);
			} else {
				op_capsule(p, nvme_cmd_flush, tr, 0, 0, NULL);
			}
			break;
		case 5: { /* H2CData with fuzzed fields */
			struct nvme_tcp_data d;
			memset(&d, 0, sizeof(d));
			d.hdr.type = NVME_TCP_H2C_DATA;
			d.hdr.hlen = sizeof(d);
			d.hdr.flags = op & 0x80 ? NVME_TCP_F_LAST_PDU : 0;
			d.cccid = htole16(next(p));
			d.ttag = htole16(next(p) & 0x1f);
			d.datao = htole32((uint32_t)next(p) * 512u);
			uint32_t dl = 1u + (uint32_t)next(p) * 64u;
			d.datal = htole32(dl);
			emit(p, &d, sizeof(d), pattern, dl);
			break;
		}
		case 6: /* a pause: let the connection answer */
			pause_here(p);
			break;
		case 7: { /* any header with fuzzed fields and digests fixed */
			uint8_t hdr[TCP_MAX_HDR];
			uint8_t hlen = (uint8_t)(8 + next(p) % (TCP_MAX_HDR - 8));
			for (uint8_t i = 0; i < hlen; i++)
				hdr[i] = next(p);
			uint32_t dl = next32(p) % 4096;
			emit(p, hdr, hlen, pattern, dl);
			break;
		}
		}
	}
}

static void gone(void *arg)
{
	*(bool *)arg = true;
}

static void drain(int fd)
{
	char buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void fuzz_conn(const uint8_t *data, size_t size)
{
	uint8_t mode = size ? data[0] : 0;
	bool hd = mode & 0x04, dd = mode & 0x08;
	size_t len = 0;
	int sv[2];
	bool done = false;

	if (size)
		data++, size--;
	if (size > MAX_STREAM)
		size = MAX_STREAM;
	if (mode & 0x03)
		len += put_icreq(stream, (hd ? NVME_TCP_DGST_HDR : 0) | (dd ? NVME_TCP_DGST_DATA : 0));
	if ((mode & 0x03) >= 2)
		len += put_connect(stream + len, hd, dd, mode & 0x20 ? 0x04 : 0);
	struct prog prog = { .in = data, .in_len = size, .out = stream, .len = len,
			     .cap = sizeof(stream), .hd = hd, .dd = dd };
	if (mode & 0x40) {
		build_ops(&prog);
		len = prog.len;
	} else {
		memcpy(stream + len, data, size);
		if (mode & 0x10)
			fix_digests(stream + len, size, hd, dd);
		len += size;
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	if (!tcp_conn_start(loop, NULL, sv[0], NULL, &port, "fuzz", gone, &done))
		abort();

	/* Feed the stream, serving the connection between writes and
	 * letting it answer at each pause. */
	size_t sent = 0;
	int idle = 0, pause = 0;
	while (sent < len && !done && idle < 1000) {
		size_t end = len;
		while (pause < prog.nr_pauses && prog.pauses[pause] <= sent) {
			for (int i = 0; i < 4; i++) {
				ev_run(loop, EVRUN_NOWAIT);
				drain(sv[1]);
			}
			pause++;
		}
		if (pause < prog.nr_pauses)
			end = prog.pauses[pause];
		ssize_t w = send(sv[1], stream + sent, end - sent, MSG_NOSIGNAL);
		if (w > 0) {
			sent += (size_t)w;
			idle = 0;
		} else if (w < 0 && errno != EAGAIN) {
			break; /* the connection closed its end */
		} else {
			idle++;
		}
		ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	shutdown(sv[1], SHUT_WR);
	/* End of input: the connection must close itself (done is set by the
	 * connection's callback). */
	int spins = 0;
	while (!done) {
		if (spins++ > 100000)
			abort(); /* hang */
		ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	close(sv[1]);
	/* A fatal error leaves a lingering socket; it sees our EOF now. */
	for (int i = 0; ev_run(loop, EVRUN_NOWAIT); i++)
		if (i > 100000)
			abort();
	if (atomic_load(&double_sq_allocs) != atomic_load(&double_sq_frees))
		abort(); /* queue leaked */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_checks(data, size);
	fuzz_conn(data, size);
	return 0;
}
