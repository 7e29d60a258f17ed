//! `GET /sse`: the subscription as Server-Sent Events, for browsers whose proxies break
//! WebSocket and for `curl -N`. The query string carries the `SubscribeRequest` ([`query`]);
//! each message's `data:` is one `SubscribeResponse` in proto3 JSON — an event's is the
//! gateway's one shared JSON encoding of it — and each message's `id:` is a resume token
//! ([`token`]) of the subscriber's positions in every partition it follows. A reconnecting
//! `EventSource` sends the last one back as `Last-Event-ID` and resumes exactly where it was,
//! through the same backfill as every other transport.
//!
//! With subscriber tokens required (`--subscribe-jwt-secret` / `--subscribe-jwt-public-key`), the
//! token comes as `authorization: Bearer <jwt>`, or, for a browser's `EventSource` (which cannot
//! set headers), as the first-party cookie [`TOKEN_COOKIE`] — never in the URL, where proxies
//! and logs keep it. Its topics narrow the subscription as on every transport, and the stream
//! ends with an `UNAUTHENTICATED` error message when it expires.
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
use futures::{Stream, StreamExt as _};
use streamweaver_proto::v1::{StreamError, SubscribeResponse, subscribe_response::Kind};

use tokio::time::Instant;

use crate::{
    auth::{AuthError, Grant},
    event::SharedEvent,
    hub::{Ended, Outgoing, Subscription},
    metrics::{Metrics, Transport},
    websocket::{WebSocketState, json_of},
};

use self::token::Positions;

/// How long a browser waits before reconnecting, told in the stream's first lines.
const RETRY_MILLIS: u32 = 1_000;
/// A chunk of the response is closed once it holds this many bytes.
const MAX_CHUNK_BYTES: usize = 32 * 1024;
/// Most messages in one chunk.
const MAX_CHUNK_MESSAGES: usize = 256;
/// The cookie a first-party page may hold the subscriber token in (an `EventSource` cannot set
/// headers, and a token in the URL would end up in logs).
pub const TOKEN_COOKIE: &str = "streamweaver_token";

fn refusal(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// Where an SSE subscriber's token goes.
const TOKEN_HINT: &str =
    "send `authorization: Bearer <token>`, or the `streamweaver_token` cookie (never in the URL)";

/// The subscriber credential a request carries: `authorization: Bearer …`, else the
/// [`TOKEN_COOKIE`] cookie.
fn credential(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == TOKEN_COOKIE).then_some(value)
            })
    })
}

/// What the request's token allows (everything when subscribing is open).
fn grant(state: &WebSocketState, headers: &HeaderMap) -> Result<Grant, AuthError> {
    if state.auth.is_open() {
        return Ok(Grant::default());
    }
    let token = credential(headers).ok_or(AuthError::MissingToken(TOKEN_HINT))?;
    state.auth.verify(token)
}

/// A refusal of the token, as HTTP says it (counted).
fn auth_refusal(state: &WebSocketState, error: &AuthError) -> Response {
    state.metrics.refuse(Transport::Sse.name(), error.reason());
    let status = match error.code() {
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    refusal(status, error)
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
            let reason = match error {
                query::QueryError::TokenInUrl => "token_in_url",
                _ => "malformed_request",
            };
            state.metrics.refuse(endpoint, reason);
            return refusal(StatusCode::BAD_REQUEST, error);
        }
    };
    let grant = match grant(&state, &headers) {
        Ok(grant) => grant,
        Err(error) => return auth_refusal(&state, &error),
    };
    // The browser's Last-Event-ID is newer than whatever the page put in its URL.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .or(query.last_event_id.as_deref());
    let resumed = match last_event_id.map(Positions::from_token).transpose() {
        Ok(resumed) => resumed,
        Err(error) => {
            state.metrics.refuse(endpoint, "bad_resume_token");
            return refusal(StatusCode::BAD_REQUEST, error);
        }
    };
    if let Err(status) = state.subscriptions.check_capacity(Transport::Sse) {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, status.message());
    }
    let mut request = query.request;
    if let Some(resumed) = &resumed {
        request.resume_from = resumed.to_positions();
    }
    if let Err(error) = grant.authorize(&mut request) {
        return auth_refusal(&state, &error);
    }
    // The first token holds where the subscriber starts, so a reconnect before any event
    // resumes from there too.
    let mut positions = Positions::new();
    positions.advance_all(&request.resume_from);
    let subscription = match state.hub.subscribe(&request, Transport::Sse).await {
        Ok(subscription) => subscription,
        Err(error) if error.is_unavailable() => {
            return refusal(StatusCode::SERVICE_UNAVAILABLE, error);
        }
        Err(error) => return refusal(StatusCode::BAD_REQUEST, error),
    };
    tracing::debug!(
        resumed = resumed.is_some(),
        subject = grant.subject(),
        "sse subscriber joined"
    );
    let writer = Writer {
        subscription,
        positions,
        expires: grant.deadline(),
        metrics: state.metrics.clone(),
        ended: false,
    };
    let mut response = Body::from_stream(messages(writer)).into_response();
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
fn messages(writer: Writer) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let first = Bytes::from(format!(": streamweaver\nretry: {RETRY_MILLIS}\n\n"));
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
    /// When the subscriber's token expires (the stream ends then).
    expires: Option<Instant>,
    metrics: Metrics,
    ended: bool,
}

