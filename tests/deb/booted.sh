#!/usr/bin/env bash
# Install, upgrade, downgrade and purge of the citygate .deb on a booted Debian 12 (systemd as
# PID 1, in qemu), with the records counted at a real ACME CSE on this machine.
#
#   tests/deb/booted.sh [--tcg]
#
#   --tcg   emulate the CPU even when /dev/kvm is usable (what a CI machine without KVM does)
#
# What it does (times of each phase are printed):
#   1. the guest image: tests/deb/image.sh (debootstrap, cached in target/boot-test/image-<hash>)
#   2. the previous package, 0.1.0 (buffer schema v2), from git history: commit $PREV_COMMIT,
#      built in the same target dir and packaged by its own [package.metadata.deb]; cached
#   3. the current package: the debug binary (stripped) through packaging/build-deb.sh
#      (CITYGATE_DEB_BINARY), to spare CI a release build
#   4. ACME on 127.0.0.1:<free port> (tests/peers/run-acme.sh); the guest reaches it as
#      10.0.2.100:8080 (qemu user networking, restrict=on, guestfwd through socat)
#   5. boots the guest; tests/deb/scenario.sh runs inside and prints EVIDENCE lines
#   6. counts the records at the CSE: every record buffered before the upgrade and before the
#      refused downgrade is there exactly once
#
# Needs root (debootstrap), git history back to $PREV_COMMIT (not a shallow clone), apt for the
# tools (qemu-system-x86, debootstrap, e2fsprogs, socat, curl) and the ACME venv
# (tests/peers/install.sh). See packaging/README.md, "The booted install test".
set -euo pipefail

PREV_COMMIT=abb5101bd44765cd90eeed0ace7f2a537790fd50 # last commit with buffer schema v2
PREV_VERSION=0.1.0-1
UPGRADE_RECORDS=20
RELOAD_RECORDS=5

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
tcg=0
for arg in "$@"; do
  case "$arg" in
    --tcg) tcg=1 ;;
    *) echo "usage: tests/deb/booted.sh [--tcg]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
work="$CARGO_TARGET_DIR/boot-test"
mkdir -p "$work"

say() { printf '\033[1m[booted]\033[0m %s\n' "$*"; }
die() { printf 'booted.sh: FAIL: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)
lap=$started
timing() {
  local now
  now=$(date +%s)
  say "TIME $1: $((now - lap)) s"
  lap=$now
}

# --- tools ---------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, loop-free ext4 images are built as root)"
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v mke2fs >/dev/null || missing+=(e2fsprogs)
command -v socat >/dev/null || missing+=(socat)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  say "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi
git cat-file -e "$PREV_COMMIT^{commit}" 2>/dev/null \
  || die "commit $PREV_COMMIT (the previous package version) is not in this clone: fetch the history (git fetch --unshallow)"
timing "tools"

# --- 1. the guest --------------------------------------------------------------------------------
image="$work/image-$(sha256sum "$here/image.sh" | cut -c1-12)"
for old in "$work"/image-*; do
  [ "$old" = "$image" ] || [ ! -d "$old" ] || rm -rf "$old"
done
"$here/image.sh" "$image"
timing "guest image"

# --- 2. the previous package ---------------------------------------------------------------------
# Packaged once per commit: built with its own Cargo.lock into the shared target dir, then the
# current binary is rebuilt (cargo puts both at target/debug/citygate).
strip_to() { mkdir -p "$(dirname "$2")" && objcopy --strip-all "$1" "$2"; }
prev_dir="$work/prev-${PREV_COMMIT:0:12}"
prev_deb="$prev_dir/citygate_${PREV_VERSION}_amd64.deb"
if [ ! -f "$prev_deb" ]; then
  rm -rf "$prev_dir"
  mkdir -p "$prev_dir/src"
  git archive "$PREV_COMMIT" | tar -x -C "$prev_dir/src"
  say "building citygate at $PREV_COMMIT (previous version)"
  (cd "$prev_dir/src" && cargo build --locked --bin citygate)
  strip_to "$CARGO_TARGET_DIR/debug/citygate" "$prev_dir/stage/release/citygate"
  (cd "$prev_dir/src" && CARGO_TARGET_DIR="$prev_dir/stage" cargo deb --no-build --no-strip --fast --output "$prev_dir" >/dev/null)
  [ -f "$prev_deb" ] || die "the previous package did not come out as $prev_deb"
  rm -rf "$prev_dir/src" "$prev_dir/stage"
fi
timing "previous package ($(basename "$prev_deb"))"

# --- 3. the current package ----------------------------------------------------------------------
cargo build --locked --bin citygate
cur_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)-1"
built="$("$CARGO_TARGET_DIR/debug/citygate" version | sed -n 1p)"
[ "$built" = "citygate ${cur_version%-1}" ] \
  || die "target/debug/citygate is '$built', not the current version ${cur_version%-1}"
dpkg --compare-versions "$cur_version" gt "$PREV_VERSION" \
  || die "Cargo.toml's version ($cur_version) must be newer than the previous package's ($PREV_VERSION)"
