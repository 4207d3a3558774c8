/*
 * Namespace pre-start checks (ns_precheck.h). The file size test uses an
 * unnamed O_TMPFILE file in the directory that would hold the namespace (or
 * its deepest existing ancestor, on the same file system): it never shows up
 * in the directory and vanishes with its descriptor, even on a crash.
 */
#include "ns_precheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "errmsg.h"
#include "zone.h"

/* Deepest existing directory on the way to path (path itself if it exists)
 * into out; -1 with err if a part of path exists but is not a directory. */
static int existing_dir(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	struct stat st;

	if (snprintf(out, outlen, "%s", path) >= (int)outlen)
		return errmsg(err, errlen, "%s: path too long", path);
	for (;;) {
		if (stat(out, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return errmsg(err, errlen, "%s: %s is not a directory", path, out);
			return 0;
		}
		if (errno != ENOENT)
			return errmsg(err, errlen, "%s: %s: %s", path, out, strerror(errno));
		char *slash = strrchr(out, '/');
		if (!slash) { /* a relative path none of whose parts exists */
			snprintf(out, outlen, ".");
		} else if (slash == out) {
			out[1] = '\0';
		} else {
			*slash = '\0';
		}
	}
}

/* Whether the file system of dir takes a file of size bytes. */
static int size_fits(const char *dir, const char *path, const char *what, uint64_t size,
		     char *err, size_t errlen)
{
	char tmpl[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE here: a named file, unlinked at once. */
		if (snprintf(tmpl, sizeof(tmpl), "%s/.znstgt-check-XXXXXX", dir) >= (int)sizeof(tmpl))
			return errmsg(err, errlen, "%s: path too long", path);
		fd = mkstemp(tmpl);
		if (fd >= 0)
			unlink(tmpl);
	}
	if (fd < 0)
		return errmsg(err, errlen, "%s: cannot create files in %s: %s", path, dir,
			      strerror(errno));
	int rc = size > (uint64_t)INT64_MAX ? EFBIG : ftruncate(fd, (off_t)size) ? errno : 0;
	close(fd);
	if (rc)
		return errmsg(err, errlen, "%s: the file system refuses a %s of %llu bytes: %s",
			      path, what, (unsigned long long)size, strerror(rc));
	return 0;
}

int ns_precheck(const struct ns_config *cfg, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	if (existing_dir(cfg->path, dir, sizeof(dir), err, errlen))
		return -1;
	if (access(dir, W_OK | X_OK) != 0)
		return errmsg(err, errlen, "%s: %s: %s", cfg->path, dir, strerror(errno));
	if (size_fits(dir, cfg->path, "data file", cfg->size, err, errlen))
		return -1;
	if (cfg->zoned && size_fits(dir, cfg->path, "zone journal", cfg->journal_size, err, errlen))
		return -1;
	return 0;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

void ns_fresh_note(const struct ns_config *cfg, struct ns_fresh *f)
{
	char why[64];
	struct stat st;

	memset(f, 0, sizeof(*f));
	f->dir_existed = stat(cfg->path, &st) == 0;
	if (f->dir_existed)
		f->fresh = S_ISDIR(st.st_mode) && dir_empty(cfg->path);
	else
		f->fresh = errno == ENOENT &&
			   existing_dir(cfg->path, f->top, sizeof(f->top), why, sizeof(why)) == 0;
}

void ns_fresh_undo(const struct ns_config *cfg, const struct ns_fresh *f)
{
	char path[PATH_MAX];
	DIR *d;

	if (!f->fresh || !(d = opendir(cfg->path)))
		return;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_type == DT_REG &&
		    snprintf(path, sizeof(path), "%s/%s", cfg->path, e->d_name) < (int)sizeof(path))
			unlink(path);
	closedir(d);
	if (f->dir_existed)
		return;
	/* The directories mkdir made, deepest first; rmdir leaves any that
	 * something else has put files in meanwhile. */
	snprintf(path, sizeof(path), "%s", cfg->path);
	for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
		path[n - 1] = '\0';
	while (strcmp(path, f->top) != 0 && rmdir(path) == 0) {
		char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = '\0';
	}
}

uint64_t ns_data_needed(struct zns *z, uint32_t *last)
{
	uint64_t need = 0;

	*last = 0;
	for (uint32_t i = 0; i < zns_nr_zones(z); i++) {
		uint64_t wp = zns_zone_wp(z, i);
		if (zns_zone_state(z, i) != NVME_ZNS_ZS_OFFLINE && wp > zns_zslba(z, i) &&
		    wp << z->g.lba_shift > need) {
			need = wp << z->g.lba_shift;
			*last = i;
		}
	}
	return need;
}
