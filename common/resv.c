/*
 * The reservation state machine (resv.h; NVMe Base 2.0, 8.1.22).
 */
#include "resv.h"

#include <endian.h>
#include <string.h>

#include <nvme/types.h>

#include "nvme_wire.h"

_Static_assert(sizeof(struct nvme_resv_status) == 64, "extended report header");
_Static_assert(sizeof(struct nvme_registered_ctrl_ext) == 64, "extended registrant entry");

#define CONFLICT nvme_err(NVME_SC_RESERVATION_CONFLICT)
#define INVALID  nvme_err(NVME_SC_INVALID_FIELD)

static int find_idx(const struct resv_state *s, const uint8_t host[16])
{
	for (int i = 0; i < s->nr; i++)
		if (!memcmp(s->regs[i].hostid, host, 16))
			return i;
	return -1;
}

const struct resv_reg *resv_find(const struct resv_state *s, const uint8_t host[16])
{
	int i = find_idx(s, host);

	return i < 0 ? NULL : &s->regs[i];
}

bool resv_is_holder(const struct resv_state *s, const uint8_t host[16])
{
	if (s->rtype == RESV_NONE || !resv_find(s, host))
		return false;
	return resv_all_registrants(s->rtype) || !memcmp(s->holder, host, 16);
}

static void note(struct resv_notes *out, const uint8_t host[16], uint8_t type)
{
	if (out->n < RESV_MAX_REGS) {
		memcpy(out->v[out->n].hostid, host, 16);
		out->v[out->n++].type = type;
	}
}

/* Reservation Released to every registrant but host (8.1.22.x: a
 * Registrants Only or All Registrants reservation released, or a
 * reservation whose type a preempt changed). */
static void note_released(const struct resv_state *s, const uint8_t host[16],
			  struct resv_notes *out)
{
	for (int i = 0; i < s->nr; i++)
		if (memcmp(s->regs[i].hostid, host, 16))
			note(out, s->regs[i].hostid, RESV_NOTE_RELEASED);
}

/* With an All Registrants type there is no one holder: none is kept. */
static void set_holder(struct resv_state *s, const uint8_t host[16], uint8_t rtype)
{
	s->rtype = rtype;
	if (resv_all_registrants(rtype))
		memset(s->holder, 0, 16);
	else
		memcpy(s->holder, host, 16);
}

static void release(struct resv_state *s)
{
	s->rtype = RESV_NONE;
	memset(s->holder, 0, 16);
}

/*
 * Take registrant i off. The holder of a Write Exclusive or Exclusive
 * Access reservation that goes releases it, silently; of a Registrants
 * Only one, with Reservation Released to the others. An All Registrants
 * reservation stays while any registrant is left.
 */
static void unregister(struct resv_state *s, int i, struct resv_notes *out)
{
	uint8_t host[16];

	memcpy(host, s->regs[i].hostid, 16);
	s->regs[i] = s->regs[--s->nr];
	memset(&s->regs[s->nr], 0, sizeof(s->regs[s->nr]));
	if (s->rtype == RESV_NONE)
		return;
	if (resv_all_registrants(s->rtype)) {
		if (!s->nr)
			release(s);
		return;
	}
	if (memcmp(s->holder, host, 16))
		return;
	bool tell = s->rtype == RESV_WE_RO || s->rtype == RESV_EA_RO;
	release(s);
	if (tell)
		note_released(s, host, out);
}

uint16_t resv_register(struct resv_state *s, const uint8_t host[16], uint8_t rrega, bool iekey,
		       uint8_t cptpl, uint64_t crkey, uint64_t nrkey, struct resv_notes *out)
{
	int i = find_idx(s, host);

	out->n = 0;
	if (cptpl == 1) /* reserved */
		return INVALID;
	switch (rrega) {
	case 0: /* Register: again with the same key is no change */
		if (i >= 0) {
			if (s->regs[i].key != nrkey)
				return CONFLICT;
			break;
		}
		if (s->nr >= RESV_MAX_REGS)
			return nvme_err(NVME_SC_INTERNAL);
		memcpy(s->regs[s->nr].hostid, host, 16);
		s->regs[s->nr++].key = nrkey;
		break;
	case 1: /* Unregister */
		if (i < 0 || (!iekey && s->regs[i].key != crkey))
			return CONFLICT;
		unregister(s, i, out);
		break;
	case 2: /* Replace */
		if (i < 0 || (!iekey && s->regs[i].key != crkey))
			return CONFLICT;
		s->regs[i].key = nrkey;
		break;
	default:
		return INVALID;
	}
	if (cptpl)
		s->ptpl = cptpl == 3;
	s->gen++;
	return 0;
}

/* Unregister every host but host whose key is key (all of them if
 * any_key); Registration Preempted to each. Returns how many went. */
static int preempt_regs(struct resv_state *s, const uint8_t host[16], uint64_t key, bool any_key,
			struct resv_notes *out)
{
	int n = 0;

	for (int i = 0; i < s->nr;) {
		if (memcmp(s->regs[i].hostid, host, 16) && (any_key || s->regs[i].key == key)) {
			note(out, s->regs[i].hostid, RESV_NOTE_REG_PREEMPTED);
			unregister(s, i, out);
			n++;
			continue; /* the last entry moved into i */
		}
		i++;
	}
	return n;
}

/*
 * Preempt (8.1.22.x "Preempting a reservation or registration"). The new
 * holder is set before the preempted go, so that unregistering the old
 * holder never releases what host now holds.
 */
