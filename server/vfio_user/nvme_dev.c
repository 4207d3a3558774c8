/*
 * A vfio-user NVMe device (doc/vfio-user.md, "The NVMe device"): the
 * protocol server of one socket (vfio_user.h) joined to the core's PCIe
 * controller model (pcie.h).
 *
 *   BAR0 REGION_READ/WRITE  -> nvme_pcie_bar0_read/_write
 *   guest memory (gm.map)   -> vfu_dma_get, one hold per map, put at unmap
 *   a CQ's interrupt        -> vfu_irq_trigger (MSI-X eventfd, or INTx)
 *   DEVICE_RESET, client gone, controller torn down by the core
 *                           -> the controller is destroyed (its commands
 *                              finish first); the next BAR0 access gets a
 *                              fresh one of the same subsystem
 *
 * Everything runs on the device's worker: the server's socket is on that
 * worker's loop, the controller is created with it as its worker, so its
 * queues, and the completions of their namespace I/O (io_job->worker),
 * come back to it, as a TCP connection's do.
 *
 * A controller the core tore down while the guest had it enabled (power
 * cut, subsystem removed and added again) reads CSTS.CFS until the guest
 * writes CC.EN = 0: the guest sees a fatal error and resets, instead of a
 * controller silently not ready that it would wait on for its timeouts.
 */
#include "nvme_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "db_poll.h"
#include "log.h"
#include "pcie.h"
#include "subsys.h"
#include "vfio_user.h"
#include "internal.h"
#include "worker.h"

/* BAR0: registers and doorbells (NVME_PCIE_BAR0_SIZE), rounded up to a
 * power of two with room to spare; the rest reads 0. */
#define BAR0_SIZE (16u * 1024)
_Static_assert(NVME_PCIE_BAR0_SIZE <= BAR0_SIZE, "BAR0 too small for the doorbells");
/* One vector per completion queue the model can have. */
#define NR_VECTORS NVME_PCIE_MAX_VECTORS
_Static_assert(NR_VECTORS <= VFU_MAX_VECTORS, "too many MSI-X vectors");

/* PCI identity: there is no PCI-SIG vendor ID of our own. 0x4e58 is not
 * assigned (SPDK's vfio-user NVMe target uses it too); the Linux driver
 * binds by the class code, 01 08 02, which pci_config.c sets. */
#define PCI_VENDOR 0x4e58
#define PCI_DEVICE 0x0001

/* The host identity of every vfio-user controller: who may use one is
 * decided by the socket file's permissions, not by the host list. */
#define VFIO_HOSTNQN "nqn.2024-01.io.znstgt:vfio-user"

#define REG_CC    0x14u
#define REG_CSTS  0x1cu
#define CC_EN     1u
#define CSTS_CFS  (1u << NVME_CSTS_CFS_SHIFT)

/* A DMA region the controller holds pages of, and how many holds. */
struct hold {
	struct vfu_dma_region *r;
	uint32_t n;
};

struct vnvme_dev {
	struct worker *w;
	struct vfu_server *s;
	char nqn[CFG_NQN_MAX];
	char path[108];
	struct nvme_port port;
	uint8_t hostid[16];
	struct nvme_pcie_ctrl *pc;   /* NULL: made at the next BAR0 access */
	bool lost_cfs;               /* report CSTS.CFS until CC.EN = 0 */
	bool no_subsys_logged;
	int dying;                   /* controllers being destroyed (+1 while stopping) */
	bool stopping;
	void (*stopped)(void *arg);
	void *stopped_arg;
	struct hold *holds;
	uint32_t nr_holds, cap_holds;
	bool mmap_doorbells;         /* offer the doorbell page, poll it */
	bool worker_polls;           /* poll = yes: the worker spins anyway */
	struct db_poll dbp;          /* open while a client is attached */
};

static const struct nvme_transport_ops vfio_nvme_ops = {
	.name = "vfio-user",
	.data_ptrs = NVME_XPORT_PRP | NVME_XPORT_SGL,
	.fabrics = false,
	.sgls = 1,                   /* SGLs, byte aligned data blocks */
	.mdts_bytes = 1u << 20,
	.queue_response = nvme_pcie_queue_response,
	.disconnect = nvme_pcie_disconnect,
	.drained = nvme_pcie_drained,
};

