/*
 * The ns.id file (format in ns_id.h).
 */
#include "ns_id.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fault_io.h"

struct ns_id_file {
	char magic[8];               /* "ZNSTGTID" */
	uint32_t version;            /* 1 */
	uint32_t rsvd;
	uint8_t uuid[16];
	uint32_t rsvd2;
	uint32_t crc;                /* CRC32C of the bytes before it */
} __attribute__((packed));

_Static_assert(sizeof(struct ns_id_file) == 40, "ns.id layout");

int ns_id_write(const char *path, const uint8_t uuid[16])
{
	struct ns_id_file f = { .magic = "ZNSTGTID", .version = htole32(1) };
	memcpy(f.uuid, uuid, 16);
	f.crc = htole32(crc32c(&f, offsetof(struct ns_id_file, crc)));
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = fio_pwrite(FIO_META, fd, &f, sizeof(f), 0) == (ssize_t)sizeof(f) &&
		 !fio_fsync(FIO_META, fd) ? 0 : -EIO;
	close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	return rc;
}

int ns_id_read(const char *path, uint8_t uuid[16], const char **why)
{
	struct ns_id_file f;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*why = NULL;
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		*why = "missing";
		return 1;
	}
	ssize_t n = fio_pread_full(FIO_META, fd, &f, sizeof(f), 0);
	close(fd);
	/* A read error is no damage: the file may hold the UUID still, and
	 * --recover would write a new one over it. */
	if (n < 0)
		return (int)n;
	if (n != (ssize_t)sizeof(f) || memcmp(f.magic, "ZNSTGTID", 8) ||
	    le32toh(f.crc) != crc32c(&f, offsetof(struct ns_id_file, crc)) ||
	    le32toh(f.version) != 1) {
		*why = "damaged";
		return 1;
	}
	memcpy(uuid, f.uuid, 16);
	return 0;
}
