//! The load client: many subscribers in one process, multiplexed on one tokio runtime, each
//! counting every frame it gets, checking that each partition arrives in order with nothing
//! skipped unannounced, and timing each event from its `produced_at` to its arrival.
//!
//! It is its own process so that its CPU is its own: it reports what it used over the measured
//! window, next to what the server used. The benchmark drives it over standard input and output
//! with one JSON [`Command`] or [`ClientMessage`] per line.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use streamweaver_proto::v1::SubscribeRequest;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    sync::Semaphore,
};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::WebSocketConfig,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::{
    stats::Latencies,
    wire::{Item, JsonScanner, LightResponse, PARTITIONS, seq_of},
};

/// The WebSocket subprotocol that asks for JSON arrays of responses.
pub const BATCH_PROTOCOL: &str = "streamweaver.v1.batch";
/// Handshakes in flight at once while connecting, so the server's accept queue never overflows.
const CONNECTING_AT_ONCE: usize = 128;
/// Latency samples a subscriber keeps before adding them to the shared histogram.
const SAMPLES_PER_FLUSH: usize = 512;
/// Longest latency the histogram tells apart, in microseconds (two minutes).
const MAX_LATENCY_MICROS: u64 = 120_000_000;

/// How the load client subscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClientTransport {
    /// WebSocket, one response per text frame.
    Ws,
    /// WebSocket with the batched subprotocol: a JSON array of responses per frame.
    WsBatch,
    /// Native gRPC: server streams multiplexed over a few HTTP/2 connections.
    Grpc,
}

/// The load client's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "Subscribes many times to a StreamWeaver gateway (or the bare baseline) and measures what arrives; driven by `bench`."
)]
pub struct ClientArgs {
    /// The server: `host:port`.
    #[arg(long, env = "BENCH_CLIENT_SERVER")]
    pub server: std::net::SocketAddr,
    /// How to subscribe.
    #[arg(long, env = "BENCH_CLIENT_TRANSPORT", value_enum)]
    pub transport: ClientTransport,
    /// Subscribers to open.
    #[arg(long, env = "BENCH_CLIENT_SUBSCRIBERS")]
    pub subscribers: usize,
    /// The `SubscribeRequest`, in the proto3 JSON mapping.
    #[arg(long, env = "BENCH_CLIENT_REQUEST", default_value = "{}")]
    pub request: String,
    /// gRPC streams per HTTP/2 connection (the gateway allows 200 by default).
    #[arg(
        long,
        env = "BENCH_CLIENT_STREAMS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub streams_per_connection: usize,
}

/// What the benchmark tells the client, one JSON object per line on its standard input.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Count and time events `first..=last`; every subscriber should receive each of them.
    Measure {
        /// The first measured sequence number.
        first: u64,
        /// The last one: a subscriber that has seen it is done.
        last: u64,
    },
    /// Stop now and report.
    Stop,
}

/// What the client tells the benchmark, one JSON object per line on its standard output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Every subscriber has connected (or failed to).
    Connected {
        /// Subscriptions open.
        connected: usize,
        /// Subscriptions that could not be made.
        failed: usize,
        /// The first failure, if any.
        error: Option<String>,
        /// How long connecting took.
        seconds: f64,
    },
    /// Every open subscriber has received at least one event.
    Live,
    /// Every open subscriber has received the last measured event (or ended).
    Done,
    /// The figures; the client exits after this.
    Report(ClientReport),
}

impl ClientMessage {
    /// Every subscriber has had an event.
    pub fn is_live(&self) -> bool {
        matches!(self, ClientMessage::Live)
    }

    /// Every subscriber has the last measured event.
    pub fn is_done(&self) -> bool {
        matches!(self, ClientMessage::Done)
    }
}

