#!/usr/bin/env bash
# Offline checks of citygate's systemd files; needs no running systemd (works in CI, containers).
#
#   systemd/check.sh [BINARY]
#
# BINARY: a built citygate binary (default: $CARGO_TARGET_DIR or target/, release then debug).
#
# 1. systemd-analyze verify --man=no on a copy of citygate.service whose ExecStart*/ExecReload
#    point at BINARY. Fails if verify exits non-zero OR prints anything: systemd 252 reports
#    unknown keys and unparsable values ("Unknown key ...", "Failed to parse ...") with exit
#    code 0, so silence is the only real pass.
# 2. systemd-analyze security --offline=yes --threshold=20: fails if the exposure score is
#    above 2.0. Prints the score.
# 3. systemd-sysusers and systemd-tmpfiles on a scratch root: the sysusers.d / tmpfiles.d files
#    parse and create the user and directories.
#
# Installs Debian's `systemd` package with apt-get if systemd-analyze is missing (needs root).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
unit="$here/citygate.service"
threshold=20 # exposure x10: 20 = "<= 2.0"

say() { printf '==> %s\n' "$*"; }
die() { printf 'check.sh: FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
  say "systemd-analyze not found: installing Debian package 'systemd'"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends systemd
  command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze still missing after apt-get install systemd"
fi
say "$(systemd-analyze --version | head -n1)"

# --- the binary --------------------------------------------------------------------------------
bin="${1:-}"
if [ -z "$bin" ]; then
  tdir="${CARGO_TARGET_DIR:-$repo/target}"
  for c in "$tdir/release/citygate" "$tdir/debug/citygate"; do
    if [ -x "$c" ]; then bin="$c"; break; fi
  done
  [ -n "$bin" ] || die "no built citygate binary in $tdir/{release,debug}; run 'cargo build' or pass the path: $0 BINARY"
fi
[ -x "$bin" ] || die "$bin is not an executable file"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
say "binary: $bin"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- 1. verify ---------------------------------------------------------------------------------
# Same file name (the unit name matters), /usr/bin/citygate replaced by the built binary.
sed "s|/usr/bin/citygate |$bin |g" "$unit" >"$work/citygate.service"
grep -q "^ExecStart=$bin run " "$work/citygate.service" || die "could not rewrite ExecStart= in the copy"
say "systemd-analyze verify --man=no citygate.service"
set +e
out="$(cd "$work" && systemd-analyze verify --man=no "$work/citygate.service" 2>&1)"
rc=$?
set -e
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  die "systemd-analyze verify exited $rc and/or printed the lines above (it must be silent)"
fi
say "verify: clean (exit 0, no output)"

# --- 2. security -------------------------------------------------------------------------------
say "systemd-analyze security --offline=yes --threshold=$threshold citygate.service"
set +e
sec="$(systemd-analyze security --offline=yes --man=no --no-pager --threshold="$threshold" "$unit" 2>&1)"
rc=$?
set -e
score_line="$(printf '%s\n' "$sec" | grep 'Overall exposure level' || true)"
if [ -z "$score_line" ]; then
  printf '%s\n' "$sec" >&2
  die "systemd-analyze security printed no 'Overall exposure level' line (exit $rc)"
fi
# "→ Overall exposure level for citygate.service: 1.7 OK 🙂" -> "1.7 OK"
score="$(printf '%s\n' "$score_line" | sed -E 's/.*: ([0-9]+\.[0-9]+ [A-Z]+).*/\1/')"
if [ "$rc" -ne 0 ]; then
  printf '%s\n' "$sec" | grep -E '^ *✗' >&2 || true
  die "exposure $score is above $((threshold / 10)).$((threshold % 10)) (the checks that count are listed above)"
fi
say "exposure score: $score (threshold $((threshold / 10)).$((threshold % 10)))"

# --- 3. sysusers.d / tmpfiles.d ----------------------------------------------------------------
root="$work/root"
mkdir -p "$root/etc/citygate"
: >"$root/etc/citygate/citygate.toml"
say "systemd-sysusers + systemd-tmpfiles --create on a scratch root"
systemd-sysusers --root="$root" "$here/citygate.sysusers" >/dev/null 2>&1 \
  || die "systemd-sysusers rejected citygate.sysusers"
grep -q '^citygate:' "$root/etc/passwd" || die "sysusers did not create user citygate"
out="$(systemd-tmpfiles --root="$root" --create "$here/citygate.tmpfiles" 2>&1)" \
  || { printf '%s\n' "$out" >&2; die "systemd-tmpfiles rejected citygate.tmpfiles"; }
[ -z "$out" ] || { printf '%s\n' "$out" >&2; die "systemd-tmpfiles printed warnings"; }
[ -d "$root/var/lib/citygate" ] || die "tmpfiles did not create /var/lib/citygate"
[ "$(stat -c %a "$root/etc/citygate/citygate.toml")" = 640 ] || die "tmpfiles did not set 0640 on the config"
say "sysusers/tmpfiles: ok"

echo "systemd checks passed: verify clean, exposure $score"
