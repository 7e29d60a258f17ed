//! The first part of `make bench`: consumer → gateway → WebSocket subscriber with no Kafka, the
//! same events through StreamWeaver's client-streaming `Publish` (batched) and through the
//! original Python design — one HTTP POST of JSON per message into a server that broadcasts to
//! WebSockets — both in Rust on this machine, so that the design is what differs. Throughput flat
//! out, and latency at a steady rate.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use axum::{
    Router,
    extract::{State, WebSocketUpgrade, ws::Message as AxumMessage},
    routing::{get, post},
};
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use streamweaver_e2e::{PUBLISH_TOKEN, gateway_args, start_gateway};
use streamweaver_proto::{
    time,
    v1::{
        Event, PublishRequest, event::Payload, ingest_service_client::IngestServiceClient,
        subscribe_response::Kind,
    },
};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tonic::{Request, metadata::MetadataValue};

use crate::stats::Latencies;

/// One side's figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Figures {
    /// Events per second delivered to the subscriber.
    pub events_per_second: f64,
    /// Send → subscriber.
    pub latency: Latencies,
}

/// StreamWeaver beside the original Python design, flat out and at a steady rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesignFigures {
    /// Events per flat-out run.
    pub events: usize,
    /// The steady rate, events per second.
    pub rate: f64,
    /// StreamWeaver, flat out.
    pub ours_flat_out: Figures,
    /// The original design, flat out.
    pub original_flat_out: Figures,
    /// StreamWeaver at the steady rate.
    pub ours_steady: Figures,
    /// The original design at the steady rate.
    pub original_steady: Figures,
}

fn events(count: usize) -> Vec<Event> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut source = stock_producer::StockTrades::default();
    (0..count)
        .map(|offset| {
            let trade = source.next_trade(&mut rng, SystemTime::now());
            Event {
                topic: "stock_trades".into(),
                key: trade.symbol.clone(),
                partition: 0,
                offset: offset as i64,
                produced_at: None,
                payload: Some(Payload::StockTrade(trade)),
            }
        })
        .collect()
}

fn stamped(mut event: Event) -> Event {
    event.produced_at = Some(time::timestamp(SystemTime::now()));
    event
}

/// Reads `count` events from a WebSocket of proto3 JSON `SubscribeResponse`s, with latencies.
async fn read_ws(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    while samples.len() < count {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("WebSocket subscriber stalled")?
            .context("WebSocket closed")??;
        if let Message::Text(text) = frame {
            let response: streamweaver_proto::v1::SubscribeResponse = serde_json::from_str(&text)?;
            match response.kind {
                Some(Kind::Event(event)) => {
                    let sent = event.produced_at.as_ref().context("timestamp")?;
                    samples.push(time::age(sent, SystemTime::now()).unwrap_or_default());
                }
                Some(Kind::Gap(gap)) => anyhow::bail!("subscriber fell behind: {gap:?}"),
                _ => {}
            }
        }
    }
    Ok(samples)
}

async fn ws_connect(
    url: String,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

/// When each event is due: all at once (`None`, for throughput) or at `rate` per second.
fn due(index: usize, rate: Option<f64>, started: Instant) -> Option<Instant> {
    rate.map(|rate| started + Duration::from_secs_f64(index as f64 / rate))
}

/// StreamWeaver: one client-streaming Publish call (flat out: batches of 500; paced: each event
/// in its own message as it is due), a WebSocket subscriber.
async fn streamweaver(all: &[Event], rate: Option<f64>) -> anyhow::Result<Figures> {
    let mut args = gateway_args("127.0.0.1:0".parse()?);
    args.subscriber_buffer = 1 << 20;
    let (address, gateway) = start_gateway(args).await?;
    let mut socket = ws_connect(format!("ws://{address}/ws")).await?;
    socket.send(Message::text("{}")).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reader = tokio::spawn(read_ws(socket, all.len()));

    let mut client = IngestServiceClient::connect(format!("http://{address}")).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let mut request = Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let bearer: MetadataValue<_> = format!("Bearer {PUBLISH_TOKEN}").parse()?;
    request.metadata_mut().insert("authorization", bearer);
    let call = tokio::spawn(async move { client.publish(request).await });
    let started = Instant::now();
    let batch = if rate.is_some() { 1 } else { 500 };
    for (index, chunk) in all.chunks(batch).enumerate() {
        if let Some(at) = due(index, rate, started) {
            tokio::time::sleep_until(at.into()).await;
        }
        let events = chunk.iter().cloned().map(stamped).collect();
        sender.send(PublishRequest { events }).await?;
    }
    drop(sender);
    let samples = reader.await??;
    let elapsed = started.elapsed();
    call.await??;
    gateway.stop().await?;
    Ok(Figures {
        events_per_second: all.len() as f64 / elapsed.as_secs_f64(),
        latency: Latencies::from_samples(samples),
    })
}

/// The original Python design: the consumer POSTs each message as JSON; the server broadcasts it to every
/// WebSocket client.
async fn original_design(all: &[Event], rate: Option<f64>) -> anyhow::Result<Figures> {
    let (sender, _) = broadcast::channel::<Arc<str>>(1 << 20);
    let app = Router::new()
        .route(
            "/",
            post(
                |State(tx): State<broadcast::Sender<Arc<str>>>, body: String| async move {
                    // The original design parsed the JSON body, then sent it to every client.
                    let event: Event = match serde_json::from_str(&body) {
                        Ok(event) => event,
                        Err(_) => return axum::http::StatusCode::BAD_REQUEST,
                    };
                    let frame = serde_json::json!({ "event": event }).to_string();
                    let _ = tx.send(Arc::from(frame));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .route(
            "/ws",
            get(
                |ws: WebSocketUpgrade, State(tx): State<broadcast::Sender<Arc<str>>>| async move {
                    ws.on_upgrade(move |mut socket| async move {
                        let mut rx = tx.subscribe();
                        while let Ok(frame) = rx.recv().await {
                            if socket
                                .send(AxumMessage::Text(frame.as_ref().into()))
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    })
                },
            ),
        )
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address: SocketAddr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let socket = ws_connect(format!("ws://{address}/ws")).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reader = tokio::spawn(read_ws(socket, all.len()));

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let started = Instant::now();
    for (index, event) in all.iter().enumerate() {
        if let Some(at) = due(index, rate, started) {
            tokio::time::sleep_until(at.into()).await;
        }
        let body = serde_json::to_vec(&stamped(event.clone()))?;
        let request = axum::http::Request::post(format!("http://{address}/"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body)))?;
        let response = client.request(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "POST failed: {}",
            response.status()
        );
    }
    let samples = reader.await??;
    let elapsed = started.elapsed();
    server.abort();
    Ok(Figures {
        events_per_second: all.len() as f64 / elapsed.as_secs_f64(),
        latency: Latencies::from_samples(samples),
    })
}

/// Runs both designs flat out over `events` events, then at `rate` for 5 s.
pub async fn run(events: usize, rate: f64) -> anyhow::Result<DesignFigures> {
    let all = self::events(events);
    let ours_flat_out = streamweaver(&all, None).await?;
    let original_flat_out = original_design(&all, None).await?;
    let paced = &all[..((rate * 5.0) as usize).min(all.len())];
    let ours_steady = streamweaver(paced, Some(rate)).await?;
    let original_steady = original_design(paced, Some(rate)).await?;
    Ok(DesignFigures {
        events,
        rate,
        ours_flat_out,
        original_flat_out,
        ours_steady,
        original_steady,
    })
}
