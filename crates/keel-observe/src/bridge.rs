//! Wiring between observability parts: drift alerts and statistics become metrics.

use crate::drift::{AlertSink, DriftAlert};
use crate::metrics::Metrics;

/// Sends drift alerts to `keel_drift_alerts_total` and statistics to `keel_drift_statistic`.
pub struct DriftMetrics(pub Metrics);

impl AlertSink for DriftMetrics {
    fn alert(&self, alert: &DriftAlert) {
        self.0.record_drift_alert(&alert.route, alert.signal);
    }

    fn statistic(&self, route: &str, signal: &str, value: f64) {
        self.0.set_drift_statistic(route, signal, value);
    }
}
