/*
 * NVMe/TCP PDU checks and builders (server/tcp/tcp_pdu.c): every validation
 * rule with a passing and a failing case, digests, and the exact bytes of
 * every header we build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "crc32c.h"
#include "tcp_pdu.h"
#include "transport.h"

static const struct tcp_rx_params before_ic = { .ic_done = false };
static const struct tcp_rx_params plain = { .ic_done = true };
static const struct tcp_rx_params hd_only = { .ic_done = true, .hdgst = true };
static const struct tcp_rx_params both = { .ic_done = true, .hdgst = true, .ddgst = true };

static struct nvme_tcp_hdr ch(uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
	struct nvme_tcp_hdr h = { type, flags, hlen, pdo, htole32(plen) };
	return h;
}

static void ok(struct nvme_tcp_hdr h, const struct tcp_rx_params *p, uint32_t hdr_len,
	       uint32_t data_len, uint32_t ddgst_len)
{
	struct tcp_pdu_info info;
	struct tcp_pdu_err err = { 0 };

	if (tcp_pdu_check_hdr(&h, p, &info, &err))
		fail_msg("type %u rejected: %s", h.type, err.why);
	assert_int_equal(info.hdr_len, hdr_len);
	assert_int_equal(info.data_len, data_len);
	assert_int_equal(info.ddgst_len, ddgst_len);
}

static void bad(struct nvme_tcp_hdr h, const struct tcp_rx_params *p, uint16_t fes, uint32_t fei)
{
	struct tcp_pdu_info info;
	struct tcp_pdu_err err = { 0 };

	assert_int_equal(tcp_pdu_check_hdr(&h, p, &info, &err), -1);
	assert_non_null(err.why);
	assert_int_equal(err.fes, fes);
	assert_int_equal(err.fei, fei);
}

enum { F_HD = NVME_TCP_F_HDGST, F_DD = NVME_TCP_F_DDGST, F_LAST = NVME_TCP_F_LAST_PDU,
       F_SUCC = NVME_TCP_F_SUCCESS };
enum { INV = NVME_TCP_FES_INVALID_HEADER, SEQ = NVME_TCP_FES_PDU_SEQUENCE,
       LIMIT = NVME_TCP_FES_DATA_LIMIT };

static void test_icreq_header(void **state)
{
	ok(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), &before_ic, 128, 0, 0);
	bad(ch(NVME_TCP_CMD, 0, 72, 0, 72), &before_ic, SEQ, 0);
	bad(ch(NVME_TCP_H2C_DATA, 0, 24, 24, 28), &before_ic, SEQ, 0);
	bad(ch(NVME_TCP_ICREQ, 0, 127, 0, 128), &before_ic, INV, 2);
	bad(ch(NVME_TCP_ICREQ, F_HD, 128, 0, 128), &before_ic, INV, 1);
	bad(ch(NVME_TCP_ICREQ, 0, 128, 4, 128), &before_ic, INV, 3);
	bad(ch(NVME_TCP_ICREQ, 0, 128, 0, 129), &before_ic, INV, 4);
	bad(ch(NVME_TCP_ICREQ, 0, 128, 0, 0xffffffff), &before_ic, INV, 4);
	/* Only once. */
	bad(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), &plain, SEQ, 0);
}

static void test_types_a_host_must_not_send(void **state)
{
	const uint8_t types[] = { NVME_TCP_ICRESP, NVME_TCP_C2H_TERM, NVME_TCP_RSP,
				  NVME_TCP_C2H_DATA, NVME_TCP_R2T, 0x08, 0x0a, 0x7f, 0xff };

	for (size_t i = 0; i < sizeof(types); i++)
		bad(ch(types[i], 0, 24, 0, 24), &plain, INV, 0);
}

static void test_h2c_term_header(void **state)
{
	ok(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 24), &plain, 24, 0, 0);
	ok(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 152), &both, 24, 128, 0);
	bad(ch(NVME_TCP_H2C_TERM, 0, 28, 0, 28), &plain, INV, 2);
	bad(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 23), &plain, INV, 4);
	bad(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 153), &plain, INV, 4);
}

