#!/usr/bin/env bash
# Observability overhead benchmark: the same keel binary twice, side by side in one run, on the
# same zero-latency mock upstream and the same load generator (oha):
#   keel-off  tracing, metrics, trace store and drift all off (store_traces = false,
#             metrics = false, drift disabled, no OTLP); the request log still on;
#   keel-on   everything on: spans built per request and exported over OTLP/HTTP (to the
#             mock's /v1/traces sink), Prometheus metrics recorded, traces (redacted content)
#             written to the SQLite trace store, the drift monitor fed.
# Steps: 2,000 req/s (latency; p99 difference) and saturation (throughput), each repeated
# ROUNDS times with the order of the two keels alternating, so drift in machine load hits
# both alike. Reports throughput and p99 per round and the medians, and the on-vs-off deltas.
#
# Usage:  bench/observe.sh      (about 4 minutes)
# Knobs:  ROUNDS=3 DURATION=10s WARMUP=3s RATE=2000 RATE_CONC=64 SAT_CONC=64 OHA_THREADS=1
#         KEEL_BIN_DIR=<dir with keel and keel-mock-upstream> (default $CARGO_TARGET_DIR/release)
# oha is installed on first use into ~/.cache/keel/bench-tools (cargo install --locked).
# Output: markdown on stdout and in bench/results/observe-<date>.md (raw oha JSON beside it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
TOOLS="$HOME/.cache/keel/bench-tools"
OHA="${OHA:-$TOOLS/bin/oha}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
RATE="${RATE:-2000}"
RATE_CONC="${RATE_CONC:-64}"
SAT_CONC="${SAT_CONC:-64}"
OHA_THREADS="${OHA_THREADS:-1}"
BIN_DIR="${KEEL_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}/release}"

