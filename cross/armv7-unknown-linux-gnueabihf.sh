#!/usr/bin/env bash
# Release build of citygate for 32-bit ARMv7 gateways (hard float), dynamically linked against
# glibc, with glibc symbol versions capped at 2.31 (Debian 11 / Ubuntu 20.04 and newer).
# Output: $CARGO_TARGET_DIR/armv7-unknown-linux-gnueabihf/release/citygate
#
#   cross/armv7-unknown-linux-gnueabihf.sh
#
# GLIBC_VERSION=2.28 to go lower (Debian 10). Installs what it needs on first use; see
# cross/README.md.
source "$(dirname "$0")/common.sh"
glibc="${GLIBC_VERSION:-2.31}"
bin="$(build_release armv7-unknown-linux-gnueabihf "armv7-unknown-linux-gnueabihf.$glibc")"
# Highest GLIBC_x.y symbol version the binary needs (must be <= $glibc).
need="$(grep -aoE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' "$bin" | sort -t. -k2,2n -k3,3n -u | tail -n1)"
say "needs at most $need (target glibc $glibc)"
