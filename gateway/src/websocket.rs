//! `/ws`: the same subscription, spoken as proto3 JSON over a WebSocket, one message per text
//! frame. The client sends a `SubscribeRequest` (and may send another at any time to change it,
//! within a rate limit); the server sends `SubscribeResponse`s. A bad frame gets an `error`
//! response and the socket stays open. Pings find dead peers; a peer that stops reading only
//! ever costs its own queue.
//!
//! An event's frame is the event's shared JSON encoding, made once for every subscriber. A
//! client that asks for the subprotocol [`BATCH_PROTOCOL`] gets each text frame as a JSON array
//! of the `SubscribeResponse`s ready at that moment instead, assembled from the same shared
//! pieces: at thousands of events per second a browser spends far less on a few large frames
//! than on one frame per event. While events keep coming such a socket sends at most one frame
//! per `--ws-batch-linger`, so frames grow under load (and the gateway wakes and writes each
//! socket less often); after a quiet spell the next frame goes out at once.
//!
//! A client that asks for [`PROTOBUF_PROTOCOL`] speaks Protobuf instead, for services and for
//! pages that want to spend less CPU: each `SubscribeResponse` is a binary frame (an event's is
//! its shared Protobuf encoding, the very bytes gRPC sends), and so is each `SubscribeRequest`
//! it sends.
//!
//! An idle socket is kept small: small read and write buffers, and no allocation waiting in its
//! subscription's queue.
//!
//! With subscriber tokens required, the token comes as a subprotocol or a frame (see
//! [`crate::auth`]), and every subscribe request, the first and each re-subscribe, is checked
//! against it. A socket that has not subscribed within `--ws-subscribe-timeout` is closed.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes},
    },
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use prost::Message as _;
use streamweaver_proto::v1::{
    StreamError, SubscribeRequest, SubscribeResponse, subscribe_response::Kind,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{AuthError, SocketAuth, SubscriberAuth},
    hub::{Ended, Hub, Outgoing, Subscription},
    metrics::{Metrics, Transport},
    serve::ConnectionInfo,
    subscribe::Subscriptions,
};

/// Largest frame a client may send; a `SubscribeRequest` is small.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The subprotocol that asks for JSON arrays of responses, one array per frame.
pub const BATCH_PROTOCOL: &str = "streamweaver.v1.batch";
/// The subprotocol in which requests and responses are Protobuf, one per binary frame.
pub const PROTOBUF_PROTOCOL: &str = "streamweaver.v1.proto";
/// The subprotocol of the default, one response per frame: for clients that must offer one
/// (a browser offering a token subprotocol needs one the server selects).
pub const JSON_PROTOCOL: &str = "streamweaver.v1.json";
/// Most responses in one batched frame.
const MAX_BATCH: usize = 256;
/// A batched frame is closed once it holds this many bytes, so the socket's write buffer stays
/// small.
const MAX_BATCH_BYTES: usize = 32 * 1024;
/// Room a batched frame starts with: a few dozen events' worth.
const FRAME_CAPACITY: usize = 8 * 1024;
/// The socket's read buffer: client frames are small requests.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Re-subscribes a connection may make at once, then [`RESUBSCRIBES_PER_SECOND`].
const RESUBSCRIBE_BURST: f64 = 10.0;
const RESUBSCRIBES_PER_SECOND: f64 = 2.0;
/// WebSocket close code "going away", sent when the gateway shuts down.
const GOING_AWAY: u16 = 1001;
/// WebSocket close code "policy violation": too slow under DISCONNECT, no subscription in time,
/// or the token expired.
const POLICY_VIOLATION: u16 = 1008;

/// What the browser transports' handlers (`/ws`, `/sse`) need.
#[derive(Clone)]
pub struct WebSocketState {
    /// The hub to subscribe to.
    pub hub: Arc<Hub>,
    /// Where refusals are counted.
    pub metrics: Metrics,
    /// The subscribe endpoint, for its capacity check.
    pub subscriptions: Arc<Subscriptions>,
    /// Who may subscribe.
    pub auth: Arc<SubscriberAuth>,
    /// A socket with no subscription this long after opening is closed.
    pub subscribe_timeout: Duration,
    /// Allowed browser origins; empty means any.
    pub allowed_origins: Arc<[String]>,
    /// How often to ping.
    pub ping_interval: Duration,
    /// Batched sockets: least time between two frames while events keep coming (see
    /// `--ws-batch-linger`).
    pub batch_linger: Duration,
    /// Ends open sockets when the gateway stops.
    pub shutdown: CancellationToken,
}

