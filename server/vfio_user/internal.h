/*
 * vfio-user server internals, shared by the files of server/vfio_user/ and
 * the fuzz target. Everything runs on the server's loop thread.
 */
#ifndef ZNSTGT_VFIO_USER_INTERNAL_H
#define ZNSTGT_VFIO_USER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "vfio_user.h"
#include "vfio_user_proto.h"

/* What we advertise in the VERSION reply. QEMU refuses max_msg_fds > 16. */
#define VFU_MAX_FDS        16
#define VFU_MAX_XFER       (1u << 20)
#define VFU_MAX_DMA_MAPS   1024
#define VFU_PGSIZE         4096u
/* Largest message we accept: a REGION_WRITE of VFU_MAX_XFER bytes. */
#define VFU_MAX_MSG        (sizeof(struct vfu_hdr) + sizeof(struct vfu_region_access) + VFU_MAX_XFER)
/* Output a client may leave unread before it is dropped. */
#define VFU_OUT_MAX        (8u << 20)

#define VFU_CFG_SIZE       4096u
#define VFU_BAR4_SIZE      4096u
#define VFU_PBA_OFFSET     0x800u

/* ---- PCI config space and MSI-X state (pci_config.c) ---- */

struct vfu_pci {
	uint8_t cfg[VFU_CFG_SIZE];
	uint8_t wmask[VFU_CFG_SIZE];    /* bits a write may change */
	uint8_t initial[VFU_CFG_SIZE];  /* the state after reset */
	uint8_t bar4[VFU_BAR4_SIZE];    /* MSI-X table, then PBA at VFU_PBA_OFFSET */
	/* The client wrote a Vector Control since reset: it drives our table
	 * (pci_config.c, vfu_pci_vector_masked). */
	bool table_in_use;
	uint32_t nr_vectors;
	uint64_t bar0_size;
};

void vfu_pci_init(struct vfu_pci *p, const struct vfu_dev_desc *d);
void vfu_pci_reset(struct vfu_pci *p);
/* Caller checked off + len <= VFU_CFG_SIZE. */
void vfu_pci_cfg_read(const struct vfu_pci *p, uint32_t off, void *buf, uint32_t len);
void vfu_pci_cfg_write(struct vfu_pci *p, uint32_t off, const void *buf, uint32_t len);
bool vfu_pci_bus_master(const struct vfu_pci *p);
bool vfu_pci_intx_disabled(const struct vfu_pci *p);
bool vfu_pci_msix_enabled(const struct vfu_pci *p);
bool vfu_pci_msix_fn_masked(const struct vfu_pci *p);
bool vfu_pci_vector_masked(const struct vfu_pci *p, uint32_t v);
bool vfu_pci_pba_test(const struct vfu_pci *p, uint32_t v);
void vfu_pci_pba_set(struct vfu_pci *p, uint32_t v, bool on);
/* BAR4 (MSI-X table + PBA); the PBA is read-only. off + len checked. */
void vfu_pci_bar4_write(struct vfu_pci *p, uint32_t off, const void *buf, uint32_t len);

/* ---- DMA mappings (dma.c) ---- */

struct vfu_dma_region {
	uint64_t iova, size;
	uint32_t prot;          /* VFU_PROT_* */
	void *host;             /* mmap of the client's fd; NULL: no fd */
	uint32_t refs;          /* vfu_dma_get() holds */
	bool dead;              /* out of the table; freed at the last put */
	uint64_t wait_gen;      /* a stalled DMA_UNMAP of client gen waits */
};

struct vfu_dma_table {
	struct vfu_dma_region **r;  /* sorted by iova, no overlaps */
	uint32_t nr, cap;
};

/* ---- server and connection ---- */

struct vfu_out {
	struct vfu_out *next;
	size_t len, off;
	int fd;                 /* sent with the first byte; -1: none */
	uint8_t data[];
};

struct vfu_xfer;

struct vfu_conn {
	struct vfu_server *s;
	int fd;
	ev_io rio, wio;
	bool negotiated;
	bool dead;              /* drop at the end of the current callback */
	bool told_unsealed;     /* logged that a DMA_MAP fd was not sealed */
	/* The message being received: header, then body. */
	uint8_t *in;
	size_t in_len, in_want;
	int in_fds[VFU_MAX_FDS];
	uint32_t nr_in_fds;
	/* Output, bounded by VFU_OUT_MAX. */
	struct vfu_out *out_head, *out_tail;
	size_t out_bytes;
	/* Client capabilities (VERSION). */
	uint32_t client_max_fds;
	uint32_t client_max_xfer;
	/* Server-to-client DMA requests awaiting their replies. */
	uint16_t next_id;
	struct vfu_xfer *xfers;
	/* A DMA_UNMAP waiting for device holds: input paused until answered. */
	uint32_t unmap_waiting;
	struct vfu_hdr unmap_hdr;
	struct vfu_dma_unmap unmap_req;
};

