/*
 * The dummy vfio-user device (vfu_dummy.h).
 */
#include <errno.h>
#include <poll.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfio_user.h"
#include "vfu_client.h"
#include "vfu_dummy.h"

struct dummy_priv {
	struct vfu_dummy *d;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async stop;
	ev_io release_io;
	struct vfu_server *srv;
	uint64_t src, dst;
	uint32_t len, vector, status;
	struct vfu_dma_region *hold;
	int shadow_fd;
	volatile uint32_t *shadow;
	uint8_t *bounce;        /* message DMA in flight */
};

static void note(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		abort();
}

static void finish(struct dummy_priv *p, int err)
{
	p->status = (uint32_t)-err;
	free(p->bounce);
	p->bounce = NULL;
	vfu_irq_trigger(p->srv, p->vector);
}

static void wrote_dst(void *arg, int err)
{
	finish(arg, err);
}

static void read_src(void *arg, int err)
{
	struct dummy_priv *p = arg;

	if (!err)
		err = vfu_dma_xfer(p->srv, p->dst, p->bounce, p->len, 1, wrote_dst, p);
	if (err)
		finish(p, err);
}

/* Copy SRC -> DST: in place if both are mapped with an fd, else through
 * DMA_READ/DMA_WRITE messages. */
static void doorbell(struct dummy_priv *p)
{
	struct vfu_dma_region *rs, *rd;
	void *s, *d;
	int err = vfu_dma_get(p->srv, p->src, p->len, VFU_PROT_READ, &s, &rs);

	if (!err) {
		err = vfu_dma_get(p->srv, p->dst, p->len, VFU_PROT_WRITE, &d, &rd);
		if (!err) {
			memmove(d, s, p->len);
			vfu_dma_put(p->srv, rd);
		}
		vfu_dma_put(p->srv, rs);
	}
	if (err == -ENXIO && !p->bounce) {
		p->bounce = malloc(p->len);
		if (!p->bounce)
			err = -ENOMEM;
		else
			err = vfu_dma_xfer(p->srv, p->src, p->bounce, p->len, 0, read_src, p);
		if (!err)
			return;
	}
	finish(p, err);
}

static int bar0_read(void *dev, uint64_t off, void *buf, uint32_t len)
{
	struct dummy_priv *p = dev;
	uint8_t regs[0x24] = { 0 };

	memcpy(regs + DUMMY_SRC, &p->src, 8);
	memcpy(regs + DUMMY_DST, &p->dst, 8);
	memcpy(regs + DUMMY_LEN, &p->len, 4);
	memcpy(regs + DUMMY_VECTOR, &p->vector, 4);
	memcpy(regs + DUMMY_STATUS, &p->status, 4);
	regs[DUMMY_HOLD] = p->hold != NULL;
	if (p->shadow) {
		uint32_t v = p->shadow[0];

		memcpy(regs + DUMMY_SHADOW, &v, 4);
	}
	memset(buf, 0, len);
	if (off < sizeof(regs))
		memcpy(buf, regs + off, len < sizeof(regs) - off ? len : sizeof(regs) - off);
	return 0;
}

static int bar0_write(void *dev, uint64_t off, const void *buf, uint32_t len)
{
	struct dummy_priv *p = dev;
	uint64_t v = 0;

	if (len != 4 && len != 8)
		return -EINVAL;
	memcpy(&v, buf, len);
	switch (off) {
	case DUMMY_SRC: p->src = v; break;
	case DUMMY_DST: p->dst = v; break;
	case DUMMY_LEN: p->len = (uint32_t)v; break;
	case DUMMY_VECTOR: p->vector = (uint32_t)v; break;
	case DUMMY_HOLD:
		if (v && !p->hold) {
			void *ptr;
			int err = vfu_dma_get(p->srv, p->src, p->len, VFU_PROT_WRITE, &ptr, &p->hold);

			if (err) {
				p->hold = NULL;
				return err;
			}
			memset(ptr, 0xa5, p->len);
		} else if (!v && p->hold) {
			vfu_dma_put(p->srv, p->hold);
			p->hold = NULL;
		}
		break;
	case DUMMY_DOORBELL: doorbell(p); break;
	default: return -EINVAL;
	}
	return 0;
}

static void reset(void *dev)
{
	struct dummy_priv *p = dev;

	p->src = p->dst = 0;
	p->len = p->vector = p->status = 0;
	__atomic_add_fetch(&p->d->resets, 1, __ATOMIC_SEQ_CST);
}

static void dma_release(void *dev, uint64_t iova, uint64_t len)
{
	struct dummy_priv *p = dev;

	/* The test decides when to let go (release_fd): unmap must wait. */
	note(p->d->release_req_fd);
}

static void detached(void *dev)
{
	struct dummy_priv *p = dev;

	note(p->d->detached_fd);
}

static const struct vfu_dev_ops dummy_ops = {
	.bar0_read = bar0_read,
	.bar0_write = bar0_write,
	.reset = reset,
	.dma_release = dma_release,
	.detached = detached,
};

