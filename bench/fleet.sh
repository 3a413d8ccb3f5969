#!/bin/sh
# fleet.sh - a fleet's speed, against a PostgreSQL server of its own (as
# the tests start theirs: initdb into a temporary directory, a Unix socket
# there, no TCP):
#  1. claims per second one node sustains (fleet_claims: batches of 1, 16
#     and 256 claims, each batch one transaction);
#  2. JOBS jobs at 1 s (command true) on three nodes for SECONDS, and HOST
#     jobs of scope = host (unclaimed) in the same run: the lateness of
#     the claimed runs (start on the database's clock minus tick + jitter)
#     against the unclaimed ones, the CPU of the database and of the nodes.
#
#   bench/fleet.sh [BUILD_DIR] [JOBS] [SECONDS] [SPREAD]
#
# BUILD_DIR: an optimized build with the benchmarks (make demo's build/).
# SPREAD: each job's spread (default 0: every job on the same instant, the
# worst case; 1s spreads them over the second, as a real fleet would).
set -eu
build=$(cd "${1:-build}" && pwd)
jobs=${2:-1000}
seconds=${3:-30}
spread=${4:-0}
host_jobs=50
bin=$(pg_config --bindir)
dir=$(mktemp -d /tmp/chime-fleet-bench-XXXXXX)
chmod 755 "$dir"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log"
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o "-k $dir -c listen_addresses= -c max_connections=60" \
  start >/dev/null
conn="host=$dir user=postgres dbname=postgres"
cleanup() {
  for p in $(cat "$dir"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT

echo "== claims per second, one node (fleet_claims, 5 s per batch size)" >&2
"$build/bench/fleet_claims" "$conn" 5 1000

echo "== $jobs jobs at 1 s on three nodes, spread $spread, for $seconds s (and $host_jobs scope = host jobs)" >&2
psql -q -h "$dir" -U postgres -c "DROP SCHEMA chime CASCADE" >/dev/null 2>&1
conf=$dir/fleet.conf
{
  printf '[chime]\nfleet = %s\n\n[defaults]\ncommand = true\nevery = 1s\n' "$conn"
  [ "$spread" != 0 ] && printf 'spread = %s\n' "$spread"
  i=0
  while [ $i -lt "$jobs" ]; do printf '[job j%04d]\n' $i; i=$((i + 1)); done
  i=0
  while [ $i -lt $host_jobs ]; do printf '[job h%03d]\nscope = host\n' $i; i=$((i + 1)); done
} >"$conf"
pg_cpu() { # the server's CPU so far, in clock ticks (utime + stime of its processes)
  pm=$(head -1 "$dir/data/postmaster.pid")
  for p in $pm $(pgrep -P "$pm"); do cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null; done |
    awk '{ s += $1 + $2 } END { print s + 0 }'
}
cpu0=$(pg_cpu)
for n in n1 n2 n3; do
  "$build/cli/chime" run "$conf" --node $n --db none 2>"$dir/$n.log" &
  echo $! >"$dir/$n.pid"
done
sleep "$seconds"
cpu1=$(pg_cpu)
node_cpu=0
for n in n1 n2 n3; do
  p=$(cat "$dir/$n.pid")
  c=$(cut -d' ' -f14,15 /proc/"$p"/stat | awk '{ print $1 + $2 }')
  node_cpu=$((node_cpu + c))
  kill -TERM "$p"
done
wait
hz=$(getconf CLK_TCK)
psql -q -At -h "$dir" -U postgres -F ' ' -c "
  SELECT kind, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY late) / 1e3),
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY late) / 1e3), round(max(late) / 1e3)
    FROM chime.runs WHERE kind IN ('run', 'local') AND outcome = 'ok'
     AND tick > (SELECT min(tick) + 3000000000 FROM chime.runs)
   GROUP BY kind ORDER BY kind" | while read -r kind n p50 p99 max; do
  what=$([ "$kind" = run ] && echo claimed || echo unclaimed)
  printf '{"impl":"chime","workload":"fleet-%s","n":%s,"nodes":3,"interval_ms":1000,"spread_s":"%s","fires":%s,' \
    "$what" "$jobs" "$spread" "$n"
  printf '"wall_s":%s,"late_p50_us":%s,"late_p99_us":%s,"late_max_us":%s,"db_cpu_s":%s,"nodes_cpu_s":%s}\n' \
    "$seconds" "$p50" "$p99" "$max" "$(echo "$cpu0 $cpu1 $hz" | awk '{ printf "%.2f", ($2 - $1) / $3 }')" \
    "$(echo "$node_cpu $hz" | awk '{ printf "%.2f", $1 / $2 }')"
done
psql -q -At -h "$dir" -U postgres -c "SELECT 'ticks claimed twice: ' || count(*) FROM (SELECT job, tick FROM chime.runs
  WHERE kind = 'run' GROUP BY 1, 2 HAVING count(*) > 1) d" >&2
