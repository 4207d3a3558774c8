/*
 * Asymmetric Namespace Access (NVMe Base 2.0, 8.1 "Asymmetric Namespace
 * Access Reporting"; log page 0Ch, 5.16.1.13). doc/ana.md has the whole
 * picture.
 *
 * Every namespace belongs to an ANA group (its ana_group key, default 1);
 * group IDs are global, as in Linux nvmet. Each listener (port) has a state
 * per group - optimized, non-optimized, inaccessible, persistent loss or
 * change - from the configuration's ana_state keys (optimized when none
 * names it), changed at run time with `znstgt-ctl ana set`. A controller
 * reports the states of the port its admin queue came in on; a PCIe
 * (vfio-user) controller has no port and always reports optimized.
 *
 * The state names (ana_state_parse/_name) are common code, used by the
 * configuration and the control request parsers; the rest lives in the
 * controller core (server/core/ana.c).
 */
#ifndef ZNSTGT_ANA_H
#define ZNSTGT_ANA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct nvme_ctrl;
struct nvme_id_ctrl;
struct nvme_req;
struct nvme_log_args;
struct subsys;

/* Identify Controller ANATT (seconds): how long a host waits for a group in
 * the change state before it gives up on the path (8.1). */
#define ANA_TT_SECONDS 10u
/* Port IDs the state table covers: every TCP listener (port.c hands IDs out
 * from 1, one per listen / tls_listen address). */
#define ANA_MAX_PORTS (2 * CFG_MAX_LISTENERS)

/* ---- names (common/ana_state.c) ---- */

/* "optimized", "non-optimized", "inaccessible", "persistent-loss", "change"
 * -> NVME_ANA_STATE_*. 0, or -1 for anything else. */
int ana_state_parse(const char *s, uint8_t *state);
/* The name of an NVME_ANA_STATE_* value ("?" for anything else). */
const char *ana_state_name(uint8_t state);
/* The accepted names, for messages. */
#define ANA_STATE_NAMES "optimized, non-optimized, inaccessible, persistent-loss or change"

/* ---- the port table (server/core/ana_port.c) ---- */

/*
 * A listener was opened as port portid for lc: every group optimized, then
 * the configuration's ana_state lines for lc (matched by address and port
 * as written), change counts from zero.
 */
void ana_port_configure(uint16_t portid, const struct target_config *cfg,
			const struct listener_config *lc);
/* The state of group on portid (optimized for a port or group out of range). */
uint8_t ana_state(uint16_t portid, uint32_t group);
/*
 * Set group's state on port portid (0 < group <= CFG_MAX_ANA_GROUPS); when
 * it differs, the port's change count goes up and the group's takes its
 * value. 1 if it changed, 0 if it was that already, -1 with err.
 */
int ana_port_set(uint16_t portid, uint32_t group, uint8_t state, char *err, size_t errlen);
/* One port's states and change counts, taken together. */
struct ana_port_view {
	uint8_t state[CFG_MAX_ANA_GROUPS + 1];
	uint64_t group_chgcnt[CFG_MAX_ANA_GROUPS + 1];
	uint64_t chgcnt;
};
void ana_port_snapshot(uint16_t portid, struct ana_port_view *v);

/* ---- changes and reports (server/core/ana.c) ---- */

/* ana_port_set, then the ANA Change notice (8.1; 5.2) to every controller of
 * that port whose subsystem has a namespace in the group. 0 or -1 + err. */
int ana_set_state(uint16_t portid, uint32_t group, uint8_t state, char *err, size_t errlen);
/* Each registered port with the states of the groups in use and of those
 * not optimized, for `znstgt-ctl ana show`. */
int ana_print(FILE *out);

/* ---- the controller core's hooks ---- */

/* Whether ctrl reports ANA (CMIC bit 3): an I/O controller whose subsystem
 * has namespaces (a Linux host refuses MNAN 0 with ANA reporting). */
bool ana_reported(const struct nvme_ctrl *ctrl);
/* The ANA fields of Identify Controller (CMIC, OAES, ANATT, ANACAP,
 * ANAGRPMAX, NANAGRPID), when ana_reported(). */
void ana_build_id_ctrl(const struct nvme_ctrl *ctrl, struct nvme_id_ctrl *id);
/* The ANA group of namespace nsid of s (its ANAGRPID). */
uint32_t ana_ns_group(const struct subsys *s, uint32_t nsid);
/*
 * Path status for an I/O command of ctrl on namespace nsid (8.1): 0 when
 * the group is optimized or non-optimized, else Asymmetric Access
 * Inaccessible / Persistent Loss / Transition, without DNR, so that a
 * multipath host retries on another path.
 */
uint16_t ana_io_status(const struct nvme_ctrl *ctrl, uint32_t nsid);
/* Get Log Page 0Ch: checks its fields and sets req->execute. */
uint16_t ana_parse_log_page(struct nvme_req *req, const struct nvme_log_args *a);

#endif