strip_to "$CARGO_TARGET_DIR/debug/citygate" "$work/current/citygate"
cur_deb="$(CITYGATE_DEB_BINARY="$work/current/citygate" packaging/build-deb.sh 2>/dev/null | tail -n1)"
[ -f "$cur_deb" ] || die "packaging/build-deb.sh did not produce a package"
timing "current package ($(basename "$cur_deb"))"

# The guest image has CA roots and procps (a gateway's base system); 0.1.0 did not depend on
# them, the current package does.
for dep in ca-certificates procps; do
  dpkg-deb -f "$cur_deb" Depends | grep -q "$dep" || die "the package does not depend on $dep"
done

# --- 4. the CSE ----------------------------------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
run="$work/run"
rm -rf "$run"
mkdir -p "$run/disk"
tests/peers/run-acme.sh "$port" >"$run/acme.log" 2>&1 &
acme_pid=$!
qemu_pid=""
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  kill "$acme_pid" 2>/dev/null || true
}
trap cleanup EXIT
cse() { # PATH_AND_QUERY: GET as the CSE's admin
  curl -fsS -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: boottest' -H 'X-M2M-RVI: 3' \
    -H 'Accept: application/json' "http://127.0.0.1:$port/$1"
}
for _ in $(seq 1 300); do
  cse cse-in >/dev/null 2>&1 && break
  kill -0 "$acme_pid" 2>/dev/null || { cat "$run/acme.log" >&2; die "ACME exited"; }
  sleep 0.2
done
cse cse-in >/dev/null || die "ACME did not answer on 127.0.0.1:$port within 60 s"
timing "ACME CSE on 127.0.0.1:$port"

# --- 5. the guest run ----------------------------------------------------------------------------
cp "$here/scenario.sh" "$prev_deb" "$cur_deb" "$run/disk/"
cat >"$run/disk/params" <<EOF
PREV_DEB=$(basename "$prev_deb")
PREV_VERSION=$PREV_VERSION
CUR_DEB=$(basename "$cur_deb")
CUR_VERSION=$cur_version
UPGRADE_RECORDS=$UPGRADE_RECORDS
RELOAD_RECORDS=$RELOAD_RECORDS
EOF
mke2fs -q -t ext4 -L boottest -d "$run/disk" "$run/disk.img" "$(($(du -sm "$run/disk" | cut -f1) + 16))M"

# KVM needs the CPU's virtualisation extensions: a /dev/kvm without vmx/svm in the CPU flags
# (e.g. a paravirtual KVM inside a sandbox) cannot boot a stock Debian kernel.
accel=(-accel tcg -cpu max)
mode=TCG
if [ "$tcg" -eq 0 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
  accel=(-accel kvm -cpu host)
  mode=KVM
fi
say "booting Debian 12 ($mode); guest log: $run/scenario.log, console: $run/console.log"
timeout 900 qemu-system-x86_64 "${accel[@]}" -m 1024 -smp 2 -nodefaults -display none -no-reboot \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=error" \
  -drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
  -drive "file=$run/disk.img,format=raw,if=virtio,readonly=on" \
  -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:$port" \
  -device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
  -serial "file:$run/console.log" -serial "file:$run/scenario.log" &
qemu_pid=$!
set +e
wait "$qemu_pid"
qemu_rc=$?
set -e
qemu_pid=""
grep -v '^    apt: \(Reading\|Building\|Selecting\|Preparing\|(Reading\)' "$run/scenario.log" | tr -d '\r' || true
if ! grep -q '^BOOTTEST RESULT PASS' "$run/scenario.log"; then
  echo "--- guest console (last 30 lines)"
  tail -n 30 "$run/console.log"
  die "the scenario in the guest did not pass (qemu exit $qemu_rc)"
fi
timing "guest boot + scenario + power-off ($mode)"

# --- 6. the records at the CSE -------------------------------------------------------------------
# Discovery of every contentInstance under the gateway's AE: rn = <buffer epoch>-<seq>.
cins="$(cse 'cse-in/cab17?fu=1&ty=4' | grep -o '"cse-in/cab17/[^"]*"' | tr -d '"' || true)"
count() { printf '%s\n' "$cins" | grep -c "^cse-in/cab17/$1/" || true; }
up=$(count cab-upgrade)
re=$(count cab-reload)
epochs=$(printf '%s\n' "$cins" | sed -n 's|^cse-in/cab17/[^/]*/\([^-/]*\)-[0-9]*$|\1|p' | sort -u | paste -sd' ')
echo "EVIDENCE at the CSE: cab-upgrade $up contentInstances (buffered by $PREV_VERSION before the upgrade), cab-reload $re (buffered before the refused downgrade), buffer epoch(s): $epochs"
[ "$up" -eq "$UPGRADE_RECORDS" ] || die "the CSE holds $up records of cab-upgrade, expected $UPGRADE_RECORDS"
[ "$re" -eq "$RELOAD_RECORDS" ] || die "the CSE holds $re records of cab-reload, expected $RELOAD_RECORDS"
[ "$(printf '%s\n' "$epochs" | wc -w)" -eq 1 ] || die "records from more than one buffer epoch: $epochs"
timing "count at the CSE"
say "PASS in $(($(date +%s) - started)) s ($mode)"
