#!/bin/sh
# Install the Debian packages qun needs, if missing.  `deps.sh run` (make run): what builds
# and runs qund and qun.  `deps.sh deb` (make deb): that and the Debian packaging tools.
# `deps.sh test` (make test, make bench): all of the above and what only the tests and
# benchmarks need.  The browser tests need Chromium, a CJK font for the Chinese pages, and
# Node with npm (Debian's nodejs package does not ship npm, so the npm package is added when
# npm is missing; each run.sh then installs its
# folder's npm packages with `npm ci` from its package-lock.json: playwright-core, and for
# tests/browser-matrix esbuild, hydrogen-view-sdk and matrix-js-sdk, which warns that it
# wants node 22 but bundles and runs under node 20).
# The Matrix tests drive real Matrix clients: matrix-nio, and weechat-matrix in tmux.
set -eu
what=${1:-test}
run="build-essential pkg-config libevent-dev libjansson-dev libsqlite3-dev libsodium-dev
libcurl4-openssl-dev sqlite3 libpq-dev liboath-dev libqrencode-dev
libarchive-dev libzstd-dev libssl-dev libicu-dev libsystemd-dev libfido2-dev libcbor-dev"
deb="debhelper lintian help2man fakeroot"
test="postgresql python3-pytest python3-pytest-timeout python3-pytest-xdist python3-requests python3-cryptography python3-yaml wrk
golang-go golang-golang-x-mod-dev chromium fonts-wqy-zenhei nodejs nginx-light age zstd time
clang libclang-rt-14-dev clang-format
python3-matrix-nio weechat-curses weechat-python weechat-matrix tmux python3-aiosmtpd"
case "$what" in
run) pkgs="$run" ;;
deb) pkgs="$run $deb" ;;
test)
  pkgs="$run $deb $test"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
  ;;
*)
  echo "usage: deps.sh [run|deb|test]" >&2
  exit 2
  ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
