/*
 * Reservations over NVMe/TCP with two hosts (doc/reservations.md): the real
 * daemon (build/znstgt, a child process), and two hosts - two host NQNs,
 * so two Host Identifiers - each with an admin and an I/O queue.
 *
 *   - Identify: ONCS bit 5, RESCAP, CTRATT 128-bit host IDs;
 *   - Register, Acquire (Write Exclusive): the other host's Write, Write
 *     Zeroes, Flush, Zone Append and Zone Management Send meet Reservation
 *     Conflict, its Read and Zone Management Receive do not; the holder's
 *     all pass; Report (EDS) from each host, into a short buffer, and EDS 0
 *     refused;
 *   - Preempt by the other host to Exclusive Access: the preempted host's
 *     parked AER completes (Reservation Log Page Available), log page 80h
 *     says Registration Preempted for namespace 1 once, then is empty; its
 *     reads now conflict; the mask feature silences the next notice;
 *   - features 81h (fabrics: read only), 82h, 83h (PTPL), and the PTPL
 *     state in the report;
 *   - persistence: with PTPL, registrations and the reservation survive
 *     kill -9 and a restart; a damaged resv.state refuses its namespace
 *     (the other is served) with a message naming the file; put back, it
 *     loads again.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_daemon.h"

#define NQN "nqn.2026-11.io.znstgt:resv-wire"
#define HOST1 "nqn.2014-08.org.nvmexpress:uuid:11111111-2b1a-4c4e-9a55-0d6f1e2c3b4a"
#define HOST2 "nqn.2014-08.org.nvmexpress:uuid:22222222-2b1a-4c4e-9a55-0d6f1e2c3b4a"
#define LBA 4096u
#define CONFLICT (NVME_SC_RESERVATION_CONFLICT | NVME_STATUS_DNR)
#define K1 0x1111aaaaull
#define K2 0x2222bbbbull

static char dir[] = "/tmp/znstgt-rw-XXXXXX";
static char port[TARGET_PORT_LEN];
static struct target_proc T;

struct host {
	const char *nqn;
	struct nvmf_client admin, io;
	uint8_t hostid[16];
};
static struct host H1 = { .nqn = HOST1 }, H2 = { .nqn = HOST2 };

static void host_up(struct host *h)
{
	if (nvmf_admin_up(&h->admin, "127.0.0.1", port, h->nqn, NQN))
		fail_msg("%s", h->admin.err);
	if (nvmf_io_up(&h->io, "127.0.0.1", port, h->nqn, NQN, h->admin.cntlid, 1, 64))
		fail_msg("%s", h->io.err);
	/* The Host Identifier the client sends (nvmf_connect). */
	memset(h->hostid, 0, 16);
	for (size_t i = 0; h->nqn[i]; i++)
		h->hostid[i % 16] ^= (uint8_t)h->nqn[i];
}

static void host_down(struct host *h)
{
	nvmf_close(&h->io);
	nvmf_close(&h->admin);
}

static void sqe_init(struct nvme_sqe *sqe, uint8_t opcode, uint32_t nsid, uint32_t cdw10)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->nsid = htole32(nsid);
	sqe->cdw10 = htole32(cdw10);
}

/* ---- the reservation commands ---- */

static int keys_cmd(struct host *h, uint8_t op, uint32_t nsid, uint32_t cdw10, uint64_t k1,
		    uint64_t k2, uint32_t len)
{
	struct nvme_sqe sqe;
	uint64_t keys[2] = { htole64(k1), htole64(k2) };

	sqe_init(&sqe, op, nsid, cdw10);
	return nvmf_cmd(&h->io, &sqe, keys, len, NULL, 0, NULL);
}

/* Register (rrega 0) / Unregister (1) / Replace (2), CPTPL in bits 31:30. */
static int do_register(struct host *h, uint32_t nsid, uint32_t rrega, uint32_t cptpl,
		       uint64_t crkey, uint64_t nrkey)
{
	return keys_cmd(h, nvme_cmd_resv_register, nsid, rrega | cptpl << 30, crkey, nrkey, 16);
}

static int do_acquire(struct host *h, uint32_t nsid, uint32_t racqa, uint8_t rtype,
		      uint64_t crkey, uint64_t prkey)
{
	return keys_cmd(h, nvme_cmd_resv_acquire, nsid, racqa | (uint32_t)rtype << 8, crkey,
			prkey, 16);
}

