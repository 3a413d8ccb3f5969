#!/bin/sh
# cross-test.sh - builds the library and tests/cross/selftest.c for aarch64
# with Debian's cross compiler and runs it under qemu-user, on both
# backends: the aarch64 context switch is tested on every CI run.
set -eu
cd "$(dirname "$0")/.."
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}
out=build-aarch64
mkdir -p $out
# every library source, and the aarch64 switch
src="$(ls src/*.c src/backend/*.c) src/coro/coro.c src/coro/ctx_aarch64.S"
# shellcheck disable=SC2086
$CC -std=c11 -O2 -g -static -Wall -Wextra -Wpedantic -Wshadow -Werror -Iinclude -Isrc \
  $src tests/cross/selftest.c -o $out/selftest -lpthread -lm
for backend in epoll poll; do
  CHIME_BACKEND=$backend $QEMU $out/selftest
done