impl WebSocketState {
    /// A 403 for a browser page of an origin not allowed (counted), or `None`. Browsers always
    /// send Origin; programs usually do not, and are not subject to CSRF.
    pub(crate) fn refuse_foreign_origin(
        &self,
        headers: &HeaderMap,
        transport: Transport,
    ) -> Option<Response> {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())?;
        if self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|a| a == origin) {
            return None;
        }
        self.metrics.refuse(transport.name(), "origin_not_allowed");
        Some(
            (
                StatusCode::FORBIDDEN,
                format!("origin {origin} is not allowed\n"),
            )
                .into_response(),
        )
    }
}

/// Checks origin, credential and capacity, then upgrades the connection.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<WebSocketState>,
    connection: Option<Extension<ConnectionInfo>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let endpoint = Transport::Websocket.name();
    if let Some(refusal) = state.refuse_foreign_origin(&headers, Transport::Websocket) {
        return refusal;
    }
    let auth = match SocketAuth::at_upgrade(state.auth.clone(), &uri, &headers) {
        Ok(auth) => auth,
        Err(error) => {
            state.metrics.refuse(endpoint, error.reason());
            let status = match error {
                AuthError::TokenInUrl => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            return (status, format!("{error}\n")).into_response();
        }
    };
    if let Err(status) = state.subscriptions.check_capacity(Transport::Websocket) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", status.message()),
        )
            .into_response();
    }
    // Never selects a token subprotocol: the token is not echoed back.
    let ws = ws.protocols([PROTOBUF_PROTOCOL, BATCH_PROTOCOL, JSON_PROTOCOL]);
    let framing = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(PROTOBUF_PROTOCOL) => Framing::Protobuf,
        Some(BATCH_PROTOCOL) => Framing::Json { batched: true },
        _ => Framing::Json { batched: false },
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            // Boxed: the task then holds a pointer, and the loop's state only while it lives.
            Box::pin(async move {
                serve(sink, stream, state, framing, auth).await;
                // The connection's admission place is held until the socket ends.
                drop(connection);
            })
        })
}

/// How a socket's frames are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// proto3 JSON text frames: one object each, or with `batched` a JSON array of the
    /// responses ready at once ([`BATCH_PROTOCOL`]).
    Json {
        /// Whether frames are arrays.
        batched: bool,
    },
    /// One `SubscribeResponse` per binary frame, requests likewise ([`PROTOBUF_PROTOCOL`]).
    Protobuf,
}

impl Framing {
    /// Whether a frame may carry several responses.
    fn batched(self) -> bool {
        matches!(self, Self::Json { batched: true })
    }

    /// One response as a frame: an event's shared encoding, or one made now.
    fn frame(self, outgoing: &Outgoing) -> Message {
        match (self, outgoing) {
            (Self::Protobuf, Outgoing::Event(event)) => Message::Binary(event.protobuf().clone()),
            (Self::Protobuf, Outgoing::Message(message)) => {
                Message::Binary(Bytes::from(message.encode_to_vec()))
            }
            (Self::Json { batched: true }, outgoing) => {
                let mut batch = Batch::new();
                batch.push(&json_of(outgoing));
                batch.finish()
            }
            (Self::Json { batched: false }, outgoing) => text(json_of(outgoing)),
        }
    }

    /// An error response as a frame.
    fn error(self, code: &str, message: String) -> Message {
        self.frame(&Outgoing::Message(Box::new(error_response(code, message))))
    }

    /// A client's frame as a request, or a metrics reason and a message for the client.
    fn request(self, frame: &Message) -> Result<SubscribeRequest, (&'static str, String)> {
        match (self, frame) {
            (Self::Json { .. }, Message::Text(text)) => parse_request(text),
            (Self::Protobuf, Message::Binary(bytes)) => SubscribeRequest::decode(bytes.clone())
                .map_err(|error| {
                    (
                        "malformed_request",
                        format!("malformed SubscribeRequest: {error}"),
                    )
                }),
            (Self::Json { .. }, _) => Err((
                "binary_frame",
                "binary frames are not accepted: send a SubscribeRequest as proto3 JSON text"
                    .into(),
            )),
            (Self::Protobuf, _) => Err((
                "text_frame",
                format!(
                    "text frames are not accepted on {PROTOBUF_PROTOCOL}: send a \
                     SubscribeRequest as protobuf in a binary frame"
                ),
            )),
        }
    }
}

