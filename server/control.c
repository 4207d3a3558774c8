/*
 * The control socket. See control.h for the protocol and doc/power-cut.md
 * for what the commands do.
 *
 * Every client gets its own watcher and a deadline: a client that connects
 * and says nothing, or too much, never holds up the others. The request is
 * untrusted input like anything from the network: its length, characters
 * and words are checked before anything acts on it.
 */
#include "control.h"
#include "control_req.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nvme/types.h>

#include "ana.h"
#include "control_hosts.h"
#include "control_status.h"
#include "ctrl.h"
#include "log.h"
#include "reload.h"
#include "subsys.h"
#include "target_subsys.h"

#define CONTROL_READ_SECONDS 5.0  /* a client has this long to send its line */
#define CONTROL_WRITE_SECONDS 30.0 /* ... and this long to take a long answer */

struct control_client {
	ev_io io;
	ev_timer timer;
	int fd;
	size_t len;
	char buf[CONTROL_LINE_MAX];
	char *out;                   /* the answer, being sent */
	size_t out_len, out_off;
	struct control_client *prev, *next;
};

static struct {
	struct ev_loop *loop;
	const struct target_config *cfg;
	int fd;
	ev_io accept_io;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_client *clients;
} C = { .fd = -1 };

/* ---- replies ---- */

struct reply {
	char text[1024];
	bool ok;
	char *body;                  /* lines after the first (malloc'd), or NULL */
	size_t body_len;
};

static void say(struct reply *r, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct reply *r, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	r->ok = ok;
}

/* ---- commands ---- */

static void cmd_ping(const struct control_req *req, struct reply *r)
{
	say(r, true, "znstgt %s", ZNSTGT_VERSION);
}

static void cmd_power_cut(const struct control_req *req, struct reply *r)
{
	char err[512];
	int n = subsys_power_cut(CONTROL_DRAIN_SECONDS, err, sizeof(err));

	if (n < 0)
		say(r, false, "%s", err);
	else
		say(r, true, "%d subsystem(s) powered up again", n);
}

/*
 * A name for a subsystem added here. The configuration files insist on the
 * NQN formats of NVMe Base 2.0, 4.5; the Linux target (nvmet) takes any
 * string as a subsystem name, and so do the tools built around it: blktests
 * names its subsystem "blktests-subsystem-1". Whatever a host can send in
 * a Connect (at most 223 bytes; the protocol already keeps out blanks and
 * control characters) is accepted.
 */
static const char *subsys_name_problem(const char *nqn)
{
	if (strlen(nqn) >= CFG_NQN_MAX)
		return "longer than 223 bytes";
	if (strcmp(nqn, NVME_DISC_SUBSYS_NAME) == 0 || strcmp(nqn, subsys_discovery_nqn()) == 0)
		return "the discovery NQN";
	return NULL;
}

/* add-subsys [--format] [--nqn NQN] FILE */
static void cmd_add_subsys(const struct control_req *req, struct reply *r)
{
	const char *problem;
	struct subsys_config *sc;
	char err[1024];

	if (req->nqn && (problem = subsys_name_problem(req->nqn))) {
		say(r, false, "add-subsys: --nqn %s: %s", req->nqn, problem);
		return;
	}
	sc = calloc(1, sizeof(*sc)); /* about 400 KiB: not on the stack */
	if (!sc) {
		say(r, false, "out of memory");
		return;
	}
	if (config_load_subsys(req->file, C.cfg->data_dir, sc, err, sizeof(err)) != 0) {
		say(r, false, "%s", err);
	} else if (sc->require_tls && !C.cfg->nr_tls_listeners) {
		/* What a start checks across files (cfg_tls_listeners_check):
		 * no host could reach it. */
		say(r, false, "%s: [subsystem] require_tls: yes, but the target has no tls_listen "
		    "listener, so no host could reach the subsystem", sc->file);
	} else {
		if (req->nqn)
			snprintf(sc->nqn, sizeof(sc->nqn), "%s", req->nqn);
		if (target_subsys_add(sc, req->format, err, sizeof(err)) != 0)
			say(r, false, "%s", err);
		else
			say(r, true, "%s", sc->nqn);
	}
	config_subsys_wipe(sc);
	free(sc);
}

/* remove-subsys NQN: answers once the namespaces are closed, so that the
 * caller may delete or reuse their files. */
static void cmd_remove_subsys(const struct control_req *req, struct reply *r)
{
	char err[512];

	if (target_subsys_remove(req->nqn, err, sizeof(err)) != 0)
		say(r, false, "%s", err);
	else if (!subsys_wait_detached(CONTROL_DRAIN_SECONDS))
		say(r, false, "%s removed, but its commands still run after %.0f s", req->nqn,
		    CONTROL_DRAIN_SECONDS);
	else
		say(r, true, "%s", req->nqn);
}

