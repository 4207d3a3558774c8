/*
 * NVMe/TCP PDU layouts and constants (NVMe/TCP Transport Specification 1.0,
 * section 3.6). libnvme 1.3 defines none of them.
 *
 * Every PDU starts with the 8-byte common header (3.6.1). The PDU-specific
 * header follows it; hlen covers both. With header digests negotiated a
 * CRC32C of the hlen bytes follows the header; data (if any) starts at pdo;
 * with data digests a CRC32C of the data follows it. plen counts everything.
 *
 * All multi-byte fields are little-endian on the wire.
 */
#ifndef ZNSTGT_NVME_TCP_H
#define ZNSTGT_NVME_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "nvme_wire.h"

/* PDU types (3.6.1, Figure 21). */
enum nvme_tcp_pdu_type {
	NVME_TCP_ICREQ       = 0x00,
	NVME_TCP_ICRESP      = 0x01,
	NVME_TCP_H2C_TERM    = 0x02,
	NVME_TCP_C2H_TERM    = 0x03,
	NVME_TCP_CMD         = 0x04,
	NVME_TCP_RSP         = 0x05,
	NVME_TCP_H2C_DATA    = 0x06,
	NVME_TCP_C2H_DATA    = 0x07,
	NVME_TCP_R2T         = 0x09,
};

/* Common header flags (3.6.1). LAST_PDU and SUCCESS are data PDU flags. */
#define NVME_TCP_F_HDGST     0x01
#define NVME_TCP_F_DDGST     0x02
#define NVME_TCP_F_LAST_PDU  0x04
#define NVME_TCP_F_SUCCESS   0x08

/* ICReq/ICResp DGST field (3.6.2.2): which digests the connection uses. */
#define NVME_TCP_DGST_HDR    0x01
#define NVME_TCP_DGST_DATA   0x02

#define NVME_TCP_PFV_1_0     0x0000
#define NVME_TCP_DIGEST_LEN  4u

/* Fatal Error Status of a termination request (3.6.2.4, Figure 27). */
enum nvme_tcp_fes {
	NVME_TCP_FES_INVALID_HEADER  = 0x01, /* invalid PDU header field */
	NVME_TCP_FES_PDU_SEQUENCE    = 0x02, /* PDU sequence error */
	NVME_TCP_FES_HDR_DIGEST      = 0x03, /* header digest error */
	NVME_TCP_FES_DATA_RANGE      = 0x04, /* data transfer out of range */
	NVME_TCP_FES_DATA_LIMIT      = 0x05, /* R2T / data transfer limit exceeded */
	NVME_TCP_FES_UNSUPPORTED     = 0x06, /* unsupported parameter */
};

/* Common header (3.6.1). */
struct nvme_tcp_hdr {
	uint8_t type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
} __attribute__((packed));

/* ICReq (3.6.2.2), host -> controller, hlen = plen = 128. */
struct nvme_tcp_icreq {
	struct nvme_tcp_hdr hdr;
	uint16_t pfv;
	uint8_t hpda;     /* host PDU data alignment, 0's based dwords */
	uint8_t dgst;     /* NVME_TCP_DGST_* */
	uint32_t maxr2t;  /* 0's based outstanding R2Ts per command */
	uint8_t rsvd[112];
} __attribute__((packed));

/* ICResp (3.6.2.3), controller -> host, hlen = plen = 128. */
struct nvme_tcp_icresp {
	struct nvme_tcp_hdr hdr;
	uint16_t pfv;
	uint8_t cpda;       /* controller PDU data alignment */
	uint8_t dgst;
	uint32_t maxh2cdata; /* largest H2CData payload the controller accepts */
	uint8_t rsvd[112];
} __attribute__((packed));

/* H2CTermReq / C2HTermReq (3.6.2.4 / 3.6.2.5): hlen 24, then up to 128
 * bytes of the header that caused the error. */
struct nvme_tcp_term {
	struct nvme_tcp_hdr hdr;
	uint16_t fes;
	uint32_t fei;       /* Fatal Error Information: offset of the bad field, ... */
	uint8_t rsvd[10];
} __attribute__((packed));

#define NVME_TCP_TERM_MAX_DATA 128u

/* CapsuleCmd (3.6.2.6): hlen 72; in-capsule data may follow. */
struct nvme_tcp_cmd {
	struct nvme_tcp_hdr hdr;
	struct nvme_sqe sqe;
} __attribute__((packed));

/* CapsuleResp (3.6.2.7): hlen 24. */
struct nvme_tcp_rsp {
	struct nvme_tcp_hdr hdr;
	struct nvme_cqe cqe;
} __attribute__((packed));

/* H2CData and C2HData (3.6.2.8 / 3.6.2.9): hlen 24. ttag is reserved in
 * C2HData. */
struct nvme_tcp_data {
	struct nvme_tcp_hdr hdr;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t datao;
	uint32_t datal;
	uint8_t rsvd[4];
} __attribute__((packed));

/* R2T (3.6.2.10): hlen 24. */
struct nvme_tcp_r2t {
	struct nvme_tcp_hdr hdr;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;
	uint32_t r2tl;
	uint8_t rsvd[4];
} __attribute__((packed));

_Static_assert(sizeof(struct nvme_tcp_hdr) == 8, "common header is 8 bytes");
_Static_assert(sizeof(struct nvme_tcp_icreq) == 128, "ICReq is 128 bytes");
_Static_assert(sizeof(struct nvme_tcp_icresp) == 128, "ICResp is 128 bytes");
_Static_assert(sizeof(struct nvme_tcp_term) == 24, "TermReq header is 24 bytes");
_Static_assert(sizeof(struct nvme_tcp_cmd) == 72, "CapsuleCmd header is 72 bytes");
_Static_assert(sizeof(struct nvme_tcp_rsp) == 24, "CapsuleResp is 24 bytes");
_Static_assert(sizeof(struct nvme_tcp_data) == 24, "data PDU header is 24 bytes");
_Static_assert(sizeof(struct nvme_tcp_r2t) == 24, "R2T is 24 bytes");

/* Byte offsets of fields, reported in FEI of a termination request. */
#define NVME_TCP_OFF_FLAGS  offsetof(struct nvme_tcp_hdr, flags)
#define NVME_TCP_OFF_HLEN   offsetof(struct nvme_tcp_hdr, hlen)
#define NVME_TCP_OFF_PDO    offsetof(struct nvme_tcp_hdr, pdo)
#define NVME_TCP_OFF_PLEN   offsetof(struct nvme_tcp_hdr, plen)

#endif
