/*
 * The whole target in-process: configuration from files in a temporary
 * directory, the subsystem registry with real namespaces, workers, I/O
 * threads and a listener on an ephemeral loopback port, driven over TCP by
 * the host-side client library (tests/lib/nvmf_client.h) the way a Linux host
 * drives it: ICReq, admin Connect, CC.EN, Identify, I/O Connects, reads and
 * writes with data verification, digests on and off, R2T transfers up to
 * MDTS, many queues at once, and malformed PDUs that end only their own
 * connection while the others keep being served; a host that stops reading
 * is not sent what was written after its reads completed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "../lib/nvmf_client.h"
#include "config.h"
#include "crc32c.h"
#include "ctrl.h"
#include "log.h"
#include "nvme_tcp.h"
#include "subsys.h"
#include "tcp.h"
#include "tcp_pdu.h"
#include "worker.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0f01fb42-9f7f-4856-b0b3-51e60b8de349"
#define CONV_NQN "nqn.2026-11.io.znstgt:it-conv"
#define ZONED_NQN "nqn.2026-11.io.znstgt:it-zoned"
#define NS_BYTES (64u << 20)
#define LBA 4096u

static char dir[] = "/tmp/znstgt-it-XXXXXX";
static struct target_config cfg;
static char port[NVMF_TRSVCID_SIZE];
static struct nvmf_client admin;     /* the controller's admin queue, kept */
static struct nvmf_client io1;       /* one I/O queue, kept for health checks */
static uint16_t cntlid;
static uint32_t io_inline;           /* from Identify IOCCSZ */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 37 + i * 11 + (i >> 12));
}

static void tcp_up(struct nvmf_client *c, bool hd, bool dd)
{
	if (nvmf_tcp_connect(c, "127.0.0.1", port, hd, dd))
		fail_msg("connect: %s", c->err);
}

static void io_up(struct nvmf_client *c, uint16_t qid, bool hd, bool dd)
{
	struct nvme_cqe cqe;

	tcp_up(c, hd, dd);
	int st = nvmf_connect(c, qid, 64, 0, HOSTNQN, CONV_NQN, cntlid, 0, &cqe);
	if (st)
		fail_msg("I/O connect qid %u: status %#x %s", qid, st, c->err);
	c->io_inline = io_inline;
}

static void write_read(struct nvmf_client *c, uint64_t slba, uint32_t len, unsigned seed)
{
	uint8_t *out = malloc(len), *in = malloc(len);

	fill(out, len, seed);
	memset(in, 0xaa, len);
	int st = nvmf_write(c, 1, slba, len / LBA, out, len, NULL);
	if (st)
		fail_msg("write %u at %lu: status %#x %s", len, (unsigned long)slba, st, c->err);
	st = nvmf_read(c, 1, slba, len / LBA, in, len, NULL);
	if (st)
		fail_msg("read %u at %lu: status %#x %s", len, (unsigned long)slba, st, c->err);
	assert_memory_equal(in, out, len);
	free(out);
	free(in);
}

static void assert_healthy(void)
{
	write_read(&io1, 16000, 8192, 3);
	uint64_t csts;
	assert_int_equal(nvmf_prop_get(&admin, NVME_REG_CSTS, false, &csts), 0);
	assert_true(NVME_CSTS_RDY(csts));
}

