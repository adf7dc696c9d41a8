#!/usr/bin/env bash
# Installs the real test peers, idempotently, under target/peers (kept between runs):
#   - a Python venv with the ACME oneM2M CSE (PyPI acmecse) and pymodbus,
#   - Debian's mosquitto (MQTT broker), when apt is available.
# Sourced by tests/run.sh; exports CITYGATE_PEERS_VENV for the tests.
set -euo pipefail

PEERS_DIR="${CITYGATE_PEERS_DIR:-$PWD/target/peers}"
VENV="$PEERS_DIR/venv"
ACME_VERSION="2026.5.3"
PYMODBUS_VERSION="3.16.1"

say() { printf '\033[1m[peers]\033[0m %s\n' "$*"; }

install_python_peers() {
  mkdir -p "$PEERS_DIR"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating Python venv at $VENV"
    python3 -m venv "$VENV" || { say "python3 -m venv failed: install python3-venv"; return 1; }
  fi
  local want="acmecse==$ACME_VERSION pymodbus==$PYMODBUS_VERSION"
  local stamp="$VENV/.citygate-peers"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing $want into the venv (first run only)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$stamp"
  else
    say "python peers present: $want"
  fi
  export CITYGATE_PEERS_VENV="$VENV"
  # The Modbus peer tests start pymodbus from this venv.
  export CITYGATE_PY_VENV="$VENV"
  # The oneM2M tests start ACME from this venv (tests/peers/acme.sh checks it).
  export CITYGATE_ACME_VENV="$VENV"
}

install_apt_peers() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  # BLE tests: a private dbus-daemon with BlueZ emulated by python-dbusmock (Debian's python3).
  command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus)
  /usr/bin/python3 -c "import dbusmock" >/dev/null 2>&1 || missing+=(python3-dbusmock)
  # Telemetry tests: a real Prometheus server scraping citygate, and promtool.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt peers present: mosquitto, dbus, python3-dbusmock, prometheus"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not available: tests needing ${missing[*]} will fail"
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing ${missing[*]} with apt-get"
  # Finish an install a previous run was interrupted in (apt refuses to work otherwise).
  $sudo dpkg --configure -a || true
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# taplo (npm @taplo/cli): the TOML toolkit behind VS Code's Even Better TOML. The config schema
# test validates the shipped configs with it, as an editor would. Needs node and npm (Debian's).
TAPLO_VERSION="0.7.0"
install_node_peers() {
  local dir="$PEERS_DIR/taplo"
  if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      local sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      say "installing nodejs and npm with apt-get"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      say "npm not available: the taplo schema test will fail"
      return 1
    fi
  fi
  if [ "$(cat "$dir/.citygate-peers" 2>/dev/null)" != "$TAPLO_VERSION" ]; then
    say "installing @taplo/cli@$TAPLO_VERSION (first run only)"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "@taplo/cli@$TAPLO_VERSION"
    echo "$TAPLO_VERSION" > "$dir/.citygate-peers"
  else
    say "taplo present: @taplo/cli@$TAPLO_VERSION"
  fi
  export CITYGATE_TAPLO="$dir/node_modules/.bin/taplo"
}