static void test_capsule_header(void **state)
{
	/* No data: pdo 0, plen = hlen (+ header digest). */
	ok(ch(NVME_TCP_CMD, 0, 72, 0, 72), &plain, 72, 0, 0);
	ok(ch(NVME_TCP_CMD, F_HD, 72, 0, 76), &hd_only, 76, 0, 0);
	ok(ch(NVME_TCP_CMD, F_HD, 72, 0, 76), &both, 76, 0, 0);
	/* In-capsule data right after the header (+ digest). */
	ok(ch(NVME_TCP_CMD, 0, 72, 72, 72 + 1024), &plain, 72, 1024, 0);
	ok(ch(NVME_TCP_CMD, F_HD, 72, 76, 76 + 1024), &hd_only, 76, 1024, 0);
	ok(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 1024 + 4), &both, 76, 1024, 4);
	ok(ch(NVME_TCP_CMD, 0, 72, 72, 72 + TCP_IO_INLINE), &plain, 72, TCP_IO_INLINE, 0);

	bad(ch(NVME_TCP_CMD, 0, 24, 0, 72), &plain, INV, 2);
	bad(ch(NVME_TCP_CMD, 0, 76, 0, 76), &plain, INV, 2);
	bad(ch(NVME_TCP_CMD, F_LAST, 72, 0, 72), &plain, INV, 1);
	bad(ch(NVME_TCP_CMD, F_SUCC, 72, 0, 72), &plain, INV, 1);
	bad(ch(NVME_TCP_CMD, 0x80, 72, 0, 72), &plain, INV, 1);
	/* Digest flags must follow the negotiation exactly. */
	bad(ch(NVME_TCP_CMD, F_HD, 72, 0, 76), &plain, INV, 1);
	bad(ch(NVME_TCP_CMD, 0, 72, 0, 72), &hd_only, INV, 1);
	bad(ch(NVME_TCP_CMD, F_DD, 72, 72, 72 + 8), &plain, INV, 1);
	bad(ch(NVME_TCP_CMD, F_HD, 72, 76, 76 + 8), &both, INV, 1);
	bad(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 0, 76), &both, INV, 1);
	/* Lengths and offsets. */
	bad(ch(NVME_TCP_CMD, 0, 72, 0, 71), &plain, INV, 4);
	bad(ch(NVME_TCP_CMD, F_HD, 72, 0, 74), &hd_only, INV, 4);
	bad(ch(NVME_TCP_CMD, 0, 72, 72, 72), &plain, INV, 3);
	bad(ch(NVME_TCP_CMD, 0, 72, 0, 80), &plain, INV, 3);
	bad(ch(NVME_TCP_CMD, 0, 72, 76, 80), &plain, INV, 3);
	bad(ch(NVME_TCP_CMD, F_HD, 72, 72, 84), &hd_only, INV, 3);
	bad(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 80), &both, INV, 4);
	bad(ch(NVME_TCP_CMD, 0, 72, 72, 72 + TCP_IO_INLINE + 1), &plain, LIMIT, 4);
	bad(ch(NVME_TCP_CMD, 0, 72, 72, 0xffffffff), &plain, LIMIT, 4);
}

