/*
 * vfu-qemu-check: the vfio-user protocol server against QEMU's own
 * vfio-user client, with no guest OS.
 *
 *   vfu-qemu-check [--no-fd] [--mmap-doorbell] QEMU [QEMU-ARG...]
 *
 * It serves the test dummy device (tests/lib/vfu_dummy.h: a register file in
 * BAR0 and a "DMA engine" that copies guest memory and signals an MSI-X
 * vector) on a fresh socket, starts QEMU (the command given, e.g.
 * tests/e2e/qemu-sid.sh) with `-accel qtest` and `-device vfio-user-pci` on
 * that socket, and plays the guest through the qtest line protocol: PCI
 * configuration cycles on ports 0xcf8/0xcfc, BAR accesses, guest RAM reads
 * and writes. So every message is QEMU's client's, and what arrives is
 * checked from the guest's side: the config space (ids, class, capability
 * list), BAR sizing, register round trips (REGION_READ/WRITE, posted), the
 * DMA engine copying guest RAM (DMA_MAP with an fd, in place; with --no-fd
 * guest RAM is not shared and the copy goes through DMA_READ/DMA_WRITE
 * messages), MSI-X delivered as the memory write the table entry names,
 * a masked vector held pending and delivered on unmask, INTx reaching the
 * interrupt controller, DEVICE_RESET at machine reset, the client's
 * disconnection. With --mmap-doorbell the doorbell page is a sparse mmap
 * area: a guest write to it lands in our memory without a message.
 *
 * Prints "PASS: ..."/"FAIL: ..." lines; exit 0 when all pass, 1 otherwise,
 * 2 on usage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/vfu_dummy.h"

/* Where the test places things in the guest's physical address space. */
#define BAR0_ADDR   0xfe000000ull
#define BAR4_ADDR   0xfe100000ull
#define SRC_ADDR    0x100000ull
#define DST_ADDR    0x180000ull
#define MSI_ADDR    0x300000ull     /* MSI-X messages land in RAM here */
#define COPY_LEN    8192u           /* two pages: crosses a page boundary */
#define DEVFN       (4u << 3)       /* 00:04.0 */
#define RAM_MB      64
/* A reply QEMU owes us, or an event we wait for, within this: a bound
 * against hanging, not a measurement. */
#define WAIT_MS     30000

static int passed, failed;
static FILE *qt_in, *qt_out;
static unsigned irq_raises;     /* "IRQ raise" events seen on the qtest line */

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* One qtest command; the reply line ("OK ...") is returned (static buffer),
 * asynchronous "IRQ ..." lines before it are counted. NULL: QEMU is gone. */
static const char *qt(const char *fmt, ...)
{
	static char line[65536];
	va_list ap;

	va_start(ap, fmt);
	vfprintf(qt_out, fmt, ap);
	va_end(ap);
	fputc('\n', qt_out);
	fflush(qt_out);
	while (fgets(line, sizeof(line), qt_in)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "IRQ raise", 9)) {
			irq_raises++;
			continue;
		}
		if (!strncmp(line, "IRQ", 3))
			continue;
		return line;
	}
	return NULL;
}

/* A value from an "OK 0x..." reply; ~0 when the reply is not one. */
static uint64_t qt_val(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	const char *r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = qt("%s", cmd);
	if (!r || strncmp(r, "OK ", 3))
		return ~0ull;
	return strtoull(r + 3, NULL, 0);
}

static uint32_t cfg_read(unsigned reg, unsigned width)
{
	qt("outl 0xcf8 0x%x", 0x80000000u | DEVFN << 8 | (reg & 0xfc));
	switch (width) {
	case 1: return (uint32_t)qt_val("inb 0x%x", 0xcfc + (reg & 3));
	case 2: return (uint32_t)qt_val("inw 0x%x", 0xcfc + (reg & 2));
	default: return (uint32_t)qt_val("inl 0xcfc");
	}
}

static void cfg_write(unsigned reg, uint32_t v, unsigned width)
{
	qt("outl 0xcf8 0x%x", 0x80000000u | DEVFN << 8 | (reg & 0xfc));
	qt("out%c 0x%x 0x%x", width == 1 ? 'b' : width == 2 ? 'w' : 'l', 0xcfc + (reg & 3), v);
}

