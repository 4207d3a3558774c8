/*
 * A namespace's reservations on disk (common/resv_store.c, format in
 * include/resv_store.h):
 *   - encode / decode round trips, and without PTPL nothing but PTPL kept;
 *   - every flipped byte and every truncation of a file refused, and files
 *     with a valid CRC but an unknown version or an impossible state;
 *   - resv_ns_open: no file (a namespace of an older version) is no
 *     reservation; the offline check agrees with the start; a change is in the file once resv_ns_apply returns and
 *     comes back at the next open; a damaged file is refused with the file
 *     named and the way forward, --recover drops it, --format removes it;
 *   - a failed write or sync refuses the change and leaves state and file;
 *     short reads still load the file;
 *   - crashes: a child process applying changes dies inside a write, a sync
 *     or a rename (injected crash points), or by SIGKILL from the parent
 *     after a given number of acknowledged changes; the file always decodes,
 *     to the last acknowledged state or the one being written.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>

#include "crc32c.h"
#include "fault_io.h"
#include "nvme_wire.h"
#include "resv_store.h"

static const uint8_t A[16] = { 0xa, 1 }, B[16] = { 0xb, 2 }, C[16] = { 0xc, 3 };

static struct resv_state sample(void)
{
	struct resv_state s;
	struct resv_notes n;

	memset(&s, 0, sizeof(s));
	assert_int_equal(resv_register(&s, A, 0, false, 3, 0, 0x1111, &n), 0);
	assert_int_equal(resv_register(&s, B, 0, false, 0, 0, 0x2222, &n), 0);
	assert_int_equal(resv_register(&s, C, 0, false, 0, 0, 0x3333, &n), 0);
	assert_int_equal(resv_acquire(&s, B, 0, false, RESV_EA_RO, 0x2222, 0, &n), 0);
	return s;
}

static void assert_same(const struct resv_state *a, const struct resv_state *b)
{
	assert_int_equal(a->gen, b->gen);
	assert_int_equal(a->rtype, b->rtype);
	assert_int_equal(a->ptpl, b->ptpl);
	assert_int_equal(a->nr, b->nr);
	assert_memory_equal(a->holder, b->holder, 16);
	assert_memory_equal(a->regs, b->regs, sizeof(a->regs[0]) * a->nr);
}

static void recrc(uint8_t *buf, size_t len)
{
	uint32_t c = htole32(crc32c(buf, len - 4));

	memcpy(buf + len - 4, &c, 4);
}

static void test_codec(void **state)
{
	uint8_t buf[RESV_FILE_MAX];
	struct resv_state s = sample(), t;
	const char *why;

	(void)state;
	size_t len = resv_encode(&s, buf);
	assert_int_equal(len, 36 + 32 * 3);
	assert_memory_equal(buf, "ZNSTGTRV", 8);
	assert_int_equal(resv_decode(buf, len, &t, &why), 0);
	assert_same(&s, &t);
	/* All Registrants: no holder index. */
	struct resv_notes n;
	assert_int_equal(resv_release(&s, B, 0, false, RESV_EA_RO, 0x2222, &n), 0);
	assert_int_equal(resv_acquire(&s, C, 0, false, RESV_WE_AR, 0x3333, 0, &n), 0);
	len = resv_encode(&s, buf);
	assert_int_equal(resv_decode(buf, len, &t, &why), 0);
	assert_same(&s, &t);
	/* Without PTPL only PTPL is kept: a power loss clears the rest. */
	s.ptpl = false;
	len = resv_encode(&s, buf);
	assert_int_equal(len, 36);
	assert_int_equal(resv_decode(buf, len, &t, &why), 0);
	assert_int_equal(t.nr, 0);
	assert_int_equal(t.rtype, RESV_NONE);
	assert_false(t.ptpl);
}

static void refused(const uint8_t *buf, size_t len, const char *what)
{
	struct resv_state t;
	const char *why = NULL;

	assert_int_equal(resv_decode(buf, len, &t, &why), -1);
	assert_non_null(why);
	if (what)
		assert_non_null(strstr(why, what));
}

