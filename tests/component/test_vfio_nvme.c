/*
 * The vfio-user NVMe device (server/vfio_user/nvme_dev.c) in the real
 * daemon, driven as a VM's nvme driver would drive it, through the
 * project's vfio-user client: a memfd is the guest's RAM (mapped with
 * DMA_MAP), the queues live in it, BAR0 is written with REGION_WRITE,
 * completions are awaited on the MSI-X eventfds. A TCP host
 * (tests/lib/nvmf_client) uses the same zoned namespace meanwhile.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "vfio_user_proto.h"
#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_proc.h"
#include "../lib/tls_test_conf.h"
#include "../lib/vfu_client.h"
#include "../lib/vfu_nvme.h"
#include "ctl_client.h"

#define NQN "nqn.2026-12.io.znstgt:vfio-nvme"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0f5c1f4e-7f61-4a43-8f4e-3c2b1a0d9e77"
#define LBA 4096u
#define ZS 256u                        /* zone size, LBAs (1 MiB) */
#define NZ 16u

/* Guest RAM: the memfd, mapped at RAM_IOVA; pages by number. */
#define RAM_IOVA 0x40000000ull
#define RAM_PAGES 512u
#define PG 4096u
#define GPA(p) (RAM_IOVA + (uint64_t)(p) * PG)
enum { P_ASQ = 0, P_ACQ = 1, P_IOSQ = 2, P_IOCQ = 3, P_ID = 4, P_LIST = 8, P_SHADOW = 10,
       P_EVENT = 11, P_RZ = 12, P_DATA = 64, P_RBACK = 192 };


#define REG_CAP  0x00
#define REG_VS   0x08
#define REG_CC   0x14
#define REG_CSTS 0x1c
#define REG_AQA  0x24
#define REG_ASQ  0x28
#define REG_ACQ  0x30
#define DB(i)    (0x1000u + 4u * (i))

#define SC(sct, sc) ((uint16_t)((sct) << 8 | (sc)))
#define ST_ERR(st) ((st) & 0x7ff)       /* status without DNR/More */

static char dir[] = "/tmp/znstgt-test-vfio-nvme-XXXXXX";
static char port[16];
static char vsock[PATH_MAX];
static struct target_proc T;

/* ---- the VM (tests/lib/vfu_nvme.h), failures fail the test ---- */

static void *g(struct vnvme *v, uint64_t gpa)
{
	return vnvme_g(v, gpa);
}

static uint32_t bar_r32(struct vnvme *v, uint64_t off)
{
	uint32_t x = 0;

	if (vnvme_bar_read(v, off, &x, 4))
		fail_msg("%s", v->err);
	return x;
}

static uint64_t bar_r64(struct vnvme *v, uint64_t off)
{
	uint64_t x = 0;

	if (vnvme_bar_read(v, off, &x, 8))
		fail_msg("%s", v->err);
	return x;
}

static void bar_w32(struct vnvme *v, uint64_t off, uint32_t x)
{
	if (vnvme_bar_write(v, off, &x, 4))
		fail_msg("%s", v->err);
}

static void bar_w64(struct vnvme *v, uint64_t off, uint64_t x)
{
	if (vnvme_bar_write(v, off, &x, 8))
		fail_msg("%s", v->err);
}

static bool wait_csts(struct vnvme *v, uint32_t mask, uint32_t want)
{
	return vnvme_wait_csts(v, mask, want);
}

static void vm_open_at(struct vnvme *v, const char *path)
{
	if (vnvme_open(v, path, RAM_IOVA, RAM_PAGES))
		fail_msg("%s", v->err);
	v->shadow = GPA(P_SHADOW);
}

static void vm_open(struct vnvme *v)
{
	vm_open_at(v, vsock);
}

static void vm_close(struct vnvme *v)
{
	vnvme_close(v);
}

static void ring(struct vnvme *v, struct vnvme_q *q, unsigned idx, uint32_t val)
{
	if (vnvme_ring(v, q, idx, val))
		fail_msg("%s", v->err);
}

static uint16_t submit(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s)
{
	int cid = vnvme_put(v, q, s, true);

	if (cid < 0)
		fail_msg("%s", v->err);
	return (uint16_t)cid;
}

/* The next CQE, awaited on the queue's eventfd (the interrupt). */
static uint16_t reap(struct vnvme *v, struct vnvme_q *q, struct nvme_cqe *out)
{
	int st = vnvme_reap(v, q, out, false);

	if (st < 0)
		fail_msg("%s", v->err);
	return (uint16_t)st;
}

static bool irq_wait(struct vnvme *v, int vec, uint64_t min)
{
	return vnvme_irq_wait(v, vec, min);
}

static uint16_t exec(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s, uint64_t *result)
{
	int st = vnvme_exec(v, q, s, result);

	if (st < 0)
		fail_msg("%s", v->err);
	return (uint16_t)st;
}

static struct nvme_sqe sqe(uint8_t opc, uint32_t nsid, uint32_t cdw10, uint32_t cdw11)
{
	return vnvme_sqe(opc, nsid, cdw10, cdw11);
}

static struct nvme_sqe rw(uint8_t opc, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
	struct nvme_sqe s = sqe(opc, 1, (uint32_t)slba, (uint32_t)(slba >> 32));

	s.cdw12 = htole32(nlb - 1);
	s.dptr.prp.prp1 = htole64(prp1);
	s.dptr.prp.prp2 = htole64(prp2);
	return s;
}

static void set_list(struct vnvme *v, unsigned page, unsigned i, uint64_t gpa)
{
	uint64_t le = htole64(gpa);

	memcpy((uint8_t *)g(v, GPA(page)) + i * 8, &le, 8);
}

/* CC as Linux writes it with CAP.CSS bit 43: CSS 110b, IOSQES 6, IOCQES 4. */
#define CC_ENABLE (1u | 6u << 4 | 6u << 16 | 4u << 20)

static void vm_enable(struct vnvme *v)
{
	if (vnvme_enable(v, GPA(P_ASQ), GPA(P_ACQ), 16))
		fail_msg("%s", v->err);
}

/* I/O queue pair 1 on vector 1. */
static void vm_io_queues(struct vnvme *v)
{
	if (vnvme_io_queue(v, GPA(P_IOSQ), GPA(P_IOCQ), 32, false))
		fail_msg("%s", v->err);
}

static void vm_up(struct vnvme *v)
{
	vm_open(v);
	vm_enable(v);
	vm_io_queues(v);
}

static void fill(struct vnvme *v, unsigned page, unsigned pages, uint8_t seed)
{
	uint8_t *p = g(v, GPA(page));

	for (size_t i = 0; i < (size_t)pages * PG; i++)
		p[i] = (uint8_t)(seed + i * 7 + i / PG);
}

/* Zone Management Receive (report zones) of zone z: state (high nibble)
 * and write pointer. */
static uint16_t report_zone(struct vnvme *v, uint32_t z, uint8_t *state, uint64_t *wp)
{
	struct nvme_sqe s = sqe(nvme_zns_cmd_mgmt_recv, 1, z * ZS, 0);
	uint8_t *buf = g(v, GPA(P_RZ));
	uint16_t st;

	s.cdw12 = htole32(PG / 4 - 1);
	s.cdw13 = htole32(1u << 16);     /* partial report: the zones that fit */
	s.dptr.prp.prp1 = htole64(GPA(P_RZ));
	memset(buf, 0xee, PG);
	st = exec(v, &v->io, &s, NULL);
	if (st)
		return st;
	uint64_t nr, zslba, w;

	memcpy(&nr, buf, 8);
	assert_true(le64toh(nr) >= 1);
	memcpy(&zslba, buf + 64 + 16, 8);
	memcpy(&w, buf + 64 + 24, 8);
	assert_int_equal(le64toh(zslba), (uint64_t)z * ZS);
	*state = buf[64 + 1] >> 4;
	*wp = le64toh(w);
	return 0;
}

