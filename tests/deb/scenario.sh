#!/bin/bash
# The installer's day, run INSIDE the booted Debian 12 guest (systemd is PID 1) by
# citygate-boottest.service; tests/deb/booted.sh puts this file, params and the two .deb files
# on the guest's second disk and reads the output from its second serial port.
#
#   1. install the previous package (buffer schema v2); the technician writes the config
#   2. start it with the uplink to the CSE cut: READY, records pile up in the buffer
#   3. upgrade to the current package while it runs: config kept, buffer kept and migrated (v3)
#   4. uplink back: the pending records are delivered, /readyz turns green
#   5. reload: a rejected config keeps the daemon running; a good one adds an adapter
#   6. stop: drains, records still waiting are kept
#   7. downgrade onto the v3 buffer: refused with a clear message, nothing wiped
#   8. upgrade again: the records kept through the refused downgrade are delivered
#   9. purge: what the package created goes, the technician's own files stay
#
# Every line the host checks starts with "BOOTTEST "; "EVIDENCE " lines are the proof printed
# into the test log. Ends with "BOOTTEST RESULT PASS" or "BOOTTEST FAIL: <why>".
set -uo pipefail

here=/mnt/boottest
# shellcheck source=/dev/null
. "$here/params" # PREV_DEB PREV_VERSION CUR_DEB CUR_VERSION UPGRADE_RECORDS RELOAD_RECORDS
cfg=/etc/citygate/citygate.toml
state=/var/lib/citygate
db=$state/buffer.sqlite
cse_ip=10.0.2.100
export DEBIAN_FRONTEND=noninteractive
# apt installs the local files (the guest has no mirror); keep the admin's config when the package's changed too
# (what unattended-upgrades does).
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

say() { echo "BOOTTEST $*"; }
ev() { echo "EVIDENCE $*"; }
fail() {
  say "FAIL: $*"
  echo "--- journalctl -u citygate (last 40 lines)"
  journalctl -u citygate --no-pager -n 40 -o short-monotonic
  systemctl status citygate --no-pager -l 2>&1 | head -n 20
  exit 1
}
phase_name="" phase_start=0
phase() {
  local now
  now=$(date +%s)
  [ -z "$phase_name" ] || say "TIME $phase_name $((now - phase_start)) s"
  phase_name=$1 phase_start=$now
  say "PHASE $1"
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out after ${secs} s waiting for: $what"
}
# Buffer reads as the service user: a root-owned -wal/-shm file would lock the daemon out.
sql() { runuser -u citygate -- sqlite3 -batch "$db" "$1"; }
pending() { sql 'SELECT count(*) FROM records'; }
pending_is() { [ "$(pending)" = "$1" ]; }
metric() { curl -fsS http://127.0.0.1:9810/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
buffer_metric_is() { [ "$(metric citygate_buffer_records)" = "$1" ]; }
readyz_code() { curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9810/readyz; }
journal_since() { journalctl --no-pager -o short-monotonic --since "@$1" "${@:2}"; }
# The journal lines since $1 that match the extended regex $2 (the citygate unit and systemd's
# messages about it).
show_journal() {
  journal_since "$1" -u citygate | grep -E "$2" | sed 's/^/EVIDENCE journal: /'
}
uplink_cut() { ip route add unreachable "$cse_ip/32"; ev "uplink to the CSE cut (ip route unreachable $cse_ip)"; }
uplink_back() { ip route del unreachable "$cse_ip/32"; ev "uplink to the CSE restored"; }
readings() { # DEVICE COUNT FIRST_VALUE
  local i
  for ((i = 0; i < $2; i++)); do
    printf '{"device": "%s", "ts": "2026-11-23T10:%02d:00Z", "values": {"energy_kwh": %d}}\n' "$1" "$i" "$(($3 + i))"
  done
}
files() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | paste -sd' '; }
tree_hash() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum | sha256sum | cut -c1-16); }

