/*
 * libFuzzer target for the control socket's request parser
 * (server/control_req.c, `make fuzz`).
 *
 * The input is what a client sends on one connection. It is framed as
 * control.c frames it: the request is the bytes before the first '\n', and
 * a client that sends CONTROL_LINE_MAX bytes without one is refused before
 * parsing. The line is parsed from an allocation of exactly its length plus
 * the terminating NUL, so that AddressSanitizer sees any read past it.
 *
 * Checked on every input: no crash or sanitizer report; a refusal comes
 * with a message; an accepted request is exactly what control.h allows:
 * a known command whose strings are non-empty words of the line (printable
 * ASCII, no blanks), add-subsys with an absolute file and only the options
 * that were given, zone and inject requests with values in their ranges
 * (control_fault.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "ana.h"
#include "control.h"
#include "control_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s is a whole word of line[0..len): inside it, non-empty, blank-delimited. */
static void check_word(const char *line, size_t len, const char *s)
{
	if (!s || s < line || s >= line + len || !s[0])
		abort();
	if (s > line && s[-1] != '\0' && s[-1] != ' ' && s[-1] != '\t')
		abort();
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c > '~' || c >= line + len)
			abort();
}

static bool has_word(const uint8_t *data, size_t len, const char *w)
{
	size_t n = strlen(w);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(data + i, w, n) == 0 && (i == 0 || data[i - 1] == ' ' ||
						    data[i - 1] == '\t') &&
		    (i + n == len || data[i + n] == ' ' || data[i + n] == '\t'))
			return true;
	return false;
}

/* An inject request holds only what control_fault.h allows. */
static void check_inject(const char *line, size_t len, const struct control_fault *f)
{
	const struct inject_rule *r = &f->rule;

	if (f->what != CONTROL_INJECT_ADD) {
		if (f->nqn || f->nsid || (f->what == CONTROL_INJECT_LIST && f->clear_id))
			abort();
		return;
	}
	check_word(line, len, f->nqn);
	if (!f->nsid || !r->ops || (r->ops & ~INJECT_ALL_OPS) || (!r->status && !r->delay_us) ||
	    r->delay_us > INJECT_MAX_DELAY_US || !r->ppm || r->ppm > INJECT_PPM ||
	    (r->nlb && r->slba > UINT64_MAX - r->nlb) || (r->status & 0x3800) ||
	    (f->zone_range && !r->nlb))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct control_req req;
	char err[1024];

	if (!nl && size >= CONTROL_LINE_MAX)
		return 0; /* refused for its length before any parsing */
	size_t len = nl ? (size_t)(nl - data) : size;
	if (len >= CONTROL_LINE_MAX)
		return 0;
	char *line = malloc(len + 1);
	if (!line)
		abort();
	memcpy(line, data, len);
	line[len] = '\0';

	err[0] = '\0';
	if (control_req_parse(line, len, &req, err, sizeof(err)) != 0) {
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			abort();
		free(line);
		return 0;
	}
	/* The command is the first word as the client wrote it. */
	size_t w = 0, n = strlen(req.name);
	while (w < len && (data[w] == ' ' || data[w] == '\t'))
		w++;
	if (w + n > len || memcmp(data + w, req.name, n) != 0 ||
	    (w + n < len && data[w + n] != ' ' && data[w + n] != '\t'))
		abort();
	switch (req.op) {
	case CONTROL_PING:
	case CONTROL_POWER_CUT:
	case CONTROL_STATUS:
	case CONTROL_METRICS:
	case CONTROL_RELOAD:
		if (req.nqn || req.file || req.format)
			abort();
		break;
	case CONTROL_REMOVE_SUBSYS:
		check_word(line, len, req.nqn);
		if (req.file || req.format)
			abort();
		break;
	case CONTROL_ADD_SUBSYS:
		check_word(line, len, req.file);
		if (req.file[0] != '/')
			abort();
		if (req.nqn) {
			check_word(line, len, req.nqn);
			if (!has_word(data, len, "--nqn"))
				abort();
		}
		if (req.format && !has_word(data, len, "--format"))
			abort();
		break;
	case CONTROL_ZONE:
		check_word(line, len, req.fault.nqn);
		if (!req.fault.nsid || !req.fault.nr_zones ||
		    (req.fault.zone_state != NVME_ZNS_ZS_OFFLINE &&
		     req.fault.zone_state != NVME_ZNS_ZS_READ_ONLY))
			abort();
		break;
	case CONTROL_INJECT:
		check_inject(line, len, &req.fault);
		break;
	case CONTROL_SET_HOSTS:
		check_word(line, len, req.nqn);
		check_word(line, len, req.file);
		break;
	case CONTROL_ANA:
		/* set: a port by ID or by address (one of them), a group in
		 * range, a state with a name. */
		if (req.ana.what == CONTROL_ANA_SET) {
			if (req.ana.port_addr)
				check_word(line, len, req.ana.port_addr);
			if (!req.ana.port_addr == !req.ana.portid || !req.ana.group ||
			    req.ana.group > CFG_MAX_ANA_GROUPS ||
			    strcmp(ana_state_name(req.ana.state), "?") == 0)
				abort();
		} else if (req.ana.what != CONTROL_ANA_SHOW) {
			abort();
		}
		break;
	default:
		abort();
	}
	free(line);
	return 0;
}
