#!/usr/bin/env bash
# Steady resource use of the daemon polling 20 Modbus/TCP devices x 50 points every second
# (plus buffering every record), measured from /proc like `top` would:
#
#   benches/daemon_modbus.sh [SECONDS]      (default 60, after a 10 s warm-up)
#   DEVICES=10 POINTS=50 benches/daemon_modbus.sh 60    (10 units x 100 registers)
#   ENV="MALLOC_ARENA_MAX=2" benches/daemon_modbus.sh   (the daemon's environment)
#
# Builds the release binary and the simulator (examples/modbus_sim.rs), runs both on 127.0.0.1,
# prints RSS (VmRSS, VmHWM), CPU % of one core, records committed and Modbus transactions.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
DEVICES="${DEVICES:-20}"
POINTS="${POINTS:-50}"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin citygate --example modbus_sim
dir="$(mktemp -d -t citygate-bench.XXXXXX)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { kill "${sim:-}" "${gw:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

{
  printf '[gateway]\nstate_dir = "%s/state"\n[log]\nlevel = "warn"\n[telemetry]\nlisten = "127.0.0.1:%s"\n' "$dir" "$port"
  printf '[southbound.meters]\ntype = "modbus_tcp"\nhost = "127.0.0.1:%s"\n' "$mport"
  for d in $(seq 1 $DEVICES); do
    printf '[[southbound.meters.devices]]\nid = "meter-%02d"\nunit = %d\nword_order = "ABCD"\npoll_interval = "1s"\npoints = [\n' "$d" "$d"
    for p in $(seq 0 $((POINTS - 1))); do
      printf '  { name = "p%02d", table = "input", address = %d, type = "f32" },\n' "$p" $((p * 2))
    done
    printf ']\n'
  done
} > "$dir/citygate.toml"
target/release/citygate check -c "$dir/citygate.toml" >/dev/null

target/release/examples/modbus_sim "127.0.0.1:$mport" 2>/dev/null & sim=$!
sleep 0.5
env ${ENV:-} target/release/citygate run -c "$dir/citygate.toml" 2>"$dir/log" & gw=$!
sleep 10

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m {s += $2} END {print s + 0}'; }
c0=$(cpu); r0=$(metric citygate_adapter_records_total); t0=$(metric citygate_modbus_transactions_total); s0=$(date +%s.%N)
rss_max=0; rss_sum=0; n=0
for _ in $(seq 1 "$SECS"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$gw/status")
  rss_sum=$((rss_sum + rss)); n=$((n + 1))
  [ "$rss" -gt "$rss_max" ] && rss_max=$rss
done
c1=$(cpu); r1=$(metric citygate_adapter_records_total); t1=$(metric citygate_modbus_transactions_total); s1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$gw/status")
elapsed=$(echo "$s1 - $s0" | bc -l)
echo "daemon: $DEVICES devices x $POINTS f32 points, poll 1 s, Modbus/TCP on loopback, buffer synchronous=full"
printf 'measured          %.0f s after 10 s warm-up\n' "$elapsed"
printf 'CPU               %.2f %% of one core\n' "$(echo "($c1 - $c0) / $ticks / $elapsed * 100" | bc -l)"
printf 'RSS               avg %d KiB, max %d KiB (VmHWM %d KiB)\n' $((rss_sum / n)) "$rss_max" "$hwm"
printf 'records           %.1f /s (expected %d /s)\n' "$(echo "($r1 - $r0) / $elapsed" | bc -l)" "$DEVICES"
printf 'points            %.0f /s\n' "$(echo "($r1 - $r0) * $POINTS / $elapsed" | bc -l)"
printf 'transactions      %.1f /s (%.2f per device per cycle)\n' "$(echo "($t1 - $t0) / $elapsed" | bc -l)" "$(echo "($t1 - $t0) / ($r1 - $r0)" | bc -l)"
