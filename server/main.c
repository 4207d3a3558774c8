/*
 * znstgt: serve files as NVMe ZNS (and conventional) namespaces over
 * NVMe/TCP. Runs in the foreground and logs to stderr.
 *
 * Start: configuration -> descriptor limit -> listeners bound and control
 * socket (if configured; control.h: power-cut simulation, subsystems added
 * and removed at run time) -> workers -> subsystems -> accepting. Everything
 * that can fail for reasons outside the namespaces (an address in use, a
 * socket path) fails before any namespace file is created, and each
 * namespace is checked before its files are (ns_precheck.h). A namespace
 * that cannot be opened is logged and left out; the start fails only when
 * none of the configured namespaces can be served.
 *
 * SIGHUP re-reads the configuration and applies what changed (reload.h).
 * Under systemd (Type=notify) readiness, reloads and the stop are told to
 * the supervisor (sd_notify.h).
 *
 * Stop on SIGINT / SIGTERM: control socket and listeners first, then
 * every queue is asked to disconnect and the commands in flight finish (a
 * transport frees a queue only after its last command), then the
 * namespaces checkpoint as they close.
 *
 * Exit status: 0 after a clean stop, 1 when the start failed (invalid
 * configuration, a listener or the control socket unusable, no namespace
 * could be served), 2 for a usage error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "config.h"
#include "control.h"
#include "ctrl.h"
#include "log.h"
#include "reload.h"
#include "sd_notify.h"
#include "subsys.h"
#include "tcp.h"
#include "vfio_nvme.h"
#include "worker.h"

#define DRAIN_SECONDS 30.0 /* how long a stop waits for connections to go */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: znstgt [-c FILE] [--format] [--recover NQN/NSID]... [--help]\n"
		"Serve files as NVMe ZNS and conventional namespaces over NVMe/TCP.\n\n"
		"  -c, --config FILE  main configuration (default: the built-in one:\n"
		"                     one zoned subsystem on 127.0.0.1:4420, data in ./data)\n"
		"      --format       re-initialise every namespace (zone state and data)\n"
		"                     before serving; the only way state is thrown away\n"
		"      --recover NQN/NSID  load a namespace refused as damaged, keeping what\n"
		"                     its files still prove and logging what is dropped\n"
		"                     (doc/recovery.md); may be given more than once\n"
		"  -h, --help         this text\n\n"
		"Runs in the foreground, logs to stderr; SIGINT or SIGTERM stops it cleanly,\n"
		"SIGHUP re-reads the configuration file and applies what changed.\n"
		"With control_socket set in [target], build/znstgt-ctl talks to it\n"
		"(power-cut simulation, subsystems added and removed: doc/power-cut.md).\n"
		"Exit status: 0 clean stop, 1 start failed, 2 usage error.\n");
}

/* --recover NQN/NSID: mark that namespace of cfg (split at the last '/'). */
static int mark_recover(struct target_config *cfg, const char *spec)
{
	const char *slash = strrchr(spec, '/');
	char *end = NULL;
	unsigned long nsid = slash && slash[1] ? strtoul(slash + 1, &end, 10) : 0;
	if (!nsid || *end)
		return -1;
	for (int i = 0; i < cfg->nr_subsys; i++) {
		struct subsys_config *sc = &cfg->subsys[i];
		size_t len = (size_t)(slash - spec);
		if (strncmp(sc->nqn, spec, len) || sc->nqn[len])
			continue;
		for (int k = 0; k < sc->nr_ns; k++)
			if (sc->ns[k].nsid == nsid)
				return sc->ns[k].recover = true, 0;
	}
	return -1;
}

/* Descriptors kept for everything but connections: listeners, namespace
 * files, the control socket, event loops. */
#define FD_RESERVE 256

/*
 * Every connection is a descriptor: raise the soft RLIMIT_NOFILE to the hard
 * one, and say so if max_connections still cannot be reached (accept then
 * pauses on EMFILE until descriptors come back).
 */
static void raise_fd_limit(const struct target_config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_connections + FD_RESERVE)
		log_warn("max_connections is %u but only %llu file descriptors are allowed "
			 "(RLIMIT_NOFILE): accepting pauses when they run out", cfg->max_connections,
			 (unsigned long long)rl.rlim_cur);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("%s: stopping", strsignal(w->signum));
	sd_notify_log("STOPPING=1");
	ev_break(loop, EVBREAK_ALL);
}

