#!/bin/sh
# step.sh - one phase of `make demo` or `make test`, told in a line: what
# it does, then "ok" and how long it took.  The command's output goes to
# the log, whole; when the command fails, the end of the log is shown
# with where the whole of it is, and the step fails with the command's
# status.  With V=1 in the environment the output is shown as it comes too.
#
#   scripts/step.sh [--ctest] LOG "what it does" COMMAND [ARGS...]
#
# With --ctest the command is a ctest run: a line of its own closes the
# phase, "tests: N passed, N failed, N skipped", and the skipped ones are
# named; when some fail, it shows the output of each failed test and
# their list instead of the log's end.
set -u
ctest=no
if [ "$1" = --ctest ]; then
  ctest=yes
  shift
fi
log=$1 what=$2
shift 2
mkdir -p "$(dirname "$log")"
printf 'chime: %s ... ' "$what"
[ "${V:-0}" = 1 ] && echo
start=$(date +%s)
status_file=$(mktemp)
{
  "$@" 2>&1
  echo $? >"$status_file"
} | if [ "${V:-0}" = 1 ]; then tee -a "$log"; else cat >>"$log"; fi
status=$(cat "$status_file")
rm -f "$status_file"
took=$(($(date +%s) - start))

# The tab-indented lines under ctest's closing header $1 ("The following
# tests FAILED:"), each "  NAME (WHY)".
ctest_list() {
  awk -v h="$1" '$0 == h { on = 1; next } on && /^\t/ { sub(/^\t *[0-9]+ - /, "  "); print; next } { on = 0 }' "$log"
}

if [ "$ctest" = yes ]; then
  # ctest closes with "N% tests passed, F tests failed out of T", then the
  # tests that did not run (the skipped ones among them) and those that
  # failed.
  summary=$(sed -n 's/^[0-9]*% tests passed, \([0-9]*\) tests* failed out of \([0-9]*\)$/\1 \2/p' "$log" | tail -n 1)
  skipped=$(ctest_list "The following tests did not run:" | grep -c '(Skipped)$')
  if [ -n "$summary" ]; then
    failed=${summary% *} total=${summary#* }
    echo "$total tests run ($took s)"
    echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
  else
    echo "ctest ended (exit $status) without its summary"
  fi
  if [ "$skipped" -gt 0 ]; then
    echo "chime: skipped, as they cannot run here (not root, not on this backend, under a sanitizer, ...):"
    ctest_list "The following tests did not run:" | grep '(Skipped)$'
  fi
  if [ "$status" -ne 0 ]; then
    echo "chime: the output of each test that failed:"
    awk '/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / { show = /\*\*\*/ && !/\*\*\*Skipped/ }
         /^ *Start +[0-9]+: / || /^[0-9]+% tests passed/ { show = 0 }
         show { print "  " $0 }' "$log"
    echo "chime: failed:"
    ctest_list "The following tests FAILED:"
    [ -n "$summary" ] || tail -n 40 "$log" | sed 's/^/  /'
    echo "chime: the whole log: $log"
  fi
  exit "$status"
fi

if [ "$status" -eq 0 ]; then
  echo "ok ($took s)"
else
  echo "failed (exit $status); the end of its log:"
  tail -n 40 "$log" | sed 's/^/  /'
  echo "chime: the whole log: $log"
fi
exit "$status"
