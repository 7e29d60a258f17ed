//! `stock-producer`: stock trades to the `stock_trades` topic.

use clap::Parser;
use stock_producer::StockTrades;
use streamweaver_common::producer;

/// Produces fake stock trades (a random walk per symbol) to Kafka, keyed by symbol.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    producer: producer::ProducerArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    producer::main(Cli::parse().producer, StockTrades::default()).await
}
