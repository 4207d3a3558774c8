/*
 * [namespace N] sections: one key table for every namespace setting, then
 * the checks that need several keys at once (zone geometry, limits, zone
 * sets), run when the whole file has been read.
 */
#include "config_priv.h"

#include <inttypes.h>
#include <string.h>

enum {
	NK_PATH, NK_SIZE, NK_LBA_SIZE, NK_ZONED, NK_ZONE_SIZE, NK_ZONE_CAPACITY, NK_MAX_OPEN,
	NK_MAX_ACTIVE, NK_ZONE_APPEND_MAX, NK_ZDE_SIZE, NK_CROSS_ZONE_READ, NK_WRITE_CACHE,
	NK_OFFLINE_ZONES, NK_READ_ONLY_ZONES, NK_UUID, NK_JOURNAL_SIZE, NK_PREALLOCATE,
	NK_ZRWA_SIZE, NK_ZRWA_FLUSH_GRANULARITY, NK_ZRWA_RESOURCES, NK_ANA_GROUP
};

#define BIT(k) (1u << (k))

/* Keys that mean nothing for a conventional namespace: giving one with
 * zoned = no is a mistake worth reporting. */
#define ZONED_ONLY_KEYS                                                                    \
	(BIT(NK_ZONE_SIZE) | BIT(NK_ZONE_CAPACITY) | BIT(NK_MAX_OPEN) | BIT(NK_MAX_ACTIVE) |   \
	 BIT(NK_ZONE_APPEND_MAX) | BIT(NK_ZDE_SIZE) | BIT(NK_CROSS_ZONE_READ) |                 \
	 BIT(NK_OFFLINE_ZONES) | BIT(NK_READ_ONLY_ZONES) | BIT(NK_JOURNAL_SIZE) |                \
	 BIT(NK_ZRWA_SIZE) | BIT(NK_ZRWA_FLUSH_GRANULARITY) | BIT(NK_ZRWA_RESOURCES))

/* Keys that mean something only with a Zone Random Write Area. */
#define ZRWA_ONLY_KEYS (BIT(NK_ZRWA_FLUSH_GRANULARITY) | BIT(NK_ZRWA_RESOURCES))

/* ZRWAS and ZRWAFG are 16-bit counts of LBAs (Identify Namespace ZNS). */
#define ZRWA_LBAS_MAX 0xffffu

/* Largest Zone Descriptor Extension: ZDES is 8 bits in 64-byte units
 * (ZNS 1.1, Identify Namespace ZNS, LBA Format Extension). */
#define ZDE_SIZE_MAX (255u * 64)

/* ---- keys ---- */

static const char *set_path(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (strlen(v) >= sizeof(ns->path))
		return "path too long";
	if (cfg_path_escapes(v))
		return cfg_bad(why, whylen, v, "climbs out of data_dir with \"..\" (expected a "
			       "path inside data_dir, or an absolute path)");
	strcpy(ns->path, v);
	return NULL;
}

static const char *size_value(const char *v, uint64_t *out, char *why, size_t whylen)
{
	if (config_parse_size(v, out) != 0) {
		snprintf(why, whylen, "\"%s\" is not a size", v);
		return why;
	}
	return NULL;
}

static const char *set_size(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	const char *problem = size_value(v, &ns->size, why, whylen);
	if (!problem && ns->size == 0)
		problem = "0 bytes";
	return problem;
}

static const char *set_lba_size(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	uint64_t x;
	const char *problem = size_value(v, &x, why, whylen);
	if (problem)
		return problem;
	if (x != 512 && x != 4096)
		return cfg_bad(why, whylen, v, "is not a supported LBA size");
	ns->lba_size = (uint32_t)x;
	return NULL;
}

static const char *set_zoned(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_bool(v, &ns->zoned) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static const char *set_zone_size(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	const char *problem = size_value(v, &ns->zone_size, why, whylen);
	if (!problem && !is_pow2(ns->zone_size))
		problem = cfg_bad(why, whylen, v, "is not a power of two");
	return problem;
}

static const char *set_zone_capacity(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	const char *problem = size_value(v, &ns->zone_capacity, why, whylen);
	if (!problem && ns->zone_capacity == 0)
		problem = "0 bytes";
	return problem;
}

static const char *set_max_open(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_u32(v, 0, UINT32_MAX, &ns->max_open) != 0)
		return cfg_bad(why, whylen, v, "is not a number");
	return NULL;
}

static const char *set_max_active(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_u32(v, 0, UINT32_MAX, &ns->max_active) != 0)
		return cfg_bad(why, whylen, v, "is not a number");
	return NULL;
}

