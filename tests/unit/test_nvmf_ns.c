/*
 * The host side's reading of Identify data (tests/lib/nvmf_ns.c), with what
 * other NVMe/TCP targets report: MDTS 0 (no limit), in-capsule data sizes
 * from none to 16 KiB, SGLS with and without offsets, ICDOFF, LBA formats
 * past the first sixteen, metadata, Namespace Identification Descriptor
 * lists with and without a CSI, and a ZNS Identify Namespace of zeros.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_ns.h"

/* CAP with MQES (0's based), MPSMIN and CSS bit 6 (I/O command sets). */
static uint64_t cap_of(uint16_t mqes, unsigned mpsmin, bool cmd_sets)
{
	return (uint64_t)mqes | (uint64_t)mpsmin << 48 | (uint64_t)(cmd_sets ? 0x41 : 0x01) << 37;
}

static struct nvme_id_ctrl ctrl_of(uint8_t mdts, uint32_t ioccsz, uint16_t icdoff, uint32_t sgls)
{
	struct nvme_id_ctrl c;
	memset(&c, 0, sizeof(c));
	c.mdts = mdts;
	c.ioccsz = htole32(ioccsz);
	c.icdoff = htole16(icdoff);
	c.sgls = htole32(sgls);
	return c;
}

static void test_mdts(void **state)
{
	struct nvmf_ns_geom g = { 0 };
	struct nvme_id_ctrl c = ctrl_of(0, 4, 0, 1);

	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, false), &c);
	assert_int_equal(g.mdts_bytes, UINT32_MAX); /* 0: no limit */
	assert_int_equal(g.max_qd, 127);
	assert_false(g.cmd_sets);
	c.mdts = 5;
	nvmf_ns_ctrl_limits(&g, cap_of(1023, 0, true), &c);
	assert_int_equal(g.mdts_bytes, 128 * 1024);
	assert_int_equal(g.max_qd, 1023);
	assert_true(g.cmd_sets);
	nvmf_ns_ctrl_limits(&g, cap_of(1023, 1, true), &c); /* 8 KiB pages */
	assert_int_equal(g.mdts_bytes, 256 * 1024);
	c.mdts = 30; /* beyond 32 bits: as good as no limit */
	nvmf_ns_ctrl_limits(&g, cap_of(1023, 0, true), &c);
	assert_int_equal(g.mdts_bytes, UINT32_MAX);
}

static void test_in_capsule(void **state)
{
	struct nvmf_ns_geom g = { 0 };
	struct nvme_id_ctrl c;

	/* Linux nvmet: 16 KiB in-capsule (IOCCSZ 4 + 1024), SGLS offsets. */
	c = ctrl_of(0, 4 + 1024, 0, 1u | NVME_CTRL_SGLS_OFFSET);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_int_equal(g.io_inline, 16384);
	assert_true(g.sgl);
	/* No in-capsule data: IOCCSZ is the SQE alone. */
	c = ctrl_of(0, 4, 0, 1u | NVME_CTRL_SGLS_OFFSET);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_int_equal(g.io_inline, 0);
	/* Room in the capsule, but no SGL offsets to describe it. */
	c = ctrl_of(0, 4 + 256, 0, 1u);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_int_equal(g.io_inline, 0);
	/* An in-capsule data offset NVMe/TCP cannot honour. */
	c = ctrl_of(0, 4 + 256, 16, 1u | NVME_CTRL_SGLS_OFFSET);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_int_equal(g.io_inline, 0);
	/* A controller that claims no SGL support at all. */
	c = ctrl_of(0, 4 + 256, 0, 0);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_false(g.sgl);
	assert_int_equal(g.io_inline, 0);
	/* IOCCSZ below the SQE (malformed): none. */
	c = ctrl_of(0, 2, 0, 1u | NVME_CTRL_SGLS_OFFSET);
	nvmf_ns_ctrl_limits(&g, cap_of(127, 0, true), &c);
	assert_int_equal(g.io_inline, 0);
}

static void test_lba_formats(void **state)
{
	struct nvme_id_ns ns;
	struct nvmf_ns_geom g = { .nsid = 3 };
	char err[160];

	memset(&ns, 0, sizeof(ns));
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), -1); /* inactive: NSZE 0 */
	assert_non_null(strstr(err, "not active"));

	ns.nsze = htole64(1000);
	ns.nlbaf = 1; /* two formats */
	ns.lbaf[0].ds = 9;
	ns.lbaf[1].ds = 12;
	ns.flbas = 1;
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), 0);
	assert_int_equal(g.lba_shift, 12);
	assert_int_equal(g.nlbas, 1000);

	/* Format 17: FLBAS bits 6:5 hold its upper two bits. */
	ns.nlbaf = 19;
	ns.lbaf[17].ds = 13;
	ns.flbas = 0x1 | 0x20;
	assert_int_equal(nvmf_ns_lbaf(&ns), 17);
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), 0);
	assert_int_equal(g.lba_shift, 13);

	ns.flbas = 0x1 | 0x40; /* 33: not listed */
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), -1);
	ns.flbas = 0;
	ns.lbaf[0].ds = 8;
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), -1);
	ns.lbaf[0].ds = 12;
	/* Metadata: separate is never sent here; interleaved is refused. */
	ns.lbaf[0].ms = htole16(8);
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), 0);
	ns.flbas |= NVME_NS_FLBAS_META_EXT;
	assert_int_equal(nvmf_ns_nvm(&g, &ns, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "metadata"));
}

