/*
 * The checks of require_tls ([subsystem], configuration.md): a subsystem
 * that only TLS 1.3 may reach, as a Linux nvmet subsystem linked only to
 * ports with addr_treq "required", or an SPDK subsystem whose listeners
 * were all added with --secure-channel. TLS here is PSK only, so every host
 * of such a subsystem needs a psk, and the target a tls_listen listener:
 * without them the subsystem would be configured but unreachable, which is
 * refused at load time rather than found out by a host's failed connect.
 */
#include <stdbool.h>

#include "config.h"
#include "config_priv.h"

int cfg_subsys_tls_check(const struct subsys_config *sc, const char *file, char *err,
			 size_t errlen)
{
	if (!sc->require_tls)
		return 0;
	if (sc->allow_any_host || !sc->nr_hosts) {
		cfg_error_at(err, errlen, file, "subsystem", "require_tls", "yes, but any host "
			     "may connect, and TLS needs each host's PSK (expected [host NQN] "
			     "sections with psk or psk_file, and no allow_any_host = yes)");
		return -1;
	}
	for (int i = 0; i < sc->nr_hosts; i++) {
		char sec[CFG_NQN_MAX + 8];

		if (sc->host_auth[i].psk.len)
			continue;
		if (!sc->host_auth[i].section) {
			cfg_error_at(err, errlen, file, "subsystem", "allowed_hosts", "host %s has "
				     "no [host %s] section with a psk, and require_tls = yes: it "
				     "could never connect (expected psk or psk_file for it)",
				     sc->hosts[i], sc->hosts[i]);
			return -1;
		}
		snprintf(sec, sizeof(sec), "host %s", sc->hosts[i]);
		cfg_error_at(err, errlen, file, sec, "psk", "missing, and [subsystem] "
			     "require_tls = yes: this host could never connect (expected psk or "
			     "psk_file)");
		return -1;
	}
	return 0;
}

int cfg_tls_listeners_check(const struct target_config *cfg, char *err, size_t errlen)
{
	if (cfg->nr_tls_listeners)
		return 0;
	for (int i = 0; i < cfg->nr_subsys; i++)
		if (cfg->subsys[i].require_tls) {
			cfg_error_at(err, errlen, cfg->subsys[i].file, "subsystem", "require_tls",
				     "yes, but %s has no tls_listen listener in [target], so no "
				     "host could reach the subsystem (expected tls_listen = "
				     "ADDR:PORT there, or require_tls = no)", cfg->file);
			return -1;
		}
	return 0;
}
