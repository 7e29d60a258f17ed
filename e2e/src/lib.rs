//! The harness of the whole-system tests: a real Kafka-protocol broker (the embedded `tansu`,
//! or the cluster in `KAFKA_BOOTSTRAP_SERVERS`), and the real producers, consumer and gateway
//! run in-process through the same `run` functions their binaries call.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::Stdio,
    time::{Duration, SystemTime},
};

use anyhow::{Context, bail};
use futures::StreamExt;
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use streamweaver_common::{kafka::KafkaArgs, producer::ProducerArgs};
use streamweaver_proto::v1::{
    Event, SubscribeRequest, stream_service_client::StreamServiceClient, subscribe_response::Kind,
};
use tokio::{process::Child, task::JoinHandle};

pub mod process;
pub mod records;
pub mod subscribers;
use tokio_util::sync::CancellationToken;

/// The token the tests' gateway and consumer share.
pub const PUBLISH_TOKEN: &str = "e2e-publish-token";

/// Logs of the system under test, shown on failure (`RUST_LOG` to change).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,gateway=info,stream_consumer=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `tansu` binary: `$TANSU_BIN`, else `tansu` on `PATH`, else `~/.cargo/bin/tansu`.
fn tansu_binary() -> String {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("tansu").is_file()))
        .unwrap_or(false);
    if on_path {
        return "tansu".into();
    }
    let home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    format!("{home}/bin/tansu")
}

/// A Kafka-protocol broker for one test, stopped when dropped.
pub struct Broker {
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    process: Option<Child>,
    /// How to start the `tansu` this harness runs again (none for an outside Kafka).
    tansu: Option<Tansu>,
}

/// How a `tansu` of the harness is started: its port, storage engine and working directory.
#[derive(Debug, Clone)]
struct Tansu {
    port: u16,
    storage: String,
    dir: std::path::PathBuf,
}

impl Tansu {
    fn spawn(&self) -> anyhow::Result<Child> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let binary = tansu_binary();
        tokio::process::Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.storage])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot start {binary} (make test installs it: scripts/ensure-tansu.sh)")
            })
    }
}

impl Broker {
    /// `KAFKA_BOOTSTRAP_SERVERS` when set; otherwise a fresh in-memory `tansu` on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
            return Ok(Self {
                bootstrap,
                process: None,
                tansu: None,
            });
        }
        Self::start_tansu("memory://tansu/", std::env::temp_dir()).await
    }

    /// A fresh `tansu` on SQLite storage in `dir` (whatever `KAFKA_BOOTSTRAP_SERVERS` says): it
    /// survives being killed, and it is the storage whose retention removes records.
    pub async fn start_sqlite(dir: &std::path::Path) -> anyhow::Result<Self> {
        // tansu reads a `sqlite://` path relative to its working directory.
        Self::start_tansu("sqlite://tansu.db", dir.to_owned()).await
    }

    async fn start_tansu(storage: &str, dir: std::path::PathBuf) -> anyhow::Result<Self> {
        let tansu = Tansu {
            port: free_port()?,
            storage: storage.to_owned(),
            dir,
        };
        let broker = Self {
            bootstrap: format!("127.0.0.1:{}", tansu.port),
            process: Some(tansu.spawn()?),
            tansu: Some(tansu),
        };
        broker.wait_ready().await?;
        Ok(broker)
    }

    /// Kills the broker with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill().await.context("killing the broker")?;
        }
        Ok(())
    }

    /// Starts the broker again on the same port and storage (after [`Broker::kill`]).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        let tansu = self
            .tansu
            .as_ref()
            .context("only a broker this harness started can be restarted")?;
        self.process = Some(tansu.spawn()?);
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let consumer: BaseConsumer = self.client_config().create()?;
        for _ in 0..100 {
            let ready = tokio::task::block_in_place(|| {
                consumer
                    .fetch_metadata(None, Duration::from_millis(500))
                    .is_ok()
            });
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "broker at {} did not answer metadata requests",
            self.bootstrap
        )
    }

    /// Flags pointing at this broker.
    pub fn kafka_args(&self) -> KafkaArgs {
        KafkaArgs {
            bootstrap_servers: self.bootstrap.clone(),
        }
    }

    /// The gateway's flags for tests ([`gateway_args`]), reading this broker for replays.
    pub fn gateway_args(&self, listen: SocketAddr) -> gateway::GatewayArgs {
        let mut args = gateway_args(listen);
        args.kafka_bootstrap_servers = self.bootstrap.clone();
        args.replay_fetch_wait_max_ms = 5;
        args
    }

    /// An rdkafka configuration pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        self.kafka_args().client_config()
    }

    /// Partition → high watermark (one past the last offset) of `topic`, partitions with data
    /// only.
    pub fn watermarks(&self, topic: &str) -> anyhow::Result<HashMap<i32, i64>> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut ends = HashMap::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (_, high) =
                consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
            if high > 0 {
                ends.insert(partition.id(), high);
            }
        }
        Ok(ends)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A failing test unwinds past its components' `stop`: `Running`'s drop has asked them to
        // stop; give them a moment to close their Kafka clients while the broker still answers,
        // or librdkafka's close waits on a dead broker and the test hangs instead of failing.
        if std::thread::panicking() && self.process.is_some() {
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

/// A component running in-process until stopped (or until dropped).
pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn spawn<F>(run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(shutdown.clone()));
        Self { shutdown, task }
    }

    /// Asks it to stop and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.finished().await
    }

    /// Waits until it stops by itself.
    pub async fn finished(mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("task panicked")?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The gateway's flags for tests: the given port, small heartbeats, everything else default
/// (replays read the default Kafka: with a test broker, use [`Broker::gateway_args`]).
pub fn gateway_args(listen: SocketAddr) -> gateway::GatewayArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: gateway::GatewayArgs,
    }
    let mut args = Cli::parse_from(["gateway", "--publish-token", PUBLISH_TOKEN]).gateway;
    args.listen = listen;
    args.heartbeat = Duration::from_secs(2);
    args
}

