#!/usr/bin/env bash
# Installs the ACME oneM2M CSE (PyPI `acmecse`) into a cached venv for the northbound tests.
# Idempotent: does nothing when the venv already has the pinned version.
# Venv path: $CITYGATE_ACME_VENV, default <crate>/target/peers/venv (shared with tests/peers/install.sh).
# Prints the venv path on success.
set -euo pipefail
ACME_VERSION="2026.5.3"
CRATE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CITYGATE_ACME_VENV:-$CRATE_DIR/target/peers/venv}"

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("acmecse"))' 2>/dev/null || true
}

if [ -x "$VENV/bin/acmecse" ] && [ "$(installed_version)" = "$ACME_VERSION" ]; then
  echo "$VENV"
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "acmecse==$ACME_VERSION" >&2
if [ "$(installed_version)" != "$ACME_VERSION" ]; then
  echo "acmecse $ACME_VERSION did not install into $VENV" >&2
  exit 1
fi
echo "$VENV"
