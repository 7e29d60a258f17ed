//! Records the tests put into Kafka themselves: numbered trades (a sequence number per key, so a
//! test can check per key that every number arrives once and in order), undecodable records,
//! and the topic administration the fault tests need.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use prost::Message as _;
use rdkafka::{
    Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, CommitMode, Consumer},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use streamweaver_common::producer::{EventSource, Record};
use streamweaver_proto::{
    time::timestamp,
    topics,
    v1::{Event, StockTrade, TradeSide, event::Payload},
};

use crate::Broker;

/// A stock trade whose `trade_id` is `KEY#NUMBER`: the `number`th trade of `key`.
pub fn numbered_trade(key: &str, number: u64) -> StockTrade {
    StockTrade {
        trade_id: format!("{key}#{number}"),
        symbol: key.to_owned(),
        price: 100.0 + (number % 1000) as f64 / 100.0,
        quantity: 1 + (number % 100) as u32,
        side: TradeSide::Buy.into(),
        exchange: "TEST".into(),
        timestamp: Some(timestamp(std::time::SystemTime::now())),
    }
}

/// The key and number of a numbered trade.
pub fn number_of(event: &Event) -> Option<(String, u64)> {
    let Some(Payload::StockTrade(trade)) = &event.payload else {
        return None;
    };
    let (key, number) = trade.trade_id.split_once('#')?;
    Some((key.to_owned(), number.parse().ok()?))
}

/// Numbered trades for `keys` in turn, as the producers' loop sends them.
pub struct NumberedTrades {
    keys: Vec<String>,
    next: BTreeMap<String, u64>,
    turn: usize,
}

impl NumberedTrades {
    /// Trades of `keys`, each numbered from 0.
    pub fn new(keys: &[&str]) -> Self {
        Self {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            next: BTreeMap::new(),
            turn: 0,
        }
    }
}

impl EventSource for NumberedTrades {
    fn topic(&self) -> &'static str {
        topics::STOCK_TRADES
    }

    fn next_record(
        &mut self,
        _rng: &mut rand::rngs::StdRng,
        _now: std::time::SystemTime,
    ) -> Record {
        let key = self.keys[self.turn % self.keys.len()].clone();
        self.turn += 1;
        let number = self.next.entry(key.clone()).or_insert(0);
        let trade = numbered_trade(&key, *number);
        *number += 1;
        Record {
            key,
            value: trade.encode_to_vec(),
        }
    }
}

/// One record to write: key, value, `content-type` and an explicit timestamp (ms), if any.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The record key.
    pub key: String,
    /// The value as written.
    pub value: Vec<u8>,
    /// The `content-type` header, if any.
    pub content_type: Option<&'static str>,
    /// The record's timestamp in ms since the epoch (default: now).
    pub timestamp_ms: Option<i64>,
}

impl RawRecord {
    /// A numbered trade as the producers write it.
    pub fn trade(key: &str, number: u64) -> Self {
        Self {
            key: key.to_owned(),
            value: numbered_trade(key, number).encode_to_vec(),
            content_type: Some("application/x-protobuf"),
            timestamp_ms: None,
        }
    }

    /// A record no decoder takes: a dead letter.
    pub fn garbage(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: b"\xff\xfe this is not an event".to_vec(),
            content_type: None,
            timestamp_ms: None,
        }
    }
}

/// Writes `records` to one partition of `topic`, in order, in as few batches as `linger_ms`
/// makes (so reads meet multi-record batches); waits until all are stored.
pub async fn produce(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: &[RawRecord],
    linger_ms: u32,
) -> anyhow::Result<()> {
    let producer: FutureProducer = broker
        .client_config()
        .set("linger.ms", linger_ms.to_string())
        .set("enable.idempotence", "true")
        .create()?;
    let sends = records.iter().map(|record| {
        let mut headers = OwnedHeaders::new();
        if let Some(content_type) = record.content_type {
            headers = headers.insert(Header {
                key: "content-type",
                value: Some(content_type),
            });
        }
        let mut kafka_record = FutureRecord::to(topic)
            .key(&record.key)
            .payload(&record.value)
            .partition(partition)
            .headers(headers);
        if let Some(timestamp) = record.timestamp_ms {
            kafka_record = kafka_record.timestamp(timestamp);
        }
        producer.send(kafka_record, Duration::from_secs(30))
    });
    for delivery in futures::future::join_all(sends).await {
        delivery.map_err(|(error, _)| error).context("producing")?;
    }
    Ok(())
}

