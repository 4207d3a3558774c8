/*
 * A subsystem file: [subsystem] (identity and who may connect), one
 * [namespace N] per namespace (keys and checks in config_ns.c), and
 * optionally [vfio-user]. Keys are checked one by one as they are read;
 * everything that depends on several keys (defaults that follow other keys,
 * hosts vs allow_any_host, duplicates) is checked in finish() once the whole
 * file is in.
 */
#include "config_priv.h"
#include "dhchap.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

enum { SK_NQN, SK_SERIAL, SK_MODEL, SK_ALLOW_ANY_HOST, SK_ALLOWED_HOSTS, SK_HOST,
       SK_REQUIRE_TLS };
enum { VK_SOCKET };
enum { HK_DHCHAP_SECRET, HK_DHCHAP_SECRET_FILE, HK_DHCHAP_CTRL_SECRET,
       HK_DHCHAP_CTRL_SECRET_FILE, HK_PSK, HK_PSK_FILE, HK_DHCHAP_HASHES, HK_DHCHAP_DHGROUPS };

#define BIT(k) (1u << (k))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What the keys of one [host NQN] section fill in. */
struct host_ctx {
	struct subsys_ctx *ctx;
	struct host_auth_config *auth;
	uint32_t seen;
};

struct subsys_ctx {
	struct subsys_config *sc;
	const char *file;                       /* secret files are relative to its directory */
	const char *data_dir;
	const char *stem;
	bool have_subsys, have_vfio;
	uint32_t subsys_seen, vfio_seen;
	uint32_t ns_seen[CFG_MAX_NAMESPACES];   /* by position in sc->ns */
	char vfio_socket[4096];                 /* as written; resolved in finish() */
	struct host_ctx host[CFG_MAX_HOSTS];    /* by index in sc->hosts */
};

/* ---- [subsystem] ---- */

static const char *set_nqn(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	/* NVMe Base 2.0, 4.5: the well-known discovery NQN names the discovery
	 * subsystem of every target; it is no NVM subsystem's name. */
	if (strcmp(v, CFG_WELL_KNOWN_DISCOVERY_NQN) == 0)
		return "is the well-known discovery NQN, reserved for the discovery subsystem "
		       "(expected the NQN of an NVM subsystem)";
	const char *problem = cfg_nqn_problem(v, why, whylen);
	if (problem)
		return problem;
	snprintf(sc->nqn, sizeof(sc->nqn), "%s", v);
	return NULL;
}

/* Serial and model numbers are space-padded ASCII fields in Identify
 * Controller (NVMe Base 2.0: SN 20 bytes, MN 40 bytes). */
static const char *ascii_field(const char *v, size_t max, char *why, size_t whylen)
{
	size_t len = strlen(v);
	if (len > max) {
		snprintf(why, whylen, "%zu characters long", len);
		return why;
	}
	for (const char *c = v; *c; c++)
		if (*c < ' ' || *c > '~')
			return cfg_bad(why, whylen, v, "has a character outside printable ASCII");
	return NULL;
}

static const char *set_serial(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	const char *problem = ascii_field(v, sizeof(sc->serial) - 1, why, whylen);
	if (problem)
		return problem;
	strcpy(sc->serial, v);
	return NULL;
}

static const char *set_model(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	const char *problem = ascii_field(v, sizeof(sc->model) - 1, why, whylen);
	if (problem)
		return problem;
	strcpy(sc->model, v);
	return NULL;
}

