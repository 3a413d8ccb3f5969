#!/bin/sh
# deb.sh - the Debian packages libchime0, libchime-dev and chime, built by
# dpkg-buildpackage from debian/ (debhelper's dh, with CMake), as `make deb`
# runs it:
#
#   scripts/deb.sh [OUT]      (OUT: build-deb)
#
# It builds in a copy of the tree under OUT, so that the work tree stays
# clean (dh builds in obj-*/ and debian/<package>/, and dpkg-buildpackage
# writes the packages beside the source): the packages, the .changes and
# the .buildinfo end up in OUT, the build's output in OUT/build.log.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build-deb}

version=$(dpkg-parsechangelog -S Version)
cmake_version=$(sed -n 's/^project(chime VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$version" != "$cmake_version" ]; then
  echo "deb: debian/changelog says $version, CMakeLists.txt $cmake_version: add a changelog entry (dch -v $cmake_version)"
  exit 1
fi

rm -rf "$out"
src=$out/src/chime-$version
mkdir -p "$src"
# The tree as it is now: what git tracks and new files it does not ignore
# (or, outside a git checkout, everything but the build trees).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$src"
else
  tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$src"
fi

echo "deb: building chime $version with dpkg-buildpackage (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -j2) >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log"
  echo "deb: dpkg-buildpackage failed; the whole log is $out/build.log"
  exit 1
fi
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"
for deb in "$out"/*.deb; do
  echo "deb: $deb"
done
