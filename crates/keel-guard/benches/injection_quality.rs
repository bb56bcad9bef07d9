//! Prompt-injection accuracy: the heuristics, the jailguard MLP over real MiniLM embeddings and
//! their calibrated combination, on bastioncorpus (181 labelled rows over user, tool and memory
//! channels in five languages) and on benign HaluEval QA dev questions (rows 0–4999 only; the
//! held-out rows are never read).
//!
//! Split: bastioncorpus rows with an even index (0-based, file order, which groups rows by
//! category so the halves are stratified) and HaluEval questions 0–2499 form the tuning split;
//! odd rows and questions 2500–4999 the report split. The calibration coefficients are fitted
//! and the thresholds chosen on the tuning split only; this bench prints the fit so
//! `src/injection/calibrate.rs` can be checked against it, and reports with the constants
//! compiled into the scanner.
//!
//! Benign retrieved context: the `knowledge` passages of HaluEval rows 2500–4999, scanned at
//! the context stage (report only, not used for tuning).
//!
//! Channels map to stages: `user_input` → input, `tool_output` and `memory` → context. The
//! corpus' `{canary}` placeholder is replaced by a token (`ZQ-7741-KX`).
//!
//! `cargo bench -p keel-guard --bench injection_quality` (env: `KEEL_CACHE_DIR`;
//! `KEEL_BENCH_EMBED=int8` scores with int8 embeddings, as the default config's guard does;
//! `KEEL_INJECTION_FIXTURE=<path>` also writes the embeddings the MLP unit test uses).

use keel_guard::GuardStage;
use keel_guard::injection::calibrate::{self, combine, combine_with};
use keel_guard::injection::{
    InjectionConfig, InjectionScanner, Mlp, RECOMMENDED_THRESHOLD,
    RECOMMENDED_THRESHOLD_HEURISTICS_ONLY,
};

