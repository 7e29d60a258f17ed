//! `bench`: runs the chosen parts, prints each figure as it comes, and writes the report.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use clap::{ArgMatches, Args, FromArgMatches, ValueEnum, parser::ValueSource};
use serde::{Deserialize, Serialize};
use streamweaver_common::duration::parse_duration;

use crate::{
    fanout::{FanoutConfig, Subject},
    process::{load_average, raise_open_files_limit, sibling_binary},
    report::{Results, RunInfo},
    wire::EventSource,
};

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum Part {
    /// Consumer → gateway → WebSocket, beside the original Python design's HTTP POST per message.
    Design,
    /// Deliveries/s, latency and CPU per delivery to many subscribers, beside the bare baseline.
    Fanout,
    /// Gateway memory per idle subscriber (WebSocket and gRPC), beside the bare baseline.
    Memory,
    /// Producer → subscriber latency through the embedded broker, beside bare Kafka.
    Pipeline,
    /// CPU per event of a filter expression beside list fields, and of a client decoding JSON
    /// beside Protobuf (the binary WebSocket); in this process, a few seconds.
    Costs,
}

/// Everything `bench` can be told; each flag also reads an environment variable.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Parts to run, comma-separated.
    #[arg(
        long,
        env = "BENCH_PARTS",
        value_enum,
        value_delimiter = ',',
        default_value = "design,fanout,memory,pipeline,costs"
    )]
    pub parts: Vec<Part>,
    /// A run of a few minutes: subscribers 1,100,1000, rate 400, 2 s measured, 1,000 idle
    /// subscribers, smaller pipeline and design runs (flags given explicitly still win).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,
    /// Subscriber counts for the fan-out part.
    #[arg(
        long,
        env = "BENCH_SUBSCRIBERS",
        value_delimiter = ',',
        default_value = "1,100,1000,10000"
    )]
    pub subscribers: Vec<usize>,
    /// Event rates (events/s) for the fan-out part.
    #[arg(
        long,
        env = "BENCH_RATES",
        value_delimiter = ',',
        default_value = "200,400,1000"
    )]
    pub rates: Vec<f64>,
    /// What the fan-out part measures: the gateway's transports and the bare baselines.
    #[arg(
        long,
        env = "BENCH_SUBJECTS",
        value_enum,
        value_delimiter = ',',
        default_value = "ws-batch,ws,grpc,bare-batch,bare"
    )]
    pub subjects: Vec<Subject>,
    /// Least warm-up per fan-out run (it also lasts until every subscriber has had an event).
    #[arg(long, env = "BENCH_WARM_UP", default_value = "2s", value_parser = parse_duration)]
    pub warm_up: Duration,
    /// Seconds of events measured per fan-out run.
    #[arg(long, env = "BENCH_MEASURE", default_value = "5s", value_parser = parse_duration)]
    pub measure: Duration,
    /// Idle subscribers for the memory part.
    #[arg(long, env = "BENCH_IDLE_SUBSCRIBERS", default_value_t = 10_000)]
    pub idle_subscribers: usize,
    /// gRPC streams per HTTP/2 connection in the load client.
    #[arg(long, env = "BENCH_STREAMS_PER_CONNECTION", default_value_t = 100)]
    pub streams_per_connection: usize,
    /// Event rates for the end-to-end part.
    #[arg(
        long,
        env = "BENCH_PIPELINE_RATES",
        value_delimiter = ',',
        default_value = "200,400,1000"
    )]
    pub pipeline_rates: Vec<f64>,
    /// Seconds of events measured per end-to-end rate.
    #[arg(long, env = "BENCH_PIPELINE_MEASURE", default_value = "10s", value_parser = parse_duration)]
    pub pipeline_measure: Duration,
    /// Events of the pipeline's flat-out run (0: skip it).
    #[arg(long, env = "BENCH_FLAT_OUT_EVENTS", default_value_t = 200_000)]
    pub flat_out_events: u64,
    /// Events per flat-out run of the design part.
    #[arg(long, env = "BENCH_DESIGN_EVENTS", default_value_t = 50_000)]
    pub design_events: usize,
    /// Steady rate of the design part's latency run, events/s.
    #[arg(long, env = "BENCH_DESIGN_RATE", default_value_t = 2_000.0)]
    pub design_rate: f64,
    /// The gateway binary to measure (default: `gateway` beside this binary, i.e. the release
    /// build); give an older build to measure it the same way.
    #[arg(long, env = "BENCH_GATEWAY")]
    pub gateway: Option<PathBuf>,
    /// Extra environment for the gateway under test, `KEY=VALUE`, comma-separated.
    #[arg(long, env = "BENCH_GATEWAY_ENV", value_delimiter = ',')]
    pub gateway_env: Vec<String>,
    /// Profile the gateway with `perf` during the fan-out runs with this many subscribers; the
    /// summaries go beside the report (needs `perf`: apt-get install linux-perf).
    #[arg(long, env = "BENCH_PERF_AT")]
    pub perf_at: Option<usize>,
    /// Run the benchmark and every process it starts at this scheduling priority (`renice`; below
    /// 0 needs root): on a machine shared with compiles, e.g. -10 keeps them from starving the
    /// measurement. Recorded in the report.
    #[arg(long, env = "BENCH_NICE", allow_negative_numbers = true)]
    pub nice: Option<i32>,
    /// A name for this run; the report goes to `<out>/<date>-<label>/`.
    #[arg(long, env = "BENCH_LABEL", default_value = "latest")]
    pub label: String,
    /// Where reports go.
    #[arg(long, env = "BENCH_OUT", default_value = "bench/results")]
    pub out: PathBuf,
}

