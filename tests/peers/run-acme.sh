#!/usr/bin/env bash
# Runs a local ACME oneM2M CSE in the foreground for trying citygate out (not for production):
#   tests/peers/run-acme.sh [PORT]      (default 8080; Ctrl-C stops it)
# It listens on 127.0.0.1 only, keeps its data in memory, and accepts AE originators C*/S*.
# ACME_CONNECTION_LIMIT: the HTTP connections it keeps open at once (ACME's default, 100; a
# fleet of 100 gateways needs more, see benches/fleet/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT="${1:-8080}"
VENV="$(bash tests/peers/acme.sh)"
DIR="$(mktemp -d -t citygate-acme.XXXXXX)"
cat > "$DIR/acme.ini" <<INI
[basic.config]
cseType=IN
cseID=id-in
cseName=cse-in
adminID=CAdmin
serviceProviderID=//acme.example.com
networkInterface=127.0.0.1
cseHost=127.0.0.1
httpPort=$PORT
logLevel=warning
databaseType=memory
consoleTheme=dark
consoleType=simple
[cse]
enableRemoteCSE=false
[http.wsgi]
enable=true
connectionLimit=${ACME_CONNECTION_LIMIT:-100}
[mqtt]
enable=false
[database]
resetOnStartup=true
[logging]
enableFileLogging=false
enableScreenLogging=true
[cse.statistics]
enable=false
[textui]
enable=false
startWithTUI=false
[webui]
enable=false
[scripting]
fileMonitoringInterval=0
INI
echo "ACME CSE on http://127.0.0.1:$PORT/cse-in (config in $DIR)"
exec "$VENV/bin/acmecse" --base-directory "$DIR" --headless --http-port "$PORT" --db-type memory --http-wsgi < /dev/null
