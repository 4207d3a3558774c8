/*
 * The controller's registers through their one API (nvme_ctrl_reg_read /
 * _write) and controller creation without a Fabrics Connect: a fabrics
 * controller reached by Property Get/Set, and a PCIe-style controller (a
 * transport table without fabrics, no queue yet) created from the
 * subsystem lookup and host check alone, as a PCIe transport would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "ctrl.h"
#include "../lib/core_harness.h"
#include "subsys.h"
#include "worker.h"

#define OPEN_NQN   "nqn.2024-01.io.znstgt:regs-open"
#define LOCKED_NQN "nqn.2024-01.io.znstgt:regs-locked"

#define GEN(sc) ((uint16_t)(0x4000u | (sc)))

static struct target_config cfg;
static struct subsys_config subs[2];

static int setup(void **state)
{
	char err[512];

	(void)state;
	snprintf(subs[0].nqn, sizeof(subs[0].nqn), OPEN_NQN);
	subs[0].allow_any_host = true;
	snprintf(subs[1].nqn, sizeof(subs[1].nqn), LOCKED_NQN);
	snprintf(subs[1].hosts[0], sizeof(subs[1].hosts[0]), "nqn.2014-08.org.nvmexpress:uuid:other");
	subs[1].nr_hosts = 1;
	cfg.subsys = subs;
	cfg.nr_subsys = 2;
	if (subsys_registry_init(&cfg, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	th_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	subsys_registry_destroy();
	th_stop();
	return 0;
}

/* On fabrics the admin queue registers are reserved; the rest read as the
 * spec says, each with its own size. */
static void test_fabrics_properties(void **state)
{
	struct th_queue *q = th_admin(OPEN_NQN, 0, NULL);
	uint64_t v;

	(void)state;
	assert_int_equal(th_prop_get(q, NVME_REG_NSSR, false, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CMBLOC, false, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CMBSZ, false, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 1, 1);
	assert_int_equal(th_prop_get(q, NVME_REG_AQA, false, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_get(q, NVME_REG_ASQ, true, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_set(q, NVME_REG_AQA, 0x001f001f), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_set(q, NVME_REG_NSSR, 0x4e564d65), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_set(q, NVME_REG_CSTS, 0), GEN(NVME_SC_INVALID_FIELD));
	th_queue_close(q);
}

static void no_response(struct nvme_req *req) { (void)req; }
static void no_disconnect(void *conn) { (void)conn; }

/* What a PCIe transport's table says about itself, for the core. */
static const struct nvme_transport_ops pcie_like = {
	.name = "pcie-test",
	.data_ptrs = NVME_XPORT_PRP,
	.fabrics = false,
	.mdts_bytes = 1u << 20,
	.queue_response = no_response,
	.disconnect = no_disconnect,
	.drained = no_disconnect,
};

static uint64_t rd(struct nvme_ctrl *c, uint32_t off, unsigned size)
{
	uint64_t v = ~0ull;

	assert_int_equal(nvme_ctrl_reg_read(c, off, size, &v), 0);
	return v;
}

static void test_pcie_controller_without_connect(void **state)
{
	static const uint8_t hostid[16] = { 1, 2, 3 };
	const char *host = "nqn.2014-08.org.nvmexpress:uuid:vm-1";
	enum nvme_ctrl_refusal why;
	struct nvme_ctrl *c;
	struct subsys *s;
	uint64_t v;

	(void)state;
	/* The subsystem lookup and host check, without any Connect. */
	assert_null(nvme_ctrl_subsys_for_host("nqn.2024-01.io.znstgt:nope", host, &why));
	assert_int_equal(why, NVME_CTRL_NO_SUBSYS);
	assert_null(nvme_ctrl_subsys_for_host(LOCKED_NQN, host, &why));
	assert_int_equal(why, NVME_CTRL_HOST_DENIED);
	s = nvme_ctrl_subsys_for_host(OPEN_NQN, host, &why);
	assert_non_null(s);

	struct nvme_ctrl_args a = {
		.ops = &pcie_like,
		.worker = worker_get(0),
		.subnqn = OPEN_NQN,
		.hostnqn = host,
		.hostid = hostid,
	};
	assert_int_equal(nvme_ctrl_new(s, &a, &c), 0);
	subsys_put(s);
	assert_int_not_equal(c->cntlid, 0);
	assert_null(c->sqs[0]);

	/* Reset values. */
	assert_int_equal(NVME_CAP_MQES(rd(c, NVME_REG_CAP, 8)), 1023);
	assert_int_equal(rd(c, NVME_REG_VS, 4), 0x10300);
	assert_int_equal(rd(c, NVME_REG_CSTS, 4), 0);
	assert_int_equal(rd(c, NVME_REG_AQA, 4), 0);
	assert_int_equal(rd(c, NVME_REG_ASQ, 8), 0);
	/* Admin queue attributes and addresses (page aligned: the low 12
	 * bits are reserved and read back as zero). */
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_AQA, 4, 0x001f003f), 0);
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_ASQ, 8, 0x123456789123ull), 0);
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_ACQ, 8, 0x200000), 0);
	assert_int_equal(rd(c, NVME_REG_AQA, 4), 0x001f003f);
	assert_int_equal(rd(c, NVME_REG_ASQ, 8), 0x123456789000ull);
	assert_int_equal(rd(c, NVME_REG_ACQ, 8), 0x200000);
	/* Wrong sizes, read-only and unknown registers. */
	assert_int_equal(nvme_ctrl_reg_read(c, NVME_REG_ASQ, 4, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_ASQ, 4, 0), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_CAP, 8, 0), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_VS, 4, 0), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(nvme_ctrl_reg_read(c, 0x40, 4, &v), GEN(NVME_SC_INVALID_FIELD));

	/* Enable: ready; the admin queue registers are fixed while enabled. */
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_CC, 4, th_cc_enable()), 0);
	assert_int_equal(rd(c, NVME_REG_CC, 4), th_cc_enable());
	assert_int_equal(rd(c, NVME_REG_CSTS, 4) & 1, 1);
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_AQA, 4, 0), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(rd(c, NVME_REG_AQA, 4), 0x001f003f);
	/* Normal shutdown: SHST complete; then disable: not ready. */
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_CC, 4,
					     th_cc_enable() | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT), 0);
	v = rd(c, NVME_REG_CSTS, 4);
	assert_int_equal(NVME_CSTS_SHST(v), NVME_CSTS_SHST_CMPLT);
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_CC, 4, 0), 0);
	assert_int_equal(rd(c, NVME_REG_CSTS, 4), 0);
	/* An invalid CC (IOSQES 5) does not enable: CSTS.CFS. */
	assert_int_equal(nvme_ctrl_reg_write(c, NVME_REG_CC, 4,
					     (th_cc_enable() & ~(0xfu << NVME_CC_IOSQES_SHIFT)) |
						     5u << NVME_CC_IOSQES_SHIFT), 0);
	v = rd(c, NVME_REG_CSTS, 4);
	assert_int_equal(v & 1, 0);
	assert_true(v & (1u << NVME_CSTS_CFS_SHIFT));

	nvme_ctrl_fatal(c, "test done");
	nvme_ctrl_put(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fabrics_properties),
		cmocka_unit_test(test_pcie_controller_without_connect),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