static uint16_t zone_send(struct vnvme *v, uint32_t z, uint8_t zsa)
{
	struct nvme_sqe s = sqe(nvme_zns_cmd_mgmt_send, 1, z * ZS, 0);

	s.cdw13 = htole32(zsa);
	return exec(v, &v->io, &s, NULL);
}

/* ---- the TCP host ---- */

static struct nvmf_client tadmin = { .fd = -1 }, tio = { .fd = -1 };

static void tcp_up(void)
{
	if (nvmf_admin_up(&tadmin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", tadmin.err);
	if (nvmf_tcp_connect(&tio, "127.0.0.1", port, false, false))
		fail_msg("I/O queue: %s", tio.err);
	if (nvmf_connect(&tio, 1, 32, 0, HOSTNQN, NQN, tadmin.cntlid, 0, NULL))
		fail_msg("I/O Connect: %s", tio.err);
}

static void tcp_down(void)
{
	nvmf_close(&tio);
	nvmf_close(&tadmin);
}

/* The VMs and the TCP host of a test, closed by test_end() also when the
 * test failed half way (one VM at a time: a VM left open would turn the
 * next test's away). */
static struct vnvme VA, VB;

static int test_end(void **state)
{
	(void)state;
	vm_close(&VA);
	vm_close(&VB);
	tcp_down();
	return 0;
}

/* ---- the daemon ---- */

static void write_file(const char *path, const char *text)
{
	target_write_ok(NULL, path, text);
}

static void daemon_start(bool format)
{
	char why[512];

	if (target_start(&T, format, why, sizeof(why)) != 0) {
		target_show_log(&T, 20);
		fail_msg("the daemon did not come up: %s", why);
	}
}

static void write_subsys(const char *socket_line)
{
	char path[PATH_MAX + 32], text[PATH_MAX + 1024];

	snprintf(path, sizeof(path), "%s/conf/vm.ini", dir);
	snprintf(text, sizeof(text),
		 "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
		 "[namespace 1]\nsize = 16M\nlba_size = 4096\nzone_size = 1M\n"
		 "zone_append_max = 64K\nwrite_cache = yes\noffline_zones = list:15\n"
		 "[vfio-user]\n%s\n", socket_line);
	write_file(path, text);
}

static int setup(void **state)
{
	char text[1024], line[PATH_MAX + 16];

	(void)state;
	target_dir_ok(&T, dir, port, sizeof(port));
	snprintf(vsock, sizeof(vsock), "%s/vm.sock", dir);
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 2\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\nlog_level = warn\ninclude = conf/*.ini\n", port);
	write_file(T.ini, text);
	snprintf(line, sizeof(line), "socket = %s", vsock);
	write_subsys(line);
	daemon_start(true);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128], why[256];
	int stopped = 0;
	struct stat st;

	(void)state;
	if (T.pid && (stopped = target_stop(&T, why, sizeof(why))) != 0)
		target_show_log(&T, 20);
	/* Stopping removed the socket file. */
	if (!stopped && lstat(vsock, &st) == 0)
		fail_msg("%s is still there after the stop", vsock);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	if (stopped)
		fail_msg("%s", why);
	return 0;
}

/* ---- tests ---- */

/* PCI identity, the NVMe version and CAP, Identify with the ZNS command set. */
static void test_identity_and_identify(void **state)
{
	uint32_t cls = 0;
	uint64_t cap;
	struct nvme_sqe s;
	struct nvme_id_ctrl *id;
	struct nvme_zns_id_ns *zns;
	struct nvme_zns_id_ctrl *zctrl;

	(void)state;
	vm_open(&VA);
	assert_int_equal(vfuc_cfg_read32(VA.c, 0x08, &cls), 0);
	assert_int_equal(cls >> 8, 0x010802);              /* mass storage, NVM, NVM Express */
	cap = bar_r64(&VA, REG_CAP);
	assert_true(cap >> 43 & 1);                         /* CSS: I/O command sets */
	assert_true(cap >> 37 & 1);                         /* CSS: NVM */
	assert_int_equal(bar_r32(&VA, REG_VS), 0x00020000); /* NVMe 2.0 */
	/* The halves of CAP read alone agree with the whole. */
	assert_int_equal(bar_r32(&VA, REG_CAP + 4), (uint32_t)(cap >> 32));
	vm_enable(&VA);

	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	id = g(&VA, GPA(P_ID));
	assert_string_equal((char *)id->subnqn, NQN);
	assert_int_equal(le16toh(id->sqes) & 0xf, 6);
	assert_true(irq_wait(&VA, 0, 1)); /* the admin CQ's interrupt came */

	s = sqe(nvme_admin_identify, 1, NVME_IDENTIFY_CNS_CSI_NS, (uint32_t)NVME_CSI_ZNS << 24);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	zns = g(&VA, GPA(P_ID));
	assert_int_equal(le64toh(zns->lbafe[0].zsze), ZS);

	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CSI_CTRL, (uint32_t)NVME_CSI_ZNS << 24);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	zctrl = g(&VA, GPA(P_ID));
	assert_int_equal(zctrl->zasl, 4);                   /* 64 KiB in 4 KiB pages */
	vm_close(&VA);
}

/* Write and Read through PRP1/PRP2 and a PRP list, Zone Append, Report
 * Zones; every completion announced on the I/O CQ's vector. */
static void test_io_prp_zones(void **state)
{
	struct nvme_sqe s;
	uint64_t res, wp;
	uint8_t zs;
	uint64_t irqs0;

	(void)state;
	vm_up(&VA);
	assert_int_equal(zone_send(&VA, 0, NVME_ZNS_ZSA_RESET), 0);
	irqs0 = VA.irqs[1];
	/* 8 KiB: PRP1 + PRP2 (second page). */
	fill(&VA, P_DATA, 2, 1);
	s = rw(nvme_cmd_write, 0, 2, GPA(P_DATA), GPA(P_DATA + 1));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	/* 16 KiB with PRP1 at an offset inside its page: a PRP list. */
	fill(&VA, P_DATA + 4, 5, 9);
	set_list(&VA, P_LIST, 0, GPA(P_DATA + 5));
	set_list(&VA, P_LIST, 1, GPA(P_DATA + 6));
	set_list(&VA, P_LIST, 2, GPA(P_DATA + 7));
	set_list(&VA, P_LIST, 3, GPA(P_DATA + 8));
	s = rw(nvme_cmd_write, 2, 4, GPA(P_DATA + 4) + 512, GPA(P_LIST));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	/* Read all 6 blocks back in one command, PRP list again. */
	for (unsigned i = 0; i < 5; i++)
		set_list(&VA, P_LIST, i, GPA(P_RBACK + 1 + i));
	memset(g(&VA, GPA(P_RBACK)), 0, 6 * PG);
	s = rw(nvme_cmd_read, 0, 6, GPA(P_RBACK), GPA(P_LIST));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), g(&VA, GPA(P_DATA)), 2 * PG);
	assert_memory_equal(g(&VA, GPA(P_RBACK + 2)), (uint8_t *)g(&VA, GPA(P_DATA + 4)) + 512, 4 * PG);
	/* Zone Append lands at the write pointer and says where. */
	s = rw(nvme_zns_cmd_append, 0, 1, GPA(P_DATA), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, &res), 0);
	assert_int_equal(res, 6);
	assert_int_equal(report_zone(&VA, 0, &zs, &wp), 0);
	assert_int_equal(wp, 7);
	assert_int_equal(zs, 0x2);                         /* implicitly opened */
	/* A write not at the write pointer: Zone Invalid Write. */
	s = rw(nvme_cmd_write, 3, 1, GPA(P_DATA), 0);
	assert_int_equal(ST_ERR(exec(&VA, &VA.io, &s, NULL)), SC(1, NVME_SC_ZNS_INVALID_WRITE & 0xff));
	assert_true(irq_wait(&VA, 1, irqs0 + 5));
	vm_close(&VA);
}

