#!/usr/bin/env python3
"""Turn one gateway benchmark run directory into a markdown report.

Usage: summarize.py RUN_DIR   (prints markdown to stdout)

RUN_DIR holds, per target (direct, floor, keel, litellm) and per step (r500 ... or sat):
  TARGET-STEP.json      oha --output-format json --stats-success-breakdown
  TARGET-STEP.proc.json procstat.py output for the process serving TARGET
and meta.json written by gateway.sh. Standard library only.
"""
import json
import os
import sys

# Busy-outside-bench % above which a step's numbers say more about the machine than the target.
DISTURBED_PCT = 5

TARGETS = [("direct", "direct to mock"), ("floor", "floor (bare proxy on keel's stack)"),
           ("keel", "keel"), ("litellm", "LiteLLM proxy")]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stats(run_dir, target, step):
    o = load(os.path.join(run_dir, f"{target}-{step}.json"))
    if o is None:
        return None
    p = load(os.path.join(run_dir, f"{target}-{step}.proc.json")) or {}
    codes = {int(k): v for k, v in (o.get("statusCodeDistribution") or {}).items()}
    errs = {k: v for k, v in (o.get("errorDistribution") or {}).items() if k != "aborted due to deadline"}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    total = sum(codes.values()) + sum(errs.values())
    wall = o["summary"]["total"] or 1.0
    # Latency of the 2xx answers only (a fast 503 must not make a gateway look quick).
    lat = o.get("latencyPercentilesSuccessful") or o.get("latencyPercentiles") or {}
    cpu = p.get("cpu_seconds")
    pw = p.get("wall_seconds") or wall
    return {
        "total": total,
        "ok": ok,
        "ok_rate": ok / total if total else 0.0,
        "rps": ok / wall,  # achieved 2xx answers per second
        "p50": (lat.get("p50") or 0.0) * 1000.0,
        "p99": (lat.get("p99") or 0.0) * 1000.0,
        "rss_mb": p.get("peak_rss_kb", 0) / 1024.0,
        "cpu_pct": 100.0 * cpu / pw if cpu is not None else None,
        "host_pct": p.get("host_busy_pct"),
        "other_pct": p.get("other_busy_pct"),
        "errors": {**{str(k): v for k, v in codes.items() if not 200 <= k < 300}, **errs},
    }


