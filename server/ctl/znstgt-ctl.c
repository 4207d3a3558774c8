/*
 * znstgt-ctl: send one request to a running target's control socket
 * (doc/power-cut.md) and print the answer.
 *
 *   znstgt-ctl -s SOCKET [-w SECONDS] [-t SECONDS] COMMAND [ARG...]
 *
 * The words after the options make up the request line. The answer text
 * goes to stdout on success, to stderr on error. Exit status: 0 ok, 1 the
 * target answered with an error, 2 usage error, 3 no answer (not running,
 * timed out).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_client.h"
#include "ctl_offline.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: znstgt-ctl -s SOCKET [-w SECONDS] [-t SECONDS] COMMAND [ARG...]\n"
		"Send one request to a running znstgt's control socket.\n\n"
		"  -s, --socket PATH     the control_socket of the target's [target] section\n"
		"  -w, --wait SECONDS    retry connecting this long (the target is starting;\n"
		"                        default 0)\n"
		"  -t, --timeout SECONDS wait this long for the answer (default 120)\n\n"
		"Commands:\n"
		"  ping                         is the target up?\n"
		"  power-cut                    simulate a power cut, then power up again\n"
		"  add-subsys [--format] [--nqn NQN] FILE\n"
		"                               serve the subsystem file FILE (absolute path)\n"
		"  remove-subsys NQN            drop its connections and close it\n"
		"  zone offline|read-only NQN NSID ZSLBA [NZONES]\n"
		"                               fail zones as a drive does (durable; hosts told)\n"
		"  inject error|delay NQN NSID [op=..] [lba=..|zone=..] [status=SCT:SC] [dnr=..]\n"
		"         [delay=TIME] [count=N] [prob=P] [seed=N]\n"
		"                               make I/O fail or run late (doc/fault-injection.md)\n"
		"  inject list | inject clear ID|all\n"
		"  ana show                     ANA states of every port (doc/ana.md)\n"
		"  ana set PORT GROUP STATE     PORT: port ID or ADDR:PORT; STATE: optimized,\n"
		"                               non-optimized, inaccessible, persistent-loss, change\n"
		"  status                       subsystems, controllers, namespaces, counters\n"
		"  metrics                      the same counters for Prometheus\n"
		"  reload                       re-read the configuration file and apply what\n"
		"                               changed (as SIGHUP does)\n"
		"  set-hosts NQN FILE           the hosts and keys of subsystem file FILE for the\n"
		"                               running subsystem NQN (connections stay)\n\n"
		"Without a target (-s not needed; DIR: a namespace's directory):\n"
		"  inspect [--json] [--journal] [--zones FILTER] [--slba LBA] [--count N] DIR\n"
		"                               geometry, header slots, zones, journal\n"
		"  check [--json] DIR           verify every checksum and invariant;\n"
		"                               exit 1 naming what is damaged\n\n"
		"Exit status: 0 ok, 1 the target refused, 2 usage error, 3 no answer.\n");
}

static int seconds(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0 || v > 3600)
		return -1;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "wait", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	int wait_s = 0, timeout_s = 120, c;
	char request[4096], reply[2048];
	size_t len = 0;

	/* "+": options end at the command, whose own arguments start with "--". */
	while ((c = getopt_long(argc, argv, "+s:w:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'w':
			if (seconds(optarg, &wait_s)) {
				fprintf(stderr, "znstgt-ctl: -w %s: expected 0..3600 seconds\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			if (seconds(optarg, &timeout_s) || timeout_s == 0) {
				fprintf(stderr, "znstgt-ctl: -t %s: expected 1..3600 seconds\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && ctl_offline_command(argv[optind]))
		return ctl_offline_main(argc - optind, argv + optind);
	if (!path || optind == argc) {
		usage(stderr);
		return 2;
	}
	request[0] = '\0';
	for (int i = optind; i < argc; i++) {
		/* The request is one line of words separated by blanks: an
		 * argument holding either would reach the target as other
		 * words, or (a line break) cut the request short. */
		if (strpbrk(argv[i], " \t\r\n")) {
			fprintf(stderr, "znstgt-ctl: argument \"%s\" holds a blank or a line break, "
				"which the control protocol cannot carry\n", argv[i]);
			return 2;
		}
		int n = snprintf(request + len, sizeof(request) - len, "%s%s",
				 i > optind ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(request) - len) {
			fprintf(stderr, "znstgt-ctl: request longer than %zu bytes\n",
				sizeof(request) - 1);
			return 2;
		}
		len += (size_t)n;
	}
	char *body = NULL;
	switch (ctl_request_body(path, request, wait_s * 1000, timeout_s * 1000, reply,
				 sizeof(reply), &body)) {
	case 0:
		if (reply[0])
			printf("%s\n", reply);
		if (body)
			fputs(body, stdout);
		free(body);
		return 0;
	case 1:
		fprintf(stderr, "znstgt-ctl: %s\n", reply);
		return 1;
	default:
		fprintf(stderr, "znstgt-ctl: %s\n", reply);
		return 3;
	}
}