/* The VM and a TCP host on one namespace: appends from both land at
 * distinct LBAs; a zone one finishes is full for the other. */
static void test_shared_with_tcp(void **state)
{
	struct nvme_sqe s;
	struct nvme_cqe cqe;
	uint64_t lbas[16], wp;
	uint8_t buf[LBA], zs;
	int n = 0;

	(void)state;
	vm_up(&VA);
	tcp_up();
	assert_int_equal(zone_send(&VA, 2, NVME_ZNS_ZSA_RESET), 0);
	assert_int_equal(zone_send(&VA, 3, NVME_ZNS_ZSA_RESET), 0);
	fill(&VA, P_DATA, 1, 3);
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < 8; i++) {
		uint64_t res;
		struct nvme_sqe t = { .opcode = nvme_zns_cmd_append, .nsid = htole32(1) };

		s = rw(nvme_zns_cmd_append, 2 * ZS, 1, GPA(P_DATA), 0);
		assert_int_equal(exec(&VA, &VA.io, &s, &res), 0);
		lbas[n++] = res;
		t.cdw10 = htole32(2 * ZS);
		int cid = nvmf_submit(&tio, &t, buf, LBA, NULL, 0);

		assert_true(cid >= 0);
		assert_int_equal(nvmf_wait(&tio, (uint16_t)cid, &cqe), 0);
		lbas[n++] = le64toh(cqe.result);
	}
	for (int i = 0; i < n; i++) {
		assert_true(lbas[i] >= 2 * ZS && lbas[i] < 2 * ZS + 16);
		for (int k = 0; k < i; k++)
			assert_true(lbas[i] != lbas[k]);
	}
	/* The TCP host's data is where its append said, as the VM reads it. */
	s = rw(nvme_cmd_read, lbas[1], 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), buf, LBA);
	/* Finished over TCP: full for the VM. */
	s = sqe(nvme_zns_cmd_mgmt_send, 1, 3 * ZS, 0);
	s.cdw13 = htole32(NVME_ZNS_ZSA_FINISH);
	assert_int_equal(nvmf_cmd(&tio, &s, NULL, 0, NULL, 0, &cqe), 0);
	assert_int_equal(report_zone(&VA, 3, &zs, &wp), 0);
	assert_int_equal(zs, 0xe);
	s = rw(nvme_cmd_write, 3 * ZS, 1, GPA(P_DATA), 0);
	assert_int_equal(ST_ERR(exec(&VA, &VA.io, &s, NULL)), SC(1, NVME_SC_ZNS_FULL & 0xff));
	tcp_down();
	vm_close(&VA);
}

/* The Zone Descriptor Changed notice (ZNS 1.1, 5.5) of the zone taken
 * offline when the namespace was made: true if res carries it for NSID 1. */
static bool zone_notice(uint64_t res)
{
	return (res & 7) == NVME_AER_NOTICE && ((res >> 8) & 0xff) == 0xef &&
	       ((res >> 16) & 0xff) == NVME_LOG_LID_ZNS_CHANGED_ZONES && res >> 32 == 1;
}

/* The Changed Zone List reaches the VM's controller and a TCP host's:
 * each gets the notice once it enables it, with an AER parked. */
static void test_changed_zones_both(void **state)
{
	struct nvme_sqe aer = sqe(nvme_admin_async_event, 0, 0, 0);
	struct nvme_sqe aec = sqe(nvme_admin_set_features, 0, NVME_FEAT_FID_ASYNC_EVENT,
				  NVME_CTRL_OAES_ZD);
	struct nvme_cqe e, cqe;
	uint16_t aer_cid, aec_cid;
	bool got_aer = false, got_aec = false;
	int tcid;

	(void)state;
	vm_up(&VA);
	tcp_up();
	aer_cid = submit(&VA, &VA.admin, &aer);
	aec_cid = submit(&VA, &VA.admin, &aec);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(reap(&VA, &VA.admin, &e), 0);
		if (le16toh(e.cid) == aer_cid) {
			assert_true(zone_notice(le64toh(e.result)));
			got_aer = true;
		} else {
			assert_int_equal(le16toh(e.cid), aec_cid);
			got_aec = true;
		}
	}
	assert_true(got_aer && got_aec);
	/* The TCP host's controller has its own notice. */
	tcid = nvmf_submit(&tadmin, &aer, NULL, 0, NULL, 0);
	assert_true(tcid >= 0);
	assert_int_equal(nvmf_cmd(&tadmin, &aec, NULL, 0, NULL, 0, NULL), 0);
	assert_int_equal(nvmf_wait(&tadmin, (uint16_t)tcid, &cqe), 0);
	assert_true(zone_notice(le64toh(cqe.result)));
}

/* The VM's Changed Zone List log (ZNS 1.1, 5.3.1; RAE clear: the notice is
 * re-armed) lists exactly zone z. */
static void expect_changed_zone(struct vnvme *v, uint32_t z)
{
	struct nvme_zns_changed_zone_log *zl = g(v, GPA(P_ID));
	uint32_t numd = sizeof(*zl) / 4 - 1;
	struct nvme_sqe s = sqe(nvme_admin_get_log_page, 1,
				NVME_LOG_LID_ZNS_CHANGED_ZONES | numd << 16, 0);

	_Static_assert(sizeof(*zl) == PG, "the log fills the page P_ID");
	s.cdw14 = htole32((uint32_t)NVME_CSI_ZNS << 24);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	memset(zl, 0xee, PG);
	assert_int_equal(exec(v, &v->admin, &s, NULL), 0);
	assert_int_equal(le16toh(zl->nrzid), 1);
	assert_int_equal(le64toh(zl->zid[0]), (uint64_t)z * ZS);
}

/* The control socket's fault injection (doc/fault-injection.md) reaches a
 * VM's controller as it reaches a TCP host: a zone taken offline raises
 * the Zone Descriptor Changed notice on the VM's parked AER and shows in
 * its log, Report Zones and I/O statuses; an injected error fails exactly
 * the one read it was asked for. */
