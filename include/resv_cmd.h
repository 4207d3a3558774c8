/*
 * Reservations in the controller core (server/core/io_resv.c; NVMe Base
 * 2.0, 8.1.22): the four I/O commands, the Reservation Conflict check of
 * every other I/O command, the Reservation Notification log page (80h) and
 * its event, and the features Host Identifier (81h), Reservation
 * Notification Mask (82h) and Reservation Persistence (83h).
 * doc/reservations.md has the whole picture.
 */
#ifndef ZNSTGT_RESV_CMD_H
#define ZNSTGT_RESV_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include <nvme/types.h>

#include "config.h"

struct nvme_req;

/* Reservation Notification log pages a controller keeps unread; more are
 * dropped, the last one kept taking the Log Page Count of the newest lost
 * (Base 2.0a, 5.16.1.25). */
#define NVME_RESV_LOG_MAX 32u

/* A controller's side of reservations, in struct nvme_ctrl (under its lock). */
struct nvme_resv_ctrl {
	uint8_t mask[CFG_MAX_NAMESPACES + 1]; /* Reservation Notification Mask, by NSID */
	uint64_t count;                       /* Log Page Count of the newest page */
	struct nvme_resv_page {
		uint64_t count;
		uint8_t type;
		uint32_t nsid;
	} q[NVME_RESV_LOG_MAX];
	uint32_t head, n;                     /* unread pages, oldest at head */
};

/* Identify Namespace RESCAP: every type, PTPL, IEKEY as revision 1.3 on. */
#define NVME_RESV_RESCAP 0xffu

/* Reservation Register, Report, Acquire, Release (from nvme_parse_io_cmd). */
uint16_t nvme_parse_resv_cmd(struct nvme_req *req);
/* Whether req, an I/O command on req->ns about to run, meets a Reservation
 * Conflict (8.1.22.1, Figure "Command Behavior in the Presence of a
 * Reservation"). */
bool nvme_resv_conflict(const struct nvme_req *req);
/* Features 81h, 82h, 83h (from nvme_parse_features). */
uint16_t nvme_parse_resv_feature(struct nvme_req *req);
/* Get Log Page 80h (from nvme_parse_get_log_page). */
uint16_t nvme_parse_resv_log(struct nvme_req *req);
/* The Commands Supported and Effects entries of the four commands. */
void nvme_resv_cmd_effects(struct nvme_cmd_effects_log *l);

#endif
