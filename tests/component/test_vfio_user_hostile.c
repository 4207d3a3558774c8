/*
 * The vfio-user server against a hostile client: malformed and oversized
 * messages, bad VERSION JSON, commands before VERSION, unknown commands,
 * fds where none belong, too many fds, DMA outside the mappings, bad and
 * overlapping maps, a memory file cut short after DMA_MAP, unmap while the
 * device holds the memory, a DMA request of the server left unanswered,
 * truncated messages, and a client that never reads its replies. Every
 * case ends in an error reply or a closed connection, and the server
 * serves the next client afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio_user_proto.h"
#include "../../server/vfio_user/internal.h"
#include "../lib/vfu_client.h"
#include "../lib/vfu_dummy.h"

#define RAM_IOVA 0x100000ull
#define RAM_SIZE (256u << 10)

static int setup(void **state)
{
	*state = vfu_fixture_new(false, RAM_SIZE);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	return vfu_fixture_free(*state);
}

static void efd_wait(int efd)
{
	assert_int_equal(vfu_efd_wait(efd), 1);
}

/* The server dropped f->c: wait for it, then check a new client works. */
static void expect_dropped_then_fresh(struct vfu_fixture *f)
{
	uint32_t id = 0;

	assert_int_equal(vfuc_wait_closed(f->c), 0);
	efd_wait(f->d->detached_fd);
	vfuc_close(f->c);
	f->c = vfuc_connect(f->d->path);
	assert_non_null(f->c);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
	assert_int_equal(vfuc_cfg_read32(f->c, 0, &id), 0);
	assert_int_equal(id & 0xffff, DUMMY_VENDOR);
}

static void reconnect_raw(struct vfu_fixture *f)
{
	vfuc_close(f->c);
	efd_wait(f->d->detached_fd);
	f->c = vfuc_connect(f->d->path);
	assert_non_null(f->c);
}

static void bar0_w64(struct vfu_client *c, uint64_t off, uint64_t v)
{
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, off, &v, 8), 0);
}

static uint32_t copy_status(struct vfu_client *c, uint64_t src, uint64_t dst, uint32_t len)
{
	uint32_t st = 0xdead;

	bar0_w64(c, DUMMY_SRC, src);
	bar0_w64(c, DUMMY_DST, dst);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_LEN, &len, 4), 0);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_DOORBELL, &len, 4), 0);
	assert_int_equal(vfuc_region_read(c, VFU_PCI_BAR0, DUMMY_STATUS, &st, 4), 0);
	return st;
}

static int call(struct vfu_client *c, uint16_t cmd, const void *body, size_t len)
{
	uint8_t out[256];

	return vfuc_call(c, cmd, body, len, NULL, 0, out, sizeof(out), NULL, NULL);
}

/* ---- VERSION ---- */

static void test_caps_json_parser(void **state)
{
	static const char *const bad[] = {
		"", "{", "}", "[]", "{\"capabilities\":}", "{\"capabilities\":{\"max_msg_fds\":-1}}",
		"{\"capabilities\":{\"max_msg_fds\":1.5}}", "{\"capabilities\":{\"max_msg_fds\":\"8\"}}",
		"{\"capabilities\":{\"max_msg_fds\":8,\"max_msg_fds\":8}}",
		"{\"capabilities\":{\"max_msg_fds\":99999999999}}",
		"{\"capabilities\":{\"pgsizes\":8192}}", "{\"capabilities\":{\"max_data_xfer_size\":0}}",
		"{\"capabilities\":{}} x", "{\"a\":tru}", "{\"a\":[1,]}", "{\"a\":\"\\q\"}",
		"{\"a\":01}", "{\"a\":\"\x01\"}", "{\"capabilities\":{},\"capabilities\":{}}",
		"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
	};
	static const char *const good[] = {
		"{}", " { \"capabilities\" : { } } ", "{\"x\":[1,-2.5e3,\"s\\u00e9\",true,false,null,{}]}",
		"{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":65536,\"pgsizes\":12288,"
		"\"migration\":{\"pgsize\":4096},\"write_multiple\":true,\"unknown\":[1]}}",
	};
	struct vfu_client_caps caps;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vfu_caps_parse(bad[i], strlen(bad[i]) + 1, &caps), -EINVAL);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(vfu_caps_parse(good[i], strlen(good[i]) + 1, &caps), 0);
	assert_int_equal(caps.max_msg_fds, 16);
	assert_int_equal(caps.max_data_xfer_size, 65536);
	assert_int_equal(caps.pgsizes, 12288);
	/* Not NUL-terminated, or a NUL inside. */
	assert_int_equal(vfu_caps_parse("{}", 2, &caps), -EINVAL);
	assert_int_equal(vfu_caps_parse("{}\0{}", 6, &caps), -EINVAL);
	/* Absent JSON: spec defaults. */
	assert_int_equal(vfu_caps_parse(NULL, 0, &caps), 0);
	assert_int_equal(caps.max_msg_fds, 1);
}

