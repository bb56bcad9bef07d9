#!/usr/bin/env bash
# Embedding throughput, keel's candle MiniLM beside sentence-transformers (PyTorch, CPU) on the
# same texts, same model files, same machine, one after the other in one run: the first N
# `knowledge` passages of HaluEval QA development rows (never rows 5000+).
#
# Usage:  bench/embeddings.sh            (N=1000 passages; a few minutes)
# Needs:  the models and HaluEval in keel's cache (`keel models fetch`; the quality bench
#         fetches HaluEval), and a venv with sentence-transformers, made here if missing
#         (ST_VENV, default ~/.cache/keel/st-venv; several GB: PyTorch).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
N="${N:-1000}"
CACHE="${KEEL_CACHE_DIR:-$HOME/.cache/keel}"
ST_VENV="${ST_VENV:-$HOME/.cache/keel/st-venv}"
DATA="$CACHE/models/halueval/dataset_halueval_qa.jsonl"
MODEL="$CACHE/models/all-minilm-l6-v2"
[[ -f "$DATA" ]] || { echo "HaluEval not in $CACHE; run: cargo bench -p keel-retrieval --bench quality" >&2; exit 1; }
[[ -x "$ST_VENV/bin/python" ]] || { python3 -m venv "$ST_VENV"; "$ST_VENV/bin/pip" install --quiet "sentence-transformers==3.3.1"; }
TEXTS=$(mktemp)
trap 'rm -f "$TEXTS"' EXIT
# Only the first N rows (N <= 5000) are read.
python3 - "$DATA" "$N" > "$TEXTS" <<'PY'
import json, sys, itertools
n = min(int(sys.argv[2]), 5000)
with open(sys.argv[1], encoding="utf-8") as f:
    for line in itertools.islice(f, n):
        print(json.dumps(json.loads(line)["knowledge"]))
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "texts: $N HaluEval QA knowledge passages (rows 0-$((N-1)))"
(cd "$ROOT" && KEEL_EMBED_BENCH=throughput KEEL_EMBED_TEXTS="$TEXTS" cargo bench -q -p keel-local --bench embed_throughput 2>/dev/null)
"$ST_VENV/bin/python" "$HERE/embed_peer.py" "$TEXTS" "$MODEL"
