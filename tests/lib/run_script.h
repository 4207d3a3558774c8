/*
 * A shell script of the test suite (tests/NAME), run by a CMocka test
 * against the build the test belongs to (build/ or build-asan/), so that
 * `make check` and `make check-asan` cover what the script checks.
 */
#ifndef ZNSTGT_RUN_SCRIPT_H
#define ZNSTGT_RUN_SCRIPT_H

#include <stddef.h>

/*
 * bash <root>/tests/name <build> [arg]: 0 if it exited with status 0, else
 * -1 and why (it could not be run, or how it ended). arg may be NULL.
 */
int run_script(const char *name, const char *arg, char *why, size_t whylen);

#endif
