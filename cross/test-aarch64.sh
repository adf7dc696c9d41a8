#!/usr/bin/env bash
# Builds citygate's hermetic test suite for aarch64-unknown-linux-musl and runs it under
# qemu-aarch64-static (Debian qemu-user-static) through cargo's runner variable
# CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER. Tests that need real peers are #[ignore]d and
# stay skipped, as in a plain `cargo test`.
#
#   cross/test-aarch64.sh            run what can run in this environment (see below)
#   cross/test-aarch64.sh --binfmt   (root) register qemu-aarch64 with binfmt_misc for the run,
#                                    so tests that spawn aarch64 processes work too; the
#                                    registration is removed again at the end if this script
#                                    made it
#
# What runs: cargo runs each test binary as `qemu-aarch64-static <test binary>`. Some tests
# spawn a process themselves (tests/config_check.rs runs the citygate binary via
# env!("CARGO_BIN_EXE_citygate"); tests/buffer_crash.rs re-executes itself via current_exe()
# to kill -9 a writer). Inside qemu-user that execve() of an aarch64 ELF goes to the host kernel,
# which only runs it if binfmt_misc has a qemu-aarch64 entry; otherwise it fails with ENOEXEC
# ("Exec format error"). So the script checks whether an aarch64 binary can be exec'd directly:
#   - yes (binfmt registered): every test target runs;
#   - no: the library and binary unit tests run, plus every integration test file under tests/
#     that does not spawn processes (no CARGO_BIN_EXE_ / current_exe() in it); the others are
#     listed as skipped.
# Doc tests are not run (host only).
#
# Extra arguments after `--` go to the test binaries (e.g. -- --test-threads=1).
source "$(dirname "$0")/common.sh"

triple=aarch64-unknown-linux-musl
binfmt=0
test_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binfmt) binfmt=1 ;;
    --) shift; test_args=("$@"); break ;;
    *) die "unknown argument $1 (usage: $0 [--binfmt] [-- TEST ARGS])" ;;
  esac
  shift
done

ensure_rust_target "$triple"
ensure_cargo_zigbuild
ensure_zig
ensure_qemu aarch64
qemu="$(command -v qemu-aarch64-static)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER="$qemu"
say "runner: $qemu ($("$qemu" --version | head -n1))"

# --- optional binfmt_misc registration (root only) ----------------------------------------------
binfmt_dir=/proc/sys/fs/binfmt_misc
registered_here=0
mounted_here=0
cleanup() {
  if [ "$registered_here" -eq 1 ] && [ -e "$binfmt_dir/qemu-aarch64" ]; then
    echo -1 >"$binfmt_dir/qemu-aarch64" && say "binfmt_misc: qemu-aarch64 entry removed again"
  fi
  if [ "$mounted_here" -eq 1 ]; then
    umount "$binfmt_dir" && say "binfmt_misc: unmounted again"
  fi
}
trap cleanup EXIT
if [ "$binfmt" -eq 1 ] && [ ! -e "$binfmt_dir/qemu-aarch64" ]; then
  [ "$(id -u)" -eq 0 ] || die "--binfmt needs root"
  if [ ! -e "$binfmt_dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt_dir" || die "cannot mount binfmt_misc"
    mounted_here=1
  fi
  # Debian's own entry for qemu-aarch64 (flags F: the interpreter is opened now, so it also
  # works inside other mount namespaces), pointed at the static qemu.
  line="$(grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf | head -n1)"
  [ -n "$line" ] || die "no /usr/lib/binfmt.d/qemu-aarch64.conf (package qemu-user-static)"
  interp="$(printf '%s' "$line" | cut -d: -f7)"
  [ -x "$interp" ] || line="$(printf '%s' "$line" | sed "s|:$interp:|:$qemu:|")"
  printf '%s' "$line" >"$binfmt_dir/register" || die "binfmt_misc registration failed"
  registered_here=1
  say "binfmt_misc: qemu-aarch64 registered for this run"
fi

cd "$REPO_DIR"
build=(cargo-zigbuild test --locked --target "$triple")

say "building the test suite for $triple"
start=$(date +%s)
"${build[@]}" --lib --bins --tests --no-run
say "test build took $(($(date +%s) - start)) s"

# Can this machine exec an aarch64 binary directly (binfmt)? Probe with the citygate binary
# that the test build produced.
probe="$CARGO_TARGET_DIR/$triple/debug/citygate"
spawn_ok=0
if [ -x "$probe" ] && "$probe" version >/dev/null 2>&1; then
  spawn_ok=1
fi

selection=()
skipped=()
if [ "$spawn_ok" -eq 1 ]; then
  say "aarch64 binaries can be exec'd directly (binfmt_misc): running every test target"
  selection=(--lib --bins --tests)
else
  say "aarch64 binaries cannot be exec'd directly (no binfmt_misc entry): tests that spawn processes are skipped"
  selection=(--lib --bins)
  for f in tests/*.rs; do
    name="$(basename "$f" .rs)"
    if grep -qE 'CARGO_BIN_EXE_|current_exe\(' "$f"; then
      skipped+=("$name")
    else
      selection+=(--test "$name")
    fi
  done
fi

log="$(mktemp)"
trap 'cleanup; rm -f "$log"' EXIT
say "running: ${build[*]} ${selection[*]} -- ${test_args[*]:-}"
start=$(date +%s)
set +e
"${build[@]}" "${selection[@]}" -- "${test_args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
secs=$(($(date +%s) - start))

# Sum cargo's per-binary "test result:" lines.
read -r passed failed ignored binaries < <(awk '
  /^test result:/ {
    n++
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) p += $i
      if ($(i + 1) ~ /^failed;?$/) f += $i
      if ($(i + 1) ~ /^ignored;?$/) g += $i
    }
  }
  END { print p + 0, f + 0, g + 0, n + 0 }' "$log")

echo
say "aarch64 ($triple) under qemu-user: $binaries test binaries in ${secs} s"
[ "${#skipped[@]}" -eq 0 ] || say "skipped (spawn aarch64 processes; rerun as root with --binfmt): ${skipped[*]}"
echo "aarch64-qemu: $passed passed, $failed failed, $ignored ignored"
exit "$rc"
