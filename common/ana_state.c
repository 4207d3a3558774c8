/*
 * The names of the ANA states (NVMe Base 2.0, 8.1; values of the ANA
 * Group Descriptor, 5.16.1.13), as the configuration and the control
 * socket spell them.
 */
#include "ana.h"

#include <string.h>

#include <nvme/types.h>

static const struct {
	const char *name;
	uint8_t state;
} names[] = {
	{ "optimized", NVME_ANA_STATE_OPTIMIZED },
	{ "non-optimized", NVME_ANA_STATE_NONOPTIMIZED },
	{ "inaccessible", NVME_ANA_STATE_INACCESSIBLE },
	{ "persistent-loss", NVME_ANA_STATE_PERSISTENT_LOSS },
	{ "change", NVME_ANA_STATE_CHANGE },
};

int ana_state_parse(const char *s, uint8_t *state)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*state = names[i].state;
			return 0;
		}
	return -1;
}

const char *ana_state_name(uint8_t state)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].state == state)
			return names[i].name;
	return "?";
}
