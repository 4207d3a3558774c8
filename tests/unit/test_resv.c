/*
 * The reservation state machine (common/resv.c; NVMe Base 2.0, 8.1.22) by
 * hand: Register / Unregister / Replace with IEKEY and CPTPL, Acquire of
 * every type, Preempt in each case the spec names (no reservation, All
 * Registrants with and without PRKEY, the holder's key, another
 * registrant's key, no match), Release and Clear with the notifications
 * they owe, the generation counter, the access of holder / registrant /
 * non-registrant under each type, the extended report into short buffers,
 * and the power-up rule with and without PTPL.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "nvme_wire.h"
#include "resv.h"

#define CONFLICT nvme_err(NVME_SC_RESERVATION_CONFLICT)
#define INVALID  nvme_err(NVME_SC_INVALID_FIELD)

static const uint8_t A[16] = { 0xa }, B[16] = { 0xb }, C[16] = { 0xc }, D[16] = { 0xd };
static struct resv_notes notes;

static void reg(struct resv_state *s, const uint8_t *h, uint64_t key)
{
	assert_int_equal(resv_register(s, h, 0, false, 0, 0, key, &notes), 0);
}

static void acq(struct resv_state *s, const uint8_t *h, uint64_t key, uint8_t type)
{
	assert_int_equal(resv_acquire(s, h, 0, false, type, key, 0, &notes), 0);
}

/* A fresh state with A (key 1) and B (key 2) registered, and C (key 3)
 * too if with_c; holder (if not NULL, with its key) holds a reservation of
 * type t. */
static void start(struct resv_state *s, bool with_c, const uint8_t *holder, uint8_t t)
{
	memset(s, 0, sizeof(*s));
	reg(s, A, 1);
	reg(s, B, 2);
	if (with_c)
		reg(s, C, 3);
	if (holder)
		acq(s, holder, holder == A ? 1 : holder == B ? 2 : 3, t);
}

/* Whether notes holds (host, type). */
static bool noted(const uint8_t *h, uint8_t type)
{
	for (int i = 0; i < notes.n; i++)
		if (!memcmp(notes.v[i].hostid, h, 16) && notes.v[i].type == type)
			return true;
	return false;
}

static void test_register(void **state)
{
	struct resv_state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	reg(&s, A, 1);
	assert_int_equal(s.gen, 1);
	assert_non_null(resv_find(&s, A));
	/* Again with its key: no change, still a success that counts. */
	reg(&s, A, 1);
	assert_int_equal(s.nr, 1);
	assert_int_equal(s.gen, 2);
	/* Another key while registered: conflict, nothing changes. */
	assert_int_equal(resv_register(&s, A, 0, false, 0, 0, 2, &notes), CONFLICT);
	assert_int_equal(s.gen, 2);
	/* Replace needs the current key, unless IEKEY. */
	assert_int_equal(resv_register(&s, A, 2, false, 0, 9, 5, &notes), CONFLICT);
	assert_int_equal(resv_register(&s, A, 2, false, 0, 1, 5, &notes), 0);
	assert_int_equal(resv_find(&s, A)->key, 5);
	assert_int_equal(resv_register(&s, A, 2, true, 0, 0, 6, &notes), 0);
	assert_int_equal(resv_find(&s, A)->key, 6);
	/* Replace or Unregister by a host that is not registered. */
	assert_int_equal(resv_register(&s, B, 2, true, 0, 0, 6, &notes), CONFLICT);
	assert_int_equal(resv_register(&s, B, 1, true, 0, 0, 0, &notes), CONFLICT);
	/* Unregister: the key, or IEKEY. */
	reg(&s, B, 7);
	assert_int_equal(resv_register(&s, B, 1, false, 0, 6, 0, &notes), CONFLICT);
	assert_int_equal(resv_register(&s, B, 1, false, 0, 7, 0, &notes), 0);
	assert_null(resv_find(&s, B));
	assert_int_equal(resv_register(&s, A, 1, true, 0, 0, 0, &notes), 0);
	assert_int_equal(s.nr, 0);
	/* CPTPL: 01b reserved, 11b sets PTPL, 10b clears it, 00b keeps it. */
	assert_int_equal(resv_register(&s, A, 0, false, 1, 0, 1, &notes), INVALID);
	assert_null(resv_find(&s, A));
	assert_int_equal(resv_register(&s, A, 0, false, 3, 0, 1, &notes), 0);
	assert_true(s.ptpl);
	assert_int_equal(resv_register(&s, A, 2, false, 0, 1, 2, &notes), 0);
	assert_true(s.ptpl);
	assert_int_equal(resv_register(&s, A, 2, false, 2, 2, 3, &notes), 0);
	assert_false(s.ptpl);
	/* A reserved action. */
	assert_int_equal(resv_register(&s, A, 3, false, 0, 0, 0, &notes), INVALID);
}

