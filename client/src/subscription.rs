//! A subscription that survives its connection: it subscribes, yields what the gateway sends,
//! and when the connection fails or goes silent, waits a jittered backoff and subscribes again
//! from the last positions, so the events continue exactly where they stopped.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use futures::{Stream, StreamExt, stream::BoxStream};
use rand::{SeedableRng, rngs::StdRng};
use streamweaver_proto::{
    time,
    topics::Topic,
    v1::{
        Event, GapNotice, Heartbeat, LogLevel, Position, PositionsReset, SlowClientPolicy,
        SubscribeRequest, SubscribeResponse, start_at::Point,
        stream_service_client::StreamServiceClient, subscribe_response::Kind,
    },
};
use tokio::time::Instant;
use tonic::{
    Code,
    metadata::MetadataValue,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

use crate::{backoff::Backoff, error::ClientError, positions::Positions};

/// The gateway's default `--heartbeat`.
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Heartbeats that may go missing before the connection is taken for dead.
const DEFAULT_MISSED_HEARTBEATS: u32 = 3;
/// Largest message accepted from the gateway (its own default limit).
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Where a subscription starts in the partitions it has no position for.
///
/// ```
/// use std::time::Duration;
/// use streamweaver_client::{StartAt, Subscription, Topic};
///
/// // The last five minutes of trades, then live.
/// let builder = Subscription::builder("http://localhost:8080")
///     .topics([Topic::StockTrades])
///     .start_at(StartAt::Last(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Live events only (the default): what is published from the moment of subscribing.
    #[default]
    Live,
    /// Everything Kafka still holds.
    Earliest,
    /// Events at or after this time.
    Time(SystemTime),
    /// Events of this last stretch of time.
    Last(Duration),
}

/// One thing a subscription has to say: an event, or news about the stream a service may act on.
///
/// ```no_run
/// use futures::StreamExt;
/// use streamweaver_client::{Subscription, Update};
///
/// # async fn follow() -> Result<(), streamweaver_client::ClientError> {
/// let mut updates = Subscription::builder("http://localhost:8080").subscribe()?;
/// while let Some(update) = updates.next().await {
///     match update? {
///         Update::Event(event) => println!("{} {}", event.topic, event.key),
///         Update::Gap(gap) => eprintln!("missed {} events: {}", gap.missed_events, gap.reason),
///         Update::Reset(reset) => eprintln!("offsets started again: {}", reset.reason),
///         Update::Disconnected { error, retry_in } => eprintln!("{error}; retrying in {retry_in:?}"),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
// Events are nearly every update: boxing them would cost an allocation each to shrink the rare
// notices.
#[allow(clippy::large_enum_variant)]
pub enum Update {
    /// An event, delivered once: never one at or before a position already delivered in its
    /// partition, across any number of reconnections.
    Event(Event),
    /// The gateway skipped events (this subscriber fell behind under the GAP policy, or Kafka no
    /// longer holds them): `missed` names exactly which offsets.
    Gap(GapNotice),
    /// Partitions' offsets started again (a recreated topic): their positions were replaced.
    Reset(PositionsReset),
    /// The gateway had nothing to send for a while; its positions were taken in.
    Heartbeat(Heartbeat),
    /// The subscription is live for the first time: the gateway took the request.
    Connected,
    /// The subscription is live again after a disconnection, resumed from `resumed_from`.
    Reconnected {
        /// The positions the new connection resumed from.
        resumed_from: Vec<Position>,
        /// How long no connection was live.
        downtime: Duration,
    },
    /// The connection failed or went silent; the next attempt comes after `retry_in`.
    Disconnected {
        /// What happened.
        error: ClientError,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
}

/// Where the bearer token comes from.
#[derive(Clone)]
enum Token {
    Fixed(String),
    /// Asked at every attempt, so an expiring JWT can be renewed.
    Fresh(Arc<dyn Fn() -> String + Send + Sync>),
}

/// How to follow the gateway; made with [`Subscription::builder`], ended with
/// [`subscribe`](SubscriptionBuilder::subscribe).
///
/// Every filter narrows only its own topic, as on the gateway: `symbols` applies to trades and
/// bars, `authors` and `hashtags` to posts, `services` and `log_levels` to log lines.
///
/// ```
/// use std::time::Duration;
/// use streamweaver_client::{Backoff, Subscription, Topic, proto::v1::{LogLevel, SlowClientPolicy}};
///
/// let builder = Subscription::builder("https://gateway.example:8080")
///     .topics([Topic::StockTrades, Topic::ServerLogs])
///     .symbols(["AAPL", "NVDA"])
///     .log_levels([LogLevel::Error])
///     .slow_client_policy(SlowClientPolicy::Disconnect)
///     .bearer_token("eyJhbGciOi…")
///     .backoff(Backoff::new(Duration::from_millis(200), Duration::from_secs(30)))
///     .heartbeat_interval(Duration::from_secs(15));
/// ```
#[derive(Clone)]
pub struct SubscriptionBuilder {
    url: String,
    request: SubscribeRequest,
    start_at: StartAt,
    token: Option<Token>,
    tls: Option<ClientTlsConfig>,
    backoff: Backoff,
    heartbeat_interval: Duration,
    missed_heartbeats: u32,
    max_attempts: Option<u32>,
}

impl std::fmt::Debug for SubscriptionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionBuilder")
            .field("url", &self.url)
            .field("request", &self.request)
            .field("start_at", &self.start_at)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .field("backoff", &self.backoff)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("missed_heartbeats", &self.missed_heartbeats)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

fn strings<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    values.into_iter().map(Into::into).collect()
}