static void test_h2c_data_header(void **state)
{
	ok(ch(NVME_TCP_H2C_DATA, 0, 24, 24, 24 + 4096), &plain, 24, 4096, 0);
	ok(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 24, 25), &plain, 24, 1, 0);
	ok(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 28, 28 + 100 + 4), &both, 28, 100, 4);
	ok(ch(NVME_TCP_H2C_DATA, 0, 24, 24, 24 + TCP_MAXH2CDATA), &plain, 24, TCP_MAXH2CDATA, 0);

	bad(ch(NVME_TCP_H2C_DATA, 0, 24, 0, 24), &plain, INV, 4);      /* no data */
	bad(ch(NVME_TCP_H2C_DATA, F_SUCC, 24, 24, 28), &plain, INV, 1);
	bad(ch(NVME_TCP_H2C_DATA, 0, 72, 72, 80), &plain, INV, 2);
	ok(ch(NVME_TCP_H2C_DATA, F_HD, 24, 28, 32), &hd_only, 28, 4, 0);
	bad(ch(NVME_TCP_H2C_DATA, 0, 24, 28, 32), &hd_only, INV, 1);
	bad(ch(NVME_TCP_H2C_DATA, F_HD, 24, 28, 32), &both, INV, 1);
	bad(ch(NVME_TCP_H2C_DATA, 0, 24, 28, 32), &plain, INV, 3);
	bad(ch(NVME_TCP_H2C_DATA, 0, 24, 24, 24 + TCP_MAXH2CDATA + 1), &plain, LIMIT, 4);
}

static void test_header_digest(void **state)
{
	uint8_t pdu[76];
	struct tcp_pdu_err err;

	for (size_t i = 0; i < sizeof(pdu); i++)
		pdu[i] = (uint8_t)(i * 13);
	uint32_t d = htole32(crc32c(pdu, 72));
	memcpy(pdu + 72, &d, 4);
	assert_int_equal(tcp_pdu_check_hdgst(pdu, 72, &err), 0);
	for (int bit = 0; bit < 8; bit++) {
		pdu[10] ^= (uint8_t)(1 << bit);
		assert_int_equal(tcp_pdu_check_hdgst(pdu, 72, &err), -1);
		assert_int_equal(err.fes, NVME_TCP_FES_HDR_DIGEST);
		pdu[10] ^= (uint8_t)(1 << bit);
	}
	pdu[75] ^= 0x80;
	assert_int_equal(tcp_pdu_check_hdgst(pdu, 72, &err), -1);
}

static void test_icreq_body(void **state)
{
	struct nvme_tcp_icreq r;
	struct tcp_pdu_err err;

	memset(&r, 0, sizeof(r));
	r.dgst = NVME_TCP_DGST_HDR | NVME_TCP_DGST_DATA;
	r.maxr2t = htole32(7);
	assert_int_equal(tcp_pdu_check_icreq(&r, &err), 0);
	r.pfv = htole16(1);
	assert_int_equal(tcp_pdu_check_icreq(&r, &err), -1);
	assert_int_equal(err.fes, NVME_TCP_FES_UNSUPPORTED);
	assert_int_equal(err.fei, 8);
	r.pfv = 0;
	r.hpda = 1;
	assert_int_equal(tcp_pdu_check_icreq(&r, &err), -1);
	assert_int_equal(err.fes, NVME_TCP_FES_UNSUPPORTED);
	assert_int_equal(err.fei, 10);
}

static int h2c(uint32_t datao, uint32_t datal, bool last, uint32_t plen_data, uint32_t received,
	       uint32_t total, struct tcp_pdu_err *err)
{
	struct nvme_tcp_data d;

	memset(&d, 0, sizeof(d));
	d.hdr.flags = last ? NVME_TCP_F_LAST_PDU : 0;
	d.datao = htole32(datao);
	d.datal = htole32(datal);
	return tcp_pdu_check_h2c(&d, plen_data, received, total, err);
}

