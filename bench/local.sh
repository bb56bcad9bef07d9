#!/usr/bin/env bash
# Local-model throughput through keel's HTTP API, with keel's DEFAULT config (no --config):
# the embedded SmolLM2 chat model and MiniLM embeddings on CPU.
#
#   chat: prefill tok/s and decode tok/s (streaming, ~300-token prompt, max_tokens 64,
#         temperature 0) at concurrency 1 and 4 (plus aggregate output tok/s at 4);
#   embeddings: passages/s, single-passage requests at concurrency 1 and 16, and 32-passage
#         batch requests.
#
# Usage:  bench/local.sh          (a few minutes; the first start also fetches the models)
# Knobs:  KEEL_BIN_DIR=<dir with keel>   CHAT_MODEL=default   EMBED_MODEL=text-embedding-3-small
#         READY_TIMEOUT=900 (s to wait for /readyz)   and local_bench.py's flags via BENCH_ARGS.
# Traffic goes to 127.0.0.1 only. The request log goes to a temporary SQLite file
# (XDG_DATA_HOME is pointed at a temp dir); the model cache is keel's usual one.
# Output: markdown on stdout and in bench/results/local-<date>.md (raw JSON beside it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CHAT_MODEL="${CHAT_MODEL:-default}"
EMBED_MODEL="${EMBED_MODEL:-text-embedding-3-small}"
READY_TIMEOUT="${READY_TIMEOUT:-900}"

log() { echo "[local-bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -z "${KEEL_BIN_DIR:-}" ]]; then
    for d in "${CARGO_TARGET_DIR:-}" "$HOME/.cache/keel/target" "$ROOT/target"; do
        if [[ -n "$d" && -x "$d/release/keel" ]]; then KEEL_BIN_DIR="$d/release"; break; fi
    done
fi
if [[ ! -x "${KEEL_BIN_DIR:-/nonexistent}/keel" ]]; then
    log "building keel (cargo build --release -p keel)"
    (cd "$ROOT" && cargo build --release -p keel >&2)
    KEEL_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
KEEL="$KEEL_BIN_DIR/keel"

STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/keel-local-bench.XXXXXX)
KEEL_PID=""
SAMPLER=""
cleanup() {
    if [[ -n "$SAMPLER" ]]; then kill -TERM "$SAMPLER" 2>/dev/null || true; fi
    if [[ -n "$KEEL_PID" ]]; then
        kill -TERM "$KEEL_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$KEEL_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$KEEL_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
log "starting $KEEL serve --listen 127.0.0.1:$PORT (default config)"
XDG_DATA_HOME="$WORK/data" "$KEEL" serve --listen "127.0.0.1:$PORT" >"$RESULTS/local-$STAMP.keel.log" 2>&1 &
KEEL_PID=$!
T0=$(date +%s.%N)
ready=0
for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
    kill -0 "$KEEL_PID" 2>/dev/null || { tail -n 30 "$RESULTS/local-$STAMP.keel.log" >&2; die "keel exited"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$BASE/readyz" || true)
    if [[ "$code" == 200 ]]; then ready=1; break; fi
    sleep 0.5
done
[[ $ready == 1 ]] || { tail -n 30 "$RESULTS/local-$STAMP.keel.log" >&2; die "/readyz not 200 after ${READY_TIMEOUT}s"; }
READY_S=$(python3 -c "import time; print(f'{time.time() - $T0:.1f}')")
log "ready after ${READY_S}s; models: $(curl -s "$BASE/v1/models" | head -c 400)"
RSS_READY=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$KEEL_PID/status")

python3 "$HERE/procstat.py" "$KEEL_PID" "$WORK/proc.json" &
SAMPLER=$!
# shellcheck disable=SC2086
python3 "$HERE/local_bench.py" --base "$BASE" --chat-model "$CHAT_MODEL" --embed-model "$EMBED_MODEL" \
    --out "$RESULTS/local-$STAMP.json" ${BENCH_ARGS:-} >"$WORK/tables.md"
kill -TERM "$SAMPLER"; wait "$SAMPLER" || true; SAMPLER=""

MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
FLAGS=$(grep -o -w -E 'avx2|fma|f16c|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')
REPORT="$RESULTS/local-$STAMP.md"
{
    echo "## Local models through keel, $STAMP"
    echo
    echo "Machine: $MODEL, $(nproc) cores, $MEM RAM, Linux $(uname -r); CPU flags used by candle: ${FLAGS:-none}."
    echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "keel: \`$("$KEEL" --version 2>/dev/null || echo keel)\`, default config (\`keel serve --listen 127.0.0.1:$PORT\`),"
    echo "ready (/readyz 200) ${READY_S} s after start; RSS when ready ${RSS_READY} MB;"
    python3 -c "import json; p=json.load(open('$WORK/proc.json')); print(f\"peak RSS during the benchmark {p['peak_rss_kb']/1024:.0f} MB, keel CPU {100*p['cpu_seconds']/p['wall_seconds']:.0f} % of one core on average; both cores {p['host_busy_pct']:.0f} % busy machine-wide meanwhile (keel + this client + anything else).\")"
    echo
    cat "$WORK/tables.md"
} | tee "$REPORT"
log "report: $REPORT"
