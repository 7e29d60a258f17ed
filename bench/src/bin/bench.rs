//! `bench` (`make bench`): runs the benchmark's parts and writes the report.

use clap::{CommandFactory, FromArgMatches, Parser};
use streamweaver_bench::suite::BenchArgs;

/// Benchmarks StreamWeaver: fan-out to many subscribers beside a bare baseline, memory per idle
/// subscriber, end-to-end latency beside bare Kafka, and the consumer → gateway hop beside the
/// original Python design. Writes a Markdown report with charts.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let args = BenchArgs::from_matches(&matches).unwrap_or(cli.bench);
    streamweaver_bench::suite::run(args).await?;
    Ok(())
}