/* ---- guest memory: the server's DMA regions ---- */

static bool hold_add(struct vnvme_dev *d, struct vfu_dma_region *r)
{
	for (uint32_t i = 0; i < d->nr_holds; i++)
		if (d->holds[i].r == r) {
			d->holds[i].n++;
			return true;
		}
	if (d->nr_holds == d->cap_holds) {
		uint32_t cap = d->cap_holds ? 2 * d->cap_holds : 8;
		struct hold *h = realloc(d->holds, sizeof(*h) * cap);

		if (!h)
			return false;
		d->holds = h;
		d->cap_holds = cap;
	}
	d->holds[d->nr_holds++] = (struct hold){ r, 1 };
	return true;
}

static void *gm_map(void *ctx, uint64_t addr, size_t len)
{
	struct vnvme_dev *d = ctx;
	struct vfu_dma_region *r;
	void *p;

	/* Read and write: the model does not say which it will do, and a
	 * read-only mapping written to would fault. A mapping without an fd
	 * (DMA by messages) cannot hold queues or data in place: refused. */
	if (vfu_dma_get(d->s, addr, len, VFU_PROT_READ | VFU_PROT_WRITE, &p, &r))
		return NULL;
	if (!hold_add(d, r)) {
		vfu_dma_put(d->s, r);
		return NULL;
	}
	dbp_active(&d->dbp); /* queues or data moving: the guest rings soon */
	return p;
}

static void gm_unmap(void *ctx, void *ptr, size_t len)
{
	struct vnvme_dev *d = ctx;
	uint8_t *p = ptr;

	(void)len;
	for (uint32_t i = 0; i < d->nr_holds; i++) {
		struct hold *h = &d->holds[i];
		uint8_t *base = h->r->host;

		if (p < base || p >= base + h->r->size)
			continue;
		vfu_dma_put(d->s, h->r);
		if (--h->n == 0)
			*h = d->holds[--d->nr_holds];
		return;
	}
	log_error("vfio-user %s: release of guest memory never mapped", d->path);
}

static void dev_db_reset(void *ctx, uint32_t idx)
{
	struct vnvme_dev *d = ctx;

	dbp_reset(&d->dbp, idx);
}

static void dev_irq(void *ctx, uint16_t vector)
{
	struct vnvme_dev *d = ctx;

	vfu_irq_trigger(d->s, vector);
}

/* ---- the controller ---- */

static void retired(void *arg)
{
	struct vnvme_dev *d = arg;

	if (--d->dying || !d->stopping)
		return;
	vfu_server_destroy(d->s);
	if (d->nr_holds)
		log_error("vfio-user %s: %u guest regions still held at stop", d->path, d->nr_holds);
	free(d->holds);
	log_info("vfio-user %s: stopped", d->path);
	void (*done)(void *) = d->stopped;
	void *done_arg = d->stopped_arg;

	free(d);
	if (done)
		done(done_arg);
}

/* Let the controller go: reset, its commands finish, then it is freed. */
static void retire(struct vnvme_dev *d)
{
	struct nvme_pcie_ctrl *pc = d->pc;

	if (!pc)
		return;
	d->pc = NULL;
	d->dying++;
	nvme_pcie_ctrl_destroy(pc, retired, d);
}

static void dev_lost(void *ctx)
{
	struct vnvme_dev *d = ctx;
	uint64_t cc = 0;

	if (!d->pc)
		return;
	nvme_pcie_bar0_read(d->pc, REG_CC, 4, &cc);
	log_warn("vfio-user %s: controller torn down by the target", d->path);
	retire(d);
	d->lost_cfs = cc & CC_EN;
}

