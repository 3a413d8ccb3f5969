/* prune.h - chime history prune: a history cut down to its jobs' bounds. */
#ifndef CHIME_CLI_PRUNE_H
#define CHIME_CLI_PRUNE_H

#include "config.h"

/* The rows a prune step deletes at most: one transaction each. */
#define PRUNE_STEP 1000

/* Prunes the database at path: the rows of `job` (NULL: every job of cfg,
 * or with no cfg every job on record) beyond `given` (NULL: each job's
 * bounds in cfg), PRUNE_STEP rows a transaction, so that a daemon writing
 * the same database waits for a step at most.  Says what it did on
 * stdout, errors on stderr.  Returns the exit status: 0, or 1. */
int prune_history(const char *path, const char *job, const struct config *cfg, const struct history_bounds *given);

#endif
