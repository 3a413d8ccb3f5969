#!/bin/sh
# layers.sh - checks that the library's layers call only downward.
#
#   scripts/layers.sh LAYERS OBJECT|DIR...
#   scripts/layers.sh --cli CLIDIR
#
# LAYERS is src/LAYERS; the objects are the library's (their paths end in
# src/FILE.c.o or src/FILE.S.o; a directory stands for the objects below
# it).  For every symbol an object uses that
# another object defines, the caller's layer must be the callee's, or one
# it may call (directly or through the layers those may call).  Prints each
# violation as "caller.c (layer) calls SYMBOL in callee.c (layer)" and
# fails; prints nothing and succeeds when the arrows hold.  Needs nm, awk.
set -eu
if [ "$1" = --cli ]; then # the command includes the public header and its own
  bad=$(grep -Hn '^#include "' "$2"/*.c "$2"/*.h | while IFS= read -r line; do
    inc=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
    [ -e "$2/$inc" ] || printf '%s: includes a header from outside the command\n' "$line"
  done)
  [ -z "$bad" ] || { printf '%s\n' "$bad"; exit 1; }
  exit 0
fi
layers=$1
shift
objects=$(for a in "$@"; do if [ -d "$a" ]; then find "$a" -name '*.o'; else printf '%s\n' "$a"; fi; done)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/defs"
: >"$tmp/uses"
for o in $objects; do
  f=$(printf '%s\n' "$o" | sed -e 's|.*/src/||' -e 's|\.[cS]\.o$||')
  nm --defined-only "$o" | awk -v f="$f" 'NF == 3 && $2 ~ /^[TDBRV]$/ { print f, $3 }' >>"$tmp/defs"
  nm --undefined-only "$o" | awk -v f="$f" '{ print f, $NF }' >>"$tmp/uses"
done
awk '
  FILENAME == ARGV[1] {
    sub(/#.*/, "")
    if (NF < 2) next
    name = $1
    order[++nl] = name
    if ($2 != "-") { m = split($2, c, ","); for (i = 1; i <= m; i++) calls[name, c[i]] = 1 }
    for (i = 3; i <= NF; i++) layer_of[$i] = name
    next
  }
  FILENAME == ARGV[2] { def[$2] = $1; next }
  {
    if (!closed) { # what each layer may reach: the transitive closure
      for (k = 1; k <= nl; k++) for (a = 1; a <= nl; a++) for (b = 1; b <= nl; b++)
        if (((order[a], order[k]) in calls) && ((order[k], order[b]) in calls)) calls[order[a], order[b]] = 1
      closed = 1
    }
    caller = $1; sym = $2
    if (!(sym in def) || def[sym] == caller) next # the C library, or itself
    callee = def[sym]
    if (!(caller in layer_of)) { print caller ": in no layer of " ARGV[1]; bad = 1; next }
    if (!(callee in layer_of)) { print callee ": in no layer of " ARGV[1]; bad = 1; next }
    lc = layer_of[caller]; le = layer_of[callee]
    if (lc == le || ((lc, le) in calls)) next
    print caller ".c (" lc ") calls " sym " in " callee ".c (" le ")"
    bad = 1
  }
  END { exit bad }
' "$layers" "$tmp/defs" "$tmp/uses"
