//! Fan-out with real clients over loopback: many subscribers, each with its own filter, policy
//! and transport, get exactly what their filter and policy say; and under every slow-client
//! policy a subscriber that never reads slows nobody, holds bounded memory, and is counted.

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use streamweaver_proto::v1::{
    Event, LogLevel, Position, SlowClientPolicy, SubscribeRequest, SubscribeResponse,
    event::Payload, stream_service_client::StreamServiceClient, subscribe_response::Kind,
};
use support::*;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use tonic::transport::Channel;

const SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"];
const AUTHORS: [&str; 3] = ["alice", "bob", "carol"];
const HASHTAGS: [&str; 3] = ["rust", "go", "kafka"];
const SERVICES: [&str; 3] = ["auth", "api", "db"];
const LEVELS: [LogLevel; 4] = [
    LogLevel::Debug,
    LogLevel::Info,
    LogLevel::Warn,
    LogLevel::Error,
];

/// `count` events over the three topics, three partitions each, keys pinned to partitions
/// and offsets counting up per partition (as Kafka would number them).
fn workload(count: usize) -> Vec<Event> {
    let mut next_offset: HashMap<(&str, i32), i64> = HashMap::new();
    let mut events = Vec::with_capacity(count);
    for i in 0..count {
        // Start with one event in each of the nine partitions.
        let (topic, key_index) = if i < 9 {
            (i % 3, i / 3)
        } else {
            (i % 3, (i * 7 + i / 3) % 5)
        };
        let event = |partition, offset| match topic {
            0 => trade_at(partition, offset, SYMBOLS[key_index % 5]),
            1 => {
                let tags: Vec<&str> = HASHTAGS
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|(t, _)| (i + t) % 2 == 0)
                    .map(|(_, tag)| tag)
                    .collect();
                post_at(partition, offset, AUTHORS[key_index % 3], &tags)
            }
            _ => log_at(
                partition,
                offset,
                SERVICES[key_index % 3],
                LEVELS[(i / 3) % 4],
            ),
        };
        // A key always lands in the same partition.
        let partition = (key_index % 3) as i32;
        let topic_name = ["stock_trades", "social_feed", "server_logs"][topic];
        let offset = next_offset.entry((topic_name, partition)).or_insert(0);
        events.push(event(partition, *offset));
        *offset += 1;
    }
    events
}

/// The filters subscribers pick from, as requests and as an independent model of what each
/// takes.
fn filter(id: usize) -> (SubscribeRequest, fn(&Event) -> bool) {
    let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let topics = |names: &[&str]| strings(names);
    match id {
        0 => (SubscribeRequest::default(), |_| true),
        1 => (
            SubscribeRequest {
                topics: topics(&["stock_trades"]),
                symbols: strings(&["AAPL"]),
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::StockTrade(t)) if t.symbol == "AAPL"),
        ),
        2 => (
            SubscribeRequest {
                topics: topics(&["stock_trades"]),
                symbols: strings(&["AAPL", "MSFT"]),
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::StockTrade(t)) if t.symbol == "AAPL" || t.symbol == "MSFT"),
        ),
        3 => (
            SubscribeRequest {
                symbols: strings(&["GOOG"]),
                ..Default::default()
            },
            |e| match &e.payload {
                Some(Payload::StockTrade(t)) => t.symbol == "GOOG",
                _ => true,
            },
        ),
        4 => (
            SubscribeRequest {
                topics: topics(&["social_feed"]),
                authors: strings(&["alice"]),
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::SocialPost(p)) if p.author == "alice"),
        ),
        5 => (
            SubscribeRequest {
                topics: topics(&["social_feed"]),
                hashtags: strings(&["rust"]),
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::SocialPost(p)) if p.hashtags.iter().any(|t| t == "rust")),
        ),
        6 => (
            SubscribeRequest {
                topics: topics(&["server_logs"]),
                log_levels: vec![LogLevel::Error.into()],
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::LogEntry(l)) if l.level == LogLevel::Error as i32),
        ),
        7 => (
            SubscribeRequest {
                topics: topics(&["server_logs"]),
                services: strings(&["auth"]),
                log_levels: vec![LogLevel::Warn.into(), LogLevel::Error.into()],
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::LogEntry(l)) if l.service == "auth" && l.level >= LogLevel::Warn as i32),
        ),
        8 => (
            SubscribeRequest {
                topics: topics(&["stock_trades", "server_logs"]),
                ..Default::default()
            },
            |e| e.topic != "social_feed",
        ),
        _ => (
            SubscribeRequest {
                topics: topics(&["social_feed"]),
                authors: strings(&["bob", "carol"]),
                hashtags: strings(&["kafka", "go"]),
                ..Default::default()
            },
            |e| matches!(&e.payload, Some(Payload::SocialPost(p)) if (p.author == "bob" || p.author == "carol") && p.hashtags.iter().any(|t| t == "kafka" || t == "go")),
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Grpc,
    GrpcWeb,
    Websocket,
    WebsocketBatched,
}

