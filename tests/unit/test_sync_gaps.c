/*
 * A sync (Flush) while zones are gapped: a write ended there before an older
 * write to the same zone did, so the zone's written prefix - what a journal
 * record may claim - is short of it. ns_sync() must wait for the prefix of
 * every zone gapped when it is called, before the commit that acknowledges
 * it takes its snapshot (ns.h: a write ended before the call is durable when
 * the callback runs).
 *
 * Zones also gap while ns_sync() looks for gapped zones, and those need not
 * be waited for; but they must not take the place of a zone gapped at the
 * call. The test makes that happen at a fixed point: ns_sync() is linked to
 * reach the zone engine's zns_wait_gap() through __wrap_zns_wait_gap() below
 * (the Makefile's TEST_LDFLAGS_test_sync_gaps), which, the first time it is
 * called, ends a write that gaps a zone between the ones gapped at the call.
 * Then every write is ended, the callback awaited, and the power cut: each
 * zone must come back with the write pointer the acknowledged writes left.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <nvme/types.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ns.h"
#include "zone.h"

#define NZ 8
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define BS 4096u

/* Zones 1 and 3 are gapped when ns_sync() is called; zone 2, between
 * them, gaps while it scans. */
#define NGAP 3
static const uint32_t gap_zone[NGAP] = { 1, 2, 3 };

static struct ns *ns;
static struct ns_write older[NGAP], newer[NGAP]; /* per zone: [0, 1) and [1, 2) */
static bool newer_ended_in_scan;                  /* zone 2's, by the hook */
static bool parked_on[NZ];                        /* zones ns_sync() waits for */

bool __real_zns_wait_gap(struct zns *z, uint32_t i, struct zone_waiter *zw);
bool __wrap_zns_wait_gap(struct zns *z, uint32_t i, struct zone_waiter *zw);

bool __wrap_zns_wait_gap(struct zns *z, uint32_t i, struct zone_waiter *zw)
{
	if (newer_ended_in_scan) {
		newer_ended_in_scan = false;
		ns_write_end(ns, &newer[1], 0); /* zone 2 gaps now */
	}
	bool parked = __real_zns_wait_gap(z, i, zw);
	parked_on[i] |= parked;
	return parked;
}

struct sync_done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	uint16_t status;
};

static void sync_cb(void *arg, uint16_t status)
{
	struct sync_done *sd = arg;
	pthread_mutex_lock(&sd->lock);
	sd->done = true;
	sd->status = status;
	pthread_cond_signal(&sd->cond);
	pthread_mutex_unlock(&sd->lock);
}

static bool sync_is_done(struct sync_done *sd)
{
	pthread_mutex_lock(&sd->lock);
	bool done = sd->done;
	pthread_mutex_unlock(&sd->lock);
	return done;
}

static uint64_t zone_wp(uint32_t zone)
{
	uint8_t buf[sizeof(struct nvme_zone_report) + sizeof(struct nvme_zns_desc)]
		__attribute__((aligned(8)));
	assert_int_equal(ns_zone_report(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZRA_REPORT_ZONES,
					NVME_ZNS_ZRAS_REPORT_ALL, true, buf, sizeof(buf)), 0);
	return le64toh(((const struct nvme_zone_report *)buf)->entries[0].wp);
}

/* Begin a one-block Write at lba and write its data (not ended yet). */
static void write_data(struct ns_write *w, uint64_t lba)
{
	static uint8_t block[BS];
	memset(block, (int)(lba + 1), sizeof(block));
	struct iovec iov = { block, BS };
	assert_int_equal(ns_write_begin(ns, w, NS_WRITE, lba, 1), 0);
	assert_int_equal(ns_write_data(ns, w, &iov, 1), 0);
}

static void test_sync_waits_for_zones_gapped_at_call(void **state)
{
	(void)state;
	char dir[] = "/tmp/znstgt-syncgap-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct ns_config cfg = { .nsid = 1, .lba_size = BS, .zoned = true };
	snprintf(cfg.path, sizeof(cfg.path), "%s/ns1", dir);
	cfg.zone_size = cfg.zone_capacity = ZLBAS * BS;
	cfg.size = NZ * cfg.zone_size;
	cfg.zone_append_max = 8 * BS;
	cfg.journal_size = 1 << 20;
	char err[512] = "";
	if (ns_open(&cfg, false, &ns, err, sizeof(err)))
		fail_msg("ns_open: %s", err);

	/* In each zone, [1, 2) lands before [0, 1); only zones 1 and 3 are
	 * gapped when ns_sync() is called. */
	for (int k = 0; k < NGAP; k++) {
		uint64_t zslba = (uint64_t)gap_zone[k] * ZLBAS;
		write_data(&older[k], zslba);
		write_data(&newer[k], zslba + 1);
		if (k != 1)
			ns_write_end(ns, &newer[k], 0);
	}
	struct zns *z = ns_zones(ns);
	assert_int_equal(zns_gapped(z), 2);

	struct sync_done sd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };
	newer_ended_in_scan = true;
	ns_sync(ns, sync_cb, &sd);
	assert_false(newer_ended_in_scan);
	assert_int_equal(zns_gapped(z), 3);
	/* Zones 1 and 3 were gapped at the call (zone 2, gapped in the scan,
	 * may be waited for or not). */
	for (int k = 0; k < NGAP; k += 2)
		if (!parked_on[gap_zone[k]])
			fail_msg("ns_sync() did not wait for zone %u, gapped when it was called",
				 gap_zone[k]);

	/* Zones 1 and 2 catch up; the sync still waits for zone 3, so it
	 * cannot have been queued for a commit yet. */
	ns_write_end(ns, &older[0], 0);
	ns_write_end(ns, &older[1], 0);
	assert_false(sync_is_done(&sd));
	ns_write_end(ns, &older[2], 0);

	pthread_mutex_lock(&sd.lock);
	while (!sd.done)
		pthread_cond_wait(&sd.cond, &sd.lock);
	pthread_mutex_unlock(&sd.lock);
	assert_int_equal(sd.status, 0);

	/* Acknowledged: a power cut keeps both blocks of every zone. */
	ns_abandon(ns);
	if (ns_open(&cfg, false, &ns, err, sizeof(err)))
		fail_msg("ns_open after the power cut: %s", err);
	for (int k = 0; k < NGAP; k++)
		assert_int_equal(zone_wp(gap_zone[k]), (uint64_t)gap_zone[k] * ZLBAS + 2);
	ns_close(ns);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_waits_for_zones_gapped_at_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
