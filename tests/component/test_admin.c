/*
 * The admin command set of an I/O controller over real namespaces (a zoned
 * one and a conventional one with a write cache, in a temporary directory):
 * Identify, Get Log Page, Set/Get Features, AER and namespace events, Abort,
 * Keep Alive, and the status of every kind of bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "../lib/core_harness.h"
#include "ns.h"
#include "subsys.h"

#define NQN "nqn.2024-01.io.znstgt:admin"
#define NQN2 "nqn.2024-01.io.znstgt:admin-2"

#define DNR 0x4000u
#define GEN(sc) ((uint16_t)(DNR | (sc)))
#define CMD(sc) ((uint16_t)(DNR | 0x100u | (sc)))

#define ZONE_BYTES (1u << 20)
#define ZNS_BYTES (16u << 20)
#define CONV_BYTES (8u << 20)

static struct target_config cfg;
static struct subsys_config subs[2];
static char dir[] = "/tmp/znstgt-test-admin-XXXXXX";
static struct th_queue *q;
static uint16_t cntlid;

static void ns_cfg(struct ns_config *n, uint32_t nsid, bool zoned, uint64_t size, bool cache)
{
	n->nsid = nsid;
	snprintf(n->path, sizeof(n->path), "%s/ns%u", dir, nsid);
	n->size = size;
	n->lba_size = 4096;
	n->zoned = zoned;
	n->zone_size = ZONE_BYTES;
	n->zone_capacity = ZONE_BYTES;
	n->max_open = 4;
	n->max_active = 6;
	n->zone_append_max = 64 * 1024;
	n->cross_zone_read = true;
	n->write_cache = cache;
	n->journal_size = 1 << 20;
}

static int setup(void **state)
{
	char err[512];

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.listeners[0].addr, sizeof(cfg.listeners[0].addr), "127.0.0.1");
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "4420");
	cfg.nr_listeners = 1;
	snprintf(subs[0].nqn, sizeof(subs[0].nqn), NQN);
	snprintf(subs[0].serial, sizeof(subs[0].serial), "ZNSTGT0001");
	snprintf(subs[0].model, sizeof(subs[0].model), "znstgt test");
	subs[0].allow_any_host = true;
	ns_cfg(&subs[0].ns[0], 1, true, ZNS_BYTES, false);
	ns_cfg(&subs[0].ns[1], 3, false, CONV_BYTES, true);
	subs[0].nr_ns = 2;
	cfg.subsys = subs;
	cfg.nr_subsys = 1;
	if (subsys_registry_init(&cfg, true, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	th_start();
	q = th_admin(NQN, 0, &cntlid);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	th_queue_close(q);
	subsys_registry_destroy();
	th_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool padded(const char *field, size_t n, const char *want)
{
	size_t l = strlen(want);

	if (memcmp(field, want, l) != 0)
		return false;
	for (size_t i = l; i < n; i++)
		if (field[i] != ' ')
			return false;
	return true;
}

static void test_identify_ctrl(void **state)
{
	struct nvme_id_ctrl id;

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id), 0);
	assert_true(padded(id.sn, sizeof(id.sn), "ZNSTGT0001"));
	assert_true(padded(id.mn, sizeof(id.mn), "znstgt test"));
	assert_true(id.fr[0] != ' ' && id.fr[7] == ' ');
	assert_int_equal(le16toh(id.cntlid), cntlid);
	assert_int_equal(le32toh(id.ver), 0x10300);
	assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_IO);
	/* Several controllers, ANA reporting (test_ana_wire.c has the rest). */
	assert_int_equal(id.cmic, NVME_CTRL_CMIC_MULTI_CTRL | NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	assert_int_equal(id.mdts, 8);                 /* 1 MiB at 4 KiB pages */
	assert_int_equal(le16toh(id.kas), 10);
	assert_int_equal(id.sqes, 0x66);
	assert_int_equal(id.cqes, 0x44);
	assert_int_equal(le16toh(id.maxcmd), 1024);
	assert_int_equal(le32toh(id.nn), 3);
	assert_int_equal(le32toh(id.mnan), 3);
	assert_int_equal(le16toh(id.oncs), 0x6c);     /* DSM, Write Zeroes, Reservations, Timestamp */
	assert_int_equal(id.vwc, 0x07);               /* namespace 3 has a cache */
	assert_int_equal(le32toh(id.sgls), 0x100001);
	assert_string_equal(id.subnqn, NQN);
	assert_int_equal(le32toh(id.ioccsz), 1028);
	assert_int_equal(le32toh(id.iorcsz), 1);
	assert_int_equal(le16toh(id.icdoff), 0);
	assert_int_equal(id.msdbd, 1);
	assert_int_equal(id.lpa, 0x06);
	assert_int_equal(id.aerl, 3);
	assert_int_equal(le32toh(id.oaes), NVME_CTRL_OAES_NA | NVME_CTRL_OAES_ZD | NVME_CTRL_OAES_ANA);
	assert_int_equal(le32toh(id.ctratt) & NVME_CTRL_CTRATT_ELBAS, 0);
	assert_int_equal(le16toh(id.oacs), 0);
	assert_int_equal(le16toh(id.crdt1), 0);
}