static const char *set_allow_any_host(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	if (cfg_parse_bool(v, &sc->allow_any_host) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

static const char *add_host(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	char nqn_why[128];
	const char *problem = cfg_nqn_problem(v, nqn_why, sizeof(nqn_why));
	if (problem) {
		snprintf(why, whylen, "host \"%s\": %s", v, problem);
		return why;
	}
	for (int i = 0; i < sc->nr_hosts; i++)
		if (strcmp(sc->hosts[i], v) == 0) {
			/* Listed once beside its own [host NQN] section: one host. */
			if (sc->host_auth[i].section && !sc->host_auth[i].listed) {
				sc->host_auth[i].listed = true;
				return NULL;
			}
			snprintf(why, whylen, "host \"%s\" is listed twice", v);
			return why;
		}
	if (sc->nr_hosts == CFG_MAX_HOSTS)
		return "more than 64 hosts";
	sc->host_auth[sc->nr_hosts].listed = true;
	snprintf(sc->hosts[sc->nr_hosts++], CFG_NQN_MAX, "%s", v);
	return NULL;
}

static const char *set_allowed_hosts(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_each_item(v, obj, add_host, why, whylen);
}

static const char *set_require_tls(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_config *sc = obj;
	if (cfg_parse_bool(v, &sc->require_tls) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

static const struct cfg_key subsys_keys[] = {
	[SK_NQN] = { "nqn", "nqn.yyyy-mm.reverse.domain:name or "
		     "nqn.2014-08.org.nvmexpress:uuid:UUID", false, set_nqn },
	[SK_SERIAL] = { "serial", "1..20 printable ASCII characters", false, set_serial },
	[SK_MODEL] = { "model", "1..40 printable ASCII characters", false, set_model },
	[SK_ALLOW_ANY_HOST] = { "allow_any_host", "yes or no", false, set_allow_any_host },
	[SK_ALLOWED_HOSTS] = { "allowed_hosts", "a comma list of host NQNs", true, set_allowed_hosts },
	[SK_HOST] = { "host", "one host NQN", true, add_host },
	[SK_REQUIRE_TLS] = { "require_tls", "yes or no", false, set_require_tls },
};

/* ---- [vfio-user] ---- */

static const char *set_socket(void *obj, const char *v, char *why, size_t whylen)
{
	struct subsys_ctx *ctx = obj;
	if (strlen(v) >= sizeof(ctx->vfio_socket))
		return "path too long";
	strcpy(ctx->vfio_socket, v);
	return NULL;
}

static const struct cfg_key vfio_keys[] = {
	[VK_SOCKET] = { "socket", "a UNIX socket path", false, set_socket },
};

/* ---- [host NQN] ---- */

/* A secret given as text. The message names what is wrong, never the text. */
/* Keep a parsed secret (or report why there is none); the copy is wiped
 * with the configuration (config_subsys_wipe). */
static const char *keep_secret(struct nvme_secret *out, struct nvme_secret *s, char *why)
{
	if (!s)
		return why;
	*out = *s;
	nvme_secret_free(s);
	return NULL;
}

static const char *set_secret(struct nvme_secret *out, enum nvme_secret_kind kind,
			      const char *v, char *why, size_t whylen)
{
	return keep_secret(out, nvme_secret_parse(kind, v, why, whylen), why);
}

/* A secret read from a file (relative to the subsystem file's directory),
 * which must not be accessible by group or others. */
static const char *set_secret_file(struct host_ctx *h, struct nvme_secret *out,
				   enum nvme_secret_kind kind, const char *v, char *why,
				   size_t whylen)
{
	char dir[PATH_MAX], path[PATH_MAX];
	cfg_dirname(h->ctx->file, dir, sizeof(dir));
	if (cfg_join_path(path, sizeof(path), dir, v) != 0)
		return "path too long";
	return keep_secret(out, nvme_secret_load_file(kind, path, why, whylen), why);
}

static const char *set_dhchap_secret(void *obj, const char *v, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret(&h->auth->dhchap_secret, NVME_SECRET_DHCHAP, v, why, whylen);
}

static const char *set_dhchap_secret_file(void *obj, const char *v, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret_file(h, &h->auth->dhchap_secret, NVME_SECRET_DHCHAP, v, why, whylen);
}

static const char *set_dhchap_ctrl_secret(void *obj, const char *v, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret(&h->auth->dhchap_ctrl_secret, NVME_SECRET_DHCHAP, v, why, whylen);
}

static const char *set_dhchap_ctrl_secret_file(void *obj, const char *v, char *why,
					       size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret_file(h, &h->auth->dhchap_ctrl_secret, NVME_SECRET_DHCHAP, v, why,
			       whylen);
}

static const char *set_psk(void *obj, const char *v, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret(&h->auth->psk, NVME_SECRET_TLS_PSK, v, why, whylen);
}

static const char *set_psk_file(void *obj, const char *v, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	return set_secret_file(h, &h->auth->psk, NVME_SECRET_TLS_PSK, v, why, whylen);
}

/* Hash names as Linux spells them (nvme-cli, configfs dhchap_hash). */
static const char *const hash_names[] = { [1] = "sha256", [2] = "sha384", [3] = "sha512" };

static const char *add_hash(void *obj, const char *item, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	for (unsigned id = 1; id < ARRAY_SIZE(hash_names); id++)
		if (strcmp(item, hash_names[id]) == 0) {
			h->auth->dhchap_hashes |= (uint8_t)(1u << id);
			return NULL;
		}
	return cfg_bad(why, whylen, item, "is not a hash");
}

static const char *add_dhgroup(void *obj, const char *item, char *why, size_t whylen)
{
	struct host_ctx *h = obj;
	for (uint8_t id = 0; id < DHCHAP_DH_COUNT; id++)
		if (strcmp(item, dhchap_dh_name(id)) == 0) {
			h->auth->dhchap_dhgroups |= (uint8_t)(1u << id);
			return NULL;
		}
	return cfg_bad(why, whylen, item, "is not a DH group");
}

static const char *set_hashes(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_each_item(v, obj, add_hash, why, whylen);
}

static const char *set_dhgroups(void *obj, const char *v, char *why, size_t whylen)
{
	return cfg_each_item(v, obj, add_dhgroup, why, whylen);
}

#define DHHC_EXPECT "DHHC-1:XX:<base64 of secret and CRC-32>: with XX 00..03"
#define DHHC_FILE_EXPECT "a file holding " DHHC_EXPECT ", mode 0600 or stricter"
#define PSK_EXPECT "NVMeTLSkey-1:HH:<base64 of PSK and CRC-32>: with HH 00..02"

static const struct cfg_key host_keys[] = {
	[HK_DHCHAP_SECRET] = { "dhchap_secret", DHHC_EXPECT, false, set_dhchap_secret },
	[HK_DHCHAP_SECRET_FILE] = { "dhchap_secret_file", DHHC_FILE_EXPECT, false,
				    set_dhchap_secret_file },
	[HK_DHCHAP_CTRL_SECRET] = { "dhchap_ctrl_secret", DHHC_EXPECT, false,
				    set_dhchap_ctrl_secret },
	[HK_DHCHAP_CTRL_SECRET_FILE] = { "dhchap_ctrl_secret_file", DHHC_FILE_EXPECT, false,
					 set_dhchap_ctrl_secret_file },
	[HK_PSK] = { "psk", PSK_EXPECT, false, set_psk },
	[HK_PSK_FILE] = { "psk_file", "a file holding " PSK_EXPECT ", mode 0600 or stricter",
			  false, set_psk_file },
	[HK_DHCHAP_HASHES] = { "dhchap_hashes", "a comma list of sha256, sha384, sha512", false,
			       set_hashes },
	[HK_DHCHAP_DHGROUPS] = { "dhchap_dhgroups", "a comma list of null, ffdhe2048, "
				 "ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192", false, set_dhgroups },
};

static void open_host_section(struct cfg_file *f, const char *name, const char *nqn,
			      struct cfg_section *sec)
{
	struct subsys_ctx *ctx = f->ctx;
	struct subsys_config *sc = ctx->sc;
	char why[256];
	const char *problem = cfg_nqn_problem(nqn, why, sizeof(why));
	int i;

	if (problem) {
		cfg_error(f, name, NULL, "host %s (expected [host NQN])", problem);
		return;
	}
	for (i = 0; i < sc->nr_hosts; i++)
		if (strcmp(sc->hosts[i], nqn) == 0)
			break;
	if (i < sc->nr_hosts && sc->host_auth[i].section) {
		cfg_error(f, name, NULL, "section given twice (expected one per host)");
		return;
	}
	if (i == sc->nr_hosts) {
		if (sc->nr_hosts == CFG_MAX_HOSTS) {
			cfg_error(f, name, NULL, "more than %d hosts", CFG_MAX_HOSTS);
			return;
		}
		snprintf(sc->hosts[sc->nr_hosts++], CFG_NQN_MAX, "%s", nqn);
	}
	sc->host_auth[i].section = true;
	ctx->host[i] = (struct host_ctx){ ctx, &sc->host_auth[i], 0 };
	*sec = (struct cfg_section){ host_keys, ARRAY_SIZE(host_keys), &ctx->host[i],
				     &ctx->host[i].seen };
}

/* Keys that exclude or need each other, once the section is read. */
static int check_host(const struct host_ctx *h, const char *file, const char *nqn, char *err,
		      size_t errlen)
{
	static const struct { int a, b; } pairs[] = {
		{ HK_DHCHAP_SECRET, HK_DHCHAP_SECRET_FILE },
		{ HK_DHCHAP_CTRL_SECRET, HK_DHCHAP_CTRL_SECRET_FILE },
		{ HK_PSK, HK_PSK_FILE },
	};
	const uint32_t host_secret = BIT(HK_DHCHAP_SECRET) | BIT(HK_DHCHAP_SECRET_FILE);
	char sec[CFG_NQN_MAX + 8];

	snprintf(sec, sizeof(sec), "host %s", nqn);
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++)
		if ((h->seen & BIT(pairs[i].a)) && (h->seen & BIT(pairs[i].b))) {
			cfg_error_at(err, errlen, file, sec, host_keys[pairs[i].b].name,
				     "given beside %s (expected one of them)",
				     host_keys[pairs[i].a].name);
			return -1;
		}
	if (h->seen & host_secret)
		return 0;
	/* Controller authentication runs inside a host authentication
	 * transaction (NVMe Base 2.0, 8.13.5): it needs the host secret. */
	static const int needs_host_secret[] = { HK_DHCHAP_CTRL_SECRET, HK_DHCHAP_CTRL_SECRET_FILE,
						 HK_DHCHAP_HASHES, HK_DHCHAP_DHGROUPS };
	for (size_t i = 0; i < ARRAY_SIZE(needs_host_secret); i++)
		if (h->seen & BIT(needs_host_secret[i])) {
			cfg_error_at(err, errlen, file, sec, host_keys[needs_host_secret[i]].name,
				     "given without dhchap_secret (expected dhchap_secret or "
				     "dhchap_secret_file too)");
			return -1;
		}
	return 0;
}

void config_subsys_wipe(struct subsys_config *sc)
{
	OPENSSL_cleanse(sc->host_auth, sizeof(sc->host_auth));
}

/* ---- sections ---- */

static void open_section(struct cfg_file *f, const char *name, struct cfg_section *sec)
{
	struct subsys_ctx *ctx = f->ctx;
	struct subsys_config *sc = ctx->sc;

	if (strcmp(name, "subsystem") == 0) {
		if (ctx->have_subsys) {
			cfg_error(f, name, NULL, "section given twice (expected one per file)");
			return;
		}
		ctx->have_subsys = true;
		*sec = (struct cfg_section){ subsys_keys, ARRAY_SIZE(subsys_keys), sc,
					     &ctx->subsys_seen };
		return;
	}
	if (strcmp(name, "vfio-user") == 0) {
		if (ctx->have_vfio) {
			cfg_error(f, name, NULL, "section given twice (expected one per file)");
			return;
		}
		ctx->have_vfio = true;
		*sec = (struct cfg_section){ vfio_keys, ARRAY_SIZE(vfio_keys), ctx, &ctx->vfio_seen };
		return;
	}
	if (strncmp(name, "host ", 5) == 0) {
		open_host_section(f, name, name + 5, sec);
		return;
	}
	if (strncmp(name, "namespace ", 10) == 0) {
		uint32_t nsid;
		if (cfg_parse_id(name + 10, 1, CFG_MAX_NAMESPACES, &nsid) != 0) {
			cfg_error(f, name, NULL,
				  "bad namespace ID (expected [namespace N] with N in 1..%d, in "
				  "decimal without leading zeros)", CFG_MAX_NAMESPACES);
			return;
		}
		for (int i = 0; i < sc->nr_ns; i++)
			if (sc->ns[i].nsid == nsid) {
				cfg_error(f, name, NULL,
					  "namespace ID %u given twice (expected each [namespace N] once)",
					  nsid);
				return;
			}
		/* nsids are distinct and at most CFG_MAX_NAMESPACES, so a slot is free. */
		int i = sc->nr_ns++;
		cfg_ns_defaults(&sc->ns[i], nsid);
		*sec = (struct cfg_section){ cfg_ns_keys, CFG_NR_NS_KEYS, &sc->ns[i],
					     &ctx->ns_seen[i] };
		return;
	}
	cfg_error(f, name, NULL,
		  "unknown section (expected [subsystem], [namespace N] with N in 1..%d, "
		  "[host NQN] or [vfio-user]%s)", CFG_MAX_NAMESPACES,
		  strcmp(name, "target") == 0 ? "; [target] belongs in the main file" : "");
}

/* ---- checks once the whole file is read ---- */

/* Stable default serial: 64-bit FNV-1a of the NQN in hex, so a host sees
 * the same serial number after every restart. */
static void default_serial(struct subsys_config *sc)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)sc->nqn; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	snprintf(sc->serial, sizeof(sc->serial), "%016" PRIx64, h);
}

static int cmp_nsid(const void *a, const void *b)
{
	const struct ns_config *x = a, *y = b;
	return (x->nsid > y->nsid) - (x->nsid < y->nsid);
}

static int check_hosts(struct subsys_ctx *ctx, const char *file, char *err, size_t errlen)
{
	struct subsys_config *sc = ctx->sc;
	if (!(ctx->subsys_seen & BIT(SK_ALLOW_ANY_HOST))) {
		sc->allow_any_host = sc->nr_hosts == 0;
		return 0;
	}
	/* Linux nvmet refuses the same combination: with an allow-list that is
	 * ignored, the user would believe access is restricted when it is not. */
	if (sc->allow_any_host && sc->nr_hosts) {
		cfg_error_at(err, errlen, file, "subsystem", "allow_any_host", "yes, but hosts are "
			     "listed too (expected either allow_any_host = yes or a host list)");
		return -1;
	}
	if (!sc->allow_any_host && !sc->nr_hosts) {
		cfg_error_at(err, errlen, file, "subsystem", "allow_any_host", "no, and no hosts "
			     "are listed, so nobody could connect (expected allowed_hosts = NQN,... "
			     "or allow_any_host = yes)");
		return -1;
	}
	return 0;
}

static int finish(struct subsys_ctx *ctx, const char *file, char *err, size_t errlen)
{
	struct subsys_config *sc = ctx->sc;
	if (!ctx->have_subsys) {
		cfg_error_at(err, errlen, file, NULL, NULL,
			     "no [subsystem] section (expected one, with at least nqn = ...)");
		return -1;
	}
	if (!(ctx->subsys_seen & BIT(SK_NQN))) {
		cfg_error_at(err, errlen, file, "subsystem", "nqn", "missing (expected %s)",
			     subsys_keys[SK_NQN].expect);
		return -1;
	}
	if (!(ctx->subsys_seen & BIT(SK_SERIAL)))
		default_serial(sc);
	for (int i = 0; i < sc->nr_hosts; i++)
		if (sc->host_auth[i].section &&
		    check_host(&ctx->host[i], file, sc->hosts[i], err, errlen))
			return -1;
	if (check_hosts(ctx, file, err, errlen) || cfg_subsys_tls_check(sc, file, err, errlen))
		return -1;
	if (ctx->have_vfio) {
		if (!(ctx->vfio_seen & BIT(VK_SOCKET))) {
			cfg_error_at(err, errlen, file, "vfio-user", "socket", "missing (expected %s)",
				     vfio_keys[VK_SOCKET].expect);
			return -1;
		}
		if (cfg_join_path(sc->vfio_user_socket, sizeof(sc->vfio_user_socket), ctx->data_dir,
				 ctx->vfio_socket) != 0) {
			cfg_error_at(err, errlen, file, "vfio-user", "socket", "too long once joined "
				     "to data_dir (expected at most %d bytes)", CFG_SOCKET_PATH_MAX - 1);
			return -1;
		}
	}
	for (int i = 0; i < sc->nr_ns; i++)
		if (cfg_ns_finish(&sc->ns[i], ctx->ns_seen[i], file, ctx->data_dir, ctx->stem, err,
				  errlen))
			return -1;
	qsort(sc->ns, (size_t)sc->nr_ns, sizeof(sc->ns[0]), cmp_nsid);
	char (*keys)[PATH_MAX] = cfg_ns_path_keys(sc);
	if (!keys) {
		cfg_error_at(err, errlen, file, NULL, NULL, "out of memory");
		return -1;
	}
	int r = 0;
	for (int i = 0; i < sc->nr_ns && !r; i++)
		for (int j = 0; j < i && !r; j++) {
			char sec[32];
			snprintf(sec, sizeof(sec), "namespace %u", sc->ns[i].nsid);
			if (strcmp(keys[i], keys[j]) == 0) {
				cfg_error_at(err, errlen, file, sec, "path", "%s is the directory of "
					     "[namespace %u] too (%s; expected a directory per "
					     "namespace)", sc->ns[i].path, sc->ns[j].nsid, sc->ns[j].path);
				r = -1;
				break;
			}
			if (sc->ns[i].have_uuid && sc->ns[j].have_uuid &&
			    memcmp(sc->ns[i].uuid, sc->ns[j].uuid, 16) == 0) {
				cfg_error_at(err, errlen, file, sec, "uuid", "also the uuid of "
					     "[namespace %u] (expected a unique UUID)", sc->ns[j].nsid);
				r = -1;
			}
		}
	free(keys);
	return r;
}

char (*cfg_ns_path_keys(const struct subsys_config *sc))[PATH_MAX]
{
	char (*keys)[PATH_MAX] = calloc((size_t)(sc->nr_ns ? sc->nr_ns : 1), sizeof(*keys));
	if (!keys)
		return NULL;
	for (int i = 0; i < sc->nr_ns; i++)
		if (config_path_key(sc->ns[i].path, keys[i], sizeof(keys[i])) != 0)
			snprintf(keys[i], sizeof(keys[i]), "%s", sc->ns[i].path);
	return keys;
}

int cfg_subsys_parse(FILE *fp, const char *name, const char *stem, const char *data_dir,
		     struct subsys_config *sc, char *err, size_t errlen)
{
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->file, sizeof(sc->file), "%s", name);
	snprintf(sc->model, sizeof(sc->model), "znstgt");
	struct subsys_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		cfg_error_at(err, errlen, name, NULL, NULL, "out of memory");
		return -1;
	}
	ctx->sc = sc;
	ctx->file = name;
	ctx->data_dir = data_dir ? data_dir : "data";
	ctx->stem = stem;
	int r = cfg_parse(fp, name, open_section, ctx, err, errlen);
	if (r == 0)
		r = finish(ctx, name, err, errlen);
	if (r)
		config_subsys_wipe(sc);
	free(ctx);
	return r;
}

int config_load_subsys(const char *path, const char *data_dir, struct subsys_config *sc,
		       char *err, size_t errlen)
{
	FILE *fp = cfg_open(path, err, errlen);
	if (!fp)
		return -1;
	/* The file's name without directory and extension: conf/zoned.ini -> zoned. */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char stem[256];
	snprintf(stem, sizeof(stem), "%s", base);
	char *dot = strrchr(stem, '.');
	if (dot && dot != stem)
		*dot = '\0';
	int r = cfg_subsys_parse(fp, path, stem, data_dir, sc, err, errlen);
	fclose(fp);
	return r;
}