log() { echo "[observe-bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ! -x "$OHA" ]]; then
    log "installing oha into $TOOLS (cargo install --locked; takes a few minutes)"
    cargo install oha --locked --root "$TOOLS" >&2
fi
if [[ ! -x "$BIN_DIR/keel" || ! -x "$BIN_DIR/keel-mock-upstream" ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --workspace --bins >&2)
fi

STAMP=$(date +%Y-%m-%d-%H%M%S)
RUN="$ROOT/bench/results/observe-$STAMP"
mkdir -p "$RUN"
WORK=$(mktemp -d /tmp/keel-obs-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port)
BODY='{"model":"mock-gpt","messages":[{"role":"user","content":"hello"}]}'
declare -A URL PID

"$BIN_DIR/keel-mock-upstream" --listen "127.0.0.1:$MOCK_PORT" >"$RUN/mock.log" 2>&1 &
PID[mock]=$!; PIDS+=("${PID[mock]}")

write_config() { # name port observe-section
    cat >"$WORK/$1.toml" <<EOF
[server]
listen = "127.0.0.1:$2"
[store]
kind = "sqlite"
path = "$WORK/$1.db"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
[models.mock-gpt]
provider = "mock"
upstream = "gpt-mock"
capabilities = ["chat", "stream"]
$3
EOF
    cp "$WORK/$1.toml" "$RUN/$1.toml"
}
OFF_PORT=$(free_port); ON_PORT=$(free_port)
write_config keel-off "$OFF_PORT" '[observe]
store_traces = false
metrics = false
[observe.drift]
enabled = false'
write_config keel-on "$ON_PORT" "[observe]
store_traces = true
metrics = true
content = \"redacted\"
[observe.otlp]
endpoint = \"http://127.0.0.1:$MOCK_PORT/v1/traces\"
[observe.drift]
enabled = true"
for k in keel-off keel-on; do
    "$BIN_DIR/keel" serve --config "$WORK/$k.toml" >"$RUN/$k.log" 2>&1 &
    PID[$k]=$!; PIDS+=("${PID[$k]}")
done
URL[keel-off]="http://127.0.0.1:$OFF_PORT/v1/chat/completions"
URL[keel-on]="http://127.0.0.1:$ON_PORT/v1/chat/completions"
for k in keel-off keel-on; do
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H 'content-type: application/json' \
            -d "$BODY" "${URL[$k]}" || true)
        [[ "$code" == 200 ]] && break
        sleep 0.2
    done
    [[ "$code" == 200 ]] || die "$k did not come up; see $RUN/$k.log"
done

oha_run() { # target out duration [oha args...]
    local t=$1 out=$2 dur=$3; shift 3
    "$OHA" --no-tui --output-format json --worker-threads "$OHA_THREADS" -m POST \
        -H 'content-type: application/json' -d "$BODY" -t 5s -z "$dur" "$@" "${URL[$t]}" >"$out"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
settle() { # until the target has worked through any backlog (at most 30 s)
    local pid=${PID[$1]} a b i
    for ((i = 0; i < 60; i++)); do
        a=$(cpu_ticks "$pid"); sleep 0.5; b=$(cpu_ticks "$pid")
        ((b - a <= 2)) && return 0
    done
}
measure() { # target step round [oha args...]
    local t=$1 step=$2 round=$3; shift 3
    oha_run "$t" /dev/null "$WARMUP" "$@"
    python3 "$HERE/procstat.py" "${PID[$t]}" "$RUN/$t-$step-$round.proc.json" "$$" &
    local sampler=$!
    oha_run "$t" "$RUN/$t-$step-$round.json" "$DURATION" "$@"
    kill -TERM "$sampler"; wait "$sampler" || true
    settle "$t"
    log "$t $step round $round done"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
    order=(keel-off keel-on)
    ((r % 2 == 0)) && order=(keel-on keel-off)
    for t in "${order[@]}"; do measure "$t" "r$RATE" "$r" -q "$RATE" -c "$RATE_CONC" --latency-correction; done
    for t in "${order[@]}"; do measure "$t" sat "$r" -c "$SAT_CONC"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MACHINE="$MODEL, $(nproc) cores (shared by oha, the mock and both keels), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"
REPORT="$ROOT/bench/results/observe-$STAMP.md"
python3 - "$RUN" "$ROUNDS" "$RATE" "$MACHINE" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY' | tee "$REPORT"
import json, statistics, sys
run, rounds, rate, machine, lb, la = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def load(t, step, r):
    o = json.load(open(f"{run}/{t}-{step}-{r}.json"))
    lat = o.get("latencyPercentilesSuccessful") or o["latencyPercentiles"]
    codes = o.get("statusCodeDistribution") or {}
    total = sum(codes.values()) or 1
    return {"rps": o["summary"]["requestsPerSec"], "p50": (lat.get("p50") or 0) * 1e3,
            "p99": (lat.get("p99") or 0) * 1e3, "ok": 100.0 * codes.get("200", 0) / total}
print(f"### Observability on vs off ({run.rsplit('/', 1)[-1]})\n")
print(f"Machine: {machine}. Load average before/after: {lb} / {la}. {rounds} rounds, order alternating.\n")
print("| step | round | off rps | on rps | off p50 / p99 ms | on p50 / p99 ms | on ok % |")
print("|---|---|---|---|---|---|---|")
med = {}
for step in (f"r{rate}", "sat"):
    rows = []
    for r in range(1, rounds + 1):
        off, on = load("keel-off", step, r), load("keel-on", step, r)
        rows.append((off, on))
        print(f"| {step} | {r} | {off['rps']:.0f} | {on['rps']:.0f} | {off['p50']:.3f} / {off['p99']:.3f} | "
              f"{on['p50']:.3f} / {on['p99']:.3f} | {on['ok']:.2f} |")
    med[step] = {k: (statistics.median(o[k] for o, _ in rows), statistics.median(n[k] for _, n in rows))
                 for k in ("rps", "p50", "p99")}
print()
# Paired by round (the two keels ran back to back): median of the differences, which cancels
# the machine's drift between rounds better than the difference of the medians.
pairs = {step: [(load("keel-off", step, r), load("keel-on", step, r)) for r in range(1, rounds + 1)]
         for step in (f"r{rate}", "sat")}
p99_diff = statistics.median(n["p99"] - o["p99"] for o, n in pairs[f"r{rate}"]) * 1000
sat_loss = statistics.median(100.0 * (1 - n["rps"] / o["rps"]) for o, n in pairs["sat"])
print(f"Paired by round (median of on − off): added p99 at {rate} req/s **{p99_diff:.0f} µs**; "
      f"throughput loss at saturation **{sat_loss:.1f} %**.\n")
r, s = med[f"r{rate}"], med["sat"]
print(f"Medians at {rate} req/s: p99 off {r['p99'][0]:.3f} ms, on {r['p99'][1]:.3f} ms → added p99 "
      f"**{(r['p99'][1] - r['p99'][0]) * 1000:.0f} µs** (target < 100 µs); p50 added {(r['p50'][1] - r['p50'][0]) * 1000:.0f} µs.")
loss = 100.0 * (1 - s['rps'][1] / s['rps'][0])
print(f"Medians at saturation: off {s['rps'][0]:.0f} req/s, on {s['rps'][1]:.0f} req/s → throughput loss "
      f"**{loss:.1f} %** (target < 5 %).")
PY
log "report: $REPORT"