static void dev_ctrl_new(struct vnvme_dev *d)
{
	struct subsys *s = subsys_find(d->nqn);
	struct nvme_pcie_host h = {
		.gm = { .map = gm_map, .unmap = gm_unmap, .ctx = d },
		.irq = dev_irq, .ctx = d, .nr_vectors = NR_VECTORS, .lost = dev_lost,
		.db_reset = dev_db_reset,
	};
	struct nvme_ctrl_args a = {
		.ops = &vfio_nvme_ops, .worker = d->w, .port = &d->port,
		.subnqn = d->nqn, .hostnqn = VFIO_HOSTNQN, .hostid = d->hostid,
	};
	uint16_t st;

	if (!s) {
		if (!d->no_subsys_logged)
			log_warn("vfio-user %s: subsystem %s is not there: the device reads as removed",
				 d->path, d->nqn);
		d->no_subsys_logged = true;
		return;
	}
	d->no_subsys_logged = false;
	st = nvme_pcie_ctrl_new(s, &a, &h, &d->pc);
	subsys_put(s);
	if (st) {
		log_warn("vfio-user %s: no controller of %s (status %#x)", d->path, d->nqn, st);
		d->pc = NULL;
	}
}

/* The controller BAR0 talks to, made when there is none. */
static struct nvme_pcie_ctrl *dev_ctrl(struct vnvme_dev *d)
{
	if (!d->pc && !d->stopping)
		dev_ctrl_new(d);
	return d->pc;
}

/* ---- BAR0 ---- */

static uint64_t reg_read(struct vnvme_dev *d, struct nvme_pcie_ctrl *pc, uint64_t off,
			 unsigned size)
{
	uint64_t v;

	if (!nvme_pcie_bar0_read(pc, off, size, &v))
		v = 0; /* past the doorbells: reserved */
	if (d->lost_cfs && off <= REG_CSTS && off + size >= REG_CSTS + 4)
		v |= (uint64_t)CSTS_CFS << (8 * (REG_CSTS - off));
	return v;
}

static int bar0_read(void *dev, uint64_t off, void *buf, uint32_t len)
{
	struct vnvme_dev *d = dev;
	struct nvme_pcie_ctrl *pc = dev_ctrl(d);
	uint8_t *out = buf;

	if (!pc) { /* as a PCIe read of a device that is gone */
		memset(buf, 0xff, len);
		return 0;
	}
	if ((len == 4 || len == 8) && off % len == 0) {
		uint64_t v = htole64(reg_read(d, pc, off, len));

		memcpy(buf, &v, len);
		return 0;
	}
	/* Other sizes (a debugger's byte reads): the dwords they touch. */
	for (uint64_t a = off & ~3ull; a < off + len; a += 4) {
		uint32_t dw = htole32((uint32_t)reg_read(d, pc, a, 4));
		const uint8_t *b = (const uint8_t *)&dw;

		for (unsigned i = 0; i < 4; i++)
			if (a + i >= off && a + i < off + len)
				out[a + i - off] = b[i];
	}
	return 0;
}

/* A register or doorbell write, from a message or the doorbell page. */
static void reg_write(struct vnvme_dev *d, uint64_t off, uint32_t len, uint64_t v)
{
	struct nvme_pcie_ctrl *pc = dev_ctrl(d);

	if (!pc)
		return;
	if (off <= REG_CC && off + len >= REG_CC + 4 &&
	    !((v >> (8 * (REG_CC - off))) & CC_EN))
		d->lost_cfs = false; /* the guest resets: the fatal state is over */
	nvme_pcie_bar0_write(pc, off, len, v);
}

/* A doorbell dword the poller saw change in the shared page. */
static void page_ring(void *ctx, uint32_t idx, uint32_t val)
{
	reg_write(ctx, NVME_PCIE_DB_BASE + 4ull * idx, 4, val);
}

static int bar0_write(void *dev, uint64_t off, const void *buf, uint32_t len)
{
	struct vnvme_dev *d = dev;
	uint64_t v = 0;

	/* Registers and doorbells are dwords or qwords (NVMe over PCIe). */
	if ((len != 4 && len != 8) || off % len)
		return -EINVAL;
	memcpy(&v, buf, len);
	v = le64toh(v);
	dbp_active(&d->dbp);
	/* With the page mapped, a doorbell message goes through the page, so
	 * the poller does not see it again as a change. */
	if (d->dbp.page && len == 4 && off >= NVME_PCIE_DB_BASE && off < NVME_PCIE_BAR0_SIZE) {
		dbp_store(&d->dbp, (uint32_t)(off - NVME_PCIE_DB_BASE) / 4, (uint32_t)v);
		return 0;
	}
	reg_write(d, off, len, v);
	return 0;
}

