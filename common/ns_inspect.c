/*
 * Offline inspection and check of a namespace directory (ns_inspect.h).
 *
 * Nothing here decodes a file on its own: the image header slots, the
 * descriptors and the journal come through zmeta's read-only view
 * (zmeta_view_*), ns.id through ns_id_read(), the data file's required
 * length through ns_data_needed(), and the verdict through the recovery
 * itself (zmeta_open, ZMETA_CHECK: read-only files, a private copy of the
 * image). Only the presentation is this file's.
 */
#include "ns_inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nvme/types.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockstore.h"
#include "errmsg.h"
#include "ns_id.h"
#include "ns_precheck.h"
#include "resv_store.h"
#include "zmeta.h"
#include "zone.h"

#define CRC_BUF (256u << 10)      /* bytes read at a time for a data CRC */

/* ---- shared ---- */

static const char *state_name(uint8_t s)
{
	switch (s) {
	case NVME_ZNS_ZS_EMPTY: return "empty";
	case NVME_ZNS_ZS_IMPL_OPEN: return "implicitly-open";
	case NVME_ZNS_ZS_EXPL_OPEN: return "explicitly-open";
	case NVME_ZNS_ZS_CLOSED: return "closed";
	case NVME_ZNS_ZS_FULL: return "full";
	case NVME_ZNS_ZS_READ_ONLY: return "read-only";
	case NVME_ZNS_ZS_OFFLINE: return "offline";
	default: return "unknown";
	}
}

static const char *const filter_names[] = {
	[NS_ZF_ALL] = "all",
	[NS_ZF_EMPTY] = "empty",
	[NS_ZF_IMPL_OPEN] = "implicitly-open",
	[NS_ZF_EXPL_OPEN] = "explicitly-open",
	[NS_ZF_CLOSED] = "closed",
	[NS_ZF_FULL] = "full",
	[NS_ZF_READ_ONLY] = "read-only",
	[NS_ZF_OFFLINE] = "offline",
	[NS_ZF_OPEN] = "open",
};

int ns_zone_filter_parse(const char *s, enum ns_zone_filter *out)
{
	for (size_t i = 0; i < sizeof(filter_names) / sizeof(filter_names[0]); i++) {
		if (strcmp(s, filter_names[i]) == 0) {
			*out = (enum ns_zone_filter)i;
			return 0;
		}
	}
	return -1;
}

static bool filter_match(enum ns_zone_filter f, uint8_t s)
{
	static const uint8_t want[] = {
		[NS_ZF_EMPTY] = NVME_ZNS_ZS_EMPTY,
		[NS_ZF_IMPL_OPEN] = NVME_ZNS_ZS_IMPL_OPEN,
		[NS_ZF_EXPL_OPEN] = NVME_ZNS_ZS_EXPL_OPEN,
		[NS_ZF_CLOSED] = NVME_ZNS_ZS_CLOSED,
		[NS_ZF_FULL] = NVME_ZNS_ZS_FULL,
		[NS_ZF_READ_ONLY] = NVME_ZNS_ZS_READ_ONLY,
		[NS_ZF_OFFLINE] = NVME_ZNS_ZS_OFFLINE,
	};
	if (f == NS_ZF_ALL)
		return true;
	if (f == NS_ZF_OPEN)
		return s == NVME_ZNS_ZS_IMPL_OPEN || s == NVME_ZNS_ZS_EXPL_OPEN;
	return s == want[f];
}

