"""The report of bench/ab.sh: per-round throughput and latency of keel A and keel B, medians,
and the paired B-minus-A deltas (each round ran both back to back, so the median of the
per-round differences cancels machine drift better than the difference of the medians).

The first argument may name several run directories joined by ':' (each with `rounds` rounds
of the same two keels): their rounds are pooled, so that the intervals cover the host's
slower phases between runs too. Without ab.sh:
  python3 bench/ab_report.py DIR1:DIR2 30 2000 "<machine>" "-" "-" keel-off keel-on "<title>" 100 5
"""

import json
import math
import statistics
import sys

run, rounds, rate, machine, load_before, load_after = sys.argv[1:7]
runs = run.split(":")
rounds = int(rounds)
A, B, title, p99_target, loss_target = sys.argv[7:12]
steps = (f"r{rate}", "sat")


def load(run, target, step, r):
    o = json.load(open(f"{run}/{target}-{step}-{r}.json"))
    lat = o.get("latencyPercentilesSuccessful") or o["latencyPercentiles"]
    codes = o.get("statusCodeDistribution") or {}
    total = sum(codes.values()) or 1
    # CPU seconds of the keel process over the step (procstat.py, 10 ms ticks) per answer.
    try:
        cpu = json.load(open(f"{run}/{target}-{step}-{r}.proc.json"))["cpu_seconds"]
    except (OSError, KeyError, ValueError):
        cpu = float("nan")
    return {
        "rps": o["summary"]["requestsPerSec"],
        "p50": (lat.get("p50") or 0) * 1e3,
        "p99": (lat.get("p99") or 0) * 1e3,
        "ok": 100.0 * codes.get("200", 0) / total,
        "cpu_us": 1e6 * cpu / total,
    }


pairs = {s: [(load(d, A, s, r), load(d, B, s, r)) for d in runs for r in range(1, rounds + 1)]
         for s in steps}
names = " + ".join(d.rstrip("/").rsplit("/", 1)[-1] for d in runs)
print(f"### {title} ({names})\n")
print(f"Machine: {machine}. Load average before/after: {load_before} / {load_after}. "
      f"{rounds} rounds{f' in each of {len(runs)} runs, pooled' if len(runs) > 1 else ''}, "
      "order alternating.\n")
rounds *= len(runs)
print(f"| step | round | {A} rps | {B} rps | {A} p50 / p99 ms | {B} p50 / p99 ms | {B} ok % "
      f"| {A} / {B} CPU µs per request |")
print("|---|---|---|---|---|---|---|---|")
for s in steps:
    for r, (a, b) in enumerate(pairs[s], start=1):
        print(f"| {s} | {r} | {a['rps']:.0f} | {b['rps']:.0f} | {a['p50']:.3f} / {a['p99']:.3f} | "
              f"{b['p50']:.3f} / {b['p99']:.3f} | {b['ok']:.2f} | {a['cpu_us']:.1f} / {b['cpu_us']:.1f} |")
print()
med = {s: {k: (statistics.median(a[k] for a, _ in pairs[s]), statistics.median(b[k] for _, b in pairs[s]))
           for k in ("rps", "p50", "p99")} for s in steps}


def median_ci(xs):
    """A distribution-free confidence interval for the median of xs (the sign test's order
    statistics): the widest-coverage pair (x(k), x(n+1-k)) that still reaches 90 %, else the
    extremes with the coverage they do give. Returns (low, high, coverage)."""
    xs, n = sorted(xs), len(xs)
    below = lambda k: sum(math.comb(n, i) for i in range(k)) / 2 ** n  # P(Binom(n, 1/2) < k)
    k = 1
    while k + 1 <= n // 2 and 1 - 2 * below(k + 1) >= 0.90:
        k += 1
    return xs[k - 1], xs[n - k], 1 - 2 * below(k)


def verdict(low, high, target):
    return "met" if high < target else "not met" if low >= target else "inconclusive"


p99_diffs = [(b["p99"] - a["p99"]) * 1000 for a, b in pairs[f"r{rate}"]]
p99_diff = statistics.median(p99_diffs)
lo, hi, cover = median_ci(p99_diffs)
sat_loss = statistics.median(100.0 * (1 - b["rps"] / a["rps"]) for a, b in pairs["sat"])
print(f"Paired by round (median of {B} − {A}): added p99 at {rate} req/s **{p99_diff:.0f} µs**; "
      f"throughput loss at saturation **{sat_loss:.1f} %**.\n")
print(f"Added p99, {cover:.0%} confidence interval of the paired median over {rounds} rounds: "
      f"[{lo:.0f}, {hi:.0f}] µs → target < {p99_target} µs **{verdict(lo, hi, float(p99_target))}** "
      f"(met only when the whole interval is under the target; more rounds narrow it).\n")
losses = [100.0 * (1 - b["rps"] / a["rps"]) for a, b in pairs["sat"]]
lo, hi, cover = median_ci(losses)
print(f"Throughput loss at saturation, {cover:.0%} confidence interval of the paired median: "
      f"[{lo:.1f}, {hi:.1f}] % → target < {loss_target} % "
      f"**{verdict(lo, hi, float(loss_target))}**.\n")
# keel's own CPU per answered request: the cost that bounds throughput when keel is CPU-bound,
# and far less noisy than the saturation rate of a load generator sharing the cores.
for s in steps:
    extras = [100.0 * (b["cpu_us"] / a["cpu_us"] - 1) for a, b in pairs[s]]
    lo, hi, cover = median_ci(extras)
    print(f"CPU per request at {s} (paired median): {B} {statistics.median(extras):+.1f} % over {A}, "
          f"{cover:.0%} interval [{lo:+.1f}, {hi:+.1f}] % "
          f"({statistics.median(a['cpu_us'] for a, _ in pairs[s]):.1f} → "
          f"{statistics.median(b['cpu_us'] for _, b in pairs[s]):.1f} µs).")
print()
r, s = med[f"r{rate}"], med["sat"]
print(f"Medians at {rate} req/s: p99 {A} {r['p99'][0]:.3f} ms, {B} {r['p99'][1]:.3f} ms → added p99 "
      f"**{(r['p99'][1] - r['p99'][0]) * 1000:.0f} µs** (target < {p99_target} µs); "
      f"p50 added {(r['p50'][1] - r['p50'][0]) * 1000:.0f} µs.")
loss = 100.0 * (1 - s["rps"][1] / s["rps"][0])
print(f"Medians at saturation: {A} {s['rps'][0]:.0f} req/s, {B} {s['rps'][1]:.0f} req/s → "
      f"throughput loss **{loss:.1f} %** (target < {loss_target} %).")
