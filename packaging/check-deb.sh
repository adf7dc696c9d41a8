#!/usr/bin/env bash
# shellcheck disable=SC2015  # `test && ok || fail` is meant: ok only prints, it never fails
# Checks a built citygate .deb against what it must hold, without installing it:
#
#   packaging/check-deb.sh DEB ARCH        ARCH: amd64 | arm64 | armhf
#
#   1. control: Package citygate, Architecture ARCH, the conffile, the dependencies ARCH needs
#      (arm64: no libc at all, it is static; armhf: libc6 (>= 2.31));
#   2. files: the list from `dpkg-deb --contents` (files and symlinks, with mode and owner) equals
#      EXPECTED below exactly: nothing missing, nothing extra;
#   3. the binary's ELF header (readelf, from binutils): class and machine, for armhf the EABI5
#      hard-float flags, for arm64 statically linked (no program interpreter, no shared
#      library), for armhf the glibc loader /lib/ld-linux-armhf.so.3, only libraries that libc6
#      ships, and no GLIBC_x.y symbol version above the package's libc6 floor.
#
# Prints what it checked; exits 1 with every failed check listed.
set -euo pipefail

die() { printf 'check-deb.sh: error: %s\n' "$*" >&2; exit 2; }
[ $# -eq 2 ] || die "usage: $0 DEB ARCH (amd64, arm64 or armhf)"
deb="$1" arch="$2"
[ -f "$deb" ] || die "no such file: $deb"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed"
command -v readelf >/dev/null || die "readelf is needed (apt-get install binutils)"

# What the package holds: "mode owner path", files and symlinks only (directories follow from
# them). Keep in step with [package.metadata.deb] in Cargo.toml and packaging/README.md.
EXPECTED='
-rwxr-xr-x 0/0 ./usr/bin/citygate
-rw-r--r-- 0/0 ./etc/citygate/citygate.toml
-rw-r--r-- 0/0 ./usr/lib/systemd/system/citygate.service
-rw-r--r-- 0/0 ./usr/lib/sysusers.d/citygate.conf
-rw-r--r-- 0/0 ./usr/lib/tmpfiles.d/citygate.conf
-rw-r--r-- 0/0 ./usr/share/citygate/config.schema.json
-rw-r--r-- 0/0 ./usr/share/citygate/examples/sample-readings.jsonl
-rw-r--r-- 0/0 ./usr/share/citygate/grafana/citygate-dashboard.json
-rw-r--r-- 0/0 ./usr/share/citygate/prometheus/citygate-alerts.test.yml
-rw-r--r-- 0/0 ./usr/share/citygate/prometheus/citygate-alerts.yml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/README.md
-rw-r--r-- 0/0 ./usr/share/doc/citygate/config.md
-rw-r--r-- 0/0 ./usr/share/doc/citygate/copyright
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/ble-square.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/fleet-template.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/lorawan-chirpstack.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/lorawan-downlinks.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/lorawan-udp.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/modbus-cabinet.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/modbus-commands.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/northbound-coap.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/examples/northbound-mqtt.toml
-rw-r--r-- 0/0 ./usr/share/doc/citygate/metrics.md
'
# The highest glibc symbol version an armhf binary may need: the libc6 floor in its Depends.
ARMHF_GLIBC_FLOOR=2.31

failures=()
fail() { failures+=("$*"); printf '  FAIL %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
# version_le A B: A <= B for dotted versions
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

printf '%s (%s bytes), expected architecture %s\n' "$deb" "$(stat -c %s "$deb")" "$arch"

# --- 1. control -------------------------------------------------------------------------------
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = citygate ] && ok "Package: citygate" || fail "Package is '$(field Package)', not citygate"
got_arch="$(field Architecture)"
[ "$got_arch" = "$arch" ] && ok "Architecture: $got_arch" || fail "Architecture is '$got_arch', not $arch"
depends="$(field Depends)"
case "$arch" in
  arm64)
    if grep -qE '(^|[ ,])libc6([ ,(]|$)' <<<"$depends"; then
      fail "arm64 is static musl but Depends names libc6: $depends"
    else
      ok "Depends without libc6 (static): $depends"
    fi
    ;;
  armhf)
    floors="$(grep -oE 'libc6(:armhf)? \(>= [^)]*\)' <<<"$depends" | sort -u | paste -sd' ' || true)"
    if [ "$floors" = "libc6 (>= $ARMHF_GLIBC_FLOOR)" ]; then
      ok "Depends: $depends"
    else
      fail "armhf Depends must hold exactly libc6 (>= $ARMHF_GLIBC_FLOOR), found '$floors': $depends"
    fi
    ;;