static int setup(void **state)
{
	char path[512], text[1024], err[512];

	log_set_level(LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/conf", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(text, sizeof(text),
		 "[target]\nlisten = 127.0.0.1:4420, [::1]:4420\nthreads = 2\nio_threads = 2\n"
		 "data_dir = %s/data\nlog_level = error\ninclude = conf/*.ini\n", dir);
	snprintf(path, sizeof(path), "%s/znstgt.ini", dir);
	write_file(path, text);
	snprintf(path, sizeof(path), "%s/conf/conv.ini", dir);
	write_file(path, "[subsystem]\nnqn = " CONV_NQN "\nallow_any_host = yes\n"
			 "[namespace 1]\nsize = 64M\nzoned = no\nlba_size = 4096\n");
	snprintf(path, sizeof(path), "%s/conf/zoned.ini", dir);
	write_file(path, "[subsystem]\nnqn = " ZONED_NQN "\nallow_any_host = yes\n"
			 "[namespace 1]\nsize = 64M\nzone_size = 8M\nlba_size = 4096\n");

	snprintf(path, sizeof(path), "%s/znstgt.ini", dir);
	if (config_load(path, &cfg, err, sizeof(err)))
		fail_msg("config: %s", err);
	/* Ephemeral ports (the file format wants real ones). */
	assert_int_equal(cfg.nr_listeners, 2);
	for (int i = 0; i < cfg.nr_listeners; i++)
		snprintf(cfg.listeners[i].port, sizeof(cfg.listeners[i].port), "0");
	if (subsys_registry_init(&cfg, true, err, sizeof(err)))
		fail_msg("registry: %s", err);
	assert_int_equal(workers_start(cfg.threads, cfg.io_threads), 0);
	if (tcp_listeners_start(&cfg, err, sizeof(err)))
		fail_msg("listeners: %s", err);
	snprintf(port, sizeof(port), "%s", tcp_listener_port(0)->trsvcid);

	/* The Linux host's bring-up: admin Connect, CC.EN, Identify. */
	struct nvme_cqe cqe;
	tcp_up(&admin, false, false);
	int st = nvmf_connect(&admin, 0, 32, 30000, HOSTNQN, CONV_NQN, 0xffff, 0, &cqe);
	if (st)
		fail_msg("admin connect: %#x %s", st, admin.err);
	cntlid = admin.cntlid;
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);

	static struct nvme_id_ctrl id;
	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL), 0);
	assert_int_equal(le16toh(id.cntlid), cntlid);
	assert_string_equal(id.subnqn, CONV_NQN);
	assert_true(le32toh(id.ioccsz) >= 4);
	io_inline = le32toh(id.ioccsz) * 16 - 64;
	assert_int_equal(io_inline, TCP_IO_INLINE);
	assert_int_equal(le16toh(id.icdoff), 0);
	assert_true(le32toh(id.sgls) & 0x3);
	assert_int_equal(1u << (12 + id.mdts), TCP_MDTS_BYTES);

	io_up(&io1, 1, false, false);
	return 0;
}

static int teardown(void **state)
{
	/* admin and io1 are still connected: stopping closes them. */
	tcp_listeners_stop();
	nvme_sq_disconnect_all();
	assert_true(nvme_sq_wait_all_freed(10));
	subsys_registry_destroy();
	workers_stop();
	config_free(&cfg);
	nvmf_close(&admin);
	nvmf_close(&io1);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_identify_namespace(void **state)
{
	static struct nvme_id_ns ns;

	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_NS, 1, 0, &ns, NULL), 0);
	assert_int_equal(le64toh(ns.nsze), NS_BYTES / LBA);
	assert_int_equal(ns.lbaf[ns.flbas & 0xf].ds, 12);
}

static void test_read_write_digests(void **state)
{
	for (int combo = 0; combo < 4; combo++) {
		struct nvmf_client c;
		uint64_t base = 1000 + (uint64_t)combo * 1000;

		io_up(&c, (uint16_t)(2 + combo), combo & 1, combo & 2);
		write_read(&c, base, LBA, 10);                 /* in-capsule */
		write_read(&c, base + 8, io_inline, 11);       /* largest in-capsule */
		write_read(&c, base + 16, 64 * 1024, 12);      /* R2T */
		write_read(&c, base + 64, 300 * 1024, 13);     /* R2T, split H2CData */
		write_read(&c, base + 256, TCP_MDTS_BYTES, 14);
		nvmf_close(&c);
	}
}

