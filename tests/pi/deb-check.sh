#!/usr/bin/env bash
# Checks a Debian package of aidmesh on this machine (root, no running systemd needed):
# installs it, checks the binary, the unit (systemd-analyze verify), the user and
# /etc/default/aidmesh, then walks the hub set-up of docs/hub.md without systemd:
# `aidmesh init` as root finds /var/lib/aidmesh by itself, the node runs as the
# `aidmesh` user as the unit would, `aidmesh status` finds it; finally `dpkg -r`.
#
#   bash tests/pi/deb-check.sh target/debian/aidmesh_0.1.0-1_amd64.deb
set -euo pipefail

deb=${1:?usage: deb-check.sh PATH/aidmesh_VERSION_ARCH.deb}
[ "$(id -u)" = 0 ] || { echo "deb-check.sh needs root (dpkg -i)" >&2; exit 1; }
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }

echo "-- package contents"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"

# Leave a machine that already had a hub alone: the walk-through below makes one.
fresh=1
if [ -e /var/lib/aidmesh ] || getent passwd aidmesh >/dev/null; then fresh=0; fi

echo "-- dpkg -i"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  dpkg -r aidmesh >/dev/null 2>&1 || true
  if [ "$fresh" = 1 ]; then
    dpkg --purge aidmesh >/dev/null 2>&1 || true
    rm -rf /var/lib/aidmesh
    deluser --quiet --system aidmesh >/dev/null 2>&1 || userdel aidmesh 2>/dev/null || true
    getent group aidmesh >/dev/null && groupdel aidmesh 2>/dev/null || true
  fi
}
trap cleanup EXIT

/usr/bin/aidmesh --version || fail "/usr/bin/aidmesh does not run"
unit=
for d in /usr/lib/systemd/system /lib/systemd/system; do
  [ -f "$d/aidmesh.service" ] && unit="$d/aidmesh.service" && break
done
[ -n "$unit" ] || fail "aidmesh.service is not installed"
echo "unit: $unit"
grep -q '^User=aidmesh$' "$unit" || fail "the unit does not run as the aidmesh user"
grep -q '^StateDirectory=aidmesh$' "$unit" || fail "the unit has no StateDirectory"
grep -q '^AIDMESH_DIR=/var/lib/aidmesh$' /etc/default/aidmesh || fail "/etc/default/aidmesh lacks AIDMESH_DIR"
getent passwd aidmesh >/dev/null || fail "postinst did not create the aidmesh user"
[ "$(stat -c %U:%a /var/lib/aidmesh)" = "aidmesh:750" ] || fail "/var/lib/aidmesh is $(stat -c %U:%a /var/lib/aidmesh)"
[ -L /etc/systemd/system/multi-user.target.wants/aidmesh.service ] || fail "the unit is not enabled for boot"

if command -v systemd-analyze >/dev/null; then
  echo "-- systemd-analyze verify"
  # Without a running systemd, verify still parses the unit and checks its binaries.
  out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
  echo "${out:-ok}"
  # Only the absence of a running manager may be reported, nothing about the unit.
  if echo "$out" | grep -v -i -e 'bus' -e 'dbus' -e 'not booted' -e 'Failed to connect' -e '^$' | grep -i 'aidmesh'; then
    fail "systemd-analyze verify found problems in the unit"
  fi
else
  echo "-- systemd-analyze not available: unit not verified"
fi

if [ "$fresh" = 1 ]; then
  echo "-- hub set-up as in docs/hub.md, without systemd"
  home=$(mktemp -d)
  # A root with no node of its own: the command finds the hub's directory.
  env -u XDG_DATA_HOME HOME="$home" aidmesh init --community "Deb check" | tee "$home/init.out"
  grep -q "Node created in /var/lib/aidmesh" "$home/init.out" || fail "init did not use /var/lib/aidmesh"
  grep -q "sudo systemctl enable --now aidmesh" "$home/init.out" || fail "init did not point at the unit"
  [ -f /var/lib/aidmesh/community.card ] || fail "no community card: the unit's condition would never hold"
  # What the unit does: hand the files to the user, run `up` as that user.
  chown -R aidmesh:aidmesh /var/lib/aidmesh
  setpriv --reuid aidmesh --regid aidmesh --init-groups env -i AIDMESH_DIR=/var/lib/aidmesh \
    /usr/bin/aidmesh up --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --no-mdns \
    >"$home/up.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 100); do
    [ -s /var/lib/aidmesh/api.addr ] && env -u XDG_DATA_HOME HOME="$home" aidmesh status >"$home/status.out" 2>&1 && break
    sleep 0.2
  done
  cat "$home/status.out" || true
  grep -q "community  Deb check" "$home/status.out" || { cat "$home/up.log"; fail "aidmesh status did not reach the hub"; }
  grep -q "^disk " "$home/status.out" || fail "status shows no disk line"
  kill -INT "$node_pid"; wait "$node_pid" || fail "the node did not stop cleanly on SIGINT (the unit's KillSignal)"
  node_pid=
  rm -rf "$home"
fi

echo "-- dpkg -r"
dpkg -r aidmesh
[ ! -e /usr/bin/aidmesh ] || fail "/usr/bin/aidmesh left after dpkg -r"
[ ! -e "$unit" ] || fail "$unit left after dpkg -r"
[ -f /etc/default/aidmesh ] || fail "dpkg -r removed the settings (a conffile: only a purge should)"
if [ "$fresh" = 1 ]; then
  echo "-- dpkg --purge"
  dpkg --purge aidmesh
  [ ! -e /etc/default/aidmesh ] || fail "/etc/default/aidmesh left after a purge"
fi
echo "deb-check: $(basename "$deb") OK"