static void test_identify_ns(void **state)
{
	struct nvme_id_ns id;
	uint8_t zero[4096] = { 0 };

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 1, 0, &id), 0);
	assert_int_equal(le64toh(id.nsze), ZNS_BYTES / 4096);
	assert_int_equal(le64toh(id.ncap), ZNS_BYTES / 4096);
	assert_int_equal(id.nlbaf, 0);
	assert_int_equal(id.flbas, 0);
	assert_int_equal(id.lbaf[0].ds, 12);
	assert_int_equal(le16toh(id.lbaf[0].ms), 0);
	assert_int_equal(id.nmic, NVME_NS_NMIC_SHARED);
	assert_int_equal(id.dlfeat, 0);
	assert_memory_not_equal(id.nguid, zero, 16);
	assert_memory_not_equal(id.eui64, zero, 8);
	assert_memory_equal(id.rsvd83, zero, sizeof(id.rsvd83)); /* no junk left */

	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 3, 0, &id), 0);
	assert_int_equal(le64toh(id.nsze), CONV_BYTES / 4096);
	assert_int_equal(id.dlfeat, 0x09);
	/* Inactive NSID below NN: zeros. Above NN, 0, broadcast: Invalid NS. */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 2, 0, &id), 0);
	assert_memory_equal(&id, zero, sizeof(id));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 4, 0, &id), GEN(NVME_SC_INVALID_NS));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 0, 0, &id), GEN(NVME_SC_INVALID_NS));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, NVME_NSID_ALL, 0, &id),
			 GEN(NVME_SC_INVALID_NS));

	struct nvme_id_independent_id_ns ind;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 1, 0, &ind), 0);
	assert_int_equal(ind.nmic, 1);
	assert_int_equal(ind.nstat, 1);
}

static void test_identify_lists(void **state)
{
	struct nvme_ns_list l;

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, &l), 0);
	assert_int_equal(le32toh(l.ns[0]), 1);
	assert_int_equal(le32toh(l.ns[1]), 3);
	assert_int_equal(l.ns[2], 0);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 1, 0, &l), 0);
	assert_int_equal(le32toh(l.ns[0]), 3);
	assert_int_equal(l.ns[1], 0);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0xfffffffe, 0, &l),
			 GEN(NVME_SC_INVALID_NS));
	/* Per command set (CNS 07h). */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0, NVME_CSI_ZNS, &l), 0);
	assert_int_equal(le32toh(l.ns[0]), 1);
	assert_int_equal(l.ns[1], 0);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0, NVME_CSI_NVM, &l), 0);
	assert_int_equal(le32toh(l.ns[0]), 3);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0, 1, &l),
			 GEN(NVME_SC_INVALID_FIELD));

	/* I/O command set combinations: NVM + ZNS. */
	uint64_t iocs[512];
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE, 0, 0, iocs), 0);
	assert_int_equal(le64toh(iocs[0]), 5);
	assert_int_equal(iocs[1], 0);
	/* Unsupported CNS. */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, 0, 0, iocs),
			 GEN(NVME_SC_INVALID_FIELD));
}

