#!/usr/bin/env bash
# Gateway overhead benchmark: keel vs LiteLLM proxy vs calling the mock upstream directly, with
# a floor: keel-floor-proxy, a bare forwarder on keel's own stack (axum, hyper, reqwest, tokio)
# doing none of keel's work, so what it adds any proxy on this stack adds on this machine.
#
# One zero-latency mock upstream (keel-mock-upstream), the floor, keel and LiteLLM all pointed at
# it, and oha driving them side by side in the same run, interleaved step by step: for each fixed
# rate (default 10, 500, 1000, 2000, 5000 req/s) direct, floor, keel, LiteLLM in turn, then a saturation
# step (no rate limit, fixed concurrency). After each step it waits until the gateway is idle
# again, so a backlog does not spill into the next measurement. Reports p50/p99, ok %, achieved
# rps, peak RSS and CPU of the serving process, how busy the machine was with work outside the
# benchmark, and the latency each gateway ADDS over the direct call at that rate.
#
# Everything it sends goes to 127.0.0.1 only. By default the measured part re-runs itself in a
# private network namespace (`unshare -n`) that has nothing but loopback, so neither gateway can
# reach anything off this machine (LiteLLM's startup fetches are among the things that cannot).
#
# Usage:  bench/gateway.sh            (about 6-7 minutes; well under 15)
# Knobs (environment):
#   RATES="10 500 1000 2000 5000"  (10 req/s: every target unloaded, LiteLLM included)
#   DURATION=12s  WARMUP=3s  RATE_CONC=64  SAT_CONC=64  SAT_DURATION=10s  OHA_THREADS=1  LITELLM_WORKERS=1
#   KEEL_BIN_DIR=<dir with keel, keel-mock-upstream and keel-floor-proxy>  (default $CARGO_TARGET_DIR/release)
#   KEEL_BENCH_NETNS=0   run in the current network namespace instead of a private one
#   KEEL_BENCH_SKIP_LITELLM=1   measure direct and keel only
#   MOCK_CMD="..."       another mock to run instead (prototyping only; the report says so)
# Tools are installed on first use: oha into ~/.cache/keel/bench-tools (cargo install --locked),
# LiteLLM into its own venv ~/.cache/keel/litellm-venv (bench/litellm-requirements.txt).
# Output: markdown on stdout and in bench/results/gateway-<date>.md (raw oha JSON beside it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
TOOLS="$HOME/.cache/keel/bench-tools"
LITELLM_VENV="$HOME/.cache/keel/litellm-venv"
LITELLM_VERSION=1.110.2
OHA="${OHA:-$TOOLS/bin/oha}"
RATES="${RATES:-10 500 1000 2000 5000}"
DURATION="${DURATION:-12s}"
WARMUP="${WARMUP:-3s}"
RATE_CONC="${RATE_CONC:-64}"
SAT_CONC="${SAT_CONC:-64}"
SAT_DURATION="${SAT_DURATION:-10s}"
OHA_THREADS="${OHA_THREADS:-1}"
LITELLM_WORKERS="${LITELLM_WORKERS:-1}"
INITIAL_WARMUP_REQUESTS="${INITIAL_WARMUP_REQUESTS:-500}"
SKIP_LITELLM="${KEEL_BENCH_SKIP_LITELLM:-0}"

log() { echo "[gateway-bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_bins() {
    if [[ -n "${KEEL_BIN_DIR:-}" ]]; then BIN_DIR="$KEEL_BIN_DIR"; return; fi
    local d
    for d in "${CARGO_TARGET_DIR:-}" "$HOME/.cache/keel/target" "$ROOT/target"; do
        if [[ -n "$d" && -x "$d/release/keel" ]]; then BIN_DIR="$d/release"; return; fi
    done
    BIN_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}/release"
}

