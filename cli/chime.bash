# chime.bash - bash completion for the chime command, installed as
# share/bash-completion/completions/chime (bash-completion loads it the
# first time chime is completed; without bash-completion, source it).
#
# Completes the commands, each command's options and their fixed values
# (--overlap, --on-error, --log-format, --tz, --user, --dir, --db), the
# config file of run and check, the program after `--` of every and cron,
# and the job names of history: the [job NAME] sections of the config files
# in CHIME_CONFIG (separated by ':'), or else of /etc/chime.conf and the
# *.conf files of the current directory.  It needs nothing but bash; with
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
    _chime_words "every cron run check history --help --version"
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
    --db)
      _chime_files
      [[ none == "$cur"* ]] && COMPREPLY+=(none)
      return
      ;;
    --name | --timeout | --kill-grace | --jitter | --spread | --window | --max-concurrent | --backoff | \
      --backoff-max | --max-runs | --env | --shutdown-grace | --limit | --fleet | --node | --fleet-lease | \
      --fleet-max-skew)
      return ;; # free text: a name, a duration, a number
  esac

  local daemon="--db --no-history --log-format --shutdown-grace --fleet --node --fleet-lease --fleet-max-skew
    --fleet-outbox"
  case $cmd in
    every | cron)
      if ((COMP_CWORD == 2)); then # the schedule
        [[ $cmd == cron ]] && _chime_words "@yearly @monthly @weekly @daily @hourly @every"
        return
      fi
      _chime_words "--name --timeout --kill-grace --jitter --spread --window --overlap --max-concurrent
        --on-error --backoff --backoff-max --max-runs --env --dir --user --tz --shell --catch-up
        --start-now --scope --on-node-loss --on-db-down $daemon --"
      ;;
    run | check)
      if ((COMP_CWORD == 2)); then # the config file
        _chime_files
      elif [[ $cmd == run ]]; then
        _chime_words "$daemon"
      fi
      ;;
    history)
      if [[ $cur == -* ]] || ((COMP_CWORD > 2)); then
        _chime_words "--limit --json --db --fleet"
      else
        _chime_words "$(_chime_job_names) --limit --json --db --fleet"
      fi
      ;;
  esac
}

complete -F _chime chime
