#!/usr/bin/env bash
# A/B overhead benchmark: two keel configurations side by side in one run, on the same
# zero-latency mock upstream and the same load generator (oha). Called by wrappers that say
# what A and B are (bench/observe.sh: observability off vs on; bench/admission.sh: the spine
# vs routing + admission). Steps: RATE req/s (latency; p99 difference) and saturation
# (throughput), each repeated ROUNDS times with the order of the two keels alternating, so
# drift in machine load hits both alike. Reports throughput and p99 per round, the medians,
# and the paired B-vs-A deltas.
#
# The wrapper sets (environment):
#   AB_NAME          report name (results go to bench/results/<AB_NAME>-<date>.md)
#   AB_TITLE         report heading
#   A_NAME B_NAME    labels of the two keels
#   A_TOML B_TOML    TOML appended to each keel's base config ([server], [store],
#                    [providers.mock] and [models.mock-gpt] are given; @MOCK_PORT@ in it is
#                    replaced by the mock's port)
#   A_MODEL B_MODEL  the model or route each load asks for (default mock-gpt)
#   AB_KEY           a bearer key sent with every request (optional)
#   P99_TARGET_US LOSS_TARGET_PCT  the targets quoted in the report
# Knobs:  ROUNDS=3 DURATION=10s WARMUP=3s RATE=2000 RATE_CONC=64 SAT_CONC=64 OHA_THREADS=1
#         KEEL_BIN_DIR=<dir with keel and keel-mock-upstream> (default $CARGO_TARGET_DIR/release)
# oha is installed on first use into ~/.cache/keel/bench-tools (cargo install --locked).
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
A_MODEL="${A_MODEL:-mock-gpt}"
B_MODEL="${B_MODEL:-mock-gpt}"
BIN_DIR="${KEEL_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}/release}"

log() { echo "[$AB_NAME-bench $(date +%H:%M:%S)] $*" >&2; }
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
RUN="$ROOT/bench/results/$AB_NAME-$STAMP"
mkdir -p "$RUN"
WORK=$(mktemp -d /tmp/keel-ab-bench.XXXXXX)
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
body_for() { printf '{"model":"%s","messages":[{"role":"user","content":"hello"}]}' "$1"; }
MOCK_PORT=$(free_port)
declare -A URL PID BODY
AUTH=()
[[ -n "${AB_KEY:-}" ]] && AUTH=(-H "authorization: Bearer $AB_KEY")

"$BIN_DIR/keel-mock-upstream" --listen "127.0.0.1:$MOCK_PORT" >"$RUN/mock.log" 2>&1 &
PID[mock]=$!; PIDS+=("${PID[mock]}")

write_config() { # name port extra-toml
    {
        printf '[server]\nlisten = "127.0.0.1:%s"\n' "$2"
        printf '[store]\nkind = "sqlite"\npath = "%s"\n' "$WORK/$1.db"
        printf '[providers.mock]\nkind = "openai_compat"\nbase_url = "http://127.0.0.1:%s/v1"\n' "$MOCK_PORT"
        printf '[models.mock-gpt]\nprovider = "mock"\nupstream = "gpt-mock"\ncapabilities = ["chat", "stream"]\n'
        printf '%s\n' "${3//@MOCK_PORT@/$MOCK_PORT}"
    } >"$WORK/$1.toml"
    cp "$WORK/$1.toml" "$RUN/$1.toml"
}
A_PORT=$(free_port); B_PORT=$(free_port)
write_config "$A_NAME" "$A_PORT" "$A_TOML"
write_config "$B_NAME" "$B_PORT" "$B_TOML"
URL[$A_NAME]="http://127.0.0.1:$A_PORT/v1/chat/completions"
URL[$B_NAME]="http://127.0.0.1:$B_PORT/v1/chat/completions"
BODY[$A_NAME]=$(body_for "$A_MODEL")
BODY[$B_NAME]=$(body_for "$B_MODEL")

for k in "$A_NAME" "$B_NAME"; do
    "$BIN_DIR/keel" serve --config "$WORK/$k.toml" >"$RUN/$k.log" 2>&1 &
    PID[$k]=$!; PIDS+=("${PID[$k]}")
done
for k in "$A_NAME" "$B_NAME"; do
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H 'content-type: application/json' \
            "${AUTH[@]}" -d "${BODY[$k]}" "${URL[$k]}" || true)
        [[ "$code" == 200 ]] && break
        sleep 0.2
    done
    [[ "$code" == 200 ]] || die "$k did not come up; see $RUN/$k.log"
done

oha_run() { # target out duration [oha args...]
    local t=$1 out=$2 dur=$3; shift 3
    "$OHA" --no-tui --output-format json --worker-threads "$OHA_THREADS" -m POST \
        -H 'content-type: application/json' "${AUTH[@]}" -d "${BODY[$t]}" -t 5s -z "$dur" "$@" \
        "${URL[$t]}" >"$out"
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
    order=("$A_NAME" "$B_NAME")
    ((r % 2 == 0)) && order=("$B_NAME" "$A_NAME")
    for t in "${order[@]}"; do measure "$t" "r$RATE" "$r" -q "$RATE" -c "$RATE_CONC" --latency-correction; done
    for t in "${order[@]}"; do measure "$t" sat "$r" -c "$SAT_CONC"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MACHINE="$MODEL, $(nproc) cores (shared by oha, the mock and both keels), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"
REPORT="$ROOT/bench/results/$AB_NAME-$STAMP.md"
python3 "$HERE/ab_report.py" "$RUN" "$ROUNDS" "$RATE" "$MACHINE" "$LOAD_BEFORE" "$LOAD_AFTER" \
    "$A_NAME" "$B_NAME" "$AB_TITLE" "${P99_TARGET_US:-100}" "${LOSS_TARGET_PCT:-5}" | tee "$REPORT"
log "report: $REPORT"
