/*
 * Controller core: Connect, Property Get/Set, the CC/CSTS state machine,
 * keep alive, queue binding and teardown, request-level checks (flags,
 * SGL, lengths), driven through the test-double transport (core_harness).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "config.h"
#include "../lib/core_harness.h"
#include "../lib/now_ms.h"
#include "subsys.h"

#define OPEN_NQN   "nqn.2024-01.io.znstgt:test-open"
#define LOCKED_NQN "nqn.2024-01.io.znstgt:test-locked"
#define EXTRA_NQN  "nqn.2024-01.io.znstgt:test-extra"

#define DNR 0x4000u
#define GEN(sc) ((uint16_t)(DNR | (sc)))
#define CMD(sc) ((uint16_t)(DNR | 0x100u | (sc)))

static struct target_config cfg;
static struct subsys_config subs[2];

static int setup(void **state)
{
	char err[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.listeners[0].addr, sizeof(cfg.listeners[0].addr), "127.0.0.1");
	snprintf(cfg.listeners[0].port, sizeof(cfg.listeners[0].port), "4420");
	cfg.nr_listeners = 1;
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

static void test_admin_connect(void **state)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint64_t r = 0, v = 0;
	uint16_t c1;

	(void)state;
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 0xffff, 0, &r), 0);
	c1 = (uint16_t)r;
	assert_true(c1 >= 1 && c1 <= 0xffef);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v, 0); /* not ready before CC.EN */

	/* A second controller of the same subsystem gets another ID. */
	struct th_queue *q2 = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	assert_int_equal(th_connect(q2, OPEN_NQN, 0, 0xffff, 0, &r), 0);
	assert_int_not_equal((uint16_t)r, c1);
	th_queue_close(q2);
	th_queue_close(q);
}

static void test_connect_errors(void **state)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint8_t hostid[16] = { 1 };
	uint64_t r;

	(void)state;
	/* Unknown subsystem: Invalid Parameters, IATTR 1, offset of SUBNQN,
	 * without DNR: the subsystem may be added at run time. */
	r = 0;
	assert_int_equal(th_connect(q, "nqn.2024-01.io.znstgt:nope", 0, 0xffff, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM) & ~DNR);
	assert_int_equal(r, 0x10100);
	/* Host not on the allow-list. */
	assert_int_equal(th_connect(q, LOCKED_NQN, 0, 0xffff, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_HOST));
	assert_int_equal(r, 0x10200);
	/* Static controller ID on an admin connect. */
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 5, 0, &r), CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 0x10010);
	/* SQSIZE is 0's based: 0 and above MQES are invalid (offset 44 in the SQE). */
	assert_int_equal(th_connect_ex(q, OPEN_NQN, TH_HOSTNQN, hostid, 0, 0, 0xffff, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 44);
	assert_int_equal(th_connect_ex(q, OPEN_NQN, TH_HOSTNQN, hostid, 0, 1024, 0xffff, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 44);

	/* RECFMT other than 0. */
	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);
	struct nvmf_connect_data d;
	memset(&d, 0, sizeof(d));
	d.cntlid = htole16(0xffff);
	snprintf(d.subsysnqn, sizeof(d.subsysnqn), OPEN_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), TH_HOSTNQN);
	((uint8_t *)&s)[4] = nvme_fabrics_type_connect;
	s.cdw10 = htole32(1);
	s.cdw11 = htole32(31);
	assert_int_equal(th_exec(q, &s, &d, sizeof(d), NULL), CMD(NVME_SC_CONNECT_FORMAT));
	/* Connect data must be 1024 bytes. */
	s.cdw10 = 0;
	assert_int_equal(th_exec(q, &s, &d, 512, NULL), GEN(NVME_SC_SGL_INVALID_DATA));

	/* After all that the queue is still unconnected: anything but Connect
	 * is an invalid opcode, Property Get included. */
	s = th_sqe(nvme_admin_identify, 0);
	uint8_t buf[4096];
	assert_int_equal(th_exec(q, &s, buf, sizeof(buf), NULL), GEN(NVME_SC_INVALID_OPCODE));
	uint64_t v;
	assert_int_equal(th_prop_get(q, NVME_REG_CAP, true, &v), GEN(NVME_SC_INVALID_OPCODE));
	th_queue_close(q);
}

