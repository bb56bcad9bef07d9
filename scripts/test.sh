#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: Rust unit and integration tests (real local
# models, SQLite, Postgres on 127.0.0.1:5432, Redis on 127.0.0.1:6379) and end-to-end tests
# that drive a running keel with the official OpenAI and Anthropic Python SDKs (pinned, in a
# venv this script creates).
#
# Caches live outside the clone: cargo's target dir, the model cache and the venv, all under
# ~/.cache/keel unless CARGO_TARGET_DIR / KEEL_CACHE_DIR / KEEL_VENV say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}"
export KEEL_CACHE_DIR="${KEEL_CACHE_DIR:-$HOME/.cache/keel}"
export KEEL_TEST_POSTGRES_URL="${KEEL_TEST_POSTGRES_URL:-host=127.0.0.1 port=5432 user=postgres dbname=test}"
venv="${KEEL_VENV:-$HOME/.cache/keel/venv}"

echo "==> Python venv with the pinned SDKs ($venv)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r tests/python/requirements.txt

echo "==> build (release, native CPU features)"
cargo build --release --workspace --bins

echo "==> embedded models (fetched once into $KEEL_CACHE_DIR)"
"$CARGO_TARGET_DIR/release/keel" models fetch

echo "==> Rust tests"
cargo test --release --workspace --no-fail-fast

echo "==> end-to-end tests with the official SDKs"
KEEL_BIN="$CARGO_TARGET_DIR/release/keel" \
KEEL_MOCK_BIN="$CARGO_TARGET_DIR/release/keel-mock-upstream" \
  "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider
