//! How long the PII and secrets scanners take on realistic ~1 KB prompts, with and without
//! PII or secrets in them (acceptance target: ≤ 100 µs per 1 KB prompt at p99).
//!
//! Two parts:
//! 1. criterion groups `pii/<text>` and `secrets/<text>` (mean time and throughput);
//! 2. a percentile pass: `KEEL_BENCH_SCANS` (default 10,000) individually timed scans per
//!    scanner and text, sorted, printed as p50 / p99 / p99.9 / max in µs.
//!
//! 3. when the labelled PII corpus exists (`bench/pii/run.sh` writes
//!    `<cache>/bench/pii_corpus.jsonl`, cache = `KEEL_CACHE_DIR` or `~/.cache/keel`): the PII
//!    scanner over all its sentences, one scan each, as sentences/s, KB/s and per-sentence
//!    p50/p99, beside presidio-analyzer's numbers from `pii_presidio.json` when that exists
//!    (same sentences, same machine; the ratio is the comparison, since these machines are
//!    noisy).
//!
//! Run: `cargo bench -p keel-guard --bench pii_speed`
//! (the percentile pass only: `cargo bench -p keel-guard --bench pii_speed -- --percentiles`).

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)] // a benchmark, like a test

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use keel_guard::pii::{PiiConfig, PiiScanner};
use keel_guard::secrets::{SecretsConfig, SecretsScanner};
use keel_guard::{GuardStage, ScanInput, Scanner};

/// Deterministic pseudo-random token (so no real-looking key is committed).
fn fake(n: usize, seed: u64) -> String {
    let a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize] as char
        })
        .collect()
}

/// The prompts: (name, text), each close to 1 KB.
fn prompts() -> Vec<(&'static str, String)> {
    let clean = "I'm preparing the quarterly review for our logistics team and need help structuring it. \
        Over the last three months we moved most of our warehouse scheduling to the new planning tool, \
        cut average dock waiting time from 47 to 31 minutes, and reduced overtime by about 12 percent. \
        However, two sites still run the old spreadsheet process because their managers were worried \
        about training time during peak season. Please draft an outline with an executive summary, the \
        key metrics (with a short explanation of how each was measured), the risks we see for the next \
        quarter, and three concrete recommendations. Keep the tone factual and avoid marketing language. \
        The audience is the operations board, who prefer short bullet points over long paragraphs, and \
        they will read it on their phones before the meeting on Thursday. Also suggest a chart or two \
        that would make the trend in waiting times obvious at a glance, and tell me which version 2.4 \
        features of the planning tool we should mention. Thanks in advance for the help!"
        .to_string();
    let support = "Hello, my name is Sarah Johnson and I have a problem with my last order (#A-2291-77). \
        I was charged twice on my Visa card 4111 1111 1111 1111 on 03/14/2025, once for $249.99 and once \
        for $259.99, even though I only placed one order. My account email is sarah.johnson82@example.com \
        and you can call me on +1 415-555-0132 between 9am and 5pm Pacific time, or on my work line \
        (650) 555-0187. For the refund, please use my bank account IBAN GB82 WEST 1234 5698 7654 32 \
        rather than the card, since I am closing that card next week. For identity verification your \
        agent asked for my date of birth, which is 12/07/1982, and the last four of my SSN; the full \
        number is 536-22-1234 if that is easier. The order was shipped to my office and signed for by \
        Mr. Okafor at the front desk. I logged in from 203.0.113.45 when I placed it. Please confirm \
        once the duplicate charge has been reversed. Best regards, Sarah"
        .to_string();
    let code = format!(
        "Can you tell me why this deployment script fails? It worked yesterday.\n\n```bash\n\
        export OPENAI_API_KEY=sk-proj-{}\n\
        export AWS_ACCESS_KEY_ID=AKIA{}\n\
        export AWS_SECRET_ACCESS_KEY={}\n\
        export DB_PASSWORD='Tr0ub4dor&3'\n\
        curl -s -H \"Authorization: Bearer {}\" https://api.internal.example/v2/deploy \\\n\
          -d '{{\"service\": \"billing\", \"replicas\": 3, \"image\": \"billing:1.14.2\"}}'\n\
        kubectl rollout status deployment/billing --timeout=120s\n```\n\n\
        The error is `error: deployment \"billing\" exceeded its progress deadline` and the pod logs \
        show connection refused on port 5432. The database is managed and the security group allows \
        the cluster subnet. What should I check first, and how do I get more detail from kubectl? \
        I already tried restarting the rollout and scaling the deployment down to one replica, and \
        the readiness probe still times out after thirty seconds on every new pod.",
        fake(48, 1),
        fake(16, 2).to_uppercase(),
        fake(40, 3),
        fake(32, 4),
    );
    let multilingual = "Bonjour, je m'appelle Camille Laurent et j'écris au sujet de ma réservation. \
        Mon numéro de téléphone est le 01 23 45 67 89 et mon adresse e-mail camille.laurent@example.fr. \
        Guten Tag, wir möchten die Lieferung auf nächste Woche verschieben, bitte rufen Sie Herrn Müller \
        unter +49 30 1234 5678 an. 我们需要把会议改到下周三，请确认会议室是否可用。 \
        ¿Podrían enviarnos la factura actualizada? Nuestro IBAN es DE89 3704 0044 0532 0130 00. \
        The rest of this message is just context: the trip is for a team offsite in Lyon with about \
        twenty people, we need a meeting room for two days, vegetarian options at lunch, and a bus \
        from the station to the hotel on the first morning. Wir brauchen außerdem einen Beamer, \
        zwei Flipcharts und eine Steckdosenleiste pro Tisch. Si c'est possible, nous aimerions aussi \
        une salle plus petite pour les appels. Merci beaucoup et à bientôt!"
        .to_string();
    let v = vec![
        ("clean_prose", clean),
        ("support_with_pii", support),
        ("code_with_secrets", code),
        ("multilingual_pii", multilingual),
    ];
    for (name, t) in &v {
        assert!(
            (850..=1200).contains(&t.len()),
            "{name} is {} bytes",
            t.len()
        );
    }
    v
}

