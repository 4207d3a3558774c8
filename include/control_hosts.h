/*
 * set-hosts, a control socket request (control.h): the hosts a running
 * subsystem allows, and their keys, replaced from a subsystem file while
 * its controllers stay connected. What the blktests hook needs to change a
 * host's DH-HMAC-CHAP keys, hash or DH group between connects, and before
 * a host re-authenticates, as nvmet's configfs does (doc/blktests.md).
 */
#ifndef ZNSTGT_CONTROL_HOSTS_H
#define ZNSTGT_CONTROL_HOSTS_H

#include <stddef.h>

/*
 * The `host` lines and [host NQN] sections of the subsystem file `file`
 * (checked as add-subsys checks it; data_dir as there) become the host
 * table of the running subsystem `nqn`. Its namespaces and the file's other
 * sections are not looked at again. New Connects and every authentication
 * transaction from then on (a re-authentication included) use the new
 * table. 0 with what was done in msg, or -1 with why not.
 */
int control_set_hosts(const char *nqn, const char *file, const char *data_dir, char *msg,
		      size_t msglen);

#endif