static void test_register_limit(void **state)
{
	struct resv_state s;
	uint8_t h[16] = { 0 };

	(void)state;
	memset(&s, 0, sizeof(s));
	for (unsigned i = 0; i < RESV_MAX_REGS; i++) {
		h[0] = (uint8_t)i;
		h[1] = 1;
		reg(&s, h, i);
	}
	h[1] = 2;
	assert_int_equal(resv_register(&s, h, 0, false, 0, 0, 1, &notes),
			 nvme_err(NVME_SC_INTERNAL));
	assert_int_equal(s.nr, RESV_MAX_REGS);
}

static void test_acquire(void **state)
{
	(void)state;
	for (uint8_t t = RESV_WE; t <= RESV_EA_AR; t++) {
		struct resv_state s;

		memset(&s, 0, sizeof(s));
		/* Only a registrant with its key. */
		assert_int_equal(resv_acquire(&s, A, 0, false, t, 1, 0, &notes), CONFLICT);
		reg(&s, A, 1);
		reg(&s, B, 2);
		uint32_t gen = s.gen;
		assert_int_equal(resv_acquire(&s, A, 0, false, t, 2, 0, &notes), CONFLICT);
		/* IEKEY, a type out of range, a reserved action: Invalid Field. */
		assert_int_equal(resv_acquire(&s, A, 0, true, t, 1, 0, &notes), INVALID);
		assert_int_equal(resv_acquire(&s, A, 0, false, 0, 1, 0, &notes), INVALID);
		assert_int_equal(resv_acquire(&s, A, 0, false, 7, 1, 0, &notes), INVALID);
		assert_int_equal(resv_acquire(&s, A, 3, false, t, 1, 0, &notes), INVALID);
		acq(&s, A, 1, t);
		assert_int_equal(s.rtype, t);
		assert_true(resv_is_holder(&s, A));
		assert_int_equal(s.gen, gen); /* Acquire does not count */
		/* The holder again, same type: success; another type: conflict. */
		acq(&s, A, 1, t);
		assert_int_equal(resv_acquire(&s, A, 0, false, t == RESV_WE ? RESV_EA : RESV_WE, 1,
					      0, &notes), CONFLICT);
		/* Another registrant: only with All Registrants, where it holds
		 * it already, and only of that type. */
		if (resv_all_registrants(t)) {
			assert_true(resv_is_holder(&s, B));
			acq(&s, B, 2, t);
		} else {
			assert_false(resv_is_holder(&s, B));
			assert_int_equal(resv_acquire(&s, B, 0, false, t, 2, 0, &notes), CONFLICT);
		}
		assert_int_equal(s.rtype, t);
	}
}

/*
 * 8.1.22.1 Figure "Command Behavior in the Presence of a Reservation":
 * per type, may a registrant (not holder) read / write, may a
 * non-registrant read / write. The holder always may.
 */