fn proto_duration(duration: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: duration.subsec_nanos() as i32,
    }
}

impl SubscriptionBuilder {
    fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            request: SubscribeRequest::default(),
            start_at: StartAt::Live,
            token: None,
            tls: None,
            backoff: Backoff::default(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            missed_heartbeats: DEFAULT_MISSED_HEARTBEATS,
            max_attempts: None,
        }
    }

    /// The topics to follow; none (the default) means every topic.
    pub fn topics(mut self, topics: impl IntoIterator<Item = Topic>) -> Self {
        self.request.topics = topics.into_iter().map(|t| t.name().to_owned()).collect();
        self
    }

    /// Only trades and bars of these symbols.
    pub fn symbols<S: Into<String>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.request.symbols = strings(symbols);
        self
    }

    /// Only posts by these authors.
    pub fn authors<S: Into<String>>(mut self, authors: impl IntoIterator<Item = S>) -> Self {
        self.request.authors = strings(authors);
        self
    }

    /// Only posts with at least one of these hashtags (without the `#`).
    pub fn hashtags<S: Into<String>>(mut self, hashtags: impl IntoIterator<Item = S>) -> Self {
        self.request.hashtags = strings(hashtags);
        self
    }

    /// Only log lines of these services.
    pub fn services<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.request.services = strings(services);
        self
    }

    /// Only log lines of these levels.
    pub fn log_levels(mut self, levels: impl IntoIterator<Item = LogLevel>) -> Self {
        self.request.log_levels = levels.into_iter().map(i32::from).collect();
        self
    }

    // Follow-up: `filter(expression)` for `SubscribeRequest.filter` (CEL), once that field is in
    // the contract.

    /// What the gateway does when this subscriber falls behind. A service that must not miss
    /// events wants [`SlowClientPolicy::Disconnect`]: it is dropped, reconnects, and resumes
    /// from its positions, reading back from Kafka what it had not taken yet.
    pub fn slow_client_policy(mut self, policy: SlowClientPolicy) -> Self {
        self.request.slow_client_policy = policy.into();
        self
    }

    /// With [`SlowClientPolicy::Sample`]: at most one event per key per `interval`.
    pub fn sample_interval(mut self, interval: Duration) -> Self {
        self.request.sample_interval = Some(proto_duration(interval));
        self
    }

    /// Where to start in partitions without a position (default: live).
    pub fn start_at(mut self, start_at: StartAt) -> Self {
        self.start_at = start_at;
        self
    }

    /// Positions to resume from, e.g. what a previous run of the service had processed: the
    /// subscription delivers only events after them in their partitions.
    pub fn resume_from(mut self, positions: impl IntoIterator<Item = Position>) -> Self {
        self.request.resume_from = positions.into_iter().collect();
        self
    }

    /// Presents `token` as `authorization: Bearer <token>` (a shared token or a signed JWT).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token::Fixed(token.into()));
        self
    }

    /// Asks `token` for the bearer token at every connection attempt, so a JWT can be renewed
    /// before it expires. With it, `UNAUTHENTICATED` is retried (with a fresh token) instead of
    /// ending the subscription.
    pub fn bearer_token_with(mut self, token: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.token = Some(Token::Fresh(Arc::new(token)));
        self
    }

    /// TLS settings (tonic's [`ClientTlsConfig`]). An `https://` address without them trusts
    /// the system's root certificates.
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// TLS trusting only the CA certificate(s) in `pem`, e.g. a private CA's `ca.pem`.
    pub fn tls_ca_pem(self, pem: impl AsRef<[u8]>) -> Self {
        self.tls(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
    }

    /// How long to wait between connection attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The gateway's `--heartbeat` (default 15 s, as the gateway's). With
    /// [`missed_heartbeats`](Self::missed_heartbeats), it sets the watchdog: a connection that
    /// brings nothing for that many intervals is dropped and made again.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How many heartbeat intervals of silence the watchdog tolerates (default 3, at least 1).
    pub fn missed_heartbeats(mut self, missed: u32) -> Self {
        self.missed_heartbeats = missed.max(1);
        self
    }

    /// Ends the subscription with [`ClientError::GaveUp`] after `attempts` failed attempts in a
    /// row (default: retry for ever).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// The subscription, as a stream of updates. It connects when first polled. The address,
    /// TLS settings and token are checked here.
    pub fn subscribe(self) -> Result<Subscription, ClientError> {
        let watchdog = self.heartbeat_interval * self.missed_heartbeats;
        let mut endpoint =
            Endpoint::from_shared(self.url.clone()).map_err(|source| ClientError::InvalidUrl {
                url: self.url.clone(),
                source,
            })?;
        let tls = match self.tls.clone() {
            Some(tls) => Some(tls),
            None if self.url.starts_with("https:") => {
                Some(ClientTlsConfig::new().with_enabled_roots())
            }
            None => None,
        };
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(ClientError::Tls)?;
        }
        let endpoint = endpoint
            .connect_timeout(watchdog.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            // HTTP/2 pings find a dead connection too, but only after the watchdog would: a
            // silent connection is reported as the watchdog's.
            .http2_keep_alive_interval(watchdog)
            .keep_alive_timeout(watchdog);
        if let Some(Token::Fixed(token)) = &self.token {
            bearer(token)?;
        }
        let positions = Arc::new(Mutex::new(Positions::from_positions(
            &self.request.resume_from,
        )));
        let duplicates = Arc::new(AtomicU64::new(0));
        let driver = Driver {
            endpoint,
            request: self.request,
            start_at: self.start_at,
            token: self.token,
            backoff: self.backoff,
            watchdog,
            max_attempts: self.max_attempts,
            positions: positions.clone(),
            duplicates: duplicates.clone(),
            stream: None,
            failures: 0,
            retry_at: None,
            disconnected_at: None,
            live_since: None,
            done: false,
            rng: StdRng::from_os_rng(),
        };
        let updates = futures::stream::unfold(driver, |mut driver| async move {
            let update = driver.next_update().await?;
            Some((update, driver))
        })
        .boxed();
        Ok(Subscription {
            updates,
            positions,
            duplicates,
        })
    }
}

