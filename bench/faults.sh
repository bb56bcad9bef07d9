#!/usr/bin/env bash
# Fault-injection load run: keel in front of a flaky primary and a healthy fallback.
#
# Two mock upstreams (keel-mock-upstream): the primary fails a seeded random share of requests
# (default 30% 503, 5% connection resets, 5% stalls that never answer), the fallback answers
# every request. keel serves route `flaky` = [primary, fallback] with its default retries and
# circuit breaker, a short attempt timeout and stream idle/TTFT limits so a stall costs seconds,
# not minutes. keel-fault-load sends REQUESTS chat completions (half of them streaming) with
# CONCURRENCY workers and checks every answer against the echo the mock must give: complete
# answers count as ok; errors the client is told about count as errors; an incomplete answer
# reported as a success (finish_reason "stop" / [DONE]) or a stream that ends silently would be
# counted separately and must never happen.
#
# Runs, each with a fresh keel and fresh mocks:
#   before-headers  resets and stalls strike before any response headers
#   mid-stream      streaming requests are cut or stalled after their first events instead
#                   (route without stream recovery: the client must get an error event)
#   mid-stream+recovery  the same faults on a route with `stream_recovery = true` (only if this
#                   keel supports it: the run is skipped when keel rejects the option)
#
# Usage: bench/faults.sh   Knobs: REQUESTS=10000 CONCURRENCY=32 FAULTS="5xx=0.30,reset=0.05,stall=0.05"
#   KEEL_BIN_DIR=<dir with keel, keel-mock-upstream, keel-fault-load> (default $CARGO_TARGET_DIR/release)
# Output: markdown on stdout and in bench/results/faults-<date>.md (raw JSON beside it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQUESTS="${REQUESTS:-10000}"
CONCURRENCY="${CONCURRENCY:-32}"
FAULTS="${FAULTS:-5xx=0.30,reset=0.05,stall=0.05}"
BIN_DIR="${KEEL_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}/release}"
for b in keel keel-mock-upstream keel-fault-load; do
    [[ -x "$BIN_DIR/$b" ]] || { echo "missing $BIN_DIR/$b (cargo build --release --workspace --bins)" >&2; exit 1; }
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$HERE/results/faults-$STAMP"
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # url seconds
    for _ in $(seq 1 $(( $2 * 10 ))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}

# run NAME FAULT_SPEC RECOVERY(true|false)
run() {
    local name=$1 spec=$2 recovery=$3
    local p_primary p_fallback p_keel
    p_primary=$(free_port); p_fallback=$(free_port); p_keel=$(free_port)
    "$BIN_DIR/keel-mock-upstream" --listen "127.0.0.1:$p_primary" --faults "$spec" >"$WORK/primary.log" 2>&1 &
    local primary=$!; PIDS+=("$primary")
    "$BIN_DIR/keel-mock-upstream" --listen "127.0.0.1:$p_fallback" >"$WORK/fallback.log" 2>&1 &
    local fallback=$!; PIDS+=("$fallback")
    wait_up "http://127.0.0.1:$p_primary/v1/models" 10 && wait_up "http://127.0.0.1:$p_fallback/v1/models" 10 \
        || { echo "mocks did not come up" >&2; return 1; }
    local recovery_line="" caps='"chat", "stream"'
    if [[ "$recovery" == true ]]; then
        recovery_line="stream_recovery = true"; caps='"chat", "stream", "assistant_prefill"'
    fi
    cat >"$WORK/keel.toml" <<EOF
[server]
listen = "127.0.0.1:$p_keel"

[store]
kind = "sqlite"
path = "$WORK/keel-$name.db"

[providers.flaky]
kind = "openai_compat"
base_url = "http://127.0.0.1:$p_primary/v1"
timeout = "2s"
stream_idle_timeout = "1s"

[providers.healthy]
kind = "openai_compat"
base_url = "http://127.0.0.1:$p_fallback/v1"
timeout = "10s"

[models.primary]
provider = "flaky"
upstream = "gpt-primary"
capabilities = [$caps]

[models.fallback]
provider = "healthy"
upstream = "gpt-fallback"
capabilities = [$caps]

[routes.flaky]
models = ["primary", "fallback"]
ttft_timeout = "1s"
$recovery_line
EOF
    cp "$WORK/keel.toml" "$OUT/$name.keel.toml"
    if ! "$BIN_DIR/keel" config validate "$WORK/keel.toml" >"$WORK/validate.log" 2>&1; then
        echo "| $name | skipped: this keel rejects the config ($(tail -1 "$WORK/validate.log")) |" >>"$WORK/rows"
        kill "$primary" "$fallback" 2>/dev/null || true
        return 0
    fi
    "$BIN_DIR/keel" serve --config "$WORK/keel.toml" >"$OUT/$name.keel.log" 2>&1 &
    local keel=$!; PIDS+=("$keel")
    wait_up "http://127.0.0.1:$p_keel/readyz" 30 || { echo "keel did not come up" >&2; return 1; }
    echo "[faults $(date +%H:%M:%S)] $name: $REQUESTS requests, concurrency $CONCURRENCY, faults $spec" >&2
    "$BIN_DIR/keel-fault-load" --url "http://127.0.0.1:$p_keel/v1" --model flaky \
        --requests "$REQUESTS" --concurrency "$CONCURRENCY" --stream-share 0.5 >"$OUT/$name.json"
    kill "$keel" "$primary" "$fallback" 2>/dev/null || true
    wait "$keel" "$primary" "$fallback" 2>/dev/null || true
    python3 - "$name" "$OUT/$name.json" >>"$WORK/rows" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
v = r["verdicts"]
print(f"| {name} | {r['requests']} | {r['streams']} | {v.get('ok', 0)} | {100 * r['success_rate']:.2f}% | "
      f"{v.get('error', 0)} | {v.get('false_success', 0)} | {v.get('silent_end', 0)} | {r['recovered']} | "
      f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['throughput_rps']:.0f} |")
PY
}

: >"$WORK/rows"
run before-headers "$FAULTS,seed=1" false
run mid-stream "$FAULTS,mid_stream,seed=1" false
run mid-stream+recovery "$FAULTS,mid_stream,seed=1" true

{
    echo "### Fault-injection load run ($STAMP)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); keel $("$BIN_DIR/keel" --version 2>/dev/null || echo '?')."
    echo "Command: \`REQUESTS=$REQUESTS CONCURRENCY=$CONCURRENCY FAULTS=$FAULTS bench/faults.sh\`; primary faults per run below, fallback healthy."
    echo
    echo "| run | requests | streams | ok | success | errors reported | false successes | silent ends | recovered | p50 ms | p99 ms | req/s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$WORK/rows"
} | tee "$OUT/summary.md"
