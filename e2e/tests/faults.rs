//! Whole-system fault tests (issue 6): the real `gateway` and `stream-consumer` binaries as
//! processes on a real broker, killed and restarted, with subscribers on every transport
//! checking numbered events per key: nothing lost, nothing repeated, order per key kept, a gap
//! notice only (and exactly) for what Kafka no longer holds.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use streamweaver_e2e::{
    process::{GatewayProcess, Service, consumer_process},
    records::{
        NumberedTrades, RawRecord, commit_offsets, create_topic, delete_topic, expire_records,
        kafka_holds, produce,
    },
    subscribers::{AnySubscriber, Tally, Via, quantile},
    *,
};
use streamweaver_proto::{
    topics::{self, Topic},
    v1::{OffsetRange, Position, StartAt, SubscribeRequest, start_at},
};
use tokio_util::sync::CancellationToken;

/// Taken shared by every test here and exclusively by the one that measures latency, so that
/// its baseline and its loaded stretches see the same machine (not another test's broker kill).
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Keys of the numbered trades.
const KEYS: [&str; 8] = ["K0", "K1", "K2", "K3", "K4", "K5", "K6", "K7"];
/// Any single wait of a test.
const WITHIN: Duration = Duration::from_secs(60);

fn trades_only() -> SubscribeRequest {
    SubscribeRequest {
        topics: vec![topics::STOCK_TRADES.into()],
        ..Default::default()
    }
}

/// Resumes from `tally`'s positions. Every subscriber here was live from before the first event,
/// so a partition it has nothing of yet (its first events were still on their way when it went
/// away) starts at its beginning: left unnamed, it would be live only.
fn resuming(tally: &Tally) -> SubscribeRequest {
    SubscribeRequest {
        resume_from: tally.resume_from(),
        start_at: Some(StartAt {
            point: Some(start_at::Point::Earliest(true)),
        }),
        ..trades_only()
    }
}

/// Reads `subscriber` into `tally` until `done` says so; fails if the stream ends first.
async fn read_until(
    subscriber: &mut AnySubscriber,
    tally: &mut Tally,
    what: &str,
    done: impl Fn(&Tally) -> bool,
) -> anyhow::Result<()> {
    read_within(subscriber, tally, what, WITHIN, done).await
}

/// [`read_until`], within `within`.
async fn read_within(
    subscriber: &mut AnySubscriber,
    tally: &mut Tally,
    what: &str,
    within: Duration,
    done: impl Fn(&Tally) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !done(tally) {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: not done within {within:?} ({} events, last {:?})",
            tally.events,
            tally.last
        );
        match subscriber.next(WITHIN).await? {
            Some(response) => tally.take(response),
            None => bail!("{what}: the stream ended ({} events)", tally.events),
        }
    }
    Ok(())
}

/// The log end of each partition of `stock_trades` now.
async fn ends(broker: &Broker) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(kafka_holds(broker, Topic::StockTrades)
        .await?
        .into_iter()
        .map(|(partition, (end, _))| (partition, end))
        .collect())
}

/// Asserts that `tally` holds every event Kafka holds of `stock_trades` from `first` on (per
/// partition; 0 when absent), once and in order, without gap notices.
async fn assert_complete(
    broker: &Broker,
    tally: &Tally,
    first: &BTreeMap<i32, i64>,
    what: &str,
) -> anyhow::Result<()> {
    let held = kafka_holds(broker, Topic::StockTrades).await?;
    let mut lost = Vec::new();
    let mut checked = 0;
    for (partition, (_, events)) in &held {
        let from = first.get(partition).copied().unwrap_or(0);
        for event in events.iter().filter(|e| e.offset >= from) {
            checked += 1;
            let position = (event.topic.clone(), *partition, event.offset);
            if !tally.positions.contains(&position) {
                lost.push(position);
            }
        }
    }
    println!(
        "{what}: {checked} events checked, {} lost, {} repeated, {} out of order, {} gap notices",
        lost.len(),
        tally.repeats.len(),
        tally.out_of_order.len(),
        tally.gaps.len()
    );
    ensure!(
        lost.is_empty(),
        "{what}: {} lost: {:?}",
        lost.len(),
        lost_ranges(&lost)
    );
    ensure!(
        tally.repeats.is_empty(),
        "{what}: repeated {:?}",
        tally.repeats
    );
    ensure!(
        tally.out_of_order.is_empty(),
        "{what}: out of order {:?}",
        tally.out_of_order
    );
    ensure!(
        tally.gaps.is_empty(),
        "{what}: gap notices {:?}",
        tally.gaps
    );
    ensure!(
        tally.numbers_out_of_order().is_empty(),
        "{what}: numbers out of order per key {:?}",
        tally.numbers_out_of_order()
    );
    Ok(())
}

