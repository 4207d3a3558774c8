/*
 * The PSK a TLS listener uses for an identity a host offers (NVMe/TCP 1.0,
 * 3.6.1.3 - 3.6.1.4): the configured PSK of the [host NQN] section of the
 * subsystem the identity names, turned into the TLS PSK of that identity by
 * common/nvme_psk.c. The transport reaches it through tcp_tls_find_psk, so
 * that the TLS channel does not depend on the subsystem registry.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "nvme_psk.h"
#include "ctrl.h"
#include "log.h"
#include "subsys.h"
#include "transport.h"

/* For a discovery identity: the psk of the first subsystem that gives the
 * host one (nvme discover --tls offers the host's PSK for the discovery NQN). */
struct any_psk {
	const char *hostnqn;
	struct nvme_secret psk;
};

static void first_psk(void *arg, const struct subsys *s)
{
	struct any_psk *a = arg;
	const struct host_auth_config *h = subsys_host_auth(s, a->hostnqn);

	if (!a->psk.len && h && h->psk.len)
		a->psk = h->psk;
}

/*
 * The TLS PSK for an identity, or nothing (an unknown identity: the
 * handshake then fails, as there is no certificate to fall back on).
 * Version 1 identities differ between the two HKDF encodings, so both are
 * tried; version 0 ones cannot tell them apart and use libnvme's, the one
 * `nvme check-tls-key --insert` of nvme-cli 2.7 to 2.15 puts in a host's
 * keyring (doc/security.md).
 */
int subsys_tls_psk_find(const char *id, struct nvme_tls_psk *out)
{
	char hostnqn[CFG_NQN_MAX], subnqn[CFG_NQN_MAX], err[128];
	static const enum nvme_psk_kdf kdfs[] = { NVME_PSK_KDF_LIBNVME, NVME_PSK_KDF_RFC8446 };
	struct any_psk a = { .hostnqn = hostnqn };
	const struct host_auth_config *h;
	struct subsys *s;
	int version, r = -1;

	if (nvme_psk_identity_parse(id, &version, hostnqn, subnqn, sizeof(hostnqn)) != 0)
		return -1;
	s = subsys_find(subnqn);
	if (!s)
		return -1;
	if (s->discovery) {
		subsys_for_each_allowed(hostnqn, first_psk, &a);
	} else {
		h = subsys_host_auth(s, hostnqn);
		if (h)
			a.psk = h->psk;
	}
	subsys_put(s);
	for (size_t i = 0; a.psk.len && r && i < (version ? 2u : 1u); i++)
		if (nvme_tls_psk_derive(&a.psk, hostnqn, subnqn, version, kdfs[i], out, err,
					sizeof(err)) == 0 &&
		    strcmp(out->identity, id) == 0)
			r = 0;
	OPENSSL_cleanse(&a.psk, sizeof(a.psk));
	if (r)
		OPENSSL_cleanse(out, sizeof(*out));
	return r;
}

/*
 * require_tls: the subsystem is offered on TLS listeners only, as a Linux
 * nvmet subsystem linked only to ports whose addr_treq is "required". A
 * plain queue's Connect to it is answered the way nvmet answers a Connect
 * for a subsystem not linked to the port it came in on (fabrics.c). The
 * discovery subsystem is reachable either way (its log then lists only the
 * TLS ports for this subsystem: discovery.c).
 */
bool nvme_sq_tls_refused(const struct nvme_sq *sq, const struct subsys *s, const char *hostnqn)
{
	if (sq->tls || s->discovery || !subsys_requires_tls(s))
		return false;
	log_warn("tls: Connect as %s to %s refused: the subsystem requires TLS and the queue "
		 "is plain TCP", hostnqn, s->nqn);
	return true;
}

int nvme_sq_set_tls_identity(struct nvme_sq *sq, const char *identity)
{
	int version;

	if (!identity || nvme_psk_identity_parse(identity, &version, sq->tls_hostnqn,
						 sq->tls_subnqn, sizeof(sq->tls_hostnqn)) != 0)
		return -1;
	sq->tls = true;
	return 0;
}
