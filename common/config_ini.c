/*
 * Reading one INI file: inih does the tokenising, this file adds what inih
 * (as Debian packages it, version 55) lacks for a configuration that must
 * never misread a line silently:
 *
 *  - Line length. libinih reads into a fixed 200-byte buffer and cuts longer
 *    lines into pieces, handing the first piece to us as if it were the whole
 *    value. Our reader (ini_parse_stream) sees whole lines and rejects any
 *    that would not fit.
 *  - Indentation. libinih treats an indented line as a continuation of the
 *    previous key, so an indented "size = 1G" would become a second value of
 *    the key above it. We strip leading blanks so indentation is cosmetic.
 *  - Sections. libinih reports only keys, so an empty or repeated section
 *    would go unnoticed. The reader sees each "[name]" header and opens the
 *    section itself (open_section callback), before inih hands us its keys.
 *  - Syntax. "key: value" (inih accepts ':' too), text after a section
 *    header, headers without ']' and lines with no '=' are errors here.
 *
 * Keys are then looked up in the open section's key table (struct cfg_key),
 * which rejects unknown keys, repeats of single-valued keys and empty values
 * before calling the key's setter.
 */
#include "config_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void verror(char *err, size_t errlen, const char *file, const char *section,
		   const char *key, const char *fmt, va_list ap)
{
	if (!err || errlen == 0)
		return;
	int n;
	if (section && key)
		n = snprintf(err, errlen, "%s: [%s] %s: ", file, section, key);
	else if (section)
		n = snprintf(err, errlen, "%s: [%s]: ", file, section);
	else if (key)
		n = snprintf(err, errlen, "%s: %s: ", file, key);
	else
		n = snprintf(err, errlen, "%s: ", file);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - n, fmt, ap);
}

void cfg_error_at(char *err, size_t errlen, const char *file, const char *section,
		  const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(err, errlen, file, section, key, fmt, ap);
	va_end(ap);
}

void cfg_error(struct cfg_file *f, const char *section, const char *key, const char *fmt, ...)
{
	if (f->failed)
		return;
	f->failed = true;
	va_list ap;
	va_start(ap, fmt);
	verror(f->err, f->errlen, f->name, section, key, fmt, ap);
	va_end(ap);
}

static void syntax_error(struct cfg_file *f, const char *what)
{
	char where[32];
	snprintf(where, sizeof(where), "line %u", f->line);
	cfg_error(f, NULL, where, "%s", what);
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A "[name]" line (p points at '['). Returns false if it was rejected. */
static bool section_header(struct cfg_file *f, const char *p)
{
	const char *end = strchr(p, ']');
	if (!end) {
		syntax_error(f, "section header without ']' (expected [name])");
		return false;
	}
	/* After ']' only blanks or a comment: "[namespace 1] size = 1G" is a mistake. */
	const char *rest = end + 1;
	while (is_blank(*rest))
		rest++;
	if (*rest && *rest != ';' && *rest != '#') {
		syntax_error(f, "text after the section header (expected a new line)");
		return false;
	}
	size_t len = (size_t)(end - (p + 1));
	if (len >= sizeof(f->section)) {
		syntax_error(f, "section name too long (expected [subsystem], [namespace N], ...)");
		return false;
	}
	memcpy(f->section, p + 1, len);
	f->section[len] = '\0';
	f->in_section = true;
	memset(&f->cur, 0, sizeof(f->cur));
	f->open_section(f, f->section, &f->cur);
	return true;
}

/* Checks one stripped line; false if it is malformed (already reported). */
static bool check_line(struct cfg_file *f, const char *p)
{
	if (*p == '\0' || *p == '\n' || *p == '\r' || *p == ';' || *p == '#')
		return true;
	if (*p == '[')
		return section_header(f, p);
	size_t sep = strcspn(p, "=:");
	if (p[sep] != '=') {
		syntax_error(f, "not a key, section or comment (expected key = value)");
		return false;
	}
	if (sep == 0) {
		syntax_error(f, "key name missing before '=' (expected key = value)");
		return false;
	}
	return true;
}

/* The ini_reader: one whole line per call, or NULL at the end or after an error. */
static char *read_line(char *str, int num, void *stream)
{
	struct cfg_file *f = stream;
	if (f->failed)
		return NULL;
	ssize_t n = getline(&f->buf, &f->bufcap, f->fp);
	if (n < 0)
		return NULL;
	f->line++;
	char *p = f->buf;
	if (memchr(p, '\0', (size_t)n)) {
		syntax_error(f, "contains a NUL byte (expected text)");
		return NULL;
	}
	/* UTF-8 byte order mark, as editors on some systems write it. */
	if (f->line == 1 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
	    (unsigned char)p[2] == 0xbf)
		p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t len = strlen(p);
	if (num < 2 || len > (size_t)num - 1) {
		char what[128];
		snprintf(what, sizeof(what),
			 "line too long (expected at most %d bytes; split a list over repeated keys)",
			 num - 2);
		syntax_error(f, what);
		return NULL;
	}
	if (!check_line(f, p))
		return NULL;
	memcpy(str, p, len + 1);
	return str;
}

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name,
				      size_t *index)
{
	for (size_t i = 0; i < sec->nr_keys; i++)
		if (sec->keys[i].name && strcmp(sec->keys[i].name, name) == 0) {
			*index = i;
			return &sec->keys[i];
		}
	return NULL;
}