static int do_release(struct host *h, uint32_t nsid, uint32_t rrela, uint8_t rtype,
		      uint64_t crkey)
{
	return keys_cmd(h, nvme_cmd_resv_release, nsid, rrela | (uint32_t)rtype << 8, crkey, 0, 8);
}

static int do_report(struct host *h, uint32_t nsid, bool eds, void *buf, uint32_t len)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_cmd_resv_report, nsid, len / 4 - 1);
	sqe.cdw11 = htole32(eds);
	memset(buf, 0xee, len);
	return nvmf_cmd(&h->io, &sqe, NULL, 0, buf, len, NULL);
}

/* ---- I/O of each command group ---- */

static uint8_t blk[LBA];

static int io_cmd(struct host *h, uint8_t op, uint32_t nsid)
{
	struct nvme_sqe sqe;

	switch (op) {
	case nvme_cmd_read:
		return nvmf_read(&h->io, nsid, 0, 1, blk, LBA, NULL);
	case nvme_cmd_write:
		return nvmf_write(&h->io, nsid, 0, 1, blk, LBA, NULL);
	case nvme_zns_cmd_append:
		sqe_init(&sqe, op, nsid, 0);
		return nvmf_cmd(&h->io, &sqe, blk, LBA, NULL, 0, NULL);
	case nvme_zns_cmd_mgmt_send:
		sqe_init(&sqe, op, nsid, 0);
		sqe.cdw13 = htole32(NVME_ZNS_ZSA_CLOSE);
		return nvmf_cmd(&h->io, &sqe, NULL, 0, NULL, 0, NULL);
	case nvme_zns_cmd_mgmt_recv:
		sqe_init(&sqe, op, nsid, 0);
		sqe.cdw12 = htole32(LBA / 4 - 1);
		return nvmf_cmd(&h->io, &sqe, NULL, 0, blk, LBA, NULL);
	default: /* Flush, Write Zeroes (1 block at LBA 0... of zone 1) */
		sqe_init(&sqe, op, nsid, op == nvme_cmd_write_zeroes ? 256 : 0);
		return nvmf_cmd(&h->io, &sqe, NULL, 0, NULL, 0, NULL);
	}
}

static void expect_access(struct host *h, bool read_ok, bool write_ok)
{
	static const uint8_t reads[] = { nvme_cmd_read, nvme_zns_cmd_mgmt_recv };
	static const uint8_t writes[] = { nvme_cmd_write, nvme_cmd_write_zeroes, nvme_cmd_flush,
					  nvme_zns_cmd_append, nvme_zns_cmd_mgmt_send };

	for (size_t i = 0; i < sizeof(reads); i++) {
		int st = io_cmd(h, reads[i], 1);
		if (read_ok ? st == CONFLICT : st != CONFLICT)
			fail_msg("opcode %#x from %s: status %#x", reads[i], h->nqn, st);
	}
	for (size_t i = 0; i < sizeof(writes); i++) {
		int st = io_cmd(h, writes[i], 1);
		if (write_ok ? st == CONFLICT : st != CONFLICT)
			fail_msg("opcode %#x from %s: status %#x", writes[i], h->nqn, st);
	}
}

/* ---- admin ---- */

static int feature(struct host *h, bool set, uint32_t fid, uint32_t nsid, uint32_t cdw11,
		   void *data, uint32_t len, uint32_t *result)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	sqe_init(&sqe, set ? nvme_admin_set_features : nvme_admin_get_features, nsid, fid);
	sqe.cdw11 = htole32(cdw11);
	int st = nvmf_cmd(&h->admin, &sqe, set ? data : NULL, set ? len : 0, set ? NULL : data,
			  set ? 0 : len, &cqe);
	if (result)
		*result = (uint32_t)le64toh(cqe.result);
	return st;
}

static int resv_log(struct host *h, struct nvme_resv_notification_log *l)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_admin_get_log_page, NVME_NSID_ALL,
		 NVME_LOG_LID_RESERVATION | (uint32_t)(sizeof(*l) / 4 - 1) << 16);
	return nvmf_cmd(&h->admin, &sqe, NULL, 0, l, sizeof(*l), NULL);
}

