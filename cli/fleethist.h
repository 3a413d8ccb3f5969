/* fleethist.h - `chime history --fleet`: the fleet's history, read from
 * its PostgreSQL database. */
#ifndef CHIME_CLI_FLEETHIST_H
#define CHIME_CLI_FLEETHIST_H

#include <stdbool.h>
#include <stdio.h>

/* Prints the latest `limit` runs (of `job`, or all when NULL), newest
 * first, as a table or a JSON array.  The connection (blocking: this is a
 * command, not the daemon) is `fleet`, as [chime] fleet takes it.  0, or
 * 1 after saying why on stderr. */
int fleet_history_print(const char *fleet, const char *job, int limit, bool json, FILE *out);

#endif