fn bearer(token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, ClientError> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| ClientError::InvalidToken)
}

/// A live subscription to a gateway: a [`Stream`] of [`Update`]s that reconnects by itself.
///
/// It ends (yields `None`) only after yielding an `Err` that no retry can cure: a refused
/// request or credential, or [`max_attempts`](SubscriptionBuilder::max_attempts) failures in a row.
///
/// ```no_run
/// use futures::StreamExt;
/// use streamweaver_client::{Subscription, Topic, Update};
///
/// # async fn follow() -> Result<(), streamweaver_client::ClientError> {
/// let mut trades = Subscription::builder("http://localhost:8080")
///     .topics([Topic::StockTrades])
///     .subscribe()?;
/// while let Some(update) = trades.next().await {
///     if let Update::Event(event) = update? {
///         // Save `trades.positions()` with what the event produced, and pass them to
///         // `resume_from` when the service starts again.
///         println!("{event:?} at {:?}", trades.positions());
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Subscription {
    updates: BoxStream<'static, Result<Update, ClientError>>,
    positions: Arc<Mutex<Positions>>,
    duplicates: Arc<AtomicU64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("positions", &*lock(&self.positions))
            .finish_non_exhaustive()
    }
}

fn lock(positions: &Mutex<Positions>) -> MutexGuard<'_, Positions> {
    // Positions are replaced whole under the lock; a poisoned one is still consistent.
    positions.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subscription {
    /// How to follow the gateway at `url` (`http://host:8080`, or `https://` with TLS).
    pub fn builder(url: impl Into<String>) -> SubscriptionBuilder {
        SubscriptionBuilder::new(url)
    }

    /// The positions as of the last update yielded: where a new subscription would resume to
    /// miss nothing and repeat nothing.
    pub fn positions(&self) -> Vec<Position> {
        lock(&self.positions).to_vec()
    }

    /// Events the gateway sent at or before a position already delivered, and that were
    /// dropped. A gateway that resumes exactly sends none; this counts what the library caught.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
}

