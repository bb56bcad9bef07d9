"""Score PII predictions against keel's labelled corpus, per entity type.

Any detector's output can be scored here the same way (presidio_run.py imports this module; keel's
Rust bench writes the same predictions format). Standard library only.

Inputs (JSONL, UTF-8 byte offsets into the corpus text, end exclusive):

* corpus:      ``{"id": n, "text": ..., "spans": [{"type", "start", "end", "value"}]}``
* predictions: ``{"id": n, "spans": [{"type", "start", "end"}, ...]}`` (extra keys ignored; a
  corpus row with no predictions row counts as "nothing found" and is reported as missing)

Match rules, per entity type (a span only ever matches spans of its own type):

* relaxed (the headline numbers): a gold span is *found* when some predicted span overlaps at
  least 50% of the gold span's bytes; a predicted span is *correct* when it overlaps at least 50%
  of some gold span's bytes. recall = found / gold, precision = correct / predicted.
* exact: the same with identical start and end.

F1 is the harmonic mean of the two. Types are reported for everything seen in gold or
predictions; ``KEEL_TYPES`` are keel's, ``CHECKSUM_TYPES`` the checksum-validated kinds, and the
``micro`` rows add up the counts over those sets.

Usage::

    python3 bench/pii/score.py --corpus C --predictions P [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

KEEL_TYPES = [
    "email", "phone", "credit_card", "iban", "us_ssn", "ip_address", "date_of_birth", "person",
]
CHECKSUM_TYPES = ["credit_card", "iban", "us_ssn"]
MIN_GOLD_OVERLAP = 0.5


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _overlap(a: dict, b: dict) -> int:
    return max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))


def relaxed_match(gold: dict, pred: dict) -> bool:
    """Same type and the prediction covers at least half of the gold span's bytes."""
    length = gold["end"] - gold["start"]
    return (
        gold["type"] == pred["type"]
        and length > 0
        and _overlap(gold, pred) >= MIN_GOLD_OVERLAP * length
    )


def exact_match(gold: dict, pred: dict) -> bool:
    return (gold["type"], gold["start"], gold["end"]) == (pred["type"], pred["start"], pred["end"])


def _counts(gold_rows: list[dict], pred_by_id: dict[int, list[dict]], match) -> dict:
    c: dict[str, dict[str, int]] = defaultdict(
        lambda: {"gold": 0, "found": 0, "predicted": 0, "correct": 0}
    )
    for row in gold_rows:
        golds = row["spans"]
        preds = pred_by_id.get(row["id"], [])
        for g in golds:
            c[g["type"]]["gold"] += 1
            if any(match(g, p) for p in preds):
                c[g["type"]]["found"] += 1
        for p in preds:
            c[p["type"]]["predicted"] += 1
            if any(match(g, p) for g in golds):
                c[p["type"]]["correct"] += 1
    return dict(c)


def _prf(k: dict[str, int]) -> dict:
    p = k["correct"] / k["predicted"] if k["predicted"] else None
    r = k["found"] / k["gold"] if k["gold"] else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
    return {**k, "precision": p, "recall": r, "f1": f1}


def _micro(counts: dict, types: list[str]) -> dict:
    total = {"gold": 0, "found": 0, "predicted": 0, "correct": 0}
    for t in types:
        for key in total:
            total[key] += counts.get(t, {}).get(key, 0)
    return _prf(total)


def _type_order(counts: dict) -> list[str]:
    others = sorted(t for t in counts if t not in KEEL_TYPES)
    return [t for t in KEEL_TYPES if t in counts] + others


def score(corpus: list[dict], predictions: list[dict]) -> dict:
    """Per-type and micro precision/recall/F1 under both match rules."""
    ids = {row["id"] for row in corpus}
    pred_by_id: dict[int, list[dict]] = {}
    for row in predictions:
        pred_by_id.setdefault(row["id"], []).extend(row.get("spans", []))
    result = {
        "sentences": len(corpus),
        "missing_predictions": len(ids - pred_by_id.keys()),
        "unknown_prediction_ids": len(pred_by_id.keys() - ids),
        "match_rules": {
            "relaxed": f"same type, overlap >= {MIN_GOLD_OVERLAP:.0%} of the gold span's bytes",
            "exact": "same type, same start and end",
        },
    }
    for name, match in (("relaxed", relaxed_match), ("exact", exact_match)):
        counts = _counts(corpus, pred_by_id, match)
        result[name] = {
            "per_type": {t: _prf(counts[t]) for t in _type_order(counts)},
            "micro_keel": _micro(counts, KEEL_TYPES),
            "micro_checksum": _micro(counts, CHECKSUM_TYPES),
        }
    return result


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def markdown(result: dict, title: str = "") -> str:
    """A Markdown table: per type, gold and predicted counts, relaxed P/R/F1 and exact F1."""
    rel, exa = result["relaxed"], result["exact"]
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| entity | keel | gold | predicted | precision | recall | F1 | exact P | exact R | exact F1 |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    rows = [(t, rel["per_type"][t], exa["per_type"].get(t)) for t in rel["per_type"]]
    rows += [
        ("micro, keel's types", rel["micro_keel"], exa["micro_keel"]),
        ("micro, checksum types", rel["micro_checksum"], exa["micro_checksum"]),
    ]
    for t, r, e in rows:
        e = e or {"precision": None, "recall": None, "f1": None}
        mark = "yes" if t in KEEL_TYPES else ("" if t.startswith("micro") else "no")
        lines.append(
            f"| {t} | {mark} | {r['gold']} | {r['predicted']} | {_fmt(r['precision'])} | "
            f"{_fmt(r['recall'])} | {_fmt(r['f1'])} | {_fmt(e['precision'])} | "
            f"{_fmt(e['recall'])} | {_fmt(e['f1'])} |"
        )
    lines.append("")
    lines.append(
        f"{result['sentences']} sentences; relaxed = {result['match_rules']['relaxed']}; "
        f"{result['missing_predictions']} sentences without a predictions row."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Score PII predictions against the labelled corpus.")
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--predictions", type=Path, required=True)
    ap.add_argument("--out", type=Path, help="write the full result as JSON here")
    ap.add_argument("--title", default="", help="heading for the Markdown table")
    args = ap.parse_args()
    result = score(read_jsonl(args.corpus), read_jsonl(args.predictions))
    if result["unknown_prediction_ids"]:
        print(f"warning: {result['unknown_prediction_ids']} prediction ids are not in the corpus",
              file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result, args.title))


if __name__ == "__main__":
    main()
