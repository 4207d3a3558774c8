/*
 * znstgt: serve files as NVMe ZNS (and conventional) namespaces over
 * NVMe/TCP. Runs in the foreground and logs to stderr.
 *
 * Start: configuration -> subsystems (opens every namespace: a bad one stops
 * the start) -> workers -> listeners -> control socket, if configured
 * (control.h: power-cut simulation, subsystems added and removed at run
 * time). Stop on SIGINT / SIGTERM: control socket and listeners first, then
 * every queue is asked to disconnect and the commands in flight finish (a
 * transport frees a queue only after its last command), then the
 * namespaces checkpoint as they close.
 *
 * Exit status: 0 after a clean stop, 1 when the start failed, 2 for a usage
 * error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>

#include "config.h"
#include "control.h"
#include "ctrl.h"
#include "log.h"
#include "subsys.h"
#include "tcp.h"
#include "worker.h"

#define DRAIN_SECONDS 30.0 /* how long a stop waits for connections to go */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: znstgt [-c FILE] [--format] [--help]\n"
		"Serve files as NVMe ZNS and conventional namespaces over NVMe/TCP.\n\n"
		"  -c, --config FILE  main configuration (default: the built-in one:\n"
		"                     one zoned subsystem on 127.0.0.1:4420, data in ./data)\n"
		"      --format       re-initialise every namespace (zone state and data)\n"
		"                     before serving; the only way state is thrown away\n"
		"  -h, --help         this text\n\n"
		"Runs in the foreground, logs to stderr; SIGINT or SIGTERM stops it cleanly.\n"
		"With control_socket set in [target], build/znstgt-ctl talks to it\n"
		"(power-cut simulation, subsystems added and removed: doc/power-cut.md).\n"
		"Exit status: 0 clean stop, 1 start failed, 2 usage error.\n");
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("%s: stopping", strsignal(w->signum));
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool format = false;
	struct target_config cfg;
	struct ev_loop *loop;
	ev_signal sigint, sigterm;
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
	level = log_level_parse(cfg.log_level);
	if (level >= 0)
		log_set_level((enum log_level)level);
	log_info("znstgt %s starting (%s)", ZNSTGT_VERSION, path ? path : "built-in configuration");

	/* A peer closing under a write must be an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	if (subsys_registry_init(&cfg, format, err, sizeof(err)) != 0) {
		log_error("%s", err);
		config_free(&cfg);
		return 1;
	}
	if (workers_start(cfg.threads, cfg.io_threads) != 0) {
		log_error("cannot start the worker threads");
		subsys_registry_destroy();
		config_free(&cfg);
		return 1;
	}
	if (tcp_listeners_start(&cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		workers_stop();
		subsys_registry_destroy();
		config_free(&cfg);
		return 1;
	}
	/* Last: a tool that gets an answer on it may connect at once. */
	loop = EV_DEFAULT;
	if (cfg.control_socket[0] && control_start(loop, &cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		rc = 1;
	} else {
		ev_signal_init(&sigint, on_signal, SIGINT);
		ev_signal_init(&sigterm, on_signal, SIGTERM);
		ev_signal_start(loop, &sigint);
		ev_signal_start(loop, &sigterm);
		log_info("ready");
		ev_run(loop, 0);
	}

	/* Stop: no new connections; every queue goes once its commands are
	 * done; then the namespaces close (and checkpoint) on this thread
	 * while the I/O threads still run for any close already under way. */
	control_stop();
	tcp_listeners_stop();
	nvme_sq_disconnect_all();
	if (!nvme_sq_wait_all_freed(DRAIN_SECONDS))
		log_warn("stopping with connections still open");
	subsys_registry_destroy();
	workers_stop();
	config_free(&cfg);
	log_info("stopped");
	return rc;
}
