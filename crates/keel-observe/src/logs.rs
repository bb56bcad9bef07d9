//! Structured logs: the process-wide subscriber (human text or one JSON object per line,
//! filtered by `RUST_LOG`, default `info`; buffered for the server) and the one info line
//! every request leaves.
//!
//! The request line carries ids, route, the model that answered and why routing chose it,
//! status, latency and tokens, never message content, keys or upstream secrets.

use crate::log_output;
use keel_config::LogFormat;
use keel_store::RequestRecord;

/// Target of the per-request line; filter it with `RUST_LOG=keel::request=off` if unwanted.
pub const REQUEST_TARGET: &str = "keel::request";

/// How log lines reach stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Written as each line is logged (commands that print results between their logs).
    Direct,
    /// Buffered and written by a flusher thread (the server; see [`crate::log_output`]).
    Buffered,
}

/// Installs the global subscriber writing to stderr, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `info`). Errors if one is already installed.
pub fn init(format: LogFormat, default_filter: &str, output: Output) -> Result<(), String> {
    match output {
        Output::Direct => install(format, default_filter, std::io::stderr),
        Output::Buffered => install(format, default_filter, log_output::Buffered),
    }
}

fn install<W>(format: LogFormat, default_filter: &str, writer: W) -> Result<(), String>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only for a terminal: escape codes in a log file or a collector are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    }
    .map_err(|e| e.to_string())
}

/// The model that answered: as routing recorded it, else the last attempt that succeeded.
pub fn served_model(rec: &RequestRecord) -> Option<&str> {
    rec.model_served.as_deref().or_else(|| {
        rec.attempts
            .iter()
            .rev()
            .find(|a| a.outcome == "ok")
            .map(|a| a.model.as_str())
    })
}

/// Emits the request's info line.
pub fn request_line(rec: &RequestRecord, trace_id: &str) {
    tracing::info!(
        target: REQUEST_TARGET,
        request_id = %rec.id,
        trace_id,
        tenant = rec.tenant.as_deref().unwrap_or("-"),
        key_id = rec.key_id.as_deref().unwrap_or("-"),
        endpoint = %rec.endpoint,
        route = rec.route.as_deref().unwrap_or("-"),
        model = served_model(rec).unwrap_or("-"),
        route_reason = rec.route_reason.as_deref().unwrap_or("-"),
        stream = rec.stream,
        status = rec.status,
        latency_ms = (rec.total_ms * 1000.0).round() / 1000.0,
        ttft_ms = rec.ttft_ms.map(|t| (t * 1000.0).round() / 1000.0),
        input_tokens = rec.input_tokens,
        output_tokens = rec.output_tokens,
        attempts = rec.attempts.len(),
        error_class = rec.error_class.as_deref(),
        "request"
    );
}