static size_t put_desc(uint8_t *p, uint8_t type, uint8_t len, uint8_t fill)
{
	p[0] = type;
	p[1] = len;
	memset(p + 4, fill, len);
	return 4u + len;
}

static void test_csi_descriptor(void **state)
{
	uint8_t list[NVME_IDENTIFY_DATA_SIZE];
	size_t off;

	memset(list, 0, sizeof(list));
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), -1); /* empty */

	/* EUI-64, NGUID, UUID, then the CSI, as Linux nvmet lists them. */
	off = put_desc(list, NVME_NIDT_EUI64, 8, 0xe1);
	off += put_desc(list + off, NVME_NIDT_NGUID, 16, 0xa7);
	off += put_desc(list + off, NVME_NIDT_UUID, 16, 0x3c);
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), -1); /* no CSI: older controller */
	put_desc(list + off, NVME_NIDT_CSI, 1, NVME_CSI_ZNS);
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), NVME_CSI_ZNS);
	put_desc(list + off, NVME_NIDT_CSI, 1, NVME_CSI_NVM);
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), NVME_CSI_NVM);

	/* A CSI of the wrong length, and a descriptor running off the end. */
	list[off + 1] = 2;
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), -1);
	memset(list, 0, sizeof(list));
	off = put_desc(list, NVME_NIDT_EUI64, 8, 1);
	list[off] = NVME_NIDT_UUID;
	list[off + 1] = 255;
	assert_int_equal(nvmf_ns_csi(list, off + 20), -1);
	/* Zero length: malformed, not an endless loop. */
	memset(list, 0, sizeof(list));
	list[0] = NVME_NIDT_EUI64;
	assert_int_equal(nvmf_ns_csi(list, sizeof(list)), -1);
}

static void test_command_set(void **state)
{
	char err[200] = "";

	/* The CSI descriptor decides when there is one. */
	assert_int_equal(nvmf_ns_command_set(1, NVME_CSI_NVM, 0, 1u << 14, err, sizeof(err)),
			 NVME_CSI_NVM);
	assert_int_equal(nvmf_ns_command_set(1, NVME_CSI_ZNS, 0, 1u << 14, err, sizeof(err)),
			 NVME_CSI_ZNS);
	assert_int_equal(nvmf_ns_command_set(1, NVME_CSI_ZNS, 0x2, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ZNS Identify Namespace failed"));
	assert_int_equal(nvmf_ns_command_set(1, 1, 0, 0, err, sizeof(err)), -1); /* Key Value */
	assert_non_null(strstr(err, "command set 1"));
	/* None: a ZNS Identify of zeros (some targets' answer for a
	 * conventional namespace) or a refused one means conventional. */
	assert_int_equal(nvmf_ns_command_set(1, -1, 0, 0, err, sizeof(err)), NVME_CSI_NVM);
	assert_int_equal(nvmf_ns_command_set(1, -1, 0x2, 0, err, sizeof(err)), NVME_CSI_NVM);
	assert_int_equal(nvmf_ns_command_set(1, -1, 0, 1u << 14, err, sizeof(err)), NVME_CSI_ZNS);
}

static void test_zoned_geometry(void **state)
{
	struct nvme_zns_id_ns zns;
	struct nvme_zns_id_ctrl zc;
	struct nvmf_ns_geom g = { .nsid = 2, .nlbas = 1u << 20, .mdts_bytes = 1u << 20 };
	char err[200];

	/* What some targets answer for a conventional namespace: zeros. */
	memset(&zns, 0, sizeof(zns));
	assert_int_equal(nvmf_ns_zns(&g, &zns, 0, NULL, cap_of(127, 0, true), err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "zone size of 0"));
	assert_false(g.zoned);

	/* The zone size of the LBA format in use, not of the first. */
	zns.lbafe[0].zsze = htole64(1u << 14);
	zns.lbafe[1].zsze = htole64(1u << 12);
	zns.mar = htole32(13);
	zns.mor = htole32(0xffffffffu);
	memset(&zc, 0, sizeof(zc));
	assert_int_equal(nvmf_ns_zns(&g, &zns, 1, &zc, cap_of(127, 0, true), err, sizeof(err)), 0);
	assert_true(g.zoned);
	assert_int_equal(g.zone_size, 1u << 12);
	assert_int_equal(g.max_active, 14);
	assert_int_equal(g.max_open, 0);
	assert_int_equal(g.zasl_bytes, 1u << 20); /* ZASL 0: as MDTS */
	zc.zasl = 3;
	assert_int_equal(nvmf_ns_zns(&g, &zns, 1, &zc, cap_of(127, 0, true), err, sizeof(err)), 0);
	assert_int_equal(g.zasl_bytes, 32 * 1024);
	zc.zasl = 12; /* above MDTS: MDTS bounds it */
	assert_int_equal(nvmf_ns_zns(&g, &zns, 1, &zc, cap_of(127, 0, true), err, sizeof(err)), 0);
	assert_int_equal(g.zasl_bytes, 1u << 20);
	/* A zone larger than the namespace. */
	zns.lbafe[1].zsze = htole64(1u << 21);
	assert_int_equal(nvmf_ns_zns(&g, &zns, 1, &zc, cap_of(127, 0, true), err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mdts),
		cmocka_unit_test(test_in_capsule),
		cmocka_unit_test(test_lba_formats),
		cmocka_unit_test(test_csi_descriptor),
		cmocka_unit_test(test_command_set),
		cmocka_unit_test(test_zoned_geometry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
