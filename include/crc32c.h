/*
 * CRC32C (Castagnoli), as used by NVMe/TCP header and data digests and by
 * every checksum in znstgt's on-disk formats.
 *
 * crc32c() is the finished value (seed ~0, final xor ~0), identical to the
 * Linux kernel crypto "crc32c" digest. To checksum several pieces, use the
 * raw form: crc = crc32c_update(CRC32C_INIT, a, la); crc = crc32c_update(crc,
 * b, lb); value = crc32c_final(crc).
 */
#ifndef ZNSTGT_CRC32C_H
#define ZNSTGT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0xffffffffu

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c_final(uint32_t crc) { return crc ^ 0xffffffffu; }

static inline uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, buf, len));
}

/* Which implementation crc32c_update() uses: "sse4.2" or "table". */
const char *crc32c_impl(void);

#endif
