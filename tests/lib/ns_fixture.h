/*
 * A small namespace in a temporary directory, for the tests that drive the
 * ns layer (ns.h) directly: 4 KiB blocks, nz zones of zlbas blocks (or a
 * conventional namespace of the same size). A test may change f->cfg
 * before ns_fixture_open(), or close and reopen on its own.
 */
#ifndef ZNSTGT_TESTS_NS_FIXTURE_H
#define ZNSTGT_TESTS_NS_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ns.h"

#define NS_FIXTURE_BS 4096u

struct ns_fixture {
	char dir[64];
	struct ns_config cfg;
	struct ns *ns;
};

/* The directory made (named after tag) and cfg filled; nothing opened. */
struct ns_fixture *ns_fixture_new(const char *tag, uint32_t nz, uint32_t zlbas, bool zoned);
/* ns_open() of f->cfg (format: a new namespace); fails the test if refused. */
void ns_fixture_open(struct ns_fixture *f, bool format);
/* Close the namespace (if open), remove the directory, free f. */
void ns_fixture_free(struct ns_fixture *f);

#endif
