/*
 * What the machine can do, measured beside every load generator figure so
 * that the figure comes with its ratio.
 *
 * Both TCP limits run between threads of the calling process over loopback
 * (127.0.0.1), TCP_NODELAY on, one client thread and one server thread per
 * connection, blocking sockets, and count only what happens between
 * ramp and ramp + seconds after the start:
 *
 *   stream   each connection's sender writes msg_len-byte messages back to
 *            back; the receiver reads up to max(msg_len, 64 KiB) per call.
 *            Result: bytes per second over all connections.
 *   rr       each connection keeps qd requests of req_len bytes in flight;
 *            the server answers each with rsp_len bytes, all the answers one
 *            read produced in one writev (as the target batches its sends).
 *            Result: round trips per second and their latency.
 *            One of req_len / rsp_len must be small (a header): the client
 *            writes and the server answers with blocking calls, safe only
 *            while one direction's bytes in flight fit a socket buffer.
 *
 * sync     the rate of one durable write per operation without any
 *          batching: pwrite len bytes at the next offset of a file in dir,
 *          fdatasync, repeat (the naive durable Zone Append).
 *
 * Each returns 0, or -1 with a reason in err.
 */
#ifndef ZNSTGT_LIMITS_H
#define ZNSTGT_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lat_hist.h"

/*
 * Where the two threads of each connection run: a CPU number, or -1 for
 * wherever the scheduler puts them. Pin the server side where the target
 * runs and the client side where the load generator's queues run, and the
 * limit sees the same wake-ups across (or within) CPUs as the NVMe/TCP run.
 */
struct limit_cpus {
	int client, server;
	/* Spin on the socket (non-blocking reads until data comes) instead of
	 * sleeping in read(): the client side for a load generator that polls,
	 * the server side for a target that does (its `poll` key). */
	bool client_poll, server_poll;
};

int limit_tcp_stream(const struct limit_cpus *cpus, int conns, uint32_t msg_len, double ramp,
		     double seconds, double *bytes_per_s, char *err, size_t errlen);
int limit_tcp_rr(const struct limit_cpus *cpus, int conns, int qd, uint32_t req_len,
		 uint32_t rsp_len, double ramp, double seconds, double *ops_per_s,
		 struct lat_hist *lat, char *err, size_t errlen);
/* Pin the calling thread to cpu (-1: leave it). */
void limit_pin(int cpu);
int limit_sync(const char *dir, uint32_t len, double seconds, double *ops_per_s,
	       struct lat_hist *lat, char *err, size_t errlen);

/* CLOCK_MONOTONIC in nanoseconds / seconds (shared by the load generator). */
uint64_t limit_now_ns(void);
double limit_now_s(void);

#endif