static uint16_t preempt(struct resv_state *s, const uint8_t host[16], uint8_t rtype, uint64_t prkey,
			struct resv_notes *out)
{
	uint64_t own = resv_find(s, host)->key;
	uint8_t old = s->rtype;

	if (old == RESV_NONE) {
		/* No reservation: unregister the other hosts with PRKEY (the
		 * preempting host's own registration always stays). */
		return preempt_regs(s, host, prkey, false, out) || own == prkey ? 0 : CONFLICT;
	}
	if (resv_all_registrants(old)) {
		if (prkey == 0) { /* take it over, alone */
			set_holder(s, host, rtype);
			preempt_regs(s, host, 0, true, out);
			return 0;
		}
		return preempt_regs(s, host, prkey, false, out) ? 0 : CONFLICT;
	}
	/* PRKEY names the holder (host itself too: a change of type): host
	 * becomes the holder, the others with that key go. */
	const struct resv_reg *h = resv_find(s, s->holder);
	if (h && prkey == h->key) {
		set_holder(s, host, rtype);
		preempt_regs(s, host, prkey, false, out);
		if (old != rtype)
			note_released(s, host, out);
		return 0;
	}
	if (!prkey)
		return INVALID;
	return preempt_regs(s, host, prkey, false, out) ? 0 : CONFLICT;
}

uint16_t resv_acquire(struct resv_state *s, const uint8_t host[16], uint8_t racqa, bool iekey,
		      uint8_t rtype, uint64_t crkey, uint64_t prkey, struct resv_notes *out)
{
	const struct resv_reg *me = resv_find(s, host);
	struct resv_state before;
	uint16_t st;

	out->n = 0;
	/* IEKEY is obsolete for Acquire and Release since revision 1.3
	 * (RESCAP IEK_13): a host that sets it is refused. */
	if (iekey || rtype < RESV_WE || rtype > RESV_EA_AR || racqa > 2)
		return INVALID;
	if (!me || me->key != crkey)
		return CONFLICT;
	if (racqa == 0) {
		if (s->rtype == RESV_NONE) {
			set_holder(s, host, rtype);
			return 0;
		}
		return resv_is_holder(s, host) && s->rtype == rtype ? 0 : CONFLICT;
	}
	before = *s;
	st = preempt(s, host, rtype, prkey, out);
	if (st) {
		*s = before;
		out->n = 0;
		return st;
	}
	s->gen++;
	return 0;
}

uint16_t resv_release(struct resv_state *s, const uint8_t host[16], uint8_t rrela, bool iekey,
		      uint8_t rtype, uint64_t crkey, struct resv_notes *out)
{
	const struct resv_reg *me = resv_find(s, host);

	out->n = 0;
	if (iekey || rrela > 1)
		return INVALID;
	if (!me || me->key != crkey)
		return CONFLICT;
	if (rrela == 1) { /* Clear: everything goes, the others are told */
		for (int i = 0; i < s->nr; i++)
			if (memcmp(s->regs[i].hostid, host, 16))
				note(out, s->regs[i].hostid, RESV_NOTE_PREEMPTED);
		release(s);
		memset(s->regs, 0, sizeof(s->regs));
		s->nr = 0;
		s->gen++;
		return 0;
	}
	/* Release by a registrant that holds nothing: no effect, success. */
	if (!resv_is_holder(s, host))
		return 0;
	if (rtype != s->rtype)
		return INVALID;
	bool tell = s->rtype != RESV_WE && s->rtype != RESV_EA;
	release(s);
	if (tell)
		note_released(s, host, out);
	return 0;
}

void resv_set_ptpl(struct resv_state *s, bool ptpl)
{
	s->ptpl = ptpl;
}

bool resv_conflict(const struct resv_state *s, const uint8_t host[16], enum resv_access a)
{
	if (s->rtype == RESV_NONE || resv_is_holder(s, host))
		return false;
	bool reg = resv_find(s, host) != NULL;
	switch (s->rtype) {
	case RESV_WE:
		return a == RESV_ACCESS_WRITE;
	case RESV_EA:
		return true;
	case RESV_WE_RO:
	case RESV_WE_AR:
		return a == RESV_ACCESS_WRITE && !reg;
	case RESV_EA_RO:
	case RESV_EA_AR:
		return !reg;
	default:
		return false;
	}
}

void resv_report(const struct resv_state *s, void *buf, size_t len)
{
	struct nvme_resv_status hdr;
	uint8_t *p = buf;

	memset(buf, 0, len);
	memset(&hdr, 0, sizeof(hdr));
	hdr.gen = htole32(s->gen);
	hdr.rtype = s->rtype;
	hdr.regctl[0] = (uint8_t)s->nr;
	hdr.regctl[1] = (uint8_t)(s->nr >> 8);
	hdr.ptpls = s->ptpl;
	memcpy(p, &hdr, len < sizeof(hdr) ? len : sizeof(hdr));
	for (size_t i = 0; i < s->nr; i++) {
		struct nvme_registered_ctrl_ext e;
		size_t off = sizeof(hdr) + i * sizeof(e);

		if (off >= len)
			break;
		memset(&e, 0, sizeof(e));
		e.cntlid = htole16(0xffff);
		e.rcsts = resv_is_holder(s, s->regs[i].hostid);
		e.rkey = htole64(s->regs[i].key);
		memcpy(e.hostid, s->regs[i].hostid, 16);
		memcpy(p + off, &e, len - off < sizeof(e) ? len - off : sizeof(e));
	}
}

void resv_power_up(struct resv_state *s)
{
	if (s->ptpl)
		return;
	release(s);
	memset(s->regs, 0, sizeof(s->regs));
	s->nr = 0;
}
