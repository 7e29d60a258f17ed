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

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    let args = BenchArgs::from_matches(&matches).unwrap_or(cli.bench);
    // Before the runtime starts its threads, so that they and every process they start inherit it.
    if let Some(nice) = args.nice {
        streamweaver_bench::suite::set_own_priority(nice)?;
    }
    tokio::runtime::Runtime::new()?.block_on(streamweaver_bench::suite::run(args))?;
    Ok(())
}
