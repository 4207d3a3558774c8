/*
 * Polled doorbells (doc/vfio-user.md, "Polled doorbells"): the NVMe
 * device's doorbell page, BAR0 1000h - 1FFFh, as a memfd page the client
 * maps (a sparse mmap area), so that a guest's doorbell write is a store
 * into our memory instead of a message on the socket. A store wakes
 * nothing: the device's loop looks at the page.
 *
 *   - busy (a doorbell changed, or the controller touched guest memory, in
 *     the last DBP_SPIN_S): the loop does not block; every turn of it
 *     compares the page with the values already acted on (an ev_check
 *     watcher, the loop kept from blocking by an ev_idle one). Past
 *     DBP_HOT_S of that, each turn first sleeps DBP_DOZE_NS, giving the
 *     CPU to others between a guest's bursts;
 *   - idle past that: the loop sleeps, woken by a timer whose period
 *     doubles from DBP_NAP_MIN_S to DBP_NAP_MAX_S, so an idle controller
 *     costs a few wake-ups a second and the first doorbell after a pause
 *     is seen within DBP_NAP_MAX_S.
 *
 * Each dword that differs from the value last acted on is handed to
 * ring() once, as a 4-byte BAR0 write of that doorbell would be: the
 * controller checks it exactly as it checks a message doorbell. Only the
 * doorbells the controller has (NVME_PCIE_BAR0_SIZE) are looked at; the
 * rest of the page is reserved, and writes there are ignored as over
 * messages.
 *
 * Everything runs on the device's loop.
 */
#ifndef ZNSTGT_VFIO_USER_DB_POLL_H
#define ZNSTGT_VFIO_USER_DB_POLL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "pcie.h"

#define DBP_PAGE     4096u
#define DBP_NR       ((NVME_PCIE_BAR0_SIZE - NVME_PCIE_DB_BASE) / 4)
#define DBP_HOT_S    10e-6
#define DBP_DOZE_NS  10000
#define DBP_SPIN_S   1e-3
#define DBP_NAP_MIN_S 1e-3
#define DBP_NAP_MAX_S 10e-3

_Static_assert(NVME_PCIE_BAR0_SIZE - NVME_PCIE_DB_BASE <= DBP_PAGE, "doorbells beyond one page");

struct db_poll {
	struct ev_loop *loop;
	uint32_t *page;                 /* shared with the client; NULL: off */
	uint32_t seen[DBP_NR];          /* the values acted on (little-endian) */
	ev_check check;
	ev_idle spin;
	ev_timer nap;
	ev_tstamp last_active;
	ev_tstamp nap_s;
	bool no_doze;                   /* the worker polls anyway (poll = yes) */
	void (*ring)(void *ctx, uint32_t idx, uint32_t val);
	void *ctx;
};

/* A fresh zeroed page, polling on: the memfd behind it (the caller gives
 * it to the server and closes it), or -errno. no_doze: the loop's worker
 * spins anyway (`poll = yes`), so the warm state does not sleep. */
int dbp_open(struct db_poll *p, struct ev_loop *loop, bool no_doze,
	     void (*ring)(void *ctx, uint32_t idx, uint32_t val), void *ctx);
/* Polling off, page unmapped (its memfd lives on in a client that keeps
 * it, unread). Nothing if not open. */
void dbp_close(struct db_poll *p);
/* Controller reset: every doorbell back to 0 without ringing. */
void dbp_clear(struct db_poll *p);
/* Doorbell idx starts over at 0 (its queue was just created): the page
 * and the value acted on, without ringing. */
void dbp_reset(struct db_poll *p, uint32_t idx);
/* A doorbell written by message: into the page, then acted on as a store. */
void dbp_store(struct db_poll *p, uint32_t idx, uint32_t val);
/* Act on every doorbell that changed. */
void dbp_scan(struct db_poll *p);
/* The controller is working: keep polling without sleeping. */
void dbp_active(struct db_poll *p);

#endif