impl BenchArgs {
    /// The arguments as given, with `--quick`'s smaller sizes for every flag left at its default.
    pub fn from_matches(matches: &ArgMatches) -> anyhow::Result<Self> {
        let mut args = Self::from_arg_matches(matches)?;
        if args.quick {
            let default = |id: &str| matches.value_source(id) == Some(ValueSource::DefaultValue);
            if default("subscribers") {
                args.subscribers = vec![1, 100, 1_000];
            }
            if default("rates") {
                args.rates = vec![400.0];
            }
            if default("measure") {
                args.measure = Duration::from_secs(2);
            }
            if default("warm_up") {
                args.warm_up = Duration::from_secs(1);
            }
            if default("idle_subscribers") {
                args.idle_subscribers = 1_000;
            }
            if default("pipeline_rates") {
                args.pipeline_rates = vec![400.0];
            }
            if default("pipeline_measure") {
                args.pipeline_measure = Duration::from_secs(3);
            }
            if default("flat_out_events") {
                args.flat_out_events = 20_000;
            }
            if default("design_events") {
                args.design_events = 10_000;
            }
        }
        Ok(args)
    }
}

/// Runs the benchmark and writes its report; returns the report's folder.
pub async fn run(args: BenchArgs) -> anyhow::Result<PathBuf> {
    raise_open_files_limit()?;
    let started = Instant::now();
    let load_before = load_average()?;
    if load_before[0] > 1.0 {
        println!(
            "Note: load average {:.2} on {} cores before starting: other work is running, figures will be noisy.",
            load_before[0],
            cores()
        );
    }
    let gateway = match &args.gateway {
        Some(path) => path.clone(),
        None => sibling_binary("gateway")?,
    };
    let gateway_env = args
        .gateway_env
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--gateway-env {pair:?} is not KEY=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let target_dir = sibling_binary("bench")?
        .parent()
        .and_then(|release| release.parent())
        .map(PathBuf::from)
        .context("no target folder")?;
    let logs = target_dir.join("bench-logs").join(&args.label);
    std::fs::create_dir_all(&logs)?;
    let dir = args
        .out
        .join(format!("{}-{}", utc_date(SystemTime::now()), args.label));
    let config = FanoutConfig {
        gateway: gateway.clone(),
        gateway_env,
        subscribers: args.subscribers.clone(),
        rates: args.rates.clone(),
        subjects: args.subjects.clone(),
        warm_up: args.warm_up,
        measure: args.measure,
        idle_subscribers: args.idle_subscribers,
        streams_per_connection: args.streams_per_connection,
        logs: logs.clone(),
        perf_at: args.perf_at,
        profiles: dir.clone(),
    };
    let mut results = Results {
        info: RunInfo {
            label: args.label.clone(),
            started: utc_time(SystemTime::now()),
            commit: commit(),
            gateway: gateway.display().to_string(),
            cores: cores(),
            load_before,
            load_after: load_before,
            minutes: 0.0,
            warm_up_seconds: args.warm_up.as_secs_f64(),
            measure_seconds: args.measure.as_secs_f64(),
            streams_per_connection: args.streams_per_connection,
            nice: args.nice,
        },
        design: None,
        fanout: Vec::new(),
        memory: Vec::new(),
        pipeline: Vec::new(),
        flat_out: None,
        costs: None,
        errors: Vec::new(),
    };

    if args.parts.contains(&Part::Design) {
        println!(
            "Consumer → gateway → WebSocket subscriber, beside the original Python design's HTTP POST per message"
        );
        match crate::design::run(args.design_events, args.design_rate).await {
            Ok(design) => {
                println!(
                    "  flat out: {:.0} vs {:.0} events/s; steady {} events/s: p50 {:.3} vs {:.3} ms, p99 {:.3} vs {:.3} ms",
                    design.ours_flat_out.events_per_second,
                    design.original_flat_out.events_per_second,
                    design.rate,
                    design.ours_steady.latency.p50_ms,
                    design.original_steady.latency.p50_ms,
                    design.ours_steady.latency.p99_ms,
                    design.original_steady.latency.p99_ms
                );
                results.design = Some(design);
            }
            Err(error) => results.errors.push(format!("design: {error:#}")),
        }
    }
    if args.parts.contains(&Part::Fanout) {
        println!(
            "Fan-out: {} × {:?} subscribers × {:?} events/s",
            args.subjects.len(),
            args.subscribers,
            args.rates
        );
        let events = Arc::new(EventSource::new(1024));
        results.fanout = crate::fanout::run_fanout(&config, &events).await;
    }
    if args.parts.contains(&Part::Memory) {
        println!(
            "Memory per idle subscriber, {} subscribers",
            args.idle_subscribers
        );
        let subjects = [Subject::Ws, Subject::Grpc, Subject::Bare];
        results.memory = crate::fanout::run_memory(&config, &subjects).await;
    }
    if args.parts.contains(&Part::Pipeline) {
        println!(
            "Producer → tansu → consumer → gateway → gRPC subscriber, beside bare Kafka produce → consume"
        );
        match crate::pipeline::run(&gateway, &logs, &args.pipeline_rates, args.pipeline_measure)
            .await
        {
            Ok(pipeline) => results.pipeline = pipeline,
            Err(error) => results.errors.push(format!("pipeline: {error:#}")),
        }
        if args.flat_out_events > 0 {
            match crate::pipeline::flat_out(&gateway, &logs, args.flat_out_events).await {
                Ok(flat_out) => results.flat_out = Some(flat_out),
                Err(error) => results.errors.push(format!("pipeline flat out: {error:#}")),
            }
        }
    }
    if args.parts.contains(&Part::Costs) {
        println!(
            "CPU per event: filter expressions beside list fields; client decoding, JSON beside Protobuf"
        );
        match crate::costs::run() {
            Ok(costs) => {
                for filter in &costs.filters {
                    println!("  {:>6.0} ns  {}", filter.ns_per_event, filter.filter);
                }
                for decode in &costs.decoding {
                    println!(
                        "  {:>6.0} ns  decoding an event from {} ({} bytes)",
                        decode.ns_per_event, decode.encoding, decode.bytes
                    );
                }
                results.costs = Some(costs);
            }
            Err(error) => results.errors.push(format!("costs: {error:#}")),
        }
    }
    for error in &results.errors {
        println!("FAILED: {error}");
    }

    results.info.load_after = load_average()?;
    results.info.minutes = started.elapsed().as_secs_f64() / 60.0;
    results.write(&dir)?;
    println!("\nTargets (issue 7):");
    for verdict in results.verdicts() {
        let met = match verdict.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        println!("  [{met}] {} — {}", verdict.target, verdict.measured);
    }
    println!("\nReport: {}", dir.join("report.md").display());
    Ok(dir)
}

