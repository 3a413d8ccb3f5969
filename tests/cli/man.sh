#!/bin/sh
# man.sh - the man pages stand alone and agree with the command: groff
# renders each without a warning; chime(1) sends readers to no file of the
# source tree (the pages are installed without it), and names every option
# of `chime --help`, every log event and every history column that
# cli/README.md documents; chime.conf(5) has one entry for each job key
# that cli/config.c knows, and none for a key it does not.
#
#   man.sh SOURCE_DIR CHIME_BIN
set -u
src=$1 bin=$2
man1=$src/cli/chime.1 man5=$src/cli/chime.conf.5
failed=0
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

for page in "$man1" "$man5"; do
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff could not render $page"
  [ -z "$warnings" ] || fail "groff warns of $page: $warnings"
done

grep -n 'README\|cli/\|src/\|\.c\b' "$man1" "$man5" && fail "a man page refers to the source tree (above)"

# The options of chime --help, each as chime(1) writes it (\-\-name).
opts=$("$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ -n "$opts" ] || fail "chime --help lists no option"
for opt in $opts; do
  grep -qF -- "$(printf '%s' "$opt" | sed 's/-/\\-/g')" "$man1" || fail "chime(1) does not name $opt"
done

# The first column of a table of cli/README.md's section $1: its `words`.
readme_names() {
  sed -n "/^## $1/,/^## /p" "$src/cli/README.md" | sed -n 's/^| \(`[^|]*\) |.*/\1/p' | grep -o '`[a-z_]*`' | tr -d '`'
}
events=$(readme_names 'Log format')
columns=$(readme_names 'History')
[ "$(echo "$events" | wc -l)" -ge 15 ] || fail "cli/README.md's log table gave: $events"
[ "$(echo "$columns" | wc -l)" -ge 14 ] || fail "cli/README.md's history table gave: $columns"
section() { # the lines of a man page's section
  sed -n "/^\.SH $2\$/,/^\.SH /p" "$1"
}
for e in $events; do
  section "$man1" LOG | grep -qw -- "$e" || fail "chime(1)'s LOG does not name the event $e"
done
for c in $columns; do
  section "$man1" HISTORY | grep -qw -- "$c" || fail "chime(1)'s HISTORY does not name the column $c"
done

# chime.conf(5)'s JOB KEYS: the bold words of the line after each .TP.
keys=$(sed -n '/job_keys\[\] = {/,/};/p' "$src/cli/config.c" | grep -o '"[a-z_]*"' | tr -d '"' | sort)
[ "$(echo "$keys" | wc -l)" -ge 20 ] || fail "cli/config.c's job keys: $keys"
entries=$(section "$man5" 'JOB KEYS' | sed -n '/^\.TP/{n;p}' | sed 's/^\.BR* //; s/"[^"]*"//g' |
  tr ' ' '\n' | grep . | sort)
dups=$(echo "$entries" | uniq -d)
[ -z "$dups" ] || fail "chime.conf(5) has more than one entry for: $dups"
for k in $keys; do
  echo "$entries" | grep -qx -- "$k" || fail "chime.conf(5) has no entry for the job key $k"
done
for k in $entries; do
  echo "$keys" | grep -qx -- "$k" || fail "chime.conf(5) has an entry for $k, which is no job key"
done

[ "$failed" -eq 0 ] && echo "man pages: ok ($(echo "$opts" | wc -l) options, $(echo "$keys" | wc -l) job keys)"
[ "$failed" -eq 0 ]
