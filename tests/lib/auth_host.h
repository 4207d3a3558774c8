/*
 * Host side of DH-HMAC-CHAP for tests: runs one authentication transaction
 * the way a Linux host does (AUTH_Negotiate, Challenge, Reply, Success1,
 * Success2 / Failure2) over any carrier of Authentication Send / Receive
 * payloads: the controller state machine directly in unit tests, or the
 * fabrics commands of a real target.
 */
#ifndef ZNSTGT_TEST_AUTH_HOST_H
#define ZNSTGT_TEST_AUTH_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvme_keys.h"

struct auth_host_config {
	const char *hostnqn;
	const char *subnqn;
	const struct nvme_secret *host_secret;
	const struct nvme_secret *ctrl_secret;  /* non-NULL: authenticate the controller too */
	const uint8_t *hashes;   /* offered hash ids, in preference order */
	uint8_t nhash;
	const uint8_t *dhgroups; /* offered DH group ids, in preference order */
	uint8_t ndh;
	uint16_t tid;
};

/* Carries one Send payload / fetches one Receive payload (al bytes max). */
struct auth_host_io {
	int (*send)(void *arg, const void *buf, size_t len);
	ssize_t (*receive)(void *arg, void *buf, size_t al);
	void *arg;
};

struct auth_host_result {
	bool ok;
	bool by_controller;  /* the failure came as AUTH_Failure1 */
	uint8_t reason;      /* AUTH_FAIL_* of the failure */
	uint8_t hash, dhgroup;
};

/* Linux's offer: SHA-256, SHA-384, SHA-512; null, ffdhe2048 .. ffdhe8192. */
extern const uint8_t auth_host_all_hashes[3];
extern const uint8_t auth_host_all_dhgroups[6];

/* One full transaction. Returns 0 if authenticated, -1 otherwise (see res). */
int auth_host_authenticate(const struct auth_host_config *cfg, const struct auth_host_io *io,
			   struct auth_host_result *res);

#endif
