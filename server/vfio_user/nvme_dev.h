/*
 * One vfio-user NVMe device (nvme_dev.c): the protocol server of one
 * socket joined to the core's PCIe controller model. Everything here runs
 * on the device's worker (the loop given to vnvme_dev_new).
 */
#ifndef ZNSTGT_VFIO_USER_NVME_DEV_H
#define ZNSTGT_VFIO_USER_NVME_DEV_H

#include <stdbool.h>

struct vnvme_dev;
struct worker;

/* Listen on path for the subsystem nqn; mmap_doorbells: offer the
 * doorbell page as an mmap area and poll it (db_poll.h), else doorbells
 * come as messages; worker_polls: w spins on its loop (poll = yes). NULL
 * with errno on error. */
struct vnvme_dev *vnvme_dev_new(struct worker *w, const char *nqn, const char *path,
				bool mmap_doorbells, bool worker_polls);
/* Reset the controller (its commands finish), drop the client, remove the
 * socket; done(arg) once everything is gone (possibly from inside). */
void vnvme_dev_stop(struct vnvme_dev *d, void (*done)(void *arg), void *arg);

#endif
