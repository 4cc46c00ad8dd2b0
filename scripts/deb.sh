#!/bin/sh
# Build the Debian package into build/: copies the source tree (what git tracks, and new
# files it does not ignore) to build/deb-src/qun-<version>/, runs dpkg-buildpackage there
# (its results land in the parent directory, build/deb-src/) and moves the .deb to build/.
# Prints the path of the .deb.  docs/package.md describes the package.
set -eu
cd "$(dirname "$0")/.."
version=$(dpkg-parsechangelog -S Version)
src=build/deb-src/qun-$version
# The copy keeps its objects between runs (-nc: no clean; cp -p keeps the times make compares).
rm -f build/deb-src/qun_* build/deb-src/*.changes build/deb-src/*.buildinfo
mkdir -p "$src"
git ls-files -co --exclude-standard -z | grep -zv '^build/' | xargs -0 cp -p --parents -t "$src"
# ...but dh's own stamps would skip the build step of a second run altogether: make, not
# dh, decides what is up to date.
rm -f "$src"/debian/debhelper-build-stamp "$src"/debian/*.debhelper.log
(cd "$src" && dpkg-buildpackage -us -uc -b -nc -jauto >../build.log 2>&1) || {
  tail -40 build/deb-src/build.log >&2
  exit 1
}
arch=$(dpkg --print-architecture)
mv "build/deb-src/qun_${version}_${arch}.deb" build/
echo "build/qun_${version}_${arch}.deb"
