/*
 * The main file (znstgt.ini): [target] with listeners, threads, the data
 * directory and logging, and `include` globs naming the subsystem files.
 * Loading reads the main file, then every included file in sorted order
 * (config_subsys.c), then checks what no single file can see: NQNs, paths,
 * UUIDs and sockets used twice.
 */
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BUILTIN_NAME "(built-in)"

enum {
	TK_LISTEN, TK_THREADS, TK_IO_THREADS, TK_DATA_DIR, TK_LOG_LEVEL, TK_DISCOVERY_NQN,
	TK_CONTROL_SOCKET, TK_INCLUDE, TK_MAX_CONNECTIONS, TK_MAX_HOST_CONNECTIONS,
	TK_MAX_CONTROLLERS, TK_TLS_LISTEN, TK_POLL, TK_ANA_STATE
};

/* Upper bounds of the limit keys: a million connections is past what one
 * process can hold open; controller IDs run 1..FFEFh (NVMe Base 2.0, 5.15.2.2). */
#define MAX_CONNECTIONS_MAX (1u << 20)
#define MAX_CONTROLLERS_MAX 0xffefu

struct target_ctx {
	struct target_config *cfg;
	char dir[4096];              /* the main file's directory: base of relative paths */
	bool have_target;
	uint32_t seen;
	char **include;              /* patterns joined to dir, in the order given */
	size_t nr_include;
};

/* ---- [target] keys ---- */

/* One address of listen or tls_listen: an address serves plain text or TLS,
 * never both, so a duplicate in either list is refused. */
static const char *add_to(struct target_config *cfg, bool tls, const char *item, char *why,
			  size_t whylen)
{
	struct listener_config l = { 0 };
	const char *problem = cfg_parse_listener(item, &l);
	if (problem)
		return cfg_bad(why, whylen, item, problem);
	for (int t = 0; t < 2; t++) {
		const struct listener_config *list = t ? cfg->tls_listeners : cfg->listeners;
		int nr = t ? cfg->nr_tls_listeners : cfg->nr_listeners;
		for (int i = 0; i < nr; i++)
			if (strcmp(list[i].addr, l.addr) == 0 && strcmp(list[i].port, l.port) == 0) {
				snprintf(why, whylen, "%s is listed twice%s", item,
					 t != tls ? t ? " (in tls_listen too)" : " (in listen too)" : "");
				return why;
			}
	}
	int *nr = tls ? &cfg->nr_tls_listeners : &cfg->nr_listeners;
	if (*nr == CFG_MAX_LISTENERS)
		return "more than 16 listeners";
	(tls ? cfg->tls_listeners : cfg->listeners)[(*nr)++] = l;
	return NULL;
}

static const char *add_listener(void *obj, const char *item, char *why, size_t whylen)
{
	return add_to(((struct target_ctx *)obj)->cfg, false, item, why, whylen);
}

static const char *add_tls_listener(void *obj, const char *item, char *why, size_t whylen)
{
	return add_to(((struct target_ctx *)obj)->cfg, true, item, why, whylen);
}

static const char *set_listen(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_each_item(v, obj, add_listener, why, whylen);
}

static const char *set_tls_listen(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_each_item(v, obj, add_tls_listener, why, whylen);
}

static const char *set_threads(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	uint32_t n;
	if (cfg_parse_u32(v, 0, 1024, &n) != 0)
		return cfg_bad(why, whylen, v, "is not a number in 0..1024");
	cfg->threads = (int)n;
	return NULL;
}

static const char *set_io_threads(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	uint32_t n;
	if (cfg_parse_u32(v, 1, 1024, &n) != 0)
		return cfg_bad(why, whylen, v, "is not a number in 1..1024");
	cfg->io_threads = (int)n;
	return NULL;
}

static const char *set_poll(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	if (cfg_parse_bool(v, &cfg->poll) != 0)
		return cfg_bad(why, whylen, v, "is not yes or no");
	return NULL;
}

static const char *set_data_dir(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_ctx *ctx = obj;
	if (cfg_join_path(ctx->cfg->data_dir, sizeof(ctx->cfg->data_dir), ctx->dir, v) != 0)
		return "path too long";
	return NULL;
}

