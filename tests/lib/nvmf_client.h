/*
 * A small host-side NVMe/TCP client for tests, the load generator and
 * malformed-input tests. Blocking sockets with a receive timeout (so a test
 * never hangs on a server bug), one connection = one queue.
 *
 *   struct nvmf_client c;
 *   nvmf_tcp_connect(&c, "127.0.0.1", "4420", hdgst, ddgst);  TCP + ICReq
 *   nvmf_connect(&c, 0, 32, 0, hostnqn, subnqn, 0xffff, 0, &cqe); Fabrics Connect
 *   nvmf_enable(&c, 5000);                                      CC.EN, CSTS.RDY
 *   nvmf_identify(&c, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf, &cqe);
 *   nvmf_close(&c);
 *
 * With nvmf_tls_handshake() between the two steps of nvmf_tcp_connect()
 * everything travels inside TLS 1.3 (tests/lib/nvmf_tls.h).
 *
 * Commands may be pipelined: nvmf_submit() returns the CID it used, and
 * nvmf_wait() / nvmf_wait_any() collect completions in any order. Data out
 * goes in-capsule when it fits (8 KiB on the admin queue and for Fabrics
 * commands, io_inline bytes on I/O queues), else after the controller's R2T
 * in H2CData PDUs of at most MAXH2CDATA. Data in is gathered from C2HData
 * PDUs (a SUCCESS flag completes the command without a CapsuleResp).
 *
 * Functions returning int give -1 on a transport failure (c->err says why;
 * c->term_fes is set if the controller sent a C2HTermReq) and otherwise the
 * NVMe status of the command: (cqe.status >> 1), 0 = success.
 */
#ifndef ZNSTGT_NVMF_CLIENT_H
#define ZNSTGT_NVMF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvme_wire.h"

#define NVMF_CLIENT_SLOTS 256   /* commands in flight; CIDs are slot numbers */

struct nvmf_slot {
	bool busy, done;
	const uint8_t *out;
	uint32_t outlen, sent;
	uint8_t *in;
	uint32_t inlen, got;
	struct nvme_cqe cqe;
};

struct nvmf_tls;
struct nvmf_tls_cfg;

struct nvmf_client {
	int fd;
	struct nvmf_tls *tls;        /* TLS 1.3 channel (nvmf_tls.h), or NULL: plain TCP */
	bool hdgst, ddgst;
	uint32_t maxh2cdata;         /* from ICResp */
	uint32_t io_inline;          /* in-capsule limit on I/O queues (default 8192) */
	int timeout_ms;              /* receive timeout (default 10000) */
	uint16_t qid;
	uint16_t cntlid;             /* from the admin Connect */
	bool dead;                   /* a transport error happened */
	uint16_t term_fes;           /* from a C2HTermReq, 0 if none */
	uint32_t term_fei;
	char err[160];
	struct nvmf_slot slots[NVMF_CLIENT_SLOTS];
	uint16_t next_slot;
};

/* Start on an already connected socket (e.g. one end of a socketpair). */
void nvmf_client_init(struct nvmf_client *c, int fd);
/* TCP connect only (for tests that send their own ICReq). */
int nvmf_tcp_socket(struct nvmf_client *c, const char *addr, const char *port);
/* TLS 1.3 with a PSK (nvmf_tls.h) on the connected socket, before ICReq:
 * every PDU after it travels inside TLS. 0, or -1 (c->err). */
int nvmf_tls_handshake(struct nvmf_client *c, const struct nvmf_tls_cfg *cfg,
		       const char *hostnqn, const char *subnqn);
/* ICReq/ICResp; checks ICResp (plen, PFV, CPDA, digests echoed, MAXH2CDATA). */
int nvmf_icreq(struct nvmf_client *c, bool hdgst, bool ddgst);
/* Both of the above. */
int nvmf_tcp_connect(struct nvmf_client *c, const char *addr, const char *port, bool hdgst,
		     bool ddgst);
