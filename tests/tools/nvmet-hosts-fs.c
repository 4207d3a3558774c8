/*
 * nvmet-hosts-fs: the host attributes of Linux nvmet's configfs
 * (hosts/NQN/dhchap_key, dhchap_ctrl_key, dhchap_hash, dhchap_dhgroup) as a
 * FUSE file system whose writes go to the blktests hook, for a target that
 * is not nvmet (doc/blktests.md). Its root is the hosts/ directory.
 *
 *   nvmet-hosts-fs MOUNTPOINT HOOK [LOG]
 *
 * blktests changes a host's DH-HMAC-CHAP keys, hash and DH group between
 * connects (nvme/042-045) by writing those files itself, even when a hook
 * serves the target, and connects right after the write. Mounted on
 * /sys/kernel/config/nvmet/hosts (nvmet's subsystems/ and ports/ stay as
 * they are), this makes such a write run
 * `HOOK host-attr --hostnqn NQN ATTR VALUE`, which applies the value to
 * the running target, and the write(2) returns only once the hook has
 * finished: the connect that follows meets the new value, with no window
 * in between. A value the hook refuses fails the write with EINVAL, as
 * nvmet's configfs does with a malformed key. A read runs
 * `HOOK host-attr --hostnqn NQN ATTR`.
 *
 * Every host NQN exists in the root (blktests never creates one when a
 * hook is set); nothing else does. Mounts, then goes to the background and
 * serves until unmounted, its messages and the hook's (why a value was
 * refused) appended to LOG (default: none); needs root (mount(2) and
 * /dev/fuse). The FUSE
 * protocol is <linux/fuse.h>: one request per read(2) from /dev/fuse, one
 * answer per write(2), handled one at a time.
 *
 * Exit status: 0 mounted (or unmounted, for the background process), 1 an
 * error, 2 a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Nodes: the root (FUSE_ROOT_ID), the hosts in it, their attributes. */
#define NODE_HOST0 16      /* host i: NODE_HOST0 + i * NODE_STRIDE, then its attributes */
#define NODE_STRIDE 8
#define MAX_HOSTS 64
#define NQN_MAX 223        /* NVMe Base 2.0, 4.5 */
#define VALUE_MAX 4096     /* a configfs attribute is one page */
#define MAX_WRITE 4096

static const char *const attrs[] = { "dhchap_key", "dhchap_ctrl_key", "dhchap_hash",
				     "dhchap_dhgroup" };
#define NR_ATTRS (sizeof(attrs) / sizeof(attrs[0]))

static char hosts[MAX_HOSTS][NQN_MAX + 1];
static int nr_hosts;
static const char *hook;
static int fuse_fd;
static uint64_t started;

/* ---- the tree ---- */

enum kind { K_NONE, K_ROOT, K_HOST, K_ATTR };

static enum kind kind_of(uint64_t node, int *host, int *attr)
{
	if (node == FUSE_ROOT_ID)
		return K_ROOT;
	if (node < NODE_HOST0 || (node - NODE_HOST0) / NODE_STRIDE >= (uint64_t)nr_hosts)
		return K_NONE;
	*host = (int)((node - NODE_HOST0) / NODE_STRIDE);
	*attr = (int)((node - NODE_HOST0) % NODE_STRIDE) - 1;
	if (*attr < 0)
		return K_HOST;
	return *attr < (int)NR_ATTRS ? K_ATTR : K_NONE;
}

static uint64_t host_node(int i) { return NODE_HOST0 + (uint64_t)i * NODE_STRIDE; }

/* The host named name[0..len) (not NUL-terminated), added when new; -1 if
 * the name cannot be an NQN or the table is full. */
static int host_index(const char *name, size_t len)
{
	if (len == 0 || len > NQN_MAX || memchr(name, '/', len))
		return -1;
	for (int i = 0; i < nr_hosts; i++)
		if (strlen(hosts[i]) == len && memcmp(hosts[i], name, len) == 0)
			return i;
	if (nr_hosts == MAX_HOSTS)
		return -1;
	memcpy(hosts[nr_hosts], name, len);
	hosts[nr_hosts][len] = '\0';
	return nr_hosts++;
}

