/* procinfo.h - telling a process from another that reuses its pid: its
 * start time since boot, and the boot's id (Linux's /proc). */
#ifndef CHIME_CLI_PROCINFO_H
#define CHIME_CLI_PROCINFO_H

#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid, in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 if there is no such process (or no /proc). */
int64_t proc_start_time(pid_t pid);

/* This boot's id (/proc/sys/kernel/random/boot_id), or "" where unknown.
 * A static string. */
const char *boot_id(void);

#endif