/* Guest RAM through qtest's read/write (hex strings). */
static void ram_write(uint64_t addr, const uint8_t *buf, size_t len)
{
	char *hex = malloc(len * 2 + 1);
	size_t i;

	if (!hex)
		abort();
	for (i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", buf[i]);
	qt("write 0x%" PRIx64 " 0x%zx 0x%s", addr, len, hex);
	free(hex);
}

static bool ram_read(uint64_t addr, uint8_t *buf, size_t len)
{
	const char *r = qt("read 0x%" PRIx64 " 0x%zx", addr, len);
	size_t i;

	if (!r || strncmp(r, "OK 0x", 5) || strlen(r + 5) != len * 2)
		return false;
	for (i = 0; i < len; i++) {
		unsigned b;

		if (sscanf(r + 5 + 2 * i, "%2x", &b) != 1)
			return false;
		buf[i] = (uint8_t)b;
	}
	return true;
}

/* Poll a guest RAM dword until it holds want (QEMU writes MSI messages from
 * its own threads); the value last read. */
static uint32_t wait_dword(uint64_t addr, uint32_t want)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < WAIT_MS / 10; i++) {
		v = (uint32_t)qt_val("readl 0x%" PRIx64, addr);
		if (v == want)
			break;
		usleep(10000);
	}
	return v;
}

/* The offset of capability id in the config space's list, 0 if absent. */
static unsigned find_cap(uint8_t id)
{
	unsigned off = cfg_read(0x34, 1) & 0xfc;
	int n;

	for (n = 0; off && n < 48; n++) {
		if ((cfg_read(off, 1) & 0xff) == id)
			return off;
		off = cfg_read(off + 1, 1) & 0xfc;
	}
	return 0;
}

/* Run the DMA engine: copy COPY_LEN bytes SRC_ADDR -> DST_ADDR, signal
 * vector. Returns whether DST then holds the pattern. */
static bool dma_copy(uint8_t seed, unsigned vector)
{
	static uint8_t pat[COPY_LEN], got[COPY_LEN];
	unsigned i;

	for (i = 0; i < COPY_LEN; i++)
		pat[i] = (uint8_t)(seed + i * 7);
	ram_write(SRC_ADDR, pat, COPY_LEN);
	memset(got, 0, sizeof(got));
	ram_write(DST_ADDR, got, COPY_LEN);
	qt("writeq 0x%llx 0x%llx", BAR0_ADDR + DUMMY_SRC, SRC_ADDR);
	qt("writeq 0x%llx 0x%llx", BAR0_ADDR + DUMMY_DST, DST_ADDR);
	qt("writel 0x%llx 0x%x", BAR0_ADDR + DUMMY_LEN, COPY_LEN);
	qt("writel 0x%llx 0x%x", BAR0_ADDR + DUMMY_VECTOR, vector);
	qt("writel 0x%llx 0x1", BAR0_ADDR + DUMMY_DOORBELL);
	/* The copy may go through messages: wait until STATUS reads 0 and
	 * DST holds the data. */
	for (i = 0; i < WAIT_MS / 10; i++) {
		if (qt_val("readl 0x%llx", BAR0_ADDR + DUMMY_STATUS) == 0 &&
		    ram_read(DST_ADDR, got, COPY_LEN) && !memcmp(got, pat, COPY_LEN))
			return true;
		usleep(10000);
	}
	return false;
}

static void msix_entry(unsigned vector, uint64_t addr, uint32_t data, bool masked)
{
	uint64_t e = BAR4_ADDR + vector * 16ull;

	qt("writel 0x%" PRIx64 " 0x%x", e, (uint32_t)addr);
	qt("writel 0x%" PRIx64 " 0x%x", e + 4, (uint32_t)(addr >> 32));
	qt("writel 0x%" PRIx64 " 0x%x", e + 8, data);
	qt("writel 0x%" PRIx64 " 0x%x", e + 12, masked ? 1 : 0);
}