static void test_damage(void **state)
{
	uint8_t buf[RESV_FILE_MAX], bad[RESV_FILE_MAX];
	struct resv_state s = sample();
	size_t len = resv_encode(&s, buf);

	(void)state;
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, buf, len);
			bad[i] ^= (uint8_t)(1u << bit);
			refused(bad, len, NULL);
		}
	for (size_t l = 0; l < len; l++)
		refused(buf, l, NULL);
	memcpy(bad, buf, len);
	bad[len] = 0;
	refused(bad, len + 1, "size");
	/* Valid CRCs over what cannot be. */
	struct { size_t off; uint8_t val; const char *what; } cases[] = {
		{ 8, 2, "version" },          /* a newer format */
		{ 20, 7, "impossible" },      /* RTYPE 7 */
		{ 21, 2, "impossible" },      /* PTPL 2 */
		{ 21, 0, "impossible" },      /* registrants without PTPL */
		{ 24, 3, "impossible" },      /* holder index past the entries */
		{ 24, 0xff, "impossible" },   /* no holder for a Registrants Only type */
		{ 32 + 32, 0xa, "twice" },    /* B's entry made A's host ID ... */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, buf, len);
		bad[cases[i].off] = cases[i].val;
		if (cases[i].off == 24 && cases[i].val == 0xff)
			memset(bad + 24, 0xff, 4);
		if (cases[i].off == 64)
			bad[65] = 1; /* ... whole */
		recrc(bad, len);
		refused(bad, len, cases[i].what);
	}
	/* All Registrants with nobody registered. */
	struct resv_state e;
	memset(&e, 0, sizeof(e));
	e.ptpl = true;
	len = resv_encode(&e, bad);
	bad[20] = RESV_EA_AR;
	recrc(bad, len);
	refused(bad, len, "impossible");
	/* A generation kept without PTPL (the writer never keeps one): found
	 * by the fuzzer, it decoded and then re-encoded to another file. */
	e.ptpl = false;
	len = resv_encode(&e, bad);
	bad[19] = 0x7e;
	recrc(bad, len);
	refused(bad, len, "impossible");
}

/* ---- on disk ---- */

static char dir[] = "/tmp/znstgt-resv-XXXXXX";
static char path[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/znstgt-resv-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/" RESV_FILE_NAME, dir);
	return 0;
}

static int teardown(void **state)
{
	char tmp[PATH_MAX + 8];

	(void)state;
	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	return rmdir(dir);
}

struct op_arg {
	uint8_t rrega, cptpl;
	uint64_t crkey, nrkey;
};

static uint16_t op_register(struct resv_state *s, void *arg)
{
	struct op_arg *a = arg;
	struct resv_notes n;

	return resv_register(s, A, a->rrega, false, a->cptpl, a->crkey, a->nrkey, &n);
}

static uint16_t op_sample(struct resv_state *s, void *arg)
{
	(void)arg;
	*s = sample();
	return 0;
}

static struct resv_ns *open_ok(bool format, bool recover)
{
	struct resv_ns *r = NULL;
	char err[512] = "";

	if (resv_ns_open(dir, 1, format, recover, &r, err, sizeof(err)))
		fail_msg("resv_ns_open: %s", err);
	return r;
}