static void test_h2c_against_command(void **state)
{
	struct tcp_pdu_err e;

	assert_int_equal(h2c(0, 4096, false, 4096, 0, 8192, &e), 0);
	assert_int_equal(h2c(4096, 4096, true, 4096, 4096, 8192, &e), 0);
	assert_int_equal(h2c(0, 8192, true, 8192, 0, 8192, &e), 0);

	assert_int_equal(h2c(0, 4095, false, 4096, 0, 8192, &e), -1);
	assert_int_equal(e.fes, NVME_TCP_FES_INVALID_HEADER);
	assert_int_equal(e.fei, offsetof(struct nvme_tcp_data, datal));

	assert_int_equal(h2c(4096, 4096, false, 4096, 0, 8192, &e), -1);  /* skips ahead */
	assert_int_equal(e.fes, NVME_TCP_FES_DATA_RANGE);
	assert_int_equal(e.fei, offsetof(struct nvme_tcp_data, datao));
	assert_int_equal(h2c(0, 4096, false, 4096, 4096, 8192, &e), -1);  /* goes back */
	assert_int_equal(e.fei, offsetof(struct nvme_tcp_data, datao));

	assert_int_equal(h2c(4096, 8192, true, 8192, 4096, 8192, &e), -1); /* past the end */
	assert_int_equal(e.fes, NVME_TCP_FES_DATA_RANGE);
	assert_int_equal(e.fei, offsetof(struct nvme_tcp_data, datal));

	assert_int_equal(h2c(0, 4096, true, 4096, 0, 8192, &e), -1);       /* LAST too early */
	assert_int_equal(e.fes, NVME_TCP_FES_INVALID_HEADER);
	assert_int_equal(e.fei, 1);
	assert_int_equal(h2c(4096, 4096, false, 4096, 4096, 8192, &e), -1); /* LAST missing */
	assert_int_equal(e.fei, 1);
}

static void test_inline_limit(void **state)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_cmd_write;
	assert_int_equal(tcp_inline_limit(&sqe, true), TCP_ADMIN_INLINE);
	assert_int_equal(tcp_inline_limit(&sqe, false), TCP_IO_INLINE);
	sqe.opcode = nvme_admin_fabrics;
	assert_int_equal(tcp_inline_limit(&sqe, false), TCP_ADMIN_INLINE);
	assert_int_equal(tcp_inline_limit(&sqe, true), TCP_ADMIN_INLINE);
}

static uint16_t sgl(uint8_t type, uint64_t addr, uint32_t len, uint32_t inl, uint32_t limit,
		    uint32_t transfer)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.dptr.sgl.type = type;
	sqe.dptr.sgl.addr = htole64(addr);
	sqe.dptr.sgl.length = htole32(len);
	return tcp_sgl_check(&sqe, inl, limit, transfer);
}

#define ST(sc) (NVME_STATUS(NVME_SCT_GENERIC, sc) | NVME_STATUS_DNR)

static void test_sgl(void **state)
{
	const uint8_t icd = NVME_SGL_TYPE_DATA_BLOCK_OFFSET, tr = NVME_SGL_TYPE_TRANSPORT_BLOCK;

	/* In-capsule. */
	assert_int_equal(sgl(icd, 0, 1024, 1024, 8192, 1024), 0);
	assert_int_equal(sgl(icd, 0, 8192, 8192, 8192, 8192), 0);
	assert_int_equal(sgl(tr, 0, 1024, 1024, 8192, 1024), ST(NVME_SC_SGL_INVALID_TYPE));
	assert_int_equal(sgl(0x00, 0, 1024, 1024, 8192, 1024), ST(NVME_SC_SGL_INVALID_TYPE));
	assert_int_equal(sgl(icd, 4, 1024, 1024, 8192, 1024), ST(NVME_SC_SGL_INVALID_OFFSET));
	assert_int_equal(sgl(icd, 0, 2048, 1024, 8192, 2048), ST(NVME_SC_SGL_INVALID_DATA));
	assert_int_equal(sgl(icd, 0, 1024, 1024, 8192, 2048), ST(NVME_SC_SGL_INVALID_DATA));
	assert_int_equal(sgl(icd, 0, 12288, 12288, 8192, 12288), ST(NVME_SC_SGL_INVALID_DATA));
	/* Moved by R2T / C2HData. */
	assert_int_equal(sgl(tr, 0, 0, 0, 8192, 0), 0);
	assert_int_equal(sgl(0x00, 0, 0, 0, 8192, 0), 0);
	assert_int_equal(sgl(tr, 0, 65536, 0, 8192, 65536), 0);
	assert_int_equal(sgl(tr, 0, TCP_MDTS_BYTES, 0, 8192, TCP_MDTS_BYTES), 0);
	assert_int_equal(sgl(tr, 0, TCP_MDTS_BYTES + 1, 0, 8192, TCP_MDTS_BYTES + 1),
			 ST(NVME_SC_INVALID_FIELD));
	assert_int_equal(sgl(icd, 0, 4096, 0, 8192, 4096), ST(NVME_SC_SGL_INVALID_DATA));
	assert_int_equal(sgl(0x00, 0, 4096, 0, 8192, 4096), ST(NVME_SC_SGL_INVALID_TYPE));
}

