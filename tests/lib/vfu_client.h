/*
 * A small vfio-user client for tests: blocking UNIX socket, one request at
 * a time, fds passed with SCM_RIGHTS. While it waits for a reply it serves
 * the server's DMA_READ/DMA_WRITE requests from the memory the test
 * registered with vfuc_dma_map() (its view of guest RAM).
 */
#ifndef ZNSTGT_VFU_CLIENT_H
#define ZNSTGT_VFU_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio_user_proto.h"

#define VFUC_MAX_MAPS 16
#define VFUC_MAX_FDS  32

struct vfuc_map {
	uint64_t iova, size;
	uint8_t *local;         /* the client's copy of that memory */
};

struct vfu_client {
	int fd;
	uint16_t next_id;
	struct vfuc_map maps[VFUC_MAX_MAPS];
	int nr_maps;
	unsigned dma_served;    /* server DMA_READ/WRITE requests answered */
};

/* Connect (no negotiation). NULL on error. */
struct vfu_client *vfuc_connect(const char *path);
void vfuc_close(struct vfu_client *c);

/* Send one message; cmd/flags as given, size filled in. 0 or -errno. */
int vfuc_send(struct vfu_client *c, uint16_t id, uint16_t cmd, uint32_t flags,
	      const void *body, size_t len, const int *fds, int nr_fds);
/* Send bytes as they are (hostile input). */
int vfuc_send_raw(struct vfu_client *c, const void *buf, size_t len,
		  const int *fds, int nr_fds);
/* Wait for the reply to id, serving server requests meanwhile. The reply
 * body goes to out (cap bytes at most; *out_len gets its real size), a
 * passed fd to *fd (or closed if fd is NULL). 0, the -errno of an error
 * reply, or -ECONNRESET / -EPROTO / -ETIMEDOUT (10 s safety net). */
int vfuc_wait(struct vfu_client *c, uint16_t id, void *out, size_t cap,
	      size_t *out_len, int *fd);
/* vfuc_send + vfuc_wait with a fresh id. */
int vfuc_call(struct vfu_client *c, uint16_t cmd, const void *body, size_t len,
	      const int *fds, int nr_fds, void *out, size_t cap, size_t *out_len, int *fd);

/* Guest RAM of size bytes as QEMU's memory-backend-memfd makes it: a memfd
 * sealed against shrinking and growing (sealed false: left unsealed, as a
 * hostile client or a file backend would give it). The fd, or -errno. */
int vfuc_guest_ram(size_t size, bool sealed);

/* VERSION with json (NULL: what QEMU 11 sends); reply JSON to out. */
int vfuc_negotiate(struct vfu_client *c, const char *json, char *out, size_t cap);
int vfuc_dma_map(struct vfu_client *c, uint64_t iova, uint64_t size, uint32_t flags,
		 int fd, uint64_t offset, void *local);
int vfuc_dma_unmap(struct vfu_client *c, uint64_t iova, uint64_t size, uint32_t flags);
int vfuc_region_read(struct vfu_client *c, uint32_t region, uint64_t off, void *buf, uint32_t len);
int vfuc_region_write(struct vfu_client *c, uint32_t region, uint64_t off,
		      const void *buf, uint32_t len);
int vfuc_cfg_read32(struct vfu_client *c, uint32_t off, uint32_t *v);
int vfuc_cfg_write16(struct vfu_client *c, uint32_t off, uint16_t v);
int vfuc_set_irqs(struct vfu_client *c, uint32_t index, uint32_t flags, uint32_t start,
		  uint32_t count, const int *fds, int nr_fds);
/* DEVICE_GET_REGION_INFO as QEMU asks it: argsz 32 first, then again with
 * the argsz the reply says it needs (when that is more). The reply (up to
 * cap bytes) in out, its fd in *fd (-1: none). 0 or -errno. */
int vfuc_region_info(struct vfu_client *c, uint32_t index, void *out, size_t cap, int *fd);
/* mmap the first sparse-mmap area of region index (vfuc_region_info, the
 * capability chain walked with every offset checked): the mapping, its
 * place in the region in *area. NULL with errno: ENODEV when the region
 * offers no area, EPROTO for a malformed reply. */
void *vfuc_region_mmap(struct vfu_client *c, uint32_t index, struct vfu_sparse_area *area);
/* Serve server requests until evfd is readable (its counter is left
 * alone): 0, or -errno as vfuc_wait. */
int vfuc_serve_until(struct vfu_client *c, int evfd);
/* Did the server close the connection? Waits for EOF (10 s net). */
int vfuc_wait_closed(struct vfu_client *c);

#endif
