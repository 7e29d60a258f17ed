//! Subscribers over each transport a user has — native gRPC (tonic), grpc-web (tonic-web's
//! client over HTTP/1.1) and WebSocket (tokio-tungstenite, proto3 JSON) — behind one interface,
//! and a [`Tally`] of what one subscriber saw: events per position (to count repeats and holes),
//! numbers per key, gap notices and resets, and the positions to resume from.

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt, stream::BoxStream};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use streamweaver_proto::{
    time,
    v1::{
        Event, GapNotice, Position, PositionsReset, SubscribeRequest, SubscribeResponse,
        stream_service_client::StreamServiceClient, subscribe_response::Kind,
    },
};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::records::number_of;

/// A transport a subscriber uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Native gRPC over HTTP/2.
    Grpc,
    /// grpc-web over HTTP/1.1, as browsers speak it.
    GrpcWeb,
    /// WebSocket at `/ws`, proto3 JSON.
    WebSocket,
}

impl Via {
    /// Every transport.
    pub const ALL: [Via; 3] = [Via::Grpc, Via::GrpcWeb, Via::WebSocket];
}

/// One subscription, whatever its transport: the responses in order until the stream ends.
pub struct AnySubscriber {
    responses: BoxStream<'static, anyhow::Result<SubscribeResponse>>,
}

impl AnySubscriber {
    /// Subscribes to the gateway at `address` over `via`.
    pub async fn connect(
        via: Via,
        address: SocketAddr,
        request: SubscribeRequest,
    ) -> anyhow::Result<Self> {
        let url = format!("http://{address}");
        let responses = match via {
            Via::Grpc => {
                let mut client = StreamServiceClient::connect(url).await?;
                let stream = client.subscribe(request).await?.into_inner();
                stream.map(|r| r.map_err(anyhow::Error::from)).boxed()
            }
            Via::GrpcWeb => {
                let http = Client::builder(TokioExecutor::new()).build_http();
                let service = tower::ServiceBuilder::new()
                    .layer(tonic_web::GrpcWebClientLayer::new())
                    .service(http);
                let mut client = StreamServiceClient::with_origin(service, url.parse()?);
                let stream = client.subscribe(request).await?.into_inner();
                stream.map(|r| r.map_err(anyhow::Error::from)).boxed()
            }
            Via::WebSocket => {
                let mut http_request = format!("ws://{address}/ws").into_client_request()?;
                http_request
                    .headers_mut()
                    .insert("origin", "http://localhost:3000".parse()?);
                let (mut socket, _) = tokio_tungstenite::connect_async(http_request).await?;
                socket
                    .send(tungstenite::Message::text(serde_json::to_string(&request)?))
                    .await?;
                socket
                    .filter_map(|frame| async move {
                        match frame {
                            Ok(tungstenite::Message::Text(text)) => Some(
                                serde_json::from_str::<SubscribeResponse>(&text)
                                    .context("a SubscribeResponse in proto3 JSON"),
                            ),
                            Ok(tungstenite::Message::Close(_)) => None,
                            Ok(_) => None,
                            Err(error) => Some(Err(error.into())),
                        }
                    })
                    .boxed()
            }
        };
        Ok(Self { responses })
    }

    /// The next response within `within`; `None` when the stream ended (or failed, as when the
    /// gateway went away).
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<Option<SubscribeResponse>> {
        match tokio::time::timeout(within, self.responses.next()).await {
            Err(_) => bail!("no response within {within:?}"),
            Ok(None | Some(Err(_))) => Ok(None),
            Ok(Some(Ok(response))) => Ok(Some(response)),
        }
    }
}

/// What one subscriber saw, across reconnections.
#[derive(Debug, Default)]
pub struct Tally {
    /// Every position delivered.
    pub positions: HashSet<(String, i32, i64)>,
    /// Events delivered at a position already delivered.
    pub repeats: Vec<(String, i32, i64)>,
    /// Events whose offset was not above the previous one of their partition.
    pub out_of_order: Vec<(String, i32, i64)>,
    /// The last offset per partition.
    pub last: BTreeMap<(String, i32), i64>,
    /// Numbers per key, in the order they arrived (numbered trades only).
    pub numbers: BTreeMap<String, Vec<u64>>,
    /// Gap notices.
    pub gaps: Vec<GapNotice>,
    /// Positions-reset notices.
    pub resets: Vec<PositionsReset>,
    /// Seconds from each event's producer timestamp to its arrival.
    pub latencies: Vec<f64>,
    /// Events delivered.
    pub events: usize,
}

impl Tally {
    /// Counts one response.
    pub fn take(&mut self, response: SubscribeResponse) {
        match response.kind {
            Some(Kind::Event(event)) => self.take_event(&event),
            Some(Kind::Gap(gap)) => self.gaps.push(gap),
            Some(Kind::Reset(reset)) => {
                for position in &reset.positions {
                    self.last.insert(
                        (position.topic.clone(), position.partition),
                        position.offset,
                    );
                }
                self.resets.push(reset);
            }
            _ => {}
        }
    }

    fn take_event(&mut self, event: &Event) {
        self.events += 1;
        let position = (event.topic.clone(), event.partition, event.offset);
        if !self.positions.insert(position.clone()) {
            self.repeats.push(position.clone());
        }
        let partition = (event.topic.clone(), event.partition);
        if let Some(&last) = self.last.get(&partition)
            && event.offset <= last
        {
            self.out_of_order.push(position);
        }
        self.last.insert(partition, event.offset);
        if let Some((key, number)) = number_of(event) {
            self.numbers.entry(key).or_default().push(number);
        }
        if let Some(at) = event.produced_at.as_ref().and_then(time::system_time)
            && let Ok(latency) = SystemTime::now().duration_since(at)
        {
            self.latencies.push(latency.as_secs_f64());
        }
    }

    /// The positions to resume from: the last one seen per partition.
    pub fn resume_from(&self) -> Vec<Position> {
        self.last
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    /// Whether the last offset of every partition in `ends` (partition → log end) was seen.
    pub fn reached(&self, topic: &str, ends: &BTreeMap<i32, i64>) -> bool {
        ends.iter().all(|(partition, end)| {
            *end == 0
                || self
                    .last
                    .get(&(topic.to_owned(), *partition))
                    .is_some_and(|last| *last >= end - 1)
        })
    }

    /// Per key, numbers that arrived out of order (not above the one before).
    pub fn numbers_out_of_order(&self) -> Vec<(String, u64, u64)> {
        self.numbers
            .iter()
            .flat_map(|(key, numbers)| {
                numbers
                    .windows(2)
                    .filter(|pair| pair[1] <= pair[0])
                    .map(|pair| (key.clone(), pair[0], pair[1]))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The `q` quantile (0..=1) of the latencies, in seconds.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.latencies, q)
    }
}

/// The `q` quantile (0..=1) of `values`.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[index.min(sorted.len() - 1)])
}