static const char *set_log_level(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	if (log_level_parse(v) < 0)
		return cfg_bad(why, whylen, v, "is not a log level");
	/* log_level_parse() accepted it, so it is one of the short names. */
	size_t i;
	for (i = 0; v[i] && i < sizeof(cfg->log_level) - 1; i++)
		cfg->log_level[i] = (char)tolower((unsigned char)v[i]);
	cfg->log_level[i] = '\0';
	return NULL;
}

static const char *set_discovery_nqn(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	if (strcmp(v, CFG_WELL_KNOWN_DISCOVERY_NQN) != 0) {
		const char *problem = cfg_nqn_problem(v, why, whylen);
		if (problem)
			return problem;
	}
	snprintf(cfg->discovery_nqn, sizeof(cfg->discovery_nqn), "%s", v);
	return NULL;
}

static const char *set_control_socket(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_ctx *ctx = obj;
	/* control_socket has room for exactly the CFG_SOCKET_PATH_MAX bytes of sun_path. */
	if (cfg_join_path(ctx->cfg->control_socket, sizeof(ctx->cfg->control_socket), ctx->dir,
			  v) != 0) {
		snprintf(why, whylen, "longer than %d bytes once joined to the main file's "
			 "directory", CFG_SOCKET_PATH_MAX - 1);
		return why;
	}
	return NULL;
}

static const char *add_include(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_ctx *ctx = obj;
	char pattern[4096];
	if (cfg_join_path(pattern, sizeof(pattern), ctx->dir, v) != 0)
		return "pattern too long";
	char **more = realloc(ctx->include, (ctx->nr_include + 1) * sizeof(*more));
	if (!more)
		return "out of memory";
	ctx->include = more;
	if (!(ctx->include[ctx->nr_include] = strdup(pattern)))
		return "out of memory";
	ctx->nr_include++;
	return NULL;
}

static const char *set_limit(const char *v, uint32_t max, uint32_t *out, char *why, size_t whylen)
{
	if (cfg_parse_u32(v, 1, max, out) != 0) {
		snprintf(why, whylen, "\"%s\" is not a number in 1..%u", v, max);
		return why;
	}
	return NULL;
}

static const char *set_max_connections(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	return set_limit(v, MAX_CONNECTIONS_MAX, &cfg->max_connections, why, whylen);
}

static const char *set_max_host_connections(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	return set_limit(v, MAX_CONNECTIONS_MAX, &cfg->max_host_connections, why, whylen);
}

static const char *set_max_controllers(void *obj, const char *v, char *why, size_t whylen)
{
	struct target_config *cfg = ((struct target_ctx *)obj)->cfg;
	return set_limit(v, MAX_CONTROLLERS_MAX, &cfg->max_controllers, why, whylen);
}

static const char *set_ana_state(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_ana_state_add(((struct target_ctx *)obj)->cfg, v, why, whylen);
}

static const struct cfg_key target_keys[] = {
	[TK_LISTEN] = { "listen", "ADDR:PORT or [IPv6]:PORT, comma separated", true, set_listen },
	[TK_THREADS] = { "threads", "a number of worker threads, 0 = one per CPU", false,
			 set_threads },
	[TK_IO_THREADS] = { "io_threads", "a number of I/O threads, at least 1", false,
			    set_io_threads },
	[TK_DATA_DIR] = { "data_dir", "a directory", false, set_data_dir },
	[TK_LOG_LEVEL] = { "log_level", "error, warn, info or debug", false, set_log_level },
	[TK_DISCOVERY_NQN] = { "discovery_nqn", "nqn.2014-08.org.nvmexpress.discovery or an NQN",
			       false, set_discovery_nqn },
	[TK_CONTROL_SOCKET] = { "control_socket", "a UNIX socket path", false, set_control_socket },
	[TK_INCLUDE] = { "include", "a file or glob such as conf/*.ini", true, add_include },
	[TK_MAX_CONNECTIONS] = { "max_connections", "a number of TCP connections, at least 1",
				 false, set_max_connections },
	[TK_MAX_HOST_CONNECTIONS] = { "max_connections_per_host", "a number of queues, at "
				      "least 1", false, set_max_host_connections },
	[TK_TLS_LISTEN] = { "tls_listen", "ADDR:PORT or [IPv6]:PORT, comma separated", true,
			    set_tls_listen },
	[TK_MAX_CONTROLLERS] = { "max_controllers", "a number of controllers per subsystem, "
				 "at least 1", false, set_max_controllers },
	[TK_POLL] = { "poll", "yes or no", false, set_poll },
	[TK_ANA_STATE] = { "ana_state", "LISTENER GROUP STATE", true, set_ana_state },
};

