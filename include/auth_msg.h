/*
 * NVMe in-band authentication messages, carried by the Authentication Send
 * and Authentication Receive fabrics commands (NVMe Base 2.0, 8.13 "NVMe
 * over Fabrics in-band authentication"; 8.3.4 from Base 2.1 on): the common
 * AUTH_Negotiate, AUTH_Failure1 and AUTH_Failure2 and the DH-HMAC-CHAP
 * _Challenge, _Reply, _Success1 and _Success2 messages: wire layout, decode
 * with every length checked, encode. libnvme 1.3 (<nvme/types.h>) defines only the fabrics command
 * types for these, so the layouts are defined here.
 *
 * All multi-byte fields are little-endian. Variable parts follow the
 * 16-byte headers in the order the comments give.
 */
#ifndef ZNSTGT_AUTH_MSG_H
#define ZNSTGT_AUTH_MSG_H

#include <stddef.h>
#include <stdint.h>

/* Authentication Send/Receive SECP / SPSP0 / SPSP1 for DH-HMAC-CHAP. */
#define AUTH_SECP_NVME 0xe9
#define AUTH_SPSP0 0x01
#define AUTH_SPSP1 0x01

/* AUTH_Type */
enum { AUTH_TYPE_COMMON = 0x00, AUTH_TYPE_DHCHAP = 0x01 };

/* AUTH_Id */
enum {
	AUTH_ID_NEGOTIATE = 0x00,  /* common */
	AUTH_ID_CHALLENGE = 0x01,  /* DH-HMAC-CHAP */
	AUTH_ID_REPLY = 0x02,
	AUTH_ID_SUCCESS1 = 0x03,
	AUTH_ID_SUCCESS2 = 0x04,
	AUTH_ID_FAILURE2 = 0xf0,   /* common, host to controller */
	AUTH_ID_FAILURE1 = 0xf1,   /* common, controller to host */
};

/* AUTH_Negotiate protocol descriptor AUTHID */
#define AUTH_PROTOCOL_DHCHAP 0x01

/* Failure reason code (rescode) and reason code explanations (rescode_exp). */
#define AUTH_RESCODE_FAILED 0x01
enum {
	AUTH_FAIL_FAILED = 0x01,             /* authentication failed */
	AUTH_FAIL_NOT_USABLE = 0x02,         /* authentication protocol not usable */
	AUTH_FAIL_CONCAT_MISMATCH = 0x03,    /* secure channel concatenation mismatch */
	AUTH_FAIL_HASH_UNUSABLE = 0x04,      /* hash function not usable */
	AUTH_FAIL_DHGROUP_UNUSABLE = 0x05,   /* DH group not usable */
	AUTH_FAIL_INCORRECT_PAYLOAD = 0x06,  /* incorrect payload */
	AUTH_FAIL_INCORRECT_MESSAGE = 0x07,  /* incorrect protocol message */
};

/* Common header of every message. */
struct auth_hdr {
	uint8_t auth_type;
	uint8_t auth_id;
	uint8_t rsvd[2];
	uint16_t t_id;
} __attribute__((packed));

/* AUTH_Negotiate: header, then napd descriptors. */
struct auth_negotiate_hdr {
	struct auth_hdr h;
	uint8_t sc_c;   /* secure channel concatenation (0: none) */
	uint8_t napd;   /* number of protocol descriptors */
} __attribute__((packed));

struct auth_protocol_desc {
	uint8_t authid;
	uint8_t rsvd;
	uint8_t halen;
	uint8_t dhlen;
	uint8_t idlist[60];   /* hash ids at [0, 30), DH group ids at [30, 60) */
} __attribute__((packed));

/* DH-HMAC-CHAP_Challenge: header, C1 (hl), DH value (dhvlen). */
struct auth_challenge_hdr {
	struct auth_hdr h;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t hashid;
	uint8_t dhgid;
	uint16_t dhvlen;
	uint32_t seqnum;
} __attribute__((packed));

/* DH-HMAC-CHAP_Reply: header, R1 (hl), C2 (hl), DH value (dhvlen). */
struct auth_reply_hdr {
	struct auth_hdr h;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t cvalid;
	uint8_t rsvd2;
	uint16_t dhvlen;
	uint32_t seqnum;
} __attribute__((packed));

/* DH-HMAC-CHAP_Success1: header, R2 (hl) when rvalid. */
struct auth_success1_hdr {
	struct auth_hdr h;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t rvalid;
	uint8_t rsvd2[7];
} __attribute__((packed));

/* DH-HMAC-CHAP_Success2 */
struct auth_success2 {
	struct auth_hdr h;
	uint8_t rsvd[10];
} __attribute__((packed));

/* AUTH_Failure1 / AUTH_Failure2 */
struct auth_failure {
	struct auth_hdr h;
	uint8_t rescode;
	uint8_t rescode_exp;
} __attribute__((packed));

_Static_assert(sizeof(struct auth_negotiate_hdr) == 8, "AUTH_Negotiate header");
_Static_assert(sizeof(struct auth_protocol_desc) == 64, "protocol descriptor");
_Static_assert(sizeof(struct auth_challenge_hdr) == 16, "Challenge header");
_Static_assert(sizeof(struct auth_reply_hdr) == 16, "Reply header");
_Static_assert(sizeof(struct auth_success1_hdr) == 16, "Success1 header");
_Static_assert(sizeof(struct auth_success2) == 16, "Success2");
_Static_assert(sizeof(struct auth_failure) == 8, "Failure");

#define AUTH_NEG_MAX_IDS 30
/* Largest message: Reply with SHA-512 and ffdhe8192. */
#define AUTH_MSG_MAX (16 + 2 * 64 + 1024)

/*
 * A decoded message. Pointers point into the buffer that was decoded (or,
 * for encoding, to the caller's data).
 */
struct auth_msg {
	uint8_t type;   /* AUTH_TYPE_* */
	uint8_t id;     /* AUTH_ID_* */
	uint16_t tid;
	union {
		struct {
			uint8_t sc_c;
			uint8_t has_dhchap;   /* a DH-HMAC-CHAP descriptor was offered */
			uint8_t nhash, hash[AUTH_NEG_MAX_IDS];
			uint8_t ndh, dh[AUTH_NEG_MAX_IDS];
		} neg;
		struct {
			uint8_t hl, hashid, dhgid;
			uint16_t dhvlen;
			uint32_t seqnum;
			const uint8_t *cval, *dhv;
		} chal;
		struct {
			uint8_t hl, cvalid;
			uint16_t dhvlen;
			uint32_t seqnum;
			const uint8_t *rval, *cval, *dhv;
		} reply;
		struct {
			uint8_t hl, rvalid;
			const uint8_t *rval;
		} success1;
		struct {
			uint8_t rescode, rescode_exp;
		} failure;
	};
};

/*
 * Decode len bytes. Returns 0, or the failure reason explanation the
 * receiver should answer with: AUTH_FAIL_INCORRECT_MESSAGE for an unknown
 * AUTH_Type/AUTH_Id, AUTH_FAIL_INCORRECT_PAYLOAD for a message whose fields
 * do not fit in len (or are out of range). Bytes past the message are
 * ignored, as Linux does.
 */
int auth_msg_decode(const void *buf, size_t len, struct auth_msg *m);

/* Bytes m takes on the wire; 0 if m is not an encodable message. */
size_t auth_msg_size(const struct auth_msg *m);

/* Encode m into buf; returns its size, or 0 if cap is too small or m invalid. */
size_t auth_msg_encode(const struct auth_msg *m, void *buf, size_t cap);

#endif