/* An escaped quote is part of its string (RFC 8259, 7): valid JSON with
 * one is taken, and a string whose only quote after the opening one is
 * escaped is unterminated. */
static void test_caps_json_escaped_quote(void **state)
{
	static const char good1[] = "{\"x\":\"a\\\"b\",\"capabilities\":{\"max_msg_fds\":4}}";
	static const char good2[] = "{\"x\":\"\\\\\"}";
	static const char bad[] = "{\"x\":\"\\\"}";
	struct vfu_client_caps caps;

	(void)state;
	assert_int_equal(vfu_caps_parse(good1, sizeof(good1), &caps), 0);
	assert_int_equal(caps.max_msg_fds, 4);
	assert_int_equal(vfu_caps_parse(good2, sizeof(good2), &caps), 0);
	assert_int_equal(vfu_caps_parse(bad, sizeof(bad), &caps), -EINVAL);
}

static void test_bad_version(void **state)
{
	struct vfu_fixture *f = *state;
	struct { struct vfu_version v; char j[8]; } m = { { 1, 0 }, "{}" };

	/* Another major: error, then closed (spec: cannot comply). */
	reconnect_raw(f);
	assert_int_equal(call(f->c, VFU_CMD_VERSION, &m, sizeof(m.v) + 3), -EINVAL);
	expect_dropped_then_fresh(f);
	/* Shorter than major+minor. */
	reconnect_raw(f);
	assert_int_equal(call(f->c, VFU_CMD_VERSION, &m, 3), -EINVAL);
	expect_dropped_then_fresh(f);
	/* Bad JSON. */
	reconnect_raw(f);
	assert_int_equal(vfuc_negotiate(f->c, "{\"capabilities\":{\"pgsizes\":8192}}", NULL, 0), -EINVAL);
	expect_dropped_then_fresh(f);
}

static void test_command_before_version(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_device_info di = { .argsz = sizeof(di) };

	reconnect_raw(f);
	assert_int_equal(call(f->c, VFU_CMD_DEVICE_GET_INFO, &di, sizeof(di)), -EINVAL);
	expect_dropped_then_fresh(f);
}

/* ---- sizes, offsets, commands ---- */

static void test_bad_sizes(void **state)
{
	struct vfu_client *c = ((struct vfu_fixture *)*state)->c;
	struct vfu_device_info di = { .argsz = 4 };
	struct vfu_region_info ri = { .argsz = 8, .index = 7 };
	struct { struct vfu_region_access a; uint8_t d[8]; } w = { { 0, VFU_PCI_CONFIG, 8 }, { 0 } };
	static const struct vfu_region_access rd[] = {
		{ 4095, VFU_PCI_CONFIG, 2 }, { 0, VFU_PCI_CONFIG, 0 }, { 0, 2, 4 }, { 0, 6, 4 },
		{ 0, 9, 4 }, { UINT64_MAX - 1, VFU_PCI_BAR0, 4 }, { DUMMY_BAR0, VFU_PCI_BAR0, 1 },
		{ 0, VFU_PCI_BAR0, VFU_MAX_XFER + 1 }, { 4096, VFU_PCI_BAR4, 4 },
		{ 0, VFU_PCI_CONFIG, UINT32_MAX },
	};
	uint8_t junk[64] = { 0 };
	uint32_t id = 0;

	assert_int_equal(call(c, VFU_CMD_DEVICE_GET_INFO, &di, 8), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DEVICE_GET_INFO, &di, sizeof(di)), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, sizeof(ri)), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DEVICE_GET_REGION_INFO, &ri, 16), -EINVAL);
	for (size_t i = 0; i < sizeof(rd) / sizeof(rd[0]); i++)
		assert_int_equal(call(c, VFU_CMD_REGION_READ, &rd[i], sizeof(rd[i])), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_REGION_READ, &rd[0], 12), -EINVAL);
	/* Write: count must equal the data carried. */
	assert_int_equal(call(c, VFU_CMD_REGION_WRITE, &w, sizeof(w.a) + 4), -EINVAL);
	w.a.count = 2;
	assert_int_equal(call(c, VFU_CMD_REGION_WRITE, &w, sizeof(w)), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_REGION_WRITE, &w, 10), -EINVAL);
	/* The device's own refusals come back as errors too. */
	w.a = (struct vfu_region_access){ 0x100, VFU_PCI_BAR0, 4 };
	assert_int_equal(call(c, VFU_CMD_REGION_WRITE, &w, sizeof(w.a) + 4), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DMA_MAP, junk, 31), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DMA_UNMAP, junk, 23), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DEVICE_SET_IRQS, junk, 10), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DEVICE_GET_IRQ_INFO, junk, 12), -EINVAL);
	/* Still served. */
	assert_int_equal(vfuc_cfg_read32(c, 0, &id), 0);
	assert_int_equal(id & 0xffff, DUMMY_VENDOR);
}

