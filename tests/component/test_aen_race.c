/*
 * One-shot asynchronous events and the log page that re-arms them: a change
 * that lands while the host reads the log (after the log was built, before
 * the event kind is unmasked) must still be reported. nvmet re-arms the
 * event under the same lock (or semaphore) that orders the changes against
 * the log's contents (admin-cmd.c: nvmet_execute_get_log_changed_ns,
 * nvmet_execute_get_log_page_ana; discovery.c), so a change is either in
 * the log the host reads or raises a new event.
 *
 * nvme_ctrl_event_unmask() is wrapped (TEST_LDFLAGS_test_aen_race): the
 * test's change runs exactly in that window. If the core no longer calls
 * the wrapper there, the change is made right after the log read instead,
 * and the expectation is the same.
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

#include "ana.h"
#include "config.h"
#include "ctrl.h"
#include "../lib/core_harness.h"
#include "ns.h"
#include "subsys.h"

#define NQN "nqn.2024-01.io.znstgt:aen-race"
#define NQN_NEW "nqn.2024-01.io.znstgt:aen-race-new"

static struct target_config cfg;
static struct subsys_config subs[1];
static char dir[] = "/tmp/znstgt-test-aen-race-XXXXXX";

/* ---- the window ---- */

void __real_nvme_ctrl_event_unmask(struct nvme_ctrl *ctrl, uint32_t mask);
void __wrap_nvme_ctrl_event_unmask(struct nvme_ctrl *ctrl, uint32_t mask);

static void (*hook)(void);
static uint32_t hook_mask;
static int hook_ran;

void __wrap_nvme_ctrl_event_unmask(struct nvme_ctrl *ctrl, uint32_t mask)
{
	if (hook && (mask & hook_mask)) {
		void (*h)(void) = hook;

		hook = NULL;
		h();
		__atomic_store_n(&hook_ran, 1, __ATOMIC_RELEASE);
	}
	__real_nvme_ctrl_event_unmask(ctrl, mask);
}

static void arm(void (*h)(void), uint32_t mask)
{
	__atomic_store_n(&hook_ran, 0, __ATOMIC_RELEASE);
	hook_mask = mask;
	hook = h;
}

/* After the log read: the change, if the window was not there to take it. */
static void disarm(void)
{
	void (*h)(void) = hook;

	hook = NULL;
	if (!__atomic_load_n(&hook_ran, __ATOMIC_ACQUIRE) && h)
		h();
}

/* ---- setup ---- */

static void ns_cfg(struct ns_config *n, uint32_t nsid)
{
	n->nsid = nsid;
	snprintf(n->path, sizeof(n->path), "%s/ns%u", dir, nsid);
	n->size = 4u << 20;
	n->lba_size = 4096;
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
	subs[0].allow_any_host = true;
	ns_cfg(&subs[0].ns[0], 1);
	ns_cfg(&subs[0].ns[1], 2);
	subs[0].nr_ns = 2;
	cfg.subsys = subs;
	cfg.nr_subsys = 1;
	if (subsys_registry_init(&cfg, true, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	th_start();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	subsys_registry_destroy();
	th_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- Namespace Attribute Changed / log 04h ---- */

static void ns2_changed(void)
{
	struct subsys *s = subsys_find(NQN);

	subsys_ns_changed(subsys_ns(s, 2));
	subsys_put(s);
}

static void test_changed_ns_log_race(void **state)
{
	struct th_queue *q = th_admin(NQN, 0, NULL);
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	struct nvme_ns_list l;
	struct th_cmd *aer;
	struct subsys *sub = subsys_find(NQN);
	uint64_t r;

	(void)state;
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, NVME_CTRL_OAES_NA, NULL, 0,
				     NULL), 0);
	aer = th_submit(q, &s, NULL, 0, false);
	subsys_ns_changed(subsys_ns(sub, 1));
	subsys_put(sub);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(r, 0x040002);

	/* The host reads log 04h (RAE 0); namespace 2 changes meanwhile. */
	aer = th_submit(q, &s, NULL, 0, false);
	arm(ns2_changed, NVME_AEN_MASK_NS_CHANGED);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0, false, &l,
				    sizeof(l)), 0);
	disarm();
	assert_int_equal(le32toh(l.ns[0]), 1);
	/* Namespace 2 is not in what the host read: it must hear of it. */
	if (l.ns[1] != htole32(2)) {
		bool told = th_wait(aer, TH_WAIT_MS);

		if (!told) {
			/* What the host would find if it looked: */
			assert_int_equal(th_get_log(q, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, 0,
						    true, &l, sizeof(l)), 0);
			fprintf(stderr, "log 04h now lists NSID %u, and no AER completed\n",
				le32toh(l.ns[0]));
		}
		assert_true(told);
		th_finish(aer, NULL, NULL);
	}
	th_queue_close(q);
}

