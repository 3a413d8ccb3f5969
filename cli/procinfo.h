/* procinfo.h - telling a process from another that reuses its pid: its
 * start time since boot, and the boot's id (Linux's /proc). */
#ifndef CHIME_CLI_PROCINFO_H
#define CHIME_CLI_PROCINFO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid, in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 if there is no such process (or no /proc). */
int64_t proc_start_time(pid_t pid);

/* Now, in clock ticks since boot, as a start time counts them: a process
 * started after this call has this start time, or a little more
 * (proc_started_near), and nobody reads /proc while the child execs.
 * Taken before a spawn and again after it: when the two are a tick apart
 * at most, the first is the child's start time. */
int64_t boot_ticks_now(void);

/* Whether a start time read from /proc (`actual`) is that of a process
 * whose start was taken by boot_ticks_now just before it (`taken`):
 * within two ticks after it (a pid is not reused so soon). */
bool proc_started_near(int64_t actual, int64_t taken);

/* This boot's id (/proc/sys/kernel/random/boot_id), or "" where unknown.
 * A static string. */
const char *boot_id(void);

#endif