static void fill_attr(uint64_t node, enum kind k, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->mode = k == K_ATTR ? S_IFREG | 0600 : S_IFDIR | 0755;
	a->nlink = k == K_ATTR ? 1 : 2;
	a->atime = a->mtime = a->ctime = started;
	a->blksize = 4096;
}

/* ---- answers ---- */

static void answer(uint64_t unique, int error, const void *data, size_t len)
{
	struct fuse_out_header h = {
		.len = (uint32_t)(sizeof(h) + (error ? 0 : len)), .error = -error, .unique = unique,
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, error ? 0 : len } };

	/* ENOENT: the request was interrupted and is gone; nothing to do. */
	if (writev(fuse_fd, iov, 2) < 0 && errno != ENOENT)
		fprintf(stderr, "nvmet-hosts-fs: answering: %s\n", strerror(errno));
}

static void answer_entry(uint64_t unique, uint64_t node, enum kind k)
{
	struct fuse_entry_out e = { .nodeid = node };

	/* entry_valid and attr_valid 0: the kernel asks again every time. */
	fill_attr(node, k, &e.attr);
	answer(unique, 0, &e, sizeof(e));
}

/* ---- the hook ---- */

/* Run HOOK host-attr --hostnqn HOST ATTR [VALUE]; its stdout (at most
 * outlen - 1 bytes) into out when out is not NULL. Returns its exit status,
 * or -1 if it could not run. */
