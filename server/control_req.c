/*
 * The control socket's request syntax (control.h): one line of printable
 * ASCII, words separated by blanks, a command word and its arguments.
 */
#include "control_req.h"

#include <stdio.h>
#include <string.h>

#define CONTROL_MAX_WORDS 16

static const struct control_cmd {
	const char *name;
	enum control_op op;
	int min_words, max_words;   /* the command word included */
} commands[] = {
	{ "ping", CONTROL_PING, 1, 1 },
	{ "power-cut", CONTROL_POWER_CUT, 1, 1 },
	{ "add-subsys", CONTROL_ADD_SUBSYS, 2, 5 },
	{ "remove-subsys", CONTROL_REMOVE_SUBSYS, 2, 2 },
	{ "status", CONTROL_STATUS, 1, 1 },
	{ "metrics", CONTROL_METRICS, 1, 1 },
	{ "zone", CONTROL_ZONE, 1, CONTROL_MAX_WORDS },
	{ "inject", CONTROL_INJECT, 1, CONTROL_MAX_WORDS },
	{ "reload", CONTROL_RELOAD, 1, 1 },
	{ "set-hosts", CONTROL_SET_HOSTS, 3, 3 },
	{ "ana", CONTROL_ANA, 1, 5 },
};

/* add-subsys [--format] [--nqn NQN] FILE */
static int parse_add_subsys(int argc, char **argv, struct control_req *req, char *err,
			    size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0) {
			req->format = true;
		} else if (strcmp(argv[i], "--nqn") == 0 && i + 1 < argc) {
			req->nqn = argv[++i];
		} else if (argv[i][0] != '-' && !req->file) {
			req->file = argv[i];
		} else {
			snprintf(err, errlen, "add-subsys: unexpected \"%s\" (expected [--format] "
				 "[--nqn NQN] FILE)", argv[i]);
			return -1;
		}
	}
	if (!req->file || req->file[0] != '/') {
		snprintf(err, errlen, "add-subsys: expected the absolute path of a subsystem file");
		return -1;
	}
	return 0;
}

/* set-hosts NQN FILE */
static int parse_set_hosts(char **argv, struct control_req *req, char *err, size_t errlen)
{
	req->nqn = argv[1];
	req->file = argv[2];
	if (req->file[0] != '/') {
		snprintf(err, errlen, "set-hosts: expected the absolute path of a subsystem file");
		return -1;
	}
	return 0;
}

int control_req_parse(char *line, size_t len, struct control_req *req, char *err,
		      size_t errlen)
{
	char *words[CONTROL_MAX_WORDS];
	int n = 0;

	memset(req, 0, sizeof(*req));
	if (memchr(line, '\0', len)) {
		snprintf(err, errlen, "the request holds a NUL byte");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < ' ' || c > '~') && c != '\t') {
			snprintf(err, errlen, "the request holds a byte that is not printable ASCII");
			return -1;
		}
	}
	char *save = NULL;
	for (char *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == CONTROL_MAX_WORDS) {
			snprintf(err, errlen, "more than %d words", CONTROL_MAX_WORDS);
			return -1;
		}
		words[n++] = w;
	}
	if (!n) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct control_cmd *c = &commands[i];

		if (strcmp(words[0], c->name) != 0)
			continue;
		if (n < c->min_words || n > c->max_words) {
			snprintf(err, errlen, "%s: wrong number of arguments", c->name);
			return -1;
		}
		req->op = c->op;
		req->name = c->name;
		if (c->op == CONTROL_ADD_SUBSYS)
			return parse_add_subsys(n, words, req, err, errlen);
		if (c->op == CONTROL_REMOVE_SUBSYS)
			req->nqn = words[1];
		if (c->op == CONTROL_SET_HOSTS)
			return parse_set_hosts(words, req, err, errlen);
		if (c->op == CONTROL_ZONE || c->op == CONTROL_INJECT)
			return control_fault_parse(n, words, &req->fault, err, errlen);
		if (c->op == CONTROL_ANA)
			return control_ana_parse(n, words, &req->ana, err, errlen);
		return 0;
	}
	/* "expected a, b, ... or z", from the table. */
	size_t nc = sizeof(commands) / sizeof(commands[0]), used;
	used = (size_t)snprintf(err, errlen, "unknown command \"%s\" (expected", words[0]);
	for (size_t i = 0; i < nc && used < errlen; i++)
		used += (size_t)snprintf(err + used, errlen - used, "%s%s", i == 0 ? " "
					 : i + 1 == nc ? " or " : ", ", commands[i].name);
	if (used < errlen)
		snprintf(err + used, errlen - used, ")");
	return -1;
}
