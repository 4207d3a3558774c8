/*
 * vfio-user NVMe devices (doc/vfio-user.md, "The NVMe device"): a
 * subsystem whose file has `[vfio-user] socket = PATH` is served on that
 * UNIX socket to one VM at a time as a PCI NVMe controller, over the same
 * namespace objects NVMe/TCP hosts use.
 *
 * One device joins the vfio-user protocol server (vfio_user.h) to the
 * core's PCIe controller model (pcie.h). It lives on one worker: the
 * server's socket, the BAR0 accesses, the controller's queues and the
 * completions of its namespace I/O all run on that worker's loop.
 *
 * These calls are made from the main thread (start, stop, the control
 * socket); each waits until the device's worker did the work.
 */
#ifndef ZNSTGT_VFIO_NVME_H
#define ZNSTGT_VFIO_NVME_H

#include <stddef.h>

#include "config.h"

/*
 * Before anything is created: can sc's socket path be used? (Its directory
 * exists, nothing but an old socket is at the path.) 0, or -1 with
 * "FILE: [vfio-user] socket: ..." in err. 0 when sc has no socket.
 */
int vfio_nvme_check(const struct subsys_config *sc, char *err, size_t errlen);
/* Start the device of sc (workers running) if sc names a socket: 0, or -1
 * with err as above. */
int vfio_nvme_add(const struct subsys_config *sc, char *err, size_t errlen);
/* Every subsystem of cfg: vfio_nvme_check all, then vfio_nvme_add all;
 * on error nothing stays started. */
int vfio_nvme_start(const struct target_config *cfg, char *err, size_t errlen);
/* Stop the device serving nqn, if any: its controller reset (commands in
 * flight finish), the client dropped, the socket file removed. */
void vfio_nvme_remove(const char *nqn);
/* Stop every device (target stopping). */
void vfio_nvme_stop(void);

#endif