/// Sets this process's nice value. Linux keeps one per thread and a new thread or process takes
/// its creator's: call this before any other thread is started, so the runtime's workers and
/// every process they start run at it too. With the scheduler's autogroups on, a nice value
/// counts only against the same session, so the session's autogroup gets it as well.
pub fn set_own_priority(nice: i32) -> anyhow::Result<()> {
    let status = std::process::Command::new("renice")
        .args([
            "-n",
            &nice.to_string(),
            "-p",
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run renice")?;
    anyhow::ensure!(
        status.success(),
        "renice -n {nice} failed (below 0 needs root)"
    );
    let autogroup = Path::new("/proc/self/autogroup");
    if autogroup.exists() {
        std::fs::write(autogroup, nice.to_string())
            .with_context(|| format!("cannot set the autogroup's nice to {nice}"))?;
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The checkout's commit, `+dirty` when it has uncommitted changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{commit}+dirty"),
        _ => commit,
    }
}

/// (year, month, day, seconds into the day) of a time, UTC.
fn civil(time: SystemTime) -> (i64, i64, i64, i64) {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // H. Hinnant's `civil_from_days`.
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day, seconds.rem_euclid(86_400))
}

fn utc_date(time: SystemTime) -> String {
    let (year, month, day, _) = civil(time);
    format!("{year:04}-{month:02}-{day:02}")
}

fn utc_time(time: SystemTime) -> String {
    let (_, _, _, seconds) = civil(time);
    format!(
        "{} {:02}:{:02} UTC",
        utc_date(time),
        seconds / 3_600,
        seconds % 3_600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        let at = |seconds: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        assert_eq!(utc_date(at(0)), "1970-01-01");
        assert_eq!(utc_date(at(951_782_400)), "2000-02-29");
        assert_eq!(utc_time(at(1_795_915_932)), "2026-11-29 01:32 UTC");
    }
}
