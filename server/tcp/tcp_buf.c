/*
 * Data buffers of one connection: in-capsule data, H2CData payloads and read
 * results land here and are handed to the core as the request's data
 * (req->iov, one piece).
 *
 * Buffers come in power-of-two size classes from 4 KiB to TCP_MDTS_BYTES.
 * A buffer is allocated the first time its class runs dry and afterwards
 * recycled through a per-class free list, so the hot path does not allocate
 * once a connection is warm. At most TCP_BUF_CACHE bytes stay cached per
 * connection; beyond that, freed buffers go back to the allocator. Buffers
 * are page aligned so a backend may use O_DIRECT on them.
 */
#include <stdlib.h>

#include "tcp_conn.h"

#define TCP_BUF_MIN   4096u
#define TCP_BUF_CACHE (4u << 20)

_Static_assert((TCP_BUF_MIN << (TCP_BUF_CLASSES - 1)) == TCP_MDTS_BYTES,
	       "the largest class holds one MDTS transfer");

static uint32_t class_size(uint8_t cls)
{
	return TCP_BUF_MIN << cls;
}

void *tcp_buf_get(struct tcp_conn *c, uint32_t len, uint8_t *cls)
{
	uint8_t k = 0;
	void *p;

	while (k < TCP_BUF_CLASSES && class_size(k) < len)
		k++;
	if (k == TCP_BUF_CLASSES)
		return NULL;
	*cls = k;
	p = c->free_bufs[k];
	if (p) {
		/* A free buffer stores the next free one in its first bytes. */
		c->free_bufs[k] = *(void **)p;
		c->cached_bytes -= class_size(k);
		return p;
	}
	if (posix_memalign(&p, TCP_BUF_MIN, class_size(k)))
		return NULL;
	return p;
}

void tcp_buf_put(struct tcp_conn *c, void *buf, uint8_t cls)
{
	if (c->cached_bytes + class_size(cls) > TCP_BUF_CACHE) {
		free(buf);
		return;
	}
	*(void **)buf = c->free_bufs[cls];
	c->free_bufs[cls] = buf;
	c->cached_bytes += class_size(cls);
}

void tcp_buf_release_all(struct tcp_conn *c)
{
	for (int k = 0; k < TCP_BUF_CLASSES; k++) {
		void *p = c->free_bufs[k];
		while (p) {
			void *next = *(void **)p;
			free(p);
			p = next;
		}
		c->free_bufs[k] = NULL;
	}
	c->cached_bytes = 0;
}