static void release_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dummy_priv *p = w->data;
	uint64_t n;

	if (read(p->d->release_fd, &n, sizeof(n)) < 0)
		return;
	if (p->hold) {
		vfu_dma_put(p->srv, p->hold);
		p->hold = NULL;
	}
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct dummy_priv *p = w->data;

	if (p->hold)
		vfu_dma_put(p->srv, p->hold);
	p->hold = NULL;
	vfu_server_destroy(p->srv);
	ev_io_stop(loop, &p->release_io);
	ev_async_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void *run(void *arg)
{
	struct dummy_priv *p = arg;

	ev_run(p->loop, 0);
	return NULL;
}

struct vfu_dummy *vfu_dummy_start(bool mmap_doorbell)
{
	static unsigned seq;
	struct vfu_dummy *d = calloc(1, sizeof(*d));
	struct dummy_priv *p = calloc(1, sizeof(*p));
	struct vfu_dev_desc desc = {
		.vendor_id = DUMMY_VENDOR, .device_id = DUMMY_DEVICE,
		.subsys_vendor_id = DUMMY_VENDOR, .subsys_id = 1, .revision = 2,
		.bar0_size = DUMMY_BAR0, .nr_vectors = DUMMY_VECTORS, .bar0_mmap_fd = -1,
	};

	if (!d || !p)
		abort();
	d->priv = p;
	p->d = d;
	p->shadow_fd = -1;
	d->mmap_doorbell = mmap_doorbell;
	snprintf(d->path, sizeof(d->path), "/tmp/znstgt-vfu-%d-%u.sock", getpid(), seq++);
	d->release_req_fd = eventfd(0, EFD_CLOEXEC);
	d->detached_fd = eventfd(0, EFD_CLOEXEC);
	d->release_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mmap_doorbell) {
		p->shadow_fd = memfd_create("dummy-bar0", MFD_CLOEXEC);
		if (p->shadow_fd < 0 || ftruncate(p->shadow_fd, DUMMY_BAR0) < 0)
			abort();
		p->shadow = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				 p->shadow_fd, DUMMY_DOORBELL);
		if (p->shadow == MAP_FAILED)
			abort();
		desc.bar0_mmap_fd = p->shadow_fd;
		desc.nr_mmap_areas = 1;
		desc.mmap_areas[0] = (struct vfu_mmap_area){ DUMMY_DOORBELL, 4096 };
	}
	p->loop = ev_loop_new(EVFLAG_AUTO);
	p->srv = vfu_server_create(p->loop, d->path, &desc, &dummy_ops, p);
	if (!p->srv)
		abort();
	ev_async_init(&p->stop, stop_cb);
	p->stop.data = p;
	ev_async_start(p->loop, &p->stop);
	ev_io_init(&p->release_io, release_cb, d->release_fd, EV_READ);
	p->release_io.data = p;
	ev_io_start(p->loop, &p->release_io);
	pthread_create(&p->thread, NULL, run, p);
	return d;
}

int vfu_dummy_stop(struct vfu_dummy *d)
{
	struct dummy_priv *p = d->priv;
	/* finish() frees the bounce buffer: one left means the server never
	 * reported the end of a transfer it had started. */
	int err;

	ev_async_send(p->loop, &p->stop);
	pthread_join(p->thread, NULL);
	ev_loop_destroy(p->loop);
	err = p->bounce ? -EBUSY : 0;
	if (p->shadow)
		munmap((void *)p->shadow, 4096);
	if (p->shadow_fd >= 0)
		close(p->shadow_fd);
	free(p->bounce);
	close(d->release_req_fd);
	close(d->detached_fd);
	close(d->release_fd);
	free(p);
	free(d);
	return err;
}

struct vfu_fixture *vfu_fixture_new(bool mmap_doorbell, size_t ram_size)
{
	struct vfu_fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->ram_fd = -1;
	f->ram = MAP_FAILED;
	f->ram_size = ram_size;
	f->d = vfu_dummy_start(mmap_doorbell);
	f->c = vfuc_connect(f->d->path);
	if (!f->c || vfuc_negotiate(f->c, NULL, NULL, 0))
		goto fail;
	f->ram_fd = vfuc_guest_ram(ram_size, true);
	if (f->ram_fd < 0)
		goto fail;
	f->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->ram_fd, 0);
	if (f->ram == MAP_FAILED)
		goto fail;
	return f;
fail:
	vfu_fixture_free(f);
	return NULL;
}

int vfu_fixture_free(struct vfu_fixture *f)
{
	/* The server stops first, with the client still there: whatever the
	 * test left between them is the server's to end, not a race with the
	 * client's leaving. */
	int err = vfu_dummy_stop(f->d);

	vfuc_close(f->c);
	if (f->ram != MAP_FAILED)
		munmap(f->ram, f->ram_size);
	if (f->ram_fd >= 0)
		close(f->ram_fd);
	free(f);
	return err;
}

uint64_t vfu_efd_wait(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, 10000) != 1 || read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}
