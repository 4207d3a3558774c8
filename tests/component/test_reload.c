/*
 * Live reload, end to end: the real daemon (build/znstgt) as a child
 * process, its configuration edited by the test, SIGHUP and the control
 * socket's `reload`, and what a host sees over NVMe/TCP (the test client):
 *
 *   - a namespace added: the connected host gets the Namespace Attribute
 *     Changed event and the Changed Namespace List entry, and reads and
 *     writes the new namespace; removed: the same event, and Invalid
 *     Namespace after;
 *   - a subsystem added is reachable, a removed one is not;
 *   - a host added is admitted, a host given a DH-HMAC-CHAP secret must
 *     authenticate from its next Connect on, a host removed is refused;
 *   - changes that cannot apply live are refused naming file, section and
 *     key, and nothing of the reload applies: what ran before still runs;
 *     a step that fails while applying takes back the steps before it;
 *   - a namespace removed while a host was connected comes back with its
 *     data when the configuration names it again;
 *   - log level.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_proc.h"
#include "ctl_client.h"

#define NQN_A "nqn.2026-11.io.znstgt:reload-a"
#define NQN_B "nqn.2026-11.io.znstgt:reload-b"
#define HOST_1 "nqn.2026-11.io.znstgt:host-1"
#define HOST_2 "nqn.2026-11.io.znstgt:host-2"
/* A DH-HMAC-CHAP secret in the DHHC-1 text form (32 bytes, CRC-32 checked). */
#define SECRET "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define LBA 4096u
#define INVALID_NS NVME_SC_INVALID_NS
#define ATR (1u << 17)              /* Connect response: authentication required */

static char dir[32];
static char port[8];
static struct target_proc T;

static void write_file(const char *rel, const char *text)
{
	target_write_ok(dir, rel, text);
}

static void remove_file(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(unlink(path), 0);
}

/* znstgt.ini; extra: more [target] keys (log_level, when given, replaces info). */
static void main_file(const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 2\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\n%sinclude = conf/*.ini\n%s", port,
		 strstr(extra, "log_level") ? "" : "log_level = info\n", extra);
	write_file("znstgt.ini", text);
}

static void start(void)
{
	char why[512];

	if (target_start(&T, true, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
}

/* `reload` on the control socket: 0 ok, 1 refused; the answer in reply. */
static int reload(char *reply, size_t len)
{
	int rc = ctl_request(T.sock, "reload", 0, 60000, reply, len);

	if (rc < 0)
		fail_msg("reload: no answer: %s", reply);
	return rc;
}

static void reload_ok(void)
{
	char reply[1024];

	if (reload(reply, sizeof(reply)) != 0) {
		target_show_log(&T, 15);
		fail_msg("reload refused: %s", reply);
	}
}

/* How many lines of the daemon's log hold s. */
static int log_count(const char *s)
{
	char line[2048];
	FILE *f = fopen(T.log, "r");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, s) != NULL;
	fclose(f);
	return n;
}

/* SIGHUP, then wait (up to 20 s) for the daemon to log that it applied it. */
static void sighup_ok(void)
{
	int before = log_count("SIGHUP: reloaded");

	assert_int_equal(kill(T.pid, SIGHUP), 0);
	for (int i = 0; i < 2000 && log_count("SIGHUP: reloaded") == before; i++)
		usleep(10000);
	if (log_count("SIGHUP: reloaded") == before) {
		target_show_log(&T, 15);
		fail_msg("no reload logged after SIGHUP");
	}
}

/* Admin queue of host to nqn: the Connect status (0 = admitted). */
static int admin_connect(struct nvmf_client *c, const char *host, const char *nqn,
			 struct nvme_cqe *cqe)
{
	int st;

	if (nvmf_tcp_connect(c, "127.0.0.1", port, false, false))
		fail_msg("TCP connection: %s", c->err);
	st = nvmf_connect(c, 0, 32, 0, host, nqn, 0xffff, 0, cqe);
	if (st < 0)
		fail_msg("Connect of %s to %s: %s", host, nqn, c->err);
	return st;
}

