/*
 * Configuration: znstgt.ini (global) plus one INI file per subsystem,
 * pulled in by `include = conf/<glob>.ini` (a glob relative to the main file).
 * Every key has a default and a validation; errors name file, section and
 * key. See doc/configuration.md for every key.
 */
#ifndef ZNSTGT_CONFIG_H
#define ZNSTGT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme_keys.h"

#define CFG_NQN_MAX 224          /* NVMe Base 2.0, 4.5: NQN is at most 223 bytes + NUL */
#define CFG_MAX_LISTENERS 16
#define CFG_MAX_HOSTS 64
#define CFG_MAX_NAMESPACES 64
#define CFG_MAX_ZONE_LIST 256
#define CFG_DEFAULT_MAX_CONNECTIONS 4096u
#define CFG_DEFAULT_MAX_HOST_CONNECTIONS 1024u
#define CFG_DEFAULT_MAX_CONTROLLERS 1024u
#define CFG_MAX_ANA_GROUPS 32    /* ANA group IDs 1..32 (Identify ANAGRPMAX, doc/ana.md) */
#define CFG_MAX_ANA_STATES (CFG_MAX_LISTENERS * 2 * 4) /* ana_state lines */

struct listener_config {
	char addr[64];           /* numeric IPv4 or IPv6 address (no brackets) */
	char port[8];            /* trsvcid, default "4420" */
};

struct ns_config {
	uint32_t nsid;               /* from the section name "[namespace N]", 1..CFG_MAX_NAMESPACES */
	char path[4096];             /* directory holding this namespace's files
				      * (default: <data_dir>/<subsystem file stem>/ns<N>) */
	uint64_t size;               /* bytes; multiple of lba_size (zoned: of zone_size) */
	uint32_t lba_size;           /* 512 or 4096 (default 4096) */
	bool zoned;                  /* default yes */
	uint64_t zone_size;          /* bytes; power of two multiple of lba_size (default 64M) */
	uint64_t zone_capacity;      /* bytes; 0 < cap <= zone_size, multiple of lba_size
				      * (default = zone_size) */
	uint32_t max_open;           /* 0 = no limit (default 0) */
	uint32_t max_active;         /* 0 = no limit; if both set, max_open <= max_active */
	uint32_t zone_append_max;    /* bytes; power of two >= 4096 (default 128K) */
	uint32_t zde_size;           /* bytes; multiple of 64, <= 16320 (default 0) */
	bool cross_zone_read;        /* default yes */
	bool write_cache;            /* default no */
	bool preallocate;            /* allocate the whole data file (default no: sparse) */
	/* Zones taken offline / read-only at power-up: a count (the last N zones)
	 * or an explicit list of zone indexes. */
	uint32_t offline_count;
	uint32_t offline_list[CFG_MAX_ZONE_LIST];
	uint32_t offline_list_len;
	uint32_t readonly_count;
	uint32_t readonly_list[CFG_MAX_ZONE_LIST];
	uint32_t readonly_list_len;
	uint64_t journal_size;       /* bytes of zone journal before a checkpoint (default 64M) */
	/* Zone Random Write Area (doc/zrwa.md): 0 = none (default). */
	uint64_t zrwa_size;          /* bytes; whole blocks, <= zone_capacity */
	uint64_t zrwa_flush_granularity; /* bytes; divides zrwa_size and zone_capacity
					  * (default lba_size) */
	uint32_t zrwa_resources;     /* zones with a ZRWA at once; 0 = as many as may be active */
	uint32_t ana_group;          /* ANA group ID, 1..CFG_MAX_ANA_GROUPS (default 1) */
	bool have_uuid;              /* uuid = given explicitly (blktests --subsys-uuid) */
	uint8_t uuid[16];
	bool recover;                /* not a key: znstgt --recover (doc/recovery.md) */
};

/*
 * A [host NQN] section of a subsystem file: what that host must prove
 * (doc/security.md). A secret whose len is 0 was not given.
 */
