/*
 * znstgt-probe: connect to one subsystem over NVMe/TCP the way a host does
 * and check what a test harness relies on (tests/nvme-target-control-test.sh
 * drives the blktests hook with it).
 *
 *   znstgt-probe -a ADDR -s PORT -n SUBNQN -q HOSTNQN [-u UUID] [-r] [-H SECONDS]
 *
 * Default: admin Connect, enable, Identify Controller (the subsystem NQN
 * must match), the namespace identifiers of NSID 1 (printed; with -u the
 * UUID must be that one), one I/O queue, and one block written and read
 * back (a Write at LBA 0, or on a zoned namespace a Zone Append to zone 0).
 *
 *   -r  expect the admin Connect to be refused (exit 0 if it is)
 *   -H  after the checks, keep the connections and print "holding"; exit 0
 *       once the target drops both of them, 1 if it has not within SECONDS
 *
 * Exit status: 0 as expected, 1 not as expected, 2 usage error.
 */
#include <ctype.h>
#include <endian.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvme/types.h>

#include "../lib/nvmf_client.h"

struct probe {
	const char *addr, *port, *subnqn, *hostnqn, *uuid;
	struct nvmf_client admin, io;
	uint8_t csi;
	uint32_t lba_size;
};

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "znstgt-probe: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* CNS 03h: print the UUID and command set of NSID 1, check the UUID. */
static int check_ids(struct probe *p)
{
	static uint8_t buf[NVME_IDENTIFY_DATA_SIZE];
	char uuid[37] = "";
	size_t off = 0;

	if (nvmf_identify(&p->admin, NVME_IDENTIFY_CNS_NS_DESC_LIST, 1, 0, buf, NULL))
		return bad("Identify NS descriptors: %s", p->admin.err);
	while (off + 4 <= sizeof(buf) && buf[off]) {
		uint8_t type = buf[off], len = buf[off + 1];
		const uint8_t *v = buf + off + 4;

		if (off + 4 + len > sizeof(buf))
			return bad("descriptor list runs past the data");
		if (type == NVME_NIDT_UUID && len == 16)
			snprintf(uuid, sizeof(uuid),
				 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
				 v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10],
				 v[11], v[12], v[13], v[14], v[15]);
		if (type == NVME_NIDT_CSI && len == 1)
			p->csi = v[0];
		off += 4 + len;
	}
	printf("uuid %s\ncsi %u\n", uuid[0] ? uuid : "none", p->csi);
	if (p->uuid) {
		char want[37];
		size_t i;

		for (i = 0; p->uuid[i] && i < sizeof(want) - 1; i++)
			want[i] = (char)tolower((unsigned char)p->uuid[i]);
		want[i] = '\0';
		if (strcmp(want, uuid) != 0)
			return bad("namespace UUID is %s, expected %s", uuid, want);
	}
	return 0;
}

/* One block out and back on the I/O queue. */
static int check_io(struct probe *p)
{
	static uint8_t out[4096], in[4096];
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint64_t lba = 0;
	int st;

	for (uint32_t i = 0; i < p->lba_size; i++)
		out[i] = (uint8_t)(i * 7 + 1);
	if (p->csi == NVME_CSI_ZNS) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = nvme_zns_cmd_append;
		sqe.nsid = htole32(1); /* ZSLBA 0, one block (NLB 0's based) */
		st = nvmf_cmd(&p->io, &sqe, out, p->lba_size, NULL, 0, &cqe);
		lba = le64toh(cqe.result);
	} else {
		st = nvmf_write(&p->io, 1, 0, 1, out, p->lba_size, NULL);
	}
	if (st)
		return bad("write: status %#x %s", (unsigned)st, p->io.err);
	if (nvmf_read(&p->io, 1, lba, 1, in, p->lba_size, NULL))
		return bad("read back: %s", p->io.err);
	if (memcmp(in, out, p->lba_size) != 0)
		return bad("read back other data than written");
	printf("io ok\n");
	return 0;
}

static int probe_run(struct probe *p, bool refused)
{
	static struct nvme_id_ctrl id;
	static struct nvme_id_ns ns;
	struct nvme_cqe cqe;
	int st;

	if (nvmf_tcp_connect(&p->admin, p->addr, p->port, false, false))
		return bad("%s", p->admin.err);
	st = nvmf_connect(&p->admin, 0, 32, 0, p->hostnqn, p->subnqn, 0xffff, 0, &cqe);
	if (refused) {
		if (st == 0)
			return bad("the admin Connect to %s was accepted", p->subnqn);
		printf("refused\n");
		return 0;
	}
	if (st)
		return bad("admin Connect to %s refused: status %#x %s", p->subnqn, (unsigned)st,
			   p->admin.err);
	if (nvmf_enable(&p->admin, 5000))
		return bad("enable: %s", p->admin.err);
	if (nvmf_identify(&p->admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL))
		return bad("Identify Controller: %s", p->admin.err);
	if (strncmp(id.subnqn, p->subnqn, sizeof(id.subnqn)) != 0)
		return bad("Identify Controller SUBNQN %s, expected %s", id.subnqn, p->subnqn);
	if (check_ids(p))
		return 1;
	if (nvmf_identify(&p->admin, NVME_IDENTIFY_CNS_NS, 1, 0, &ns, NULL))
		return bad("Identify Namespace: %s", p->admin.err);
	p->lba_size = 1u << ns.lbaf[ns.flbas & 0xf].ds;
	if (p->lba_size < 512 || p->lba_size > 4096)
		return bad("LBA size %u", p->lba_size);
	if (nvmf_tcp_connect(&p->io, p->addr, p->port, false, false) ||
	    nvmf_connect(&p->io, 1, 32, 0, p->hostnqn, p->subnqn, p->admin.cntlid, 0, NULL))
		return bad("I/O queue Connect: %s", p->io.err);
	return check_io(p);
}

/* Both connections must reach EOF: the target closed them. */
static int hold(struct probe *p, int seconds)
{
	struct nvmf_client *c[2] = { &p->admin, &p->io };
	char buf[512];

	printf("holding\n");
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		c[i]->timeout_ms = seconds * 1000;
		for (;;) {
			ssize_t r = nvmf_recv_raw(c[i], buf, sizeof(buf));

			if (r == 0)
				break;
			if (r < 0)
				return bad("the target kept the connection: %s", c[i]->err);
		}
	}
	printf("dropped\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p = { 0 };
	bool refused = false;
	int hold_s = -1, c, rc;

	while ((c = getopt(argc, argv, "a:s:n:q:u:rH:")) != -1) {
		switch (c) {
		case 'a': p.addr = optarg; break;
		case 's': p.port = optarg; break;
		case 'n': p.subnqn = optarg; break;
		case 'q': p.hostnqn = optarg; break;
		case 'u': p.uuid = optarg; break;
		case 'r': refused = true; break;
		case 'H': hold_s = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!p.addr || !p.port || !p.subnqn || !p.hostnqn || optind != argc ||
	    (hold_s >= 0 && refused))
		goto usage;
	p.admin.fd = p.io.fd = -1;
	rc = probe_run(&p, refused);
	if (!rc && hold_s >= 0)
		rc = hold(&p, hold_s > 0 ? hold_s : 1);
	nvmf_close(&p.io);
	nvmf_close(&p.admin);
	return rc;
usage:
	fprintf(stderr, "usage: znstgt-probe -a ADDR -s PORT -n SUBNQN -q HOSTNQN [-u UUID] [-r] "
		"[-H SECONDS]\n");
	return 2;
}
