#!/bin/sh
# unit.sh - examples/chime.service is a unit systemd accepts: checked with
# `systemd-analyze verify` (its ExecStart= pointed at the chime built here,
# which verify wants to exist; man pages not looked up, as they are not
# installed).  Without systemd-analyze it is skipped, saying so (exit 77).
#
#   unit.sh SOURCE_DIR CHIME_BIN
set -u
src=$1 bin=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "skipped: no systemd-analyze here to verify examples/chime.service"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|^ExecStart=/usr/bin/chime |ExecStart=$bin |" "$src/examples/chime.service" >"$work/chime.service"
grep -q "^ExecStart=$bin run " "$work/chime.service" || { echo "FAIL: no ExecStart=/usr/bin/chime run in the unit"; exit 1; }
grep -q '^Type=notify$' "$work/chime.service" || { echo "FAIL: the unit is not Type=notify"; exit 1; }
if ! out=$(systemd-analyze verify --man=no "$work/chime.service" 2>&1) || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify examples/chime.service:"
  echo "$out"
  exit 1
fi
echo "examples/chime.service: verified ($(systemd-analyze --version | head -n 1))"
