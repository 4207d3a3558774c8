/*
 * The control socket's ANA requests (doc/ana.md):
 *
 *   ana show                        every port's states and change count
 *   ana set PORT GROUP STATE        one group's state on one port
 *
 * PORT is a port ID (as `ana show` and the log name it) or the address a
 * listener listens on, ADDR:PORT or [IPv6]:PORT; GROUP an ANA group ID;
 * STATE one of ANA_STATE_NAMES (ana.h). Parsing (control_ana_parse) is apart
 * from acting (control_ana_run, on the main loop), as for every request
 * (control_req.h).
 */
#ifndef ZNSTGT_CONTROL_ANA_H
#define ZNSTGT_CONTROL_ANA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum control_ana_what { CONTROL_ANA_SHOW, CONTROL_ANA_SET };

struct control_ana {
	enum control_ana_what what;
	uint16_t portid;             /* set: 0 when named by address */
	const char *port_addr;       /* set: ADDR:PORT, or NULL */
	uint32_t group;
	uint8_t state;               /* NVME_ANA_STATE_* */
};

/* argv[0] is "ana". 0, or -1 with the problem in err. */
int control_ana_parse(int argc, char **argv, struct control_ana *a, char *err, size_t errlen);

/* ana set: act on a parsed request; the answer's text into reply. true: ok.
 * (ana show answers with a body: ana_print.) */
bool control_ana_set(const struct control_ana *a, char *reply, size_t len);

#endif