struct vfu_server {
	struct ev_loop *loop;
	struct sockaddr_un addr;
	int listen_fd;
	ev_io lio;
	const struct vfu_dev_ops *ops;
	void *dev;
	struct vfu_dev_desc desc;
	int bar0_mmap_fd;           /* our dup of desc.bar0_mmap_fd */
	struct vfu_pci pci;
	struct vfu_dma_table dma;
	struct vfu_conn *conn;
	uint64_t gen;               /* counts clients, for wait_gen */
	/* DMA transfers ended, their done() not run yet (dma.c): FIFO. */
	struct vfu_xfer *ended, **ended_tail;
	ev_async ended_w;           /* never started: fed when one ends */
	/* Interrupt eventfds, -1 when unassigned. */
	int intx_fd;
	bool intx_masked, intx_pending;
	int msix_fd[VFU_MAX_VECTORS];
};

/* server.c */
struct vfu_conn *vfu_conn_new(struct vfu_server *s, int fd);
void vfu_conn_kill(struct vfu_conn *c);
/* Queue a message (header + body, fd optional, dup'ed). -ENOBUFS drops
 * the client (queue over VFU_OUT_MAX). */
int vfu_send(struct vfu_conn *c, const struct vfu_hdr *h, const void *body,
	     size_t len, int fd);
void vfu_reply_err(struct vfu_conn *c, const struct vfu_hdr *req, int err);
void vfu_reply(struct vfu_conn *c, const struct vfu_hdr *req, const void *body,
	       size_t len, int fd);
/* Pause or resume reading client messages (DMA_UNMAP waiting for holds). */
void vfu_conn_resume(struct vfu_conn *c);

/* dispatch.c: one complete message, body inside c->in (REGION_READ builds
 * its reply in the rest of that buffer); fds are the dispatcher's to close. */
void vfu_dispatch(struct vfu_conn *c, const struct vfu_hdr *h,
		  const uint8_t *body, size_t len, int *fds, uint32_t nr_fds);

/* json_caps.c */
struct vfu_client_caps {
	uint32_t max_msg_fds;
	uint32_t max_data_xfer_size;
	uint64_t pgsizes;
	uint32_t max_dma_maps;
};
/* Parse the VERSION JSON (len bytes, NUL included): 0 or -EINVAL. */
int vfu_caps_parse(const char *json, size_t len, struct vfu_client_caps *out);
/* Our capabilities, NUL-terminated; returns its length with the NUL. */
size_t vfu_caps_format(char *buf, size_t cap);

/* dma.c */
void vfu_dma_init(struct vfu_server *s);
/* The server goes away (its client gone already): the done() of every
 * transfer not reported yet runs now. */
void vfu_dma_fini(struct vfu_server *s);
int vfu_dma_add(struct vfu_server *s, uint64_t iova, uint64_t size,
		uint32_t prot, int fd, uint64_t offset);
/* Remove [iova, iova+size) exactly, or everything if all. Returns the
 * number of removed mappings still held (the unmap must wait for them),
 * or -errno. */
int vfu_dma_remove(struct vfu_server *s, uint64_t iova, uint64_t size, bool all);
void vfu_dma_handle_reply(struct vfu_conn *c, const struct vfu_hdr *h,
			  const uint8_t *body, size_t len);
/* The client is gone: its transfers end with -ECONNRESET (reported from
 * the loop, as every end). */
void vfu_dma_conn_gone(struct vfu_conn *c);

/* irq.c */
void vfu_irq_init(struct vfu_server *s);
void vfu_irq_close_all(struct vfu_server *s);
int vfu_irq_info(struct vfu_server *s, uint32_t index, struct vfu_irq_info *out);
int vfu_irq_set(struct vfu_server *s, const struct vfu_irq_set *req,
		const uint8_t *data, size_t data_len, int *fds, uint32_t nr_fds);
/* Fire what became deliverable (vector unmasked, MSI-X enabled, ...). */
void vfu_irq_flush_pending(struct vfu_server *s);
void vfu_irq_reset(struct vfu_server *s);

#endif