# ---------------------------------------------------------------------------------------------
# Phase 1 (normal network): make sure the tools and binaries exist, then re-enter in a netns.
# ---------------------------------------------------------------------------------------------
if [[ "${KEEL_BENCH_INNER:-0}" != 1 ]]; then
    if [[ ! -x "$OHA" ]]; then
        log "installing oha into $TOOLS (cargo install --locked; takes a few minutes)"
        cargo install oha --locked --root "$TOOLS" >&2
    fi
    if [[ "$SKIP_LITELLM" != 1 ]]; then
        # Versions from package metadata only: importing litellm outside the private network
        # namespace would let it try to download its model price map.
        have=$(LITELLM_LOCAL_MODEL_COST_MAP=True "$LITELLM_VENV/bin/python" -c \
            'import importlib.metadata as m; [m.version(p) for p in ("uvicorn", "fastapi", "orjson")]; print(m.version("litellm"))' \
            2>/dev/null || true)
        if [[ "$have" != "$LITELLM_VERSION" ]]; then
            log "installing LiteLLM $LITELLM_VERSION into $LITELLM_VENV (takes a few minutes)"
            [[ -x "$LITELLM_VENV/bin/python" ]] || python3 -m venv "$LITELLM_VENV"
            "$LITELLM_VENV/bin/pip" install -q --upgrade pip >&2
            "$LITELLM_VENV/bin/pip" install -q -r "$HERE/litellm-requirements.txt" >&2
        fi
    fi
    find_bins
    if [[ ! -x "$BIN_DIR/keel" || ! -x "$BIN_DIR/keel-mock-upstream" || ! -x "$BIN_DIR/keel-floor-proxy" ]]; then
        log "building release binaries (cargo build --release --workspace --bins)"
        (cd "$ROOT" && cargo build --release --workspace --bins >&2)
        find_bins
    fi
    export KEEL_BIN_DIR="$BIN_DIR" KEEL_BENCH_INNER=1
    if [[ "${KEEL_BENCH_NETNS:-1}" == 1 ]] && command -v unshare >/dev/null && command -v ip >/dev/null \
        && unshare -n true 2>/dev/null; then
        export KEEL_BENCH_NETNS_DESC="private network namespace with loopback only (unshare -n)"
        exec unshare -n bash -c 'ip link set lo up && exec bash "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
    fi
    export KEEL_BENCH_NETNS_DESC="host network namespace, loopback addresses only"
fi

# ---------------------------------------------------------------------------------------------
# Phase 2: the measured run.
# ---------------------------------------------------------------------------------------------
BIN_DIR="$KEEL_BIN_DIR"
[[ -x "$OHA" ]] || die "oha not found at $OHA"
[[ -x "$BIN_DIR/keel" ]] || die "keel binary not found in $BIN_DIR"
[[ -x "$BIN_DIR/keel-floor-proxy" ]] || die "keel-floor-proxy not found in $BIN_DIR"
if [[ -z "${MOCK_CMD:-}" ]]; then
    [[ -x "$BIN_DIR/keel-mock-upstream" ]] || die "keel-mock-upstream not found in $BIN_DIR"
fi

STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS="$ROOT/bench/results"
RUN="$RESULTS/gateway-$STAMP"
mkdir -p "$RUN"
WORK=$(mktemp -d /tmp/keel-gw-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); FLOOR_PORT=$(free_port); KEEL_PORT=$(free_port); LITELLM_PORT=$(free_port)
BODY='{"model":"mock-gpt","messages":[{"role":"user","content":"hello"}]}'
declare -A URL PID
URL[direct]="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
URL[floor]="http://127.0.0.1:$FLOOR_PORT/v1/chat/completions"
URL[keel]="http://127.0.0.1:$KEEL_PORT/v1/chat/completions"
URL[litellm]="http://127.0.0.1:$LITELLM_PORT/v1/chat/completions"

wait_ok() { # name url timeout_s
    local name=$1 url=$2 t=$3 i code
    for ((i = 0; i < t * 5; i++)); do
        kill -0 "${PID[$name]}" 2>/dev/null || break
        code=$(curl -s -o "$WORK/probe-$name.out" -w '%{http_code}' -m 2 -H 'content-type: application/json' \
            -d "$BODY" "$url" 2>/dev/null || true)
        if [[ "$code" == 200 ]]; then
            log "$name answers 200: $(head -c 300 "$WORK/probe-$name.out")"
            return 0
        fi
        sleep 0.2
    done
    log "$name never answered 200 (last code: ${code:-none}); its log:"
    tail -n 30 "$RUN/$name.log" >&2 || true
    return 1
}

