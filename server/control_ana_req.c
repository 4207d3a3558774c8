/*
 * Parsing the control socket's ANA requests (control_ana.h). The words are
 * untrusted input: each is checked here, before anything acts on it.
 */
#include "control_ana.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ana.h"
#include "config.h"

#define USAGE "expected ana show, or ana set PORT GROUP STATE"

/* Decimal from 1 to max, nothing else. */
static int number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '1' || *s > '9')
		return -1;
	*out = strtoul(s, &end, 10);
	return *end || *out > max ? -1 : 0;
}

int control_ana_parse(int argc, char **argv, struct control_ana *a, char *err, size_t errlen)
{
	unsigned long v;

	memset(a, 0, sizeof(*a));
	if (argc == 2 && strcmp(argv[1], "show") == 0) {
		a->what = CONTROL_ANA_SHOW;
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "set") != 0) {
		snprintf(err, errlen, "ana: %s", USAGE);
		return -1;
	}
	a->what = CONTROL_ANA_SET;
	if (strchr(argv[2], ':')) {
		a->port_addr = argv[2];
	} else if (number(argv[2], 0xffff, &v) == 0) {
		a->portid = (uint16_t)v;
	} else {
		snprintf(err, errlen, "ana set: port \"%s\" is neither a port ID nor ADDR:PORT",
			 argv[2]);
		return -1;
	}
	if (number(argv[3], CFG_MAX_ANA_GROUPS, &v) != 0) {
		snprintf(err, errlen, "ana set: group \"%s\" is not a number in 1..%d", argv[3],
			 CFG_MAX_ANA_GROUPS);
		return -1;
	}
	a->group = (uint32_t)v;
	if (ana_state_parse(argv[4], &a->state) != 0) {
		snprintf(err, errlen, "ana set: state \"%s\" is not one of " ANA_STATE_NAMES,
			 argv[4]);
		return -1;
	}
	return 0;
}
