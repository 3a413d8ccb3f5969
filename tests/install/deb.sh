#!/bin/sh
# deb.sh - the Debian packages, as a user of this machine gets them:
# `make deb` builds them; lintian finds no error in them; `apt-get install
# ./*.deb` installs them; the command runs, with its man pages, example
# and completion where the tools look; a program builds against the
# installed header and library with pkg-config, and with find_package,
# and runs; `apt-get purge` removes them and leaves none of their files.
#
#   tests/install/deb.sh        (as root: it installs packages; .ci/run runs it)
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "deb test: needs root, to install and purge the packages"
  exit 1
fi
apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 "$@"
}
fail() {
  echo "FAIL: $*"
  exit 1
}
packages="chime libchime-dev libchime0"
installed() { # the names of those of $packages that are installed
  for p in $packages; do
    [ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" = installed ] && echo "$p"
  done
  return 0
}
left=$(installed)
if [ -n "$left" ]; then
  echo "deb test: purging what an earlier install left: $left"
  # shellcheck disable=SC2086
  apt_get purge $left >/dev/null
fi

make deb
version=$(dpkg-parsechangelog -S Version)

echo "== lintian"
lintian --display-info --fail-on error build-deb/*.changes || fail "lintian reports errors (above)"
echo "lintian: no errors"

echo "== apt-get install ./build-deb/*.deb"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_get install "$root"/build-deb/*.deb >"$work/apt.log" 2>&1 || {
  cat "$work/apt.log"
  fail "apt-get install"
}
grep -E '^(Setting up|Unpacking) ' "$work/apt.log"
[ "$(installed | wc -l)" -eq 3 ] || fail "installed: $(installed)"

echo "== the command"
out=$(chime --version) || fail "chime --version exited $?"
echo "\$ chime --version"
echo "$out"
[ "$out" = "chime $version" ] || fail "chime --version printed '$out', not 'chime $version'"
[ "$(command -v chime)" = /usr/bin/chime ] || fail "chime is $(command -v chime), not /usr/bin/chime"
for f in /usr/share/man/man1/chime.1.gz /usr/share/man/man5/chime.conf.5.gz \
  /usr/share/bash-completion/completions/chime /usr/share/doc/chime/examples/chime.conf; do
  [ -s "$f" ] || fail "$f is not installed"
done
man -w chime >/dev/null 2>&1 || fail "man -w chime finds no page"
bash -c '. /usr/share/bash-completion/completions/chime && complete -p chime' | grep -q _chime ||
  fail "the installed completion registers nothing"
chime check /usr/share/doc/chime/examples/chime.conf >"$work/check.txt" || {
  cat "$work/check.txt"
  fail "chime check of the installed example"
}
tail -n 1 "$work/check.txt"
echo "ok: man pages, bash completion and the example config are installed"

echo "== a program against the installed library"
flags=$(pkg-config --cflags --libs chime) || fail "pkg-config finds no chime"
echo "\$ cc app.c -o app \$(pkg-config --cflags --libs chime)    # $flags"
# shellcheck disable=SC2086
cc tests/install/consumer/app.c -o "$work/app" $flags || fail "cc app.c -o app $flags"
out=$(CHIME_CLOCK=virtual "$work/app") || fail "the program exited $?: $out"
[ "$out" = "chime $version: 3 runs" ] || fail "the program printed '$out'"
ldd "$work/app" | grep -q 'libchime\.so\.0 => /\(usr/\)\{0,1\}lib/[^/]*-linux-gnu/libchime\.so\.0 ' ||
  fail "the program does not load the installed libchime: $(ldd "$work/app" | grep libchime)"
echo "ok: $out"
if ! { cmake -S tests/install/consumer -B "$work/cmake" && cmake --build "$work/cmake"; } >"$work/cmake.log" 2>&1; then
  cat "$work/cmake.log"
  fail "find_package(chime) against the installed package"
fi
out=$(CHIME_CLOCK=virtual "$work/cmake/app") || fail "the find_package program exited $?: $out"
echo "ok: find_package(chime): $out"

echo "== apt-get purge $packages"
# shellcheck disable=SC2086
files=$(dpkg -L $packages | while read -r f; do [ -d "$f" ] || echo "$f"; done)
# shellcheck disable=SC2086
apt_get purge $packages >"$work/apt.log" 2>&1 || {
  cat "$work/apt.log"
  fail "apt-get purge"
}
grep -E '^(Removing|Purging) ' "$work/apt.log"
[ -z "$(installed)" ] || fail "still installed after the purge: $(installed)"
for f in $files; do
  [ ! -e "$f" ] || fail "$f is left after the purge"
done
echo "ok: purged, none of their $(echo "$files" | wc -l) files left"
echo "deb test: passed"
