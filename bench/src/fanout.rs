//! The fan-out part: deliveries per second, latency and CPU per delivery to many subscribers, for
//! the gateway's WebSocket (batched and one frame per event) and gRPC, each run beside the bare
//! baseline on the same sizes and rates; and memory per idle subscriber.
//!
//! Every run starts a fresh server process and a fresh load client, so no run inherits another's
//! queues or sockets: connect every subscriber, publish until each has received an event and the
//! warm-up has passed, then measure a numbered stretch of events and wait for it to drain.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command as Process},
};

use crate::{
    client::{ClientMessage, ClientReport, ClientTransport, Command},
    process::{Server, free_address, sibling_binary},
    stats::Latencies,
    wire::EventSource,
};

/// The bearer token the benchmark's gateway takes for `Publish`.
const PUBLISH_TOKEN: &str = "bench-publish-token";
/// A subscription that matches nothing the benchmark publishes: idle, but subscribed.
pub const IDLE_REQUEST: &str = r#"{"topics":["stock_trades"],"symbols":["NO-SUCH-SYMBOL"]}"#;

/// What is measured: a transport of the gateway, or of the bare baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// The gateway's WebSocket with the batched subprotocol.
    WsBatch,
    /// The gateway's WebSocket, one frame per event.
    Ws,
    /// The gateway's native gRPC.
    Grpc,
    /// The bare baseline, batched frames.
    BareBatch,
    /// The bare baseline, one frame per event.
    Bare,
}

impl Subject {
    /// How the load client subscribes.
    pub fn client(self) -> ClientTransport {
        match self {
            Subject::WsBatch | Subject::BareBatch => ClientTransport::WsBatch,
            Subject::Ws | Subject::Bare => ClientTransport::Ws,
            Subject::Grpc => ClientTransport::Grpc,
        }
    }

    /// Whether this is the gateway (not the bare baseline).
    pub fn is_gateway(self) -> bool {
        matches!(self, Subject::WsBatch | Subject::Ws | Subject::Grpc)
    }

    /// The bare baseline this is compared with (itself for a baseline).
    pub fn baseline(self) -> Subject {
        match self {
            Subject::WsBatch | Subject::BareBatch => Subject::BareBatch,
            Subject::Ws | Subject::Grpc | Subject::Bare => Subject::Bare,
        }
    }

    /// Its name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Subject::WsBatch => "gateway WebSocket, batched",
            Subject::Ws => "gateway WebSocket, frame per event",
            Subject::Grpc => "gateway gRPC",
            Subject::BareBatch => "bare baseline, batched",
            Subject::Bare => "bare baseline, frame per event",
        }
    }
}

/// How the fan-out part runs.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The gateway binary under test.
    pub gateway: PathBuf,
    /// Extra environment for the gateway (`KEY=VALUE`).
    pub gateway_env: Vec<(String, String)>,
    /// Subscriber counts.
    pub subscribers: Vec<usize>,
    /// Events per second.
    pub rates: Vec<f64>,
    /// What to measure.
    pub subjects: Vec<Subject>,
    /// Least warm-up before measuring.
    pub warm_up: Duration,
    /// The measured stretch, in seconds of publishing.
    pub measure: Duration,
    /// Idle subscribers for the memory figures.
    pub idle_subscribers: usize,
    /// gRPC streams per HTTP/2 connection.
    pub streams_per_connection: usize,
    /// Where server logs (and `perf` data) go.
    pub logs: PathBuf,
    /// Profile the gateway with `perf` during the measured window of runs with this many
    /// subscribers; the summaries go to `profiles`.
    pub perf_at: Option<usize>,
    /// Where `perf` summaries go (the report's folder).
    pub profiles: PathBuf,
}

/// One fan-out run's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutFigures {
    /// What was measured.
    pub subject: Subject,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Events published per second.
    pub rate: f64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// Subscriptions that could not be made, and the first reason.
    pub connect_failed: usize,
    /// The first reason a subscription could not be made.
    pub connect_error: Option<String>,
    /// Seconds to connect every subscriber.
    pub connect_seconds: f64,
    /// Whether every subscriber had received an event before measuring began.
    pub all_live: bool,
    /// Events in the measured stretch.
    pub events: u64,
    /// What the subscribers saw.
    pub client: ClientReport,
    /// Measured deliveries per second: from the first measured event sent to the last one
    /// received.
    pub deliveries_per_second: f64,
    /// That window, in seconds.
    pub window_seconds: f64,
    /// Server CPU seconds from the first measured event sent until every subscriber had the last
    /// (or the drain ended).
    pub server_cpu_seconds: f64,
    /// The wall time those CPU seconds were counted over.
    #[serde(default)]
    pub server_wall_seconds: f64,
    /// Server resident memory at the end, in bytes.
    pub server_rss_bytes: u64,
    /// The `perf` summary of the server over the measured window, if one was taken (a file
    /// beside the report).
    pub profile: Option<String>,
}