/* ZASL is a power of two in units of the 4 KiB minimum memory page size
 * (ZNS 1.1, Identify Controller ZNS); 2 GiB keeps it in 32 bits. */
static const char *set_zone_append_max(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	uint64_t x;
	const char *problem = size_value(v, &x, why, whylen);
	if (problem)
		return problem;
	/* ZASL (ZNS 4.1.1) counts powers of two of 4 KiB with 0 meaning "as
	 * MDTS", so 4K cannot be expressed; above MDTS (1 MiB, transport.h)
	 * no host could send it. */
	if (!is_pow2(x) || x < 8192 || x > (1u << 20))
		return cfg_bad(why, whylen, v, "is not a power of two in 8K..1M");
	/* A power of two >= 8192 is a multiple of both LBA sizes. */
	ns->zone_append_max = (uint32_t)x;
	return NULL;
}

static const char *set_zde_size(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	uint64_t x;
	const char *problem = size_value(v, &x, why, whylen);
	if (problem)
		return problem;
	if (x % 64 || x > ZDE_SIZE_MAX)
		return cfg_bad(why, whylen, v, "is not a multiple of 64 in 0..16320");
	ns->zde_size = (uint32_t)x;
	return NULL;
}

static const char *set_cross_zone_read(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_bool(v, &ns->cross_zone_read) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

static const char *set_write_cache(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_bool(v, &ns->write_cache) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

static const char *set_preallocate(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_bool(v, &ns->preallocate) != 0)
		return cfg_bad(why, whylen, v, "is not a boolean");
	return NULL;
}

struct zone_list {
	uint32_t *list;
	uint32_t *len;
};

static const char *add_zone(void *arg, const char *item, char *why, size_t whylen)
{
	struct zone_list *zl = arg;
	uint32_t z;
	if (cfg_parse_u32(item, 0, UINT32_MAX, &z) != 0) {
		snprintf(why, whylen, "\"%s\" is not a zone index", item);
		return why;
	}
	for (uint32_t i = 0; i < *zl->len; i++)
		if (zl->list[i] == z) {
			snprintf(why, whylen, "zone %u is listed twice", z);
			return why;
		}
	if (*zl->len == CFG_MAX_ZONE_LIST)
		return "more than 256 zones in the list";
	zl->list[(*zl->len)++] = z;
	return NULL;
}

/* "N" (a count) or "list:A,B,C" (zone indexes). */
static const char *zone_set(const char *v, uint32_t *count, uint32_t *list, uint32_t *len,
			    char *why, size_t whylen)
{
	if (strncmp(v, "list:", 5) == 0) {
		struct zone_list zl = { list, len };
		return cfg_each_item(v + 5, &zl, add_zone, why, whylen);
	}
	if (cfg_parse_u32(v, 0, UINT32_MAX, count) != 0)
		return cfg_bad(why, whylen, v, "is neither a count nor list:...");
	return NULL;
}

static const char *set_offline_zones(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	return zone_set(v, &ns->offline_count, ns->offline_list, &ns->offline_list_len, why,
			whylen);
}

static const char *set_read_only_zones(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	return zone_set(v, &ns->readonly_count, ns->readonly_list, &ns->readonly_list_len, why,
			whylen);
}

static const char *set_uuid(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	static const uint8_t nil[16];
	if (cfg_parse_uuid(v, ns->uuid) != 0)
		return cfg_bad(why, whylen, v, "is not a UUID");
	/* An all-zero UUID means "no UUID" (NVMe Base 2.0, Namespace Identification Descriptor). */
	if (memcmp(ns->uuid, nil, sizeof(nil)) == 0)
		return cfg_bad(why, whylen, v, "is the nil UUID");
	ns->have_uuid = true;
	return NULL;
}

/* The zone journal is checkpointed whenever it passes this size. Below 64K a
 * zone descriptor extension record or two would force a checkpoint each
 * time; above 64G replay after a crash would take long for no gain. */
#define JOURNAL_SIZE_MIN (64ull << 10)
#define JOURNAL_SIZE_MAX (64ull << 30)

static const char *set_journal_size(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	const char *problem = size_value(v, &ns->journal_size, why, whylen);
	if (!problem && (ns->journal_size < JOURNAL_SIZE_MIN || ns->journal_size > JOURNAL_SIZE_MAX))
		problem = cfg_bad(why, whylen, v, "is out of range");
	return problem;
}

static const char *set_zrwa_size(void *obj, const char *v, char *why, size_t whylen)
{
	return size_value(v, &((struct ns_config *)obj)->zrwa_size, why, whylen);
}

static const char *set_zrwa_flush_granularity(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	const char *problem = size_value(v, &ns->zrwa_flush_granularity, why, whylen);
	if (!problem && ns->zrwa_flush_granularity == 0)
		problem = "0 bytes";
	return problem;
}

static const char *set_zrwa_resources(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_u32(v, 1, UINT32_MAX, &ns->zrwa_resources) != 0)
		return cfg_bad(why, whylen, v, "is not a number from 1");
	return NULL;
}