# ------------------------------------------------------------------------------------------------
phase "install $PREV_VERSION (previous package, buffer schema v2)"
apt-get install "${apt_opts[@]}" "$here/$PREV_DEB" 2>&1 | sed 's/^/    apt: /'
[ "$(dpkg-query -W -f '${Version}' citygate)" = "$PREV_VERSION" ] || fail "citygate $PREV_VERSION is not installed"
ev "installed: $(dpkg-query -W -f '${Package} ${Version} ${Status}' citygate)"
ev "unit enabled: $(systemctl is-enabled citygate), not started on a fresh install: $(systemctl is-active citygate)"
getent passwd citygate >/dev/null || fail "the package did not create the user citygate"

# The technician's config (valid for both versions). The replay files stand in for meters and
# are the technician's own files in /etc/citygate (purge must keep them).
readings cab-upgrade "$UPGRADE_RECORDS" 1000 >/etc/citygate/upgrade-readings.jsonl
readings cab-reload "$RELOAD_RECORDS" 2000 >/etc/citygate/reload-readings.jsonl
cat >"$cfg" <<EOF
# Cabinet 17 (edited by the technician)
[gateway]
name = "cab17"
state_dir = "/var/lib/citygate"

[log]
level = "info"

[telemetry]
listen = "127.0.0.1:9810"

[buffer]
max_bytes = "64MiB"
when_full = "drop_oldest"

[southbound.upgrade]
type = "replay"
file = "/etc/citygate/upgrade-readings.jsonl"
rate = 0.0
resume = true

[northbound]
binding = "http"
cse_url = "http://$cse_ip:8080"
cse_id = "/id-in"
cse_name = "cse-in"
originator = "C"
app_id = "Ncitygate"
ae_name = "cab17"
release = "3"
request_timeout = "5s"
backoff = { initial = "200ms", max = "2s", auth_retry = "5s" }
EOF
citygate check -c "$cfg" || fail "the technician's config does not pass citygate check"
conf_sum=$(sha256sum "$cfg" | cut -c1-16)

# ------------------------------------------------------------------------------------------------
phase "start $PREV_VERSION with the uplink cut: READY, records wait in the buffer"
uplink_cut
t=$(date +%s)
systemctl start citygate || fail "systemctl start citygate ($PREV_VERSION) failed"
ev "systemctl start returned 0: $(systemctl show citygate -p Type -p ActiveState -p SubState -p MainPID | paste -sd' ')"
show_journal "$t" 'Started|citygate running'
wait_for 30 "$UPGRADE_RECORDS records pending in the buffer" pending_is "$UPGRADE_RECORDS"
ev "/readyz while the CSE is unreachable: HTTP $(readyz_code)"
schema_before=$(sql 'PRAGMA user_version')
epoch_before=$(sql "SELECT value FROM meta WHERE key = 'epoch'")
pid_before=$(systemctl show citygate -p MainPID --value)
ev "before the upgrade: $(pending) records pending, buffer schema v$schema_before, epoch $epoch_before, config sha256 $conf_sum, pid $pid_before"
[ "$schema_before" = 2 ] || fail "the previous package should create a v2 buffer, found v$schema_before"

# ------------------------------------------------------------------------------------------------
phase "upgrade $PREV_VERSION -> $CUR_VERSION while running, records pending"
t=$(date +%s)
sleep 1 # journal timestamps are in whole seconds here: keep the phases apart
apt-get install "${apt_opts[@]}" "$here/$CUR_DEB" 2>&1 | sed 's/^/    apt: /'
[ "$(dpkg-query -W -f '${Version}' citygate)" = "$CUR_VERSION" ] || fail "the upgrade to $CUR_VERSION did not install"
ev "installed: $(dpkg-query -W -f '${Package} ${Version} ${Status}' citygate); $(citygate version | paste -sd' ' | cut -c1-60)"
wait_for 30 "citygate active after the upgrade" systemctl is-active --quiet citygate
pid_after=$(systemctl show citygate -p MainPID --value)
[ "$pid_after" != "$pid_before" ] || fail "the upgrade did not restart citygate (pid $pid_before)"
[ "$(sha256sum "$cfg" | cut -c1-16)" = "$conf_sum" ] || fail "the upgrade changed the technician's config"
ev "config kept: sha256 $(sha256sum "$cfg" | cut -c1-16) (package's new version beside it: $(ls /etc/citygate/citygate.toml.dpkg-dist 2>/dev/null || echo none))"
schema_after=$(sql 'PRAGMA user_version')
epoch_after=$(sql "SELECT value FROM meta WHERE key = 'epoch'")
[ "$epoch_after" = "$epoch_before" ] || fail "the buffer was replaced (epoch $epoch_before -> $epoch_after)"
[ "$schema_after" -gt "$schema_before" ] || fail "the buffer schema was not migrated (v$schema_after)"
[ "$(pending)" = "$UPGRADE_RECORDS" ] || fail "records lost in the upgrade: $(pending) of $UPGRADE_RECORDS pending"
ev "after the upgrade: $(pending) records pending, buffer schema v$schema_before -> v$schema_after, same epoch $epoch_after, restarted (pid $pid_before -> $pid_after)"
show_journal "$t" 'Stopping|Stopped|Starting|Started|migrat|citygate running|citygate stopped'

