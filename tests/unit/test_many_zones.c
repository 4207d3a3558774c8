/*
 * A namespace of 65,536 zones: formatted, its zones put in every state a
 * host can reach, reported the way a host reads them (Zone Management
 * Receive after Zone Management Receive from where the last one stopped,
 * partial reports in buffers of a transfer's size) and in one buffer, with
 * a state filter, and again after a power cut and the replay of the journal
 * that recorded those transitions. Every zone must come back exactly once,
 * in order, in the state it was left in (after a power cut: the power-up
 * rule's). Correctness only; bench_zone (d) times the same at 262,144.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "log.h"
#include "ns.h"

#define NZ 65536u
#define ZLBAS 16u                     /* 64 KiB zones of 4 KiB LBAs: a 4 GiB sparse file */
#define PAGE (128u * 1024)            /* bytes per report, as a host's transfer */
#define DESC sizeof(struct nvme_zns_desc)
#define HDR sizeof(struct nvme_zone_report)

static char dir[] = "/tmp/znstgt-many-XXXXXX";
static struct ns_config cfg;
static struct nvme_zns_desc *seen;    /* NZ descriptors, gathered from reports */

/* The state zone i is left in, before and after a power cut. */
static uint8_t state_set(uint32_t i)
{
	switch (i % 7) {
	case 1: return NVME_ZNS_ZS_EXPL_OPEN;
	case 2: return NVME_ZNS_ZS_IMPL_OPEN;   /* written */
	case 3: return NVME_ZNS_ZS_CLOSED;      /* written, closed */
	case 4: return NVME_ZNS_ZS_FULL;        /* finished */
	default: return NVME_ZNS_ZS_EMPTY;
	}
}

static uint8_t state_after_power_cut(uint32_t i)
{
	switch (state_set(i)) {
	case NVME_ZNS_ZS_EXPL_OPEN: return NVME_ZNS_ZS_EMPTY; /* opened, nothing written */
	case NVME_ZNS_ZS_IMPL_OPEN: return NVME_ZNS_ZS_CLOSED;
	default: return state_set(i);
	}
}

static int setup(void **state)
{
	log_set_level(LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	cfg = (struct ns_config){
		.nsid = 1, .zoned = true, .lba_size = 4096, .size = (uint64_t)NZ * ZLBAS * 4096,
		.zone_size = ZLBAS * 4096, .zone_capacity = ZLBAS * 4096,
		.zone_append_max = 8 * 4096, .cross_zone_read = true, .journal_size = 64 << 20,
	};
	snprintf(cfg.path, sizeof(cfg.path), "%s/ns1", dir);
	seen = calloc(NZ, DESC);
	assert_non_null(seen);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(seen);
	return 0;
}

static struct ns *open_ns(bool format)
{
	struct ns *ns;
	char err[512];
	if (ns_open(&cfg, format, &ns, err, sizeof(err)))
		fail_msg("ns_open: %s", err);
	return ns;
}

/* Write Zeroes: it moves the write pointer as a write does, and leaves the
 * file without blocks to free (tens of thousands of scattered blocks make
 * the directory's removal slow on file systems mounted with discard). */
static void write_block(struct ns *ns, uint64_t lba)
{
	struct ns_write w;
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE_ZEROES, lba, 1), 0);
	uint16_t st = ns_write_data(ns, &w, NULL, 0);
	ns_write_end(ns, &w, st);
	assert_int_equal(st, 0);
}

/* Zone i into state_set(i), durably. */
static void shape_zones(struct ns *ns)
{
	for (uint32_t i = 0; i < NZ; i++) {
		uint64_t zslba = (uint64_t)i * ZLBAS;
		switch (state_set(i)) {
		case NVME_ZNS_ZS_EXPL_OPEN:
			assert_int_equal(ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_OPEN, false, NULL), 0);
			break;
		case NVME_ZNS_ZS_IMPL_OPEN:
			write_block(ns, zslba);
			break;
		case NVME_ZNS_ZS_CLOSED:
			write_block(ns, zslba);
			assert_int_equal(ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_CLOSE, false, NULL), 0);
			break;
		case NVME_ZNS_ZS_FULL:
			assert_int_equal(ns_zone_mgmt_send(ns, zslba, NVME_ZNS_ZSA_FINISH, false, NULL), 0);
			break;
		}
	}
	assert_int_equal(ns_sync_wait(ns), 0);
}

/* Page after page from where the last stopped, partial reports: returns
 * the number of commands; the descriptors land in seen[]. */