static void test_unknown_commands(void **state)
{
	struct vfu_fixture *f = *state;
	uint8_t junk[16] = { 0 };
	static const uint16_t cmds[] = { 0, 6, 11, 12, 14, 15, 16, 99, 0xffff };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		assert_int_equal(call(f->c, cmds[i], junk, sizeof(junk)), -ENOSYS);
	/* A reply to a request the server never sent: protocol error. */
	assert_int_equal(vfuc_send(f->c, 77, VFU_CMD_DMA_READ, VFU_F_TYPE_REPLY, junk, 16, NULL, 0), 0);
	expect_dropped_then_fresh(f);
	/* A message type that does not exist. */
	assert_int_equal(vfuc_send(f->c, 1, VFU_CMD_DEVICE_GET_INFO, 5, junk, 16, NULL, 0), 0);
	expect_dropped_then_fresh(f);
}

static void test_no_reply_flag(void **state)
{
	struct vfu_client *c = ((struct vfu_fixture *)*state)->c;
	struct { struct vfu_region_access a; uint32_t v; } w = { { DUMMY_LEN, VFU_PCI_BAR0, 4 }, 1234 };
	uint32_t v = 0;

	/* Posted writes (NO_REPLY), good and bad, get no reply at all: the
	 * next reply the client sees is the read's. */
	assert_int_equal(vfuc_send(c, 50, VFU_CMD_REGION_WRITE, VFU_F_NO_REPLY, &w, sizeof(w.a) + 4, NULL, 0), 0);
	w.a.offset = 0x100;
	assert_int_equal(vfuc_send(c, 51, VFU_CMD_REGION_WRITE, VFU_F_NO_REPLY, &w, sizeof(w.a) + 4, NULL, 0), 0);
	assert_int_equal(vfuc_region_read(c, VFU_PCI_BAR0, DUMMY_LEN, &v, 4), 0);
	assert_int_equal(v, 1234);
}

/* ---- fds ---- */

/* Did every copy of the pipe's write end get closed? */
static bool pipe_writers_gone(int rfd)
{
	char ch;

	return read(rfd, &ch, 1) == 0;
}

