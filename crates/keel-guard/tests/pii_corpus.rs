//! The PII scanner over the labelled corpus generated from presidio-evaluator's templates
//! (`bench/pii`, written to `<cache>/bench/pii_corpus.jsonl`): writes keel's predictions in the
//! format `bench/pii/score.py` reads, and checks recall on the checksum-validated entities.
//!
//! Ignored by default (it needs the generated corpus):
//! `cargo test -p keel-guard --release --test pii_corpus -- --ignored --nocapture`.
//! The cache is `KEEL_CACHE_DIR` or `~/.cache/keel`; predictions go to
//! `KEEL_PII_PREDICTIONS` or `<cache>/bench/pii_keel_predictions.jsonl`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use keel_guard::pii::{PiiConfig, PiiScanner};

fn cache_dir() -> PathBuf {
    std::env::var_os("KEEL_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/keel")
        })
}

#[test]
#[ignore = "needs the generated PII corpus (bench/pii/run.sh)"]
fn corpus_predictions_and_checksum_recall() {
    let corpus = cache_dir().join("bench/pii_corpus.jsonl");
    let file = std::fs::File::open(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e} (run bench/pii/run.sh first)", corpus.display()));
    let out_path = std::env::var_os("KEEL_PII_PREDICTIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("bench/pii_keel_predictions.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).unwrap());
    let scanner = PiiScanner::new(&PiiConfig::default()).unwrap();
    let (mut gold, mut found) = (0usize, 0usize);
    let mut rows = 0;
    for line in std::io::BufReader::new(file).lines() {
        let row: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = row["text"].as_str().unwrap();
        let hits = scanner.hits(text);
        for h in &hits {
            assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
        }
        let spans: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| serde_json::json!({"type": h.kind, "start": h.start, "end": h.end, "score": h.score}))
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"id": row["id"], "spans": spans})
        )
        .unwrap();
        rows += 1;
        // Relaxed match, as score.py: same type, covering at least half of the gold span.
        for g in row["spans"].as_array().unwrap() {
            let kind = g["type"].as_str().unwrap();
            if !matches!(kind, "credit_card" | "iban" | "us_ssn") {
                continue;
            }
            let (gs, ge) = (
                g["start"].as_u64().unwrap() as usize,
                g["end"].as_u64().unwrap() as usize,
            );
            gold += 1;
            if hits.iter().any(|h| {
                h.kind == kind && h.end.min(ge).saturating_sub(h.start.max(gs)) * 2 >= ge - gs
            }) {
                found += 1;
            }
        }
    }
    out.flush().unwrap();
    let recall = found as f64 / gold.max(1) as f64;
    println!(
        "{rows} sentences, predictions in {}; checksum-type recall {found}/{gold} = {recall:.3}",
        out_path.display()
    );
    assert!(gold > 0, "no checksum-type spans in the corpus");
    assert!(recall >= 0.95, "checksum-type recall {recall:.3}");
}