static void test_faults_reach_vm(void **state)
{
	struct nvme_sqe aer = sqe(nvme_admin_async_event, 0, 0, 0);
	struct nvme_sqe aec = sqe(nvme_admin_set_features, 0, NVME_FEAT_FID_ASYNC_EVENT,
				  NVME_CTRL_OAES_ZD);
	struct nvme_sqe s;
	struct nvme_cqe e;
	char reply[256], *body = NULL;
	uint16_t cid;
	uint8_t zs;
	uint64_t wp;

	(void)state;
	vm_up(&VA);
	/* Zone 15, offline since the namespace was made, is noticed first. */
	assert_int_equal(exec(&VA, &VA.admin, &aec, NULL), 0);
	cid = submit(&VA, &VA.admin, &aer);
	assert_int_equal(reap(&VA, &VA.admin, &e), 0);
	assert_int_equal(le16toh(e.cid), cid);
	assert_true(zone_notice(le64toh(e.result)));
	expect_changed_zone(&VA, 15);

	/* Zone 12 taken offline while an AER is parked. */
	cid = submit(&VA, &VA.admin, &aer);
	if (ctl_request(T.sock, "zone offline " NQN " 1 3072", 0, 30000, reply, sizeof(reply)))
		fail_msg("zone offline: %s", reply);
	assert_string_equal(reply, "1 zone(s) taken offline");
	assert_int_equal(reap(&VA, &VA.admin, &e), 0);
	assert_int_equal(le16toh(e.cid), cid);
	assert_true(zone_notice(le64toh(e.result)));
	expect_changed_zone(&VA, 12);
	assert_int_equal(report_zone(&VA, 12, &zs, &wp), 0);
	assert_int_equal(zs, 0xf);              /* ZSO (ZNS 1.1, Figure 37) */
	assert_int_equal(wp, UINT64_MAX);       /* ZNS 1.1, 3.4.2.2.3 */
	fill(&VA, P_DATA, 1, 12);
	s = rw(nvme_cmd_write, 12 * ZS, 1, GPA(P_DATA), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL),
			 SC(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_OFFLINE) | NVME_SC_DNR);

	/* One Unrecovered Read Error (NVMe Base 2.0, Figure 104), then reads work. */
	fill(&VA, P_DATA, 1, 11);
	s = rw(nvme_cmd_write, 11 * ZS, 1, GPA(P_DATA), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	if (ctl_request(T.sock, "inject error " NQN " 1 op=read count=1 status=2:0x81", 0, 30000,
			reply, sizeof(reply)))
		fail_msg("inject: %s", reply);
	s = rw(nvme_cmd_read, 11 * ZS, 1, GPA(P_RBACK), 0);
	memset(g(&VA, GPA(P_RBACK)), 0, PG);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL),
			 SC(NVME_SCT_MEDIA, NVME_SC_READ_ERROR) | NVME_SC_DNR);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), g(&VA, GPA(P_DATA)), PG);
	/* Its count used up, the rule is gone. */
	if (ctl_request_body(T.sock, "inject list", 0, 5000, reply, sizeof(reply), &body))
		fail_msg("inject list: %s", reply);
	free(body);
	assert_string_equal(reply, "0 injection(s)");
}

/* Doorbell Buffer Config: I/O doorbells through the shadow page, the event
 * index follows; then CC.SHN shutdown and a reset as Linux does them. */
static void test_shadow_doorbells_shutdown(void **state)
{
	struct nvme_sqe s;
	uint32_t *ei;

	(void)state;
	vm_up(&VA);
	memset(g(&VA, GPA(P_SHADOW)), 0, PG);
	memset(g(&VA, GPA(P_EVENT)), 0, PG);
	s = sqe(nvme_admin_dbbuf, 0, 0, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_SHADOW));
	s.dptr.prp.prp2 = htole64(GPA(P_EVENT));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	VA.io.shadow = true;
	assert_int_equal(zone_send(&VA, 4, NVME_ZNS_ZSA_RESET), 0);
	for (int i = 0; i < 40; i++) { /* wraps the 32-entry queue */
		s = rw(nvme_zns_cmd_append, 4 * ZS, 1, GPA(P_DATA), 0);
		assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	}
	ei = g(&VA, GPA(P_EVENT));
	assert_int_equal(le32toh(ei[2]), VA.io.tail);        /* SQ 1 tail event index */
	/* Shutdown: SHST goes to complete; then disable. */
	bar_w32(&VA, REG_CC, CC_ENABLE | 1u << 14);
	assert_true(wait_csts(&VA, 0xc, 0x8));
	bar_w32(&VA, REG_CC, 0);
	assert_true(wait_csts(&VA, 0xf, 0));
	/* And up again on the same connection. */
	vm_enable(&VA);
	vm_io_queues(&VA);
	s = rw(nvme_cmd_read, 4 * ZS, 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	vm_close(&VA);
}

/* n commands with an opcode no command set has, rung with one doorbell
 * write: the controller refuses each at fetch, so their n entries are
 * posted in one go on the worker. Reaped; each Invalid Opcode. */
static void burst_invalid(struct vnvme *v, int n)
{
	struct vnvme_q *q = &v->io;

	for (int i = 0; i < n; i++) {
		struct nvme_sqe s = sqe(0xfe, 1, 0, 0);

		s.cid = htole16(++q->cid);
		memcpy(g(v, q->sq + q->tail * 64ull), &s, sizeof(s));
		q->tail = (q->tail + 1) % q->size;
	}
	ring(v, q, 2u * q->qid, q->tail);
	for (int i = 0; i < n; i++) {
		struct nvme_cqe e;

		assert_int_equal(ST_ERR(reap(v, q, &e)), NVME_SC_INVALID_OPCODE);
	}
}

/* Set feature fid to cdw11, then 4 entries at once on the I/O CQ must
 * make exactly irqs interrupts on its vector. */
static void coalescing_case(uint8_t fid, uint32_t cdw11, uint64_t irqs)
{
	struct nvme_sqe s = sqe(nvme_admin_set_features, 0, fid, cdw11);
	uint64_t base;

	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	base = VA.irqs[1];
	burst_invalid(&VA, 4);
	assert_true(irq_wait(&VA, 1, base + irqs));
	assert_int_equal(VA.irqs[1], base + irqs);
}

/* Interrupt coalescing (feature 08h): THR + 1 entries make one interrupt;
 * fewer make one when the aggregation time ran out; Coalescing Disable
 * (feature 09h) on the vector makes one per entry again. */
static void test_irq_coalescing(void **state)
{
	struct nvme_sqe s;
	uint64_t res;

	(void)state;
	vm_up(&VA);
	/* Off (TIME 0): one interrupt per entry. */
	coalescing_case(NVME_FEAT_FID_IRQ_COALESCE, 0, 4);
	/* THR 3 (4 entries), TIME 25.5 ms: 4 entries at once, one interrupt. */
	coalescing_case(NVME_FEAT_FID_IRQ_COALESCE, 255u << 8 | 3u, 1);
	s = sqe(nvme_admin_get_features, 0, NVME_FEAT_FID_IRQ_COALESCE, 0);
	assert_int_equal(exec(&VA, &VA.admin, &s, &res), 0);
	assert_int_equal(res & 0xffff, 255u << 8 | 3u);
	/* THR 7 (8 entries), TIME 100 us: 4 entries, one interrupt, late. */
	coalescing_case(NVME_FEAT_FID_IRQ_COALESCE, 1u << 8 | 7u, 1);
	/* Coalescing disabled on vector 1: one per entry. */
	coalescing_case(NVME_FEAT_FID_IRQ_CONFIG, 1u << 16 | 1u, 4);
}

/* DEVICE_RESET, and a VM that goes away: the next one gets a fresh
 * controller; a second VM while one is served is turned away. */
static void test_reset_and_next_vm(void **state)
{
	struct vfu_client *other;
	uint16_t cntlid1, cntlid2;
	struct nvme_sqe s;
	struct nvme_id_ctrl *id;

	(void)state;
	vm_up(&VA);
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	id = g(&VA, GPA(P_ID));
	cntlid1 = le16toh(id->cntlid);
	other = vfuc_connect(vsock);
	if (other) {
		assert_int_equal(vfuc_wait_closed(other), 0);
		vfuc_close(other);
	}
	assert_int_equal(vfuc_call(VA.c, VFU_CMD_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0, NULL, NULL), 0);
	assert_int_equal(bar_r32(&VA, REG_CSTS), 0);
	assert_int_equal(bar_r32(&VA, REG_CC), 0);
	/* DEVICE_RESET also reset the PCI function: bus master and MSI-X again. */
	vm_close(&VA);
	/* A crashed VM: the socket just closes. */
	vm_up(&VB);
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VB, &VB.admin, &s, NULL), 0);
	id = g(&VB, GPA(P_ID));
	cntlid2 = le16toh(id->cntlid);
	assert_int_not_equal(cntlid1, cntlid2);
	vm_close(&VB);
}