/// An event as a subscriber saw it.
type Seen = (String, i32, i64, String);

fn seen(event: &Event) -> Seen {
    (
        event.topic.clone(),
        event.partition,
        event.offset,
        event.key.clone(),
    )
}

/// What a subscriber received, and for how long it was subscribed.
struct Received {
    events: Vec<Seen>,
    span: Duration,
}

/// Reads one subscription until `done` says it has what it waits for.
async fn read_until(
    via: Via,
    address: std::net::SocketAddr,
    channel: Channel,
    request: SubscribeRequest,
    done: impl Fn(&[Seen]) -> bool,
) -> Received {
    let started = Instant::now();
    let mut events = Vec::new();
    let take = |response: SubscribeResponse, events: &mut Vec<Seen>| match response.kind {
        Some(Kind::Event(event)) => events.push(seen(&event)),
        Some(Kind::Heartbeat(_)) => {}
        other => panic!("{via:?}: unexpected {other:?}"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    match via {
        Via::Grpc | Via::GrpcWeb => {
            let mut stream = if via == Via::Grpc {
                StreamServiceClient::new(channel)
                    .subscribe(request)
                    .await
                    .expect("subscribe")
                    .into_inner()
            } else {
                let http = Client::builder(TokioExecutor::new()).build_http();
                let service = tower::ServiceBuilder::new()
                    .layer(tonic_web::GrpcWebClientLayer::new())
                    .service(http);
                let url = format!("http://{address}").parse().expect("uri");
                StreamServiceClient::with_origin(service, url)
                    .subscribe(request)
                    .await
                    .expect("subscribe")
                    .into_inner()
            };
            while !done(&events) {
                let response = tokio::time::timeout_at(deadline, stream.message())
                    .await
                    .unwrap_or_else(|_| panic!("{via:?}: only {} events", events.len()))
                    .expect("ok")
                    .expect("open");
                take(response, &mut events);
            }
        }
        Via::Websocket | Via::WebsocketBatched => {
            let mut ws_request = format!("ws://{address}/ws")
                .into_client_request()
                .expect("request");
            if via == Via::WebsocketBatched {
                ws_request.headers_mut().insert(
                    "sec-websocket-protocol",
                    gateway::websocket::BATCH_PROTOCOL.parse().expect("header"),
                );
            }
            let (mut socket, _) = tokio_tungstenite::connect_async(ws_request)
                .await
                .expect("connect");
            let json = serde_json::to_string(&request).expect("json");
            socket.send(Message::text(json)).await.expect("send");
            while !done(&events) {
                let frame = tokio::time::timeout_at(deadline, socket.next())
                    .await
                    .unwrap_or_else(|_| panic!("{via:?}: only {} events", events.len()))
                    .expect("open")
                    .expect("ok");
                let Message::Text(text) = frame else { continue };
                if via == Via::WebsocketBatched {
                    let batch: Vec<SubscribeResponse> =
                        serde_json::from_str(&text).expect("a JSON array");
                    for response in batch {
                        take(response, &mut events);
                    }
                } else {
                    take(
                        serde_json::from_str(&text).expect("a response"),
                        &mut events,
                    );
                }
            }
        }
    }
    Received {
        events,
        span: started.elapsed(),
    }
}

fn per_partition(events: &[Seen]) -> HashMap<(String, i32), Vec<i64>> {
    let mut partitions: HashMap<(String, i32), Vec<i64>> = HashMap::new();
    for (topic, partition, offset, _) in events {
        partitions
            .entry((topic.clone(), *partition))
            .or_default()
            .push(*offset);
    }
    partitions
}

/// The last event of each key.
fn last_per_key(events: &[Seen]) -> HashMap<(String, String), i64> {
    events
        .iter()
        .map(|(topic, _, offset, key)| ((topic.clone(), key.clone()), *offset))
        .collect()
}

fn is_subsequence(part: &[i64], whole: &[i64]) -> bool {
    let mut whole = whole.iter();
    part.iter().all(|p| whole.any(|w| w == p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_each_get_exactly_what_their_filter_and_policy_say() {
    const SAMPLE_MS: u64 = 100;
    let gateway = Gateway::start(&[]).await;
    let events = workload(1_000);
    let (primed, live) = events.split_at(100);
    gateway.publish(primed.to_vec()).await.expect("publish");
    let everything_positions: Vec<Position> = ["stock_trades", "social_feed", "server_logs"]
        .into_iter()
        .flat_map(|topic| {
            (0..3).map(move |partition| Position {
                topic: topic.into(),
                partition,
                offset: -1,
            })
        })
        .collect();

    let channel = Channel::from_shared(gateway.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut subscribers = Vec::new();
    for i in 0..200usize {
        let via = [
            Via::Grpc,
            Via::GrpcWeb,
            Via::Websocket,
            Via::WebsocketBatched,
        ][i % 4];
        let policy = [
            SlowClientPolicy::Gap,
            SlowClientPolicy::Disconnect,
            SlowClientPolicy::LatestPerKey,
            SlowClientPolicy::Sample,
        ][(i / 4) % 4];
        let (mut request, wants) = filter((i / 16) % 10);
        request.slow_client_policy = policy as i32;
        if policy == SlowClientPolicy::Sample {
            request.sample_interval = Some(pbjson_types::Duration {
                seconds: 0,
                nanos: (SAMPLE_MS * 1_000_000) as i32,
            });
        }
        // Some resume from the start (served from memory, then live); the others take live
        // events from when they subscribed.
        let resumes =
            i % 3 == 0 && matches!(policy, SlowClientPolicy::Gap | SlowClientPolicy::Disconnect);
        if resumes {
            request.resume_from = everything_positions.clone();
        }
        let source = if resumes { &events[..] } else { live };
        let expected: Vec<Seen> = source.iter().filter(|e| wants(e)).map(seen).collect();
        let exact = matches!(policy, SlowClientPolicy::Gap | SlowClientPolicy::Disconnect);
        let wanted = expected.clone();
        let last_wanted = last_per_key(&wanted);
        let done = move |got: &[Seen]| {
            if exact {
                got.len() >= wanted.len()
            } else {
                let last = last_per_key(got);
                last_wanted
                    .iter()
                    .all(|(key, offset)| last.get(key) == Some(offset))
            }
        };
        let (address, channel) = (gateway.address, channel.clone());
        let reader = tokio::spawn(read_until(via, address, channel, request, done));
        subscribers.push((i, via, policy, expected, reader));
    }
    // Every subscription is in the hub before the live events go in.
    let mut connected = 0.0;
    for _ in 0..500 {
        let metrics = gateway.metrics().await;
        connected = ["grpc", "grpc-web", "websocket"]
            .into_iter()
            .map(|t| {
                metric(
                    &metrics,
                    &format!(r#"gateway_subscribers{{transport="{t}"}}"#),
                )
            })
            .sum::<f64>();
        if connected >= 200.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connected, 200.0, "subscribers in the hub");
    for batch in live.chunks(50) {
        gateway.publish(batch.to_vec()).await.expect("publish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    for (i, via, policy, expected, reader) in subscribers {
        let received = reader.await.expect("subscriber");
        let context = format!("subscriber {i} ({via:?}, {policy:?})");
        let got = per_partition(&received.events);
        let want = per_partition(&expected);
        match policy {
            SlowClientPolicy::Gap | SlowClientPolicy::Disconnect => {
                assert_eq!(got, want, "{context}: exactly its events, in order");
                assert_eq!(received.events.len(), expected.len(), "{context}");
            }
            _ => {
                for (partition, offsets) in &got {
                    let all = want.get(partition).map(Vec::as_slice).unwrap_or_default();
                    assert!(
                        is_subsequence(offsets, all),
                        "{context}: {partition:?} got {offsets:?} of {all:?}"
                    );
                }
                assert_eq!(
                    last_per_key(&received.events),
                    last_per_key(&expected),
                    "{context}: the newest event of every key"
                );
                if policy == SlowClientPolicy::Sample {
                    let ticks = received.span.as_millis() as usize / SAMPLE_MS as usize + 1;
                    let mut per_key: HashMap<&str, usize> = HashMap::new();
                    for (_, _, _, key) in &received.events {
                        *per_key.entry(key).or_default() += 1;
                    }
                    for (key, count) in per_key {
                        assert!(
                            count <= ticks,
                            "{context}: {count} events of {key} in {:?}",
                            received.span
                        );
                    }
                }
            }
        }
    }
    gateway.stop().await;
}

/// A WebSocket with a tiny receive buffer, so that not reading it stalls the gateway quickly.
async fn stalled_websocket(
    address: std::net::SocketAddr,
    request: &SubscribeRequest,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let tcp = socket.connect(address).await.expect("connect");
    let ws_request = format!("ws://{address}/ws")
        .into_client_request()
        .expect("request");
    let (mut ws, _) = tokio_tungstenite::client_async(ws_request, tcp)
        .await
        .expect("upgrade");
    ws.send(Message::text(serde_json::to_string(request).expect("json")))
        .await
        .expect("send");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_every_policy_a_subscriber_that_never_reads_slows_nobody_and_holds_bounded_memory() {
    const BUFFER_BYTES: f64 = 131_072.0;
    for (policy, name, action) in [
        (SlowClientPolicy::Gap, "gap", "gap"),
        (SlowClientPolicy::Disconnect, "disconnect", "disconnect"),
        (SlowClientPolicy::LatestPerKey, "latest_per_key", "conflate"),
        (SlowClientPolicy::Sample, "sample", "conflate"),
    ] {
        let gateway = Gateway::start(&[
            "--subscriber-buffer",
            "256",
            "--subscriber-buffer-bytes",
            "131072",
        ])
        .await;
        let stalled_request = SubscribeRequest {
            topics: vec!["stock_trades".into()],
            slow_client_policy: policy as i32,
            ..Default::default()
        };
        let mut stalled_ws = stalled_websocket(gateway.address, &stalled_request).await;
        // A gRPC stream on its own connection, never read: HTTP/2 flow control stalls it.
        let own_connection = Channel::from_shared(gateway.url())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut stalled_grpc = StreamServiceClient::new(own_connection)
            .subscribe(stalled_request.clone())
            .await
            .expect("subscribe")
            .into_inner();
        let mut reader = StreamServiceClient::connect(gateway.url())
            .await
            .expect("connect")
            .subscribe(SubscribeRequest {
                topics: vec!["stock_trades".into()],
                ..Default::default()
            })
            .await
            .expect("subscribe")
            .into_inner();
        gateway
            .wait_for_metric(r#"gateway_subscribers{transport="websocket"}"#, 1.0)
            .await;

        // 12 000 events of five keys (large, so socket buffers fill), 200 at a time; the reader
        // keeps up and gets every one, in order; ingest never waits.
        let symbols: Vec<String> = (0..5).map(|k| format!("{k}").repeat(200)).collect();
        for start in (0..12_000).step_by(200) {
            let batch = (start..start + 200)
                .map(|o| trade(o, &symbols[o as usize % 5]))
                .collect();
            tokio::time::timeout(WITHIN, gateway.publish(batch))
                .await
                .expect("ingest never waits for a subscriber")
                .expect("publish");
            let mut expected = start;
            while expected < start + 200 {
                let response = tokio::time::timeout(WITHIN, reader.message())
                    .await
                    .expect("the reader is not slowed")
                    .expect("ok")
                    .expect("open");
                match response.kind {
                    Some(Kind::Event(event)) => {
                        assert_eq!(event.offset, expected, "{name}: the reader misses nothing");
                        expected += 1;
                    }
                    Some(Kind::Heartbeat(_)) => {}
                    other => panic!("{name}: the reader got {other:?}"),
                }
            }
        }

        let metrics = gateway.metrics().await;
        let queued = metric(&metrics, "gateway_queued_bytes");
        assert!(
            queued <= 3.0 * BUFFER_BYTES,
            "{name}: {queued} bytes queued for three subscribers"
        );
        let acted = metric(
            &metrics,
            &format!(r#"gateway_slow_client_actions_total{{policy="{name}",action="{action}"}}"#),
        );
        assert!(acted >= 1.0, "{name}: the policy never acted\n{metrics}");

        // What the stalled ones see when they read at last.
        match policy {
            SlowClientPolicy::Disconnect => {
                let status = loop {
                    match tokio::time::timeout(WITHIN, stalled_grpc.message())
                        .await
                        .expect("in time")
                    {
                        Ok(Some(_)) => continue,
                        Ok(None) => panic!("ended without a status"),
                        Err(status) => break status,
                    }
                };
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert_eq!(close_code(&mut stalled_ws).await, 1008);
            }
            SlowClientPolicy::Gap => {
                let gap = loop {
                    let response = tokio::time::timeout(WITHIN, stalled_grpc.message())
                        .await
                        .expect("in time")
                        .expect("ok")
                        .expect("open");
                    if let Some(Kind::Gap(gap)) = response.kind {
                        break gap;
                    }
                };
                assert_eq!(gap.reason, "subscriber fell behind");
                let range = &gap.missed[0];
                assert!(range.last_offset >= range.first_offset);
                assert!(gap.missed_events >= 256, "{gap:?}");
            }
            _ => {}
        }
        drop((stalled_ws, stalled_grpc, reader));
        gateway.stop().await;
    }
}
