/*
 * `znstgt-ctl status` and `metrics` against the real daemon (build/znstgt,
 * started on a temporary configuration): a host connects over NVMe/TCP,
 * reads, writes (some refused), finishes a zone and flushes; the numbers
 * the control socket reports must move by exactly what the host did -
 * commands, errors and bytes by operation, zones by state, controllers and
 * queues - and the group commit's by at least the syncs asked for. The
 * metrics body must be well-formed Prometheus text (every sample after the
 * HELP and TYPE of its family). Then, with the daemon stopped, the offline
 * `znstgt-ctl check` and `inspect` of the namespace directory agree.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "../lib/target_check.h"
#include "../lib/target_proc.h"
#include "ctl_client.h"

#define NQN "nqn.2026-11.io.znstgt:ctl-status"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0b7d9e0c-6f1e-4b55-a1a2-3c4d5e6f7a8b"
#define LBA 4096u
#define ZS 256u                      /* zone size, LBAs (1 MiB) */
#define NZ 8u

static char dir[] = "/tmp/znstgt-ctlst-XXXXXX";
static char port[8];
static struct target_proc T;
static struct nvmf_client admin, io1, io2;

static void write_file(const char *path, const char *text)
{
	target_write_ok(NULL, path, text);
}

/* The body of a status or metrics answer (malloc'd). */
static char *ask(const char *what)
{
	char reply[512], *body = NULL;

	if (ctl_request_body(T.sock, what, 1000, 10000, reply, sizeof(reply), &body) != 0) {
		target_show_log(&T, 15);
		fail_msg("%s: %s", what, reply);
	}
	assert_non_null(body);
	return body;
}

/* The value of the sample whose name and labels are exactly sel. */
static unsigned long long sample(const char *body, const char *sel)
{
	size_t n = strlen(sel);

	for (const char *l = body; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, sel, n) == 0 && l[n] == ' ')
			return strtoull(l + n + 1, NULL, 10);
		if (!strchr(l, '\n'))
			break;
	}
	fail_msg("no sample %s in:\n%s", sel, body);
	return 0;
}

static unsigned long long ns_sample(const char *body, const char *name, uint32_t nsid,
				    const char *lname, const char *lval)
{
	char sel[256];

	if (lname)
		snprintf(sel, sizeof(sel), "%s{subsys=\"" NQN "\",nsid=\"%u\",%s=\"%s\"}", name, nsid,
			 lname, lval);
	else
		snprintf(sel, sizeof(sel), "%s{subsys=\"" NQN "\",nsid=\"%u\"}", name, nsid);
	return sample(body, sel);
}

/* Every sample line belongs to the family whose HELP and TYPE came last,
 * and reads NAME{LABELS} VALUE. */
static void well_formed(const char *body)
{
	char family[128] = "";
	int samples = 0;

	for (const char *l = body; *l;) {
		const char *nl = strchr(l, '\n');
		assert_non_null(nl);
		char line[512];
		snprintf(line, sizeof(line), "%.*s", (int)(nl - l), l);
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			const char *type = nl + 1;
			char want[160];
			snprintf(want, sizeof(want), "# TYPE %s ", family);
			assert_memory_equal(type, want, strlen(want));
		} else if (strncmp(line, "# TYPE ", 7) != 0) {
			size_t fl = strlen(family);
			assert_true(fl > 0);
			if (strncmp(line, family, fl) != 0 || (line[fl] != '{' && line[fl] != ' '))
				fail_msg("sample \"%s\" outside its family %s", line, family);
			char *sp = strrchr(line, ' ');
			assert_non_null(sp);
			char *end;
			strtoull(sp + 1, &end, 10);
			assert_true(*end == '\0' && end > sp + 1);
			samples++;
		}
		l = nl + 1;
	}
	assert_true(samples > 0);
}

static void host_up(void)
{
	if (nvmf_admin_up(&admin, "127.0.0.1", port, HOSTNQN, NQN))
		fail_msg("%s", admin.err);
	struct nvmf_client *q[] = { &io1, &io2 };
	for (uint16_t i = 0; i < 2; i++) {
		if (nvmf_tcp_connect(q[i], "127.0.0.1", port, false, false))
			fail_msg("I/O queue: %s", q[i]->err);
		if (nvmf_connect(q[i], i + 1, 64, 0, HOSTNQN, NQN, admin.cntlid, 0, NULL))
			fail_msg("I/O Connect: %s", q[i]->err);
	}
}

static int zone_mgmt(uint32_t nsid, uint64_t slba, uint8_t zsa)
{
	struct nvme_sqe sqe = { .opcode = nvme_zns_cmd_mgmt_send };

	sqe.nsid = htole32(nsid);
	sqe.cdw10 = htole32((uint32_t)slba);
	sqe.cdw13 = htole32(zsa);
	return nvmf_cmd(&io1, &sqe, NULL, 0, NULL, 0, NULL);
}

