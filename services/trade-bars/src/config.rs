//! The flags of `trade-bars`, each with an environment fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use streamweaver_common::{duration::parse_duration, kafka::KafkaArgs};

/// Where a first run (no bars in Kafka yet) starts reading trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FirstStart {
    /// Trades from now on.
    Live,
    /// Every trade Kafka still holds.
    Earliest,
}

/// Everything `trade-bars` can be told.
#[derive(Debug, Clone, Args)]
pub struct TradeBarsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    /// The gateway to follow `stock_trades` from (`https://` for TLS).
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway_url: String,
    /// Bearer token (or JWT) the gateway requires of subscribers, if any.
    #[arg(long, env = "STREAMWEAVER_SUBSCRIBE_TOKEN", hide_env_values = true)]
    pub subscribe_token: Option<String>,
    /// PEM file of the CA that signed the gateway's TLS certificate (default: the system's roots).
    #[arg(long, env = "GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<PathBuf>,
    /// The gateway's `--heartbeat`: three of them without a word and the connection is remade.
    #[arg(long, env = "GATEWAY_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub gateway_heartbeat: Duration,
    /// How long after a second ends its bar may still take trades: a bar closes when its
    /// symbol trades in a later second, or its partition's trades are this much later, or
    /// (a quiet partition) the clock is this much later.
    #[arg(long, env = "TRADE_BARS_GRACE", default_value = "2s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Where the first run starts when Kafka holds no bars yet: live or earliest.
    #[arg(
        long,
        env = "TRADE_BARS_FIRST_START",
        value_enum,
        default_value = "live"
    )]
    pub first_start: FirstStart,
    /// How many of the newest bars per `trade_bars` partition are read at start to find where
    /// the last run ended (at least the bars of a few seconds: symbols × grace).
    #[arg(long, env = "TRADE_BARS_RESTORE_WINDOW", default_value_t = 10_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub restore_window: i64,
    /// Partitions of `trade_bars`, when this service has to create it.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Longest wait between reconnection attempts to the gateway.
    #[arg(long, env = "TRADE_BARS_MAX_BACKOFF", default_value = "5s", value_parser = parse_duration)]
    pub max_backoff: Duration,
    /// Serve Prometheus /metrics and /healthz on this address (default: off).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}
