#!/bin/sh
# Runs every fuzz target for SECS seconds (default 60) on one core; logs to fuzz/logs/.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain.
set -e
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
SECS=${SECS:-60}
mkdir -p logs
for t in ${TARGETS:-gwmp_parse phy_parse bthome ruuvi ibeacon eddystone advertisement config_load replay_line mac_parse}; do
  CARGO_BUILD_JOBS=1 cargo +nightly fuzz run "$t" -- -max_total_time="$SECS" -rss_limit_mb=1024 > "logs/$t.log" 2>&1
  echo "$t: $(grep -E 'Done [0-9]+ runs' "logs/$t.log" | tail -1)"
done
