#!/bin/sh
# Installs Syncthing for the comparison bench (target/release/bench_syncthing;
# docs/benchmarks.md, "Against Syncthing (issue 28)"): Debian's package, 1.19 on
# bookworm. Not run by CI. Run as root or with sudo.
set -e
if command -v syncthing >/dev/null 2>&1; then
  syncthing --version
  exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get install -y syncthing || { $SUDO apt-get update && $SUDO apt-get install -y syncthing; }
syncthing --version