static void admin_up(struct nvmf_client *c, const char *host, const char *nqn)
{
	int st = admin_connect(c, host, nqn, NULL);

	if (st)
		fail_msg("Connect of %s to %s: status %#x", host, nqn, st);
	if (nvmf_enable(c, 5000))
		fail_msg("enable: %s", c->err);
}

static void io_up(struct nvmf_client *c, const struct nvmf_client *admin, const char *host,
		  const char *nqn)
{
	if (nvmf_tcp_connect(c, "127.0.0.1", port, false, false))
		fail_msg("I/O queue: %s", c->err);
	if (nvmf_connect(c, 1, 32, 0, host, nqn, admin->cntlid, 0, NULL) != 0)
		fail_msg("I/O Connect: %s", c->err);
}

/* Asynchronous Event Configuration: Namespace Attribute notices on. */
static void enable_ns_notices(struct nvmf_client *c)
{
	struct nvme_sqe s = { .opcode = nvme_admin_set_features };

	s.cdw10 = htole32(NVME_FEAT_FID_ASYNC_EVENT);
	s.cdw11 = htole32(NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES);
	assert_int_equal(nvmf_cmd(c, &s, NULL, 0, NULL, 0, NULL), 0);
}

static int submit_aer(struct nvmf_client *c)
{
	struct nvme_sqe s = { .opcode = nvme_admin_async_event };
	int cid = nvmf_submit(c, &s, NULL, 0, NULL, 0);

	assert_true(cid >= 0);
	return cid;
}

/* The AER completes with notice 02h / Namespace Attribute Changed / log 04h,
 * and the Changed Namespace List names exactly nsid. */
static void expect_ns_changed(struct nvmf_client *c, int aer, uint32_t nsid)
{
	struct nvme_sqe s = { .opcode = nvme_admin_get_log_page, .nsid = htole32(NVME_NSID_ALL) };
	struct nvme_ns_list l;
	struct nvme_cqe cqe;

	assert_int_equal(nvmf_wait(c, (uint16_t)aer, &cqe), 0);
	assert_int_equal(le64toh(cqe.result) & 0xffffffff,
			 NVME_LOG_LID_CHANGED_NS << 16 | NVME_AER_NOTICE_NS_CHANGED << 8 |
			 NVME_AER_NOTICE);
	s.cdw10 = htole32(NVME_LOG_LID_CHANGED_NS | (sizeof(l) / 4 - 1) << 16);
	assert_int_equal(nvmf_cmd(c, &s, NULL, 0, &l, sizeof(l), NULL), 0);
	assert_int_equal(le32toh(l.ns[0]), nsid);
	assert_int_equal(l.ns[1], 0);
}

/* Identify CNS 02h: the active NSIDs, zero-terminated, into ids[]. */
static int active_ns(struct nvmf_client *c, uint32_t *ids, int max)
{
	struct nvme_ns_list l;
	int n = 0;

	assert_int_equal(nvmf_identify(c, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, &l, NULL), 0);
	while (n < max && l.ns[n])
		ids[n] = le32toh(l.ns[n]), n++;
	return n;
}

static void write_read(struct nvmf_client *io, uint32_t nsid, uint8_t seed)
{
	uint8_t out[LBA], in[LBA];

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + seed);
	assert_int_equal(nvmf_write(io, nsid, 3, 1, out, sizeof(out), NULL), 0);
	assert_int_equal(nvmf_read(io, nsid, 3, 1, in, sizeof(in), NULL), 0);
	assert_memory_equal(in, out, sizeof(out));
}