impl Writer {
    /// The next chunk, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        let mut chunk = BytesMut::new();
        let expires = self.expires;
        let expiry = async {
            match expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            next = self.subscription.next() => next,
            () = expiry => {
                self.metrics.refuse(Transport::Sse.name(), AuthError::Expired.reason());
                self.ended = true;
                self.put_error(&mut chunk, "UNAUTHENTICATED", AuthError::Expired.to_string());
                return Some(chunk.freeze());
            }
        };
        match next {
            Ok(outgoing) => self.write(&mut chunk, &outgoing),
            Err(why) => {
                self.end(&mut chunk, why);
                return (!chunk.is_empty()).then(|| chunk.freeze());
            }
        }
        let mut count = 1;
        while chunk.len() < MAX_CHUNK_BYTES && count < MAX_CHUNK_MESSAGES {
            match self.subscription.try_next() {
                Some(Ok(outgoing)) => self.write(&mut chunk, &outgoing),
                Some(Err(why)) => {
                    self.end(&mut chunk, why);
                    break;
                }
                None => break,
            }
            count += 1;
        }
        Some(chunk.freeze())
    }

    /// Writes one message: `id:` the positions after it, `data:` its JSON (an event's shared
    /// encoding).
    fn write(&mut self, chunk: &mut BytesMut, outgoing: &Outgoing) {
        match outgoing {
            Outgoing::Event(event) => self.observe_event(event),
            Outgoing::Message(message) => self.observe(message),
        }
        self.put(chunk, &json_of(outgoing));
    }

    fn put(&self, chunk: &mut BytesMut, data: &[u8]) {
        chunk.put_slice(b"id: ");
        chunk.put_slice(self.positions.token().as_bytes());
        chunk.put_slice(b"\ndata: ");
        // Compact JSON holds no newline (one inside a string is escaped): one data line.
        chunk.put_slice(data);
        chunk.put_slice(b"\n\n");
    }

    fn observe_event(&mut self, event: &SharedEvent) {
        self.positions
            .advance(event.topic(), event.partition(), event.offset());
    }

    fn observe(&mut self, message: &SubscribeResponse) {
        match &message.kind {
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
            Some(Kind::Event(_) | Kind::Error(_)) | None => {}
        }
    }

    /// The stream ends; the browser reconnects with its last token. Only a failed backfill is
    /// worth a word first.
    fn end(&mut self, chunk: &mut BytesMut, why: Ended) {
        self.ended = true;
        if let Ended::ReplayUnavailable(message) = why {
            self.put_error(chunk, "UNAVAILABLE", message);
        }
    }

    /// Writes an `error` response.
    fn put_error(&self, chunk: &mut BytesMut, code: &str, message: String) {
        let error = Outgoing::Message(Box::new(SubscribeResponse {
            kind: Some(Kind::Error(StreamError {
                code: code.into(),
                message,
            })),
        }));
        self.put(chunk, &json_of(&error));
    }
}
