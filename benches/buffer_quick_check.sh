#!/usr/bin/env bash
# Cost of `PRAGMA quick_check` (and `integrity_check`) on a large buffer, to decide whether
# citygate can afford it at every start:
#
#   benches/buffer_quick_check.sh [MIB]      (default 100)
#
# Creates a buffer with citygate's own schema (`citygate run` with no adapters), fills it with
# MIB MiB of realistic records (5 000 devices, ~230-byte JSON bodies) through Python's sqlite3,
# then times each check warm, and cold with COLD=1 (drops the page cache of the whole machine,
# needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-100}"
bin="${CITYGATE_BIN:-target/release/citygate}"
[ -x "$bin" ] || cargo build --release --quiet --bin citygate
dir="$(mktemp -d -t citygate-qc.XXXXXX)"
cleanup() { kill "${gw:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
printf '[gateway]\nstate_dir = "%s"\n[telemetry]\nenabled = false\n[buffer]\nmax_bytes = "%dMiB"\n' \
  "$dir" $((MIB * 2)) >"$dir/citygate.toml"
"$bin" run -c "$dir/citygate.toml" >/dev/null 2>&1 & gw=$!
for _ in $(seq 100); do [ -s "$dir/buffer.sqlite" ] && break; sleep 0.1; done
sleep 0.5; kill -TERM "$gw"; wait "$gw" || true; gw=
python3 - "$dir/buffer.sqlite" "$MIB" <<'PY'
import json, os, sqlite3, sys, time
path, mib = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode=WAL")
seq, t0 = 0, time.time()
while os.path.getsize(path) + os.path.getsize(path + "-wal") < mib << 20:
    rows = []
    for _ in range(20000):
        seq += 1
        dev = "meter-%04d" % (seq % 5000)
        body = json.dumps({"adapter": "meters", "device": dev, "ts_ms": 1795000000000 + seq,
                           "values": {"kwh": seq * 0.25, "v": 231.4, "a": 4.12, "pf": 0.97,
                                      "hz": 50.01}, "meta": {"quality.kwh": "good"}})
        rows.append((dev, 1795000000000 + seq, 1795000000000 + seq, body))
    c.executemany("INSERT INTO records (device, ts_ms, enqueued_ms, body) VALUES (?,?,?,?)", rows)
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
print(f"filled {os.path.getsize(path) / 2**20:.1f} MiB, {seq} records in {time.time() - t0:.1f} s;"
      f" SQLite {sqlite3.sqlite_version}")
PY
check() {
  local pragma=$1 label=$2
  python3 - "$dir/buffer.sqlite" "$pragma" "$label" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
t = time.time()
r = c.execute("PRAGMA " + sys.argv[2]).fetchall()
print(f"{sys.argv[2]:<16} {sys.argv[3]:<5} {time.time() - t:6.2f} s  -> {r[0][0]}")
PY
}
for pragma in quick_check integrity_check; do
  if [ "${COLD:-0}" = 1 ] && [ "$(id -u)" -eq 0 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; check "$pragma" cold; fi
  check "$pragma" warm
done
