//! The bare baseline, the floor the gateway's fan-out is measured against: a minimal tokio
//! program that takes the same `Publish` stream, encodes each event once into the same proto3
//! JSON the gateway sends, and broadcasts those bytes to plain WebSocket connections — no
//! filters, no history, no metrics. One text frame per event, or (subprotocol
//! `streamweaver.v1.batch`) a JSON array of whatever is ready, as the gateway does.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use streamweaver_proto::v1::{
    PublishRequest, PublishResponse, SubscribeResponse,
    ingest_service_server::{IngestService, IngestServiceServer},
    subscribe_response::Kind,
};
use tokio::{net::TcpStream, sync::broadcast};
use tokio_tungstenite::tungstenite::{
    Message, Utf8Bytes,
    handshake::server::{Request, Response},
    protocol::WebSocketConfig,
};
use tonic::Status;

use crate::client::BATCH_PROTOCOL;

/// Most responses in one batched frame, as in the gateway.
const MAX_BATCH: usize = 256;

/// The bare baseline's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "The bare fan-out baseline: Publish in, the same JSON bytes out to every WebSocket; driven by `bench`."
)]
pub struct BareArgs {
    /// Where WebSocket subscribers connect (any path).
    #[arg(long, env = "BENCH_BARE_WS_LISTEN")]
    pub ws_listen: SocketAddr,
    /// Where `IngestService.Publish` is served (no credential needed).
    #[arg(long, env = "BENCH_BARE_INGEST_LISTEN")]
    pub ingest_listen: SocketAddr,
    /// Events a subscriber may fall behind before it is sent a gap notice (the gateway's
    /// default `--subscriber-buffer`).
    #[arg(long, env = "BENCH_BARE_BUFFER", default_value_t = 8192)]
    pub buffer: usize,
}

struct Ingest {
    frames: broadcast::Sender<Utf8Bytes>,
}

#[tonic::async_trait]
impl IngestService for Ingest {
    async fn publish(
        &self,
        request: tonic::Request<tonic::Streaming<PublishRequest>>,
    ) -> Result<tonic::Response<PublishResponse>, Status> {
        let mut stream = request.into_inner();
        let mut accepted = 0;
        while let Some(batch) = stream.message().await? {
            for event in batch.events {
                let response = SubscribeResponse {
                    kind: Some(Kind::Event(event)),
                };
                let json = serde_json::to_string(&response)
                    .map_err(|error| Status::internal(error.to_string()))?;
                // Nobody subscribed is fine.
                let _ = self.frames.send(Utf8Bytes::from(json));
                accepted += 1;
            }
        }
        Ok(tonic::Response::new(PublishResponse {
            accepted,
            ..PublishResponse::default()
        }))
    }
}

/// Serves until killed.
pub async fn run(args: BareArgs) -> anyhow::Result<()> {
    crate::process::raise_open_files_limit()?;
    let (frames, _) = broadcast::channel(args.buffer.max(1));
    let ingest = tonic::transport::Server::builder()
        .add_service(IngestServiceServer::new(Ingest {
            frames: frames.clone(),
        }))
        .serve(args.ingest_listen);
    let listener = tokio::net::TcpListener::bind(args.ws_listen).await?;
    let accept = async move {
        loop {
            let (tcp, _) = listener.accept().await?;
            let frames = frames.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                serve(tcp, frames).await;
            });
        }
        #[allow(unreachable_code)]
        anyhow::Ok(())
    };
    tokio::try_join!(async { Ok(ingest.await?) }, accept)?;
    Ok(())
}

/// One subscriber: the handshake, its subscribe frame, then every frame broadcast.
async fn serve(tcp: TcpStream, frames: broadcast::Sender<Utf8Bytes>) {
    let batched = AtomicBool::new(false);
    // tungstenite's `Callback` fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let choose_protocol = |request: &Request, mut response: Response| {
        let asked = request
            .headers()
            .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|protocol| protocol.trim() == BATCH_PROTOCOL);
        if asked {
            batched.store(true, Ordering::Relaxed);
            response.headers_mut().insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(BATCH_PROTOCOL),
            );
        }
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let Ok(mut socket) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, choose_protocol, Some(config)).await
    else {
        return;
    };
    let batch = if batched.load(Ordering::Relaxed) {
        MAX_BATCH
    } else {
        1
    };
    // The first text frame is the subscription; the floor has no filters, so it only waits.
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(_))) => break,
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return,
        }
    }
    let mut receiver = frames.subscribe();
    let mut pieces = Vec::with_capacity(batch);
    loop {
        let frame = tokio::select! {
            incoming = socket.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
            received = receiver.recv() => match received {
                Ok(first) if batch == 1 => first,
                Ok(first) => {
                    pieces.push(first);
                    while pieces.len() < batch {
                        match receiver.try_recv() {
                            Ok(next) => pieces.push(next),
                            Err(_) => break,
                        }
                    }
                    join(&mut pieces)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => Utf8Bytes::from(format!(
                    r#"{{"gap":{{"missedEvents":"{missed}","reason":"subscriber fell behind"}}}}"#
                )),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        match tokio::time::timeout(Duration::from_secs(60), socket.send(Message::Text(frame))).await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// `[` + the pieces joined by `,` + `]`, emptying `pieces`.
fn join(pieces: &mut Vec<Utf8Bytes>) -> Utf8Bytes {
    let length = pieces.iter().map(|p| p.len() + 1).sum::<usize>() + 1;
    let mut text = String::with_capacity(length);
    text.push('[');
    for (i, piece) in pieces.drain(..).enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(piece.as_str());
    }
    text.push(']');
    Utf8Bytes::from(text)
}
