/*
 * A guest's NVMe driver over vfio-user (vfu_nvme.h): what the Linux nvme
 * driver does to a PCI controller, reduced to one admin and one I/O queue
 * pair, with the queues and data in a memfd the device maps (sealed against
 * shrinking, as QEMU's memfd RAM is: the device maps nothing else).
 */
#include "vfu_nvme.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <nvme/types.h>

#include "vfio_user_proto.h"
#include "vfu_client.h"

#define REG_CSTS 0x1c
#define REG_CC   0x14
#define REG_AQA  0x24
#define REG_ASQ  0x28
#define REG_ACQ  0x30
#define DB(i)    (0x1000u + 4u * (i))
/* CC as Linux writes it with CAP.CSS bit 43: CSS 110b, IOSQES 6, IOCQES 4. */
#define CC_ENABLE (1u | 6u << 4 | 6u << 16 | 4u << 20)

static int fail(struct vnvme *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return -1;
}

static uint8_t cfg8(struct vnvme *v, uint32_t off)
{
	uint8_t x = 0;

	if (vfuc_region_read(v->c, VFU_PCI_CONFIG, off, &x, 1))
		return 0;
	return x;
}

static uint8_t find_cap(struct vnvme *v, uint8_t id)
{
	uint8_t p = cfg8(v, 0x34);

	for (int hops = 0; p && hops < 48; hops++) {
		if (cfg8(v, p) == id)
			return p;
		p = cfg8(v, p + 1);
	}
	return 0;
}

static int connect_dev(struct vnvme *v, const char *path)
{
	/* The server may not have seen the previous VM's socket close yet
	 * (one client at a time): then this one is turned away; try again. */
	for (int i = 0; i < 100; i++) {
		int err;

		v->c = vfuc_connect(path);
		if (!v->c)
			return fail(v, "connect %s: %s", path, strerror(errno));
		err = vfuc_negotiate(v->c, NULL, NULL, 0);
		if (!err)
			return 0;
		vfuc_close(v->c);
		v->c = NULL;
		if (err != -ECONNRESET && err != -EPIPE)
			return fail(v, "VERSION: %s", strerror(-err));
		usleep(10000);
	}
	return fail(v, "%s: still turned away after 1 s", path);
}

int vnvme_open(struct vnvme *v, const char *path, uint64_t iova, uint32_t pages)
{
	return vnvme_open_with(v, path, iova, pages, 0);
}

int vnvme_open_with(struct vnvme *v, const char *path, uint64_t iova, uint32_t pages,
		    unsigned flags)
{
	size_t size = (size_t)pages * VNVME_PAGE;
	uint8_t msix;
	uint16_t ctrl;

	memset(v, 0, sizeof(*v));
	v->memfd = -1;
	for (int i = 0; i < VNVME_NVEC; i++)
		v->efd[i] = -1;
	v->iova = iova;
	v->pages = pages;
	if (connect_dev(v, path))
		return -1;
	v->memfd = vfuc_guest_ram(size, !(flags & VNVME_UNSEALED_RAM));
	if (v->memfd < 0)
		return fail(v, "guest RAM: %s", strerror(-v->memfd));
	v->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->memfd, 0);
	if (v->ram == MAP_FAILED) {
		v->ram = NULL;
		return fail(v, "guest RAM: %s", strerror(errno));
	}
	if (vfuc_dma_map(v->c, iova, size, VFU_DMA_READ | VFU_DMA_WRITE, v->memfd, 0, v->ram))
		return fail(v, "DMA_MAP refused");
	if (vfuc_cfg_write16(v->c, 0x04, 0x0006)) /* memory, bus master */
		return fail(v, "command register");
	msix = find_cap(v, 0x11);
	if (!msix || vfuc_region_read(v->c, VFU_PCI_CONFIG, msix + 2, &ctrl, 2) ||
	    vfuc_cfg_write16(v->c, msix + 2, ctrl | 0x8000))
		return fail(v, "no MSI-X");
	for (int i = 0; i < VNVME_NVEC; i++) {
		uint32_t vctl = 0; /* unmasked */

		v->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->efd[i] < 0 ||
		    vfuc_region_write(v->c, VFU_PCI_BAR4, i * 16u + 12, &vctl, 4))
			return fail(v, "MSI-X vector %d", i);
	}
	if (vfuc_set_irqs(v->c, VFU_IRQ_MSIX, VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_TRIGGER, 0,
			  VNVME_NVEC, v->efd, VNVME_NVEC))
		return fail(v, "SET_IRQS refused");
	if (!(flags & VNVME_MSG_DOORBELLS)) {
		v->db = vfuc_region_mmap(v->c, VFU_PCI_BAR0, &v->db_area);
		if (!v->db && errno != ENODEV)
			return fail(v, "BAR0 mmap area: %s", strerror(errno));
	}
	return 0;
}

