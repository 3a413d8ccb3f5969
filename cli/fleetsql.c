/* fleetsql.c - the fleet's schema (fleetsql.h).
 *
 * Tables, in schema chime:
 *  - meta: the schema's version;
 *  - nodes: one row per node name: the daemon holding it (instance, a
 *    random number each start), its host and pid, when the database last
 *    heard of it (seen, on the database's clock);
 *  - jobs: one row per shared job: the fleet's definition (its hash, who
 *    set it and when), the policies the database enforces (overlap,
 *    max_concurrent, on_node_loss), the watermark: the latest tick
 *    decided (run, queued or skipped), in ns since the epoch;
 *  - pauses: the jobs the operator paused (when, from which node), for
 *    the whole fleet: a table of its own, so that a pause never holds the
 *    lock of a job's row that claims take;
 *  - runs: the history: claimed runs (kind 'run', one row per attempt of a
 *    tick, unique by (job, tick, attempt)), runs of no claim (kind
 *    'local': a job with scope = host, or one run while the database was
 *    unreachable, `degraded`; unique by (job, tick, node)), and ticks
 *    skipped (kind 'skip': unique by (job, tick, node, reason)).  A
 *    partial unique index holds one 'running' exclusive run per job: the
 *    database itself refuses a second.
 *
 * Every decision is a function of the database, called in one statement:
 * its checks and its writes are one transaction, on the database's clock
 * (clock_timestamp(), now()).
 */
#include "fleetsql.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *const fleet_stmt_name[ST_COUNT] = {"register", "define", "claim", "beat", "reap", "take",
                                                "started", "finish", "local", "skip", "release", "leave",
                                                "pause", "jobs"};

