#!/bin/bash
# cron-compare.sh - the chime daemon against Debian's cron on one crontab.
#
# What it measures.  One system-format crontab of N lines (default 1,000),
# every one `* * * * * root date +\%s.\%N >> DIR/ts/NNNN`: each job appends
# the wall-clock time at which its command ran to its own file.  The same
# file is run by Debian's cron (`cron -f -L 0`) and by `chime crontab FILE
# --system --db DIR/chime.db`, one after the other (never at once), each for
# DURATION seconds (default 600).  Each daemon is started at second :40 of a
# minute, so that a DURATION of 600 s covers exactly 10 minute boundaries and
# ends 40 s after the last one (time enough for that minute's runs).  For
# each daemon it prints one JSON line (the style of shared/bench/SPEC.md):
#
#   runs_expected  N x the minute boundaries in the window
#   runs           timestamps written for those boundaries (a line is given
#                  to the minute it falls in: lateness is assumed < 60 s)
#   late_*_us      p50 / p99 / max (and min) of timestamp - minute boundary:
#                  the spread of the starts, measured the same way for both
#                  (fork/clone + exec of /bin/sh + exec of date included)
#   cpu_s          user + system time of the daemon process itself (all its
#                  threads, children excluded: /proc/PID/stat utime + stime,
#                  clock ticks of 10 ms), from 5 s before the first boundary
#                  to the stop (cpu_user_s + cpu_sys_s); the CPU of its
#                  start (reading the crontab) is cpu_setup_s
#   ns_cpu_per_run cpu_s / runs;  rss_kb its peak RSS (VmHWM)
#   load_start/end /proc/loadavg at its start and at its stop
# and for chime also, from its history database (table runs: started -
# scheduled, ns): hist_runs, hist_skipped, hist_late_p50/p99/max_us.
# Percentiles as bench/chime-daemon-bench.c takes them: sorted[n/2],
# sorted[n*99/100].  Per-minute counts and spreads go to stderr.
#
# Isolation.  Debian's cron also runs /etc/crontab, /etc/cron.d/* and the
# spool's crontabs.  So that it runs only the benchmark's crontab (and no
# system job runs on a machine that runs no cron), cron is started in a
# private mount namespace (unshare -m) in which /etc/cron.d is a tmpfs
# holding only chime-bench, /etc/crontab an empty file and the spool an
# empty tmpfs: nothing is installed on the host's file system, and the
# namespace goes with the process.  Where unshare is not allowed (or with
# --no-ns) the crontab is installed as /etc/cron.d/chime-bench and removed
# at the end; the system's own crontabs then run too (a few jobs an hour).
# /run/crond.pid, which cron rewrites, is restored.  Everything is undone on
# any exit, failure or Ctrl-C (trap).
#
# How to run it (as root; cron, sqlite3, awk; a built chime):
#
#   cmake -S . -B /tmp/b -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/b -j2
#   sudo bench/cron-compare.sh --chime=/tmp/b/cli/chime            # 2 x 10 min
#   sudo bench/cron-compare.sh --chime=/tmp/b/cli/chime --duration=120  # a try
#
# Options: --duration=S (600, at least 60), --jobs=N (1000), --chime=PATH
# (default: $CHIME, else build/cli/chime), --only=cron|chime, --order=
# "chime cron" (default "cron chime"), --keep (keep the temporary
# directory and print its name), --no-ns.  Nothing else may run a cron
# daemon at the time: the script refuses to start if one runs.
set -u

DURATION=600
JOBS=1000
CHIME=${CHIME:-}
ORDER="cron chime"
KEEP=0
NS=auto
CRON=/usr/sbin/cron

die() { echo "cron-compare: $*" >&2; exit 1; }
say() { echo "cron-compare: $*" >&2; }

for arg in "$@"; do
  case $arg in
    --duration=*) DURATION=${arg#*=} ;;
    --jobs=*) JOBS=${arg#*=} ;;
    --chime=*) CHIME=${arg#*=} ;;
    --only=cron|--only=chime) ORDER=${arg#*=} ;;
    --order=*) ORDER=${arg#*=} ;;
    --keep) KEEP=1 ;;
    --no-ns) NS=no ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done

