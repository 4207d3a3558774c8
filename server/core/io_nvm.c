/*
 * NVM Command Set I/O (NVM Command Set 1.0, 3): Read, Write, Write Zeroes,
 * Flush, Dataset Management, over the namespace backend (ns.h).
 *
 * A command's steps, all starting and ending on the queue's worker:
 *   parse   range and length checks (no data needed yet)
 *   execute non-blocking backend calls (read check, write reservation),
 *           then the blocking part on an I/O thread (io_submit_job)
 *   done    publish the write, then either complete, or first wait for
 *           ns_sync (group commit) and hop back with worker_post.
 *
 * Durability: with the volatile write cache off (or disabled by Set
 * Features) every write is durable before it completes; with it on only
 * FUA writes and Flush wait for ns_sync.
 */
#include <string.h>
#include <sys/uio.h>

#include <nvme/types.h>

#include "ana.h"
#include "ctrl.h"
#include "log.h"
#include "ns.h"
#include "nvme_cmd.h"
#include "subsys.h"

#define RW_FUA (1u << 30) /* cdw12: Force Unit Access */

static uint64_t rw_slba(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw10) | (uint64_t)le32toh(req->cmd.cdw11) << 32;
}

static uint32_t rw_nlb(const struct nvme_req *req)
{
	return (le32toh(req->cmd.cdw12) & 0xffff) + 1u; /* 0's based */
}

static bool rw_fua(const struct nvme_req *req)
{
	return le32toh(req->cmd.cdw12) & RW_FUA;
}

static void submit(struct nvme_req *req, void (*run)(struct io_job *), void (*done)(struct io_job *))
{
	req->job.worker = req->sq->worker;
	req->job.run = run;
	req->job.done = done;
	io_submit_job(&req->job);
}

/* ---- durability ---- */

static void sync_hop(struct worker_msg *msg)
{
	struct io_job *job = container_of(msg, struct io_job, msg);

	job->done(job);
}

/* On a commit thread. req->result counts the syncs still out. */
static void sync_cb(void *arg, uint16_t status)
{
	struct nvme_req *req = arg;

	if (status) {
		uint16_t none = 0;

		__atomic_compare_exchange_n(&req->status, &none, status, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
	}
	if (__atomic_sub_fetch(&req->result, 1, __ATOMIC_ACQ_REL) == 0) {
		req->job.msg.fn = sync_hop;
		worker_post(req->job.worker, &req->job.msg);
	}
}

void nvme_req_sync(struct nvme_req *req, struct ns *const *nss, int n,
		   void (*done)(struct io_job *job))
{
	req->status = 0;
	req->job.worker = req->sq->worker;
	req->job.done = done;
	if (n == 0) {
		done(&req->job);
		return;
	}
	__atomic_store_n(&req->result, (uint64_t)n, __ATOMIC_RELEASE);
	/* The last callback may complete req at once: do not touch it after
	 * the last ns_sync() call (nss may point into it). */
	for (int i = 0; i < n; i++)
		ns_sync(nss[i], sync_cb, req);
}

void nvme_req_sync_all(struct nvme_req *req, void (*done)(struct io_job *job))
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	struct ns *nss[CFG_MAX_NAMESPACES];
	int n = 0;

	for (uint32_t nsid = 1; nsid <= s->max_nsid; nsid++)
		if (subsys_ns(s, nsid))
			nss[n++] = subsys_ns(s, nsid);
	nvme_req_sync(req, nss, n, done);
}

bool nvme_ns_write_through(const struct nvme_ctrl *ctrl, struct ns *ns)
{
	return !ns_info(ns)->write_cache || !atomic_load(&ctrl->wce);
}

/* ---- Read ---- */

static void read_run(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	req->status = ns_read(req->ns, rw_slba(req), rw_nlb(req), req->iov, req->iovcnt);
}

static void read_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	if (!req->status)
		subsys_count_io(nvme_req_ctrl(req)->subsys, false, req->transfer_len);
	nvme_req_complete(req, req->status);
}