static void test_build_icresp(void **state)
{
	struct nvme_tcp_icresp r;

	memset(&r, 0xee, sizeof(r));
	tcp_build_icresp(&r, NVME_TCP_DGST_DATA | 0xf0, TCP_MAXH2CDATA);
	assert_int_equal(r.hdr.type, NVME_TCP_ICRESP);
	assert_int_equal(r.hdr.flags, 0);
	assert_int_equal(r.hdr.hlen, 128);
	assert_int_equal(r.hdr.pdo, 0);
	assert_int_equal(le32toh(r.hdr.plen), 128);
	assert_int_equal(le16toh(r.pfv), 0);
	assert_int_equal(r.cpda, 0);
	assert_int_equal(r.dgst, NVME_TCP_DGST_DATA);
	assert_int_equal(le32toh(r.maxh2cdata), TCP_MAXH2CDATA);
	for (size_t i = 0; i < sizeof(r.rsvd); i++)
		assert_int_equal(r.rsvd[i], 0);
	assert_true(TCP_MAXH2CDATA >= 4096 && TCP_MAXH2CDATA % 4 == 0);
}

static void test_build_rsp(void **state)
{
	uint8_t buf[28];
	struct nvme_cqe cqe = { .result = htole64(0x1122334455667788ull), .sqhd = htole16(3),
				.sqid = htole16(1), .cid = htole16(0xa005), .status = htole16(0x8004) };

	assert_int_equal(tcp_build_rsp(buf, &cqe, false), 24);
	assert_int_equal(buf[0], NVME_TCP_RSP);
	assert_int_equal(buf[1], 0);
	assert_int_equal(buf[2], 24);
	assert_int_equal(buf[3], 0);
	assert_int_equal(buf[4], 24);
	assert_memory_equal(buf + 8, &cqe, 16);

	assert_int_equal(tcp_build_rsp(buf, &cqe, true), 28);
	assert_int_equal(buf[1], NVME_TCP_F_HDGST);
	assert_int_equal(buf[4], 28);
	uint32_t d;
	memcpy(&d, buf + 24, 4);
	assert_int_equal(le32toh(d), crc32c(buf, 24));
}

