/*
 * znstgt-ctl inspect / check (ctl_offline.h): argument parsing around
 * ns_inspect() and ns_check() (common/ns_inspect.c), which do the work.
 */
#include "ctl_offline.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ns_inspect.h"

bool ctl_offline_command(const char *cmd)
{
	return strcmp(cmd, "inspect") == 0 || strcmp(cmd, "check") == 0;
}

static int number(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int usage(const char *cmd)
{
	if (strcmp(cmd, "check") == 0)
		fprintf(stderr, "usage: znstgt-ctl check [--json] DIR\n");
	else
		fprintf(stderr, "usage: znstgt-ctl inspect [--json] [--journal] [--zones FILTER] "
			"[--slba LBA] [--count N] DIR\n  FILTER: all, empty, open, implicitly-open, "
			"explicitly-open, closed, full, read-only, offline\n");
	return 2;
}

int ctl_offline_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "journal", no_argument, NULL, 'J' },
		{ "zones", required_argument, NULL, 'z' },
		{ "slba", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	bool check = strcmp(cmd, "check") == 0;
	struct ns_inspect_opts o = { .filter = NS_ZF_ALL };
	char err[1024];
	int c;

	/* The daemon's recovery runs here on a copy: its warnings repeat
	 * what the findings say. */
	log_set_level(LOG_ERROR);
	optind = 0; /* GNU getopt: start afresh (options may follow DIR) */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'J':
		case 'z':
		case 's':
		case 'n':
			if (check)
				return usage(cmd);
			if (c == 'J')
				o.journal = true;
			else if (c == 'z' && ns_zone_filter_parse(optarg, &o.filter))
				return usage(cmd);
			else if (c == 's' && number(optarg, &o.slba))
				return usage(cmd);
			else if (c == 'n' && number(optarg, &o.max_zones))
				return usage(cmd);
			break;
		default:
			return usage(cmd);
		}
	}
	if (optind != argc - 1)
		return usage(cmd);
	const char *dir = argv[optind];
	if (!check) {
		if (ns_inspect(dir, &o, stdout, err, sizeof(err))) {
			fprintf(stderr, "znstgt-ctl: %s\n", err);
			return 3;
		}
		return 0;
	}
	struct ns_check_result res;
	if (ns_check(dir, &res, err, sizeof(err))) {
		fprintf(stderr, "znstgt-ctl: %s\n", err);
		return 3;
	}
	ns_check_print(dir, &res, o.json, stdout);
	int rc = res.damaged ? 1 : 0;
	ns_check_free(&res);
	return rc;
}