static uint16_t park_aer(struct host *h)
{
	struct nvme_sqe sqe;

	sqe_init(&sqe, nvme_admin_async_event, 0, 0);
	int cid = nvmf_submit(&h->admin, &sqe, NULL, 0, NULL, 0);
	assert_true(cid >= 0);
	return (uint16_t)cid;
}

/* ---- setup ---- */

static int setup(void **state)
{
	char why[256];

	(void)state;
	if (target_daemon_up(&T, dir, (char *[]){ port }, 1, "threads = 2\nio_threads = 2\n"
			     "log_level = warn\n", "resv.ini",
			     "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
			     "[namespace 1]\npath = nsA\nsize = 8M\nzone_size = 1M\nwrite_cache = no\n"
			     "[namespace 2]\npath = nsB\nzoned = no\nsize = 4M\nwrite_cache = no\n",
			     why, sizeof(why)) != 0)
		fail_msg("%s", why);
	host_up(&H1);
	host_up(&H2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	host_down(&H1);
	host_down(&H2);
	target_finish_ok(&T, dir);
	return 0;
}

/* ---- tests ---- */

static void test_identify(void **state)
{
	static uint8_t buf[4096];
	struct nvme_id_ctrl *c = (void *)buf;
	struct nvme_id_ns *n = (void *)buf;

	(void)state;
	assert_int_equal(nvmf_identify(&H1.admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf, NULL), 0);
	assert_true(le16toh(c->oncs) & NVME_CTRL_ONCS_RESERVATIONS);
	assert_true(le32toh(c->ctratt) & NVME_CTRL_CTRATT_128_ID);
	assert_int_equal(le32toh(c->ioccsz) * 16 >= 64 + 16, true);
	for (uint32_t nsid = 1; nsid <= 2; nsid++) {
		assert_int_equal(nvmf_identify(&H1.admin, NVME_IDENTIFY_CNS_NS, nsid, 0, buf, NULL), 0);
		assert_int_equal(n->rescap, 0xff);
	}
}

static void test_two_hosts(void **state)
{
	static uint8_t buf[512];
	struct nvme_resv_status *r = (void *)buf;
	struct nvme_registered_ctrl_ext *e = (void *)(buf + 64);

	(void)state;
	/* Nobody holds anything: both may do anything. */
	expect_access(&H2, true, true);
	assert_int_equal(do_register(&H1, 1, 0, 0, 0, K1), 0);
	assert_int_equal(do_register(&H2, 1, 0, 0, 0, K2), 0);
	/* A Register again with another key: conflict. */
	assert_int_equal(do_register(&H2, 1, 0, 0, 0, K1), CONFLICT);
	/* Acquire with a wrong key, then Write Exclusive with the right one. */
	assert_int_equal(do_acquire(&H1, 1, 0, NVME_RESERVATION_RTYPE_WE, K2, 0), CONFLICT);
	assert_int_equal(do_acquire(&H1, 1, 0, NVME_RESERVATION_RTYPE_WE, K1, 0), 0);
	assert_int_equal(do_acquire(&H2, 1, 0, NVME_RESERVATION_RTYPE_WE, K2, 0), CONFLICT);
	expect_access(&H1, true, true);
	expect_access(&H2, true, false);
	/* The other namespace is not reserved. */
	assert_int_equal(nvmf_write(&H2.io, 2, 0, 1, blk, LBA, NULL), 0);

	/* Report from the non-holder: type, both registrants, who holds it. */
	assert_int_equal(do_report(&H2, 1, true, buf, sizeof(buf)), 0);
	assert_int_equal(r->rtype, NVME_RESERVATION_RTYPE_WE);
	assert_int_equal(r->regctl[0], 2);
	assert_int_equal(le32toh(r->gen), 2);
	for (int i = 0; i < 2; i++) {
		bool h1 = !memcmp(e[i].hostid, H1.hostid, 16);
		assert_true(h1 || !memcmp(e[i].hostid, H2.hostid, 16));
		assert_int_equal(e[i].rcsts, h1);
		assert_int_equal(le64toh(e[i].rkey), h1 ? K1 : K2);
		assert_int_equal(le16toh(e[i].cntlid), 0xffff);
	}
	assert_int_equal(buf[64 * 3], 0);
	/* A short buffer: the header and half an entry; REGCTL still 2. */
	assert_int_equal(do_report(&H1, 1, true, buf, 96), 0);
	assert_int_equal(r->regctl[0], 2);
	assert_int_equal(le16toh(e[0].cntlid), 0xffff);
	assert_true(le64toh(e[0].rkey) == K1 || le64toh(e[0].rkey) == K2);
	/* EDS 0: our host IDs do not fit the 64-bit structure. */
	assert_int_equal(do_report(&H1, 1, false, buf, 96), 0x18 | NVME_STATUS_DNR);

	/* H2 preempts H1 to Exclusive Access: H1 is unregistered and told. */
	uint16_t aer = park_aer(&H1);
	assert_int_equal(do_acquire(&H2, 1, 1, NVME_RESERVATION_RTYPE_EA, K2, K1), 0);
	struct nvme_cqe cqe;
	H1.admin.timeout_ms = 5000;
	if (nvmf_wait(&H1.admin, aer, &cqe) != 0)
		fail_msg("no Reservation Log Page Available event: %s", H1.admin.err);
	uint64_t res = le64toh(cqe.result);
	assert_int_equal(res & 7, NVME_AER_CSS);
	assert_int_equal((res >> 8) & 0xff, NVME_AER_CSS_NVM_RESERVATION);
	assert_int_equal((res >> 16) & 0xff, NVME_LOG_LID_RESERVATION);
	struct nvme_resv_notification_log l;
	assert_int_equal(resv_log(&H1, &l), 0);
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_int_equal(le32toh(l.nsid), 1);
	assert_int_equal(le64toh(l.lpc), 1);
	assert_int_equal(l.nalp, 0);
	assert_int_equal(resv_log(&H1, &l), 0);
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_EMPTY);
	/* H1 is no registrant any more: Exclusive Access shuts it out. */
	expect_access(&H1, false, false);
	expect_access(&H2, true, true);
	assert_int_equal(do_release(&H1, 1, 0, NVME_RESERVATION_RTYPE_EA, K1), CONFLICT);

	/* H1 registers again, the mask silences Reservation Released. */
	assert_int_equal(do_register(&H1, 1, 0, 0, 0, K1), 0);
	uint32_t mask;
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_MASK, 1,
				 NVME_FEAT_RESV_NOTIFY_RESREL, NULL, 0, NULL), 0);
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_RESV_MASK, 1, 0, NULL, 0, &mask), 0);
	assert_int_equal(mask, NVME_FEAT_RESV_NOTIFY_RESREL);
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_MASK, 1, 1, NULL, 0, NULL),
			 NVME_SC_INVALID_FIELD | NVME_STATUS_DNR);
	/* A Registrants Only reservation released: H1 would be told. */
	assert_int_equal(do_release(&H2, 1, 0, NVME_RESERVATION_RTYPE_WE, K2),
			 NVME_SC_INVALID_FIELD | NVME_STATUS_DNR);
	assert_int_equal(do_release(&H2, 1, 0, NVME_RESERVATION_RTYPE_EA, K2), 0);
	assert_int_equal(do_acquire(&H2, 1, 0, NVME_RESERVATION_RTYPE_EARO, K2, 0), 0);
	expect_access(&H1, true, true); /* a registrant */
	assert_int_equal(do_release(&H2, 1, 0, NVME_RESERVATION_RTYPE_EARO, K2), 0);
	assert_int_equal(resv_log(&H1, &l), 0);
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_EMPTY);
	/* Unmasked, the same release is reported (and the AER completes). */
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_MASK, NVME_NSID_ALL, 0, NULL, 0,
				 NULL), 0);
	aer = park_aer(&H1);
	assert_int_equal(do_acquire(&H2, 1, 0, NVME_RESERVATION_RTYPE_WERO, K2, 0), 0);
	assert_int_equal(do_release(&H2, 1, 0, NVME_RESERVATION_RTYPE_WERO, K2), 0);
	assert_int_equal(nvmf_wait(&H1.admin, aer, &cqe), 0);
	assert_int_equal(resv_log(&H1, &l), 0);
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
	assert_int_equal(le64toh(l.lpc), 2);

	/* Clear: everything goes; H1 is told its reservation was preempted. */
	assert_int_equal(do_release(&H2, 1, 1, 0, K2), 0);
	assert_int_equal(resv_log(&H1, &l), 0);
	assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
	assert_int_equal(do_report(&H1, 1, true, buf, 64), 0);
	assert_int_equal(r->regctl[0], 0);
	assert_int_equal(r->rtype, 0);
}

