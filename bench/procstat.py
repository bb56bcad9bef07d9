#!/usr/bin/env python3
"""Sample the memory and CPU use of one process tree while a load run is going.

Usage: procstat.py PID OUT.json [BENCH_ROOT_PID]   (runs until SIGTERM/SIGINT, then writes OUT.json)

Every 50 ms it sums VmRSS over PID and all its descendants (LiteLLM may fork workers) and
keeps the maximum; at the end it also records VmHWM of PID (its lifetime peak) and the CPU
seconds (user+system, tree-wide) used between start and stop. Standard library only.
"""
import json
import os
import signal
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError):
            pass
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid, with_children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        # utime, stime, cutime, cstime are fields 14-17 (1-based) -> index 11-14 after the comm
        n = int(fields[11]) + int(fields[12])
        if with_children:
            n += int(fields[13]) + int(fields[14])
        return n
    except (OSError, ValueError, IndexError):
        return 0


def tree_ticks(root):
    return sum(cpu_ticks(p, with_children=True) for p in tree(root))


def host_cpu():
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def main():
    pid, out = int(sys.argv[1]), sys.argv[2]
    root = int(sys.argv[3]) if len(sys.argv) > 3 else None
    stop = {"v": False}

    def on_sig(*_):
        stop["v"] = True

    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)
    pids = tree(pid)
    t0 = time.monotonic()
    cpu0 = sum(cpu_ticks(p) for p in pids)
    host0 = host_cpu()
    bench0 = tree_ticks(root) if root else None
    peak, n, last_tree = 0, 0, t0
    while not stop["v"]:
        now = time.monotonic()
        if now - last_tree > 1.0:
            pids, last_tree = tree(pid), now
        rss = sum(status_kb(p, "VmRSS") for p in pids)
        peak = max(peak, rss)
        n += 1
        time.sleep(0.05)
    pids = tree(pid)
    cpu1 = sum(cpu_ticks(p) for p in pids)
    host1 = host_cpu()
    bench1 = tree_ticks(root) if root else None
    wall = time.monotonic() - t0
    res = {
        "pid": pid,
        "processes": len(pids),
        "peak_rss_kb": peak,
        "vm_hwm_kb": status_kb(pid, "VmHWM"),
        "cpu_seconds": (cpu1 - cpu0) / CLK,
        "wall_seconds": wall,
        "samples": n,
        # Share of all cores busy machine-wide (load generator, mock, gateway AND anything else).
        "host_busy_pct": 100.0 * (host1[0] - host0[0]) / max(1, host1[1] - host0[1]),
    }
    if root:
        # Share of all cores busy with work outside the benchmark (host jiffies count all cores).
        other = (host1[0] - host0[0]) - (bench1 - bench0)
        res["other_busy_pct"] = max(0.0, 100.0 * other / max(1, host1[1] - host0[1]))
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
