#!/usr/bin/env bash
# Steady resource use of the daemon polling 20 Modbus/TCP devices x 50 points every second
# (plus buffering every record), measured from /proc like `top` would:
#
#   benches/daemon_modbus.sh [SECONDS]      (default 60, after a 10 s warm-up)
#   DEVICES=10 POINTS=50 benches/daemon_modbus.sh 60    (10 units x 100 registers)
#   POLL=100ms ...                                      (poll interval, default 1s)
#   ENV="MALLOC_ARENA_MAX=2" benches/daemon_modbus.sh   (the daemon's environment)
#   SMAPS=1 ...          (also where the RSS goes: Rss / Anonymous per mapping of /proc/PID/smaps)
#   BIN=target/x86_64-unknown-linux-musl/release/citygate NO_BUILD=1 ...   (another build)
#   WRAP="valgrind --tool=callgrind" ...  (a command the daemon runs under; see hot-functions.sh)
#   NORTHBOUND=http DEVICES=10 POINTS=50 benches/daemon_modbus.sh 60
#       (also delivers every record over HTTP to a local ACME CSE started with
#        tests/peers/run-acme.sh; its venv: CITYGATE_ACME_VENV, see tests/peers/acme.sh)
#   NORTHBOUND=mqtt ...  (the same over MQTT: mosquitto and ACME with its MQTT binding, started
#        by `fleet_proxy peers-mqtt` from examples/fleet_proxy.rs, built here too)
#
# Builds the release binary and the simulator (examples/modbus_sim.rs), runs both on 127.0.0.1,
# prints RSS (VmRSS, VmHWM, anonymous / file-backed from smaps_rollup), threads, CPU % of one
# core, records committed, records delivered to the CSE and Modbus transactions.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
DEVICES="${DEVICES:-20}"
POINTS="${POINTS:-50}"
POLL="${POLL:-1s}"
BIN="${BIN:-target/release/citygate}"
# Two builds: with an example in the same build, dev-dependencies change the features of
# shared crates, and the binary would not be the one that is shipped (see build.rs).
[ -n "${NO_BUILD:-}" ] || { cargo build --release --quiet --bin citygate && cargo build --release --quiet --example modbus_sim; }
[ -n "${NO_BUILD:-}" ] || [ "${NORTHBOUND:-}" != mqtt ] || cargo build --release --quiet --example fleet_proxy
dir="$(mktemp -d -t citygate-bench.XXXXXX)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  kill "${sim:-}" "${gw:-}" "${peers:-}" 2>/dev/null || true
  # ACME runs in its own session (setsid): stop its whole process group (bash's kill builtin).
  if [ -n "${acme:-}" ] && [ "$acme" -gt 1 ]; then kill -TERM -- "-$acme" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

case "${NORTHBOUND:-}" in
  "") ;;
  http)
    setsid tests/peers/run-acme.sh "$aport" >"$dir/acme.log" 2>&1 & acme=$!
    ready=""
    for _ in $(seq 1 120); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: ready' \
        -H 'X-M2M-RVI: 3' -H 'Accept: application/json' "http://127.0.0.1:$aport/cse-in" || true)
      [ "$code" = 200 ] && { ready=1; break; }
      sleep 0.5
    done
    [ -n "$ready" ] || { echo "ACME did not become ready:" >&2; cat "$dir/acme.log" >&2; exit 1; }
    ;;
  mqtt)
    # Prints "HTTP_URL BROKER_PORT" once both are up, and stops both on SIGTERM.
    target/release/examples/fleet_proxy peers-mqtt >"$dir/peers.out" 2>"$dir/acme.log" & peers=$!
    broker=""
    for _ in $(seq 1 120); do
      broker=$(awk 'NF == 2 {print $2}' "$dir/peers.out")
      [ -n "$broker" ] && break
      kill -0 "$peers" 2>/dev/null || break
      sleep 0.5
    done
    [ -n "$broker" ] || { echo "mosquitto/ACME did not come up:" >&2; cat "$dir/acme.log" >&2; exit 1; }
    ;;
  *) echo "NORTHBOUND must be empty, http or mqtt" >&2; exit 2 ;;
esac