static void open_target_section(struct cfg_file *f, const char *name, struct cfg_section *sec)
{
	struct target_ctx *ctx = f->ctx;
	if (strcmp(name, "target") != 0) {
		cfg_error(f, name, NULL, "unknown section (expected [target]; subsystems go in "
			  "their own files, named by include = ...)");
		return;
	}
	if (ctx->have_target) {
		cfg_error(f, name, NULL, "section given twice (expected one [target])");
		return;
	}
	ctx->have_target = true;
	*sec = (struct cfg_section){ target_keys, sizeof(target_keys) / sizeof(target_keys[0]),
				     ctx, &ctx->seen };
}

/* ---- loading ---- */

static void target_defaults(struct target_config *cfg, const char *data_dir)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->io_threads = 4;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data_dir);
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
	snprintf(cfg->discovery_nqn, sizeof(cfg->discovery_nqn), CFG_WELL_KNOWN_DISCOVERY_NQN);
	cfg->max_connections = CFG_DEFAULT_MAX_CONNECTIONS;
	cfg->max_host_connections = CFG_DEFAULT_MAX_HOST_CONNECTIONS;
	cfg->max_controllers = CFG_DEFAULT_MAX_CONTROLLERS;
}

static void default_listener(struct target_config *cfg)
{
	cfg->nr_listeners = 1;
	snprintf(cfg->listeners[0].addr, sizeof(cfg->listeners[0].addr), "127.0.0.1");
	snprintf(cfg->listeners[0].port, sizeof(cfg->listeners[0].port), "4420");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Every file the include patterns name, sorted, each once. */
static int expand_includes(struct target_ctx *ctx, char ***out, size_t *nr_out, char *err,
			   size_t errlen)
{
	const char *main_file = ctx->cfg->file;
	char **files = NULL;
	size_t nr = 0;
	for (size_t p = 0; p < ctx->nr_include; p++) {
		glob_t g;
		int r = glob(ctx->include[p], GLOB_ERR, NULL, &g);
		if (r == GLOB_NOMATCH) {
			/* An empty conf.d is fine; a named file that is missing is not. */
			if (strpbrk(ctx->include[p], "*?[") == NULL) {
				cfg_error_at(err, errlen, main_file, "target", "include",
					     "%s: no such file (expected an existing file or a glob)",
					     ctx->include[p]);
				goto fail;
			}
			continue;
		}
		if (r != 0) {
			cfg_error_at(err, errlen, main_file, "target", "include",
				     "%s: cannot read: %s (expected a readable directory)",
				     ctx->include[p], r == GLOB_NOSPACE ? "out of memory" : strerror(errno));
			goto fail;
		}
		char **more = realloc(files, (nr + g.gl_pathc) * sizeof(*files));
		if (!more) {
			globfree(&g);
			cfg_error_at(err, errlen, main_file, NULL, NULL, "out of memory");
			goto fail;
		}
		files = more;
		for (size_t i = 0; i < g.gl_pathc; i++) {
			if (!(files[nr] = strdup(g.gl_pathv[i]))) {
				globfree(&g);
				cfg_error_at(err, errlen, main_file, NULL, NULL, "out of memory");
				goto fail;
			}
			nr++;
		}
		globfree(&g);
	}
	if (nr)
		qsort(files, nr, sizeof(*files), cmp_str);
	for (size_t i = 1; i < nr; i++)
		if (strcmp(files[i - 1], files[i]) == 0) {
			cfg_error_at(err, errlen, main_file, "target", "include",
				     "%s is matched twice (expected each subsystem file once)",
				     files[i]);
			goto fail;
		}
	*out = files;
	*nr_out = nr;
	return 0;
fail:
	free_strings(files, nr);
	return -1;
}

static int load_subsystems(struct target_config *cfg, char **files, size_t nr, char *err,
			   size_t errlen)
{
	if (nr == 0)
		return 0;
	cfg->subsys = calloc(nr, sizeof(*cfg->subsys));
	if (!cfg->subsys) {
		cfg_error_at(err, errlen, cfg->file, NULL, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nr; i++) {
		if (config_load_subsys(files[i], cfg->data_dir, &cfg->subsys[i], err, errlen))
			return -1;
		cfg->nr_subsys++;
	}
	return 0;
}

/* Two namespaces, possibly in different files, must not share files or a
 * UUID. ka, kb: their directories in config_path_key() form. */
static int check_ns_pair(const struct subsys_config *a, const struct ns_config *na,
			 const char *ka, const struct subsys_config *b,
			 const struct ns_config *nb, const char *kb, char *err, size_t errlen)
{
	char sec[32];
	snprintf(sec, sizeof(sec), "namespace %u", na->nsid);
	if (strcmp(ka, kb) == 0) {
		cfg_error_at(err, errlen, a->file, sec, "path", "%s is also used by %s [namespace "
			     "%u] as %s (expected a directory per namespace)", na->path, b->file,
			     nb->nsid, nb->path);
		return -1;
	}
	if (na->have_uuid && nb->have_uuid && memcmp(na->uuid, nb->uuid, 16) == 0) {
		cfg_error_at(err, errlen, a->file, sec, "uuid", "also used by %s [namespace %u] "
			     "(expected a unique UUID)", b->file, nb->nsid);
		return -1;
	}
	return 0;
}

static int check_subsystems(const struct target_config *cfg, const char (*const *keys)[PATH_MAX],
			    char *err, size_t errlen)
{
	for (int i = 0; i < cfg->nr_subsys; i++) {
		const struct subsys_config *a = &cfg->subsys[i];
		if (strcmp(a->nqn, cfg->discovery_nqn) == 0) {
			cfg_error_at(err, errlen, a->file, "subsystem", "nqn", "%s is the discovery "
				     "NQN of %s (expected a different NQN)", a->nqn, cfg->file);
			return -1;
		}
		if (a->vfio_user_socket[0] && strcmp(a->vfio_user_socket, cfg->control_socket) == 0) {
			cfg_error_at(err, errlen, a->file, "vfio-user", "socket", "%s is the "
				     "control_socket of %s (expected a socket of its own)",
				     a->vfio_user_socket, cfg->file);
			return -1;
		}
		for (int j = 0; j < i; j++) {
			const struct subsys_config *b = &cfg->subsys[j];
			if (strcmp(a->nqn, b->nqn) == 0) {
				cfg_error_at(err, errlen, a->file, "subsystem", "nqn", "%s is also "
					     "used by %s (expected a unique NQN per subsystem)",
					     a->nqn, b->file);
				return -1;
			}
			if (a->vfio_user_socket[0] &&
			    strcmp(a->vfio_user_socket, b->vfio_user_socket) == 0) {
				cfg_error_at(err, errlen, a->file, "vfio-user", "socket", "%s is "
					     "also used by %s (expected a socket per subsystem)",
					     a->vfio_user_socket, b->file);
				return -1;
			}
			for (int x = 0; x < a->nr_ns; x++)
				for (int y = 0; y < b->nr_ns; y++)
					if (check_ns_pair(a, &a->ns[x], keys[i][x], b, &b->ns[y],
							  keys[j][y], err, errlen))
						return -1;
		}
	}
	return 0;
}

static void free_keys(char (**keys)[PATH_MAX], int n)
{
	for (int i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Checks across files, with every namespace's directory in config_path_key()
 * form (keys[i][x]: namespace x of subsystem i). */
static int check_across_files(const struct target_config *cfg, char *err, size_t errlen)
{
	char (**keys)[PATH_MAX] = calloc((size_t)cfg->nr_subsys + 1, sizeof(*keys));
	int r = keys ? 0 : -1;
	for (int i = 0; i < cfg->nr_subsys && !r; i++)
		if (!(keys[i] = cfg_ns_path_keys(&cfg->subsys[i])))
			r = -1;
	if (r)
		cfg_error_at(err, errlen, cfg->file, NULL, NULL, "out of memory");
	else
		r = check_subsystems(cfg, (const char (*const *)[PATH_MAX])keys, err, errlen);
	if (keys)
		free_keys(keys, cfg->nr_subsys);
	return r;
}

static int load(const char *path, struct target_config *cfg, struct target_ctx *ctx,
		char *err, size_t errlen)
{
	FILE *fp = cfg_open(path, err, errlen);
	if (!fp)
		return -1;
	int r = cfg_parse(fp, path, open_target_section, ctx, err, errlen);
	fclose(fp);
	if (r)
		return -1;
	if (cfg->nr_listeners == 0 && cfg->nr_tls_listeners == 0)
		default_listener(cfg);
	if (cfg_ana_check(cfg, err, errlen))
		return -1;
	char **files = NULL;
	size_t nr = 0;
	if (expand_includes(ctx, &files, &nr, err, errlen))
		return -1;
	r = load_subsystems(cfg, files, nr, err, errlen);
	free_strings(files, nr);
	if (r)
		return -1;
	if (check_across_files(cfg, err, errlen))
		return -1;
	return cfg_tls_listeners_check(cfg, err, errlen);
}

int config_load(const char *path, struct target_config *cfg, char *err, size_t errlen)
{
	struct target_ctx ctx = { .cfg = cfg };
	cfg_dirname(path, ctx.dir, sizeof(ctx.dir));
	char data_dir[4096];
	if (cfg_join_path(data_dir, sizeof(data_dir), ctx.dir, "data") != 0) {
		memset(cfg, 0, sizeof(*cfg));
		cfg_error_at(err, errlen, path, NULL, NULL, "path too long");
		return -1;
	}
	target_defaults(cfg, data_dir);
	snprintf(cfg->file, sizeof(cfg->file), "%s", path);
	int r = load(path, cfg, &ctx, err, errlen);
	free_strings(ctx.include, ctx.nr_include);
	if (r)
		config_free(cfg);
	return r;
}

/*
 * The built-in subsystem, read by the same parser as a file so that its
 * defaults cannot drift from a file's. conf/zoned.ini ships the same text.
 */
static const char builtin_subsys[] =
	"[subsystem]\n"
	"nqn = nqn.2026-11.io.znstgt:zoned0\n"
	"allow_any_host = yes\n"
	"[namespace 1]\n"
	"size = 1G\n"
	"zone_size = 64M\n"
	"lba_size = 4096\n";

int config_default(struct target_config *cfg, const char *data_dir, char *err, size_t errlen)
{
	target_defaults(cfg, data_dir ? data_dir : "data");
	snprintf(cfg->file, sizeof(cfg->file), BUILTIN_NAME);
	default_listener(cfg);
	cfg->subsys = calloc(1, sizeof(*cfg->subsys));
	FILE *fp = fmemopen((void *)builtin_subsys, sizeof(builtin_subsys) - 1, "r");
	int r = -1;
	if (!cfg->subsys || !fp)
		cfg_error_at(err, errlen, BUILTIN_NAME, NULL, NULL, "out of memory");
	else
		r = cfg_subsys_parse(fp, BUILTIN_NAME, "zoned", cfg->data_dir, cfg->subsys, err,
				     errlen);
	if (fp)
		fclose(fp);
	if (r) {
		config_free(cfg);
		return -1;
	}
	cfg->nr_subsys = 1;
	return 0;
}

void config_free(struct target_config *cfg)
{
	for (int i = 0; i < cfg->nr_subsys; i++)
		config_subsys_wipe(&cfg->subsys[i]);
	free(cfg->subsys);
	cfg->subsys = NULL;
	cfg->nr_subsys = 0;
}
