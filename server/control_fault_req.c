/*
 * The syntax of the fault injection requests (control_fault.h): words of an
 * untrusted line, each number checked for its range and read whole.
 */
#include "control_fault.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "nvme_wire.h"

/* A whole decimal or 0x-hex number in [0, max]: no sign, no blank, no rest. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;

	/* Base 16 after 0x, else 10: never strtoull's base 0, which reads a
	 * leading 0 as octal ("010" is 8, "09" an error). */
	if (!(hex ? isxdigit((unsigned char)*digits) : *digits >= '0' && *digits <= '9'))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, max, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "A" or "A+B" (B: count, default 1, at least 1). */
static int parse_range(const char *s, uint64_t *at, uint64_t *n)
{
	char buf[48];
	const char *plus = strchr(s, '+');

	*n = 1;
	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	if (plus) {
		buf[plus - s] = '\0';
		if (parse_u64(plus + 1, UINT64_MAX, n) || !*n)
			return -1;
	}
	if (parse_u64(buf, UINT64_MAX, at) || *n > UINT64_MAX - *at)
		return -1;
	return 0;
}

/* "read,write,..." -> INJECT_* bits. */
static int parse_ops(const char *s, uint32_t *ops)
{
	*ops = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		uint32_t bit = 0;

		for (uint32_t b = 1; b <= INJECT_ALL_OPS; b <<= 1)
			if (strlen(inject_op_name(b)) == n && !strncmp(s, inject_op_name(b), n))
				bit = b;
		if (!bit || (*ops & bit))
			return -1;
		*ops |= bit;
		s += n;
		if (*s == ',' && !*++s)
			return -1; /* a trailing comma */
	}
	return *ops ? 0 : -1;
}

