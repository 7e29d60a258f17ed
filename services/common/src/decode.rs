//! Turns a Kafka record into a typed [`Event`]: Protobuf (what the producers write) or the proto3
//! JSON mapping (what `kcat` or the original Python producers write), chosen by the
//! `content-type` header, or by sniffing the value when there is none.
//!
//! The stream-consumer decodes every record it forwards with this, and the gateway decodes what
//! it reads back from Kafka for a replay with the same code, so both see the same events.

use pbjson_types::Timestamp;
use prost::Message;
use serde::de::DeserializeOwned;
use streamweaver_proto::{
    topics::Topic,
    v1::{Event, LogEntry, SocialPost, StockTrade, TradeBar, event::Payload},
};

/// The record header that says how a value is encoded.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// `content-type` of Protobuf-encoded values (what the producers write).
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// `content-type` of values in the proto3 JSON mapping (what `kcat` or the original Python
/// producers write).
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// A Kafka record as read, before decoding.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record key, if any.
    pub key: Option<&'a [u8]>,
    /// The `content-type` header, if any.
    pub content_type: Option<&'a str>,
    /// The value, if any.
    pub value: Option<&'a [u8]>,
    /// The record's Kafka timestamp in milliseconds since the epoch, if any.
    pub timestamp_ms: Option<i64>,
}

/// Why a record is not an event. The record goes to the dead-letter topic with this message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The topic is not one StreamWeaver carries.
    #[error("topic {0:?} carries no StreamWeaver events")]
    UnknownTopic(String),
    /// The record has no value (a tombstone) or an empty one.
    #[error("record has no value")]
    EmptyValue,
    /// The record is larger than the consumer forwards.
    #[error("value of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the value.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The `content-type` header names an encoding StreamWeaver does not read.
    #[error(
        "unsupported content-type {0:?} (expected {CONTENT_TYPE_PROTOBUF} or {CONTENT_TYPE_JSON})"
    )]
    UnsupportedContentType(String),
    /// The value is not valid Protobuf for the topic's message.
    #[error("invalid Protobuf {message}: {source}")]
    Protobuf {
        /// Which message type was expected.
        message: &'static str,
        /// What prost said.
        #[source]
        source: prost::DecodeError,
    },
    /// The value is not valid proto3 JSON for the topic's message.
    #[error("invalid JSON {message}: {source}")]
    Json {
        /// Which message type was expected.
        message: &'static str,
        /// What serde said (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The value decoded but lacks what every event of its kind must have.
    #[error("invalid {message}: {reason}")]
    Invalid {
        /// Which message type.
        message: &'static str,
        /// What is missing or wrong.
        reason: &'static str,
    },
}

impl DecodeError {
    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownTopic(_) => "unknown_topic",
            Self::EmptyValue => "empty_value",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::Protobuf { .. } => "invalid_protobuf",
            Self::Json { .. } => "invalid_json",
            Self::Invalid { .. } => "invalid_event",
        }
    }
}

enum Encoding {
    Protobuf,
    Json,
}

fn encoding(content_type: Option<&str>, value: &[u8]) -> Result<Encoding, DecodeError> {
    match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
        Some(CONTENT_TYPE_JSON) => Ok(Encoding::Json),
        Some(CONTENT_TYPE_PROTOBUF | "application/protobuf") => Ok(Encoding::Protobuf),
        Some(other) if !other.is_empty() => Err(DecodeError::UnsupportedContentType(other.into())),
        // No header: a JSON object starts with `{`, which is never a valid first Protobuf tag
        // (field 15, wire type 3, a deprecated group).
        _ => Ok(match value.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Encoding::Json,
            _ => Encoding::Protobuf,
        }),
    }
}

/// What the decoder needs to know of each topic's message type.
trait TopicMessage: Message + Default + DeserializeOwned {
    /// The message's name, for errors.
    const NAME: &'static str;
    /// Why a decoded message is not a usable event, if it is not.
    fn problem(&self) -> Option<&'static str>;
    /// The field the record is keyed by (symbol, author, service).
    fn natural_key(&self) -> &str;
    /// The producer's timestamp.
    fn timestamp(&self) -> Option<Timestamp>;
    /// The message as an envelope payload.
    fn into_payload(self) -> Payload;
}