case $DURATION in ''|*[!0-9]*) die "--duration takes whole seconds" ;; esac
case $JOBS in ''|*[!0-9]*) die "--jobs takes a number" ;; esac
[ "$DURATION" -ge 60 ] || die "--duration must be at least 60 s (one minute boundary)"
[ "$JOBS" -ge 1 ] && [ "$JOBS" -le 99999 ] || die "--jobs 1 to 99999"
for d in $ORDER; do
  case $d in cron|chime) ;; *) die "--order: cron and/or chime, not $d" ;; esac
done
if [ -z "$CHIME" ]; then CHIME=$(dirname "$0")/../build/cli/chime; fi
case " $ORDER " in *" chime "*)
  [ -x "$CHIME" ] || die "no chime command at $CHIME (give --chime=PATH)" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (cron runs system crontabs)"
[ -x "$CRON" ] || die "no $CRON (apt-get install cron)"
command -v sqlite3 >/dev/null || die "needs sqlite3"
if pids=$(pgrep -x cron); then
  die "a cron daemon already runs (pid $(echo $pids)); this script did not start it and leaves it alone: stop it first"
fi

TICK=$(getconf CLK_TCK)
DIR=""
PID=""
SLEEPER=""
INSTALLED=""
PIDFILE_SAVED=""

cleanup() {
  trap - EXIT INT TERM HUP
  [ -n "$SLEEPER" ] && kill "$SLEEPER" 2>/dev/null
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    say "stopping pid $PID"
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  if [ -n "$INSTALLED" ]; then rm -f "$INSTALLED" && say "removed $INSTALLED"; fi
  if [ -n "$PIDFILE_SAVED" ]; then
    if [ "$PIDFILE_SAVED" = none ]; then rm -f /run/crond.pid
    else printf '%s\n' "$PIDFILE_SAVED" > /run/crond.pid; fi
  fi
  if [ -n "$DIR" ]; then
    if [ "$KEEP" = 1 ]; then say "kept $DIR"; else rm -rf "$DIR"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# now: the wall clock, seconds with microseconds.
now() { echo "$EPOCHREALTIME"; }
# sleep_until T: sleep until wall-clock time T (interruptible by the traps).
sleep_until() {
  local s
  s=$(awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; if (d > 0) printf "%.6f", d; else print 0 }')
  [ "$s" = 0 ] && return 0
  sleep "$s" & SLEEPER=$!
  wait "$SLEEPER"
  SLEEPER=""
}
# cpu_ticks PID: "utime stime" of the process (all threads, not children).
cpu_ticks() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1 -1; return; }
  st=${st##*) }                    # after the command's name: field 3 on
  set -- $st
  echo "${12} ${13}"               # fields 14 and 15 of proc(5)
}
# stats < sorted integers: "n p50 p99 max min" (sorted[n/2], sorted[n*99/100]).
stats() {
  awk '{ a[NR - 1] = $1 } END {
         if (NR == 0) { print 0, 0, 0, 0, 0; exit }
         print NR, a[int(NR / 2)], a[int(NR * 99 / 100)], a[NR - 1], a[0] }'
}

DIR=$(mktemp -d /tmp/cron-compare.XXXXXX) || die "mktemp"
chmod 755 "$DIR"
CRONTAB=$DIR/crontab
{
  echo "# cron-compare.sh: $JOBS jobs every minute, each appending the time it ran to its own file"
  echo "SHELL=/bin/sh"
  echo "PATH=/usr/bin:/bin"
  echo 'MAILTO=""'
  i=1
  while [ "$i" -le "$JOBS" ]; do
    printf '* * * * * root date +\\%%s.\\%%N >> %s/ts/%05d\n' "$DIR" "$i"
    i=$((i + 1))
  done
} > "$CRONTAB"
chmod 644 "$CRONTAB"
: > "$DIR/empty-crontab"
chmod 644 "$DIR/empty-crontab"

if [ "$NS" = auto ]; then
  if unshare -m --propagation private true 2>/dev/null; then NS=yes; else
    NS=no
    say "unshare -m is not allowed here: cron gets /etc/cron.d/chime-bench, and runs the system's crontabs too"
  fi
fi

CRON_VERSION=$(dpkg-query -W -f '${Version}' cron 2>/dev/null || echo unknown)
CHIME_VERSION=$("$CHIME" --version 2>/dev/null | awk '{ print $2 }')
say "crontab $CRONTAB ($JOBS lines, sha256 $(sha256sum < "$CRONTAB" | cut -c1-16)); $DURATION s per daemon; order: $ORDER"
say "uptime at the start: $(uptime)"

