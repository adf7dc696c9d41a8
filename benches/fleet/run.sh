#!/usr/bin/env bash
# Fleet bench: N citygate gateways against one ACME CSE over HTTP through a counting proxy,
# a platform outage under load, and the recovery measured (see benches/fleet/README.md).
#
#   benches/fleet/run.sh [fleet.py options]
#   benches/fleet/run.sh --n 100 --rate 0.5 --outage 120 --png docs/img/fleet-http.png
#   benches/fleet/run.sh --binding mqtt --n 100 --rate 0.5 --outage 120 --png docs/img/fleet-mqtt.png
#   (over MQTT: mosquitto and ACME with MQTT from `fleet_proxy peers-mqtt`, see README.md)
#
# Builds the release binary and the proxy (examples/fleet_proxy.rs), installs matplotlib into
# a venv of its own (target/fleet-venv) for the plot, starts ACME with tests/peers/run-acme.sh
# (its venv: $CITYGATE_ACME_VENV), runs benches/fleet/fleet.py and then report.py.
# The run's files go to $OUT (default target/fleet/<date>); the report is $OUT/report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
png=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --png) png="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
OUT="${OUT:-target/fleet/$(date -u +%Y%m%dT%H%M%SZ)}"
# Two builds, so that the binary is the shipped one (see benches/daemon_modbus.sh).
[ -n "${NO_BUILD:-}" ] || { cargo build --release --quiet --bin citygate && cargo build --release --quiet --example fleet_proxy; }
VENV=target/fleet-venv
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check matplotlib >&2
fi
# Many gateways: each holds a few file descriptors and a listening socket.
ulimit -n 65536 2>/dev/null || true
python3 benches/fleet/fleet.py --out "$OUT" "${args[@]}"
"$VENV/bin/python" benches/fleet/report.py "$OUT" ${png:+--png "$png"}
