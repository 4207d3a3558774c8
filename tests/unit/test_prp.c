/*
 * PRP walking (server/core/prp.c) over a test double of guest memory: 64
 * pages at guest address GUEST_BASE. One page, two pages, PRP lists that
 * start inside a page and chain to further list pages, and hostile input:
 * misaligned PRP1 / PRP2 / entries / chain pointers, addresses and lists
 * outside guest memory, a list that points at itself, more pages than the
 * caller has iovecs for. Never a pointer outside the double's memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "nvme_wire.h"
#include "prp.h"

#define PAGE NVME_PAGE_SIZE
#define GUEST_PAGES 64u
#define GUEST_BASE 0x100000ull
#define MAX_IOV 257 /* 1 MiB from an offset: 257 pages */

static uint8_t guest[GUEST_PAGES * PAGE] __attribute__((aligned(4096)));

static void *guest_map(void *ctx, uint64_t addr, size_t len)
{
	(void)ctx;
	if (addr < GUEST_BASE || addr - GUEST_BASE > sizeof(guest) ||
	    len > sizeof(guest) - (addr - GUEST_BASE))
		return NULL;
	return guest + (addr - GUEST_BASE);
}

static const struct nvme_guest_mem gm = { .map = guest_map };

static uint64_t gpage(unsigned i)
{
	return GUEST_BASE + (uint64_t)i * PAGE;
}

/* Write entry i of the list that starts at guest address list. */
static void put_entry(uint64_t list, unsigned i, uint64_t val)
{
	uint64_t le = htole64(val);

	memcpy(guest + (list - GUEST_BASE) + (size_t)i * 8, &le, 8);
}

static uint16_t map(uint64_t prp1, uint64_t prp2, uint32_t len, struct iovec *iov, int *n)
{
	return nvme_prp_map(&gm, prp1, prp2, len, iov, MAX_IOV, n);
}

static void assert_in_guest(const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		assert_true(p >= guest && p + iov[i].iov_len <= guest + sizeof(guest));
	}
}

