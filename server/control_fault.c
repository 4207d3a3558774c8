/*
 * The control socket's fault injection requests (control_fault.h,
 * doc/fault-injection.md), acted on: zones taken Read Only or Offline
 * through the zone engine and its journal, and injection rules added to,
 * listed from and cleared from the table the I/O path consults (inject.h).
 * They run on the main loop, one at a time, like every control request.
 */
#include "control_fault.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <nvme/types.h>

#include "log.h"
#include "ns.h"
#include "subsys.h"

static bool say(char *reply, size_t len, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool say(char *reply, size_t len, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reply, len, fmt, ap);
	va_end(ap);
	return ok;
}

/* The namespace f names, with its subsystem held (subsys_put when done). */
static struct ns *find_ns(const struct control_fault *f, struct subsys **s, char *reply,
			  size_t len)
{
	struct ns *ns;

	*s = subsys_find(f->nqn);
	if (!*s || (*s)->discovery) {
		say(reply, len, false, "no subsystem %s", f->nqn);
	} else if (!(ns = subsys_ns(*s, f->nsid))) {
		say(reply, len, false, "%s has no namespace %u", f->nqn, f->nsid);
	} else {
		return ns;
	}
	if (*s)
		subsys_put(*s);
	*s = NULL;
	return NULL;
}

bool control_fault_zone(const struct control_fault *f, char *reply, size_t len)
{
	const char *what = f->zone_state == NVME_ZNS_ZS_OFFLINE ? "offline" : "read-only";
	struct subsys *s;
	struct ns *ns = find_ns(f, &s, reply, len);
	char err[256];
	bool ok;

	if (!ns)
		return false;
	int n = ns_zone_fail(ns, f->zslba, f->nr_zones, f->zone_state, err, sizeof(err));
	if (n < 0) {
		ok = say(reply, len, false, "%s", err);
	} else {
		/* Every controller that sees the namespace: Zone Descriptor
		 * Changed, and the zones in its Changed Zone List (ZNS 5.5). */
		if (n)
			subsys_zone_desc_changed(ns);
		log_warn("%s namespace %u: %d zone(s) from LBA %llu taken %s by the operator",
			 f->nqn, f->nsid, n, (unsigned long long)f->zslba, what);
		ok = say(reply, len, true, "%d zone(s) taken %s", n, what);
	}
	subsys_put(s);
	return ok;
}

/* inject error|delay: the rule's range in LBAs, checked against the namespace. */
static bool inject_add_rule(const struct control_fault *f, char *reply, size_t len)
{
	struct inject_rule r = f->rule;
	struct subsys *s;
	struct ns *ns = find_ns(f, &s, reply, len);

	if (!ns)
		return false;
	const struct ns_info *in = ns_info(ns);
	snprintf(r.nqn, sizeof(r.nqn), "%s", s->nqn);
	r.nsid = f->nsid;
	subsys_put(s);
	if (f->zone_range) {
		if (!in->zoned)
			return say(reply, len, false, "namespace %u is not zoned: use lba=", f->nsid);
		uint64_t nz = in->nr_zones;
		if (r.slba & (in->zone_size - 1) || r.slba >= in->nlbas ||
		    r.nlb > nz - r.slba / in->zone_size)
			return say(reply, len, false, "zone=%llu+%llu: not zone starts of namespace "
				   "%u (zone size %llu LBAs, %u zones)", (unsigned long long)r.slba,
				   (unsigned long long)r.nlb, f->nsid,
				   (unsigned long long)in->zone_size, in->nr_zones);
		r.nlb *= in->zone_size;
	} else if (r.nlb && (r.slba >= in->nlbas || r.nlb > in->nlbas - r.slba)) {
		return say(reply, len, false, "lba=%llu+%llu: past the end of namespace %u (%llu "
			   "LBAs)", (unsigned long long)r.slba, (unsigned long long)r.nlb, f->nsid,
			   (unsigned long long)in->nlbas);
	}
	if (!f->seeded && getrandom(&r.seed, sizeof(r.seed), 0) != sizeof(r.seed))
		return say(reply, len, false, "getrandom failed");
	int id = inject_add(&r);
	if (id < 0)
		return say(reply, len, false, "%d injections in place already: clear one first",
			   INJECT_MAX_RULES);
	log_warn("injection #%d on %s namespace %u added by the operator", id, r.nqn, r.nsid);
	return say(reply, len, true, "%d", id);
}

bool control_fault_inject(const struct control_fault *f, char *reply, size_t len)
{
	uint32_t n;

	switch (f->what) {
	case CONTROL_INJECT_ADD:
		return inject_add_rule(f, reply, len);
	case CONTROL_INJECT_LIST: /* the rules themselves: inject_print() */
		return say(reply, len, true, "%u injection(s)", inject_count());
	case CONTROL_INJECT_CLEAR:
		n = inject_clear(f->clear_id);
		if (f->clear_id && !n)
			return say(reply, len, false, "no injection #%u", f->clear_id);
		log_info("%u injection(s) cleared by the operator", n);
		return say(reply, len, true, "%u cleared", n);
	}
	return say(reply, len, false, "unknown inject request");
}
