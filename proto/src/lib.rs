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

/// The Kafka topics StreamWeaver carries, named as in the original Python design.
pub mod topics {
    use std::{fmt, str::FromStr};

    /// Stock trades, keyed by symbol.
    pub const STOCK_TRADES: &str = "stock_trades";
    /// Social posts, keyed by author.
    pub const SOCIAL_FEED: &str = "social_feed";
    /// Server log lines, keyed by service.
    pub const SERVER_LOGS: &str = "server_logs";
    /// One-second OHLC bars of the stock trades, keyed by symbol, made by the trade-bars service.
    pub const TRADE_BARS: &str = "trade_bars";
    /// Every event topic's name, in [`Topic::ALL`]'s order.
    pub const ALL: [&str; 4] = [STOCK_TRADES, SOCIAL_FEED, SERVER_LOGS, TRADE_BARS];

    /// One of the topics StreamWeaver carries: a closed set, so a topic is checked once, where
    /// it comes in, and is a small `Copy` value everywhere after.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Topic {
        /// `stock_trades`.
        StockTrades,
        /// `social_feed`.
        SocialFeed,
        /// `server_logs`.
        ServerLogs,
        /// `trade_bars`.
        TradeBars,
    }

    impl Topic {
        /// Every topic, in a fixed order.
        pub const ALL: [Topic; 4] = [
            Topic::StockTrades,
            Topic::SocialFeed,
            Topic::ServerLogs,
            Topic::TradeBars,
        ];

        /// The Kafka topic name.
        pub const fn name(self) -> &'static str {
            match self {
                Topic::StockTrades => STOCK_TRADES,
                Topic::SocialFeed => SOCIAL_FEED,
                Topic::ServerLogs => SERVER_LOGS,
                Topic::TradeBars => TRADE_BARS,
            }
        }

        /// A dense index (0..[`Topic::ALL`].len()), for per-topic arrays.
        pub const fn index(self) -> usize {
            self as usize
        }

        /// The topic whose records carry `payload`.
        pub fn of_payload(payload: &crate::v1::event::Payload) -> Topic {
            use crate::v1::event::Payload;
            match payload {
                Payload::StockTrade(_) => Topic::StockTrades,
                Payload::SocialPost(_) => Topic::SocialFeed,
                Payload::LogEntry(_) => Topic::ServerLogs,
                Payload::TradeBar(_) => Topic::TradeBars,
            }
        }
    }

    impl fmt::Display for Topic {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name())
        }
    }

    /// A name that is not one of StreamWeaver's topics.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct UnknownTopic(pub String);

    impl fmt::Display for UnknownTopic {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "unknown topic {:?}; known topics are {}",
                self.0,
                ALL.join(", ")
            )
        }
    }

    impl std::error::Error for UnknownTopic {}

    impl FromStr for Topic {
        type Err = UnknownTopic;

        fn from_str(name: &str) -> Result<Self, Self::Err> {
            Topic::ALL
                .into_iter()
                .find(|topic| topic.name() == name)
                .ok_or_else(|| UnknownTopic(name.to_owned()))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_round_trip_and_unknown_ones_say_what_is_known() {
            for topic in Topic::ALL {
                assert_eq!(topic.name().parse::<Topic>(), Ok(topic));
                assert_eq!(Topic::ALL[topic.index()], topic);
            }
            let error = "stock_trade".parse::<Topic>().expect_err("unknown");
            assert!(
                error
                    .to_string()
                    .contains("stock_trades, social_feed, server_logs, trade_bars")
            );
        }
    }
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

    /// `duration` as a Protobuf duration (clamped to what one holds).
    pub fn duration(duration: Duration) -> pbjson_types::Duration {
        pbjson_types::Duration {
            seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
            nanos: duration.subsec_nanos() as i32,
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
