#!/usr/bin/env python3
"""Fleet bench driver: N citygate gateways, one ACME CSE behind a counting proxy, a platform
outage under load, and the recovery measured. Started by benches/fleet/run.sh (see README.md).

Phases: ACME + proxy up -> the CSE's ceiling (plain saturating client through the proxy) ->
N gateways replaying at a steady rate -> outage (proxy down; near its end the ceiling again,
through the proxy's door that stays open) -> recovery -> every backlog delivered and every replay file done -> count
at the CSE -> ceiling again -> report + plot.
"""
import argparse, concurrent.futures as cf, csv, json, os, signal, socket, statistics, subprocess
import sys, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target/release/citygate")
PROXY = os.path.join(ROOT, "target/release/examples/fleet_proxy")


_ports_given = set()


def free_port():
    """A port no one listens on, never the same twice in a run: the kernel may hand a port
    closed a moment ago out again, and a gateway that cannot bind its telemetry port stops."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _ports_given:
            _ports_given.add(p)
            return p


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def cse_get(base, path, origin="CAdmin", timeout=30):
    req = urllib.request.Request(base + path, headers={
        "X-M2M-Origin": origin, "X-M2M-RI": "fleet-%f" % time.time(), "X-M2M-RVI": "3",
        "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def rss_kib(pid):
    out = {}
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith(("VmRSS", "VmHWM", "RssAnon")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Fleet:
    def __init__(self, a):
        self.a = a
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        self.procs = []
        self.events = {"loadavg": {}}

    def log(self, *m):
        print("[%6.1f s]" % (time.time() - self.t0), *m, flush=True)

    # ---- peers -------------------------------------------------------------------------
    def start_acme(self):
        if self.a.binding == "mqtt":
            return self.start_acme_mqtt()
        self.acme_port = free_port()
        # ACME's WSGI server keeps at most 100 connections open (its default); a 101st waits
        # unaccepted until one closes, and a request on it can wait out a gateway's timeout.
        # A platform for a fleet takes more: 1000 here (the proxy opens one per request in
        # flight).
        env = dict(os.environ, ACME_CONNECTION_LIMIT=str(self.a.acme_connection_limit))
        self.acme = subprocess.Popen(["bash", os.path.join(ROOT, "tests/peers/run-acme.sh"),
                                      str(self.acme_port)], env=env, start_new_session=True,
                                     stdout=open(os.path.join(self.out, "acme.log"), "w"),
                                     stderr=subprocess.STDOUT)
        base = "http://127.0.0.1:%d" % self.acme_port
        for _ in range(240):
            try:
                cse_get(base, "/cse-in", timeout=2)
                return base
            except Exception:
                time.sleep(0.5)
        raise SystemExit("ACME did not come up (see %s/acme.log)" % self.out)

    def start_acme_mqtt(self):
        """mosquitto and ACME with its MQTT binding, by the tests' helpers (fleet_proxy
        peers-mqtt); ACME's HTTP port stays open for the count at the CSE."""
        self.acme = subprocess.Popen([PROXY, "peers-mqtt"], start_new_session=True,
                                     stdout=subprocess.PIPE, text=True,
                                     stderr=open(os.path.join(self.out, "acme.log"), "w"))
        line = self.acme.stdout.readline().split()
        if len(line) != 2:
            raise SystemExit("ACME/mosquitto did not come up (see %s/acme.log)" % self.out)
        self.broker_port = int(line[1])
        return line[0]

    def start_proxy(self, upstream):
        if self.a.binding == "mqtt":
            upstream = "127.0.0.1:%d" % self.broker_port
        self.proxy_port, self.ctl_port, self.plain_port = free_port(), free_port(), free_port()
        self.csv = os.path.join(self.out, "requests.csv")
        self.proxy = subprocess.Popen([PROXY, "proxy", "--listen", "127.0.0.1:%d" % self.proxy_port,
                                       "--upstream", upstream, "--control",
                                       "127.0.0.1:%d" % self.ctl_port, "--log", self.csv,
                                       "--outage", self.a.outage_mode,
                                       "--plain-listen", "127.0.0.1:%d" % self.plain_port,
                                       "--protocol", self.a.binding],
                                      stderr=open(os.path.join(self.out, "proxy.log"), "w"))
        time.sleep(0.5)
        scheme = "mqtt" if self.a.binding == "mqtt" else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.proxy_port)

    def control(self, what):
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d/%s" % (self.ctl_port, what), method="POST"), timeout=5).read()

    def saturate(self, tag, seconds, levels=None, plain_door=False):
        """The CSE's ceiling: the best rate of a plain client over the concurrency levels of
        `levels` (default `--saturate-levels`), `seconds` split between them. ACME serves fewer requests in
        flight faster (over HTTP about 205/s with 1-2 in flight against 165/s with 16), so
        one level alone would understate what the CSE can do. `plain_door`: through the proxy's
        second listener, which the outage does not close (the same path, overhead included)."""
        t0 = time.time()
        levels = levels or [int(c) for c in self.a.saturate_levels.split(",")]
        port = self.plain_port if plain_door else self.proxy_port
        if self.a.binding == "mqtt":
            target = ["saturate-mqtt", "--broker", "127.0.0.1:%d" % port]
        else:
            target = ["saturate", "--url", "http://127.0.0.1:%d" % port]
        rates = {}
        for c in levels:
            out = subprocess.run([PROXY] + target + ["--seconds", str(seconds / len(levels)),
                                  "--concurrency", str(c), "--tag", "%s-c%d" % (tag, c)],
                                 check=True, capture_output=True, text=True)
            rates[c] = float(out.stdout.strip())
        rate = max(rates.values())
        self.events["saturate_" + tag] = [t0, time.time(), rate]
        self.events["saturate_levels_" + tag] = rates
        self.log("ceiling (%s): %.1f creates/s (by requests in flight: %s)" % (
            tag, rate, ", ".join("%d: %.0f" % kv for kv in rates.items())))
        return rate

    # ---- gateways ----------------------------------------------------------------------
    def start_gateways(self, duration):
        a = self.a
        self.lines = int(round(a.rate * duration))
        self.gws = []
        for i in range(1, a.n + 1):
            site = "gw%03d" % i
            d = os.path.join(self.out, "gw", site)
            os.makedirs(d, exist_ok=True)
            replay = os.path.join(d, "input.jsonl")
            with open(replay, "w") as f:
                for n in range(self.lines):
                    f.write('{"device":"meter","values":{"n":%d,"power_w":%.1f}}\n' % (n, 1000 + n % 97))
            port = free_port()
            env = dict(os.environ, CITYGATE_SITE=site, CITYGATE_STATE_DIR=os.path.join(d, "state"),
                       CITYGATE_TELEMETRY="127.0.0.1:%d" % port, CITYGATE_CSE_URL=self.proxy_url,
                       CITYGATE_BROKER=self.proxy_url,
                       CITYGATE_REPLAY_FILE=replay, CITYGATE_RATE=str(a.rate),
                       CITYGATE_INITIAL_JITTER=a.initial_jitter, CITYGATE_BACKOFF_MAX=a.backoff_max,
                       CITYGATE_MAX_IN_FLIGHT=str(a.max_in_flight))
            template = "gateway-mqtt.toml" if a.binding == "mqtt" else "gateway.toml"
            p = subprocess.Popen([BIN, "run", "-c", os.path.join(ROOT, "benches/fleet", template)],
                                 env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(d, "log"), "w"))
            self.gws.append({"site": site, "port": port, "proc": p})
            # Starts spread over one record period: a replay paces from its own start, so
            # gateways started at once would send in step (bursts of N every period, which a
            # real fleet, started over days, does not do; it made ACME's latency 0.3-0.5 s at
            # a tenth of its ceiling).
            time.sleep(1.0 / a.rate / a.n if a.rate > 0 else 0)

    def status(self, gw):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/status" % gw["port"], timeout=5) as r:
                s = json.loads(r.read())
            if s.get("gateway") != gw["site"]:
                return None  # someone else's port: not this gateway's numbers
            return {"pending": s["buffer"]["pending_records"] if s.get("buffer") else None,
                    "records": sum(x["records"] for x in s["adapters"]),
                    "northbound": s["northbound"]}
        except Exception:
            return None

    def poll(self, writer):
        t = time.time()
        with cf.ThreadPoolExecutor(16) as ex:
            sts = list(ex.map(self.status, self.gws))
        rows = []
        for gw, st in zip(self.gws, sts):
            if gw["proc"].poll() is not None:
                raise SystemExit("gateway %s exited (status %s): see %s" % (
                    gw["site"], gw["proc"].returncode, os.path.join(self.out, "gw", gw["site"], "log")))
            mem = rss_kib(gw["proc"].pid)
            row = {"t": round(t, 3), "site": gw["site"], "pending": st and st["pending"],
                   "records": st and st["records"], "northbound": st and st["northbound"],
                   "rss_kib": mem.get("VmRSS"), "hwm_kib": mem.get("VmHWM"),
                   "anon_kib": mem.get("RssAnon")}
            writer.writerow(row)
            rows.append(row)
        return rows

    def run(self):
        a = self.a
        self.t0 = time.time()
        self.events["loadavg"]["start"] = loadavg()
        acme = self.start_acme()
        self.proxy_url = self.start_proxy(acme)
        self.log("ACME %s, proxy %s (outage mode %s)" % (acme, self.proxy_url, a.outage_mode))
        # A freshly started ACME serves its first seconds slower (its rate climbs by a
        # quarter over about 15 s): warm it up first, so that the ceiling is its sustained rate.
        if a.saturate_warmup > 0:
            self.saturate("warmup", a.saturate_warmup, [int(a.saturate_levels.split(",")[-1])])
        self.ceiling_before = self.saturate("before", a.saturate_seconds)
        duration = a.warmup + a.outage + a.tail
        self.start_gateways(duration)
        self.events["gateways_started"] = time.time()
        self.log("%d gateways started, %d records each at %.2f/s (fleet %.1f/s)"
                 % (a.n, self.lines, a.rate, a.n * a.rate))
        f = open(os.path.join(self.out, "status.csv"), "w", newline="")
        w = csv.DictWriter(f, ["t", "site", "pending", "records", "northbound", "rss_kib", "hwm_kib", "anon_kib"])
        w.writeheader()
        t_start = time.time()
        phase = "warmup"
        # The ceiling at recovery: measured through the proxy's door that the outage does not
        # close, just before the platform comes back, so that the CSE holds what it will hold
        # when the fleet drains (ACME over MQTT slows down as it runs: a ceiling from before
        # the fleet started overstates it).
        recovery_at = a.outage - a.saturate_seconds - 10  # the MQTT clients take a few s to register
        recovery = None
        while True:
            now = time.time()
            if phase == "warmup" and now - t_start >= a.warmup:
                self.events["loadavg"]["before_outage"] = loadavg()
                self.control("down")
                self.events["down"] = time.time()
                self.log("platform DOWN")
                phase = "outage"
            elif (phase == "outage" and recovery is None and recovery_at >= 5
                  and now - self.events["down"] >= recovery_at):
                recovery = threading.Thread(target=self.saturate,
                                            args=("recovery", a.saturate_seconds, None, True))
                recovery.start()
            elif phase == "outage" and now - self.events["down"] >= a.outage:
                if recovery is not None:
                    recovery.join()
                self.control("up")
                self.events["up"] = time.time()
                self.log("platform UP")
                phase = "recovery"
            rows = self.poll(w)
            f.flush()
            if phase == "recovery":
                done = [r for r in rows if r["records"] == self.lines and r["pending"] == 0]
                if len(done) == len(rows):
                    self.events["all_done"] = time.time()
                    self.log("every replay file done and delivered")
                    break
                if now - self.events["up"] > a.tail + 300:
                    self.log("gave up waiting: %d of %d gateways done" % (len(done), len(rows)))
                    break
            time.sleep(max(0.0, a.poll - (time.time() - now)))
        self.events["loadavg"]["end"] = loadavg()
        f.close()
        self.count_at_cse(acme)
        self.ceiling_after = self.saturate("after", a.saturate_seconds)
        time.sleep(2)  # the proxy flushes its CSV every second

    def count_at_cse(self, acme):
        """Every gateway's replay lines at the CSE, exactly once: the container's
        contentInstances with their `con` in one read (rcn=4), each one's `n` counted."""
        def one(gw):
            site = gw["site"]
            for attempt in range(5):
                try:
                    cnt = cse_get(acme, "/cse-in/%s/meter?rcn=4" % site, timeout=120)["m2m:cnt"]
                    break
                except OSError as e:  # a loaded machine: ACME answers late, try again
                    self.log("reading %s at the CSE: %s (attempt %d)" % (site, e, attempt + 1))
                    time.sleep(5)
            else:
                raise SystemExit("cannot read %s's container at the CSE" % site)
            cins = cnt.get("m2m:cin", [])
            seen = {}
            for cin in cins:
                con = cin["con"]
                rec = json.loads(con) if isinstance(con, str) else con
                n = rec["values"]["n"]
                seen[n] = seen.get(n, 0) + 1
            lost = [n for n in range(self.lines) if n not in seen]
            dup = [n for n, c in seen.items() if c > 1]
            return {"site": site, "cni": cnt.get("cni"), "instances": len(cins),
                    "lost": len(lost), "duplicated": len(dup), "first_lost": lost[:5]}
        self.log("counting at the CSE ...")
        self.counts = [one(gw) for gw in self.gws]
        lost = sum(c["lost"] for c in self.counts)
        dup = sum(c["duplicated"] for c in self.counts)
        self.log("at the CSE: %d instances, %d lost, %d duplicated"
                 % (sum(c["instances"] for c in self.counts), lost, dup))

    def stop(self):
        for gw in getattr(self, "gws", []):
            if gw["proc"].poll() is None:
                gw["proc"].send_signal(signal.SIGTERM)
        for gw in getattr(self, "gws", []):
            try:
                gw["proc"].wait(15)
            except subprocess.TimeoutExpired:
                gw["proc"].kill()
        for p in (getattr(self, "proxy", None),):
            if p and p.poll() is None:
                p.terminate()
                p.wait(5)
        if getattr(self, "acme", None) and self.acme.poll() is None:
            os.killpg(self.acme.pid, signal.SIGTERM)
            try:
                self.acme.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.acme.pid, signal.SIGKILL)

    def save(self):
        json.dump({"args": vars(self.a), "events": self.events, "lines": self.lines,
                   "ceiling_before": self.ceiling_before, "ceiling_after": self.ceiling_after,
                   "ceiling_recovery": (self.events.get("saturate_recovery") or [None] * 3)[2],
                   "counts": self.counts,
                   "sites": [g["site"] for g in self.gws]},
                  open(os.path.join(self.out, "run.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.2, help="records/s per gateway")
    ap.add_argument("--warmup", type=float, default=30)
    ap.add_argument("--outage", type=float, default=20)
    ap.add_argument("--tail", type=float, default=60, help="replay continues this long after recovery")
    ap.add_argument("--outage-mode", choices=["refuse", "blackhole"], default="refuse")
    ap.add_argument("--binding", choices=["http", "mqtt"], default="http",
                    help="mqtt: ACME + mosquitto, the proxy relays the broker's TCP")
    ap.add_argument("--initial-jitter", default="10s")
    ap.add_argument("--backoff-max", default="30s")
    ap.add_argument("--max-in-flight", type=int, default=4)
    ap.add_argument("--saturate-seconds", type=float, default=32,
                    help="seconds of each ceiling measurement, split between the levels")
    ap.add_argument("--saturate-warmup", type=float, default=20,
                    help="seconds of plain-client load before the ceiling is measured (not counted)")
    ap.add_argument("--saturate-levels", default=None,
                    help="requests in flight of the ceiling client, comma-separated; the best "
                         "rate is the ceiling (default 1,2,4,16 over HTTP, 1,2,4 over MQTT)")
    ap.add_argument("--acme-connection-limit", type=int, default=1000,
                    help="HTTP connections ACME keeps open at once (its own default is 100)")
    ap.add_argument("--poll", type=float, default=2.0, help="seconds between /status polls")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.saturate_levels is None:
        a.saturate_levels = "1,2,4" if a.binding == "mqtt" else "1,2,4,16"
    fl = Fleet(a)
    try:
        fl.run()
        fl.save()
    finally:
        fl.stop()


if __name__ == "__main__":
    main()
