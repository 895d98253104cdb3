#!/usr/bin/env bash
# CI for the Raspberry Pi builds (docs/hub.md, "Build for a Pi"), called by .ci/run:
# installs the Rust targets, Debian's cross linkers, qemu-user-static and cargo-deb if
# missing; builds aarch64 (release: one build for the package and the qemu tests) and
# armv7; runs the protocol tests of both under qemu-user and a three-node loopback mesh
# of the aarch64 binary under qemu-aarch64-static; builds the arm64 and amd64 packages
# and installs the amd64 one here (tests/pi/deb-check.sh). Needs root (apt, dpkg).
# Prints the time of each step; about 10 min on 2 cores from a cold target dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$SECONDS
step() { echo "== pi: $* (at $((SECONDS - start)) s)"; }
A64=aarch64-unknown-linux-gnu
ARM=armv7-unknown-linux-gnueabihf

step "toolchain: targets, cross linkers, qemu-user-static, systemd-analyze, cargo-deb"
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null || need+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v adduser >/dev/null || need+=(adduser)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target add "$A64" "$ARM"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

step "aarch64: release build and the arm64 Debian package"
cargo deb -p aidmesh --target "$A64"
ls -l target/debian/*_arm64.deb

step "aarch64: a three-node loopback mesh of the Pi binary under qemu"
AIDMESH_BIN="$PWD/target/$A64/release/aidmesh" \
AIDMESH_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu" \
  cargo test -p aidmesh-tests --test cross

step "aarch64: protocol tests under qemu (release, sharing the build above)"
cargo test --release -p aidmesh-protocol --target "$A64"

step "armv7: release build (32-bit Raspberry Pi OS)"
cargo build --release -p aidmesh --target "$ARM"
file "target/$ARM/release/aidmesh" 2>/dev/null || ls -l "target/$ARM/release/aidmesh"

step "armv7: protocol tests under qemu"
cargo test --release -p aidmesh-protocol --target "$ARM"

step "amd64: Debian package, installed on this machine and checked"
# From the dev-profile binary the test suite already built (optimised dependencies), to
# keep CI inside its budget: what is checked here is the packaging, not the compiler.
# A release package for amd64 is `cargo deb -p aidmesh` (docs/hub.md).
cargo deb -p aidmesh --profile dev
bash tests/pi/deb-check.sh "$(ls -t target/debian/aidmesh_*_amd64.deb | head -1)"

step "done"