static void write_file(const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void test_open(void **state)
{
	struct resv_state s, t, want = sample();
	struct resv_ns *r;
	char err[512];

	(void)state;
	/* No file: no reservation, and nothing written by opening. */
	r = open_ok(false, false);
	resv_ns_get(r, &s);
	assert_int_equal(s.nr, 0);
	assert_false(s.ptpl);
	assert_int_equal(access(path, F_OK), -1);
	const char *none = "unset";
	assert_int_equal(resv_file_check(dir, &none), 0);
	/* A change is on disk when apply returns. */
	assert_int_equal(resv_ns_apply(r, op_sample, NULL), 0);
	assert_true(resv_ns_conflict(r, A, RESV_ACCESS_WRITE) == false);
	assert_true(resv_ns_conflict(r, (const uint8_t[16]){ 0x77 }, RESV_ACCESS_READ));
	resv_ns_close(r);
	r = open_ok(false, false);
	resv_ns_get(r, &t);
	assert_same(&want, &t);
	/* A failed action changes neither state nor file. */
	struct op_arg bad = { .rrega = 0, .nrkey = 0x9999 }; /* A registered with another key */
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(resv_ns_apply(r, op_register, &bad), nvme_err(NVME_SC_RESERVATION_CONFLICT));
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	/* PTPL cleared: the next power-up has nothing. */
	struct op_arg off = { .rrega = 2, .cptpl = 2, .crkey = 0x1111, .nrkey = 0x1111 };
	assert_int_equal(resv_ns_apply(r, op_register, &off), 0);
	resv_ns_close(r);
	r = open_ok(false, false);
	resv_ns_get(r, &t);
	assert_int_equal(t.nr, 0);
	assert_false(resv_ns_conflict(r, C, RESV_ACCESS_WRITE));
	resv_ns_close(r);

	/* Damaged: refused, naming the file and the ways forward. */
	uint8_t buf[RESV_FILE_MAX];
	size_t len = resv_encode(&want, buf);
	buf[40] ^= 0x10;
	write_file(buf, len);
	r = NULL;
	assert_int_equal(resv_ns_open(dir, 3, false, false, &r, err, sizeof(err)), -1);
	assert_null(r);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "damaged"));
	assert_non_null(strstr(err, "--recover NQN/3"));
	assert_non_null(strstr(err, "--format"));
	/* The offline check (znstgt-ctl check) says the same. */
	const char *why = NULL;
	assert_int_equal(resv_file_check(dir, &why), 1);
	assert_non_null(strstr(why, "damaged"));
	/* The file is left as it was. */
	uint8_t again[RESV_FILE_MAX];
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, again, sizeof(again)), (ssize_t)len);
	close(fd);
	assert_memory_equal(again, buf, len);
	/* --recover drops it (a valid empty file is written). */
	r = open_ok(false, true);
	resv_ns_get(r, &t);
	assert_int_equal(t.nr, 0);
	resv_ns_close(r);
	r = open_ok(false, false);
	resv_ns_close(r);
	/* --format removes whatever was there. */
	write_file(buf, len);
	r = open_ok(true, false);
	resv_ns_get(r, &t);
	assert_int_equal(t.nr, 0);
	assert_int_equal(access(path, F_OK), -1);
	resv_ns_close(r);
	/* A file of a newer version: refused, saying so. */
	len = resv_encode(&want, buf);
	buf[8] = 2;
	recrc(buf, len);
	write_file(buf, len);
	assert_int_equal(resv_ns_open(dir, 1, false, false, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "version"));
}

static void test_write_fault(void **state)
{
	struct resv_state s, want = sample();
	struct resv_ns *r = open_ok(false, false);
	uint32_t points[] = { FAULT_META_WRITE, FAULT_META_SYNC };

	(void)state;
	assert_int_equal(resv_ns_apply(r, op_sample, NULL), 0);
	for (size_t i = 0; i < 2; i++) {
		struct fault_plan p = { .seed = 1, .points = points[i],
					.kinds = FAULT_KIND(FAULT_EIO), .one_in = 1 };
		struct op_arg rep = { .rrega = 2, .crkey = 0x1111, .nrkey = 0x4444 };

		fault_io_arm(&p);
		uint16_t st = resv_ns_apply(r, op_register, &rep);
		fault_io_disarm();
		assert_int_equal(st, nvme_err(NVME_SC_INTERNAL));
		resv_ns_get(r, &s);
		assert_same(&want, &s);
	}
	resv_ns_close(r);
	r = open_ok(false, false);
	resv_ns_get(r, &s);
	assert_same(&want, &s);
	resv_ns_close(r);
	/* Reads that return part of what was asked: the file still loads. */
	struct fault_plan p = { .seed = 7, .points = FAULT_META_READ,
				.kinds = FAULT_KIND(FAULT_SHORT), .one_in = 1 };
	fault_io_arm(&p);
	r = open_ok(false, false);
	uint64_t injected = fault_io_injected();
	fault_io_disarm();
	assert_true(injected > 0);
	resv_ns_get(r, &s);
	assert_same(&want, &s);
	resv_ns_close(r);
}

/*
 * The directory's sync fails, after the rename put the new file in place:
 * the change is refused (Internal Error) and the state stays as it was, so
 * the file must too - else the next start brings back a change the host
 * was told failed.
 */
