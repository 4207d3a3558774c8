/*
 * Reservations of one namespace (NVMe Base 2.0, 8.1.22 "Reservations";
 * commands 7.5 Reservation Acquire, 7.6 Register, 7.7 Release, 7.8 Report):
 * the state machine alone, with no I/O and no locking, so that every rule
 * can be tested by hand (tests/unit/test_resv.c).
 *
 * Registrants are hosts, known by their 128-bit Host Identifier (the
 * HOSTID of the Fabrics Connect data, or Set Features Host Identifier on a
 * PCIe controller): every controller of one host shares its registration
 * and its reservation, as the spec asks (8.1.22.1).
 *
 * Each action returns a znstgt status word (nvme_wire.h): 0, Reservation
 * Conflict, or Invalid Field; on success it may change the state and lists
 * the hosts to notify (Reservation Notification log page, 5.16.1.24).
 * A failed action leaves the state as it was.
 */
#ifndef ZNSTGT_RESV_H
#define ZNSTGT_RESV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Registrants a namespace keeps; one more Register is refused (doc/reservations.md). */
#define RESV_MAX_REGS 64u

/* Reservation types (RTYPE, 8.1.22.1 Figure "Reservation Type Encoding"). */
enum resv_type {
	RESV_NONE = 0,
	RESV_WE = 1,          /* Write Exclusive */
	RESV_EA = 2,          /* Exclusive Access */
	RESV_WE_RO = 3,       /* Write Exclusive - Registrants Only */
	RESV_EA_RO = 4,       /* Exclusive Access - Registrants Only */
	RESV_WE_AR = 5,       /* Write Exclusive - All Registrants */
	RESV_EA_AR = 6,       /* Exclusive Access - All Registrants */
};

/* Notification types (Reservation Notification log page, RNLPT). */
enum resv_note_type {
	RESV_NOTE_REG_PREEMPTED = 1,
	RESV_NOTE_RELEASED = 2,
	RESV_NOTE_PREEMPTED = 3,
};

struct resv_reg {
	uint8_t hostid[16];
	uint64_t key;
};

struct resv_state {
	uint32_t gen;             /* Generation (Report): every successful Register,
				   * Preempt and Clear */
	uint8_t rtype;            /* enum resv_type, RESV_NONE: no reservation */
	bool ptpl;                /* Persist Through Power Loss */
	uint8_t holder[16];       /* the holder's Host ID (types 1..4 only: with
				   * an All Registrants type every registrant is one) */
	uint16_t nr;
	struct resv_reg regs[RESV_MAX_REGS];
};

/* A host to notify, and of what. */
struct resv_note {
	uint8_t hostid[16];
	uint8_t type;             /* enum resv_note_type */
};

struct resv_notes {
	uint16_t n;
	struct resv_note v[RESV_MAX_REGS];
};

/* What a command may do to the namespace: the "read" and "write" command
 * groups of 8.1.22.1 Figure "Command Behavior in the Presence of a
 * Reservation". */
enum resv_access { RESV_ACCESS_READ, RESV_ACCESS_WRITE };

static inline bool resv_all_registrants(uint8_t rtype)
{
	return rtype == RESV_WE_AR || rtype == RESV_EA_AR;
}

/* Whether host is a registrant, and one that holds the reservation. */
const struct resv_reg *resv_find(const struct resv_state *s, const uint8_t host[16]);
bool resv_is_holder(const struct resv_state *s, const uint8_t host[16]);

/*
 * Reservation Register (7.6): rrega 0 Register, 1 Unregister, 2 Replace;
 * iekey ignores CRKEY (Unregister, Replace); cptpl 00b leaves PTPL as it
 * is, 10b clears it, 11b sets it (01b is Invalid Field).
 */
uint16_t resv_register(struct resv_state *s, const uint8_t host[16], uint8_t rrega, bool iekey,
		       uint8_t cptpl, uint64_t crkey, uint64_t nrkey, struct resv_notes *out);
/* Reservation Acquire (7.5): racqa 0 Acquire, 1 Preempt, 2 Preempt and Abort. */
uint16_t resv_acquire(struct resv_state *s, const uint8_t host[16], uint8_t racqa, bool iekey,
		      uint8_t rtype, uint64_t crkey, uint64_t prkey, struct resv_notes *out);
/* Reservation Release (7.7): rrela 0 Release, 1 Clear. */
uint16_t resv_release(struct resv_state *s, const uint8_t host[16], uint8_t rrela, bool iekey,
		      uint8_t rtype, uint64_t crkey, struct resv_notes *out);
/* Set Features Reservation Persistence (5.27.1.28): the PTPL state. */
void resv_set_ptpl(struct resv_state *s, bool ptpl);

/* Whether host's command of this group meets a Reservation Conflict. */
bool resv_conflict(const struct resv_state *s, const uint8_t host[16], enum resv_access a);

/*
 * The Reservation Status Data Structure, extended (7.8, EDS = 1: 64-byte
 * header, 64 bytes per registrant) into buf, len bytes: as much as fits,
 * the rest zeros; REGCTL counts every registrant. Controller IDs read FFFFh
 * (registrants are hosts, with any number of controllers each).
 */
void resv_report(const struct resv_state *s, void *buf, size_t len);

/* Power-up (8.1.22.x PTPL): without PTPL the reservation and every
 * registration are gone; with it they stay. */
void resv_power_up(struct resv_state *s);

#endif
