/*
 * set-hosts NQN FILE (control_hosts.h).
 */
#include "control_hosts.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "errmsg.h"
#include "subsys.h"

int control_set_hosts(const char *nqn, const char *file, const char *data_dir, char *msg,
		      size_t msglen)
{
	struct subsys_config *sc = calloc(1, sizeof(*sc)); /* large: not on the stack */
	char err[1024];
	int rc = -1;

	if (!sc)
		return errmsg(msg, msglen, "out of memory");
	if (config_load_subsys(file, data_dir, sc, err, sizeof(err)) != 0)
		errmsg(msg, msglen, "%s", err);
	else if (subsys_set_hosts(nqn, sc, err, sizeof(err)) != 0)
		errmsg(msg, msglen, "%s", err);
	else
		rc = snprintf(msg, msglen, "%s: hosts of %s", nqn, file) < 0 ? -1 : 0;
	/* the file's secrets, wiped (subsys_set_hosts took copies) */
	config_subsys_wipe(sc);
	free(sc);
	return rc;
}
