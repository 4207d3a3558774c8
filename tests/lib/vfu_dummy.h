/*
 * A dummy PCI device behind the vfio-user server, for its tests: a small
 * register file in BAR0 and a "DMA engine" that copies guest memory when
 * its doorbell is written, then signals an MSI-X vector. It runs the
 * server on its own thread and libev loop.
 *
 * BAR0 (16 KiB): 0x00 SRC (u64), 0x08 DST (u64), 0x10 LEN, 0x14 VECTOR,
 * 0x18 STATUS (0 or the errno of the last copy), 0x1c HOLD (1: hold
 * [SRC, SRC+LEN) with vfu_dma_get, 0: put it), 0x20 SHADOW (reads the
 * first u32 of the mmap-able doorbell page), 0x1000 DOORBELL.
 */
#ifndef ZNSTGT_VFU_DUMMY_H
#define ZNSTGT_VFU_DUMMY_H

#include <stdbool.h>
#include <stdint.h>

#define DUMMY_SRC      0x00
#define DUMMY_DST      0x08
#define DUMMY_LEN      0x10
#define DUMMY_VECTOR   0x14
#define DUMMY_STATUS   0x18
#define DUMMY_HOLD     0x1c
#define DUMMY_SHADOW   0x20
#define DUMMY_DOORBELL 0x1000
#define DUMMY_BAR0     0x4000
#define DUMMY_VECTORS  4
#define DUMMY_VENDOR   0x1b36
#define DUMMY_DEVICE   0x0010

struct vfu_dummy {
	char path[108];
	/* Written (eventfd) by the device thread, read by the test: */
	int release_req_fd;     /* dma_release was called */
	int detached_fd;        /* the client went away */
	int release_fd;         /* test -> device: put the HOLD now */
	unsigned resets;        /* DEVICE_RESET count (read after a reply) */
	bool mmap_doorbell;
	struct dummy_priv *priv;
};

/* Start a server on a fresh socket path. mmap_doorbell: BAR0's doorbell
 * page is offered as a sparse mmap area. NULL on error. */
struct vfu_dummy *vfu_dummy_start(bool mmap_doorbell);
/* Stop the server (socket file removed) and free. 0, or -EBUSY if a copy
 * by DMA messages was still going: the server never reported the end of
 * its transfer (done() runs at the latest inside vfu_server_destroy). */
int vfu_dummy_stop(struct vfu_dummy *d);

/* What most tests start from: a dummy device, a client that negotiated
 * as QEMU does, and guest RAM (a memfd, mapped here too). */
struct vfu_fixture {
	struct vfu_dummy *d;
	struct vfu_client *c;
	int ram_fd;
	uint8_t *ram;
	size_t ram_size;
};

struct vfu_fixture *vfu_fixture_new(bool mmap_doorbell, size_t ram_size);
/* Stop the device (the client still connected), then close the client:
 * vfu_dummy_stop's result. */
int vfu_fixture_free(struct vfu_fixture *f);

/* Wait for an eventfd (10 s safety net) and read it: its count, 0 if
 * nothing came. */
uint64_t vfu_efd_wait(int efd);

#endif