static void test_access(void **state)
{
	static const struct { uint8_t t; bool rr, rw, nr, nw; } tab[] = {
		{ RESV_WE, true, false, true, false },
		{ RESV_EA, false, false, false, false },
		{ RESV_WE_RO, true, true, true, false },
		{ RESV_EA_RO, true, true, false, false },
		{ RESV_WE_AR, true, true, true, false },
		{ RESV_EA_AR, true, true, false, false },
	};
	struct resv_state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	reg(&s, A, 1);
	/* No reservation: nobody conflicts. */
	assert_false(resv_conflict(&s, C, RESV_ACCESS_WRITE));
	assert_false(resv_conflict(&s, C, RESV_ACCESS_READ));
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		memset(&s, 0, sizeof(s));
		reg(&s, A, 1);
		reg(&s, B, 2);
		acq(&s, A, 1, tab[i].t);
		assert_false(resv_conflict(&s, A, RESV_ACCESS_READ));
		assert_false(resv_conflict(&s, A, RESV_ACCESS_WRITE));
		assert_int_equal(resv_conflict(&s, B, RESV_ACCESS_READ), !tab[i].rr);
		assert_int_equal(resv_conflict(&s, B, RESV_ACCESS_WRITE), !tab[i].rw);
		assert_int_equal(resv_conflict(&s, C, RESV_ACCESS_READ), !tab[i].nr);
		assert_int_equal(resv_conflict(&s, C, RESV_ACCESS_WRITE), !tab[i].nw);
	}
}

static void test_release(void **state)
{
	(void)state;
	for (uint8_t t = RESV_WE; t <= RESV_EA_AR; t++) {
		struct resv_state s;

		start(&s, true, A, t);
		uint32_t gen = s.gen;
		assert_int_equal(resv_release(&s, A, 0, false, t, 9, &notes), CONFLICT);
		assert_int_equal(resv_release(&s, D, 0, false, t, 0, &notes), CONFLICT);
		assert_int_equal(resv_release(&s, A, 0, true, t, 1, &notes), INVALID);
		assert_int_equal(resv_release(&s, A, 2, false, t, 1, &notes), INVALID);
		/* The wrong type: Invalid Field, nothing released. */
		assert_int_equal(resv_release(&s, A, 0, false, t == RESV_WE ? RESV_EA : RESV_WE, 1,
					      &notes), INVALID);
		assert_int_equal(s.rtype, t);
		if (!resv_all_registrants(t)) {
			/* A registrant that holds nothing: success, no effect. */
			assert_int_equal(resv_release(&s, B, 0, false, t, 2, &notes), 0);
			assert_int_equal(s.rtype, t);
		}
		/* Any registrant releases an All Registrants reservation. */
		const uint8_t *by = resv_all_registrants(t) ? B : A;
		assert_int_equal(resv_release(&s, by, 0, false, t, by == A ? 1 : 2, &notes), 0);
		assert_int_equal(s.rtype, RESV_NONE);
		assert_int_equal(s.nr, 3);
		assert_int_equal(s.gen, gen);
		/* Reservation Released to the other registrants, except for
		 * Write Exclusive and Exclusive Access. */
		if (t == RESV_WE || t == RESV_EA) {
			assert_int_equal(notes.n, 0);
		} else {
			assert_int_equal(notes.n, 2);
			assert_false(noted(by, RESV_NOTE_RELEASED));
			assert_true(noted(by == A ? B : A, RESV_NOTE_RELEASED));
			assert_true(noted(C, RESV_NOTE_RELEASED));
		}
		/* Release with nothing held: success. */
		assert_int_equal(resv_release(&s, A, 0, false, t, 1, &notes), 0);
	}
}

static void test_clear(void **state)
{
	struct resv_state s;

	(void)state;
	start(&s, true, B, RESV_EA);
	uint32_t gen = s.gen;
	/* Any registrant clears, with its key. */
	assert_int_equal(resv_release(&s, C, 1, false, 0, 2, &notes), CONFLICT);
	assert_int_equal(resv_release(&s, C, 1, false, 0, 3, &notes), 0);
	assert_int_equal(s.nr, 0);
	assert_int_equal(s.rtype, RESV_NONE);
	assert_int_equal(s.gen, gen + 1);
	assert_int_equal(notes.n, 2);
	assert_true(noted(A, RESV_NOTE_PREEMPTED));
	assert_true(noted(B, RESV_NOTE_PREEMPTED));
}

