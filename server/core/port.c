/*
 * The ports hosts reach the target through, as the discovery controller
 * reports them (NVMe-oF 1.1, 5.3). Transports register theirs when they
 * start listening; the list is short and read only by Get Log Page 70h.
 */
#include <pthread.h>

#include "transport.h"

static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nvme_port *ports_head;
static uint16_t next_portid = 1;

void nvme_port_register(struct nvme_port *p)
{
	struct nvme_port **tail;

	pthread_mutex_lock(&ports_lock);
	p->portid = next_portid++;
	p->next = NULL;
	for (tail = &ports_head; *tail; tail = &(*tail)->next)
		;
	*tail = p;
	pthread_mutex_unlock(&ports_lock);
}

void nvme_port_unregister(struct nvme_port *p)
{
	pthread_mutex_lock(&ports_lock);
	for (struct nvme_port **pp = &ports_head; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	/* Port IDs start at 1 again once every port is gone (a restart of
	 * the listeners, a new test), so that they stay small and stable. */
	if (!ports_head)
		next_portid = 1;
	pthread_mutex_unlock(&ports_lock);
}

void nvme_ports_for_each(void (*fn)(void *arg, const struct nvme_port *p), void *arg)
{
	pthread_mutex_lock(&ports_lock);
	for (const struct nvme_port *p = ports_head; p; p = p->next)
		fn(arg, p);
	pthread_mutex_unlock(&ports_lock);
}