/* status, metrics: a body of lines (control_status.c). */
static void body_of(int (*fn)(FILE *out), struct reply *r)
{
	FILE *f = open_memstream(&r->body, &r->body_len);
	int rc = f ? fn(f) : -1;

	if (f && fclose(f))
		rc = -1;
	if (rc) {
		free(r->body);
		r->body = NULL;
		say(r, false, "out of memory");
	} else {
		say(r, true, "%s", "");
	}
}

static void cmd_status(const struct control_req *req, struct reply *r)
{
	body_of(control_status, r);
}

static void cmd_metrics(const struct control_req *req, struct reply *r)
{
	body_of(control_metrics, r);
}

static void cmd_zone(const struct control_req *req, struct reply *r)
{
	r->ok = control_fault_zone(&req->fault, r->text, sizeof(r->text));
}

static void cmd_inject(const struct control_req *req, struct reply *r)
{
	/* inject list: the rules as a body, one a line */
	if (req->fault.what == CONTROL_INJECT_LIST) {
		body_of(inject_print, r);
		if (!r->ok)
			return;
	}
	r->ok = control_fault_inject(&req->fault, r->text, sizeof(r->text));
}

/* reload: the configuration file again (reload.h); answers once applied. */
static void cmd_reload(const struct control_req *req, struct reply *r)
{
	r->ok = reload_run(r->text, sizeof(r->text)) == 0;
}

/* set-hosts NQN FILE (control_hosts.c) */
static void cmd_set_hosts(const struct control_req *req, struct reply *r)
{
	r->ok = control_set_hosts(req->nqn, req->file, C.cfg->data_dir, r->text,
				  sizeof(r->text)) == 0;
}

/* ana show: the states as a body (ana_print); ana set (control_ana.c). */
static void cmd_ana(const struct control_req *req, struct reply *r)
{
	if (req->ana.what == CONTROL_ANA_SHOW)
		body_of(ana_print, r);
	else
		r->ok = control_ana_set(&req->ana, r->text, sizeof(r->text));
}

/* Indexed by enum control_op. */
static void (*const commands[])(const struct control_req *req, struct reply *r) = {
	[CONTROL_PING] = cmd_ping,
	[CONTROL_POWER_CUT] = cmd_power_cut,
	[CONTROL_ADD_SUBSYS] = cmd_add_subsys,
	[CONTROL_REMOVE_SUBSYS] = cmd_remove_subsys,
	[CONTROL_STATUS] = cmd_status,
	[CONTROL_METRICS] = cmd_metrics,
	[CONTROL_ZONE] = cmd_zone,
	[CONTROL_INJECT] = cmd_inject,
	[CONTROL_RELOAD] = cmd_reload,
	[CONTROL_SET_HOSTS] = cmd_set_hosts,
	[CONTROL_ANA] = cmd_ana,
};

/* line: one request of len bytes without its '\n', NUL-terminated. */
static void run_request(char *line, size_t len, struct reply *r)
{
	struct control_req req;

	if (control_req_parse(line, len, &req, r->text, sizeof(r->text)) != 0) {
		r->ok = false;
		return;
	}
	log_info("control: %s", req.name);
	commands[req.op](&req, r);
}

/* ---- clients ---- */

static void client_close(struct control_client *cl)
{
	ev_io_stop(C.loop, &cl->io);
	ev_timer_stop(C.loop, &cl->timer);
	close(cl->fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		C.clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	free(cl->out);
	free(cl);
}

static void client_write_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warn("control: the client took no answer within %.0f s", CONTROL_WRITE_SECONDS);
	client_close(t->data);
}

static void client_writable(struct ev_loop *loop, ev_io *io, int revents);

/* Send what is left of the answer; wait for room when the socket is full
 * (a long body). A client that went away meanwhile just misses it. */
static void client_flush(struct control_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (ev_cb(&cl->io) != client_writable) {
				ev_io_stop(C.loop, &cl->io);
				ev_set_cb(&cl->io, client_writable);
				ev_io_set(&cl->io, cl->fd, EV_WRITE);
				ev_io_start(C.loop, &cl->io);
				ev_timer_stop(C.loop, &cl->timer);
				ev_set_cb(&cl->timer, client_write_timeout);
				ev_timer_set(&cl->timer, CONTROL_WRITE_SECONDS, 0.);
				ev_timer_start(C.loop, &cl->timer);
			}
			return;
		}
		if (n <= 0) {
			log_warn("control: the client left before its answer");
			break;
		}
		cl->out_off += (size_t)n;
	}
	client_close(cl);
}

