/*
 * Subsystems added and removed while the target runs (target_subsys.h).
 * The vfio-user socket is checked before the namespaces open, and the
 * device starts once the subsystem is on the registry it serves from.
 */
#include "target_subsys.h"

#include "subsys.h"
#include "vfio_nvme.h"

int target_subsys_add(const struct subsys_config *sc, bool format, char *err, size_t errlen)
{
	char why[512];

	if (vfio_nvme_check(sc, err, errlen) != 0 || subsys_add(sc, format, err, errlen) != 0)
		return -1;
	if (vfio_nvme_add(sc, err, errlen) != 0) {
		subsys_remove(sc->nqn, why, sizeof(why));
		return -1;
	}
	return 0;
}

int target_subsys_remove(const char *nqn, char *err, size_t errlen)
{
	vfio_nvme_remove(nqn);
	return subsys_remove(nqn, err, errlen);
}
