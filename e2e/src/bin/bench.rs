//! `make bench`: how fast events cross StreamWeaver, side by side with the seed's design.
//!
//! 1. Consumer → gateway → subscribers, no Kafka: the same events through StreamWeaver's
//!    client-streaming `Publish` (batched) and through the seed's design — one HTTP POST of JSON
//!    per message into a server that broadcasts to WebSockets — both in Rust on this machine, so
//!    the design is what differs. Throughput and latency to a WebSocket subscriber, as ratios.
//! 2. The whole pipeline on the embedded broker: producer → Kafka → consumer → gateway → gRPC
//!    subscriber, latency at a steady rate and the highest rate sustained (after a 2 s warm-up).

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
use clap::Parser;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use rand::SeedableRng;
use streamweaver_e2e::*;
use streamweaver_proto::{
    time,
    v1::{
        Event, PublishRequest, SubscribeRequest, event::Payload,
        ingest_service_client::IngestServiceClient, subscribe_response::Kind,
    },
};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tonic::{Request, metadata::MetadataValue};

/// Benchmarks StreamWeaver against the seed's HTTP-POST-per-message design.
#[derive(Parser)]
struct Args {
    /// Events per run in part 1.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Steady rate for the pipeline latency run, events per second.
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// Skip part 2 (needs the tansu broker).
    #[arg(long)]
    skip_kafka: bool,
}

struct Figures {
    events_per_second: f64,
    latency: Latencies,
}

#[derive(Clone, Copy)]
struct Latencies {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

fn latencies(mut samples: Vec<Duration>) -> Latencies {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Latencies {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    }
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
        latency: latencies(samples),
    })
}

/// The seed's design: the consumer POSTs each message as JSON; the server broadcasts it to every
/// WebSocket client.
async fn seed_design(all: &[Event], rate: Option<f64>) -> anyhow::Result<Figures> {
    let (sender, _) = broadcast::channel::<Arc<str>>(1 << 20);
    let app = Router::new()
        .route(
            "/",
            post(
                |State(tx): State<broadcast::Sender<Arc<str>>>, body: String| async move {
                    // The seed parsed the JSON body, then sent it to every client.
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
        latency: latencies(samples),
    })
}

/// Producer → Kafka → consumer → gateway → gRPC subscriber, `count` trades at `rate`.
async fn pipeline(broker: &Broker, rate: f64, count: u64) -> anyhow::Result<Figures> {
    let mut args = gateway_args("127.0.0.1:0".parse()?);
    args.subscriber_buffer = 1 << 20;
    let (address, gateway) = start_gateway(args).await?;
    let mut subscriber = Subscriber::connect(address, SubscribeRequest::default()).await?;
    let consumer = start_consumer(consumer_args(broker, address));
    // The first 2 s (at most 20 000 events) are not measured: the consumer joins its group and the idempotent producer
    // gets its id (about half a second on tansu, during which its first events wait).
    let warm_up = (rate * 2.0).min(20_000.0) as u64;
    let mut producer_args = producer_args(broker, rate, warm_up + count);
    producer_args.seed = None;
    let producer = start_producer(producer_args, stock_producer::StockTrades::default());
    subscriber
        .events(warm_up as usize, Duration::from_secs(60))
        .await?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    while samples.len() < count as usize {
        for event in subscriber.events(1, Duration::from_secs(60)).await? {
            let sent = event.produced_at.as_ref().context("timestamp")?;
            samples.push(time::age(sent, SystemTime::now()).unwrap_or_default());
        }
    }
    let elapsed = started.elapsed();
    producer.finished().await?;
    consumer.stop().await?;
    gateway.stop().await?;
    Ok(Figures {
        events_per_second: count as f64 / elapsed.as_secs_f64(),
        latency: latencies(samples),
    })
}

fn row(name: &str, figures: &Figures) {
    println!(
        "  {name:<40} {:>8.0} events/s   p50 {:>9.2?}   p90 {:>9.2?}   p99 {:>9.2?}",
        figures.events_per_second, figures.latency.p50, figures.latency.p90, figures.latency.p99
    );
}

fn ratio(name: &str, ours: &Figures, seed: &Figures) {
    println!(
        "  {name}: throughput {:.1}x, p50 latency {:.2}x, p99 latency {:.2}x (StreamWeaver / seed)",
        ours.events_per_second / seed.events_per_second,
        ours.latency.p50.as_secs_f64() / seed.latency.p50.as_secs_f64().max(1e-9),
        ours.latency.p99.as_secs_f64() / seed.latency.p99.as_secs_f64().max(1e-9),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = events(args.events);
    println!("StreamWeaver bench, {} events a run", args.events);
    println!("1a. consumer → gateway → WebSocket subscriber, flat out (latency includes queueing)");
    let ours = streamweaver(&all, None).await?;
    row("StreamWeaver: client-streaming Publish", &ours);
    let seed = seed_design(&all, None).await?;
    row("seed design: HTTP POST per message", &seed);
    println!(
        "  ratio: throughput {:.1}x (StreamWeaver / seed)",
        ours.events_per_second / seed.events_per_second
    );

    let paced = &all[..((args.rate * 5.0) as usize).min(all.len())];
    println!(
        "1b. the same at a steady {} events/s for 5 s (latency = send → WebSocket subscriber)",
        args.rate
    );
    let ours = streamweaver(paced, Some(args.rate)).await?;
    row("StreamWeaver: client-streaming Publish", &ours);
    let seed = seed_design(paced, Some(args.rate)).await?;
    row("seed design: HTTP POST per message", &seed);
    ratio("ratio", &ours, &seed);

    if !args.skip_kafka {
        println!(
            "2. producer → Kafka (tansu) → consumer → gateway → gRPC subscriber (latency = producer timestamp → subscriber)"
        );
        let broker = Broker::start().await?;
        let steady = pipeline(&broker, args.rate, (args.rate * 10.0) as u64).await?;
        row(&format!("steady {} events/s for 10 s", args.rate), &steady);
        let broker = Broker::start().await?;
        let flat_out = pipeline(&broker, 1_000_000.0, 200_000).await?;
        row("flat out, 200 000 events", &flat_out);
    }
    Ok(())
}
