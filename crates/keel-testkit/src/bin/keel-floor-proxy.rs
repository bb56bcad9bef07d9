//! `keel-floor-proxy`: the least a gateway on keel's stack can do, for the gateway benchmark's
//! floor. It forwards `POST /v1/chat/completions` bodies unread to one upstream and the answer
//! back unread, on the same runtime, server (axum on hyper) and client (reqwest, no Nagle) as
//! keel, with none of keel's work: no parsing, auth, routing, policy, logging or records.
//!
//! Whatever latency it adds over calling the upstream directly, any proxy on this stack on the
//! same machine adds; keel's own cost is what keel adds beyond it.
//!
//! Usage: `keel-floor-proxy --listen 127.0.0.1:PORT --upstream http://127.0.0.1:PORT/v1`

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: keel-floor-proxy --listen 127.0.0.1:PORT --upstream URL";

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    url: reqwest::Url,
}

fn parse_args() -> Result<(SocketAddr, reqwest::Url), String> {
    let (mut listen, mut upstream) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--upstream" => upstream = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        return Err(USAGE.into());
    };
    let base = upstream.trim_end_matches('/');
    let url = reqwest::Url::parse(&format!("{base}/chat/completions"))
        .map_err(|e| format!("--upstream: {e}"))?;
    Ok((listen, url))
}

async fn forward(State(f): State<Forward>, body: Bytes) -> Response {
    let sent = f
        .client
        .post(f.url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    match answer.bytes().await {
        Ok(bytes) => {
            let json = HeaderValue::from_static("application/json");
            (status, [(header::CONTENT_TYPE, json)], bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, url) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder().tcp_nodelay(true).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("building the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(forward))
        .with_state(Forward { client, url });
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("binding {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("keel-floor-proxy listening on {listen}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serving: {e}");
            ExitCode::FAILURE
        }
    }
}