void nvmf_close(struct nvmf_client *c);

/* Submit sqe (CID, PSDT and SGL1 are filled in). Returns the CID or -1. */
int nvmf_submit(struct nvmf_client *c, struct nvme_sqe *sqe, const void *out, uint32_t outlen,
		void *in, uint32_t inlen);
/* Wait for cid's completion. */
int nvmf_wait(struct nvmf_client *c, uint16_t cid, struct nvme_cqe *cqe);
/* Wait for any completion; *cid tells which. */
int nvmf_wait_any(struct nvmf_client *c, uint16_t *cid, struct nvme_cqe *cqe);
/* Submit and wait. */
int nvmf_cmd(struct nvmf_client *c, struct nvme_sqe *sqe, const void *out, uint32_t outlen,
	     void *in, uint32_t inlen, struct nvme_cqe *cqe);

/* Fabrics Connect (sqsize 1's based here; sent 0's based). On an admin
 * connect success c->cntlid is set from the result. cattr bit 2 disables SQ
 * flow control. */
int nvmf_connect(struct nvmf_client *c, uint16_t qid, uint16_t sqsize, uint32_t kato_ms,
		 const char *hostnqn, const char *subnqn, uint16_t cntlid, uint8_t cattr,
		 struct nvme_cqe *cqe);
int nvmf_prop_get(struct nvmf_client *c, uint32_t off, bool size8, uint64_t *val);
int nvmf_prop_set(struct nvmf_client *c, uint32_t off, bool size8, uint64_t val);
/* CC.EN = 1 (CSS per CAP, IOSQES 6, IOCQES 4), then wait for CSTS.RDY. */
int nvmf_enable(struct nvmf_client *c, int timeout_ms);
/* A host's admin queue at addr:port, ready: TCP and ICReq (no digests),
 * Connect (sqsize 32, no KATO, a dynamic controller), CC.EN within 5 s.
 * 0, or -1 and c->err saying which step failed and how. */
int nvmf_admin_up(struct nvmf_client *c, const char *addr, const char *port,
		  const char *hostnqn, const char *subnqn);
/* A host's I/O queue qid of controller cntlid at addr:port: TCP and ICReq
 * (no digests), Connect (sqsize, no KATO). 0, or -1 and c->err saying
 * which step failed and how (a Connect's status too). */
int nvmf_io_up(struct nvmf_client *c, const char *addr, const char *port, const char *hostnqn,
	       const char *subnqn, uint16_t cntlid, uint16_t qid, uint16_t sqsize);
/* Identify into buf (4096 bytes). */
int nvmf_identify(struct nvmf_client *c, uint8_t cns, uint32_t nsid, uint8_t csi, void *buf,
		  struct nvme_cqe *cqe);
/* Set Features Asynchronous Event Configuration to aec, then submit an
 * Asynchronous Event Request and leave it parked: its CID, or -1. */
int nvmf_listen_aer(struct nvmf_client *c, uint32_t aec);
/* Read / Write len bytes (nlb = len / lba_size, 1's based) at slba. */
int nvmf_read(struct nvmf_client *c, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
	      uint32_t len, struct nvme_cqe *cqe);
int nvmf_write(struct nvmf_client *c, uint32_t nsid, uint64_t slba, uint32_t nlb,
	       const void *buf, uint32_t len, struct nvme_cqe *cqe);

/* Raw access for malformed-input tests. */
int nvmf_send_raw(struct nvmf_client *c, const void *buf, size_t len);
/* Up to len bytes; 0 on EOF, -1 on timeout or error. */
ssize_t nvmf_recv_raw(struct nvmf_client *c, void *buf, size_t len);
/*
 * Expect the controller to end the connection: reads until EOF, parsing a
 * C2HTermReq if one comes (c->term_fes / term_fei). Returns 0 once closed,
 * -1 if the connection stayed open past the timeout or sent something else.
 */
int nvmf_expect_close(struct nvmf_client *c);

#endif