static uint32_t report_in_pages(struct ns *ns, uint8_t zrasf, uint32_t *count)
{
	static uint8_t page[PAGE];
	uint32_t n = 0, cmds = 0;
	uint64_t slba = 0;
	while (slba < (uint64_t)NZ * ZLBAS) {
		assert_int_equal(ns_zone_report(ns, slba, NVME_ZNS_ZRA_REPORT_ZONES, zrasf, true, page,
						sizeof(page)), 0);
		cmds++;
		const struct nvme_zone_report *r = (const void *)page;
		uint64_t got = le64toh(r->nr_zones);
		assert_true(got <= (sizeof(page) - HDR) / DESC);
		if (!got)
			break; /* nothing matches from slba on */
		assert_true(n + got <= NZ);
		memcpy(&seen[n], r->entries, got * DESC);
		n += (uint32_t)got;
		slba = le64toh(r->entries[got - 1].zslba) + ZLBAS;
	}
	*count = n;
	return cmds;
}

static void expect_zones(uint8_t (*state_of)(uint32_t), uint32_t n)
{
	assert_int_equal(n, NZ);
	for (uint32_t i = 0; i < NZ; i++) {
		uint64_t zslba = (uint64_t)i * ZLBAS, wp = le64toh(seen[i].wp);
		uint8_t s = state_of(i);
		if (le64toh(seen[i].zslba) != zslba || seen[i].zs >> 4 != s)
			fail_msg("descriptor %u: zone at LBA %llu in state %#x, expected %llu in %#x", i,
				 (unsigned long long)le64toh(seen[i].zslba), seen[i].zs >> 4,
				 (unsigned long long)zslba, s);
		assert_int_equal(le64toh(seen[i].zcap), ZLBAS);
		if (s == NVME_ZNS_ZS_IMPL_OPEN || s == NVME_ZNS_ZS_CLOSED)
			assert_int_equal(wp, zslba + 1);
		else if (s == NVME_ZNS_ZS_FULL)
			assert_int_equal(wp, zslba + ZLBAS);
		else
			assert_int_equal(wp, zslba);
	}
}

/* Only the Full zones, in order, with the count of matches from slba on
 * when the report is not partial. */
static void expect_filtered_full(struct ns *ns)
{
	uint32_t n;
	report_in_pages(ns, NVME_ZNS_ZRAS_REPORT_FULL, &n);
	uint32_t k = 0;
	for (uint32_t i = 0; i < NZ; i++) {
		if (state_set(i) != NVME_ZNS_ZS_FULL)
			continue;
		assert_true(k < n);
		assert_int_equal(le64toh(seen[k].zslba), (uint64_t)i * ZLBAS);
		k++;
	}
	assert_int_equal(k, n);

	uint8_t hdr[HDR + DESC];
	assert_int_equal(ns_zone_report(ns, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_FULL,
					false, hdr, sizeof(hdr)), 0);
	assert_int_equal(le64toh(((struct nvme_zone_report *)hdr)->nr_zones), n);
}

static void test_many_zones(void **state)
{
	struct ns *ns = open_ns(true);
	shape_zones(ns);

	uint32_t n, cmds = report_in_pages(ns, NVME_ZNS_ZRAS_REPORT_ALL, &n);
	expect_zones(state_set, n);
	assert_int_equal(cmds, (NZ + (PAGE - HDR) / DESC - 1) / ((PAGE - HDR) / DESC));

	/* The whole report in one buffer, not partial: the count is of every
	 * zone from the first on. */
	size_t len = HDR + (size_t)NZ * DESC;
	uint8_t *all = malloc(len);
	assert_non_null(all);
	assert_int_equal(ns_zone_report(ns, 0, NVME_ZNS_ZRA_REPORT_ZONES, NVME_ZNS_ZRAS_REPORT_ALL,
					false, all, len), 0);
	assert_int_equal(le64toh(((struct nvme_zone_report *)all)->nr_zones), NZ);
	memcpy(seen, all + HDR, (size_t)NZ * DESC);
	expect_zones(state_set, NZ);
	free(all);
	expect_filtered_full(ns);

	/* Power cut: the journal holds every transition above. */
	ns_abandon(ns);
	ns = open_ns(false);
	report_in_pages(ns, NVME_ZNS_ZRAS_REPORT_ALL, &n);
	expect_zones(state_after_power_cut, n);
	ns_close(ns);

	/* And after a clean close, from the checkpointed image alone. */
	ns = open_ns(false);
	report_in_pages(ns, NVME_ZNS_ZRAS_REPORT_ALL, &n);
	expect_zones(state_after_power_cut, n);
	ns_close(ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_zones, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