/* ANA group (doc/ana.md): reported as ANAGRPID, so never 0. */
static const char *set_ana_group(void *obj, const char *v, char *why, size_t whylen)
{
	struct ns_config *ns = obj;
	if (cfg_parse_u32(v, 1, CFG_MAX_ANA_GROUPS, &ns->ana_group) != 0) {
		snprintf(why, whylen, "\"%s\" is not a number in 1..%d", v, CFG_MAX_ANA_GROUPS);
		return why;
	}
	return NULL;
}

#define ZONE_SET_EXPECT "a count of zones (taken from the end) or list:A,B,... of zone indexes"

_Static_assert(NK_ANA_GROUP + 1 == CFG_NR_NS_KEYS, "CFG_NR_NS_KEYS is the number of keys");

const struct cfg_key cfg_ns_keys[CFG_NR_NS_KEYS] = {
	[NK_PATH] = { "path", "a directory for this namespace's files", false, set_path },
	[NK_SIZE] = { "size", "a size such as 1G, not 0", false, set_size },
	[NK_LBA_SIZE] = { "lba_size", "512 or 4096", false, set_lba_size },
	[NK_ZONED] = { "zoned", "yes or no", false, set_zoned },
	[NK_ZONE_SIZE] = { "zone_size", "a power of two size such as 64M", false, set_zone_size },
	[NK_ZONE_CAPACITY] = { "zone_capacity", "a size with 0 < zone_capacity <= zone_size",
			       false, set_zone_capacity },
	[NK_MAX_OPEN] = { "max_open", "a number of zones, 0 = no limit", false, set_max_open },
	[NK_MAX_ACTIVE] = { "max_active", "a number of zones, 0 = no limit", false, set_max_active },
	[NK_ZONE_APPEND_MAX] = { "zone_append_max", "a power of two size from 8K to 1M", false,
				 set_zone_append_max },
	[NK_ZDE_SIZE] = { "zde_size", "a multiple of 64 bytes up to 16320", false, set_zde_size },
	[NK_CROSS_ZONE_READ] = { "cross_zone_read", "yes or no", false, set_cross_zone_read },
	[NK_WRITE_CACHE] = { "write_cache", "yes or no", false, set_write_cache },
	[NK_OFFLINE_ZONES] = { "offline_zones", ZONE_SET_EXPECT, false, set_offline_zones },
	[NK_READ_ONLY_ZONES] = { "read_only_zones", ZONE_SET_EXPECT, false, set_read_only_zones },
	[NK_UUID] = { "uuid", "a UUID in 8-4-4-4-12 hex form, not all zeros", false, set_uuid },
	[NK_JOURNAL_SIZE] = { "journal_size", "a size from 64K to 64G", false, set_journal_size },
	[NK_PREALLOCATE] = { "preallocate", "yes or no", false, set_preallocate },
	[NK_ZRWA_SIZE] = { "zrwa_size", "a size such as 64K, 0 = no Zone Random Write Area",
			   false, set_zrwa_size },
	[NK_ZRWA_FLUSH_GRANULARITY] = { "zrwa_flush_granularity", "a size dividing zrwa_size",
					false, set_zrwa_flush_granularity },
	[NK_ZRWA_RESOURCES] = { "zrwa_resources", "a number of zones from 1", false,
				set_zrwa_resources },
	[NK_ANA_GROUP] = { "ana_group", "an ANA group ID", false, set_ana_group },
};

/* ---- checks once the file is read ---- */

void cfg_ns_defaults(struct ns_config *ns, uint32_t nsid)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = nsid;
	ns->lba_size = 4096;
	ns->zoned = true;
	ns->zone_size = 64ull << 20;
	ns->zone_append_max = 128u << 10;
	ns->cross_zone_read = true;
	ns->journal_size = 64ull << 20;
	ns->ana_group = 1;
}

/*
 * Is zone z in the set that a count or a list describes? A count means the
 * last `count` zones, as ns_open() applies it.
 */
static bool zone_in_set(const uint32_t *list, uint32_t len, uint32_t count, uint32_t nr_zones,
			uint32_t z)
{
	if (len == 0)
		return (uint64_t)z + count >= nr_zones;
	for (uint32_t i = 0; i < len; i++)
		if (list[i] == z)
			return true;
	return false;
}

