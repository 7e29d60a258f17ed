//! The loop every producer runs: make events at a steady rate and hand them to Kafka through an
//! idempotent producer, without ever blocking on a single delivery.

use std::{
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use clap::Args;
use futures::{StreamExt, stream::FuturesUnordered};
use prometheus_client::{metrics::counter::Counter, registry::Registry};
use rand::{SeedableRng, rngs::StdRng};
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, Producer},
};
use tokio_util::sync::CancellationToken;

use crate::{
    kafka::{KafkaArgs, TopicError, ensure_topics, protobuf_record},
    metrics::SharedRegistry,
};

/// Largest burst sent in one pacing tick, so a stalled process does not flood on waking.
const MAX_BURST: u64 = 10_000;
/// How often the pacer wakes up.
const TICK: Duration = Duration::from_millis(10);

/// One Kafka record a producer wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record key, which decides the partition and so the order events keep.
    pub key: String,
    /// The Protobuf-encoded event.
    pub value: Vec<u8>,
}

/// Makes the fake events of one topic.
pub trait EventSource: Send {
    /// The topic the events go to.
    fn topic(&self) -> &'static str;
    /// The next event, stamped with `now` as the producer's timestamp.
    fn next_record(&mut self, rng: &mut StdRng, now: SystemTime) -> Record;
}

/// The flags every producer takes.
#[derive(Debug, Clone, Args)]
pub struct ProducerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    /// Events per second (the original Python design made a few; tens of thousands for load).
    #[arg(long, env = "PRODUCER_RATE", default_value_t = 5.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Stop after this many events (default: run until stopped).
    #[arg(long, env = "PRODUCER_COUNT")]
    pub count: Option<u64>,
    /// Partitions of the topic, when this producer has to create it.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Seed of the random generator, for repeatable data (default: random).
    #[arg(long, env = "PRODUCER_SEED")]
    pub seed: Option<u64>,
    /// How long librdkafka waits to batch records (linger.ms).
    #[arg(long, env = "PRODUCER_LINGER_MS", default_value_t = 5)]
    pub linger_ms: u32,
    /// Serve Prometheus /metrics and /healthz on this address (default: off).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        Ok(_) => Err("must be more than 0 and at most 1000000 events per second".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// Why a producer stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// Topics could not be made.
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// The Kafka producer could not be made.
    #[error("cannot create the Kafka producer: {0}")]
    Client(#[source] KafkaError),
    /// Kafka refused a record in a way retrying cannot fix (too large, not authorised).
    #[error("Kafka refused a record for good: {0}")]
    Fatal(#[source] KafkaError),
}

/// What a producer did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStats {
    /// Records Kafka acknowledged.
    pub delivered: u64,
    /// Records Kafka did not take after librdkafka's own retries.
    pub failed: u64,
}

struct Metrics {
    delivered: Counter,
    failed: Counter,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            delivered: Counter::default(),
            failed: Counter::default(),
        };
        registry.register(
            "producer_records_delivered",
            "Records Kafka acknowledged",
            metrics.delivered.clone(),
        );
        registry.register(
            "producer_records_failed",
            "Records Kafka did not take after retries",
            metrics.failed.clone(),
        );
        metrics
    }
}

/// Produces events from `source` until `shutdown` is cancelled or `--count` is reached, then
/// waits for every record in flight.
pub async fn run(
    args: ProducerArgs,
    mut source: impl EventSource,
    shutdown: CancellationToken,
) -> Result<ProducerStats, ProducerError> {
    let topic = source.topic();
    let registry = SharedRegistry::default();
    let metrics = Metrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    crate::metrics::spawn_serve(args.metrics_listen, registry.clone(), shutdown.clone());

    ensure_topics(&args.kafka, &[topic], args.partitions).await?;
    let producer: FutureProducer = args
        .kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", args.linger_ms.to_string())
        .set("compression.type", "lz4")
        .create()
        .map_err(ProducerError::Client)?;

    let mut rng = match args.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let limit = args.count.unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = FuturesUnordered::new();
    let mut stats = ProducerStats::default();
    let mut sent: u64 = 0;
    tracing::info!(topic, rate = args.rate, "producing");

    while sent < limit {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(delivery) = in_flight.next() => {
                record_delivery(delivery, &mut stats, &metrics)?;
                continue;
            }
            _ = ticker.tick() => {}
        }
        let due = ((started.elapsed().as_secs_f64() * args.rate) as u64).min(limit);
        let burst = due.saturating_sub(sent).min(MAX_BURST);
        for _ in 0..burst {
            let record = source.next_record(&mut rng, SystemTime::now());
            let delivery = send(
                &producer,
                topic,
                &record,
                &mut in_flight,
                &mut stats,
                &metrics,
            )
            .await?;
            in_flight.push(delivery);
            sent += 1;
        }
    }

    // Everything handed to librdkafka is awaited, so `--count` means delivered, not queued.
    while let Some(delivery) = in_flight.next().await {
        record_delivery(delivery, &mut stats, &metrics)?;
    }
    if let Err(error) = producer.flush(Duration::from_secs(10)) {
        tracing::warn!(%error, "records left unflushed at shutdown");
    }
    tracing::info!(
        topic,
        delivered = stats.delivered,
        failed = stats.failed,
        "producer stopped"
    );
    Ok(stats)
}

type Delivery = rdkafka::producer::DeliveryFuture;

/// Hands one record to librdkafka, waiting for room in its queue rather than dropping it.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    record: &Record,
    in_flight: &mut FuturesUnordered<Delivery>,
    stats: &mut ProducerStats,
    metrics: &Metrics,
) -> Result<Delivery, ProducerError> {
    loop {
        match producer.send_result(protobuf_record(topic, &record.key, &record.value)) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // The local queue is full: make room by waiting for a delivery.
                match in_flight.next().await {
                    Some(delivery) => record_delivery(delivery, stats, metrics)?,
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            Err((error, _)) => return Err(ProducerError::Fatal(error)),
        }
    }
}

/// What a [`Delivery`] future resolves to.
type DeliveryOutcome = <Delivery as std::future::Future>::Output;

fn record_delivery(
    delivery: DeliveryOutcome,
    stats: &mut ProducerStats,
    metrics: &Metrics,
) -> Result<(), ProducerError> {
    match delivery {
        Ok(Ok(_)) => {
            stats.delivered += 1;
            metrics.delivered.inc();
            Ok(())
        }
        Ok(Err((error, _))) if is_fatal(&error) => Err(ProducerError::Fatal(error)),
        Ok(Err((error, _))) => {
            stats.failed += 1;
            metrics.failed.inc();
            tracing::warn!(%error, "record not delivered");
            Ok(())
        }
        Err(_) => {
            stats.failed += 1;
            metrics.failed.inc();
            Ok(())
        }
    }
}

fn is_fatal(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

/// The rest of a producer binary's `main` once its flags are parsed: logging, signals, the
/// producer loop, and the exit code.
pub async fn main(args: ProducerArgs, source: impl EventSource) -> std::process::ExitCode {
    crate::telemetry::init_tracing();
    let topic = source.topic();
    let shutdown = crate::shutdown::cancel_on_signal();
    match run(args, source, shutdown).await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(topic, error = %anyhow::Error::from(error), "producer failed");
            std::process::ExitCode::FAILURE
        }
    }
}