static void test_fds_where_none_belong(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_device_info di = { .argsz = sizeof(di) };
	struct vfu_dma_map m = { sizeof(m), 3, 0, RAM_IOVA, RAM_SIZE };
	struct vfu_irq_set is = { sizeof(is), VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_TRIGGER, VFU_IRQ_MSIX, 0, 1 };
	int p[2], two[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DEVICE_GET_INFO, &di, sizeof(di), &p[1], 1,
				   NULL, 0, NULL, NULL), -EINVAL);
	close(p[1]);
	assert_true(pipe_writers_gone(p[0]));
	close(p[0]);

	/* DMA_MAP takes one fd, not two; SET_IRQS one per vector. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	two[0] = f->ram_fd;
	two[1] = p[1];
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DMA_MAP, &m, sizeof(m), two, 2, NULL, 0, NULL, NULL),
			 -EINVAL);
	two[0] = two[1] = p[1];
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DEVICE_SET_IRQS, &is, sizeof(is), two, 2,
				   NULL, 0, NULL, NULL), -EINVAL);
	/* SET_IRQS takes eventfds only: a pipe could block the server. */
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DEVICE_SET_IRQS, &is, sizeof(is), &p[1], 1,
				   NULL, 0, NULL, NULL), -EINVAL);
	/* DMA_UNMAP takes none. */
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DMA_UNMAP, &m, 24, &p[1], 1, NULL, 0, NULL, NULL),
			 -EINVAL);
	/* A fd that cannot be mapped (a pipe). */
	assert_int_equal(vfuc_call(f->c, VFU_CMD_DMA_MAP, &m, sizeof(m), &p[1], 1, NULL, 0, NULL, NULL),
			 -EINVAL);
	close(p[1]);
	assert_true(pipe_writers_gone(p[0]));
	close(p[0]);
}

static void test_too_many_fds(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_device_info di = { .argsz = sizeof(di) };
	int fds[VFU_MAX_FDS + 1];

	for (int i = 0; i < VFU_MAX_FDS + 1; i++)
		fds[i] = f->ram_fd;
	assert_int_equal(vfuc_send(f->c, 9, VFU_CMD_DEVICE_GET_INFO, 0, &di, sizeof(di),
				   fds, VFU_MAX_FDS + 1), 0);
	expect_dropped_then_fresh(f);
}

/* ---- framing ---- */

static void test_bad_framing(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_hdr h = { .msg_id = 1, .cmd = VFU_CMD_DEVICE_GET_INFO, .size = 8 };
	uint8_t body[50] = { 0 };

	assert_int_equal(vfuc_send_raw(f->c, &h, sizeof(h), NULL, 0), 0);
	expect_dropped_then_fresh(f);
	h.size = UINT32_MAX;
	assert_int_equal(vfuc_send_raw(f->c, &h, sizeof(h), NULL, 0), 0);
	expect_dropped_then_fresh(f);
	h.size = (uint32_t)VFU_MAX_MSG + 1;
	assert_int_equal(vfuc_send_raw(f->c, &h, sizeof(h), NULL, 0), 0);
	expect_dropped_then_fresh(f);
	/* Truncated: the header promises 100 bytes, 66 come, then EOF. */
	h.size = 100;
	assert_int_equal(vfuc_send_raw(f->c, &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(vfuc_send_raw(f->c, body, sizeof(body), NULL, 0), 0);
	reconnect_raw(f);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
	/* Truncated inside the header. */
	assert_int_equal(vfuc_send_raw(f->c, &h, 7, NULL, 0), 0);
	reconnect_raw(f);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
}

/* ---- DMA ---- */

static void test_dma_outside_mappings(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_client *c = f->c;
	uint64_t a = RAM_IOVA, b = RAM_IOVA + RAM_SIZE / 2, ro = RAM_IOVA + RAM_SIZE;
	int ro_fd = vfuc_guest_ram(4096, true);

	assert_true(ro_fd >= 0);
	/* Two adjacent halves and a read-only page after them. */
	assert_int_equal(vfuc_dma_map(c, a, RAM_SIZE / 2, 3, f->ram_fd, 0, NULL), 0);
	assert_int_equal(vfuc_dma_map(c, b, RAM_SIZE / 2, 3, f->ram_fd, RAM_SIZE / 2, NULL), 0);
	assert_int_equal(vfuc_dma_map(c, ro, 4096, VFU_DMA_READ, ro_fd, 0, NULL), 0);
	close(ro_fd);
	/* Bus mastering off: no DMA at all. */
	assert_int_equal(copy_status(c, a, a + 4096, 16), EPERM);
	assert_int_equal(vfuc_cfg_write16(c, 4, 0x0006), 0);
	assert_int_equal(copy_status(c, a, a + 4096, 16), 0);
	/* Straddling two mappings, even adjacent ones: refused. */
	assert_int_equal(copy_status(c, b - 8, a, 16), EFAULT);
	/* Before the first, after the last, wrapping around. */
	assert_int_equal(copy_status(c, a - 16, a, 16), EFAULT);
	assert_int_equal(copy_status(c, ro + 4096, a, 16), EFAULT);
	assert_int_equal(copy_status(c, UINT64_MAX - 7, a, 16), EFAULT);
	assert_int_equal(copy_status(c, 0, a, 16), EFAULT);
	/* Reading the read-only page is fine, writing it is not. */
	assert_int_equal(copy_status(c, ro, a, 16), 0);
	assert_int_equal(copy_status(c, a, ro, 16), EFAULT);
}

static void test_bad_maps(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_client *c = f->c;
	struct vfu_dma_unmap u = { sizeof(u), 1, RAM_IOVA, 4096 };

	assert_int_equal(vfuc_dma_map(c, RAM_IOVA, 64 * 1024, 3, f->ram_fd, 0, NULL), 0);
	/* Overlaps: same, front, back, inside, around. */
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA, 64 * 1024, 3, f->ram_fd, 0, NULL), -EEXIST);
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA - 4096, 8192, 3, -1, 0, NULL), -EEXIST);
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA + 60 * 1024, 8192, 3, -1, 0, NULL), -EEXIST);
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA + 4096, 4096, 3, -1, 0, NULL), -EEXIST);
	assert_int_equal(vfuc_dma_map(c, 0, 1u << 30, 3, -1, 0, NULL), -EEXIST);
	/* Touching is not overlapping. */
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA + 64 * 1024, 4096, 3, -1, 0, NULL), 0);
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA - 4096, 4096, 3, -1, 0, NULL), 0);
	/* Malformed maps. */
	assert_int_equal(vfuc_dma_map(c, 0x10000001, 4096, 3, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 4095, 3, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 0, 3, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, UINT64_MAX - 4095, 8192, 3, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 4096, 0, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 4096, 7, -1, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 4096, 3, f->ram_fd, 100, NULL), -EINVAL);
	/* Past the end of the file: SIGBUS territory, refused. */
	assert_int_equal(vfuc_dma_map(c, 0x10000000, RAM_SIZE + 4096, 3, f->ram_fd, 0, NULL), -EINVAL);
	assert_int_equal(vfuc_dma_map(c, 0x10000000, 8192, 3, f->ram_fd, RAM_SIZE - 4096, NULL), -EINVAL);
	/* Unmaps must match a map exactly. */
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA, 4096, 0), -EINVAL);
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA + 4096, 60 * 1024, 0), -EINVAL);
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA, 64 * 1024, VFU_DMA_UNMAP_ALL), -EINVAL);
	assert_int_equal(call(c, VFU_CMD_DMA_UNMAP, &u, sizeof(u)), -ENOTSUP);
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA, 64 * 1024, 0), 0);
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA, 64 * 1024, 0), -EINVAL);
	assert_int_equal(vfuc_dma_unmap(c, 0, 0, VFU_DMA_UNMAP_ALL), 0);
	assert_int_equal(vfuc_dma_unmap(c, RAM_IOVA - 4096, 4096, 0), -EINVAL);
}

