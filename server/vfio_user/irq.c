/*
 * Interrupts (spec "DEVICE_GET_IRQ_INFO", "DEVICE_SET_IRQS"): the client
 * hands us one eventfd per MSI-X vector and one for INTx; we signal by
 * writing 1 to it. MSI-X follows PCI Local Bus 3.0, 6.8.3.4: a masked
 * vector (or a function mask) leaves its PBA bit set and fires when
 * unmasked. INTx is automasked after each trigger until the client
 * unmasks it (its EOI), as vfio does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "internal.h"

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* An eventfd write only fails at a counter near 2^64: nothing lost. */
	if (write(fd, &one, sizeof(one)) < 0)
		log_debug("vfio-user: eventfd write: %s", strerror(errno));
}

void vfu_irq_init(struct vfu_server *s)
{
	s->intx_fd = -1;
	for (uint32_t v = 0; v < VFU_MAX_VECTORS; v++)
		s->msix_fd[v] = -1;
}

/* Only eventfds, made non-blocking: a pipe whose reader never reads
 * would otherwise block the loop in signal_fd(). */
static bool usable_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;
	int fl;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	if (strcmp(target, "anon_inode:[eventfd]"))
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

static void set_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

void vfu_irq_close_all(struct vfu_server *s)
{
	set_fd(&s->intx_fd, -1);
	for (uint32_t v = 0; v < s->pci.nr_vectors; v++)
		set_fd(&s->msix_fd[v], -1);
}

void vfu_irq_reset(struct vfu_server *s)
{
	s->intx_masked = false;
	s->intx_pending = false;
}

int vfu_irq_info(struct vfu_server *s, uint32_t index, struct vfu_irq_info *out)
{
	out->index = index;
	switch (index) {
	case VFU_IRQ_INTX:
		out->flags = VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_MASKABLE | VFU_IRQ_INFO_AUTOMASKED;
		out->count = 1;
		break;
	case VFU_IRQ_MSIX:
		out->flags = VFU_IRQ_INFO_EVENTFD | VFU_IRQ_INFO_NORESIZE;
		out->count = s->pci.nr_vectors;
		break;
	case VFU_IRQ_MSI:
	case VFU_IRQ_ERR:
	case VFU_IRQ_REQ:
		out->flags = VFU_IRQ_INFO_EVENTFD;
		out->count = 0;     /* not offered */
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static void msix_fire(struct vfu_server *s, uint32_t v)
{
	if (vfu_pci_msix_fn_masked(&s->pci) || vfu_pci_vector_masked(&s->pci, v) ||
	    s->msix_fd[v] < 0) {
		vfu_pci_pba_set(&s->pci, v, true);
		return;
	}
	vfu_pci_pba_set(&s->pci, v, false);
	signal_fd(s->msix_fd[v]);
}

static void intx_fire(struct vfu_server *s)
{
	if (s->intx_masked || s->intx_fd < 0) {
		s->intx_pending = true;
		return;
	}
	s->intx_pending = false;
	s->intx_masked = true;
	signal_fd(s->intx_fd);
}

void vfu_irq_trigger(struct vfu_server *s, uint32_t vector)
{
	if (vfu_pci_msix_enabled(&s->pci)) {
		if (vector < s->pci.nr_vectors)
			msix_fire(s, vector);
	} else if (!vfu_pci_intx_disabled(&s->pci)) {
		intx_fire(s);
	}
}

void vfu_irq_flush_pending(struct vfu_server *s)
{
	if (vfu_pci_msix_enabled(&s->pci)) {
		for (uint32_t v = 0; v < s->pci.nr_vectors; v++)
			if (vfu_pci_pba_test(&s->pci, v))
				msix_fire(s, v);
	} else if (s->intx_pending && !vfu_pci_intx_disabled(&s->pci)) {
		intx_fire(s);
	}
}

int vfu_irq_set(struct vfu_server *s, const struct vfu_irq_set *req,
		const uint8_t *data, size_t data_len, int *fds, uint32_t nr_fds)
{
	uint32_t dtype = req->flags & VFU_IRQ_DATA_MASK;
	uint32_t action = req->flags & VFU_IRQ_ACTION_MASKS;
	uint32_t nr = req->index == VFU_IRQ_INTX ? 1 :
		      req->index == VFU_IRQ_MSIX ? s->pci.nr_vectors : 0;
	size_t want;

	/* Exactly one data type and one action (vfio_set_irqs_validate...). */
	if (req->flags & ~(VFU_IRQ_DATA_MASK | VFU_IRQ_ACTION_MASKS) ||
	    __builtin_popcount(dtype) != 1 || __builtin_popcount(action) != 1)
		return -EINVAL;
	if (req->index >= VFU_NUM_IRQS)
		return -EINVAL;
	want = dtype == VFU_IRQ_DATA_BOOL ? req->count : 0;
	if (data_len != want)
		return -EINVAL;
	/* DATA_EVENTFD carries one fd per vector, or none: the VFIO fd -1,
	 * "de-assign these vectors". QEMU sends a run of -1s so (it splits an
	 * array into runs of all valid or all -1 fds); it does to enable MSI-X
	 * with no vector in use, and to release vectors the guest masked. */
	if (dtype == VFU_IRQ_DATA_EVENTFD ? nr_fds != req->count && nr_fds != 0 : nr_fds != 0)
		return -EINVAL;
	/* count 0 with DATA_NONE|TRIGGER: disable the whole index. */
	if (req->count == 0) {
		if (dtype != VFU_IRQ_DATA_NONE || action != VFU_IRQ_ACTION_TRIGGER || req->start)
			return -EINVAL;
		if (req->index == VFU_IRQ_INTX)
			set_fd(&s->intx_fd, -1);
		else if (req->index == VFU_IRQ_MSIX)
			for (uint32_t v = 0; v < nr; v++)
				set_fd(&s->msix_fd[v], -1);
		return 0;
	}
	if (req->start >= nr || req->count > nr - req->start)
		return -EINVAL;
	for (uint32_t i = 0; i < nr_fds; i++)
		if (!usable_eventfd(fds[i]))
			return -EINVAL;
	if (action != VFU_IRQ_ACTION_TRIGGER) {
		/* Only INTx is maskable through SET_IRQS (MSI-X masks live in
		 * the table); masking takes no data but NONE or BOOL. */
		if (req->index != VFU_IRQ_INTX || dtype == VFU_IRQ_DATA_EVENTFD)
			return -EINVAL;
		if (dtype == VFU_IRQ_DATA_BOOL && !data[0])
			return 0;
		s->intx_masked = action == VFU_IRQ_ACTION_MASK;
		if (!s->intx_masked)
			vfu_irq_flush_pending(s);
		return 0;
	}
	for (uint32_t i = 0; i < req->count; i++) {
		uint32_t v = req->start + i;

		if (dtype == VFU_IRQ_DATA_EVENTFD) {
			int *slot = req->index == VFU_IRQ_INTX ? &s->intx_fd : &s->msix_fd[v];

			set_fd(slot, nr_fds ? fds[i] : -1);
			if (nr_fds)
				fds[i] = -1;    /* ours now */
		} else if (dtype == VFU_IRQ_DATA_NONE || data[i]) {
			/* A software trigger (loopback). */
			if (req->index == VFU_IRQ_INTX)
				intx_fire(s);
			else
				msix_fire(s, v);
		}
	}
	/* New eventfds may deliver what was left pending. */
	if (dtype == VFU_IRQ_DATA_EVENTFD)
		vfu_irq_flush_pending(s);
	return 0;
}
