/*
 * The whole target inside a test process: configuration files in a
 * temporary directory, the subsystem registry with real namespaces,
 * workers, I/O threads and listeners on ephemeral loopback ports, for
 * component tests that drive it over real TCP (tests/lib/nvmf_client.h).
 *
 *   struct inproc_target t;
 *   inproc_target_init(&t);                         temp dir with conf/
 *   inproc_target_write(&t, "conf/a.ini", text, 0644);   subsystem files, keys
 *   inproc_target_start(&t, "listen = 127.0.0.1:4420\n", err, sizeof(err));
 *   ... tcp_listener_port(i)->trsvcid ...
 *   inproc_target_stop(&t);                          everything down, dir removed
 *
 * or the first three steps at once, from a table of files:
 *
 *   static const struct inproc_file files[] = {
 *           { "conf/a.ini", text, 0644 }, { NULL } };
 *   inproc_target_up(&t, files, "listen = 127.0.0.1:4420\n", err, sizeof(err));
 */
#ifndef ZNSTGT_TEST_INPROC_TARGET_H
#define ZNSTGT_TEST_INPROC_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct inproc_target {
	char dir[64];
	struct target_config cfg;
	bool started;
};

/* A fresh temporary directory with conf/ in it. 0 or -1. */
int inproc_target_init(struct inproc_target *t);
/* Write dir/rel with text and mode. 0 or -1. */
int inproc_target_write(struct inproc_target *t, const char *rel, const char *text, mode_t mode);
/*
 * Write znstgt.ini ([target] with target_keys, two worker and two I/O
 * threads, data in dir/data, every conf/ .ini file included), load it, give every
 * listener port 0 (ephemeral) and start the target. 0, or -1 with err.
 */
int inproc_target_start(struct inproc_target *t, const char *target_keys, char *err,
			size_t errlen);
/* A file of a test's configuration: dir/rel holding text, with mode. */
struct inproc_file {
	const char *rel;
	const char *text;
	mode_t mode;
};

/* inproc_target_init, every file of files (up to one whose rel is NULL)
 * written, inproc_target_start: 0, or -1 with err. */
int inproc_target_up(struct inproc_target *t, const struct inproc_file *files,
		     const char *target_keys, char *err, size_t errlen);
/* Listeners, queues, registry, workers down; configuration freed; dir gone. */
void inproc_target_stop(struct inproc_target *t);

#endif