/* An unregistering holder: WE/EA released silently, Registrants Only with
 * a notice, All Registrants kept until the last registrant goes. */
static void test_unregister_holder(void **state)
{
	(void)state;
	for (uint8_t t = RESV_WE; t <= RESV_EA_AR; t++) {
		struct resv_state s;

		start(&s, false, A, t);
		assert_int_equal(resv_register(&s, A, 1, false, 0, 1, 0, &notes), 0);
		if (resv_all_registrants(t)) {
			assert_int_equal(s.rtype, t);
			assert_true(resv_is_holder(&s, B));
			assert_int_equal(notes.n, 0);
			assert_int_equal(resv_register(&s, B, 1, false, 0, 2, 0, &notes), 0);
			assert_int_equal(s.rtype, RESV_NONE);
		} else {
			assert_int_equal(s.rtype, RESV_NONE);
			assert_int_equal(notes.n, t == RESV_WE_RO || t == RESV_EA_RO);
			if (notes.n)
				assert_true(noted(B, RESV_NOTE_RELEASED));
		}
	}
}

static void test_preempt(void **state)
{
	struct resv_state s;
	uint32_t gen;

	(void)state;
	/* No reservation: the registrants with PRKEY go; none: conflict. */
	memset(&s, 0, sizeof(s));
	reg(&s, A, 1);
	reg(&s, B, 2);
	reg(&s, C, 2);
	gen = s.gen;
	assert_int_equal(resv_acquire(&s, A, 1, false, RESV_WE, 1, 7, &notes), CONFLICT);
	assert_int_equal(s.gen, gen);
	assert_int_equal(resv_acquire(&s, A, 1, false, RESV_WE, 1, 2, &notes), 0);
	assert_int_equal(s.nr, 1);
	assert_int_equal(s.rtype, RESV_NONE);
	assert_int_equal(s.gen, gen + 1);
	assert_true(noted(B, RESV_NOTE_REG_PREEMPTED));
	assert_true(noted(C, RESV_NOTE_REG_PREEMPTED));

	/* The holder's key: the preempting host holds it, with its type; the
	 * old holder is unregistered and told; a type change tells the rest. */
	start(&s, true, A, RESV_WE);
	assert_int_equal(resv_acquire(&s, B, 2, false, RESV_EA_RO, 2, 1, &notes), 0);
	assert_true(resv_is_holder(&s, B));
	assert_int_equal(s.rtype, RESV_EA_RO);
	assert_null(resv_find(&s, A));
	assert_true(noted(A, RESV_NOTE_REG_PREEMPTED));
	assert_true(noted(C, RESV_NOTE_RELEASED));
	assert_false(noted(B, RESV_NOTE_RELEASED));
	/* Another registrant's key: it goes, the reservation stays. */
	reg(&s, D, 4);
	assert_int_equal(resv_acquire(&s, C, 2, false, RESV_WE, 3, 4, &notes), 0);
	assert_null(resv_find(&s, D));
	assert_true(resv_is_holder(&s, B));
	assert_int_equal(s.rtype, RESV_EA_RO);
	/* PRKEY 0 that is not the holder's: Invalid Field; no match: conflict. */
	assert_int_equal(resv_acquire(&s, C, 1, false, RESV_WE, 3, 0, &notes), INVALID);
	assert_int_equal(resv_acquire(&s, C, 1, false, RESV_WE, 3, 99, &notes), CONFLICT);
	/* The holder preempts itself: a new type, same holder. */
	assert_int_equal(resv_acquire(&s, B, 1, false, RESV_WE, 2, 2, &notes), 0);
	assert_true(resv_is_holder(&s, B));
	assert_int_equal(s.rtype, RESV_WE);
	assert_true(noted(C, RESV_NOTE_RELEASED));
	/* Preempt and Abort acts as Preempt. */
	assert_int_equal(resv_acquire(&s, C, 2, false, RESV_EA, 3, 2, &notes), 0);
	assert_true(resv_is_holder(&s, C));
	assert_int_equal(s.nr, 1);

	/* All Registrants: PRKEY 0 takes it over alone; a key only unregisters. */
	start(&s, true, A, RESV_WE_AR);
	assert_int_equal(resv_acquire(&s, B, 1, false, RESV_EA_AR, 2, 3, &notes), 0);
	assert_null(resv_find(&s, C));
	assert_int_equal(s.rtype, RESV_WE_AR);
	assert_int_equal(resv_acquire(&s, B, 1, false, RESV_EA_AR, 2, 9, &notes), CONFLICT);
	assert_int_equal(resv_acquire(&s, B, 1, false, RESV_EA, 2, 0, &notes), 0);
	assert_int_equal(s.rtype, RESV_EA);
	assert_int_equal(s.nr, 1);
	assert_true(resv_is_holder(&s, B));
	assert_true(noted(A, RESV_NOTE_REG_PREEMPTED));
}

