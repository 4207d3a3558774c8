/*
 * The JSON of VERSION (spec "Version"): a client's capabilities are parsed
 * strictly but only as far as needed: a recursive-descent check of RFC 8259
 * syntax (depth-limited) that pulls the integer members of
 * "capabilities" we use and skips any other member. A hand-written parser
 * of a dozen rules is less code to trust than linking a JSON library for
 * one message per connection.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define MAX_DEPTH 8

struct jp {
	const char *p, *end;
	bool err;
};

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool eat(struct jp *j, char ch)
{
	ws(j);
	if (j->p < j->end && *j->p == ch) {
		j->p++;
		return true;
	}
	return false;
}

/* A string; its raw bytes (escapes kept) go to out if it fits. */
static bool string(struct jp *j, char *out, size_t cap)
{
	size_t n = 0;

	if (!eat(j, '"'))
		return false;
	while (j->p < j->end && *j->p != '"') {
		unsigned char ch = (unsigned char)*j->p++;

		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (j->p >= j->end || !strchr("\"\\/bfnrtu", *j->p))
				return false;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (j->p + i >= j->end || !strchr("0123456789abcdefABCDEF", j->p[i]))
						return false;
			}
			/* The escaped character (\" above all) ends nothing. */
			if (out && n + 1 < cap)
				out[n++] = (char)ch;
			ch = (unsigned char)*j->p++;
		}
		if (out && n + 1 < cap)
			out[n++] = (char)ch;
	}
	if (j->p >= j->end)
		return false;
	j->p++;
	if (out)
		out[n < cap ? n : cap - 1] = 0;
	return true;
}

/* A number; *u gets its value if it is a non-negative integer that fits. */
static bool number(struct jp *j, uint64_t *u, bool *is_uint)
{
	const char *s = j->p;
	uint64_t v = 0;
	bool ok = true;

	if (j->p < j->end && *j->p == '-')
		j->p++, ok = false;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return false;
	if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
		return false;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = (unsigned)(*j->p++ - '0');

		if (v > (UINT64_MAX - d) / 10)
			ok = false;
		else
			v = v * 10 + d;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++, ok = false;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return false;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++, ok = false;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return false;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	*is_uint = ok && j->p > s;
	*u = v;
	return true;
}

static bool literal(struct jp *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return false;
	j->p += n;
	return true;
}

static bool value(struct jp *j, int depth, struct vfu_client_caps *caps);

/* An object; members of "capabilities" (caps != NULL) are picked up. */
static bool object(struct jp *j, int depth, struct vfu_client_caps *caps, bool top)
{
	unsigned seen = 0;

	if (depth > MAX_DEPTH || !eat(j, '{'))
		return false;
	if (eat(j, '}'))
		return true;
	do {
		static const char *const known[] = { "max_msg_fds", "max_data_xfer_size",
						     "pgsizes", "max_dma_maps" };
		char key[32];
		int k = -1;

		if (!string(j, key, sizeof(key)) || !eat(j, ':'))
			return false;
		ws(j);
		if (top && !strcmp(key, "capabilities")) {
			if (seen & 0x100 || !object(j, depth + 1, caps, false))
				return false;
			seen |= 0x100;
			continue;
		}
		for (int i = 0; !top && caps && i < 4; i++)
			if (!strcmp(key, known[i]))
				k = i;
		if (k >= 0) {
			uint64_t v;
			bool is_uint;

			/* Our keys: one non-negative integer each, once. */
			if (seen & (1u << k) || !number(j, &v, &is_uint) || !is_uint)
				return false;
			seen |= 1u << k;
			if (k == 2)
				caps->pgsizes = v;
			else if (v > UINT32_MAX)
				return false;
			else if (k == 0)
				caps->max_msg_fds = (uint32_t)v;
			else if (k == 1)
				caps->max_data_xfer_size = (uint32_t)v;
			else
				caps->max_dma_maps = (uint32_t)v;
		} else if (!value(j, depth + 1, NULL)) {
			return false;
		}
	} while (eat(j, ','));
	return eat(j, '}');
}

static bool value(struct jp *j, int depth, struct vfu_client_caps *caps)
{
	uint64_t u;
	bool b;

	if (depth > MAX_DEPTH)
		return false;
	ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return object(j, depth, NULL, false);
	case '[':
		j->p++;
		if (eat(j, ']'))
			return true;
		do {
			if (!value(j, depth + 1, NULL))
				return false;
		} while (eat(j, ','));
		return eat(j, ']');
	case '"':
		return string(j, NULL, 0);
	case 't':
		return literal(j, "true");
	case 'f':
		return literal(j, "false");
	case 'n':
		return literal(j, "null");
	default:
		return number(j, &u, &b);
	}
}

int vfu_caps_parse(const char *json, size_t len, struct vfu_client_caps *out)
{
	struct jp j;

	/* Spec defaults; a client may omit any of them, or the JSON. */
	*out = (struct vfu_client_caps){ .max_msg_fds = 1, .max_data_xfer_size = VFU_MAX_XFER,
					 .pgsizes = VFU_PGSIZE, .max_dma_maps = 65535 };
	if (len == 0)
		return 0;
	if (json[len - 1] != 0 || strlen(json) != len - 1)
		return -EINVAL;     /* must be one NUL-terminated string */
	j = (struct jp){ json, json + len - 1, false };
	if (!object(&j, 0, out, true))
		return -EINVAL;
	ws(&j);
	if (j.p != j.end)
		return -EINVAL;
	/* We map guest memory in 4 KiB pages (spec: a multiple of 4096). */
	if (!(out->pgsizes & VFU_PGSIZE) || out->max_data_xfer_size == 0)
		return -EINVAL;
	return 0;
}

size_t vfu_caps_format(char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u,"
			 "\"pgsizes\":%u,\"max_dma_maps\":%u}}",
			 VFU_MAX_FDS, VFU_MAX_XFER, VFU_PGSIZE, VFU_MAX_DMA_MAPS);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n + 1;
}