static void test_features(void **state)
{
	uint8_t id[16];
	uint32_t v;

	(void)state;
	/* Host Identifier: the Connect's, and not to be set on fabrics. */
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_HOST_ID, 0, 1, id, 16, NULL), 0);
	assert_memory_equal(id, H1.hostid, 16);
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_HOST_ID, 0, 0, id, 16, NULL),
			 0x18 | NVME_STATUS_DNR);
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_HOST_ID, 0, 1, id, 16, NULL),
			 NVME_SC_CMD_SEQ_ERROR | NVME_STATUS_DNR);
	/* Reservation Persistence: off until set, by Register CPTPL or 83h. */
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_RESV_PERSIST, 2, 0, NULL, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_PERSIST, 2, 1, NULL, 0, NULL), 0);
	assert_int_equal(feature(&H2, false, NVME_FEAT_FID_RESV_PERSIST, 2, 0, NULL, 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_PERSIST, 9, 1, NULL, 0, NULL),
			 NVME_SC_INVALID_NS | NVME_STATUS_DNR);
	assert_int_equal(do_register(&H1, 2, 0, 2, 0, K1), 0); /* CPTPL 10b: off */
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_RESV_PERSIST, 2, 0, NULL, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(do_register(&H1, 2, 1, 0, K1, 0), 0);
}