/* kill -9 and a restart: a new VM finds the write pointer and the data. */
static void test_kill9_restart(void **state)
{
	struct nvme_sqe s;
	uint64_t wp;
	uint8_t zs;

	(void)state;
	vm_up(&VA);
	assert_int_equal(zone_send(&VA, 5, NVME_ZNS_ZSA_RESET), 0);
	fill(&VA, P_DATA, 3, 77);
	s = rw(nvme_cmd_write, 5 * ZS, 3, GPA(P_DATA), GPA(P_LIST));
	set_list(&VA, P_LIST, 0, GPA(P_DATA + 1));
	set_list(&VA, P_LIST, 1, GPA(P_DATA + 2));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	s = sqe(nvme_cmd_flush, 1, 0, 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	uint8_t saved[3 * PG];

	memcpy(saved, g(&VA, GPA(P_DATA)), sizeof(saved));
	target_kill(&T);
	vm_close(&VA);
	daemon_start(false);
	vm_up(&VA);
	assert_int_equal(report_zone(&VA, 5, &zs, &wp), 0);
	assert_int_equal(wp, 5 * ZS + 3);
	memset(g(&VA, GPA(P_RBACK)), 0, 3 * PG);
	set_list(&VA, P_LIST, 0, GPA(P_RBACK + 1));
	set_list(&VA, P_LIST, 1, GPA(P_RBACK + 2));
	s = rw(nvme_cmd_read, 5 * ZS, 3, GPA(P_RBACK), GPA(P_LIST));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), saved, sizeof(saved));
	vm_close(&VA);
}

/* A power cut (control socket) under a connected VM: the controller
 * reads as failed (CSTS.CFS), the guest resets it and finds the namespace
 * as the cut left it. */
static void test_power_cut(void **state)
{
	struct nvme_sqe s;
	char reply[512];
	uint64_t wp;
	uint8_t zs;

	(void)state;
	vm_up(&VA);
	assert_int_equal(zone_send(&VA, 6, NVME_ZNS_ZSA_RESET), 0);
	s = rw(nvme_cmd_write, 6 * ZS, 1, GPA(P_DATA), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	s = sqe(nvme_cmd_flush, 1, 0, 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	if (target_power_cut(&T, reply, sizeof(reply)) != 0) {
		target_show_log(&T, 20);
		fail_msg("power cut: %s", reply);
	}
	assert_true(wait_csts(&VA, 2, 2));                  /* CFS */
	vm_enable(&VA);
	vm_io_queues(&VA);
	assert_int_equal(report_zone(&VA, 6, &zs, &wp), 0);
	assert_int_equal(wp, 6 * ZS + 1);
	vm_close(&VA);
}


/* Admin queues of 16 entries, the SQ at asq and the CQ where the guest
 * keeps it, then CC.EN: what a driver does to enable the controller. */
static void enable_admin_at(struct vnvme *v, uint64_t asq)
{
	bar_w32(v, REG_AQA, 15u << 16 | 15u);
	bar_w64(v, REG_ASQ, asq);
	bar_w64(v, REG_ACQ, GPA(P_ACQ));
	bar_w32(v, REG_CC, CC_ENABLE);
}

/* After a VM was failed: the TCP host never noticed, and the next VM, with
 * sealed RAM as QEMU gives it, is served in place. */
static void others_still_served(void)
{
	struct nvme_cqe cqe;
	uint8_t buf[LBA];

	assert_int_equal(nvmf_read(&tio, 1, 0, 1, buf, LBA, &cqe), 0);
	tcp_down();
	vm_up(&VA);
	vm_close(&VA);
}

/* Hostile guests: data outside guest memory, queues outside it, doorbells
 * beyond a queue or for no queue, bad queue ids, memory unmapped under the
 * controller. Errors, CSTS.CFS, never a crash; the TCP host keeps working. */
static void test_hostile(void **state)
{
	struct nvme_sqe s;
	uint64_t outside = RAM_IOVA + (uint64_t)RAM_PAGES * PG;

	(void)state;
	tcp_up();
	vm_up(&VA);
	/* Data pointer outside what was mapped: Data Transfer Error. */
	s = rw(nvme_cmd_read, 0, 1, outside, 0);
	assert_int_equal(ST_ERR(exec(&VA, &VA.io, &s, NULL)), NVME_SC_DATA_XFER_ERROR);
	/* A PRP list entry outside. */
	set_list(&VA, P_LIST, 0, GPA(P_RBACK + 1));
	set_list(&VA, P_LIST, 1, outside + PG);
	s = rw(nvme_cmd_read, 0, 3, GPA(P_RBACK), GPA(P_LIST));
	assert_int_equal(ST_ERR(exec(&VA, &VA.io, &s, NULL)), NVME_SC_DATA_XFER_ERROR);
	/* Queue ids out of range, CQ outside memory. */
	s = sqe(nvme_admin_create_sq, 0, 31u << 16 | 999u, 1u << 16 | 1u);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(ST_ERR(exec(&VA, &VA.admin, &s, NULL)), SC(1, NVME_SC_QID_INVALID));
	s = sqe(nvme_admin_create_cq, 0, 31u << 16 | 2u, 2u << 16 | 3u);
	s.dptr.prp.prp1 = htole64(outside);
	assert_int_not_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	/* Doorbells for no queue and beyond a queue: ignored (an error event). */
	bar_w32(&VA, DB(2 * 7), 1);
	bar_w32(&VA, DB(2), 1000);
	bar_w32(&VA, 0x3000, 1);                             /* past the doorbells */
	assert_int_equal(bar_r32(&VA, REG_CSTS) & 3, 1);
	/* Still serving. */
	s = rw(nvme_cmd_read, 0, 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	/* Memory unmapped while a 1 MiB write is in flight: the unmap is
	 * answered once the controller let go of it; the write either
	 * completed first or its completion could not be posted (CFS). */
	assert_int_equal(zone_send(&VA, 7, NVME_ZNS_ZSA_RESET), 0);
	for (unsigned i = 0; i < 255; i++)
		set_list(&VA, P_LIST, i, GPA(P_DATA + 1 + i));
	s = rw(nvme_cmd_write, 7 * ZS, 256, GPA(P_DATA), GPA(P_LIST));
	submit(&VA, &VA.io, &s);
	assert_int_equal(vfuc_dma_unmap(VA.c, RAM_IOVA, (uint64_t)RAM_PAGES * PG, 0), 0);
	{
		struct nvme_cqe *e = g(&VA, VA.io.cq + VA.io.head * 16ull);
		bool posted = false, failed = false;

		for (int i = 0; i < 5000 && !posted && !failed; i++) {
			posted = (le16toh(__atomic_load_n(&e->status, __ATOMIC_ACQUIRE)) & 1) ==
				 VA.io.phase;
			failed = bar_r32(&VA, REG_CSTS) & 2;
			usleep(1000);
		}
		assert_true(posted || failed);
	}
	vm_close(&VA);
	vm_up(&VA);
	/* The guest takes its memory away under the queues: fatal status. */
	assert_int_equal(vfuc_dma_unmap(VA.c, RAM_IOVA, (uint64_t)RAM_PAGES * PG, 0), 0);
	bar_w32(&VA, DB(2), (VA.io.tail + 1) % VA.io.size);
	assert_true(wait_csts(&VA, 2, 2));
	vm_close(&VA);
	/* Admin queues outside memory: enabling fails with CFS. */
	vm_open(&VA);
	enable_admin_at(&VA, outside);
	assert_true(wait_csts(&VA, 2, 2));
	vm_close(&VA);
	others_still_served();
}

/* Guest RAM that may shrink (a memfd without F_SEAL_SHRINK, as a hostile
 * client or a file backend gives it) is not mapped by the device: it is a
 * region without fd, and queues there read as outside guest memory, so
 * enabling fails with CFS. The client then cuts the file to nothing and
 * rings the admin doorbell: had the device mapped the file, its next touch
 * of the queue would raise SIGBUS and end the daemon, every host with it. */
static void test_unsealed_ram(void **state)
{
	struct nvme_sqe s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);

	(void)state;
	tcp_up();
	if (vnvme_open_with(&VA, vsock, RAM_IOVA, RAM_PAGES, VNVME_UNSEALED_RAM))
		fail_msg("%s", VA.err);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	memcpy(g(&VA, GPA(P_ASQ)), &s, sizeof(s));
	enable_admin_at(&VA, GPA(P_ASQ));
	assert_int_equal(ftruncate(VA.memfd, 0), 0);
	bar_w32(&VA, DB(0), 1);
	assert_true(wait_csts(&VA, 2, 2));
	vm_close(&VA);
	others_still_served();
}

/* add-subsys through the control socket: subsystem NQN-name from
 * DIR/name.ini, with one 8 MiB namespace (ns_keys added) and the socket
 * DIR/name.sock (vfio_keys added), whose path goes to sock. */
static void add_subsys(const char *name, const char *ns_keys, const char *vfio_keys, char *sock,
		       size_t socklen)
{
	char ini[PATH_MAX + 16], text[2 * PATH_MAX], req[PATH_MAX + 128], reply[512];

	snprintf(ini, sizeof(ini), "%s/%s.ini", dir, name);
	snprintf(sock, socklen, "%s/%s.sock", dir, name);
	snprintf(text, sizeof(text),
		 "[subsystem]\nnqn = " NQN "-%s\nallow_any_host = yes\n"
		 "[namespace 1]\nsize = 8M\nlba_size = 4096\n%s"
		 "[vfio-user]\nsocket = %s\n%s", name, ns_keys, sock, vfio_keys);
	write_file(ini, text);
	snprintf(req, sizeof(req), "add-subsys --format %s", ini);
	if (ctl_request(T.sock, req, 1000, 30000, reply, sizeof(reply)) != 0)
		fail_msg("add-subsys: %s", reply);
}

/* add-subsys with a [vfio-user] socket serves it; remove-subsys closes the
 * VM's socket and removes the file. */
static void test_control_add_remove(void **state)
{
	char sock[PATH_MAX + 16], req[PATH_MAX + 128];
	char reply[512];
	struct nvme_sqe s;
	struct nvme_id_ctrl *id;
	struct stat st;

	(void)state;
	add_subsys("extra", "zone_size = 1M\nuuid = 0f5c1f4e-7f61-4a43-8f4e-3c2b1a0d9e78\n", "",
		   sock, sizeof(sock));
	vm_open_at(&VB, sock);
	vm_enable(&VB);
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VB, &VB.admin, &s, NULL), 0);
	id = g(&VB, GPA(P_ID));
	assert_string_equal((char *)id->subnqn, NQN "-extra");
	/* The same socket again: refused, naming it. */
	snprintf(req, sizeof(req), "add-subsys --nqn " NQN "-again %s/extra.ini", dir);
	assert_int_equal(ctl_request(T.sock, req, 1000, 30000, reply, sizeof(reply)), 1);
	if (ctl_request(T.sock, "remove-subsys " NQN "-extra", 1000, 30000, reply, sizeof(reply)))
		fail_msg("remove-subsys: %s", reply);
	assert_int_equal(vfuc_wait_closed(VB.c), 0);
	assert_int_not_equal(lstat(sock, &st), 0);
	/* The first subsystem's VM is still served. */
	vm_up(&VA);
}