static void test_properties(void **state)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint64_t v;

	(void)state;
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 0xffff, 0, NULL), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CAP, true, &v), 0);
	assert_int_equal(NVME_CAP_MQES(v), 1023);
	assert_int_equal(NVME_CAP_TO(v), 15);
	assert_true(v & (1ull << 37)); /* NVM command set */
	assert_true(v & (1ull << 43)); /* I/O command sets: ZNS visible */
	assert_int_equal(NVME_CAP_MPSMIN(v), 0);
	assert_int_equal(NVME_CAP_CRMS(v), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_VS, false, &v), 0);
	assert_int_equal(v, 0x10300);
	/* CAP is 8 bytes, VS 4: the other sizes and unknown offsets fail. */
	assert_int_equal(th_prop_get(q, NVME_REG_CAP, false, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_get(q, NVME_REG_VS, true, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_get(q, 0x40, false, &v), GEN(NVME_SC_INVALID_FIELD));
	assert_int_equal(th_prop_set(q, NVME_REG_VS, 0), GEN(NVME_SC_INVALID_FIELD));

	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);
	((uint8_t *)&s)[4] = nvme_fabrics_type_property_set;
	s.cdw10 = htole32(1); /* 8-byte set of CC */
	s.cdw11 = htole32(NVME_REG_CC);
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_FIELD));
	/* Authentication is not supported; Connect twice is out of sequence. */
	((uint8_t *)&s)[4] = nvme_fabrics_type_auth_receive;
	assert_int_equal(th_exec(q, &s, NULL, 0, NULL), GEN(NVME_SC_INVALID_OPCODE));
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 0xffff, 0, NULL), GEN(NVME_SC_CMD_SEQ_ERROR));
	th_queue_close(q);
}

