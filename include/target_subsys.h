/*
 * A subsystem added to or removed from the running target with every front
 * end it has: the registry that NVMe/TCP hosts reach (subsys.h) and, when
 * its file names `[vfio-user] socket`, its vfio-user device (vfio_nvme.h).
 * Used by the control socket's add-subsys / remove-subsys and by a reload,
 * from the main thread.
 */
#ifndef ZNSTGT_TARGET_SUBSYS_H
#define ZNSTGT_TARGET_SUBSYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Serve sc (format: --format): all or nothing, -1 with err. */
int target_subsys_add(const struct subsys_config *sc, bool format, char *err, size_t errlen);
/* Stop serving nqn: its vfio-user device first, then its controllers are
 * disconnected and its namespaces closed (subsys_remove). -1 with err if
 * there is no such subsystem. */
int target_subsys_remove(const char *nqn, char *err, size_t errlen);

#endif
