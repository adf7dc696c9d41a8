#!/usr/bin/env bash
# Builds the citygate .deb with cargo-deb.
#
#   packaging/build-deb.sh [TARGET]
#
# TARGET (default amd64):
#   amd64 | x86_64-unknown-linux-gnu          native release build (cargo build)
#   arm64 | aarch64-unknown-linux-musl        cross/aarch64-unknown-linux-musl.sh (static)
#   armhf | armv7-unknown-linux-gnueabihf     cross/armv7-unknown-linux-gnueabihf.sh (glibc >= 2.31)
#
# Output: $CARGO_TARGET_DIR/debian/citygate_<version>-1_<arch>.deb (default target/debian/).
# Installs cargo-deb (`cargo install cargo-deb --locked`) if missing; the cross builds install
# their own tools (see cross/README.md). Needs [package.metadata.deb] in Cargo.toml.
#
# CITYGATE_DEB_BINARY=PATH packages that citygate binary instead of building one (e.g. the
# aarch64 binary the qemu test step already built; CI checks such a package's contents with
# packaging/check-deb.sh). It must be built for TARGET. Such a package is compressed with
# cargo-deb --fast (xz at its fastest level: a few seconds for an unstripped 70 MiB binary).
#
# What the package holds:
#   /usr/bin/citygate
#   /usr/lib/systemd/system/citygate.service      (enabled on install, started on upgrade only)
#   /usr/lib/sysusers.d/citygate.conf             (user citygate; postinst runs systemd-sysusers)
#   /usr/lib/tmpfiles.d/citygate.conf             (/var/lib/citygate, config mode 0640 root:citygate)
#   /etc/citygate/citygate.toml                   (conffile; from config/packaged.toml)
#   /usr/share/citygate/examples/sample-readings.jsonl
#   /usr/share/citygate/prometheus/citygate-alerts.yml (+ .test.yml), grafana/citygate-dashboard.json
#   /usr/share/doc/citygate/{README.md,copyright,config.md,metrics.md}, examples/*.toml
#   /usr/share/citygate/config.schema.json        (the config's JSON Schema, for editors)
# (the exact list, with modes: EXPECTED in packaging/check-deb.sh, which checks a built .deb)
# /var/lib/citygate is created by tmpfiles.d at install and by StateDirectory= at start.
#
# CITYGATE_DEB_BINARY=PATH: package this already built binary instead of making a release
# build (fast compression); the booted install test and the arm package checks use it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build-deb.sh: error: %s\n' "$*" >&2; exit 1; }

case "${1:-amd64}" in
  amd64 | x86_64-unknown-linux-gnu) triple="" arch=amd64 ;;
  arm64 | aarch64-unknown-linux-musl) triple=aarch64-unknown-linux-musl arch=arm64 ;;
  armhf | armv7-unknown-linux-gnueabihf) triple=armv7-unknown-linux-gnueabihf arch=armhf ;;
  -h | --help) sed -n '2,/^set -/{/^set -/!p}' "$0"; exit 0 ;;
  *) die "unknown target '$1' (amd64, arm64 or armhf)" ;;
esac
if [ -z "$triple" ] && [ "$(uname -m)" != x86_64 ]; then
  die "amd64 is built natively and this machine is $(uname -m)"
fi

cd "$repo"
grep -q '^\[package\.metadata\.deb\]' Cargo.toml \
  || die "Cargo.toml has no [package.metadata.deb] section (see packaging/README.md)"

if ! cargo deb --version >/dev/null 2>&1; then
  say "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi
say "$(cargo deb --version)"

# 1. The binary.
start=$(date +%s)
deb_target_dir="$CARGO_TARGET_DIR"
if [ -n "${CITYGATE_DEB_BINARY:-}" ]; then
  [ -x "$CITYGATE_DEB_BINARY" ] || die "CITYGATE_DEB_BINARY=$CITYGATE_DEB_BINARY is not an executable"
  # cargo-deb takes the binary from <target dir>[/<triple>]/release/: give it a target dir of
  # its own, so the real release output is never overwritten.
  deb_target_dir="$CARGO_TARGET_DIR/deb-prebuilt"
  bin="$deb_target_dir/${triple:+$triple/}release/citygate"
  mkdir -p "$(dirname "$bin")"
  ln -f "$CITYGATE_DEB_BINARY" "$bin" 2>/dev/null || cp -f "$CITYGATE_DEB_BINARY" "$bin"
  say "prebuilt binary: $CITYGATE_DEB_BINARY"
elif [ -z "$triple" ]; then
  say "cargo build --release --locked --bin citygate"
  cargo build --release --locked --bin citygate
  bin="$CARGO_TARGET_DIR/release/citygate"
  # Its hot functions are placed together (build.rs): not with a list gone stale.
  "$repo/cross/hot-functions-check.sh" --strict "$bin"
else
  "$repo/cross/$triple.sh"
  bin="$CARGO_TARGET_DIR/$triple/release/citygate"
fi
[ -x "$bin" ] || die "no binary at $bin"
say "binary built in $(($(date +%s) - start)) s"

# 2. The packaged config is config/packaged.toml (every adapter commented out); make sure it
#    passes the check the unit runs before every start.
if [ -z "$triple" ]; then
  "$bin" check -c config/packaged.toml >/dev/null || die "config/packaged.toml does not pass citygate check"
fi

# 3. The package. The native release build keeps its symbol table (Cargo.toml, build.rs):
#    cargo-deb strips it with the host's strip. The cross builds are stripped already, and a
#    prebuilt binary is packaged as it is: --no-strip avoids looking for a cross strip tool.
out="$CARGO_TARGET_DIR/debian"
mkdir -p "$out"
args=(--no-build --output "$out")
[ -z "$triple" ] && [ -z "${CITYGATE_DEB_BINARY:-}" ] || args+=(--no-strip)
[ -z "$triple" ] || args+=(--target "$triple")
[ "$arch" != armhf ] || args+=(--variant armhf) # its Depends: see Cargo.toml
# A prebuilt binary is a check build (e.g. an unstripped dev binary in CI): fast compression.
[ -z "${CITYGATE_DEB_BINARY:-}" ] || args+=(--fast)
say "cargo deb ${args[*]}"
deb="$(CARGO_TARGET_DIR="$deb_target_dir" cargo deb "${args[@]}" | tail -n1)"
[ -f "$deb" ] || die "cargo deb did not report a package file (got: $deb)"

say "$deb ($(stat -c %s "$deb") bytes)"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"
dpkg-deb --field "$deb" Architecture | grep -qx "$arch" || die "package architecture is not $arch"
echo "$deb"
