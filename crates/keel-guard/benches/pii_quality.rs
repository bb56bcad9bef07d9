//! keel's PII scanner on the labelled corpus `bench/pii/make_corpus.py` generates from
//! presidio-evaluator's templates and identities: writes keel's predictions in the format
//! `bench/pii/score.py` scores (so keel and presidio-analyzer are scored by one program), and
//! measures throughput the way `bench/pii/presidio_run.py` does (one call per sentence,
//! single thread, warm).
//!
//! ```sh
//! bench/pii/run.sh                                  # corpus + presidio's numbers
//! cargo bench -p keel-guard --bench pii_quality     # keel's predictions + speed
//! python3 bench/pii/score.py --corpus ~/.cache/keel/bench/pii_corpus.jsonl \
//!     --predictions ~/.cache/keel/bench/pii_keel_predictions.jsonl
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_guard::pii::{PiiConfig, PiiScanner};
use keel_guard::{GuardStage, ScanInput, Scanner};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

fn cache() -> PathBuf {
    std::env::var_os("KEEL_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/keel"))
}

fn main() {
    let dir = cache().join("bench");
    let corpus = std::env::var_os("PII_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("pii_corpus.jsonl"));
    let Ok(file) = std::fs::File::open(&corpus) else {
        eprintln!(
            "no corpus at {} — run bench/pii/run.sh (or make_corpus.py) first",
            corpus.display()
        );
        return;
    };
    let rows: Vec<Value> = std::io::BufReader::new(file)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let scanner = PiiScanner::new(&PiiConfig::default()).unwrap();
    let texts: Vec<(u64, String)> = rows
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["text"].as_str().unwrap().to_owned()))
        .collect();
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();

    // Warm up, then time every call.
    for (_, t) in texts.iter().take(50) {
        let _ = scanner.scan(&ScanInput::text(t, GuardStage::Input));
    }
    let mut out = Vec::with_capacity(texts.len());
    let mut micros = Vec::with_capacity(texts.len());
    let all = Instant::now();
    for (id, t) in &texts {
        let start = Instant::now();
        let scan = scanner.scan(&ScanInput::text(t, GuardStage::Input)).unwrap();
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        out.push((*id, scan));
    }
    let secs = all.elapsed().as_secs_f64();
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| micros[((micros.len() as f64 - 1.0) * p) as usize];

    let pred_path = dir.join("pii_keel_predictions.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&pred_path).unwrap());
    for (id, scan) in &out {
        let spans: Vec<Value> = scan
            .findings
            .iter()
            .map(|f| json!({"type": f.kind, "start": f.start, "end": f.end, "score": f.score}))
            .collect();
        writeln!(w, "{}", json!({"id": id, "spans": spans})).unwrap();
    }
    w.flush().unwrap();
    println!("keel PiiScanner on {} sentences ({:.0} KB)", texts.len(), bytes as f64 / 1024.0);
    println!(
        "| sentences/s | KB/s | p50 µs | p99 µs | max µs |\n|---|---|---|---|---|\n| {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
        texts.len() as f64 / secs,
        bytes as f64 / 1024.0 / secs,
        pct(0.5),
        pct(0.99),
        micros[micros.len() - 1],
    );
    println!("predictions: {}", pred_path.display());
}