static void test_dir_sync_fault(void **state)
{
	struct resv_state s, want = sample();
	struct resv_ns *r = open_ok(false, false);
	/* Calls at META_SYNC per change: the temporary file's fsync, then the
	 * directory's: let the first pass, fail the second. */
	struct fault_plan p = { .seed = 1, .points = FAULT_META_SYNC,
				.kinds = FAULT_KIND(FAULT_EIO), .one_in = 1, .skip = 1,
				.count = 1 };
	struct op_arg rep = { .rrega = 2, .crkey = 0x1111, .nrkey = 0x4444 };

	(void)state;
	assert_int_equal(resv_ns_apply(r, op_sample, NULL), 0);
	fault_io_arm(&p);
	uint16_t st = resv_ns_apply(r, op_register, &rep);
	uint64_t injected = fault_io_injected();
	fault_io_disarm();
	assert_int_equal(injected, 1);
	assert_int_equal(st, nvme_err(NVME_SC_INTERNAL));
	resv_ns_get(r, &s);
	assert_same(&want, &s);
	resv_ns_close(r);
	/* A restart: the refused Replace must not be there. */
	r = open_ok(false, false);
	resv_ns_get(r, &s);
	resv_ns_close(r);
	if (s.regs[0].key == 0x4444)
		fail_msg("refused Replace (key 0x4444) is in %s after a restart", path);
	assert_same(&want, &s);
}

/*
 * The child: PTPL on, then Replace after Replace (key i -> i + 1), writing
 * each acknowledged generation to fd. Killed (or kills itself) at some
 * point; never returns.
 */
static void child(int fd, const struct fault_plan *p)
{
	struct resv_ns *r;
	char err[256];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (resv_ns_open(dir, 1, true, false, &r, err, sizeof(err)))
		_exit(2);
	struct op_arg reg = { .rrega = 0, .cptpl = 3, .nrkey = 0 };
	if (resv_ns_apply(r, op_register, &reg))
		_exit(3);
	if (p)
		fault_io_arm(p);
	for (uint64_t k = 0;; k++) {
		struct op_arg rep = { .rrega = 2, .crkey = k, .nrkey = k + 1 };
		uint32_t gen = (uint32_t)k + 2;

		if (resv_ns_apply(r, op_register, &rep))
			_exit(4);
		if (write(fd, &gen, sizeof(gen)) != sizeof(gen))
			_exit(5);
		if (k > 100000)
			_exit(6);
	}
}

/* After the child died: the file decodes to the last acknowledged change
 * or the one after it, never anything else. */
static void check_after_crash(int rfd, int status, uint32_t last)
{
	uint32_t gen;
	struct resv_state s;

	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	while (read(rfd, &gen, sizeof(gen)) == sizeof(gen))
		last = gen;
	struct resv_ns *r = open_ok(false, false);
	resv_ns_get(r, &s);
	resv_ns_close(r);
	assert_true(s.ptpl);
	assert_int_equal(s.nr, 1);
	if (s.gen != last && s.gen != last + 1)
		fail_msg("generation %u on disk, %u acknowledged", s.gen, last);
	assert_int_equal(s.regs[0].key, s.gen - 1);
}

static void run_child(const struct fault_plan *p, int kill_after)
{
	int fds[2];
	int status;

	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(fds[1], p);
	}
	close(fds[1]);
	uint32_t last = 1; /* the registration before the first Replace */
	for (int i = 0; i < kill_after; i++)
		assert_int_equal(read(fds[0], &last, sizeof(last)), sizeof(last));
	if (kill_after)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	check_after_crash(fds[0], status, last);
	close(fds[0]);
}

static void test_crash(void **state)
{
	(void)state;
	/* A crash at each of the first write and sync points of the changes
	 * after the first: in the temporary file's write, its sync, the
	 * directory's sync (after the rename). */
	for (uint32_t skip = 0; skip < 12; skip++) {
		struct fault_plan p = { .seed = skip, .points = FAULT_META_WRITE | FAULT_META_SYNC,
					.kinds = FAULT_KIND(FAULT_CRASH), .one_in = 1,
					.skip = skip };
		run_child(&p, 0);
	}
	/* SIGKILL from outside after some acknowledged changes. */
	static const int after[] = { 1, 5, 40, 200 };
	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++)
		run_child(NULL, after[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_damage),
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_sync_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