/* ---- ANA Change / log 0Ch ---- */

static void group1_inaccessible(void)
{
	char err[128];

	assert_int_equal(ana_set_state(1, 1, NVME_ANA_STATE_INACCESSIBLE, err, sizeof(err)), 0);
}

static void test_ana_log_race(void **state)
{
	struct th_queue *q = th_admin(NQN, 0, NULL);
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	_Alignas(8) uint8_t buf[4096];
	struct nvme_ana_log *hdr = (struct nvme_ana_log *)buf;
	struct nvme_ana_group_desc *d = (struct nvme_ana_group_desc *)(buf + sizeof(*hdr));
	struct th_cmd *aer;
	char err[128];
	uint64_t r;

	(void)state;
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT, NVME_CTRL_OAES_ANA, NULL,
				     0, NULL), 0);
	aer = th_submit(q, &s, NULL, 0, false);
	assert_int_equal(ana_set_state(1, 1, NVME_ANA_STATE_NONOPTIMIZED, err, sizeof(err)), 0);
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(r, 0x0c0302); /* notice, ANA change, log 0Ch */

	/* The host reads log 0Ch (RAE 0); group 1 goes inaccessible meanwhile. */
	aer = th_submit(q, &s, NULL, 0, false);
	arm(group1_inaccessible, NVME_AEN_MASK_ANA_CHANGED);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_ANA, 0, 0, 0, false, buf, sizeof(buf)), 0);
	disarm();
	assert_int_equal(le16toh(hdr->ngrps), 1);
	if (d->state != NVME_ANA_STATE_INACCESSIBLE) {
		bool told = th_wait(aer, TH_WAIT_MS);

		if (!told)
			fprintf(stderr, "host read group 1 state %u (chgcnt %llu); the path is now "
				"inaccessible and no AER completed\n", d->state,
				(unsigned long long)le64toh(hdr->chgcnt));
		assert_true(told);
		th_finish(aer, NULL, NULL);
	}
	assert_int_equal(ana_set_state(1, 1, NVME_ANA_STATE_OPTIMIZED, err, sizeof(err)), 0);
	th_queue_close(q);
}

/* ---- Discovery Log Change / log 70h ---- */

static void new_subsys(void)
{
	struct subsys_config sc;
	char err[256];

	memset(&sc, 0, sizeof(sc));
	snprintf(sc.nqn, sizeof(sc.nqn), NQN_NEW);
	sc.allow_any_host = true;
	assert_int_equal(subsys_add(&sc, false, err, sizeof(err)), 0);
}

static void test_discovery_log_race(void **state)
{
	struct th_queue *q = th_admin(NVME_DISC_SUBSYS_NAME, 0, NULL);
	struct nvme_sqe s = th_sqe(nvme_admin_async_event, 0);
	struct nvmf_discovery_log hdr;
	struct th_cmd *aer;
	char err[256];
	uint8_t buf[20];
	uint64_t r, gen_read;

	(void)state;
	assert_int_equal(th_features(q, true, NVME_FEAT_FID_ASYNC_EVENT,
				     NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE, NULL, 0, NULL), 0);
	aer = th_submit(q, &s, NULL, 0, false);
	new_subsys();
	assert_true(th_wait(aer, TH_WAIT_MS));
	assert_int_equal(th_finish(aer, &r, NULL), 0);
	assert_int_equal(subsys_remove(NQN_NEW, err, sizeof(err)), 0);
	assert_true(subsys_wait_detached(10));

	/* The host reads log 70h (RAE 0); a subsystem is added meanwhile. */
	aer = th_submit(q, &s, NULL, 0, false);
	arm(new_subsys, NVME_AEN_MASK_DISC_CHANGED);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, false, buf, 20), 0);
	disarm();
	memcpy(&hdr, buf, sizeof(buf));
	gen_read = le64toh(hdr.genctr);
	assert_int_equal(th_get_log(q, NVME_LOG_LID_DISCOVER, 0, 0, 0, true, buf, 20), 0);
	memcpy(&hdr, buf, sizeof(buf));
	if (le64toh(hdr.genctr) != gen_read) {
		bool told = th_wait(aer, TH_WAIT_MS);

		if (!told)
			fprintf(stderr, "host read GENCTR %llu, the log is at %llu, no AER completed\n",
				(unsigned long long)gen_read,
				(unsigned long long)le64toh(hdr.genctr));
		assert_true(told);
		th_finish(aer, NULL, NULL);
	}
	assert_int_equal(subsys_remove(NQN_NEW, err, sizeof(err)), 0);
	assert_true(subsys_wait_detached(10));
	th_queue_close(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changed_ns_log_race),
		cmocka_unit_test(test_ana_log_race),
		cmocka_unit_test(test_discovery_log_race),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
