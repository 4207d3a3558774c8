/*
 * A Select All Reset when the list of every zone it holds cannot be
 * allocated: it falls back to holding RESET_HELD (64) zones at a time, one
 * commit each (common/ns.c, ns_zone_mgmt_apply). Linked with
 * -Wl,--wrap=malloc: the test fails the one allocation of that list's size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nvme/types.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ns.h"
#include "ns_stats.h"
#include "nvme_wire.h"
#include "../lib/ns_fixture.h"

#define NZ 200
#define ZLBAS 16 /* 4 KiB LBAs per zone */
#define BS 4096u

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

/* The size of the next allocation to fail, once; 0: none. */
static size_t fail_size;

void *__wrap_malloc(size_t size)
{
	size_t want = size; /* a failed exchange overwrites it */
	if (size && __atomic_compare_exchange_n(&fail_size, &want, 0, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
		return NULL;
	return __real_malloc(size);
}

static void write_blocks(struct ns *ns, uint64_t slba, uint32_t nlb, uint8_t fill)
{
	uint8_t buf[2 * BS];
	memset(buf, fill, sizeof(buf));
	struct iovec iov = { buf, (size_t)nlb * BS };
	struct ns_write w;
	assert_true(nlb <= 2);
	assert_int_equal(ns_write_begin(ns, &w, NS_WRITE, slba, nlb), 0);
	assert_int_equal(ns_write_data(ns, &w, &iov, 1), 0);
	ns_write_end(ns, &w, 0);
}

static uint8_t zone_state(struct ns *ns, uint32_t zone)
{
	uint8_t buf[128];
	struct nvme_zns_desc d;
	assert_int_equal(ns_zone_report(ns, (uint64_t)zone * ZLBAS, NVME_ZNS_ZRA_REPORT_ZONES, 0,
					true, buf, sizeof(buf)), 0);
	memcpy(&d, buf + 64, sizeof(d));
	return d.zs >> 4;
}

/* Every zone reset, in four commits (64 + 64 + 64 + 8 zones), durable: a
 * crash brings them back Empty, and they take writes again. */
static void test_select_all_reset_without_memory(void **state)
{
	(void)state;
	struct ns_fixture *f = ns_fixture_new("rfallback", NZ, ZLBAS, true);
	ns_fixture_open(f, false);
	const struct ns_stats *s = ns_stats(f->ns);
	for (uint32_t z = 0; z < NZ; z++)
		write_blocks(f->ns, (uint64_t)z * ZLBAS, 1 + z % 2, 0x5a);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	uint64_t commits = s->commits;

	__atomic_store_n(&fail_size, NZ * sizeof(uint32_t), __ATOMIC_RELEASE);
	assert_int_equal(ns_zone_mgmt_apply(f->ns, 0, NVME_ZNS_ZSA_RESET, true, NULL), 0);
	assert_int_equal(__atomic_load_n(&fail_size, __ATOMIC_ACQUIRE), 0); /* it was asked for */
	assert_int_equal(s->commits, commits + 4);
	for (uint32_t z = 0; z < NZ; z++)
		assert_int_equal(zone_state(f->ns, z), NVME_ZNS_ZS_EMPTY);

	ns_abandon(f->ns); /* a power cut */
	ns_fixture_open(f, false);
	for (uint32_t z = 0; z < NZ; z++)
		assert_int_equal(zone_state(f->ns, z), NVME_ZNS_ZS_EMPTY);
	write_blocks(f->ns, 0, 1, 0x5b);
	assert_int_equal(ns_sync_wait(f->ns), 0);
	ns_fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_all_reset_without_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