# ------------------------------------------------------------------------------------------------
phase "uplink back: the records kept through the upgrade are delivered"
uplink_back
wait_for 60 "the buffer to empty" buffer_metric_is 0
wait_for 30 "/readyz 200" test "$(readyz_code)" = 200
ev "buffer empty: citygate_buffer_records $(metric citygate_buffer_records), delivered since start $(metric citygate_sync_records_delivered_total)"
ev "/readyz: HTTP $(readyz_code) $(curl -s http://127.0.0.1:9810/readyz | head -c 200)"

# ------------------------------------------------------------------------------------------------
phase "reload"
cp -p "$cfg" /root/citygate.toml.good # keeps root:citygate 0640
printf '\n[southbound.typo]\ntype = "replay"\nfiel = "/etc/citygate/reload-readings.jsonl"\n' >>"$cfg"
if systemctl reload citygate 2>/dev/null; then fail "systemctl reload accepted a config with an unknown key"; fi
systemctl is-active --quiet citygate || fail "a rejected reload stopped citygate"
[ "$(systemctl show citygate -p MainPID --value)" = "$pid_after" ] || fail "a rejected reload restarted citygate"
ev "reload of a broken config refused by ExecReload (citygate check), still active, same pid $pid_after"
mv /root/citygate.toml.good "$cfg"
# With the uplink cut again, the new adapter's records stay in the buffer: the downgrade and the
# second upgrade below must keep them.
uplink_cut
cat >>"$cfg" <<'EOF'

[southbound.reload]
type = "replay"
file = "/etc/citygate/reload-readings.jsonl"
rate = 0.0
resume = true
EOF
t=$(date +%s)
systemctl reload citygate || fail "systemctl reload citygate failed"
[ "$(systemctl show citygate -p MainPID --value)" = "$pid_after" ] || fail "reload restarted the process"
wait_for 30 "the reloaded adapter's $RELOAD_RECORDS records in the buffer" buffer_metric_is "$RELOAD_RECORDS"
ev "reload: exit 0, same pid $pid_after, new adapter 'reload' buffered $(metric citygate_buffer_records) records"
show_journal "$t" 'Reload|reload|adapter'

# ------------------------------------------------------------------------------------------------
phase "stop drains"
t=$(date +%s)
systemctl stop citygate || fail "systemctl stop failed"
ev "stopped: $(systemctl show citygate -p ActiveState -p Result -p ExecMainStatus | paste -sd' ')"
[ "$(systemctl show citygate -p Result --value)" = success ] || fail "citygate did not stop cleanly"
show_journal "$t" 'Stopping|Stopped|stopping|stopped|Deactivated'
journal_since "$t" -u citygate | grep -q 'citygate stopped.*clean=true' || fail "no 'citygate stopped clean=true' in the journal"
[ "$(pending)" = "$RELOAD_RECORDS" ] || fail "records lost on stop: $(pending) of $RELOAD_RECORDS"
ev "after stop: $(pending) records kept in the buffer"

