/*
 * A namespace's reservations at run time and on disk: the state of resv.h
 * behind its locks, kept in the file resv.state of the namespace's
 * directory when it must survive a power loss (PTPL, doc/reservations.md).
 *
 * ON-DISK FORMAT, version 1, little-endian, 36 + 32 x N bytes:
 *   header (32):  magic "ZNSTGTRV" (8), version (4), N registrants (4),
 *                 generation (4), RTYPE (1), PTPL (1), reserved (2),
 *                 holder: index of the holder's entry, FFFFFFFFh when
 *                 there is none or the type is All Registrants (4),
 *                 reserved (4);
 *   N entries (32 each): Host Identifier (16), registration key (8),
 *                 reserved (8);
 *   CRC32C of every byte before it (4).
 * The size must be exactly that; N <= RESV_MAX_REGS; RTYPE 0..6; PTPL 0 or
 * 1; no Host Identifier twice; a holder index only with types 1..4, where
 * it is required; an All Registrants type only with a registrant. Without
 * PTPL the file holds only PTPL: no registrant, no type, generation 0 (a
 * power loss clears them all).
 * Written to resv.state.tmp, synced, renamed over resv.state, directory
 * synced: a crash leaves the old file or the new one, never a mix.
 */
#ifndef ZNSTGT_RESV_STORE_H
#define ZNSTGT_RESV_STORE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resv.h"

#define RESV_FILE_NAME "resv.state"
#define RESV_FILE_MAX (36u + 32u * RESV_MAX_REGS)

/* Encode what of s survives a power loss into buf (RESV_FILE_MAX bytes);
 * returns the length. */
size_t resv_encode(const struct resv_state *s, uint8_t *buf);
/* Decode a file's bytes: 0 and *s, or -1 with *why saying what is wrong. */
int resv_decode(const void *buf, size_t len, struct resv_state *s, const char **why);

/* The offline check (znstgt-ctl check): 0 when dir's file is right or
 * absent, 1 with *why when a start would refuse it. Writes nothing. */
int resv_file_check(const char *dir, const char **why);

struct resv_ns {
	pthread_mutex_t op_lock;     /* one change at a time, held across its write */
	pthread_mutex_t lock;        /* st; held briefly (I/O checks read under it) */
	atomic_bool reserved;        /* st.rtype != RESV_NONE, read without the lock */
	struct resv_state st;
	char path[PATH_MAX];         /* the file */
};

/*
 * The reservations of the namespace in dir (nsid for messages): loaded from
 * its file (none when there is no file: a namespace of an older version),
 * then the power-up rule (resv_power_up). format: the file goes, nothing
 * is loaded. A damaged file is refused (-1, the reason and the way forward
 * in err), unless recover, which drops it with a warning.
 */
int resv_ns_open(const char *dir, uint32_t nsid, bool format, bool recover, struct resv_ns **out,
		 char *err, size_t errlen);
void resv_ns_close(struct resv_ns *r);

/*
 * Run op on a copy of the state; when it succeeds and what survives a power
 * loss changed, write the file durably before the copy becomes the state
 * (a failed write: Internal Error, nothing changed). Returns op's status.
 * (blocks)
 */
typedef uint16_t (*resv_op_fn)(struct resv_state *s, void *arg);
uint16_t resv_ns_apply(struct resv_ns *r, resv_op_fn op, void *arg);

/* Whether host's command of group a meets a Reservation Conflict. Never blocks. */
bool resv_ns_conflict(struct resv_ns *r, const uint8_t host[16], enum resv_access a);
/* A copy of the state, for a report. */
void resv_ns_get(struct resv_ns *r, struct resv_state *out);

#endif
