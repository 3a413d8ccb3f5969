#!/bin/bash
# completion.sh - chime's bash completion (cli/chime.bash), called as bash
# calls it: COMP_WORDS and COMP_CWORD set for a command line, _chime run,
# COMPREPLY compared with what a person expects to be offered.
#
#   bash completion.sh PATH/TO/chime.bash [PATH/TO/bash_completion]
#
# With bash-completion's main script as well, it is loaded first, as in
# an interactive shell that has it: the program after `--` is then
# completed by bash-completion's _command_offset.
set -u
if [[ -n ${2-} ]]; then
  # shellcheck source=/dev/null
  source "$2" || exit 1
  declare -F _command_offset >/dev/null || { echo "FAIL: $2 defines no _command_offset"; exit 1; }
fi
# shellcheck source=../../cli/chime.bash
source "$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failed=0 checked=0

# offered WORD...: the words offered for the last WORD of `chime WORD...`,
# sorted, on one line.
offered() {
  COMP_WORDS=(chime "$@")
  COMP_CWORD=$#
  COMP_LINE="chime $*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _chime chime "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
  printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | paste -sd ' ' -
}

# expect "WORDS OFFERED" WORD...: exactly those are offered.
expect() {
  local want=$1 got
  shift
  got=$(offered "$@")
  checked=$((checked + 1))
  if [[ $got != "$want" ]]; then
    printf 'FAIL: chime %s<TAB>\n  offered: %s\n  expected: %s\n' "$*" "$got" "$want"
    failed=$((failed + 1))
  fi
}

# expect_some WORD-WANTED WORD...: WORD-WANTED is among those offered.
expect_some() {
  local want=$1 got
  shift
  got=" $(offered "$@") "
  checked=$((checked + 1))
  if [[ $got != *" $want "* ]]; then
    printf 'FAIL: chime %s<TAB>\n  offered: %s\n  expected among them: %s\n' "$*" "$got" "$want"
    failed=$((failed + 1))
  fi
}

if [[ $(complete -p chime) != "complete -F _chime chime" ]]; then
  echo "FAIL: complete -p chime: $(complete -p chime)"
  exit 1
fi

# commands
expect "--help --version check cron every history pause reload resume run status trigger" ""
expect "history" h
expect "check cron" c
# options of every and cron, and their fixed values
expect "--overlap" every 30s --ov
expect "--kill-grace" cron "30 2 * * *" --ki
expect "allow queue replace skip" every 30s --overlap ""
expect "replace" every 30s --overlap r
expect "backoff continue stop" cron @daily --on-error ""
expect "json logfmt" every 1m --log-format ""
expect "" every 1m --timeout ""
expect "@daily" cron @da
expect "" every ""
expect_some --start-now every 1m --timeout 5s ""
expect_some -- every 1m --name x ""
if [[ -e /usr/share/zoneinfo/Europe/Berlin ]]; then
  expect "Europe/Berlin" cron @daily --tz Europe/Berl
fi
# the program after --, then its arguments (files)
expect_some echo every 1m --shell -- ech
: >"my jobs.conf"
: >notes.txt
expect "notes.txt" every 1m -- echo no
# run and check: the config file (a name with a blank is one word), then
# run's options
expect "my jobs.conf" check my
expect "my jobs.conf" run "my "
expect "--db --fleet --fleet-lease --fleet-max-skew --fleet-outbox --http --log-format --no-history --node --shutdown-grace --socket --watch" run "my jobs.conf" --
expect "" check "my jobs.conf" ""
expect "none notes.txt" run a.conf --db no
# history: the job names of the config files in the current directory ...
printf '[defaults]\ntimeout = 5s\n[job backup]\nevery = 1h\ncommand = true\n%s\n' '  [job  nightly.db@host-2 ]' \
  >"my jobs.conf"
expect "--db --fleet --job --json --limit backup nightly.db@host-2 prune" history ""
expect "backup" history b
expect "--db --fleet --job --json --limit" history backup ""
expect "--config --db --history-keep --history-keep-failed --history-keep-ok --history-max-runs backup nightly.db@host-2" \
  history prune ""
expect "--config" history prune --co
# trigger, pause and resume: a job's name, then where the daemon is
expect "backup nightly.db@host-2" pause ""
expect "nightly.db@host-2" trigger n
expect "--db --socket" resume backup ""
expect "--db --json --socket" status ""
expect "none notes.txt" status --socket no
expect "" history --limit ""
# ... or of those CHIME_CONFIG names, and only those
mkdir etc
printf '[job heartbeat]\nevery = 1s\ncommand = true\n' >etc/a.conf
printf '[job disk]\nevery = 1s\ncommand = true\n' >etc/b.conf
CHIME_CONFIG=$work/etc/a.conf:$work/etc/b.conf:$work/etc/missing.conf \
  expect "--db --fleet --job --json --limit disk heartbeat prune" history ""
CHIME_CONFIG=$work/etc/a.conf expect "heartbeat" history h

echo "$((checked - failed)) passed, $failed failed"
[[ $failed -eq 0 ]]
