#!/bin/sh
# jepsen.sh - the fleet's randomized fault run, long: three chime nodes on
# a PostgreSQL server of their own, a 100 ms, a 1 s and a calendar job,
# while faults strike at random from a seed (a node SIGKILLed and
# restarted, the database stopped, frozen and restarted, a node's
# connection cut and restored, a node's clock stepped), then the checker
# over the history and the jobs' own reports.  CI runs 40 s of it (make
# test); this runs ten minutes by default.
#
#   scripts/jepsen.sh [BUILD_DIR] [SECONDS] [SEED]
#
# The seed is printed first: CHIME_JEPSEN_SEED=N replays a failure.
set -eu
build=${1:-build-test}
seconds=${2:-600}
seed=${3:-$(date +%s)}
for f in "$build/tests/fleet/test_fleet" "$build/cli/chime" "$build/tests/fleet/fleet_job"; do
  [ -x "$f" ] || { echo "jepsen: $f is not built (make test, or cmake --build $build)"; exit 2; }
done
echo "jepsen: $seconds s, seed $seed (replay: scripts/jepsen.sh $build $seconds $seed)"
build=$(cd "$build" && pwd)
CHIME_JEPSEN_SECONDS=$seconds CHIME_JEPSEN_SEED=$seed CHIME_BIN=$build/cli/chime \
  FLEET_JOB=$build/tests/fleet/fleet_job CMOCKA_TEST_ABORT=1 \
  "$build/tests/fleet/test_fleet" randomized_faults
