mod drift;
mod metrics;
mod otlp;
