/*
 * The NVMe/TCP transport: listeners and connections.
 *
 * tcp_listeners_start() opens one listening socket per configured address
 * and accepts on a listener thread of its own; each accepted socket goes to
 * the next worker (worker_next()), where it lives as one struct tcp_conn (one
 * NVMe queue) until it closes. Workers must be running (workers_start()).
 *
 * Each listener is a port (transport.h) registered with the core, so the
 * discovery log reports it with the port number it is really bound to.
 *
 * To drop the connections of one subsystem (blktests cleanup, subsystem
 * removal) the core calls the transport's disconnect on the queue's
 * worker; the connection then closes and calls nvme_sq_free() once the core
 * says its queue drained (transport.h).
 */
#ifndef ZNSTGT_TCP_H
#define ZNSTGT_TCP_H

#include <ev.h>
#include <stddef.h>

#include "config.h"
#include "transport.h"

struct worker;
struct tcp_conn;

/* The transport's ops table (tcp_transport.c). */
extern const struct nvme_transport_ops tcp_transport;

/*
 * Bind and listen on every cfg->listeners[] address, accepting nothing yet
 * (the kernel queues connections until tcp_listeners_run()), so that a start
 * can find an address in use before it creates anything. On error returns
 * -1 with a message (address, port, reason) in err and nothing left open.
 *
 * At most cfg->max_connections connections are open at once. One past the
 * limit makes room by closing the oldest connection that has not completed
 * Fabrics Connect (an idle socket must not lock hosts out until its
 * handshake timeout); when every connection is connected, the new one is
 * refused. Either way with a log line.
 */
int tcp_listeners_bind(const struct target_config *cfg, char *err, size_t errlen);
/* Start accepting on the bound listeners (workers must be running). */
int tcp_listeners_run(char *err, size_t errlen);
/* Both of the above. */
int tcp_listeners_start(const struct target_config *cfg, char *err, size_t errlen);
/* Stop accepting, close every connection, and wait until each one has
 * finished its executing requests and freed its queue. Call it before
 * workers_stop(). */
void tcp_listeners_stop(void);
/* The i-th listening port as bound: trsvcid holds the real port even when
 * "0" (ephemeral) was configured. NULL when not listening. */
const struct nvme_port *tcp_listener_port(int i);

struct tcp_sock_ops;

/*
 * One connection (used by the listener, and by tests and the fuzzer that
 * drive a socket on a loop of their own). fd must be a connected
 * non-blocking stream socket; the connection owns it from now on, and
 * reads and writes it through sock (server/tcp/tcp_sock.h; NULL: the plain
 * socket). w is the worker handed to nvme_sq_alloc() and loop is the loop
 * that serves the connection (worker_loop(w) in the server). gone(arg)
 * runs on that loop once the connection is closed and freed.
 */
struct tcp_conn *tcp_conn_start(struct ev_loop *loop, struct worker *w, int fd,
				const struct tcp_sock_ops *sock, const struct nvme_port *port,
				const char *local_addr, void (*gone)(void *arg), void *arg);
/* Call fn(arg of tcp_conn_start) on the connection's loop once its queue
 * completed Fabrics Connect (the handshake is over). */
void tcp_conn_on_connected(struct tcp_conn *c, void (*fn)(void *arg));
/* Close now (idempotent); runs on the connection's loop. */
void tcp_conn_close(struct tcp_conn *c);

#endif