void vnvme_close(struct vnvme *v)
{
	if (!v->c && !v->ram) /* never opened (zeroed), or nothing to undo */
		return;
	if (v->c)
		vfuc_close(v->c);
	for (int i = 0; i < VNVME_NVEC; i++)
		if (v->efd[i] >= 0)
			close(v->efd[i]);
	if (v->db)
		munmap(v->db, v->db_area.size);
	if (v->ram)
		munmap(v->ram, (size_t)v->pages * VNVME_PAGE);
	if (v->memfd >= 0)
		close(v->memfd);
	memset(v, 0, sizeof(*v));
	v->memfd = -1;
	for (int i = 0; i < VNVME_NVEC; i++)
		v->efd[i] = -1;
}

int vnvme_bar_read(struct vnvme *v, uint64_t off, void *val, uint32_t len)
{
	int err = vfuc_region_read(v->c, VFU_PCI_BAR0, off, val, len);

	return err ? fail(v, "BAR0 read %#llx: %s", (unsigned long long)off, strerror(-err)) : 0;
}

int vnvme_bar_write(struct vnvme *v, uint64_t off, const void *val, uint32_t len)
{
	struct vfu_region_access a = { off, VFU_PCI_BAR0, len };
	uint8_t m[sizeof(a) + 8];
	int err;

	if (v->db && len == 4 && off % 4 == 0 && off >= v->db_area.offset &&
	    off - v->db_area.offset < v->db_area.size) {
		/* A store into the mapped page, as a guest's MMIO write lands
		 * there: no message; the device polls the page. */
		__atomic_store_n(v->db + (off - v->db_area.offset) / 4, *(const uint32_t *)val,
				 __ATOMIC_RELEASE);
		return 0;
	}
	if (!v->posted || len > 8) {
		err = vfuc_region_write(v->c, VFU_PCI_BAR0, off, val, len);
	} else {
		/* Posted, as QEMU sends BAR writes: no reply to wait for. */
		memcpy(m, &a, sizeof(a));
		memcpy(m + sizeof(a), val, len);
		err = vfuc_send(v->c, v->c->next_id++, VFU_CMD_REGION_WRITE,
				VFU_F_TYPE_CMD | VFU_F_NO_REPLY, m, sizeof(a) + len, NULL, 0);
	}
	return err ? fail(v, "BAR0 write %#llx: %s", (unsigned long long)off, strerror(-err)) : 0;
}

bool vnvme_wait_csts(struct vnvme *v, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < 5000; i++) {
		uint32_t csts = 0;

		if (vnvme_bar_read(v, REG_CSTS, &csts, 4))
			return false;
		if ((csts & mask) == want)
			return true;
		usleep(1000);
	}
	return false;
}

void vnvme_q_init(struct vnvme *v, struct vnvme_q *q, uint16_t qid, uint64_t sq, uint64_t cq,
		  uint32_t size, int vec)
{
	memset(q, 0, sizeof(*q));
	q->qid = qid;
	q->sq = sq;
	q->cq = cq;
	q->size = size;
	q->phase = true;
	q->vec = vec;
	memset(vnvme_g(v, cq), 0, size * 16u);
}

struct nvme_sqe vnvme_sqe(uint8_t opcode, uint32_t nsid, uint32_t cdw10, uint32_t cdw11)
{
	struct nvme_sqe s;

	memset(&s, 0, sizeof(s));
	s.opcode = opcode;
	s.nsid = htole32(nsid);
	s.cdw10 = htole32(cdw10);
	s.cdw11 = htole32(cdw11);
	return s;
}

int vnvme_ring(struct vnvme *v, struct vnvme_q *q, unsigned idx, uint32_t val)
{
	if (q->shadow)
		__atomic_store_n((uint32_t *)vnvme_g(v, v->shadow) + idx, htole32(val),
				 __ATOMIC_SEQ_CST);
	return vnvme_bar_write(v, DB(idx), &val, 4);
}

int vnvme_put(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s, bool ring)
{
	s->cid = htole16(++q->cid);
	memcpy(vnvme_g(v, q->sq + q->tail * 64ull), s, sizeof(*s));
	q->tail = (q->tail + 1) % q->size;
	if (ring && vnvme_ring(v, q, 2u * q->qid, q->tail))
		return -1;
	return q->cid;
}

