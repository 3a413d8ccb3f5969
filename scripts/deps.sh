#!/bin/sh
# deps.sh - make sure the Debian packages a make target needs are installed.
#
#   scripts/deps.sh demo|test|deb|ci
#
# As root, installs what is missing (apt-get) and says which and why;
# otherwise prints the exact apt-get line and fails.  apt-get's own output
# goes to the file CHIME_LOG names (make's log), if it is set.
set -eu

need=""       # packages to install
why=""        # one line per package: what it is for

want() { # want PACKAGE PRESENT REASON
  if [ "$2" = no ]; then
    need="$need $1"
    why="$why
  $1: $3"
  fi
}
have_cmd() { command -v "$1" >/dev/null 2>&1 && echo yes || echo no; }
have_file() { [ -e "$1" ] && echo yes || echo no; }

target=${1:-demo}
want cmake "$(have_cmd cmake)" "configures the build"
want make "$(have_cmd make)" "drives the build"
want gcc "$(have_cmd gcc)" "compiles the library"
want libc6-dev "$(have_file /usr/include/stdio.h)" "C library headers"
want libuv1-dev "$(have_file /usr/include/uv.h)" "the example that runs chime inside libuv's loop links it"
want libsqlite3-dev "$(have_file /usr/include/sqlite3.h)" "the chime command keeps its history in SQLite"
want libinih-dev "$(have_file /usr/include/ini.h)" "the chime command reads its config file with inih"
want libmicrohttpd-dev "$(have_file /usr/include/microhttpd.h)" "the chime command serves metrics, health and its status page with libmicrohttpd"
want libpq-dev "$(have_file /usr/include/postgresql/libpq-fe.h)" "a fleet of chime daemons shares its schedule through PostgreSQL (libpq)"
case $target in
  demo)
    want curl "$(have_cmd curl)" "make demo reads the running chime's metrics with it"
    ;;
  test|ci)
    want libcmocka-dev "$(have_file /usr/include/cmocka.h)" "the unit-test framework the tests use"
    want postgresql "$(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && echo yes || echo no)" "the fleet's tests start PostgreSQL servers of their own"
    want faketime "$(have_file /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1)" "the fleet's tests set a node's clock wrong"
    want valgrind "$(have_file /usr/include/valgrind/valgrind.h)" "lets the library announce its stacks to Valgrind"
    want groff-base "$(have_cmd groff)" "a test renders the man pages, to catch their warnings"
    want prometheus "$(have_cmd promtool)" "promtool, Prometheus' own parser, checks the chime command's /metrics"
    want chromium "$(have_cmd chromium)" "the status page is tested in headless Chromium"
    want python3 "$(have_cmd python3)" "drives Chromium through its DevTools protocol in the status page's test"
    want pkgconf "$(have_cmd pkg-config)" "the install and package tests build programs with pkg-config"
    want systemd "$(have_cmd systemd-analyze)" "systemd-analyze verifies examples/chime.service"
    # Crontabs no one here wrote, read by the crontab tests (absent: skipped).
    want cron "$(have_file /etc/crontab)" "ships /etc/crontab, read by the crontab tests"
    want e2fsprogs "$(have_file /etc/cron.d/e2scrub_all)" "ships /etc/cron.d/e2scrub_all, read by the crontab tests"
    want sysstat "$(have_file /etc/cron.d/sysstat)" "ships /etc/cron.d/sysstat, read by the crontab tests"
    want php-common "$(have_file /etc/cron.d/php)" "ships /etc/cron.d/php, read by the crontab tests"
    want anacron "$(have_file /etc/cron.d/anacron)" "ships /etc/cron.d/anacron, read by the crontab tests"
    want popularity-contest "$(have_file /etc/cron.d/popularity-contest)" "ships /etc/cron.d/popularity-contest, read by the crontab tests"
    ;;
esac
case $target in
  deb|ci)
    want dpkg-dev "$(have_cmd dpkg-buildpackage)" "builds the Debian packages (make deb)"
    want debhelper "$(have_cmd dh)" "the packages' build rules (debian/rules) are debhelper's"
    want lintian "$(have_cmd lintian)" "checks the packages against Debian's policy"
    ;;
esac
case $target in
  ci)
    want clang "$(have_cmd clang)" "the second compiler CI keeps warning-free"
    want libclang-rt-14-dev "$(have_file /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.asan-x86_64.a)" "clang's sanitizer runtimes"
    want gcc-aarch64-linux-gnu "$(have_cmd aarch64-linux-gnu-gcc)" "cross-compiles the aarch64 context switch"
    want libc6-dev-arm64-cross "$(have_file /usr/aarch64-linux-gnu/include/stdio.h)" "the aarch64 C library to link the cross test with"
    want qemu-user "$(have_cmd qemu-aarch64)" "runs the aarch64 context-switch test"
    want bash-completion "$(have_file /usr/share/bash-completion/bash_completion)" "the completion is tested with it loaded too"
    ;;
esac

[ -z "$need" ] && exit 0
echo "chime: '$target' needs these Debian packages:$why"
if [ "$(id -u)" -eq 0 ]; then
  log=${CHIME_LOG:-/dev/stdout}
  echo "chime: installing them with apt-get (its output: ${CHIME_LOG:-below})"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends $need; } >>"$log" 2>&1; then
    [ -n "${CHIME_LOG:-}" ] && tail -n 20 "$CHIME_LOG"
    echo "chime: apt-get could not install:$need"
    exit 1
  fi
  echo "chime: installed:$need"
else
  echo "chime: not root; run:  sudo apt-get install -y$need"
  exit 1
fi
