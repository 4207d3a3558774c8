/*
 * The daemon as a child process (target_proc.h).
 */
#include "target_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_client.h"

int target_build_dir(char *out, size_t len, char *why, size_t whylen)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);

	if (n <= 0) {
		snprintf(why, whylen, "/proc/self/exe: %s", strerror(errno));
		return -1;
	}
	out[n] = '\0';
	for (int up = 0; up < 2; up++) { /* drop /test_x, then /tests */
		char *slash = strrchr(out, '/');
		if (!slash) {
			snprintf(why, whylen, "%s: not in <build>/tests/", out);
			return -1;
		}
		*slash = '\0';
	}
	return 0;
}

int target_find_bin(char *out, size_t len, char *why, size_t whylen)
{
	const char *env = getenv("ZNSTGT_BIN");
	char build[PATH_MAX - 16];

	if (env) {
		snprintf(out, len, "%s", env);
	} else {
		if (target_build_dir(build, sizeof(build), why, whylen) != 0)
			return -1;
		snprintf(out, len, "%s/znstgt", build);
	}
	if (access(out, X_OK) != 0) {
		snprintf(why, whylen, "no daemon at %s (make all, or set ZNSTGT_BIN)", out);
		return -1;
	}
	return 0;
}

int target_free_port(char *out, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
		snprintf(out, len, "%u", ntohs(sa.sin_port));
		rc = 0;
	}
	close(fd);
	return rc;
}

static bool log_holds(const struct target_proc *t, const char *s)
{
	FILE *f = fopen(t->log, "r");
	char *text = NULL;
	size_t cap = 0;
	bool found;

	if (!f)
		return false;
	found = getdelim(&text, &cap, '\0', f) > 0 && strstr(text, s);
	fclose(f);
	free(text);
	return found;
}

/* The daemon logs from its own threads, often just after the event a test
 * observed (a refused socket closes before its log line is written), so a
 * line is waited for rather than expected at once. */
bool target_log_contains(const struct target_proc *t, const char *s)
{
	for (int waited_ms = 0; waited_ms < 20000; waited_ms += 10) {
		if (log_holds(t, s))
			return true;
		usleep(10 * 1000);
	}
	return log_holds(t, s);
}

void target_show_log(const struct target_proc *t, int lines)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, t->log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no daemon log at %s)\n", t->log);
}

int target_start(struct target_proc *t, bool format, char *why, size_t whylen)
{
	int logfd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (logfd < 0) {
		snprintf(why, whylen, "%s: %s", t->log, strerror(errno));
		return -1;
	}
	t->pid = fork();
	if (t->pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(logfd);
		t->pid = 0;
		return -1;
	}
	if (t->pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execl(t->bin, "znstgt", "-c", t->ini, format ? "--format" : (char *)NULL,
		      (char *)NULL);
		_exit(127);
	}
	close(logfd);
	/* The socket of a daemon that was killed refuses until the new one
	 * replaced it: ctl_request keeps trying a while, and in between we
	 * look whether the daemon gave up (a configuration error, say). */
	for (int tries = 0; tries < 75; tries++) {
		int status;

		if (ctl_request(t->sock, "ping", 200, 10000, why, whylen) == 0)
			return 0;
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			snprintf(why, whylen, "the daemon exited at start (wait status %#x)", status);
			t->pid = 0;
			return -1;
		}
	}
	target_kill(t);
	return -1;
}

int target_stop(struct target_proc *t, char *why, size_t whylen)
{
	int status;

	if (t->pid <= 0 || kill(t->pid, SIGTERM) != 0 || waitpid(t->pid, &status, 0) != t->pid) {
		snprintf(why, whylen, "no daemon to stop");
		t->pid = 0;
		return -1;
	}
	t->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "the daemon did not stop cleanly (wait status %#x)", status);
		return -1;
	}
	return 0;
}

int target_write_file(const char *dir, const char *name, const char *text,
		      char *why, size_t whylen)
{
	char path[PATH_MAX];
	FILE *f;

	if (dir)
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	else
		snprintf(path, sizeof(path), "%s", name);
	f = fopen(path, "w");
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* fclose runs whatever fputs did: no stream is left open. */
	if ((fputs(text, f) < 0) | (fclose(f) != 0)) {
		snprintf(why, whylen, "%s: cannot write it", path);
		return -1;
	}
	return 0;
}

int target_dir(struct target_proc *t, char *dir, char *port, size_t portlen,
	       char *why, size_t whylen)
{
	char path[PATH_MAX];

	if (target_find_bin(t->bin, sizeof(t->bin), why, whylen) != 0)
		return -1;
	if (!mkdtemp(dir) || target_free_port(port, portlen) != 0) {
		snprintf(why, whylen, "no temporary directory or free port");
		return -1;
	}
	snprintf(t->ini, sizeof(t->ini), "%s/znstgt.ini", dir);
	snprintf(t->sock, sizeof(t->sock), "%s/control.sock", dir);
	snprintf(t->log, sizeof(t->log), "%s/znstgt.log", dir);
	snprintf(path, sizeof(path), "%s/conf", dir);
	if (mkdir(path, 0755) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int target_finish(struct target_proc *t, const char *dir, char *why, size_t whylen)
{
	char cmd[PATH_MAX + 16];
	int rc = 0;

	if (t->pid && (rc = target_stop(t, why, whylen)) != 0)
		target_show_log(t, 15);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0 && rc == 0) {
		snprintf(why, whylen, "cannot remove %s", dir);
		rc = -1;
	}
	return rc;
}

void target_kill(struct target_proc *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
	}
	t->pid = 0;
}

int target_ctl(const struct target_proc *t, const char *req, char *reply, size_t len)
{
	return ctl_request(t->sock, req, 0, 30000, reply, len);
}

int target_power_cut(struct target_proc *t, char *why, size_t whylen)
{
	/* The answer comes after the connections drained and the namespaces
	 * came back: up to the daemon's drain limit and a recovery. */
	return ctl_request(t->sock, "power-cut", 1000, 60000, why, whylen) == 0 ? 0 : -1;
}
