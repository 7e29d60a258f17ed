//! The gateway's flags, each with an environment fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use streamweaver_common::duration::parse_duration;

use crate::{
    hub::{MAX_SAMPLE_INTERVAL, MIN_SAMPLE_INTERVAL, PolicyKind},
    replay::ReplaySettings,
};

/// Everything `gateway` can be told.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Address of the one port for gRPC, grpc-web, WebSocket (/ws), /metrics and /healthz.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Bearer token that IngestService/Publish requires.
    #[arg(long, env = "STREAMWEAVER_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: String,
    /// Browser origins allowed for grpc-web (CORS) and WebSocket, comma-separated; `*` allows any.
    #[arg(
        long,
        env = "GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:3000,http://127.0.0.1:3000"
    )]
    pub allowed_origins: Vec<String>,
    /// Events a subscriber's queue holds before its slow-client policy acts.
    #[arg(long, env = "GATEWAY_SUBSCRIBER_BUFFER", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub subscriber_buffer: u32,
    /// Bytes (of encoded events) a subscriber's queue holds before its slow-client policy acts.
    #[arg(long, env = "GATEWAY_SUBSCRIBER_BUFFER_BYTES", default_value_t = 4 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(1 << 32)))]
    pub subscriber_buffer_bytes: u64,
    /// What happens to a subscriber that falls behind, unless its request says: gap (skip ahead
    /// with a gap notice), disconnect, latest-per-key (conflate) or sample.
    #[arg(long, env = "GATEWAY_SLOW_CLIENT_POLICY", value_enum, default_value_t = PolicyKind::Gap)]
    pub slow_client_policy: PolicyKind,
    /// Sample interval of SAMPLE subscriptions whose request does not set one.
    #[arg(long, env = "GATEWAY_SAMPLE_INTERVAL", default_value = "1s", value_parser = sample_interval)]
    pub sample_interval: Duration,
    /// Most recent events kept in memory per partition, for subscribers that resume or start in
    /// the past (older ones are read back from Kafka).
    #[arg(long, env = "GATEWAY_HISTORY", default_value_t = 10_000)]
    pub history: usize,
    /// Events older than this leave the in-memory history.
    #[arg(long, env = "GATEWAY_HISTORY_MAX_AGE", default_value = "10m", value_parser = parse_duration)]
    pub history_max_age: Duration,
    /// Longest wait for Kafka when an offset went backwards or jumped far ahead (ingest waits).
    #[arg(long, env = "GATEWAY_OFFSET_CHECK_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub offset_check_timeout: Duration,
    /// How long a backfill keeps retrying while Kafka cannot be read before it skips the
    /// offsets it could not read (with a gap notice naming them) and goes on live.
    #[arg(long, env = "GATEWAY_REPLAY_RETRY_FOR", default_value = "10s", value_parser = parse_duration)]
    pub replay_retry_for: Duration,
    /// Most subscribers at once, over all transports.
    #[arg(long, env = "GATEWAY_MAX_SUBSCRIBERS", default_value_t = 10_000)]
    pub max_subscribers: usize,
    /// Largest Publish message accepted (a SubscribeRequest may be at most 64 KiB).
    #[arg(long, env = "GATEWAY_MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// A subscription that had nothing to send for this long gets a heartbeat.
    #[arg(long, env = "GATEWAY_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// A Publish stream that sends nothing for this long is ended.
    #[arg(long, env = "GATEWAY_INGEST_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub ingest_idle_timeout: Duration,
    /// How often idle WebSockets are pinged; one silent for three intervals is closed.
    #[arg(long, env = "GATEWAY_WS_PING_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,
    /// Batched WebSockets: a frame sent less than this after the previous one waits out the rest
    /// of it, so a busy socket sends fewer, larger frames; a quiet one sends at once (0: never
    /// wait). At most 100 ms.
    #[arg(long, env = "GATEWAY_WS_BATCH_LINGER", default_value = "5ms", value_parser = batch_linger)]
    pub ws_batch_linger: Duration,
    /// Kafka bootstrap servers (host:port, comma-separated): the gateway reads Kafka itself to
    /// replay what resuming subscribers missed.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,
    /// `fetch.wait.max.ms` of replay reads (tansu answers a fetch only when this runs out).
    #[arg(long, env = "GATEWAY_REPLAY_FETCH_WAIT_MAX_MS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub replay_fetch_wait_max_ms: u32,
    /// Most calls waiting on Kafka at once for replays; more wait their turn.
    #[arg(long, env = "GATEWAY_REPLAY_MAX_CONCURRENT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub replay_max_concurrent: u16,
    /// Bytes of decoded replay chunks kept, so subscribers resuming from the same place share
    /// one read of Kafka.
    #[arg(long, env = "GATEWAY_REPLAY_CACHE_BYTES", default_value_t = 64 << 20)]
    pub replay_cache_bytes: usize,
    /// Largest record value a replay decodes (as the consumer's `--max-value-bytes`).
    #[arg(long, env = "GATEWAY_REPLAY_MAX_VALUE_BYTES", default_value_t = 1 << 20)]
    pub replay_max_value_bytes: usize,
    /// Connections: caps, timeouts, HTTP/2, TLS.
    #[command(flatten)]
    pub connections: ConnectionArgs,
    /// Who may subscribe and publish.
    #[command(flatten)]
    pub access: AccessArgs,
}

