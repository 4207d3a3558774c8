/*
 * libFuzzer target for the configuration parser (`make fuzz`): the INI
 * reader, the value parsers, [target], [subsystem], [namespace N],
 * [vfio-user], include globs and the checks across files.
 *
 * The parser reads files (config_load() opens the main file and globs the
 * included ones), so each input becomes a small tree of files in a private
 * directory under /dev/shm (memory, no disk I/O):
 *
 *   the input, split at lines "----":  part 0 -> DIR/znstgt.ini
 *                                       part i -> DIR/conf/i.ini  (i = 1..8)
 *
 * and is loaded twice: config_load(DIR/znstgt.ini), which follows the
 * main file's `include` keys, and config_load_subsys(DIR/conf/1.ini), the
 * entry of the control socket's add-subsys and of the blktests hook.
 *
 * Checked on every input: no crash, leak or sanitizer report; a failure
 * comes with a message; a success holds only what include/config.h
 * promises (checked below); and loading creates no file.
 *
 * Globs are confined to DIR: glob() is wrapped at link time
 * (-Wl,--wrap=glob) so that an include never makes the fuzzer read the
 * machine's files or walk its file system (a glob over / takes seconds);
 * outside DIR every pattern matches nothing, which the parser handles like
 * an empty directory or a missing file.
 */
#include <dirent.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);
int __wrap_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g);

#define MAX_PARTS 9
#define SEPARATOR "\n----\n"

static char dir[64];
static char main_file[96];

int __wrap_glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g)
{
	size_t n = strlen(dir);

	if (strncmp(pattern, dir, n) != 0 || pattern[n] != '/' || strstr(pattern, "/..")) {
		memset(g, 0, sizeof(*g));
		return GLOB_NOMATCH;
	}
	return __real_glob(pattern, flags, errfunc, g);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/dev/shm/znstgt-fuzz-config.%d", (int)getpid());
	snprintf(main_file, sizeof(main_file), "%s/znstgt.ini", dir);
	return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (!fp || (len && fwrite(p, 1, len, fp) != len) || fclose(fp) != 0) {
		perror(path);
		abort();
	}
}

/* Entries of path other than . and .. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void check_string(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();
}

static void check_ns(const struct ns_config *ns)
{
	check_string(ns->path, sizeof(ns->path));
	if (ns->nsid < 1 || ns->nsid > CFG_MAX_NAMESPACES || !ns->path[0])
		abort();
	if (ns->lba_size != 512 && ns->lba_size != 4096)
		abort();
	if (ns->size == 0 || ns->size % ns->lba_size)
		abort();
	if (ns->offline_list_len > CFG_MAX_ZONE_LIST || ns->readonly_list_len > CFG_MAX_ZONE_LIST)
		abort();
	if (!ns->zoned)
		return;
	if (ns->zone_size < ns->lba_size || (ns->zone_size & (ns->zone_size - 1)) ||
	    ns->size % ns->zone_size)
		abort();
	if (ns->zone_capacity == 0 || ns->zone_capacity > ns->zone_size ||
	    ns->zone_capacity % ns->lba_size)
		abort();
	if (ns->max_open && ns->max_active && ns->max_open > ns->max_active)
		abort();
}

static void check_subsys(const struct subsys_config *sc)
{
	check_string(sc->file, sizeof(sc->file));
	check_string(sc->nqn, sizeof(sc->nqn));
	check_string(sc->serial, sizeof(sc->serial));
	check_string(sc->model, sizeof(sc->model));
	check_string(sc->vfio_user_socket, sizeof(sc->vfio_user_socket));
	if (!sc->nqn[0] || sc->nr_hosts < 0 || sc->nr_hosts > CFG_MAX_HOSTS)
		abort();
	if (sc->nr_ns < 0 || sc->nr_ns > CFG_MAX_NAMESPACES)
		abort();
	for (int i = 0; i < sc->nr_hosts; i++)
		check_string(sc->hosts[i], sizeof(sc->hosts[i]));
	for (int i = 0; i < sc->nr_ns; i++) {
		check_ns(&sc->ns[i]);
		for (int j = 0; j < i; j++)
			if (sc->ns[i].nsid == sc->ns[j].nsid)
				abort();
	}
}

static void check_target(const struct target_config *cfg)
{
	check_string(cfg->file, sizeof(cfg->file));
	check_string(cfg->data_dir, sizeof(cfg->data_dir));
	check_string(cfg->log_level, sizeof(cfg->log_level));
	check_string(cfg->discovery_nqn, sizeof(cfg->discovery_nqn));
	check_string(cfg->control_socket, sizeof(cfg->control_socket));
	if (cfg->nr_listeners < 1 || cfg->nr_listeners > CFG_MAX_LISTENERS)
		abort();
	for (int i = 0; i < cfg->nr_listeners; i++) {
		check_string(cfg->listeners[i].addr, sizeof(cfg->listeners[i].addr));
		check_string(cfg->listeners[i].port, sizeof(cfg->listeners[i].port));
	}
	if (cfg->io_threads < 1 || cfg->threads < 0 || log_level_parse(cfg->log_level) < 0)
		abort();
	for (int i = 0; i < cfg->nr_subsys; i++) {
		check_subsys(&cfg->subsys[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(cfg->subsys[i].nqn, cfg->subsys[j].nqn) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	int parts = 0;
	char path[128], err[1024];

	/* The directory lives only while one input is loaded, so that a run
	 * ended by a signal (libFuzzer exits without atexit handlers) leaves
	 * nothing behind in /dev/shm. */
	snprintf(path, sizeof(path), "%s/conf", dir);
	if (mkdir(dir, 0700) != 0 || mkdir(path, 0700) != 0) {
		perror(path);
		abort();
	}

	while (parts < MAX_PARTS) {
		const uint8_t *sep = memmem(p, (size_t)(end - p), SEPARATOR, strlen(SEPARATOR));
		const uint8_t *stop = sep && parts < MAX_PARTS - 1 ? sep + 1 : end;

		if (parts == 0)
			snprintf(path, sizeof(path), "%s", main_file);
		else
			snprintf(path, sizeof(path), "%s/conf/%d.ini", dir, parts);
		write_file(path, p, (size_t)(stop - p));
		parts++;
		if (stop == end)
			break;
		p = sep + strlen(SEPARATOR);
	}

	struct target_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		abort();
	err[0] = '\0';
	if (config_load(main_file, cfg, err, sizeof(err)) == 0) {
		check_target(cfg);
		config_free(cfg);
	} else if (!err[0] || cfg->subsys) {
		abort(); /* a failure without a message, or one that leaves memory held */
	}
	free(cfg);

	if (parts > 1) {
		struct subsys_config *sc = calloc(1, sizeof(*sc));
		if (!sc)
			abort();
		snprintf(path, sizeof(path), "%s/conf/1.ini", dir);
		err[0] = '\0';
		if (config_load_subsys(path, "/var/lib/znstgt", sc, err, sizeof(err)) == 0)
			check_subsys(sc);
		else if (!err[0])
			abort();
		free(sc);
	}

	/* Loading reads; it never creates a file or directory. */
	snprintf(path, sizeof(path), "%s/conf", dir);
	if (count_entries(dir) != 2 || count_entries(path) != parts - 1)
		abort();
	for (int i = 1; i < parts; i++) {
		snprintf(path, sizeof(path), "%s/conf/%d.ini", dir, i);
		unlink(path);
	}
	unlink(main_file);
	snprintf(path, sizeof(path), "%s/conf", dir);
	if (rmdir(path) != 0 || rmdir(dir) != 0)
		abort();
	return 0;
}
