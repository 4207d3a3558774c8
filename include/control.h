/*
 * The control socket (`control_socket` in [target]; doc/power-cut.md): a UNIX
 * stream socket on which local tools ask the running target for what no
 * NVMe command can do: simulate a power cut, add and remove subsystems at
 * run time (the blktests hook, tests/nvme-target-control).
 *
 * Protocol: one request per connection. The client sends one line of at
 * most CONTROL_LINE_MAX bytes (printable ASCII, words separated by blanks,
 * ended by '\n'); the target answers with one line, "ok" or "ok TEXT" on
 * success and "error: TEXT" otherwise, and closes the connection. An answer
 * may carry a body (status, metrics): lines after the status line, ended
 * by a line holding only ".", a body line starting with '.' sent with
 * another '.' in front (dot-stuffing, RFC 5321 4.5.2).
 *
 *   ping                                  is the target up?
 *   power-cut                             drop what a power cut would lose,
 *                                         then power the subsystems up again
 *   add-subsys [--format] [--nqn NQN] FILE   serve the subsystem of FILE
 *   remove-subsys NQN                     drop its connections, close it
 *   status                                subsystems, controllers, counters
 *   metrics                               the same, Prometheus text format
 *   zone offline|read-only NQN NSID ZSLBA [NZONES]
 *                                         take zones Read Only / Offline
 *   inject error|delay|list|clear ...     I/O errors and delays on demand
 *                                         (control_fault.h, doc/fault-injection.md)
 *   reload                                re-read the configuration file and
 *                                         apply what changed (reload.h)
 *   set-hosts NQN FILE                    the hosts and keys of FILE for the
 *                                         running subsystem NQN (control_hosts.h)
 *
 * Requests run on the main loop, one at a time and in order; a request may
 * block that loop while it opens namespaces or waits for connections to
 * drain (only the signal watchers live there).
 */
#ifndef ZNSTGT_CONTROL_H
#define ZNSTGT_CONTROL_H

#include <ev.h>
#include <stddef.h>

#include "config.h"

#define CONTROL_LINE_MAX 4096        /* request bytes, '\n' included */
#define CONTROL_DRAIN_SECONDS 30.0   /* how long a request waits for connections to go */

/*
 * Listen on cfg->control_socket (which must be set) and serve requests on
 * loop. A stale socket file nobody listens on is replaced; a live one is
 * an error. cfg must outlive control_stop() (its data_dir is where
 * add-subsys puts namespaces by default). -1 with a message in err.
 */
int control_start(struct ev_loop *loop, const struct target_config *cfg, char *err,
		  size_t errlen);
/* Stop listening, drop clients not yet answered, remove the socket file. */
void control_stop(void);

#endif
