//! End-to-end latency, producer → subscriber, through the embedded broker: the whole pipeline
//! (producer → tansu → stream-consumer → gateway → gRPC subscriber) beside bare Kafka (the same
//! producer → tansu → a plain rdkafka consumer) at the same rate — the floor the gateway stands
//! on — and the pipeline's highest rate flat out.

use std::{
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
};
use serde::{Deserialize, Serialize};
use streamweaver_common::kafka::{ensure_topics, raw_record};
use streamweaver_e2e::{
    Broker, PUBLISH_TOKEN, Subscriber, consumer_args, producer_args, start_consumer, start_producer,
};
use streamweaver_proto::{time, topics, v1::SubscribeRequest};

use crate::{
    process::{Server, free_address},
    stats::Latencies,
};

/// One rate's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineFigures {
    /// Events per second produced.
    pub rate: f64,
    /// Events measured (after the warm-up).
    pub events: u64,
    /// producer → tansu → rdkafka consumer.
    pub bare_kafka: Latencies,
    /// producer → tansu → stream-consumer → gateway → gRPC subscriber.
    pub pipeline: Latencies,
}

/// The whole pipeline flat out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlatOut {
    /// Events measured.
    pub events: u64,
    /// Events per second through to the subscriber.
    pub events_per_second: f64,
}

/// Events skipped at the start: the consumer joins its group and the idempotent producer gets
/// its id (about half a second on tansu), during which the first events wait.
fn warm_up_count(rate: f64) -> u64 {
    (rate * 2.0).clamp(1.0, 20_000.0) as u64
}

/// Both latencies at each rate, `measure` of events each.
pub async fn run(
    gateway: &Path,
    logs: &Path,
    rates: &[f64],
    measure: Duration,
) -> anyhow::Result<Vec<PipelineFigures>> {
    let mut all = Vec::new();
    for &rate in rates {
        let count = (rate * measure.as_secs_f64()).ceil() as u64;
        let bare_kafka = bare_kafka(rate, count)
            .await
            .context("bare Kafka produce → consume")?;
        let (pipeline, _) = pipeline(gateway, logs, rate, count)
            .await
            .context("the pipeline")?;
        println!(
            "  {rate:>6} events/s: bare Kafka p50 {:>6.1} ms p99 {:>6.1} ms | pipeline p50 {:>6.1} ms p99 {:>6.1} ms",
            bare_kafka.p50_ms, bare_kafka.p99_ms, pipeline.p50_ms, pipeline.p99_ms
        );
        all.push(PipelineFigures {
            rate,
            events: count,
            bare_kafka,
            pipeline,
        });
    }
    Ok(all)
}

/// The pipeline's throughput flat out over `count` events.
pub async fn flat_out(gateway: &Path, logs: &Path, count: u64) -> anyhow::Result<FlatOut> {
    let (_, events_per_second) = pipeline(gateway, logs, 1_000_000.0, count).await?;
    println!("  flat out, {count} events: {events_per_second:.0} events/s");
    Ok(FlatOut {
        events: count,
        events_per_second,
    })
}

/// Producer → Kafka → consumer → gateway (a release process) → gRPC subscriber.
async fn pipeline(
    gateway: &Path,
    logs: &Path,
    rate: f64,
    count: u64,
) -> anyhow::Result<(Latencies, f64)> {
    let broker = Broker::start().await?;
    let address = free_address()?;
    let args = [
        "--listen".to_owned(),
        address.to_string(),
        "--publish-token".to_owned(),
        PUBLISH_TOKEN.to_owned(),
    ];
    let env = [
        ("RUST_LOG", "warn".to_owned()),
        // The flat-out run's one subscriber may fall far behind: it should not lose events.
        ("GATEWAY_SUBSCRIBER_BUFFER", "1048576".to_owned()),
        ("GATEWAY_SUBSCRIBER_BUFFER_BYTES", "1073741824".to_owned()),
        ("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
    ];
    let log = logs.join(format!("pipeline-{rate}.log"));
    let gateway = Server::start(gateway, &args, &env, log, &[address]).await?;
    let mut subscriber = Subscriber::connect(address, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(&broker, address));
    let warm_up = warm_up_count(rate);
    let mut producer_args = producer_args(&broker, rate, warm_up + count);
    producer_args.seed = None;
    let producer = start_producer(producer_args, stock_producer::StockTrades::default());
    subscriber
        .events(warm_up as usize, Duration::from_secs(60))
        .await?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    while samples.len() < count as usize {
        for event in subscriber.events(1, Duration::from_secs(60)).await? {
            let sent = event.produced_at.as_ref().context("no produced_at")?;
            samples.push(time::age(sent, SystemTime::now()).unwrap_or_default());
        }
    }
    let events_per_second = count as f64 / started.elapsed().as_secs_f64();
    producer.finished().await?;
    consumer.stop().await?;
    gateway.stop().await?;
    Ok((Latencies::from_samples(samples), events_per_second))
}

/// The same producer → Kafka → a plain consumer with the stream-consumer's fetch wait.
async fn bare_kafka(rate: f64, count: u64) -> anyhow::Result<Latencies> {
    let broker = Broker::start().await?;
    ensure_topics(&broker.kafka_args(), &[topics::STOCK_TRADES], 3).await?;
    let consumer: StreamConsumer = broker
        .client_config()
        .set("group.id", "bench-bare-kafka")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .context("cannot create the consumer")?;
    consumer.subscribe(&[topics::STOCK_TRADES])?;
    let warm_up = warm_up_count(rate);
    let mut producer_args = producer_args(&broker, rate, warm_up + count);
    producer_args.seed = None;
    let producer = start_producer(producer_args, stock_producer::StockTrades::default());
    let mut samples = Vec::with_capacity(count as usize);
    let mut seen = 0u64;
    while seen < warm_up + count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("the consumer got nothing for 60 s")??;
        let event = streamweaver_common::decode::decode(&raw_record(&message), 1 << 20)
            .with_context(|| format!("undecodable record at offset {}", message.offset()))?;
        let now = SystemTime::now();
        seen += 1;
        if seen > warm_up {
            let sent = event.produced_at.as_ref().context("no produced_at")?;
            samples.push(time::age(sent, now).unwrap_or_default());
        }
    }
    producer.finished().await?;
    Ok(Latencies::from_samples(samples))
}