impl FanoutFigures {
    fn failed(subject: Subject, subscribers: usize, rate: f64, error: String) -> Self {
        Self {
            subject,
            subscribers,
            rate,
            error: Some(error),
            connect_failed: 0,
            connect_error: None,
            connect_seconds: 0.0,
            all_live: false,
            events: 0,
            client: ClientReport::default(),
            deliveries_per_second: 0.0,
            window_seconds: 0.0,
            server_cpu_seconds: 0.0,
            server_wall_seconds: 0.0,
            server_rss_bytes: 0,
            profile: None,
        }
    }

    /// Deliveries asked for per second: subscribers × rate.
    pub fn asked_per_second(&self) -> f64 {
        self.subscribers as f64 * self.rate
    }

    /// Server CPU microseconds per delivery.
    pub fn cpu_micros_per_delivery(&self) -> f64 {
        if self.client.deliveries == 0 {
            return f64::NAN;
        }
        self.server_cpu_seconds * 1e6 / self.client.deliveries as f64
    }

    /// Cores the server used while measured.
    pub fn server_cores(&self) -> f64 {
        self.server_cpu_seconds / self.server_wall_seconds.max(1e-9)
    }

    /// Cores the load client used over its window.
    pub fn client_cores(&self) -> f64 {
        self.client.cpu_seconds / self.client.wall_seconds.max(1e-9)
    }

    /// Everything measured arrived: nothing missing, no gap, nothing out of order.
    pub fn everything_delivered(&self) -> bool {
        self.error.is_none()
            && self.connect_failed == 0
            && self.client.connected == self.subscribers
            && self.client.missing == 0
            && self.client.gaps == 0
            && self.client.out_of_order == 0
            && self.client.unannounced_skips == 0
            && self.client.ended_early == 0
    }

    /// The latencies of the measured events.
    pub fn latency(&self) -> Latencies {
        self.client.latency
    }
}

/// Memory per idle subscriber.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryFigures {
    /// Which server (the gateway or the bare baseline) and transport.
    pub subject: Subject,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Subscriptions made.
    pub connected: usize,
    /// The first reason a subscription could not be made.
    pub connect_error: Option<String>,
    /// Server resident memory before any subscriber, in bytes.
    pub rss_before: u64,
    /// Server resident memory with every subscriber idle, in bytes.
    pub rss_after: u64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

impl MemoryFigures {
    /// Memory growth per subscriber, in bytes.
    pub fn bytes_per_subscriber(&self) -> f64 {
        if self.connected == 0 {
            return f64::NAN;
        }
        (self.rss_after as f64 - self.rss_before as f64) / self.connected as f64
    }
}

/// The server under test, with where subscribers and the publisher connect.
struct Target {
    server: Server,
    subscribe: SocketAddr,
    ingest: SocketAddr,
}

async fn start_target(
    config: &FanoutConfig,
    subject: Subject,
    tag: &str,
) -> anyhow::Result<Target> {
    let log = config.logs.join(format!("{tag}.log"));
    if subject.is_gateway() {
        let address = free_address()?;
        let args = vec![
            "--listen".to_owned(),
            address.to_string(),
            "--publish-token".to_owned(),
            PUBLISH_TOKEN.to_owned(),
        ];
        // Room for 10,000 subscribers and the publisher; env, so that a gateway without the
        // flag still starts. Fan-out needs no Kafka: a port nobody listens on keeps the gateway
        // from reading someone else's broker.
        let mut env = vec![
            ("RUST_LOG", "warn".to_owned()),
            ("GATEWAY_MAX_SUBSCRIBERS", "20000".to_owned()),
            ("KAFKA_BOOTSTRAP_SERVERS", free_address()?.to_string()),
        ];
        env.extend(
            config
                .gateway_env
                .iter()
                .map(|(key, value)| (key.as_str(), value.clone())),
        );
        let server = Server::start(&config.gateway, &args, &env, log, &[address]).await?;
        Ok(Target {
            server,
            subscribe: address,
            ingest: address,
        })
    } else {
        let (subscribe, ingest) = (free_address()?, free_address()?);
        let args = vec![
            "--ws-listen".to_owned(),
            subscribe.to_string(),
            "--ingest-listen".to_owned(),
            ingest.to_string(),
        ];
        let binary = sibling_binary("bench-bare")?;
        let server = Server::start(&binary, &args, &[], log, &[subscribe, ingest]).await?;
        Ok(Target {
            server,
            subscribe,
            ingest,
        })
    }
}