# run_daemon IMPL: start it at second :40, keep it DURATION s, stop it, and
# print its JSON line.
run_daemon() {
  local impl=$1 t0 t_end b1 blast nb expected cpu0 cpu1 rss load0 load1 ready
  rm -rf "$DIR/ts"; mkdir "$DIR/ts"
  # start at second :40 (of this minute, else of the next)
  t0=$(awk -v n="$EPOCHREALTIME" 'BEGIN { m = int(n / 60) * 60; t = m + 40; if (t < n + 1) t += 60; printf "%d", t }')
  say "$impl: starting at $(date -d "@$t0" +%T)"
  sleep_until "$t0"
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(now)
  case $impl in
    cron)
      if [ -z "$PIDFILE_SAVED" ]; then
        PIDFILE_SAVED=$(cat /run/crond.pid 2>/dev/null) || PIDFILE_SAVED=none
        [ -n "$PIDFILE_SAVED" ] || PIDFILE_SAVED=none
      fi
      if [ "$NS" = yes ]; then
        unshare -m --propagation private /bin/sh -c '
          set -e
          mount -t tmpfs -o mode=755 cron-compare /etc/cron.d
          cp "$1" /etc/cron.d/chime-bench
          chmod 644 /etc/cron.d/chime-bench
          mount --bind "$2" /etc/crontab
          mount -t tmpfs -o mode=1730 cron-compare /var/spool/cron/crontabs
          exec "$3" -f -L 0' sh "$CRONTAB" "$DIR/empty-crontab" "$CRON" \
          > "$DIR/cron.log" 2>&1 &
        PID=$!
      else
        [ -e /etc/cron.d/chime-bench ] && die "/etc/cron.d/chime-bench exists and is not this run's: remove it first"
        INSTALLED=/etc/cron.d/chime-bench
        cp "$CRONTAB" "$INSTALLED" && chmod 644 "$INSTALLED" || die "cannot install $INSTALLED"
        "$CRON" -f -L 0 > "$DIR/cron.log" 2>&1 &
        PID=$!
      fi
      ready=""
      for _ in $(seq 50); do
        if [ "$(readlink "/proc/$PID/exe" 2>/dev/null)" = "$CRON" ]; then ready=1; break; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
      done
      [ -n "$ready" ] || { cat "$DIR/cron.log" >&2; die "cron did not start"; }
      ;;
    chime)
      "$CHIME" crontab "$CRONTAB" --system --db "$DIR/chime.db" 2> "$DIR/chime.log" &
      PID=$!
      ready=""
      for _ in $(seq 200); do
        if grep -q 'event=ready' "$DIR/chime.log" 2>/dev/null; then ready=1; break; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
      done
      [ -n "$ready" ] || { tail -20 "$DIR/chime.log" >&2; die "chime did not start"; }
      ;;
  esac
  say "$impl: pid $PID ready after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
  t_end=$(awk -v t="$t0" -v d="$DURATION" 'BEGIN { printf "%.6f", t + d }')
  # the minute boundaries counted: after the start, and at least 20 s
  # before the stop
  b1=$(awk -v t="$t0" 'BEGIN { printf "%d", (int(t / 60) + 1) * 60 }')
  blast=$(awk -v e="$t_end" 'BEGIN { printf "%d", int((e - 20) / 60) * 60 }')
  nb=$(( (blast - b1) / 60 + 1 ))
  [ "$nb" -ge 1 ] || die "no minute boundary in the window"
  expected=$(( nb * JOBS ))
  sleep_until "$((b1 - 5))"
  cpu0=$(cpu_ticks "$PID")
  [ "${cpu0% *}" -ge 0 ] || die "$impl (pid $PID) ended before the first minute"
  sleep_until "$t_end"
  cpu1=$(cpu_ticks "$PID")
  [ "${cpu1% *}" -ge 0 ] || die "$impl (pid $PID) ended before its time"
  rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  kill -TERM "$PID"
  for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$PID" 2>/dev/null && { say "$impl did not stop in 30 s: SIGKILL"; kill -KILL "$PID"; }
  wait "$PID" 2>/dev/null
  PID=""
  if [ -n "$INSTALLED" ]; then rm -f "$INSTALLED"; INSTALLED=""; fi
  sleep 1   # a job started just before the stop finishes its line

  # lateness from the jobs' own timestamps, in µs after their minute
  cat "$DIR"/ts/* 2>/dev/null | awk -v b1="$b1" -v bl="$blast" -F. '
    { s = $1 + 0; b = s - s % 60
      if (b < b1 || b > bl) { out++; next }
      printf "%d %d\n", b, (s - b) * 1000000 + int(substr($2 "000000000", 1, 9) / 1000) }
    END { if (out) printf "%d timestamps outside the counted minutes\n", out > "/dev/stderr" }' \
    | sort -k2,2n > "$DIR/late-$impl"
  awk '{ n[$1]++; if (!($1 in lo)) lo[$1] = $2; hi[$1] = $2 }
       END { for (b in n) printf "%d %d %d %d\n", b, n[b], lo[b], hi[b] }' "$DIR/late-$impl" | sort -n |
    while read -r b n lo hi; do
      say "$impl: minute $(date -d "@$b" +%H:%M): $n runs, first +$((lo / 1000)) ms, last +$((hi / 1000)) ms"
    done
  set -- $(cut -d' ' -f2 "$DIR/late-$impl" | stats)
  local runs=$1 p50=$2 p99=$3 max=$4 min=$5
  local cpu_s user_s sys_s setup_s nspr
  set -- $(echo "$cpu0 $cpu1" | awk -v t="$TICK" '{
    printf "%.2f %.2f %.2f %.2f", ($3 + $4 - $1 - $2) / t, ($3 - $1) / t, ($4 - $2) / t, ($1 + $2) / t }')
  cpu_s=$1 user_s=$2 sys_s=$3 setup_s=$4
  nspr=$(awk -v c="$cpu_s" -v r="$runs" 'BEGIN { printf "%d", r ? c * 1e9 / r : 0 }')
  local line version
  if [ "$impl" = cron ]; then version=$CRON_VERSION; else version=$CHIME_VERSION; fi
  line=$(printf '{"impl":"%s","version":"%s","workload":"crontab","n":%d,"duration_s":%d,"minutes":%d,"runs_expected":%d,"runs":%d,"late_p50_us":%d,"late_p99_us":%d,"late_max_us":%d,"late_min_us":%d,"cpu_s":%s,"cpu_user_s":%s,"cpu_sys_s":%s,"ns_cpu_per_run":%d,"cpu_setup_s":%s,"rss_kb":%d' \
    "$impl" "$version" "$JOBS" "$DURATION" "$nb" "$expected" "$runs" "$p50" "$p99" "$max" "$min" \
    "$cpu_s" "$user_s" "$sys_s" "$nspr" "$setup_s" "${rss:-0}")
  if [ "$impl" = chime ]; then
    local q hruns hskipped
    q="scheduled >= ${b1}000000000 AND scheduled <= ${blast}000000000"
    sqlite3 "$DIR/chime.db" "SELECT outcome, count(*), coalesce(sum(skipped), 0) FROM runs WHERE $q GROUP BY outcome" |
      while IFS='|' read -r o c s; do say "chime history: $o: $c rows${s:+ ($s ticks)}"; done
    sqlite3 "$DIR/chime.db" "SELECT (started - scheduled) / 1000 FROM runs WHERE $q AND outcome <> 'skipped' ORDER BY 1" \
      > "$DIR/hist-late"
    hskipped=$(sqlite3 "$DIR/chime.db" "SELECT coalesce(sum(skipped), 0) FROM runs WHERE $q AND outcome = 'skipped'")
    set -- $(stats < "$DIR/hist-late")
    line="$line$(printf ',"hist_runs":%d,"hist_skipped":%d,"hist_late_p50_us":%d,"hist_late_p99_us":%d,"hist_late_max_us":%d' "$1" "$hskipped" "$2" "$3" "$4")"
  fi
  if [ "$impl" = cron ] && [ "$NS" = no ]; then line="$line,\"note\":\"system crontabs ran too\""; fi
  line="$line,\"load_start\":\"$load0\",\"load_end\":\"$load1\"}"
  echo "$line"
}

for impl in $ORDER; do
  run_daemon "$impl"
done
say "uptime at the end: $(uptime)"