struct ns_check {
	char *err;
	size_t errlen;
	const char *file;
	char section[32];
	const struct ns_config *ns;
	uint32_t seen;
};

#define NS_ERROR(c, key, ...) \
	(cfg_error_at((c)->err, (c)->errlen, (c)->file, (c)->section, (key), __VA_ARGS__), -1)

static int check_zone_list(const struct ns_check *c, const char *key, const uint32_t *list,
			   uint32_t len, uint32_t count, uint32_t nr_zones)
{
	if (count > nr_zones)
		return NS_ERROR(c, key, "%u zones but the namespace has %u (expected "
				ZONE_SET_EXPECT ")", count, nr_zones);
	for (uint32_t i = 0; i < len; i++)
		if (list[i] >= nr_zones)
			return NS_ERROR(c, key, "zone %u does not exist (expected zone indexes "
					"0..%u)", list[i], nr_zones - 1);
	return 0;
}

#define ONE_STATE "(expected each zone in at most one of offline_zones and read_only_zones)"

/* Offline and read-only zones: in range and disjoint (a zone has one state). */
static int check_zone_sets(const struct ns_check *c, uint32_t nr_zones)
{
	const struct ns_config *ns = c->ns;
	if (check_zone_list(c, "offline_zones", ns->offline_list, ns->offline_list_len,
			    ns->offline_count, nr_zones) ||
	    check_zone_list(c, "read_only_zones", ns->readonly_list, ns->readonly_list_len,
			    ns->readonly_count, nr_zones))
		return -1;
	/* Two counts both take the last zones: they overlap unless one is 0. */
	if (ns->offline_count && ns->readonly_count)
		return NS_ERROR(c, "read_only_zones", "a count, and so is offline_zones: both would "
				"take the last zones (expected at most one count; give the other as "
				"list:...)");
	for (uint32_t i = 0; i < ns->readonly_list_len; i++)
		if (zone_in_set(ns->offline_list, ns->offline_list_len, ns->offline_count, nr_zones,
				ns->readonly_list[i]))
			return NS_ERROR(c, "read_only_zones", "zone %u is offline too %s",
					ns->readonly_list[i], ONE_STATE);
	for (uint32_t i = 0; i < ns->offline_list_len; i++)
		if (zone_in_set(ns->readonly_list, ns->readonly_list_len, ns->readonly_count,
				nr_zones, ns->offline_list[i]))
			return NS_ERROR(c, "offline_zones", "zone %u is read-only too %s",
					ns->offline_list[i], ONE_STATE);
	return 0;
}

/*
 * Zone Random Write Area: whole blocks, at most 65535 of them (ZRWAS),
 * within the zone capacity; the flush granularity (default one block)
 * divides both the window and the capacity, so that flushes can reach the
 * capacity's end; no more ZRWAs than zones may be active.
 */
static int check_zrwa(const struct ns_check *c, struct ns_config *ns, uint64_t nr_zones)
{
	char a[32], b[32];
	if (!ns->zrwa_size) {
		for (size_t k = 0; k < CFG_NR_NS_KEYS; k++)
			if (c->seen & ZRWA_ONLY_KEYS & BIT(k))
				return NS_ERROR(c, cfg_ns_keys[k].name, "given without zrwa_size "
						"(expected zrwa_size too, or no %s)",
						cfg_ns_keys[k].name);
		return 0;
	}
	if (!(c->seen & BIT(NK_ZRWA_FLUSH_GRANULARITY)))
		ns->zrwa_flush_granularity = ns->lba_size;
	if (ns->zrwa_size % ns->lba_size || ns->zrwa_size / ns->lba_size > ZRWA_LBAS_MAX)
		return NS_ERROR(c, "zrwa_size", "%s is not a whole number of blocks up to %u "
				"(lba_size %u)", cfg_fmt_size(ns->zrwa_size, a), ZRWA_LBAS_MAX,
				ns->lba_size);
	if (ns->zrwa_size > ns->zone_capacity)
		return NS_ERROR(c, "zrwa_size", "%s is larger than zone_capacity %s (expected at "
				"most zone_capacity)", cfg_fmt_size(ns->zrwa_size, a),
				cfg_fmt_size(ns->zone_capacity, b));
	uint64_t fg = ns->zrwa_flush_granularity;
	if (fg % ns->lba_size || ns->zrwa_size % fg || ns->zone_capacity % fg)
		return NS_ERROR(c, "zrwa_flush_granularity", "%s does not divide both zrwa_size %s "
				"and zone_capacity (expected whole blocks that divide both)",
				cfg_fmt_size(fg, a), cfg_fmt_size(ns->zrwa_size, b));
	uint64_t most = ns->max_active ? ns->max_active : nr_zones;
	if (ns->zrwa_resources > most)
		return NS_ERROR(c, "zrwa_resources", "%u is more than the %" PRIu64 " zones that "
				"may be active (expected at most max_active, or the number of zones)",
				ns->zrwa_resources, most);
	return 0;
}

