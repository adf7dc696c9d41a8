#!/usr/bin/env bash
# Lists the functions a running gateway executes, so that the linker places them next to each
# other (cross/hot-functions.txt; build.rs hands it to the linker of the release build).
#
#   benches/hot-functions.sh [SECONDS]      (default 60 s of steady state, under valgrind)
#
# Why: the kernel maps a binary's code into a process in 64 KiB windows (fault-around), and
# the functions a gateway runs every second (tokio, the Modbus client, SQLite, the HTTP client,
# the syncer) are spread over the whole 6.6 MiB of code: nearly every window holds one, so
# nearly all the code stays resident. Placed together, they fill a few windows.
#
# How: the release build (its symbol table is kept, see Cargo.toml) runs the workload of
# benches/daemon_modbus.sh (10 Modbus/TCP units x 100 registers, every record delivered to a
# local ACME, /metrics scraped every 15 s) under callgrind, twice: over HTTP, then over MQTT
# (mosquitto), so that a gateway of either binding finds its code together. Its counters are zeroed
# once start-up is over and dumped SECONDS later: every function that ran in between, and that
# the binary defines, is listed (mangled names, sorted, one per line). Start-up code is left
# out on purpose: it runs once, and the daemon gives its pages back (src/runtime/memory.rs).
#
# Run it again after large changes (new dependencies, a new Rust): names that no longer exist
# are ignored by the linker, so a stale list only places fewer functions together. Check with
# benches/daemon_modbus.sh (SMAPS=1 shows the resident code, "citygate r-xp").
#
# Needs valgrind (installed with apt-get when missing) and ACME (see tests/peers/acme.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source cross/common.sh
SECS="${1:-60}"
command -v valgrind >/dev/null || apt_install valgrind
# Two builds, so that the binary is the shipped one (see benches/daemon_modbus.sh).
cargo build --release --quiet --bin citygate
cargo build --release --quiet --example modbus_sim
cargo build --release --quiet --example fleet_proxy
bin=target/release/citygate
work="$(mktemp -d -t citygate-hot.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# One daemon_modbus.sh run under callgrind for a northbound binding ($1: http or mqtt), long
# enough that the dump below happens while it still runs; the names it ran go to $work/ran.$1.
profile() {
  local nb="$1" port="" bench
  NO_BUILD=1 BIN="$bin" NORTHBOUND="$nb" DEVICES=10 POINTS=50 \
    WRAP="valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file=$work/$nb.%p" \
    benches/daemon_modbus.sh $((SECS + 120)) >"$work/bench-$nb.log" 2>&1 &
  bench=$!
  # The daemon's telemetry port (the only one it listens on here), then its readiness.
  for _ in $(seq 1 120); do
    sleep 1
    port=$(ss -ltnpH | awk '/callgrind/ { n = split($4, a, ":"); print a[n]; exit }')
    [ -n "$port" ] && curl -sf "127.0.0.1:$port/readyz" >/dev/null && break
  done
  [ -n "$port" ] || die "the daemon did not become ready under valgrind ($nb)"
  # It gives its start-up pages back 5 s after ready (src/runtime/memory.rs): from then on,
  # whatever runs is what a gateway keeps resident.
  sleep 8
  callgrind_control -z >/dev/null 2>&1
  say "$nb: counters zeroed; collecting $SECS s, scraping /metrics every 15 s as Prometheus would"
  local end=$(($(date +%s) + SECS))
  while [ "$(date +%s)" -lt "$end" ]; do
    curl -s "127.0.0.1:$port/metrics" >/dev/null || true
    sleep 15
  done
  callgrind_control -d >/dev/null 2>&1
  sleep 2
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  # Every function named in the dumps after the zeroing (".1" and later; fn= and cfn= lines,
  # with callgrind's "(id) name" compression).
  cat "$work/$nb".*.[1-9]* | sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' | sort -u >"$work/ran.$nb"
  say "$nb: $(wc -l <"$work/ran.$nb") names ran"
}
profile http
profile mqtt

# Functions the binary defines (text symbols) that ran, in the order the linker places them:
# those both bindings ran, then HTTP's own, then MQTT's own, so that each binding's hot code is
# one stretch (an HTTP gateway never touches the MQTT client's windows, nor the reverse).
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$work/defined"
comm -12 "$work/defined" "$work/ran.http" >"$work/hot.http"
comm -12 "$work/defined" "$work/ran.mqtt" >"$work/hot.mqtt"
{
  comm -12 "$work/hot.http" "$work/hot.mqtt"
  comm -23 "$work/hot.http" "$work/hot.mqtt"
  comm -13 "$work/hot.http" "$work/hot.mqtt"
} >cross/hot-functions.txt
say "$(wc -l <cross/hot-functions.txt) functions ran (of $(wc -l <"$work/defined") defined): cross/hot-functions.txt"
