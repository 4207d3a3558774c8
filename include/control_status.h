/*
 * The bodies of the control socket's `status` and `metrics` answers
 * (doc/operations.md): subsystems, their controllers (host NQN, transport,
 * addresses, queues) and, per namespace, zones by state, command and error
 * counters and group-commit statistics (ns_stats.h). `metrics` gives the
 * same numbers in the Prometheus text exposition format (version 0.0.4).
 */
#ifndef ZNSTGT_CONTROL_STATUS_H
#define ZNSTGT_CONTROL_STATUS_H

#include <stdio.h>

/* Write the report to out. 0, or -1 when memory ran out. Main loop. */
int control_status(FILE *out);
int control_metrics(FILE *out);

#endif
