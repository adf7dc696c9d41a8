# Shared helpers for the cross/ scripts. Sourced, not run.
#
# Tools, all installed on first use (idempotent; a second run only checks):
#   zig            PyPI package `ziglang` in a venv under $CROSS_TOOLS_DIR (default
#                  $CARGO_TARGET_DIR/cross-tools, i.e. target/cross-tools)
#   cargo-zigbuild `cargo install cargo-zigbuild --locked`
#   Rust targets   `rustup target add`
#   python3-venv   apt-get, only if `python3 -m venv` does not work (bare Debian 12)
#
# Environment knobs:
#   CARGO_TARGET_DIR   where cargo builds (default: <repo>/target)
#   CROSS_TOOLS_DIR    where the zig venv lives (default: $CARGO_TARGET_DIR/cross-tools)
#   ZIGLANG_VERSION    the ziglang version from PyPI (default below; checked with cargo-zigbuild 0.24)
#   CARGO_BUILD_JOBS   parallel jobs (cargo's own variable)

set -euo pipefail

CROSS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CROSS_DIR/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_DIR/target}"
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd)"
CROSS_TOOLS_DIR="${CROSS_TOOLS_DIR:-$CARGO_TARGET_DIR/cross-tools}"
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.15.2}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG... : installs Debian packages (needs root or sudo).
apt_install() {
  say "apt-get install $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_zig: a venv with ziglang; puts its bin/ first in PATH, so `python3 -m ziglang` (what
# cargo-zigbuild looks for first) is zig.
ensure_zig() {
  local venv="$CROSS_TOOLS_DIR/venv"
  if ! "$venv/bin/python3" -c 'import ziglang' >/dev/null 2>&1 \
    || [ "$("$venv/bin/python3" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
    command -v python3 >/dev/null || die "python3 is needed (apt-get install python3)"
    if [ ! -x "$venv/bin/pip" ]; then
      rm -rf "$venv"
      mkdir -p "$CROSS_TOOLS_DIR"
      if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        # Debian's python3 has no ensurepip without python3-venv.
        apt_install python3-venv
        python3 -m venv "$venv" || die "python3 -m venv failed"
      fi
    fi
    say "pip install ziglang==$ZIGLANG_VERSION (into $venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
  fi
  export PATH="$venv/bin:$PATH"
  say "zig $(python3 -m ziglang version) (PyPI ziglang, $venv)"
}

ensure_cargo_zigbuild() {
  # (`cargo zigbuild --version` is an error: ask the binary itself)
  if ! cargo-zigbuild --version >/dev/null 2>&1; then
    say "cargo install cargo-zigbuild --locked"
    cargo install cargo-zigbuild --locked
  fi
  say "$(cargo-zigbuild --version)"
}

# ensure_rust_target TRIPLE
ensure_rust_target() {
  command -v rustup >/dev/null || die "rustup is needed to add the Rust target $1"
  if ! rustup target list --installed | grep -qx "$1"; then
    say "rustup target add $1"
    rustup target add "$1"
  fi
}

# ensure_qemu NAME : qemu-NAME-static from Debian's qemu-user-static.
ensure_qemu() {
  if ! command -v "qemu-$1-static" >/dev/null 2>&1; then
    apt_install qemu-user-static
  fi
  command -v "qemu-$1-static" >/dev/null 2>&1 || die "qemu-$1-static missing after installing qemu-user-static"
}

# build_release TRIPLE [ZIG_TARGET] : cargo zigbuild --release; ZIG_TARGET may carry a glibc
# suffix (armv7-unknown-linux-gnueabihf.2.31). Prints the binary path on stdout.
build_release() {
  local triple="$1" zig_target="${2:-$1}" start end bin
  ensure_rust_target "$triple"
  ensure_cargo_zigbuild
  ensure_zig
  say "cargo zigbuild --release --locked --target $zig_target"
  start=$(date +%s)
  # Stripped here: the release profile keeps the symbol table for the native build, whose
  # functions build.rs orders (zig's linker cannot, so the symbols serve nothing here).
  (cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_STRIP=true \
    cargo zigbuild --release --locked --target "$zig_target" --bin citygate)
  end=$(date +%s)
  bin="$CARGO_TARGET_DIR/$triple/release/citygate"
  [ -x "$bin" ] || die "expected $bin after the build"
  say "build took $((end - start)) s"
  report_binary "$bin"
  printf '%s\n' "$bin"
}

# report_binary PATH : size (stripped by build_release) and ELF facts.
report_binary() {
  local bin="$1" bytes
  bytes=$(stat -c %s "$bin")
  if command -v file >/dev/null 2>&1; then
    say "$(file -b "$bin")"
  fi
  if python3 - "$bin" <<'EOF'
import sys
# Looks for a .symtab section: present means "not stripped".
d = open(sys.argv[1], "rb").read()
is64 = d[4] == 2
le = d[5] == 1
import struct
e = "<" if le else ">"
if is64:
    shoff, = struct.unpack_from(e + "Q", d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", d, 0x3A)
else:
    shoff, = struct.unpack_from(e + "I", d, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", d, 0x2E)
def sh(i):
    o = shoff + i * shentsize
    if is64:
        name, typ = struct.unpack_from(e + "II", d, o)
    else:
        name, typ = struct.unpack_from(e + "II", d, o)
    return name, typ
types = [sh(i)[1] for i in range(shnum)]
sys.exit(1 if 2 in types else 0)  # SHT_SYMTAB = 2
EOF
  then
    say "stripped binary: $bin"
  else
    say "WARNING: $bin still has a symbol table (build_release strips)"
  fi
  say "size: $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.2f MiB", b / 1048576 }'))"
}
