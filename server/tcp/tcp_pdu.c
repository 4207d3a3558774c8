/*
 * NVMe/TCP PDU checks and builders (NVMe/TCP Transport Specification 1.0,
 * section 3.6). Pure functions: see include/tcp_pdu.h for the order in which
 * the connection applies them.
 *
 * Host -> controller PDUs are checked strictly: a Linux host always sends
 * pdo = hlen + header digest when data follows and 0 otherwise (we offer
 * CPDA 0, so there is never padding), sets each digest flag exactly when
 * that digest is present, and sets no reserved flag. Anything else is a
 * fatal protocol error reported with the offset of the offending field.
 */
#include "tcp_pdu.h"

#include <endian.h>
#include <string.h>

#include <nvme/types.h>

#include "crc32c.h"
#include "transport.h"

#define TERM_HLEN ((uint8_t)sizeof(struct nvme_tcp_term))
#define DATA_HLEN ((uint8_t)sizeof(struct nvme_tcp_data))
#define CMD_HLEN  ((uint8_t)sizeof(struct nvme_tcp_cmd))

static int fail(struct tcp_pdu_err *err, uint16_t fes, uint32_t fei, const char *why)
{
	err->fes = fes;
	err->fei = fei;
	err->why = why;
	return -1;
}

/* ICReq: hlen = plen = 128, no data, no digests (3.6.2.2). */
static int check_icreq_hdr(const struct nvme_tcp_hdr *ch, uint32_t plen,
			   struct tcp_pdu_info *info, struct tcp_pdu_err *err)
{
	if (ch->hlen != sizeof(struct nvme_tcp_icreq))
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_HLEN, "ICReq hlen != 128");
	if (ch->flags)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_FLAGS, "ICReq with flags");
	if (ch->pdo)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PDO, "ICReq pdo != 0");
	if (plen != sizeof(struct nvme_tcp_icreq))
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PLEN, "ICReq plen != 128");
	info->hdr_len = sizeof(struct nvme_tcp_icreq);
	info->data_len = 0;
	info->ddgst_len = 0;
	return 0;
}

/* H2CTermReq: hlen 24, plen 24..152, never digested (3.6.2.4). */
static int check_term_hdr(const struct nvme_tcp_hdr *ch, uint32_t plen,
			  struct tcp_pdu_info *info, struct tcp_pdu_err *err)
{
	if (ch->hlen != TERM_HLEN)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_HLEN, "H2CTermReq hlen != 24");
	if (plen < TERM_HLEN || plen > TCP_TERM_MAX)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PLEN, "H2CTermReq plen out of range");
	info->hdr_len = TERM_HLEN;
	info->data_len = plen - TERM_HLEN;
	info->ddgst_len = 0;
	return 0;
}

/*
 * CapsuleCmd and H2CData share the framing rules: the header digest flag
 * follows the negotiation, data (if any) starts right after the header and
 * its digest, and carries the data digest flag exactly when data digests are
 * on. allowed_flags lists the data-PDU flags the type may carry.
 */
static int check_framed_hdr(const struct nvme_tcp_hdr *ch, uint32_t plen, uint8_t hlen,
			    uint8_t allowed_flags, uint32_t max_data, bool need_data,
			    const struct tcp_rx_params *p, struct tcp_pdu_info *info,
			    struct tcp_pdu_err *err)
{
	uint32_t hd = p->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = p->ddgst ? NVME_TCP_DIGEST_LEN : 0;

	if (ch->hlen != hlen)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_HLEN, "wrong hlen for PDU type");
	if (ch->flags & ~(NVME_TCP_F_HDGST | NVME_TCP_F_DDGST | allowed_flags))
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_FLAGS, "reserved flag set");
	if (!(ch->flags & NVME_TCP_F_HDGST) != !p->hdgst)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_FLAGS,
			    "header digest flag does not match the negotiation");
	if (plen < hlen + hd)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PLEN, "plen shorter than the header");

	uint32_t rest = plen - hlen - hd;
	bool has_data = rest > 0;
	if (need_data && !has_data)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PLEN, "data PDU without data");
	if (!(ch->flags & NVME_TCP_F_DDGST) != !(p->ddgst && has_data))
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_FLAGS,
			    "data digest flag does not match the negotiation");
	if (!has_data) {
		if (ch->pdo)
			return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PDO, "pdo set without data");
		info->data_len = 0;
		info->ddgst_len = 0;
	} else {
		if (ch->pdo != hlen + hd)
			return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PDO,
				    "pdo is not hlen + header digest");
		if (rest <= dd)
			return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_PLEN,
				    "plen leaves no room for the data digest");
		if (rest - dd > max_data)
			return fail(err, NVME_TCP_FES_DATA_LIMIT, NVME_TCP_OFF_PLEN, "PDU data too long");
		info->data_len = rest - dd;
		info->ddgst_len = dd;
	}
	info->hdr_len = hlen + hd;
	return 0;
}

int tcp_pdu_check_hdr(const struct nvme_tcp_hdr *ch, const struct tcp_rx_params *p,
		      struct tcp_pdu_info *info, struct tcp_pdu_err *err)
{
	uint32_t plen = le32toh(ch->plen);

