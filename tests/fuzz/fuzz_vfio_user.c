/*
 * libFuzzer target for the vfio-user server's message parser and command
 * dispatcher (server/vfio_user/).
 *
 * Each input is the byte stream a client sends on one connection: a real
 * connection on a socketpair, served by a loop in this thread, with a small
 * device behind the device ops that reads and writes guest memory through
 * vfu_dma_get (in place) and vfu_dma_xfer (DMA_READ/WRITE messages) and
 * triggers interrupts, so DMA_MAP/UNMAP, SET_IRQS and the replies to the
 * server's own requests are all reachable. The first byte picks:
 *   bit 0  prefix a valid VERSION, so inputs start past negotiation
 *   bit 1  pass a 64 KiB memfd with the first message (DMA_MAP's fd),
 *          sealed against shrinking as QEMU's is (mapped in place)
 *   bit 2  pass an eventfd with the first message (SET_IRQS's fd)
 *   bit 3  leave that memfd unsealed (its regions go by messages)
 * Whatever happens, the connection must end without a crash, a leak, a
 * hang or a sanitizer report once the client side closes, and with the
 * end of every DMA transfer reported to the device.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "../../server/vfio_user/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fdev {
	struct vfu_server *s;
	uint64_t addr;
	uint32_t len;
	uint8_t buf[8192];
	int busy;
};

static void xfer_done(void *arg, int err)
{
	struct fdev *d = arg;

	d->busy--;
	vfu_irq_trigger(d->s, 0);
}

static int fbar0_read(void *dev, uint64_t off, void *buf, uint32_t len)
{
	memset(buf, (int)off, len);
	return 0;
}

/* 0x0 addr, 0x8 len, 0x10 in-place write, 0x14 message read, 0x18
 * message write, 0x1c trigger vector (value). */
static int fbar0_write(void *dev, uint64_t off, const void *buf, uint32_t len)
{
	struct fdev *d = dev;
	uint64_t v = 0;
	struct vfu_dma_region *r;
	void *p;

	memcpy(&v, buf, len < 8 ? len : 8);
	switch (off) {
	case 0x0: d->addr = v; break;
	case 0x8: d->len = (uint32_t)v % sizeof(d->buf); break;
	case 0x10:
		if (vfu_dma_get(d->s, d->addr, d->len, VFU_PROT_WRITE, &p, &r) == 0) {
			memset(p, 0x5a, d->len);
			vfu_dma_put(d->s, r);
		}
		break;
	case 0x14:
	case 0x18:
		/* One transfer at a time: the buffer is shared. */
		if (!d->busy && vfu_dma_xfer(d->s, d->addr, d->buf, d->len, off == 0x18,
					     xfer_done, d) == 0)
			d->busy++;
		break;
	case 0x1c: vfu_irq_trigger(d->s, (uint32_t)v); break;
	default: return -EINVAL;
	}
	return 0;
}

static const struct vfu_dev_ops fops = { .bar0_read = fbar0_read, .bar0_write = fbar0_write };

static struct ev_loop *loop;
static struct fdev dev;

static void init(void)
{
	struct vfu_dev_desc desc = { .vendor_id = 0x1b36, .device_id = 0x10,
				     .bar0_size = 0x4000, .nr_vectors = 4, .bar0_mmap_fd = -1 };
	char path[64];

	log_set_level(LOG_ERROR);
	loop = ev_loop_new(EVFLAG_AUTO);
	snprintf(path, sizeof(path), "/tmp/fuzz-vfu-%d.sock", getpid());
	dev.s = vfu_server_create(loop, path, &desc, &fops, &dev);
	if (!dev.s)
		abort();
}

static void send_with_fds(int fd, const uint8_t *b, size_t n, const int *fds, int nr)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)b, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nr)
		vfu_cmsg_put_fds(&mh, u.buf, fds, nr);
	(void)sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":4096}}";
	uint8_t ver[sizeof(struct vfu_hdr) + sizeof(struct vfu_version) + sizeof(json)];
	struct vfu_hdr h = { .msg_id = 0, .cmd = VFU_CMD_VERSION, .size = sizeof(ver) };
	int sv[2], fds[2], nr = 0;
	uint8_t sink[65536];
	size_t off = 0;

	if (!loop)
		init();
	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (!vfu_conn_new(dev.s, sv[0])) {
		close(sv[1]);
		return 0;
	}
	if (data[0] & 2) {
		int fd = memfd_create("fuzz-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

		if (fd >= 0 && (ftruncate(fd, 65536) < 0 || (!(data[0] & 8) &&
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0))) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0)
			fds[nr++] = fd;
	}
	if (data[0] & 4 && (fds[nr] = eventfd(0, EFD_CLOEXEC)) >= 0)
		nr++;
	if (data[0] & 1) {
		memcpy(ver, &h, sizeof(h));
		memset(ver + sizeof(h), 0, sizeof(struct vfu_version));
		memcpy(ver + sizeof(h) + sizeof(struct vfu_version), json, sizeof(json));
		send_with_fds(sv[1], ver, sizeof(ver), NULL, 0);
	}
	data++, size--;
	/* Feed the stream in pieces the server's loop interleaves with its
	 * replies; drain those as a client would, then close our end. */
	while (dev.s->conn) {
		size_t n = size - off < 4096 ? size - off : 4096;

		if (n) {
			ssize_t w;

			if (nr) {
				send_with_fds(sv[1], data + off, n, fds, nr);
				w = (ssize_t)n;
				for (int i = 0; i < nr; i++)
					close(fds[i]);
				nr = 0;
			} else {
				w = send(sv[1], data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			}
			if (w > 0)
				off += (size_t)w;
		} else {
			shutdown(sv[1], SHUT_WR);
		}
		ev_run(loop, EVRUN_NOWAIT);
		while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	for (int i = 0; i < nr; i++)
		close(fds[i]);
	/* The loop pass that dropped the client reported every transfer it
	 * had, each once (dma.c): none may still be waiting. */
	if (dev.busy)
		abort();
	close(sv[1]);
	return 0;
}