impl GatewayArgs {
    /// The replay component's settings.
    pub fn replay_settings(&self) -> ReplaySettings {
        ReplaySettings {
            bootstrap_servers: self.kafka_bootstrap_servers.clone(),
            fetch_wait_max_ms: self.replay_fetch_wait_max_ms,
            max_concurrent_reads: usize::from(self.replay_max_concurrent),
            max_value_bytes: self.replay_max_value_bytes,
            cache_bytes: self.replay_cache_bytes,
        }
    }
}

/// How the port takes connections: caps, timeouts, HTTP/2 settings, TLS.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connections")]
pub struct ConnectionArgs {
    /// Most client connections open at once, over every protocol (a WebSocket is one connection;
    /// an HTTP/2 connection carries up to --http2-max-concurrent-streams gRPC calls).
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections open at once from one client address (IPv6: one /64). Behind a proxy or
    /// load balancer every client shares its address: set this to --max-connections.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS_PER_IP", default_value_t = 12_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,
    /// Time a new connection has for its TLS handshake and first request head, and an HTTP/1
    /// connection for each later request head (slow senders are closed).
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A WebSocket that has not subscribed this long after opening is closed.
    #[arg(long, env = "GATEWAY_WS_SUBSCRIBE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub ws_subscribe_timeout: Duration,
    /// How often a quiet HTTP/2 connection is pinged.
    #[arg(long, env = "GATEWAY_HTTP2_KEEPALIVE_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// An HTTP/2 ping unanswered this long closes the connection (a dead peer).
    #[arg(long, env = "GATEWAY_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub http2_keepalive_timeout: Duration,
    /// Most concurrent HTTP/2 streams (gRPC calls) on one connection.
    #[arg(long, env = "GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,
    /// On shutdown, how long open connections get to finish before they are closed.
    #[arg(long, env = "GATEWAY_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// PEM certificate chain: with --tls-key, the port speaks TLS only (ALPN h2, http/1.1).
    #[arg(long, env = "GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Who may subscribe and who may publish, beyond --publish-token.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Access")]
pub struct AccessArgs {
    /// PEM CA(s): Publish then also needs a client certificate signed by one (mutual TLS).
    /// Needs --tls-cert.
    #[arg(long, env = "GATEWAY_PUBLISH_CLIENT_CA", requires = "tls_cert")]
    pub publish_client_ca: Option<PathBuf>,
    /// HMAC secret of subscriber JWTs (HS256/384/512). With this or --subscribe-jwt-public-key,
    /// subscribers need a token; without either, subscribing is open.
    #[arg(
        long,
        env = "STREAMWEAVER_SUBSCRIBE_JWT_SECRET",
        hide_env_values = true
    )]
    pub subscribe_jwt_secret: Option<String>,
    /// PEM public key of subscriber JWTs: RSA (RS*/PS*), EC P-256/P-384 (ES256/ES384) or Ed25519.
    #[arg(long, env = "GATEWAY_SUBSCRIBE_JWT_PUBLIC_KEY")]
    pub subscribe_jwt_public_key: Option<PathBuf>,
    /// Clock skew allowed on a JWT's exp and nbf.
    #[arg(long, env = "GATEWAY_SUBSCRIBE_JWT_LEEWAY", default_value = "30s", value_parser = parse_duration)]
    pub subscribe_jwt_leeway: Duration,
}

fn sample_interval(value: &str) -> Result<Duration, String> {
    let interval = parse_duration(value)?;
    if (MIN_SAMPLE_INTERVAL..=MAX_SAMPLE_INTERVAL).contains(&interval) {
        Ok(interval)
    } else {
        Err(format!(
            "{value:?} is outside {} ms to {} s",
            MIN_SAMPLE_INTERVAL.as_millis(),
            MAX_SAMPLE_INTERVAL.as_secs()
        ))
    }
}

/// Longest `--ws-batch-linger`: beyond it the wait is latency a user sees.
pub const MAX_BATCH_LINGER: Duration = Duration::from_millis(100);

fn batch_linger(value: &str) -> Result<Duration, String> {
    let linger = parse_duration(value)?;
    if linger <= MAX_BATCH_LINGER {
        Ok(linger)
    } else {
        Err(format!(
            "{value:?} is longer than {} ms",
            MAX_BATCH_LINGER.as_millis()
        ))
    }
}
