#!/usr/bin/env bash
# citygate's whole test suite: formatting, lints, unit and integration tests, including the
# tests against real peers (ACME oneM2M CSE, pymodbus, mosquitto), which this script installs.
#
#   tests/run.sh            everything
#   tests/run.sh --quick    skip peer installation and the tests that need peers
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

if [ "$quick" -eq 0 ]; then
  step "installing test peers"
  # shellcheck source=tests/peers/install.sh
  source tests/peers/install.sh
  install_python_peers
  install_apt_peers
  # Tests that need a peer fail (instead of skipping) when it is missing.
  export CITYGATE_REQUIRE_PEERS=1
  step "cargo test (all tests, including those against real peers)"
  cargo test --all-targets --locked -- --include-ignored
else
  step "cargo test (hermetic tests only)"
  cargo test --all-targets --locked
fi
