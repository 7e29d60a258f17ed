//! What the gateway's endpoint tests share: a gateway started in-process on a free port, a
//! publisher, `/metrics`, and events to publish. No Kafka here: events go in through
//! `IngestService.Publish` as the consumer sends them.

#![allow(dead_code, unreachable_pub)]

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use gateway::GatewayArgs;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use streamweaver_proto::v1::{
    Event, LogEntry, LogLevel, PublishRequest, PublishResponse, SocialPost, StockTrade,
    event::Payload, ingest_service_client::IngestServiceClient,
};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use tonic::{Request, metadata::MetadataValue};

pub const TOKEN: &str = "test-token";
pub const ORIGIN: &str = "http://localhost:3000";
pub const WITHIN: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// A gateway running in this process.
pub struct Gateway {
    pub address: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), gateway::GatewayError>>,
}

impl Gateway {
    /// Starts a gateway with the default flags plus `extra`; its Kafka is a closed port.
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
        let args = Cli::parse_from(argv).gateway;
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

    pub async fn publish(&self, events: Vec<Event>) -> Result<PublishResponse, tonic::Status> {
        let mut client = IngestServiceClient::connect(self.url())
            .await
            .expect("connect");
        let mut request = Request::new(futures::stream::iter([PublishRequest { events }]));
        let bearer: MetadataValue<_> = format!("Bearer {TOKEN}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", bearer);
        client
            .publish(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn metrics(&self) -> String {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let response = client
            .get(format!("{}/metrics", self.url()).parse().expect("uri"))
            .await
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
        metric_in(&self.metrics().await, line)
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

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WITHIN, self.task)
            .await
            .expect("stops in time")
            .expect("joins")
            .expect("clean exit");
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

/// The value of `line` in a Prometheus text exposition, 0 when absent.
pub fn metric_in(metrics: &str, line: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
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