/// `(partition, first, last, count)` of each partition's lost offsets, for failure messages.
fn lost_ranges(lost: &[(String, i32, i64)]) -> Vec<(i32, i64, i64, usize)> {
    let mut ranges: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    for (_, partition, offset) in lost {
        let range = ranges.entry(*partition).or_insert((*offset, *offset, 0));
        range.0 = range.0.min(*offset);
        range.1 = range.1.max(*offset);
        range.2 += 1;
    }
    ranges
        .into_iter()
        .map(|(partition, (first, last, count))| (partition, first, last, count))
        .collect()
}

/// A broker with `stock_trades` (3 partitions), a gateway process and its consumer process.
struct Stack {
    logs: TempDir,
    broker: Broker,
    gateway: GatewayProcess,
    consumer: Service,
}

impl Stack {
    async fn start(broker: Broker, gateway_flags: &[&str]) -> anyhow::Result<Self> {
        let logs = tempdir()?;
        println!("logs of this test: {}", logs.display());
        create_topic(&broker, topics::STOCK_TRADES, 3, &[]).await?;
        let gateway = GatewayProcess::start(&broker, &logs, "gateway", gateway_flags).await?;
        let consumer = consumer_process(&broker, &gateway, "faults-consumer", &logs, &[])?;
        Ok(Self {
            logs,
            broker,
            gateway,
            consumer,
        })
    }

