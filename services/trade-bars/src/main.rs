//! `trade-bars`: stock trades from the gateway → one-second bars → Kafka.

use std::process::ExitCode;

use clap::Parser;
use streamweaver_common::{shutdown, telemetry};
use trade_bars::{TradeBarsArgs, TradeBarsError};

/// Follows stock_trades through the gateway and produces one-second OHLC bars per symbol to the
/// trade_bars topic, every trade in exactly one bar across gateway and service restarts.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    trade_bars: TradeBarsArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_tracing();
    let cli = Cli::parse();
    match trade_bars::run(cli.trade_bars, shutdown::cancel_on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ TradeBarsError::Config(_)) => {
            eprintln!("trade-bars: {error}");
            ExitCode::from(streamweaver_common::EXIT_USAGE as u8)
        }
        Err(error) => {
            tracing::error!(error = %anyhow::Error::from(error), "trade-bars failed");
            ExitCode::FAILURE
        }
    }
}