impl Stream for Subscription {
    type Item = Result<Update, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.updates.poll_next_unpin(cx)
    }
}

/// The state behind a [`Subscription`]: one connection at a time, and what to do when it fails.
struct Driver {
    endpoint: Endpoint,
    request: SubscribeRequest,
    start_at: StartAt,
    token: Option<Token>,
    backoff: Backoff,
    watchdog: Duration,
    max_attempts: Option<u32>,
    positions: Arc<Mutex<Positions>>,
    duplicates: Arc<AtomicU64>,
    stream: Option<tonic::Streaming<SubscribeResponse>>,
    /// Attempts that failed since a connection last brought a message.
    failures: u32,
    retry_at: Option<Instant>,
    disconnected_at: Option<Instant>,
    /// When the first connection attempt that succeeded began: on later connections, partitions
    /// without a position start there, so what they published meanwhile is not missed.
    live_since: Option<SystemTime>,
    done: bool,
    rng: StdRng,
}

impl Driver {
    async fn next_update(&mut self) -> Option<Result<Update, ClientError>> {
        loop {
            if self.done {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                if let Some(at) = self.retry_at.take() {
                    tokio::time::sleep_until(at).await;
                }
                let attempt_began = SystemTime::now();
                let opened = tokio::time::timeout(self.watchdog, self.open())
                    .await
                    .unwrap_or(Err(ClientError::Watchdog {
                        silent_for: self.watchdog,
                    }));
                match opened {
                    Ok(stream) => {
                        self.stream = Some(stream);
                        return Some(Ok(self.connected(attempt_began)));
                    }
                    Err(error) => return Some(self.failed(error)),
                }
            };
            let response = match tokio::time::timeout(self.watchdog, stream.message()).await {
                Err(_) => Err(ClientError::Watchdog {
                    silent_for: self.watchdog,
                }),
                Ok(Err(status)) => Err(ClientError::Status(status)),
                Ok(Ok(None)) => Err(ClientError::StreamEnded),
                Ok(Ok(Some(response))) => Ok(response),
            };
            match response {
                Err(error) => return Some(self.failed(error)),
                Ok(response) => {
                    self.failures = 0;
                    if let Some(update) = self.apply(response) {
                        return Some(update);
                    }
                }
            }
        }
    }

