/*
 * A test's daemon on n loopback listeners (target_daemon.h).
 */
#include "target_daemon.h"

#include <stdio.h>
#include <string.h>

int target_daemon_dir(struct target_proc *t, char *dir, char *const ports[], int n,
		      char *why, size_t whylen)
{
	if (n < 1 || n > TARGET_MAX_LISTENERS) {
		snprintf(why, whylen, "%d listeners asked (1 to %d)", n, TARGET_MAX_LISTENERS);
		return -1;
	}
	if (target_dir(t, dir, ports[0], TARGET_PORT_LEN, why, whylen) != 0)
		return -1;
	/* Each port is one nothing listens on; the kernel may hand out the
	 * same one twice, which two listeners of one daemon cannot share. */
	for (int i = 1; i < n; i++) {
		bool taken;

		do {
			if (target_free_port(ports[i], TARGET_PORT_LEN) != 0) {
				snprintf(why, whylen, "no free port for listener %d", i + 1);
				return -1;
			}
			taken = false;
			for (int j = 0; j < i; j++)
				taken |= strcmp(ports[i], ports[j]) == 0;
		} while (taken);
	}
	return 0;
}

int target_daemon_config(const struct target_proc *t, const char *dir, char *const ports[],
			 int n, const char *target_keys, const char *conf_name,
			 const char *conf_text, char *why, size_t whylen)
{
	char listen[TARGET_MAX_LISTENERS * (TARGET_PORT_LEN + 16)] = "";
	char path[PATH_MAX], text[2048];
	size_t used = 0;
	int len;

	for (int i = 0; i < n && i < TARGET_MAX_LISTENERS; i++)
		used += (size_t)snprintf(listen + used, sizeof(listen) - used, "%s127.0.0.1:%s",
					 i ? ", " : "", ports[i]);
	len = snprintf(text, sizeof(text), "[target]\nlisten = %s\ndata_dir = data\n"
		       "control_socket = control.sock\ninclude = conf/*.ini\n%s", listen,
		       target_keys);
	if (len < 0 || (size_t)len >= sizeof(text)) {
		snprintf(why, whylen, "%s: the [target] keys are too long", t->ini);
		return -1;
	}
	if (target_write_file(NULL, t->ini, text, why, whylen) != 0)
		return -1;
	snprintf(path, sizeof(path), "conf/%s", conf_name);
	return target_write_file(dir, path, conf_text, why, whylen);
}

int target_daemon_up(struct target_proc *t, char *dir, char *const ports[], int n,
		     const char *target_keys, const char *conf_name, const char *conf_text,
		     char *why, size_t whylen)
{
	if (target_daemon_dir(t, dir, ports, n, why, whylen) != 0 ||
	    target_daemon_config(t, dir, ports, n, target_keys, conf_name, conf_text, why,
				 whylen) != 0)
		return -1;
	if (target_start(t, true, why, whylen) != 0) {
		target_show_log(t, 15);
		return -1;
	}
	return 0;
}