/* Walk the descriptor list; returns the value of type nidt, or NULL. */
static const uint8_t *desc(const uint8_t *buf, uint8_t nidt, uint8_t *nidl)
{
	size_t off = 0;

	while (off + 4 <= 4096 && buf[off]) {
		if (buf[off] == nidt) {
			*nidl = buf[off + 1];
			return buf + off + 4;
		}
		off += 4 + buf[off + 1];
	}
	return NULL;
}

static void test_identify_descs(void **state)
{
	uint8_t buf[4096], nidl;
	struct nvme_id_ns id;
	const uint8_t *v;

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS, 1, 0, &id), 0);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_DESC_LIST, 1, 0, buf), 0);
	v = desc(buf, NVME_NIDT_CSI, &nidl);
	assert_non_null(v);
	assert_int_equal(nidl, 1);
	assert_int_equal(*v, NVME_CSI_ZNS);
	v = desc(buf, NVME_NIDT_NGUID, &nidl);
	assert_non_null(v);
	assert_int_equal(nidl, 16);
	assert_memory_equal(v, id.nguid, 16); /* the same IDs as CNS 00h */
	v = desc(buf, NVME_NIDT_EUI64, &nidl);
	assert_non_null(v);
	assert_int_equal(nidl, 8);
	assert_memory_equal(v, id.eui64, 8);
	assert_non_null(desc(buf, NVME_NIDT_UUID, &nidl));
	assert_int_equal(nidl, 16);

	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_DESC_LIST, 3, 0, buf), 0);
	v = desc(buf, NVME_NIDT_CSI, &nidl);
	assert_non_null(v);
	assert_int_equal(*v, NVME_CSI_NVM);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_NS_DESC_LIST, 2, 0, buf),
			 GEN(NVME_SC_INVALID_NS));
}

static void test_identify_zns(void **state)
{
	struct nvme_zns_id_ns z;
	struct nvme_zns_id_ctrl zc;
	uint8_t buf[4096], zero[4096] = { 0 };

	(void)state;
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_ZNS, &z), 0);
	assert_int_equal(le16toh(z.zoc), 0);
	assert_int_equal(le16toh(z.ozcs), 1);         /* RAZB: cross-zone reads */
	assert_int_equal(le32toh(z.mor), 3);          /* 0's based */
	assert_int_equal(le32toh(z.mar), 5);
	assert_int_equal(le64toh(z.lbafe[0].zsze), ZONE_BYTES / 4096);
	assert_int_equal(z.lbafe[0].zdes, 0);
	/* Conventional namespace under CSI 2; NVM CSI data (all zero); bad CSI. */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS, 3, NVME_CSI_ZNS, buf),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_NVM, buf), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS, 1, 1, buf), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_NS, 9, NVME_CSI_ZNS, buf),
			 GEN(NVME_SC_INVALID_NS));

	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_ZNS, &zc), 0);
	assert_int_equal(zc.zasl, 4);                 /* 64 KiB = 2^4 x 4 KiB */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_NVM, buf), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CSI_CTRL, 0, 1, buf),
			 GEN(NVME_SC_INVALID_FIELD));
}