static void test_one_and_two_pages(void **state)
{
	struct iovec iov[MAX_IOV];
	int n;

	(void)state;
	assert_int_equal(map(gpage(3) + 0x10, 0, 100, iov, &n), 0);
	assert_int_equal(n, 1);
	assert_ptr_equal(iov[0].iov_base, guest + 3 * PAGE + 0x10);
	assert_int_equal(iov[0].iov_len, 100);
	/* Crossing into a second page: PRP2 is that page. */
	assert_int_equal(map(gpage(3) + 0x800, gpage(9), PAGE, iov, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(iov[0].iov_len, 0x800);
	assert_ptr_equal(iov[1].iov_base, guest + 9 * PAGE);
	assert_int_equal(iov[1].iov_len, 0x800);
	/* Nothing to move. */
	assert_int_equal(map(gpage(3), 0, 0, iov, &n), 0);
	assert_int_equal(n, 0);
}

static void test_lists(void **state)
{
	struct iovec iov[MAX_IOV];
	uint32_t total = 0;
	int n;

	(void)state;
	/* 5 pages and a bit from an offset: PRP1, then a list starting in
	 * the middle of page 20. */
	uint64_t list = gpage(20) + 0x100;
	for (unsigned i = 0; i < 5; i++)
		put_entry(list, i, gpage(30 + i));
	assert_int_equal(map(gpage(2) + 0xc00, list, 0x400 + 4 * PAGE + 10, iov, &n), 0);
	assert_int_equal(n, 6);
	assert_ptr_equal(iov[1].iov_base, guest + 30 * PAGE);
	assert_int_equal(iov[5].iov_len, 10);

	/* A list that starts two entries before its page's end: one data
	 * entry, then a chain to the next list page (page aligned). */
	list = gpage(21) + PAGE - 16;
	put_entry(list, 0, gpage(40));
	put_entry(list, 1, gpage(22));
	for (unsigned i = 0; i < 8; i++)
		put_entry(gpage(22), i, gpage(41 + i));
	assert_int_equal(map(gpage(1), list, 10 * PAGE, iov, &n), 0);
	assert_int_equal(n, 10);
	assert_ptr_equal(iov[1].iov_base, guest + 40 * PAGE);
	for (int i = 2; i < 10; i++)
		assert_ptr_equal(iov[i].iov_base, guest + (size_t)(41 + i - 2) * PAGE);
	for (int i = 0; i < n; i++)
		total += (uint32_t)iov[i].iov_len;
	assert_int_equal(total, 10 * PAGE);
}

static void test_hostile(void **state)
{
	struct iovec iov[MAX_IOV];
	uint16_t bad_off = nvme_err(NVME_SC_PRP_INVALID_OFFSET);
	uint16_t bad_addr = nvme_err(NVME_SC_DATA_XFER_ERROR);
	int n = -1;

	(void)state;
	/* PRP1 not dword aligned; PRP2 (a page) with an offset. */
	assert_int_equal(map(gpage(1) + 2, 0, 16, iov, &n), bad_off);
	assert_int_equal(n, 0);
	assert_int_equal(map(gpage(1), gpage(2) + 8, PAGE + 1, iov, &n), bad_off);
	/* Outside guest memory: PRP1, PRP2, the end of a page. */
	assert_int_equal(map(0x1000, 0, 16, iov, &n), bad_addr);
	assert_int_equal(map(gpage(GUEST_PAGES), 0, 16, iov, &n), bad_addr);
	assert_int_equal(map(gpage(1), GUEST_BASE + GUEST_PAGES * PAGE, PAGE + 1, iov, &n), bad_addr);
	assert_int_equal(map(~0ull & ~0xfffull, 0, 16, iov, &n), bad_addr);
	/* A list outside guest memory, misaligned, or with a bad entry. */
	assert_int_equal(map(gpage(1), 0x2000, 3 * PAGE, iov, &n), bad_addr);
	assert_int_equal(map(gpage(1), gpage(20) + 2, 3 * PAGE, iov, &n), bad_off);
	put_entry(gpage(20), 0, gpage(30));
	put_entry(gpage(20), 1, gpage(31) + 0x200);
	assert_int_equal(map(gpage(1), gpage(20), 3 * PAGE, iov, &n), bad_off);
	put_entry(gpage(20), 1, 0xdead0000);
	assert_int_equal(map(gpage(1), gpage(20), 3 * PAGE, iov, &n), bad_addr);
	/* A chain pointer that is not page aligned, or outside. */
	uint64_t list = gpage(21) + PAGE - 8;
	put_entry(list, 0, gpage(22) + 8);
	assert_int_equal(map(gpage(1), list, 3 * PAGE, iov, &n), bad_off);
	put_entry(list, 0, 0x7000000000ull);
	assert_int_equal(map(gpage(1), list, 3 * PAGE, iov, &n), bad_addr);

	/* A list page whose chain entry points at itself, all other entries
	 * at one data page: the walk goes round it twice, ends when the
	 * length runs out and hands out only guest memory. */
	static struct iovec many[1100];
	for (unsigned i = 0; i < 511; i++)
		put_entry(gpage(23), i, gpage(50));
	put_entry(gpage(23), 511, gpage(23));
	assert_int_equal(nvme_prp_map(&gm, gpage(1), gpage(23), 1000 * PAGE, many, 1100, &n), 0);
	assert_int_equal(n, 1000);
	assert_in_guest(many, n);
	assert_ptr_equal(many[999].iov_base, guest + 50 * PAGE);
	/* More pages than the caller has iovecs for. */
	assert_int_equal(nvme_prp_map(&gm, gpage(1), gpage(23), 256 * PAGE, iov, 100, &n),
			 nvme_err(NVME_SC_INVALID_FIELD));
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_and_two_pages),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