static void test_build_c2h_and_r2t(void **state)
{
	uint8_t buf[28];
	struct nvme_tcp_data *d = (struct nvme_tcp_data *)buf;
	struct nvme_tcp_r2t *r = (struct nvme_tcp_r2t *)buf;
	uint16_t cid = htole16(0x1234);

	assert_int_equal(tcp_build_c2h_data(buf, cid, 4096, 8192, NVME_TCP_F_LAST_PDU, false, false), 24);
	assert_int_equal(d->hdr.type, NVME_TCP_C2H_DATA);
	assert_int_equal(d->hdr.flags, NVME_TCP_F_LAST_PDU);
	assert_int_equal(d->hdr.hlen, 24);
	assert_int_equal(d->hdr.pdo, 24);
	assert_int_equal(le32toh(d->hdr.plen), 24 + 8192);
	assert_int_equal(d->cccid, cid);
	assert_int_equal(d->ttag, 0);
	assert_int_equal(le32toh(d->datao), 4096);
	assert_int_equal(le32toh(d->datal), 8192);

	assert_int_equal(tcp_build_c2h_data(buf, cid, 0, 100,
					    NVME_TCP_F_LAST_PDU | NVME_TCP_F_SUCCESS | NVME_TCP_F_HDGST,
					    true, true), 28);
	assert_int_equal(d->hdr.flags, NVME_TCP_F_LAST_PDU | NVME_TCP_F_SUCCESS | NVME_TCP_F_HDGST |
					       NVME_TCP_F_DDGST);
	assert_int_equal(d->hdr.pdo, 28);
	assert_int_equal(le32toh(d->hdr.plen), 28 + 100 + 4);
	uint32_t dg;
	memcpy(&dg, buf + 24, 4);
	assert_int_equal(le32toh(dg), crc32c(buf, 24));

	assert_int_equal(tcp_build_r2t(buf, cid, 77, 4096, 61440, false), 24);
	assert_int_equal(r->hdr.type, NVME_TCP_R2T);
	assert_int_equal(r->hdr.flags, 0);
	assert_int_equal(r->hdr.hlen, 24);
	assert_int_equal(r->hdr.pdo, 0);
	assert_int_equal(le32toh(r->hdr.plen), 24);
	assert_int_equal(r->cccid, cid);
	assert_int_equal(le16toh(r->ttag), 77);
	assert_int_equal(le32toh(r->r2to), 4096);
	assert_int_equal(le32toh(r->r2tl), 61440);
	assert_int_equal(tcp_build_r2t(buf, cid, 77, 0, 1, true), 28);
	assert_int_equal(r->hdr.flags, NVME_TCP_F_HDGST);
	assert_int_equal(le32toh(r->hdr.plen), 28);
	memcpy(&dg, buf + 24, 4);
	assert_int_equal(le32toh(dg), crc32c(buf, 24));
}

static void test_build_term(void **state)
{
	uint8_t buf[TCP_TERM_MAX], bad_hdr[200];
	struct nvme_tcp_term *t = (struct nvme_tcp_term *)buf;

	for (size_t i = 0; i < sizeof(bad_hdr); i++)
		bad_hdr[i] = (uint8_t)i;
	assert_int_equal(tcp_build_c2h_term(buf, NVME_TCP_FES_DATA_RANGE, 12, bad_hdr, 24), 48);
	assert_int_equal(t->hdr.type, NVME_TCP_C2H_TERM);
	assert_int_equal(t->hdr.flags, 0);
	assert_int_equal(t->hdr.hlen, 24);
	assert_int_equal(le32toh(t->hdr.plen), 48);
	assert_int_equal(le16toh(t->fes), NVME_TCP_FES_DATA_RANGE);
	assert_int_equal(le32toh(t->fei), 12);
	assert_memory_equal(buf + 24, bad_hdr, 24);
	/* At most 128 bytes of the bad header. */
	assert_int_equal(tcp_build_c2h_term(buf, 1, 0, bad_hdr, 200), 152);
	assert_int_equal(le32toh(t->hdr.plen), 152);
	assert_memory_equal(buf + 24, bad_hdr, 128);
	assert_int_equal(tcp_build_c2h_term(buf, 2, 0, NULL, 0), 24);
}

static void test_data_digest(void **state)
{
	/* The CRC32C check value (RFC 3720, B.4). */
	assert_int_equal(le32toh(tcp_ddgst("123456789", 9)), 0xe3069283);
	uint8_t zeros[32] = { 0 };
	assert_int_equal(le32toh(tcp_ddgst(zeros, sizeof(zeros))), 0x8a9136aa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_icreq_header),
		cmocka_unit_test(test_types_a_host_must_not_send),
		cmocka_unit_test(test_h2c_term_header),
		cmocka_unit_test(test_capsule_header),
		cmocka_unit_test(test_h2c_data_header),
		cmocka_unit_test(test_header_digest),
		cmocka_unit_test(test_icreq_body),
		cmocka_unit_test(test_h2c_against_command),
		cmocka_unit_test(test_inline_limit),
		cmocka_unit_test(test_sgl),
		cmocka_unit_test(test_build_icresp),
		cmocka_unit_test(test_build_rsp),
		cmocka_unit_test(test_build_c2h_and_r2t),
		cmocka_unit_test(test_build_term),
		cmocka_unit_test(test_data_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