/* "SCT:SC", both numbers (NVMe Base 2.0, 4.6.1.2: SCT is 3 bits, SC 8). */
static int parse_status(const char *s, uint16_t *st)
{
	char buf[16];
	const char *colon = strchr(s, ':');
	uint32_t sct, sc;

	if (!colon || strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	buf[colon - s] = '\0';
	if (parse_u32(buf, 7, &sct) || parse_u32(colon + 1, 0xff, &sc) || (!sct && !sc))
		return -1;
	*st = NVME_STATUS(sct, sc);
	return 0;
}

/* A number with its unit: us, ms or s; more than 0, at most INJECT_MAX_DELAY_US. */
static int parse_delay(const char *s, uint32_t *us)
{
	static const struct { const char *unit; uint32_t mul; } units[] = {
		{ "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
	};
	size_t digits = strspn(s, "0123456789");
	char buf[16];
	uint64_t v;

	if (!digits || digits >= sizeof(buf))
		return -1;
	memcpy(buf, s, digits);
	buf[digits] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(s + digits, units[i].unit)) {
			if (parse_u64(buf, INJECT_MAX_DELAY_US / units[i].mul, &v) || !v)
				return -1;
			*us = (uint32_t)v * units[i].mul;
			return 0;
		}
	return -1;
}

/* "1", "0.5", "0.000001" (at most six decimals): a chance in millionths. */
static int parse_prob(const char *s, uint32_t *ppm)
{
	uint32_t v = 0, scale = INJECT_PPM;

	if (*s != '0' && *s != '1')
		return -1;
	v = (uint32_t)(*s++ - '0') * INJECT_PPM;
	if (*s == '.') {
		if (!*++s)
			return -1;
		for (; *s; s++) {
			if (*s < '0' || *s > '9' || scale == 1)
				return -1;
			scale /= 10;
			v += (uint32_t)(*s - '0') * scale;
		}
	}
	if (*s || !v || v > INJECT_PPM)
		return -1;
	*ppm = v;
	return 0;
}

static int bad(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return -1;
}

static int parse_target(char **argv, struct control_fault *f, char *err, size_t errlen)
{
	f->nqn = argv[0];
	if (parse_u32(argv[1], 0xfffffffe, &f->nsid) || !f->nsid)
		return bad(err, errlen, "\"%s\": expected a namespace ID", argv[1]);
	return 0;
}

/* zone offline|read-only NQN NSID ZSLBA [NZONES] */
static int parse_zone(int argc, char **argv, struct control_fault *f, char *err, size_t errlen)
{
	uint64_t n = 1;

	if (argc < 5 || argc > 6)
		return bad(err, errlen, "%s: expected offline|read-only NQN NSID ZSLBA [NZONES]",
			   "zone");
	if (!strcmp(argv[1], "offline"))
		f->zone_state = NVME_ZNS_ZS_OFFLINE;
	else if (!strcmp(argv[1], "read-only"))
		f->zone_state = NVME_ZNS_ZS_READ_ONLY;
	else
		return bad(err, errlen, "zone: \"%s\": expected offline or read-only", argv[1]);
	if (parse_target(argv + 2, f, err, errlen))
		return -1;
	if (parse_u64(argv[4], UINT64_MAX, &f->zslba))
		return bad(err, errlen, "zone: \"%s\": expected the zone's start LBA", argv[4]);
	if (argc == 6 && (parse_u64(argv[5], UINT32_MAX, &n) || !n))
		return bad(err, errlen, "zone: \"%s\": expected a number of zones", argv[5]);
	f->nr_zones = (uint32_t)n;
	return 0;
}

/* One KEY=VALUE word of inject error|delay; seen: the keys already given. */
static int parse_option(const char *w, struct control_fault *f, unsigned *seen, char *err,
			size_t errlen)
{
	static const char *const keys[] = { "op", "lba", "zone", "status", "dnr", "delay",
					    "count", "prob", "seed" };
	struct inject_rule *r = &f->rule;
	const char *eq = strchr(w, '='), *v = eq ? eq + 1 : NULL;
	size_t k = 0, nk = sizeof(keys) / sizeof(keys[0]);
	int rc = -1;

	while (eq && k < nk && (strlen(keys[k]) != (size_t)(eq - w) ||
				strncmp(w, keys[k], (size_t)(eq - w))))
		k++;
	if (!eq || k == nk)
		return bad(err, errlen, "inject: unexpected \"%s\" (expected op=, lba=, zone=, "
			   "status=, dnr=, delay=, count=, prob= or seed=)", w);
	/* lba= and zone= are one setting: the range. */
	unsigned bit = 1u << (k == 2 ? 1 : k);
	if (*seen & bit)
		return bad(err, errlen, "inject: \"%s\": the range or option is given twice", w);
	*seen |= bit;
	switch (k) {
	case 0:
		rc = parse_ops(v, &r->ops);
		break;
	case 1:
	case 2:
		f->zone_range = k == 2;
		rc = parse_range(v, &r->slba, &r->nlb);
		break;
	case 3:
		rc = parse_status(v, &r->status);
		break;
	case 4:
		rc = strcmp(v, "yes") && strcmp(v, "no") ? -1 : 0; /* applied after the loop */
		break;
	case 5:
		rc = parse_delay(v, &r->delay_us);
		break;
	case 6:
		rc = parse_u32(v, UINT32_MAX, &r->count) || !r->count ? -1 : 0;
		break;
	case 7:
		rc = parse_prob(v, &r->ppm);
		break;
	case 8:
		rc = parse_u64(v, UINT64_MAX, &r->seed);
		f->seeded = true;
		break;
	}
	if (rc)
		return bad(err, errlen, "inject: \"%s\": bad value (doc/fault-injection.md)", w);
	return 0;
}

/* inject error|delay NQN NSID KEY=VALUE... */
static int parse_inject_add(int argc, char **argv, struct control_fault *f, char *err,
			    size_t errlen)
{
	bool error = !strcmp(argv[1], "error");
	bool dnr = true;
	unsigned seen = 0;

	if (argc < 4)
		return bad(err, errlen, "inject %s: expected NQN NSID and options", argv[1]);
	if (parse_target(argv + 2, f, err, errlen))
		return -1;
	f->what = CONTROL_INJECT_ADD;
	f->rule.ops = INJECT_ALL_OPS;
	f->rule.ppm = INJECT_PPM;
	for (int i = 4; i < argc; i++) {
		if (parse_option(argv[i], f, &seen, err, errlen))
			return -1;
		if (!strcmp(argv[i], "dnr=no"))
			dnr = false;
	}
	/* The status word takes DNR (bit 14) unless dnr=no, wherever it came. */
	if (f->rule.status) {
		f->rule.status &= (uint16_t)~NVME_STATUS_DNR;
		if (dnr)
			f->rule.status |= NVME_STATUS_DNR;
	} else if (!dnr) {
		return bad(err, errlen, "inject %s: dnr= without status=", argv[1]);
	}
	if (error && !f->rule.status)
		return bad(err, errlen, "inject %s: expected status=SCT:SC", argv[1]);
	if (!error && !f->rule.delay_us)
		return bad(err, errlen, "inject %s: expected delay=TIME (us, ms or s)", argv[1]);
	return 0;
}

static int parse_inject(int argc, char **argv, struct control_fault *f, char *err, size_t errlen)
{
	uint32_t id;

	if (argc >= 2 && (!strcmp(argv[1], "error") || !strcmp(argv[1], "delay")))
		return parse_inject_add(argc, argv, f, err, errlen);
	if (argc == 2 && !strcmp(argv[1], "list")) {
		f->what = CONTROL_INJECT_LIST;
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "clear")) {
		f->what = CONTROL_INJECT_CLEAR;
		if (!strcmp(argv[2], "all"))
			return 0;
		if (parse_u32(argv[2], UINT32_MAX, &id) || !id)
			return bad(err, errlen, "inject clear: \"%s\": expected an ID or all", argv[2]);
		f->clear_id = id;
		return 0;
	}
	return bad(err, errlen, "%s: expected error, delay, list or clear ID|all", "inject");
}

int control_fault_parse(int argc, char **argv, struct control_fault *f, char *err,
			size_t errlen)
{
	memset(f, 0, sizeof(*f));
	if (!strcmp(argv[0], "zone"))
		return parse_zone(argc, argv, f, err, errlen);
	return parse_inject(argc, argv, f, err, errlen);
}
