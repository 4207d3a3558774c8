/*
 * vfio-user server: the lower half of the PCI front end (doc/vfio-user.md).
 *
 * One server = one emulated PCI function behind one UNIX socket, served to
 * one client (a VMM such as QEMU's vfio-user-pci) at a time on the caller's
 * libev loop. The server owns the protocol, PCI config space (with the
 * power management, MSI-X and PCI Express capabilities), the MSI-X table and
 * PBA (BAR4), interrupts and the client's DMA mappings. The device (an NVMe
 * PCIe controller) plugs in through struct vfu_dev_ops: it serves BAR0 and
 * reaches guest memory through the vfu_dma_* calls below.
 *
 * Threading: every call here and every device op runs on the server's loop
 * thread. A pointer from vfu_dma_get() may be used on another thread until
 * vfu_dma_put(), which must be called on the loop thread.
 */
#ifndef ZNSTGT_VFIO_USER_H
#define ZNSTGT_VFIO_USER_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

struct vfu_server;
struct vfu_dma_region;

/* Most MSI-X vectors the server models (table + PBA fit BAR4's 4 KiB). */
#define VFU_MAX_VECTORS 128

struct vfu_dev_ops {
	/* BAR0 access, off + len inside the BAR (checked). 0 or -errno. */
	int (*bar0_read)(void *dev, uint64_t off, void *buf, uint32_t len);
	int (*bar0_write)(void *dev, uint64_t off, const void *buf, uint32_t len);
	/* DEVICE_RESET (function level reset). */
	void (*reset)(void *dev);
	/* A DMA_UNMAP (or the client leaving) hit a mapping the device holds:
	 * drop every hold on [iova, iova+len) soon. The unmap is answered, and
	 * later messages processed, only after the last vfu_dma_put(). Optional. */
	void (*dma_release)(void *dev, uint64_t iova, uint64_t len);
	/* The client left or was dropped (mappings and irq fds already gone);
	 * the device keeps its state for the next client. Optional. */
	void (*detached)(void *dev);
	/* A client connected (before its first message). The device may give
	 * this client a fresh BAR0 mmap fd (vfu_server_set_mmap_fd), so that a
	 * previous client still holding its old fd cannot reach this one's
	 * page. Optional. */
	void (*attached)(void *dev);
};

/* A window of BAR0 the client may mmap (e.g. the doorbell page), backed by
 * fd at fd_offset + area offset. The server dups fd; the caller keeps it. */
struct vfu_mmap_area {
	uint64_t offset;
	uint64_t size;
};

struct vfu_dev_desc {
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint64_t bar0_size;            /* power of two, >= 4096 */
	uint32_t nr_vectors;           /* MSI-X vectors, 1..VFU_MAX_VECTORS */
	int bar0_mmap_fd;              /* -1: none yet (vfu_server_set_mmap_fd) */
	uint64_t bar0_mmap_fd_offset;
	uint32_t nr_mmap_areas;        /* <= 4, page aligned, inside BAR0 */
	struct vfu_mmap_area mmap_areas[4];
};

/* Listen on path (an existing socket file is replaced). NULL on error. */
struct vfu_server *vfu_server_create(struct ev_loop *loop, const char *path,
				     const struct vfu_dev_desc *desc,
				     const struct vfu_dev_ops *ops, void *dev);
/* The fd behind BAR0's mmap areas from now on (dup'ed; the caller keeps
 * fd); -1 takes it away. While there is none, BAR0 is offered wholly
 * trapped (no MMAP flag), so a client never gets MMAP without an fd.
 * 0 or -errno. */
int vfu_server_set_mmap_fd(struct vfu_server *s, int fd);
/* Drop the client, close the socket, remove the socket file. The device
 * must have put all its DMA holds before. A vfu_dma_xfer() not reported
 * yet ends here: its done() runs inside this call (-ECONNRESET if it was
 * still waiting for the client), with s still valid but without client. */
void vfu_server_destroy(struct vfu_server *s);

/* ---- guest memory ---- */

#define VFU_PROT_READ  1
#define VFU_PROT_WRITE 2

/* Host pointer for [iova, iova+len) if wholly inside one mapping made with
 * an fd sealed against shrinking and allowing prot; the mapping stays valid
 * until vfu_dma_put(r). -EPERM: bus mastering is off; -EFAULT: not inside
 * one mapping or prot not allowed; -ENXIO: inside a mapping without fd, or
 * whose file was not sealed, so never mapped (use vfu_dma_xfer). */
int vfu_dma_get(struct vfu_server *s, uint64_t iova, uint64_t len, int prot,
		void **ptr, struct vfu_dma_region **r);
void vfu_dma_put(struct vfu_server *s, struct vfu_dma_region *r);

/* Copy between buf and guest memory with DMA_READ (write = 0: guest to buf)
 * or DMA_WRITE messages to the client, chunked to the client's
 * max_data_xfer_size. done(arg, 0 or -errno) runs exactly once, later on
 * the loop (-ECONNRESET if the client leaves first), or at the latest
 * inside vfu_server_destroy(); never from inside this call. done may start
 * another transfer, but not destroy s. buf must live until done. 0 if
 * started, else -errno (same checks as vfu_dma_get, plus -ENOTCONN). */
typedef void vfu_xfer_done(void *arg, int err);
int vfu_dma_xfer(struct vfu_server *s, uint64_t iova, void *buf, uint64_t len,
		 int write, vfu_xfer_done *done, void *arg);

/* ---- interrupts ---- */

/* Signal MSI-X vector v (or INTx while MSI-X is off): the eventfd is
 * written, or the vector is left pending (PBA) while masked. */
void vfu_irq_trigger(struct vfu_server *s, uint32_t vector);

#endif
