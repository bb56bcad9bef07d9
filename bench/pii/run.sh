#!/usr/bin/env bash
# The PII benchmark's Python side in one go: venv (setup.sh), corpus (make_corpus.py), presidio
# as the peer (presidio_run.py). Writes into ${KEEL_CACHE_DIR:-$HOME/.cache/keel}/bench/:
#   pii_corpus.jsonl, pii_corpus.stats.json, pii_presidio.json, pii_presidio_predictions.jsonl
# Score keel's own predictions the same way with:
#   python3 bench/pii/score.py --corpus .../pii_corpus.jsonl --predictions KEEL.jsonl
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="${KEEL_CACHE_DIR:-$HOME/.cache/keel}/bench"
PY=$("$HERE/setup.sh" | tail -1)
"$PY" "$HERE/make_corpus.py" --out "$OUT/pii_corpus.jsonl" > /dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HERE/presidio_run.py" --corpus "$OUT/pii_corpus.jsonl" --out "$OUT/pii_presidio.json" \
    --predictions-out "$OUT/pii_presidio_predictions.jsonl"
