/*
 * Controller side of DH-HMAC-CHAP (NVMe Base 2.0, 8.13; 8.3.4 from 2.1 on)
 * for one queue, independent of any transport: feed it the payload of each
 * Authentication Send, ask it for the payload of each Authentication
 * Receive, and it says whether the queue is authenticated or why it failed.
 *
 * Transaction, as a Linux host runs it:
 *   host -> AUTH_Negotiate            (Send)     hash and DH group lists
 *   host <- DH-HMAC-CHAP_Challenge    (Receive)  hash, group, S1, C1, g^y
 *   host -> DH-HMAC-CHAP_Reply        (Send)     R1, [C2, S2], g^x
 *   host <- DH-HMAC-CHAP_Success1     (Receive)  [R2 if the host sent C2]
 *   host -> DH-HMAC-CHAP_Success2     (Send)     only after R2
 * Any message that is malformed, out of order or fails verification makes
 * the next Receive return AUTH_Failure1 with the reason, and the session
 * fails; an AUTH_Failure2 from the host fails it with the host's reason.
 * A new AUTH_Negotiate starts a new transaction at any time
 * (re-authentication): a queue that was authenticated stays so until that
 * transaction fails.
 *
 * Not handled here (the caller's job): the Send/Receive command fields
 * (auth_cmd_fields_valid), the transaction timeout, what to do with the
 * queue after a failure, and secure channel concatenation (SC_C != 0 is
 * refused with "secure channel concatenation mismatch").
 */
#ifndef ZNSTGT_AUTH_H
#define ZNSTGT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvme_keys.h"

struct auth_config {
	const char *hostnqn;
	const char *subnqn;
	const struct nvme_secret *host_secret;   /* DHHC-1, required */
	const struct nvme_secret *ctrl_secret;   /* DHHC-1 or NULL: no controller auth */
	uint8_t hash_mask;    /* bit n: hash id n (1..3) allowed; 0 = all */
	uint8_t dhgroup_mask; /* bit n: DH group id n (0..5) allowed; 0 = all */
};

enum auth_result {
	AUTH_IN_PROGRESS,   /* no transaction finished yet (or one is running) */
	AUTH_SUCCEEDED,
	AUTH_FAILED,
};

struct auth_session;

/* Copies everything it needs from cfg (secrets included). NULL if invalid. */
struct auth_session *auth_session_new(const struct auth_config *cfg);
/*
 * The keys and masks of cfg (its NQNs are not looked at) for the session's
 * next transactions, the old ones wiped: called when a transaction starts,
 * so that a re-authentication uses the keys configured now, as Linux nvmet
 * does. -1 (the session unchanged) if cfg is invalid or memory runs out.
 */
int auth_session_set_keys(struct auth_session *s, const struct auth_config *cfg);
/* Wipes all secrets and transaction state. NULL is fine. */
void auth_session_free(struct auth_session *s);

/* The payload of an Authentication Send command. */
void auth_session_send(struct auth_session *s, const void *buf, size_t len);

/*
 * The payload for an Authentication Receive with allocation length al:
 * returns its length, or -1 if al is too small for the pending message
 * (nothing changes; the caller fails the command with Invalid Field).
 */
ssize_t auth_session_receive(struct auth_session *s, void *buf, size_t al);

enum auth_result auth_session_result(const struct auth_session *s);
/* True once a transaction succeeded and no later one failed. */
bool auth_session_authenticated(const struct auth_session *s);
/* A transaction is under way: a message waits for Receive, or a Send is
 * expected next. False before the first Negotiate and once one ended. */
bool auth_session_busy(const struct auth_session *s);
/* Reason code explanation of the failure (AUTH_FAIL_*), 0 if none. */
uint8_t auth_session_failure(const struct auth_session *s);
/* Hash and DH group of the last negotiated transaction (0 before). */
uint8_t auth_session_hash(const struct auth_session *s);
uint8_t auth_session_dhgroup(const struct auth_session *s);

/* SECP / SPSP0 / SPSP1 of an Authentication Send/Receive name DH-HMAC-CHAP. */
bool auth_cmd_fields_valid(uint8_t secp, uint8_t spsp0, uint8_t spsp1);

#endif