/// What the subscribers saw over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientReport {
    /// Subscriptions open at the start.
    pub connected: usize,
    /// Subscriptions that ended before the client was told to stop.
    pub ended_early: usize,
    /// Measured events received, over all subscribers.
    pub deliveries: u64,
    /// Measured events that should have been received: subscribers × events.
    pub expected: u64,
    /// Measured events some subscriber never received.
    pub missing: u64,
    /// Gap notices received after measuring began.
    pub gaps: u64,
    /// Events those gap notices said were skipped.
    pub gap_missed: u64,
    /// Events that came again or out of order within their partition.
    pub out_of_order: u64,
    /// Events skipped within a partition with no gap notice: silent loss.
    pub unannounced_skips: u64,
    /// Frames (WebSocket) or messages (gRPC) received, measured or not.
    pub frames: u64,
    /// Payload bytes received, measured or not.
    pub bytes: u64,
    /// `produced_at` → arrival, over the measured events.
    pub latency: Latencies,
    /// When the last measured event arrived, in nanoseconds since the Unix epoch.
    pub last_delivery_unix_nanos: i64,
    /// CPU seconds the client used while measuring.
    pub cpu_seconds: f64,
    /// Wall seconds from the measure command to the report.
    pub wall_seconds: f64,
}

/// What every subscriber task shares.
struct Shared {
    /// The first measured sequence number; `u64::MAX` while warming up.
    first: AtomicU64,
    last: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
    live: AtomicUsize,
    done: AtomicUsize,
    latencies: Mutex<Histogram<u64>>,
}

impl Shared {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            first: AtomicU64::new(u64::MAX),
            last: AtomicU64::new(u64::MAX),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            live: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            latencies: Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)?),
        })
    }

    fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }
}