/* A client maps a memfd that may shrink, then cuts it to nothing and has
 * the device hold the memory and copy it. Mapped, the device's first touch
 * would raise SIGBUS and end the process (this test with it); the region is
 * one without fd instead: no hold in place, copies through messages, and
 * sealed RAM beside it still served in place. */
static void test_unsealed_then_truncated(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_client *c = f->c;
	static uint8_t view[8192];      /* the client's own copy, for messages */
	uint64_t cut = RAM_IOVA + RAM_SIZE;
	uint32_t one = 1, len = 4096, zero = 0;
	int fd = vfuc_guest_ram(sizeof(view), false);

	assert_true(fd >= 0);
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA, RAM_SIZE, 3, f->ram_fd, 0, f->ram), 0);
	assert_int_equal(vfuc_dma_map(c, cut, sizeof(view), 3, fd, 0, view), 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	close(fd);
	assert_int_equal(vfuc_cfg_write16(c, 4, 0x0006), 0);
	bar0_w64(c, DUMMY_SRC, cut);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_LEN, &len, 4), 0);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &one, 4), -ENXIO);
	/* A copy out of it asks for it by DMA_READ (sent before the reply to
	 * the doorbell, served from the view meanwhile). */
	bar0_w64(c, DUMMY_DST, RAM_IOVA);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_DOORBELL, &len, 4), 0);
	assert_int_equal(c->dma_served, 1);
	/* Its second half, a DMA_WRITE into the sealed RAM, comes once the
	 * read is back: served while the client waits for replies. */
	for (int i = 0; i < 1000 && c->dma_served < 2; i++)
		assert_int_equal(vfuc_region_read(c, VFU_PCI_BAR0, DUMMY_LEN, &zero, 4), 0);
	assert_int_equal(c->dma_served, 2);
	zero = 0;
	/* The sealed RAM is held and written in place. */
	bar0_w64(c, DUMMY_SRC, RAM_IOVA + 8192);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &one, 4), 0);
	assert_int_equal(f->ram[8192], 0xa5);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &zero, 4), 0);
}

