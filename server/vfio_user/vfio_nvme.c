/*
 * The vfio-user NVMe devices of the running target (include/vfio_nvme.h):
 * one per subsystem with `[vfio-user] socket`, each on a worker chosen
 * round-robin. The list is the main thread's (start, stop, the control
 * socket); a device itself is only touched on its worker, so each call
 * here posts the work there and waits for it.
 */
#include "vfio_nvme.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "nvme_dev.h"
#include "worker.h"

struct dev_entry {
	char nqn[CFG_NQN_MAX];
	char path[108];
	struct worker *w;
	bool mmap_doorbells;
	struct vnvme_dev *d;
	struct dev_entry *next;
};

static struct dev_entry *devs;
/* The target's workers spin (poll = yes): set by vfio_nvme_start, before
 * any device; devices added later by the control socket share it. */
static bool workers_poll;

/* ---- running a step on a device's worker and waiting for it ---- */

struct call {
	struct worker_msg msg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct dev_entry *e;
	int err;
};

static void call_done(void *arg)
{
	struct call *c = arg;

	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void call_run(struct dev_entry *e, void (*fn)(struct worker_msg *m), struct call *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->e = e;
	c->msg.fn = fn;
	worker_post(e->w, &c->msg);
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

static void create_msg(struct worker_msg *m)
{
	struct call *c = (struct call *)m;

	c->e->d = vnvme_dev_new(c->e->w, c->e->nqn, c->e->path, c->e->mmap_doorbells,
				workers_poll);
	c->err = c->e->d ? 0 : errno;
	call_done(c);
}

static void stop_msg(struct worker_msg *m)
{
	struct call *c = (struct call *)m;

	vnvme_dev_stop(c->e->d, call_done, c);
}

/* ---- start and stop ---- */

int vfio_nvme_check(const struct subsys_config *sc, char *err, size_t errlen)
{
	const char *path = sc->vfio_user_socket;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	/* A directory that does not exist yet is no error here: a socket in
	 * data_dir finds it made by the namespaces; vfio_nvme_add says it. */
	if (!path[0])
		return 0;
	for (struct dev_entry *e = devs; e; e = e->next)
		if (strcmp(e->path, path) == 0) {
			snprintf(err, errlen, "%s: [vfio-user] socket: %s: already serves %s",
				 sc->file, path, e->nqn);
			return -1;
		}
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: [vfio-user] socket: %s: %s",
						       sc->file, path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: [vfio-user] socket: %s: exists and is not a socket",
			 sc->file, path);
		return -1;
	}
	/* A socket file: left by a killed run (replaced), or in use. */
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(fd);
		snprintf(err, errlen, "%s: [vfio-user] socket: %s: another process listens on it",
			 sc->file, path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

int vfio_nvme_add(const struct subsys_config *sc, char *err, size_t errlen)
{
	struct dev_entry *e;
	struct call c;

	if (!sc->vfio_user_socket[0])
		return 0;
	if (vfio_nvme_check(sc, err, errlen) != 0)
		return -1;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->w = worker_next())) {
		free(e);
		snprintf(err, errlen, "%s: [vfio-user] socket: no worker", sc->file);
		return -1;
	}
	snprintf(e->nqn, sizeof(e->nqn), "%s", sc->nqn);
	snprintf(e->path, sizeof(e->path), "%s", sc->vfio_user_socket);
	e->mmap_doorbells = !sc->vfio_user_msg_doorbells;
	call_run(e, create_msg, &c);
	if (!e->d) {
		char dir[sizeof(e->path)];

		snprintf(dir, sizeof(dir), "%s", e->path);
		if (c.err == ENOENT)
			snprintf(err, errlen, "%s: [vfio-user] socket: %s: directory %s does not exist",
				 sc->file, e->path, dirname(dir));
		else
			snprintf(err, errlen, "%s: [vfio-user] socket: %s: %s", sc->file, e->path,
				 strerror(c.err));
		free(e);
		return -1;
	}
	e->next = devs;
	devs = e;
	return 0;
}

int vfio_nvme_start(const struct target_config *cfg, char *err, size_t errlen)
{
	workers_poll = cfg->poll;
	for (int i = 0; i < cfg->nr_subsys; i++)
		if (vfio_nvme_check(&cfg->subsys[i], err, errlen) != 0)
			return -1;
	for (int i = 0; i < cfg->nr_subsys; i++)
		if (vfio_nvme_add(&cfg->subsys[i], err, errlen) != 0) {
			vfio_nvme_stop();
			return -1;
		}
	return 0;
}

static void entry_stop(struct dev_entry *e)
{
	struct call c;

	call_run(e, stop_msg, &c);
	free(e);
}

void vfio_nvme_remove(const char *nqn)
{
	for (struct dev_entry **p = &devs; *p; p = &(*p)->next)
		if (strcmp((*p)->nqn, nqn) == 0) {
			struct dev_entry *e = *p;

			*p = e->next;
			entry_stop(e);
			return;
		}
}

void vfio_nvme_stop(void)
{
	while (devs) {
		struct dev_entry *e = devs;

		devs = e->next;
		entry_stop(e);
	}
}