/// Starts a gateway on `listen` (port 0 for any); returns its address.
pub async fn start_gateway(args: gateway::GatewayArgs) -> anyhow::Result<(SocketAddr, Running)> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    let running = Running::spawn(|shutdown| async move {
        gateway::run(listener, args, shutdown).await?;
        Ok(())
    });
    Ok((address, running))
}

/// Publishes `events` to the gateway at `address` as the stream-consumer does: one `Publish`
/// call, with the publish token.
pub async fn publish(
    address: SocketAddr,
    events: Vec<Event>,
) -> anyhow::Result<streamweaver_proto::v1::PublishResponse> {
    let mut client = streamweaver_proto::v1::ingest_service_client::IngestServiceClient::connect(
        format!("http://{address}"),
    )
    .await?;
    let mut request = tonic::Request::new(futures::stream::iter([
        streamweaver_proto::v1::PublishRequest { events },
    ]));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {PUBLISH_TOKEN}").parse()?);
    Ok(client.publish(request).await?.into_inner())
}

/// What the tests' consumers are told beyond where to go: a low fetch wait, quick acks and
/// backoff.
pub const CONSUMER_TEST_FLAGS: [&str; 6] = [
    "--fetch-wait-max-ms",
    "5",
    "--ack-interval",
    "100ms",
    "--max-backoff",
    "500ms",
];

/// The consumer's flags for tests: low fetch wait, quick acks and backoff.
pub fn consumer_args(broker: &Broker, gateway: SocketAddr) -> stream_consumer::ConsumerArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        consumer: stream_consumer::ConsumerArgs,
    }
    let url = format!("http://{gateway}");
    let flags = [
        "stream-consumer",
        "--publish-token",
        PUBLISH_TOKEN,
        "--gateway-url",
        &url,
    ];
    let mut args = Cli::parse_from(flags.iter().chain(&CONSUMER_TEST_FLAGS)).consumer;
    args.kafka = broker.kafka_args();
    args
}

/// Starts the stream-consumer.
pub fn start_consumer(args: stream_consumer::ConsumerArgs) -> Running {
    Running::spawn(|shutdown| async move {
        stream_consumer::run(args, shutdown).await?;
        Ok(())
    })
}

/// A producer's flags: `rate` events per second, `count` events, a fixed seed.
pub fn producer_args(broker: &Broker, rate: f64, count: u64) -> ProducerArgs {
    ProducerArgs {
        kafka: broker.kafka_args(),
        rate,
        count: Some(count),
        partitions: 3,
        seed: Some(42),
        linger_ms: 1,
        metrics_listen: None,
    }
}

/// Starts a producer of `source`'s events.
pub fn start_producer(
    args: ProducerArgs,
    source: impl streamweaver_common::producer::EventSource + 'static,
) -> Running {
    Running::spawn(|shutdown| async move {
        streamweaver_common::producer::run(args, source, shutdown).await?;
        Ok(())
    })
}

/// Starts the three producers, `count` events each at `rate` per second.
pub fn start_all_producers(broker: &Broker, rate: f64, count: u64) -> Vec<Running> {
    vec![
        start_producer(
            producer_args(broker, rate, count),
            stock_producer::StockTrades::default(),
        ),
        start_producer(
            producer_args(broker, rate, count),
            social_producer::SocialPosts::default(),
        ),
        start_producer(
            producer_args(broker, rate, count),
            log_producer::ServerLogs::default(),
        ),
    ]
}

/// trade-bars' flags for tests: the given gateway (whose heartbeat is 2 s), a short grace.
pub fn trade_bars_args(broker: &Broker, gateway: SocketAddr) -> trade_bars::TradeBarsArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        trade_bars: trade_bars::TradeBarsArgs,
    }
    let url = format!("http://{gateway}");
    let mut args = Cli::parse_from([
        "trade-bars",
        "--gateway-url",
        &url,
        "--gateway-heartbeat",
        "2s",
        "--grace",
        "500ms",
        "--max-backoff",
        "500ms",
    ])
    .trade_bars;
    args.kafka = broker.kafka_args();
    args
}