static void test_unmap_while_in_use(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_client *c = f->c;
	struct vfu_dma_unmap u = { sizeof(u), 0, RAM_IOVA, RAM_SIZE };
	struct vfu_region_access rd = { 0, VFU_PCI_CONFIG, 4 };
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	uint32_t one = 1, len = 4096;
	uint64_t rel = 1;
	uint8_t out[64];

	assert_int_equal(vfuc_dma_map(c, RAM_IOVA, RAM_SIZE, 3, f->ram_fd, 0, NULL), 0);
	assert_int_equal(vfuc_cfg_write16(c, 4, 0x0006), 0);
	bar0_w64(c, DUMMY_SRC, RAM_IOVA + 8192);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_LEN, &len, 4), 0);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &one, 4), 0);
	assert_int_equal(f->ram[8192], 0xa5);           /* written in place */

	/* The unmap asks the device to let go and waits; so do later
	 * commands (processed in order). */
	assert_int_equal(vfuc_send(c, 100, VFU_CMD_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0), 0);
	efd_wait(f->d->release_req_fd);
	assert_int_equal(vfuc_send(c, 101, VFU_CMD_REGION_READ, 0, &rd, sizeof(rd), NULL, 0), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	/* Device puts its hold: the unmap is answered, then the read. */
	assert_int_equal(write(f->d->release_fd, &rel, sizeof(rel)), sizeof(rel));
	assert_int_equal(vfuc_wait(c, 100, out, sizeof(out), NULL, NULL), 0);
	assert_int_equal(vfuc_wait(c, 101, out, sizeof(out), NULL, NULL), 0);
	/* And the memory is gone for the device. */
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &one, 4), -EFAULT);

	/* A client leaving while the device holds its memory. */
	assert_int_equal(vfuc_dma_map(c, RAM_IOVA, RAM_SIZE, 3, f->ram_fd, 0, NULL), 0);
	assert_int_equal(vfuc_region_write(c, VFU_PCI_BAR0, DUMMY_HOLD, &one, 4), 0);
	reconnect_raw(f);
	efd_wait(f->d->release_req_fd);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
	/* The hold of the old client's memory ends under the new client:
	 * nothing for it to wait for or be told. */
	assert_int_equal(write(f->d->release_fd, &rel, sizeof(rel)), sizeof(rel));
	assert_int_equal(vfuc_dma_map(f->c, RAM_IOVA, RAM_SIZE, 3, f->ram_fd, 0, NULL), 0);
	assert_int_equal(vfuc_dma_unmap(f->c, RAM_IOVA, RAM_SIZE, 0), 0);
}

/* Start a copy out of memory without fd, its doorbell a posted write: the
 * client waits for no reply, so it leaves the DMA_READ the copy starts
 * unanswered. Returns once that request is on the client's socket. */
static void start_unanswered_copy(struct vfu_fixture *f, uint32_t len)
{
	struct { struct vfu_region_access a; uint32_t v; } db = { { DUMMY_DOORBELL, VFU_PCI_BAR0, 4 }, 1 };
	struct pollfd p = { .fd = f->c->fd, .events = POLLIN };

	assert_int_equal(vfuc_dma_map(f->c, RAM_IOVA, RAM_SIZE, 3, -1, 0, NULL), 0);
	assert_int_equal(vfuc_cfg_write16(f->c, 4, 0x0006), 0);
	bar0_w64(f->c, DUMMY_SRC, RAM_IOVA);
	bar0_w64(f->c, DUMMY_DST, RAM_IOVA + len);
	assert_int_equal(vfuc_region_write(f->c, VFU_PCI_BAR0, DUMMY_LEN, &len, 4), 0);
	assert_int_equal(vfuc_send(f->c, 1, VFU_CMD_REGION_WRITE, VFU_F_NO_REPLY, &db, sizeof(db.a) + 4,
				   NULL, 0), 0);
	assert_int_equal(poll(&p, 1, 10000), 1);
}

