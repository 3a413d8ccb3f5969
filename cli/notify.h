/* notify.h - telling systemd how the daemon is (sd_notify's datagram
 * protocol, written here: no libsystemd).  READY=1 once the config is
 * loaded and the history open, STATUS= with jobs and runs in progress,
 * WATCHDOG=1 as often as WATCHDOG_USEC asks, STOPPING=1 at shutdown. */
#ifndef CHIME_CLI_NOTIFY_H
#define CHIME_CLI_NOTIFY_H

#include <chime.h>
#include <stdbool.h>

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (and removes them
 * from the environment, so that no job inherits them: a job's own
 * systemd-notify would speak for chime).  Call before any thread starts.
 * Returns whether there is a socket to notify. */
bool notify_init(void);
/* Sends one message (a NUL-free text of NAME=VALUE lines), without ever
 * blocking: a datagram that cannot go now is dropped.  0, or a negative
 * errno (-ENOTCONN: no socket). */
int notify_send(const char *message);
/* How often the watchdog wants WATCHDOG=1 (half its WATCHDOG_USEC, as
 * sd_watchdog_enabled advises), or 0 when it does not: unset, or meant for
 * another process (WATCHDOG_PID). */
chime_ns notify_watchdog(void);

#endif