static void test_read_unwritten_is_zero(void **state)
{
	static uint8_t buf[16384], zero[16384];

	assert_int_equal(nvmf_read(&io1, 1, 12000, 4, buf, sizeof(buf), NULL), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
}

static void test_out_of_range(void **state)
{
	static uint8_t buf[LBA];
	struct nvme_cqe cqe;

	int st = nvmf_read(&io1, 1, NS_BYTES / LBA, 1, buf, sizeof(buf), &cqe);
	assert_int_equal(st & 0x7ff, NVME_SC_LBA_RANGE);
	assert_true(st & NVME_STATUS_DNR);
	assert_healthy();
}

static void test_many_queues_pipelined(void **state)
{
	enum { Q = 8, PER = 16 };
	static struct nvmf_client c[Q];
	static uint8_t out[Q][PER][8192], in[Q][PER][8192];

	for (int q = 0; q < Q; q++)
		io_up(&c[q], (uint16_t)(10 + q), q & 1, q & 2);
	for (int round = 0; round < 2; round++) {
		for (int q = 0; q < Q; q++) {
			for (int i = 0; i < PER; i++) {
				struct nvme_sqe sqe;
				uint64_t slba = 6000 + (uint64_t)(q * PER + i) * 2;
				memset(&sqe, 0, sizeof(sqe));
				sqe.opcode = round ? nvme_cmd_read : nvme_cmd_write;
				sqe.nsid = htole32(1);
				sqe.cdw10 = htole32((uint32_t)slba);
				sqe.cdw12 = htole32(1);
				/* Half in-capsule, half by R2T. */
				c[q].io_inline = i % 2 ? 0 : io_inline;
				if (!round)
					fill(out[q][i], 8192, (unsigned)(q * PER + i));
				int cid = round ? nvmf_submit(&c[q], &sqe, NULL, 0, in[q][i], 8192)
						: nvmf_submit(&c[q], &sqe, out[q][i], 8192, NULL, 0);
				if (cid < 0)
					fail_msg("submit: %s", c[q].err);
			}
		}
		for (int q = 0; q < Q; q++) {
			for (int i = 0; i < PER; i++) {
				uint16_t cid;
				struct nvme_cqe cqe;
				int st = nvmf_wait_any(&c[q], &cid, &cqe);
				if (st)
					fail_msg("queue %d: status %#x %s", q, st, c[q].err);
			}
		}
	}
	for (int q = 0; q < Q; q++) {
		for (int i = 0; i < PER; i++)
			assert_memory_equal(in[q][i], out[q][i], 8192);
		nvmf_close(&c[q]);
	}
}

/* ---- malformed input ends that connection only ---- */

static void expect_term(struct nvmf_client *c, uint16_t fes, uint32_t fei)
{
	if (nvmf_expect_close(c))
		fail_msg("not closed: %s", c->err);
	assert_int_equal(c->term_fes, fes);
	assert_int_equal(c->term_fei, fei);
	nvmf_close(c);
	assert_healthy();
}

static void test_malformed(void **state)
{
	struct nvmf_client c;
	uint8_t buf[256];
	struct nvme_tcp_hdr *h = (struct nvme_tcp_hdr *)buf;

	/* Bad hlen on an I/O queue. */
	io_up(&c, 30, false, false);
	memset(buf, 0, sizeof(buf));
	*h = (struct nvme_tcp_hdr){ NVME_TCP_CMD, 0, 80, 0, htole32(80) };
	assert_int_equal(nvmf_send_raw(&c, buf, 80), 0);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, 2);

	/* Unknown PDU type before Connect. */
	tcp_up(&c, false, false);
	*h = (struct nvme_tcp_hdr){ 0x0b, 0, 24, 0, htole32(24) };
	assert_int_equal(nvmf_send_raw(&c, buf, 24), 0);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, 0);

	/* Bad header digest. */
	io_up(&c, 31, true, true);
	memset(buf, 0, sizeof(buf));
	*h = (struct nvme_tcp_hdr){ NVME_TCP_CMD, NVME_TCP_F_HDGST, 72, 0, htole32(76) };
	uint32_t d = htole32(crc32c(buf, 72) ^ 1);
	memcpy(buf + 72, &d, 4);
	assert_int_equal(nvmf_send_raw(&c, buf, 76), 0);
	expect_term(&c, NVME_TCP_FES_HDR_DIGEST, 0);

	/* H2CData for a command that does not exist. */
	io_up(&c, 32, false, false);
	memset(buf, 0, sizeof(buf));
	struct nvme_tcp_data *dp = (struct nvme_tcp_data *)buf;
	*h = (struct nvme_tcp_hdr){ NVME_TCP_H2C_DATA, NVME_TCP_F_LAST_PDU, 24, 24, htole32(24 + 64) };
	dp->ttag = htole16(3);
	dp->datal = htole32(64);
	assert_int_equal(nvmf_send_raw(&c, buf, 24 + 64), 0);
	expect_term(&c, NVME_TCP_FES_INVALID_HEADER, offsetof(struct nvme_tcp_data, ttag));

	/* Truncated frame: half a capsule and the host is gone. */
	io_up(&c, 33, false, false);
	*h = (struct nvme_tcp_hdr){ NVME_TCP_CMD, 0, 72, 72, htole32(72 + 4096) };
	assert_int_equal(nvmf_send_raw(&c, buf, 100), 0);
	nvmf_close(&c);
	assert_healthy();

	/* The queue IDs of the closed connections are free again. */
	io_up(&c, 30, false, false);
	write_read(&c, 14000, 4096, 5);
	nvmf_close(&c);
}