fn error_response(code: &str, message: String) -> SubscribeResponse {
    SubscribeResponse {
        kind: Some(Kind::Error(StreamError {
            code: code.to_owned(),
            message,
        })),
    }
}

/// A response in the proto3 JSON mapping: an event's shared encoding, or one made now.
pub(crate) fn json_of(outgoing: &Outgoing) -> Bytes {
    match outgoing {
        Outgoing::Event(event) => event.json().clone(),
        Outgoing::Message(message) => json_message(message),
    }
}

/// Adds a response to `batch`: an event's shared encoding is copied from where it is, without
/// touching its reference count (shared by every subscriber, so contended).
fn push_json(batch: &mut Batch, outgoing: &Outgoing) {
    match outgoing {
        Outgoing::Event(event) => batch.push(event.json()),
        Outgoing::Message(message) => batch.push(&json_message(message)),
    }
}

fn json_message(message: &SubscribeResponse) -> Bytes {
    match serde_json::to_vec(message) {
        Ok(json) => Bytes::from(json),
        // Serialising a generated message cannot fail; be loud if it ever does.
        Err(error) => Bytes::from(format!(
            r#"{{"error":{{"code":"INTERNAL","message":"cannot encode a response: {error}"}}}}"#
        )),
    }
}

fn text(json: Bytes) -> Message {
    match Utf8Bytes::try_from(json) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Text(Utf8Bytes::from_static(
            r#"{"error":{"code":"INTERNAL","message":"a response was not UTF-8"}}"#,
        )),
    }
}

/// A JSON array assembled from shared pieces.
struct Batch {
    frame: BytesMut,
    count: usize,
}

impl Batch {
    fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A batch with room for `bytes` of pieces, so a frame is not grown copy by copy.
    fn with_capacity(bytes: usize) -> Self {
        Self {
            frame: BytesMut::with_capacity(bytes),
            count: 0,
        }
    }

    fn push(&mut self, piece: &[u8]) {
        self.frame.put_u8(if self.count == 0 { b'[' } else { b',' });
        self.frame.put_slice(piece);
        self.count += 1;
    }

    fn is_full(&self) -> bool {
        self.count >= MAX_BATCH || self.frame.len() >= MAX_BATCH_BYTES
    }

    fn finish(mut self) -> Message {
        if self.count == 0 {
            self.frame.put_u8(b'[');
        }
        self.frame.put_u8(b']');
        text(self.frame.freeze())
    }
}

/// A connection's re-subscribe budget (a token bucket).
struct Resubscribes {
    tokens: f64,
    at: Instant,
}

