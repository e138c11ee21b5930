//! Operational logs through `tracing`: human-readable or JSON lines.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogConfig;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the config.
pub fn init(cfg: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&cfg.level));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.format == "json" {
        let _ = builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init();
    } else {
        let _ = builder.with_ansi(false).try_init();
    }
}