def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main():
    run_dir = sys.argv[1]
    meta = load(os.path.join(run_dir, "meta.json")) or {}
    rates = meta.get("rates", [10, 500, 1000, 2000, 5000])
    sustain = meta.get("sustain_fraction", 0.98)
    queue_ms = meta.get("sustain_p50_ms", 10.0)
    out = []
    w = out.append

    w(f"## Gateway overhead, {meta.get('date', '?')}")
    w("")
    w("Machine: " + meta.get("machine", "?"))
    w("")
    w(f"Load: oha {meta.get('oha_version', '?')}, {meta.get('oha_threads', '?')} worker thread(s), "
      f"HTTP/1.1 keep-alive, {meta.get('duration', '?')} per step after a {meta.get('warmup', '?')} warm-up at the same rate; "
      f"fixed-rate steps use `-q RATE -c {meta.get('rate_conc', '?')} --latency-correction` "
      f"(latency counted from the scheduled send time, so queueing shows); the saturation step uses "
      f"`-c {meta.get('sat_conc', '?')}` with no rate limit. Upstream: `{meta.get('mock', '?')}`. "
      f"keel: `{meta.get('keel_version', '?')}`. LiteLLM: {meta.get('litellm_version', '?')}, "
      f"{meta.get('litellm_workers', '?')} worker(s). Network: {meta.get('netns', '?')}. "
      f"Load average before the run: {meta.get('loadavg_before', '?')}; after: {meta.get('loadavg_after', '?')}.")
    w("")
    w("Latency is over 2xx answers only; ok % = 2xx / all requests answered or failed (requests cut off by the "
      "end of the step are not counted); rps = 2xx answers per second achieved; RSS = peak resident memory of "
      "the serving process tree sampled every 50 ms during the step (for *direct*, that is the mock); CPU % = "
      "CPU time of that process tree / wall time (100 % = one core); host busy % = share of both cores busy "
      "machine-wide during the step (load generator + mock + gateway + anything else running); busy outside "
      "bench % = the part of that spent in processes that are not the benchmark's (other builds and tests on a "
      "shared machine; anything above a few % disturbs the numbers of that row). Added = gateway minus direct at the same rate.")
    w("")
    w("| rate (req/s) | target | achieved rps | ok % | p50 ms | p99 ms | added p50 ms | added p99 ms | p99 ratio vs direct | peak RSS MB | CPU % | host busy % | busy outside bench % |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    all_stats = {}
    steps = [(f"r{r}", str(r)) for r in rates] + [("sat", f"max (c={meta.get('sat_conc', '?')})")]
    for step, label in steps:
        d = stats(run_dir, "direct", step)
        for t, name in TARGETS:
            s = stats(run_dir, t, step)
            all_stats[(t, step)] = s
            if s is None:
                w(f"| {label} | {name} | not run | | | | | | | | | | |")
                continue
            if t != "direct" and d is not None and step != "sat":
                a50, a99 = s["p50"] - d["p50"], s["p99"] - d["p99"]
                ratio = s["p99"] / d["p99"] if d["p99"] else None
                add = f"{fmt(a50, 3)} | {fmt(a99, 3)} | {fmt(ratio, 1)}x"
            else:
                add = "— | — | —"
            w(f"| {label} | {name} | {s['rps']:.0f} | {100 * s['ok_rate']:.2f} | {fmt(s['p50'], 3)} | "
              f"{fmt(s['p99'], 3)} | {add} | {s['rss_mb']:.1f} | {fmt(s['cpu_pct'], 0)} | {fmt(s['host_pct'], 0)} | {fmt(s['other_pct'], 0)} |")
    w("")

    # Side by side: latency and its ratio to direct, per rate.
    w("Side by side (p50 / p99 in ms; ×N = ratio to direct at the same rate; ok % in brackets when below 100):")
    w("")
    w("| rate (req/s) | direct p50 / p99 | floor p50 / p99 | floor ÷ direct | keel p50 / p99 | keel ÷ direct | LiteLLM p50 / p99 | LiteLLM ÷ direct |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for step, label in steps:
        d = all_stats.get(("direct", step))
        cells = [label, f"{d['p50']:.3f} / {d['p99']:.3f}" if d else "not run"]
        for t in ("floor", "keel", "litellm"):
            s_ = all_stats.get((t, step))
            if s_ is None:
                cells += ["not run", "—"]
                continue
            okn = "" if s_["ok_rate"] >= 0.9995 else f" ({100 * s_['ok_rate']:.1f} %)"
            cells.append(f"{s_['p50']:.3f} / {s_['p99']:.3f}{okn}")
            if d and d["p50"] and d["p99"]:
                cells.append(f"×{s_['p50'] / d['p50']:.1f} / ×{s_['p99'] / d['p99']:.1f}")
            else:
                cells.append("—")
        w("| " + " | ".join(cells) + " |")
    w("")

    # Summary per target.
    w(f"Max sustained rate = highest fixed-rate step with ≥ 99 % ok, achieved ≥ {int(sustain * 100)} % of the asked rate "
      f"and p50 < {queue_ms:g} ms (with latency correction a standing queue shows up in the median).")
    w("")
    w("| target | max sustained fixed rate (req/s) | saturation rps (ok %) | added p50 / p99 at 2000 req/s (ms) | peak RSS over all steps (MB) |")
    w("|---|---:|---:|---:|---:|")
    summary = {}
    for t, name in TARGETS:
        best = None
        for r in rates:
            s = all_stats.get((t, f"r{r}"))
            if s and s["ok_rate"] >= 0.99 and s["rps"] >= sustain * r and s["p50"] < queue_ms:
                best = r
        sat = all_stats.get((t, "sat"))
        d2, s2 = all_stats.get(("direct", "r2000")), all_stats.get((t, "r2000"))
        if t != "direct" and d2 and s2:
            added = (s2["p50"] - d2["p50"], s2["p99"] - d2["p99"])
            added_s = f"{added[0]:.3f} / {added[1]:.3f}"
        else:
            added, added_s = None, "—"
        peak = max((s["rss_mb"] for (tt, _), s in all_stats.items() if tt == t and s), default=0.0)
        summary[t] = {"max_sustained": best, "sat_rps": sat["rps"] if sat else None,
                      "added_2000": added, "peak_rss_mb": peak}
        sat_s = f"{sat['rps']:.0f} ({100 * sat['ok_rate']:.2f} %)" if sat else "not run"
        w(f"| {name} | {best if best else 'none of the steps'} | {sat_s} | {added_s} | {peak:.1f} |")
    w("")
    k = summary.get("keel", {})
    if k.get("added_2000") is not None:
        a99 = k["added_2000"][1]
        disturbed = [t for t in ("direct", "keel")
                     if ((all_stats.get((t, "r2000")) or {}).get("other_pct") or 0) > DISTURBED_PCT]
        if a99 < 0 or disturbed:
            why = ("direct's p99 above keel's" if a99 < 0 else "") + (
                ("; " if a99 < 0 and disturbed else "")
                + (f"other work above {DISTURBED_PCT} % during the {' and '.join(disturbed)} step(s)" if disturbed else ""))
            verdict = f"**inconclusive** ({why}: re-run on a quiet machine)"
        else:
            verdict = f"**{'met' if a99 < 1.0 else 'NOT met'}**"
        w(f"Target: keel added p99 < 1 ms at 2,000 req/s — measured {a99:.3f} ms: {verdict}.")
    f = summary.get("floor", {})
    if k.get("added_2000") is not None and f.get("added_2000") is not None:
        w(f"The floor (a bare forwarder on keel's stack) adds {f['added_2000'][0]:.3f} / {f['added_2000'][1]:.3f} ms "
          f"(p50 / p99) at 2,000 req/s; keel adds {k['added_2000'][0] - f['added_2000'][0]:.3f} / "
          f"{k['added_2000'][1] - f['added_2000'][1]:.3f} ms beyond it.")
    if k.get("peak_rss_mb"):
        w(f"Target: keel RSS < 100 MB — measured peak {k['peak_rss_mb']:.1f} MB: "
          f"**{'met' if k['peak_rss_mb'] < 100 else 'NOT met'}**.")
    errs = [(t, step, s["errors"]) for (t, step), s in all_stats.items() if s and s["errors"]]
    if errs:
        w("")
        w("Non-2xx answers and client errors seen:")
        for t, step, e in errs:
            w(f"- {t} {step}: " + ", ".join(f"{k}: {v}" for k, v in sorted(e.items())))
    w("")
    print("\n".join(out))
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
