//! The other ways to subscribe, each with a real client over loopback: CEL filter expressions
//! over gRPC, Server-Sent Events read by a plain HTTP client (resume tokens, `Last-Event-ID`),
//! and the binary WebSocket subprotocol (protobuf frames). No Kafka: events go in through
//! `IngestService.Publish`, and resumes are served from the gateway's memory.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message as _;
use streamweaver_proto::v1::{
    Event, LogLevel, SubscribeRequest, SubscribeResponse, event::Payload,
    stream_service_client::StreamServiceClient, subscribe_response::Kind,
};
use support::*;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use tonic::Code;

fn priced(offset: i64, symbol: &str, price: f64) -> Event {
    let mut event = trade(offset, symbol);
    if let Some(Payload::StockTrade(trade)) = &mut event.payload {
        trade.price = price;
    }
    event
}

#[tokio::test]
async fn grpc_filter_expressions_are_checked_then_applied() {
    let gateway = Gateway::start(&[]).await;
    let mut client = StreamServiceClient::connect(gateway.url())
        .await
        .expect("connect");
    let status = client
        .subscribe(SubscribeRequest {
            filter: "stock_trade.prise > 500.0".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("line 1, column 12") && status.message().contains("price"),
        "{}",
        status.message()
    );
    assert_eq!(
        gateway
            .metric(r#"gateway_refused_total{endpoint="grpc",reason="filter_invalid"}"#)
            .await,
        1.0
    );

    let mut stream = client
        .subscribe(SubscribeRequest {
            filter: r#"stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA", "META"]"#.into(),
            ..Default::default()
        })
        .await
        .expect("subscribed")
        .into_inner();
    // The subscription is live once the call returns; publish after it.
    gateway
        .publish(vec![
            priced(0, "NVDA", 400.0),
            priced(1, "AAPL", 900.0),
            log(0, LogLevel::Error),
            priced(2, "META", 612.5),
            priced(3, "NVDA", 501.0),
        ])
        .await
        .expect("publish");
    let mut offsets = Vec::new();
    while offsets.len() < 2 {
        let response = tokio::time::timeout(WITHIN, stream.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        if let Some(Kind::Event(event)) = response.kind {
            offsets.push(event.offset);
        }
    }
    assert_eq!(offsets, [2, 3]);
}

/// One Server-Sent Events message.
#[derive(Debug)]
struct SseMessage {
    id: String,
    response: SubscribeResponse,
}

/// A `/sse` response read message by message.
struct EventStream {
    body: Incoming,
    buffer: String,
}

impl EventStream {
    async fn next(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(value.to_owned());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    let response = serde_json::from_str(&data).expect("proto3 JSON");
                    return Some(SseMessage { id, response });
                }
                continue;
            }
            let frame = tokio::time::timeout(WITHIN, self.body.frame())
                .await
                .expect("a chunk in time")?
                .expect("ok");
            if let Ok(data) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }

    /// The next event's message (heartbeats skipped).
    async fn next_event(&mut self) -> (String, Event) {
        loop {
            let message = self.next().await.expect("the stream goes on");
            if let Some(Kind::Event(event)) = message.response.kind {
                return (message.id, event);
            }
        }
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn http() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(
    client: &HttpClient,
    gateway: &Gateway,
    query: &str,
    headers: &[(&str, &str)],
) -> hyper::Response<Incoming> {
    let mut request = hyper::Request::get(format!("{}/sse?{query}", gateway.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client
        .request(request.body(Empty::new()).expect("request"))
        .await
        .expect("GET /sse")
}

async fn body_text(response: hyper::Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn sse_streams_with_resume_tokens_and_resumes_from_last_event_id() {
    let gateway = Gateway::start(&[]).await;
    let client = http();
    let filter = "log_entry.level%20%3E%3D%20LOG_LEVEL_WARN";
    let response = get(
        &client,
        &gateway,
        &format!("topics=server_logs&filter={filter}"),
        &[("origin", ORIGIN)],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let mut stream = EventStream {
        body: response.into_body(),
        buffer: String::new(),
    };
    // The subscription is live once the headers are in.
    gateway
        .publish(vec![
            log_at(0, 0, "api", LogLevel::Info),
            log_at(0, 1, "api", LogLevel::Warn),
            log_at(1, 0, "api", LogLevel::Error),
            log_at(0, 2, "api", LogLevel::Debug),
            log_at(0, 3, "api", LogLevel::Error),
        ])
        .await
        .expect("publish");
    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 3 {
        let (id, event) = stream.next_event().await;
        seen.push((event.partition, event.offset));
        last_id = id;
    }
    assert_eq!(seen, [(0, 1), (1, 0), (0, 3)]);
    drop(stream);

    // Gone for a while: these arrive meanwhile.
    gateway
        .publish(vec![
            log_at(0, 4, "api", LogLevel::Warn),
            log_at(1, 1, "api", LogLevel::Info),
            log_at(1, 2, "api", LogLevel::Error),
        ])
        .await
        .expect("publish");
    // Back with the last id, as a browser's EventSource comes back: exactly what was missed.
    let response = get(
        &client,
        &gateway,
        &format!("topics=server_logs&filter={filter}"),
        &[("last-event-id", &last_id)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = EventStream {
        body: response.into_body(),
        buffer: String::new(),
    };
    let resumed = [stream.next_event().await.1, stream.next_event().await.1];
    let resumed: Vec<_> = resumed.iter().map(|e| (e.partition, e.offset)).collect();
    assert_eq!(resumed, [(0, 4), (1, 2)]);
    gateway
        .publish(vec![log_at(0, 5, "api", LogLevel::Error)])
        .await
        .expect("publish");
    assert_eq!(
        stream.next_event().await.1.offset,
        5,
        "then live, nothing twice"
    );
}

#[tokio::test]
async fn sse_refuses_bad_requests_saying_why() {
    let gateway = Gateway::start(&[]).await;
    let client = http();
    for (query, headers, status, expected) in [
        ("topicz=stock_trades", vec![], 400, "unknown parameter"),
        (
            "filter=stock_trade.prise%20%3E%201.0",
            vec![],
            400,
            "did you mean price?",
        ),
        ("topics=stonks", vec![], 400, "unknown topic"),
        (
            "",
            vec![("last-event-id", "not a token!")],
            400,
            "resume token",
        ),
        (
            "",
            vec![("origin", "http://evil.example")],
            403,
            "not allowed",
        ),
    ] {
        let response = get(&client, &gateway, query, &headers).await;
        assert_eq!(response.status(), status, "{query} {headers:?}");
        let text = body_text(response).await;
        assert!(text.contains(expected), "{query}: {text}");
    }
    assert_eq!(
        gateway
            .metric(r#"gateway_refused_total{endpoint="sse",reason="bad_resume_token"}"#)
            .await,
        1.0
    );
}

/// With subscriber JWTs required, `/sse` takes the token as `authorization: Bearer` or as the
/// first-party cookie, never in the URL; its topics narrow or refuse the subscription, and the
/// stream ends with UNAUTHENTICATED when it expires.
#[tokio::test]
async fn sse_takes_tokens_in_a_header_or_a_cookie_never_the_url() {
    let gateway = Gateway::start(&[
        "--subscribe-jwt-secret",
        JWT_SECRET,
        "--subscribe-jwt-leeway",
        "0s",
    ])
    .await;
    let client = http();
    let token = jwt(3600, serde_json::json!({"topics": ["server_logs"]}));
    let response = get(&client, &gateway, "topics=server_logs", &[]).await;
    assert_eq!(response.status(), 401);
    assert!(body_text(response).await.contains("authorization: Bearer"));
    // Never in the URL, where logs keep it.
    let response = get(
        &client,
        &gateway,
        &format!("topics=server_logs&token={token}"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        body_text(response)
            .await
            .contains("not accepted in the URL")
    );
    let bearer = format!("Bearer {token}");
    let response = get(
        &client,
        &gateway,
        "topics=stock_trades",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(response.status(), 403, "a topic the token does not allow");
    let response = get(
        &client,
        &gateway,
        "topics=server_logs",
        &[("authorization", "Bearer not-a-jwt")],
    )
    .await;
    assert_eq!(response.status(), 401);

    let cookie = format!("theme=dark; streamweaver_token={token}");
    let response = get(&client, &gateway, "", &[("cookie", &cookie)]).await;
    assert_eq!(response.status(), 200);
    let mut stream = EventStream {
        body: response.into_body(),
        buffer: String::new(),
    };
    gateway
        .publish(vec![log_at(0, 0, "api", LogLevel::Info), trade(0, "NVDA")])
        .await
        .expect("publish");
    let (_, event) = stream.next_event().await;
    assert_eq!(
        event.topic, "server_logs",
        "every topic, narrowed to the token's"
    );

    // A token that expires ends its stream with UNAUTHENTICATED.
    let short = format!("Bearer {}", jwt(2, serde_json::json!({})));
    let response = get(
        &client,
        &gateway,
        "topics=server_logs",
        &[("authorization", &short)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = EventStream {
        body: response.into_body(),
        buffer: String::new(),
    };
    let code = loop {
        match stream.next().await.map(|message| message.response.kind) {
            Some(Some(Kind::Error(error))) => break error.code,
            Some(_) => continue,
            None => panic!("the stream ended without saying why"),
        }
    };
    assert_eq!(code, "UNAUTHENTICATED");
    assert!(stream.next().await.is_none(), "the stream ends");
    assert_refused(
        &gateway.metrics().await,
        "sse",
        &[
            "unauthenticated",
            "token_in_url",
            "topic_not_allowed",
            "invalid_token",
            "token_expired",
        ],
    );
}

type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn binary_websocket(gateway: &Gateway) -> WebSocket {
    let mut request = format!("ws://{}/ws", gateway.address)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "streamweaver.v1.proto".parse().expect("header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "streamweaver.v1.proto"
    );
    socket
}

/// The next response of a binary socket, decoded as protobuf (heartbeats skipped).
async fn next_binary(socket: &mut WebSocket) -> SubscribeResponse {
    loop {
        let frame = tokio::time::timeout(WITHIN, socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("ok");
        match frame {
            Message::Binary(bytes) => {
                let response = SubscribeResponse::decode(bytes).expect("protobuf");
                if !matches!(response.kind, Some(Kind::Heartbeat(_))) {
                    return response;
                }
            }
            Message::Text(text) => panic!("a text frame on the binary subprotocol: {text}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn binary_websocket_speaks_protobuf_both_ways() {
    let gateway = Gateway::start(&[]).await;
    let mut socket = binary_websocket(&gateway).await;
    let request = SubscribeRequest {
        topics: vec!["stock_trades".into()],
        filter: "stock_trade.price > 500.0".into(),
        ..Default::default()
    };
    socket
        .send(Message::binary(request.encode_to_vec()))
        .await
        .expect("send");
    // Publish until the subscription (applied asynchronously) takes the probes.
    let mut offset = 0;
    loop {
        gateway
            .publish(vec![priced(offset, "NVDA", 600.0)])
            .await
            .expect("publish");
        offset += 1;
        if let Ok(response) =
            tokio::time::timeout(Duration::from_millis(100), next_binary(&mut socket)).await
        {
            assert!(
                matches!(response.kind, Some(Kind::Event(_))),
                "{response:?}"
            );
            break;
        }
    }
    gateway
        .publish(vec![
            priced(offset, "NVDA", 100.0),
            priced(offset + 1, "META", 700.0),
        ])
        .await
        .expect("publish");
    match next_binary(&mut socket).await.kind {
        Some(Kind::Event(event)) => assert_eq!(event.offset, offset + 1),
        other => panic!("expected an event, got {other:?}"),
    }

    // Bad requests get a binary error response; the socket stays open.
    for (frame, expected) in [
        (Message::text("{}"), "send a SubscribeRequest as protobuf"),
        (
            Message::binary(vec![0xff, 0xff, 0xff]),
            "malformed SubscribeRequest",
        ),
        (
            Message::binary(
                SubscribeRequest {
                    filter: "offset >".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            "filter syntax error at line 1",
        ),
    ] {
        socket.send(frame).await.expect("send");
        match next_binary(&mut socket).await.kind {
            Some(Kind::Error(error)) => {
                assert_eq!(error.code, "INVALID_ARGUMENT");
                assert!(error.message.contains(expected), "{}", error.message);
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// What a client spends to take in events from each WebSocket form: a Rust client on a thread
/// of its own, decoding every frame into a `SubscribeResponse`; its thread's CPU time per event.
/// (Decoding alone, without sockets, is `make bench`'s part `costs`.) Run with `cargo test -p gateway --release --test clients -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn client_cost_binary_against_json() {
    const EVENTS: i64 = 20_000;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let gateway = runtime.block_on(Gateway::start(&["--subscriber-buffer", "65536"]));
    let address = gateway.address;
    let forms = [
        ("JSON, one text frame per event", None),
        ("JSON, batched frames", Some("streamweaver.v1.batch")),
        (
            "protobuf, one binary frame per event",
            Some("streamweaver.v1.proto"),
        ),
    ];
    let mut offset = 0;
    for (name, protocol) in forms {
        let (ready, subscribed) = std::sync::mpsc::channel();
        let client = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut request = format!("ws://{address}/ws")
                    .into_client_request()
                    .expect("request");
                if let Some(protocol) = protocol {
                    request
                        .headers_mut()
                        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
                }
                let (mut socket, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .expect("connect");
                let subscribe = SubscribeRequest {
                    topics: vec!["stock_trades".into()],
                    ..Default::default()
                };
                let frame = if protocol == Some("streamweaver.v1.proto") {
                    Message::binary(subscribe.encode_to_vec())
                } else {
                    Message::text(serde_json::to_string(&subscribe).expect("json"))
                };
                socket.send(frame).await.expect("send");
                tokio::time::sleep(Duration::from_millis(300)).await;
                ready.send(()).expect("ready");
                let start = thread_cpu_ns();
                let mut events = 0;
                while events < EVENTS {
                    let frame = socket.next().await.expect("open").expect("ok");
                    let responses: Vec<SubscribeResponse> = match frame {
                        Message::Binary(bytes) => {
                            vec![SubscribeResponse::decode(bytes).expect("protobuf")]
                        }
                        Message::Text(text) if text.starts_with('[') => {
                            serde_json::from_str(&text).expect("json")
                        }
                        Message::Text(text) => vec![serde_json::from_str(&text).expect("json")],
                        _ => continue,
                    };
                    events += responses
                        .iter()
                        .filter(|r| matches!(r.kind, Some(Kind::Event(_))))
                        .count() as i64;
                }
                (thread_cpu_ns() - start) as f64 / EVENTS as f64
            })
        });
        subscribed.recv().expect("subscribed");
        runtime.block_on(async {
            for chunk in 0..EVENTS / 500 {
                let events = (0..500)
                    .map(|i| priced(offset + chunk * 500 + i, "NVDA", 100.0 + i as f64))
                    .collect();
                gateway.publish(events).await.expect("publish");
            }
        });
        offset += EVENTS;
        let per_event = client.join().expect("client");
        println!(
            "{:>7.2} µs client CPU per event  {name}",
            per_event / 1000.0
        );
    }
    runtime.block_on(gateway.stop());
}

/// CPU time this thread has used, from the scheduler's own count.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
