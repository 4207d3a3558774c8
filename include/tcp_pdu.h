/*
 * NVMe/TCP PDU checks and builders: pure functions over byte buffers, no
 * sockets and no connection state, so that unit tests and the fuzzer can
 * drive every rule directly. server/tcp/tcp_conn.c applies them in order:
 *
 *   8 bytes in      tcp_pdu_check_hdr()     type, hlen, flags, pdo, plen
 *   header in       tcp_pdu_check_hdgst()   header digest (if negotiated)
 *                   tcp_pdu_check_icreq()   ICReq body
 *                   tcp_pdu_check_h2c()     H2CData against its command
 *   capsule parsed  tcp_sgl_check()         SGL1 vs in-capsule data
 *
 * A failed check fills struct tcp_pdu_err with the Fatal Error Status and
 * Fatal Error Information (the byte offset of the offending field) that go
 * into the C2HTermReq (NVMe/TCP 1.0, 3.6.2.5).
 */
#ifndef ZNSTGT_TCP_PDU_H
#define ZNSTGT_TCP_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme_tcp.h"

/* Limits of the transport (its ops table, tcp_transport.c). In-capsule
 * data: 8 KiB on the admin queue and for Fabrics commands, TCP_IO_INLINE on
 * I/O queues (IOCCSZ = (64 + TCP_IO_INLINE) / 16). MDTS = 8 at 4 KiB pages. */
#define TCP_ADMIN_INLINE 8192u
#define TCP_IO_INLINE    16384u
#define TCP_MDTS_BYTES   (1u << 20)

/* We offer MAXH2CDATA = 128 KiB (host-requirements 1.2: >= 4 KiB, % 4 == 0). */
#define TCP_MAXH2CDATA (128u * 1024)

/* The biggest header we ever build or read: ICReq/ICResp (no digest) or a
 * 72-byte CapsuleCmd + 4-byte digest. */
#define TCP_MAX_HDR 128u
/* A C2HTermReq: its header + up to 128 bytes of the offending header. */
#define TCP_TERM_MAX (sizeof(struct nvme_tcp_term) + NVME_TCP_TERM_MAX_DATA)

struct tcp_pdu_err {
	uint16_t fes;        /* enum nvme_tcp_fes */
	uint32_t fei;        /* byte offset of the bad field in the PDU */
	const char *why;     /* for the log */
};

/* What the receiver knows when a header arrives. */
struct tcp_rx_params {
	bool ic_done;        /* ICReq/ICResp exchanged: only ICReq allowed before */
	bool hdgst;          /* header digests negotiated */
	bool ddgst;          /* data digests negotiated */
};

/* Sizes derived from a valid common header. */
struct tcp_pdu_info {
	uint32_t hdr_len;    /* hlen + header digest: bytes to read before the data */
	uint32_t data_len;   /* payload bytes (0: none), starting at pdo */
	uint32_t ddgst_len;  /* 0 or 4, after the payload */
};

/*
 * Validate the 8-byte common header of a host -> controller PDU. Returns 0
 * and fills info, or -1 and fills err. A received H2CTermReq passes (the
 * caller logs it and closes); every other type the host must not send fails.
 */
int tcp_pdu_check_hdr(const struct nvme_tcp_hdr *ch, const struct tcp_rx_params *p,
		      struct tcp_pdu_info *info, struct tcp_pdu_err *err);

/* Header digest: CRC32C of the first hlen bytes, stored little-endian right
 * after them. Returns 0 if it matches. */
int tcp_pdu_check_hdgst(const void *pdu, uint8_t hlen, struct tcp_pdu_err *err);

/* ICReq body (3.6.2.2): PFV 0, HPDA 0 (we never pad C2H data). */
int tcp_pdu_check_icreq(const struct nvme_tcp_icreq *req, struct tcp_pdu_err *err);

/*
 * An H2CData PDU for a command that expects data_expected more bytes starting
 * at offset received (one R2T covers everything left). data_len is the
 * payload size implied by plen. Checks datal, datao, the range and LAST_PDU.
 */
int tcp_pdu_check_h2c(const struct nvme_tcp_data *d, uint32_t data_len, uint32_t received,
		      uint32_t transfer_len, struct tcp_pdu_err *err);

/*
 * In-capsule data limit for a command on a queue (host-requirements 1.4):
 * 8 KiB for every Fabrics command and for anything on the admin queue (or a
 * queue not yet connected), TCP_IO_INLINE for I/O queues.
 */
uint32_t tcp_inline_limit(const struct nvme_sqe *sqe, bool admin_queue);

/*
 * SGL1 of a command the core accepted (NVMe/TCP 1.0, 3.3.2): in-capsule data
 * needs a Data Block descriptor with offset 0 (ICDOFF 0) and a length equal
 * to the data received and within the limit; data moved by R2T/C2HData needs
 * a Transport Data Block descriptor. Returns 0 or a znstgt status word.
 */
uint16_t tcp_sgl_check(const struct nvme_sqe *sqe, uint32_t inline_len, uint32_t inline_limit,
		       uint32_t transfer_len);

/* ---- builders (tcp_send.c): each writes a complete header (+ header digest) ---- */

void tcp_build_icresp(struct nvme_tcp_icresp *r, uint8_t dgst, uint32_t maxh2cdata);
/* CapsuleResp carrying cqe (already in wire format). Returns 24 or 28. */
size_t tcp_build_rsp(void *buf, const struct nvme_cqe *cqe, bool hdgst);
/* C2HData header for datal bytes at datao; flags: LAST_PDU / SUCCESS.
 * plen accounts for the payload and its digest. Returns 24 or 28. */
size_t tcp_build_c2h_data(void *buf, uint16_t cccid, uint32_t datao, uint32_t datal,
			  uint8_t flags, bool hdgst, bool ddgst);
/* R2T for r2tl bytes at r2to. Returns 24 or 28. */
size_t tcp_build_r2t(void *buf, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
		     bool hdgst);
/* C2HTermReq (never digested) quoting up to 128 bytes of the bad header.
 * buf holds TCP_TERM_MAX bytes. Returns the PDU length. */
size_t tcp_build_c2h_term(void *buf, uint16_t fes, uint32_t fei, const void *bad_hdr,
			  size_t bad_len);

/* The CRC32C data digest of len bytes, as stored on the wire (le32). */
uint32_t tcp_ddgst(const void *data, size_t len);

#endif