static void take_irqs(struct vnvme *v, int vec, int timeout_ms)
{
	struct pollfd pfd = { .fd = v->efd[vec], .events = POLLIN };
	uint64_t n;

	if (poll(&pfd, 1, timeout_ms) == 1 && read(v->efd[vec], &n, 8) == 8)
		v->irqs[vec] += n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int vnvme_poll(struct vnvme *v, struct vnvme_q *q, struct nvme_cqe *out)
{
	struct nvme_cqe *e = vnvme_g(v, q->cq + q->head * 16ull);
	uint16_t st = le16toh(__atomic_load_n(&e->status, __ATOMIC_ACQUIRE));

	if ((st & 1) != q->phase)
		return 0;
	*out = *e;
	if (++q->head == q->size) {
		q->head = 0;
		q->phase = !q->phase;
	}
	return 1;
}

int vnvme_reap(struct vnvme *v, struct vnvme_q *q, struct nvme_cqe *out, bool spin)
{
	double give_up = now_s() + 10;

	for (unsigned i = 0;; i++) {
		if (vnvme_poll(v, q, out)) {
			if (vnvme_ring(v, q, 2u * q->qid + 1, q->head))
				return -1;
			return le16toh(out->status) >> 1;
		}
		if (!spin)
			take_irqs(v, q->vec, 100);
		if ((!spin || i % 4096 == 0) && now_s() > give_up)
			return fail(v, "queue %u: no completion after 10 s", q->qid);
	}
}

int vnvme_exec(struct vnvme *v, struct vnvme_q *q, struct nvme_sqe *s, uint64_t *result)
{
	struct nvme_cqe e;
	int cid = vnvme_put(v, q, s, true);
	int st;

	if (cid < 0)
		return -1;
	st = vnvme_reap(v, q, &e, false);
	if (st < 0)
		return -1;
	if (le16toh(e.cid) != cid || le16toh(e.sqid) != q->qid)
		return fail(v, "completion of CID %u SQ %u, expected CID %d SQ %u", le16toh(e.cid),
			    le16toh(e.sqid), cid, q->qid);
	if (result)
		*result = le64toh(e.result);
	return st;
}

bool vnvme_irq_wait(struct vnvme *v, int vec, uint64_t min)
{
	for (int i = 0; i < 50 && v->irqs[vec] < min; i++)
		take_irqs(v, vec, 100);
	return v->irqs[vec] >= min;
}

int vnvme_enable(struct vnvme *v, uint64_t asq, uint64_t acq, uint32_t entries)
{
	uint32_t zero = 0, aqa = (entries - 1) << 16 | (entries - 1), cc = CC_ENABLE;

	if (vnvme_bar_write(v, REG_CC, &zero, 4))
		return -1;
	if (!vnvme_wait_csts(v, 1, 0))
		return fail(v, "CSTS.RDY stays set after CC.EN = 0");
	vnvme_q_init(v, &v->admin, 0, asq, acq, entries, 0);
	if (vnvme_bar_write(v, REG_AQA, &aqa, 4) || vnvme_bar_write(v, REG_ASQ, &asq, 8) ||
	    vnvme_bar_write(v, REG_ACQ, &acq, 8) || vnvme_bar_write(v, REG_CC, &cc, 4))
		return -1;
	if (!vnvme_wait_csts(v, 3, 1))
		return fail(v, "not ready (or CSTS.CFS) after CC.EN = 1");
	return 0;
}

int vnvme_io_queue(struct vnvme *v, uint64_t sq, uint64_t cq, uint32_t entries, bool polled)
{
	struct nvme_sqe s[3] = {
		vnvme_sqe(nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0x00010001),
		/* IV 1, interrupts enabled (bit 1) unless polled, physically contiguous */
		vnvme_sqe(nvme_admin_create_cq, 0, (entries - 1) << 16 | 1u,
			  1u << 16 | (polled ? 0u : 2u) | 1u),
		vnvme_sqe(nvme_admin_create_sq, 0, (entries - 1) << 16 | 1u, 1u << 16 | 1u),
	};

	s[1].dptr.prp.prp1 = htole64(cq);
	s[2].dptr.prp.prp1 = htole64(sq);
	vnvme_q_init(v, &v->io, 1, sq, cq, entries, 1);
	for (int i = 0; i < 3; i++) {
		int st = vnvme_exec(v, &v->admin, &s[i], NULL);

		if (st)
			return st < 0 ? -1 : fail(v, "I/O queue setup: status %#x", st);
	}
	return 0;
}
