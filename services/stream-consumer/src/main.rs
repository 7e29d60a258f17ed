//! `stream-consumer`: Kafka → gateway.

use std::process::ExitCode;

use clap::Parser;
use stream_consumer::ConsumerArgs;
use streamweaver_common::{shutdown, telemetry};

/// Consumes stock_trades, social_feed, server_logs and trade_bars and streams every event to the
/// gateway over a client-streaming gRPC call, committing offsets only once the gateway
/// acknowledges them.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    consumer: ConsumerArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_tracing();
    let cli = Cli::parse();
    match stream_consumer::run(cli.consumer, shutdown::cancel_on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ stream_consumer::ConsumerError::Config(_)) => {
            eprintln!("stream-consumer: {error}");
            ExitCode::from(streamweaver_common::EXIT_USAGE as u8)
        }
        Err(error) => {
            tracing::error!(error = %anyhow::Error::from(error), "stream consumer failed");
            ExitCode::FAILURE
        }
    }
}
