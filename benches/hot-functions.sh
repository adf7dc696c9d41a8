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
# benches/daemon_modbus.sh (10 Modbus/TCP units x 100 registers, every record delivered over
# HTTP to a local ACME, /metrics scraped every 15 s) under callgrind. Its counters are zeroed
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
bin=target/release/citygate
work="$(mktemp -d -t citygate-hot.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The daemon_modbus.sh run, long enough that the dump below happens while it still runs.
NO_BUILD=1 BIN="$bin" NORTHBOUND=http DEVICES=10 POINTS=50 \
  WRAP="valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file=$work/callgrind.%p" \
  benches/daemon_modbus.sh $((SECS + 120)) >"$work/bench.log" 2>&1 &
bench=$!
# The daemon's telemetry port (the only one it listens on here), then its readiness.
port=""
for _ in $(seq 1 120); do
  sleep 1
  port=$(ss -ltnpH | awk '/callgrind/ { n = split($4, a, ":"); print a[n]; exit }')
  [ -n "$port" ] && curl -sf "127.0.0.1:$port/readyz" >/dev/null && break
done
[ -n "$port" ] || die "the daemon did not become ready under valgrind"
# It gives its start-up pages back 5 s after ready (src/runtime/memory.rs): from then on,
# whatever runs is what a gateway keeps resident.
sleep 8
callgrind_control -z >/dev/null
say "counters zeroed; collecting $SECS s, scraping /metrics every 15 s as Prometheus would"
end=$(($(date +%s) + SECS))
while [ "$(date +%s)" -lt "$end" ]; do
  curl -s "127.0.0.1:$port/metrics" >/dev/null || true
  sleep 15
done
callgrind_control -d >/dev/null
sleep 2
kill "$bench" 2>/dev/null || true
wait "$bench" 2>/dev/null || true

# Functions the binary defines (text symbols), and every function named in the dumps after
# the zeroing (".1" and later; fn= and cfn= lines, with callgrind's "(id) name" compression).
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$work/defined"
cat "$work"/callgrind.*.[1-9]* \
  | sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' | sort -u >"$work/ran"
comm -12 "$work/defined" "$work/ran" >cross/hot-functions.txt
say "$(wc -l <cross/hot-functions.txt) functions ran (of $(wc -l <"$work/defined") defined): cross/hot-functions.txt"
