//! The replay component against a real broker (tansu): it reads exactly the offsets asked for,
//! skips dead letters, shares chunks, holds bounded memory for a reader that stops, names exactly
//! what Kafka no longer holds, notices a recreated topic, finds offsets by time and tells a
//! duplicate from a partition that started again.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use gateway::{
    event::SharedEvent,
    replay::{ReplayChunk, ReplayError, ReplaySettings, Replayer, Verdict, Watermarks},
};
use streamweaver_e2e::{
    records::{RawRecord, create_topic, delete_topic, expire_records, number_of, produce},
    *,
};
use streamweaver_proto::topics::{self, Topic};

/// Each read of a test finishes well within this.
const WITHIN: Duration = Duration::from_secs(60);

fn replayer(broker: &Broker, cache_bytes: usize) -> Replayer {
    Replayer::new(ReplaySettings {
        bootstrap_servers: broker.bootstrap.clone(),
        fetch_wait_max_ms: 5,
        max_concurrent_reads: 4,
        max_value_bytes: 1 << 20,
        cache_bytes,
    })
    .expect("a replayer")
}

/// Everything a read yields, in order.
async fn read_all(
    replayer: &Replayer,
    partition: i32,
    from: i64,
    until: i64,
) -> anyhow::Result<Vec<ReplayChunk>> {
    let read = replayer
        .read(Topic::StockTrades, partition, from, until)
        .collect::<Vec<_>>();
    let chunks = tokio::time::timeout(WITHIN, read).await?;
    Ok(chunks.into_iter().collect::<Result<_, ReplayError>>()?)
}

/// The events a read yielded (failing on anything but events).
fn events(chunks: &[ReplayChunk]) -> Vec<SharedEvent> {
    chunks
        .iter()
        .flat_map(|chunk| match chunk {
            ReplayChunk::Events(events) => events.to_vec(),
            other => panic!("expected events only, got {other:?}"),
        })
        .collect()
}

/// The offsets of the events a read yielded (failing on anything but events).
fn offsets(chunks: &[ReplayChunk]) -> Vec<i64> {
    events(chunks).iter().map(SharedEvent::offset).collect()
}

