#!/usr/bin/env bash
# Release build of citygate for 64-bit ARM gateways, fully static (musl): runs on any aarch64
# Linux whatever its libc. Output: $CARGO_TARGET_DIR/aarch64-unknown-linux-musl/release/citygate
#
#   cross/aarch64-unknown-linux-musl.sh
#
# Installs what it needs on first use (zig from PyPI, cargo-zigbuild, the Rust target); see
# cross/README.md.
source "$(dirname "$0")/common.sh"
build_release aarch64-unknown-linux-musl >/dev/null
