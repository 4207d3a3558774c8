/*
 * libFuzzer target for the reservation state file's decoder
 * (common/resv_store.c, format in include/resv_store.h; `make fuzz`).
 *
 * The input is a resv.state file's bytes. Checked on every input: no crash
 * or sanitizer report; a refusal comes with a reason; an accepted file
 * gives a state the rest of the code may trust (registrants within
 * RESV_MAX_REGS and unique, a known type, a registered holder for types
 * 1..4, a registrant for the All Registrants types, nothing kept without
 * PTPL), which encodes and decodes back to itself, and on which the report
 * and every action run.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resv_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_state(const struct resv_state *s)
{
	assert(s->nr <= RESV_MAX_REGS);
	assert(s->rtype <= RESV_EA_AR);
	for (unsigned i = 0; i < s->nr; i++)
		for (unsigned j = 0; j < i; j++)
			assert(memcmp(s->regs[i].hostid, s->regs[j].hostid, 16));
	if (s->rtype != RESV_NONE && !resv_all_registrants(s->rtype))
		assert(resv_find(s, s->holder));
	if (resv_all_registrants(s->rtype))
		assert(s->nr > 0);
	if (!s->ptpl)
		assert(s->nr == 0 && s->rtype == RESV_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[RESV_FILE_MAX];
	static struct resv_state s, t;
	static struct resv_notes n;
	static uint8_t report[64 * 8];
	const char *why = NULL;

	if (resv_decode(data, size, &s, &why)) {
		assert(why);
		return 0;
	}
	check_state(&s);
	size_t len = resv_encode(&s, buf);
	assert(resv_decode(buf, len, &t, &why) == 0);
	assert(t.gen == s.gen && t.rtype == s.rtype && t.ptpl == s.ptpl && t.nr == s.nr);
	assert(!memcmp(t.regs, s.regs, sizeof(s.regs[0]) * s.nr));
	resv_report(&s, report, sizeof(report));
	/* Each action from the first registrant (or a stranger), then again
	 * a valid state. */
	const uint8_t *h = s.nr ? s.regs[0].hostid : (const uint8_t[16]){ 1 };
	uint64_t k = s.nr ? s.regs[0].key : 0;
	t = s;
	resv_acquire(&t, h, 1, false, RESV_EA, k, s.nr > 1 ? s.regs[1].key : 0, &n);
	check_state(&t);
	t = s;
	resv_register(&t, h, 1, false, 0, k, 0, &n);
	check_state(&t);
	t = s;
	resv_release(&t, h, 0, false, s.rtype, k, &n);
	check_state(&t);
	return 0;
}