/// `count` numbered trades of key `key`, numbered from `first`.
fn trades(key: &str, first: u64, count: u64) -> Vec<RawRecord> {
    (first..first + count)
        .map(|n| RawRecord::trade(key, n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_yields_exactly_the_range_asked_for_without_the_dead_letters() -> anyhow::Result<()>
{
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 3, &[]).await?;
    // Offsets 0..60: trades, with a dead letter at every seventh offset, written in a few large
    // batches so reads start inside batches.
    let records: Vec<RawRecord> = (0..60u64)
        .map(|n| {
            if n % 7 == 3 {
                RawRecord::garbage("AAPL")
            } else {
                RawRecord::trade("AAPL", n)
            }
        })
        .collect();
    for batch in records.chunks(20) {
        produce(&broker, topics::STOCK_TRADES, 1, batch, 50).await?;
    }
    let replayer = replayer(&broker, 1 << 20);
    let good =
        |from: i64, until: i64| -> Vec<i64> { (from..until).filter(|n| n % 7 != 3).collect() };

    for (from, until) in [(0, 60), (5, 25), (13, 14), (17, 41), (59, 60), (3, 4)] {
        let chunks = read_all(&replayer, 1, from, until).await?;
        assert_eq!(offsets(&chunks), good(from, until), "read {from}..{until}");
    }
    // Past what Kafka holds: what there is, then the end.
    assert_eq!(
        offsets(&read_all(&replayer, 1, 50, 1_000).await?),
        good(50, 60)
    );
    // At the log end: nothing, and no reset.
    assert!(read_all(&replayer, 1, 60, 100).await?.is_empty());

    // The events are the records' own, decoded as the consumer decodes them.
    for event in events(&read_all(&replayer, 1, 0, 60).await?) {
        let (key, number) = number_of(event.event()).expect("a numbered trade");
        assert_eq!((key.as_str(), number as i64), ("AAPL", event.offset()));
        assert_eq!((event.partition(), event.key()), (1, "AAPL"));
    }
    assert!(
        replayer.metrics().skipped.get() > 0,
        "dead letters are counted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_resuming_from_the_same_place_share_one_read_of_kafka() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 1, &[]).await?;
    produce(
        &broker,
        topics::STOCK_TRADES,
        0,
        &trades("MSFT", 0, 6_000),
        20,
    )
    .await?;

    // One reader alone: how many reads of Kafka the range takes.
    let alone = replayer(&broker, 64 << 20);
    let expected: Vec<i64> = (100..6_000).collect();
    assert_eq!(offsets(&read_all(&alone, 0, 100, 6_000).await?), expected);
    let reads_alone = alone.metrics().reads.get();
    assert!(reads_alone >= 2, "the range spans several chunks");

    // Two readers at once from the same place: the same reads, shared.
    let shared = replayer(&broker, 64 << 20);
    let (first, second) = tokio::join!(
        read_all(&shared, 0, 100, 6_000),
        read_all(&shared, 0, 100, 6_000)
    );
    assert_eq!(offsets(&first?), expected);
    assert_eq!(offsets(&second?), expected);
    assert_eq!(shared.metrics().reads.get(), reads_alone);
    assert!(shared.metrics().cache_hits.get() > 0);

    // A third, later: from the cache, no read of Kafka at all for the chunks it holds.
    let before = shared.metrics().reads.get();
    assert_eq!(offsets(&read_all(&shared, 0, 100, 6_000).await?), expected);
    assert!(
        shared.metrics().reads.get() <= before + 1,
        "only the end is read again"
    );
    assert_eq!(shared.metrics().events.get(), alone.metrics().events.get());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_beyond_the_concurrency_bound_wait_their_turn_and_are_counted() -> anyhow::Result<()>
{
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 3, &[]).await?;
    for partition in 0..3 {
        produce(
            &broker,
            topics::STOCK_TRADES,
            partition,
            &trades("AMD", 0, 300),
            5,
        )
        .await?;
    }
    let one_at_a_time = Replayer::new(ReplaySettings {
        bootstrap_servers: broker.bootstrap.clone(),
        fetch_wait_max_ms: 5,
        max_concurrent_reads: 1,
        max_value_bytes: 1 << 20,
        cache_bytes: 1 << 20,
    })?;
    let (a, b, c) = tokio::join!(
        read_all(&one_at_a_time, 0, 0, 300),
        read_all(&one_at_a_time, 1, 0, 300),
        read_all(&one_at_a_time, 2, 0, 300)
    );
    for chunks in [a?, b?, c?] {
        assert_eq!(offsets(&chunks), (0..300).collect::<Vec<_>>());
    }
    let metrics = one_at_a_time.metrics();
    assert!(metrics.waited.get() > 0, "reads waited for the one slot");
    assert_eq!(metrics.waiting.get(), 0, "and none waits now");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_pulling_holds_bounded_memory() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 1, &[]).await?;
    const RECORDS: u64 = 40_000;
    produce(
        &broker,
        topics::STOCK_TRADES,
        0,
        &trades("NVDA", 0, RECORDS),
        50,
    )
    .await?;

    let replayer = replayer(&broker, 0);
    let mut read = replayer.read(Topic::StockTrades, 0, 0, RECORDS as i64);
    let first = tokio::time::timeout(WITHIN, read.next())
        .await?
        .expect("a first chunk")?;
    assert!(matches!(first, ReplayChunk::Events(_)));
    // The reader stops pulling: at most the chunk it has and one fetched ahead are read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let read_back = replayer.metrics().events.get();
    assert!(
        read_back < RECORDS / 4,
        "{read_back} of {RECORDS} events read for a reader that took one chunk"
    );
    // Pulling again goes on where it stopped, to the end.
    let mut next = match &first {
        ReplayChunk::Events(events) => events.last().expect("events").offset() + 1,
        _ => unreachable!(),
    };
    while let Some(chunk) = tokio::time::timeout(WITHIN, read.next()).await? {
        let ReplayChunk::Events(events) = chunk? else {
            panic!("only events expected")
        };
        for event in events.iter() {
            assert_eq!(event.offset(), next);
            next += 1;
        }
    }
    assert_eq!(next, RECORDS as i64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_kafka_no_longer_holds_come_out_as_missing_with_exact_offsets() -> anyhow::Result<()>
{
    init_logs();
    let dir = tempdir()?;
    let mut broker = Broker::start_sqlite(&dir).await?;
    expire_records(&mut broker, topics::STOCK_TRADES, 1, "TSLA", 25, 15).await?;

    let replayer = replayer(&broker, 1 << 20);
    let bounds = replayer.watermarks(Topic::StockTrades, 0).await?;
    assert_eq!(bounds, Watermarks { low: 25, high: 40 });
    let chunks = read_all(&replayer, 0, 10, 40).await?;
    assert!(
        matches!(
            chunks[0],
            ReplayChunk::Missing {
                first: 10,
                last: 24
            }
        ),
        "{chunks:?}"
    );
    assert_eq!(offsets(&chunks[1..]), (25..40).collect::<Vec<_>>());
    // A range wholly below the log start: missing, nothing else.
    let chunks = read_all(&replayer, 0, 3, 7).await?;
    assert!(
        matches!(chunks[..], [ReplayChunk::Missing { first: 3, last: 6 }]),
        "{chunks:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_recreated_topic_resets_reads_and_fails_verification() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 1, &[]).await?;
    produce(&broker, topics::STOCK_TRADES, 0, &trades("AMZN", 0, 30), 5).await?;
    let replayer = replayer(&broker, 1 << 20);
    let old_events = events(&read_all(&replayer, 0, 0, 30).await?);
    assert_eq!(old_events.len(), 30);
    assert_eq!(replayer.verify(&old_events[7]).await?, Verdict::Same);

    delete_topic(&broker, topics::STOCK_TRADES).await?;
    let chunks = read_all(&replayer, 0, 10, 30).await?;
    assert!(
        matches!(chunks[..], [ReplayChunk::Reset { now: None }]),
        "{chunks:?}"
    );
    assert_eq!(
        replayer.verify(&old_events[7]).await?,
        Verdict::StartedAgain
    );

    create_topic(&broker, topics::STOCK_TRADES, 1, &[]).await?;
    produce(
        &broker,
        topics::STOCK_TRADES,
        0,
        &trades("AMZN", 1_000, 5),
        5,
    )
    .await?;
    // A position past the new log end: the partition started again.
    let chunks = read_all(&replayer, 0, 20, 30).await?;
    assert!(
        matches!(
            chunks[..],
            [ReplayChunk::Reset {
                now: Some(Watermarks { low: 0, high: 5 })
            }]
        ),
        "{chunks:?}"
    );
    // The new incarnation reads from its start; old events are not there any more.
    assert_eq!(
        offsets(&read_all(&replayer, 0, 0, 5).await?),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        replayer.verify(&old_events[3]).await?,
        Verdict::StartedAgain
    );
    assert_eq!(
        replayer.verify(&old_events[20]).await?,
        Verdict::StartedAgain
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_a_time_point_at_the_first_record_at_or_after_it() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 2, &[]).await?;
    let before_all = SystemTime::now() - Duration::from_secs(60);
    produce(&broker, topics::STOCK_TRADES, 0, &trades("META", 0, 12), 5).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let between = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    produce(&broker, topics::STOCK_TRADES, 0, &trades("META", 12, 8), 5).await?;
    let replayer = replayer(&broker, 1 << 20);

    let mut at = replayer
        .offsets_for_time(Topic::StockTrades, between)
        .await?;
    at.sort_unstable();
    // Partition 1 is empty: its log end, 0.
    assert_eq!(at, [(0, 12), (1, 0)]);
    let mut at = replayer
        .offsets_for_time(Topic::StockTrades, before_all)
        .await?;
    at.sort_unstable();
    assert_eq!(at, [(0, 0), (1, 0)]);
    // Later than every record: the log end.
    let mut at = replayer
        .offsets_for_time(
            Topic::StockTrades,
            SystemTime::now() + Duration::from_secs(3_600),
        )
        .await?;
    at.sort_unstable();
    assert_eq!(at, [(0, 20), (1, 0)]);
    assert_eq!(
        replayer.watermarks(Topic::StockTrades, 0).await?,
        Watermarks { low: 0, high: 20 }
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_the_very_event_from_another_one_at_its_offset() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 1, &[]).await?;
    produce(&broker, topics::STOCK_TRADES, 0, &trades("NFLX", 0, 10), 5).await?;
    let replayer = replayer(&broker, 1 << 20);
    let held = events(&read_all(&replayer, 0, 0, 10).await?);
    for event in [&held[0], &held[4], &held[9]] {
        assert_eq!(replayer.verify(event).await?, Verdict::Same);
    }
    // The same position, another event: the partition started again.
    let mut other = held[4].event().clone();
    if let Some(streamweaver_proto::v1::event::Payload::StockTrade(trade)) = &mut other.payload {
        trade.price += 1.0;
    }
    let other = SharedEvent::new(other).expect("valid");
    assert_eq!(replayer.verify(&other).await?, Verdict::StartedAgain);
    // Past the log end: started again.
    let mut beyond = held[9].event().clone();
    beyond.offset = 10;
    assert_eq!(
        replayer
            .verify(&SharedEvent::new(beyond).expect("valid"))
            .await?,
        Verdict::StartedAgain
    );
    // A Kafka that does not answer: an error, not a verdict.
    let nobody = Replayer::new(ReplaySettings {
        bootstrap_servers: format!("127.0.0.1:{}", free_port()?),
        fetch_wait_max_ms: 5,
        max_concurrent_reads: 1,
        max_value_bytes: 1 << 20,
        cache_bytes: 0,
    })?;
    let answer = tokio::time::timeout(WITHIN, nobody.verify(&held[0])).await?;
    assert!(
        matches!(answer, Err(ReplayError::Unavailable(_))),
        "{answer:?}"
    );
    Ok(())
}

/// Figures for the README: how fast the replay reads Kafka back. Run with
/// `cargo test --release -p streamweaver-e2e --test replay -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it in a release build"]
async fn replay_read_back_rate() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    const EVENTS: u64 = 200_000;
    start_producer(
        producer_args(&broker, 1_000_000.0, EVENTS),
        stock_producer::StockTrades::default(),
    )
    .finished()
    .await?;
    let replayer = replayer(&broker, 0);
    let started = std::time::Instant::now();
    let mut read = 0;
    for partition in replayer.partitions(Topic::StockTrades).await? {
        let end = replayer
            .watermarks(Topic::StockTrades, partition)
            .await?
            .high;
        read += events(&read_all(&replayer, partition, 0, end).await?).len();
    }
    let elapsed = started.elapsed();
    assert_eq!(read as u64, EVENTS);
    println!(
        "replay: {read} events read back from Kafka in {:.2} s: {:.0} events/s ({} reads)",
        elapsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64(),
        replayer.metrics().reads.get()
    );
    Ok(())
}
