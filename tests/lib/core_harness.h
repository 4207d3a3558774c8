/*
 * A test-double transport for driving the controller core directly, without
 * sockets: each queue is a struct nvme_sq on a real worker, each command a
 * request run through nvme_req_init() and execute() on that worker, and the
 * completion (CQE and data) is captured for the test thread.
 *
 * The data of a command reaches the core as a scatter list of odd-sized
 * pieces (harder than one buffer: structures straddle pieces).
 *
 * It behaves like a transport where it matters: when the core asks a queue
 * to disconnect, the queue closes (nvme_sq_close) and is freed once the
 * core says it drained.
 */
#ifndef ZNSTGT_CORE_HARNESS_H
#define ZNSTGT_CORE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "nvme_wire.h"

#define TH_TIMEOUT 0xffffu        /* status returned when nothing completed */
#define TH_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:th-host-1"
/* How long a command or a queue's teardown may take: an upper bound that
 * only a failure reaches, generous for a loaded machine (sanitizers, a
 * slow fdatasync); the waits for what must NOT happen are short, their own. */
#define TH_WAIT_MS 20000

struct th_queue;
struct th_cmd;

/* Workers (1) and I/O threads (2); call once per test binary. */
void th_start(void);
void th_stop(void);

/* Register a port (as a listener would) for the discovery log; returns its
 * port ID. Ports are unregistered by th_stop(). */
uint16_t th_port_add(const char *traddr, const char *trsvcid);
/* From now on the harness transport takes PRPs too, and th_submit() sends
 * commands with PRPs (PSDT 00b) instead of an SGL: the core must find each
 * command's length from its own fields. */
void th_use_prp(bool on);
/* From now on the harness lets the core lend it read data (may_borrow, as
 * a plain NVMe/TCP connection without data digest does) and copies what it
 * was lent at completion; th_reads_borrowed() counts those reads. */
void th_borrow_reads(bool on);
unsigned th_reads_borrowed(void);
/* A new unconnected queue that came in on port traddr:trsvcid (the port
 * th_port_add() registered, or one of its own with ID 1), accepted on
 * local_addr. */
struct th_queue *th_queue_open(const char *traddr, const char *trsvcid, const char *local_addr);
/* Close it as a transport would and wait until the core let go of it. */
void th_queue_close(struct th_queue *q);
/* Did the core ask for a disconnect, and is the queue freed by now? */
bool th_queue_disconnected(struct th_queue *q);
bool th_queue_wait_freed(struct th_queue *q, int timeout_ms);

/*
 * Submit a command. Unless raw, PSDT is set to SGL and SGL 1 to len bytes
 * (in-capsule for host-to-controller data up to 8 KiB, else a transport data
 * block). data: len bytes sent to the controller, or receiving its data.
 */
struct th_cmd *th_submit(struct th_queue *q, const struct nvme_sqe *sqe, void *data, uint32_t len,
			 bool raw);
bool th_wait(struct th_cmd *c, int timeout_ms);
/* Status (15 bits, no phase), result, CQE; frees c. TH_TIMEOUT if not done. */
uint16_t th_finish(struct th_cmd *c, uint64_t *result, struct nvme_cqe *cqe);
/* submit + wait (TH_WAIT_MS) + finish. */
uint16_t th_exec(struct th_queue *q, const struct nvme_sqe *sqe, void *data, uint32_t len,
		 uint64_t *result);

/* ---- building blocks ---- */

struct nvme_sqe th_sqe(uint8_t opcode, uint32_t nsid);
uint16_t th_connect_ex(struct th_queue *q, const char *subnqn, const char *hostnqn,
		       const uint8_t hostid[16], uint16_t qid, uint16_t sqsize, uint16_t cntlid,
		       uint32_t kato, uint64_t *result);
uint16_t th_connect(struct th_queue *q, const char *subnqn, uint16_t qid, uint16_t cntlid,
		    uint32_t kato, uint64_t *result);
uint16_t th_prop_get(struct th_queue *q, uint32_t off, bool eight, uint64_t *val);
uint16_t th_prop_set(struct th_queue *q, uint32_t off, uint32_t val);
/* CC: EN, IOSQES 6, IOCQES 4, CSS 110b (as Linux writes it with CAP bit 43). */
uint32_t th_cc_enable(void);
/* Open + Connect (admin, KATO 0 unless given) + enable; asserts success. */
struct th_queue *th_admin(const char *subnqn, uint32_t kato, uint16_t *cntlid);
/* Set Features Number of Queues, then an I/O queue with this QID. */
struct th_queue *th_io(const char *subnqn, uint16_t cntlid, uint16_t qid);

uint16_t th_identify(struct th_queue *q, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf);
uint16_t th_get_log(struct th_queue *q, uint8_t lid, uint32_t nsid, uint8_t csi, uint64_t lpo,
		    bool rae, void *buf, uint32_t len);
uint16_t th_features(struct th_queue *q, bool set, uint8_t fid, uint32_t cdw11, void *buf,
		     uint32_t len, uint64_t *result);

#endif
