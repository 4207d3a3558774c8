/*
 * vfio-user server: the listening UNIX socket, one client at a time, and the
 * framing of its byte stream (doc/vfio-user.md, "Transport").
 *
 * Receiving: each recvmsg() asks for no more than the rest of the current
 * message (header first, then body), so fds passed with SCM_RIGHTS, which
 * ride on the first byte of the message that carries them, can only be
 * attributed to that message. Sending: replies go through a bounded queue
 * flushed when the socket is writable, so a client that stops reading
 * never blocks the loop; past VFU_OUT_MAX it is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "internal.h"

static void conn_free(struct vfu_conn *c)
{
	struct vfu_server *s = c->s;

	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	close(c->fd);
	for (uint32_t i = 0; i < c->nr_in_fds; i++)
		close(c->in_fds[i]);
	while (c->out_head) {
		struct vfu_out *o = c->out_head;

		c->out_head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	s->conn = NULL;
	/* Client disconnection (spec): forget its memory and irq fds, keep
	 * the device state. Pending DMA transfers fail first. */
	vfu_dma_conn_gone(c);
	vfu_dma_remove(s, 0, 0, true);
	vfu_irq_close_all(s);
	free(c->in);
	free(c);
	log_info("vfio-user %s: client gone", s->addr.sun_path);
	if (s->ops->detached)
		s->ops->detached(s->dev);
}

/* Drop the client at the end of the current callback (a handler or a
 * device op may still be on the stack). */
void vfu_conn_kill(struct vfu_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_feed_event(c->s->loop, &c->rio, EV_READ);
}

static void flush_out(struct vfu_conn *c)
{
	while (c->out_head) {
		struct vfu_out *o = c->out_head;
		struct iovec iov = { o->data + o->off, o->len - o->off };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (o->fd >= 0 && o->off == 0)
			vfu_cmsg_put_fds(&mh, u.buf, &o->fd, 1);
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			vfu_conn_kill(c);
			return;
		}
		o->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (o->fd >= 0) {
			close(o->fd);
			o->fd = -1;
		}
		if (o->off < o->len)
			break;
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		free(o);
	}
	if (c->out_head)
		ev_io_start(c->s->loop, &c->wio);
	else
		ev_io_stop(c->s->loop, &c->wio);
}

int vfu_send(struct vfu_conn *c, const struct vfu_hdr *h, const void *body,
	     size_t len, int fd)
{
	size_t total = sizeof(*h) + len;
	struct vfu_out *o;

	if (c->dead)
		return -ENOTCONN;
	if (c->out_bytes + total > VFU_OUT_MAX) {
		log_warn("vfio-user %s: client does not read its replies, dropping it",
			 c->s->addr.sun_path);
		vfu_conn_kill(c);
		return -ENOBUFS;
	}
	o = malloc(sizeof(*o) + total);
	if (!o) {
		vfu_conn_kill(c);
		return -ENOMEM;
	}
	o->next = NULL;
	o->len = total;
	o->off = 0;
	o->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (fd >= 0 && o->fd < 0) {
		free(o);
		return -errno;
	}
	memcpy(o->data, h, sizeof(*h));
	((struct vfu_hdr *)o->data)->size = (uint32_t)total;
	if (len)
		memcpy(o->data + sizeof(*h), body, len);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += total;
	/* Try at once: most replies fit the socket buffer. */
	if (c->out_head == o)
		flush_out(c);
	return 0;
}

void vfu_reply(struct vfu_conn *c, const struct vfu_hdr *req, const void *body,
	       size_t len, int fd)
{
	struct vfu_hdr h = { .msg_id = req->msg_id, .cmd = req->cmd,
			     .flags = VFU_F_TYPE_REPLY };

	if (req->flags & VFU_F_NO_REPLY)
		return;
	vfu_send(c, &h, body, len, fd);
}

void vfu_reply_err(struct vfu_conn *c, const struct vfu_hdr *req, int err)
{
	struct vfu_hdr h = { .msg_id = req->msg_id, .cmd = req->cmd,
			     .flags = VFU_F_TYPE_REPLY | VFU_F_ERROR,
			     .error = (uint32_t)(err < 0 ? -err : err) };

	log_debug("vfio-user: command %u failed: %s", req->cmd, strerror((int)h.error));
	if (req->flags & VFU_F_NO_REPLY)
		return;
	vfu_send(c, &h, NULL, 0, -1);
}

/* Collect SCM_RIGHTS fds; false if the message carries too many (the
 * kernel closes what did not fit: the count is unknowable, so drop). */
static bool take_fds(struct vfu_conn *c, struct msghdr *mh)
{
	bool ok = !(mh->msg_flags & MSG_CTRUNC);

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int *fds = (int *)CMSG_DATA(cm);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (c->nr_in_fds < VFU_MAX_FDS)
				c->in_fds[c->nr_in_fds++] = fd;
			else {
				close(fd);
				ok = false;
			}
		}
	}
	return ok;
}

/* Read what belongs to the current message. 1: message complete,
 * 0: try later, -1: drop the client. */
