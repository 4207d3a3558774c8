/*
 * Runs tests/nvme-target-control-test.sh, the test of the blktests hook,
 * against this build (build/ or build-asan/), so that `make check` and
 * `make check-asan` cover the hook, the control socket's add-subsys and
 * remove-subsys, and the host-side view of what the hook sets up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../lib/run_script.h"

static void test_hook_script(void **state)
{
	char why[512];

	if (run_script("nvme-target-control-test.sh", NULL, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