# --- mock upstream -----------------------------------------------------------------------------
if [[ -n "${MOCK_CMD:-}" ]]; then
    MOCK_DESC="PROTOTYPE MOCK ($MOCK_CMD), not keel-mock-upstream"
    # shellcheck disable=SC2086
    $MOCK_CMD --listen "127.0.0.1:$MOCK_PORT" >"$RUN/mock.log" 2>&1 &
else
    MOCK_DESC="keel-mock-upstream"
    "$BIN_DIR/keel-mock-upstream" --listen "127.0.0.1:$MOCK_PORT" >"$RUN/mock.log" 2>&1 &
fi
PID[direct]=$!; PIDS+=("${PID[direct]}")
wait_ok direct "${URL[direct]}" 30 || die "mock upstream did not come up"

# --- floor: a bare forwarder on keel's stack ----------------------------------------------------
"$BIN_DIR/keel-floor-proxy" --listen "127.0.0.1:$FLOOR_PORT" --upstream "http://127.0.0.1:$MOCK_PORT/v1" \
    >"$RUN/floor.log" 2>&1 &
PID[floor]=$!; PIDS+=("${PID[floor]}")
wait_ok floor "${URL[floor]}" 30 || die "keel-floor-proxy did not come up"

# --- keel --------------------------------------------------------------------------------------
cat >"$WORK/keel.toml" <<EOF
# keel config for the gateway benchmark: no local provider (no model loading), one
# OpenAI-compatible provider pointing at the zero-latency mock, default request log (SQLite).
[server]
listen = "127.0.0.1:$KEEL_PORT"

[store]
kind = "sqlite"
path = "$WORK/keel.db"

