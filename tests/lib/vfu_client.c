/*
 * Test client for the vfio-user server (see vfu_client.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vfu_client.h"

#define SAFETY_MS 10000

static const char qemu_json[] =
	"{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, \"max_dma_maps\": 65535, "
	"\"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": 268435456, "
	"\"pgsize\": 4096}, \"write_multiple\": true}}";

int vfuc_guest_ram(size_t size, bool sealed)
{
	int fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int err;

	if (fd < 0)
		return -errno;
	/* F_SEAL_SEAL too, as QEMU does: nobody changes the seals later. */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

struct vfu_client *vfuc_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct vfu_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	/* A safety net for a server that stops reading: fail, never hang. */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ SAFETY_MS / 1000, 0 },
		   sizeof(struct timeval));
	c->next_id = 1;
	return c;
}

void vfuc_close(struct vfu_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

int vfuc_send_raw(struct vfu_client *c, const void *buf, size_t len,
		  const int *fds, int nr_fds)
{
	union {
		char b[CMSG_SPACE(VFUC_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	size_t off = 0;

	if (nr_fds > VFUC_MAX_FDS)
		return -EINVAL;
	while (off < len || (off == 0 && len == 0)) {
		struct iovec iov = { (char *)buf + off, len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (off == 0 && nr_fds)
			vfu_cmsg_put_fds(&mh, u.b, fds, nr_fds);
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (len == 0)
			break;
		off += (size_t)n;
	}
	return 0;
}

int vfuc_send(struct vfu_client *c, uint16_t id, uint16_t cmd, uint32_t flags,
	      const void *body, size_t len, const int *fds, int nr_fds)
{
	struct vfu_hdr h = { .msg_id = id, .cmd = cmd, .size = (uint32_t)(sizeof(h) + len),
			     .flags = flags };
	uint8_t *m = malloc(sizeof(h) + len);
	int err;

	if (!m)
		return -ENOMEM;
	memcpy(m, &h, sizeof(h));
	if (len)
		memcpy(m + sizeof(h), body, len);
	err = vfuc_send_raw(c, m, sizeof(h) + len, fds, nr_fds);
	free(m);
	return err;
}

static int wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, SAFETY_MS);

	return n < 0 ? -errno : n == 0 ? -ETIMEDOUT : 0;
}

static int read_full(struct vfu_client *c, void *buf, size_t len, int *fds, int *nr_fds)
{
	size_t off = 0;

	while (off < len) {
		union {
			char b[CMSG_SPACE(VFUC_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { (char *)buf + off, len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = u.b, .msg_controllen = sizeof(u.b) };
		ssize_t n;
		int err = wait_readable(c->fd);

		if (err)
			return err;
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			int nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < nfd; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (*nr_fds < VFUC_MAX_FDS)
					fds[(*nr_fds)++] = fd;
				else
					close(fd);
			}
		}
		off += (size_t)n;
	}
	return 0;
}

static struct vfuc_map *find_map(struct vfu_client *c, uint64_t addr, uint64_t len)
{
	for (int i = 0; i < c->nr_maps; i++) {
		struct vfuc_map *m = &c->maps[i];

		if (addr >= m->iova && len <= m->size && addr - m->iova <= m->size - len)
			return m;
	}
	return NULL;
}

/* Answer a DMA_READ/DMA_WRITE from the server as QEMU does. */
static int serve(struct vfu_client *c, const struct vfu_hdr *h, uint8_t *body, size_t len)
{
	struct vfu_dma_access a;
	struct vfuc_map *m;
	uint8_t *reply;
	int err;

	if (len < sizeof(a))
		return -EPROTO;
	memcpy(&a, body, sizeof(a));
	m = find_map(c, a.addr, a.count);
	if (!m || (h->cmd == VFU_CMD_DMA_WRITE && len != sizeof(a) + a.count) ||
	    (h->cmd == VFU_CMD_DMA_READ && len != sizeof(a)) || !m->local)
		return vfuc_send(c, h->msg_id, h->cmd, VFU_F_TYPE_REPLY | VFU_F_ERROR,
				 NULL, 0, NULL, 0);
	c->dma_served++;
	if (h->cmd == VFU_CMD_DMA_WRITE) {
		memcpy(m->local + (a.addr - m->iova), body + sizeof(a), a.count);
		return vfuc_send(c, h->msg_id, h->cmd, VFU_F_TYPE_REPLY, &a, sizeof(a), NULL, 0);
	}
	reply = malloc(sizeof(a) + a.count);
	if (!reply)
		return -ENOMEM;
	memcpy(reply, &a, sizeof(a));
	memcpy(reply + sizeof(a), m->local + (a.addr - m->iova), a.count);
	err = vfuc_send(c, h->msg_id, h->cmd, VFU_F_TYPE_REPLY, reply, sizeof(a) + a.count, NULL, 0);
	free(reply);
	return err;
}

/* Receive one message; a server request is served (returns 1), a reply
 * returned (0) with its header, body (malloc'd) and fds. */
static int recv_one(struct vfu_client *c, struct vfu_hdr *h, uint8_t **body,
		    int *fds, int *nr_fds)
{
	int err;

	*nr_fds = 0;
	*body = NULL;
	err = read_full(c, h, sizeof(*h), fds, nr_fds);
	if (err)
		return err;
	if (h->size < sizeof(*h) || h->size > (64u << 20))
		return -EPROTO;
	*body = malloc(h->size - sizeof(*h) + 1);
	if (!*body)
		return -ENOMEM;
	err = read_full(c, *body, h->size - sizeof(*h), fds, nr_fds);
	if (err)
		return err;
	if ((h->flags & VFU_F_TYPE_MASK) == VFU_F_TYPE_CMD) {
		err = serve(c, h, *body, h->size - sizeof(*h));
		for (int i = 0; i < *nr_fds; i++)
			close(fds[i]);
		free(*body);
		*body = NULL;
		return err ? err : 1;
	}
	return 0;
}

int vfuc_wait(struct vfu_client *c, uint16_t id, void *out, size_t cap,
	      size_t *out_len, int *fd)
{
	for (;;) {
		struct vfu_hdr h;
		uint8_t *body;
		int fds[VFUC_MAX_FDS], nr_fds, r = recv_one(c, &h, &body, fds, &nr_fds);
		size_t len;

		if (r == 1)
			continue;
		if (r < 0) {
			free(body);
			return r;
		}
		len = h.size - sizeof(h);
		if (h.msg_id != id) {
			r = -EPROTO;
		} else if (h.flags & VFU_F_ERROR) {
			r = h.error ? -(int)h.error : -EIO;
		} else {
			if (out)
				memcpy(out, body, len < cap ? len : cap);
			if (out_len)
				*out_len = len;
		}
		for (int i = 0; i < nr_fds; i++) {
			if (fd && i == 0 && !r)
				*fd = fds[0];
			else
				close(fds[i]);
		}
		free(body);
		return r;
	}
}

int vfuc_call(struct vfu_client *c, uint16_t cmd, const void *body, size_t len,
	      const int *fds, int nr_fds, void *out, size_t cap, size_t *out_len, int *fd)
{
	uint16_t id = c->next_id++;
	int err = vfuc_send(c, id, cmd, VFU_F_TYPE_CMD, body, len, fds, nr_fds);

	return err ? err : vfuc_wait(c, id, out, cap, out_len, fd);
}

int vfuc_negotiate(struct vfu_client *c, const char *json, char *out, size_t cap)
{
	size_t jl;
	uint8_t *m, reply[512];
	size_t rlen = 0;
	struct vfu_version v = { 0, 0 };
	int err;

	json = json ? json : qemu_json;
	jl = strlen(json) + 1;
	m = malloc(sizeof(v) + jl);
	if (!m)
		return -ENOMEM;
	memcpy(m, &v, sizeof(v));
	memcpy(m + sizeof(v), json, jl);
	err = vfuc_call(c, VFU_CMD_VERSION, m, sizeof(v) + jl, NULL, 0, reply,
			sizeof(reply) - 1, &rlen, NULL);
	free(m);
	if (err)
		return err;
	if (rlen < sizeof(v) + 1 || rlen > sizeof(reply) - 1 || reply[rlen - 1])
		return -EPROTO;
	memcpy(&v, reply, sizeof(v));
	if (v.major || v.minor)
		return -EPROTO;
	if (out) {
		strncpy(out, (char *)reply + sizeof(v), cap - 1);
		out[cap - 1] = 0;
	}
	return 0;
}

int vfuc_region_info(struct vfu_client *c, uint32_t index, void *out, size_t cap, int *fd)
{
	struct vfu_region_info ri = { .argsz = sizeof(ri), .index = index };
	int err;

	*fd = -1;
	if (cap < sizeof(ri))
		return -EINVAL;
	err = vfuc_call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, out, cap,
			NULL, fd);
	if (err)
		return err;
	memcpy(&ri, out, sizeof(ri));
	if (ri.argsz <= sizeof(ri))
		return 0;
	if (ri.argsz > cap)
		return -E2BIG;
	if (*fd >= 0) { /* as QEMU: the fd of a too-short reply is dropped */
		close(*fd);
		*fd = -1;
	}
	ri = (struct vfu_region_info){ .argsz = ri.argsz, .index = index };
	return vfuc_call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, out, cap,
			 NULL, fd);
}

void *vfuc_region_mmap(struct vfu_client *c, uint32_t index, struct vfu_sparse_area *area)
{
	uint8_t buf[256];
	struct vfu_region_info ri;
	struct vfu_cap_hdr h;
	struct vfu_cap_sparse cap;
	uint32_t off;
	void *m;
	int fd, err = vfuc_region_info(c, index, buf, sizeof(buf), &fd);

	if (err) {
		errno = -err;
		return NULL;
	}
	memcpy(&ri, buf, sizeof(ri));
	err = ENODEV;
	if (!(ri.flags & VFU_REGION_MMAP) || !(ri.flags & VFU_REGION_CAPS) || fd < 0)
		goto out;
	err = EPROTO;
	/* The chain: each header inside the reply, offsets moving forward. */
	for (off = ri.cap_offset; off; off = h.next) {
		if (off < sizeof(ri) || off > ri.argsz || ri.argsz - off < sizeof(cap) ||
		    ri.argsz > sizeof(buf))
			goto out;
		memcpy(&h, buf + off, sizeof(h));
		if (h.id == VFU_REGION_CAP_SPARSE_MMAP)
			break;
		if (h.next && h.next <= off)
			goto out;
	}
	if (!off)
		goto out;
	memcpy(&cap, buf + off, sizeof(cap));
	if (!cap.nr_areas || ri.argsz - off - sizeof(cap) < sizeof(*area))
		goto out;
	memcpy(area, buf + off + sizeof(cap), sizeof(*area));
	if (!area->size || area->offset > ri.size || area->size > ri.size - area->offset)
		goto out;
	m = mmap(NULL, area->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)(ri.offset + area->offset));
	if (m == MAP_FAILED) {
		err = errno;
		goto out;
	}
	close(fd);
	return m;
out:
	if (fd >= 0)
		close(fd);
	errno = err;
	return NULL;
}

int vfuc_dma_map(struct vfu_client *c, uint64_t iova, uint64_t size, uint32_t flags,
		 int fd, uint64_t offset, void *local)
{
	struct vfu_dma_map m = { sizeof(m), flags, offset, iova, size };
	int err = vfuc_call(c, VFU_CMD_DMA_MAP, &m, sizeof(m), &fd, fd >= 0, NULL, 0, NULL, NULL);

	if (!err && c->nr_maps < VFUC_MAX_MAPS)
		c->maps[c->nr_maps++] = (struct vfuc_map){ iova, size, local };
	return err;
}

int vfuc_dma_unmap(struct vfu_client *c, uint64_t iova, uint64_t size, uint32_t flags)
{
	struct vfu_dma_unmap u = { sizeof(u), flags, iova, size };
	int err = vfuc_call(c, VFU_CMD_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL, 0, NULL, NULL);

	for (int i = 0; !err && i < c->nr_maps; i++)
		if ((c->maps[i].iova == iova && c->maps[i].size == size) ||
		    (flags & VFU_DMA_UNMAP_ALL))
			c->maps[i--] = c->maps[--c->nr_maps];
	return err;
}

int vfuc_region_read(struct vfu_client *c, uint32_t region, uint64_t off, void *buf, uint32_t len)
{
	struct vfu_region_access a = { off, region, len };
	uint8_t *reply = malloc(sizeof(a) + len);
	size_t rlen = 0;
	int err;

	if (!reply)
		return -ENOMEM;
	err = vfuc_call(c, VFU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, reply,
			sizeof(a) + len, &rlen, NULL);
	if (!err && rlen != sizeof(a) + len)
		err = -EPROTO;
	if (!err)
		memcpy(buf, reply + sizeof(a), len);
	free(reply);
	return err;
}

int vfuc_region_write(struct vfu_client *c, uint32_t region, uint64_t off,
		      const void *buf, uint32_t len)
{
	struct vfu_region_access a = { off, region, len };
	uint8_t *m = malloc(sizeof(a) + len);
	int err;

	if (!m)
		return -ENOMEM;
	memcpy(m, &a, sizeof(a));
	memcpy(m + sizeof(a), buf, len);
	err = vfuc_call(c, VFU_CMD_REGION_WRITE, m, sizeof(a) + len, NULL, 0, NULL, 0, NULL, NULL);
	free(m);
	return err;
}

int vfuc_cfg_read32(struct vfu_client *c, uint32_t off, uint32_t *v)
{
	return vfuc_region_read(c, VFU_PCI_CONFIG, off, v, 4);
}

int vfuc_cfg_write16(struct vfu_client *c, uint32_t off, uint16_t v)
{
	return vfuc_region_write(c, VFU_PCI_CONFIG, off, &v, 2);
}

int vfuc_set_irqs(struct vfu_client *c, uint32_t index, uint32_t flags, uint32_t start,
		  uint32_t count, const int *fds, int nr_fds)
{
	struct vfu_irq_set s = { sizeof(s), flags, index, start, count };

	return vfuc_call(c, VFU_CMD_DEVICE_SET_IRQS, &s, sizeof(s), fds, nr_fds,
			 NULL, 0, NULL, NULL);
}

int vfuc_serve_until(struct vfu_client *c, int evfd)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = evfd, .events = POLLIN },
				       { .fd = c->fd, .events = POLLIN } };
		int n = poll(p, 2, SAFETY_MS);
		struct vfu_hdr h;
		uint8_t *body;
		int fds[VFUC_MAX_FDS], nr_fds;

		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (p[0].revents & POLLIN)
			return 0;
		n = recv_one(c, &h, &body, fds, &nr_fds);
		if (n == 0) {           /* a reply nobody waits for */
			for (int i = 0; i < nr_fds; i++)
				close(fds[i]);
			free(body);
			return -EPROTO;
		}
		if (n < 0) {
			free(body);
			return n;
		}
	}
}

int vfuc_wait_closed(struct vfu_client *c)
{
	char buf[4096];

	for (;;) {
		int err = wait_readable(c->fd);
		ssize_t n;

		if (err)
			return err;
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}