# ------------------------------------------------------------------------------------------------
phase "downgrade $CUR_VERSION -> $PREV_VERSION onto the v$schema_after buffer: refused, nothing wiped"
systemctl start citygate || fail "restart before the downgrade failed"
systemctl stop citygate
hash_before=$(tree_hash "$state")
ev "state before: $(files "$state"), content $hash_before"
t=$(date +%s)
sleep 1
apt-get install "${apt_opts[@]}" --allow-downgrades "$here/$PREV_DEB" 2>&1 | sed 's/^/    apt: /'
ev "installed: $(dpkg-query -W -f '${Version}' citygate)"
rc=0
systemctl start citygate 2>&1 | sed 's/^/    systemctl: /' || true
systemctl is-active --quiet citygate && rc=1
[ "$rc" = 0 ] || fail "$PREV_VERSION started on a v$schema_after buffer"
ev "systemctl start citygate ($PREV_VERSION): $(systemctl show citygate -p ActiveState -p Result | paste -sd' ')"
journal_since "$t" -u citygate | grep -q 'newer than this citygate supports' \
  || fail "the journal does not say why the old version refuses the buffer"
journal_since "$t" -u citygate | grep -m1 'newer than this citygate supports' | sed 's/^/EVIDENCE journal: /'
systemctl stop citygate 2>/dev/null || true
systemctl reset-failed citygate 2>/dev/null || true
hash_after=$(tree_hash "$state")
[ "$hash_after" = "$hash_before" ] || fail "the refused downgrade changed the buffer ($hash_before -> $hash_after)"
ev "state after the refused start: $(files "$state"), content $hash_after (unchanged), schema v$(sql 'PRAGMA user_version'), $(pending) records pending"

# ------------------------------------------------------------------------------------------------
phase "upgrade again $PREV_VERSION -> $CUR_VERSION: the kept records are delivered"
apt-get install "${apt_opts[@]}" "$here/$CUR_DEB" 2>&1 | sed 's/^/    apt: /'
systemctl is-active --quiet citygate || systemctl start citygate || fail "$CUR_VERSION does not start after the refused downgrade"
uplink_back
wait_for 60 "the buffer to empty" buffer_metric_is 0
ev "delivered after the refused downgrade: citygate_buffer_records $(metric citygate_buffer_records), epoch $(sql "SELECT value FROM meta WHERE key = 'epoch'") (same as at the start: $epoch_before)"
systemctl stop citygate

# ------------------------------------------------------------------------------------------------
phase "purge"
# The technician's own files: a note and the replay files in /etc/citygate, a copy of the buffer
# in /var/lib/citygate.
echo "cabinet 17: meter swapped 2026-11-30" >/etc/citygate/NOTES
cp "$db" "$state/buffer-before-swap.sqlite"
ev "before purge: /etc/citygate: $(files /etc/citygate); $state: $(files "$state")"
apt-get purge -y -q citygate 2>&1 | sed 's/^/    apt: /'
dpkg-query -W -f '${Status}' citygate 2>/dev/null | grep -q 'not-installed' \
  || ! dpkg-query -W citygate >/dev/null 2>&1 || fail "citygate still known to dpkg after purge"
for gone in "$cfg" "$db" "$db-wal" "$db-shm" /usr/bin/citygate /usr/lib/systemd/system/citygate.service \
  /etc/systemd/system/multi-user.target.wants/citygate.service; do
  [ ! -e "$gone" ] || fail "purge left $gone"
done
for kept in /etc/citygate/NOTES /etc/citygate/upgrade-readings.jsonl "$state/buffer-before-swap.sqlite"; do
  [ -e "$kept" ] || fail "purge deleted the technician's $kept"
done
systemctl cat citygate >/dev/null 2>&1 && fail "systemd still knows citygate.service after purge"
left=$(find / -xdev \( -path /mnt -o -path /proc -o -path /var/log/journal \) -prune -o -name '*citygate*' -print \
  | grep -v -e '^/etc/systemd/system/citygate-boottest.service$' \
    -e '^/etc/systemd/system/multi-user.target.wants/citygate-boottest.service$' \
    -e '^/etc/citygate$' -e '^/var/lib/citygate$' -e '^/etc/citygate/' -e '^/var/lib/citygate/' || true)
[ -z "$left" ] || fail "purge left files the package created: $left"
ev "after purge: /etc/citygate: $(files /etc/citygate); $state: $(files "$state"); no other file named *citygate* on the system"
ev "user citygate kept (Debian policy): $(getent passwd citygate | cut -d: -f1,3,6)"

phase "done"
say "RESULT PASS"