static void run_checks(struct vfu_dummy *d, bool no_fd, bool mmap_doorbell)
{
	unsigned msix, pm, pcie, resets;
	uint32_t v, lo, hi;

	v = cfg_read(0x00, 4);
	check(v == (DUMMY_DEVICE << 16 | DUMMY_VENDOR), "config: vendor/device 0x%08x", v);
	/* QEMU resets the machine, and with it the device, before the guest
	 * (here: our first qtest command) runs: DEVICE_RESET, as the device
	 * offers it. Counted by the dummy. */
	resets = __atomic_load_n(&d->resets, __ATOMIC_SEQ_CST);
	check(resets >= 1, "DEVICE_RESET at machine reset (%u)", resets);
	v = cfg_read(0x08, 4) >> 8;
	check(v == 0x010802, "config: class code 0x%06x (NVM Express)", v);
	pm = find_cap(0x01);
	msix = find_cap(0x11);
	pcie = find_cap(0x10);
	check(pm && msix && pcie, "config: capabilities PM 0x%x, MSI-X 0x%x, PCIe 0x%x", pm, msix, pcie);
	if (msix) {
		v = cfg_read(msix + 2, 2);
		check((v & 0x7ff) + 1 == DUMMY_VECTORS, "config: MSI-X table size %u", (v & 0x7ff) + 1);
		lo = cfg_read(msix + 4, 4);
		hi = cfg_read(msix + 8, 4);
		check(lo == 4 && hi == (0x800 | 4), "config: MSI-X table BAR4+0, PBA BAR4+0x800 (0x%x 0x%x)", lo, hi);
	}

	/* BAR sizing as firmware does it: all-ones, read back the mask. */
	cfg_write(0x10, 0xffffffff, 4);
	cfg_write(0x14, 0xffffffff, 4);
	lo = cfg_read(0x10, 4);
	hi = cfg_read(0x14, 4);
	check(lo == ((uint32_t)~(DUMMY_BAR0 - 1) | 4) && hi == 0xffffffff,
	      "config: BAR0 sizes as 64-bit, %u KiB (0x%08x%08x)", DUMMY_BAR0 >> 10, hi, lo);
	cfg_write(0x20, 0xffffffff, 4);
	v = cfg_read(0x20, 4);
	check(v == 0xfffff000, "config: BAR4 sizes as 4 KiB (0x%08x)", v);
	cfg_write(0x10, (uint32_t)BAR0_ADDR, 4);
	cfg_write(0x14, 0, 4);
	cfg_write(0x20, (uint32_t)BAR4_ADDR, 4);
	cfg_write(0x04, 0x0006, 2);               /* memory space + bus master */
	v = cfg_read(0x04, 2);
	check((v & 6) == 6, "config: command register memory + bus master (0x%04x)", v);

	/* Registers: QEMU posts BAR writes; a read after them must see them
	 * (commands are processed in order). 8-byte accesses arrive whole. */
	qt("writeq 0x%llx 0x123456789abcdef0", BAR0_ADDR + DUMMY_SRC);
	qt("writel 0x%llx 0xfeedf00d", BAR0_ADDR + DUMMY_LEN);
	v = (uint32_t)qt_val("readl 0x%llx", BAR0_ADDR + DUMMY_LEN);
	check(v == 0xfeedf00d, "BAR0: posted 4-byte write read back (0x%08x)", v);
	uint64_t q = qt_val("readq 0x%llx", BAR0_ADDR + DUMMY_SRC);
	check(q == 0x123456789abcdef0ull, "BAR0: 8-byte write read back (0x%016" PRIx64 ")", q);

	if (mmap_doorbell) {
		/* The doorbell page is mmap'd by QEMU: the guest's write lands in
		 * the page we share, and the device sees it without a message. */
		qt("writel 0x%llx 0x5a5a1234", BAR0_ADDR + DUMMY_DOORBELL);
		v = 0;
		for (int i = 0; i < WAIT_MS / 10 && v != 0x5a5a1234; i++) {
			v = (uint32_t)qt_val("readl 0x%llx", BAR0_ADDR + DUMMY_SHADOW);
			if (v != 0x5a5a1234)
				usleep(10000);
		}
		check(v == 0x5a5a1234, "sparse mmap: doorbell write seen by the device (0x%08x)", v);
		return;
	}

	/* MSI-X: entry 1 points at guest RAM, so its message is a memory
	 * write we can read; QEMU sends SET_IRQS with eventfds on enable. */
	qt("writel 0x%llx 0x0", MSI_ADDR);
	msix_entry(1, MSI_ADDR, 0xabcd0001, false);
	msix_entry(2, MSI_ADDR + 4, 0xabcd0002, true);
	if (msix)
		cfg_write(msix + 2, 0x8000, 2);
	check(dma_copy(0x11, 1), "DMA: 8 KiB copied %s", no_fd ?
	      "through DMA_READ/DMA_WRITE messages (RAM not shared)" : "in place (RAM mapped with an fd)");
	v = wait_dword(MSI_ADDR, 0xabcd0001);
	check(v == 0xabcd0001, "MSI-X: vector 1 delivered (0x%08x)", v);

	/* A masked vector is held pending (PBA bit) and fires on unmask. */
	qt("writel 0x%llx 0x0", MSI_ADDR + 4);
	check(dma_copy(0x22, 2), "DMA: second copy");
	usleep(200000);
	v = (uint32_t)qt_val("readl 0x%llx", MSI_ADDR + 4);
	lo = (uint32_t)qt_val("readl 0x%llx", BAR4_ADDR + 0x800);
	check(v == 0 && (lo & 4), "MSI-X: masked vector 2 not delivered, pending in the PBA (0x%x)", lo);
	qt("writel 0x%llx 0x0", BAR4_ADDR + 2 * 16 + 12);
	v = wait_dword(MSI_ADDR + 4, 0xabcd0002);
	check(v == 0xabcd0002, "MSI-X: vector 2 delivered on unmask (0x%08x)", v);

	/* INTx: MSI-X off, INTx on; the interrupt reaches the IOAPIC. */
	if (msix)
		cfg_write(msix + 2, 0, 2);
	qt("irq_intercept_in ioapic");
	irq_raises = 0;
	check(dma_copy(0x33, 0), "DMA: copy with INTx");
	for (int i = 0; i < WAIT_MS / 10 && !irq_raises; i++) {
		qt("readl 0x%llx", BAR0_ADDR + DUMMY_STATUS);
		if (!irq_raises)
			usleep(10000);
	}
	check(irq_raises > 0, "INTx: raised at the interrupt controller (%u)", irq_raises);
}