/* A subsystem only TLS may reach, added to a target with no tls_listen
 * listener: refused, as a start refuses it (no host could connect). */
static void test_control_add_tls_only_refused(void **state)
{
	char ini[PATH_MAX + 16], req[PATH_MAX + 128], reply[512];

	(void)state;
	snprintf(ini, sizeof(ini), "%s/tls-only.ini", dir);
	write_file(ini, "[subsystem]\nnqn = " NQN "-tls\nrequire_tls = yes\n"
			"[namespace 1]\nsize = 8M\nzoned = no\n"
			"[host nqn.2026-11.io.znstgt:tls-host]\npsk = " PSK256 "\n");
	snprintf(req, sizeof(req), "add-subsys --format %s", ini);
	assert_int_equal(ctl_request(T.sock, req, 1000, 30000, reply, sizeof(reply)), 1);
	if (!strstr(reply, "require_tls: yes, but the target has no tls_listen listener"))
		fail_msg("%s", reply);
}

/* Start-up errors: a socket path that is not a socket, a directory that
 * does not exist: the start fails naming file, section and key. */
static void test_bad_socket_paths(void **state)
{
	char line[PATH_MAX + 64], why[512], path[PATH_MAX + 16];

	(void)state;
	assert_int_equal(target_stop(&T, why, sizeof(why)), 0);
	snprintf(path, sizeof(path), "%s/plain", dir);
	write_file(path, "not a socket\n");
	snprintf(line, sizeof(line), "socket = %s", path);
	write_subsys(line);
	assert_int_not_equal(target_start(&T, false, why, sizeof(why)), 0);
	assert_true(target_log_contains(&T, "[vfio-user] socket"));
	assert_true(target_log_contains(&T, "exists and is not a socket"));
	snprintf(line, sizeof(line), "socket = %s/nodir/vm.sock", dir);
	write_subsys(line);
	assert_int_not_equal(target_start(&T, false, why, sizeof(why)), 0);
	assert_true(target_log_contains(&T, "/nodir does not exist"));
	snprintf(line, sizeof(line), "socket = %s", vsock);
	write_subsys(line);
	daemon_start(false);
}

/*
 * Reservations from a VM (doc/reservations.md): a PCIe host has no Connect;
 * its controller starts with its device's Host Identifier and the host may
 * set its own (Set Features 81h) before it makes I/O queues. A VM's
 * reservation shuts a TCP host's writes out; the TCP host's report names
 * the VM by the identifier it set.
 */
static void test_resv_host_id(void **state)
{
	static const uint8_t id[16] = { 0x5e, 0x70, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
	uint8_t dflt[16], rep[256];
	uint64_t keys[2] = { 0, htole64(0x77) };
	struct nvme_sqe s;

	(void)state;
	vm_open(&VA);
	vm_enable(&VA);
	s = sqe(nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	memcpy(dflt, g(&VA, GPA(P_ID)), 16);
	assert_memory_not_equal(dflt, (uint8_t[16]){ 0 }, 16);
	memcpy(g(&VA, GPA(P_ID)), id, 16);
	s = sqe(nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	/* EXHID 0 (a 64-bit identifier): Host Identifier Inconsistent Format. */
	s.cdw11 = 0;
	assert_int_equal(ST_ERR(exec(&VA, &VA.admin, &s, NULL)), 0x18);
	s = sqe(nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	s.dptr.prp.prp1 = htole64(GPA(P_RBACK));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), id, 16);
	vm_io_queues(&VA);
	/* With I/O queues it no longer changes. */
	s = sqe(nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(ST_ERR(exec(&VA, &VA.admin, &s, NULL)), NVME_SC_CMD_SEQ_ERROR);

	/* The VM registers and takes Write Exclusive. */
	memcpy(g(&VA, GPA(P_DATA)), keys, 16);
	s = sqe(nvme_cmd_resv_register, 1, 0, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_DATA));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	keys[0] = htole64(0x77);
	memcpy(g(&VA, GPA(P_DATA)), keys, 16);
	s = sqe(nvme_cmd_resv_acquire, 1, NVME_RESERVATION_RTYPE_WE << 8, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_DATA));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);

	/* The TCP host: no write, a read, a report naming the VM's ID. */
	tcp_up();
	uint8_t buf[LBA] = { 0 };
	assert_int_equal(nvmf_write(&tio, 1, 0, 1, buf, LBA, NULL),
			 NVME_SC_RESERVATION_CONFLICT | NVME_STATUS_DNR);
	assert_int_equal(nvmf_read(&tio, 1, 0, 1, buf, LBA, NULL), 0);
	s = sqe(nvme_cmd_resv_report, 1, sizeof(rep) / 4 - 1, 1);
	assert_int_equal(nvmf_cmd(&tio, &s, NULL, 0, rep, sizeof(rep), NULL), 0);
	assert_int_equal(rep[4], NVME_RESERVATION_RTYPE_WE);
	assert_int_equal(rep[5], 1);
	assert_memory_equal(rep + 64 + 16, id, 16);
	assert_int_equal(rep[64 + 2], 1); /* it holds the reservation */

	/* Clear: the TCP host may write again. */
	memcpy(g(&VA, GPA(P_DATA)), keys, 8);
	s = sqe(nvme_cmd_resv_release, 1, 1, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_DATA));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_true(nvmf_write(&tio, 1, 0, 1, buf, LBA, NULL) !=
		    (NVME_SC_RESERVATION_CONFLICT | NVME_STATUS_DNR));
	tcp_down();
	vm_close(&VA);
}

