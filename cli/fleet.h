/* fleet.h - several chime daemons, one schedule: the jobs of a config
 * shared by every node through PostgreSQL, each tick run once.
 *
 * Leaderless: every node computes the ticks itself, and before a tick's
 * run (in the job's veto) claims (job, tick) in one short transaction
 * that also advances the job's watermark, on the database's clock.  A
 * claimed run holds a lease on the database's clock, renewed by a
 * heartbeat; a node that cannot renew within its trust window stops the
 * run's process group before the lease can end (a guard process does it
 * too if chime itself is killed or frozen); a result written after the
 * lease was lost is refused (fenced).  Any node reaps expired leases.
 * The rules are stated in cli/README.md, "Several machines".
 *
 * The runner calls in at a few places only: fleet_new/fleet_free around
 * the loop, fleet_start/fleet_stop in its main task, fleet_job_opts when
 * a job starts, fleet_veto from the job's veto, fleet_child_started when
 * a run's child has started; the rest comes as an observer of the jobs'
 * events.
 */
#ifndef CHIME_CLI_FLEET_H
#define CHIME_CLI_FLEET_H

#include <chime.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct fleet;
struct runner;
struct job;
struct run;

/* What a fleet node counts, for metrics and status (read it on the loop's
 * thread). */
struct fleet_metrics {
  uint64_t claims_won;      /* ticks this node claimed and ran */
  uint64_t claims_lost;     /* ticks another node had claimed first */
  uint64_t claims_refused;  /* ticks not claimed: the clock's skew, another definition, the database's bound */
  uint64_t claims_failed;   /* claims with no answer: the database unreachable, frozen or too slow */
  uint64_t leases_lost;     /* runs stopped because their lease could not be renewed, or was revoked */
  uint64_t results_fenced;  /* results refused because the run's lease had been lost */
  uint64_t reaped;          /* expired leases of other nodes (or this one) reaped by this node */
  uint64_t taken;           /* pending attempts (reruns, queued ticks) this node took */
  uint64_t degraded;        /* runs of on_db_down = run_local while the database was unreachable */
  uint64_t records_waiting; /* records not yet in the database (memory and outbox) */
  bool db_up;               /* connected, registered and answering */
  bool skewed;              /* the clock is beyond fleet_max_skew: no claims */
  chime_ns clock_offset;    /* the database's clock minus this node's wall clock (ns) */
  uint64_t connects;        /* connections made */
};

/* Before the loop (no thread yet): the fleet of cfg's [chime] fleet, or
 * NULL in *out when there is none.  Checks the jobs (job_fleet_check),
 * forks the guard.  0, or 1 (said on stderr): the daemon exits 1. */
int fleet_new(const struct config *cfg, struct fleet **out);
void fleet_free(struct fleet *f);

/* The main task, before the jobs start: starts the fleet's tasks and waits
 * a while (up to fleet_lease / 4) for the database, so that the jobs
 * start on its clock; a node name another live daemon holds is refused.
 * 0, or 1 (said in the log): the daemon exits 1. */
int fleet_start(struct fleet *f, struct runner *r);
/* The main task, when every job has ended: writes what waits (to the
 * database, else to the outbox) until `deadline`, and leaves. */
void fleet_stop(struct fleet *f, chime_ns deadline);

/* Whether the fleet claims this job's ticks (f set, scope fleet, not
 * @reboot).  A NULL fleet owns none. */
bool fleet_owns(const struct fleet *f, const struct job_conf *c);
/* A job is starting (at start or on a reload): its options as the fleet
 * needs them (ticks on the wall clock's grid, the fleet's jitter and
 * overlap), and its definition sent to the database.  For a job the fleet
 * owns only. */
void fleet_job_opts(struct fleet *f, struct job *j, chime_every_opts *o);
/* The job's veto, for a job the fleet owns: holds the tick until its time
 * on the database's clock, then claims it.  0: run it; else a VETO_ code. */
int fleet_veto(struct fleet *f, struct job *j, const chime_event *tick);
/* chime pause or resume of a job the fleet owns (the control socket's
 * task): asked of the fleet's database, for every node, and waited for
 * (at most fleet_lease / 4).  0 (since, by: the pause now, 0 once
 * resumed); -EALREADY: it was so already (since, by: the pause, if any);
 * -ENOTCONN, -ETIMEDOUT: the database did not answer (nothing changed
 * that this node knows of); -ENOMEM. */
int fleet_pause(struct fleet *f, struct job *j, bool pause, chime_ns *since, char *by, size_t size);
/* Why chime trigger of a job the fleet owns cannot be run once across the
 * fleet now (its database unreachable, and the job not on_db_down =
 * run_local), or NULL. */
const char *fleet_trigger_refused(const struct fleet *f, const struct job *j);
/* run.c, once a run's child has started (or failed to). */
void fleet_child_started(struct fleet *f, struct run *run);

/* The node's counts now (records_waiting: those in memory and in the
 * outbox). */
struct fleet_metrics fleet_metrics(const struct fleet *f);

#endif
