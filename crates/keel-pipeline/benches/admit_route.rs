//! What routing + admission add to one request, measured in process at a paced 2,000 req/s.
//!
//! Two configurations run the per-request work of the route and admit stages exactly as the
//! pipeline does it (resolve the name, plan the candidates, estimate, admit, track the
//! attempt's latency, settle), one call every 500 µs for `KEEL_BENCH_SECONDS` (default 10) each:
//! - `spine`: the model asked for by name, admission with nothing configured (what every
//!   request pays today);
//! - `routed`: route `r` with `strategy = "least_latency"` over two models, and [admission]
//!   with per-key, per-tenant and per-route limits, a budget and in-flight bounds (memory
//!   backend) — all far above the load, so every request is admitted.
//!
//! Prints p50 / p99 / p99.9 / max of each call's duration and the difference. The end-to-end
//! view of the same configurations over HTTP is `bench/admission.sh`.
//!
//! Run: `cargo bench -p keel-pipeline --bench admit_route`

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)] // a benchmark, like a test

use keel_admit::{Admission, Request};
use keel_pipeline::admit;
use keel_pipeline::catalog::Catalog;
use keel_pipeline::routing;
use keel_providers::ProviderRegistry;
use keel_types::openai::ChatCompletionRequest;
use std::time::{Duration, Instant};

const BASE: &str = r#"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"

[models.mock-gpt]
provider = "mock"
upstream = "gpt-mock"
capabilities = ["chat", "stream"]
"#;

const ROUTED: &str = r#"
[models.mock-gpt-2]
provider = "mock"
upstream = "gpt-mock-2"
capabilities = ["chat", "stream"]
input_price_per_mtok = 0.5
output_price_per_mtok = 1.5

[routes.r]
models = ["mock-gpt", "mock-gpt-2"]
strategy = "least_latency"

[[auth.keys]]
id = "bench"
tenant = "bench"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[admission]
max_in_flight = 100000

[admission.tenants.bench]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
cost_per_day_usd = 1000000.0
budget = { soft_usd = 900000.0, hard_usd = 1000000.0, period = "day" }

[admission.keys.bench]
requests_per_minute = 100000000
tokens_per_minute = 100000000000

[admission.routes.r]
requests_per_minute = 100000000
max_in_flight = 100000
"#;

struct Setup {
    catalog: Catalog,
    admission: Admission,
    model: &'static str,
}

async fn setup(extra: &str, model: &'static str) -> Setup {
    let config = keel_config::load::load_str(&format!("{BASE}{extra}"))
        .unwrap_or_else(|e| panic!("bench config: {e:?}"));
    let registry = ProviderRegistry::build(&config).expect("providers");
    Setup {
        catalog: Catalog::build(&config, &registry).expect("catalog"),
        admission: Admission::from_config(&config).await.expect("admission"),
        model,
    }
}

/// One request's route and admit work; returns the chosen model's name length (kept alive).
async fn one(s: &Setup, req: &ChatCompletionRequest) -> usize {
    let resolved = s.catalog.resolve(s.model).expect("resolves");
    let plan = routing::plan(resolved, req, resolved.candidates.to_vec()).expect("plan");
    let estimate = admit::estimate(&s.admission, resolved, admit::chat_ask(req));
    let ticket = s
        .admission
        .admit(
            Request {
                key_id: Some("bench"),
                tenant: Some("bench"),
                route: &resolved.route,
            },
            estimate,
        )
        .await
        .unwrap_or_else(|r| panic!("refused: {:?}", r.error));
    let first = &plan.order[0];
    let in_flight = first.latency.start();
    // The upstream call would be here; its latency feeds the model's peak-EWMA.
    first
        .latency
        .observe(Duration::from_micros(300), Instant::now());
    drop(in_flight);
    ticket.settle(40, first.config.cost_usd(20, 20));
    first.name.len()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn measure(s: &Setup, seconds: u64) -> Vec<f64> {
    let req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": s.model,
        "messages": [{"role": "user", "content": "hello"}],
    }))
    .expect("request");
    let period = Duration::from_micros(500);
    let n = (seconds * 2000) as usize;
    let mut out = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        next += period;
        let t = Instant::now();
        std::hint::black_box(one(s, &req).await);
        out.push(t.elapsed().as_secs_f64() * 1e6);
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        }
    }
    out.sort_by(f64::total_cmp);
    out
}

fn main() {
    let seconds: u64 = std::env::var("KEEL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let spine = setup("", "mock-gpt").await;
        let routed = setup(ROUTED, "r").await;
        // Warm both, then alternate halves so drift in machine load hits both alike.
        measure(&spine, 1).await;
        measure(&routed, 1).await;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            a.extend(measure(&spine, seconds / 2).await);
            b.extend(measure(&routed, seconds / 2).await);
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        println!(
            "route + admit work per request, paced at 2,000 req/s, {} calls each (µs)",
            a.len()
        );
        println!("| config | p50 | p99 | p99.9 | max |");
        println!("|---|---|---|---|---|");
        for (name, v) in [("spine", &a), ("routed", &b)] {
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 99.9),
                v[v.len() - 1]
            );
        }
        println!(
            "added p50 {:.2} µs, added p99 {:.2} µs",
            percentile(&b, 50.0) - percentile(&a, 50.0),
            percentile(&b, 99.0) - percentile(&a, 99.0)
        );
    });
}