/* A transfer by messages whose request the client never answers ends
 * anyway, once: with -ECONNRESET when the client leaves, and inside the
 * stop when the server goes away first (vfu_fixture_free fails if the
 * device never heard: before, that end waited for a loop turn that never
 * came, and the transfer leaked). */
static void test_dma_request_unanswered(void **state)
{
	struct vfu_fixture *f = vfu_fixture_new(false, RAM_SIZE);
	uint32_t st = 0;

	assert_non_null(f);
	start_unanswered_copy(f, 4096);
	reconnect_raw(f);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
	assert_int_equal(vfuc_region_read(f->c, VFU_PCI_BAR0, DUMMY_STATUS, &st, 4), 0);
	assert_int_equal(st, ECONNRESET);

	start_unanswered_copy(f, 4096);
	assert_int_equal(vfu_fixture_free(f), 0);
}

static void test_bad_set_irqs(void **state)
{
	struct vfu_client *c = ((struct vfu_fixture *)*state)->c;
	int efd = eventfd(0, EFD_CLOEXEC), fds[2] = { efd, efd };
	const uint32_t EV = VFU_IRQ_DATA_EVENTFD | VFU_IRQ_ACTION_TRIGGER;

	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, EV, 0, DUMMY_VECTORS + 1, NULL, 0), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, EV, DUMMY_VECTORS, 1, fds, 1), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, EV, UINT32_MAX, 2, fds, 2), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, EV, 0, 2, fds, 1), -EINVAL);
	/* (EVENTFD without any fd is valid: de-assign, as QEMU sends it.)
	 * fds with a data type that takes none: */
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_TRIGGER,
				       0, 1, fds, 1), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSI, EV, 0, 1, fds, 1), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_ERR, EV, 0, 1, fds, 1), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, 5, EV, 0, 1, fds, 1), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, EV, 0, 2, fds, 2), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK,
				       0, 1, NULL, 0), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, VFU_IRQ_ACTION_TRIGGER, 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, VFU_IRQ_DATA_NONE | VFU_IRQ_DATA_BOOL |
				       VFU_IRQ_ACTION_TRIGGER, 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, VFU_IRQ_DATA_NONE | VFU_IRQ_ACTION_MASK |
				       VFU_IRQ_ACTION_UNMASK, 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, VFU_IRQ_DATA_BOOL | VFU_IRQ_ACTION_TRIGGER,
				       0, 1, NULL, 0), -EINVAL);   /* bool without its byte */
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_INTX, 0x100 | EV, 0, 1, fds, 1), -EINVAL);
	/* The good one still works. */
	assert_int_equal(vfuc_set_irqs(c, VFU_IRQ_MSIX, EV, 1, 2, fds, 2), 0);
	close(efd);
}

/* ---- a client that never reads ---- */

static void test_client_never_reads(void **state)
{
	struct vfu_fixture *f = *state;
	struct vfu_region_access rd = { 0, VFU_PCI_BAR0, DUMMY_BAR0 };
	int err = 0, sent;

	/* 16 KiB replies it never reads: the server queues up to its bound,
	 * then drops the client; its loop never blocks on the socket. */
	for (sent = 0; sent < 4096 && !err; sent++)
		err = vfuc_send(f->c, (uint16_t)sent, VFU_CMD_REGION_READ, 0, &rd, sizeof(rd), NULL, 0);
	assert_true(err == -EPIPE || err == -ECONNRESET);
	assert_true((size_t)sent * DUMMY_BAR0 > VFU_OUT_MAX);
	efd_wait(f->d->detached_fd);
	vfuc_close(f->c);
	f->c = vfuc_connect(f->d->path);
	assert_int_equal(vfuc_negotiate(f->c, NULL, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_json_parser),
		cmocka_unit_test(test_caps_json_escaped_quote),
		cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_before_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_reply_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_where_none_belong, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_outside_mappings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsealed_then_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_while_in_use, setup, teardown),
		cmocka_unit_test(test_dma_request_unanswered),
		cmocka_unit_test_setup_teardown(test_bad_set_irqs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_never_reads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
