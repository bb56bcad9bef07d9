//! Behavioural observability: traces (built per request, exported over OTLP/HTTP), Prometheus
//! metrics, drift detection over rolling windows, and structured request logs.
//!
//! Code map:
//! - [`spans`]: `TraceBuilder`, which the pipeline uses to time each stage as a span following
//!   the OpenTelemetry GenAI semantic conventions, and content capture per `ContentMode`.
//! - [`otlp`]: the OTLP/HTTP protobuf exporter: a bounded queue and a batching task; exporting
//!   never blocks a request.
//! - [`metrics`]: `Metrics`, Prometheus text exposition with bounded label sets.
//! - [`sampling`]: tail sampling of traces (notable ones always, the rest capped per second).
//! - [`drift`]: per-route rolling windows vs a baseline (PSI, centroid cosine distance),
//!   alerts as log events, metrics and signed webhooks.
//! - [`bridge`]: drift alerts and statistics into metrics.
//! - [`logs`]: the tracing subscriber (text or JSON) and the one-line-per-request log.

pub mod bridge;
pub mod drift;
pub mod log_output;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod sampling;
pub mod spans;
