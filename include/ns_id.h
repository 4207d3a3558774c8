/*
 * ns.id: the file in a namespace's directory that keeps its UUID stable
 * across restarts (hosts know the namespace by it; NGUID and EUI-64 follow
 * from it, ns.c). Used by ns_open() and by the offline check
 * (znstgt-ctl check).
 *
 * ON-DISK FORMAT, version 1, little-endian, 40 bytes:
 *   magic "ZNSTGTID" (8), version (4), reserved (4), UUID (16),
 *   reserved (4), CRC32C of the 36 bytes before it (4).
 * Written to NAME.tmp, synced, renamed over NAME.
 */
#ifndef ZNSTGT_NS_ID_H
#define ZNSTGT_NS_ID_H

#include <stdint.h>

#define NS_ID_NAME "ns.id"

/* Write uuid to path durably. 0 or -errno. */
int ns_id_write(const char *path, const uint8_t uuid[16]);
/*
 * Read path: 0 with the UUID in uuid; 1 with *why "missing" or "damaged"
 * (short, bad magic, CRC or version); -errno when it cannot be read.
 */
int ns_id_read(const char *path, uint8_t uuid[16], const char **why);

#endif