static void test_log_pages(void **state)
{
	struct nvme_cmd_effects_log cse;
	struct nvme_smart_log smart;
	struct nvme_firmware_slot fw;
	struct nvme_zns_changed_zone_log zl;
	uint8_t buf[512], zero[512] = { 0 };

	(void)state;
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CMD_EFFECTS, 0, NVME_CSI_NVM, 0, false, &cse,
				    sizeof(cse)), 0);
	assert_int_equal(le32toh(cse.acs[nvme_admin_identify]), NVME_CMD_EFFECTS_CSUPP);
	assert_int_equal(le32toh(cse.acs[nvme_admin_format_nvm]), 0);
	assert_int_equal(le32toh(cse.iocs[nvme_cmd_write]), 3);
	assert_int_equal(le32toh(cse.iocs[nvme_cmd_read]), 1);
	assert_int_equal(le32toh(cse.iocs[nvme_zns_cmd_append]), 0);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CMD_EFFECTS, 0, NVME_CSI_ZNS, 0, false, &cse,
				    sizeof(cse)), 0);
	assert_int_equal(le32toh(cse.iocs[nvme_zns_cmd_append]), 3);
	assert_int_equal(le32toh(cse.iocs[nvme_zns_cmd_mgmt_send]), 3);
	assert_int_equal(le32toh(cse.iocs[nvme_zns_cmd_mgmt_recv]), 1);
	assert_int_equal(le32toh(cse.iocs[nvme_cmd_write_zeroes]), 3);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CMD_EFFECTS, 0, 1, 0, false, &cse, sizeof(cse)),
			 GEN(NVME_SC_INVALID_FIELD));

	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, NVME_NSID_ALL, 0, 0, false, &smart,
				    sizeof(smart)), 0);
	assert_int_equal(smart.critical_warning, 0);
	assert_int_equal(smart.avail_spare, 100);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, 1, 0, 0, false, &smart, sizeof(smart)),
			 GEN(NVME_SC_INVALID_FIELD));

	assert_int_equal(th_get_log(q, NVME_LOG_LID_FW_SLOT, 0, 0, 0, false, &fw, sizeof(fw)), 0);
	assert_int_equal(fw.afi, 1);
	assert_true(fw.frs[0][0] != ' ' && fw.frs[1][0] == 0);

	assert_int_equal(th_get_log(q, NVME_LOG_LID_ERROR, 0, 0, 0, false, buf, 64), 0);
	assert_memory_equal(buf, zero, 64);

	/* Windows: LPO 256 of the 512-byte SMART log, 512 bytes asked: the
	 * first half is the log's tail, the rest zero. */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, 0, 0, 256, false, buf, 512), 0);
	assert_memory_equal(buf + 256, zero, 256);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, 0, 0, 516, false, buf, 4),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_SMART, 0, 0, 2, false, buf, 4),
			 GEN(NVME_SC_INVALID_FIELD));
	/* Unknown log page; the discovery log on an I/O controller. */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_PERSISTENT_EVENT, 0, 0, 0, false, buf, 512),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, false, buf, 20),
			 GEN(NVME_SC_INVALID_FIELD));

	/* Changed Zone List: zoned namespace, CSI 2 only. */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_ZNS, 0, false, &zl,
				    sizeof(zl)), 0);
	assert_int_equal(le16toh(zl.nrzid), 0);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_ZNS_CHANGED_ZONES, 3, NVME_CSI_ZNS, 0, false, &zl,
				    sizeof(zl)), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_ZNS_CHANGED_ZONES, 1, NVME_CSI_NVM, 0, false, &zl,
				    sizeof(zl)), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_ZNS_CHANGED_ZONES, 7, NVME_CSI_ZNS, 0, false, &zl,
				    sizeof(zl)), GEN(NVME_SC_INVALID_NS));
}

