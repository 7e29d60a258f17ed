//! `GET /sse`: the subscription as Server-Sent Events, for browsers whose proxies break
//! WebSocket and for `curl -N`. The query string carries the `SubscribeRequest` ([`query`]);
//! each message's `data:` is one `SubscribeResponse` in proto3 JSON — an event's is the
//! gateway's one shared JSON encoding of it — and each message's `id:` is a resume token
//! ([`token`]) of the subscriber's positions in every partition it follows. A reconnecting
//! `EventSource` sends the last one back as `Last-Event-ID` and resumes exactly where it was,
//! through the same backfill as every other transport.
//!
//! Heartbeats are messages too (a `heartbeat` response with the positions, and its token), so
//! a subscriber whose filter passes nothing for a while still moves its `Last-Event-ID` on. A
//! stream ends when the gateway shuts down or the subscriber falls behind under the DISCONNECT
//! policy: the browser reconnects on its own, with its token, and misses nothing.

pub mod query;
pub mod token;

use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{FutureExt as _, Stream, StreamExt as _};
use streamweaver_proto::v1::{SubscribeResponse, subscribe_response::Kind};

use crate::{
    hub::Subscription, ingest::constant_time_eq, metrics::Transport, websocket::WebSocketState,
};

use self::token::Positions;

/// How long a browser waits before reconnecting, told in the stream's first lines.
const RETRY_MILLIS: u32 = 1_000;
/// A chunk of the response is closed once it holds this many bytes.
const MAX_CHUNK_BYTES: usize = 32 * 1024;
/// Most messages in one chunk.
const MAX_CHUNK_MESSAGES: usize = 256;

fn refusal(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// Checks origin, credential, request and capacity, then streams.
pub async fn handler(
    State(state): State<WebSocketState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let endpoint = Transport::Sse.name();
    if let Some(refusal) = state.refuse_foreign_origin(&headers, Transport::Sse) {
        return refusal;
    }
    let query = match query::parse(raw.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(error) => {
            state.metrics.refuse(endpoint, "malformed_request");
            return refusal(StatusCode::BAD_REQUEST, error);
        }
    };
    if let Some(expected) = &state.subscribe_token {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let given = bearer.or(query.token.as_deref()).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            state.metrics.refuse(endpoint, "unauthenticated");
            return refusal(
                StatusCode::UNAUTHORIZED,
                "a valid ?token= or authorization: Bearer is required",
            );
        }
    }
    // The browser's Last-Event-ID is newer than whatever the page put in its URL.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .or(query.last_event_id.as_deref());
    let positions = match last_event_id.map(Positions::from_token).transpose() {
        Ok(positions) => positions.unwrap_or_default(),
        Err(error) => {
            state.metrics.refuse(endpoint, "bad_resume_token");
            return refusal(StatusCode::BAD_REQUEST, error);
        }
    };
    if let Err(status) = state.subscriptions.check_capacity(Transport::Sse) {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, status.message());
    }
    let mut request = query.request;
    if last_event_id.is_some() {
        request.resume_from = positions.to_positions();
    }
    let positions = {
        let mut given = Positions::new();
        given.advance_all(&request.resume_from);
        given
    };
    let filter = match state.subscriptions.filter(&request, Transport::Sse).await {
        Ok(filter) => filter,
        Err(status) => return refusal(StatusCode::BAD_REQUEST, status.message()),
    };
    let subscription = state
        .hub
        .subscribe(filter, &request.resume_from, Transport::Sse);
    tracing::debug!(resumed = !positions.is_empty(), "sse subscriber joined");
    let mut response = Body::from_stream(messages(subscription, positions)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell buffering proxies (nginx) to pass each message on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The stream's body: a first chunk with the retry delay, then the subscription's messages, a
/// chunk at a time (whatever is ready at once, up to [`MAX_CHUNK_BYTES`]).
fn messages(
    subscription: Subscription,
    positions: Positions,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let first = Bytes::from(format!(": streamweaver\nretry: {RETRY_MILLIS}\n\n"));
    let writer = Writer {
        subscription,
        positions,
    };
    futures::stream::once(async move { Ok(first) }).chain(futures::stream::unfold(
        writer,
        |mut writer| async move {
            let chunk = writer.next_chunk().await?;
            Some((Ok(chunk), writer))
        },
    ))
}

/// One subscriber's stream and the positions its tokens carry.
struct Writer {
    subscription: Subscription,
    positions: Positions,
}

impl Writer {
    /// The next chunk, or `None` when the stream is over (the gateway is stopping).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut chunk = BytesMut::new();
        let first = self.subscription.next().await?;
        self.write(&mut chunk, &first);
        let mut count = 1;
        while chunk.len() < MAX_CHUNK_BYTES && count < MAX_CHUNK_MESSAGES {
            match self.subscription.next().now_or_never() {
                Some(Some(next)) => self.write(&mut chunk, &next),
                _ => break,
            }
            count += 1;
        }
        Some(chunk.freeze())
    }

    /// Writes one message: `id:` the positions after it, `data:` its JSON.
    fn write(&mut self, chunk: &mut BytesMut, message: &SubscribeResponse) {
        self.observe(message);
        chunk.put_slice(b"id: ");
        chunk.put_slice(self.positions.token().as_bytes());
        chunk.put_slice(b"\ndata: ");
        // Compact JSON holds no newline (one inside a string is escaped): one data line.
        chunk.put_slice(&json(message));
        chunk.put_slice(b"\n\n");
    }

    fn observe(&mut self, message: &SubscribeResponse) {
        match &message.kind {
            Some(Kind::Event(event)) => {
                if let Ok(topic) = event.topic.parse() {
                    self.positions.advance(topic, event.partition, event.offset);
                }
            }
            Some(Kind::Heartbeat(heartbeat)) => self.positions.advance_all(&heartbeat.positions),
            Some(Kind::Gap(gap)) => self.positions.advance_all(&gap.last_positions),
            Some(Kind::Reset(reset)) => {
                for position in &reset.positions {
                    if let Ok(topic) = position.topic.parse() {
                        self.positions
                            .reset(topic, position.partition, position.offset);
                    }
                }
            }
            Some(Kind::Error(_)) | None => {}
        }
    }
}

fn json(message: &SubscribeResponse) -> Bytes {
    match serde_json::to_vec(message) {
        Ok(json) => Bytes::from(json),
        Err(error) => Bytes::from(format!(
            r#"{{"error":{{"code":"INTERNAL","message":"cannot encode a response: {error}"}}}}"#
        )),
    }
}
