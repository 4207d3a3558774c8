/*
 * vfio-user commands from the client (QEMU docs/interop/vfio-user.rst,
 * "Commands"). Each handler checks the payload size, every offset/count
 * against the region it names, and how many fds came along: fds where none
 * belong are an EINVAL error, and every fd not taken is closed here.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "internal.h"

/* [off, off+count) inside size, count > 0, without overflow. */
static bool in_bounds(uint64_t off, uint64_t count, uint64_t size)
{
	return count && off <= size && count <= size - off;
}

static int do_version(struct vfu_conn *c, const struct vfu_hdr *h,
		      const uint8_t *body, size_t len)
{
	struct vfu_version v;
	struct vfu_client_caps caps;
	uint8_t reply[sizeof(v) + 256];
	size_t n;

	if (c->negotiated)
		return -EINVAL;
	if (len >= sizeof(v))
		memcpy(&v, body, sizeof(v));
	/* We speak 0.0, QEMU's version; a client of another major cannot
	 * talk to us (spec "Version"). */
	if (len < sizeof(v) || v.major != 0 ||
	    vfu_caps_parse((const char *)body + sizeof(v), len - sizeof(v), &caps) < 0) {
		log_warn("vfio-user %s: unusable VERSION", c->s->addr.sun_path);
		vfu_reply_err(c, h, EINVAL);
		vfu_conn_kill(c);
		return 0;
	}
	c->client_max_fds = caps.max_msg_fds;
	c->client_max_xfer = caps.max_data_xfer_size < VFU_MAX_XFER ?
			     caps.max_data_xfer_size : VFU_MAX_XFER;
	c->negotiated = true;
	v.major = v.minor = 0;
	memcpy(reply, &v, sizeof(v));
	n = vfu_caps_format((char *)reply + sizeof(v), sizeof(reply) - sizeof(v));
	vfu_reply(c, h, reply, sizeof(v) + n, -1);
	return 0;
}

static int do_dma_map(struct vfu_conn *c, const struct vfu_hdr *h, const uint8_t *body,
		      size_t len, int *fds, uint32_t nr_fds)
{
	struct vfu_dma_map m;
	uint32_t prot;
	int err;

	if (len != sizeof(m) || nr_fds > 1)
		return -EINVAL;
	memcpy(&m, body, sizeof(m));
	if (m.argsz < sizeof(m) || m.flags & ~(VFU_DMA_READ | VFU_DMA_WRITE))
		return -EINVAL;
	prot = (m.flags & VFU_DMA_READ ? VFU_PROT_READ : 0) |
	       (m.flags & VFU_DMA_WRITE ? VFU_PROT_WRITE : 0);
	err = vfu_dma_add(c->s, m.addr, m.size, prot, nr_fds ? fds[0] : -1, m.offset);
	if (err)
		return err;
	vfu_reply(c, h, NULL, 0, -1);
	return 0;
}

static int do_dma_unmap(struct vfu_conn *c, const struct vfu_hdr *h,
			const uint8_t *body, size_t len)
{
	struct vfu_dma_unmap u;
	bool all;
	int busy;

	if (len != sizeof(u))
		return -EINVAL;
	memcpy(&u, body, sizeof(u));
	if (u.argsz < sizeof(u) || u.flags & ~VFU_DMA_UNMAP_ALL)
		return u.flags & 1 ? -ENOTSUP : -EINVAL;  /* bit 0: dirty bitmap */
	all = u.flags & VFU_DMA_UNMAP_ALL;
	if (all && (u.addr || u.size))
		return -EINVAL;
	busy = vfu_dma_remove(c->s, u.addr, u.size, all);
	if (busy < 0)
		return busy;
	if (busy) {
		/* Answered by the last vfu_dma_put(); input paused till then. */
		c->unmap_waiting = (uint32_t)busy;
		c->unmap_hdr = *h;
		c->unmap_req = u;
		return 0;
	}
	vfu_reply(c, h, &u, sizeof(u), -1);
	return 0;
}

static int do_get_info(struct vfu_conn *c, const struct vfu_hdr *h,
		       const uint8_t *body, size_t len)
{
	struct vfu_device_info i;

	if (len < sizeof(i))
		return -EINVAL;
	memcpy(&i, body, sizeof(i));
	if (i.argsz < sizeof(i))
		return -EINVAL;
	i = (struct vfu_device_info){ .argsz = sizeof(i),
				      .flags = VFU_DEV_FLAGS_RESET | VFU_DEV_FLAGS_PCI,
				      .num_regions = VFU_PCI_NUM_REGIONS,
				      .num_irqs = VFU_NUM_IRQS };
	vfu_reply(c, h, &i, sizeof(i), -1);
	return 0;
}