/* DEVICE_RESET, or the client left: the next VM gets a fresh controller. */
static void dev_reset(void *dev)
{
	struct vnvme_dev *d = dev;

	retire(d);
	d->lost_cfs = false;
	dbp_clear(&d->dbp); /* a reset controller's doorbells read 0 */
}

/* A client: its own doorbell page (a fresh memfd, so that a client gone
 * but still holding the last one's fd rings nothing here). Without one,
 * BAR0 is offered wholly trapped and doorbells come as messages. */
static void dev_attached(void *dev)
{
	struct vnvme_dev *d = dev;
	int fd;

	if (!d->mmap_doorbells)
		return;
	dbp_close(&d->dbp);
	fd = dbp_open(&d->dbp, worker_loop(d->w), d->worker_polls, page_ring, d);
	if (fd >= 0 && vfu_server_set_mmap_fd(d->s, fd) != 0) {
		dbp_close(&d->dbp);
		close(fd);
		fd = -1;
	} else if (fd >= 0) {
		close(fd);
	}
	if (fd < 0) {
		vfu_server_set_mmap_fd(d->s, -1);
		log_warn("vfio-user %s: no doorbell page for this client: doorbells by message",
			 d->path);
	}
}

static void dev_detached(void *dev)
{
	struct vnvme_dev *d = dev;

	dbp_close(&d->dbp);
	vfu_server_set_mmap_fd(d->s, -1);
	if (!d->stopping)
		dev_reset(d);
}

static const struct vfu_dev_ops dev_ops = {
	.bar0_read = bar0_read,
	.bar0_write = bar0_write,
	.reset = dev_reset,
	.detached = dev_detached,
	.attached = dev_attached,
};

struct vnvme_dev *vnvme_dev_new(struct worker *w, const char *nqn, const char *path,
			       bool mmap_doorbells, bool worker_polls)
{
	struct vnvme_dev *d = calloc(1, sizeof(*d));
	/* The doorbell page as the one mmap area; its fd comes per client. */
	struct vfu_dev_desc desc = {
		.vendor_id = PCI_VENDOR, .device_id = PCI_DEVICE,
		.subsys_vendor_id = PCI_VENDOR, .subsys_id = PCI_DEVICE,
		.bar0_size = BAR0_SIZE, .nr_vectors = NR_VECTORS, .bar0_mmap_fd = -1,
		.nr_mmap_areas = mmap_doorbells ? 1 : 0,
		.mmap_areas = { { NVME_PCIE_DB_BASE, DBP_PAGE } },
	};
	uint32_t crc;

	if (!d)
		return NULL;
	if (strlen(nqn) >= sizeof(d->nqn) || strlen(path) >= sizeof(d->path)) {
		free(d);
		errno = ENAMETOOLONG;
		return NULL;
	}
	d->w = w;
	d->mmap_doorbells = mmap_doorbells;
	d->worker_polls = worker_polls;
	strcpy(d->nqn, nqn);
	strcpy(d->path, path);
	d->port.ops = &vfio_nvme_ops;
	/* Where the controller is reached, for the status report (the port
	 * is not registered: no discovery log entry names a PCI device). */
	snprintf(d->port.traddr, sizeof(d->port.traddr), "%.63s", path);
	/* Host ID: stable per socket (Identify and logs show it). */
	crc = crc32c(path, strlen(path));
	for (unsigned i = 0; i < sizeof(d->hostid); i += 4)
		memcpy(d->hostid + i, &crc, 4);
	d->s = vfu_server_create(worker_loop(w), path, &desc, &dev_ops, d);
	if (!d->s) {
		int e = errno;

		free(d);
		errno = e;
		return NULL;
	}
	log_info("vfio-user %s: serving %s", path, nqn);
	return d;
}

void vnvme_dev_stop(struct vnvme_dev *d, void (*done)(void *arg), void *arg)
{
	d->stopping = true;
	d->stopped = done;
	d->stopped_arg = arg;
	d->dying++; /* ours, dropped below: the last retired() finishes */
	retire(d);
	retired(d);
}
