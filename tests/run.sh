#!/usr/bin/env bash
# citygate's whole test suite: formatting, lints, unit and integration tests, the tests against
# real peers (ACME oneM2M CSE, pymodbus, mosquitto, BlueZ on dbusmock, Prometheus), the systemd
# unit checks and the aarch64 test suite under qemu. Installs what it needs, idempotently.
#
#   tests/run.sh            everything (what CI runs)
#   tests/run.sh --quick    fmt, clippy and the hermetic tests only (no installs)
#   tests/run.sh --no-arm   everything but the aarch64 build and qemu run
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
arm=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-arm) arm=0 ;;
    *) echo "usage: tests/run.sh [--quick] [--no-arm]" >&2; exit 2 ;;
  esac
done

step() {
  printf '\n\033[1m==> %s\033[0m\n' "$*"
  # Disk is the scarce thing on small CI machines: say what is left at every step.
  df -h --output=avail,target . 2>/dev/null | tail -n 1 | awk '{print "    (disk: " $1 " free)"}' || true
}
# A run of the whole suite builds everything once: incremental state would only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
started=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (hermetic: unit tests, in-process peers, buffer crash/bound tests)"
cargo test --all-targets --locked

if [ "$quick" -eq 1 ]; then
  step "done (--quick) in $(($(date +%s) - started)) s"
  exit 0
fi

step "installing test peers"
# shellcheck source=tests/peers/install.sh
source tests/peers/install.sh
install_python_peers
install_apt_peers
install_node_peers

# Tests that need a peer fail (instead of skipping) when it is missing. They run one at a time:
# each starts its own CSE/broker/simulator, and ACME is CPU-bound.
export CITYGATE_REQUIRE_PEERS=1
step "cargo test -- --ignored (against real peers)"
cargo test --all-targets --locked -- --ignored --test-threads=1

step "systemd unit: verify, security score, sysusers/tmpfiles"
systemd/check.sh target/debug/citygate

step "deb: install, upgrade, downgrade and purge on a booted Debian 12 (qemu, systemd as PID 1)"
tests/deb/booted.sh

if [ "$arm" -eq 1 ]; then
  step "aarch64: build the hermetic test suite and run it under qemu"
  binfmt=()
  [ "$(id -u)" -eq 0 ] && binfmt=(--binfmt)
  cross/test-aarch64.sh "${binfmt[@]}"

  step "arm64 and armhf .deb: build, check architecture, files and ELF target; armhf under qemu-arm"
  tests/deb/check-arm-debs.sh
fi

step "all tests passed in $(($(date +%s) - started)) s"