esac
conffiles="$(dpkg-deb --info "$deb" conffiles 2>/dev/null || true)"
[ "$conffiles" = /etc/citygate/citygate.toml ] \
  && ok "conffiles: $conffiles" || fail "conffiles is '$conffiles', not /etc/citygate/citygate.toml"

# --- 2. files ---------------------------------------------------------------------------------
# dpkg-deb -c: "MODE OWNER SIZE DATE TIME PATH [-> TARGET]"; directories end in "/".
actual="$(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort)"
expected="$(grep -v '^$' <<<"$EXPECTED" | sort)"
if [ "$actual" = "$expected" ]; then
  ok "files: the expected $(wc -l <<<"$expected") files, modes and owners"
else
  fail "files differ from the expected set (- expected, + in the package):"
  diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | grep '^[-+][^-+]' | sed 's/^/         /' || true
fi

# --- 3. the binary's ELF header ---------------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bin="$tmp/citygate"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/citygate >"$bin" 2>/dev/null \
  || fail "no ./usr/bin/citygate to extract"
if [ -s "$bin" ]; then
  if command -v file >/dev/null; then printf '       file: %s\n' "$(file -b "$bin")"; fi
  header="$(readelf -h "$bin")"
  hval() { awk -F: -v k="$1" '$1 ~ "^ *" k "$" { sub(/^[ \t]+/, "", $2); print $2 }' <<<"$header"; }
  class="$(hval Class)" machine="$(hval Machine)" flags="$(hval Flags)"
  interp="$(readelf -lW "$bin" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')"
  needed="$(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')"
  case "$arch" in
    amd64) want_class=ELF64 want_machine="Advanced Micro Devices X86-64" ;;
    arm64) want_class=ELF64 want_machine=AArch64 ;;
    armhf) want_class=ELF32 want_machine=ARM ;;
    *) die "unknown architecture $arch" ;;
  esac
  [ "$class" = "$want_class" ] && [ "$machine" = "$want_machine" ] \
    && ok "ELF: $class $machine" || fail "ELF is '$class $machine', not $want_class $want_machine"
  case "$arch" in
    arm64)
      [ -z "$interp" ] && [ -z "$needed" ] \
        && ok "static: no program interpreter, no shared libraries" \
        || fail "not static: interpreter '$interp', needs '$needed'"
      ;;
    armhf)
      # e_flags 0x5000400: EABI version 5, hard-float calling convention (VFP registers).
      grep -q 'Version5 EABI' <<<"$flags" && grep -q 'hard-float ABI' <<<"$flags" \
        && ok "ARM flags: $flags" || fail "ARM flags are '$flags', not Version5 EABI, hard-float ABI"
      [ "$interp" = /lib/ld-linux-armhf.so.3 ] \
        && ok "interpreter: $interp" || fail "interpreter is '$interp', not /lib/ld-linux-armhf.so.3"
      # Libraries of Debian's libc6 (what Depends promises); anything else needs its own Depends.
      extra=""
      for lib in $needed; do
        case "$lib" in
          libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux-armhf.so.3) ;;
          *) extra+="$lib " ;;
        esac
      done
      [ -z "$extra" ] && ok "shared libraries (all from libc6): $needed" \
        || fail "needs libraries that Depends does not provide: $extra"
      glibc_max="$(readelf -VW "$bin" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -n1 || true)"
      if [ -n "$glibc_max" ] && version_le "$glibc_max" "$ARMHF_GLIBC_FLOOR"; then
        ok "glibc floor: needs at most GLIBC_$glibc_max (Depends libc6 >= $ARMHF_GLIBC_FLOOR)"
      else
        fail "needs GLIBC_${glibc_max:-?}, above the libc6 floor $ARMHF_GLIBC_FLOOR"
      fi
      ;;
  esac
fi

if [ "${#failures[@]}" -gt 0 ]; then
  printf '%s: %d check(s) failed\n' "$deb" "${#failures[@]}" >&2
  exit 1
fi
printf '%s: all checks passed\n' "$deb"