[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"

[models.mock-gpt]
provider = "mock"
upstream = "gpt-mock"
capabilities = ["chat", "stream"]
EOF
cp "$WORK/keel.toml" "$RUN/keel.toml"
"$BIN_DIR/keel" serve --config "$WORK/keel.toml" >"$RUN/keel.log" 2>&1 &
PID[keel]=$!; PIDS+=("${PID[keel]}")
wait_ok keel "${URL[keel]}" 60 || die "keel did not come up"

# --- LiteLLM proxy -----------------------------------------------------------------------------
TARGETS=(direct floor keel)
LITELLM_DESC="not run"
if [[ "$SKIP_LITELLM" != 1 ]]; then
    cat >"$WORK/litellm.yaml" <<EOF
# LiteLLM proxy config for the gateway benchmark: the same mock as an OpenAI model, no database,
# no master key (no auth, like keel without [[auth.keys]] on loopback: LiteLLM refuses that
# unless LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true), no callbacks, quiet logging.
model_list:
  - model_name: mock-gpt
    litellm_params:
      model: openai/gpt-mock
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-bench-not-used
litellm_settings:
  set_verbose: false
  telemetry: false
  drop_params: true
  request_timeout: 30
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
EOF
    cp "$WORK/litellm.yaml" "$RUN/litellm.yaml"
    # No DATABASE_URL: LiteLLM runs without Postgres (no spend tracking, no key DB).
    env -u DATABASE_URL LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False \
        DISABLE_ADMIN_UI=True NO_DOCS=True LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true \
        "$LITELLM_VENV/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 --port "$LITELLM_PORT" \
        --num_workers "$LITELLM_WORKERS" >"$RUN/litellm.log" 2>&1 &
    PID[litellm]=$!; PIDS+=("${PID[litellm]}")
    wait_ok litellm "${URL[litellm]}" 300 || die "LiteLLM did not come up"
    TARGETS+=(litellm)
    LITELLM_DESC="$("$LITELLM_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"
fi

# --- load --------------------------------------------------------------------------------------
oha_run() { # target out duration [extra oha args...]
    local t=$1 out=$2 dur=$3; shift 3
    "$OHA" --no-tui --output-format json --stats-success-breakdown --worker-threads "$OHA_THREADS" \
        -m POST -H 'content-type: application/json' -d "$BODY" -t 5s -z "$dur" "$@" "${URL[$t]}" >"$out"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
settle() { # wait (at most 60 s) until the target is idle: an overloaded gateway keeps working
    # through its backlog after the load generator stopped, which would load the next step.
    local pid=${PID[$1]} a b i
    for ((i = 0; i < 120; i++)); do
        a=$(cpu_ticks "$pid"); sleep 0.5; b=$(cpu_ticks "$pid")
        ((b - a <= 2)) && return 0  # <= 2 ticks in 0.5 s: under ~4 % of a core
    done
    log "$1 still busy after 60 s; going on"
}
measure() { # target step duration [oha args...]
    local t=$1 step=$2 dur=$3; shift 3
    oha_run "$t" /dev/null "$WARMUP" "$@"
    python3 "$HERE/procstat.py" "${PID[$t]}" "$RUN/$t-$step.proc.json" "$$" &
    local sampler=$!
    oha_run "$t" "$RUN/$t-$step.json" "$dur" "$@"
    kill -TERM "$sampler"; wait "$sampler" || true
    settle "$t"
    python3 - "$RUN/$t-$step.json" "$t" "$step" >&2 <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
lat = o.get("latencyPercentilesSuccessful") or o["latencyPercentiles"]
print(f"  {sys.argv[2]:8} {sys.argv[3]:6} rps={o['summary']['requestsPerSec']:8.0f} "
      f"p50={(lat.get('p50') or 0)*1e3:8.3f}ms p99={(lat.get('p99') or 0)*1e3:8.3f}ms "
      f"codes={o.get('statusCodeDistribution')} errors={o.get('errorDistribution')}")
PY
    sleep 1
}

# One-off warm-up of each target (LiteLLM imports modules lazily on its first requests).
for t in "${TARGETS[@]}"; do
    timeout 30 "$OHA" --no-tui --output-format quiet --worker-threads "$OHA_THREADS" -m POST -H 'content-type: application/json' \
        -d "$BODY" -t 5s -n "$INITIAL_WARMUP_REQUESTS" -c 8 "${URL[$t]}" >/dev/null || true
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${TARGETS[*]}; rates: $RATES; $DURATION per step after $WARMUP warm-up; saturation c=$SAT_CONC for $SAT_DURATION"
for rate in $RATES; do
    for t in "${TARGETS[@]}"; do
        measure "$t" "r$rate" "$DURATION" -q "$rate" -c "$RATE_CONC" --latency-correction
    done
done
for t in "${TARGETS[@]}"; do
    measure "$t" sat "$SAT_DURATION" -c "$SAT_CONC"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
MACHINE="$MODEL, $(nproc) cores (shared by load generator, mock and gateway), $MEM RAM, Linux $(uname -r)"
KEEL_VERSION=$("$BIN_DIR/keel" --version 2>/dev/null || echo keel)
python3 - "$RUN/meta.json" <<PY
import json, sys
json.dump({
  "date": "$STAMP", "machine": """$MACHINE""", "rates": [int(r) for r in "$RATES".split()],
  "duration": "$DURATION", "warmup": "$WARMUP", "rate_conc": $RATE_CONC, "sat_conc": $SAT_CONC,
  "sat_duration": "$SAT_DURATION", "oha_threads": $OHA_THREADS,
  "oha_version": """$("$OHA" --version | awk '{print $2}')""", "mock": """$MOCK_DESC""",
  "keel_version": """$KEEL_VERSION""", "litellm_version": """$LITELLM_DESC""",
  "litellm_workers": $LITELLM_WORKERS, "netns": """$KEEL_BENCH_NETNS_DESC""",
  "loadavg_before": "$LOAD_BEFORE", "loadavg_after": "$LOAD_AFTER", "sustain_fraction": 0.98, "sustain_p50_ms": 10.0,
}, open(sys.argv[1], "w"), indent=1)
PY
REPORT="$RESULTS/gateway-$STAMP.md"
python3 "$HERE/summarize.py" "$RUN" | tee "$REPORT"
log "report: $REPORT (raw data in $RUN)"