static void test_ipv6_listener(void **state)
{
	const struct nvme_port *p4 = tcp_listener_port(0), *p6 = tcp_listener_port(1);
	struct nvmf_client c;

	assert_int_equal(p4->portid, 1);
	assert_int_equal(p4->adrfam, NVMF_ADDR_FAMILY_IP4);
	assert_int_equal(p6->portid, 2);
	assert_int_equal(p6->ops->trtype, NVMF_TRTYPE_TCP);
	assert_int_equal(p6->adrfam, NVMF_ADDR_FAMILY_IP6);
	assert_string_equal(p6->traddr, "::1");
	assert_null(tcp_listener_port(2));

	if (nvmf_tcp_connect(&c, "::1", p6->trsvcid, true, false))
		fail_msg("connect [::1]:%s: %s", p6->trsvcid, c.err);
	assert_int_equal(nvmf_connect(&c, 40, 16, 0, HOSTNQN, CONV_NQN, cntlid, 0, NULL), 0);
	write_read(&c, 15000, 65536, 8);
	nvmf_close(&c);
}

/* The discovery log over TCP lists the listeners as registered ports, with
 * the port numbers they are bound to (configured as "0": ephemeral). */
static void test_discovery_reports_bound_ports(void **state)
{
	const struct nvme_port *p4 = tcp_listener_port(0), *p6 = tcp_listener_port(1);
	static uint8_t buf[8192];
	const struct nvmf_discovery_log *log = (const void *)buf;
	struct nvmf_client d;
	struct nvme_sqe sqe;
	bool seen4 = false, seen6 = false;

	tcp_up(&d, false, false);
	assert_int_equal(nvmf_connect(&d, 0, 32, 0, HOSTNQN, NVME_DISC_SUBSYS_NAME, 0xffff, 0, NULL),
			 0);
	if (nvmf_enable(&d, 5000))
		fail_msg("enable: %s", d.err);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.cdw10 = htole32(NVME_LOG_LID_DISCOVER | (uint32_t)(sizeof(buf) / 4 - 1) << 16);
	assert_int_equal(nvmf_cmd(&d, &sqe, NULL, 0, buf, sizeof(buf), NULL), 0);
	nvmf_close(&d);

	assert_true(le64toh(log->numrec) >= 3);
	assert_true(le64toh(log->numrec) <= (sizeof(buf) - 1024) / sizeof(log->entries[0]));
	for (uint64_t i = 0; i < le64toh(log->numrec); i++) {
		const struct nvmf_disc_log_entry *e = &log->entries[i];

		assert_int_equal(e->trtype, NVMF_TRTYPE_TCP);
		assert_int_equal(e->tsas.tcp.sectype, NVMF_TCP_SECTYPE_NONE);
		assert_string_not_equal(e->trsvcid, "0");
		if (le16toh(e->portid) == p4->portid) {
			assert_string_equal(e->trsvcid, p4->trsvcid);
			assert_string_equal(e->traddr, "127.0.0.1");
			seen4 = true;
		} else {
			assert_int_equal(le16toh(e->portid), p6->portid);
			assert_string_equal(e->trsvcid, p6->trsvcid);
			assert_string_equal(e->traddr, "::1");
			assert_int_equal(e->adrfam, NVMF_ADDR_FAMILY_IP6);
			seen6 = true;
		}
	}
	assert_true(seen4 && seen6);
}

