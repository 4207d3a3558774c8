/*
 * systemd's service notification protocol (sd_notify(3)), spoken directly:
 * one datagram of newline-separated KEY=VALUE assignments to the AF_UNIX
 * socket that $NOTIFY_SOCKET names (a path, or "@name" for the abstract
 * namespace). The daemon uses READY=1 once it accepts connections,
 * RELOADING=1 / READY=1 around a reload and STOPPING=1 when it stops
 * (Type=notify in the unit, doc/install.md). Without $NOTIFY_SOCKET, as
 * outside systemd, nothing is sent.
 */
#ifndef ZNSTGT_SD_NOTIFY_H
#define ZNSTGT_SD_NOTIFY_H

/* Send state. 0 when sent or when there is nowhere to send it; -1 with
 * errno when $NOTIFY_SOCKET is unusable or the datagram was not sent. */
int sd_notify_send(const char *state);

/* sd_notify_send() of a formatted state; failures are logged, not returned
 * (a supervisor that cannot be told must not stop the target). */
void sd_notify_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