static int read_msg(struct vfu_conn *c)
{
	for (;;) {
		struct iovec iov = { c->in + c->in_len, c->in_want - c->in_len };
		union {
			char buf[CMSG_SPACE(VFU_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		if (!take_fds(c, &mh)) {
			log_warn("vfio-user %s: more than %d fds in a message",
				 c->s->addr.sun_path, VFU_MAX_FDS);
			return -1;
		}
		c->in_len += (size_t)n;
		if (c->in_len < c->in_want)
			continue;
		if (c->in_want == sizeof(struct vfu_hdr)) {
			struct vfu_hdr h;

			memcpy(&h, c->in, sizeof(h));
			/* Framing errors cannot be answered: the stream is lost. */
			if (h.size < sizeof(h) || h.size > VFU_MAX_MSG) {
				log_warn("vfio-user %s: bad message size %u",
					 c->s->addr.sun_path, h.size);
				return -1;
			}
			c->in_want = h.size;
			if (c->in_len < c->in_want)
				continue;
		}
		return 1;
	}
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vfu_conn *c = w->data;

	while (!c->dead && !c->unmap_waiting) {
		int r = read_msg(c);
		struct vfu_hdr h;

		if (r < 0)
			c->dead = true;
		if (r <= 0)
			break;
		memcpy(&h, c->in, sizeof(h));
		vfu_dispatch(c, &h, c->in + sizeof(h), h.size - sizeof(h),
			     c->in_fds, c->nr_in_fds);
		/* The dispatcher closed or kept what it used; the rest go. */
		c->nr_in_fds = 0;
		c->in_len = 0;
		c->in_want = sizeof(struct vfu_hdr);
	}
	if (c->dead)
		conn_free(c);
	else if (c->unmap_waiting)
		ev_io_stop(loop, &c->rio);
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vfu_conn *c = w->data;

	flush_out(c);
	if (c->dead)
		conn_free(c);
}

void vfu_conn_resume(struct vfu_conn *c)
{
	ev_io_start(c->s->loop, &c->rio);
	/* Messages may already sit in the socket: look now, from the loop. */
	ev_feed_event(c->s->loop, &c->rio, EV_READ);
}

struct vfu_conn *vfu_conn_new(struct vfu_server *s, int fd)
{
	struct vfu_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->in = malloc(VFU_MAX_MSG);
	if (!c || !c->in) {
		if (c)
			free(c);
		close(fd);
		return NULL;
	}
	c->s = s;
	c->fd = fd;
	s->gen++;
	c->in_want = sizeof(struct vfu_hdr);
	c->client_max_fds = 1;          /* spec defaults until VERSION */
	c->client_max_xfer = VFU_MAX_XFER;
	ev_io_init(&c->rio, rio_cb, fd, EV_READ);
	ev_io_init(&c->wio, wio_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(s->loop, &c->rio);
	s->conn = c;
	if (s->ops->attached)
		s->ops->attached(s->dev);
	return c;
}

static void lio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vfu_server *s = w->data;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->conn) {
		/* One VM per controller: a second client is refused. */
		log_warn("vfio-user %s: refusing a second client", s->addr.sun_path);
		close(fd);
		return;
	}
	if (vfu_conn_new(s, fd))
		log_info("vfio-user %s: client connected", s->addr.sun_path);
}

struct vfu_server *vfu_server_create(struct ev_loop *loop, const char *path,
				     const struct vfu_dev_desc *desc,
				     const struct vfu_dev_ops *ops, void *dev)
{
	struct vfu_server *s;
	struct stat st;

	if (!path || strlen(path) >= sizeof(s->addr.sun_path) || !desc || !ops ||
	    !ops->bar0_read || !ops->bar0_write ||
	    desc->bar0_size < 4096 || (desc->bar0_size & (desc->bar0_size - 1)) ||
	    desc->nr_vectors < 1 || desc->nr_vectors > VFU_MAX_VECTORS ||
	    desc->nr_mmap_areas > 4) {
		errno = EINVAL;
		return NULL;
	}
	for (uint32_t i = 0; i < desc->nr_mmap_areas; i++) {
		const struct vfu_mmap_area *a = &desc->mmap_areas[i];

		if (!a->size || (a->offset | a->size) % VFU_PGSIZE ||
		    a->offset > desc->bar0_size || a->size > desc->bar0_size - a->offset) {
			errno = EINVAL;
			return NULL;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->ops = ops;
	s->dev = dev;
	s->desc = *desc;
	s->bar0_mmap_fd = -1;
	s->addr.sun_family = AF_UNIX;
	strcpy(s->addr.sun_path, path);
	vfu_pci_init(&s->pci, desc);
	vfu_irq_init(s);
	vfu_dma_init(s);
	if (desc->nr_mmap_areas && desc->bar0_mmap_fd >= 0 &&
	    (s->bar0_mmap_fd = fcntl(desc->bar0_mmap_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		goto fail;
	/* Replace a stale socket file (a previous run killed), nothing else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		goto fail;
	if (bind(s->listen_fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0 ||
	    listen(s->listen_fd, 4) < 0) {
		int e = errno;

		log_error("vfio-user %s: %s", path, strerror(e));
		close(s->listen_fd);
		errno = e;
		goto fail;
	}
	ev_io_init(&s->lio, lio_cb, s->listen_fd, EV_READ);
	s->lio.data = s;
	ev_io_start(loop, &s->lio);
	return s;
fail:
	if (s->bar0_mmap_fd >= 0)
		close(s->bar0_mmap_fd);
	free(s);
	return NULL;
}

int vfu_server_set_mmap_fd(struct vfu_server *s, int fd)
{
	int dup = -1;

	if (fd >= 0 && (dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	if (s->bar0_mmap_fd >= 0)
		close(s->bar0_mmap_fd);
	s->bar0_mmap_fd = dup;
	return 0;
}

void vfu_server_destroy(struct vfu_server *s)
{
	if (!s)
		return;
	if (s->conn)
		conn_free(s->conn);
	vfu_dma_fini(s);
	ev_io_stop(s->loop, &s->lio);
	close(s->listen_fd);
	unlink(s->addr.sun_path);
	if (s->bar0_mmap_fd >= 0)
		close(s->bar0_mmap_fd);
	free(s->dma.r);
	free(s);
}
