#!/usr/bin/env bash
# Observability overhead benchmark (bench/ab.sh): the same keel binary twice, side by side:
#   keel-off  tracing, metrics, trace store and drift all off (store_traces = false,
#             metrics = false, drift disabled, no OTLP); the request log still on;
#   keel-on   everything on: spans built per request and exported over OTLP/HTTP (to the
#             mock's /v1/traces sink), Prometheus metrics recorded, traces (redacted content)
#             written to the SQLite trace store, the drift monitor fed.
#
# Usage:  bench/observe.sh      (about 4 minutes; knobs as in bench/ab.sh, e.g. ROUNDS=5)
# Output: markdown on stdout and in bench/results/observe-<date>.md (raw oha JSON beside it).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export AB_NAME=observe AB_TITLE="Observability on vs off" A_NAME=keel-off B_NAME=keel-on
export P99_TARGET_US=100 LOSS_TARGET_PCT=5
# shellcheck source=bench/observe_configs.sh
source "$HERE/observe_configs.sh"
export A_TOML="$OBSERVE_OFF_TOML" B_TOML="$OBSERVE_ON_TOML"
exec "$HERE/ab.sh"