impl TopicMessage for StockTrade {
    const NAME: &'static str = "StockTrade";
    fn problem(&self) -> Option<&'static str> {
        if self.symbol.is_empty() {
            Some("symbol is empty")
        } else if !(self.price.is_finite() && self.price > 0.0) {
            Some("price is not a positive number")
        } else {
            None
        }
    }
    fn natural_key(&self) -> &str {
        &self.symbol
    }
    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
    fn into_payload(self) -> Payload {
        Payload::StockTrade(self)
    }
}

impl TopicMessage for SocialPost {
    const NAME: &'static str = "SocialPost";
    fn problem(&self) -> Option<&'static str> {
        self.author.is_empty().then_some("author is empty")
    }
    fn natural_key(&self) -> &str {
        &self.author
    }
    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
    fn into_payload(self) -> Payload {
        Payload::SocialPost(self)
    }
}

impl TopicMessage for LogEntry {
    const NAME: &'static str = "LogEntry";
    fn problem(&self) -> Option<&'static str> {
        self.service.is_empty().then_some("service is empty")
    }
    fn natural_key(&self) -> &str {
        &self.service
    }
    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
    fn into_payload(self) -> Payload {
        Payload::LogEntry(self)
    }
}

impl TopicMessage for TradeBar {
    const NAME: &'static str = "TradeBar";
    fn problem(&self) -> Option<&'static str> {
        let prices = [self.open, self.high, self.low, self.close];
        if self.symbol.is_empty() {
            Some("symbol is empty")
        } else if self.start.is_none() {
            Some("start is missing")
        } else if self.trade_count == 0 {
            Some("trade_count is zero")
        } else if !prices.iter().all(|p| p.is_finite() && *p > 0.0) {
            Some("a price is not a positive number")
        } else if !(self.low <= self.open.min(self.close) && self.high >= self.open.max(self.close))
        {
            Some("open or close lies outside low..high")
        } else {
            None
        }
    }
    fn natural_key(&self) -> &str {
        &self.symbol
    }
    /// None: the Kafka record's timestamp (when the bar was produced) is the event's.
    fn timestamp(&self) -> Option<Timestamp> {
        None
    }
    fn into_payload(self) -> Payload {
        Payload::TradeBar(self)
    }
}

/// Decodes and checks one topic's message: its key, timestamp and payload.
fn decode_payload<M: TopicMessage>(
    encoding: Encoding,
    value: &[u8],
) -> Result<(String, Option<Timestamp>, Payload), DecodeError> {
    let message = match encoding {
        Encoding::Protobuf => M::decode(value).map_err(|source| DecodeError::Protobuf {
            message: M::NAME,
            source,
        })?,
        Encoding::Json => {
            serde_json::from_slice::<M>(value).map_err(|source| DecodeError::Json {
                message: M::NAME,
                source,
            })?
        }
    };
    if let Some(reason) = message.problem() {
        return Err(DecodeError::Invalid {
            message: M::NAME,
            reason,
        });
    }
    Ok((
        message.natural_key().to_owned(),
        message.timestamp(),
        message.into_payload(),
    ))
}

/// Decodes `record` into an event, refusing values larger than `max_value_bytes`.
pub fn decode(record: &RawRecord<'_>, max_value_bytes: usize) -> Result<Event, DecodeError> {
    let value = record
        .value
        .filter(|v| !v.is_empty())
        .ok_or(DecodeError::EmptyValue)?;
    if value.len() > max_value_bytes {
        return Err(DecodeError::TooLarge {
            size: value.len(),
            limit: max_value_bytes,
        });
    }
    let encoding = encoding(record.content_type, value)?;
    let (natural_key, timestamp, payload) = match record.topic.parse::<Topic>() {
        Ok(Topic::StockTrades) => decode_payload::<StockTrade>(encoding, value)?,
        Ok(Topic::SocialFeed) => decode_payload::<SocialPost>(encoding, value)?,
        Ok(Topic::ServerLogs) => decode_payload::<LogEntry>(encoding, value)?,
        Ok(Topic::TradeBars) => decode_payload::<TradeBar>(encoding, value)?,
        Err(unknown) => return Err(DecodeError::UnknownTopic(unknown.0)),
    };
    let key = record
        .key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .map_or(natural_key, str::to_owned);
    Ok(Event {
        topic: record.topic.to_owned(),
        key,
        partition: record.partition,
        offset: record.offset,
        produced_at: timestamp.or_else(|| record.timestamp_ms.map(timestamp_from_millis)),
        payload: Some(payload),
    })
}