static int flush(uint32_t nsid)
{
	struct nvme_sqe sqe = { .opcode = nvme_cmd_flush };

	sqe.nsid = htole32(nsid);
	return nvmf_cmd(&io2, &sqe, NULL, 0, NULL, 0, NULL);
}

static void test_status_and_metrics(void **state)
{
	static uint8_t buf[4 * LBA];
	char *m0 = ask("metrics"), *st;

	well_formed(m0);
	assert_int_equal(sample(m0, "znstgt_controllers{subsys=\"" NQN "\"}"), 0);
	assert_int_equal(ns_sample(m0, "znstgt_zones", 1, "state", "empty"), NZ - 1);
	assert_int_equal(ns_sample(m0, "znstgt_zones", 1, "state", "offline"), 1);
	assert_int_equal(ns_sample(m0, "znstgt_commands_total", 1, "op", "write"), 0);

	host_up();
	st = ask("status");
	char want[256];
	snprintf(want, sizeof(want), "subsystem " NQN ": 2 namespace(s), 1 controller(s)\n"
		 "  controller %u: host " HOSTNQN ", tcp 127.0.0.1:%s from 127.0.0.1:", admin.cntlid,
		 port);
	if (!strstr(st, want))
		fail_msg("expected \"%s\" in:\n%s", want, st);
	assert_non_null(strstr(st, "3 queue(s)"));
	free(st);

	/* Three writes of four blocks into zone 0 (write-through: each one is
	 * a sync), one refused at execution (not at zone 1's write pointer),
	 * two reads, one refused at parsing (past the end), a Finish, a
	 * Flush; one write to the conventional namespace. */
	memset(buf, 0x3c, sizeof(buf));
	for (int i = 0; i < 3; i++)
		assert_int_equal(nvmf_write(&io1, 1, (uint64_t)i * 4, 4, buf, sizeof(buf), NULL), 0);
	assert_int_not_equal(nvmf_write(&io1, 1, ZS + 8, 4, buf, sizeof(buf), NULL), 0);
	assert_int_equal(nvmf_read(&io2, 1, 0, 4, buf, sizeof(buf), NULL), 0);
	assert_int_equal(nvmf_read(&io2, 1, 4, 2, buf, 2 * LBA, NULL), 0);
	assert_int_not_equal(nvmf_read(&io2, 1, NZ * ZS, 1, buf, LBA, NULL), 0);
	assert_int_equal(zone_mgmt(1, 0, NVME_ZNS_ZSA_FINISH), 0);
	assert_int_equal(flush(1), 0);
	assert_int_equal(nvmf_write(&io2, 2, 0, 1, buf, LBA, NULL), 0);

	char *m1 = ask("metrics");
	well_formed(m1);
	assert_int_equal(sample(m1, "znstgt_controllers{subsys=\"" NQN "\"}"), 1);
	assert_int_equal(sample(m1, "znstgt_queues{subsys=\"" NQN "\"}"), 3);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 1, "op", "write"), 4);
	assert_int_equal(ns_sample(m1, "znstgt_command_errors_total", 1, "op", "write"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_bytes_total", 1, "op", "write"), 3 * 4 * LBA);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 1, "op", "read"), 3);
	assert_int_equal(ns_sample(m1, "znstgt_command_errors_total", 1, "op", "read"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_bytes_total", 1, "op", "read"), 6 * LBA);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 1, "op", "zone-send"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 1, "op", "flush"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 1, "op", "append"), 0);
	assert_int_equal(ns_sample(m1, "znstgt_commands_total", 2, "op", "write"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_bytes_total", 2, "op", "write"), LBA);
	assert_int_equal(ns_sample(m1, "znstgt_zones", 1, "state", "full"), 1);
	assert_int_equal(ns_sample(m1, "znstgt_zones", 1, "state", "empty"), NZ - 2);
	assert_int_equal(ns_sample(m1, "znstgt_zones", 1, "state", "offline"), 1);
	/* Three write-through writes and a Flush asked for syncs; the zone
	 * changes went into journal batches, each with its data synced. */
	const char *gc[] = { "znstgt_sync_requests_total", "znstgt_journal_batches_total",
			     "znstgt_journal_records_total", "znstgt_data_syncs_total" };
	unsigned long long at_least[] = { 4, 1, 2, 1 };
	for (int i = 0; i < 4; i++) {
		unsigned long long before = ns_sample(m0, gc[i], 1, NULL, NULL);
		unsigned long long after = ns_sample(m1, gc[i], 1, NULL, NULL);
		if (after < before + at_least[i])
			fail_msg("%s: %llu before, %llu after", gc[i], before, after);
	}
	assert_int_equal(ns_sample(m1, "znstgt_group_commit_failures_total", 1, NULL, NULL), 0);
	for (uint32_t nsid = 1; nsid <= 2; nsid++) {
		assert_int_equal(ns_sample(m1, "znstgt_syncs_failing", nsid, NULL, NULL), 0);
		assert_int_equal(ns_sample(m1, "znstgt_zone_image_lost", nsid, NULL, NULL), 0);
	}
	free(m0);

	/* The status text carries the same numbers. */
	st = ask("status");
	assert_non_null(strstr(st, "  namespace 1: zoned, 8 zones: empty 6, implicitly-open 0, "
				   "explicitly-open 0, closed 0, full 1, read-only 0, offline 1\n"));
	assert_non_null(strstr(st, "    write         4 commands, 1 errors, 49152 bytes\n"));
	snprintf(want, sizeof(want), "journal batches of %llu records",
		 ns_sample(m1, "znstgt_journal_records_total", 1, NULL, NULL));
	assert_non_null(strstr(st, want));
	assert_null(strstr(st, "syncs failing"));
	assert_null(strstr(st, "zone image lost"));
	free(st);
	free(m1);
	nvmf_close(&io1);
	nvmf_close(&io2);
	nvmf_close(&admin);
}

/* The offline tools on the stopped daemon's namespace directory. */
static void test_offline_after_stop(void **state)
{
	char why[256], ctl[PATH_MAX], cmd[PATH_MAX * 3], out[128];

	if (target_stop(&T, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("%s", why);
	}
	snprintf(ctl, sizeof(ctl), "%s", T.bin);
	*strrchr(ctl, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "%s/znstgt-ctl check %s/data/s/ns1 >/dev/null", ctl, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	snprintf(out, sizeof(out), "%s/inspect.json", dir);
	snprintf(cmd, sizeof(cmd), "%s/znstgt-ctl inspect --json --zones full %s/data/s/ns1 > %s",
		 ctl, dir, out);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	FILE *f = fopen(out, "r");
	char text[8192];
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (!strstr(text, "[\n    {\"zone\": 0, \"zslba\": 0, \"state\": \"full\", \"wp\": 256, "
			  "\"written\": 256") || strstr(text, "\"zone\": 1,"))
		fail_msg("inspect: %s", text);
	/* A damaged ns.id: exit status 1, the file named. The 'Z' of its
	 * magic becomes an 'X' (a byte of the random UUID would already be
	 * 'X' once in 256 runs). */
	snprintf(cmd, sizeof(cmd), "printf X | dd of=%s/data/s/ns1/ns.id bs=1 seek=0 conv=notrunc "
		 "2>/dev/null; %s/znstgt-ctl check %s/data/s/ns1 | grep -q 'DAMAGE: .*/ns.id: damaged'",
		 dir, ctl, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	snprintf(cmd, sizeof(cmd), "%s/znstgt-ctl check %s/data/s/ns1 >/dev/null", ctl, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
	/* An argument holding a line break (or a blank) would reach the target
	 * as other words, or cut the request short: refused before anything is
	 * sent (exit 2, a usage error; 3 would mean it tried the socket). */
	snprintf(cmd, sizeof(cmd), "%s/znstgt-ctl -s %s/control.sock remove-subsys \"$(printf "
		 "'nqn.x\\nstatus')\" 2>/dev/null", ctl, dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

static int setup(void **state)
{
	char path[PATH_MAX + 32], text[1024], why[256];

	target_dir_ok(&T, dir, port, sizeof(port));
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:%s\nthreads = 2\nio_threads = 2\ndata_dir = data\n"
		 "control_socket = control.sock\nlog_level = warn\ninclude = conf/*.ini\n", port);
	write_file(T.ini, text);
	snprintf(path, sizeof(path), "%s/conf/s.ini", dir);
	write_file(path, "[subsystem]\nnqn = " NQN "\nallow_any_host = yes\n"
		   "[namespace 1]\nsize = 8M\nzone_size = 1M\nwrite_cache = no\n"
		   "offline_zones = list:7\n"
		   "[namespace 2]\nzoned = no\nsize = 4M\nwrite_cache = no\n");
	if (target_start(&T, true, why, sizeof(why)) != 0) {
		target_show_log(&T, 15);
		fail_msg("the daemon did not come up: %s", why);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128], why[256];
	int rc = target_finish(&T, dir, why, sizeof(why));

	if (rc)
		fprintf(stderr, "%s\n", why);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) | rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_and_metrics),
		cmocka_unit_test(test_offline_after_stop),
	};
	return cmocka_run_group_tests_name("ctl_status", tests, setup, teardown);
}