/* RELOADING=1 carries the monotonic time it began at (systemd.service(5),
 * Type=notify-reload). */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct timespec now;
	char msg[1024];

	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notify_log("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now.tv_sec * 1000000ull +
		      (unsigned long long)now.tv_nsec / 1000);
	if (reload_run(msg, sizeof(msg)) == 0)
		log_info("SIGHUP: %s", msg);
	else
		log_error("SIGHUP: reload refused: %s", msg);
	sd_notify_log("READY=1");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", no_argument, NULL, 'f' },
		{ "recover", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool format = false;
	const char *recover[CFG_MAX_NAMESPACES];
	int nr_recover = 0;
	struct target_config cfg;
	struct ev_loop *loop;
	ev_signal sigint, sigterm, sighup;
	char err[1024];
	int c, level, rc = 0;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			format = true;
			break;
		case 'r':
			if (nr_recover == CFG_MAX_NAMESPACES) {
				fprintf(stderr, "znstgt: too many --recover options\n");
				return 2;
			}
			recover[nr_recover++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "znstgt: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	if ((path ? config_load(path, &cfg, err, sizeof(err))
		  : config_default(&cfg, NULL, err, sizeof(err))) != 0) {
		fprintf(stderr, "znstgt: %s\n", err);
		return 1;
	}
	for (int i = 0; i < nr_recover; i++) {
		if (mark_recover(&cfg, recover[i])) {
			fprintf(stderr, "znstgt: --recover %s: no such namespace in the configuration "
				"(NQN/NSID)\n", recover[i]);
			config_free(&cfg);
			return 2;
		}
	}
	reload_init(&cfg, path != NULL);
	level = log_level_parse(cfg.log_level);
	if (level >= 0)
		log_set_level((enum log_level)level);
	log_info("znstgt %s starting (%s)", ZNSTGT_VERSION, path ? path : "built-in configuration");

	/* A peer closing under a write must be an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* SIGHUP before the target is ready (namespaces still opening) is
	 * ignored rather than ending the process, its default action. */
	signal(SIGHUP, SIG_IGN);
	raise_fd_limit(&cfg);

	loop = EV_DEFAULT;
	tcp_tls_find_psk = subsys_tls_psk_find;
	if (tcp_listeners_bind(&cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		config_free(&cfg);
		return 1;
	}
	/* Bound now, answered once the loop runs (after everything else). */
	if (cfg.control_socket[0] && control_start(loop, &cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		tcp_listeners_stop();
		config_free(&cfg);
		return 1;
	}
	/* vfio-user sockets: checked now (not a socket, in use), bound once
	 * the workers run and the namespaces made data_dir. */
	for (int i = 0; i < cfg.nr_subsys; i++) {
		if (vfio_nvme_check(&cfg.subsys[i], err, sizeof(err)) != 0) {
			log_error("%s", err);
			control_stop();
			tcp_listeners_stop();
			config_free(&cfg);
			return 1;
		}
	}
	if (workers_start_poll(cfg.threads, cfg.io_threads, cfg.poll) != 0) {
		log_error("cannot start the worker threads");
		control_stop();
		tcp_listeners_stop();
		config_free(&cfg);
		return 1;
	}
	if (subsys_registry_init(&cfg, format, err, sizeof(err)) != 0 ||
	    vfio_nvme_start(&cfg, err, sizeof(err)) != 0 ||
	    tcp_listeners_run(err, sizeof(err)) != 0) {
		log_error("%s", err);
		rc = 1;
	} else {
		ev_signal_init(&sigint, on_signal, SIGINT);
		ev_signal_init(&sigterm, on_signal, SIGTERM);
		ev_signal_start(loop, &sigint);
		ev_signal_start(loop, &sigterm);
		ev_signal_init(&sighup, on_sighup, SIGHUP);
		ev_signal_start(loop, &sighup);
		log_info("ready");
		sd_notify_log("READY=1\nMAINPID=%ld", (long)getpid());
		ev_run(loop, 0);
	}

	/* Stop: no new connections; every queue goes once its commands are
	 * done; then the namespaces close (and checkpoint) on this thread
	 * while the I/O threads still run for any close already under way. */
	control_stop();
	tcp_listeners_stop();
	vfio_nvme_stop();
	nvme_sq_disconnect_all();
	if (!nvme_sq_wait_all_freed(DRAIN_SECONDS))
		log_warn("stopping with connections still open");
	subsys_registry_destroy();
	workers_stop();
	config_free(&cfg);
	log_info("stopped");
	return rc;
}
