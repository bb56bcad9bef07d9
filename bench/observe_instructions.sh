#!/usr/bin/env bash
# What observability costs, counted in instructions instead of seconds (valgrind's callgrind):
# repeatable whatever else the machine is doing, so it can see differences of a few percent
# that the timed A/B (bench/observe.sh) cannot separate from the host's own swings.
#
# The same keel binary three times, each under callgrind, each serving N sequential requests
# (keep-alive, one connection) on the zero-latency mock after a warm-up; instructions are
# counted only while the N requests run (plus a few seconds for background writers to finish
# their share), across every thread of the process:
#   off      as keel-off in bench/observe.sh (the request log only);
#   on       as keel-on, but sampling keeps no ordinary trace ([observe.sampling] rate = 0):
#            metrics, drift and the sampler on every request;
#   on-all   as keel-on, keeping every trace (max_per_second very high): adds the cost of one
#            kept trace (spans, redacted content, OTLP encoding and POST, trace store insert).
# From these: instructions per request off, added per request without traces, added per kept
# trace, and the added share at a given fraction of requests kept (KEEP, default 0.05: the
# 100 traces/s that the default sampling keeps at 2,000 req/s).
#
# valgrind cannot decode AVX-512, so keel is built for x86-64-v3 into its own target dir
# (first run: a full build, ~25 min on 2 cores).
#
# Usage:  bench/observe_instructions.sh      (N=2000 KEEP=0.05; ~5 min after the build)
# Output: markdown on stdout and in bench/results/observe-instructions-<date>.md, the callgrind
#         files beside it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
N="${N:-2000}"
KEEP="${KEEP:-0.05}"
TARGET="${VALGRIND_TARGET_DIR:-$HOME/.cache/keel/target-valgrind}"

log() { echo "[observe-instructions $(date +%H:%M:%S)] $*" >&2; }
command -v valgrind >/dev/null || { log "valgrind is not installed"; exit 1; }

log "building keel for x86-64-v3 into $TARGET"
(cd "$ROOT" && RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR="$TARGET" \
    cargo build --release -p keel -p keel-testkit --bins >&2)
BIN="$TARGET/release"

STAMP=$(date +%Y-%m-%d-%H%M%S)
RUN="$ROOT/bench/results/observe-instructions-$STAMP"
mkdir -p "$RUN"
WORK=$(mktemp -d /tmp/keel-instr-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port)
"$BIN/keel-mock-upstream" --listen "127.0.0.1:$MOCK_PORT" >"$RUN/mock.log" 2>&1 &
PIDS+=($!)

# shellcheck source=bench/observe_configs.sh
source "$HERE/observe_configs.sh"
declare -A EXTRA=(
    [off]="$OBSERVE_OFF_TOML"
    [on]="$OBSERVE_ON_TOML
[observe.sampling]
rate = 0.0"
    [on-all]="$OBSERVE_ON_TOML
[observe.sampling]
max_per_second = 1000000.0"
)

cat >"$WORK/load.py" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
body = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hello"}]})
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"HTTP {r.status}")
PY

count() { # name -> callgrind file of the measured requests
    local name=$1 port
    port=$(free_port)
    {
        printf '[server]\nlisten = "127.0.0.1:%s"\n' "$port"
        printf '[store]\nkind = "sqlite"\npath = "%s"\n' "$WORK/$name.db"
        printf '[providers.mock]\nkind = "openai_compat"\nbase_url = "http://127.0.0.1:%s/v1"\n' "$MOCK_PORT"
        printf '[models.mock-gpt]\nprovider = "mock"\nupstream = "gpt-mock"\ncapabilities = ["chat", "stream"]\n'
        printf '%s\n' "${EXTRA[$name]//@MOCK_PORT@/$MOCK_PORT}"
    } >"$RUN/$name.toml"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$RUN/$name.%p" \
        "$BIN/keel" serve --config "$RUN/$name.toml" >"$RUN/$name.log" 2>&1 &
    local vp=$!
    for _ in $(seq 600); do
        curl -s -o /dev/null -m 5 "http://127.0.0.1:$port/healthz" && break
        sleep 0.5
    done
    python3 "$WORK/load.py" "$port" 300 # warm-up: connections, caches, drift baselines
    sleep 2
    callgrind_control -i on "$vp" >/dev/null
    python3 "$WORK/load.py" "$port" "$N"
    sleep 3 # the writers' and exporters' share of these requests
    callgrind_control -i off "$vp" >/dev/null
    callgrind_control -d "$vp" >/dev/null
    kill -INT "$vp"
    wait "$vp" || true
    log "$name done"
    ls "$RUN/$name.$vp".* | head -1
}

FILES=()
for name in off on on-all; do FILES+=("$(count "$name")"); done

MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
REPORT="$ROOT/bench/results/observe-instructions-$STAMP.md"
python3 "$HERE/instructions_report.py" "$N" "$KEEP" "$MODEL" "${FILES[@]}" | tee "$REPORT"
log "report: $REPORT"
