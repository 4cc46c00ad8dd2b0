#!/bin/sh
# Install the Debian packages qun needs to build, test and benchmark, if missing.
set -eu
pkgs="build-essential pkg-config libevent-dev libjansson-dev libsqlite3-dev libsodium-dev
libcurl4-openssl-dev sqlite3 python3-pytest python3-requests python3-cryptography python3-yaml wrk
golang-go golang-golang-x-mod-dev liboath-dev libqrencode-dev"
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