/// A topic of `partitions` partitions whose partition 0 held `expired` numbered trades of `key`
/// that retention has removed, then `kept` it still holds (offsets `expired..expired + kept`).
/// tansu cannot delete records (DeleteRecords is `todo!()` in 0.6.0 and takes the broker down),
/// so the records are written an hour old to a topic that keeps ten minutes, on SQLite storage,
/// which applies retention when it starts: the broker is restarted.
pub async fn expire_records(
    broker: &mut Broker,
    topic: &str,
    partitions: i32,
    key: &str,
    expired: u64,
    kept: u64,
) -> anyhow::Result<()> {
    create_topic(
        broker,
        topic,
        partitions,
        &[("cleanup.policy", "delete"), ("retention.ms", "600000")],
    )
    .await?;
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 3_600_000;
    let old: Vec<RawRecord> = (0..expired)
        .map(|n| RawRecord {
            timestamp_ms: Some(hour_ago),
            ..RawRecord::trade(key, n)
        })
        .collect();
    produce(broker, topic, 0, &old, 5).await?;
    let new: Vec<RawRecord> = (expired..expired + kept)
        .map(|n| RawRecord::trade(key, n))
        .collect();
    produce(broker, topic, 0, &new, 5).await?;
    broker.restart().await
}

fn admin(broker: &Broker) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(broker.client_config().create()?)
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Creates `topic` with `partitions` partitions and the topic `configs` given.
pub async fn create_topic(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (name, value) in configs {
        new_topic = new_topic.set(name, value);
    }
    for result in admin(broker)?
        .create_topics([&new_topic], &admin_options())
        .await?
    {
        if let Err((topic, code)) = result {
            bail!("cannot create {topic}: {code}");
        }
    }
    Ok(())
}

/// Deletes `topic`.
pub async fn delete_topic(broker: &Broker, topic: &str) -> anyhow::Result<()> {
    for result in admin(broker)?
        .delete_topics(&[topic], &admin_options())
        .await?
    {
        if let Err((topic, code)) = result {
            bail!("cannot delete {topic}: {code}");
        }
    }
    Ok(())
}

/// Commits `offsets` (partition → next offset to read) of `topic` for consumer group `group`,
/// as a member of it that has since gone would have.
pub async fn commit_offsets(
    broker: &Broker,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
        .await?
        .with_context(|| format!("committing offsets of {topic} for {group}"))
}

/// What Kafka holds of `topic` now, read back with the gateway's replay component: per
/// partition, the log end and the events (dead letters left out).
pub async fn kafka_holds(
    broker: &Broker,
    topic: topics::Topic,
) -> anyhow::Result<BTreeMap<i32, (i64, Vec<Event>)>> {
    use futures::StreamExt;
    use gateway::replay::{ReplayChunk, ReplaySettings, Replayer};
    let replayer = Replayer::new(ReplaySettings {
        bootstrap_servers: broker.bootstrap.clone(),
        fetch_wait_max_ms: 5,
        max_concurrent_reads: 2,
        max_value_bytes: 1 << 20,
        cache_bytes: 0,
    })?;
    let mut holds = BTreeMap::new();
    for partition in replayer.partitions(topic).await? {
        let end = replayer.watermarks(topic, partition).await?.high;
        let mut events = Vec::new();
        let mut read = replayer.read(topic, partition, 0, end);
        while let Some(chunk) = read.next().await {
            if let ReplayChunk::Events(chunk) = chunk? {
                events.extend(chunk.iter().map(|e| e.event().clone()));
            }
        }
        holds.insert(partition, (end, events));
    }
    Ok(holds)
}