static void test_features(void **state)
{
	struct nvme_feat_host_behavior hb;
	struct nvme_timestamp ts;
	uint64_t r, ms = 0;

	(void)state;
	/* Asynchronous Event Configuration: only advertised events. */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, 0x100, NULL, 0, NULL), 0);
	assert_int_equal(th_features(q, false, NVME_FEAT_FID_ASYNC_EVENT, 0, NULL, 0, &r), 0);
	assert_int_equal(r, 0x100);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, 1u << 31, NULL, 0, NULL),
			 GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_NUM_QUEUES, 0xffff, NULL, 0, NULL),
			 GEN(NVME_SC_INVALID_FIELD));

	/* Volatile write cache: on by default (namespace 3 has one); off
	 * flushes first. */
	assert_int_equal(th_features(q, false, NVME_FEAT_FID_VOLATILE_WC, 0, NULL, 0, &r), 0);
	assert_int_equal(r, 1);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_VOLATILE_WC, 0, NULL, 0, NULL), 0);
	assert_int_equal(th_features(q, false, NVME_FEAT_FID_VOLATILE_WC, 0, NULL, 0, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_VOLATILE_WC, 1, NULL, 0, NULL), 0);

	/* Timestamp: what the host set, moving on, origin "host". */
	memset(&ts, 0, sizeof(ts));
	ts.timestamp[2] = 0x10; /* 0x100000 ms */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_TIMESTAMP, 0, &ts, sizeof(ts), NULL), 0);
	memset(&ts, 0, sizeof(ts));
	assert_int_equal(th_features(q, false, NVME_FEAT_FID_TIMESTAMP, 0, &ts, sizeof(ts), NULL), 0);
	for (int i = 5; i >= 0; i--)
		ms = ms << 8 | ts.timestamp[i];
	assert_true(ms >= 0x100000 && ms < 0x100000 + 5000);
	assert_int_equal(ts.attr & 0x0e, 0x02);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_TIMESTAMP, 0, &ts, 4, NULL),
			 GEN(NVME_SC_SGL_INVALID_DATA));

	/* Host Behavior round trip (512 bytes). */
	memset(&hb, 0, sizeof(hb));
	hb.acre = 1;
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_HOST_BEHAVIOR, 0, &hb, sizeof(hb), NULL), 0);
	memset(&hb, 0xff, sizeof(hb));
	assert_int_equal(th_features(q, false, NVME_FEAT_FID_HOST_BEHAVIOR, 0, &hb, sizeof(hb), NULL), 0);
	assert_int_equal(hb.acre, 1);
	assert_int_equal(hb.rsvd1[0], 0);

	/* I/O Command Set Profile: combination 0 only. */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_IOCS_PROFILE, 0, NULL, 0, NULL), 0);
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_IOCS_PROFILE, 1, NULL, 0, NULL),
			 CMD(NVME_SC_IOCS_COMBINATION_REJECTED));

	/* Unknown feature; saving; SEL 3 (capabilities) and a reserved SEL. */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_POWER_MGMT, 0, NULL, 0, NULL),
			 GEN(NVME_SC_INVALID_FIELD));
	struct nvme_sqe s = th_sqe(nvme_admin_set_features, 0);
	s.cdw10 = htole32(NVME_FEAT_FID_KATO | 1u << 31);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), CMD(NVME_SC_FEATURE_NOT_SAVEABLE));
	s = th_sqe(nvme_admin_get_features, 0);
	s.cdw10 = htole32(NVME_FEAT_FID_KATO | 3u << 8);
	assert_int_equal(th_exec(q, &s, NULL, 0, &r), 0);
	assert_int_equal(r, 4);
	s.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES | 1u << 8); /* default */
	assert_int_equal(th_exec(q, &s, NULL, 0, &r), 0);
	assert_int_equal(r, 0x003f003f);
	s.cdw10 = htole32(NVME_FEAT_FID_KATO | 5u << 8);
	assert_int_equal(th_exec(q, &s, NULL, 0, &r), GEN(NVME_SC_INVALID_FIELD));
}

static void test_small_commands(void **state)
{
	struct nvme_sqe s;
	uint64_t r;

	(void)state;
	/* Abort never aborts: DW0 bit 0 = not aborted. */
	s = th_sqe(nvme_admin_abort_cmd, 0);
	s.cdw10 = htole32(1u << 16);
	assert_int_equal(th_exec(q, &s, NULL, 0, &r), 0);
	assert_int_equal(r, 1);
	/* KATO 0: Keep Alive is an error. */
	s = th_sqe(nvme_admin_keep_alive, 0);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_KAT_INVALID));
	/* Opcodes we do not implement, admin and vendor specific. */
	s = th_sqe(nvme_admin_format_nvm, 1);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_OPCODE));
	s = th_sqe(nvme_admin_create_sq, 0);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_OPCODE));
	s = th_sqe(0xc0, 0);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_OPCODE));
}