    /// Numbered trades of `KEYS`, `count` at `rate` per second.
    fn produce(&self, rate: f64, count: u64) -> Running {
        start_producer(
            producer_args(&self.broker, rate, count),
            NumberedTrades::new(&KEYS),
        )
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.consumer.stop().await?;
        self.gateway.service.stop().await?;
        drop(self.logs);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_then_a_gateway_restart_then_resume_misses_nothing_on_any_transport()
-> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    let mut stack = Stack::start(Broker::start().await?, &[]).await?;
    // One subscriber per transport, each live from before the first event.
    let mut subscribers = Vec::new();
    for via in Via::ALL {
        let subscriber = AnySubscriber::connect(via, stack.gateway.address, trades_only()).await?;
        subscribers.push((via, subscriber, Tally::default()));
    }
    let producer = stack.produce(250.0, 2_500);
    // Each reads a little, then goes away while events keep coming: it is behind.
    let mut tallies = Vec::new();
    for (via, mut subscriber, mut tally) in subscribers {
        read_until(&mut subscriber, &mut tally, &format!("{via:?}"), |t| {
            t.events >= 200
        })
        .await?;
        tallies.push((via, tally));
    }
    // The gateway restarts (stop + start) mid-stream.
    stack.gateway.service.stop().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.gateway.restart().await?;
    producer.finished().await?;

    let ends = ends(&stack.broker).await?;
    for (via, mut tally) in tallies {
        let what = format!("{via:?} after a gateway restart");
        let mut subscriber =
            AnySubscriber::connect(via, stack.gateway.address, resuming(&tally)).await?;
        read_until(&mut subscriber, &mut tally, &what, |t| {
            t.reached(topics::STOCK_TRADES, &ends) || !t.gaps.is_empty()
        })
        .await?;
        assert_complete(&stack.broker, &tally, &BTreeMap::new(), &what).await?;
    }
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_a_replica_that_never_saw_the_subscriber_is_complete() -> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    let stack = Stack::start(Broker::start().await?, &[]).await?;
    let mut subscriber =
        AnySubscriber::connect(Via::Grpc, stack.gateway.address, trades_only()).await?;
    let mut tally = Tally::default();
    let producer = stack.produce(300.0, 1_500);
    read_until(&mut subscriber, &mut tally, "first replica", |t| {
        t.events >= 200
    })
    .await?;
    drop(subscriber);
    producer.finished().await?;

    // A second replica with its own consumer group, which starts at the log end: it never saw
    // any of what the subscriber missed.
    let mut second =
        GatewayProcess::start(&stack.broker, &stack.logs, "second-gateway", &[]).await?;
    let mut second_consumer = consumer_process(
        &stack.broker,
        &second,
        "faults-second-consumer",
        &stack.logs,
        &["--auto-offset-reset", "latest"],
    )?;
    // Events from here on reach it live once it is in its group and has looked up where the
    // log ends.
    second_consumer
        .wait_for_log("partitions assigned", WITHIN)
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let more = start_producer(
        producer_args(&stack.broker, 300.0, 300),
        NumberedTrades::new(&["L0", "L1", "L2"]),
    );
    println!("resuming from {:?}", tally.resume_from());
    let mut subscriber =
        AnySubscriber::connect(Via::Grpc, second.address, resuming(&tally)).await?;
    more.finished().await?;
    let ends = ends(&stack.broker).await?;
    read_until(&mut subscriber, &mut tally, "second replica", |t| {
        t.reached(topics::STOCK_TRADES, &ends) || !t.gaps.is_empty()
    })
    .await?;
    assert_complete(
        &stack.broker,
        &tally,
        &BTreeMap::new(),
        "resume on a second replica",
    )
    .await?;
    second_consumer.stop().await?;
    second.service.stop().await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_the_consumer_and_the_gateway_killed_mid_stream_lose_nothing()
-> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    let dir = tempdir()?;
    let stack = Stack::start(Broker::start_sqlite(&dir).await?, &[]).await?;
    let Stack {
        logs,
        mut broker,
        mut gateway,
        mut consumer,
    } = stack;
    let address = gateway.address;

    // A subscriber that reconnects with its last positions whenever its stream ends.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = CancellationToken::new();
    let subscriber = tokio::spawn({
        let (tally, stop) = (tally.clone(), stop.clone());
        async move {
            while !stop.is_cancelled() {
                let request = resuming(&tally.lock().expect("tally"));
                let Ok(mut subscriber) = AnySubscriber::connect(Via::Grpc, address, request).await
                else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        next = subscriber.next(Duration::from_secs(5)) => match next {
                            Ok(Some(response)) => tally.lock().expect("tally").take(response),
                            Ok(None) | Err(_) => break,
                        },
                    }
                }
            }
        }
    });
    let events = || tally.lock().expect("tally").events;
    let wait_for = |count: usize, within: Duration| async move {
        let deadline = tokio::time::Instant::now() + within;
        while events() < count {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "only {} events",
                events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let producer = start_producer(
        producer_args(&broker, 150.0, 2_400),
        NumberedTrades::new(&KEYS),
    );

    wait_for(300, WITHIN).await?;
    broker.kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restart().await?;
    wait_for(900, WITHIN)
        .await
        .context("after the broker's restart")?;
    consumer.kill().await?;
    consumer.start()?;
    // Started again as the same static member of its group, the consumer takes its old place
    // and partitions (tansu answers a static member's join and sync after 3 s each); without
    // it, tansu 0.6 would leave it with no partitions once the old member's session expired.
    wait_for(1_400, WITHIN)
        .await
        .context("after the consumer's restart")?;
    gateway.service.kill().await?;
    gateway.restart().await?;
    producer.finished().await?;

    let ends = ends(&broker).await?;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !tally
        .lock()
        .expect("tally")
        .reached(topics::STOCK_TRADES, &ends)
    {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the subscriber did not reach the log ends {ends:?}: {:?}\ngateway:\n{}\nconsumer:\n{}",
            tally.lock().expect("tally").last,
            gateway.service.log_tail(20),
            consumer.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    subscriber.await?;
    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    assert_complete(
        &broker,
        &tally,
        &BTreeMap::new(),
        "broker, consumer and gateway killed",
    )
    .await?;
    consumer.stop().await?;
    gateway.service.stop().await?;
    drop(logs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_and_recreated_shows_new_events_and_tells_subscribers() -> anyhow::Result<()>
{
    init_logs();
    let _machine = MACHINE.read().await;
    let mut stack = Stack::start(Broker::start().await?, &[]).await?;
    let mut subscriber =
        AnySubscriber::connect(Via::Grpc, stack.gateway.address, trades_only()).await?;
    let mut tally = Tally::default();
    for partition in 0..3 {
        let records: Vec<RawRecord> = (0..10).map(|n| RawRecord::trade("OLD", n)).collect();
        produce(&stack.broker, topics::STOCK_TRADES, partition, &records, 1).await?;
    }
    read_until(&mut subscriber, &mut tally, "before the delete", |t| {
        t.events >= 30
    })
    .await?;

    delete_topic(&stack.broker, topics::STOCK_TRADES).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    create_topic(&stack.broker, topics::STOCK_TRADES, 3, &[]).await?;
    for partition in 0..3 {
        let records: Vec<RawRecord> = (0..5).map(|n| RawRecord::trade("NEW", n)).collect();
        produce(&stack.broker, topics::STOCK_TRADES, partition, &records, 1).await?;
    }
    let crashed = stack.consumer.exited();
    if let Some(status) = crashed {
        // librdkafka 2.12 crashes on tansu's answer to a fetch of a deleted topic; a supervisor
        // (docker-compose's `restart: unless-stopped`) starts the consumer again.
        println!("the consumer exited when the topic was deleted ({status}); restarting it");
        stack.consumer.start()?;
    }
    read_until(&mut subscriber, &mut tally, "after the recreate", |t| {
        t.numbers.get("NEW").is_some_and(|n| n.len() >= 15)
    })
    .await
    .with_context(|| format!("consumer:\n{}", stack.consumer.log_tail(30)))?;
    let reset: Vec<(i32, i64)> = tally
        .resets
        .iter()
        .flat_map(|r| r.positions.iter().map(|p| (p.partition, p.offset)))
        .collect();
    ensure!(
        !reset.is_empty(),
        "subscribers are told their positions were reset"
    );
    ensure!(
        tally.gaps.is_empty(),
        "a recreated topic is a reset, not a gap: {:?}",
        tally.gaps
    );
    let new = &tally.numbers["NEW"];
    println!(
        "recreated topic: {} new events shown, resets {reset:?}",
        new.len()
    );
    ensure!(new.len() == 15, "each new event once: {new:?}");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commit_past_the_log_end_is_read_from_the_start() -> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    let broker = Broker::start().await?;
    create_topic(&broker, topics::STOCK_TRADES, 3, &[]).await?;
    for partition in 0..3 {
        let records: Vec<RawRecord> = (0..5).map(|n| RawRecord::trade("NEW", n)).collect();
        produce(&broker, topics::STOCK_TRADES, partition, &records, 1).await?;
    }
    // The group's commit outlived the topic it was made for (deleted and created again): 10 per
    // partition, past the end of the 5 each holds now. Kafka would answer the consumer's fetch
    // "out of range"; tansu answers nothing, for good.
    let offsets = [(0, 10), (1, 10), (2, 10)];
    commit_offsets(&broker, "faults-consumer", topics::STOCK_TRADES, &offsets).await?;

    let logs = tempdir()?;
    let mut gateway = GatewayProcess::start(&broker, &logs, "gateway", &[]).await?;
    let mut subscriber = AnySubscriber::connect(Via::Grpc, gateway.address, trades_only()).await?;
    let mut consumer = consumer_process(&broker, &gateway, "faults-consumer", &logs, &[])?;
    let mut tally = Tally::default();
    read_until(&mut subscriber, &mut tally, "from the log's start", |t| {
        t.numbers.get("NEW").is_some_and(|n| n.len() >= 15)
    })
    .await
    .with_context(|| format!("consumer:\n{}", consumer.log_tail(30)))?;
    let new = &tally.numbers["NEW"];
    println!("commit past the log end: {} events shown", new.len());
    ensure!(new.len() == 15, "each event once: {new:?}");
    consumer.stop().await?;
    gateway.service.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_notice_names_exactly_what_retention_removed() -> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    let dir = tempdir()?;
    let mut broker = Broker::start_sqlite(&dir).await?;
    expire_records(&mut broker, topics::STOCK_TRADES, 3, "K0", 30, 20).await?;

    let logs = tempdir()?;
    let mut gateway = GatewayProcess::start(&broker, &logs, "gateway", &[]).await?;
    let mut consumer = consumer_process(&broker, &gateway, "faults-consumer", &logs, &[])?;
    let request = SubscribeRequest {
        resume_from: vec![Position {
            topic: topics::STOCK_TRADES.into(),
            partition: 0,
            offset: 4,
        }],
        ..trades_only()
    };
    let mut subscriber = AnySubscriber::connect(Via::Grpc, gateway.address, request).await?;
    let mut tally = Tally::default();
    let end = BTreeMap::from([(0, 50)]);
    read_until(
        &mut subscriber,
        &mut tally,
        "resume below the log start",
        |t| t.reached(topics::STOCK_TRADES, &end),
    )
    .await?;
    let missed: Vec<OffsetRange> = tally.gaps.iter().flat_map(|g| g.missed.clone()).collect();
    println!("gap notices {:?}", tally.gaps);
    ensure!(
        missed
            == [OffsetRange {
                topic: topics::STOCK_TRADES.into(),
                partition: 0,
                first_offset: 5,
                last_offset: 29,
            }],
        "exactly offsets 5 to 29 are missed: {missed:?}"
    );
    let offsets: Vec<i64> = {
        let mut o: Vec<i64> = tally.positions.iter().map(|p| p.2).collect();
        o.sort_unstable();
        o
    };
    ensure!(
        offsets == (30..50).collect::<Vec<_>>(),
        "then every event Kafka holds: {offsets:?}"
    );
    ensure!(tally.repeats.is_empty(), "repeated {:?}", tally.repeats);
    consumer.stop().await?;
    gateway.service.stop().await?;
    Ok(())
}

/// Latencies (s) of what `live` receives for `seconds`.
async fn measure(live: &mut AnySubscriber, seconds: u64) -> anyhow::Result<Vec<f64>> {
    let mut tally = Tally::default();
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < until {
        match live.next(WITHIN).await? {
            Some(response) => tally.take(response),
            None => bail!("the live subscriber's stream ended"),
        }
    }
    Ok(tally.latencies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximal_resume_requests_do_not_slow_other_subscribers() -> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.write().await;
    let stack = Stack::start(Broker::start().await?, &[]).await?;
    let producer = stack.produce(300.0, 300 * 40);
    let mut live = AnySubscriber::connect(Via::Grpc, stack.gateway.address, trades_only()).await?;
    // Warm up, from the first events on (the consumer takes a few seconds to join its group).
    read_until(&mut live, &mut Tally::default(), "warming up", |t| {
        t.events >= 300
    })
    .await?;
    measure(&mut live, 2).await?;

    // Rounds of a stretch alone, then a stretch while two clients ask again and again for the
    // largest resume there is (1024 positions, from the start of every partition): the two
    // take turns, so both see the same machine (shared with the broker and the producer).
    let resume_from: Vec<Position> = (0..1024)
        .map(|i| Position {
            topic: topics::ALL[i % 3].into(),
            partition: (i / 3) as i32,
            offset: 0,
        })
        .collect();
    let request = SubscribeRequest {
        resume_from,
        ..Default::default()
    };
    // The resuming clients run on a runtime of their own, as other clients would: decoding
    // what they are sent must not hold up the live subscriber's reads in this process.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let p99 = |values: &[f64]| quantile(values, 0.99).unwrap_or(f64::NAN);
    let (mut baseline, mut loaded, mut requests) = (Vec::new(), Vec::new(), 0u32);
    for round in 0..3 {
        let alone = measure(&mut live, 3).await?;
        let stop = CancellationToken::new();
        let resumers: Vec<_> = (0..2)
            .map(|_| {
                let (stop, address, request) =
                    (stop.clone(), stack.gateway.address, request.clone());
                clients.spawn(async move {
                    let mut requests = 0u32;
                    while !stop.is_cancelled() {
                        requests += 1;
                        let connected =
                            AnySubscriber::connect(Via::Grpc, address, request.clone()).await;
                        if let Ok(mut resumer) = connected {
                            for _ in 0..500 {
                                let next = resumer.next(Duration::from_secs(2)).await;
                                if stop.is_cancelled() || !matches!(next, Ok(Some(_))) {
                                    break;
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    requests
                })
            })
            .collect();
        let during = measure(&mut live, 3).await?;
        println!(
            "round {round}: p99 {:.1} ms alone, {:.1} ms during",
            p99(&alone) * 1e3,
            p99(&during) * 1e3
        );
        baseline.extend(alone);
        loaded.extend(during);
        stop.cancel();
        for resumer in resumers {
            requests += resumer.await?;
        }
    }
    clients.shutdown_background();
    producer.stop().await?;

    let (before, during) = (p99(&baseline), p99(&loaded));
    println!(
        "live subscriber p99: {:.1} ms alone ({} events), {:.1} ms during {requests} maximal \
         resume requests ({} events)",
        before * 1e3,
        baseline.len(),
        during * 1e3,
        loaded.len()
    );
    ensure!(
        baseline.len() > 1_000 && loaded.len() > 1_000,
        "enough samples"
    );
    ensure!(
        during <= 2.0 * before,
        "p99 went from {:.1} ms to {:.1} ms",
        before * 1e3,
        during * 1e3
    );
    stack.stop().await
}

/// Figures for the README: how long a subscriber 100 000 events behind takes to catch up, read
/// back from Kafka by a gateway that holds none of them in memory. Run with
/// `cargo build --release --bins && cargo test --release -p streamweaver-e2e --test faults --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it in a release build"]
async fn catch_up_of_a_subscriber_100_000_events_behind() -> anyhow::Result<()> {
    init_logs();
    let _machine = MACHINE.read().await;
    const BEHIND: u64 = 100_000;
    let stack = Stack::start(Broker::start().await?, &["--history", "1000"]).await?;
    let mut subscriber =
        AnySubscriber::connect(Via::Grpc, stack.gateway.address, trades_only()).await?;
    let mut tally = Tally::default();
    let producer = stack.produce(1_000.0, 1_000_000);
    read_until(&mut subscriber, &mut tally, "live", |t| t.events >= 100).await?;
    drop(subscriber);
    // Behind by 100 000 events more, with the producer still going.
    start_producer(
        producer_args(&stack.broker, 1_000_000.0, BEHIND),
        NumberedTrades::new(&["B0", "B1", "B2", "B3"]),
    )
    .finished()
    .await?;
    let ends = ends(&stack.broker).await?;
    let behind: i64 = ends
        .iter()
        .map(|(partition, end)| {
            let last = tally
                .last
                .get(&(topics::STOCK_TRADES.to_owned(), *partition));
            end - last.map_or(0, |last| last + 1)
        })
        .sum();
    let started = std::time::Instant::now();
    let mut subscriber =
        AnySubscriber::connect(Via::Grpc, stack.gateway.address, resuming(&tally)).await?;
    read_within(
        &mut subscriber,
        &mut tally,
        "catching up",
        10 * WITHIN,
        |t| t.reached(topics::STOCK_TRADES, &ends),
    )
    .await?;
    let elapsed = started.elapsed();
    producer.stop().await?;
    println!(
        "catch-up: a subscriber {behind} events behind caught up in {:.2} s ({:.0} events/s), \
         {} gap notices",
        elapsed.as_secs_f64(),
        behind as f64 / elapsed.as_secs_f64(),
        tally.gaps.len()
    );
    stack.stop().await
}
