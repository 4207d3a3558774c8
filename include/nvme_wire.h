/*
 * NVMe structures that libnvme 1.3 (<nvme/types.h>) does not define: the
 * 64-byte submission queue entry, the 16-byte completion queue entry and the
 * SGL data block descriptor (NVMe Base 2.0, 4.2 / 4.6 / 4.3.2). Everything
 * libnvme does define (identify data, log pages, opcodes, register fields,
 * status codes, fabrics connect data, discovery log entries) is used from
 * <nvme/types.h>, never redefined.
 *
 * All multi-byte fields are little-endian on the wire; use le*toh/htole*.
 */
#ifndef ZNSTGT_NVME_WIRE_H
#define ZNSTGT_NVME_WIRE_H

#include <endian.h>
#include <stdint.h>

#include <nvme/types.h>

/* SGL descriptor (NVMe Base 2.0, 4.3.2), 16 bytes. type = (type << 4) | subtype. */
struct nvme_sgl_desc {
	uint64_t addr;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t type;
} __attribute__((packed));

#define NVME_SGL_TYPE_DATA_BLOCK_OFFSET 0x01 /* in-capsule data (NVMe/TCP) */
#define NVME_SGL_TYPE_TRANSPORT_BLOCK   0x5a /* host buffer moved by R2T / C2HData */

/* Submission queue entry (NVMe Base 2.0, 4.2). */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags; /* bits 1:0 FUSE, bits 7:6 PSDT */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1;
			uint64_t prp2;
		} prp;
		struct nvme_sgl_desc sgl;
	} dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));

/* Fabrics commands reuse the SQE: opcode 0x7f, fctype in byte 4. */
static inline uint8_t nvme_sqe_fctype(const struct nvme_sqe *c)
{
	return ((const uint8_t *)c)[4];
}

/* Completion queue entry (NVMe Base 2.0, 4.6). status bit 0 is the phase tag. */
struct nvme_cqe {
	uint64_t result;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;
} __attribute__((packed));

_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");
_Static_assert(sizeof(struct nvme_sgl_desc) == 16, "SGL descriptor is 16 bytes");

/*
 * Status values as used inside znstgt: the 15-bit Status Field without the
 * phase bit: SC[7:0] | SCT[10:8] | CRD[12:11] | M[13] | DNR[14]. Shift left
 * by one when writing nvme_cqe.status. The NVME_SC_* / NVME_SCT_* constants
 * from <nvme/types.h> compose into it: (sct << 8) | sc.
 */
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_STATUS_DNR 0x4000u

/* The common cases, with DNR (do not retry) set: a generic, a command
 * specific and a media/data integrity error (NVMe Base 2.0, 4.6.1.2). */
static inline uint16_t nvme_err(uint8_t sc)
{
	return NVME_STATUS(NVME_SCT_GENERIC, sc) | NVME_STATUS_DNR;
}

static inline uint16_t nvme_cmd_err(uint8_t sc)
{
	return NVME_STATUS(NVME_SCT_CMD_SPECIFIC, sc) | NVME_STATUS_DNR;
}

static inline uint16_t nvme_media_err(uint8_t sc)
{
	return NVME_STATUS(NVME_SCT_MEDIA, sc) | NVME_STATUS_DNR;
}

#endif
