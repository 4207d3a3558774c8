/*
 * Value syntax shared by every configuration file. Each parser accepts one
 * exact form and rejects everything else, so "1.5G", "64 M" or "0x10" are
 * errors rather than something silently read as a different number.
 */
#include "config_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
	if (is_digit(c))
		return c - '0';
	return (c | 0x20) - 'a' + 10;
}

/* Leading decimal digits of s into *v; returns the first non-digit, or NULL
 * if there are no digits or the number does not fit 64 bits. */
static const char *parse_dec(const char *s, uint64_t *v)
{
	if (!is_digit(*s))
		return NULL;
	uint64_t x = 0;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return NULL;
		x = x * 10 + d;
	}
	*v = x;
	return s;
}

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *end = s ? parse_dec(s, &v) : NULL;
	if (!end)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: return -1;
	}
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

const char *cfg_bad(char *why, size_t whylen, const char *value, const char *what)
{
	snprintf(why, whylen, "\"%s\" %s", value, what);
	return why;
}

const char *cfg_fmt_size(uint64_t v, char buf[32])
{
	static const char suffix[] = "KMGT";
	int unit = -1;
	while (unit < 3 && v && (v & ((1ull << (10 * (unit + 2))) - 1)) == 0)
		unit++;
	if (unit < 0)
		snprintf(buf, 32, "%llu", (unsigned long long)v);
	else
		snprintf(buf, 32, "%llu%c", (unsigned long long)(v >> (10 * (unit + 1))),
			 suffix[unit]);
	return buf;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int cfg_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	const char *end = parse_dec(s, &v);
	if (!end || *end != '\0' || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cfg_parse_id(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	/* "01" would name the same namespace as "1": one spelling per ID. */
	if (s[0] == '0')
		return -1;
	return cfg_parse_u32(s, min, max, out);
}

int cfg_parse_uuid(const char *s, uint8_t out[16])
{
	if (strlen(s) != 36)
		return -1;
	int n = 0;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		if (!is_hex(s[i]) || !is_hex(s[i + 1]))
			return -1;
		out[n++] = (uint8_t)(hex_val(s[i]) << 4 | hex_val(s[i + 1]));
		i++;
	}
	return 0;
}

/*
 * NVMe Base 2.0, 4.5: an NQN is at most 223 bytes of UTF-8, either
 *   nqn.yyyy-mm.<reverse domain>:<string>         (naming authority)
 *   nqn.2014-08.org.nvmexpress:uuid:<UUID>        (no naming authority)
 * Blanks and control characters are refused as well: the spec allows them,
 * but in a hand-written file they are always a mistake.
 */
const char *cfg_nqn_problem(const char *s, char *why, size_t whylen)
{
	static const char uuid_prefix[] = "nqn.2014-08.org.nvmexpress:uuid:";
	size_t len = strlen(s);
	if (len > CFG_NQN_MAX - 1) {
		snprintf(why, whylen, "%zu bytes long, more than the 223 NVMe allows", len);
		return why;
	}
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= ' ' || *c == 0x7f)
			return "contains a blank or control character";
	if (strncmp(s, "nqn.", 4) != 0)
		return "does not start with \"nqn.\"";
	const char *p = s + 4;
	if (!(is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) &&
	      p[4] == '-' && is_digit(p[5]) && is_digit(p[6]) && p[7] == '.'))
		return "\"nqn.\" is not followed by a date yyyy-mm and '.'";
	int month = (p[5] - '0') * 10 + (p[6] - '0');
	if (month < 1 || month > 12)
		return "month of the date is not 01..12";
	p += 8;
	const char *colon = strchr(p, ':');
	if (!colon)
		return "no ':' after the reverse domain name";
	bool label_start = true;
	for (const char *c = p; c < colon; c++) {
		if (*c == '.') {
			if (label_start)
				return "empty label in the reverse domain name";
			label_start = true;
			continue;
		}
		if (!is_digit(*c) && !(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z')) && *c != '-')
			return "reverse domain name may hold only letters, digits, '-' and '.'";
		label_start = false;
	}
	if (label_start)
		return "empty label in the reverse domain name";
	if (colon[1] == '\0')
		return "nothing after the ':'";
	uint8_t uuid[16];
	if (strncmp(s, uuid_prefix, sizeof(uuid_prefix) - 1) == 0 &&
	    cfg_parse_uuid(s + sizeof(uuid_prefix) - 1, uuid) != 0)
		return "\"...:uuid:\" is not followed by a UUID in 8-4-4-4-12 form";
	return NULL;
}

static const char *parse_port(const char *s, char port[8])
{
	uint32_t v;
	if (cfg_parse_u32(s, 1, 65535, &v) != 0)
		return "has a port that is not a number in 1..65535";
	snprintf(port, 8, "%u", v);
	return NULL;
}

const char *cfg_parse_listener(const char *s, struct listener_config *out)
{
	const char *addr = s, *port = NULL;
	size_t addr_len;
	unsigned char bin[16];
	int family;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return "has no ']' after the IPv6 address";
		addr = s + 1;
		addr_len = (size_t)(close - addr);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return "has text after ']' that is not :PORT";
		family = AF_INET6;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return "looks like IPv6 without brackets ([ADDR]:PORT)";
		addr_len = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
		family = AF_INET;
	}
	if (addr_len == 0 || addr_len >= sizeof(out->addr))
		return "has an empty or too long address";
	memcpy(out->addr, addr, addr_len);
	out->addr[addr_len] = '\0';
	if (inet_pton(family, out->addr, bin) != 1)
		return family == AF_INET ? "is not a numeric IPv4 address"
				  : "has no numeric IPv6 address in brackets";
	/* One spelling per address ("[0::1]" and "[::1]" are one listener):
	 * duplicates, ana_state and reload compare the text. */
	if (!inet_ntop(family, bin, out->addr, sizeof(out->addr)))
		return "has an address that cannot be written back";
	if (!port) {
		strcpy(out->port, "4420");
		return NULL;
	}
	return parse_port(port, out->port);
}