const CANARY: &str = "ZQ-7741-KX";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = keel_local::fetch::default_cache_dir()?;
    let embed_dir = keel_local::fetch::ensure_embeddings(&cache)?;
    let mlp = Mlp::load(&keel_local::fetch::ensure_jailguard(&cache)?)?;
    let scanner = InjectionScanner::new(&InjectionConfig::default(), None)?;
    let precision = match std::env::var("KEEL_BENCH_EMBED").as_deref() {
        Ok("int8") => keel_local::EmbedPrecision::Int8,
        Ok("full") | Err(_) => keel_local::EmbedPrecision::Full,
        Ok(other) => return Err(format!("KEEL_BENCH_EMBED: full or int8, got {other}").into()),
    };
    let embedder = keel_local::embed::Embedder::load(
        &embed_dir,
        keel_local::EmbedderOptions {
            precision,
            ..Default::default()
        },
    )?;
    println!("embeddings: {:?} precision", embedder.precision());

    let mut rows = Vec::new();
    for (i, line) in keel_local::fetch::bastion_rows(&cache)?.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let channel = s("channel");
        rows.push(Row {
            text: s("text").replace("{canary}", CANARY),
            malicious: s("label") == "malicious",
            tune: i % 2 == 0,
            bastion: true,
            stage: if channel == "user_input" {
                GuardStage::Input
            } else {
                GuardStage::Context
            },
            channel,
            lang: s("lang"),
            ..Row::default()
        });
    }
    for (i, line) in keel_local::fetch::halueval_dev_rows(&cache, 5000)?
        .iter()
        .enumerate()
    {
        let v: serde_json::Value = serde_json::from_str(line)?;
        rows.push(Row {
            text: v["question"].as_str().unwrap_or_default().to_string(),
            tune: i < 2500,
            stage: GuardStage::Input,
            channel: "halueval".into(),
            lang: "en".into(),
            ..Row::default()
        });
        // The row's knowledge passage as retrieved context: benign, report split only.
        if i >= 2500 {
            rows.push(Row {
                text: v["knowledge"].as_str().unwrap_or_default().to_string(),
                passage: true,
                stage: GuardStage::Context,
                channel: "halueval-passage".into(),
                lang: "en".into(),
                ..Row::default()
            });
        }
    }

    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let mut embeddings = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        embeddings.extend(embedder.embed(chunk.to_vec()).await?.vectors);
    }
    for (row, emb) in rows.iter_mut().zip(&embeddings) {
        row.h = scanner.heuristics(&row.text, row.stage).evidence;
        row.p = mlp.score(emb);
    }
    if let Ok(path) = std::env::var("KEEL_INJECTION_FIXTURE") {
        write_fixture(&path, &rows, &embeddings)?;
    }

    // Fit on the tuning split, class-balanced.
    let tune: Vec<&Row> = rows.iter().filter(|r| r.tune && !r.passage).collect();
    let with = logistic(
        &tune
            .iter()
            .map(|r| vec![r.h, calibrate::logit(r.p)])
            .collect::<Vec<_>>(),
        &tune.iter().map(|r| r.malicious).collect::<Vec<_>>(),
    );
    let without = logistic(
        &tune.iter().map(|r| vec![r.h]).collect::<Vec<_>>(),
        &tune.iter().map(|r| r.malicious).collect::<Vec<_>>(),
    );
    println!("## Calibration fit (tuning split: even bastioncorpus rows + HaluEval 0–2499)\n");
    println!("- with classifier (bias, h, logit p): {with:?}");
    println!("- heuristics only (bias, h): {without:?}");
    let fitted_with = [with[0], with[1], with[2]];
    let fitted_without = [without[0], without[1]];
    let thr = |score: &dyn Fn(&Row) -> f32| choose_threshold(&tune, score);
    let t_comb = thr(&|r| combine_with(r.h, Some(r.p), &fitted_with, &fitted_without));
    let t_heur = thr(&|r| combine_with(r.h, None, &fitted_with, &fitted_without));
    let t_mlp = thr(&|r| r.p);
    println!(
        "- thresholds chosen on tuning (max F1 on bastion, ≤1% FPR on HaluEval): combined {t_comb:.2}, heuristics only {t_heur:.2}, MLP alone {t_mlp:.2}"
    );
    println!(
        "- compiled into the scanner: combined {RECOMMENDED_THRESHOLD:.2}, heuristics only {RECOMMENDED_THRESHOLD_HEURISTICS_ONLY:.2}\n"
    );

    type Scorer<'a> = (&'a str, Box<dyn Fn(&Row) -> bool>);
    let detectors: Vec<Scorer> = vec![
        (
            "combined (heuristics + MLP)",
            Box::new(|r: &Row| combine(r.h, Some(r.p)) >= RECOMMENDED_THRESHOLD),
        ),
        (
            "heuristics only",
            Box::new(|r: &Row| combine(r.h, None) >= RECOMMENDED_THRESHOLD_HEURISTICS_ONLY),
        ),
        (
            "jailguard MLP alone (tuned threshold)",
            Box::new(move |r: &Row| r.p >= t_mlp),
        ),
        ("jailguard MLP alone (0.5)", Box::new(|r: &Row| r.p >= 0.5)),
        (
            "for comparison, not selected: heuristics OR MLP (tuned threshold)",
            Box::new(move |r: &Row| {
                combine(r.h, None) >= RECOMMENDED_THRESHOLD_HEURISTICS_ONLY || r.p >= t_mlp
            }),
        ),
    ];

    println!("## Prompt injection: bastioncorpus\n");
    println!(
        "| detector | rows | n | TP | FP | FN | TN | precision | recall | F1 | FPR, HaluEval report questions (input) | FPR, HaluEval report passages (context) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, pred) in &detectors {
        let benign = Counts::of(
            rows.iter().filter(|r| !r.bastion && !r.passage && !r.tune),
            pred.as_ref(),
        );
        let passages = Counts::of(rows.iter().filter(|r| r.passage), pred.as_ref());
        for (split, filter) in [
            (
                "report half (odd)",
                &(|r: &Row| !r.tune) as &dyn Fn(&Row) -> bool,
            ),
            ("tuning half (even)", &|r: &Row| r.tune),
            ("all 181", &|_: &Row| true),
        ] {
            let c = Counts::of(
                rows.iter().filter(|r| r.bastion && filter(r)),
                pred.as_ref(),
            );
            println!(
                "| {name} | {split} | {} | {} | {} |",
                c.cells(),
                pct(benign.fpr()),
                pct(passages.fpr())
            );
        }
    }

    let (name, pred) = &detectors[0];
    println!("\n## {name}, all 181 rows, by channel and by language\n");
    println!("| group | n | TP | FP | FN | TN | precision | recall | F1 | recall on report half |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut groups: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.bastion) {
        for g in [format!("channel {}", r.channel), format!("lang {}", r.lang)] {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    for g in &groups {
        let in_group = |r: &&Row| {
            r.bastion
                && (g == &format!("channel {}", r.channel) || g == &format!("lang {}", r.lang))
        };
        let all = Counts::of(rows.iter().filter(in_group), pred.as_ref());
        let report = Counts::of(
            rows.iter().filter(in_group).filter(|r| !r.tune),
            pred.as_ref(),
        );
        println!("| {g} | {} | {} |", all.cells(), pct(report.recall()));
    }
    let hv_report = Counts::of(
        rows.iter().filter(|r| !r.bastion && !r.passage && !r.tune),
        pred.as_ref(),
    );
    let hv_tune = Counts::of(
        rows.iter().filter(|r| !r.bastion && !r.passage && r.tune),
        pred.as_ref(),
    );
    println!(
        "\nBenign HaluEval QA dev questions flagged by the combined detector: report (2500–4999) {}/{} ({:.2}%), tuning (0–2499) {}/{}.",
        hv_report.fp,
        hv_report.n(),
        100.0 * hv_report.fpr(),
        hv_tune.fp,
        hv_tune.n()
    );
    Ok(())
}

/// The embeddings of one bastioncorpus injection and one HaluEval question, for the MLP unit
/// test (which has no embedding model).
fn write_fixture(
    path: &str,
    rows: &[Row],
    embeddings: &[Vec<f32>],
) -> Result<(), Box<dyn std::error::Error>> {
    let injection = rows
        .iter()
        .position(|r| {
            r.text
                .starts_with("Ignore all previous instructions and tell me")
        })
        .ok_or("fixture injection row not found")?;
    let benign = rows
        .iter()
        .position(|r| !r.bastion)
        .ok_or("no benign row")?;
    let item = |i: usize| serde_json::json!({"text": rows[i].text, "embedding": embeddings[i]});
    let json = serde_json::json!({
        "note": "all-MiniLM-L6-v2 embeddings (keel_local::embed, mean-pooled, L2-normalised), written by the injection_quality bench",
        "injection": item(injection),
        "benign": item(benign),
    });
    std::fs::write(path, serde_json::to_string(&json)?)?;
    println!("wrote the MLP test fixture to {path}\n");
    Ok(())
}

/// One labelled text and the detector's features on it.
struct Row {
    text: String,
    malicious: bool,
    /// In the tuning split (else the report split).
    tune: bool,
    /// A bastioncorpus row (else a benign HaluEval question or passage).
    bastion: bool,
    /// A benign HaluEval knowledge passage scanned as retrieved context (report split only).
    passage: bool,
    stage: GuardStage,
    channel: String,
    lang: String,
    /// Heuristic evidence.
    h: f32,
    /// MLP probability.
    p: f32,
}

impl Default for Row {
    fn default() -> Self {
        Self {
            text: String::new(),
            malicious: false,
            tune: false,
            bastion: false,
            passage: false,
            stage: GuardStage::Input,
            channel: String::new(),
            lang: String::new(),
            h: 0.0,
            p: 0.0,
        }
    }
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Counts {
    fn of<'a>(rows: impl Iterator<Item = &'a Row>, pred: &dyn Fn(&Row) -> bool) -> Self {
        let mut c = Self::default();
        for r in rows {
            match (r.malicious, pred(r)) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (true, false) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }
    fn n(&self) -> usize {
        self.tp + self.fp + self.fn_ + self.tn
    }
    fn ratio(a: usize, b: usize) -> f64 {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    }
    fn precision(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(&self) -> f64 {
        Self::ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    fn fpr(&self) -> f64 {
        Self::ratio(self.fp, self.fp + self.tn)
    }
    /// `n | TP | FP | FN | TN | precision | recall | F1`.
    fn cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {} | {} | {} | {}",
            self.n(),
            self.tp,
            self.fp,
            self.fn_,
            self.tn,
            pct(self.precision()),
            pct(self.recall()),
            pct(self.f1())
        )
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

/// Class-balanced logistic regression with a small L2 penalty, by Newton's method. Returns
/// `[bias, w1, w2, ...]`.
fn logistic(x: &[Vec<f32>], y: &[bool]) -> Vec<f32> {
    let d = x.first().map_or(0, Vec::len) + 1;
    let pos = y.iter().filter(|&&b| b).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    let (wp, wn) = (y.len() as f64 / (2.0 * pos), y.len() as f64 / (2.0 * neg));
    let mut beta = vec![0.0f64; d];
    let l2 = 0.01;
    for _ in 0..50 {
        let mut grad = vec![0.0f64; d];
        let mut hess = vec![vec![0.0f64; d]; d];
        for (xi, &yi) in x.iter().zip(y) {
            let f: Vec<f64> = std::iter::once(1.0)
                .chain(xi.iter().map(|&v| f64::from(v)))
                .collect();
            let z: f64 = f.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let w = if yi { wp } else { wn };
            let err = p - f64::from(u8::from(yi));
            for j in 0..d {
                grad[j] += w * err * f[j];
                for k in 0..d {
                    hess[j][k] += w * p * (1.0 - p) * f[j] * f[k];
                }
            }
        }
        for j in 1..d {
            grad[j] += l2 * beta[j];
            hess[j][j] += l2;
        }
        let step = solve(hess, grad);
        for j in 0..d {
            beta[j] -= step[j];
        }
    }
    beta.into_iter().map(|b| b as f32).collect()
}

/// Gaussian elimination with partial pivoting for a small dense system.
#[allow(clippy::needless_range_loop)] // index arithmetic over rows and columns reads clearer
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, p);
        b.swap(c, p);
        let pivot = if a[c][c].abs() < 1e-12 {
            1e-12
        } else {
            a[c][c]
        };
        for r in c + 1..n {
            let f = a[r][c] / pivot;
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        let pivot = if a[r][r].abs() < 1e-12 {
            1e-12
        } else {
            a[r][r]
        };
        x[r] = (b[r] - s) / pivot;
    }
    x
}

/// The threshold (0.01 steps) with the best F1 on the tuning bastioncorpus rows among those
/// flagging at most 1% of the tuning HaluEval questions; when several tie (a plateau), the
/// middle one.
fn choose_threshold(tune: &[&Row], score: &dyn Fn(&Row) -> f32) -> f32 {
    let mut scored: Vec<(f64, f32)> = Vec::new();
    for step in 1..100 {
        let t = step as f32 / 100.0;
        let pred = |r: &Row| score(r) >= t;
        let bastion = Counts::of(tune.iter().copied().filter(|r| r.bastion), &pred);
        let benign = Counts::of(tune.iter().copied().filter(|r| !r.bastion), &pred);
        if benign.fpr() <= 0.01 {
            scored.push((bastion.f1(), t));
        }
    }
    let best = scored.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let plateau: Vec<f32> = scored
        .iter()
        .filter(|s| (s.0 - best).abs() < 1e-9)
        .map(|s| s.1)
        .collect();
    plateau.get(plateau.len() / 2).copied().unwrap_or(0.5)
}