/*
 * Data the page cache holds is read right here on the loop: the hop to an
 * I/O thread and back costs two thread wake-ups, several times the copy
 * itself. Only what would wait for the disk goes to an I/O thread. A
 * transport that lets the core lend it the data (may_borrow) gets a pointer
 * into the page cache and copies it to the socket itself: for a 4 KiB read
 * the copy into its buffer was the largest part of the target's CPU, its
 * source rarely in the CPU's caches (doc/performance.md, "Borrowed reads").
 */
static void execute_read(struct nvme_req *req)
{
	uint16_t st = ns_read_check(req->ns, rw_slba(req), rw_nlb(req));

	if (st) {
		nvme_req_complete(req, st);
		return;
	}
	if (req->may_borrow &&
	    (req->borrowed = ns_read_borrow(req->ns, rw_slba(req), rw_nlb(req)))) {
		read_done(&req->job);
		return;
	}
	if (ns_read_cached(req->ns, rw_slba(req), rw_nlb(req), req->iov, req->iovcnt,
			   &req->status)) {
		read_done(&req->job);
		return;
	}
	submit(req, read_run, read_done);
}

/* ---- Write, Write Zeroes, Zone Append ---- */

static void write_finish(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	if (!req->status) {
		if (req->w.kind == NS_ZONE_APPEND)
			req->result = req->w.slba; /* ALBA: where the data went */
		subsys_count_io(nvme_req_ctrl(req)->subsys, true, req->transfer_len);
	}
	nvme_req_complete(req, req->status);
}

static void write_run(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	if (req->w.kind == NS_WRITE_ZEROES)
		req->status = ns_write_data(req->ns, &req->w, NULL, 0);
	else
		req->status = ns_write_data(req->ns, &req->w, req->iov, req->iovcnt);
}

static void write_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	ns_write_end(req->ns, &req->w, req->status);
	if (!req->status && (rw_fua(req) || nvme_ns_write_through(nvme_req_ctrl(req), req->ns))) {
		nvme_req_sync(req, &req->ns, 1, write_finish);
		return;
	}
	write_finish(job);
}

void nvme_execute_write(struct nvme_req *req, enum ns_write_kind kind)
{
	uint16_t st;

	memset(&req->w, 0, sizeof(req->w));
	req->w.kind = kind;
	st = ns_write_begin(req->ns, &req->w, kind, rw_slba(req), rw_nlb(req));
	if (st) {
		log_debug("nsid %u: %s at LBA %llu, %u blocks: status %#x", ns_info(req->ns)->nsid,
			  kind == NS_ZONE_APPEND ? "zone append" : "write",
			  (unsigned long long)rw_slba(req), rw_nlb(req), st);
		nvme_req_complete(req, st);
		return;
	}
	submit(req, write_run, write_done);
}

static void execute_write(struct nvme_req *req)
{
	nvme_execute_write(req, NS_WRITE);
}

static void execute_write_zeroes(struct nvme_req *req)
{
	nvme_execute_write(req, NS_WRITE_ZEROES);
}

/* ---- Flush ---- */

static void flush_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	nvme_req_complete(req, req->status);
}

static void execute_flush(struct nvme_req *req)
{
	if (req->ns)
		nvme_req_sync(req, &req->ns, 1, flush_done);
	else /* NSID FFFFFFFFh: every namespace (Identify VWC bits 2:1 = 11b) */
		nvme_req_sync_all(req, flush_done);
}

/* ---- Dataset Management (3.2.3): only Deallocate does something ---- */

static uint32_t dsm_nr(const struct nvme_req *req)
{
	return (le32toh(req->cmd.cdw10) & 0xff) + 1u; /* 0's based */
}

static void dsm_range(const struct nvme_req *req, uint32_t i, uint64_t *slba, uint32_t *nlb)
{
	struct nvme_dsm_range r;

	nvme_req_copy_from(req, i * sizeof(r), &r, sizeof(r));
	*slba = le64toh(r.slba);
	*nlb = le32toh(r.nlb);
}

static void dsm_run(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	req->status = 0;
	for (uint32_t i = 0; i < dsm_nr(req) && !req->status; i++) {
		uint64_t slba;
		uint32_t nlb;

		dsm_range(req, i, &slba, &nlb);
		if (nlb)
			req->status = ns_deallocate(req->ns, slba, nlb);
	}
}