static void client_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	client_flush(io->data);
}

/*
 * The answer (control.h): the status line, then, if the reply has a body,
 * its lines - one starting with '.' gets another '.' in front - and a line
 * holding only '.'. Takes the body.
 */
static void client_answer(struct control_client *cl, struct reply *r)
{
	FILE *f = open_memstream(&cl->out, &cl->out_len);

	if (!r->ok)
		log_warn("control: %s", r->text);
	if (!f) {
		free(r->body);
		client_close(cl);
		return;
	}
	fprintf(f, "%s%s%s\n", r->ok ? "ok" : "error: ", r->ok && r->text[0] ? " " : "", r->text);
	for (size_t i = 0; r->body && i < r->body_len;) {
		const char *line = r->body + i;
		const char *nl = memchr(line, '\n', r->body_len - i);
		size_t n = nl ? (size_t)(nl - line) : r->body_len - i;
		fprintf(f, "%s%.*s\n", line[0] == '.' ? "." : "", (int)n, line);
		i += n + 1;
	}
	if (r->body)
		fputs(".\n", f);
	free(r->body);
	r->body = NULL;
	if (fclose(f)) {
		client_close(cl);
		return;
	}
	cl->out_off = 0;
	client_flush(cl);
}

static void client_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control_client *cl = t->data;
	struct reply r = { .ok = false };

	say(&r, false, "no complete request within %.0f s", CONTROL_READ_SECONDS);
	client_answer(cl, &r);
}

static void client_readable(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control_client *cl = io->data;
	ssize_t got = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
	struct reply r = { .ok = false };
	char *nl;

	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (got <= 0) { /* gone before a whole line: nothing to answer */
		client_close(cl);
		return;
	}
	cl->len += (size_t)got;
	nl = memchr(cl->buf, '\n', cl->len);
	if (!nl) {
		if (cl->len == sizeof(cl->buf)) {
			say(&r, false, "request longer than %d bytes", CONTROL_LINE_MAX);
			client_answer(cl, &r);
		}
		return;
	}
	*nl = '\0';
	run_request(cl->buf, (size_t)(nl - cl->buf), &r);
	client_answer(cl, &r);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	for (;;) {
		int fd = accept4(C.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct control_client *cl;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control: accept: %s", strerror(errno));
			return;
		}
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->next = C.clients;
		if (C.clients)
			C.clients->prev = cl;
		C.clients = cl;
		ev_io_init(&cl->io, client_readable, fd, EV_READ);
		ev_timer_init(&cl->timer, client_timeout, CONTROL_READ_SECONDS, 0.);
		cl->io.data = cl->timer.data = cl;
		ev_io_start(loop, &cl->io);
		ev_timer_start(loop, &cl->timer);
	}
}

/* ---- start / stop ---- */

/* A socket file left by a target that died: nobody answers on it. */
static int remove_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "control socket %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: exists and is not a socket",
			 sa->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "control socket %s: another process serves it (a znstgt "
			 "running on the same configuration?)", sa->sun_path);
		return -1;
	}
	if (unlink(sa->sun_path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "control socket %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	return 0;
}

int control_start(struct ev_loop *loop, const struct target_config *cfg, char *err,
		  size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(cfg->control_socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", cfg->control_socket);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->control_socket);
	if (remove_stale(&sa, err, errlen) != 0)
		return -1;
	C.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (C.fd < 0 || bind(C.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "control socket %s: %s", sa.sun_path, strerror(errno));
		goto fail;
	}
	/* Its requests can erase data (--format): the owner's only. */
	if (chmod(sa.sun_path, 0600) != 0 || listen(C.fd, 16) != 0) {
		snprintf(err, errlen, "control socket %s: %s", sa.sun_path, strerror(errno));
		unlink(sa.sun_path);
		goto fail;
	}
	snprintf(C.path, sizeof(C.path), "%s", sa.sun_path);
	C.loop = loop;
	C.cfg = cfg;
	ev_io_init(&C.accept_io, accept_cb, C.fd, EV_READ);
	ev_io_start(loop, &C.accept_io);
	log_info("control socket %s", C.path);
	return 0;
fail:
	if (C.fd >= 0)
		close(C.fd);
	C.fd = -1;
	return -1;
}

void control_stop(void)
{
	if (C.fd < 0)
		return;
	ev_io_stop(C.loop, &C.accept_io);
	while (C.clients)
		client_close(C.clients);
	close(C.fd);
	C.fd = -1;
	unlink(C.path);
}
