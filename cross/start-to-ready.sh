#!/usr/bin/env bash
# Measures citygate's start-to-READY time the way systemd sees it (Type=notify): starts the
# binary with NOTIFY_SOCKET pointing at a unix datagram socket of its own and reports the
# milliseconds until READY=1 arrives, then stops it with SIGTERM and reports how long the
# graceful stop took. No systemd needed.
#
#   cross/start-to-ready.sh [options] [BINARY] [-- CITYGATE ARGS...]
#
#   BINARY        default: $CARGO_TARGET_DIR (or target/) release/citygate, else debug/citygate
#   ARGS          default: run -c config/citygate.toml   (run from the repository root)
#   --runs N      repeat N times, print min / median / max (default 1)
#   --timeout S   give up waiting for READY=1 after S seconds (default 30; exit code 2)
#   --watch S     after READY, keep listening S seconds and count WATCHDOG=1 pings (default 0)
#   --runner CMD  run the binary through CMD, e.g. --runner qemu-aarch64-static
#
# The buffer goes to a temporary STATE_DIRECTORY, removed afterwards. WATCHDOG_USEC=30000000
# (WatchdogSec=30s as in the unit) and WATCHDOG_PID are set as systemd would set them.
# Each datagram's sender PID is checked (SO_PASSCRED): under NotifyAccess=main systemd drops
# notifications that do not come from the main process.
#
# Exit codes: 0 READY seen in every run; 1 citygate exited or misbehaved; 2 no READY=1 in time.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
exec python3 - "$repo" "$@" <<'PY'
import os, signal, socket, statistics, struct, subprocess, sys, tempfile, time

repo = sys.argv[1]
args = sys.argv[2:]
runs, timeout, watch, runner, binary, extra = 1, 30.0, 0.0, None, None, None
i = 0
while i < len(args):
    a = args[i]
    if a == "--":
        extra = args[i + 1:]
        break
    elif a in ("--runs", "--timeout", "--watch", "--runner"):
        if i + 1 >= len(args):
            sys.exit(f"start-to-ready: {a} needs a value")
        v = args[i + 1]
        if a == "--runs": runs = int(v)
        elif a == "--timeout": timeout = float(v)
        elif a == "--watch": watch = float(v)
        else: runner = v.split()
        i += 2
        continue
    elif a in ("-h", "--help"):
        print(open(__file__).read() if os.path.exists(__file__) else "see the header of cross/start-to-ready.sh")
        sys.exit(0)
    elif binary is None:
        binary = a
    else:
        sys.exit(f"start-to-ready: unexpected argument {a!r}")
    i += 1

if binary is None:
    tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
    for c in (os.path.join(tdir, "release", "citygate"), os.path.join(tdir, "debug", "citygate")):
        if os.access(c, os.X_OK):
            binary = c
            break
    if binary is None:
        sys.exit(f"start-to-ready: no citygate binary in {tdir}/{{release,debug}}: build it or pass BINARY")
binary = os.path.abspath(binary)
if extra is None:
    extra = ["run", "-c", "config/citygate.toml"]

SO_PASSCRED, SCM_CREDENTIALS = 16, 2

def log(msg):
    print(msg, flush=True)

def one_run(n):
    tmp = tempfile.mkdtemp(prefix="citygate-ready-")
    sock_path = os.path.join(tmp, "notify.sock")
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
    s.bind(sock_path)
    env = dict(os.environ)
    env.update({
        "NOTIFY_SOCKET": sock_path,
        "STATE_DIRECTORY": state,
        "WATCHDOG_USEC": "30000000",
    })
    env.pop("LISTEN_FDS", None)
    # WATCHDOG_PID must be the daemon's own PID: let a shell export its $$ and exec the binary.
    cmd = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"]
    cmd += (runner or []) + [binary] + extra
    errlog = open(os.path.join(tmp, "stderr.log"), "w+b")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=repo, env=env, stdin=subprocess.DEVNULL,
                         stdout=errlog, stderr=subprocess.STDOUT)
    ready_ms, msgs, pings, foreign = None, [], 0, set()
    deadline = t0 + timeout
    result = None
    try:
        while True:
            now = time.monotonic()
            if ready_ms is not None and now >= ready_at + watch:
                break
            if ready_ms is None and now >= deadline:
                result = 2
                break
            if ready_ms is None and p.poll() is not None:
                result = 1
                break
            end = deadline if ready_ms is None else ready_at + watch
            s.settimeout(max(0.01, min(0.1, end - now)))
            try:
                data, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            t = (time.monotonic() - t0) * 1000
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == SCM_CREDENTIALS:
                    pid, _uid, _gid = struct.unpack("iII", cdata[:12])
            if pid is not None and pid != p.pid:
                foreign.add(pid)
            for line in data.decode("utf-8", "replace").splitlines():
                msgs.append((t, line))
                if line == "WATCHDOG=1":
                    pings += 1
                if line == "READY=1" and ready_ms is None:
                    ready_ms = t
                    ready_at = time.monotonic()
        # Stop it the way systemd does.
        stop_ms, code = None, p.poll()
        if code is None:
            ts = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                code = p.wait(timeout=30)
                stop_ms = (time.monotonic() - ts) * 1000
            except subprocess.TimeoutExpired:
                p.kill()
                code = p.wait()
                log(f"run {n}: did not exit within 30 s of SIGTERM (TimeoutStopSec=30s): killed")
                result = result or 1
        errlog.seek(0)
        out = errlog.read().decode("utf-8", "replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        s.close()
        errlog.close()
        subprocess.run(["rm", "-rf", tmp])
    for t, line in msgs[:12]:
        log(f"run {n}:   +{t:8.1f} ms  {line}")
    if len(msgs) > 12:
        log(f"run {n}:   ... {len(msgs) - 12} more notification lines")
    if foreign:
        log(f"run {n}: WARNING: notifications from PID(s) {sorted(foreign)}, not the main PID {p.pid}: "
            "systemd (NotifyAccess=main) would drop them")
        result = result or 1
    tail = "\n".join(out.strip().splitlines()[-15:])
    if result == 2:
        log(f"run {n}: no READY=1 within {timeout:g} s ({len(msgs)} other notification lines). "
            "Does this citygate build call sd_notify(READY=1) yet? Under Type=notify systemd would "
            "fail the start (TimeoutStartSec). Last output:\n" + tail)
        return result, None
    if result == 1:
        log(f"run {n}: citygate exited with code {code} before READY=1. Last output:\n" + tail)
        return result, None
    log(f"run {n}: READY=1 after {ready_ms:.1f} ms"
        + (f"; {pings} WATCHDOG=1 in {watch:g} s" if watch else "")
        + (f"; stopped {stop_ms:.0f} ms after SIGTERM, exit code {code}" if stop_ms is not None else f"; exit code {code}"))
    if code not in (0, None):
        log(f"run {n}: WARNING: exit code {code} after SIGTERM (expected 0). Last output:\n" + tail)
    return 0, ready_ms

log(f"start-to-ready: {' '.join((runner or []) + [binary] + extra)}  (cwd {repo})")
times, worst = [], 0
for n in range(1, runs + 1):
    rc, ms = one_run(n)
    worst = max(worst, rc)
    if rc:
        break
    times.append(ms)
if times:
    if len(times) > 1:
        log(f"start-to-READY over {len(times)} runs: min {min(times):.1f} ms, "
            f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
    else:
        log(f"start-to-READY: {times[0]:.1f} ms")
sys.exit(worst)
PY
