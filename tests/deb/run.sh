#!/bin/sh
# The Debian package end to end (docs/package.md): build it (make deb), check it with
# lintian, install it into a throwaway root with dpkg --root, verify its systemd unit with
# systemd-analyze (verify, and the offline security score), run the packaged qund with the
# packaged config (paths moved into the root, a free loopback port) as the package's qun
# user, with a NOTIFY_SOCKET (tests/deb/serve.py), then remove and purge the package and
# check the data stays.  Where systemd is PID 1 the unit itself could be started; this
# test never touches the machine's own systemd or dpkg database.
set -eu
cd "$(dirname "$0")/../.."
REPO=$PWD
say() { echo "test-deb: $*"; }
fail() {
  echo "test-deb: FAIL: $*" >&2
  exit 1
}

deb=$(sh scripts/deb.sh)
say "built $deb"

# lintian: no tag at any level, informational and pedantic included (debian/qun.lintian-overrides
# gives the reason for each one overridden).
lrc=0
lintian --fail-on error,warning,info,pedantic -I --pedantic "$deb" >build/lintian.log 2>&1 || lrc=$?
grep -v 'running with root privileges' build/lintian.log || true
[ "$lrc" -eq 0 ] || fail "lintian reports tags (build/lintian.log)"
say "lintian: clean (-I --pedantic)"

R=$(mktemp -d /tmp/qun-deb-root.XXXXXX)
trap 'rm -rf "$R"' EXIT
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
# The root holds only this package: its libraries are the machine's, and the maintainer
# scripts run outside the root with DPKG_ROOT set (systemd-sysusers, systemd-tmpfiles and
# deb-systemd-helper work inside $DPKG_ROOT).
DPKG="dpkg --root=$R --force-not-root --force-script-chrootless --force-depends --log=/dev/null"
$DPKG -i "$deb" >"$R.install.log" 2>&1 || {
  cat "$R.install.log"
  fail "dpkg -i"
}
rm -f "$R.install.log"
[ -x "$R/usr/sbin/qund" ] && [ -x "$R/usr/bin/qun" ] || fail "binaries missing"
[ -f "$R/usr/share/qun/web/index.html" ] && [ -f "$R/usr/share/qun/policies/kinds.json" ] || fail "web or policies missing"
grep -q '^/etc/qun/qund.conf$' "$R/var/lib/dpkg/info/qun.conffiles" || fail "qund.conf is not a conffile"
[ -f "$R/usr/share/man/man8/qund.8.gz" ] && [ -f "$R/usr/share/man/man1/qun.1.gz" ] || fail "man pages missing"
line=$(grep '^qun:' "$R/etc/passwd") || fail "no qun user in the root's /etc/passwd"
uid=$(echo "$line" | cut -d: -f3)
gid=$(echo "$line" | cut -d: -f4)
[ "$(stat -c %u:%a "$R/var/lib/qun")" = "$uid:750" ] || fail "/var/lib/qun is not the qun user's, mode 0750"
[ -L "$R/etc/systemd/system/multi-user.target.wants/qund.service" ] || fail "qund.service is not enabled"
say "installed into $R: qun user $uid, /var/lib/qun 0750, qund.service enabled, conffile, man pages"

# systemd-analyze verify resolves what the unit names inside the root: the targets and
# /bin/kill come from this machine (the root holds only the package).
mkdir -p "$R/bin"
cp /bin/kill "$R/bin/kill"
for u in /lib/systemd/system/*.target /lib/systemd/system/*.slice; do
  [ -e "$R/etc/systemd/system/${u##*/}" ] || cp "$u" "$R/etc/systemd/system/"
done
systemd-analyze verify --man=no --root="$R" qund.service || fail "systemd-analyze verify"
say "systemd-analyze verify qund.service: no complaint"
if systemd-analyze security --offline=yes --root="$R" qund.service >"$R.security" 2>&1; then
  say "systemd-analyze security --offline=yes: $(grep 'Overall exposure' "$R.security" | sed 's/.*: //')"
else
  say "systemd-analyze security --offline=yes is not available here: $(tail -1 "$R.security")"
fi
rm -f "$R.security"
if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
  say "note: systemd is PID 1 here, but this test leaves the machine's systemd alone"
else
  say "systemd is not PID 1 ($(ps -p 1 -o comm=)): qund runs with the packaged config below"
fi

# The packaged config with its paths moved into the root, on a free loopback port.
port=$(python3 tests/api/free_port.py)
sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" -e "s|/var/lib/qun|$R/var/lib/qun|" \
  -e "s|/usr/share/qun|$R/usr/share/qun|" "$R/etc/qun/qund.conf" >"$R/etc/qun/qund.test.conf"
set -- "$R/usr/sbin/qund" --config "$R/etc/qun/qund.test.conf" --set argon2_memlimit_kib=64
if [ "$(id -u)" -eq 0 ]; then # as the package's qun user, as the unit runs it
  chmod 0755 "$R"
  set -- setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
fi
python3 tests/deb/serve.py "$port" "$@" || fail "the packaged qund"
[ -f "$R/var/lib/qun/qun.db" ] && [ -f "$R/var/lib/qun/ledger.key" ] || fail "no data in /var/lib/qun"
[ "$(stat -c %u "$R/var/lib/qun/qun.db")" = "$(id -u)" ] || [ "$(stat -c %u "$R/var/lib/qun/qun.db")" = "$uid" ] ||
  fail "qun.db has an unexpected owner"

# Remove, then purge: the data stays either way (dpkg never owned /var/lib/qun's files).
$DPKG -r qun >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e "$R/usr/sbin/qund" ] || fail "qund left after removal"
[ -f "$R/etc/qun/qund.conf" ] || fail "the conffile went with dpkg -r"
$DPKG --purge qun >/dev/null 2>&1 || fail "dpkg --purge"
[ ! -e "$R/etc/qun/qund.conf" ] || fail "the conffile stayed after purge"
[ -f "$R/var/lib/qun/qun.db" ] && [ -f "$R/var/lib/qun/ledger.key" ] || fail "the data went with the package"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/qund.service" ] || fail "qund.service still enabled after purge"
say "removed and purged: qund gone, conffile gone on purge, /var/lib/qun/qun.db and ledger.key kept"
say "passed"