/* A Connect of a TCP I/O queue naming the CNTLID of the VM's controller,
 * with its host NQN and Host Identifier (stable per socket path, readable
 * by anyone): a PCIe controller's queues are in guest memory, made by
 * Create I/O SQ. The Connect must be refused; taking the QID would also
 * leave the VM unable to create that queue, and the TCP host would act with
 * the VM's identity (its reservation). */
static void test_tcp_io_connect_to_vm_ctrl(void **state)
{
	struct nvmf_connect_data d;
	struct nvme_sqe s;
	struct nvme_cqe cqe;
	uint8_t hostid[16];
	uint16_t cntlid;
	int st;

	(void)state;
	vm_open(&VA);
	vm_enable(&VA);
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	cntlid = le16toh(((struct nvme_id_ctrl *)g(&VA, GPA(P_ID)))->cntlid);
	s = sqe(nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0);
	memcpy(hostid, g(&VA, GPA(P_ID)), 16);

	if (nvmf_tcp_connect(&tio, "127.0.0.1", port, false, false))
		fail_msg("I/O queue: %s", tio.err);
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	memcpy(d.hostid, hostid, 16);
	d.cntlid = htole16(cntlid);
	snprintf(d.subsysnqn, sizeof(d.subsysnqn), "%s", NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", "nqn.2024-01.io.znstgt:vfio-user");
	s.opcode = nvme_admin_fabrics;
	((uint8_t *)&s)[4] = nvme_fabrics_type_connect;
	s.cdw10 = htole32(1u << 16); /* QID 1 */
	s.cdw11 = htole32(31);
	tio.qid = 1;
	st = nvmf_cmd(&tio, &s, &d, sizeof(d), NULL, 0, &cqe);
	assert_int_not_equal(st, 0);
	/* The VM's own I/O queue 1 comes up. */
	vm_io_queues(&VA);
	nvmf_close(&tio);
	vm_close(&VA);
}

/* ---- mmap'd doorbells ([vfio-user] doorbells = mmap, the default) ---- */

/* BAR0's region info as QEMU asks for it: argsz 32 gets the size needed,
 * MMAP without CAPS and no fd; the retry gets the sparse-mmap capability
 * naming the doorbell page and the fd. Returns that fd. */
static int doorbell_region_fd(struct vfu_client *c)
{
	uint8_t buf[128];
	struct vfu_region_info ri = { .argsz = 32, .index = VFU_PCI_BAR0 };
	struct vfu_cap_sparse cap;
	struct vfu_sparse_area area;
	int fd = -1;

	assert_int_equal(vfuc_call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0,
				   buf, sizeof(buf), NULL, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(fd, -1);
	assert_int_equal(ri.argsz, sizeof(ri) + sizeof(cap) + sizeof(area));
	assert_int_equal(ri.flags, VFU_REGION_READ | VFU_REGION_WRITE | VFU_REGION_MMAP);
	ri = (struct vfu_region_info){ .argsz = ri.argsz, .index = VFU_PCI_BAR0 };
	assert_int_equal(vfuc_call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0,
				   buf, sizeof(buf), NULL, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_true(fd >= 0);
	assert_int_equal(ri.flags, VFU_REGION_READ | VFU_REGION_WRITE | VFU_REGION_MMAP |
			 VFU_REGION_CAPS);
	assert_int_equal(ri.size, 16384);
	assert_int_equal(ri.cap_offset, sizeof(ri));
	memcpy(&cap, buf + ri.cap_offset, sizeof(cap));
	assert_int_equal(cap.hdr.id, VFU_REGION_CAP_SPARSE_MMAP);
	assert_int_equal(cap.nr_areas, 1);
	memcpy(&area, buf + ri.cap_offset + sizeof(cap), sizeof(area));
	assert_int_equal(area.offset, 0x1000);              /* registers below stay trapped */
	assert_int_equal(area.size, 4096);
	return fd;
}

/* Queues made and I/O done with every doorbell a store into the mapped
 * page (no message): completions and their interrupts arrive. */
static void test_mmap_doorbells_io(void **state)
{
	struct nvme_sqe s;
	struct nvme_cqe cqe;
	uint64_t irqs0;
	int fd;

	(void)state;
	vm_open(&VA);
	assert_non_null(VA.db);
	assert_int_equal(VA.db_area.offset, 0x1000);
	fd = doorbell_region_fd(VA.c);
	close(fd);
	vm_enable(&VA);
	vm_io_queues(&VA);
	assert_int_equal(VA.db[0], VA.admin.tail);          /* the page holds what was rung */
	assert_int_equal(VA.db[2], VA.io.tail);
	assert_int_equal(zone_send(&VA, 2, NVME_ZNS_ZSA_RESET), 0);
	irqs0 = VA.irqs[1];
	fill(&VA, P_DATA, 2, 5);
	s = rw(nvme_cmd_write, 2 * ZS, 2, GPA(P_DATA), GPA(P_DATA + 1));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	memset(g(&VA, GPA(P_RBACK)), 0, 2 * PG);
	s = rw(nvme_cmd_read, 2 * ZS, 2, GPA(P_RBACK), GPA(P_RBACK + 1));
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	assert_memory_equal(g(&VA, GPA(P_RBACK)), g(&VA, GPA(P_DATA)), 2 * PG);
	assert_true(irq_wait(&VA, 1, irqs0 + 2));
	/* A burst: commands placed, one tail store for all, reaped by
	 * spinning on the queue as a polling driver does. */
	for (unsigned i = 0; i < 8; i++) {
		s = rw(nvme_cmd_read, 2 * ZS + i % 2, 1, GPA(P_RBACK + i), 0);
		assert_true(vnvme_put(&VA, &VA.io, &s, false) >= 0);
	}
	__atomic_store_n(&VA.db[2], htole32(VA.io.tail), __ATOMIC_RELEASE);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(vnvme_reap(&VA, &VA.io, &cqe, true), 0);
	vm_close(&VA);
}

/* Bad doorbells written by a hostile guest, then two Asynchronous Event
 * Requests: Write to Invalid Doorbell Register and Invalid Doorbell Write
 * Value come back (in either order), and the controller keeps serving. */
static void hostile_doorbells(struct vnvme *v)
{
	struct nvme_sqe s;
	struct nvme_cqe cqe;
	uint32_t infos = 0;

	bar_w32(v, DB(2 * 9), 1);                            /* no queue 9 */
	bar_w32(v, DB(2), 1000);                             /* beyond SQ 1 (32 entries) */
	if (v->db) /* reserved dwords of the page past the last doorbell */
		__atomic_store_n(&v->db[1000], 0xffffffffu, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++) {
		s = sqe(nvme_admin_async_event, 0, 0, 0);
		assert_true(vnvme_put(v, &v->admin, &s, true) >= 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(reap(v, &v->admin, &cqe), 0);
		uint32_t dw0 = le32toh((uint32_t)le64toh(cqe.result));

		assert_int_equal(dw0 & 7, NVME_AER_ERROR);
		assert_int_equal((dw0 >> 16) & 0xff, NVME_LOG_LID_ERROR);
		infos |= 1u << ((dw0 >> 8) & 0xff);
	}
	assert_int_equal(infos, 1u << NVME_AER_ERROR_INVALID_DB_REG |
				1u << NVME_AER_ERROR_INVALID_DB_VAL);
	assert_int_equal(bar_r32(v, REG_CSTS) & 3, 1);       /* ready, no CFS */
	/* The queue's tail stayed where it was: the next command runs. */
	s = rw(nvme_cmd_read, 0, 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(v, &v->io, &s, NULL), 0);
}

static void test_mmap_doorbells_hostile(void **state)
{
	(void)state;
	vm_up(&VA);
	assert_non_null(VA.db);
	hostile_doorbells(&VA);
	vm_close(&VA);
	/* The same through messages to the same device. */
	if (vnvme_open_with(&VA, vsock, RAM_IOVA, RAM_PAGES, VNVME_MSG_DOORBELLS))
		fail_msg("%s", VA.err);
	assert_null(VA.db);
	vm_enable(&VA);
	vm_io_queues(&VA);
	hostile_doorbells(&VA);
	vm_close(&VA);
}

/* Resets while the device polls: CC.EN = 0 and enable again, where the
 * new admin queue's doorbells reach the old values (they start over at 0
 * with the queue); DEVICE_RESET with commands in flight clears the page;
 * a VM that goes away with commands in flight; the next VM gets a page of
 * its own, so the old one's stores reach nothing. */
static void test_mmap_doorbells_reset(void **state)
{
	struct nvme_sqe s;
	struct stat st_a, st_b;
	uint32_t *old;
	int fd_a, fd_b;

	(void)state;
	vm_open(&VA);
	vm_enable(&VA);
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VA, &VA.admin, &s, NULL), 0); /* admin SQ tail 1, CQ head 1 */
	vm_enable(&VA);                                      /* controller reset, enable */
	vm_io_queues(&VA);                                   /* tail 1 and head 1 first again */
	s = rw(nvme_cmd_read, 0, 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(&VA, &VA.io, &s, NULL), 0);
	for (unsigned i = 0; i < 4; i++) {
		s = rw(nvme_cmd_read, i, 1, GPA(P_RBACK + i), 0);
		submit(&VA, &VA.io, &s);
	}
	assert_int_equal(vfuc_call(VA.c, VFU_CMD_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0, NULL,
				   NULL), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(__atomic_load_n(&VA.db[i], __ATOMIC_ACQUIRE), 0);
	assert_int_equal(bar_r32(&VA, REG_CSTS), 0);
	vm_close(&VA);

	vm_up(&VA);
	fd_a = doorbell_region_fd(VA.c);
	old = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd_a, 0x1000);
	assert_true(old != MAP_FAILED);
	for (unsigned i = 0; i < 4; i++) {
		s = rw(nvme_cmd_read, i, 1, GPA(P_RBACK + i), 0);
		submit(&VA, &VA.io, &s);
	}
	vm_close(&VA);                                       /* gone with commands in flight */
	vm_up(&VB);
	fd_b = doorbell_region_fd(VB.c);
	assert_int_equal(fstat(fd_a, &st_a), 0);
	assert_int_equal(fstat(fd_b, &st_b), 0);
	assert_true(st_a.st_ino != st_b.st_ino);             /* a fresh page */
	/* Sealed: a client cannot shrink it under the device's mapping. */
	assert_int_not_equal(ftruncate(fd_b, 0), 0);
	assert_int_equal(errno, EPERM);
	/* The old VM's page is nobody's doorbells any more. */
	old[0] = 7;
	old[2] = 9;
	s = sqe(nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	s.dptr.prp.prp1 = htole64(GPA(P_ID));
	assert_int_equal(exec(&VB, &VB.admin, &s, NULL), 0);
	s = rw(nvme_cmd_read, 0, 1, GPA(P_RBACK), 0);
	assert_int_equal(exec(&VB, &VB.io, &s, NULL), 0);
	assert_int_equal(VB.admin.tail, 4);
	munmap(old, PG);
	close(fd_a);
	close(fd_b);
	vm_close(&VB);
}

/* A subsystem with [vfio-user] doorbells = message: BAR0 offered wholly
 * trapped (no MMAP), doorbells by message, the same checks. */
static void test_message_doorbells(void **state)
{
	char sock[PATH_MAX + 16], reply[512];
	uint8_t buf[128];
	struct vfu_region_info ri = { .argsz = sizeof(buf), .index = VFU_PCI_BAR0 };
	int fd = -1;

	(void)state;
	add_subsys("msgdb", "zoned = no\nuuid = 0f5c1f4e-7f61-4a43-8f4e-3c2b1a0d9e79\n",
		   "doorbells = message\n", sock, sizeof(sock));
	vm_open_at(&VA, sock);
	assert_null(VA.db);
	assert_int_equal(vfuc_call(VA.c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0,
				   buf, sizeof(buf), NULL, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(fd, -1);
	assert_int_equal(ri.flags, VFU_REGION_READ | VFU_REGION_WRITE);
	vm_enable(&VA);
	vm_io_queues(&VA);
	hostile_doorbells(&VA);
	vm_close(&VA);
	if (ctl_request(T.sock, "remove-subsys " NQN "-msgdb", 1000, 30000, reply, sizeof(reply)))
		fail_msg("remove-subsys: %s", reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_identity_and_identify, test_end),
		cmocka_unit_test_teardown(test_io_prp_zones, test_end),
		cmocka_unit_test_teardown(test_shared_with_tcp, test_end),
		cmocka_unit_test_teardown(test_resv_host_id, test_end),
		cmocka_unit_test_teardown(test_tcp_io_connect_to_vm_ctrl, test_end),
		cmocka_unit_test_teardown(test_changed_zones_both, test_end),
		cmocka_unit_test_teardown(test_faults_reach_vm, test_end),
		cmocka_unit_test_teardown(test_shadow_doorbells_shutdown, test_end),
		cmocka_unit_test_teardown(test_irq_coalescing, test_end),
		cmocka_unit_test_teardown(test_reset_and_next_vm, test_end),
		cmocka_unit_test_teardown(test_kill9_restart, test_end),
		cmocka_unit_test_teardown(test_power_cut, test_end),
		cmocka_unit_test_teardown(test_hostile, test_end),
		cmocka_unit_test_teardown(test_unsealed_ram, test_end),
		cmocka_unit_test_teardown(test_control_add_remove, test_end),
		cmocka_unit_test_teardown(test_control_add_tls_only_refused, test_end),
		cmocka_unit_test_teardown(test_mmap_doorbells_io, test_end),
		cmocka_unit_test_teardown(test_mmap_doorbells_hostile, test_end),
		cmocka_unit_test_teardown(test_mmap_doorbells_reset, test_end),
		cmocka_unit_test_teardown(test_message_doorbells, test_end),
		cmocka_unit_test_teardown(test_bad_socket_paths, test_end),
	};

	if (getenv("ZNSTGT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ZNSTGT_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
