//! Producers → Kafka → stream-consumer → gateway → gRPC subscribers, on a real broker.

use std::{collections::HashMap, time::Duration};

use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use streamweaver_e2e::*;
use streamweaver_proto::{
    topics,
    v1::{LogLevel, Position, SubscribeRequest, event::Payload},
};

const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_producers_reach_a_grpc_subscriber_decoded_and_in_order_per_key() -> anyhow::Result<()>
{
    init_logs();
    let broker = Broker::start().await?;
    let (gateway, gateway_task) =
        start_gateway(broker.gateway_args("127.0.0.1:0".parse()?)).await?;
    let mut subscriber = Subscriber::connect(gateway, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(&broker, gateway));
    const PER_TOPIC: u64 = 150;
    for producer in start_all_producers(&broker, 300.0, PER_TOPIC) {
        producer.finished().await?;
    }

    let events = subscriber.events(3 * PER_TOPIC as usize, WITHIN).await?;
    let mut per_topic: HashMap<&str, usize> = HashMap::new();
    let mut last_per_key: HashMap<(String, String), (i32, i64, std::time::SystemTime)> =
        HashMap::new();
    for event in &events {
        *per_topic.entry(event.topic.as_str()).or_default() += 1;
        match event.payload.as_ref().expect("payload") {
            Payload::StockTrade(trade) => {
                assert_eq!(event.topic, topics::STOCK_TRADES);
                assert_eq!(event.key, trade.symbol);
                assert!(trade.price > 0.0 && trade.quantity > 0 && !trade.trade_id.is_empty());
            }
            Payload::SocialPost(post) => {
                assert_eq!(event.topic, topics::SOCIAL_FEED);
                assert_eq!(event.key, post.author);
                assert!(!post.text.is_empty() && !post.hashtags.is_empty());
            }
            Payload::LogEntry(entry) => {
                assert_eq!(event.topic, topics::SERVER_LOGS);
                assert_eq!(event.key, entry.service);
                assert_ne!(entry.level(), LogLevel::Unspecified);
                assert!(entry.latency_ms > 0.0 && !entry.message.is_empty());
            }
            Payload::TradeBar(bar) => panic!("no trade-bars service runs here: {bar:?}"),
        }
        // Per key: one partition, offsets rising, producer timestamps never going back.
        let at = produced_at(event);
        let key = (event.topic.clone(), event.key.clone());
        if let Some((partition, offset, previous_at)) = last_per_key.get(&key) {
            assert_eq!(*partition, event.partition, "key {key:?} changed partition");
            assert!(
                event.offset > *offset,
                "key {key:?}: offset {} after {offset}",
                event.offset
            );
            assert!(at >= *previous_at, "key {key:?}: timestamps went back");
        }
        last_per_key.insert(key, (event.partition, event.offset, at));
    }
    for topic in [
        topics::STOCK_TRADES,
        topics::SOCIAL_FEED,
        topics::SERVER_LOGS,
    ] {
        assert_eq!(
            per_topic.get(topic).copied(),
            Some(PER_TOPIC as usize),
            "{per_topic:?}"
        );
    }
    // Nothing more than was produced: each event shown once.
    assert!(subscriber.events(1, Duration::from_secs(2)).await.is_err());

    consumer.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_subscribers_get_only_what_they_asked_for() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let (gateway, gateway_task) =
        start_gateway(broker.gateway_args("127.0.0.1:0".parse()?)).await?;
    let mut aapl = Subscriber::connect(
        gateway,
        SubscribeRequest {
            topics: vec![topics::STOCK_TRADES.into()],
            symbols: vec!["AAPL".into()],
            ..Default::default()
        },
    )
    .await?;
    let mut errors = Subscriber::connect(
        gateway,
        SubscribeRequest {
            topics: vec![topics::SERVER_LOGS.into()],
            log_levels: vec![LogLevel::Error.into()],
            ..Default::default()
        },
    )
    .await?;
    let mut everything = Subscriber::connect(gateway, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(&broker, gateway));
    let producers = start_all_producers(&broker, 400.0, 1_200);

    // The unfiltered stream shows the filters had something to remove.
    let (mut other_symbol, mut other_level) = (false, false);
    while !(other_symbol && other_level) {
        for event in everything.events(1, WITHIN).await? {
            match &event.payload {
                Some(Payload::StockTrade(t)) => other_symbol |= t.symbol != "AAPL",
                Some(Payload::LogEntry(l)) => other_level |= l.level() != LogLevel::Error,
                _ => {}
            }
        }
    }

    for event in aapl.events(20, WITHIN).await? {
        match event.payload {
            Some(Payload::StockTrade(trade)) => assert_eq!(trade.symbol, "AAPL"),
            other => panic!("AAPL subscriber got {other:?}"),
        }
    }
    for event in errors.events(10, WITHIN).await? {
        match event.payload {
            Some(Payload::LogEntry(entry)) => {
                assert_eq!(entry.level(), LogLevel::Error);
                assert!(entry.status_code >= 500);
            }
            other => panic!("ERROR subscriber got {other:?}"),
        }
    }
    for producer in producers {
        producer.stop().await?;
    }
    consumer.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_flow_and_undecodable_ones_go_to_the_dead_letter_topic() -> anyhow::Result<()>
{
    init_logs();
    let broker = Broker::start().await?;
    let (gateway, gateway_task) =
        start_gateway(broker.gateway_args("127.0.0.1:0".parse()?)).await?;
    let mut subscriber = Subscriber::to_topics(gateway, &[topics::STOCK_TRADES]).await?;
    let consumer_args = consumer_args(&broker, gateway);
    let dead_letter_topic = consumer_args.dead_letter_topic.clone();
    let consumer = start_consumer(consumer_args);

    let producer: FutureProducer = broker
        .client_config()
        .set("message.max.bytes", "2000000")
        .create()?;
    let json = |symbol: &str, price: f64| {
        format!(
            r#"{{"symbol":"{symbol}","price":{price},"quantity":5,"side":"TRADE_SIDE_SELL","timestamp":"2026-11-29T10:00:00Z"}}"#
        )
    };
    // Over the consumer's --max-value-bytes, and too large for the dead-letter producer to copy.
    const BIG: usize = 1_100_000;
    let records: [(&str, Option<&str>, Vec<u8>); 5] = [
        (
            "JSON1",
            Some("application/json"),
            json("JSON1", 10.5).into_bytes(),
        ),
        ("BAD", None, b"\xff\xfe this is not an event".to_vec()),
        (
            "BAD",
            Some("application/json"),
            br#"{"symbol":"BAD","price":"#.to_vec(),
        ),
        ("BIG", None, vec![b' '; BIG]),
        ("JSON2", None, json("JSON2", 11.25).into_bytes()),
    ];
    for (key, content_type, value) in &records {
        let mut headers = OwnedHeaders::new();
        if let Some(content_type) = content_type {
            headers = headers.insert(Header {
                key: "content-type",
                value: Some(*content_type),
            });
        }
        // One partition for all, so the bad records sit between the good ones.
        let record = FutureRecord::to(topics::STOCK_TRADES)
            .key(*key)
            .payload(value)
            .partition(0)
            .headers(headers);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
    }

    let events = subscriber.events(2, WITHIN).await?;
    let symbols: Vec<String> = events
        .iter()
        .map(|e| match &e.payload {
            Some(Payload::StockTrade(trade)) => trade.symbol.clone(),
            other => panic!("not a trade: {other:?}"),
        })
        .collect();
    assert_eq!(symbols, ["JSON1", "JSON2"]);
    assert!(matches!(&events[1].payload, Some(Payload::StockTrade(t)) if t.price == 11.25));

    // The bad records are in the dead-letter topic, with the reason attached.
    let dead: StreamConsumer = broker
        .client_config()
        .set("group.id", "e2e-dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    dead.subscribe(&[dead_letter_topic.as_str()])?;
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        let message = tokio::time::timeout(WITHIN, dead.recv()).await??;
        let header = |name: &str| {
            message.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        };
        assert!(header("streamweaver-source").is_some_and(|s| s.starts_with("stock_trades/0/")));
        if message.key() == Some(&b"BIG"[..]) {
            // Too large to copy: where it is and how large it was, without the value.
            assert_eq!(message.payload(), None);
            assert_eq!(header("streamweaver-value-omitted"), Some(BIG.to_string()));
        } else {
            assert_eq!(message.key(), Some(&b"BAD"[..]));
        }
        reasons.push(header("streamweaver-error").expect("error header"));
    }
    assert!(
        reasons[0].starts_with("invalid Protobuf StockTrade"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("invalid JSON StockTrade"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("over the limit"), "{reasons:?}");

    consumer.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_restart_a_resuming_subscriber_misses_nothing() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let address: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let (gateway, first_gateway) = start_gateway(broker.gateway_args(address)).await?;
    let mut before = Subscriber::connect(gateway, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(&broker, gateway));
    let producer = start_producer(
        producer_args(&broker, 150.0, 600),
        stock_producer::StockTrades::default(),
    );

    let mut seen = before.events(100, WITHIN).await?;
    first_gateway.stop().await?;
    seen.extend(before.until_end(WITHIN).await?);
    let mut last: HashMap<i32, i64> = HashMap::new();
    for event in &seen {
        last.insert(event.partition, event.offset);
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, second_gateway) = start_gateway(broker.gateway_args(address)).await?;
    // Resume from the last positions seen before the restart, as the dashboard does.
    let resume_from = last
        .iter()
        .map(|(&partition, &offset)| Position {
            topic: topics::STOCK_TRADES.into(),
            partition,
            offset,
        })
        .collect();
    let mut after = Subscriber::connect(
        address,
        SubscribeRequest {
            resume_from,
            ..Default::default()
        },
    )
    .await?;
    producer.finished().await?;

    // The consumer resumes from what the first gateway acknowledged and the new gateway sends
    // the subscriber only what it has not seen: every partition continues without a hole or a
    // repeat to the end of the log.
    let ends = broker.watermarks(topics::STOCK_TRADES)?;
    let mut next: HashMap<i32, i64> = ends
        .keys()
        .map(|p| (*p, last.get(p).map_or(0, |o| o + 1)))
        .collect();
    while next.iter().any(|(p, offset)| *offset < ends[p]) {
        let event = after.events(1, WITHIN).await?.remove(0);
        let expected = next
            .get_mut(&event.partition)
            .expect("a partition with data");
        assert_eq!(
            event.offset, *expected,
            "partition {}: hole or repeat",
            event.partition
        );
        *expected += 1;
    }

    consumer.stop().await?;
    second_gateway.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_complete_and_in_order() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let mut args = broker.gateway_args("127.0.0.1:0".parse()?);
    args.subscriber_buffer = 1 << 17;
    let (gateway, gateway_task) = start_gateway(args).await?;
    let mut subscriber = Subscriber::connect(gateway, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(&broker, gateway));
    // As fast as the producer goes: many Publish calls' worth while the consumer keeps up.
    const BURST: usize = 30_000;
    start_producer(
        producer_args(&broker, 1_000_000.0, BURST as u64),
        stock_producer::StockTrades::default(),
    )
    .finished()
    .await?;

    let counts = assert_each_partition_from_zero(&subscriber.events(BURST, WITHIN).await?);
    assert_eq!(counts.values().sum::<i64>(), BURST as i64);

    consumer.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_resumes_from_its_commits_with_nothing_lost_or_repeated()
-> anyhow::Result<()> {
    init_logs();
    const TRADES: u64 = 800;
    let broker = Broker::start().await?;
    let mut args = broker.gateway_args("127.0.0.1:0".parse()?);
    args.subscriber_buffer = 1 << 16;
    let (gateway, gateway_task) = start_gateway(args).await?;
    let mut subscriber = Subscriber::connect(gateway, SubscribeRequest::default()).await?;
    let first = start_consumer(consumer_args(&broker, gateway));
    let producer = start_producer(
        producer_args(&broker, 200.0, TRADES),
        stock_producer::StockTrades::default(),
    );
    let mut seen = subscriber.events(200, WITHIN).await?;
    // Stopped mid-stream; its successor in the same group starts from the committed offsets.
    first.stop().await?;
    let second = start_consumer(consumer_args(&broker, gateway));
    producer.finished().await?;

    seen.extend(
        subscriber
            .events(TRADES as usize - seen.len(), WITHIN)
            .await?,
    );
    assert_each_partition_from_zero(&seen);
    assert!(
        subscriber.events(1, Duration::from_secs(2)).await.is_err(),
        "every record shown exactly once, nothing twice"
    );

    second.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}