fn timestamp_from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::topics;

    use super::*;

    fn record<'a>(topic: &'a str, content_type: Option<&'a str>, value: &'a [u8]) -> RawRecord<'a> {
        RawRecord {
            topic,
            partition: 2,
            offset: 41,
            key: None,
            content_type,
            value: Some(value),
            timestamp_ms: Some(1_700_000_000_123),
        }
    }

    #[test]
    fn protobuf_trade_decodes_with_its_position() {
        let trade = StockTrade {
            symbol: "AAPL".into(),
            price: 190.25,
            quantity: 10,
            ..Default::default()
        };
        let bytes = trade.encode_to_vec();
        let event = decode(
            &record(topics::STOCK_TRADES, Some(CONTENT_TYPE_PROTOBUF), &bytes),
            1 << 20,
        )
        .expect("decodes");
        assert_eq!(event.key, "AAPL");
        assert_eq!((event.partition, event.offset), (2, 41));
        assert_eq!(event.payload, Some(Payload::StockTrade(trade)));
        // No producer timestamp in the value: the Kafka record's is used.
        assert_eq!(
            event.produced_at,
            Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            })
        );
    }

    #[test]
    fn seed_style_json_without_header_decodes() {
        let json = br#"{"symbol":"MSFT","price":415.5,"quantity":3,"side":"TRADE_SIDE_BUY","timestamp":"2026-11-29T10:00:00Z"}"#;
        let event = decode(&record(topics::STOCK_TRADES, None, json), 1 << 20).expect("decodes");
        let Some(Payload::StockTrade(trade)) = event.payload else {
            panic!("not a trade: {event:?}");
        };
        assert_eq!(trade.symbol, "MSFT");
        assert_eq!(event.produced_at.map(|t| t.seconds), Some(1_795_946_400));
    }

    #[test]
    fn json_log_entry_with_level_name_decodes() {
        let json = br#"{"service":"auth","level":"LOG_LEVEL_ERROR","message":"boom"}"#;
        let event = decode(
            &record(topics::SERVER_LOGS, Some("application/json"), json),
            1 << 20,
        )
        .expect("decodes");
        assert_eq!(event.key, "auth");
    }

    #[test]
    fn trade_bar_decodes_with_the_record_time_as_its_own() {
        let bar = TradeBar {
            symbol: "NVDA".into(),
            start: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            open: 10.0,
            high: 12.0,
            low: 9.5,
            close: 11.0,
            volume: 300,
            trade_count: 3,
            ..Default::default()
        };
        let bytes = bar.encode_to_vec();
        let event = decode(&record(topics::TRADE_BARS, None, &bytes), 1 << 20).expect("decodes");
        assert_eq!(event.key, "NVDA");
        assert_eq!(event.payload, Some(Payload::TradeBar(bar.clone())));
        assert_eq!(event.produced_at.map(|t| t.seconds), Some(1_700_000_000));

        let upside_down = TradeBar {
            low: 11.5,
            ..bar.clone()
        }
        .encode_to_vec();
        let error = decode(&record(topics::TRADE_BARS, None, &upside_down), 1 << 20)
            .expect_err("low above open");
        assert_eq!(error.reason(), "invalid_event");
        let empty = TradeBar {
            trade_count: 0,
            ..bar
        }
        .encode_to_vec();
        assert!(decode(&record(topics::TRADE_BARS, None, &empty), 1 << 20).is_err());
    }

    #[test]
    fn bad_records_are_refused_with_a_reason() {
        let cases: [(&str, Option<&str>, &[u8], &str); 6] = [
            (
                topics::STOCK_TRADES,
                None,
                b"\xff\xff\xffgarbage",
                "invalid_protobuf",
            ),
            (
                topics::STOCK_TRADES,
                Some("application/json"),
                b"{\"price\":",
                "invalid_json",
            ),
            (
                topics::SOCIAL_FEED,
                Some("text/plain"),
                b"hello",
                "unsupported_content_type",
            ),
            (topics::SERVER_LOGS, None, b"{}", "invalid_event"),
            (topics::STOCK_TRADES, None, b"", "empty_value"),
            ("other_topic", None, b"{}", "unknown_topic"),
        ];
        for (topic, content_type, value, reason) in cases {
            let error = decode(&record(topic, content_type, value), 1 << 20).expect_err(reason);
            assert_eq!(error.reason(), reason, "{error}");
        }
        let error = decode(&record(topics::STOCK_TRADES, None, &[b'{'; 100]), 10).expect_err("big");
        assert_eq!(error.reason(), "too_large");
    }
}
