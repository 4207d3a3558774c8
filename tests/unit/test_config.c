/*
 * Configuration: good files parse to the expected structures, every bad key
 * or value is refused with a message naming file, section and key, include
 * globs, relative paths, size strings, the built-in default and the shipped
 * znstgt.ini + conf/zoned.ini (which must describe the same target).
 *
 * Each test writes its files into a fresh mkdtemp() directory:
 *   DIR/znstgt.ini, DIR/conf/s.ini, DIR/conf/t.ini
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define INCLUDE_CONF "[target]\ninclude = conf/*.ini\n"
#define SUBSYS_A "[subsystem]\nnqn = nqn.2024-01.com.example:a\n"
/* Valid secrets: keys 00 01 .. 1f, 20 .. 3f, 40 .. 7f and 64 .. 83 with their CRC-32. */
#define KEY_H "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define KEY_C "DHHC-1:01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj/jBqb2:"
#define KEY_64 "DHHC-1:03:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fx/Gj1o=:"
#define KEY_PSK "NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:"
/* KEY_H with one base64 digit of its CRC changed. */
#define KEY_BAD_CRC "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiAR:"
#define HOST_H "nqn.2024-01.com.example:h"

struct tdir {
	char path[128];
};

/* snprintf that fails the test instead of truncating. */
static void fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(out, len, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

static int setup_dir(void **state)
{
	struct tdir *d = calloc(1, sizeof(*d));
	fmt(d->path, sizeof(d->path), "/tmp/znstgt-config-XXXXXX");
	if (!mkdtemp(d->path))
		return -1;
	*state = d;
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown_dir(void **state)
{
	struct tdir *d = *state;
	nftw(d->path, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
	return 0;
}

static void write_bytes(const struct tdir *d, const char *rel, const char *text, size_t len)
{
	char path[PATH_MAX];
	fmt(path, sizeof(path), "%s/%s", d->path, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0755); /* conf/ and friends; may exist */
	*slash = '/';
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void write_file(const struct tdir *d, const char *rel, const char *text)
{
	write_bytes(d, rel, text, strlen(text));
}

/* Write the files (NULL: not written) and load DIR/znstgt.ini. */
static int load(const struct tdir *d, const char *main_ini, const char *s, const char *t,
		struct target_config *cfg, char *err, size_t errlen)
{
	write_file(d, "znstgt.ini", main_ini);
	if (s)
		write_file(d, "conf/s.ini", s);
	if (t)
		write_file(d, "conf/t.ini", t);
	char path[PATH_MAX];
	fmt(path, sizeof(path), "%s/znstgt.ini", d->path);
	err[0] = '\0';
	return config_load(path, cfg, err, errlen);
}

static void in_dir(char *out, size_t len, const struct tdir *d, const char *rel)
{
	fmt(out, len, "%s/%s", d->path, rel);
}

/* ---- good files ---- */

static void check_defaults(const struct target_config *cfg, const struct tdir *d)
{
	char p[PATH_MAX];
	assert_int_equal(cfg->nr_listeners, 1);
	assert_string_equal(cfg->listeners[0].addr, "127.0.0.1");
	assert_string_equal(cfg->listeners[0].port, "4420");
	assert_int_equal(cfg->threads, 0);
	assert_int_equal(cfg->io_threads, 4);
	assert_false(cfg->poll);
	in_dir(p, sizeof(p), d, "data");
	assert_string_equal(cfg->data_dir, p);
	assert_string_equal(cfg->log_level, "info");
	assert_string_equal(cfg->discovery_nqn, "nqn.2014-08.org.nvmexpress.discovery");
	assert_string_equal(cfg->control_socket, "");
	assert_int_equal(cfg->max_connections, 4096);
	assert_int_equal(cfg->max_host_connections, 1024);
	assert_int_equal(cfg->max_controllers, 1024);
	assert_int_equal(cfg->nr_subsys, 1);
	const struct subsys_config *sc = &cfg->subsys[0];
	in_dir(p, sizeof(p), d, "conf/s.ini");
	assert_string_equal(sc->file, p);
	assert_string_equal(sc->nqn, "nqn.2024-01.com.example:a");
	/* Derived from the NQN: 16 hex digits, the same on every load. */
	assert_int_equal(strlen(sc->serial), 16);
	assert_int_equal(strspn(sc->serial, "0123456789abcdef"), 16);
	assert_string_equal(sc->model, "znstgt");
	assert_true(sc->allow_any_host); /* no hosts listed */
	assert_int_equal(sc->nr_hosts, 0);
	assert_int_equal(sc->nr_ns, 0);
	assert_string_equal(sc->vfio_user_socket, "");
}

static void check_target_keys(const struct target_config *cfg, const struct tdir *d)
{
	char p[PATH_MAX];
	assert_int_equal(cfg->nr_listeners, 4);
	assert_string_equal(cfg->listeners[0].addr, "0.0.0.0");
	assert_string_equal(cfg->listeners[0].port, "4420");
	assert_string_equal(cfg->listeners[1].addr, "::1");
	assert_string_equal(cfg->listeners[1].port, "4421");
	assert_string_equal(cfg->listeners[2].addr, "10.0.0.1");
	assert_string_equal(cfg->listeners[2].port, "4420"); /* default port */
	assert_string_equal(cfg->listeners[3].addr, "::");
	assert_string_equal(cfg->listeners[3].port, "8009");
	assert_int_equal(cfg->threads, 8);
	assert_int_equal(cfg->io_threads, 2);
	assert_true(cfg->poll);
	assert_string_equal(cfg->data_dir, "/var/lib/znstgt");
	assert_string_equal(cfg->log_level, "debug");
	assert_string_equal(cfg->discovery_nqn, "nqn.2024-01.com.example:discovery");
	in_dir(p, sizeof(p), d, "run/ctl.sock");
	assert_string_equal(cfg->control_socket, p);
	assert_int_equal(cfg->max_connections, 2000);
	assert_int_equal(cfg->max_host_connections, 1);
	assert_int_equal(cfg->max_controllers, 65519);
	assert_int_equal(cfg->nr_subsys, 0);
}

static void check_ns_keys(const struct target_config *cfg, const struct tdir *d)
{
	const struct subsys_config *sc = &cfg->subsys[0];
	assert_string_equal(sc->serial, "SN-0001");
	assert_string_equal(sc->model, "Zoned Test Drive");
	assert_false(sc->allow_any_host);
	assert_int_equal(sc->nr_hosts, 3);
	assert_string_equal(sc->hosts[0], "nqn.2014-08.org.nvmexpress:uuid:0f01fb42-9f7f-4856-b0b3-51e60b8de349");
	assert_string_equal(sc->hosts[1], "nqn.2024-01.com.example:h2");
	assert_string_equal(sc->hosts[2], "nqn.2024-01.com.example:h3");
	assert_string_equal(sc->vfio_user_socket, "/run/znstgt/vfio.sock");
	assert_true(sc->vfio_user_msg_doorbells);
	assert_int_equal(sc->nr_ns, 1);
	const struct ns_config *ns = &sc->ns[0];
	assert_int_equal(ns->nsid, 7);
	assert_string_equal(ns->path, "/srv/ns7");
	assert_int_equal(ns->size, 2ull << 30);
	assert_int_equal(ns->lba_size, 512);
	assert_true(ns->zoned);
	assert_int_equal(ns->zone_size, 16ull << 20);
	assert_int_equal(ns->zone_capacity, 12ull << 20);
	assert_int_equal(ns->max_open, 8);
	assert_int_equal(ns->max_active, 12);
	assert_int_equal(ns->zone_append_max, 1u << 20);
	assert_int_equal(ns->zde_size, 128);
	assert_false(ns->cross_zone_read);
	assert_true(ns->write_cache);
	assert_int_equal(ns->offline_count, 0);
	assert_int_equal(ns->offline_list_len, 3);
	assert_int_equal(ns->offline_list[0], 1);
	assert_int_equal(ns->offline_list[1], 5);
	assert_int_equal(ns->offline_list[2], 9);
	assert_int_equal(ns->readonly_count, 4);
	assert_int_equal(ns->readonly_list_len, 0);
	assert_int_equal(ns->journal_size, 1ull << 20);
	assert_true(ns->preallocate);
	assert_int_equal(ns->zrwa_size, 64u << 10);
	assert_int_equal(ns->zrwa_flush_granularity, 16u << 10);
	assert_int_equal(ns->zrwa_resources, 4);
	assert_true(ns->have_uuid);
	static const uint8_t uuid[16] = { 0x91, 0xfd, 0xba, 0x0d, 0xf8, 0x7b, 0x4c, 0x25,
					  0xb8, 0x0f, 0xdb, 0x7b, 0xe1, 0x41, 0x8b, 0x9e };
	assert_memory_equal(ns->uuid, uuid, 16);
}

static void check_ns_defaults(const struct target_config *cfg, const struct tdir *d)
{
	char p[PATH_MAX];
	const struct subsys_config *sc = &cfg->subsys[0];
	assert_int_equal(sc->nr_ns, 3);
	/* Sorted by nsid whatever the order in the file. */
	assert_int_equal(sc->ns[0].nsid, 1);
	assert_int_equal(sc->ns[1].nsid, 2);
	assert_int_equal(sc->ns[2].nsid, 3);
	const struct ns_config *ns = &sc->ns[0];
	in_dir(p, sizeof(p), d, "data/s/ns1");
	assert_string_equal(ns->path, p);
	assert_int_equal(ns->size, 256ull << 20);
	assert_int_equal(ns->lba_size, 4096);
	assert_true(ns->zoned);
	assert_int_equal(ns->zone_size, 64ull << 20);
	assert_int_equal(ns->zone_capacity, 64ull << 20);
	assert_int_equal(ns->max_open, 0);
	assert_int_equal(ns->max_active, 0);
	assert_int_equal(ns->zone_append_max, 128u << 10);
	assert_int_equal(ns->zde_size, 0);
	assert_true(ns->cross_zone_read);
	assert_false(ns->write_cache);
	assert_int_equal(ns->offline_count + ns->offline_list_len, 0);
	assert_int_equal(ns->readonly_count + ns->readonly_list_len, 0);
	assert_int_equal(ns->journal_size, 64ull << 20);
	assert_false(ns->preallocate);
	assert_int_equal(ns->zrwa_size, 0);
	assert_int_equal(ns->zrwa_resources, 0);
	assert_false(ns->have_uuid);
	/* Relative path: below data_dir. */
	in_dir(p, sizeof(p), d, "data/fast/two");
	assert_string_equal(sc->ns[1].path, p);
	/* Conventional. */
	ns = &sc->ns[2];
	assert_false(ns->zoned);
	assert_int_equal(ns->size, 1ull << 20);
	assert_int_equal(ns->lba_size, 512);
	/* [vfio-user] socket relative to data_dir too. */
	in_dir(p, sizeof(p), d, "data/v.sock");
	assert_string_equal(sc->vfio_user_socket, p);
	assert_false(sc->vfio_user_msg_doorbells); /* mmap'd doorbells by default */
}

static void check_syntax(const struct target_config *cfg, const struct tdir *d)
{
	const struct subsys_config *sc = &cfg->subsys[0];
	assert_string_equal(sc->nqn, "nqn.2024-01.com.example:a");
	assert_string_equal(sc->model, "m");
	assert_int_equal(sc->nr_ns, 1);
	assert_int_equal(sc->ns[0].size, 64ull << 20);
	assert_false(sc->ns[0].write_cache);
	assert_int_equal(cfg->threads, 3);
}

static void check_zone_sets(const struct target_config *cfg, const struct tdir *d)
{
	const struct ns_config *ns = &cfg->subsys[0].ns[0];
	assert_int_equal(ns->offline_count, 2);
	assert_int_equal(ns->offline_list_len, 0);
	assert_int_equal(ns->readonly_list_len, 3);
	assert_int_equal(ns->readonly_list[0], 0);
	assert_int_equal(ns->readonly_list[1], 3);
	assert_int_equal(ns->readonly_list[2], 13);
	/* Two subsystems, in sorted file order. */
	assert_int_equal(cfg->nr_subsys, 2);
	assert_string_equal(cfg->subsys[1].nqn, "nqn.2024-01.com.example:b");
	assert_int_equal(cfg->subsys[1].ns[0].readonly_count, 16); /* every zone */
}

struct good_case {
	const char *name;
	const char *main_ini;
	const char *s, *t;
	void (*check)(const struct target_config *cfg, const struct tdir *d);
};

static const struct good_case good[] = {
	{ "defaults", INCLUDE_CONF, SUBSYS_A, NULL, check_defaults },
	{ "target keys",
	  "[target]\n"
	  "listen = 0.0.0.0:4420, [::1]:4421\n"
	  "listen = 10.0.0.1\n"
	  "listen = [::]:8009\n"
	  "threads = 8\nio_threads = 2\npoll = yes\ndata_dir = /var/lib/znstgt\nlog_level = DEBUG\n"
	  "discovery_nqn = nqn.2024-01.com.example:discovery\n"
	  "control_socket = run/ctl.sock\n"
	  "max_connections = 2000\nmax_connections_per_host = 1\nmax_controllers = 65519\n",
	  NULL, NULL, check_target_keys },
	{ "every namespace key", INCLUDE_CONF,
	  "[subsystem]\n"
	  "nqn = nqn.2024-01.com.example:a\n"
	  "serial = SN-0001\nmodel = Zoned Test Drive\n"
	  "allow_any_host = no\n"
	  "host = nqn.2014-08.org.nvmexpress:uuid:0f01fb42-9f7f-4856-b0b3-51e60b8de349\n"
	  "allowed_hosts = nqn.2024-01.com.example:h2 , nqn.2024-01.com.example:h3\n"
	  "[vfio-user]\nsocket = /run/znstgt/vfio.sock\ndoorbells = message\n"
	  "[namespace 7]\n"
	  "path = /srv/ns7\nsize = 2G\nlba_size = 512\nzoned = on\nzone_size = 16M\n"
	  "zone_capacity = 12M\nmax_open = 8\nmax_active = 12\nzone_append_max = 1M\n"
	  "zde_size = 128\ncross_zone_read = false\nwrite_cache = TRUE\n"
	  "offline_zones = list:1,5, 9\nread_only_zones = 4\njournal_size = 1M\n"
	  "preallocate = yes\nuuid = 91fdba0d-f87b-4c25-b80f-db7be1418b9e\n"
	  "zrwa_size = 64K\nzrwa_flush_granularity = 16K\nzrwa_resources = 4\n",
	  NULL, check_ns_keys },
	{ "namespace defaults", INCLUDE_CONF,
	  SUBSYS_A
	  "[namespace 3]\nsize = 1M\nzoned = no\nlba_size = 512\n"
	  "[namespace 1]\nsize = 256M\n"
	  "[namespace 2]\nsize = 64M\npath = fast/two\n"
	  "[vfio-user]\nsocket = v.sock\n",
	  NULL, check_ns_defaults },
	{ "comments, blanks, indentation", "; main\n[target] ; here\n  include = conf/*.ini\n\tthreads = 3 ; three\n",
	  "\xef\xbb\xbf# BOM, then a comment\n"
	  "[subsystem]\n"
	  "   nqn = nqn.2024-01.com.example:a   \n"
	  "   model = m\n"
	  "\n"
	  "[namespace 1]   # trailing comment\n"
	  "  size = 64M\r\n"
	  "  write_cache = 0\n",
	  NULL, check_syntax },
	{ "zone sets, two files", INCLUDE_CONF,
	  SUBSYS_A "[namespace 1]\nsize = 1G\noffline_zones = 2\nread_only_zones = list:0,3,13\n",
	  "[subsystem]\nnqn = nqn.2024-01.com.example:b\n"
	  "[namespace 1]\nsize = 1G\nread_only_zones = 16\n",
	  check_zone_sets },
};

static void test_good_files(void **state)
{
	struct tdir *d = *state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct target_config cfg;
		char err[512];
		/* Each case in its own directory: no files left from the previous. */
		struct tdir cd;
		fmt(cd.path, sizeof(cd.path), "%s/%zu", d->path, i);
		assert_int_equal(mkdir(cd.path, 0755), 0);
		int r = load(&cd, good[i].main_ini, good[i].s, good[i].t, &cfg, err, sizeof(err));
		if (r != 0)
			fail_msg("case \"%s\": %s", good[i].name, err);
		good[i].check(&cfg, &cd);
		config_free(&cfg);
	}
}

/* ---- bad files: the message names file, section and key ---- */

struct bad_case {
	const char *main_ini;   /* NULL: INCLUDE_CONF */
	const char *s, *t;      /* conf/s.ini, conf/t.ini */
	const char *file;       /* file the message must name */
	const char *section;    /* NULL: none in the message */
	const char *key;        /* NULL: none in the message */
	const char *what;       /* part of the description */
};

#define T "znstgt.ini"
#define S "conf/s.ini"
#define NS1 SUBSYS_A "[namespace 1]\n"
#define LONG_LINE "[target]\ninclude = conf/" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"

static const struct bad_case bad[] = {
	/* syntax */
	{ "[target]\nthreads 4\n", NULL, NULL, T, NULL, "line 2", "expected key = value" },
	{ "[target]\nthreads: 4\n", NULL, NULL, T, NULL, "line 2", "expected key = value" },
	{ "[target]\n= 4\n", NULL, NULL, T, NULL, "line 2", "key name missing" },
	{ "[target\n", NULL, NULL, T, NULL, "line 1", "without ']'" },
	{ "[target] threads = 4\n", NULL, NULL, T, NULL, "line 1", "text after the section" },
	{ LONG_LINE, NULL, NULL, T, NULL, "line 2", "line too long" },
	{ "threads = 4\n[target]\n", NULL, NULL, T, NULL, "threads", "outside any section" },
	/* [target] */
	{ "[targt]\n", NULL, NULL, T, "targt", NULL, "unknown section (expected [target]" },
	{ "[subsystem]\nnqn = nqn.2024-01.com.example:a\n", NULL, NULL, T, "subsystem", NULL,
	  "subsystems go in their own files" },
	{ "[target]\n[target]\n", NULL, NULL, T, "target", NULL, "given twice" },
	{ "[target]\nthreds = 2\n", NULL, NULL, T, "target", "threds", "unknown key (expected one of: listen, threads," },
	{ "[target]\nthreads = 2\nthreads = 3\n", NULL, NULL, T, "target", "threads", "given more than once" },
	{ "[target]\nthreads =\n", NULL, NULL, T, "target", "threads", "no value (expected a number" },
	{ "[target]\nthreads = -1\n", NULL, NULL, T, "target", "threads", "not a number in 0..1024" },
	{ "[target]\nthreads = 2000\n", NULL, NULL, T, "target", "threads", "not a number in 0..1024" },
	{ "[target]\nio_threads = 0\n", NULL, NULL, T, "target", "io_threads", "not a number in 1..1024" },
	{ "[target]\npoll = sometimes\n", NULL, NULL, T, "target", "poll", "\"sometimes\" is not yes or no" },
	{ "[target]\nlisten = 1.2.3.4:99999\n", NULL, NULL, T, "target", "listen", "\"1.2.3.4:99999\" has a port that is not a number in 1..65535" },
	{ "[target]\nlisten = 1.2.3.4:\n", NULL, NULL, T, "target", "listen", "\"1.2.3.4:\" has a port that is not" },
	{ "[target]\nlisten = ::1:4420\n", NULL, NULL, T, "target", "listen", "\"::1:4420\" looks like IPv6 without brackets" },
	{ "[target]\nlisten = [::1:4420\n", NULL, NULL, T, "target", "listen", "has no ']' after the IPv6" },
	{ "[target]\nlisten = [::1]4420\n", NULL, NULL, T, "target", "listen", "has text after ']' that is not :PORT" },
	{ "[target]\nlisten = [1.2.3.4]:4420\n", NULL, NULL, T, "target", "listen", "\"[1.2.3.4]:4420\" has no numeric IPv6 address" },
	{ "[target]\nlisten = localhost:4420\n", NULL, NULL, T, "target", "listen", "\"localhost:4420\" is not a numeric IPv4 address" },
	{ "[target]\nlisten = 1.2.3.4:4420, 1.2.3.4:4420\n", NULL, NULL, T, "target", "listen", "listed twice" },
	{ "[target]\nlisten = 1.2.3.4:4420,\n", NULL, NULL, T, "target", "listen", "empty item" },
	/* One IPv6 address, two spellings: the same listener twice. */
	{ "[target]\nlisten = [::1]:4420, [0::1]:4420\n", NULL, NULL, T, "target", "listen", "listed twice" },
	{ "[target]\nlisten = [FE80::1]\nlisten = [fe80:0:0::1]:4420\n", NULL, NULL, T, "target", "listen", "listed twice" },
	{ "[target]\nlisten = [::1]\ntls_listen = [0:0:0:0:0:0:0:1]\n", NULL, NULL, T, "target", "tls_listen", "listed twice (in listen too)" },
	{ "[target]\nlog_level = loud\n", NULL, NULL, T, "target", "log_level", "not a log level (expected error, warn" },
	{ "[target]\ndiscovery_nqn = discovery\n", NULL, NULL, T, "target", "discovery_nqn", "does not start with \"nqn.\"" },
	{ "[target]\nmax_connections = 0\n", NULL, NULL, T, "target", "max_connections", "\"0\" is not a number in 1..1048576" },
	{ "[target]\nmax_connections = 1048577\n", NULL, NULL, T, "target", "max_connections", "not a number in 1..1048576" },
	{ "[target]\nmax_connections_per_host = -1\n", NULL, NULL, T, "target", "max_connections_per_host", "not a number in 1..1048576" },
	{ "[target]\nmax_controllers = 65520\n", NULL, NULL, T, "target", "max_controllers", "not a number in 1..65519" },
	{ "[target]\ninclude = conf/missing.ini\n", NULL, NULL, T, "target", "include", "no such file" },
	{ "[target]\ninclude = conf/*.ini\ninclude = conf/s.ini\n", SUBSYS_A, NULL, T, "target", "include", "matched twice" },
	{ "[target]\ncontrol_socket = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	  NULL, NULL, T, "target", "control_socket", "longer than 107 bytes" },
	/* [subsystem] */
	{ NULL, "[namespace 1]\nsize = 1G\n", NULL, S, NULL, NULL, "no [subsystem] section" },
	{ NULL, "[subsystem]\nmodel = x\n", NULL, S, "subsystem", "nqn", "missing (expected nqn." },
	{ NULL, "[subsystem]\nnqn = iqn.2024-01.com.example:a\n", NULL, S, "subsystem", "nqn", "does not start with \"nqn.\"" },
	{ NULL, "[subsystem]\nnqn = nqn.24-01.com.example:a\n", NULL, S, "subsystem", "nqn", "date yyyy-mm" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-13.com.example:a\n", NULL, S, "subsystem", "nqn", "month" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-01.com.example\n", NULL, S, "subsystem", "nqn", "no ':'" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-01.com..example:a\n", NULL, S, "subsystem", "nqn", "empty label" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-01.com.exa_mple:a\n", NULL, S, "subsystem", "nqn", "only letters, digits" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-01.com.example:\n", NULL, S, "subsystem", "nqn", "nothing after the ':'" },
	{ NULL, "[subsystem]\nnqn = nqn.2024-01.com.example:a b\n", NULL, S, "subsystem", "nqn", "blank or control" },
	{ NULL, "[subsystem]\nnqn = nqn.2014-08.org.nvmexpress:uuid:1234\n", NULL, S, "subsystem", "nqn", "UUID in 8-4-4-4-12" },
	{ NULL, "[subsystem]\nnqn = nqn.2014-08.org.nvmexpress.discovery\n", NULL, S, "subsystem", "nqn", "is the well-known discovery NQN" },
	{ NULL, SUBSYS_A "serial = 123456789012345678901\n", NULL, S, "subsystem", "serial", "21 characters long (expected 1..20 printable" },
	{ NULL, SUBSYS_A "serial = caf\xc3\xa9\n", NULL, S, "subsystem", "serial", "outside printable ASCII" },
	{ NULL, SUBSYS_A "model = 12345678901234567890123456789012345678901\n", NULL, S, "subsystem", "model", "41 characters long (expected 1..40" },
	{ NULL, SUBSYS_A "allow_any_host = maybe\n", NULL, S, "subsystem", "allow_any_host", "\"maybe\" is not a boolean (expected yes or no)" },
	{ NULL, SUBSYS_A "allow_any_host = no\n", NULL, S, "subsystem", "allow_any_host", "nobody could connect" },
	{ NULL, SUBSYS_A "allow_any_host = yes\nhost = nqn.2024-01.com.example:h\n", NULL, S, "subsystem", "allow_any_host", "hosts are listed too" },
	{ NULL, SUBSYS_A "host = hostname\n", NULL, S, "subsystem", "host", "host \"hostname\": does not start" },
	{ NULL, SUBSYS_A "allowed_hosts = nqn.2024-01.com.example:h,nqn.2024-01.com.example:h\n", NULL, S, "subsystem", "allowed_hosts", "listed twice" },
	{ NULL, SUBSYS_A "host = nqn.2024-01.com.example:h\nallowed_hosts = nqn.2024-01.com.example:h\n", NULL, S, "subsystem", "allowed_hosts", "listed twice" },
	{ NULL, SUBSYS_A "[subsystem]\n", NULL, S, "subsystem", NULL, "given twice" },
	{ NULL, SUBSYS_A "[target]\n", NULL, S, "target", NULL, "[target] belongs in the main file" },
	{ NULL, SUBSYS_A "[namespace]\n", NULL, S, "namespace", NULL, "unknown section" },
	{ NULL, SUBSYS_A "[namespace 0]\n", NULL, S, "namespace 0", NULL, "bad namespace ID" },
	{ NULL, SUBSYS_A "[namespace 65]\n", NULL, S, "namespace 65", NULL, "bad namespace ID" },
	{ NULL, SUBSYS_A "[namespace one]\n", NULL, S, "namespace one", NULL, "bad namespace ID" },
	{ NULL, SUBSYS_A "[namespace 01]\n", NULL, S, "namespace 01", NULL, "without leading zeros" },
	{ NULL, SUBSYS_A "[namespace 0x1]\n", NULL, S, "namespace 0x1", NULL, "bad namespace ID" },
	{ NULL, SUBSYS_A "[namespace +1]\n", NULL, S, "namespace +1", NULL, "bad namespace ID" },
	{ NULL, SUBSYS_A "[namespace  1]\n", NULL, S, "namespace  1", NULL, "bad namespace ID" },
	{ NULL, NS1 "size = 1G\n[namespace 1]\n", NULL, S, "namespace 1", NULL, "namespace ID 1 given twice" },
	{ NULL, SUBSYS_A "[vfio-user]\n", NULL, S, "vfio-user", "socket", "missing" },
	{ NULL, SUBSYS_A "[vfio-user]\nsocket = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	  NULL, S, "vfio-user", "socket", "too long" },
	{ NULL, SUBSYS_A "[vfio-user]\nsocket = v.sock\ndoorbells = polled\n", NULL, S, "vfio-user", "doorbells",
	  "\"polled\" is neither mmap nor message (expected mmap or message)" },
	/* [host NQN] and [target] tls_listen */
	{ NULL, SUBSYS_A "[host hostname]\n", NULL, S, "host hostname", NULL, "does not start with \"nqn.\"" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\n[host " HOST_H "]\n", NULL, S, "host " HOST_H, NULL, "section given twice" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_BAD_CRC "\n", NULL, S, "host " HOST_H, "dhchap_secret", "CRC-32 does not match" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_PSK "\n", NULL, S, "host " HOST_H, "dhchap_secret", "does not start with \"DHHC-1:\"" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\npsk = " KEY_H "\n", NULL, S, "host " HOST_H, "psk", "does not start with \"NVMeTLSkey-1:\"" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_H "\ndhchap_secret = " KEY_C "\n", NULL, S, "host " HOST_H, "dhchap_secret", "given more than once" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_H "\ndhchap_secret_file = k\n", NULL, S, "host " HOST_H, "dhchap_secret_file", "conf/k: No such file" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_ctrl_secret = " KEY_C "\n", NULL, S, "host " HOST_H, "dhchap_ctrl_secret", "given without dhchap_secret" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_hashes = sha256\n", NULL, S, "host " HOST_H, "dhchap_hashes", "given without dhchap_secret" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_H "\ndhchap_hashes = sha256,md5\n", NULL, S, "host " HOST_H, "dhchap_hashes", "\"md5\" is not a hash (expected a comma list of sha256" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_secret = " KEY_H "\ndhchap_dhgroups = ffdhe1024\n", NULL, S, "host " HOST_H, "dhchap_dhgroups", "\"ffdhe1024\" is not a DH group" },
	{ NULL, SUBSYS_A "[host " HOST_H "]\ndhchap_key = " KEY_H "\n", NULL, S, "host " HOST_H, "dhchap_key", "unknown key (expected one of: dhchap_secret," },
	{ NULL, SUBSYS_A "[host " HOST_H "]\npsk_file = /nonexistent/psk\n", NULL, S, "host " HOST_H, "psk_file", "/nonexistent/psk" },
	{ NULL, SUBSYS_A "allow_any_host = yes\n[host " HOST_H "]\n", NULL, S, "subsystem", "allow_any_host", "hosts are listed too" },
	{ NULL, SUBSYS_A "host = " HOST_H "\n[host " HOST_H "]\nhost = " HOST_H "\n", NULL, S, "host " HOST_H, "host", "unknown key" },
	{ NULL, SUBSYS_A "host = " HOST_H "\nallowed_hosts = " HOST_H "\n[host " HOST_H "]\n", NULL, S, "subsystem", "allowed_hosts", "listed twice" },
	{ "[target]\ntls_listen = 1.2.3.4:99999\n", NULL, NULL, T, "target", "tls_listen", "has a port that is not a number" },
	{ "[target]\nlisten = 1.2.3.4:4420\ntls_listen = 1.2.3.4:4420\n", NULL, NULL, T, "target", "tls_listen", "listed twice (in listen too)" },
	{ "[target]\ntls_listen = 1.2.3.4:4420\nlisten = 1.2.3.4:4420\n", NULL, NULL, T, "target", "listen", "listed twice (in tls_listen too)" },
	/* [namespace N]: single keys */
	{ NULL, NS1, NULL, S, "namespace 1", "size", "missing" },
	{ NULL, NS1 "size = 0\n", NULL, S, "namespace 1", "size", "0 bytes (expected a size" },
	{ NULL, NS1 "size = 1.5G\n", NULL, S, "namespace 1", "size", "\"1.5G\" is not a size" },
	{ NULL, NS1 "size = 1G\nzise = 1G\n", NULL, S, "namespace 1", "zise", "unknown key" },
	{ NULL, NS1 "size = 1G\nlba_size = 1024\n", NULL, S, "namespace 1", "lba_size", "\"1024\" is not a supported LBA size (expected 512 or 4096)" },
	{ NULL, NS1 "size = 1G\nzoned = maybe\n", NULL, S, "namespace 1", "zoned", "not a boolean" },
	{ NULL, NS1 "size = 1G\nzone_size = 48M\n", NULL, S, "namespace 1", "zone_size", "\"48M\" is not a power of two" },
	{ NULL, NS1 "size = 1G\nzone_capacity = 0\n", NULL, S, "namespace 1", "zone_capacity", "0 bytes" },
	{ NULL, NS1 "size = 1G\nmax_open = lots\n", NULL, S, "namespace 1", "max_open", "not a number" },
	{ NULL, NS1 "size = 1G\nmax_active = -1\n", NULL, S, "namespace 1", "max_active", "not a number" },
	{ NULL, NS1 "size = 1G\nzone_append_max = 2K\n", NULL, S, "namespace 1", "zone_append_max", "power of two in 8K..1M" },
	{ NULL, NS1 "size = 1G\nzone_append_max = 96K\n", NULL, S, "namespace 1", "zone_append_max", "power of two in 8K..1M" },
	{ NULL, NS1 "size = 1G\nzone_append_max = 4G\n", NULL, S, "namespace 1", "zone_append_max", "power of two in 8K..1M" },
	{ NULL, NS1 "size = 1G\nzone_append_max = 4K\n", NULL, S, "namespace 1", "zone_append_max", "power of two in 8K..1M" },
	{ NULL, NS1 "size = 1G\nzone_append_max = 2M\n", NULL, S, "namespace 1", "zone_append_max", "power of two in 8K..1M" },
	{ NULL, NS1 "size = 1G\nzde_size = 100\n", NULL, S, "namespace 1", "zde_size", "multiple of 64" },
	{ NULL, NS1 "size = 1G\nzde_size = 16384\n", NULL, S, "namespace 1", "zde_size", "multiple of 64" },
	{ NULL, NS1 "size = 1G\ncross_zone_read = sometimes\n", NULL, S, "namespace 1", "cross_zone_read", "not a boolean" },
	{ NULL, NS1 "size = 1G\nwrite_cache = 2\n", NULL, S, "namespace 1", "write_cache", "not a boolean" },
	{ NULL, NS1 "size = 1G\npreallocate = full\n", NULL, S, "namespace 1", "preallocate", "not a boolean" },
	{ NULL, NS1 "size = 1G\noffline_zones = some\n", NULL, S, "namespace 1", "offline_zones", "neither a count nor list" },
	{ NULL, NS1 "size = 1G\noffline_zones = list:\n", NULL, S, "namespace 1", "offline_zones", "empty item" },
	{ NULL, NS1 "size = 1G\noffline_zones = list:1,x\n", NULL, S, "namespace 1", "offline_zones", "\"x\" is not a zone index" },
	{ NULL, NS1 "size = 1G\nread_only_zones = list:2,2\n", NULL, S, "namespace 1", "read_only_zones", "zone 2 is listed twice" },
	{ NULL, NS1 "size = 1G\nuuid = 91fdba0d-f87b-4c25-b80f-db7be1418b9\n", NULL, S, "namespace 1", "uuid", "not a UUID" },
	{ NULL, NS1 "size = 1G\nuuid = 91fdba0d+f87b-4c25-b80f-db7be1418b9e\n", NULL, S, "namespace 1", "uuid", "not a UUID" },
	{ NULL, NS1 "size = 1G\nuuid = 00000000-0000-0000-0000-000000000000\n", NULL, S, "namespace 1", "uuid", "nil UUID" },
	{ NULL, NS1 "size = 1G\njournal_size = 4K\n", NULL, S, "namespace 1", "journal_size", "\"4K\" is out of range (expected a size from 64K" },
	/* [namespace N]: geometry, checked once the file is read */
	{ NULL, NS1 "size = 1000\nzoned = no\n", NULL, S, "namespace 1", "size", "not a multiple of lba_size 4096" },
	{ NULL, NS1 "size = 1G\nzoned = no\nzone_size = 1M\n", NULL, S, "namespace 1", "zone_size", "only for zoned" },
	{ NULL, NS1 "size = 1G\nzoned = no\nread_only_zones = 1\n", NULL, S, "namespace 1", "read_only_zones", "only for zoned" },
	{ NULL, NS1 "size = 1G\nzone_size = 2K\n", NULL, S, "namespace 1", "zone_size", "2K is smaller than lba_size 4096" },
	{ NULL, NS1 "size = 1G\nzone_capacity = 128M\n", NULL, S, "namespace 1", "zone_capacity", "128M is larger than zone_size 64M" },
	{ NULL, NS1 "size = 1G\nzone_capacity = 1000\n", NULL, S, "namespace 1", "zone_capacity", "not a multiple of lba_size" },
	{ NULL, NS1 "size = 100M\n", NULL, S, "namespace 1", "size", "100M is not a multiple of zone_size 64M" },
	{ NULL, NS1 "size = 1G\nmax_open = 5\nmax_active = 3\n", NULL, S, "namespace 1", "max_open", "more than max_active" },
	{ NULL, NS1 "size = 1G\nmax_active = 17\n", NULL, S, "namespace 1", "max_active", "more than the 16 zones" },
	{ NULL, NS1 "size = 1G\nmax_open = 17\n", NULL, S, "namespace 1", "max_open", "more than the 16 zones" },
	{ NULL, NS1 "size = 1G\nzrwa_size = 1000\n", NULL, S, "namespace 1", "zrwa_size", "not a whole number of blocks up to 65535" },
	{ NULL, NS1 "size = 1G\nzrwa_size = 128M\n", NULL, S, "namespace 1", "zrwa_size", "128M is larger than zone_capacity 64M" },
	{ NULL, NS1 "size = 1G\nzrwa_size = 64K\nzrwa_flush_granularity = 24K\n", NULL, S, "namespace 1", "zrwa_flush_granularity", "24K does not divide both zrwa_size 64K" },
	{ NULL, NS1 "size = 1G\nzrwa_flush_granularity = 16K\n", NULL, S, "namespace 1", "zrwa_flush_granularity", "given without zrwa_size" },
	{ NULL, NS1 "size = 1G\nzrwa_resources = 2\n", NULL, S, "namespace 1", "zrwa_resources", "given without zrwa_size" },
	{ NULL, NS1 "size = 1G\nmax_active = 3\nzrwa_size = 64K\nzrwa_resources = 4\n", NULL, S, "namespace 1", "zrwa_resources", "4 is more than the 3 zones that may be active" },
	{ NULL, NS1 "size = 1G\nzrwa_size = 64K\nzrwa_resources = 0\n", NULL, S, "namespace 1", "zrwa_resources", "is not a number from 1" },
	{ NULL, NS1 "size = 1G\nzoned = no\nzrwa_size = 64K\n", NULL, S, "namespace 1", "zrwa_size", "only for zoned" },
	{ NULL, NS1 "size = 1G\noffline_zones = 17\n", NULL, S, "namespace 1", "offline_zones", "17 zones but the namespace has 16" },
	{ NULL, NS1 "size = 1G\nread_only_zones = list:3,16\n", NULL, S, "namespace 1", "read_only_zones", "zone 16 does not exist" },
	{ NULL, NS1 "size = 1G\noffline_zones = 1\nread_only_zones = 1\n", NULL, S, "namespace 1", "read_only_zones", "both would take the last zones" },
	{ NULL, NS1 "size = 1G\noffline_zones = 2\nread_only_zones = list:0,14\n", NULL, S, "namespace 1", "read_only_zones", "zone 14 is offline too" },
	{ NULL, NS1 "size = 1G\noffline_zones = list:3,15\nread_only_zones = 1\n", NULL, S, "namespace 1", "offline_zones", "zone 15 is read-only too" },
	{ NULL, NS1 "size = 1G\noffline_zones = list:4\nread_only_zones = list:5,4\n", NULL, S, "namespace 1", "read_only_zones", "zone 4 is offline too" },
	{ NULL, NS1 "size = 1G\npath = /x\n[namespace 2]\nsize = 1G\npath = /x\n", NULL, S, "namespace 2", "path", "/x is the directory of [namespace 1] too" },
	{ NULL, NS1 "size = 1G\npath = x\n[namespace 2]\nsize = 1G\npath = ./x/\n", NULL, S, "namespace 2", "path", "data/./x/ is the directory of [namespace 1] too" },
	{ NULL, NS1 "size = 1G\npath = a/b\n[namespace 2]\nsize = 1G\npath = a//c/../b\n", NULL, S, "namespace 2", "path", "is the directory of [namespace 1] too" },
	{ NULL, NS1 "size = 1G\npath = s/ns2\n[namespace 2]\nsize = 1G\n", NULL, S, "namespace 2", "path", "is the directory of [namespace 1] too" },
	{ NULL, NS1 "size = 1G\npath = ../x\n", NULL, S, "namespace 1", "path", "\"../x\" climbs out of data_dir with \"..\" (expected a path inside data_dir" },
	{ NULL, NS1 "size = 1G\npath = a/../../x\n", NULL, S, "namespace 1", "path", "climbs out of data_dir" },
	{ NULL, NS1 "size = 1G\npath = ./..\n", NULL, S, "namespace 1", "path", "climbs out of data_dir" },
	{ NULL, NS1 "size = 1G\nuuid = 91fdba0d-f87b-4c25-b80f-db7be1418b9e\n[namespace 2]\nsize = 1G\nuuid = 91FDBA0D-F87B-4C25-B80F-DB7BE1418B9E\n",
	  NULL, S, "namespace 2", "uuid", "also the uuid of [namespace 1]" },
	/* across files */
	{ NULL, SUBSYS_A, SUBSYS_A, "conf/t.ini", "subsystem", "nqn", "is also used by" },
	{ NULL, NS1 "size = 1G\npath = /x\n", "[subsystem]\nnqn = nqn.2024-01.com.example:b\n[namespace 1]\nsize = 1G\npath = /x\n",
	  "conf/t.ini", "namespace 1", "path", "/x is also used by" },
	{ NULL, NS1 "size = 1G\nuuid = 91fdba0d-f87b-4c25-b80f-db7be1418b9e\n",
	  "[subsystem]\nnqn = nqn.2024-01.com.example:b\n[namespace 4]\nsize = 1G\nuuid = 91fdba0d-f87b-4c25-b80f-db7be1418b9e\n",
	  "conf/t.ini", "namespace 4", "uuid", "also used by" },
	{ NULL, SUBSYS_A "[vfio-user]\nsocket = /run/v.sock\n", "[subsystem]\nnqn = nqn.2024-01.com.example:b\n[vfio-user]\nsocket = /run/v.sock\n",
	  "conf/t.ini", "vfio-user", "socket", "also used by" },
	{ "[target]\ndiscovery_nqn = nqn.2024-01.com.example:a\ninclude = conf/*.ini\n", SUBSYS_A, NULL, S, "subsystem", "nqn", "is the discovery NQN" },
};

static void test_bad_files(void **state)
{
	struct tdir *d = *state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *c = &bad[i];
		struct tdir cd;
		fmt(cd.path, sizeof(cd.path), "%s/%zu", d->path, i);
		assert_int_equal(mkdir(cd.path, 0755), 0);
		struct target_config cfg;
		char err[1024];
		int r = load(&cd, c->main_ini ? c->main_ini : INCLUDE_CONF, c->s, c->t, &cfg, err,
			     sizeof(err));
		char want[512];
		int n = snprintf(want, sizeof(want), "%s/%s: ", cd.path, c->file);
		if (c->section)
			n += snprintf(want + n, sizeof(want) - n, "[%s]%s", c->section, c->key ? " " : ": ");
		if (c->key)
			snprintf(want + n, sizeof(want) - n, "%s: ", c->key);
		if (r != -1 || strncmp(err, want, strlen(want)) != 0 || !strstr(err, c->what))
			fail_msg("bad case %zu: got r=%d \"%s\"\nwant \"%s...%s...\"", i, r, err, want,
				 c->what);
		/* No message quotes any part of a secret. */
		assert_null(strstr(err, "AAECAwQF"));
		assert_null(strstr(err, "ZGVmZ2hp"));
		/* A failed load leaves nothing to free, and freeing again is harmless. */
		assert_null(cfg.subsys);
		assert_int_equal(cfg.nr_subsys, 0);
		config_free(&cfg);
	}
}

static void test_nul_byte(void **state)
{
	struct tdir *d = *state;
	static const char text[] = "[target]\nthreads = 1\0\n";
	write_bytes(d, "znstgt.ini", text, sizeof(text) - 1);
	char path[PATH_MAX], err[256];
	fmt(path, sizeof(path), "%s/znstgt.ini", d->path);
	struct target_config cfg;
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2: contains a NUL byte"));
}

static void test_missing_main_file(void **state)
{
	struct tdir *d = *state;
	char path[PATH_MAX], err[256];
	fmt(path, sizeof(path), "%s/nothere.ini", d->path);
	struct target_config cfg;
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nothere.ini: cannot open: No such file"));
	/* A tiny buffer truncates the message, never overflows. */
	char small[8];
	assert_int_equal(config_load(path, &cfg, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(config_load(path, &cfg, NULL, 0), -1);
}

/* Only regular files are read: a FIFO would block the start (or an
 * add-subsys on the control socket) until someone writes to it, and a
 * device like /dev/zero never ends its first line. */
static void test_not_regular_file(void **state)
{
	struct tdir *d = *state;
	struct target_config cfg;
	char path[PATH_MAX], err[512];

	assert_int_equal(config_load("/dev/null", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/null: not a regular file (expected a configuration file)");

	assert_int_equal(load(d, "[target]\ninclude = /dev/zero\n", NULL, NULL, &cfg, err,
			      sizeof(err)), -1);
	assert_string_equal(err, "/dev/zero: not a regular file (expected a configuration file)");

	in_dir(path, sizeof(path), d, "fifo.ini");
	assert_int_equal(mkfifo(path, 0600), 0);
	struct subsys_config *sc = calloc(1, sizeof(*sc));
	assert_non_null(sc);
	assert_int_equal(config_load_subsys(path, "/x", sc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "fifo.ini: not a regular file"));
	free(sc);

	assert_int_equal(load(d, "[target]\ninclude = *.ini\n", NULL, NULL, &cfg, err,
			      sizeof(err)), -1);
	assert_non_null(strstr(err, "fifo.ini: not a regular file"));
}

/* ---- [host NQN]: secrets inline and in files ---- */

static void write_secret(const struct tdir *d, const char *rel, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	write_file(d, rel, text);
	in_dir(path, sizeof(path), d, rel);
	assert_int_equal(chmod(path, mode), 0);
}

static void assert_key_bytes(const struct nvme_secret *s, uint8_t hash, uint8_t len,
			     uint8_t first)
{
	assert_int_equal(s->hash, hash);
	assert_int_equal(s->len, len);
	for (unsigned i = 0; i < len; i++)
		assert_int_equal(s->key[i], (uint8_t)(first + i));
}

static void test_host_secrets(void **state)
{
	struct tdir *d = *state;
	struct target_config cfg;
	char err[1024];

	char keys[PATH_MAX];
	in_dir(keys, sizeof(keys), d, "conf");
	assert_int_equal(mkdir(keys, 0755), 0);
	in_dir(keys, sizeof(keys), d, "conf/keys");
	assert_int_equal(mkdir(keys, 0700), 0);
	write_secret(d, "conf/keys/h.key", "  " KEY_64 "\n", 0600);
	write_secret(d, "conf/keys/psk", KEY_PSK "\n", 0400);
	int 	r = load(d, "[target]\ninclude = conf/*.ini\ntls_listen = 10.0.0.1:4420, [::1]\n",
		 "[host " HOST_H "]\n"
		 "dhchap_secret = " KEY_H "\n"
		 "dhchap_ctrl_secret = " KEY_C "\n"
		 "psk_file = keys/psk\n"
		 "dhchap_hashes = sha512, sha256\n"
		 "dhchap_dhgroups = null,ffdhe8192\n"
		 SUBSYS_A "allowed_hosts = nqn.2024-01.com.example:x, " HOST_H "\n"
		 "[host nqn.2024-01.com.example:g]\n"
		 "dhchap_secret_file = keys/h.key\n",
		 NULL, &cfg, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	/* Only TLS listeners given: no default plain-text one. */
	assert_int_equal(cfg.nr_listeners, 0);
	assert_int_equal(cfg.nr_tls_listeners, 2);
	assert_string_equal(cfg.tls_listeners[0].addr, "10.0.0.1");
	assert_string_equal(cfg.tls_listeners[1].addr, "::1");
	assert_string_equal(cfg.tls_listeners[1].port, "4420");
	const struct subsys_config *sc = &cfg.subsys[0];
	assert_false(sc->allow_any_host);
	assert_int_equal(sc->nr_hosts, 3); /* the [host] section and the list name one host */
	assert_string_equal(sc->hosts[0], HOST_H);
	assert_string_equal(sc->hosts[1], "nqn.2024-01.com.example:x");
	assert_string_equal(sc->hosts[2], "nqn.2024-01.com.example:g");
	const struct host_auth_config *h = &sc->host_auth[0];
	assert_true(h->section);
	assert_key_bytes(&h->dhchap_secret, 0, 32, 0);
	assert_key_bytes(&h->dhchap_ctrl_secret, 1, 32, 32);
	assert_key_bytes(&h->psk, 1, 32, 100);
	assert_int_equal(h->dhchap_hashes, (1u << 3) | (1u << 1));
	assert_int_equal(h->dhchap_dhgroups, (1u << 0) | (1u << 5));
	assert_false(sc->host_auth[1].section);
	assert_int_equal(sc->host_auth[1].dhchap_secret.len, 0);
	assert_key_bytes(&sc->host_auth[2].dhchap_secret, 3, 64, 64);
	assert_int_equal(sc->host_auth[2].dhchap_ctrl_secret.len, 0);
	assert_int_equal(sc->host_auth[2].dhchap_hashes, 0);
	config_free(&cfg);

	/* A secret file others may read is refused; the message names the
	 * file and its mode, never the key. */
	write_secret(d, "conf/keys/open.key", KEY_H "\n", 0644);
	r = load(d, INCLUDE_CONF, SUBSYS_A "[host " HOST_H "]\ndhchap_secret_file = keys/open.key\n",
		 NULL, &cfg, err, sizeof(err));
	assert_int_equal(r, -1);
	assert_non_null(strstr(err, "conf/s.ini: [host " HOST_H "] dhchap_secret_file: "));
	assert_non_null(strstr(err, "keys/open.key"));
	assert_non_null(strstr(err, "0644"));
	assert_null(strstr(err, "AAECAwQF"));

	/* The text and the file form of one secret exclude each other. */
	r = load(d, INCLUDE_CONF, SUBSYS_A "[host " HOST_H "]\npsk = " KEY_PSK "\n"
		 "psk_file = keys/psk\n", NULL, &cfg, err, sizeof(err));
	assert_int_equal(r, -1);
	assert_non_null(strstr(err, "[host " HOST_H "] psk_file: given beside psk"));
	assert_null(strstr(err, "ZGVmZ2hp"));
}

/* ---- includes and paths ---- */

static void test_include_order(void **state)
{
	struct tdir *d = *state;
	write_file(d, "conf/b.ini", "[subsystem]\nnqn = nqn.2024-01.com.example:b\n");
	write_file(d, "conf/a.ini", "[subsystem]\nnqn = nqn.2024-01.com.example:a\n");
	write_file(d, "conf/c.txt", "not included\n");
	write_file(d, "more/0.ini", "[subsystem]\nnqn = nqn.2024-01.com.example:0\n");
	write_file(d, "empty/.keep", "");
	struct target_config cfg;
	char err[512];
	/* Patterns in any order, an empty directory, a named file: sorted paths. */
	int r = load(d, "[target]\ninclude = more/0.ini\ninclude = empty/*.ini\ninclude = conf/*.ini\n",
		     NULL, NULL, &cfg, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	assert_int_equal(cfg.nr_subsys, 3);
	assert_string_equal(cfg.subsys[0].nqn, "nqn.2024-01.com.example:a");
	assert_string_equal(cfg.subsys[1].nqn, "nqn.2024-01.com.example:b");
	assert_string_equal(cfg.subsys[2].nqn, "nqn.2024-01.com.example:0");
	char p[PATH_MAX];
	in_dir(p, sizeof(p), d, "more/0.ini");
	assert_string_equal(cfg.subsys[2].file, p);
	config_free(&cfg);
}

static void test_relative_data_dir(void **state)
{
	struct tdir *d = *state;
	struct target_config cfg;
	char err[512], p[PATH_MAX];
	int r = load(d, "[target]\ndata_dir = ../state\ninclude = conf/*.ini\n",
		     SUBSYS_A "[namespace 2]\nsize = 64M\n", NULL, &cfg, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	in_dir(p, sizeof(p), d, "../state");
	assert_string_equal(cfg.data_dir, p);
	in_dir(p, sizeof(p), d, "../state/s/ns2");
	assert_string_equal(cfg.subsys[0].ns[0].path, p);
	config_free(&cfg);

	/* Main file named by a relative path: paths stay relative to the cwd. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(d->path), 0);
	write_file(d, "sub/znstgt.ini", "[target]\ninclude = conf/*.ini\n");
	write_file(d, "sub/conf/x.ini", SUBSYS_A "[namespace 1]\nsize = 64M\n");
	r = config_load("sub/znstgt.ini", &cfg, err, sizeof(err));
	assert_int_equal(chdir(cwd), 0);
	if (r)
		fail_msg("%s", err);
	assert_string_equal(cfg.data_dir, "sub/data");
	assert_string_equal(cfg.subsys[0].ns[0].path, "sub/data/x/ns1");
	assert_string_equal(cfg.subsys[0].file, "sub/conf/x.ini");
	config_free(&cfg);
}

/* Two spellings of one directory, across files: a symlink, absolute against
 * relative. The message names both namespaces and both spellings. */
static void test_same_directory_spellings(void **state)
{
	struct tdir *d = *state;
	struct target_config cfg;
	char err[1024], real[PATH_MAX], link[PATH_MAX], s_ini[PATH_MAX + 64], t_ini[PATH_MAX + 64];

	in_dir(real, sizeof(real), d, "real");
	in_dir(link, sizeof(link), d, "data");
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(mkdir(link, 0755), 0);
	in_dir(link, sizeof(link), d, "data/link");
	assert_int_equal(symlink(real, link), 0);

	fmt(s_ini, sizeof(s_ini), NS1 "size = 1G\npath = link/ns\n");
	fmt(t_ini, sizeof(t_ini), "[subsystem]\nnqn = nqn.2024-01.com.example:b\n"
	    "[namespace 3]\nsize = 1G\npath = %s//ns/\n", real);
	assert_int_equal(load(d, INCLUDE_CONF, s_ini, t_ini, &cfg, err, sizeof(err)), -1);
	char want[PATH_MAX * 2];
	fmt(want, sizeof(want), "%s/conf/t.ini: [namespace 3] path: %s//ns/ is also used by "
	    "%s/conf/s.ini [namespace 1] as %s/data/link/ns", d->path, real, d->path, d->path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\"\nwant \"%s...\"", err, want);

	/* Absolute against relative, neither directory there yet. */
	fmt(t_ini, sizeof(t_ini), "[subsystem]\nnqn = nqn.2024-01.com.example:b\n"
	    "[namespace 3]\nsize = 1G\npath = %s/data/new/./x\n", d->path);
	assert_int_equal(load(d, INCLUDE_CONF, NS1 "size = 1G\npath = new/x\n", t_ini, &cfg, err,
			      sizeof(err)), -1);
	assert_non_null(strstr(err, "conf/t.ini: [namespace 3] path: "));
	assert_non_null(strstr(err, "[namespace 1] as "));

	/* Different directories behind similar spellings are fine. */
	assert_int_equal(load(d, INCLUDE_CONF, NS1 "size = 1G\npath = link/ns\n",
			      "[subsystem]\nnqn = nqn.2024-01.com.example:b\n"
			      "[namespace 1]\nsize = 1G\npath = link/ns2\n", &cfg, err,
			      sizeof(err)), 0);
	config_free(&cfg);
}

static void test_path_key(void **state)
{
	struct tdir *d = *state;
	char in[PATH_MAX], key[PATH_MAX], want[PATH_MAX], real[PATH_MAX];

	assert_non_null(realpath(d->path, real)); /* /tmp may be a symlink itself */
	fmt(in, sizeof(in), "%s//a/./b/../c/", d->path);
	assert_int_equal(config_path_key(in, key, sizeof(key)), 0);
	fmt(want, sizeof(want), "%s/a/c", real);
	assert_string_equal(key, want);
	assert_int_equal(config_path_key("/", key, sizeof(key)), 0);
	assert_string_equal(key, "/");
	assert_int_equal(config_path_key("/..//./", key, sizeof(key)), 0);
	assert_string_equal(key, "/");
	/* Too small a buffer is an error, not a cut path. */
	assert_int_equal(config_path_key(in, key, 4), -1);
}

/* ---- config_load_subsys ---- */

static void test_load_subsys(void **state)
{
	struct tdir *d = *state;
	write_file(d, "blk.test.ini", SUBSYS_A "[namespace 1]\nsize = 128M\n");
	char path[PATH_MAX], err[256];
	fmt(path, sizeof(path), "%s/blk.test.ini", d->path);
	struct subsys_config *sc = malloc(sizeof(*sc));
	assert_int_equal(config_load_subsys(path, "/var/lib/z", sc, err, sizeof(err)), 0);
	assert_string_equal(sc->file, path);
	/* Stem = file name without its last extension. */
	assert_string_equal(sc->ns[0].path, "/var/lib/z/blk.test/ns1");
	char serial[21];
	fmt(serial, sizeof(serial), "%s", sc->serial);
	/* Same NQN, same serial: stable across loads. */
	assert_int_equal(config_load_subsys(path, "/var/lib/z", sc, err, sizeof(err)), 0);
	assert_string_equal(sc->serial, serial);

	fmt(path, sizeof(path), "%s/none.ini", d->path);
	assert_int_equal(config_load_subsys(path, "/x", sc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "none.ini: cannot open"));
	free(sc);
}

/* ---- the built-in default and the shipped files ---- */

static void test_default(void **state)
{
	struct target_config cfg;
	char err[256];
	assert_int_equal(config_default(&cfg, "/srv/data", err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_listeners, 1);
	assert_string_equal(cfg.listeners[0].addr, "127.0.0.1");
	assert_string_equal(cfg.listeners[0].port, "4420");
	assert_string_equal(cfg.data_dir, "/srv/data");
	assert_int_equal(cfg.nr_subsys, 1);
	const struct subsys_config *sc = &cfg.subsys[0];
	assert_string_equal(sc->nqn, "nqn.2026-11.io.znstgt:zoned0");
	assert_true(sc->allow_any_host);
	assert_int_equal(sc->nr_ns, 1);
	assert_int_equal(sc->ns[0].nsid, 1);
	assert_true(sc->ns[0].zoned);
	assert_int_equal(sc->ns[0].size, 1ull << 30);
	assert_int_equal(sc->ns[0].zone_size, 64ull << 20);
	assert_int_equal(sc->ns[0].zone_capacity, 64ull << 20);
	assert_int_equal(sc->ns[0].lba_size, 4096);
	assert_string_equal(sc->ns[0].path, "/srv/data/zoned/ns1");
	config_free(&cfg);
	assert_null(cfg.subsys);
	config_free(&cfg);

	assert_int_equal(config_default(&cfg, NULL, err, sizeof(err)), 0);
	assert_string_equal(cfg.data_dir, "data");
	assert_string_equal(cfg.subsys[0].ns[0].path, "data/zoned/ns1");
	config_free(&cfg);
}

/* `make check` runs from the repository root, where the shipped files live. */
static void test_shipped_equals_default(void **state)
{
	char root[PATH_MAX], path[PATH_MAX], data[PATH_MAX], err[512];
	assert_non_null(getcwd(root, sizeof(root)));
	fmt(path, sizeof(path), "%s/znstgt.ini", root);
	if (access(path, R_OK) != 0)
		fail_msg("%s not found: run the test from the repository root", path);
	struct target_config shipped, builtin;
	if (config_load(path, &shipped, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	fmt(data, sizeof(data), "%s/data", root);
	assert_int_equal(config_default(&builtin, data, err, sizeof(err)), 0);

	assert_int_equal(shipped.nr_listeners, builtin.nr_listeners);
	assert_memory_equal(shipped.listeners, builtin.listeners,
			    sizeof(shipped.listeners[0]) * (size_t)shipped.nr_listeners);
	assert_int_equal(shipped.threads, builtin.threads);
	assert_int_equal(shipped.io_threads, builtin.io_threads);
	assert_int_equal(shipped.poll, builtin.poll);
	assert_string_equal(shipped.data_dir, builtin.data_dir);
	assert_string_equal(shipped.log_level, builtin.log_level);
	assert_string_equal(shipped.discovery_nqn, builtin.discovery_nqn);
	assert_string_equal(shipped.control_socket, builtin.control_socket);
	assert_int_equal(shipped.nr_subsys, 1);
	assert_int_equal(builtin.nr_subsys, 1);
	/* Everything but the file name: identity, hosts, every namespace key. */
	fmt(path, sizeof(path), "%s/conf/zoned.ini", root);
	assert_string_equal(shipped.subsys[0].file, path);
	memcpy(builtin.subsys[0].file, shipped.subsys[0].file, sizeof(builtin.subsys[0].file));
	assert_memory_equal(&shipped.subsys[0], &builtin.subsys[0], sizeof(shipped.subsys[0]));
	config_free(&shipped);
	config_free(&builtin);
}

/* ---- config_parse_size ---- */

static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "4K", 4096 }, { "4k", 4096 },
		{ "64M", 64ull << 20 }, { "1G", 1ull << 30 }, { "2g", 2ull << 30 },
		{ "2T", 2ull << 40 }, { "007", 7 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ull << 40 },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const char *const bad_sizes[] = {
		"", "K", "-1", "+1", " 1", "1 ", "1KB", "1Ki", "1.5G", "0x10", "1P", "1e3",
		"18446744073709551616",          /* 2^64 */
		"99999999999999999999999",
		"16777216T",                     /* 2^64 by the suffix */
		"17179869184G",
		"18014398509481984K",            /* 2^54 K = 2^64 */
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;
		if (config_parse_size(ok[i].s, &v) != 0 || v != ok[i].v)
			fail_msg("\"%s\": got %llu", ok[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		uint64_t v = 12345;
		if (config_parse_size(bad_sizes[i], &v) != -1 || v != 12345)
			fail_msg("\"%s\" accepted", bad_sizes[i]);
	}
	uint64_t v;
	assert_int_equal(config_parse_size(NULL, &v), -1);
}

/* An IPv6 listener is kept in one canonical spelling, so that an ana_state
 * (or a reload) naming it another way finds it. */
static void test_ipv6_spellings(void **state)
{
	struct tdir *d = *state;
	struct target_config cfg;
	char err[1024];
	int r = load(d, "[target]\nlisten = [0:0::1]:4421, [FE80::A]\n"
		     "ana_state = [::1]:4421 2 inaccessible\n", NULL, NULL, &cfg, err, sizeof(err));
	if (r != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.listeners[0].addr, "::1");
	assert_string_equal(cfg.listeners[1].addr, "fe80::a");
	assert_int_equal(cfg.nr_ana, 1);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_files, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_bad_files, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_ipv6_spellings, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_nul_byte, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_host_secrets, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_missing_main_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_not_regular_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_include_order, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_relative_data_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_same_directory_spellings, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_path_key, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_subsys, setup_dir, teardown_dir),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_shipped_equals_default),
		cmocka_unit_test(test_parse_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