{
  printf '[gateway]\nstate_dir = "%s/state"\n[log]\nlevel = "warn"\n[telemetry]\nlisten = "127.0.0.1:%s"\n' "$dir" "$port"
  printf '[southbound.meters]\ntype = "modbus_tcp"\nhost = "127.0.0.1:%s"\n' "$mport"
  for d in $(seq 1 $DEVICES); do
    printf '[[southbound.meters.devices]]\nid = "meter-%02d"\nunit = %d\nword_order = "ABCD"\npoll_interval = "%s"\npoints = [\n' "$d" "$d" "$POLL"
    for p in $(seq 0 $((POINTS - 1))); do
      printf '  { name = "p%02d", table = "input", address = %d, type = "f32" },\n' "$p" $((p * 2))
    done
    printf ']\n'
  done
  case "${NORTHBOUND:-}" in
    http) printf '[northbound]\ncse_url = "http://127.0.0.1:%s"\noriginator = "Cbench"\n' "$aport" ;;
    mqtt) printf '[northbound]\nbinding = "mqtt"\ncse_id = "/id-in"\noriginator = "Cbench"\n[northbound.mqtt]\nbroker = "mqtt://127.0.0.1:%s"\n' "$broker" ;;
  esac
} > "$dir/citygate.toml"
"$BIN" check -c "$dir/citygate.toml" >/dev/null

target/release/examples/modbus_sim "127.0.0.1:$mport" 2>/dev/null & sim=$!
sleep 0.5
env ${ENV:-} ${WRAP:-} "$BIN" run -c "$dir/citygate.toml" 2>"$dir/log" & gw=$!
sleep 10

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
# The sum of a metric's series (exact name, any labels).
metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'; }
c0=$(cpu); r0=$(metric citygate_adapter_records_total); t0=$(metric citygate_modbus_transactions_total); s0=$(date +%s.%N)
d0=$(metric citygate_sync_records_delivered_total)
rss_max=0; rss_sum=0; n=0
for _ in $(seq 1 "$SECS"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$gw/status")
  rss_sum=$((rss_sum + rss)); n=$((n + 1))
  [ "$rss" -gt "$rss_max" ] && rss_max=$rss
done
c1=$(cpu); r1=$(metric citygate_adapter_records_total); t1=$(metric citygate_modbus_transactions_total); s1=$(date +%s.%N)
d1=$(metric citygate_sync_records_delivered_total); backlog=$(metric citygate_buffer_records)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$gw/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$gw/status")
anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$gw/smaps_rollup")
file=$(awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {print r - a}' "/proc/$gw/smaps_rollup")
elapsed=$(echo "$s1 - $s0" | bc -l)
echo "daemon: $DEVICES devices x $POINTS f32 points, poll $POLL, Modbus/TCP on loopback, buffer synchronous=full, northbound ${NORTHBOUND:-none}"
printf 'measured          %.0f s after 10 s warm-up\n' "$elapsed"
printf 'CPU               %.2f %% of one core\n' "$(echo "($c1 - $c0) / $ticks / $elapsed * 100" | bc -l)"
printf 'RSS               avg %d KiB, max %d KiB (VmHWM %d KiB)\n' $((rss_sum / n)) "$rss_max" "$hwm"
printf 'RSS at the end    %d KiB anonymous, %d KiB file-backed (smaps_rollup)\n' "$anon" "$file"
printf 'threads           %d\n' "$threads"
printf 'records           %.1f /s (expected %d every %s)\n' "$(echo "($r1 - $r0) / $elapsed" | bc -l)" "$DEVICES" "$POLL"
if [ -n "${NORTHBOUND:-}" ]; then
  printf 'delivered         %.1f records/s to the CSE, %d waiting in the buffer at the end\n' \
    "$(echo "($d1 - $d0) / $elapsed" | bc -l)" "$backlog"
fi
printf 'points            %.0f /s\n' "$(echo "($r1 - $r0) * $POINTS / $elapsed" | bc -l)"
printf 'transactions      %.1f /s (%.2f per device per cycle)\n' "$(echo "($t1 - $t0) / $elapsed" | bc -l)" "$(echo "($t1 - $t0) / ($r1 - $r0)" | bc -l)"
if [ -n "${SMAPS:-}" ] && command -v nm >/dev/null && [ -f cross/hot-functions.txt ]; then
  cross/hot-functions-check.sh "$BIN"
fi
if [ -n "${SMAPS:-}" ]; then
  echo "where the RSS goes (KiB, /proc/PID/smaps; r-x = code, rw- after r-- = relocated data):"
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6); sub(".*/", "", name); key = name " " $2 }
       /^Rss:/ { rss[key] += $2 } /^Anonymous:/ { anon[key] += $2 }
       END { for (k in rss) if (rss[k] > 0) printf "  %-40s rss %6d  anon %6d\n", k, rss[k], anon[k] }' \
    "/proc/$gw/smaps" | sort -k4 -n -r
fi