static void unknown_key(struct cfg_file *f, const char *name)
{
	char known[512];
	size_t n = 0;
	known[0] = '\0';
	for (size_t i = 0; i < f->cur.nr_keys && n < sizeof(known); i++) {
		if (!f->cur.keys[i].name)
			continue;
		int w = snprintf(known + n, sizeof(known) - n, "%s%s", n ? ", " : "",
				 f->cur.keys[i].name);
		if (w > 0)
			n += (size_t)w;
	}
	cfg_error(f, f->section, name, "unknown key (expected one of: %s)", known);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_file *f = user;
	(void)section; /* same as f->section: read_line opened it */
	if (f->failed)
		return 1;
	if (!f->in_section) {
		cfg_error(f, NULL, name, "key outside any section (expected it below a [section] header)");
		return 1;
	}
	if (!f->cur.keys)
		return 1;
	size_t i;
	const struct cfg_key *k = find_key(&f->cur, name, &i);
	if (!k) {
		unknown_key(f, name);
		return 1;
	}
	/* seen is a 32-bit mask: key tables stay below 32 entries. */
	if (!k->repeat && (*f->cur.seen & (1u << i))) {
		cfg_error(f, f->section, name, "given more than once (expected %s, once)", k->expect);
		return 1;
	}
	*f->cur.seen |= 1u << i;
	if (*value == '\0') {
		cfg_error(f, f->section, name, "no value (expected %s)", k->expect);
		return 1;
	}
	char why[256];
	const char *problem = k->set(f->cur.obj, value, why, sizeof(why));
	if (problem)
		cfg_error(f, f->section, name, "%s (expected %s)", problem, k->expect);
	return 1;
}

FILE *cfg_open(const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. It does
	 * nothing to reads of the regular file that is all we keep. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *fp;

	if (fd < 0) {
		cfg_error_at(err, errlen, path, NULL, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cfg_error_at(err, errlen, path, NULL, NULL, "not a regular file (expected a "
			     "configuration file)");
		close(fd);
		return NULL;
	}
	if (!(fp = fdopen(fd, "r"))) {
		cfg_error_at(err, errlen, path, NULL, NULL, "cannot open: %s", strerror(errno));
		close(fd);
	}
	return fp;
}

int cfg_parse(FILE *fp, const char *name, cfg_open_section_fn open_section, void *ctx,
	      char *err, size_t errlen)
{
	struct cfg_file f = {
		.name = name, .err = err, .errlen = errlen, .fp = fp,
		.open_section = open_section, .ctx = ctx,
	};
	int r = ini_parse_stream(read_line, &f, on_key, &f);
	if (!f.failed && ferror(fp))
		cfg_error(&f, NULL, NULL, "read error: %s", strerror(errno));
	else if (!f.failed && r == -2)
		cfg_error(&f, NULL, NULL, "out of memory");
	else if (!f.failed && r != 0)
		cfg_error(&f, NULL, NULL, "line %d: syntax error (expected [section] or key = value)", r);
	free(f.buf);
	return f.failed ? -1 : 0;
}