static int do_region_info(struct vfu_conn *c, const struct vfu_hdr *h,
			  const uint8_t *body, size_t len)
{
	struct vfu_server *s = c->s;
	struct vfu_region_info ri;
	uint8_t reply[sizeof(ri) + sizeof(struct vfu_cap_sparse) + 4 * sizeof(struct vfu_sparse_area)];
	uint32_t argsz;
	size_t n = sizeof(ri);
	int fd = -1;

	if (len < sizeof(ri))
		return -EINVAL;
	memcpy(&ri, body, sizeof(ri));
	argsz = ri.argsz;
	if (argsz < sizeof(ri) || ri.index >= VFU_PCI_NUM_REGIONS)
		return -EINVAL;
	ri = (struct vfu_region_info){ .argsz = sizeof(ri), .index = ri.index };
	switch (ri.index) {
	case VFU_PCI_CONFIG:
		ri.size = VFU_CFG_SIZE;
		break;
	case VFU_PCI_BAR0:
		ri.size = s->desc.bar0_size;
		break;
	case VFU_PCI_BAR4:
		ri.size = VFU_BAR4_SIZE;
		break;
	default:
		break;          /* absent: size 0 */
	}
	if (ri.size)
		ri.flags = VFU_REGION_READ | VFU_REGION_WRITE;
	if (ri.index == VFU_PCI_BAR0 && s->desc.nr_mmap_areas && s->bar0_mmap_fd >= 0) {
		struct vfu_cap_sparse cap = { .hdr = { VFU_REGION_CAP_SPARSE_MMAP, 1, 0 },
					      .nr_areas = s->desc.nr_mmap_areas };
		size_t areas = cap.nr_areas * sizeof(struct vfu_sparse_area);

		ri.flags |= VFU_REGION_MMAP;
		ri.argsz = (uint32_t)(sizeof(ri) + sizeof(cap) + areas);
		/* Caps and the fd only when the client made room for them;
		 * else it retries with argsz (spec "Message sizes"). The CAPS
		 * flag only with the caps: QEMU's client refuses a reply with
		 * CAPS whose cap_offset is not inside it (EINVAL, the device
		 * fails to realize) before its retry on a larger argsz. */
		if (argsz >= ri.argsz) {
			ri.flags |= VFU_REGION_CAPS;
			ri.cap_offset = sizeof(ri);
			ri.offset = s->desc.bar0_mmap_fd_offset;
			memcpy(reply + n, &cap, sizeof(cap));
			n += sizeof(cap);
			memcpy(reply + n, s->desc.mmap_areas, areas);
			n += areas;
			fd = s->bar0_mmap_fd;
		}
	}
	memcpy(reply, &ri, sizeof(ri));
	vfu_reply(c, h, reply, n, fd);
	return 0;
}

static int do_irq_info(struct vfu_conn *c, const struct vfu_hdr *h,
		       const uint8_t *body, size_t len)
{
	struct vfu_irq_info i;
	int err;

	if (len < sizeof(i))
		return -EINVAL;
	memcpy(&i, body, sizeof(i));
	if (i.argsz < sizeof(i))
		return -EINVAL;
	err = vfu_irq_info(c->s, i.index, &i);
	if (err)
		return err;
	i.argsz = sizeof(i);
	vfu_reply(c, h, &i, sizeof(i), -1);
	return 0;
}

static int do_set_irqs(struct vfu_conn *c, const struct vfu_hdr *h, const uint8_t *body,
		       size_t len, int *fds, uint32_t nr_fds)
{
	struct vfu_irq_set req;
	int err;

	if (len < sizeof(req))
		return -EINVAL;
	memcpy(&req, body, sizeof(req));
	if (req.argsz < len)
		return -EINVAL;
	err = vfu_irq_set(c->s, &req, body + sizeof(req), len - sizeof(req), fds, nr_fds);
	if (err)
		return err;
	vfu_reply(c, h, NULL, 0, -1);
	return 0;
}

/* The region's size, or 0 if the client cannot access it. */
static uint64_t region_size(struct vfu_server *s, uint32_t region)
{
	switch (region) {
	case VFU_PCI_CONFIG:
		return VFU_CFG_SIZE;
	case VFU_PCI_BAR0:
		return s->desc.bar0_size;
	case VFU_PCI_BAR4:
		return VFU_BAR4_SIZE;
	default:
		return 0;
	}
}

