/*
 * The whole target inside a test process (inproc_target.h).
 */
#include "inproc_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctrl.h"
#include "log.h"
#include "subsys.h"
#include "tcp.h"
#include "vfio_nvme.h"
#include "worker.h"

int inproc_target_init(struct inproc_target *t)
{
	char path[128];

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/znstgt-inproc-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/conf", t->dir);
	return mkdir(path, 0755);
}

int inproc_target_write(struct inproc_target *t, const char *rel, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0)
		return -1;
	return chmod(path, mode);
}

int inproc_target_start(struct inproc_target *t, const char *target_keys, char *err,
			size_t errlen)
{
	char text[2048], path[512];

	log_set_level(LOG_ERROR);
	snprintf(text, sizeof(text), "[target]\n%sthreads = 2\nio_threads = 2\ndata_dir = %s/data\n"
		 "log_level = error\ninclude = conf/*.ini\n", target_keys, t->dir);
	if (inproc_target_write(t, "znstgt.ini", text, 0644) != 0) {
		snprintf(err, errlen, "cannot write %s/znstgt.ini", t->dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/znstgt.ini", t->dir);
	if (config_load(path, &t->cfg, err, errlen) != 0)
		return -1;
	for (int i = 0; i < t->cfg.nr_listeners; i++)
		snprintf(t->cfg.listeners[i].port, sizeof(t->cfg.listeners[i].port), "0");
	for (int i = 0; i < t->cfg.nr_tls_listeners; i++)
		snprintf(t->cfg.tls_listeners[i].port, sizeof(t->cfg.tls_listeners[i].port), "0");
	if (subsys_registry_init(&t->cfg, true, err, errlen) != 0)
		return -1;
	if (workers_start_poll(t->cfg.threads, t->cfg.io_threads, t->cfg.poll) != 0) {
		snprintf(err, errlen, "workers did not start");
		return -1;
	}
	tcp_tls_find_psk = subsys_tls_psk_find;
	if (tcp_listeners_start(&t->cfg, err, errlen) != 0 ||
	    vfio_nvme_start(&t->cfg, err, errlen) != 0)
		return -1;
	t->started = true;
	return 0;
}

int inproc_target_up(struct inproc_target *t, const struct inproc_file *files,
		     const char *target_keys, char *err, size_t errlen)
{
	if (inproc_target_init(t) != 0) {
		snprintf(err, errlen, "no temporary directory");
		return -1;
	}
	for (const struct inproc_file *f = files; f->rel; f++)
		if (inproc_target_write(t, f->rel, f->text, f->mode) != 0) {
			snprintf(err, errlen, "cannot write %s/%s", t->dir, f->rel);
			return -1;
		}
	return inproc_target_start(t, target_keys, err, errlen);
}

void inproc_target_stop(struct inproc_target *t)
{
	char cmd[128];

	if (t->started) {
		tcp_listeners_stop();
		vfio_nvme_stop();
		nvme_sq_disconnect_all();
		if (!nvme_sq_wait_all_freed(10))
			fprintf(stderr, "inproc_target: queues still there after 10 s\n");
		subsys_registry_destroy();
		workers_stop();
	}
	config_free(&t->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "inproc_target: cannot remove %s\n", t->dir);
	t->started = false;
}