static void test_report(void **state)
{
	struct resv_state s;
	uint8_t buf[64 * 5];
	struct nvme_resv_status *h = (void *)buf;
	struct nvme_registered_ctrl_ext *e = (void *)(buf + 64);

	(void)state;
	memset(&s, 0, sizeof(s));
	reg(&s, A, 0x1111);
	reg(&s, B, 0x2222);
	assert_int_equal(resv_register(&s, C, 0, false, 3, 0, 0x3333, &notes), 0);
	acq(&s, B, 0x2222, RESV_WE);
	memset(buf, 0xee, sizeof(buf));
	resv_report(&s, buf, sizeof(buf));
	assert_int_equal(le32toh(h->gen), 3);
	assert_int_equal(h->rtype, RESV_WE);
	assert_int_equal(h->regctl[0] | h->regctl[1] << 8, 3);
	assert_int_equal(h->ptpls, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(le16toh(e[i].cntlid), 0xffff);
		assert_int_equal(e[i].rcsts, !memcmp(e[i].hostid, B, 16));
	}
	assert_int_equal(le64toh(e[1].rkey), 0x2222);
	assert_memory_equal(e[0].hostid, A, 16);
	for (size_t i = 64 * 4; i < sizeof(buf); i++) /* past the last entry */
		assert_int_equal(buf[i], 0);
	/* A buffer for the header and one entry and a half: REGCTL still
	 * counts three; what does not fit is not written. */
	memset(buf, 0xee, sizeof(buf));
	resv_report(&s, buf, 64 + 64 + 32);
	assert_int_equal(h->regctl[0], 3);
	assert_memory_equal(e[1].hostid, B, 16);
	assert_int_equal(buf[64 + 64 + 32], 0xee);
	/* Shorter than the header. */
	memset(buf, 0xee, sizeof(buf));
	resv_report(&s, buf, 5);
	assert_int_equal(le32toh(h->gen), 3);
	assert_int_equal(h->rtype, RESV_WE);
	assert_int_equal(buf[5], 0xee);
	/* All Registrants: every registrant holds it. */
	assert_int_equal(resv_release(&s, B, 0, false, RESV_WE, 0x2222, &notes), 0);
	acq(&s, A, 0x1111, RESV_EA_AR);
	resv_report(&s, buf, sizeof(buf));
	for (int i = 0; i < 3; i++)
		assert_int_equal(e[i].rcsts, 1);
}

static void test_power_up(void **state)
{
	struct resv_state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	reg(&s, A, 1);
	acq(&s, A, 1, RESV_EA);
	resv_power_up(&s);
	assert_int_equal(s.nr, 0);
	assert_int_equal(s.rtype, RESV_NONE);
	assert_int_equal(resv_register(&s, A, 0, false, 3, 0, 1, &notes), 0);
	acq(&s, A, 1, RESV_EA);
	resv_power_up(&s);
	assert_int_equal(s.nr, 1);
	assert_int_equal(s.rtype, RESV_EA);
	assert_true(resv_is_holder(&s, A));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_register_limit),
		cmocka_unit_test(test_acquire),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_unregister_holder),
		cmocka_unit_test(test_preempt),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_power_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
