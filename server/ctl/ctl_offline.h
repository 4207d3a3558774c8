/*
 * znstgt-ctl's commands that need no daemon: they read a namespace's
 * directory (doc/operations.md).
 *
 *   inspect [--json] [--journal] [--zones FILTER] [--slba LBA] [--count N] DIR
 *   check [--json] DIR
 */
#ifndef ZNSTGT_CTL_OFFLINE_H
#define ZNSTGT_CTL_OFFLINE_H

#include <stdbool.h>

/* Whether cmd is one of them. */
bool ctl_offline_command(const char *cmd);
/* Run argv[0] (the command word) with its arguments; returns the exit
 * status: 0 ok, 1 damage found (check), 2 usage error, 3 DIR unreadable. */
int ctl_offline_main(int argc, char **argv);

#endif
