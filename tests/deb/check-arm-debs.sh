#!/usr/bin/env bash
# Builds the arm64 and armhf .deb and checks each with packaging/check-deb.sh (architecture,
# the exact file list, the conffile, the binary's ELF target), then runs the armhf binary from
# its package under qemu-arm as a smoke test. What CI runs after cross/test-aarch64.sh.
#
#   tests/deb/check-arm-debs.sh
#
# Cheap on purpose (CI time): neither package gets a release build here.
#   arm64  packages CITYGATE_ARM64_BINARY (default: target/aarch64-unknown-linux-musl/debug/
#          citygate, which cross/test-aarch64.sh has just built and tested under qemu); built
#          with `cargo zigbuild` (dev profile) only if it is missing.
#   armhf  builds only the citygate binary, dev profile (no optimisation, no LTO), against the
#          same glibc 2.31 symbol versions as cross/armv7-unknown-linux-gnueabihf.sh.
# The profile changes neither the ELF target, nor the libc linkage, nor the package layout,
# which is what is checked; packaging/build-deb.sh without CITYGATE_DEB_BINARY makes the release
# packages.
#
# The smoke test needs qemu-arm-static (qemu-user-static) and an armhf glibc to load the binary
# (libc6-armhf-cross, /usr/arm-linux-gnueabihf); both are installed with apt if missing.
# shellcheck source=cross/common.sh
source "$(dirname "$0")/../../cross/common.sh"
cd "$REPO_DIR" || exit 1

glibc="${GLIBC_VERSION:-2.31}"
armhf_triple=armv7-unknown-linux-gnueabihf
arm64_triple=aarch64-unknown-linux-musl
timings=()
timed() {
  local label="$1" start rc=0
  shift
  start=$(date +%s)
  "$@" || rc=$?
  timings+=("$(printf '%4d s  %s' "$(($(date +%s) - start))" "$label")")
  return "$rc"
}

# --- the binaries -------------------------------------------------------------------------------
ensure_rust_target "$armhf_triple"
ensure_cargo_zigbuild
ensure_zig
say "armhf: cargo zigbuild --target $armhf_triple.$glibc --bin citygate (dev profile)"
timed "armhf: build citygate (dev profile)" \
  cargo zigbuild --locked --target "$armhf_triple.$glibc" --bin citygate
armhf_bin="$CARGO_TARGET_DIR/$armhf_triple/debug/citygate"

arm64_bin="${CITYGATE_ARM64_BINARY:-$CARGO_TARGET_DIR/$arm64_triple/debug/citygate}"
if [ ! -x "$arm64_bin" ]; then
  ensure_rust_target "$arm64_triple"
  say "arm64: no $arm64_bin yet: cargo zigbuild --target $arm64_triple --bin citygate (dev profile)"
  timed "arm64: build citygate (dev profile)" \
    cargo zigbuild --locked --target "$arm64_triple" --bin citygate
  arm64_bin="$CARGO_TARGET_DIR/$arm64_triple/debug/citygate"
fi

# --- the packages -------------------------------------------------------------------------------
# build-deb.sh compresses a prebuilt binary's package with cargo-deb --fast.
build_deb() {
  CITYGATE_DEB_BINARY="$2" packaging/build-deb.sh "$1" >"$CARGO_TARGET_DIR/debian/build-$1.log" 2>&1 \
    || { cat "$CARGO_TARGET_DIR/debian/build-$1.log" >&2; die "packaging/build-deb.sh $1 failed"; }
  tail -n1 "$CARGO_TARGET_DIR/debian/build-$1.log"
}
mkdir -p "$CARGO_TARGET_DIR/debian"
start=$(date +%s)
arm64_deb="$(build_deb arm64 "$arm64_bin")"
timings+=("$(printf '%4d s  %s' "$(($(date +%s) - start))" "arm64: build-deb.sh (prebuilt binary)")")
start=$(date +%s)
armhf_deb="$(build_deb armhf "$armhf_bin")"
timings+=("$(printf '%4d s  %s' "$(($(date +%s) - start))" "armhf: build-deb.sh (prebuilt binary)")")

failed=0
timed "arm64: check-deb.sh" packaging/check-deb.sh "$arm64_deb" arm64 || failed=1
timed "armhf: check-deb.sh" packaging/check-deb.sh "$armhf_deb" armhf || failed=1

# --- smoke: the packaged armhf binary under qemu-arm ---------------------------------------------
smoke() {
  local sysroot=/usr/arm-linux-gnueabihf dir
  ensure_qemu arm
  [ -e "$sysroot/lib/ld-linux-armhf.so.3" ] || apt_install libc6-armhf-cross
  dir="$(mktemp -d)"
  dpkg-deb --fsys-tarfile "$armhf_deb" | tar -xC "$dir" ./usr/bin/citygate
  local run=(qemu-arm-static -L "$sysroot" "$dir/usr/bin/citygate")
  say "armhf: ${run[*]} --version"
  "${run[@]}" --version || { rm -rf "$dir"; return 1; }
  for cfg in config/citygate.toml config/packaged.toml; do
    say "armhf: citygate check -c $cfg"
    "${run[@]}" check -c "$cfg" || { rm -rf "$dir"; return 1; }
  done
  rm -rf "$dir"
}
timed "armhf: qemu-arm smoke (--version, check)" smoke || failed=1

say "timings"
printf '  %s\n' "${timings[@]}"
[ "$failed" -eq 0 ] || die "a .deb check failed (see above)"
say "arm64 and armhf packages checked: $arm64_deb $armhf_deb"
