//! `keel-mock-upstream`: the mock upstream as a process, answering every request with the
//! default echo (OpenAI and Anthropic protocols), for Python tests and load tests.
//!
//! Usage: `keel-mock-upstream [--listen 127.0.0.1:PORT] [--latency-ms N] [--record]
//! [--faults 5xx=0.30,reset=0.05,stall=0.05[,mid_stream][,seed=N]]`

use keel_testkit::{FaultMix, MockOptions, MockUpstream};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: keel-mock-upstream [--listen 127.0.0.1:PORT] [--latency-ms N] \
    [--record] [--faults 5xx=0.30,reset=0.05,stall=0.05[,mid_stream][,seed=N]]";

fn parse_args() -> Result<(SocketAddr, MockOptions), String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8089));
    // Recording is off by default: a load test would grow memory without bound.
    let mut options = MockOptions {
        record: false,
        latency: Duration::ZERO,
        faults: FaultMix::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--latency-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?;
                options.latency = Duration::from_millis(ms);
            }
            "--record" => options.record = true,
            "--faults" => options.faults = FaultMix::parse(&value()?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok((listen, options))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockUpstream::bind(listen, options).await {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("keel-mock-upstream: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this line to know the port is open.
    println!("keel-mock-upstream listening on {}", mock.base_url());
    let _ = std::io::stdout().flush();
    tokio::select! {
        () = mock.run() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