static int run_hook(const char *host, const char *attr, const char *value, char *out,
		    size_t outlen)
{
	const char *argv[] = { hook, "host-attr", "--hostnqn", host, attr, value, NULL };
	int pfd[2] = { -1, -1 }, status;
	size_t got = 0;
	pid_t pid;

	if (out && pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		if (out && dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(127);
		execv(hook, (char *const *)argv);
		fprintf(stderr, "nvmet-hosts-fs: %s: %s\n", hook, strerror(errno));
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		while (pid > 0) {
			char sink[256];
			ssize_t n = got + 1 < outlen ? read(pfd[0], out + got, outlen - 1 - got)
						     : read(pfd[0], sink, sizeof(sink));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (got + 1 < outlen)
				got += (size_t)n;
		}
		out[got] = '\0';
		close(pfd[0]);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- requests ---- */

static void do_lookup(uint64_t unique, uint64_t parent, const char *name, size_t len)
{
	int host = -1, attr = -1;
	enum kind k = kind_of(parent, &host, &attr);

	if (k == K_ROOT) {
		host = host_index(name, len);
		if (host < 0)
			return answer(unique, ENOENT, NULL, 0);
		return answer_entry(unique, host_node(host), K_HOST);
	}
	if (k == K_HOST)
		for (size_t a = 0; a < NR_ATTRS; a++)
			if (strlen(attrs[a]) == len && memcmp(attrs[a], name, len) == 0)
				return answer_entry(unique, host_node(host) + 1 + a, K_ATTR);
	answer(unique, ENOENT, NULL, 0);
}

/* One directory entry at buf + *used, if it fits; off is the next entry's. */
static int add_dirent(char *buf, size_t size, size_t *used, uint64_t ino, uint64_t off,
		      const char *name, unsigned type)
{
	size_t namelen = strlen(name), len = FUSE_DIRENT_SIZE(&(struct fuse_dirent){
		.namelen = (uint32_t)namelen });
	struct fuse_dirent *d = (struct fuse_dirent *)(buf + *used);

	if (*used + len > size)
		return -1;
	memset(d, 0, len);
	d->ino = ino;
	d->off = off;
	d->namelen = (uint32_t)namelen;
	d->type = type;
	memcpy(d->name, name, namelen);
	*used += len;
	return 0;
}

static void do_readdir(uint64_t unique, uint64_t node, const struct fuse_read_in *in)
{
	static char buf[MAX_WRITE];
	int host = -1, attr = -1;
	enum kind k = kind_of(node, &host, &attr);
	size_t size = in->size < sizeof(buf) ? in->size : sizeof(buf), used = 0;
	uint64_t n = 2;

	if (k == K_ROOT)
		n += (uint64_t)nr_hosts;
	else if (k == K_HOST)
		n += NR_ATTRS;
	else
		return answer(unique, ENOTDIR, NULL, 0);
	for (uint64_t i = in->offset; i < n; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : NULL;
		uint64_t ino = node;
		unsigned type = S_IFDIR >> 12;

		if (!name && k == K_ROOT) {
			name = hosts[i - 2];
			ino = host_node((int)(i - 2));
		} else if (!name) {
			name = attrs[i - 2];
			ino = host_node(host) + 1 + (i - 2);
			type = S_IFREG >> 12;
		}
		if (add_dirent(buf, size, &used, ino, i + 1, name, type) != 0)
			break;
	}
	answer(unique, 0, buf, used);
}

static void do_read(uint64_t unique, int host, int attr, const struct fuse_read_in *in)
{
	static char value[VALUE_MAX + 1];
	size_t len;

	if (run_hook(hosts[host], attrs[attr], NULL, value, sizeof(value)) != 0)
		return answer(unique, EIO, NULL, 0);
	len = strlen(value);
	if (in->offset >= len)
		return answer(unique, 0, NULL, 0);
	len -= in->offset;
	answer(unique, 0, value + in->offset, len < in->size ? len : in->size);
}

static void do_write(uint64_t unique, int host, int attr, const struct fuse_write_in *in,
		     const char *data, size_t avail)
{
	char value[VALUE_MAX + 1];
	size_t len = in->size;
	struct fuse_write_out out = { .size = in->size };

	/* One write from the start, as configfs takes it (echo VALUE > FILE). */
	if (in->offset != 0 || len > avail || len > VALUE_MAX)
		return answer(unique, EINVAL, NULL, 0);
	memcpy(value, data, len);
	while (len && (value[len - 1] == '\n' || value[len - 1] == ' '))
		len--;
	value[len] = '\0';
	if (len == 0 || strlen(value) != len)
		return answer(unique, EINVAL, NULL, 0);
	if (run_hook(hosts[host], attrs[attr], value, NULL, 0) != 0)
		return answer(unique, EINVAL, NULL, 0);
	answer(unique, 0, &out, sizeof(out));
}

static void do_init(uint64_t unique, const struct fuse_init_in *in)
{
	struct fuse_init_out out = {
		.major = FUSE_KERNEL_VERSION,
		.minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION,
		.max_readahead = in->max_readahead,
		.max_write = MAX_WRITE,
	};

	if (in->major != FUSE_KERNEL_VERSION) {
		fprintf(stderr, "nvmet-hosts-fs: FUSE protocol %u, expected %u\n", in->major,
			FUSE_KERNEL_VERSION);
		return answer(unique, EPROTO, NULL, 0);
	}
	answer(unique, 0, &out, sizeof(out));
}

/* One request of len bytes; false once the file system goes. */
static int handle(const char *req, size_t len)
{
	const struct fuse_in_header *h = (const void *)req;
	const char *arg = req + sizeof(*h);
	size_t arglen = len - sizeof(*h);
	int host = -1, attr = -1;
	enum kind k = kind_of(h->nodeid, &host, &attr);
	struct fuse_attr_out ao = { 0 };
	struct fuse_open_out oo = { 0 };
	struct fuse_statfs_out so = { .st = { .bsize = 4096, .namelen = 255 } };

	switch (h->opcode) {
	case FUSE_INIT:
		if (arglen < 16) /* major, minor, max_readahead, flags: every kernel sends them */
			return answer(h->unique, EINVAL, NULL, 0), 1;
		do_init(h->unique, (const void *)arg);
		return 1;
	case FUSE_DESTROY:
		answer(h->unique, 0, NULL, 0);
		return 0;
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return 1; /* no answer */
	case FUSE_LOOKUP:
		if (!arglen || arg[arglen - 1] != '\0')
			return answer(h->unique, EINVAL, NULL, 0), 1;
		do_lookup(h->unique, h->nodeid, arg, strlen(arg));
		return 1;
	case FUSE_GETATTR:
	case FUSE_SETATTR: /* the truncation of an open with O_TRUNC: nothing to do */
		if (k == K_NONE)
			return answer(h->unique, ENOENT, NULL, 0), 1;
		fill_attr(h->nodeid, k, &ao.attr);
		answer(h->unique, 0, &ao, sizeof(ao));
		return 1;
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		if (k == K_NONE)
			return answer(h->unique, ENOENT, NULL, 0), 1;
		if ((h->opcode == FUSE_OPEN) != (k == K_ATTR))
			return answer(h->unique, k == K_ATTR ? ENOTDIR : EISDIR, NULL, 0), 1;
		/* direct I/O: every read and write comes here, whatever the size */
		oo.open_flags = h->opcode == FUSE_OPEN ? FOPEN_DIRECT_IO : 0;
		answer(h->unique, 0, &oo, sizeof(oo));
		return 1;
	case FUSE_READ:
	case FUSE_READDIR:
		if (arglen < sizeof(struct fuse_read_in))
			return answer(h->unique, EINVAL, NULL, 0), 1;
		if (h->opcode == FUSE_READDIR)
			do_readdir(h->unique, h->nodeid, (const void *)arg);
		else if (k != K_ATTR)
			answer(h->unique, EISDIR, NULL, 0);
		else
			do_read(h->unique, host, attr, (const void *)arg);
		return 1;
	case FUSE_WRITE:
		if (arglen < sizeof(struct fuse_write_in) || k != K_ATTR)
			return answer(h->unique, EINVAL, NULL, 0), 1;
		do_write(h->unique, host, attr, (const void *)arg, arg + sizeof(struct fuse_write_in),
			 arglen - sizeof(struct fuse_write_in));
		return 1;
	case FUSE_STATFS:
		answer(h->unique, 0, &so, sizeof(so));
		return 1;
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_ACCESS:
		answer(h->unique, 0, NULL, 0);
		return 1;
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_SYMLINK:
	case FUSE_CREATE:
		answer(h->unique, EPERM, NULL, 0);
		return 1;
	default:
		answer(h->unique, ENOSYS, NULL, 0);
		return 1;
	}
}

static void serve(void)
{
	/* at least FUSE_MIN_READ_BUFFER, and room for the largest write */
	static char buf[MAX_WRITE + 8192] __attribute__((aligned(8)));

	for (;;) {
		ssize_t n = read(fuse_fd, buf, sizeof(buf));

		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue;
		if (n < 0 && errno == ENODEV) /* unmounted */
			return;
		if (n < 0) {
			fprintf(stderr, "nvmet-hosts-fs: reading requests: %s\n", strerror(errno));
			exit(1);
		}
		if ((size_t)n < sizeof(struct fuse_in_header) ||
		    ((const struct fuse_in_header *)buf)->len != (uint32_t)n) {
			fprintf(stderr, "nvmet-hosts-fs: a request of %zd bytes does not add up\n", n);
			exit(1);
		}
		if (!handle(buf, (size_t)n))
			return;
	}
}

int main(int argc, char **argv)
{
	char opts[128];
	int logfd, devnull;
	pid_t pid;

	if (argc < 3 || argc > 4 || argv[2][0] != '/') {
		fprintf(stderr, "usage: nvmet-hosts-fs MOUNTPOINT HOOK [LOG] (HOOK an absolute path)\n");
		return 2;
	}
	hook = argv[2];
	if (access(hook, X_OK) != 0) {
		fprintf(stderr, "nvmet-hosts-fs: %s: %s\n", hook, strerror(errno));
		return 1;
	}
	logfd = open(argc == 4 ? argv[3] : "/dev/null", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fprintf(stderr, "nvmet-hosts-fs: %s: %s\n", argc == 4 ? argv[3] : "/dev/null",
			strerror(errno));
		return 1;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		fprintf(stderr, "nvmet-hosts-fs: /dev/null: %s\n", strerror(errno));
		return 1;
	}
	started = (uint64_t)time(NULL);
	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse_fd < 0) {
		fprintf(stderr, "nvmet-hosts-fs: /dev/fuse: %s\n", strerror(errno));
		return 1;
	}
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other",
		 fuse_fd);
	if (mount("nvmet-hosts-fs", argv[1], "fuse.nvmet-hosts-fs", MS_NOSUID | MS_NODEV, opts)) {
		fprintf(stderr, "nvmet-hosts-fs: mount on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* Mounted: the caller may write at once (the kernel queues the
	 * requests until the background process reads them). */
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "nvmet-hosts-fs: fork: %s\n", strerror(errno));
		umount2(argv[1], MNT_DETACH);
		return 1;
	}
	if (pid > 0)
		return 0;
	/* Nothing of the caller's stays open: a caller reading our output
	 * (a command substitution) sees it end now. */
	setsid();
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0 ||
	    dup2(logfd, STDERR_FILENO) < 0)
		return 1;
	serve();
	return 0;
}
