/*
 * Runs tests/nvme-target-control-test.sh, the test of the blktests hook,
 * against this build (build/ or build-asan/), so that `make check` and
 * `make check-asan` cover the hook, the control socket's add-subsys and
 * remove-subsys, and the host-side view of what the hook sets up.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void test_hook_script(void **state)
{
	char build[PATH_MAX - 64], script[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", build, sizeof(build) - 1);
	int status;
	pid_t pid;

	/* <root>/<build>/tests/test_nvme_target_control */
	assert_true(n > 0);
	build[n] = '\0';
	*strrchr(build, '/') = '\0';
	*strrchr(build, '/') = '\0';
	snprintf(script, sizeof(script), "%.*s/tests/nvme-target-control-test.sh",
		 (int)(strrchr(build, '/') - build), build);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/bash", "bash", script, build, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
