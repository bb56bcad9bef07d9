#!/usr/bin/env bash
# Routing + admission overhead benchmark (bench/ab.sh): the same keel binary twice, side by
# side, both with one API key (so authentication costs both the same):
#   spine    the client asks for the model by name: no route strategy, no [admission];
#   admit    the client asks for route `r` = two models on the same mock with
#            strategy = "least_latency" (P2C over peak-EWMA), and [admission] (memory backend)
#            with a tenant and a key limit (requests/min, tokens/min, cost/day, a budget with soft
#            and hard limits), a route limit and in-flight bounds, all far above the load so
#            every request is admitted: the cost measured is reserving and settling each one.
#
# Usage:  bench/admission.sh      (about 4 minutes; knobs as in bench/ab.sh, e.g. ROUNDS=5)
# Output: markdown on stdout and in bench/results/admission-<date>.md (raw oha JSON beside it).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KEY="sk-keel-bench-admission"
SHA=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
AUTH_TOML="[[auth.keys]]
id = \"bench\"
tenant = \"bench\"
sha256 = \"$SHA\""

export AB_NAME=admission AB_TITLE="Routing + admission vs the spine" A_NAME=spine B_NAME=admit
export P99_TARGET_US=50 LOSS_TARGET_PCT=5 AB_KEY="$KEY" A_MODEL=mock-gpt B_MODEL=r
export A_TOML="$AUTH_TOML"
export B_TOML="$AUTH_TOML
[models.mock-gpt-2]
provider = \"mock\"
upstream = \"gpt-mock-2\"
capabilities = [\"chat\", \"stream\"]
input_price_per_mtok = 0.5
output_price_per_mtok = 1.5

[routes.r]
models = [\"mock-gpt\", \"mock-gpt-2\"]
strategy = \"least_latency\"

[admission]
backend = \"memory\"
max_in_flight = 100000

[admission.tenants.bench]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
cost_per_day_usd = 1000000.0
budget = { soft_usd = 900000.0, hard_usd = 1000000.0, period = \"day\" }

[admission.keys.bench]
requests_per_minute = 100000000
tokens_per_minute = 100000000000

[admission.routes.r]
requests_per_minute = 100000000
max_in_flight = 100000"
exec "$HERE/ab.sh"
