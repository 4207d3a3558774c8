/*
 * NVMe secrets in their interchange formats (include/nvme_keys.h): parse,
 * format, load from a private file, wipe.
 *
 * Every buffer that held secret bytes (decoded text, file contents) is
 * cleansed before it goes out of scope, and no error message ever carries
 * any part of the text.
 */
#include "nvme_keys.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Longest text form: prefix, "XX:", base64 of 64 + 4 bytes (92), ':'. */
#define SECRET_TEXT_MAX 128

struct secret_format {
	const char *prefix;
	uint8_t max_hash;   /* highest HH/XX value */
	const char *name;   /* for error messages */
};

static const struct secret_format formats[] = {
	[NVME_SECRET_TLS_PSK] = { "NVMeTLSkey-1:", 2, "TLS PSK" },
	[NVME_SECRET_DHCHAP] = { "DHHC-1:", 3, "DH-HMAC-CHAP secret" },
};

uint32_t nvme_key_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	/* Bitwise IEEE CRC-32: keys are at most 64 bytes, a table buys nothing. */
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int nvme_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	size_t pad = 0;
	uint8_t tmp[SECRET_TEXT_MAX];
	int n;

	/*
	 * EVP_DecodeBlock skips white space and counts padding as output, so
	 * check the exact form here first and correct its length afterwards.
	 */
	if (inlen == 0 || inlen % 4 || inlen > sizeof(tmp) / 3 * 4)
		return -1;
	if (in[inlen - 1] == '=')
		pad = in[inlen - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < inlen - pad; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad > outlen) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return -1;
	}
	n -= (int)pad;
	memcpy(out, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n;
}

int nvme_base64_encode(const uint8_t *in, size_t inlen, char *out, size_t outlen)
{
	if (inlen > (size_t)INT32_MAX / 2 || (inlen + 2) / 3 * 4 + 1 > outlen)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)inlen);
}

static int valid_length(enum nvme_secret_kind kind, uint8_t hash, size_t len)
{
	if (kind == NVME_SECRET_TLS_PSK) {
		if (hash == 1)
			return len == 32;
		if (hash == 2)
			return len == 48;
		return len == 32 || len == 48;   /* 00: used as the retained PSK */
	}
	return len == 32 || len == 48 || len == 64;
}

struct nvme_secret *nvme_secret_parse(enum nvme_secret_kind kind, const char *text,
				      char *err, size_t errlen)
{
	const struct secret_format *f;
	uint8_t raw[NVME_SECRET_MAX + 4 + 2];
	struct nvme_secret *s = NULL;
	const char *p, *end;
	size_t plen;
	uint8_t hash;
	int n;

	if ((unsigned)kind >= sizeof(formats) / sizeof(formats[0]) || !text) {
		errmsg(err, errlen, "no secret given");
		return NULL;
	}
	f = &formats[kind];
	plen = strlen(f->prefix);
	if (strncmp(text, f->prefix, plen) != 0) {
		errmsg(err, errlen, "%s does not start with \"%s\"", f->name, f->prefix);
		return NULL;
	}
	p = text + plen;
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] != ':') {
		errmsg(err, errlen, "%s: hash field is not two digits and ':'", f->name);
		return NULL;
	}
	hash = (uint8_t)((p[0] - '0') * 10 + (p[1] - '0'));
	if (hash > f->max_hash) {
		errmsg(err, errlen, "%s: unknown hash identifier %02u", f->name, hash);
		return NULL;
	}
	p += 3;
	end = strchr(p, ':');
	if (!end || end[1] != '\0') {
		errmsg(err, errlen, "%s: must end with the base64 field and ':'", f->name);
		return NULL;
	}
	n = nvme_base64_decode(p, (size_t)(end - p), raw, sizeof(raw));
	if (n < 0) {
		errmsg(err, errlen, "%s: key field is not valid base64 of a key", f->name);
		goto out;
	}
	if (n < 4 || !valid_length(kind, hash, (size_t)n - 4)) {
		errmsg(err, errlen, "%s: key length %d is not valid for hash %02u", f->name,
		       n < 4 ? 0 : n - 4, hash);
		goto out;
	}
	n -= 4;
	if (nvme_key_crc32(raw, (size_t)n) !=
	    ((uint32_t)raw[n] | (uint32_t)raw[n + 1] << 8 | (uint32_t)raw[n + 2] << 16 |
	     (uint32_t)raw[n + 3] << 24)) {
		errmsg(err, errlen, "%s: CRC-32 does not match the key", f->name);
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	s->kind = kind;
	s->hash = hash;
	s->len = (uint8_t)n;
	memcpy(s->key, raw, (size_t)n);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	return s;
}

struct nvme_secret *nvme_secret_load_file(enum nvme_secret_kind kind, const char *path,
					  char *err, size_t errlen)
{
	char buf[SECRET_TEXT_MAX + 2];
	struct nvme_secret *s = NULL;
	struct stat st;
	size_t len = 0;
	char *start;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errmsg(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		errmsg(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errmsg(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		errmsg(err, errlen, "%s: secret file is accessible by group or others "
		       "(mode %04o); chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			errmsg(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == sizeof(buf) - 1) {
			errmsg(err, errlen, "%s: too long for a secret", path);
			goto out;
		}
	}
	buf[len] = '\0';
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
		       buf[len - 1] == '\t'))
		buf[--len] = '\0';
	start = buf;
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	s = nvme_secret_parse(kind, start, err, errlen);
	if (!s) {
		/* Say which file; the parser's message never quotes the secret. */
		char why[160];
		snprintf(why, sizeof(why), "%s", err);
		errmsg(err, errlen, "%s: %s", path, why);
	}
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return s;
}

int nvme_secret_format(enum nvme_secret_kind kind, uint8_t hash, const uint8_t *key,
		       size_t len, char *out, size_t outlen)
{
	uint8_t raw[NVME_SECRET_MAX + 4];
	char b64[SECRET_TEXT_MAX];
	uint32_t crc;
	int n, r = -1;

	if ((unsigned)kind >= sizeof(formats) / sizeof(formats[0]) ||
	    hash > formats[kind].max_hash || !valid_length(kind, hash, len))
		return -1;
	crc = nvme_key_crc32(key, len);
	memcpy(raw, key, len);
	raw[len] = (uint8_t)crc;
	raw[len + 1] = (uint8_t)(crc >> 8);
	raw[len + 2] = (uint8_t)(crc >> 16);
	raw[len + 3] = (uint8_t)(crc >> 24);
	n = nvme_base64_encode(raw, len + 4, b64, sizeof(b64));
	if (n >= 0) {
		r = snprintf(out, outlen, "%s%02u:%s:", formats[kind].prefix, hash, b64);
		if (r < 0 || (size_t)r >= outlen) {
			if (outlen)
				OPENSSL_cleanse(out, outlen);
			r = -1;
		}
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	return r;
}

struct nvme_secret *nvme_secret_dup(const struct nvme_secret *s)
{
	struct nvme_secret *d = malloc(sizeof(*d));

	if (d)
		memcpy(d, s, sizeof(*d));
	return d;
}

void nvme_secret_free(struct nvme_secret *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
