# chime.bash - bash completion for the chime command, installed as
# share/bash-completion/completions/chime (bash-completion loads it the
# first time chime is completed; without bash-completion, source it).
#
# Completes the commands, each command's options and their fixed values
# (--overlap, --on-error, --log-format, --tz, --user, --dir, --db,
# --socket, --config), the config file of run and check, the program after
# `--` of every and cron, and the job names of history, trigger, pause and
# resume: the [job NAME] sections of the config files in CHIME_CONFIG
# (separated by ':'), or else of /etc/chime.conf and the *.conf files of
# the current directory.  It needs nothing but bash; with
# bash-completion loaded, the program after `--` gets its own completion.

# The job names of the config files that history's completion reads.
_chime_job_names() {
  local files=() f
  if [[ -n ${CHIME_CONFIG-} ]]; then
    IFS=: read -r -a files <<<"$CHIME_CONFIG"
  else
    files=(/etc/chime.conf ./*.conf)
  fi
  for f in "${files[@]}"; do
    [[ -f $f && -r $f ]] || continue
    sed -n 's/^[[:space:]]*\[job[[:space:]][[:space:]]*\([A-Za-z0-9_.@-][A-Za-z0-9_.@-]*\)[[:space:]]*\].*/\1/p' "$f"
  done
}

# Time zones of the system's zone database, as --tz takes them.
_chime_zones() {
  local dir=${TZDIR:-/usr/share/zoneinfo}
  [[ -d $dir ]] || return
  (cd "$dir" && find . -type f -o -type l) | sed -n 's|^\./\([A-Z][^.]*\)$|\1|p'
}

# Sets COMPREPLY to what `compgen ARGS -- "$cur"` gives, a line a word
# (so that a file name may hold blanks).
_chime_gen() {
  mapfile -t COMPREPLY < <(compgen "$@" -- "$cur")
}

# Sets COMPREPLY to the words of "$1" (a list) that start with cur.
_chime_words() {
  _chime_gen -W "$1"
}

# Sets COMPREPLY to the file names (with -d: directories) that start with cur.
_chime_files() {
  compopt -o filenames 2>/dev/null
  _chime_gen "${1:--f}"
}

_chime() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local cmd=${COMP_WORDS[1]-} i
  COMPREPLY=()

  if ((COMP_CWORD == 1)); then
    _chime_words "every cron run check history status trigger pause resume reload --help --version"
    return
  fi

  # every and cron: after `--`, the program and its arguments.
  if [[ $cmd == every || $cmd == cron ]]; then
    for ((i = 2; i < COMP_CWORD; i++)); do
      [[ ${COMP_WORDS[i]} == -- ]] || continue
      if declare -F _command_offset >/dev/null; then
        _command_offset $((i + 1))
      elif ((i + 1 == COMP_CWORD)); then
        _chime_gen -c
      else
        _chime_files
      fi
      return
    done
  fi

  # The value of the option before the cursor.
  case $prev in
    --overlap) _chime_words "skip queue allow replace"; return ;;
    --on-error) _chime_words "continue backoff stop"; return ;;
    --log-format) _chime_words "logfmt json"; return ;;
    --scope) _chime_words "fleet host"; return ;;
    --on-node-loss) _chime_words "drop rerun"; return ;;
    --on-db-down) _chime_words "skip run_local"; return ;;
    --fleet-outbox) _chime_files; return ;;
    --tz) _chime_words "$(_chime_zones)"; return ;;
    --user) _chime_gen -u; return ;;
    --dir) _chime_files -d; return ;;
    --db | --socket)
      _chime_files
      [[ none == "$cur"* ]] && COMPREPLY+=(none)
      return
      ;;
    --config) _chime_files; return ;;
    --name | --timeout | --kill-grace | --jitter | --spread | --window | --max-concurrent | --backoff | \
      --backoff-max | --max-runs | --env | --shutdown-grace | --limit | --job | --on-failure | --on-recovery | \
      --hook-timeout | --history-keep | --history-max-runs | --history-keep-ok | --history-keep-failed | --http | \
      --fleet | --node | --fleet-lease | --fleet-max-skew)
      return ;; # free text: a name, a duration, a number, a command, an address
  esac

  local daemon="--db --no-history --socket --log-format --shutdown-grace --http --fleet --node --fleet-lease
    --fleet-max-skew --fleet-outbox"
  local bounds="--history-keep --history-max-runs --history-keep-ok --history-keep-failed"
  case $cmd in
    every | cron)
      if ((COMP_CWORD == 2)); then # the schedule
        [[ $cmd == cron ]] && _chime_words "@yearly @monthly @weekly @daily @hourly @every"
        return
      fi
      _chime_words "--name --timeout --kill-grace --jitter --spread --window --overlap --max-concurrent
        --on-error --backoff --backoff-max --max-runs --env --dir --user --tz --shell --catch-up
        --start-now --on-failure --on-recovery --hook-timeout --scope --on-node-loss --on-db-down $bounds $daemon --"
      ;;
    run | check)
      if ((COMP_CWORD == 2)); then # the config file
        _chime_files
      elif [[ $cmd == run ]]; then
        _chime_words "--watch $daemon"
      fi
      ;;
    history)
      if [[ ${COMP_WORDS[2]-} == prune ]] && ((COMP_CWORD > 2)); then
        if [[ $cur == -* ]] || ((COMP_CWORD > 3)); then
          _chime_words "--config --db $bounds"
        else
          _chime_words "$(_chime_job_names) --config --db $bounds"
        fi
      elif [[ $cur == -* ]] || ((COMP_CWORD > 2)); then
        _chime_words "--limit --json --db --fleet --job"
      else
        _chime_words "$(_chime_job_names) prune --limit --json --db --fleet --job"
      fi
      ;;
    trigger | pause | resume)
      if ((COMP_CWORD == 2)) && [[ $cur != -* ]]; then
        _chime_words "$(_chime_job_names)"
      else
        _chime_words "--socket --db"
      fi
      ;;
    status) _chime_words "--json --socket --db" ;;
    reload) _chime_words "--socket --db" ;;
  esac
}

complete -F _chime chime
