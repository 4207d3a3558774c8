/*
 * PCI configuration space of the emulated NVMe controller, and its MSI-X
 * table and PBA (doc/vfio-user.md, "PCI function").
 *
 * Every byte has a write mask: a write changes only the writable bits, so
 * BAR sizing (all-ones written, the size read back as the address bits that
 * stuck) behaves as on real hardware without special cases. Layout:
 *   0x00  type 0 header, class 01/08/02 (NVM Express, PCI Code and ID
 *         Assignment spec 1.x, "Mass storage"), interrupt pin A
 *   0x10  BAR0/1: 64-bit non-prefetchable memory, NVMe registers and
 *         doorbells (NVMe over PCIe 1.x, 3.x: MLBAR/MUBAR)
 *   0x20  BAR4: 32-bit memory, 4 KiB: MSI-X table at 0, PBA at 0x800
 *   0x40  Power Management capability (PCI PM 1.2), version 3, D0/D3hot
 *   0x50  MSI-X capability (PCI Local Bus 3.0, 6.8.2)
 *   0x60  PCI Express capability v2, endpoint (PCIe Base 4.0, 7.5.3)
 *  0x100  extended space: no extended capabilities (header reads 0)
 */
#include <string.h>

#include "internal.h"

#define CAP_PM     0x40
#define CAP_MSIX   0x50
#define CAP_PCIE   0x60

#define PCI_COMMAND        0x04
#define PCI_CMD_MEM        0x0002
#define PCI_CMD_MASTER     0x0004
#define PCI_CMD_INTX_OFF   0x0400
#define MSIX_CTRL          (CAP_MSIX + 2)
#define MSIX_ENABLE        0x8000
#define MSIX_FN_MASK       0x4000

static void put8(struct vfu_pci *p, unsigned off, uint8_t v, uint8_t w)
{
	p->cfg[off] = v;
	p->wmask[off] = w;
}

static void put16(struct vfu_pci *p, unsigned off, uint16_t v, uint16_t w)
{
	put8(p, off, (uint8_t)v, (uint8_t)w);
	put8(p, off + 1, (uint8_t)(v >> 8), (uint8_t)(w >> 8));
}

static void put32(struct vfu_pci *p, unsigned off, uint32_t v, uint32_t w)
{
	put16(p, off, (uint16_t)v, (uint16_t)w);
	put16(p, off + 2, (uint16_t)(v >> 16), (uint16_t)(w >> 16));
}

static uint16_t get16(const uint8_t *b, unsigned off)
{
	return (uint16_t)(b[off] | b[off + 1] << 8);
}

void vfu_pci_init(struct vfu_pci *p, const struct vfu_dev_desc *d)
{
	memset(p, 0, sizeof(*p));
	p->nr_vectors = d->nr_vectors;
	p->bar0_size = d->bar0_size;
	put16(p, 0x00, d->vendor_id, 0);
	put16(p, 0x02, d->device_id, 0);
	/* Command: memory space, bus master, parity, SERR#, INTx disable. */
	put16(p, PCI_COMMAND, 0, PCI_CMD_MEM | PCI_CMD_MASTER | 0x0040 | 0x0100 | PCI_CMD_INTX_OFF);
	put16(p, 0x06, 0x0010, 0);               /* status: capabilities list */
	put8(p, 0x08, d->revision, 0);
	put8(p, 0x09, 0x02, 0);                   /* prog-if: NVM Express */
	put8(p, 0x0a, 0x08, 0);                   /* subclass: non-volatile memory */
	put8(p, 0x0b, 0x01, 0);                   /* class: mass storage */
	put8(p, 0x0c, 0, 0xff);                   /* cache line size */
	/* BAR0: 64-bit memory (type 10b); address bits below the size stay 0. */
	put32(p, 0x10, 0x4, (uint32_t)~(d->bar0_size - 1) & 0xfffffff0u);
	put32(p, 0x14, 0, d->bar0_size > 0x80000000ull ?
	      (uint32_t)(~(d->bar0_size - 1) >> 32) : 0xffffffffu);
	put32(p, 0x20, 0, (uint32_t)~(VFU_BAR4_SIZE - 1) & 0xfffffff0u);
	put16(p, 0x2c, d->subsys_vendor_id, 0);
	put16(p, 0x2e, d->subsys_id, 0);
	put8(p, 0x34, CAP_PM, 0);
	put8(p, 0x3c, 0, 0xff);                   /* interrupt line */
	put8(p, 0x3d, 1, 0);                      /* interrupt pin A */

	put8(p, CAP_PM, 0x01, 0);
	put8(p, CAP_PM + 1, CAP_MSIX, 0);
	put16(p, CAP_PM + 2, 0x0003, 0);          /* PMC: version 3 */
	/* PMCSR: power state writable, No_Soft_Reset set (state kept in D3hot). */
	put16(p, CAP_PM + 4, 0x0008, 0x0003);

	put8(p, CAP_MSIX, 0x11, 0);
	put8(p, CAP_MSIX + 1, CAP_PCIE, 0);
	put16(p, MSIX_CTRL, (uint16_t)(d->nr_vectors - 1), MSIX_ENABLE | MSIX_FN_MASK);
	put32(p, CAP_MSIX + 4, 0x0 | 4, 0);       /* table: BAR4 offset 0 */
	put32(p, CAP_MSIX + 8, VFU_PBA_OFFSET | 4, 0);

	put8(p, CAP_PCIE, 0x10, 0);
	put8(p, CAP_PCIE + 1, 0, 0);              /* last capability */
	put16(p, CAP_PCIE + 2, 0x0002, 0);        /* version 2, endpoint */
	/* devcap: role-based errors; no FLR (DEVICE_RESET is the reset path). */
	put32(p, CAP_PCIE + 4, 0x00008000u, 0);
	/* Device control: error reporting, relaxed ordering, MPS, no snoop,
	 * MRRS are the host's. */
	put16(p, CAP_PCIE + 8, 0x2810, 0x7fff);
	put32(p, CAP_PCIE + 0x0c, 0x00000411u, 0); /* link cap: x1, 2.5 GT/s */
	put16(p, CAP_PCIE + 0x12, 0x0011, 0);     /* link status: x1, 2.5 GT/s */
	put32(p, CAP_PCIE + 0x24, 0x00000010u, 0); /* devcap2: completion timeout disable */

	memcpy(p->initial, p->cfg, sizeof(p->cfg));
	vfu_pci_reset(p);
}