	if (!p->ic_done) {
		if (ch->type != NVME_TCP_ICREQ)
			return fail(err, NVME_TCP_FES_PDU_SEQUENCE, 0, "first PDU is not ICReq");
		return check_icreq_hdr(ch, plen, info, err);
	}
	switch (ch->type) {
	case NVME_TCP_ICREQ:
		return fail(err, NVME_TCP_FES_PDU_SEQUENCE, 0, "second ICReq");
	case NVME_TCP_H2C_TERM:
		return check_term_hdr(ch, plen, info, err);
	case NVME_TCP_CMD:
		/* The largest in-capsule data any queue accepts; the exact
		 * per-command limit is checked once the SQE is parsed. */
		return check_framed_hdr(ch, plen, CMD_HLEN, 0, TCP_IO_INLINE, false, p, info, err);
	case NVME_TCP_H2C_DATA:
		return check_framed_hdr(ch, plen, DATA_HLEN, NVME_TCP_F_LAST_PDU, TCP_MAXH2CDATA, true,
					p, info, err);
	default:
		return fail(err, NVME_TCP_FES_INVALID_HEADER, 0, "PDU type not valid from a host");
	}
}

int tcp_pdu_check_hdgst(const void *pdu, uint8_t hlen, struct tcp_pdu_err *err)
{
	uint32_t want, got;

	memcpy(&got, (const uint8_t *)pdu + hlen, sizeof(got));
	want = crc32c(pdu, hlen);
	if (le32toh(got) != want)
		return fail(err, NVME_TCP_FES_HDR_DIGEST, 0, "header digest mismatch");
	return 0;
}

int tcp_pdu_check_icreq(const struct nvme_tcp_icreq *req, struct tcp_pdu_err *err)
{
	if (le16toh(req->pfv) != NVME_TCP_PFV_1_0)
		return fail(err, NVME_TCP_FES_UNSUPPORTED, offsetof(struct nvme_tcp_icreq, pfv),
			    "unsupported PDU format version");
	/* HPDA asks us to pad C2H data; Linux hosts read fixed headers and
	 * send 0, nvmet refuses anything else, and so do we. */
	if (req->hpda)
		return fail(err, NVME_TCP_FES_UNSUPPORTED, offsetof(struct nvme_tcp_icreq, hpda),
			    "HPDA != 0 is not supported");
	return 0;
}

int tcp_pdu_check_h2c(const struct nvme_tcp_data *d, uint32_t data_len, uint32_t received,
		      uint32_t transfer_len, struct tcp_pdu_err *err)
{
	uint32_t datao = le32toh(d->datao);
	uint32_t datal = le32toh(d->datal);
	bool last = d->hdr.flags & NVME_TCP_F_LAST_PDU;

	if (datal != data_len)
		return fail(err, NVME_TCP_FES_INVALID_HEADER, offsetof(struct nvme_tcp_data, datal),
			    "H2CData datal does not match plen");
	/* One R2T covers all remaining bytes, so data must arrive in order. */
	if (datao != received)
		return fail(err, NVME_TCP_FES_DATA_RANGE, offsetof(struct nvme_tcp_data, datao),
			    "H2CData datao is not the next expected offset");
	if (datal > transfer_len - received)
		return fail(err, NVME_TCP_FES_DATA_RANGE, offsetof(struct nvme_tcp_data, datal),
			    "H2CData beyond the end of the transfer");
	if (last != (datal == transfer_len - received))
		return fail(err, NVME_TCP_FES_INVALID_HEADER, NVME_TCP_OFF_FLAGS,
			    "LAST_PDU does not mark the end of the R2T");
	return 0;
}

uint32_t tcp_inline_limit(const struct nvme_sqe *sqe, bool admin_queue)
{
	if (admin_queue || sqe->opcode == nvme_admin_fabrics)
		return TCP_ADMIN_INLINE;
	return TCP_IO_INLINE;
}

uint16_t tcp_sgl_check(const struct nvme_sqe *sqe, uint32_t inline_len, uint32_t inline_limit,
		       uint32_t transfer_len)
{
	const struct nvme_sgl_desc *sgl = &sqe->dptr.sgl;

	if (inline_len) {
		if (sgl->type != NVME_SGL_TYPE_DATA_BLOCK_OFFSET)
			return nvme_err(NVME_SC_SGL_INVALID_TYPE);
		if (le64toh(sgl->addr) != 0)
			return nvme_err(NVME_SC_SGL_INVALID_OFFSET);
		if (le32toh(sgl->length) != inline_len || transfer_len != inline_len ||
		    inline_len > inline_limit)
			return nvme_err(NVME_SC_SGL_INVALID_DATA);
		return 0;
	}
	if (!transfer_len)
		return 0;
	/* An in-capsule descriptor whose data never came. */
	if (sgl->type == NVME_SGL_TYPE_DATA_BLOCK_OFFSET)
		return nvme_err(NVME_SC_SGL_INVALID_DATA);
	if (sgl->type != NVME_SGL_TYPE_TRANSPORT_BLOCK)
		return nvme_err(NVME_SC_SGL_INVALID_TYPE);
	/* MDTS bounds every transfer (NVMe Base 2.0, 5.17.2.1: Invalid Field). */
	if (transfer_len > TCP_MDTS_BYTES)
		return nvme_err(NVME_SC_INVALID_FIELD);
	return 0;
}

uint32_t tcp_ddgst(const void *data, size_t len)
{
	return htole32(crc32c(data, len));
}