impl Resubscribes {
    fn new() -> Self {
        Self {
            tokens: RESUBSCRIBE_BURST,
            at: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * RESUBSCRIBES_PER_SECOND;
        self.tokens = (self.tokens + refill).min(RESUBSCRIBE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the loop does next.
enum Action {
    Send(Message),
    Close(u16, Utf8Bytes),
    Stop,
}

/// Serves one socket until the peer leaves, goes silent, does not subscribe in time, its token
/// expires, or the gateway stops, in `framing`. Generic over the socket halves so tests can
/// drive it without a network.
pub async fn serve<S, R, E>(
    mut sink: S,
    mut stream: R,
    state: WebSocketState,
    framing: Framing,
    mut auth: SocketAuth,
) where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let endpoint = Transport::Websocket.name();
    let error_frame = |code: &str, message: String| framing.error(code, message);
    // This connection's own token: shutdown reaches it without every socket polling one.
    let shutdown = state.shutdown.child_token();
    let mut subscription: Option<Subscription> = None;
    let mut resubscribes = Resubscribes::new();
    let mut ended: Option<Ended> = None;
    let mut ping = tokio::time::interval(state.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let silent_limit = state.ping_interval * 3;
    let subscribe_by = Instant::now() + state.subscribe_timeout;
    // When the last batched frame was assembled.
    let mut last_frame: Option<Instant> = None;

    loop {
        let action = if let Some(why) = ended.take() {
            match why {
                Ended::ShuttingDown => Action::Close(GOING_AWAY, "gateway is shutting down".into()),
                Ended::TooSlow => Action::Close(
                    POLICY_VIOLATION,
                    "subscriber fell behind (slow-client policy DISCONNECT)".into(),
                ),
                Ended::ReplayUnavailable(message) => {
                    subscription = None;
                    Action::Send(error_frame("UNAVAILABLE", message))
                }
            }
        } else {
            tokio::select! {
                () = shutdown.cancelled() => Action::Close(GOING_AWAY, "gateway is shutting down".into()),
                () = tokio::time::sleep_until(subscribe_by), if !auth.has_subscribed() => {
                    state.metrics.refuse(endpoint, "no_subscription");
                    let reason = format!("no SubscribeRequest within {:?}", state.subscribe_timeout);
                    Action::Close(POLICY_VIOLATION, reason.into())
                }
                () = sleep_until_expiry(&auth) => {
                    state.metrics.refuse(endpoint, AuthError::Expired.reason());
                    let error = AuthError::Expired;
                    // Best effort: the close frame follows.
                    let frame = error_frame(error.code_name(), error.to_string());
                    let _ = tokio::time::timeout(silent_limit, sink.send(frame)).await;
                    Action::Close(POLICY_VIOLATION, "the token has expired".into())
                }
                incoming = stream.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        None | Some(Ok(Message::Close(_))) => Action::Stop,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket read failed");
                            Action::Stop
                        }
                        Some(Ok(frame @ (Message::Text(_) | Message::Binary(_)))) => {
                            if !resubscribes.allow() {
                                state.metrics.refuse(endpoint, "resubscribe_rate_limited");
                                Action::Send(error_frame(
                                    "RESOURCE_EXHAUSTED",
                                    format!("too many subscribe requests: at most {RESUBSCRIBE_BURST} at once, then {RESUBSCRIBES_PER_SECOND} per second"),
                                ))
                            } else if let Message::Text(text) = &frame
                                && let Some(outcome) = auth.authorization_frame(text)
                            {
                                match outcome {
                                    Ok(()) => continue,
                                    Err(error) => {
                                        state.metrics.refuse(endpoint, error.reason());
                                        Action::Send(error_frame(error.code_name(), error.to_string()))
                                    }
                                }
                            } else {
                                match subscribe(&state, &mut auth, framing, &frame).await {
                                    Ok(new) => {
                                        // Replacing the subscription drops the old one at once.
                                        subscription = Some(new);
                                        continue;
                                    }
                                    Err((code, message)) => Action::Send(error_frame(code, message)),
                                }
                            }
                        }
                        // axum answers pings itself; either way the peer is alive.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    }
                }
                next = next_outgoing(&mut subscription) => match next {
                    Err(why) => {
                        ended = Some(why);
                        continue;
                    }
                    Ok(first) if !framing.batched() => Action::Send(framing.frame(&first)),
                    Ok(first) => {
                        let mut batch = Batch::with_capacity(FRAME_CAPACITY);
                        push_json(&mut batch, &first);
                        // Busy (the last frame went out within the linger): wait out the rest
                        // of it so more join this frame. Quiet: send at once.
                        if let Some(linger_until) = last_frame.map(|at| at + state.batch_linger)
                            && Instant::now() < linger_until
                        {
                            tokio::time::sleep_until(linger_until).await;
                        }
                        // Take whatever else is ready now.
                        while !batch.is_full() {
                            match subscription.as_mut().and_then(Subscription::try_next) {
                                Some(Ok(next)) => push_json(&mut batch, &next),
                                Some(Err(why)) => {
                                    ended = Some(why);
                                    break;
                                }
                                None => break,
                            }
                        }
                        last_frame = Some(Instant::now());
                        Action::Send(batch.finish())
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > silent_limit {
                        tracing::debug!("websocket peer went silent; closing");
                        Action::Stop
                    } else {
                        Action::Send(Message::Ping(Default::default()))
                    }
                }
            }
        };
        let outgoing = match action {
            Action::Send(message) => message,
            Action::Close(code, reason) => {
                let close = Message::Close(Some(CloseFrame { code, reason }));
                let _ = tokio::time::timeout(silent_limit, sink.send(close)).await;
                break;
            }
            Action::Stop => break,
        };
        // A peer that stops reading stalls only this loop; its queue's policy acts. Most sends
        // complete at once: only one that waits gets a timer.
        let mut send = std::pin::pin!(sink.send(outgoing));
        let sent = match (&mut send).now_or_never() {
            Some(sent) => Ok(sent),
            None => tokio::time::timeout(silent_limit, send).await,
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
}

async fn next_outgoing(subscription: &mut Option<Subscription>) -> Result<Outgoing, Ended> {
    match subscription {
        Some(subscription) => subscription.next().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the socket's token expires; never without one.
async fn sleep_until_expiry(auth: &SocketAuth) {
    match auth.deadline() {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Reads a frame as a request, checks it against the socket's token (narrowing "all topics" to
/// the allowed ones), and subscribes; or says what is wrong (counted), as a status code name
/// and a message.
async fn subscribe(
    state: &WebSocketState,
    auth: &mut SocketAuth,
    framing: Framing,
    frame: &Message,
) -> Result<Subscription, (&'static str, String)> {
    let endpoint = Transport::Websocket.name();
    let mut request = framing.request(frame).map_err(|(reason, message)| {
        state.metrics.refuse(endpoint, reason);
        ("INVALID_ARGUMENT", message)
    })?;
    auth.authorize(&mut request).map_err(|error| {
        state.metrics.refuse(endpoint, error.reason());
        (error.code_name(), error.to_string())
    })?;
    let subscription = state
        .hub
        .subscribe(&request, Transport::Websocket)
        .await
        .map_err(|error| {
            let code = if error.is_unavailable() {
                "UNAVAILABLE"
            } else {
                "INVALID_ARGUMENT"
            };
            (code, error.to_string())
        })?;
    auth.subscribed(&request);
    Ok(subscription)
}

/// Parses a text frame into a request, or a metrics reason and a message for the client.
fn parse_request(text: &str) -> Result<SubscribeRequest, (&'static str, String)> {
    serde_json::from_str(text).map_err(|error| {
        (
            "malformed_request",
            format!("malformed SubscribeRequest: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_in_the_proto3_json_mapping() {
        let request = parse_request(
            r#"{"topics":["server_logs"],"logLevels":["LOG_LEVEL_ERROR"],"resumeFrom":[{"topic":"server_logs","partition":1,"offset":"42"}],"slowClientPolicy":"SLOW_CLIENT_POLICY_SAMPLE","sampleInterval":"0.5s","startAt":{"last":"300s"},"filter":"log_entry.service == 'api'"}"#,
        )
        .expect("valid");
        assert_eq!(request.topics, vec!["server_logs"]);
        assert_eq!(request.log_levels, vec![4]);
        assert_eq!(request.resume_from[0].offset, 42);
        assert_eq!(request.slow_client_policy, 4);
        assert!(request.start_at.is_some() && request.sample_interval.is_some());
        assert_eq!(request.filter, "log_entry.service == 'api'");
        assert!(parse_request("{}").is_ok());
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let (reason, message) = parse_request("{not json").expect_err("malformed");
        assert_eq!(reason, "malformed_request");
        assert!(
            message.starts_with("malformed SubscribeRequest: "),
            "{message}"
        );
        let (_, message) = parse_request(r#"{"logLevels":["LOUD"]}"#).expect_err("unknown level");
        assert!(message.contains("LOUD"), "{message}");
    }

    #[test]
    fn each_framing_reads_its_own_frames_only() {
        let request = SubscribeRequest {
            topics: vec!["stock_trades".into()],
            filter: "stock_trade.price > 1.0".into(),
            ..Default::default()
        };
        let binary = Message::Binary(request.encode_to_vec().into());
        assert_eq!(Framing::Protobuf.request(&binary), Ok(request.clone()));
        let json = Framing::Json { batched: false };
        assert_eq!(json.request(&binary).map_err(|e| e.0), Err("binary_frame"));
        let text = Message::Text(Utf8Bytes::from_static("{}"));
        assert_eq!(
            Framing::Protobuf.request(&text).map_err(|e| e.0),
            Err("text_frame")
        );
        let garbage = Message::Binary(vec![0xff, 0xff].into());
        assert_eq!(
            Framing::Protobuf.request(&garbage).map_err(|e| e.0),
            Err("malformed_request")
        );
        // A response is one binary frame of its Protobuf encoding.
        let response = error_response("INVALID_ARGUMENT", "no".into());
        assert_eq!(
            Framing::Protobuf.error("INVALID_ARGUMENT", "no".into()),
            Message::Binary(response.encode_to_vec().into())
        );
    }

    #[test]
    fn batches_are_json_arrays_of_the_pieces() {
        let mut batch = Batch::new();
        batch.push(br#"{"a":1}"#);
        batch.push(br#"{"b":2}"#);
        let Message::Text(text) = batch.finish() else {
            panic!("a text frame")
        };
        assert_eq!(text.as_str(), r#"[{"a":1},{"b":2}]"#);
    }

    /// A socket served with a 10 ms linger, over channels; returns the hub, the client's
    /// request sender and the frames the gateway sends.
    fn lingering_socket() -> (
        Arc<Hub>,
        futures::channel::mpsc::UnboundedSender<Result<Message, std::convert::Infallible>>,
        futures::channel::mpsc::UnboundedReceiver<Message>,
    ) {
        use crate::{
            hub::{HubSettings, Limits, PolicyDefaults, PolicyKind},
            replay::{ReplaySettings, Replayer},
        };
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        let replayer = Replayer::new(ReplaySettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            fetch_wait_max_ms: 10,
            max_concurrent_reads: 1,
            max_value_bytes: 1 << 20,
            cache_bytes: 1 << 20,
        })
        .expect("a replayer");
        let settings = HubSettings {
            limits: Limits {
                events: 1024,
                bytes: 1 << 20,
            },
            policy: PolicyDefaults {
                kind: PolicyKind::Gap,
                sample_interval: Duration::from_secs(1),
            },
            history: 100,
            history_max_age: Duration::from_secs(600),
            heartbeat: Duration::from_secs(600),
            offset_check_timeout: Duration::from_millis(100),
            replay_retry_for: Duration::from_millis(100),
        };
        let hub = Hub::new(settings, replayer, metrics.clone());
        let state = WebSocketState {
            hub: hub.clone(),
            metrics: metrics.clone(),
            subscriptions: Arc::new(Subscriptions::new(hub.clone(), metrics, Arc::default(), 10)),
            auth: Arc::default(),
            subscribe_timeout: Duration::from_secs(600),
            allowed_origins: Arc::from(Vec::new()),
            ping_interval: Duration::from_secs(600),
            batch_linger: Duration::from_millis(10),
            shutdown: CancellationToken::new(),
        };
        let (sink, frames) = futures::channel::mpsc::unbounded();
        let (requests, stream) = futures::channel::mpsc::unbounded();
        tokio::spawn(serve(
            sink,
            stream,
            state,
            Framing::Json { batched: true },
            SocketAuth::open(),
        ));
        (hub, requests, frames)
    }

    /// The kinds in the next frame (a JSON array), and when it came.
    async fn next_frame(
        frames: &mut futures::channel::mpsc::UnboundedReceiver<Message>,
    ) -> (Vec<String>, Instant) {
        let Some(Message::Text(text)) = frames.next().await else {
            panic!("a text frame")
        };
        let responses: Vec<SubscribeResponse> =
            serde_json::from_str(text.as_str()).expect("a JSON array");
        let kinds = responses
            .into_iter()
            .map(|response| match response.kind {
                Some(Kind::Event(event)) => format!("event {}", event.offset),
                Some(Kind::Heartbeat(heartbeat)) => format!("heartbeat {}", heartbeat.caught_up),
                other => format!("{other:?}"),
            })
            .collect();
        (kinds, Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn batched_frames_linger_only_while_events_keep_coming() {
        use crate::hub::testing::trade;
        let (hub, requests, mut frames) = lingering_socket();
        requests
            .unbounded_send(Ok(Message::Text("{}".into())))
            .expect("sent");
        let (kinds, _) = next_frame(&mut frames).await;
        assert_eq!(kinds, ["heartbeat true"], "a heartbeat at once");

        // After a quiet spell, an event goes out at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let published = Instant::now();
        hub.publish(&[trade(0, 0, "A")]).await;
        let (kinds, at) = next_frame(&mut frames).await;
        assert_eq!(kinds, ["event 0"]);
        assert_eq!(at, published, "no wait after a quiet spell");

        // While events keep coming, the next frame waits out the linger and takes them all.
        hub.publish(&[trade(0, 1, "A")]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        hub.publish(&[trade(0, 2, "A")]).await;
        let (kinds, at) = next_frame(&mut frames).await;
        assert_eq!(kinds, ["event 1", "event 2"]);
        assert_eq!(at, published + Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn resubscribes_are_rate_limited() {
        let mut budget = Resubscribes::new();
        for _ in 0..10 {
            assert!(budget.allow());
        }
        assert!(!budget.allow());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(budget.allow());
        assert!(!budget.allow());
    }
}
