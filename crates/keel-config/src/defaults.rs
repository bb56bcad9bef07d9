//! Every default value in one place, and the documented default config file.

use crate::model::{Capability, TrustSignal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The config `keel serve` runs with when no `--config` is given (`config/keel.toml`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../../config/keel.toml");

pub fn listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
pub fn max_body_bytes() -> usize {
    4 * 1024 * 1024
}
pub fn request_timeout() -> Duration {
    Duration::from_secs(300)
}
pub fn shutdown_grace() -> Duration {
    Duration::from_secs(30)
}
pub fn max_concurrency() -> usize {
    4096
}
pub fn upstream_timeout() -> Duration {
    Duration::from_secs(120)
}
pub fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}
pub fn context_window() -> u32 {
    8192
}
pub fn capabilities() -> Vec<Capability> {
    vec![Capability::Chat, Capability::Stream]
}
pub fn chat_queue() -> usize {
    64
}
pub fn chat_max_active() -> usize {
    4
}
pub fn embed_max_batch() -> usize {
    32
}
pub fn embed_queue() -> usize {
    256
}
pub fn circuit_min_requests() -> u32 {
    10
}
pub fn circuit_failure_rate() -> f64 {
    0.5
}
pub fn circuit_window() -> Duration {
    Duration::from_secs(30)
}
pub fn circuit_cooldown() -> Duration {
    Duration::from_secs(15)
}
pub fn circuit_half_open_probes() -> u32 {
    1
}
pub fn log_queue_capacity() -> usize {
    65_536
}
pub fn log_batch_size() -> usize {
    512
}
pub fn log_flush_interval() -> Duration {
    Duration::from_millis(200)
}
/// Request-log retention: 30 days.
pub fn request_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
pub fn postgres_url_env() -> String {
    "KEEL_POSTGRES_URL".into()
}
pub fn postgres_schema() -> String {
    "keel".into()
}

/// `$XDG_DATA_HOME/keel/keel.db`, else `~/.local/share/keel/keel.db`.
pub fn sqlite_path() -> PathBuf {
    data_home().join("keel").join("keel.db")
}

/// `$KEEL_CACHE_DIR`, else `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KEEL_CACHE_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache"))
        .join("keel")
}

fn data_home() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local").join("share"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
pub fn max_retries() -> u32 {
    2
}
pub fn base_backoff() -> Duration {
    Duration::from_millis(100)
}
pub fn max_backoff() -> Duration {
    Duration::from_secs(2)
}
pub fn max_retry_after() -> Duration {
    Duration::from_secs(5)
}
pub fn stream_recovery_max() -> u32 {
    1
}
pub fn hedge_max() -> u32 {
    1
}
pub fn latency_decay() -> Duration {
    Duration::from_secs(10)
}
pub fn cascade_threshold() -> f64 {
    0.5
}
pub fn cascade_signals() -> Vec<TrustSignal> {
    vec![
        TrustSignal::FinishReason,
        TrustSignal::Refusal,
        TrustSignal::Empty,
        TrustSignal::Json,
        TrustSignal::Logprobs,
    ]
}
pub fn redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
pub fn admission_key_prefix() -> String {
    "keel".into()
}
pub fn default_max_output_tokens() -> u32 {
    4096
}
pub fn share_low() -> f64 {
    0.5
}
pub fn share_normal() -> f64 {
    0.8
}
pub fn share_high() -> f64 {
    1.0
}

/// `$XDG_DATA_HOME/keel/collections`, else `~/.local/share/keel/collections`.
pub fn collections_dir() -> PathBuf {
    data_home().join("keel").join("collections")
}
pub fn retrieval_embedding_model() -> String {
    "all-minilm-l6-v2".into()
}
pub fn max_document_bytes() -> usize {
    20 << 20
}
pub fn pdf_timeout() -> Duration {
    Duration::from_secs(20)
}
pub fn fetch_timeout() -> Duration {
    Duration::from_secs(15)
}
pub fn fetch_max_redirects() -> usize {
    5
}
pub fn retrieval_top_k() -> usize {
    4
}