/// Starts trade-bars.
pub fn start_trade_bars(args: trade_bars::TradeBarsArgs) -> Running {
    Running::spawn(|shutdown| async move {
        trade_bars::run(args, shutdown).await?;
        Ok(())
    })
}

/// The body of `GET url`.
pub async fn http_get(url: &str) -> anyhow::Result<String> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(url.parse()?).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Subscribers the gateway at `address` has now, over every transport (its `/metrics`).
pub async fn gateway_subscribers(address: SocketAddr) -> anyhow::Result<i64> {
    let metrics = http_get(&format!("http://{address}/metrics")).await?;
    Ok(metrics
        .lines()
        .filter(|line| line.starts_with("gateway_subscribers{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<i64>().ok())
        .sum())
}

/// Every event of `topic` Kafka holds now, decoded (records that are not events left out).
pub async fn read_topic(broker: &Broker, topic: &'static str) -> anyhow::Result<Vec<Event>> {
    let kafka = broker.kafka_args();
    let tail = tokio::task::spawn_blocking(move || {
        streamweaver_common::kafka::read_tail(&kafka, topic, None, Duration::from_secs(60))
    })
    .await??;
    Ok(tail.events)
}

/// Asserts that `events` run through each partition from offset 0 without a hole, a repeat or
/// a reordering; returns how many each partition had.
pub fn assert_each_partition_from_zero(events: &[Event]) -> HashMap<i32, i64> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for event in events {
        let expected = next.entry(event.partition).or_insert(0);
        assert_eq!(
            event.offset, *expected,
            "partition {}: hole, repeat or reorder",
            event.partition
        );
        *expected += 1;
    }
    next
}

/// When the producer made `event`.
pub fn produced_at(event: &Event) -> SystemTime {
    event
        .produced_at
        .as_ref()
        .and_then(streamweaver_proto::time::system_time)
        .expect("every event carries the producer's timestamp")
}

/// A live subscription over native gRPC.
pub struct Subscriber {
    stream: tonic::Streaming<streamweaver_proto::v1::SubscribeResponse>,
}

impl Subscriber {
    /// Subscribes to the gateway at `address` with `request`.
    pub async fn connect(address: SocketAddr, request: SubscribeRequest) -> anyhow::Result<Self> {
        let mut client = StreamServiceClient::connect(format!("http://{address}")).await?;
        let stream = client.subscribe(request).await?.into_inner();
        Ok(Self { stream })
    }

    /// Subscribes to everything on `topics`, unfiltered.
    pub async fn to_topics(address: SocketAddr, topics: &[&str]) -> anyhow::Result<Self> {
        let request = SubscribeRequest {
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            ..Default::default()
        };
        Self::connect(address, request).await
    }

    /// The next `count` events (skipping heartbeats, failing on gaps), within `within`.
    pub async fn events(&mut self, count: usize, within: Duration) -> anyhow::Result<Vec<Event>> {
        let events = self.timed_events(count, within).await?;
        Ok(events.into_iter().map(|(event, _)| event).collect())
    }

    /// Like [`Subscriber::events`], each with the moment it arrived, for latency figures.
    pub async fn timed_events(
        &mut self,
        count: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<(Event, SystemTime)>> {
        let mut events = Vec::with_capacity(count);
        let deadline = tokio::time::Instant::now() + within;
        while events.len() < count {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .with_context(|| {
                    format!("only {} of {count} events in {within:?}", events.len())
                })?;
            match next.context("stream ended")??.kind {
                Some(Kind::Event(event)) => events.push((event, SystemTime::now())),
                Some(Kind::Heartbeat(_)) => {}
                other => bail!("unexpected response {other:?}"),
            }
        }
        Ok(events)
    }

    /// Every event until the gateway ends the stream (it shuts down), within `within`.
    pub async fn until_end(&mut self, within: Duration) -> anyhow::Result<Vec<Event>> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("the stream did not end")?;
            match next {
                None | Some(Err(_)) => return Ok(events),
                Some(Ok(response)) => match response.kind {
                    Some(Kind::Event(event)) => events.push(event),
                    Some(Kind::Heartbeat(_)) => {}
                    other => bail!("unexpected response {other:?}"),
                },
            }
        }
    }
}

/// A directory of its own for one test (a broker's SQLite file, processes' logs), removed when
/// dropped unless `E2E_KEEP_LOGS` is set (to read the logs of a failed test).
pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("E2E_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A new, empty directory under the system's temporary directory.
pub fn tempdir() -> anyhow::Result<TempDir> {
    let path = std::env::temp_dir().join(format!(
        "streamweaver-e2e-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(TempDir(path))
}