/// One subscriber's own counts, added up when it ends.
struct Tally {
    deliveries: u64,
    gaps: u64,
    gap_missed: u64,
    out_of_order: u64,
    unannounced_skips: u64,
    frames: u64,
    bytes: u64,
    last_delivery: i64,
    ended_early: bool,
    live: bool,
    done: bool,
    /// The last offset seen per partition slot (-1: none yet).
    last_offset: [i64; PARTITIONS],
    /// A gap notice came since the slot's last event: a jump forward is announced.
    after_gap: [bool; PARTITIONS],
    samples: Vec<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            deliveries: 0,
            gaps: 0,
            gap_missed: 0,
            out_of_order: 0,
            unannounced_skips: 0,
            frames: 0,
            bytes: 0,
            last_delivery: 0,
            ended_early: false,
            live: false,
            done: false,
            last_offset: [-1; PARTITIONS],
            after_gap: [false; PARTITIONS],
            samples: Vec::with_capacity(SAMPLES_PER_FLUSH),
        }
    }

    /// Counts one response that arrived at `now` (Unix nanoseconds).
    fn count(&mut self, item: Item, now: i64, shared: &Shared) {
        let first = shared.first.load(Ordering::Relaxed);
        match item {
            Item::Event {
                slot,
                offset,
                produced_at,
            } => {
                if !self.live {
                    self.live = true;
                    shared.live.fetch_add(1, Ordering::Relaxed);
                }
                let last_seen = self.last_offset[slot];
                if last_seen >= 0 {
                    if offset <= last_seen {
                        self.out_of_order += 1;
                    } else if offset > last_seen + 1 && !self.after_gap[slot] {
                        self.unannounced_skips += (offset - last_seen - 1) as u64;
                    }
                }
                self.after_gap[slot] = false;
                self.last_offset[slot] = offset.max(last_seen);
                if first == u64::MAX {
                    return;
                }
                let seq = seq_of(slot, offset);
                let last = shared.last.load(Ordering::Relaxed);
                if (first..=last).contains(&seq) {
                    self.deliveries += 1;
                    self.last_delivery = now;
                    let micros = (now - produced_at).max(1) as u64 / 1_000;
                    self.samples.push(micros.clamp(1, MAX_LATENCY_MICROS));
                    if self.samples.len() >= SAMPLES_PER_FLUSH {
                        self.flush(shared);
                    }
                }
                if seq >= last {
                    self.finish(shared);
                }
            }
            Item::Gap { missed } => {
                self.after_gap = [true; PARTITIONS];
                if first != u64::MAX {
                    self.gaps += 1;
                    self.gap_missed += missed;
                }
            }
            Item::Other => {}
        }
    }

    fn flush(&mut self, shared: &Shared) {
        let mut histogram = shared.latencies.lock().unwrap_or_else(|e| e.into_inner());
        for micros in self.samples.drain(..) {
            histogram.saturating_record(micros);
        }
    }

    /// A subscription that ended will never see another event: it stops being waited for.
    fn end_early(&mut self, shared: &Shared) {
        self.ended_early = true;
        if !self.live {
            self.live = true;
            shared.live.fetch_add(1, Ordering::Relaxed);
        }
        self.finish(shared);
    }

    fn finish(&mut self, shared: &Shared) {
        if !self.done {
            self.done = true;
            shared.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One open subscription.
enum Connection {
    Ws(WebSocket),
    Grpc(tonic::Streaming<LightResponse>),
}

/// Opens one WebSocket subscription.
async fn ws_connect(args: &ClientArgs, request: &str) -> anyhow::Result<WebSocket> {
    let tcp = tokio::net::TcpStream::connect(args.server).await?;
    tcp.set_nodelay(true)?;
    // Close with a reset: 10,000 sockets in TIME_WAIT would outlive the run.
    tcp.set_zero_linger()?;
    let mut handshake = format!("ws://{}/ws", args.server).into_client_request()?;
    if args.transport == ClientTransport::WsBatch {
        handshake.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static(BATCH_PROTOCOL),
        );
    }
    // Small buffers: 10,000 sockets at tungstenite's default 128 KiB would take over a gigabyte.
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(handshake, tcp, Some(config)).await?;
    socket.send(Message::text(request)).await?;
    Ok(socket)
}

/// Reads one WebSocket subscription until stopped.
async fn ws_read(mut socket: WebSocket, shared: &Shared, stop: &CancellationToken) -> Tally {
    let scanner = JsonScanner::default();
    let mut tally = Tally::new();
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break,
            frame = socket.next() => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                let now = unix_nanos_now();
                tally.frames += 1;
                tally.bytes += text.len() as u64;
                scanner.scan(text.as_bytes(), |item| tally.count(item, now, shared));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                tally.end_early(shared);
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    tally
}

/// Opens one gRPC subscription on `channel`.
async fn grpc_connect(
    channel: Channel,
    request: SubscribeRequest,
) -> anyhow::Result<tonic::Streaming<LightResponse>> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let path = http::uri::PathAndQuery::from_static("/streamweaver.v1.StreamService/Subscribe");
    let codec = tonic_prost::ProstCodec::<SubscribeRequest, LightResponse>::default();
    let response = grpc
        .server_streaming(tonic::Request::new(request), path, codec)
        .await?;
    Ok(response.into_inner())
}

/// Reads one gRPC subscription until stopped.
async fn grpc_read(
    mut stream: tonic::Streaming<LightResponse>,
    shared: &Shared,
    stop: &CancellationToken,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = stream.message() => message,
        };
        match message {
            Ok(Some(response)) => {
                tally.frames += 1;
                tally.bytes += prost::Message::encoded_len(&response) as u64;
                tally.count(response.item(), unix_nanos_now(), shared);
            }
            Ok(None) | Err(_) => {
                tally.end_early(shared);
                break;
            }
        }
    }
    tally
}