int main(int argc, char **argv)
{
	bool no_fd = false, mmap_doorbell = false;
	char qt_path[108], devjson[300], mem[100];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int argi = 1, lfd, cfd, st;
	struct pollfd pfd;
	pid_t qemu;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (!strcmp(argv[argi], "--no-fd"))
			no_fd = true;
		else if (!strcmp(argv[argi], "--mmap-doorbell"))
			mmap_doorbell = true;
		else
			break;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: vfu-qemu-check [--no-fd] [--mmap-doorbell] QEMU [QEMU-ARG...]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	struct vfu_dummy *d = vfu_dummy_start(mmap_doorbell);

	/* The qtest line: we listen, QEMU connects. */
	snprintf(qt_path, sizeof(qt_path), "/tmp/znstgt-vfu-qtest-%d.sock", getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", qt_path);
	unlink(qt_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
		perror("vfu-qemu-check: qtest socket");
		return 1;
	}
	snprintf(devjson, sizeof(devjson),
		 "{\"driver\":\"vfio-user-pci\",\"addr\":\"0x4\",\"rombar\":0,"
		 "\"socket\":{\"type\":\"unix\",\"path\":\"%s\"}}", d->path);
	snprintf(mem, sizeof(mem), "memory-backend-memfd,id=mem0,size=%uM,share=on", RAM_MB);

	qemu = fork();
	if (qemu == 0) {
		char chardev[200], ram[16];
		const char *extra[] = {
			"-accel", "qtest", "-chardev", chardev, "-qtest", "chardev:qt", "-qtest-log", "/dev/null",
			"-machine", no_fd ? "q35" : "q35,memory-backend=mem0", "-m", ram,
			"-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none",
			"-device", devjson,
		};
		char **av = calloc((size_t)(argc - argi) + 24, sizeof(*av));
		int n = 0;

		snprintf(chardev, sizeof(chardev), "socket,id=qt,path=%s", qt_path);
		snprintf(ram, sizeof(ram), "%uM", RAM_MB);
		for (int i = argi; i < argc; i++)
			av[n++] = argv[i];
		for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
			av[n++] = (char *)extra[i];
		if (!no_fd) {
			av[n++] = "-object";
			av[n++] = mem;
		}
		execvp(av[0], av);
		perror("vfu-qemu-check: exec");
		_exit(127);
	}
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	if (poll(&pfd, 1, WAIT_MS * 2) != 1 || (cfd = accept(lfd, NULL, NULL)) < 0) {
		check(false, "QEMU starts and connects to the qtest socket");
		kill(qemu, SIGKILL);
		waitpid(qemu, NULL, 0);
		goto out;
	}
	qt_in = fdopen(cfd, "r");
	qt_out = fdopen(dup(cfd), "w");
	/* The qtest line also bounds each reply: QEMU that stops answering
	 * ends the run instead of hanging it. */
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The first reply comes once the machine is built: the device
	 * realized (VERSION, DMA_MAP, GET_INFO, REGION_INFO, IRQ_INFO and the
	 * config space read all went through) and reset. */
	if (qt("readl 0x0")) {
		check(true, "QEMU with -device vfio-user-pci starts (the device realizes)");
		run_checks(d, no_fd, mmap_doorbell);
	} else {
		check(false, "QEMU with -device vfio-user-pci starts (the device realizes; QEMU's messages above)");
	}

	/* Disconnection: QEMU goes away, the device hears of it. */
	kill(qemu, SIGTERM);
	waitpid(qemu, &st, 0);
	pfd = (struct pollfd){ .fd = d->detached_fd, .events = POLLIN };
	check(poll(&pfd, 1, WAIT_MS) == 1, "client gone: the device is told (detached)");
	fclose(qt_in);
	fclose(qt_out);
out:
	close(lfd);
	unlink(qt_path);
	vfu_dummy_stop(d);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
