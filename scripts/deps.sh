#!/bin/sh
# Install the Debian packages qun needs to build, test and benchmark, if missing.
# The browser tests need Chromium, a CJK font for the Chinese pages, and Node with npm
# (Debian's nodejs package does not ship npm, so the npm package is added when npm is missing).
# The Matrix tests drive real Matrix clients: matrix-nio, and weechat-matrix in tmux.
set -eu
pkgs="build-essential pkg-config libevent-dev libjansson-dev libsqlite3-dev libsodium-dev
libcurl4-openssl-dev sqlite3 postgresql libpq-dev python3-pytest python3-requests python3-cryptography python3-yaml wrk
golang-go golang-golang-x-mod-dev liboath-dev libqrencode-dev chromium fonts-wqy-zenhei nodejs
nginx-light
libarchive-dev libzstd-dev libssl-dev libicu-dev age zstd time
clang libclang-rt-14-dev clang-format
python3-matrix-nio weechat-curses weechat-python weechat-matrix tmux"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
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