static void test_cc_state_machine(void **state)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint8_t id[4096];
	uint64_t v;
	uint32_t bad = th_cc_enable() & ~(0xfu << NVME_CC_IOSQES_SHIFT);

	(void)state;
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 0xffff, 0, NULL), 0);
	/* Admin commands wait for CSTS.RDY. */
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CTRL, 0, 0, id), GEN(NVME_SC_CMD_SEQ_ERROR));

	/* EN with IOSQES 0 cannot be honoured: CFS, not RDY. */
	assert_int_equal(th_prop_set(q, NVME_REG_CC, bad), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 3, 2);
	/* CC reads back verbatim (Linux 6.1 does read-modify-write). */
	assert_int_equal(th_prop_get(q, NVME_REG_CC, false, &v), 0);
	assert_int_equal(v, bad);
	/* EN 1 -> 0 resets: CFS and RDY clear. */
	assert_int_equal(th_prop_set(q, NVME_REG_CC, bad & ~1u), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v, 0);
	/* MPS other than 4 KiB and CSS 001b are refused too. */
	assert_int_equal(th_prop_set(q, NVME_REG_CC, th_cc_enable() | 1u << NVME_CC_MPS_SHIFT), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 3, 2);
	assert_int_equal(th_prop_set(q, NVME_REG_CC, 0), 0);
	assert_int_equal(th_prop_set(q, NVME_REG_CC, (th_cc_enable() & ~(7u << 4)) | 1u << 4), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v & 3, 2);
	assert_int_equal(th_prop_set(q, NVME_REG_CC, 0), 0);

	/* A good enable (CSS 110b); then CSS 000b works as well. */
	assert_int_equal(th_prop_set(q, NVME_REG_CC, th_cc_enable()), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(th_identify(q, NVME_IDENTIFY_CNS_CTRL, 0, 0, id), 0);

	/* Shutdown: SHST = 10b right away; SHN back to 0 clears it. */
	assert_int_equal(th_prop_set(q, NVME_REG_CC, th_cc_enable() | 1u << NVME_CC_SHN_SHIFT), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal((v >> 2) & 3, NVME_CSTS_SHST_CMPLT);
	assert_int_equal(v & 1, 1);
	assert_int_equal(th_prop_set(q, NVME_REG_CC, th_cc_enable()), 0);
	assert_int_equal(th_prop_get(q, NVME_REG_CSTS, false, &v), 0);
	assert_int_equal(v, 1);
	th_queue_close(q);
}

static void test_io_connect(void **state)
{
	uint16_t cntlid;
	struct th_queue *a = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	struct th_queue *io = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	uint8_t other_id[16] = { 9, 9, 9 };
	uint64_t r;

	(void)state;
	assert_int_equal(th_connect(a, OPEN_NQN, 0, 0xffff, 0, &r), 0);
	cntlid = (uint16_t)r;
	/* Not enabled yet: controller busy. */
	assert_int_equal(th_connect(io, OPEN_NQN, 1, cntlid, 0, NULL), CMD(NVME_SC_CONNECT_CTRL_BUSY));
	assert_int_equal(th_prop_set(a, NVME_REG_CC, th_cc_enable()), 0);

	/* Ask for 4 SQs and 8 CQs: fabrics pairs them, 4 granted (0's based). */
	assert_int_equal(th_features(a, true, NVME_FEAT_FID_NUM_QUEUES, 0x00070003, NULL, 0, &r), 0);
	assert_int_equal(r, 0x00030003);
	assert_int_equal(th_features(a, false, NVME_FEAT_FID_NUM_QUEUES, 0, NULL, 0, &r), 0);
	assert_int_equal(r, 0x00030003);

	/* Wrong controller, host NQN, host ID, QID beyond the grant. */
	assert_int_equal(th_connect(io, OPEN_NQN, 1, (uint16_t)(cntlid + 100), 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 0x10010);
	assert_int_equal(th_connect_ex(io, OPEN_NQN, "nqn.2014-08.org.nvmexpress:uuid:other", NULL, 1,
				       127, cntlid, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 0x10200);
	assert_int_equal(th_connect_ex(io, OPEN_NQN, TH_HOSTNQN, other_id, 1, 127, cntlid, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 0x10000);
	assert_int_equal(th_connect(io, OPEN_NQN, 5, cntlid, 0, &r), CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 42);
	/* A discovery controller has no I/O queues. */
	assert_int_equal(th_connect(io, NVME_DISC_SUBSYS_NAME, 1, cntlid, 0, &r),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(r, 42);

	assert_int_equal(th_connect(io, OPEN_NQN, 4, cntlid, 0, NULL), 0);
	/* The same QID again, on another connection. */
	struct th_queue *dup = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	assert_int_equal(th_connect(dup, OPEN_NQN, 4, cntlid, 0, NULL), GEN(NVME_SC_CMD_SEQ_ERROR));
	th_queue_close(dup);
	/* Number of Queues is fixed once an I/O queue exists. */
	assert_int_equal(th_features(a, true, NVME_FEAT_FID_NUM_QUEUES, 0, NULL, 0, NULL),
			 GEN(NVME_SC_CMD_SEQ_ERROR));
	/* Admin commands do not belong on an I/O queue, nor properties. */
	uint64_t v;
	assert_int_equal(th_prop_get(io, NVME_REG_CAP, true, &v), GEN(NVME_SC_INVALID_OPCODE));

	/* Closing an I/O queue leaves the controller; its QID is free again. */
	th_queue_close(io);
	assert_false(th_queue_disconnected(a));
	io = th_io(OPEN_NQN, cntlid, 4);

	/* The admin queue going takes the controller and its I/O queues. */
	th_queue_close(a);
	assert_true(th_queue_wait_freed(io, TH_WAIT_MS));
	assert_true(th_queue_disconnected(io));
	th_queue_close(io);
}

static void test_reset_drops_io_queues(void **state)
{
	uint16_t cntlid;
	struct th_queue *a = th_admin(OPEN_NQN, 0, &cntlid);
	struct th_queue *io;

	(void)state;
	assert_int_equal(th_features(a, true, NVME_FEAT_FID_NUM_QUEUES, 0x00010001, NULL, 0, NULL), 0);
	io = th_io(OPEN_NQN, cntlid, 1);
	/* CC.EN 1 -> 0 is a controller reset: the I/O queues go. */
	assert_int_equal(th_prop_set(a, NVME_REG_CC, 0), 0);
	assert_true(th_queue_wait_freed(io, TH_WAIT_MS));
	assert_false(th_queue_disconnected(a));
	th_queue_close(io);
	/* After re-enabling, QID 1 can be connected again. */
	assert_int_equal(th_prop_set(a, NVME_REG_CC, th_cc_enable()), 0);
	io = th_io(OPEN_NQN, cntlid, 1);
	th_queue_close(io);
	th_queue_close(a);
}

#define KATO_MS 1000
#define KA_TRIES 5

/*
 * Ten commands on q, 200 ms apart, then whether the admin queue a is still
 * connected; *sent: when the last command before went out, then the
 * last of these. A controller goes only after a whole KATO without a command;
 * a loaded machine may hold the host itself back that long between
 * sending one command and the answer to the next (or the look at a): then
 * the controller may rightly have gone, and *late says so. Unless late,
 * every command must succeed when must_succeed.
 */
static bool alive_through(struct th_queue *a, struct th_queue *q, const struct nvme_sqe *cmd,
			  bool must_succeed, double *sent, bool *late)
{
	for (int i = 0; i < 10; i++) {
		usleep(200 * 1000);
		double t = now_ms();
		uint16_t st = th_exec(q, cmd, NULL, 0, NULL);

		*late |= now_ms() - *sent >= KATO_MS;
		if (must_succeed && st && !*late)
			fail_msg("command %d failed with %#x", i, st);
		*sent = t;
		if (*late && th_queue_disconnected(a))
			return false;
	}
	bool up = !th_queue_disconnected(a);

	*late |= now_ms() - *sent >= KATO_MS;
	return up;
}

/* The first part of test_keep_alive on a new controller: false if it went
 * while the host was late (then it is tried again). */
static bool keep_alive_round(void)
{
	struct nvme_sqe ka = th_sqe(nvme_admin_keep_alive, 0);
	struct nvme_sqe flush = th_sqe(nvme_cmd_flush, 0xffffffff);
	double sent = now_ms();
	uint16_t cntlid;
	struct th_queue *a = th_admin(OPEN_NQN, KATO_MS, &cntlid);
	struct th_queue *io;
	bool late = false, up;
	uint64_t r;

	assert_int_equal(th_features(a, false, NVME_FEAT_FID_KATO, 0, NULL, 0, &r), 0);
	assert_int_equal(r, KATO_MS);
	io = th_io(OPEN_NQN, cntlid, 1);
	/* Keep Alive every 200 ms keeps it alive well past its 1 s timeout. */
	up = alive_through(a, a, &ka, true, &sent, &late);
	/* Other commands, on any queue, count too (as in nvmet): a host that
	 * is still connecting its queues sends no Keep Alive yet. */
	if (up || !late)
		up = alive_through(a, io, &flush, false, &sent, &late);
	if (!up && late) {
		th_queue_close(io);
		th_queue_close(a);
		return false;
	}
	assert_true(up);
	/* Then silence: the controller and all its queues go (after one to
	 * two KATO: the timer looks for commands once per KATO). */
	assert_true(th_queue_wait_freed(a, 2 * KATO_MS + TH_WAIT_MS));
	assert_true(th_queue_disconnected(a));
	assert_true(th_queue_wait_freed(io, TH_WAIT_MS));
	th_queue_close(io);
	th_queue_close(a);
	return true;
}

static void test_keep_alive(void **state)
{
	struct nvme_sqe ka = th_sqe(nvme_admin_keep_alive, 0);
	struct th_queue *a;
	int tries = 0;

	(void)state;
	while (!keep_alive_round())
		if (++tries == KA_TRIES)
			fail_msg("the host was late in %d rounds: the machine is too busy", tries);

	/* Keep Alive without a timeout (KATO 0): Keep Alive Timeout Invalid. */
	for (tries = 0;; tries++) {
		a = th_admin(OPEN_NQN, 0, NULL);
		assert_int_equal(th_exec(a, &ka, NULL, 0, NULL), GEN(NVME_SC_KAT_INVALID));
		/* Set Features KATO arms it (the Keep Alive must come within
		 * 300 ms, unless the host was late, as above). */
		double t = now_ms();
		assert_int_equal(th_features(a, true, NVME_FEAT_FID_KATO, 300, NULL, 0, NULL), 0);
		uint16_t st = th_exec(a, &ka, NULL, 0, NULL);
		if (!st || now_ms() - t < 300) {
			assert_int_equal(st, 0);
			break;
		}
		th_queue_close(a);
		if (tries + 1 == KA_TRIES)
			fail_msg("the host was late in %d rounds: the machine is too busy", KA_TRIES);
	}
	assert_true(th_queue_wait_freed(a, 2 * 300 + TH_WAIT_MS));
	th_queue_close(a);
}

static void test_cqe_fields(void **state)
{
	struct th_queue *q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	struct nvme_sqe s = th_sqe(nvme_admin_fabrics, 0);
	struct nvmf_connect_data d;
	struct nvme_cqe cqe;
	struct th_cmd *c;

	(void)state;
	/* Connect with CATTR bit 2: SQ flow control off, SQHD FFFFh. */
	memset(&d, 0, sizeof(d));
	d.cntlid = htole16(0xffff);
	snprintf(d.subsysnqn, sizeof(d.subsysnqn), OPEN_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), TH_HOSTNQN);
	((uint8_t *)&s)[4] = nvme_fabrics_type_connect;
	s.cid = htole16(0xa123);
	s.cdw11 = htole32(31u | 4u << 16);
	c = th_submit(q, &s, &d, sizeof(d), false);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, &cqe), 0);
	assert_int_equal(le16toh(cqe.cid), 0xa123); /* echoed bit-exactly */
	assert_int_equal(le16toh(cqe.sqhd), 0xffff);
	assert_int_equal(le16toh(cqe.sqid), 0);
	th_queue_close(q);

	/* Without it SQHD advances by one per completion, modulo the size. */
	q = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	assert_int_equal(th_connect(q, OPEN_NQN, 0, 0xffff, 0, NULL), 0);
	uint16_t prev = 0;
	for (int i = 0; i < 40; i++) {
		s = th_sqe(nvme_admin_fabrics, 0);
		((uint8_t *)&s)[4] = nvme_fabrics_type_property_get;
		s.cdw11 = htole32(NVME_REG_VS);
		c = th_submit(q, &s, NULL, 0, false);
		assert_true(th_wait(c, TH_WAIT_MS));
		assert_int_equal(th_finish(c, NULL, &cqe), 0);
		if (i)
			assert_int_equal(le16toh(cqe.sqhd), (prev + 1) % 32);
		prev = le16toh(cqe.sqhd);
	}
	th_queue_close(q);
}

static void test_request_checks(void **state)
{
	struct th_queue *q = th_admin(OPEN_NQN, 0, NULL);
	uint8_t buf[8192];
	struct nvme_sqe s;
	struct th_cmd *c;

	(void)state;
	/* PRPs (PSDT 00b) and fused commands are refused. */
	s = th_sqe(nvme_admin_identify, 0);
	s.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	s.dptr.sgl.length = htole32(4096);
	s.dptr.sgl.type = NVME_SGL_TYPE_TRANSPORT_BLOCK;
	c = th_submit(q, &s, buf, 4096, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_INVALID_FIELD));
	s.flags = 0x41;
	c = th_submit(q, &s, buf, 4096, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_INVALID_FIELD));
	/* Keyed or other SGL types; an in-capsule offset other than 0. */
	s.flags = 0x40;
	s.dptr.sgl.type = 0x40;
	c = th_submit(q, &s, buf, 4096, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_SGL_INVALID_TYPE));
	s = th_sqe(nvme_admin_set_features, 0);
	s.flags = 0x40;
	s.cdw10 = htole32(NVME_FEAT_FID_TIMESTAMP);
	s.dptr.sgl.type = NVME_SGL_TYPE_DATA_BLOCK_OFFSET;
	s.dptr.sgl.length = htole32(8);
	s.dptr.sgl.addr = htole64(64);
	c = th_submit(q, &s, buf, 8, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_SGL_INVALID_OFFSET));
	/* In-capsule data for a command that reads from the controller. */
	s = th_sqe(nvme_admin_identify, 0);
	s.flags = 0x40;
	s.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	s.dptr.sgl.type = NVME_SGL_TYPE_DATA_BLOCK_OFFSET;
	s.dptr.sgl.length = htole32(4096);
	c = th_submit(q, &s, buf, 4096, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_INVALID_FIELD));
	/* More than MDTS. */
	s.dptr.sgl.type = NVME_SGL_TYPE_TRANSPORT_BLOCK;
	s.dptr.sgl.length = htole32(2u << 20);
	c = th_submit(q, &s, NULL, 0, true);
	assert_true(th_wait(c, TH_WAIT_MS));
	assert_int_equal(th_finish(c, NULL, NULL), GEN(NVME_SC_INVALID_FIELD));
	/* Identify with a buffer other than 4 KiB; Keep Alive with data. */
	s = th_sqe(nvme_admin_identify, 0);
	s.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	assert_int_equal(th_exec(q, &s, buf, 4095, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	s = th_sqe(nvme_admin_keep_alive, 0);
	assert_int_equal(th_exec(q, &s, buf, 512, NULL), GEN(NVME_SC_SGL_INVALID_DATA));
	th_queue_close(q);
}

static void test_subsys_runtime(void **state)
{
	struct subsys_config sc;
	char err[512];
	uint16_t cntlid;
	struct th_queue *a, *io;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.nqn, sizeof(sc.nqn), EXTRA_NQN);
	snprintf(sc.hosts[0], sizeof(sc.hosts[0]), TH_HOSTNQN);
	sc.nr_hosts = 1;
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), 0);
	/* Twice, or under a discovery NQN: refused with a reason. */
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists"));
	snprintf(sc.nqn, sizeof(sc.nqn), NVME_DISC_SUBSYS_NAME);
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), -1);

	a = th_admin(EXTRA_NQN, 0, &cntlid);
	assert_int_equal(th_features(a, true, NVME_FEAT_FID_NUM_QUEUES, 0, NULL, 0, NULL), 0);
	io = th_io(EXTRA_NQN, cntlid, 1);
	/* Removing it disconnects its controllers ... */
	assert_int_equal(subsys_remove(EXTRA_NQN, err, sizeof(err)), 0);
	assert_true(th_queue_wait_freed(a, TH_WAIT_MS));
	assert_true(th_queue_wait_freed(io, TH_WAIT_MS));
	assert_true(th_queue_disconnected(io));
	th_queue_close(io);
	th_queue_close(a);
	/* ... and it is gone; a host may try again (no DNR): it may come back. */
	assert_int_equal(subsys_remove(EXTRA_NQN, err, sizeof(err)), -1);
	a = th_queue_open("127.0.0.1", "4420", "127.0.0.1");
	assert_int_equal(th_connect(a, EXTRA_NQN, 0, 0xffff, 0, NULL),
			 CMD(NVME_SC_CONNECT_INVALID_PARAM) & ~DNR);
	th_queue_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_connect),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_cc_state_machine),
		cmocka_unit_test(test_io_connect),
		cmocka_unit_test(test_reset_drops_io_queues),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_cqe_fields),
		cmocka_unit_test(test_request_checks),
		cmocka_unit_test(test_subsys_runtime),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
