//! What the gateway's endpoint tests share: a gateway run in-process on a loopback port, a
//! publisher, `/metrics`, events, WebSocket helpers, and (in `pki`) a throwaway PKI and signed
//! tokens. No Kafka here: events go in through `IngestService.Publish` as the consumer sends
//! them.

#![allow(dead_code, unreachable_pub)]

mod pki;

#[allow(unused_imports)]
pub use pki::*;

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use gateway::GatewayArgs;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use streamweaver_proto::v1::{
    Event, LogEntry, LogLevel, PublishRequest, PublishResponse, SocialPost, StockTrade,
    SubscribeResponse, event::Payload, ingest_service_client::IngestServiceClient,
    subscribe_response::Kind,
};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_util::sync::CancellationToken;
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// The gateway's Publish secret in these tests.
pub const TOKEN: &str = "test-token";
/// A browser origin the gateway allows by default.
pub const ORIGIN: &str = "http://localhost:3000";
/// Every wait in these tests ends within this.
pub const WITHIN: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// A gateway serving on a loopback port until stopped.
pub struct Gateway {
    pub address: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), gateway::GatewayError>>,
}

impl Gateway {
    /// Starts one with these flags on top of a loopback port and the Publish secret; its Kafka
    /// is a closed port.
    pub async fn start(extra: &[&str]) -> Self {
        let mut argv = vec![
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--publish-token",
            TOKEN,
            "--kafka-bootstrap-servers",
            "127.0.0.1:1",
            "--replay-retry-for",
            "1s",
            "--offset-check-timeout",
            "500ms",
        ];
        argv.extend_from_slice(extra);
        let args = Cli::try_parse_from(argv).expect("valid flags").gateway;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gateway::run(listener, args, shutdown.clone()));
        Self {
            address,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A plaintext gRPC channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// A plaintext gRPC channel that connects on first use.
    pub fn channel_lazy(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect_lazy()
    }

    /// Publishes over plaintext with the secret.
    pub async fn publish(&self, events: Vec<Event>) -> Result<PublishResponse, tonic::Status> {
        publish(self.channel().await, events).await
    }

    /// `/metrics`, over plaintext.
    pub async fn metrics(&self) -> String {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let response = tokio::time::timeout(
            WITHIN,
            client.get(format!("{}/metrics", self.url()).parse().expect("uri")),
        )
        .await
        .expect("in time")
        .expect("GET /metrics");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, line: &str) -> f64 {
        metric(&self.metrics().await, line)
    }

    /// Waits until `line` reaches at least `value`.
    pub async fn wait_for_metric(&self, line: &str, value: f64) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let now = self.metric(line).await;
            if now >= value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{line} is {now}, not {value}, after {WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks the gateway to stop.
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Stops it and checks it stopped cleanly, in time.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stops in time")
            .expect("joins")
            .expect("clean exit");
    }
}

/// Publishes `events` on `channel` with the secret.
pub async fn publish(
    channel: Channel,
    events: Vec<Event>,
) -> Result<PublishResponse, tonic::Status> {
    let mut client = IngestServiceClient::new(channel);
    let mut request = Request::new(futures::stream::iter([PublishRequest { events }]));
    let bearer: MetadataValue<_> = format!("Bearer {TOKEN}").parse().expect("ascii");
    request.metadata_mut().insert("authorization", bearer);
    client
        .publish(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The value of one series in Prometheus text (0 when absent).
pub fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// Asserts `gateway_refused_total{endpoint,reason}` counted at least one of each `reasons`.
pub fn assert_refused(metrics: &str, endpoint: &str, reasons: &[&str]) {
    for reason in reasons {
        let series = format!(r#"gateway_refused_total{{endpoint="{endpoint}",reason="{reason}"}}"#);
        assert!(metric(metrics, &series) >= 1.0, "no {series} in\n{metrics}");
    }
}

/// Reads a WebSocket until its close frame; returns the close code.
pub async fn close_code<S>(socket: &mut S) -> u16
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(WITHIN, futures::StreamExt::next(socket))
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.expect("a close frame").code.into(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub fn trade(offset: i64, symbol: &str) -> Event {
    trade_at(0, offset, symbol)
}

pub fn trade_at(partition: i32, offset: i64, symbol: &str) -> Event {
    Event {
        topic: "stock_trades".into(),
        key: symbol.into(),
        partition,
        offset,
        payload: Some(Payload::StockTrade(StockTrade {
            symbol: symbol.into(),
            price: 10.0,
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn log(offset: i64, level: LogLevel) -> Event {
    log_at(0, offset, "auth", level)
}

pub fn log_at(partition: i32, offset: i64, service: &str, level: LogLevel) -> Event {
    Event {
        topic: "server_logs".into(),
        key: service.into(),
        partition,
        offset,
        payload: Some(Payload::LogEntry(LogEntry {
            service: service.into(),
            level: level.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn post_at(partition: i32, offset: i64, author: &str, hashtags: &[&str]) -> Event {
    Event {
        topic: "social_feed".into(),
        key: author.into(),
        partition,
        offset,
        payload: Some(Payload::SocialPost(SocialPost {
            author: author.into(),
            hashtags: hashtags.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The next response on a gRPC stream that is not a heartbeat (one comes first, at once), or
/// how the stream ended.
pub async fn next_grpc(
    stream: &mut tonic::Streaming<SubscribeResponse>,
) -> Result<SubscribeResponse, tonic::Status> {
    tokio::time::timeout(WITHIN, async {
        loop {
            let response = stream.message().await?.expect("a message");
            if !matches!(response.kind, Some(Kind::Heartbeat(_))) {
                return Ok(response);
            }
        }
    })
    .await
    .expect("in time")
}

pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws` (with `query`, e.g. `?token=…`) offering `protocols`.
pub async fn websocket(
    gateway: &Gateway,
    query: &str,
    protocols: &[&str],
) -> Result<(WebSocket, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = format!("ws://{}/ws{query}", gateway.address).into_client_request()?;
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.join(", ").parse().expect("header"),
        );
    }
    tokio::time::timeout(WITHIN, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
}

/// The next frame that is not a heartbeat: a response, or the close frame's code and reason.
pub async fn next_frame(socket: &mut WebSocket) -> Result<SubscribeResponse, (u16, String)> {
    loop {
        let frame = tokio::time::timeout(WITHIN, socket.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let response: SubscribeResponse =
                    serde_json::from_str(&text).expect("proto3 JSON SubscribeResponse");
                if !matches!(response.kind, Some(Kind::Heartbeat(_))) {
                    return Ok(response);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or((1005, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                }));
            }
            None | Some(Err(_)) => return Err((1006, "closed".into())),
            Some(Ok(_)) => {}
        }
    }
}

/// The next response that is not a heartbeat; the socket must stay open.
pub async fn next_response(socket: &mut WebSocket) -> SubscribeResponse {
    next_frame(socket).await.expect("open")
}

/// The next response, which must be an event.
pub async fn next_event(socket: &mut WebSocket) -> Event {
    match next_frame(socket).await {
        Ok(SubscribeResponse {
            kind: Some(Kind::Event(event)),
        }) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next response, which must be an error frame: its code and message.
pub async fn next_error(socket: &mut WebSocket) -> (String, String) {
    match next_frame(socket).await {
        Ok(SubscribeResponse {
            kind: Some(Kind::Error(error)),
        }) => (error.code, error.message),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

pub async fn send_json(socket: &mut WebSocket, json: &str) {
    socket.send(Message::text(json)).await.expect("send");
}

/// Publishes a probe event a time until `socket` receives one (its subscription is applied
/// asynchronously); returns the next offset to use.
pub async fn wait_subscribed(
    gateway: &Gateway,
    socket: &mut WebSocket,
    probe: impl Fn(i64) -> Event,
    from: i64,
) -> i64 {
    let mut offset = from;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription never took effect"
        );
        gateway.publish(vec![probe(offset)]).await.expect("publish");
        offset += 1;
        if let Ok(frame) =
            tokio::time::timeout(Duration::from_millis(100), next_frame(socket)).await
        {
            assert!(
                matches!(
                    frame,
                    Ok(SubscribeResponse {
                        kind: Some(Kind::Event(_))
                    })
                ),
                "{frame:?}"
            );
            return offset;
        }
    }
}
