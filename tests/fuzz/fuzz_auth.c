/*
 * libFuzzer target for in-band authentication: the message decoder
 * (common/auth_msg.c) and the controller state machine (server/core/auth.c).
 *
 * Each input is used twice:
 *   1. decoded as one message; whatever decodes must encode back to the
 *      same number of bytes it claims, and decode again to the same header;
 *   2. as a program driving one controller session. The first byte picks
 *      the allowed hashes (bits 0-2) and whether ffdhe2048 is allowed
 *      besides null (bit 3; the bigger groups only cost time) and whether a
 *      controller secret is configured (bit 4). Then each operation is one
 *      byte and its operands:
 *        0  Send: le16 length, then that many bytes (clipped to the input)
 *        1  Receive: allocation length byte * 8
 *        2  Send a well-formed Negotiate: T_ID byte, hash id, group id
 *        3  Send the correct Reply to the last Challenge fetched (null DH
 *           group only; optional controller challenge: cvalid byte), so
 *           that mutations reach Success1 / Success2 / Failure2
 *        4  Send a Success2 or Failure2: which byte, T_ID byte
 * Whatever happens: no crash, no leak, no sanitizer report, and the session
 * is authenticated only if its result says so.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_msg.h"
#include "dhchap.h"
#include "nvme_hmac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hostnqn[] = "nqn.2014-08.org.nvmexpress:uuid:fuzz-host";
static const char subnqn[] = "nqn.2026-01.io.znstgt:fuzz";

static void check_codec(const uint8_t *data, size_t size)
{
	uint8_t buf[AUTH_MSG_MAX + 64 * 64];
	struct auth_msg m, m2;
	size_t n;

	if (auth_msg_decode(data, size, &m) != 0)
		return;
	n = auth_msg_size(&m);
	if (n == 0 || n > size)
		abort();   /* decoded a message longer than its bytes */
	if (m.type == AUTH_TYPE_COMMON && m.id == AUTH_ID_NEGOTIATE && !m.neg.has_dhchap)
		return;    /* we re-encode only our own protocol's descriptor */
	if (auth_msg_encode(&m, buf, sizeof(buf)) != n || auth_msg_decode(buf, n, &m2) != 0 ||
	    m2.type != m.type || m2.id != m.id || m2.tid != m.tid)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvme_secret hkey = { .kind = NVME_SECRET_DHCHAP, .hash = 1, .len = 32 };
	struct nvme_secret ckey = { .kind = NVME_SECRET_DHCHAP, .hash = 0, .len = 48 };
	uint8_t out[AUTH_MSG_MAX], chal[AUTH_MSG_MAX], msg[AUTH_MSG_MAX];
	struct auth_msg last = { 0 };
	bool have_chal = false;
	struct auth_session *s;
	size_t i = 1;

	check_codec(data, size);
	if (size < 1)
		return 0;
	memset(hkey.key, 0x5a, sizeof(hkey.key));
	memset(ckey.key, 0xa5, sizeof(ckey.key));
	struct auth_config cfg = {
		.hostnqn = hostnqn, .subnqn = subnqn, .host_secret = &hkey,
		.ctrl_secret = (data[0] & 0x10) ? &ckey : NULL,
		.hash_mask = (uint8_t)((data[0] & 7) << 1),
		.dhgroup_mask = (uint8_t)((data[0] & 8) ? 3 : 1),
	};
	if (cfg.hash_mask == 0)
		cfg.hash_mask = 2;
	s = auth_session_new(&cfg);
	if (!s)
		abort();

	while (i < size) {
		uint8_t op = data[i++] % 5;
		size_t n;

		switch (op) {
		case 0:
			if (i + 2 > size)
				goto done;
			n = (size_t)data[i] | (size_t)data[i + 1] << 8;
			i += 2;
			if (n > size - i)
				n = size - i;
			auth_session_send(s, data + i, n);
			i += n;
			break;
		case 1: {
			struct auth_msg m;
			ssize_t r;
			if (i >= size)
				goto done;
			r = auth_session_receive(s, out, (size_t)data[i++] * 8);
			if (r > 0 && auth_msg_decode(out, (size_t)r, &m) == 0 &&
			    m.type == AUTH_TYPE_DHCHAP && m.id == AUTH_ID_CHALLENGE) {
				memcpy(chal, out, (size_t)r);
				auth_msg_decode(chal, (size_t)r, &last);
				have_chal = true;
			}
			break;
		}
		case 2: {
			if (i + 3 > size)
				goto done;
			struct auth_msg m = { .type = AUTH_TYPE_COMMON, .id = AUTH_ID_NEGOTIATE,
					      .tid = data[i],
					      .neg = { .has_dhchap = 1, .nhash = 1, .hash = { data[i + 1] },
						       .ndh = 1, .dh = { (uint8_t)(data[i + 2] % 2) } } };
			i += 3;
			auth_session_send(s, msg, auth_msg_encode(&m, msg, sizeof(msg)));
			break;
		}
		case 3: {
			uint8_t r1[NVME_HASH_MAX_LEN], c2[NVME_HASH_MAX_LEN];
			if (i >= size || !have_chal || last.chal.dhvlen ||
			    !nvme_hash_len(last.chal.hashid) || last.chal.hl != nvme_hash_len(last.chal.hashid))
				goto done;
			memset(c2, data[i], sizeof(c2));
			struct auth_msg m = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_REPLY, .tid = last.tid,
					      .reply = { .hl = last.chal.hl, .cvalid = data[i] & 1,
							 .seqnum = data[i], .rval = r1, .cval = c2 } };
			i++;
			if (dhchap_response(DHCHAP_HOST, last.chal.hashid, &hkey, last.chal.cval,
					    last.chal.seqnum, last.tid, hostnqn, subnqn, NULL, 0, r1) < 0)
				abort();
			auth_session_send(s, msg, auth_msg_encode(&m, msg, sizeof(msg)));
			break;
		}
		case 4: {
			if (i + 2 > size)
				goto done;
			struct auth_msg m = { .type = AUTH_TYPE_DHCHAP, .id = AUTH_ID_SUCCESS2, .tid = data[i + 1] };
			if (data[i] & 1) {
				m.type = AUTH_TYPE_COMMON;
				m.id = AUTH_ID_FAILURE2;
				m.failure.rescode = 1;
				m.failure.rescode_exp = data[i] >> 1;
			}
			i += 2;
			auth_session_send(s, msg, auth_msg_encode(&m, msg, sizeof(msg)));
			break;
		}
		}
		if (auth_session_authenticated(s) && auth_session_result(s) == AUTH_FAILED)
			abort();
	}
done:
	auth_session_free(s);
	return 0;
}
