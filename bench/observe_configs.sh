# The two keels that bench/observe.sh and bench/observe_instructions.sh compare (sourced by
# both): TOML appended to a base config ([server], [store], [providers.mock],
# [models.mock-gpt]); @MOCK_PORT@ is replaced by the mock upstream's port.
#   OBSERVE_OFF_TOML  tracing, metrics, the trace store and drift off; the request log on.
#   OBSERVE_ON_TOML   everything on with the shipped defaults: OTLP to the mock's /v1/traces,
#                     Prometheus metrics, the SQLite trace store (redacted content), drift.
OBSERVE_OFF_TOML='[observe]
store_traces = false
metrics = false
[observe.drift]
enabled = false'
OBSERVE_ON_TOML='[observe]
store_traces = true
metrics = true
content = "redacted"
[observe.otlp]
endpoint = "http://127.0.0.1:@MOCK_PORT@/v1/traces"
[observe.drift]
enabled = true'