static void dsm_done(struct io_job *job)
{
	struct nvme_req *req = container_of(job, struct nvme_req, job);

	if (!req->status && nvme_ns_write_through(nvme_req_ctrl(req), req->ns)) {
		nvme_req_sync(req, &req->ns, 1, flush_done);
		return;
	}
	nvme_req_complete(req, req->status);
}

static void execute_dsm(struct nvme_req *req)
{
	uint64_t nlbas = ns_info(req->ns)->nlbas;

	if (!(le32toh(req->cmd.cdw11) & NVME_DSMGMT_AD)) { /* hints only */
		nvme_req_complete(req, 0);
		return;
	}
	for (uint32_t i = 0; i < dsm_nr(req); i++) {
		uint64_t slba;
		uint32_t nlb;

		dsm_range(req, i, &slba, &nlb);
		if (slba > nlbas || nlb > nlbas - slba) {
			nvme_req_complete(req, nvme_err(NVME_SC_LBA_RANGE));
			return;
		}
	}
	submit(req, dsm_run, dsm_done);
}

/* ---- parsing ---- */

/* SLBA/NLB inside the namespace, and the transfer exactly NLB blocks
 * (none for Write Zeroes). */
static uint16_t parse_rw(struct nvme_req *req, bool data)
{
	const struct ns_info *info = ns_info(req->ns);
	uint64_t slba = rw_slba(req);
	uint32_t nlb = rw_nlb(req);
	uint16_t st = nvme_req_data_len(req, data ? nlb << info->lba_shift : 0);

	if (st)
		return st;
	if (slba >= info->nlbas || nlb > info->nlbas - slba)
		return nvme_err(NVME_SC_LBA_RANGE);
	return 0;
}

uint16_t nvme_parse_io_cmd(struct nvme_req *req)
{
	const struct subsys *s = nvme_req_ctrl(req)->subsys;
	uint32_t nsid = le32toh(req->cmd.nsid);
	uint16_t st;

	if (!nvme_ctrl_ready(nvme_req_ctrl(req)))
		return nvme_err(NVME_SC_CMD_SEQ_ERROR);

	if (req->cmd.opcode == nvme_cmd_flush && nsid == NVME_NSID_ALL) {
		req->execute = execute_flush;
		return nvme_req_data_len(req, 0);
	}
	req->ns = subsys_ns(s, nsid);
	if (!req->ns)
		return nvme_err(NVME_SC_INVALID_NS);
	/* An inaccessible path fails every command on the namespace (NVMe
	 * Base 2.0, 8.1). */
	st = ana_io_status(nvme_req_ctrl(req), nsid);
	if (st)
		return st;

	switch (req->cmd.opcode) {
	case nvme_cmd_read:
		req->execute = execute_read;
		return parse_rw(req, true);
	case nvme_cmd_write:
		req->execute = execute_write;
		return parse_rw(req, true);
	case nvme_cmd_write_zeroes:
		req->execute = execute_write_zeroes;
		return parse_rw(req, false);
	case nvme_cmd_flush:
		req->execute = execute_flush;
		return nvme_req_data_len(req, 0);
	case nvme_cmd_dsm:
		/* At least NR ranges. Linux always sends a whole page of them
		 * (256 ranges, 4 KiB) whatever NR says; nvmet accepts that. */
		req->execute = execute_dsm;
		return nvme_req_data_len_within(req, dsm_nr(req) * sizeof(struct nvme_dsm_range),
						NVME_DSM_MAX_RANGES * sizeof(struct nvme_dsm_range));
	case nvme_zns_cmd_append:
	case nvme_zns_cmd_mgmt_send:
	case nvme_zns_cmd_mgmt_recv:
		return nvme_parse_zns_cmd(req);
	case nvme_cmd_resv_register:
	case nvme_cmd_resv_report:
	case nvme_cmd_resv_acquire:
	case nvme_cmd_resv_release:
		return nvme_parse_resv_cmd(req);
	default:
		return nvme_err(NVME_SC_INVALID_OPCODE);
	}
}