static void restart(bool kill9)
{
	char why[256];

	host_down(&H1);
	host_down(&H2);
	if (kill9)
		target_kill(&T);
	else if (target_stop(&T, why, sizeof(why)))
		fail_msg("%s", why);
	target_start_ok(&T, false);
	host_up(&H1);
	host_up(&H2);
}

static void test_persistence(void **state)
{
	static uint8_t buf[256];
	struct nvme_resv_status *r = (void *)buf;
	char path[PATH_MAX + 32], why[256];
	uint8_t file[4096];

	(void)state;
	/* With PTPL (Register CPTPL 11b) the state survives kill -9. */
	assert_int_equal(do_register(&H1, 2, 0, 3, 0, K1), 0);
	assert_int_equal(do_register(&H2, 2, 0, 0, 0, K2), 0);
	assert_int_equal(do_acquire(&H1, 2, 0, NVME_RESERVATION_RTYPE_EA, K1, 0), 0);
	/* Namespace 1 without PTPL: gone after the restart. */
	assert_int_equal(do_register(&H2, 1, 0, 2, 0, K2), 0);
	restart(true);
	assert_int_equal(do_report(&H2, 2, true, buf, sizeof(buf)), 0);
	assert_int_equal(r->rtype, NVME_RESERVATION_RTYPE_EA);
	assert_int_equal(r->regctl[0], 2);
	assert_int_equal(r->ptpls, 1);
	assert_int_equal(nvmf_read(&H2.io, 2, 0, 1, blk, LBA, NULL), CONFLICT);
	assert_int_equal(nvmf_read(&H1.io, 2, 0, 1, blk, LBA, NULL), 0);
	assert_int_equal(do_report(&H2, 1, true, buf, sizeof(buf)), 0);
	assert_int_equal(r->regctl[0], 0);

	/* A damaged file refuses its namespace; the other is served. */
	host_down(&H1);
	host_down(&H2);
	if (target_stop(&T, why, sizeof(why)))
		fail_msg("%s", why);
	snprintf(path, sizeof(path), "%s/data/nsB/resv.state", dir);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	ssize_t n = read(fd, file, sizeof(file));
	assert_true(n > 40);
	uint8_t bad = file[40] ^ 0x20;
	assert_int_equal(pwrite(fd, &bad, 1, 40), 1);
	target_start_ok(&T, false);
	assert_true(target_log_contains(&T, "resv.state: is damaged"));
	host_up(&H1);
	assert_int_equal(nvmf_read(&H1.io, 2, 0, 1, blk, LBA, NULL),
			 NVME_SC_INVALID_NS | NVME_STATUS_DNR);
	assert_int_equal(nvmf_read(&H1.io, 1, 0, 1, blk, LBA, NULL), 0);
	/* Put back, it loads as it was. */
	assert_int_equal(pwrite(fd, file, (size_t)n, 0), n);
	close(fd);
	host_down(&H1);
	restart(false);
	assert_int_equal(do_report(&H1, 2, true, buf, sizeof(buf)), 0);
	assert_int_equal(r->rtype, NVME_RESERVATION_RTYPE_EA);
	assert_int_equal(nvmf_read(&H2.io, 2, 0, 1, blk, LBA, NULL), CONFLICT);
}

