//! The StreamWeaver contract, generated at build time from `proto/streamweaver/v1`.
//!
//! Every Rust member uses these types, so producers, consumer, gateway and tests cannot drift
//! apart. The messages also carry serde impls in the proto3 JSON mapping (pbjson), which is what
//! the WebSocket endpoint speaks and what JSON Kafka records are decoded with.

/// `streamweaver.v1`: events, the ingest service and the stream service.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("streamweaver.v1");
    include!(concat!(env!("OUT_DIR"), "/streamweaver.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of every StreamWeaver proto (and the well-known types they
/// import), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/streamweaver_descriptor.bin"));

/// The Kafka topics StreamWeaver carries, named as in the seed.
pub mod topics {
    /// Stock trades, keyed by symbol.
    pub const STOCK_TRADES: &str = "stock_trades";
    /// Social posts, keyed by author.
    pub const SOCIAL_FEED: &str = "social_feed";
    /// Server log lines, keyed by service.
    pub const SERVER_LOGS: &str = "server_logs";
    /// Every event topic, in a fixed order.
    pub const ALL: [&str; 3] = [STOCK_TRADES, SOCIAL_FEED, SERVER_LOGS];
}

/// Conversions between `google.protobuf.Timestamp` and [`SystemTime`](std::time::SystemTime).
pub mod time {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use pbjson_types::Timestamp;

    /// `time` as a Protobuf timestamp (times before 1970 are clamped to the epoch).
    pub fn timestamp(time: SystemTime) -> Timestamp {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            nanos: since_epoch.subsec_nanos() as i32,
        }
    }

    /// A Protobuf timestamp as a [`SystemTime`], or `None` when it is before 1970 or malformed.
    pub fn system_time(timestamp: &Timestamp) -> Option<SystemTime> {
        let seconds = u64::try_from(timestamp.seconds).ok()?;
        let nanos = u32::try_from(timestamp.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)?;
        UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
    }

    /// How long ago `timestamp` was, measured against `now`; zero for a time in the future.
    pub fn age(timestamp: &Timestamp, now: SystemTime) -> Option<Duration> {
        Some(
            now.duration_since(system_time(timestamp)?)
                .unwrap_or_default(),
        )
    }
}
