#!/usr/bin/env python3
"""Fleet bench report: reads a run's requests.csv (the proxy), status.csv (the gateways'
/status polls) and run.json, prints a markdown table, writes report.md and results.json into
the run directory, and a PNG plot (requests/s at the CSE with the outage marked, and each
gateway's drain completion). See benches/fleet/README.md for what each number means.

    report.py RUN_DIR [--png docs/img/fleet-http.png] [--title TEXT]
"""
import argparse, csv, json, math, os, statistics
from collections import Counter, defaultdict


def means5(xs):
    """The mean of every 5 consecutive values (one per second): a 5 s moving mean."""
    return [sum(xs[i:i + 5]) / 5 for i in range(len(xs) - 4)]


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = q * (len(xs) - 1)
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def overload(status, rsc):
    return status in (429, 503) or rsc.startswith("5") or rsc == "4008"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--png")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    run = json.load(open(os.path.join(a.run, "run.json")))
    ev = run["events"]
    down, up, done = ev["down"], ev["up"], ev["all_done"]
    sat = [ev["saturate_before"], ev["saturate_after"]]
    # The CSE's ceiling for the drain: the plain client's rate at the end of the outage
    # (through the proxy's door that stays open; the CSE holds what it holds when the fleet
    # comes back), when measured;
    # else the mean of before and after. ACME's rate moves within a run (over MQTT it slows
    # down as it runs), so the measurement next to the drain is the one that says what the CSE
    # could do then.
    at_recovery = run.get("ceiling_recovery")
    ceiling = at_recovery or (run["ceiling_before"] + run["ceiling_after"]) / 2
    sites = run["sites"]
    origins = {"C" + s: s for s in sites}

    # ---- the proxy's view ------------------------------------------------------------
    per_sec = Counter()          # every answered request of the fleet, by second
    cin_sec = Counter()
    over_after = Counter()
    over_total = 0
    abandoned_after = 0
    first_ok, first_reg, first_any = {}, {}, {}
    delivered_after = 0
    lat_before, lat_after = [], []
    plain_sec = {"before": Counter(), "after": Counter()}  # the ceiling client's creates, by second
    for r in csv.DictReader(open(os.path.join(a.run, "requests.csv"))):
        site = origins.get(r["origin"])
        if site is None:
            for tag, c in plain_sec.items():
                if r["origin"].startswith("Csaturate-" + tag) and r["op"] == "cin":
                    c[int(r["t_ms"]) // 1000] += 1
            continue
        t = int(r["t_ms"]) / 1000.0
        # MQTT lines have no HTTP status (empty).
        status, rsc = int(r["status"] or 200), r["rsc"]
        if rsc == "abandoned":  # the gateway gave up waiting (or its connection ended)
            if t >= up:
                abandoned_after += 1
            continue
        sec = int(t - run["events"]["gateways_started"])
        per_sec[sec] += 1
        if r["op"] == "cin":
            cin_sec[sec] += 1
            if ev["gateways_started"] + 15 < t < down:
                lat_before.append(int(r["latency_ms"]))
            elif up < t < done:
                lat_after.append(int(r["latency_ms"]))
        if overload(status, rsc):
            over_total += 1
            if t >= up:
                over_after[rsc if rsc != "0" else str(status)] += 1
        if t >= up:
            first_any.setdefault(site, t)
            if status < 500 and not overload(status, rsc):
                first_ok.setdefault(site, t)
                if r["op"] in ("ae", "get") and site not in first_reg:
                    first_reg[site] = t
            if r["op"] == "cin" and rsc in ("2001", "4105") and t <= done:
                delivered_after += 1
    # ---- the gateways' view ------------------------------------------------------------
    rows = list(csv.DictReader(open(os.path.join(a.run, "status.csv"))))
    steady_max = defaultdict(int)
    pend_at_up = {}
    drained = {}
    rss, hwm, anon = defaultdict(list), {}, defaultdict(list)
    for r in rows:
        t, s = float(r["t"]), r["site"]
        p = int(r["pending"]) if r["pending"] not in ("", "None") else None
        if r["rss_kib"] not in ("", "None"):
            rss[s].append(int(r["rss_kib"]))
            hwm[s] = int(r["hwm_kib"])
        if r.get("anon_kib") not in (None, "", "None"):
            anon[s].append(int(r["anon_kib"]))
        if p is None:
            continue
        if t < down and t > run["events"]["gateways_started"] + 5:
            steady_max[s] = max(steady_max[s], p)
        if t < up:
            pend_at_up[s] = p
        elif s not in drained and p <= max(1, steady_max[s]):
            drained[s] = t
    backlog = sum(pend_at_up.values())
    fleet_rate = run["args"]["n"] * run["args"]["rate"]
    rec = sorted(first_ok.get(s, float("nan")) - up for s in sites)
    reg = [first_reg[s] - up for s in sites if s in first_reg]
    drain = [drained[s] - up for s in sites if s in drained]
    # Fairness apart from the backoff's spread: how long each gateway took once it was back.
    # The status poll's period (2 s) is its resolution.
    own = sorted(max(0.0, drained[s] - first_ok[s]) for s in sites if s in drained and s in first_ok)
    after = {k - int(up - ev["gateways_started"]): v for k, v in per_sec.items()
             if k >= int(up - ev["gateways_started"])}
    peak = max(after.values()) if after else 0
    # The mean over 5 s: one-second bins jump when a loaded machine stalls ACME for a moment
    # and the next second answers what queued meanwhile.
    after5 = means5([after.get(s, 0) for s in range(0, max(after) + 5)] if after else [])
    peak5 = max(after5, default=0)
    above5 = sum(1 for m in after5 if m > ceiling)
    above = sum(1 for v in after.values() if v > ceiling)
    # The ceiling's own spread: a client that keeps the CSE saturated still sees its answers per
    # second swing by a fifth around the mean, so half of its own seconds are "above" it. What
    # the CSE did at most for the plain client (its best second, its best 5 s) is the level the
    # fleet must not exceed.
    plain_1s, plain_5s = [], []
    for tag, c in plain_sec.items():
        lo, hi = ev["saturate_" + tag][:2]
        xs = [c[t] for t in range(int(lo) + 1, int(hi))]  # whole seconds only
        plain_1s += xs
        plain_5s += means5(xs)
    best_1s, best_5s = max(plain_1s, default=0), max(plain_5s, default=0)
    above_best = sum(1 for v in after.values() if v > best_1s)
    above_best5 = sum(1 for m in after5 if m > best_5s)
    all_drained = max(drain) if drain else float("nan")
    ideal = delivered_after / ceiling if ceiling else float("nan")
    med = statistics.median(drain) if drain else float("nan")
    lost = sum(c["lost"] for c in run["counts"])
    dup = sum(c["duplicated"] for c in run["counts"])
    inst = sum(c["instances"] for c in run["counts"])
    rss_med = statistics.median([statistics.median(v) for v in rss.values()]) / 1024
    rss_max = max(max(v) for v in rss.values()) / 1024
    hwm_max = max(hwm.values()) / 1024
    anon_med = (statistics.median([statistics.median(v) for v in anon.values()]) / 1024
                if anon else float("nan"))
    la = ev["loadavg"]
    res = {
        "gateways": run["args"]["n"], "outage_s": round(up - down, 1),
        "outage_mode": run["args"]["outage_mode"], "fleet_rate": fleet_rate,
        "ceiling_before": run["ceiling_before"], "ceiling_after": run["ceiling_after"],
        "ceiling_recovery": at_recovery, "ceiling": ceiling,
        # The same ratio against the ceiling measured before the fleet started, for comparison.
        "all_drained_over_before_ceiling_time":
            all_drained / (delivered_after / run["ceiling_before"]) if delivered_after else None,
        "backlog_at_recovery": backlog, "peak_rps_after": peak,
        "peak_over_ceiling": peak / ceiling, "seconds_above_ceiling": above,
        "peak_5s_mean": peak5, "seconds_5s_mean_above_ceiling": above5,
        "plain_best_1s": best_1s, "plain_best_5s": best_5s,
        "seconds_above_plain_best_1s": above_best, "seconds_5s_mean_above_plain_best_5s": above_best5,
        "overload_after": dict(over_after), "overload_total": over_total,
        "abandoned_after": abandoned_after,
        "reconnect_s": [min(rec), pct(rec, .5), pct(rec, .9), max(rec)],
        "registration_after": len(reg),
        "cin_latency_ms_before": [pct(lat_before, .5), pct(lat_before, .99)],
        "cin_latency_ms_recovery": [pct(lat_after, .5), pct(lat_after, .99)],
        "drain_s": [min(drain), med, pct(drain, .9), all_drained] if drain else None,
        "drained_gateways": len(drain),
        "drain_after_own_reconnect_s": [min(own), statistics.median(own), pct(own, .9), max(own)] if own else None,
        "records_delivered_in_recovery": delivered_after,
        "ceiling_time_s": ideal, "all_drained_over_ceiling_time": all_drained / ideal,
        "slowest_over_median": all_drained / med if med else float("nan"),
        "instances_at_cse": inst, "expected": run["lines"] * len(sites), "lost": lost,
        "duplicated": dup, "rss_mib_median": rss_med, "rss_mib_max": rss_max,
        "hwm_mib_max": hwm_max, "anon_mib_median": anon_med, "loadavg": la,
    }
    json.dump(res, open(os.path.join(a.run, "results.json"), "w"), indent=1)
    tags = ("before", "recovery", "after") if at_recovery else ("before", "after")
    levels = [ev.get("saturate_levels_" + t) for t in tags]
    levels_note = (" by requests in flight: " + " / ".join(
        ", ".join("%s: %.0f" % kv for kv in lv.items()) for lv in levels)) if all(levels) else ""
    warm = ev.get("saturate_warmup")
    warm_note = "; warm-up %.0f s at %.0f/s not counted" % (warm[1] - warm[0], warm[2]) if warm else ""
    f3 = lambda xs: " / ".join("%.1f" % x for x in xs)
    md = [
        "| measure | value | goal |", "|---|---|---|",
        "| gateways, records/s each (fleet) | %d, %.2f (%.0f/s) | |" % (res["gateways"], run["args"]["rate"], fleet_rate),
        "| outage (%s) | %.0f s | |" % (res["outage_mode"], res["outage_s"]),
        "| CSE ceiling (plain client's best rate%s, %s%s) | %s creates/s | |"
        % (levels_note, " / ".join(tags), warm_note,
           " / ".join("%.0f" % run["ceiling_" + t] for t in tags)),
        "| ceiling for the drain (%s) | %.0f creates/s | |"
        % ("at recovery" if at_recovery else "mean of before and after", ceiling),
        "| backlog at recovery | %d records | |" % backlog,
        "| peak requests/s after recovery | %d (%.2f × ceiling) | |" % (peak, res["peak_over_ceiling"]),
        "| peak of the 5 s mean after recovery | %.0f (%.2f × ceiling) | |" % (peak5, peak5 / ceiling),
        "| seconds above the ceiling's mean (1 s bins / 5 s mean) | %d / %d | |" % (above, above5),
        "| the plain client's best second / best 5 s mean at the CSE | %d / %.0f creates/s | |" % (best_1s, best_5s),
        "| seconds the fleet got more than that (1 s bins / 5 s mean) | %d / %d | ≤ a few |" % (above_best, above_best5),
        "| overload answers after recovery (429/503/5xxx/4008) | %d | no storm |" % sum(over_after.values()),
        "| requests the gateways gave up on after recovery (timeouts) | %d | |" % abandoned_after,
        "| create latency at the CSE, median / p99: before the outage, during the drain | %.0f / %.0f ms, %.0f / %.0f ms | |" % tuple(res["cin_latency_ms_before"] + res["cin_latency_ms_recovery"]),
        "| reconnect after recovery, min / median / p90 / max | %s s | spread |" % f3(res["reconnect_s"]),
        "| gateways re-registering (AE/tree requests) after recovery | %d | |" % len(reg),
        "| drain per gateway, min / median / p90 / max | %s s | |" % (f3(res["drain_s"]) if drain else "-"),
        "| drain after the gateway's own reconnect, min / median / p90 / max | %s s | |"
        % (f3(res["drain_after_own_reconnect_s"]) if own else "-"),
        "| every backlog delivered after recovery | %.1f s | |" % all_drained,
        "| records delivered meanwhile / ceiling | %.1f s | |" % ideal,
        "| → ratio | %.2f | ≤ 1.5 |" % res["all_drained_over_ceiling_time"],
        "| (ratio against the ceiling before the fleet started) | %.2f | |"
        % (res["all_drained_over_before_ceiling_time"] or float("nan")),
        "| slowest gateway / median drain | %.2f | ≤ 2 |" % res["slowest_over_median"],
        "| contentInstances at the CSE (expected) | %d (%d): %d lost, %d duplicated | 0, 0 |" % (inst, res["expected"], lost, dup),
        "| RSS per gateway, median / max (VmHWM max) | %.1f / %.1f (%.1f) MiB | |" % (rss_med, rss_max, hwm_max),
        "| of which anonymous (RssAnon, median; the rest is the binary's shared pages) | %.1f MiB | |" % anon_med,
        "| load average start / before outage / end | %s / %s / %s | |" % (" ".join(la["start"]), " ".join(la["before_outage"]), " ".join(la["end"])),
    ]
    text = "\n".join(md) + "\n"
    open(os.path.join(a.run, "report.md"), "w").write(text)
    print(text)
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        g0 = ev["gateways_started"]
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
        xs = list(range(0, max(per_sec) + 1))
        ax.plot(xs, [per_sec.get(x, 0) for x in xs], lw=1, label="requests/s at the CSE (fleet)")
        ax.plot(xs, [cin_sec.get(x, 0) for x in xs], lw=1, alpha=.7, label="contentInstance creates/s")
        ax.axhline(ceiling, color="red", ls="--", lw=1, label="CSE ceiling (%.0f/s)" % ceiling)
        ax.axvspan(down - g0, up - g0, color="grey", alpha=.25, label="outage")
        ax.set_ylabel("requests/s")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(a.title or "%d gateways, %.0f s outage" % (res["gateways"], res["outage_s"]))
        ds = sorted((drained[s] - g0, s) for s in drained)
        ax2.plot([d for d, _ in ds], range(1, len(ds) + 1), drawstyle="steps-post",
                 label="gateways drained")
        rs = sorted(first_ok[s] - g0 for s in first_ok)
        ax2.plot(rs, range(1, len(rs) + 1), drawstyle="steps-post", label="gateways reconnected")
        ax2.axvspan(down - g0, up - g0, color="grey", alpha=.25)
        ax2.set_ylabel("gateways")
        ax2.set_xlabel("seconds since the gateways started")
        ax2.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(a.png)), exist_ok=True)
        fig.savefig(a.png, dpi=90)
        print("plot:", a.png)


if __name__ == "__main__":
    main()