struct host_auth_config {
	bool section;                /* a [host NQN] section named this host */
	bool listed;                 /* host = / allowed_hosts named it */
	struct nvme_secret dhchap_secret;      /* DHHC-1: host authentication */
	struct nvme_secret dhchap_ctrl_secret; /* DHHC-1: controller authentication */
	struct nvme_secret psk;                /* NVMeTLSkey-1: configured PSK */
	uint8_t dhchap_hashes;       /* bit n: hash id n allowed (1..3); 0 = all */
	uint8_t dhchap_dhgroups;     /* bit n: DH group id n allowed (0..5); 0 = all */
};

struct subsys_config {
	char file[4096];             /* the INI file it came from */
	char nqn[CFG_NQN_MAX];
	char serial[21];             /* default derived from the NQN (stable) */
	char model[41];              /* default "znstgt" */
	bool allow_any_host;         /* default no, unless no hosts are listed */
	bool require_tls;            /* only TLS 1.3 (tls_listen) reaches it; default no */
	char hosts[CFG_MAX_HOSTS][CFG_NQN_MAX];
	int nr_hosts;
	struct host_auth_config host_auth[CFG_MAX_HOSTS]; /* by index in hosts[] */
	struct ns_config ns[CFG_MAX_NAMESPACES];
	int nr_ns;
	char vfio_user_socket[108];  /* [vfio-user] socket = path (optional) */
	bool vfio_user_msg_doorbells; /* [vfio-user] doorbells = message (default mmap) */
};

/* One ana_state line of [target]: a group's ANA state on one listener. */
struct ana_state_config {
	struct listener_config listener; /* as in listen / tls_listen */
	uint32_t group;
	uint8_t state;               /* NVME_ANA_STATE_* */
};

struct target_config {
	char file[4096];
	struct listener_config listeners[CFG_MAX_LISTENERS];
	int nr_listeners;            /* default one: 127.0.0.1:4420 (none if only tls_listen) */
	struct listener_config tls_listeners[CFG_MAX_LISTENERS]; /* TLS 1.3 required */
	int nr_tls_listeners;
	int threads;                 /* 0 = number of online CPUs */
	int io_threads;              /* default 4 */
	bool poll;                   /* workers spin instead of sleeping (default no) */
	char data_dir[4096];         /* default ./data, relative to the main file's directory */
	char log_level[16];          /* error | warn | info | debug */
	char discovery_nqn[CFG_NQN_MAX]; /* default nqn.2014-08.org.nvmexpress.discovery */
	char control_socket[108];    /* optional UNIX socket for the control tool */
	uint32_t max_connections;    /* TCP connections (queues) at once, default 4096 */
	uint32_t max_host_connections; /* queues bound to one host NQN, default 1024 */
	uint32_t max_controllers;    /* controllers per subsystem, default 1024 */
	struct ana_state_config ana[CFG_MAX_ANA_STATES]; /* not named: optimized */
	int nr_ana;
	struct subsys_config *subsys;
	int nr_subsys;
};

/*
 * Load path and every file it includes. On error returns -1 with a message
 * "FILE: [SECTION] KEY: what is wrong" in err. cfg must be freed with
 * config_free() after a successful load.
 */
int config_load(const char *path, struct target_config *cfg, char *err, size_t errlen);
/* The built-in default (no file): one zoned subsystem on 127.0.0.1:4420. */
int config_default(struct target_config *cfg, const char *data_dir, char *err, size_t errlen);
/* Parse just one subsystem file into sc (used by config_load and the blktests hook). */
int config_load_subsys(const char *path, const char *data_dir, struct subsys_config *sc,
		       char *err, size_t errlen);
/* Wipes every subsystem's secrets, then frees. */
void config_free(struct target_config *cfg);
/* Wipe the secrets of one subsystem configuration (before freeing it). */
void config_subsys_wipe(struct subsys_config *sc);

/*
 * One spelling for every path that names the same directory, to find two
 * namespaces on the same files: absolute, symlinks of the part that exists
 * resolved, "//", "." and ".." folded. Works for paths not created yet.
 * -1 if the path does not fit or the cwd is unknown.
 */
int config_path_key(const char *path, char *out, size_t outlen);
/* Whether a and b name one directory (config_path_key() forms equal; the
 * paths as written when a form cannot be had). */
bool config_same_dir(const char *a, const char *b);

/* "64M", "1G", "4096", "128K": bytes. Returns -1 on junk or overflow. */
int config_parse_size(const char *s, uint64_t *out);

#endif