/* A JSON string: quoted, with what JSON (RFC 8259, 7) must escape. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static bool exists(const char *dir, const char *name)
{
	char p[PATH_MAX];

	path_in(p, sizeof(p), dir, name);
	return access(p, F_OK) == 0;
}

/* The data file's size, or -1 (missing). */
static long long data_size(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;

	path_in(p, sizeof(p), dir, "data");
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- the daemon's recovery, on a private copy ---- */

struct recovered {
	struct zmeta m;              /* the replayed copy (when ok) */
	struct zns z;
	bool z_init, ok;
	char why[2048];              /* the refusal, as the daemon would log it */
};

struct data_ctx {
	struct blockstore bs;
	uint8_t *buf;
};

static int data_crc(void *ctx, uint64_t lba, uint32_t nlb, uint32_t *crc)
{
	struct data_ctx *d = ctx;

	return blockstore_crc(&d->bs, lba, nlb, d->buf, CRC_BUF, crc);
}

/* Recover the zone state of dir as a start would, geometry from the image
 * itself (view): replay and checks of zmeta_open, data CRCs of the last
 * batch against the data file. */
static void recover(const char *dir, const struct zmeta *view, struct recovered *r)
{
	struct zmeta_geom g;
	char data[PATH_MAX];

	memset(r, 0, sizeof(*r));
	r->m.img_fd = r->m.jnl_fd = -1;
	zmeta_view_geom(view, &g);
	struct zns_geom zg = {
		.lba_shift = g.lba_shift, .zone_size = g.zone_size, .zone_cap = g.zone_cap,
		.nr_zones = g.nr_zones, .max_open = g.max_open, .max_active = g.max_active,
		.zde_size = g.zde_size, .zasl_nlb = 1,
		/* The image records no flush granularity: 1 divides any. */
		.zrwa_lbas = g.zrwa_lbas, .zrwa_fg = g.zrwa_lbas ? 1 : 0,
	};
	if (g.lba_shift > 16 || zns_init(&r->z, &zg)) {
		snprintf(r->why, sizeof(r->why), "%s/%s: the header describes an impossible zone "
			 "geometry (or out of memory)", dir, ZMETA_IMG_NAME);
		return;
	}
	r->z_init = true;
	path_in(data, sizeof(data), dir, "data");
	struct data_ctx d = { .bs = { .fd = open(data, O_RDONLY | O_CLOEXEC),
				      .lba_shift = g.lba_shift, .nlbas = g.nlbas } };
	d.buf = malloc(CRC_BUF);
	if (d.bs.fd >= 0 && d.buf) {
		g.data_crc = data_crc;
		g.data_ctx = &d;
	}
	r->ok = zmeta_open(&r->m, dir, &g, ZMETA_CHECK, &r->z, r->why, sizeof(r->why)) == 0;
	if (d.bs.fd >= 0)
		close(d.bs.fd);
	free(d.buf);
}

static void recovered_free(struct recovered *r)
{
	if (r->ok)
		zmeta_close(&r->m);
	if (r->z_init)
		zns_destroy(&r->z);
}

/* ---- check ---- */

static void add(struct ns_check_result *res, bool damage, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(struct ns_check_result *res, bool damage, const char *file, const char *fmt, ...)
{
	struct ns_finding *v = realloc(res->v, (res->n + 1) * sizeof(*v));
	va_list ap;

	res->damaged += damage;
	if (!v)
		return; /* counted: the verdict stands even if the text is lost */
	res->v = v;
	v += res->n++;
	v->damage = damage;
	snprintf(v->file, sizeof(v->file), "%s", file);
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

static const char *slot_state_text(enum zmeta_slot_state s)
{
	switch (s) {
	case ZMETA_SLOT_OK: return "ok";
	case ZMETA_SLOT_BLANK: return "never written";
	case ZMETA_SLOT_DAMAGED: return "damaged (bad magic or CRC)";
	default: return "unknown format version";
	}
}

/* Returns the number of descriptors (or extensions) with a bad CRC. */
static uint32_t check_image(const struct zmeta *m, const struct zmeta_slot_view slots[2],
			    struct ns_check_result *res)
{
	uint32_t bad = 0;

	for (int s = 0; s < 2; s++)
		if (s != m->slot && slots[s].state != ZMETA_SLOT_OK && slots[s].state != ZMETA_SLOT_BLANK)
			add(res, false, ZMETA_IMG_NAME, "header slot %d (byte offset %u): %s; the "
			    "current one is slot %d (a checkpoint torn by a crash leaves this; "
			    "the next checkpoint rewrites it)", s, s * ZIMG_SLOT_SIZE,
			    slot_state_text(slots[s].state), m->slot);
	for (uint32_t i = 0; i < m->hdr.nr_zones; i++) {
		struct zmeta_desc_view d;
		zmeta_view_desc(m, i, &d);
		uint64_t off = m->hdr.desc_offset + (uint64_t)i * sizeof(struct zimg_desc);
		bad += !d.zde_ok;
		if (!d.desc_ok)
			add(res, true, ZMETA_IMG_NAME, "zone %u: descriptor (byte offset %llu) has a "
			    "bad CRC", i, (unsigned long long)off);
		else if (!d.zde_ok)
			add(res, true, ZMETA_IMG_NAME, "zone %u: extension (byte offset %llu) has a bad "
			    "CRC", i, (unsigned long long)(m->hdr.zde_offset +
							   (uint64_t)i * m->hdr.zde_size));
		else if (!d.possible)
			add(res, true, ZMETA_IMG_NAME, "zone %u: descriptor (byte offset %llu) holds an "
			    "impossible state %#x / write pointer %#llx", i, (unsigned long long)off,
			    d.state, (unsigned long long)d.wp);
	}
	return bad;
}

static void count_rec(void *arg, const struct zmeta_rec_view *r)
{
	(*(uint64_t *)arg)++;
}

static void check_journal(const struct zmeta *m, struct ns_check_result *res)
{
	struct zmeta_run_end end;
	uint64_t n = 0;
	char err[256];

	if (zmeta_view_journal(m, count_rec, &n, &end, err, sizeof(err))) {
		add(res, true, ZMETA_JNL_NAME, "%s", err);
		return;
	}
	if (end.no_journal) {
		add(res, true, ZMETA_JNL_NAME, "missing: the zone changes since the checkpoint "
		    "(sequence number %llu) are unknown", (unsigned long long)m->hdr.ckpt_seq);
		return;
	}
	if (!end.jnl_header_ok)
		add(res, true, ZMETA_JNL_NAME, "header (byte offset 0) damaged, of an unknown "
		    "version or of another zone image");
	if (end.damaged)
		add(res, true, ZMETA_JNL_NAME, "journal record %llu (sequence number %llu, byte "
		    "offset %llu) is damaged and a valid record of a later batch follows "
		    "(sequence number %llu, byte offset %llu)", (unsigned long long)n + 1,
		    (unsigned long long)end.next_seq, (unsigned long long)end.offset,
		    (unsigned long long)end.damaged_seq, (unsigned long long)end.damaged_offset);
	else if (n)
		add(res, false, ZMETA_JNL_NAME, "%llu record(s) after the checkpoint (sequence "
		    "number %llu), up to byte offset %llu: the next start replays them",
		    (unsigned long long)n, (unsigned long long)m->hdr.ckpt_seq,
		    (unsigned long long)end.offset);
}

/* The recovery's verdict, and the state it leaves checked as at power-up. */
static void check_recovery(const char *dir, const struct zmeta *view, uint32_t bad,
			   struct ns_check_result *res)
{
	struct recovered r;
	uint32_t last;

	recover(dir, view, &r);
	if (!r.ok) {
		/* The message starts with the file it names. */
		const char *file = strstr(r.why, "/" ZMETA_JNL_NAME ":") ? ZMETA_JNL_NAME
				 : strstr(r.why, "/data:") ? "data" : ZMETA_IMG_NAME;
		add(res, true, file, "recovery refuses the namespace: %s", r.why);
		recovered_free(&r);
		return;
	}
	if (r.m.torn_data)
		add(res, false, ZMETA_JNL_NAME, "%llu record(s) of the last batch have data that "
		    "never reached the disk (a torn write, never acknowledged): recovery drops them",
		    (unsigned long long)r.m.torn_data);
	if (bad)
		add(res, false, ZMETA_IMG_NAME, "a start repairs the %u damaged descriptor(s) or "
		    "extension(s): from journal records of their zones, or, for an extension not in "
		    "use, by making it zeros", bad);
	long long have = data_size(dir);
	uint64_t need = ns_data_needed(&r.z, &last);
	if (have < 0)
		add(res, true, "data", "missing%s", need ? " (zones hold written blocks)" : "");
	else if ((uint64_t)have < need)
		add(res, true, "data", "%lld bytes, shorter than the written zones need (zone %u is "
		    "written up to byte %llu)", have, last, (unsigned long long)need);
	zns_power_up(&r.z, NULL, 0, NULL, 0);
	const char *why = zns_check(&r.z);
	if (why)
		add(res, true, ZMETA_IMG_NAME, "the recovered zone state is inconsistent: %s", why);
	recovered_free(&r);
}

int ns_check(const char *dir, struct ns_check_result *res, char *err, size_t errlen)
{
	struct zmeta_slot_view slots[2];
	struct zmeta m;
	struct stat st;
	uint8_t uuid[16];
	const char *why;
	char p[PATH_MAX];

	memset(res, 0, sizeof(*res));
	if (stat(dir, &st) != 0)
		return errmsg(err, errlen, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errmsg(err, errlen, "%s: not a directory", dir);
	bool img = exists(dir, ZMETA_IMG_NAME), jnl = exists(dir, ZMETA_JNL_NAME);
	if (!img && !jnl && !exists(dir, NS_ID_NAME) && !exists(dir, "data"))
		return errmsg(err, errlen, "%s: no namespace files (%s, data, %s, %s) here", dir,
			      NS_ID_NAME, ZMETA_IMG_NAME, ZMETA_JNL_NAME);
	path_in(p, sizeof(p), dir, NS_ID_NAME);
	int rc = ns_id_read(p, uuid, &why);
	if (rc)
		add(res, true, NS_ID_NAME, "%s", rc < 0 ? strerror(-rc) : why);
	if (resv_file_check(dir, &why))
		add(res, true, RESV_FILE_NAME, "%s", why);
	if (!img && !jnl) {
		if (data_size(dir) < 0)
			add(res, true, "data", "missing");
		return 0; /* a conventional namespace: nothing more to check */
	}
	if (zmeta_view_open(&m, dir, slots, p, sizeof(p))) {
		add(res, true, ZMETA_IMG_NAME, "%s", p);
		if (data_size(dir) < 0)
			add(res, true, "data", "missing");
		return 0;
	}
	uint32_t bad = check_image(&m, slots, res);
	check_journal(&m, res);
	check_recovery(dir, &m, bad, res);
	zmeta_close(&m);
	return 0;
}

void ns_check_print(const char *dir, const struct ns_check_result *res, bool json, FILE *out)
{
	if (json) {
		fprintf(out, "{\"dir\": ");
		json_str(out, dir);
		fprintf(out, ", \"ok\": %s, \"damaged\": %zu, \"findings\": [",
			res->damaged ? "false" : "true", res->damaged);
		for (size_t i = 0; i < res->n; i++) {
			fprintf(out, "%s\n  {\"level\": \"%s\", \"file\": ", i ? "," : "",
				res->v[i].damage ? "damage" : "note");
			json_str(out, res->v[i].file);
			fprintf(out, ", \"text\": ");
			json_str(out, res->v[i].text);
			fprintf(out, "}");
		}
		fprintf(out, "]}\n");
		return;
	}
	for (size_t i = 0; i < res->n; i++)
		fprintf(out, "%s: %s/%s: %s\n", res->v[i].damage ? "DAMAGE" : "note", dir,
			res->v[i].file, res->v[i].text);
	if (res->damaged)
		fprintf(out, "%s: %zu damaged item(s)\n", dir, res->damaged);
	else
		fprintf(out, "%s: ok\n", dir);
}

void ns_check_free(struct ns_check_result *res)
{
	free(res->v);
	memset(res, 0, sizeof(*res));
}

/* ---- inspect ---- */

struct printer {
	FILE *f;
	bool json;
	uint64_t n;
};

static void print_rec(void *arg, const struct zmeta_rec_view *r)
{
	struct printer *p = arg;

	if (p->json) {
		fprintf(p->f, "%s\n    {\"offset\": %llu, \"seq\": %llu, \"gen\": %u, "
			"\"batch_pos\": %u, \"zone\": %u, \"state\": \"%s\", \"za\": %u, "
			"\"wp\": %llu, \"data_lbas\": %u, \"data_crc\": %u, \"zde\": %s}",
			p->n ? "," : "", (unsigned long long)r->offset, (unsigned long long)r->seq,
			r->gen, r->batch_pos, r->zone, state_name(r->state), r->za,
			(unsigned long long)r->wp, r->data_lbas, r->data_crc,
			r->zde ? "true" : "false");
	} else {
		fprintf(p->f, "  %10llu %8llu %6u %5u %-16s %#12llx %8u %#010x%s\n",
			(unsigned long long)r->offset, (unsigned long long)r->seq, r->batch_pos,
			r->zone, state_name(r->state), (unsigned long long)r->wp, r->data_lbas,
			r->data_crc, r->zde ? " +extension" : "");
	}
	p->n++;
}

static void print_slots(FILE *f, bool json, const struct zmeta_slot_view s[2], int cur)
{
	if (!json)
		fprintf(f, "header slots:\n");
	for (int i = 0; i < 2; i++) {
		const struct zmeta_slot_view *v = &s[i];
		bool ok = v->state == ZMETA_SLOT_OK;
		if (json) {
			fprintf(f, "%s{\"slot\": %d, \"state\": \"%s\", \"current\": %s, \"crc_ok\": %s",
				i ? ", " : "", i, ok ? "ok" : v->state == ZMETA_SLOT_BLANK ? "blank"
				: v->state == ZMETA_SLOT_DAMAGED ? "damaged" : "unknown-version",
				i == cur ? "true" : "false",
				ok || v->state == ZMETA_SLOT_VERSION ? "true" : "false");
			if (ok)
				fprintf(f, ", \"generation\": %llu, \"ckpt_seq\": %llu",
					(unsigned long long)v->hdr.generation,
					(unsigned long long)v->hdr.ckpt_seq);
			fprintf(f, "}");
			continue;
		}
		fprintf(f, "  slot %d: %s", i, slot_state_text(v->state));
		if (ok)
			fprintf(f, ", generation %llu, checkpoint sequence %llu",
				(unsigned long long)v->hdr.generation,
				(unsigned long long)v->hdr.ckpt_seq);
		fprintf(f, "%s\n", i == cur ? "  (current)" : "");
	}
}

static void print_geometry(FILE *f, bool json, const struct zimg_header *h)
{
	uint32_t lba = 1u << h->lba_shift;

	if (json) {
		fprintf(f, "\"geometry\": {\"nsid\": %u, \"lba_size\": %u, \"nlbas\": %llu, "
			"\"zone_size\": %llu, \"zone_capacity\": %llu, \"zones\": %u, "
			"\"zde_size\": %u, \"max_open\": %u, \"max_active\": %u}, ",
			h->nsid, lba, (unsigned long long)h->nlbas, (unsigned long long)h->zone_size,
			(unsigned long long)h->zone_cap, h->nr_zones, h->zde_size, h->max_open,
			h->max_active);
		return;
	}
	fprintf(f, "geometry: namespace %u, %u-byte LBAs, %llu LBAs; %u zones of %llu LBAs, "
		"capacity %llu; extensions %u bytes; max open %u, max active %u (0: no limit)\n",
		h->nsid, lba, (unsigned long long)h->nlbas, h->nr_zones,
		(unsigned long long)h->zone_size, (unsigned long long)h->zone_cap, h->zde_size,
		h->max_open, h->max_active);
}

/* The zones: as recovery would load them (r->ok), else as the image holds
 * them, each with its descriptor's checks. */
static void print_zones(FILE *f, const struct ns_inspect_opts *o, const struct zmeta *view,
			struct recovered *r)
{
	const struct zmeta *m = r->ok ? &r->m : view;
	uint32_t first = (uint32_t)(o->slba / m->hdr.zone_size < m->hdr.nr_zones
				    ? o->slba / m->hdr.zone_size : m->hdr.nr_zones);
	uint64_t shown = 0;

	if (!o->json)
		fprintf(f, "zones (%s), filter %s, from zone %u:\n  %5s %12s %-16s %12s %10s %8s\n",
			r->ok ? "after journal replay" : "image only: recovery refuses",
			filter_names[o->filter], first, "zone", "zslba", "state", "wp", "written",
			"seq");
	for (uint32_t i = first; i < m->hdr.nr_zones; i++) {
		struct zmeta_desc_view d;
		zmeta_view_desc(m, i, &d);
		if (r->ok) {
			d.state = zns_zone_state(&r->z, i);
			d.wp = zns_zone_wp(&r->z, i);
		}
		if (!filter_match(o->filter, d.state))
			continue;
		if (o->max_zones && shown == o->max_zones)
			break;
		uint64_t zslba = (uint64_t)i * m->hdr.zone_size;
		uint64_t written = d.wp >= zslba ? d.wp - zslba : 0;
		if (o->json)
			fprintf(f, "%s\n    {\"zone\": %u, \"zslba\": %llu, \"state\": \"%s\", "
				"\"wp\": %llu, \"written\": %llu, \"za\": %u, \"seq\": %llu, "
				"\"desc_ok\": %s, \"zde_ok\": %s}", shown ? "," : "", i,
				(unsigned long long)zslba, state_name(d.state),
				(unsigned long long)d.wp, (unsigned long long)written, d.za,
				(unsigned long long)d.seq, d.desc_ok ? "true" : "false",
				d.zde_ok ? "true" : "false");
		else
			fprintf(f, "  %5u %#12llx %-16s %#12llx %10llu %8llu%s%s\n", i,
				(unsigned long long)zslba, state_name(d.state),
				(unsigned long long)d.wp, (unsigned long long)written,
				(unsigned long long)d.seq, d.desc_ok ? "" : "  BAD DESCRIPTOR CRC",
				d.zde_ok || !d.desc_ok ? "" : "  BAD EXTENSION CRC");
		shown++;
	}
}

static void print_journal(FILE *f, const struct ns_inspect_opts *o, const struct zmeta *m)
{
	struct printer p = { .f = f, .json = o->json };
	struct zmeta_run_end end;
	char err[256];

	if (!o->json && o->journal)
		fprintf(f, "journal records since the checkpoint:\n  %10s %8s %6s %5s %-16s %12s "
			"%8s %10s\n", "offset", "seq", "batch", "zone", "state", "wp", "data_lbas",
			"data_crc");
	if (o->json && o->journal)
		fprintf(f, "\"records\": [");
	int rc = o->journal ? zmeta_view_journal(m, print_rec, &p, &end, err, sizeof(err))
			    : zmeta_view_journal(m, count_rec, &p.n, &end, err, sizeof(err));
	uint64_t n = p.n;
	if (o->json) {
		fprintf(f, "%s\"count\": %llu, \"present\": %s, \"header_ok\": %s, \"end_offset\": %llu, "
			"\"next_seq\": %llu, \"damaged\": %s", o->journal ? "], " : "",
			(unsigned long long)n, end.no_journal ? "false" : "true",
			end.jnl_header_ok ? "true" : "false", (unsigned long long)end.offset,
			(unsigned long long)end.next_seq, end.damaged ? "true" : "false");
		if (end.damaged)
			fprintf(f, ", \"damaged_seq\": %llu, \"damaged_offset\": %llu",
				(unsigned long long)end.damaged_seq,
				(unsigned long long)end.damaged_offset);
		if (rc)
			fprintf(f, ", \"error\": \"read error\"");
		return;
	}
	if (rc)
		fprintf(f, "journal: %s\n", err);
	else if (end.no_journal)
		fprintf(f, "journal: missing\n");
	else
		fprintf(f, "journal: %s header, %llu record(s) since the checkpoint, ending at byte "
			"offset %llu%s\n", end.jnl_header_ok ? "valid" : "DAMAGED",
			(unsigned long long)n, (unsigned long long)end.offset,
			end.damaged ? "; DAMAGED: a valid record of a later batch follows" : "");
}

static void print_id(FILE *f, bool json, const char *dir)
{
	char p[PATH_MAX];
	uint8_t u[16];
	const char *why;
	char uuid[40] = "";
	int rc;

	path_in(p, sizeof(p), dir, NS_ID_NAME);
	rc = ns_id_read(p, u, &why);
	if (!rc)
		snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			 "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
			 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	const char *state = rc < 0 ? strerror(-rc) : rc ? why : "ok";
	long long size = data_size(dir);
	if (json) {
		fprintf(f, "\"ns_id\": {\"state\": ");
		json_str(f, state);
		fprintf(f, ", \"uuid\": \"%s\"}, \"data_bytes\": %lld, ", uuid, size);
		return;
	}
	fprintf(f, "ns.id: %s%s%s\ndata: ", state, rc ? "" : ", uuid ", uuid);
	if (size < 0)
		fprintf(f, "missing\n");
	else
		fprintf(f, "%lld bytes\n", size);
}

int ns_inspect(const char *dir, const struct ns_inspect_opts *o, FILE *f, char *err,
	       size_t errlen)
{
	struct zmeta_slot_view slots[2];
	struct zmeta m;
	struct recovered r;
	char why[1024];
	struct stat st;

	if (stat(dir, &st) != 0)
		return errmsg(err, errlen, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errmsg(err, errlen, "%s: not a directory", dir);
	bool zoned = exists(dir, ZMETA_IMG_NAME) || exists(dir, ZMETA_JNL_NAME);
	if (!zoned && !exists(dir, NS_ID_NAME) && !exists(dir, "data"))
		return errmsg(err, errlen, "%s: no namespace files (%s, data, %s, %s) here", dir,
			      NS_ID_NAME, ZMETA_IMG_NAME, ZMETA_JNL_NAME);
	if (o->json) {
		fprintf(f, "{\"dir\": ");
		json_str(f, dir);
		fprintf(f, ", \"zoned\": %s, ", zoned ? "true" : "false");
	} else {
		fprintf(f, "namespace directory %s (%s)\n", dir, zoned ? "zoned" : "conventional");
	}
	print_id(f, o->json, dir);
	if (!zoned) {
		if (o->json)
			fprintf(f, "\"image\": null}\n");
		return 0;
	}
	if (zmeta_view_open(&m, dir, slots, why, sizeof(why))) {
		if (o->json) {
			fprintf(f, "\"image\": {\"error\": ");
			json_str(f, why);
			fprintf(f, "}}\n");
		} else {
			fprintf(f, "zones.img: %s\n", why);
		}
		return 0;
	}
	recover(dir, &m, &r);
	if (o->json) {
		print_geometry(f, true, &m.hdr);
		fprintf(f, "\"image\": {\"instance\": %llu, \"current_slot\": %d, \"ckpt_seq\": %llu, "
			"\"slots\": [", (unsigned long long)m.hdr.instance, m.slot,
			(unsigned long long)m.hdr.ckpt_seq);
		print_slots(f, true, slots, m.slot);
		fprintf(f, "]}, \"journal\": {");
		print_journal(f, o, &m);
		fprintf(f, "}, \"recovery\": {\"ok\": %s, \"message\": ", r.ok ? "true" : "false");
		json_str(f, r.ok ? "" : r.why);
		fprintf(f, "}, \"filter\": \"%s\", \"zones\": [", filter_names[o->filter]);
		print_zones(f, o, &m, &r);
		fprintf(f, "]}\n");
	} else {
		print_geometry(f, false, &m.hdr);
		fprintf(f, "image instance %#llx, checkpoint sequence %llu\n",
			(unsigned long long)m.hdr.instance, (unsigned long long)m.hdr.ckpt_seq);
		print_slots(f, false, slots, m.slot);
		print_journal(f, o, &m);
		if (!r.ok)
			fprintf(f, "recovery refuses: %s\n", r.why);
		print_zones(f, o, &m, &r);
	}
	recovered_free(&r);
	zmeta_close(&m);
	return 0;
}
