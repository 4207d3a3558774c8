/*
 * The client's DMA mappings (spec "DMA_MAP", "DMA_UNMAP", "DMA_READ"):
 * a table sorted by IOVA without overlaps; mappings with an fd the kernel
 * keeps from shrinking are mmap'd and reached in place, the others through
 * DMA_READ/DMA_WRITE messages.
 *
 * Why the seal: a load or store into a page of a shared file mapping that
 * is past the file's end raises SIGBUS, which would end the whole target.
 * The size is checked at DMA_MAP, but a client may ftruncate() its file
 * afterwards; only F_SEAL_SHRINK (QEMU's memfd backend sets it by default)
 * makes the check stay true. A file without it is used as if it had come
 * without fd: slower, but the memory stays in the client's process.
 *
 * Unmap while in use: vfu_dma_get() holds count on a mapping. An unmap
 * takes the mapping out of the table at once (no new holds), and if it is
 * held the DMA_UNMAP reply waits, with the client's input paused (commands
 * are processed in order), until the device put its last hold: the spec
 * wants every reference dropped before the reply. The memory stays
 * mapped in our process until then, so a late access never faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "internal.h"

/* First index whose mapping ends above iova. */
static uint32_t lower_bound(const struct vfu_dma_table *t, uint64_t iova)
{
	uint32_t lo = 0, hi = t->nr;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct vfu_dma_region *r = t->r[mid];

		if (r->iova + r->size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void region_free(struct vfu_dma_region *r)
{
	if (r->host)
		munmap(r->host, r->size);
	free(r);
}

/* Once per client: why its memory goes through messages, slower. */
static void tell_unsealed(struct vfu_server *s, uint64_t iova)
{
	if (!s->conn || s->conn->told_unsealed)
		return;
	s->conn->told_unsealed = true;
	log_info("vfio-user %s: DMA region at IOVA %#" PRIx64 " not sealed against shrinking: "
		 "served through DMA messages", s->addr.sun_path, iova);
}

int vfu_dma_add(struct vfu_server *s, uint64_t iova, uint64_t size,
		uint32_t prot, int fd, uint64_t offset)
{
	struct vfu_dma_table *t = &s->dma;
	struct vfu_dma_region *r;
	bool unsealed = false;
	uint32_t i;

	if (!size || iova + size < iova || size % VFU_PGSIZE || iova % VFU_PGSIZE ||
	    !(prot & (VFU_PROT_READ | VFU_PROT_WRITE)) || size > SIZE_MAX)
		return -EINVAL;
	if (fd >= 0) {
		struct stat st;
		/* Seals are only ever added: read before the size, a seal seen
		 * here means the size read next cannot go down any more. */
		int seals = fcntl(fd, F_GET_SEALS);

		/* Only files (memfd, shm, hugetlbfs) and only what they hold:
		 * touching a page past the end of a file raises SIGBUS. */
		if (offset % VFU_PGSIZE || offset + size < offset || fstat(fd, &st) < 0 ||
		    !S_ISREG(st.st_mode) || offset + size > (uint64_t)st.st_size)
			return -EINVAL;
		if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
			unsealed = true;
			fd = -1;        /* the dispatcher closes it */
		}
	}
	i = lower_bound(t, iova);
	if (i < t->nr && t->r[i]->iova < iova + size)
		return -EEXIST;     /* spec: mapping over an existing region */
	if (t->nr >= VFU_MAX_DMA_MAPS)
		return -ENOSPC;
	if (t->nr == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		struct vfu_dma_region **n = realloc(t->r, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->r = n;
		t->cap = cap;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->iova = iova;
	r->size = size;
	r->prot = prot;
	if (fd >= 0) {
		int mprot = (prot & VFU_PROT_READ ? PROT_READ : 0) |
			    (prot & VFU_PROT_WRITE ? PROT_WRITE : 0);
		void *p = mmap(NULL, (size_t)size, mprot, MAP_SHARED, fd, (off_t)offset);

		if (p == MAP_FAILED) {
			int e = errno;

			free(r);
			return -e;
		}
		r->host = p;
	}
	memmove(t->r + i + 1, t->r + i, (t->nr - i) * sizeof(*t->r));
	t->r[i] = r;
	t->nr++;
	if (unsealed)
		tell_unsealed(s, iova);
	return 0;
}

/* Take r (out of the table already) away; true if it is still held. */
static bool retire(struct vfu_server *s, struct vfu_dma_region *r)
{
	if (r->refs) {
		r->dead = true;
		/* Our own hold keeps r alive while the device puts its own. */
		r->refs++;
		if (s->ops->dma_release)
			s->ops->dma_release(s->dev, r->iova, r->size);
		if (--r->refs)
			return true;
	}
	region_free(r);
	return false;
}

int vfu_dma_remove(struct vfu_server *s, uint64_t iova, uint64_t size, bool all)
{
	struct vfu_dma_table *t = &s->dma;
	uint64_t gen = s->conn ? s->gen : 0;
	uint32_t i;

	if (all) {
		struct vfu_dma_region **r = t->r;
		uint32_t nr = t->nr;
		int busy = 0;

		t->r = NULL;
		t->nr = t->cap = 0;
		for (i = 0; i < nr; i++) {
			r[i]->wait_gen = gen;
			busy += retire(s, r[i]);
		}
		free(r);
		return busy;
	}
	i = lower_bound(t, iova);
	if (i < t->nr && t->r[i]->iova == iova && t->r[i]->size == size) {
		struct vfu_dma_region *r = t->r[i];

		memmove(t->r + i, t->r + i + 1, (t->nr - i - 1) * sizeof(*t->r));
		t->nr--;
		r->wait_gen = gen;
		return retire(s, r);
	}
	return -EINVAL;     /* spec: must match a previous map exactly */
}

/* Wholly inside one live mapping allowing prot? */
static int lookup(struct vfu_server *s, uint64_t iova, uint64_t len, int prot,
		  struct vfu_dma_region **out)
{
	struct vfu_dma_table *t = &s->dma;
	uint32_t i;
	struct vfu_dma_region *r;

	if (!vfu_pci_bus_master(&s->pci))
		return -EPERM;
	if (!len || iova + len < iova)
		return -EFAULT;
	i = lower_bound(t, iova);
	if (i >= t->nr)
		return -EFAULT;
	r = t->r[i];
	if (iova < r->iova || iova + len > r->iova + r->size ||
	    (prot & ~(int)r->prot & (VFU_PROT_READ | VFU_PROT_WRITE)))
		return -EFAULT;
	*out = r;
	return 0;
}

int vfu_dma_get(struct vfu_server *s, uint64_t iova, uint64_t len, int prot,
		void **ptr, struct vfu_dma_region **out)
{
	struct vfu_dma_region *r;
	int err = lookup(s, iova, len, prot, &r);

	if (err)
		return err;
	if (!r->host)
		return -ENXIO;
	r->refs++;
	*ptr = (uint8_t *)r->host + (iova - r->iova);
	*out = r;
	return 0;
}

void vfu_dma_put(struct vfu_server *s, struct vfu_dma_region *r)
{
	struct vfu_conn *c = s->conn;
	bool waited;

	if (--r->refs || !r->dead)
		return;
	waited = c && r->wait_gen == s->gen;
	region_free(r);
	/* The last hold of a stalled DMA_UNMAP: answer it, go on reading. */
	if (waited && c->unmap_waiting && !--c->unmap_waiting) {
		vfu_reply(c, &c->unmap_hdr, &c->unmap_req, sizeof(c->unmap_req), -1);
		vfu_conn_resume(c);
	}
}

/* ---- DMA through messages ----
 *
 * A transfer waits on its connection (c->xfers) for the client's reply to
 * its chunk in flight. Once it ends (done, failed, or the client gone) it
 * moves to the server's list of ended transfers, whose done() runs from
 * s->ended_w: a watcher never started, only fed with ev_feed_event(), so
 * it runs in the loop's current pass over pending events. (An idle
 * watcher would wait for a pass with nothing else pending, which a client
 * that keeps sending never leaves.) The list is the server's, as it
 * outlives the connection; vfu_server_destroy() reports what is left on
 * it. So every transfer's done() runs exactly once, and the transfer is
 * freed right after it, whichever of client and server goes first.
 */

struct vfu_xfer {
	struct vfu_xfer *next;
	uint16_t id;            /* of the chunk in flight */
	bool write;
	uint8_t *buf;
	uint64_t iova, len, done, chunk;
	vfu_xfer_done *cb;
	void *arg;
	int err;                /* the result, once ended */
};

static void xfer_unlink(struct vfu_conn *c, struct vfu_xfer *x)
{
	for (struct vfu_xfer **pp = &c->xfers; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			return;
		}
}

/* Run done() of every ended transfer, in the order they ended. done()
 * may start new transfers: they wait on the connection, not here. */
static void report_ended(struct vfu_server *s)
{
	while (s->ended) {
		struct vfu_xfer *x = s->ended;

		s->ended = x->next;
		if (!s->ended)
			s->ended_tail = &s->ended;
		x->cb(x->arg, x->err);
		free(x);
	}
}

static void ended_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	report_ended(w->data);
}

/* Report the end of x from the loop, never from the caller's stack. */
static void xfer_end(struct vfu_server *s, struct vfu_xfer *x, int err)
{
	x->err = err;
	x->next = NULL;
	*s->ended_tail = x;
	s->ended_tail = &x->next;
	ev_feed_event(s->loop, &s->ended_w, EV_CUSTOM);
}

void vfu_dma_init(struct vfu_server *s)
{
	s->ended_tail = &s->ended;
	ev_async_init(&s->ended_w, ended_cb);
	s->ended_w.data = s;
}

void vfu_dma_fini(struct vfu_server *s)
{
	/* s is about to be freed: the loop must not run ended_w later. */
	ev_clear_pending(s->loop, &s->ended_w);
	report_ended(s);
}

static int send_chunk(struct vfu_conn *c, struct vfu_xfer *x)
{
	struct vfu_dma_access a;
	struct vfu_hdr h = { .cmd = x->write ? VFU_CMD_DMA_WRITE : VFU_CMD_DMA_READ,
			     .flags = VFU_F_TYPE_CMD };
	uint8_t *msg;
	int err;

	x->chunk = x->len - x->done;
	if (x->chunk > c->client_max_xfer)
		x->chunk = c->client_max_xfer;
	x->id = h.msg_id = c->next_id++;
	a.addr = x->iova + x->done;
	a.count = x->chunk;
	if (!x->write)
		return vfu_send(c, &h, &a, sizeof(a), -1);
	msg = malloc(sizeof(a) + x->chunk);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, &a, sizeof(a));
	memcpy(msg + sizeof(a), x->buf + x->done, x->chunk);
	err = vfu_send(c, &h, msg, sizeof(a) + x->chunk, -1);
	free(msg);
	return err;
}

int vfu_dma_xfer(struct vfu_server *s, uint64_t iova, void *buf, uint64_t len,
		 int write, vfu_xfer_done *done, void *arg)
{
	struct vfu_conn *c = s->conn;
	struct vfu_dma_region *r;
	struct vfu_xfer *x;
	int err;

	if (!c || c->dead)
		return -ENOTCONN;
	err = lookup(s, iova, len, write ? VFU_PROT_WRITE : VFU_PROT_READ, &r);
	if (err)
		return err;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	*x = (struct vfu_xfer){ .write = write, .buf = buf, .iova = iova,
				.len = len, .cb = done, .arg = arg };
	err = send_chunk(c, x);
	if (err) {
		free(x);
		return err;
	}
	x->next = c->xfers;
	c->xfers = x;
	return 0;
}

void vfu_dma_handle_reply(struct vfu_conn *c, const struct vfu_hdr *h,
			  const uint8_t *body, size_t len)
{
	struct vfu_xfer *x;
	struct vfu_dma_access a;
	int err = 0;

	for (x = c->xfers; x; x = x->next)
		if (x->id == h->msg_id && h->cmd == (x->write ? VFU_CMD_DMA_WRITE : VFU_CMD_DMA_READ))
			break;
	if (!x) {
		log_warn("vfio-user: reply to no request (id %u, command %u)", h->msg_id, h->cmd);
		vfu_conn_kill(c);
		return;
	}
	xfer_unlink(c, x);
	if (h->flags & VFU_F_ERROR) {
		err = h->error > 0 && h->error < 4096 ? -(int)h->error : -EIO;
	} else if (len < sizeof(a) ||
		   len != sizeof(a) + (x->write ? 0 : x->chunk)) {
		err = -EPROTO;
	} else {
		memcpy(&a, body, sizeof(a));
		if (a.addr != x->iova + x->done || a.count != x->chunk)
			err = -EPROTO;
		else if (!x->write)
			memcpy(x->buf + x->done, body + sizeof(a), x->chunk);
	}
	if (!err) {
		x->done += x->chunk;
		if (x->done < x->len) {
			err = send_chunk(c, x);
			if (!err) {
				x->next = c->xfers;
				c->xfers = x;
				return;
			}
		}
	}
	xfer_end(c->s, x, err);
}

void vfu_dma_conn_gone(struct vfu_conn *c)
{
	while (c->xfers) {
		struct vfu_xfer *x = c->xfers;

		c->xfers = x->next;
		xfer_end(c->s, x, -ECONNRESET);
	}
}