static void test_zoned_status_travels(void **state)
{
	struct nvmf_client za, zi;
	struct nvme_cqe cqe;
	static uint8_t buf[2 * LBA];

	tcp_up(&za, false, false);
	assert_int_equal(nvmf_connect(&za, 0, 32, 30000, HOSTNQN, ZONED_NQN, 0xffff, 0, &cqe), 0);
	if (nvmf_enable(&za, 5000))
		fail_msg("enable: %s", za.err);
	tcp_up(&zi, true, true);
	assert_int_equal(nvmf_connect(&zi, 1, 32, 0, HOSTNQN, ZONED_NQN, za.cntlid, 0, &cqe), 0);

	/* Sequential writes at the write pointer, then one that is not. */
	fill(buf, sizeof(buf), 77);
	assert_int_equal(nvmf_write(&zi, 1, 0, 2, buf, sizeof(buf), NULL), 0);
	int st = nvmf_write(&zi, 1, 5, 1, buf, LBA, NULL);
	assert_int_equal(st, NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ZNS_INVALID_WRITE) |
				     NVME_STATUS_DNR);
	static uint8_t in[2 * LBA];
	assert_int_equal(nvmf_read(&zi, 1, 0, 2, in, sizeof(in), NULL), 0);
	assert_memory_equal(in, buf, sizeof(buf));
	nvmf_close(&zi);
	nvmf_close(&za);
}

/*
 * Read data sent from the page cache is lent only until the target's loop
 * next sleeps (tcp_send.c): a host that stops reading its socket holds a
 * copy, not the pages. The slow host's reads complete while its socket is
 * full; then the blocks are overwritten through another queue; what the
 * slow host finally receives must be the data from before. (Sent from the
 * pages, the reads still queued would carry the new data.)
 */
static void test_slow_host_gets_data_as_read(void **state)
{
	enum { READS = 32, LEN = 256 * 1024, SLBA = 8192 };
	static uint8_t before[READS * LEN], after[READS * LEN], in[READS][LEN], blk[LBA];
	struct nvmf_client slow;
	struct nvme_cqe cqe;
	struct subsys *s = subsys_find(CONV_NQN);
	int small = 64 * 1024;

	assert_non_null(s);
	fill(before, sizeof(before), 71);
	fill(after, sizeof(after), 72);
	for (int i = 0; i < READS; i++)
		assert_int_equal(nvmf_write(&io1, 1, SLBA + (uint64_t)i * (LEN / LBA), LEN / LBA,
					    before + (size_t)i * LEN, LEN, NULL), 0);
	/* A receive buffer set before connecting, so that the window the
	 * host advertises stays that small. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	nvmf_client_init(&slow, fd);
	assert_int_equal(nvmf_icreq(&slow, false, false), 0);
	assert_int_equal(nvmf_connect(&slow, 40, 64, 0, HOSTNQN, CONV_NQN, cntlid, 0, &cqe), 0);
	uint64_t writes = atomic_load(&s->host_writes);
	for (int i = 0; i < READS; i++) {
		struct nvme_sqe sqe = { .opcode = nvme_cmd_read, .nsid = htole32(1) };
		sqe.cdw10 = htole32(SLBA + (uint32_t)i * (LEN / LBA));
		sqe.cdw12 = htole32(LEN / LBA - 1);
		assert_true(nvmf_submit(&slow, &sqe, NULL, 0, in[i], LEN) >= 0);
	}
	/* A write behind the reads on the same queue: once it has executed,
	 * every read before it has completed and the loop iterations that
	 * completed them are over. */
	struct nvme_sqe w = { .opcode = nvme_cmd_write, .nsid = htole32(1) };
	w.cdw10 = htole32(SLBA - 1);
	slow.io_inline = io_inline;
	assert_true(nvmf_submit(&slow, &w, blk, LBA, NULL, 0) >= 0);
	for (int t = 0; atomic_load(&s->host_writes) == writes; t++) {
		assert_true(t < 10000);
		usleep(1000);
	}
	for (int i = 0; i < READS; i++)
		assert_int_equal(nvmf_write(&io1, 1, SLBA + (uint64_t)i * (LEN / LBA), LEN / LBA,
					    after + (size_t)i * LEN, LEN, NULL), 0);
	for (int i = 0; i <= READS; i++) {
		uint16_t cid;
		if (nvmf_wait_any(&slow, &cid, &cqe))
			fail_msg("slow host, completion %d: %s", i, slow.err);
	}
	for (int i = 0; i < READS; i++)
		assert_memory_equal(in[i], before + (size_t)i * LEN, LEN);
	nvmf_close(&slow);
	subsys_put(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify_namespace),
		cmocka_unit_test(test_read_write_digests),
		cmocka_unit_test(test_read_unwritten_is_zero),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_many_queues_pipelined),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ipv6_listener),
		cmocka_unit_test(test_discovery_reports_bound_ports),
		cmocka_unit_test(test_zoned_status_travels),
		cmocka_unit_test(test_slow_host_gets_data_as_read),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