/* Function level reset: the config space and the MSI-X state as at power
 * on (every vector masked, PCI Local Bus 3.0 6.8.2.9). */
void vfu_pci_reset(struct vfu_pci *p)
{
	memcpy(p->cfg, p->initial, sizeof(p->cfg));
	memset(p->bar4, 0, sizeof(p->bar4));
	p->table_in_use = false;
	for (uint32_t v = 0; v < p->nr_vectors; v++)
		p->bar4[v * 16 + 12] = 1;
}

void vfu_pci_cfg_read(const struct vfu_pci *p, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, p->cfg + off, len);
}

void vfu_pci_cfg_write(struct vfu_pci *p, uint32_t off, const void *buf, uint32_t len)
{
	const uint8_t *b = buf;

	for (uint32_t i = 0; i < len; i++) {
		uint8_t m = p->wmask[off + i];

		p->cfg[off + i] = (uint8_t)((p->cfg[off + i] & ~m) | (b[i] & m));
	}
	/* PMCSR: states D1/D2 are not supported, a write of them is ignored
	 * (PCI PM 1.2, 8.3.2): keep D0 or D3hot only. */
	if ((p->cfg[CAP_PM + 4] & 3) == 1 || (p->cfg[CAP_PM + 4] & 3) == 2)
		p->cfg[CAP_PM + 4] &= (uint8_t)~3;
}

bool vfu_pci_bus_master(const struct vfu_pci *p)
{
	return get16(p->cfg, PCI_COMMAND) & PCI_CMD_MASTER;
}

bool vfu_pci_intx_disabled(const struct vfu_pci *p)
{
	return get16(p->cfg, PCI_COMMAND) & PCI_CMD_INTX_OFF;
}

bool vfu_pci_msix_enabled(const struct vfu_pci *p)
{
	return get16(p->cfg, MSIX_CTRL) & MSIX_ENABLE;
}

bool vfu_pci_msix_fn_masked(const struct vfu_pci *p)
{
	return get16(p->cfg, MSIX_CTRL) & MSIX_FN_MASK;
}

/*
 * A vfio client may emulate the MSI-X table itself and never write ours:
 * QEMU does (it places its own table over the BAR, forwards only PBA reads,
 * and masks a vector by de-assigning or keeping its eventfd, the VFIO way).
 * Our Vector Control bits are then the power-on ones, all masked, and
 * honouring them would hold every interrupt pending forever. So they count
 * only once the client has written a Vector Control since reset, i.e. when
 * it uses our table as the guest's.
 */
bool vfu_pci_vector_masked(const struct vfu_pci *p, uint32_t v)
{
	return p->table_in_use && (p->bar4[v * 16 + 12] & 1);
}

bool vfu_pci_pba_test(const struct vfu_pci *p, uint32_t v)
{
	return p->bar4[VFU_PBA_OFFSET + v / 8] & (1u << (v % 8));
}

void vfu_pci_pba_set(struct vfu_pci *p, uint32_t v, bool on)
{
	uint8_t bit = (uint8_t)(1u << (v % 8));

	if (on)
		p->bar4[VFU_PBA_OFFSET + v / 8] |= bit;
	else
		p->bar4[VFU_PBA_OFFSET + v / 8] &= (uint8_t)~bit;
}

void vfu_pci_bar4_write(struct vfu_pci *p, uint32_t off, const void *buf, uint32_t len)
{
	const uint8_t *b = buf;
	uint32_t tbl_end = p->nr_vectors * 16;

	/* Table entries are writable except the reserved bits of Vector
	 * Control (only bit 0, the mask, is defined); the PBA and the gap
	 * are read-only. */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = off + i;

		if (o >= tbl_end)
			continue;
		if (o % 16 == 12) {
			p->bar4[o] = b[i] & 1;
			p->table_in_use = true;
		}
		else if (o % 16 < 12)
			p->bar4[o] = b[i];
	}
}
