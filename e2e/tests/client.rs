//! `streamweaver-client` against a real gateway over loopback: reconnecting after the gateway
//! restarts with nothing lost or repeated (trades from the stock producer through Kafka and the
//! consumer), the heartbeat watchdog on silent connections, the backoff between attempts, and
//! refusals that end a subscription.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use streamweaver_client::{Backoff, ClientError, Subscription, Topic, Update};
use streamweaver_common::kafka::ensure_topics;
use streamweaver_e2e::*;
use streamweaver_proto::{
    topics,
    v1::{Event, StockTrade, event::Payload},
};
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(20);

fn trade(partition: i32, offset: i64) -> Event {
    Event {
        topic: Topic::StockTrades.name().into(),
        key: "AAPL".into(),
        partition,
        offset,
        payload: Some(Payload::StockTrade(StockTrade {
            symbol: "AAPL".into(),
            price: 100.0 + offset as f64,
            quantity: 1,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The next update that is not a heartbeat, within [`WITHIN`].
async fn next(updates: &mut Subscription) -> Result<Update, ClientError> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let update = tokio::time::timeout_at(deadline, updates.next())
            .await
            .expect("an update in time")
            .expect("the subscription goes on");
        if !matches!(update, Ok(Update::Heartbeat(_))) {
            return update;
        }
    }
}

/// The next `count` events, asserting nothing but events (and heartbeats) comes between.
async fn events(updates: &mut Subscription, count: usize) -> Vec<(i32, i64)> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        match next(updates).await {
            Ok(Update::Event(event)) => events.push((event.partition, event.offset)),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    events
}

fn url(address: SocketAddr) -> String {
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_restart_the_subscription_resumes_with_nothing_lost_or_repeated()
-> anyhow::Result<()> {
    init_logs();
    const TRADES: u64 = 600;
    let broker = Broker::start().await?;
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let (_, first) = start_gateway(broker.gateway_args(address)).await?;
    let consumer = start_consumer(consumer_args(&broker, address));
    let mut updates = Subscription::builder(url(address))
        .topics([Topic::StockTrades])
        .backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
        ))
        .heartbeat_interval(Duration::from_secs(2))
        .subscribe()?;
    assert!(matches!(next(&mut updates).await, Ok(Update::Connected)));
    let producer = start_producer(
        producer_args(&broker, 150.0, TRADES),
        stock_producer::StockTrades::default(),
    );
    let mut seen = events(&mut updates, 150).await;

    // The gateway goes away mid-stream while trades keep coming, then comes back.
    first.stop().await?;
    let second = loop {
        match next(&mut updates).await {
            Ok(Update::Event(event)) => seen.push((event.partition, event.offset)),
            Ok(Update::Disconnected { error, .. }) => {
                assert!(!error.is_fatal(), "{error}");
                break start_gateway(broker.gateway_args(address)).await?.1;
            }
            other => panic!("expected events, then the disconnection, got {other:?}"),
        }
    };
    let resumed_from = loop {
        match next(&mut updates).await {
            Ok(Update::Disconnected { .. }) => continue,
            Ok(Update::Reconnected { resumed_from, .. }) => break resumed_from,
            other => panic!("expected a reconnection, got {other:?}"),
        }
    };
    assert!(!resumed_from.is_empty(), "it resumed from its positions");
    producer.finished().await?;

    // Every trade Kafka holds, each once, in order per partition: what the subscription must
    // have delivered across the restart.
    let mut expected: Vec<(i32, i64)> = read_topic(&broker, topics::STOCK_TRADES)
        .await?
        .iter()
        .map(|event| (event.partition, event.offset))
        .collect();
    assert_eq!(expected.len() as u64, TRADES);
    let rest = expected.len().saturating_sub(seen.len());
    seen.extend(events(&mut updates, rest).await);
    let by_partition = |events: &mut Vec<(i32, i64)>| {
        events.sort_by_key(|(partition, _)| *partition);
        events.clone()
    };
    assert_eq!(
        by_partition(&mut seen),
        by_partition(&mut expected),
        "per partition, every offset once and in order: no hole, no repeat"
    );
    assert_eq!(
        updates.duplicates_dropped(),
        0,
        "the gateway itself resumed after the positions: nothing was sent twice"
    );
    // Nothing more: every event was delivered once.
    match tokio::time::timeout(Duration::from_millis(1500), next(&mut updates)).await {
        Err(_) => {}
        Ok(other) => panic!("nothing more was produced, got {other:?}"),
    }
    consumer.stop().await?;
    second.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_drops_a_connection_that_says_nothing() -> anyhow::Result<()> {
    init_logs();
    // Accepts TCP connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });

    let watchdog = Duration::from_millis(400);
    let mut updates = Subscription::builder(url(address))
        .heartbeat_interval(Duration::from_millis(200))
        .missed_heartbeats(2)
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(100),
        ))
        .subscribe()?;
    let started = Instant::now();
    for _ in 0..2 {
        match next(&mut updates).await {
            Ok(Update::Disconnected {
                error: ClientError::Watchdog { silent_for },
                ..
            }) => assert_eq!(silent_for, watchdog),
            other => panic!("expected the watchdog, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() >= 2 * watchdog,
        "each attempt waited out the watchdog"
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "a new connection per attempt"
    );
    silent.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_reconnects_a_live_subscription_that_goes_silent() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    ensure_topics(&broker.kafka_args(), &[topics::STOCK_TRADES], 3).await?;
    let mut args = broker.gateway_args("127.0.0.1:0".parse()?);
    // The gateway's heartbeats are far apart: only the watchdog can notice the silence.
    args.heartbeat = Duration::from_secs(60);
    let (address, gateway) = start_gateway(args).await?;
    let mut updates = Subscription::builder(url(address))
        .topics([Topic::StockTrades])
        .heartbeat_interval(Duration::from_millis(250))
        .missed_heartbeats(2)
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(100),
        ))
        .subscribe()?;
    assert!(matches!(next(&mut updates).await, Ok(Update::Connected)));
    let silent = Instant::now();
    assert!(matches!(
        next(&mut updates).await,
        Ok(Update::Disconnected {
            error: ClientError::Watchdog { .. },
            ..
        })
    ));
    assert!(silent.elapsed() >= Duration::from_millis(500));
    assert!(matches!(
        next(&mut updates).await,
        Ok(Update::Reconnected { .. })
    ));

    // Events flow on the new connection (the watchdog may fire again while none come).
    let consumer = start_consumer(consumer_args(&broker, address));
    let producer = start_producer(
        producer_args(&broker, 100.0, 20),
        stock_producer::StockTrades::default(),
    );
    let mut offsets = std::collections::HashMap::new();
    while offsets.values().map(|o: &Vec<i64>| o.len()).sum::<usize>() < 20 {
        match next(&mut updates).await {
            Ok(Update::Event(event)) => offsets
                .entry(event.partition)
                .or_insert_with(Vec::new)
                .push(event.offset),
            Ok(Update::Disconnected { .. } | Update::Reconnected { .. }) => continue,
            other => panic!("expected events, got {other:?}"),
        }
    }
    for (partition, offsets) in offsets {
        let from_zero: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, from_zero,
            "partition {partition}: once each, in order"
        );
    }
    producer.finished().await?;
    consumer.stop().await?;
    gateway.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_back_off_within_bounds_and_the_subscription_gives_up_when_told()
-> anyhow::Result<()> {
    init_logs();
    // Nothing listens here: every attempt is refused at once, so only the backoff paces them.
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
    let mut updates = Subscription::builder(url(address))
        .backoff(backoff)
        .max_attempts(6)
        .subscribe()?;
    let mut waits = Vec::new();
    loop {
        let update = next(&mut updates).await;
        let at = Instant::now();
        match update {
            Ok(Update::Disconnected { error, retry_in }) => {
                assert!(matches!(error, ClientError::Connect(_)), "{error}");
                waits.push((at, retry_in));
            }
            Err(ClientError::GaveUp { attempts, last }) => {
                assert_eq!(attempts, 6);
                assert!(matches!(*last, ClientError::Connect(_)));
                break;
            }
            other => panic!("expected refusals, got {other:?}"),
        }
    }
    assert_eq!(waits.len(), 5);
    for (attempt, pair) in waits.windows(2).enumerate() {
        let ((at, retry_in), (next_at, _)) = (pair[0], pair[1]);
        let ceiling = backoff.ceiling(attempt as u32);
        assert!(
            retry_in >= ceiling / 2 && retry_in <= ceiling,
            "retry {attempt}: {retry_in:?} outside {ceiling:?}/2..={ceiling:?}"
        );
        let waited = next_at - at;
        assert!(
            waited >= retry_in,
            "retry {attempt} came after {waited:?}, before its {retry_in:?}"
        );
        assert!(
            waited < retry_in + Duration::from_secs(3),
            "retry {attempt} waited {waited:?}"
        );
    }
    assert!(
        tokio::time::timeout(WITHIN, updates.next())
            .await?
            .is_none(),
        "ended"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_or_request_ends_the_subscription() -> anyhow::Result<()> {
    init_logs();
    let mut args = gateway_args("127.0.0.1:0".parse()?);
    // Subscribers need a JWT signed with this secret.
    let secret = "e2e-client-secret";
    args.access.subscribe_jwt_secret = Some(secret.into());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let right_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?,
    )?;
    let (address, gateway) = start_gateway(args).await?;

    let mut wrong = Subscription::builder(url(address))
        .bearer_token("wrong-token")
        .subscribe()?;
    match next(&mut wrong).await {
        Err(error) => assert_eq!(error.code(), Some(Code::Unauthenticated), "{error}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(tokio::time::timeout(WITHIN, wrong.next()).await?.is_none());

    let too_many = (0..5_000).map(|i| format!("S{i}"));
    let mut invalid = Subscription::builder(url(address))
        .bearer_token(&right_token)
        .symbols(too_many)
        .subscribe()?;
    match next(&mut invalid).await {
        Err(error) => assert_eq!(error.code(), Some(Code::InvalidArgument), "{error}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let mut right = Subscription::builder(url(address))
        .bearer_token(&right_token)
        .topics([Topic::StockTrades])
        .subscribe()?;
    assert!(matches!(next(&mut right).await, Ok(Update::Connected)));
    publish(address, vec![trade(2, 7)]).await?;
    match next(&mut right).await {
        Ok(Update::Event(event)) => assert_eq!((event.partition, event.offset), (2, 7)),
        other => panic!("expected the event, got {other:?}"),
    }
    gateway.stop().await?;
    Ok(())
}
