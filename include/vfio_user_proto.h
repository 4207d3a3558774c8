/*
 * vfio-user wire format (QEMU docs/interop/vfio-user.rst; the structures
 * follow <linux/vfio.h>, which the protocol reuses). Every field is in the
 * host's byte order; every message starts with struct vfu_hdr, whose size
 * field counts the header too. Shared by the server (server/vfio_user/), the
 * test client (tests/lib/vfu_client.c) and the fuzz target.
 */
#ifndef ZNSTGT_VFIO_USER_PROTO_H
#define ZNSTGT_VFIO_USER_PROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Commands (spec "Commands"). */
enum vfu_cmd {
	VFU_CMD_VERSION = 1,
	VFU_CMD_DMA_MAP = 2,
	VFU_CMD_DMA_UNMAP = 3,
	VFU_CMD_DEVICE_GET_INFO = 4,
	VFU_CMD_DEVICE_GET_REGION_INFO = 5,
	VFU_CMD_DEVICE_GET_REGION_IO_FDS = 6,
	VFU_CMD_DEVICE_GET_IRQ_INFO = 7,
	VFU_CMD_DEVICE_SET_IRQS = 8,
	VFU_CMD_REGION_READ = 9,
	VFU_CMD_REGION_WRITE = 10,
	VFU_CMD_DMA_READ = 11,
	VFU_CMD_DMA_WRITE = 12,
	VFU_CMD_DEVICE_RESET = 13,
};

/* Header flags (spec "Header"). */
#define VFU_F_TYPE_MASK  0xfu
#define VFU_F_TYPE_CMD   0x0u
#define VFU_F_TYPE_REPLY 0x1u
#define VFU_F_NO_REPLY   0x10u
#define VFU_F_ERROR      0x20u

struct vfu_hdr {
	uint16_t msg_id;
	uint16_t cmd;
	uint32_t size;          /* whole message, header included */
	uint32_t flags;
	uint32_t error;         /* errno of an error reply */
};

struct vfu_version {
	uint16_t major;
	uint16_t minor;
	/* followed by NUL-terminated JSON */
};

/* DMA_MAP / DMA_UNMAP */
#define VFU_DMA_READ   0x1u
#define VFU_DMA_WRITE  0x2u
#define VFU_DMA_UNMAP_ALL 0x2u

struct vfu_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset;        /* into the passed fd */
	uint64_t addr;          /* IOVA (guest physical address) */
	uint64_t size;
};

struct vfu_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
};

/* DEVICE_GET_INFO */
#define VFU_DEV_FLAGS_RESET 0x1u
#define VFU_DEV_FLAGS_PCI   0x2u

struct vfu_device_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
};

/* Region indexes of a PCI device (VFIO_PCI_*_REGION_INDEX). */
enum {
	VFU_PCI_BAR0 = 0,
	VFU_PCI_BAR4 = 4,
	VFU_PCI_ROM = 6,
	VFU_PCI_CONFIG = 7,
	VFU_PCI_NUM_REGIONS = 9,
};

/* DEVICE_GET_REGION_INFO */
#define VFU_REGION_READ  0x1u
#define VFU_REGION_WRITE 0x2u
#define VFU_REGION_MMAP  0x4u
#define VFU_REGION_CAPS  0x8u

struct vfu_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset;    /* from the start of this struct */
	uint64_t size;
	uint64_t offset;        /* mmap offset in the passed fd */
};

#define VFU_REGION_CAP_SPARSE_MMAP 1

struct vfu_cap_hdr {
	uint16_t id;
	uint16_t version;
	uint32_t next;
};

struct vfu_sparse_area {
	uint64_t offset;
	uint64_t size;
};

struct vfu_cap_sparse {
	struct vfu_cap_hdr hdr;
	uint32_t nr_areas;
	uint32_t reserved;
	/* followed by nr_areas struct vfu_sparse_area */
};

/* IRQ indexes of a PCI device (VFIO_PCI_*_IRQ_INDEX). */
enum {
	VFU_IRQ_INTX = 0,
	VFU_IRQ_MSI = 1,
	VFU_IRQ_MSIX = 2,
	VFU_IRQ_ERR = 3,
	VFU_IRQ_REQ = 4,
	VFU_NUM_IRQS = 5,
};

/* DEVICE_GET_IRQ_INFO flags */
#define VFU_IRQ_INFO_EVENTFD    0x1u
#define VFU_IRQ_INFO_MASKABLE   0x2u
#define VFU_IRQ_INFO_AUTOMASKED 0x4u
#define VFU_IRQ_INFO_NORESIZE   0x8u

struct vfu_irq_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
};

/* DEVICE_SET_IRQS flags: one data type, one action. */
#define VFU_IRQ_DATA_NONE      0x1u
#define VFU_IRQ_DATA_BOOL      0x2u
#define VFU_IRQ_DATA_EVENTFD   0x4u
#define VFU_IRQ_ACTION_MASK    0x8u
#define VFU_IRQ_ACTION_UNMASK  0x10u
#define VFU_IRQ_ACTION_TRIGGER 0x20u
#define VFU_IRQ_DATA_MASK   0x7u
#define VFU_IRQ_ACTION_MASKS 0x38u

struct vfu_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	/* DATA_BOOL: count bytes follow; DATA_EVENTFD: count fds ride along */
};

/* REGION_READ / REGION_WRITE */
struct vfu_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	/* data follows in a write and in a read reply */
};

/* DMA_READ / DMA_WRITE (server to client). count is 64 bits on the wire
 * since the protocol's 2021 change; QEMU 10.1 and later send it so. */
struct vfu_dma_access {
	uint64_t addr;
	uint64_t count;
	/* data follows in a write and in a read reply */
};

/* Attach nr fds (SCM_RIGHTS) to mh, using buf (CMSG_SPACE(nr * sizeof(int))
 * bytes, cmsghdr-aligned) as its control data. */
static inline void vfu_cmsg_put_fds(struct msghdr *mh, void *buf, const int *fds, int nr)
{
	struct cmsghdr *cm;

	memset(buf, 0, CMSG_SPACE(nr * sizeof(int)));
	mh->msg_control = buf;
	mh->msg_controllen = CMSG_SPACE(nr * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nr * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nr * sizeof(int));
}

#endif
