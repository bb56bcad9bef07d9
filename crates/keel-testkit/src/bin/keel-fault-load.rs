//! `keel-fault-load`: a load run that checks every answer, for the fault-injection benchmark.
//!
//! Sends `--requests` chat completions (a share of them streaming) with `--concurrency`
//! workers to an OpenAI-compatible endpoint in front of a mock upstream, each asking for a
//! distinct prompt, and classifies every answer against what the mock's echo must be:
//! - `ok`: the complete echo, `finish_reason` "stop" (and for a stream, `[DONE]`);
//! - `error`: the client was told it failed (a non-200 status, an error event, a broken
//!   connection);
//! - `false_success`: reported as success but not the complete echo (a truncated or mangled
//!   answer with `finish_reason` "stop" or a `[DONE]`) — must be zero;
//! - `silent_end`: a stream that ended without `[DONE]` and without an error event — the
//!   client cannot tell it was cut; must be zero.
//!
//! Prints one JSON object with the counts, latency percentiles and throughput.
//!
//! Usage: `keel-fault-load --url http://127.0.0.1:8080/v1 --model NAME [--requests 10000]
//! [--concurrency 32] [--stream-share 0.5] [--key KEY]`

use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: keel-fault-load --url URL --model NAME [--requests N] \
    [--concurrency N] [--stream-share F] [--key KEY]";

#[derive(Debug, Clone)]
struct Args {
    url: String,
    model: String,
    requests: u64,
    concurrency: usize,
    stream_share: f64,
    key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        model: String::new(),
        requests: 10_000,
        concurrency: 32,
        stream_share: 0.5,
        key: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--model" => a.model = value()?,
            "--requests" => {
                a.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--concurrency" => {
                a.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?;
            }
            "--stream-share" => {
                a.stream_share = value()?
                    .parse()
                    .map_err(|e| format!("--stream-share: {e}"))?;
            }
            "--key" => a.key = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.url.is_empty() || a.model.is_empty() || a.concurrency == 0 {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// What one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Error,
    FalseSuccess,
    SilentEnd,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::FalseSuccess => "false_success",
            Self::SilentEnd => "silent_end",
        }
    }
}

struct Outcome {
    verdict: Verdict,
    /// HTTP status, or 0 when the connection failed.
    status: u16,
    /// Whether keel marked the answer as recovered mid-stream.
    recovered: bool,
    latency: Duration,
}

async fn one(client: &reqwest::Client, args: &Args, i: u64, stream: bool) -> Outcome {
    let prompt = format!("fault-load request {i}");
    let expected = format!("echo: {prompt}");
    let body = json!({
        "model": args.model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    });
    let mut req = client
        .post(format!("{}/chat/completions", args.url))
        .json(&body);
    if let Some(key) = &args.key {
        req = req.bearer_auth(key);
    }
    let started = Instant::now();
    let (verdict, status, recovered) = match req.send().await {
        Err(_) => (Verdict::Error, 0, false),
        Ok(resp) if resp.status() != 200 => (Verdict::Error, resp.status().as_u16(), false),
        Ok(resp) if stream => {
            let (v, r) = read_stream(resp, &expected).await;
            (v, 200, r)
        }
        Ok(resp) => match resp.json::<Value>().await {
            Err(_) => (Verdict::Error, 200, false),
            Ok(v) => {
                let choice = &v["choices"][0];
                let complete = choice["message"]["content"].as_str() == Some(&expected)
                    && choice["finish_reason"] == "stop";
                let verdict = if complete {
                    Verdict::Ok
                } else {
                    Verdict::FalseSuccess
                };
                (verdict, 200, !v["keel"]["recovered"].is_null())
            }
        },
    };
    Outcome {
        verdict,
        status,
        recovered,
        latency: started.elapsed(),
    }
}

/// Reads an SSE chat stream to its end and judges it.
async fn read_stream(resp: reqwest::Response, expected: &str) -> (Verdict, bool) {
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let (mut text, mut finish, mut done, mut errored, mut recovered) =
        (String::new(), None::<String>, false, false, false);
    loop {
        let chunk = match body.next().await {
            None => break,
            Some(Err(_)) => {
                // The connection broke: the client sees a transport error.
                errored = true;
                break;
            }
            Some(Ok(c)) => c,
        };
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                errored = true;
                continue;
            };
            if !event["error"].is_null() {
                errored = true;
            }
            if !event["keel"]["recovered"].is_null() {
                recovered = true;
            }
            for c in event["choices"].as_array().into_iter().flatten() {
                if let Some(t) = c["delta"]["content"].as_str() {
                    text.push_str(t);
                }
                if let Some(f) = c["finish_reason"].as_str() {
                    finish = Some(f.to_owned());
                }
            }
        }
    }
    let verdict = if errored {
        Verdict::Error
    } else if !done {
        Verdict::SilentEnd
    } else if text == expected && finish.as_deref() == Some("stop") {
        Verdict::Ok
    } else {
        Verdict::FalseSuccess
    };
    (verdict, recovered)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(300))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keel-fault-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let next = Arc::new(AtomicU64::new(0));
    // Streams are spread evenly: request i streams when the running share falls behind.
    let stream_every = args.stream_share.clamp(0.0, 1.0);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, args, next) = (client.clone(), args.clone(), next.clone());
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.requests {
                    break outcomes;
                }
                let stream =
                    ((i + 1) as f64 * stream_every).floor() > (i as f64 * stream_every).floor();
                outcomes.push((stream, one(&client, &args, i, stream).await));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(outcomes) => all.extend(outcomes),
            Err(e) => {
                eprintln!("keel-fault-load: worker failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut verdicts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let (mut streams, mut recovered) = (0u64, 0u64);
    let mut latencies: Vec<f64> = Vec::with_capacity(all.len());
    for (stream, o) in &all {
        *verdicts.entry(o.verdict.name()).or_default() += 1;
        *statuses.entry(o.status.to_string()).or_default() += 1;
        streams += u64::from(*stream);
        recovered += u64::from(o.recovered);
        latencies.push(o.latency.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let ok = verdicts.get("ok").copied().unwrap_or(0);
    let report = json!({
        "requests": all.len(),
        "streams": streams,
        "verdicts": verdicts,
        "statuses": statuses,
        "success_rate": ok as f64 / all.len().max(1) as f64,
        "recovered": recovered,
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(0.0),
        "elapsed_s": elapsed,
        "throughput_rps": all.len() as f64 / elapsed,
    });
    println!("{report}");
    ExitCode::SUCCESS
}
