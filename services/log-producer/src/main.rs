//! `log-producer`: server log lines to the `server_logs` topic.

use clap::Parser;
use log_producer::ServerLogs;
use streamweaver_common::producer;

/// Produces fake server logs (realistic levels, latencies, statuses) to Kafka, keyed by service.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    producer: producer::ProducerArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    producer::main(Cli::parse().producer, ServerLogs::default()).await
}
