#!/bin/sh
# install.sh - a real install of a build tree into a temporary prefix, moved
# elsewhere after, then used the three ways README's "Using the library"
# gives: pkg-config, CMake's find_package, and a plain -lchime.  Each
# program must load the library of that prefix and print its line; the
# installed chime must start; its man pages and bash completion must be
# there.  ctest runs it (label install):
#
#   install.sh BUILD_DIR LIBDIR CC VERSION WITH_CLI(ON|OFF) [CFLAGS]
#
# CFLAGS are the build's sanitizer flags: a program linking a library
# built with AddressSanitizer is built with it too.
set -eu
build=$1 libdir=$2 cc=$3 version=$4 with_cli=$5 cflags=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/staged" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  exit 1
}
# Nothing installed may depend on the prefix it was installed at.
mv "$work/staged" "$work/prefix"
P=$work/prefix
echo "installed into a temporary prefix, then moved to $P"

fail() {
  echo "FAIL: $*"
  exit 1
}
# expect HOW PROGRAM: it loads libchime from $P and prints its line.
expect() {
  lib=$(ldd "$2" | sed -n 's/.*libchime\.so\.[0-9]* => \([^ ]*\).*/\1/p')
  case $lib in
    "$P"/*) ;;
    *) fail "$1: the program loads libchime from '$lib', not from $P" ;;
  esac
  out=$(CHIME_CLOCK=virtual "$2") || fail "$1: the program exited $?: $out"
  [ "$out" = "chime $version: 3 runs" ] || fail "$1: the program printed '$out'"
  echo "ok: $1: $out"
}

# 1. pkg-config
PKG_CONFIG_PATH=$P/$libdir/pkgconfig
export PKG_CONFIG_PATH
got=$(pkg-config --modversion chime) || fail "pkg-config finds no chime in $PKG_CONFIG_PATH"
[ "$got" = "$version" ] || fail "pkg-config --modversion chime: $got"
# shellcheck disable=SC2046,SC2086
$cc $cflags "$here/consumer/app.c" -o "$work/app-pkg-config" $(pkg-config --cflags --libs chime) \
  -Wl,-rpath,"$(pkg-config --variable=libdir chime)"
expect pkg-config "$work/app-pkg-config"

# 2. CMake's find_package
if ! { cmake -S "$here/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$cflags" && cmake --build "$work/cmake"; } >"$work/cmake.log" 2>&1; then
  cat "$work/cmake.log"
  fail "find_package(chime)"
fi
expect find_package "$work/cmake/app"

# 3. a plain -lchime
# shellcheck disable=SC2086
$cc $cflags "$here/consumer/app.c" -o "$work/app-plain" -I"$P/include" -L"$P/$libdir" -lchime -Wl,-rpath,"$P/$libdir"
expect -lchime "$work/app-plain"

# The command, its man pages and its completion.
if [ "$with_cli" = ON ]; then
  out=$("$P/bin/chime" --version) || fail "$P/bin/chime --version exited $?"
  [ "$out" = "chime $version" ] || fail "chime --version printed '$out'"
  echo "ok: $P/bin/chime --version: $out"
  for f in share/man/man1/chime.1 share/man/man5/chime.conf.5 share/bash-completion/completions/chime; do
    [ -s "$P/$f" ] || fail "$f is not installed"
  done
  echo "ok: man pages and bash completion installed"
fi
