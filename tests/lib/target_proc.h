/*
 * The real daemon (build/znstgt) as a child process of a test: started on
 * a configuration that names a control_socket, ready once it answers ping
 * there (its listeners are open by then), stopped, killed, asked to
 * simulate a power cut. Its output goes to a log file the test can show.
 */
#ifndef ZNSTGT_TARGET_PROC_H
#define ZNSTGT_TARGET_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct target_proc {
	char bin[PATH_MAX];          /* the daemon */
	char ini[PATH_MAX];          /* its -c FILE */
	char sock[PATH_MAX];         /* the control_socket that FILE names */
	char log[PATH_MAX];          /* its stdout and stderr, appended */
	pid_t pid;                   /* 0 while it is not running */
};

/* The build directory the calling test belongs to
 * (<build>/tests/test_x -> <build>). */
int target_build_dir(char *out, size_t len, char *why, size_t whylen);
/* The daemon of the build the calling test belongs to
 * (<build>/tests/test_x -> <build>/znstgt), or $ZNSTGT_BIN. */
int target_find_bin(char *out, size_t len, char *why, size_t whylen);
/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int target_free_port(char *out, size_t len);

/* Write text to dir/name (to name itself when dir is NULL), replacing the
 * file: 0, or -1 and why if it could not be opened, written or closed. */
int target_write_file(const char *dir, const char *name, const char *text,
		      char *why, size_t whylen);

/*
 * The directory of a test's daemon, for a test that writes its own
 * configuration: the binary found, dir (a mkdtemp template) made, a free
 * port on 127.0.0.1 (into port), t's znstgt.ini, control.sock and
 * znstgt.log in dir, and the empty dir/conf made.
 */
int target_dir(struct target_proc *t, char *dir, char *port, size_t portlen,
	       char *why, size_t whylen);

/* Start it (with --format if asked) and wait up to 15 s for it to answer. */
int target_start(struct target_proc *t, bool format, char *why, size_t whylen);
/* SIGTERM and wait: 0 if it exited with status 0 (a clean stop). */
int target_stop(struct target_proc *t, char *why, size_t whylen);
/* End of a test: stop it if it runs (-1 and why if that stop was not clean),
 * then remove dir, the test's directory, whatever happened. */
int target_finish(struct target_proc *t, const char *dir, char *why, size_t whylen);
/* SIGKILL and wait. */
void target_kill(struct target_proc *t);
/* A control request, waiting up to 30 s for the answer: ctl_request's 0
 * (done), 1 (refused) or -1, the answer or why in reply. */
int target_ctl(const struct target_proc *t, const char *req, char *reply, size_t len);
/* Ask for a power cut (doc/power-cut.md); 0 and its answer in why, or -1. */
int target_power_cut(struct target_proc *t, char *why, size_t whylen);
/* Whether its log holds s, waiting up to 20 s (a loaded machine) for the
 * line to appear. */
bool target_log_contains(const struct target_proc *t, const char *s);
/* The last lines of its log, to stderr. */
void target_show_log(const struct target_proc *t, int lines);

#endif
