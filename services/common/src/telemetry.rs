//! Logging setup shared by every binary.

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default: `info` for StreamWeaver, `warn` for the rest).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "warn,streamweaver_common=info,stock_producer=info,social_producer=info,\
             log_producer=info,stream_consumer=info,gateway=info,trade_bars=info,\
             streamweaver_client=info",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
