/*
 * A test's own daemon (target_proc.h) listening on n loopback ports, with
 * the [target] keys and the subsystem file the test gives: the set-up every
 * wire test (test_*_wire.c) needs before its hosts connect.
 *
 *   static char dir[] = "/tmp/znstgt-x-XXXXXX", port[TARGET_PORT_LEN];
 *   target_daemon_up(&T, dir, (char *[]){ port }, 1, "log_level = warn\n",
 *                    "x.ini", "[subsystem]\n...", why, sizeof(why));
 *   ... hosts connect to 127.0.0.1:port ...
 *   target_finish(&T, dir, why, sizeof(why));
 *
 * A test whose keys name its ports (ana_state = 127.0.0.1:PORT ...) takes
 * the two steps of target_daemon_up itself: target_daemon_dir, then its
 * keys, then target_daemon_config and target_start.
 */
#ifndef ZNSTGT_TARGET_DAEMON_H
#define ZNSTGT_TARGET_DAEMON_H

#include <stddef.h>

#include "target_proc.h"

#define TARGET_PORT_LEN 8         /* each ports[i]: "65535" and its NUL */
#define TARGET_MAX_LISTENERS 4

/*
 * dir (a mkdtemp template) made with t's paths and dir/conf (target_dir),
 * and n (1..TARGET_MAX_LISTENERS) distinct free ports on 127.0.0.1, as
 * target_free_port finds them, into ports[0..n-1]. 0, or -1 and why.
 */
int target_daemon_dir(struct target_proc *t, char *dir, char *const ports[], int n,
		      char *why, size_t whylen);

/*
 * t's znstgt.ini: listening on 127.0.0.1 at ports[0..n-1] (in that order),
 * data in dir/data, the control socket dir/control.sock, every conf/ .ini
 * included, then target_keys (more [target] lines); and dir/conf/conf_name
 * holding conf_text. 0, or -1 and why.
 */
int target_daemon_config(const struct target_proc *t, const char *dir, char *const ports[],
			 int n, const char *target_keys, const char *conf_name,
			 const char *conf_text, char *why, size_t whylen);

/*
 * Both steps, then the daemon started with --format and answering. On a
 * start that failed its log's last lines go to stderr. 0, or -1 and why.
 */
int target_daemon_up(struct target_proc *t, char *dir, char *const ports[], int n,
		     const char *target_keys, const char *conf_name, const char *conf_text,
		     char *why, size_t whylen);

#endif
