/*
 * A test-suite script against this build (run_script.h).
 */
#include "run_script.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target_proc.h"

int run_script(const char *name, const char *arg, char *why, size_t whylen)
{
	char build[PATH_MAX - 64], script[PATH_MAX];
	const char *slash;
	int status;
	pid_t pid;

	/* <root>/<build>/tests/test_x: the scripts are in <root>/tests. */
	if (target_build_dir(build, sizeof(build), why, whylen) != 0)
		return -1;
	slash = strrchr(build, '/');
	if (!slash) {
		snprintf(why, whylen, "%s: no source tree above it", build);
		return -1;
	}
	snprintf(script, sizeof(script), "%.*s/tests/%s", (int)(slash - build), build, name);
	pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* A NULL arg ends the argument list there. */
		execl("/bin/bash", "bash", script, build, arg, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid) {
		snprintf(why, whylen, "waitpid: %s", strerror(errno));
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "%s ended with wait status %#x", script, status);
		return -1;
	}
	return 0;
}