static int do_region_read(struct vfu_conn *c, const struct vfu_hdr *h,
			  const uint8_t *body, size_t len)
{
	struct vfu_server *s = c->s;
	struct vfu_region_access a;
	uint8_t *reply;
	int err = 0;

	if (len != sizeof(a))
		return -EINVAL;
	memcpy(&a, body, sizeof(a));
	if (a.count > VFU_MAX_XFER || !in_bounds(a.offset, a.count, region_size(s, a.region)))
		return -EINVAL;
	/* The reply buffer is the input buffer's twin: no per-read malloc
	 * of client-chosen size beyond VFU_MAX_XFER. */
	reply = c->in + sizeof(struct vfu_hdr) + sizeof(a);
	if (a.region == VFU_PCI_CONFIG)
		vfu_pci_cfg_read(&s->pci, (uint32_t)a.offset, reply, a.count);
	else if (a.region == VFU_PCI_BAR4)
		memcpy(reply, s->pci.bar4 + a.offset, a.count);
	else
		err = s->ops->bar0_read(s->dev, a.offset, reply, a.count);
	if (err)
		return err;
	memcpy(reply - sizeof(a), &a, sizeof(a));
	vfu_reply(c, h, reply - sizeof(a), sizeof(a) + a.count, -1);
	return 0;
}

static int do_region_write(struct vfu_conn *c, const struct vfu_hdr *h,
			   const uint8_t *body, size_t len)
{
	struct vfu_server *s = c->s;
	struct vfu_region_access a;
	const uint8_t *data = body + sizeof(a);
	int err = 0;

	if (len < sizeof(a))
		return -EINVAL;
	memcpy(&a, body, sizeof(a));
	if (a.count != len - sizeof(a) || !in_bounds(a.offset, a.count, region_size(s, a.region)))
		return -EINVAL;
	if (a.region == VFU_PCI_CONFIG) {
		vfu_pci_cfg_write(&s->pci, (uint32_t)a.offset, data, a.count);
		/* MSI-X enable/unmask or INTx enable may release pending irqs. */
		vfu_irq_flush_pending(s);
	} else if (a.region == VFU_PCI_BAR4) {
		vfu_pci_bar4_write(&s->pci, (uint32_t)a.offset, data, a.count);
		vfu_irq_flush_pending(s);
	} else {
		err = s->ops->bar0_write(s->dev, a.offset, data, a.count);
	}
	if (err)
		return err;
	vfu_reply(c, h, &a, sizeof(a), -1);
	return 0;
}

static int do_reset(struct vfu_conn *c, const struct vfu_hdr *h, size_t len)
{
	struct vfu_server *s = c->s;

	if (len)
		return -EINVAL;
	if (s->ops->reset)
		s->ops->reset(s->dev);
	vfu_pci_reset(&s->pci);
	vfu_irq_reset(s);
	vfu_reply(c, h, NULL, 0, -1);
	return 0;
}

void vfu_dispatch(struct vfu_conn *c, const struct vfu_hdr *h,
		  const uint8_t *body, size_t len, int *fds, uint32_t nr_fds)
{
	uint32_t type = h->flags & VFU_F_TYPE_MASK;
	int err;

	if (type == VFU_F_TYPE_REPLY && !nr_fds) {
		vfu_dma_handle_reply(c, h, body, len);
	} else if (type != VFU_F_TYPE_CMD ||
		   h->flags & ~(VFU_F_TYPE_MASK | VFU_F_NO_REPLY | VFU_F_ERROR)) {
		log_warn("vfio-user %s: bad message type, flags (%#x) or fds",
			 c->s->addr.sun_path, h->flags);
		vfu_conn_kill(c);
	} else if (!c->negotiated && h->cmd != VFU_CMD_VERSION) {
		/* VERSION comes first (spec "Version"). */
		vfu_reply_err(c, h, EINVAL);
		vfu_conn_kill(c);
	} else {
		uint32_t fds_ok = h->cmd == VFU_CMD_DMA_MAP || h->cmd == VFU_CMD_DEVICE_SET_IRQS;

		if (nr_fds && !fds_ok) {
			err = -EINVAL;
		} else {
			switch (h->cmd) {
			case VFU_CMD_VERSION:
				err = do_version(c, h, body, len);
				break;
			case VFU_CMD_DMA_MAP:
				err = do_dma_map(c, h, body, len, fds, nr_fds);
				break;
			case VFU_CMD_DMA_UNMAP:
				err = do_dma_unmap(c, h, body, len);
				break;
			case VFU_CMD_DEVICE_GET_INFO:
				err = do_get_info(c, h, body, len);
				break;
			case VFU_CMD_DEVICE_GET_REGION_INFO:
				err = do_region_info(c, h, body, len);
				break;
			case VFU_CMD_DEVICE_GET_IRQ_INFO:
				err = do_irq_info(c, h, body, len);
				break;
			case VFU_CMD_DEVICE_SET_IRQS:
				err = do_set_irqs(c, h, body, len, fds, nr_fds);
				break;
			case VFU_CMD_REGION_READ:
				err = do_region_read(c, h, body, len);
				break;
			case VFU_CMD_REGION_WRITE:
				err = do_region_write(c, h, body, len);
				break;
			case VFU_CMD_DEVICE_RESET:
				err = do_reset(c, h, len);
				break;
			default:
				err = -ENOSYS;
				break;
			}
		}
		if (err)
			vfu_reply_err(c, h, err);
	}
	for (uint32_t i = 0; i < nr_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}