fn scan(s: &dyn Scanner, text: &str) -> usize {
    s.scan(&ScanInput::text(text, GuardStage::Input))
        .unwrap()
        .findings
        .len()
}

fn criterion_groups(
    c: &mut Criterion,
    scanners: &[(&str, &dyn Scanner)],
    texts: &[(&str, String)],
) {
    for (sname, s) in scanners {
        let mut g = c.benchmark_group(*sname);
        for (tname, t) in texts {
            g.throughput(Throughput::Bytes(t.len() as u64));
            g.bench_function(*tname, |b| b.iter(|| scan(*s, black_box(t))));
        }
        g.finish();
    }
}

fn percentiles(scanners: &[(&str, &dyn Scanner)], texts: &[(&str, String)]) {
    let n: usize = std::env::var("KEEL_BENCH_SCANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("\n{n} individually timed scans per row (µs):");
    println!(
        "{:<10} {:<20} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "scanner", "text", "bytes", "p50", "p99", "p99.9", "max", "findings"
    );
    for (sname, s) in scanners {
        for (tname, t) in texts {
            for _ in 0..200 {
                black_box(scan(*s, t));
            }
            let mut times: Vec<f64> = Vec::with_capacity(n);
            let mut found = 0;
            for _ in 0..n {
                let start = Instant::now();
                found = black_box(scan(*s, black_box(t)));
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
            times.sort_by(f64::total_cmp);
            let q = |p: f64| times[((p * n as f64) as usize).min(n - 1)];
            println!(
                "{:<10} {:<20} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9}",
                sname,
                tname,
                t.len(),
                q(0.50),
                q(0.99),
                q(0.999),
                times[n - 1],
                found
            );
        }
    }
}

fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("KEEL_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/keel")
        })
}

fn corpus_pass(pii: &PiiScanner) {
    let bench = cache_dir().join("bench");
    let Ok(corpus) = std::fs::read_to_string(bench.join("pii_corpus.jsonl")) else {
        println!(
            "\n(no {}; skipping the corpus pass)",
            bench.join("pii_corpus.jsonl").display()
        );
        return;
    };
    let texts: Vec<String> = corpus
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    for t in &texts {
        black_box(pii.hits(t));
    }
    let rounds = 5;
    let mut times = Vec::with_capacity(texts.len() * rounds);
    let all = Instant::now();
    for _ in 0..rounds {
        for t in &texts {
            let start = Instant::now();
            black_box(pii.hits(black_box(t)));
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let secs = all.elapsed().as_secs_f64() / rounds as f64;
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((p * times.len() as f64) as usize).min(times.len() - 1)] * 1e6;
    let sps = texts.len() as f64 / secs;
    let kbps = bytes as f64 / 1024.0 / secs;
    println!(
        "\nPII corpus: {} sentences, {} bytes, {rounds} rounds",
        texts.len(),
        bytes
    );
    println!(
        "keel     {sps:>12.0} sentences/s {kbps:>10.0} KB/s   p50 {:>8.1} µs   p99 {:>8.1} µs",
        q(0.5),
        q(0.99)
    );
    let Ok(peer) = std::fs::read_to_string(bench.join("pii_presidio.json")) else {
        return;
    };
    let peer: serde_json::Value = serde_json::from_str(&peer).unwrap();
    let t = &peer["throughput"];
    if let (Some(p_sps), Some(p_kbps)) = (t["sentences_per_s"].as_f64(), t["kb_per_s"].as_f64()) {
        println!(
            "presidio {p_sps:>12.0} sentences/s {p_kbps:>10.0} KB/s   p50 {:>8.1} µs   p99 {:>8.1} µs  (from pii_presidio.json)",
            t["latency_ms_p50"].as_f64().unwrap_or(f64::NAN) * 1e3,
            t["latency_ms_p99"].as_f64().unwrap_or(f64::NAN) * 1e3
        );
        println!("keel / presidio: {:.0}x sentences/s", sps / p_sps);
        if let Some(b_sps) = t["batched"]["sentences_per_s"].as_f64() {
            println!(
                "keel / presidio batched ({b_sps:.0} sentences/s): {:.0}x",
                sps / b_sps
            );
        }
    }
}

fn main() {
    let pii = PiiScanner::new(&PiiConfig::default()).unwrap();
    let secrets = SecretsScanner::new(&SecretsConfig::default()).unwrap();
    let scanners: Vec<(&str, &dyn Scanner)> = vec![("pii", &pii), ("secrets", &secrets)];
    let texts = prompts();
    let only_percentiles = std::env::args().any(|a| a == "--percentiles");
    if !only_percentiles {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c, &scanners, &texts);
        c.final_summary();
    }
    percentiles(&scanners, &texts);
    corpus_pass(&pii);
}