/// Runs the load client: connects, reports, follows commands, reports its figures.
pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    crate::process::raise_open_files_limit()?;
    let shared = Arc::new(Shared::new()?);
    let stop = CancellationToken::new();
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let started = Instant::now();
    let grpc_request: SubscribeRequest =
        serde_json::from_str(&args.request).context("--request is not a SubscribeRequest")?;
    let channels = match args.transport {
        ClientTransport::Grpc => {
            let count = args
                .subscribers
                .div_ceil(args.streams_per_connection.max(1));
            let endpoint = Endpoint::from_shared(format!("http://{}", args.server))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(10));
            let mut channels = Vec::with_capacity(count);
            for _ in 0..count {
                channels.push(endpoint.connect().await?);
            }
            channels
        }
        ClientTransport::Ws | ClientTransport::WsBatch => Vec::new(),
    };
    let args = Arc::new(args);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.subscribers {
        let (args, shared, stop, connecting) = (
            args.clone(),
            shared.clone(),
            stop.clone(),
            connecting.clone(),
        );
        let channel = channels.get(index % channels.len().max(1)).cloned();
        let grpc_request = grpc_request.clone();
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await;
            let connection = match channel {
                Some(channel) => grpc_connect(channel, grpc_request)
                    .await
                    .map(Connection::Grpc),
                None => ws_connect(&args, &args.request).await.map(Connection::Ws),
            };
            let connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    shared.fail(format!("{error:#}"));
                    return None;
                }
            };
            shared.connected.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            Some(match connection {
                Connection::Ws(socket) => ws_read(socket, &shared, &stop).await,
                Connection::Grpc(stream) => grpc_read(stream, &shared, &stop).await,
            })
        });
    }
    while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed)
        < args.subscribers
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    let error = shared
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    say(&ClientMessage::Connected {
        connected,
        failed: shared.failed.load(Ordering::Relaxed),
        error,
        seconds: started.elapsed().as_secs_f64(),
    })
    .await?;

    let mut commands = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut live_said = connected == 0;
    let mut measuring: Option<(u64, u64, Instant, f64)> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            line = commands.next_line() => {
                let command = match line? {
                    None => Command::Stop,
                    Some(line) => serde_json::from_str(&line).with_context(|| format!("bad command {line:?}"))?,
                };
                match command {
                    Command::Measure { first, last } => {
                        shared.last.store(last, Ordering::Relaxed);
                        shared.first.store(first, Ordering::Relaxed);
                        measuring = Some((first, last, Instant::now(), crate::process::own_cpu_seconds()?));
                    }
                    Command::Stop => break,
                }
            }
            _ = poll.tick() => {
                if !live_said && shared.live.load(Ordering::Relaxed) >= connected {
                    live_said = true;
                    say(&ClientMessage::Live).await?;
                }
                if measuring.is_some() && shared.done.load(Ordering::Relaxed) >= connected {
                    say(&ClientMessage::Done).await?;
                    break;
                }
            }
        }
    }
    stop.cancel();
    let mut report = ClientReport {
        connected,
        ..ClientReport::default()
    };
    let mut tallies = Vec::with_capacity(connected);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some(tally)) = joined {
            tallies.push(tally);
        }
    }
    let expected_each = measuring.map_or(0, |(first, last, _, _)| last - first + 1);
    for mut tally in tallies {
        tally.flush(&shared);
        report.ended_early += usize::from(tally.ended_early);
        report.deliveries += tally.deliveries;
        report.missing += expected_each.saturating_sub(tally.deliveries);
        report.gaps += tally.gaps;
        report.gap_missed += tally.gap_missed;
        report.out_of_order += tally.out_of_order;
        report.unannounced_skips += tally.unannounced_skips;
        report.frames += tally.frames;
        report.bytes += tally.bytes;
        report.last_delivery_unix_nanos = report.last_delivery_unix_nanos.max(tally.last_delivery);
    }
    report.expected = expected_each * connected as u64;
    // Subscriptions that never connected are not in `connected`; those that ended are counted.
    report.latency =
        Latencies::from_micros(&shared.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some((_, _, since, cpu)) = measuring {
        report.cpu_seconds = crate::process::own_cpu_seconds()? - cpu;
        report.wall_seconds = since.elapsed().as_secs_f64();
    }
    say(&ClientMessage::Report(report)).await?;
    Ok(())
}

async fn say(message: &ClientMessage) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    let mut stdout = tokio::io::stdout();
    stdout.write_all(&line).await?;
    stdout.flush().await?;
    Ok(())
}
