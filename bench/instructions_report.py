#!/usr/bin/env python3
"""Report of bench/observe_instructions.sh: instructions per request of keel with
observability off, on without kept traces, and on keeping every trace (callgrind files).

Usage: instructions_report.py N KEEP MACHINE OFF.callgrind ON.callgrind ON_ALL.callgrind

Per request is the process's whole count (every thread) over the N measured requests divided
by N. The function tables are self costs (callgrind_annotate), differences per request (or per
kept trace), largest first. Standard library plus callgrind_annotate from valgrind.
"""
import collections
import re
import subprocess
import sys


def total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit(f"{path}: no totals line")


def self_costs(path):
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", path],
        capture_output=True, text=True, check=True,
    ).stdout
    costs = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        name = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
        name = re.sub(r"\s*\([\d,]+x\)$", "", name)
        # "file:function": keep the function (inlined code is filed under its source file).
        name = re.sub(r"^[^\s:]+\.(rs|c|S|h):", "", name)
        costs[name] += int(m.group(1).replace(",", ""))
    return costs


def table(a, b, per, rows=12):
    diff = {k: (b[k] - a[k]) / per for k in set(a) | set(b)}
    top = sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:rows]
    lines = ["| function (self) | added |", "|---|---:|"]
    for name, d in top:
        short = name if len(name) <= 110 else name[:107] + "..."
        lines.append(f"| `{short}` | {d:+,.0f} |")
    return "\n".join(lines)


def main():
    n, keep, machine = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    off_f, on_f, all_f = sys.argv[4:7]
    off, on, every = (total(f) / n for f in (off_f, on_f, all_f))
    per_trace = every - on
    at_keep = on - off + keep * per_trace
    print(f"# Observability cost in instructions ({n} sequential requests each)\n")
    print(f"Machine: {machine}; keel built for x86-64-v3, run under callgrind.\n")
    print("| keel | instructions per request | vs off |")
    print("|---|---:|---:|")
    print(f"| off (request log only) | {off:,.0f} | |")
    print(f"| on, no trace kept | {on:,.0f} | {on / off - 1:+.1%} |")
    print(f"| on, every trace kept | {every:,.0f} | {every / off - 1:+.1%} |")
    print()
    print(f"- added per request without traces: {on - off:+,.0f} ({on / off - 1:+.1%})")
    print(f"- added per kept trace: {per_trace:+,.0f}")
    print(f"- added per request with {keep:.0%} of traces kept: {at_keep:+,.0f} "
          f"({at_keep / off:+.1%})\n")
    a, b, c = self_costs(off_f), self_costs(on_f), self_costs(all_f)
    print("## Where the per-request addition goes (on vs off)\n")
    print(table(a, b, n))
    print("\n## Where a kept trace goes (on-all vs on, per trace)\n")
    print(table(b, c, n))


if __name__ == "__main__":
    main()