const char *cfg_each_item(const char *list, void *arg,
			  const char *(*fn)(void *arg, const char *item, char *why, size_t whylen),
			  char *why, size_t whylen)
{
	char *copy = strdup(list);
	if (!copy)
		return "out of memory";
	const char *problem = NULL;
	char *item = copy;
	for (;;) {
		char *comma = strchr(item, ',');
		if (comma)
			*comma = '\0';
		while (*item == ' ' || *item == '\t')
			item++;
		char *end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*item == '\0') {
			problem = "empty item in the comma list";
			break;
		}
		problem = fn(arg, item, why, whylen);
		if (problem || !comma)
			break;
		item = comma + 1;
	}
	/* fn returns a literal or why, never a pointer into item: copy can go. */
	free(copy);
	return problem;
}

int cfg_join_path(char *out, size_t outlen, const char *dir, const char *rel)
{
	char tmp[PATH_MAX];
	int n;
	if (rel[0] == '/' || dir[0] == '\0' || strcmp(dir, ".") == 0)
		n = snprintf(tmp, sizeof(tmp), "%s", rel);
	else if (dir[strlen(dir) - 1] == '/')
		n = snprintf(tmp, sizeof(tmp), "%s%s", dir, rel);
	else
		n = snprintf(tmp, sizeof(tmp), "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n >= outlen)
		return -1;
	memcpy(out, tmp, (size_t)n + 1);
	return 0;
}

void cfg_dirname(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, outlen, ".");
		return;
	}
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	snprintf(out, outlen, "%.*s", (int)len, path);
}

bool cfg_path_escapes(const char *rel)
{
	int depth = 0;
	if (rel[0] == '/')
		return false;
	for (const char *p = rel; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (len && !(len == 1 && p[0] == '.')) {
			depth++;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	return false;
}

/* Append component comp (len bytes) to the absolute path out, resolving
 * "." and ".." lexically. -1 if it does not fit. */
static int push_component(char *out, size_t outlen, const char *comp, size_t len)
{
	size_t n = strlen(out);
	if (len == 0 || (len == 1 && comp[0] == '.'))
		return 0;
	if (len == 2 && comp[0] == '.' && comp[1] == '.') {
		char *slash = strrchr(out, '/');
		if (slash == out)
			out[1] = '\0';
		else if (slash)
			*slash = '\0';
		return 0;
	}
	if (n + (n > 1) + len + 1 > outlen)
		return -1;
	if (n > 1)
		out[n++] = '/';
	memcpy(out + n, comp, len);
	out[n + len] = '\0';
	return 0;
}

int config_path_key(const char *path, char *out, size_t outlen)
{
	char abs[PATH_MAX];
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(abs))
			return -1;
		strcpy(abs, path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || cfg_join_path(abs, sizeof(abs), cwd, path) != 0)
			return -1;
	}
	/* The longest prefix that exists, with its symlinks resolved by
	 * realpath(); the rest (not created yet) cannot hold a symlink, so
	 * resolving its "." and ".." lexically is exact. */
	char head[PATH_MAX], real[PATH_MAX];
	size_t cut = strlen(abs);
	for (;;) {
		memcpy(head, abs, cut);
		head[cut] = '\0';
		if (realpath(cut ? head : "/", real))
			break;
		if (cut == 0)
			return -1;
		while (cut > 0 && abs[cut - 1] != '/')
			cut--;
		while (cut > 0 && abs[cut - 1] == '/')
			cut--;
	}
	if (strlen(real) >= outlen)
		return -1;
	strcpy(out, real);
	for (const char *p = abs + cut; *p;) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (push_component(out, outlen, p, len) != 0)
			return -1;
		p += len;
	}
	return 0;
}

bool config_same_dir(const char *a, const char *b)
{
	char ka[PATH_MAX], kb[PATH_MAX];

	if (config_path_key(a, ka, sizeof(ka)) || config_path_key(b, kb, sizeof(kb)))
		return strcmp(a, b) == 0;
	return strcmp(ka, kb) == 0;
}