    /// Connects and subscribes, resuming from the current positions.
    async fn open(&self) -> Result<tonic::Streaming<SubscribeResponse>, ClientError> {
        let channel = self
            .endpoint
            .connect()
            .await
            .map_err(ClientError::Connect)?;
        let mut client =
            StreamServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(self.request_now());
        let token = match &self.token {
            Some(Token::Fixed(token)) => Some(token.clone()),
            Some(Token::Fresh(token)) => Some(token()),
            None => None,
        };
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", bearer(&token)?);
        }
        Ok(client.subscribe(request).await?.into_inner())
    }

    /// The request for the next attempt: the filters, the current positions, and where the
    /// partitions without one start.
    fn request_now(&self) -> SubscribeRequest {
        let mut request = self.request.clone();
        request.resume_from = lock(&self.positions).to_vec();
        let point = match (self.start_at, self.live_since) {
            (StartAt::Live, None) => None,
            (StartAt::Earliest, _) => Some(Point::Earliest(true)),
            (StartAt::Time(at), _) => Some(Point::Time(time::timestamp(at))),
            (StartAt::Last(last), None) => Some(Point::Last(proto_duration(last))),
            // Reconnecting: from the same instant the first connection started from.
            (StartAt::Last(last), Some(since)) => Some(Point::Time(time::timestamp(
                since.checked_sub(last).unwrap_or(SystemTime::UNIX_EPOCH),
            ))),
            (StartAt::Live, Some(since)) => Some(Point::Time(time::timestamp(since))),
        };
        request.start_at =
            point.map(|point| streamweaver_proto::v1::StartAt { point: Some(point) });
        request
    }

    fn connected(&mut self, attempt_began: SystemTime) -> Update {
        let Some(disconnected_at) = self.disconnected_at.take() else {
            self.live_since = Some(attempt_began);
            tracing::debug!("subscribed");
            return Update::Connected;
        };
        let resumed_from = lock(&self.positions).to_vec();
        tracing::info!(positions = resumed_from.len(), "resubscribed");
        Update::Reconnected {
            resumed_from,
            downtime: disconnected_at.elapsed(),
        }
    }

    /// Ends the subscription on an error no retry can cure; otherwise schedules the next attempt.
    fn failed(&mut self, error: ClientError) -> Result<Update, ClientError> {
        self.stream = None;
        self.disconnected_at.get_or_insert_with(Instant::now);
        let renewable = matches!(self.token, Some(Token::Fresh(_)))
            && error.code() == Some(Code::Unauthenticated);
        if error.is_fatal() && !renewable {
            self.done = true;
            return Err(error);
        }
        self.failures += 1;
        if let Some(max) = self.max_attempts
            && self.failures >= max
        {
            self.done = true;
            return Err(ClientError::GaveUp {
                attempts: self.failures,
                last: Box::new(error),
            });
        }
        let retry_in = self.backoff.delay(self.failures - 1, &mut self.rng);
        self.retry_at = Some(Instant::now() + retry_in);
        tracing::warn!(%error, ?retry_in, "subscription interrupted");
        Ok(Update::Disconnected { error, retry_in })
    }

    /// Takes one response in: positions move, duplicates are dropped (`None`).
    fn apply(&mut self, response: SubscribeResponse) -> Option<Result<Update, ClientError>> {
        let mut positions = lock(&self.positions);
        let update = match response.kind? {
            Kind::Event(event) => {
                if !positions.admit(&event) {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        topic = event.topic,
                        partition = event.partition,
                        offset = event.offset,
                        "dropped an event delivered before"
                    );
                    return None;
                }
                Update::Event(event)
            }
            Kind::Gap(gap) => {
                positions.apply_gap(&gap);
                Update::Gap(gap)
            }
            Kind::Heartbeat(heartbeat) => {
                positions.apply_heartbeat(&heartbeat);
                Update::Heartbeat(heartbeat)
            }
            Kind::Reset(reset) => {
                positions.apply_reset(&reset);
                Update::Reset(reset)
            }
            Kind::Error(error) => {
                drop(positions);
                return Some(self.failed(ClientError::Server {
                    code: error.code,
                    message: error.message,
                }));
            }
        };
        Some(Ok(update))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(builder: SubscriptionBuilder) -> Driver {
        let positions = Arc::new(Mutex::new(Positions::from_positions(
            &builder.request.resume_from,
        )));
        Driver {
            endpoint: Endpoint::from_static("http://127.0.0.1:1"),
            request: builder.request,
            start_at: builder.start_at,
            token: builder.token,
            backoff: builder.backoff,
            watchdog: Duration::from_secs(1),
            max_attempts: builder.max_attempts,
            positions,
            duplicates: Arc::default(),
            stream: None,
            failures: 0,
            retry_at: None,
            disconnected_at: None,
            live_since: None,
            done: false,
            rng: StdRng::seed_from_u64(1),
        }
    }

    fn position(offset: i64) -> Position {
        Position {
            topic: Topic::StockTrades.name().into(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn reconnecting_resumes_from_positions_and_keeps_the_start_instant() {
        let mut driver = driver(
            Subscription::builder("http://127.0.0.1:1")
                .topics([Topic::StockTrades])
                .symbols(["AAPL"])
                .resume_from([position(9)]),
        );
        let first = driver.request_now();
        assert_eq!(first.resume_from, [position(9)]);
        assert_eq!(first.start_at, None, "live");
        assert_eq!(first.symbols, ["AAPL"]);

        let began = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(matches!(driver.connected(began), Update::Connected));
        lock(&driver.positions).advance(&position(20));
        let again = driver.request_now();
        assert_eq!(again.resume_from, [position(20)]);
        assert_eq!(
            again.start_at.and_then(|s| s.point),
            Some(Point::Time(pbjson_types::Timestamp {
                seconds: 1_000,
                nanos: 0
            })),
            "partitions never seen start where the first connection did"
        );
    }

    #[test]
    fn outages_are_retried_with_growing_waits_and_refusals_end_it() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut driver = driver(
            Subscription::builder("http://127.0.0.1:1")
                .backoff(backoff)
                .max_attempts(6),
        );
        for attempt in 0..5 {
            match driver.failed(ClientError::StreamEnded) {
                Ok(Update::Disconnected { retry_in, .. }) => {
                    let ceiling = backoff.ceiling(attempt);
                    assert!(
                        retry_in >= ceiling / 2 && retry_in <= ceiling,
                        "{retry_in:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            driver.failed(ClientError::StreamEnded),
            Err(ClientError::GaveUp { attempts: 6, .. })
        ));
        assert!(driver.done);

        let mut refused = self::driver(Subscription::builder("http://127.0.0.1:1"));
        let status = tonic::Status::unauthenticated("no");
        assert!(matches!(
            refused.failed(ClientError::Status(status.clone())),
            Err(ClientError::Status(_))
        ));
        let mut renewing = self::driver(
            Subscription::builder("http://127.0.0.1:1").bearer_token_with(|| "fresh".into()),
        );
        assert!(
            matches!(
                renewing.failed(ClientError::Status(status)),
                Ok(Update::Disconnected { .. })
            ),
            "a renewable token is asked again"
        );
    }

    #[test]
    fn bad_addresses_and_tokens_are_refused_up_front() {
        assert!(matches!(
            Subscription::builder("not a url").subscribe(),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Subscription::builder("http://localhost:8080")
                .bearer_token("line\nbreak")
                .subscribe(),
            Err(ClientError::InvalidToken)
        ));
    }
}