static void test_events(void **state)
{
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	struct nvme_ns_list l;
	struct th_cmd *aer;
	uint64_t r;

	(void)state;
	/* The namespaces, as the zone engine side would have them. */
	struct subsys *sub = subsys_find(NQN);
	assert_non_null(sub);
	struct ns *ns3 = subsys_ns(sub, 3), *ns1 = subsys_ns(sub, 1);

	/* Not enabled: nothing is reported (the log still lists it). */
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, 0, NULL, 0, NULL), 0);
	aer = th_submit(q, &s, NULL, 0, false);
	subsys_ns_changed(ns3);
	assert_false(th_wait(aer, 100));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	assert_int_equal(le32toh(l.ns[0]), 3);

	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT,
				     NVME_CTRL_OAES_NA | NVME_CTRL_OAES_ZD, NULL, 0, NULL), 0);
	subsys_ns_changed(ns3);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(r, 0x040002); /* notice, NS attribute changed, log 04h */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	assert_int_equal(le32toh(l.ns[0]), 3);
	assert_int_equal(l.ns[1], 0);
	/* Read once: cleared. */
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	assert_int_equal(l.ns[0], 0);

	/* Zone descriptors changed: notice EFh, log BFh, NSID in DW1. */
	aer = th_submit(q, &s, NULL, 0, false);
	subsys_zone_desc_changed(ns1);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(r, (uint64_t)1 << 32 | 0xbfef02);
	subsys_put(sub);
}

/* A Get Log Page 04h that fails (LPO past the 4 KiB log) must not empty
 * the list: the host never saw it (RAE: cleared only "after the command
 * completes successfully", NVMe Base 2.0, 5.16). */
static void test_changed_ns_failed_read(void **state)
{
	struct nvme_ns_list l;
	struct subsys *sub = subsys_find(NQN);

	(void)state;
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	subsys_ns_changed(subsys_ns(sub, 3));
	subsys_put(sub);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, sizeof(l) + 4,
				    false, &l, 4), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	assert_int_equal(le32toh(l.ns[0]), 3);
}

static void test_id_uniqueness(void **state)
{
	struct subsys_config sc;
	char err[512];

	(void)state;
	/* A second subsystem on a copy of namespace 3's directory has the
	 * same identifiers: refused, saying why. */
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.nqn, sizeof(sc.nqn), NQN2);
	sc.allow_any_host = true;
	ns_cfg(&sc.ns[0], 1, false, CONV_BYTES, false);
	sc.ns[0].have_uuid = true;
	{
		struct subsys *sub = subsys_find(NQN);
		memcpy(sc.ns[0].uuid, ns_info(subsys_ns(sub, 3))->uuid, 16);
		subsys_put(sub);
	}
	snprintf(sc.ns[0].path, sizeof(sc.ns[0].path), "%s/copy", dir);
	sc.nr_ns = 1;
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "UUID"));
	/* With its own UUID it is welcome. */
	sc.ns[0].have_uuid = false;
	snprintf(sc.ns[0].path, sizeof(sc.ns[0].path), "%s/fresh", dir);
	assert_int_equal(subsys_add(&sc, true, err, sizeof(err)), 0);
	assert_int_equal(subsys_remove(NQN2, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify_ctrl),
		cmocka_unit_test(test_identify_ns),
		cmocka_unit_test(test_identify_lists),
		cmocka_unit_test(test_identify_descs),
		cmocka_unit_test(test_identify_zns),
		cmocka_unit_test(test_log_pages),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_small_commands),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_changed_ns_failed_read),
		cmocka_unit_test(test_id_uniqueness),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