static int check_zoned(const struct ns_check *c, struct ns_config *ns)
{
	char a[32], b[32];
	if (ns->zone_size < ns->lba_size)
		return NS_ERROR(c, "zone_size", "%s is smaller than lba_size %u (expected a power "
				"of two multiple of lba_size)", cfg_fmt_size(ns->zone_size, a),
				ns->lba_size);
	if (!(c->seen & BIT(NK_ZONE_CAPACITY)))
		ns->zone_capacity = ns->zone_size;
	if (ns->zone_capacity > ns->zone_size)
		return NS_ERROR(c, "zone_capacity", "%s is larger than zone_size %s (expected "
				"0 < zone_capacity <= zone_size)",
				cfg_fmt_size(ns->zone_capacity, a), cfg_fmt_size(ns->zone_size, b));
	if (ns->zone_capacity % ns->lba_size)
		return NS_ERROR(c, "zone_capacity", "%s is not a multiple of lba_size %u (expected "
				"whole blocks)", cfg_fmt_size(ns->zone_capacity, a), ns->lba_size);
	if (ns->size % ns->zone_size)
		return NS_ERROR(c, "size", "%s is not a multiple of zone_size %s (expected whole "
				"zones)", cfg_fmt_size(ns->size, a), cfg_fmt_size(ns->zone_size, b));
	uint64_t nr_zones = ns->size / ns->zone_size;
	if (nr_zones > UINT32_MAX)
		return NS_ERROR(c, "size", "%" PRIu64 " zones (expected at most %u; use larger "
				"zones)", nr_zones, UINT32_MAX);
	if (ns->max_open && ns->max_active && ns->max_open > ns->max_active)
		return NS_ERROR(c, "max_open", "%u is more than max_active %u (expected "
				"max_open <= max_active)", ns->max_open, ns->max_active);
	if (ns->max_active > nr_zones)
		return NS_ERROR(c, "max_active", "%u is more than the %" PRIu64 " zones (expected "
				"at most the number of zones, or 0)", ns->max_active, nr_zones);
	if (ns->max_open > nr_zones)
		return NS_ERROR(c, "max_open", "%u is more than the %" PRIu64 " zones (expected "
				"at most the number of zones, or 0)", ns->max_open, nr_zones);
	return check_zone_sets(c, (uint32_t)nr_zones) || check_zrwa(c, ns, nr_zones);
}

int cfg_ns_finish(struct ns_config *ns, uint32_t seen, const char *file, const char *data_dir,
		  const char *stem, char *err, size_t errlen)
{
	struct ns_check c = { err, errlen, file, "", ns, seen };
	snprintf(c.section, sizeof(c.section), "namespace %u", ns->nsid);
	char a[32];

	if (!(seen & BIT(NK_SIZE)))
		return NS_ERROR(&c, "size", "missing (expected %s)", cfg_ns_keys[NK_SIZE].expect);
	if (ns->size % ns->lba_size)
		return NS_ERROR(&c, "size", "%s is not a multiple of lba_size %u (expected whole "
				"blocks)", cfg_fmt_size(ns->size, a), ns->lba_size);
	if (seen & BIT(NK_PATH)) {
		if (cfg_join_path(ns->path, sizeof(ns->path), data_dir, ns->path) != 0)
			return NS_ERROR(&c, "path", "too long once joined to data_dir (expected "
					"at most %zu bytes)", sizeof(ns->path) - 1);
	} else {
		char rel[sizeof(ns->path)];
		snprintf(rel, sizeof(rel), "%s/ns%u", stem, ns->nsid);
		if (cfg_join_path(ns->path, sizeof(ns->path), data_dir, rel) != 0)
			return NS_ERROR(&c, "path", "default %s/%s too long (expected at most %zu "
					"bytes)", data_dir, rel, sizeof(ns->path) - 1);
	}
	if (ns->zoned)
		return check_zoned(&c, ns);
	for (size_t k = 0; k < CFG_NR_NS_KEYS; k++)
		if ((seen & ZONED_ONLY_KEYS & BIT(k)))
			return NS_ERROR(&c, cfg_ns_keys[k].name, "only for zoned namespaces (expected "
					"no %s with zoned = no)", cfg_ns_keys[k].name);
	return 0;
}