/// The load client process.
struct LoadClient {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl LoadClient {
    fn start(
        config: &FanoutConfig,
        server: SocketAddr,
        transport: ClientTransport,
        subscribers: usize,
        request: &str,
    ) -> anyhow::Result<Self> {
        let binary = sibling_binary("bench-client")?;
        let transport = transport
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        let mut child = Process::new(&binary)
            .args(["--server", &server.to_string(), "--transport", &transport])
            .args([
                "--subscribers",
                &subscribers.to_string(),
                "--request",
                request,
            ])
            .args([
                "--streams-per-connection",
                &config.streams_per_connection.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    async fn next(&mut self, within: Duration) -> anyhow::Result<ClientMessage> {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .with_context(|| format!("the load client said nothing for {within:?}"))??
            .context("the load client exited")?;
        serde_json::from_str(&line).with_context(|| format!("the load client said {line:?}"))
    }

    async fn tell(&mut self, command: Command) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Waits until the client says what `wanted` looks for (skipping anything else); false if it
    /// did not within `within`.
    async fn wait_for(&mut self, wanted: fn(&ClientMessage) -> bool, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Ok(message) if wanted(&message) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits for the connection report.
    async fn connected(
        &mut self,
        subscribers: usize,
    ) -> anyhow::Result<(usize, Option<String>, f64)> {
        let within = Duration::from_secs(60 + subscribers as u64 / 100);
        match self.next(within).await? {
            ClientMessage::Connected {
                connected,
                failed,
                error,
                seconds,
            } => {
                if connected == 0 {
                    bail!("no subscriber could connect: {}", error.unwrap_or_default());
                }
                Ok((failed, error, seconds))
            }
            other => bail!("expected the connection report, got {other:?}"),
        }
    }

    /// Stops the client and takes its report.
    async fn report(mut self) -> anyhow::Result<ClientReport> {
        let _ = self.tell(Command::Stop).await;
        loop {
            if let ClientMessage::Report(report) = self.next(Duration::from_secs(60)).await? {
                let _ = self.child.wait().await;
                return Ok(report);
            }
        }
    }
}

/// Runs every fan-out configuration, printing each result as it comes.
pub async fn run_fanout(config: &FanoutConfig, events: &Arc<EventSource>) -> Vec<FanoutFigures> {
    let mut all = Vec::new();
    for &subscribers in &config.subscribers {
        for &rate in &config.rates {
            for &subject in &config.subjects {
                let figures = match run_one(config, events, subject, subscribers, rate).await {
                    Ok(figures) => figures,
                    Err(error) => {
                        FanoutFigures::failed(subject, subscribers, rate, format!("{error:#}"))
                    }
                };
                print_figures(&figures);
                all.push(figures);
            }
        }
    }
    all
}

fn print_figures(figures: &FanoutFigures) {
    if let Some(error) = &figures.error {
        println!(
            "  {:<36} {:>6} subs {:>6} ev/s  FAILED: {error}",
            figures.subject.label(),
            figures.subscribers,
            figures.rate
        );
        return;
    }
    let latency = figures.latency();
    println!(
        "  {:<36} {:>6} subs {:>6} ev/s  {:>10.0} deliveries/s ({:>3.0}% of asked)  p50 {:>8.1} ms  p99 {:>8.1} ms  gaps {:>6}  missing {:>9}  server {:.2} cores {:.2} µs/delivery  client {:.2} cores",
        figures.subject.label(),
        figures.subscribers,
        figures.rate,
        figures.deliveries_per_second,
        100.0 * figures.deliveries_per_second / figures.asked_per_second(),
        latency.p50_ms,
        latency.p99_ms,
        figures.client.gaps,
        figures.client.missing,
        figures.server_cores(),
        figures.cpu_micros_per_delivery(),
        figures.client_cores(),
    );
}

async fn run_one(
    config: &FanoutConfig,
    events: &Arc<EventSource>,
    subject: Subject,
    subscribers: usize,
    rate: f64,
) -> anyhow::Result<FanoutFigures> {
    let tag = format!(
        "{}-{subscribers}-{rate}",
        subject
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    );
    let mut target = start_target(config, subject, &tag).await?;
    let mut client = LoadClient::start(
        config,
        target.subscribe,
        subject.client(),
        subscribers,
        "{}",
    )?;
    let (connect_failed, connect_error, connect_seconds) = client.connected(subscribers).await?;

    let publisher =
        crate::publish::Publisher::start(target.ingest, PUBLISH_TOKEN, rate, events.clone())
            .await?;
    // Warm up until every subscriber has had an event, and at least `warm_up`.
    let warm_up_until = Instant::now() + config.warm_up;
    let all_live = client
        .wait_for(
            ClientMessage::is_live,
            config.warm_up + Duration::from_secs(30),
        )
        .await;
    tokio::time::sleep_until(warm_up_until.into()).await;
    target.server.check_alive()?;

    let first = publisher.next_seq() + (rate * 0.25).ceil() as u64 + 1;
    let count = (rate * config.measure.as_secs_f64()).ceil().max(1.0) as u64;
    let last = first + count - 1;
    client.tell(Command::Measure { first, last }).await?;
    let started = publisher.measure(first, last, target.server.pid());
    let start = tokio::time::timeout(Duration::from_secs(30), started)
        .await
        .context("the first measured event was never sent")?
        .context("the publisher stopped")??;
    let profile = match config.perf_at {
        Some(at) if at == subscribers && subject.is_gateway() => {
            Some(crate::profile::Profile::record(
                target.server.pid(),
                &config.logs,
                &tag,
                config.measure,
            )?)
        }
        _ => None,
    };
    publisher.finished().await?;
    let profile = match profile {
        Some(profile) => Some(profile.summarise(&config.profiles).await?),
        None => None,
    };
    // Drain: every subscriber has the last event, or the server is given as long again.
    let drain = config.measure.max(Duration::from_secs(5));
    let done = client.wait_for(ClientMessage::is_done, drain).await;
    let server_cpu = target.server.cpu_seconds()? - start.server_cpu;
    let server_wall = SystemTime::now()
        .duration_since(start.at)
        .unwrap_or_default()
        .as_secs_f64();
    let server_rss_bytes = target.server.rss_bytes()?;
    if !done {
        tracing_note(
            &tag,
            "not every subscriber got the last event before the drain ended",
        );
    }
    let report = client.report().await?;
    target.server.check_alive()?;
    target.server.stop().await?;

    let last_delivery =
        std::time::UNIX_EPOCH + Duration::from_nanos(report.last_delivery_unix_nanos.max(0) as u64);
    let window = last_delivery
        .duration_since(start.at)
        .unwrap_or_default()
        .as_secs_f64()
        .max(config.measure.as_secs_f64() * 0.5);
    Ok(FanoutFigures {
        subject,
        subscribers,
        rate,
        error: None,
        connect_failed,
        connect_error,
        connect_seconds,
        all_live,
        events: count,
        deliveries_per_second: report.deliveries as f64 / window,
        window_seconds: window,
        server_cpu_seconds: server_cpu,
        server_wall_seconds: server_wall,
        server_rss_bytes,
        profile,
        client: report,
    })
}

fn tracing_note(tag: &str, note: &str) {
    eprintln!("  ({tag}: {note})");
}

/// Memory per idle subscriber for each of `subjects` that holds subscribers.
pub async fn run_memory(config: &FanoutConfig, subjects: &[Subject]) -> Vec<MemoryFigures> {
    let mut all = Vec::new();
    for &subject in subjects {
        let figures = match idle_memory(config, subject).await {
            Ok(figures) => figures,
            Err(error) => MemoryFigures {
                subject,
                subscribers: config.idle_subscribers,
                connected: 0,
                connect_error: None,
                rss_before: 0,
                rss_after: 0,
                error: Some(format!("{error:#}")),
            },
        };
        match &figures.error {
            None => println!(
                "  {:<36} {:>6} idle subscribers: {:.0} → {:.0} MiB, {:.1} KiB each{}",
                figures.subject.label(),
                figures.connected,
                figures.rss_before as f64 / 1_048_576.0,
                figures.rss_after as f64 / 1_048_576.0,
                figures.bytes_per_subscriber() / 1024.0,
                figures
                    .connect_error
                    .as_ref()
                    .map(|e| format!(" (some failed: {e})"))
                    .unwrap_or_default()
            ),
            Some(error) => println!("  {:<36} FAILED: {error}", figures.subject.label()),
        }
        all.push(figures);
    }
    all
}

async fn idle_memory(config: &FanoutConfig, subject: Subject) -> anyhow::Result<MemoryFigures> {
    let subscribers = config.idle_subscribers;
    let mut target = start_target(
        config,
        subject,
        &format!("idle-{}", subject.label().replace([' ', ','], "")),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = target.server.rss_bytes()?;
    let mut client = LoadClient::start(
        config,
        target.subscribe,
        subject.client(),
        subscribers,
        IDLE_REQUEST,
    )?;
    let (failed, connect_error, _) = client.connected(subscribers).await?;
    // Let every subscribe frame be read and every task settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    target.server.check_alive()?;
    let rss_after = target.server.rss_bytes()?;
    let report = client.report().await?;
    target.server.stop().await?;
    Ok(MemoryFigures {
        subject,
        subscribers,
        connected: subscribers - failed - report.ended_early,
        connect_error,
        rss_before,
        rss_after,
        error: None,
    })
}

/// A folder for the servers' logs.
pub fn log_dir(results: &Path) -> anyhow::Result<PathBuf> {
    let dir = results.join("logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