static const char *const stmt_sql[ST_COUNT] = {
    "SELECT * FROM chime.register($1, $2, $3, $4, $5, $6)",
    "SELECT * FROM chime.define($1, $2, $3, $4, $5, $6)",
    "SELECT * FROM chime.claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    "SELECT * FROM chime.beat($1, $2, $3, $4)",
    "SELECT * FROM chime.reap($1)",
    "SELECT * FROM chime.take($1, $2, $3, $4, $5)",
    "SELECT chime.started($1, $2, $3, $4, $5, $6, $7)",
    "SELECT chime.finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    "SELECT chime.record_local($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    "SELECT chime.record_skip($1, $2, $3, $4, $5, $6, $7, $8)",
    "SELECT chime.release($1, $2, $3, $4)",
    "SELECT chime.leave($1, $2)",
    "SELECT * FROM chime.pause($1, $2, $3)",
    /* each job's pause, and its latest run ended on any node */
    "SELECT j.job, p.paused_at, r.outcome, r.started, r.ended, r.exit_code FROM chime.jobs j"
    "  LEFT JOIN chime.pauses p ON p.job = j.job LEFT JOIN LATERAL"
    "  (SELECT outcome, started, ended, exit_code FROM chime.runs x WHERE x.job = j.job AND x.kind IN ('run', 'local')"
    "   AND x.ended IS NOT NULL AND x.outcome NOT IN ('running', 'pending', 'replacing', 'abandoned')"
    "   ORDER BY x.id DESC LIMIT 1) r ON true WHERE j.job = ANY ($1::text[])",
};
const int fleet_stmt_params[ST_COUNT] = {6, 6, 10, 4, 1, 5, 7, 14, 16, 8, 4, 2, 3, 1};

/* Opens the migration: the lock, the schema and its version row. */
static const char opening[] =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(4242000017);"
    "CREATE SCHEMA IF NOT EXISTS chime;"
    "CREATE TABLE IF NOT EXISTS chime.meta (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL);"
    "INSERT INTO chime.meta VALUES (1, 0) ON CONFLICT DO NOTHING;"
    "SELECT version FROM chime.meta;";

/* migrations[v] takes the schema from version v to v + 1: its pieces in
 * order, in the migration's transaction (each piece one or more whole
 * statements). */
static const char *const migration_1[] = {
    "CREATE TABLE chime.nodes ("
    "  name text PRIMARY KEY, instance bigint NOT NULL, host text NOT NULL, pid int NOT NULL,"
    "  started timestamptz NOT NULL, seen timestamptz NOT NULL);",
    "CREATE TABLE chime.jobs ("
    "  job text PRIMARY KEY, def_hash text NOT NULL, def_node text NOT NULL, def_at timestamptz NOT NULL,"
    "  overlap text NOT NULL, max_concurrent int NOT NULL, on_node_loss text NOT NULL, watermark bigint NOT NULL,"
    "  caught_up bigint NOT NULL DEFAULT 0);",
    "CREATE TABLE chime.pauses (job text PRIMARY KEY, paused_at bigint NOT NULL, paused_by text NOT NULL);",
    "CREATE TABLE chime.runs ("
    "  id bigserial PRIMARY KEY, job text NOT NULL, tick bigint NOT NULL, attempt int NOT NULL, kind text NOT NULL,"
    "  node text, instance bigint, outcome text NOT NULL, exclusive bool NOT NULL DEFAULT true,"
    "  degraded bool NOT NULL DEFAULT false, triggered bool NOT NULL DEFAULT false,"
    "  catch_up bool NOT NULL DEFAULT false, claimed timestamptz, lease_until timestamptz,"
    "  started bigint, ended bigint, late bigint, pid int, chime_pid int, exit_code int, signal int, error text,"
    "  stdout_tail bytea, stderr_tail bytea, reason text, skipped bigint, last_tick bigint);",
    "CREATE UNIQUE INDEX runs_attempt ON chime.runs (job, tick, attempt) WHERE kind = 'run';",
    "CREATE UNIQUE INDEX runs_local ON chime.runs (job, tick, node) WHERE kind = 'local';",
    "CREATE UNIQUE INDEX runs_skip ON chime.runs (job, tick, node, reason) WHERE kind = 'skip';",
    "CREATE UNIQUE INDEX runs_exclusive ON chime.runs (job) WHERE outcome = 'running' AND exclusive;",
    "CREATE INDEX runs_leases ON chime.runs (lease_until) WHERE outcome IN ('running', 'replacing');",
    "CREATE INDEX runs_pending ON chime.runs (job) WHERE outcome = 'pending';",
    "CREATE INDEX runs_going ON chime.runs (job) WHERE outcome = 'running';",
    "CREATE INDEX runs_job ON chime.runs (job, id);",
    /* each job's latest run ended, for the heartbeat: past no skipped tick */
    "CREATE INDEX runs_ended ON chime.runs (job, id) WHERE kind IN ('run', 'local') AND ended IS NOT NULL"
    "  AND outcome NOT IN ('running', 'pending', 'replacing', 'abandoned');",
    "CREATE FUNCTION chime.now_ns() RETURNS bigint LANGUAGE sql VOLATILE AS"
    "  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint $$;",
    "CREATE FUNCTION chime.ns(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS"
    "  $$ SELECT (extract(epoch FROM t) * 1000000000)::bigint $$;"
    /* a node's name: refused while another daemon holds it and was heard
     * of within p_live_ms (unless p_force: that daemon is known dead) */,
    "CREATE FUNCTION chime.register(p_node text, p_instance bigint, p_host text, p_pid int, p_force bool,"
    "  p_live_ms bigint, OUT status text, OUT holder_host text, OUT holder_pid int, OUT db_now bigint)"
    " LANGUAGE plpgsql AS $$ DECLARE n chime.nodes; BEGIN"
    "  db_now := chime.now_ns();"
    "  SELECT * INTO n FROM chime.nodes WHERE name = p_node FOR UPDATE;"
    "  IF FOUND AND n.instance <> p_instance AND NOT p_force"
    "     AND n.seen > now() - p_live_ms * interval '1 millisecond' THEN"
    "    status := 'taken'; holder_host := n.host; holder_pid := n.pid; RETURN;"
    "  END IF;"
    "  IF FOUND AND n.instance = p_instance THEN"
    "    UPDATE chime.nodes SET seen = now() WHERE name = p_node;"
    "  ELSE"
    "    INSERT INTO chime.nodes VALUES (p_node, p_instance, p_host, p_pid, now(), now())"
    "      ON CONFLICT (name) DO UPDATE SET instance = p_instance, host = p_host, pid = p_pid, started = now(),"
    "      seen = now();"
    "  END IF;"
    "  status := 'ok'; END $$;"
    /* a job's definition, as a node starts it: the latest started wins; an
     * unchanged one takes no lock on the job's row (the claims of that
     * instant would hear "busy", and no node would decide the tick) */,
    "CREATE FUNCTION chime.define(p_job text, p_hash text, p_node text, p_overlap text, p_max int, p_loss text,"
    "  OUT watermark bigint, OUT db_now bigint)"
    " LANGUAGE plpgsql AS $$ BEGIN"
    "  db_now := chime.now_ns();"
    "  INSERT INTO chime.jobs VALUES (p_job, p_hash, p_node, now(), p_overlap, p_max, p_loss, db_now, 0)"
    "    ON CONFLICT (job) DO NOTHING;"
    "  IF NOT FOUND THEN"
    "    UPDATE chime.jobs AS j SET def_hash = p_hash,"
    "      def_node = CASE WHEN j.def_hash = p_hash THEN j.def_node ELSE p_node END,"
    "      def_at = CASE WHEN j.def_hash = p_hash THEN j.def_at ELSE now() END,"
    "      overlap = p_overlap, max_concurrent = p_max, on_node_loss = p_loss"
    "      WHERE j.job = p_job AND (j.def_hash, j.overlap, j.max_concurrent, j.on_node_loss)"
    "        IS DISTINCT FROM (p_hash, p_overlap, p_max, p_loss);"
    "  END IF;"
    "  SELECT j.watermark INTO watermark FROM chime.jobs j WHERE j.job = p_job;"
    "  END $$;"
    /* the claim of (job, tick): one transaction that checks the definition,
     * the watermark and the database's clock, skips the tick of a paused
     * job, applies the overlap policy, and advances the watermark; a
     * manual run (chime trigger: its tick the instant it was asked for)
     * has its definition checked and the overlap policy applied, and
     * leaves the watermark as it is */,
    "CREATE FUNCTION chime.claim(p_job text, p_tick bigint, p_fire bigint, p_hash text, p_node text,"
    "  p_instance bigint, p_bound bigint, p_lease_ms bigint, p_catch_up bool, p_manual bool,"
    "  OUT status text, OUT run_id bigint, OUT old_watermark bigint, OUT db_now bigint, OUT def_node text)"
    " LANGUAGE plpgsql AS $$ DECLARE j chime.jobs; going int; locked bool := false; BEGIN"
    "  db_now := chime.now_ns();"
    /* every check twice: on the row as last committed, without a lock,
     * then on the row locked.  A claim refused (another definition, a
     * tick already decided, early or late) never takes the lock: it would
     * make the node deciding the tick give it up as "busy".  A manual run
     * takes none at all: it must not make the nodes deciding a tick of
     * the job at that instant give up on it; the partial unique index
     * keeps it to one exclusive run.  Locked: another node is deciding
     * this job's tick now (every node asks for every tick at once): it is
     * theirs, at once, without a wait */
    "  SELECT * INTO j FROM chime.jobs WHERE job = p_job;"
    "  IF NOT FOUND THEN status := 'unknown'; RETURN; END IF;"
    "  LOOP"
    "    old_watermark := j.watermark; def_node := j.def_node;"
    "    IF j.def_hash <> p_hash THEN status := 'definition'; RETURN; END IF;"
    "    IF p_manual THEN NULL;"
    "    ELSIF p_tick <= j.watermark THEN status := 'taken'; RETURN;"
    "    ELSIF p_catch_up THEN"
    "      IF p_fire > db_now - p_bound THEN status := 'early'; RETURN; END IF;"
    /* one catch-up per outage: none while the watermark is a catch-up's */
    "      IF j.watermark = j.caught_up THEN status := 'taken'; RETURN; END IF;"
    "    ELSIF p_fire > db_now + p_bound THEN status := 'early'; RETURN;"
    "    ELSIF p_fire < db_now - p_bound THEN status := 'late'; RETURN;"
    "    END IF;"
    "    EXIT WHEN p_manual OR locked;"
    "    SELECT * INTO j FROM chime.jobs WHERE job = p_job FOR UPDATE SKIP LOCKED;"
    "    IF NOT FOUND THEN status := 'busy'; RETURN; END IF;"
    "    locked := true;"
    "  END LOOP;"
    "  IF p_catch_up AND NOT p_manual THEN UPDATE chime.jobs SET caught_up = p_tick WHERE job = p_job; END IF;"
    "  IF NOT p_manual THEN UPDATE chime.jobs SET watermark = p_tick WHERE job = p_job; END IF;"
    "  IF NOT p_manual AND EXISTS (SELECT 1 FROM chime.pauses WHERE job = p_job) THEN"
    "    INSERT INTO chime.runs (job, tick, attempt, kind, node, outcome, reason, skipped, last_tick, started,"
    "      ended, triggered) VALUES (p_job, p_tick, 0, 'skip', p_node, 'skipped', 'paused', 1, p_tick, db_now,"
    "      db_now, p_catch_up) ON CONFLICT DO NOTHING;"
    "    status := 'paused'; RETURN;"
    "  END IF;"
    "  SELECT count(*) INTO going FROM chime.runs WHERE job = p_job AND outcome = 'running' AND kind = 'run';"
    "  IF going > 0 THEN"
    "    IF j.overlap = 'replace' THEN"
    "      UPDATE chime.runs SET outcome = 'replacing' WHERE job = p_job AND outcome = 'running' AND kind = 'run';"
    "      PERFORM pg_notify('chime_revoke', p_job);"
    "    ELSIF j.overlap = 'queue' AND NOT EXISTS"
    "        (SELECT 1 FROM chime.runs WHERE job = p_job AND outcome = 'pending') THEN"
    "      INSERT INTO chime.runs (job, tick, attempt, kind, outcome, catch_up, triggered, reason)"
    "        VALUES (p_job, p_tick, 1, 'run', 'pending', p_catch_up, p_catch_up OR p_manual,"
    "        CASE WHEN p_manual THEN 'manual' ELSE 'queued' END);"
    "      status := 'queued'; RETURN;"
    "    ELSIF j.overlap <> 'allow' OR going >= j.max_concurrent THEN"
    "      INSERT INTO chime.runs (job, tick, attempt, kind, node, outcome, reason, skipped, last_tick, started,"
    "        ended, triggered) VALUES (p_job, p_tick, 0, 'skip', p_node, 'skipped', 'overlap', 1, p_tick, db_now,"
    "        db_now, p_catch_up OR p_manual) ON CONFLICT DO NOTHING;"
    "      status := 'overlap'; RETURN;"
    "    END IF;"
    "  END IF;"
    "  INSERT INTO chime.runs (job, tick, attempt, kind, node, instance, outcome, exclusive, catch_up, triggered,"
    "    reason, claimed, lease_until) VALUES (p_job, p_tick, 1, 'run', p_node, p_instance, 'running',"
    "    j.overlap <> 'allow', p_catch_up, p_catch_up OR p_manual, CASE WHEN p_manual THEN 'manual' END, now(),"
    "    now() + p_lease_ms * interval '1 millisecond')"
    "    ON CONFLICT DO NOTHING RETURNING id INTO run_id;"
    /* refused by the index: an exclusive run began meanwhile (a manual
     * run's claim holds no lock) */
    "  IF run_id IS NULL THEN status := 'overlap'; RETURN; END IF;"
    "  status := 'won'; END $$;"
    /* a node's heartbeat: it is alive, and renews the leases of the runs it
     * holds; each held run's state comes back (running: renewed) */,
    "CREATE FUNCTION chime.beat(p_node text, p_instance bigint, p_ids bigint[], p_lease_ms bigint)"
    " RETURNS TABLE (o_id bigint, o_state text, o_now bigint)"
    " LANGUAGE plpgsql AS $$ DECLARE t bigint := chime.now_ns(); BEGIN"
    "  UPDATE chime.nodes SET seen = now() WHERE name = p_node AND instance = p_instance;"
    "  IF NOT FOUND THEN o_id := 0; o_state := 'gone'; o_now := t; RETURN NEXT; RETURN; END IF;"
    "  o_id := 0; o_state := 'node'; o_now := t; RETURN NEXT;"
    /* a lease that ended is not renewed: the run is lost (the node,
     * unable to renew it for half of it, stopped it), and reaped */
    "  UPDATE chime.runs r SET lease_until = now() + p_lease_ms * interval '1 millisecond'"
    "    WHERE r.id = ANY (p_ids) AND r.node = p_node AND r.instance = p_instance AND r.outcome = 'running'"
    "    AND r.lease_until >= now();"
    "  RETURN QUERY SELECT u.i, CASE WHEN r.outcome = 'running' AND r.lease_until < now() THEN 'expired'"
    "    ELSE coalesce(r.outcome, 'gone') END, t FROM unnest(p_ids) AS u(i)"
    "    LEFT JOIN chime.runs r ON r.id = u.i AND r.node = p_node AND r.instance = p_instance;"
    "  END $$;"
    /* leases that ended on the database's clock: the run is lost; with
     * on_node_loss = rerun its next attempt waits for a node to take it */,
    "CREATE FUNCTION chime.reap(p_node text)"
    " RETURNS TABLE (o_id bigint, o_job text, o_tick bigint, o_attempt int, o_node text, o_rerun bool)"
    " LANGUAGE plpgsql AS $$ DECLARE r record; j chime.jobs; BEGIN"
    "  FOR r IN SELECT x.id, x.job, x.tick, x.attempt, x.node, x.lease_until, x.catch_up, x.outcome"
    "      FROM chime.runs x WHERE x.outcome IN ('running', 'replacing') AND x.lease_until < now()"
    "      ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP"
    "    SELECT * INTO j FROM chime.jobs WHERE job = r.job;"
    "    o_rerun := r.outcome = 'running' AND FOUND AND j.on_node_loss = 'rerun';"
    "    UPDATE chime.runs SET outcome = CASE WHEN r.outcome = 'replacing' THEN 'replaced' ELSE 'lost' END,"
    "      ended = chime.ns(r.lease_until), lease_until = NULL,"
    "      error = 'lease expired: node ' || r.node || ' stopped renewing it (reaped by ' || p_node || ')'"
    "      WHERE id = r.id;"
    "    IF o_rerun THEN"
    "      INSERT INTO chime.runs (job, tick, attempt, kind, outcome, exclusive, catch_up, triggered, reason)"
    "        VALUES (r.job, r.tick, r.attempt + 1, 'run', 'pending', j.overlap <> 'allow', r.catch_up, true,"
    "        'rerun') ON CONFLICT DO NOTHING;"
    "      PERFORM pg_notify('chime_pending', r.job);"
    "    END IF;"
    "    o_id := r.id; o_job := r.job; o_tick := r.tick; o_attempt := r.attempt; o_node := r.node;"
    "    RETURN NEXT;"
    "  END LOOP; END $$;"
    /* pending attempts (a rerun, a queued tick) of the node's jobs that may
     * start now under their overlap policy: taken, one per job */,
    "CREATE FUNCTION chime.take(p_node text, p_instance bigint, p_jobs text[], p_hashes text[], p_lease_ms bigint)"
    " RETURNS TABLE (o_id bigint, o_job text, o_tick bigint, o_attempt int, o_catch_up bool)"
    " LANGUAGE plpgsql AS $$ DECLARE k text; h text; j chime.jobs; p record; going int; BEGIN"
    "  FOR k IN SELECT DISTINCT x.job FROM chime.runs x WHERE x.outcome = 'pending' AND x.job = ANY (p_jobs)"
    "      ORDER BY x.job LOOP"
    "    h := p_hashes[array_position(p_jobs, k)];"
    "    SELECT * INTO j FROM chime.jobs WHERE job = k FOR UPDATE;"
    "    CONTINUE WHEN NOT FOUND OR j.def_hash <> h;"
    "    SELECT count(*) INTO going FROM chime.runs x WHERE x.job = k AND x.outcome = 'running' AND x.kind = 'run';"
    "    CONTINUE WHEN going >= CASE WHEN j.overlap = 'allow' THEN j.max_concurrent ELSE 1 END;"
    /* a paused job's queued ticks and reruns wait for its resume; a
     * manual run does not */
    "    SELECT x.id, x.tick, x.attempt, x.catch_up INTO p FROM chime.runs x WHERE x.job = k"
    "      AND x.outcome = 'pending' AND (x.reason = 'manual' OR NOT EXISTS"
    "      (SELECT 1 FROM chime.pauses WHERE job = k)) ORDER BY x.tick, x.attempt LIMIT 1 FOR UPDATE SKIP LOCKED;"
    "    CONTINUE WHEN NOT FOUND;"
    "    UPDATE chime.runs SET outcome = 'running', node = p_node, instance = p_instance, claimed = now(),"
    "      lease_until = now() + p_lease_ms * interval '1 millisecond', exclusive = j.overlap <> 'allow'"
    "      WHERE id = p.id;"
    "    o_id := p.id; o_job := k; o_tick := p.tick; o_attempt := p.attempt; o_catch_up := p.catch_up;"
    "    RETURN NEXT;"
    "  END LOOP; END $$;"
    /* a claimed run's start (its child's pid), and its end: written only
     * by the node and daemon that hold it (fenced), once */,
    "CREATE FUNCTION chime.started(p_id bigint, p_node text, p_instance bigint, p_pid int, p_started bigint,"
    "  p_late bigint, p_chime_pid int) RETURNS bool LANGUAGE sql AS $$"
    "  UPDATE chime.runs SET pid = p_pid, started = p_started, late = p_late, chime_pid = p_chime_pid"
    "    WHERE id = p_id AND node = p_node AND instance = p_instance RETURNING true $$;",
    "CREATE FUNCTION chime.finish(p_id bigint, p_node text, p_instance bigint, p_outcome text, p_started bigint,"
    "  p_ended bigint, p_late bigint, p_pid int, p_exit int, p_signal int, p_error text, p_out bytea,"
    "  p_err bytea, p_chime_pid int) RETURNS text"
    " LANGUAGE plpgsql AS $$ DECLARE r chime.runs; BEGIN"
    "  SELECT * INTO r FROM chime.runs WHERE id = p_id FOR UPDATE;"
    "  IF NOT FOUND OR r.node IS DISTINCT FROM p_node OR r.instance IS DISTINCT FROM p_instance THEN"
    "    RETURN 'fenced'; END IF;"
    "  IF r.outcome NOT IN ('running', 'replacing') THEN"
    "    IF r.ended IS NOT DISTINCT FROM p_ended AND r.pid IS NOT DISTINCT FROM p_pid AND r.outcome <> 'lost' THEN"
    "      RETURN 'dup'; END IF;"
    /* fenced: the result is refused, but the run was this node's: its pid
     * and start go on the lost run's row, so that the run is on record */
    "    UPDATE chime.runs SET pid = coalesce(pid, p_pid), started = coalesce(started, p_started),"
    "      chime_pid = coalesce(chime_pid, p_chime_pid) WHERE id = p_id;"
    "    RETURN 'fenced';"
    "  END IF;"
    "  UPDATE chime.runs SET outcome = CASE WHEN r.outcome = 'replacing' AND p_outcome <> 'ok' THEN 'replaced'"
    "      ELSE p_outcome END, started = p_started, ended = p_ended, late = p_late, pid = p_pid, exit_code = p_exit,"
    "      signal = p_signal, error = p_error, stdout_tail = p_out, stderr_tail = p_err, chime_pid = p_chime_pid,"
    "      lease_until = NULL WHERE id = p_id;"
    "  IF EXISTS (SELECT 1 FROM chime.runs WHERE job = r.job AND outcome = 'pending') THEN"
    "    PERFORM pg_notify('chime_pending', r.job); END IF;"
    "  RETURN 'ok'; END $$;"
    /* a run of no claim (scope = host, or degraded), as it starts and ends */,
    "CREATE FUNCTION chime.record_local(p_job text, p_tick bigint, p_node text, p_degraded bool, p_outcome text,"
    "  p_started bigint, p_ended bigint, p_late bigint, p_pid int, p_exit int, p_signal int, p_error text,"
    "  p_out bytea, p_err bytea, p_triggered bool, p_chime_pid int) RETURNS void LANGUAGE sql AS $$"
    "  INSERT INTO chime.runs AS r (job, tick, attempt, kind, node, outcome, exclusive, degraded, started, ended,"
    "    late, pid, exit_code, signal, error, stdout_tail, stderr_tail, triggered, chime_pid)"
    "    VALUES (p_job, p_tick, 0, 'local', p_node, p_outcome, false, p_degraded, p_started, p_ended, p_late, p_pid,"
    "    p_exit, p_signal, p_error, p_out, p_err, p_triggered, p_chime_pid)"
    "    ON CONFLICT (job, tick, node) WHERE kind = 'local' DO UPDATE SET outcome = excluded.outcome,"
    "    ended = excluded.ended, pid = excluded.pid, exit_code = excluded.exit_code, signal = excluded.signal,"
    "    error = excluded.error, stdout_tail = excluded.stdout_tail, stderr_tail = excluded.stderr_tail"
    "    WHERE r.outcome = 'running' $$;",
    "CREATE FUNCTION chime.record_skip(p_job text, p_tick bigint, p_node text, p_reason text, p_count bigint,"
    "  p_last bigint, p_at bigint, p_triggered bool) RETURNS void LANGUAGE sql AS $$"
    "  INSERT INTO chime.runs (job, tick, attempt, kind, node, outcome, exclusive, reason, skipped, last_tick,"
    "    started, ended, triggered) VALUES (p_job, p_tick, 0, 'skip', p_node, 'skipped', false, p_reason, p_count,"
    "    p_last, p_at, p_at, p_triggered) ON CONFLICT (job, tick, node, reason) WHERE kind = 'skip' DO NOTHING $$;"
    /* a claim the node will not run after all: back to pending for a
     * queued tick or a job whose node losses are rerun, else abandoned */,
    "CREATE FUNCTION chime.release(p_id bigint, p_node text, p_instance bigint, p_why text) RETURNS text"
    " LANGUAGE plpgsql AS $$ DECLARE r chime.runs; again bool; BEGIN"
    "  SELECT * INTO r FROM chime.runs WHERE id = p_id AND node = p_node AND instance = p_instance"
    "    AND outcome = 'running' FOR UPDATE;"
    "  IF NOT FOUND THEN RETURN 'gone'; END IF;"
    "  again := r.reason IN ('queued', 'manual') OR EXISTS (SELECT 1 FROM chime.jobs WHERE job = r.job AND on_node_loss = 'rerun');"
    "  UPDATE chime.runs SET outcome = CASE WHEN again THEN 'pending' ELSE 'abandoned' END,"
    "    node = CASE WHEN again THEN NULL ELSE node END, instance = CASE WHEN again THEN NULL ELSE instance END,"
    "    lease_until = NULL, error = CASE WHEN again THEN NULL ELSE p_why END WHERE id = p_id;"
    "  IF again THEN PERFORM pg_notify('chime_pending', r.job); END IF;"
    "  RETURN CASE WHEN again THEN 'pending' ELSE 'abandoned' END; END $$;",
    "CREATE FUNCTION chime.leave(p_node text, p_instance bigint) RETURNS void LANGUAGE sql AS $$"
    "  UPDATE chime.nodes SET seen = '-infinity' WHERE name = p_node AND instance = p_instance $$;"
    /* chime pause and resume of a shared job, from any node: the fleet's */,
    "CREATE FUNCTION chime.pause(p_job text, p_node text, p_pause bool,"
    "  OUT status text, OUT since bigint, OUT by_node text)"
    " LANGUAGE plpgsql AS $$ BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM chime.jobs WHERE job = p_job) THEN status := 'unknown'; RETURN; END IF;"
    "  IF p_pause THEN"
    "    INSERT INTO chime.pauses VALUES (p_job, chime.now_ns(), p_node) ON CONFLICT (job) DO NOTHING"
    "      RETURNING paused_at, paused_by INTO since, by_node;"
    "    IF NOT FOUND THEN"
    "      SELECT paused_at, paused_by INTO since, by_node FROM chime.pauses WHERE job = p_job;"
    "      status := 'already'; RETURN;"
    "    END IF;"
    "  ELSE"
    "    DELETE FROM chime.pauses WHERE job = p_job;"
    "    IF NOT FOUND THEN status := 'already'; RETURN; END IF;"
    "  END IF;"
    "  PERFORM pg_notify('chime_pause', p_job);"
    "  status := CASE WHEN p_pause THEN 'paused' ELSE 'resumed' END; END $$;",
    "UPDATE chime.meta SET version = 1;",
    NULL,
};
static const char *const *const migrations[FLEET_SCHEMA] = {migration_1};

const char fleet_history_sql[] =
    "SELECT id, job, tick, node, attempt, kind, outcome, started, ended, exit_code, signal, late, pid, error,"
    " triggered, catch_up, degraded, reason, skipped, last_tick, stdout_tail, stderr_tail FROM chime.runs"
    " WHERE $1::text IS NULL OR job = $1 ORDER BY id DESC LIMIT $2";

int fleet_schema(struct pg *pg, chime_ns deadline, char *why, size_t size) {
  PGresult *res = NULL;
  int rc = pg_simple(pg, opening, deadline, &res, why, size);
  if (rc) {
    PGresult *none;
    pg_simple(pg, "ROLLBACK", deadline, &none, why + strlen(why), 0);
    return rc;
  }
  int v = res && PQntuples(res) == 1 ? (int)pg_int(res, 0, 0) : -1;
  PQclear(res);
  if (v < 0 || v > FLEET_SCHEMA) {
    if (v > FLEET_SCHEMA)
      snprintf(why, size, "the fleet's schema is version %d, newer than this chime's (%d)", v, FLEET_SCHEMA);
    else
      snprintf(why, size, "chime.meta has no version");
    pg_simple(pg, "ROLLBACK", deadline, &res, why + strlen(why), 0);
    return -EPROTO;
  }
  for (; rc == 0 && v < FLEET_SCHEMA; v++)
    for (const char *const *piece = migrations[v]; rc == 0 && *piece; piece++) {
      rc = pg_simple(pg, *piece, deadline, &res, why, size);
      PQclear(res);
    }
  char ignore[8];
  if (rc == 0) rc = pg_simple(pg, "COMMIT", deadline, &res, why, size);
  else pg_simple(pg, "ROLLBACK", deadline, &res, ignore, sizeof ignore);
  PQclear(res);
  /* the notifications of the schema's functions wake the connection's
   * task at once: a run revoked (replace), an attempt pending, a pause */
  if (rc == 0) rc = pg_simple(pg, "LISTEN chime_revoke; LISTEN chime_pending; LISTEN chime_pause", deadline, &res,
                              why, size);
  PQclear(res);
  if (rc) return rc;
  if ((rc = pg_pipeline(pg)) != 0) return snprintf(why, size, "pipeline mode: %s", PQerrorMessage(pg->conn)), rc;
  for (int i = 0; rc == 0 && i < ST_COUNT; i++)
    rc = pg_prepare(pg, fleet_stmt_name[i], stmt_sql[i], fleet_stmt_params[i]);
  if (rc == 0) rc = pg_sync(pg, deadline);
  for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
    if ((rc = pg_result(pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      const char *m = PQresultErrorMessage(res);
      snprintf(why, size, "preparing %s: %.*s", fleet_stmt_name[i], (int)strcspn(m, "\n"), m);
      rc = -EPROTO;
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(pg, deadline);
  if (rc && !why[0]) snprintf(why, size, "%s", chime_strerror(rc));
  return rc;
}