/* The UUID namespace nsid reports (Identify CNS 03h), in text form. */
static void ns_uuid(struct nvmf_client *c, uint32_t nsid, char out[37])
{
	uint8_t d[4096];
	size_t off = 0;

	assert_int_equal(nvmf_identify(c, NVME_IDENTIFY_CNS_NS_DESC_LIST, nsid, 0, d, NULL), 0);
	while (off + 4 + 16 <= sizeof(d) && d[off] && d[off] != NVME_NIDT_UUID)
		off += 4u + d[off + 1];
	assert_true(off + 4 + 16 <= sizeof(d) && d[off] == NVME_NIDT_UUID);
	const uint8_t *u = d + off + 4;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static const char *const SUBSYS_A = "[subsystem]\nnqn = " NQN_A "\nallow_any_host = yes\n"
				    "[namespace 1]\nzoned = no\nsize = 1M\n";
static const char *const NS_2 = "[namespace 2]\nzoned = no\nsize = 2M\n";

static void test_namespaces_and_subsystems(void **state)
{
	static struct nvmf_client a, io, b;
	char text[512];
	uint32_t ids[4];
	uint8_t buf[LBA];
	int aer;

	main_file("");
	write_file("conf/a.ini", SUBSYS_A);
	start();
	admin_up(&a, HOST_1, NQN_A);
	io_up(&io, &a, HOST_1, NQN_A);
	enable_ns_notices(&a);
	assert_int_equal(admin_connect(&b, HOST_1, NQN_B, NULL) != 0, 1);
	nvmf_close(&b);

	/* SIGHUP: namespace 2 of A and subsystem B appear. */
	aer = submit_aer(&a);
	snprintf(text, sizeof(text), "%s%s", SUBSYS_A, NS_2);
	write_file("conf/a.ini", text);
	write_file("conf/b.ini", "[subsystem]\nnqn = " NQN_B "\nallow_any_host = yes\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	sighup_ok();
	expect_ns_changed(&a, aer, 2);
	assert_int_equal(active_ns(&a, ids, 4), 2);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	write_read(&io, 2, 1);
	write_read(&io, 1, 2);
	admin_up(&b, HOST_1, NQN_B);
	nvmf_close(&b);

	/* reload: both go again; the host still serves namespace 1. */
	aer = submit_aer(&a);
	write_file("conf/a.ini", SUBSYS_A);
	remove_file("conf/b.ini");
	reload_ok();
	expect_ns_changed(&a, aer, 2);
	assert_int_equal(active_ns(&a, ids, 4), 1);
	assert_int_equal(ids[0], 1);
	assert_int_equal(nvmf_read(&io, 2, 3, 1, buf, sizeof(buf), NULL) & 0x7ff, INVALID_NS);
	write_read(&io, 1, 3);
	assert_true(admin_connect(&b, HOST_1, NQN_B, NULL) != 0);
	nvmf_close(&b);

	/* Namespace 2 back as it was: the removed one, still open because the
	 * host was connected, is active again, with its data. */
	aer = submit_aer(&a);
	write_file("conf/a.ini", text);
	sighup_ok();
	expect_ns_changed(&a, aer, 2);
	assert_int_equal(active_ns(&a, ids, 4), 2);
	assert_int_equal(nvmf_read(&io, 2, 3, 1, buf, sizeof(buf), NULL), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != (uint8_t)(i * 7 + 1))
			fail_msg("namespace 2, byte %zu: %#x, not what was written", i, buf[i]);
	nvmf_close(&io);
	nvmf_close(&a);
}

static void test_hosts(void **state)
{
	static struct nvmf_client h1, h2;
	struct nvme_cqe cqe;

	main_file("");
	write_file("conf/a.ini", "[subsystem]\nnqn = " NQN_A "\nhost = " HOST_1 "\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	start();
	admin_up(&h1, HOST_1, NQN_A);
	assert_true(admin_connect(&h2, HOST_2, NQN_A, NULL) != 0);
	nvmf_close(&h2);

	/* HOST_2 allowed: admitted at once, no authentication asked. */
	write_file("conf/a.ini", "[subsystem]\nnqn = " NQN_A "\nhost = " HOST_1 "\n"
		   "[host " HOST_2 "]\n[namespace 1]\nzoned = no\nsize = 1M\n");
	reload_ok();
	assert_int_equal(admin_connect(&h2, HOST_2, NQN_A, &cqe), 0);
	assert_int_equal(le64toh(cqe.result) & ATR, 0);
	nvmf_close(&h2);

	/* A secret for HOST_2: its next Connect must authenticate. */
	write_file("conf/a.ini", "[subsystem]\nnqn = " NQN_A "\nhost = " HOST_1 "\n"
		   "[host " HOST_2 "]\ndhchap_secret = " SECRET "\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	sighup_ok();
	assert_int_equal(admin_connect(&h2, HOST_2, NQN_A, &cqe), 0);
	assert_int_equal(le64toh(cqe.result) & ATR, ATR);
	nvmf_close(&h2);

	/* HOST_1 removed: refused from now on; its controller made before
	 * keeps working (as with nvmet). */
	write_file("conf/a.ini", "[subsystem]\nnqn = " NQN_A "\n[host " HOST_2 "]\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	reload_ok();
	assert_true(admin_connect(&h2, HOST_1, NQN_A, NULL) != 0);
	nvmf_close(&h2);
	assert_int_equal(active_ns(&h1, (uint32_t[4]){ 0 }, 4), 1);
	nvmf_close(&h1);
}

/* A refused reload changes nothing, whichever part was refused. */
static void refused(const char *a_ini, const char *extra, const char *expect)
{
	char reply[1024];

	main_file(extra);
	write_file("conf/a.ini", a_ini);
	write_file("conf/b.ini", "[subsystem]\nnqn = " NQN_B "\nallow_any_host = yes\n");
	if (reload(reply, sizeof(reply)) != 1)
		fail_msg("not refused (expected \"%s\"): %s", expect, reply);
	if (!strstr(reply, expect))
		fail_msg("refused with \"%s\", expected \"%s\"", reply, expect);
}

static void test_refused(void **state)
{
	static struct nvmf_client a, io, b;
	char text[512], reply[1024], uuid[37];
	uint8_t buf[LBA];
	uint32_t ids[4];

	main_file("");
	write_file("conf/a.ini", SUBSYS_A);
	start();
	admin_up(&a, HOST_1, NQN_A);
	io_up(&io, &a, HOST_1, NQN_A);

	/* A namespace's geometry, with an addition and a new subsystem that
	 * would otherwise be fine. */
	snprintf(text, sizeof(text), "[subsystem]\nnqn = " NQN_A "\nallow_any_host = yes\n"
		 "[namespace 1]\nzoned = no\nsize = 2M\n%s", NS_2);
	refused(text, "", "/conf/a.ini: [namespace 1] size: " NQN_A ": cannot change while the "
		"target runs");
	/* A listener. */
	snprintf(text, sizeof(text), "%s%s", SUBSYS_A, NS_2);
	refused(text, "tls_listen = 127.0.0.1:1\n", "/znstgt.ini: [target] tls_listen: cannot "
		"change while the target runs");
	/* Namespace 1 goes and a new one takes its directory: it is open
	 * until the reload removes it, and the check comes first. */
	refused("[subsystem]\nnqn = " NQN_A "\nallow_any_host = yes\n[namespace 2]\nzoned = no\n"
		"size = 1M\npath = a/ns1\n", "", "is the directory of namespace 1 of " NQN_A);
	/* A volatile write cache the host was told does not exist. */
	snprintf(text, sizeof(text), "%s[namespace 2]\nzoned = no\nsize = 1M\nwrite_cache = yes\n",
		 SUBSYS_A);
	refused(text, "", "[namespace 2]: write_cache = yes");
	/* A file that does not parse. */
	refused("[subsystem]\nnqn = " NQN_A "\n[namespace 1]\nsize = lots\n", "",
		"/conf/a.ini: [namespace 1] size:");
	/* A step that fails while applying: namespace 2 of A is added, then
	 * B's namespace has the UUID A's namespace 1 was given at its creation
	 * (only the running target knows it). Namespace 2 is taken back. */
	main_file("");
	snprintf(text, sizeof(text), "%s%s", SUBSYS_A, NS_2);
	write_file("conf/a.ini", text);
	ns_uuid(&a, 1, uuid);
	snprintf(text, sizeof(text), "[subsystem]\nnqn = " NQN_B "\nallow_any_host = yes\n"
		 "[namespace 1]\nzoned = no\nsize = 1M\nuuid = %s\n", uuid);
	write_file("conf/b.ini", text);
	assert_int_equal(reload(reply, sizeof(reply)), 1);
	if (!strstr(reply, "has the same UUID as namespace 1 of " NQN_A))
		fail_msg("refused with \"%s\"", reply);
	assert_true(target_log_contains(&T, "subsystem " NQN_A ": namespace 2 removed"));
	assert_int_equal(nvmf_read(&io, 2, 3, 1, buf, sizeof(buf), NULL) & 0x7ff, INVALID_NS);
	write_file("conf/b.ini", "[subsystem]\nnqn = " NQN_B "\nallow_any_host = yes\n");

	/* None of it happened. */
	assert_int_equal(active_ns(&a, ids, 4), 1);
	assert_true(admin_connect(&b, HOST_1, NQN_B, NULL) != 0);
	nvmf_close(&b);
	write_read(&io, 1, 4);

	/* Put right, the same reload goes through. */
	snprintf(text, sizeof(text), "%s%s", SUBSYS_A, NS_2);
	write_file("conf/a.ini", text);
	main_file("log_level = debug\n");
	if (reload(reply, sizeof(reply)) != 0)
		fail_msg("refused: %s", reply);
	assert_non_null(strstr(reply, "1 subsystem(s) added, 0 removed; 1 namespace(s) added"));
	assert_non_null(strstr(reply, "log level debug (changed)"));
	admin_up(&b, HOST_1, NQN_B);
	nvmf_close(&b);
	write_read(&io, 2, 5);
	nvmf_close(&io);
	nvmf_close(&a);

	/* Nothing changed: nothing to do. */
	assert_int_equal(reload(reply, sizeof(reply)), 0);
	assert_non_null(strstr(reply, "0 subsystem(s) added, 0 removed; 0 namespace(s) added, "
			       "0 removed; hosts of 0 subsystem(s) changed"));
}

/* A subsystem renamed in its file (same stem, so the same namespace
 * directory) cannot be added while the old name still serves that
 * directory: the reload is refused, and that is known before anything
 * changes. Namespace 2 of A, added by the same reload, is never made. */
static void test_refused_before_applying(void **state)
{
	char text[512], reply[1024], path[PATH_MAX];
	struct stat st;

	main_file("");
	write_file("conf/a.ini", SUBSYS_A);
	write_file("conf/c.ini", "[subsystem]\nnqn = " NQN_B "\nallow_any_host = yes\n"
		   "[namespace 1]\nzoned = no\nsize = 1M\n");
	start();
	snprintf(text, sizeof(text), "%s%s", SUBSYS_A, NS_2);
	write_file("conf/a.ini", text);
	write_file("conf/c.ini", "[subsystem]\nnqn = nqn.2026-11.io.znstgt:reload-c\n"
		   "allow_any_host = yes\n[namespace 1]\nzoned = no\nsize = 1M\n");
	assert_int_equal(reload(reply, sizeof(reply)), 1);
	if (!strstr(reply, "is the directory of namespace 1 of " NQN_B))
		fail_msg("refused with \"%s\"", reply);
	if (target_log_contains(&T, "subsystem " NQN_A ": namespace 2 added"))
		fail_msg("namespace 2 of A was added (and taken back) by a reload refused");
	snprintf(path, sizeof(path), "%s/data/a/ns2", dir);
	if (stat(path, &st) == 0)
		fail_msg("%s was made by a reload refused", path);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/znstgt-rld-XXXXXX");
	target_dir_ok(&T, dir, port, sizeof(port));
	return 0;
}

static int teardown(void **state)
{
	target_finish_ok(&T, dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_namespaces_and_subsystems, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_before_applying, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
