/*
 * Polled doorbells (db_poll.h): the shared page, the scan, and when the
 * loop spins or sleeps.
 */
#include "db_poll.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "worker.h"

static void spin_start(struct db_poll *p)
{
	ev_timer_stop(p->loop, &p->nap);
	p->nap_s = DBP_NAP_MIN_S;
	if (!ev_is_active(&p->spin))
		ev_idle_start(p->loop, &p->spin);
}

void dbp_active(struct db_poll *p)
{
	if (!p->page)
		return;
	p->last_active = ev_now(p->loop);
	if (!ev_is_active(&p->spin))
		spin_start(p);
	/* A polling worker's spin on a TCP queue would make these scans wait. */
	worker_spin_other();
}

void dbp_scan(struct db_poll *p)
{
	bool changed = false;

	/* The guest may store at any time: each dword is read once, and the
	 * value read is the one acted on and remembered. */
	for (uint32_t i = 0; i < DBP_NR && p->page; i++) {
		uint32_t v = __atomic_load_n(&p->page[i], __ATOMIC_ACQUIRE);

		if (v == p->seen[i])
			continue;
		p->seen[i] = v;
		changed = true;
		p->ring(p->ctx, i, le32toh(v));
	}
	if (changed)
		dbp_active(p);
}

/* Every turn of the loop (after its poll): look at the page, then decide
 * whether the next turn may sleep. */
static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct db_poll *p = w->data;

	(void)revents;
	dbp_scan(p);
	if (!p->page || !ev_is_active(&p->spin) || ev_now(loop) - p->last_active < DBP_SPIN_S)
		return;
	/* Idle: sleep, woken by the timer (or anything else on the loop). */
	ev_idle_stop(loop, &p->spin);
	ev_timer_set(&p->nap, p->nap_s, 0.);
	ev_timer_start(loop, &p->nap);
}

/*
 * Keeps the loop from blocking while busy. Within DBP_HOT_S of the last
 * activity it returns at once (a doorbell is seen within a turn of the
 * loop, about a microsecond: a polling guest rings again within that);
 * after that, until DBP_SPIN_S, each turn first sleeps DBP_DOZE_NS.
 * Measured on the loaded 2-CPU development machine (load average 4 - 16),
 * dozing lets the CPU go to other processes while the guest is not
 * running, which keeps them off the guest's CPU: QD32 IOPS 1.5 - 3x those
 * of pure spinning; a 50 us hot window with 20 us dozes gave a third to a
 * half of what 10 us and 10 us gave at load 15. (sched_yield() instead
 * handed the CPU away on every turn: a third of the IOPS lost.)
 */
static void spin_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct db_poll *p = w->data;
	struct timespec doze = { 0, DBP_DOZE_NS };

	(void)revents;
	if (!p->no_doze && ev_now(loop) - p->last_active > DBP_HOT_S)
		nanosleep(&doze, NULL);
}

/* Woke from a nap (check_cb looks at the page after it): nap longer next. */
static void nap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct db_poll *p = w->data;

	(void)revents;
	p->nap_s = p->nap_s * 2 > DBP_NAP_MAX_S ? DBP_NAP_MAX_S : p->nap_s * 2;
	ev_timer_set(&p->nap, p->nap_s, 0.);
	ev_timer_start(loop, &p->nap);
}

int dbp_open(struct db_poll *p, struct ev_loop *loop, bool no_doze,
	     void (*ring)(void *ctx, uint32_t idx, uint32_t val), void *ctx)
{
	int fd, err;
	void *m;

	memset(p, 0, sizeof(*p));
	fd = memfd_create("znstgt-doorbells", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* The fd stands for BAR0 from offset 0 (the region's mmap offset is
	 * 0, the area's is the doorbells' 1000h): only that page is used.
	 * Sealed against resizing: a client that truncated the file would
	 * make our next look at the page a SIGBUS. */
	if (ftruncate(fd, NVME_PCIE_DB_BASE + DBP_PAGE) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
	    (m = mmap(NULL, DBP_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      NVME_PCIE_DB_BASE)) == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	p->loop = loop;
	p->no_doze = no_doze;
	p->page = m;
	p->ring = ring;
	p->ctx = ctx;
	ev_check_init(&p->check, check_cb);
	ev_idle_init(&p->spin, spin_cb);
	ev_timer_init(&p->nap, nap_cb, 0., 0.);
	p->check.data = p->spin.data = p->nap.data = p;
	ev_check_start(loop, &p->check);
	/* The doze is microseconds: without this the kernel may stretch a
	 * sleep of this thread by its default 50 us of timer slack. */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	dbp_active(p);
	return fd;
}

void dbp_close(struct db_poll *p)
{
	if (!p->page)
		return;
	ev_check_stop(p->loop, &p->check);
	ev_idle_stop(p->loop, &p->spin);
	ev_timer_stop(p->loop, &p->nap);
	munmap(p->page, DBP_PAGE);
	p->page = NULL;
}

void dbp_clear(struct db_poll *p)
{
	if (!p->page)
		return;
	memset(p->page, 0, DBP_PAGE);
	memset(p->seen, 0, sizeof(p->seen));
}

void dbp_reset(struct db_poll *p, uint32_t idx)
{
	if (!p->page || idx >= DBP_NR)
		return;
	__atomic_store_n(&p->page[idx], 0, __ATOMIC_RELAXED);
	p->seen[idx] = 0;
}

void dbp_store(struct db_poll *p, uint32_t idx, uint32_t val)
{
	if (!p->page || idx >= DBP_NR)
		return;
	__atomic_store_n(&p->page[idx], htole32(val), __ATOMIC_RELEASE);
	dbp_scan(p);
}