/* Read H's log page 80h until it is empty. */
static void drain_log(struct host *h)
{
	struct nvme_resv_notification_log l;

	for (int i = 0; i < 100; i++) {
		assert_int_equal(resv_log(h, &l), 0);
		if (l.rnlpt == NVME_RESV_NOTIFY_RNLPT_EMPTY)
			return;
	}
	fail_msg("log page 80h never empties");
}

/*
 * More notifications than the queue holds (NVMe Base 2.0a, 5.16.1.25):
 * "If a reservation notification is lost, then the controller shall
 * increment the Log Page Count field of the last reservation notification
 * in the queue (i.e., the Log Page Count field in the last reservation
 * notification in the queue shall contain the value associated with the
 * most recent reservation notification that has been lost)." (nvmet:
 * nvmet_execute_get_log_page_resv adds the lost count the same way.)
 */
static void test_log_overflow(void **state)
{
	struct nvme_resv_notification_log l;
	const int events = 40; /* more than the 32 pages kept */

	(void)state;
	/* Namespace 2, from a clean slate: H1 and H2 registered, nothing held. */
	assert_int_equal(do_register(&H1, 2, 2, 0, 0, K1) == 0 ||
			 do_register(&H1, 2, 0, 0, 0, K1) == 0, 1);
	assert_int_equal(do_release(&H1, 2, 1, 0, K1), 0); /* Clear */
	drain_log(&H1);
	assert_int_equal(do_register(&H2, 2, 0, 0, 0, K2), 0);
	/* H2 preempts H1's registration again and again: one Registration
	 * Preempted page for H1 each time. */
	for (int i = 0; i < events; i++) {
		assert_int_equal(do_register(&H1, 2, 0, 0, 0, K1), 0);
		assert_int_equal(do_acquire(&H2, 2, 1, NVME_RESERVATION_RTYPE_WE, K2, K1), 0);
	}
	uint64_t first = 0, last = 0;
	int pages = 0;
	for (;;) {
		assert_int_equal(resv_log(&H1, &l), 0);
		if (l.rnlpt == NVME_RESV_NOTIFY_RNLPT_EMPTY)
			break;
		assert_int_equal(l.rnlpt, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
		if (!pages)
			first = le64toh(l.lpc);
		last = le64toh(l.lpc);
		pages++;
	}
	assert_true(pages > 0 && pages <= events);
	/* The host must be able to see that notifications were lost: the
	 * last page read carries the count of the last notification. */
	if (pages < events && last != first + (uint64_t)events - 1)
		fail_msg("%d notifications, %d pages read (counts %llu..%llu): the %d lost "
			 "ones are invisible (last count should be %llu)", events, pages,
			 (unsigned long long)first, (unsigned long long)last, events - pages,
			 (unsigned long long)(first + (uint64_t)events - 1));
	assert_int_equal(do_release(&H2, 2, 1, 0, K2), 0);
}

/* Reservation Notification Mask is not saveable (SEL 3 says so): Get
 * Features SEL 010b (saved) returns its default, 0, as every other
 * non-saveable feature here does (admin_features.c). */
static void test_mask_saved(void **state)
{
	uint32_t v = 0xdead, cap = 0;

	(void)state;
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_RESV_MASK | 3u << 8, 1, 0, NULL, 0,
				 &cap), 0);
	assert_int_equal(cap & 1, 0); /* not saveable */
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_MASK, 1,
				 NVME_FEAT_RESV_NOTIFY_REGPRE, NULL, 0, NULL), 0);
	assert_int_equal(feature(&H1, false, NVME_FEAT_FID_RESV_MASK | 2u << 8, 1, 0, NULL, 0,
				 &v), 0);
	assert_int_equal(feature(&H1, true, NVME_FEAT_FID_RESV_MASK, NVME_NSID_ALL, 0, NULL, 0,
				 NULL), 0);
	if (v != 0)
		fail_msg("Get Features 82h SEL saved: %#x, not the default 0", v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify),
		cmocka_unit_test(test_two_hosts),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_persistence),
		cmocka_unit_test(test_log_overflow),
		cmocka_unit_test(test_mask_saved),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
