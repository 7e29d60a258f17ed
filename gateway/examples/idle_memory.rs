//! How much gateway memory an idle subscriber costs: starts a gateway binary, opens N idle
//! subscribers (WebSocket, or gRPC streams multiplexed over connections), and prints the growth
//! of the gateway's resident memory per subscriber.
//!
//! ```sh
//! cargo build --release -p gateway --bin gateway --example idle_memory
//! target/release/examples/idle_memory target/release/gateway 10000
//! ```
//!
//! Needs about N + 100 file descriptors in each process (`ulimit -n`).

use std::{process::Stdio, time::Duration};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use streamweaver_proto::v1::{SubscribeRequest, stream_service_client::StreamServiceClient};
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::Channel;

/// A subscription to a symbol that never trades: the subscriber stays idle.
const IDLE_SYMBOL: &str = "NEVER-TRADES";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .context("usage: idle_memory GATEWAY_BINARY [N]")?;
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    println!("{count} idle subscribers; gateway resident memory growth per subscriber:");
    for (name, streams_per_connection) in [
        ("WebSocket", 0),
        ("gRPC, 100 streams per connection", 100),
        ("gRPC, one stream per connection", 1),
    ] {
        // A fresh gateway each time: memory freed by one run would hide the next one's growth.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut gateway = tokio::process::Command::new(&binary)
            .args(["--listen", &address, "--publish-token", "idle-memory"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let pid = gateway.id().context("gateway pid")?;
        wait_listening(&address).await?;
        settle().await;
        let before = resident_kib(pid)?;
        let held = if streams_per_connection == 0 {
            Held::WebSockets(websockets(&address, count).await?)
        } else {
            Held::Grpc(grpc_streams(&address, count, streams_per_connection).await?)
        };
        settle().await;
        let after = resident_kib(pid)?;
        let each = after.saturating_sub(before) as f64 / count as f64;
        println!("  {name:<34} {before:>8} KiB -> {after:>8} KiB: {each:>6.2} KiB each");
        drop(held);
        gateway.kill().await?;
    }
    Ok(())
}

type ClientWebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type ClientStream = tonic::Streaming<streamweaver_proto::v1::SubscribeResponse>;

/// What the client holds open while the gateway is measured.
#[allow(dead_code)]
enum Held {
    WebSockets(Vec<ClientWebSocket>),
    Grpc(Vec<ClientStream>),
}

/// Lets the gateway finish what the last step started (and free what it dropped).
async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

async fn wait_listening(address: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the gateway did not listen on {address}")
}

fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

async fn websockets(address: &str, count: usize) -> anyhow::Result<Vec<ClientWebSocket>> {
    let request = format!(r#"{{"topics":["stock_trades"],"symbols":["{IDLE_SYMBOL}"]}}"#);
    let opened = futures::stream::iter(0..count)
        .map(|_| {
            let request = request.clone();
            async move {
                let (mut socket, _) =
                    tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await?;
                socket.send(Message::text(request)).await?;
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await;
    opened.into_iter().collect()
}

async fn grpc_streams(
    address: &str,
    count: usize,
    per_connection: usize,
) -> anyhow::Result<Vec<ClientStream>> {
    let request = SubscribeRequest {
        topics: vec!["stock_trades".into()],
        symbols: vec![IDLE_SYMBOL.into()],
        ..Default::default()
    };
    let mut streams = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(per_connection) {
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let opened = futures::stream::iter(chunk.iter())
            .map(|_| {
                let mut client = StreamServiceClient::new(channel.clone());
                let request = request.clone();
                async move { anyhow::Ok(client.subscribe(request).await?.into_inner()) }
            })
            .buffer_unordered(100)
            .collect::<Vec<_>>()
            .await;
        for stream in opened {
            streams.push(stream?);
        }
    }
    Ok(streams)
}
