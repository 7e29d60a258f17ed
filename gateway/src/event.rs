//! One event as the gateway holds it: checked once where it comes in (ingest or a replay from
//! Kafka), then shared by every subscriber that takes it. Each wire form — Protobuf for gRPC and
//! grpc-web, proto3 JSON for WebSocket — is encoded once, on first need, and every subscriber
//! that sends it writes the same bytes.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost::Message;
use streamweaver_proto::{
    topics::Topic,
    v1::{Event, SubscribeResponse, subscribe_response::Kind},
};

/// Why an event cannot be taken in; a fixed label for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// No payload at all.
    #[error("the event has no payload")]
    MissingPayload,
    /// The topic is not one StreamWeaver carries.
    #[error("the event's topic is not one StreamWeaver carries")]
    UnknownTopic,
    /// The payload is of another topic's kind.
    #[error("the event's payload does not match its topic")]
    PayloadDoesNotMatchTopic,
    /// A negative partition or offset.
    #[error("the event's partition or offset is negative")]
    NegativePosition,
}

impl InvalidEvent {
    /// A short, fixed label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingPayload => "missing_payload",
            Self::UnknownTopic => "unknown_topic",
            Self::PayloadDoesNotMatchTopic => "payload_does_not_match_topic",
            Self::NegativePosition => "negative_position",
        }
    }
}

/// A checked event, cheap to clone (one reference count).
#[derive(Clone)]
pub struct SharedEvent(Arc<Inner>);

struct Inner {
    event: Event,
    topic: Topic,
    /// `SubscribeResponse { event }` as Protobuf.
    protobuf: OnceLock<Bytes>,
    /// `SubscribeResponse { event }` in the proto3 JSON mapping.
    json: OnceLock<Bytes>,
}

impl SharedEvent {
    /// Checks `event` and wraps it for sharing.
    pub fn new(event: Event) -> Result<Self, InvalidEvent> {
        let payload = event.payload.as_ref().ok_or(InvalidEvent::MissingPayload)?;
        let topic: Topic = event
            .topic
            .parse()
            .map_err(|_| InvalidEvent::UnknownTopic)?;
        if Topic::of_payload(payload) != topic {
            return Err(InvalidEvent::PayloadDoesNotMatchTopic);
        }
        if event.partition < 0 || event.offset < 0 {
            return Err(InvalidEvent::NegativePosition);
        }
        Ok(Self(Arc::new(Inner {
            event,
            topic,
            protobuf: OnceLock::new(),
            json: OnceLock::new(),
        })))
    }

    /// The decoded event, for filters.
    pub fn event(&self) -> &Event {
        &self.0.event
    }

    /// Its topic.
    pub fn topic(&self) -> Topic {
        self.0.topic
    }

    /// Its Kafka partition.
    pub fn partition(&self) -> i32 {
        self.0.event.partition
    }

    /// Its Kafka offset.
    pub fn offset(&self) -> i64 {
        self.0.event.offset
    }

    /// Its Kafka record key (symbol, author or service).
    pub fn key(&self) -> &str {
        &self.0.event.key
    }

    /// `SubscribeResponse { event }` encoded as Protobuf, encoded on the first call only.
    pub fn protobuf(&self) -> &Bytes {
        self.0
            .protobuf
            .get_or_init(|| Bytes::from(self.response().encode_to_vec()))
    }

    /// `SubscribeResponse { event }` in the proto3 JSON mapping, encoded on the first call only.
    pub fn json(&self) -> &Bytes {
        self.0.json.get_or_init(|| {
            // Serialising a generated message into memory cannot fail.
            Bytes::from(serde_json::to_vec(&self.response()).unwrap_or_default())
        })
    }

    fn response(&self) -> SubscribeResponse {
        SubscribeResponse {
            kind: Some(Kind::Event(self.0.event.clone())),
        }
    }
}

impl std::fmt::Debug for SharedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedEvent({}/{}/{})",
            self.0.topic,
            self.partition(),
            self.offset()
        )
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{LogEntry, StockTrade, event::Payload};

    use super::*;

    fn trade() -> Event {
        Event {
            topic: "stock_trades".into(),
            key: "AAPL".into(),
            partition: 1,
            offset: 7,
            payload: Some(Payload::StockTrade(StockTrade {
                symbol: "AAPL".into(),
                price: 190.5,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn encodings_are_the_responses_own() {
        let event = SharedEvent::new(trade()).expect("valid");
        let expected = SubscribeResponse {
            kind: Some(Kind::Event(trade())),
        };
        assert_eq!(
            SubscribeResponse::decode(event.protobuf().clone()).expect("protobuf"),
            expected
        );
        let json: SubscribeResponse = serde_json::from_slice(event.json()).expect("json");
        assert_eq!(json, expected);
        // Encoded once: every call hands out the same buffer.
        assert_eq!(event.json().as_ptr(), event.clone().json().as_ptr());
    }

    #[test]
    fn bad_events_are_refused_with_a_reason() {
        let cases = [
            (
                Event {
                    payload: None,
                    ..trade()
                },
                InvalidEvent::MissingPayload,
            ),
            (
                Event {
                    topic: "nope".into(),
                    ..trade()
                },
                InvalidEvent::UnknownTopic,
            ),
            (
                Event {
                    payload: Some(Payload::LogEntry(LogEntry::default())),
                    ..trade()
                },
                InvalidEvent::PayloadDoesNotMatchTopic,
            ),
            (
                Event {
                    offset: -1,
                    ..trade()
                },
                InvalidEvent::NegativePosition,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(SharedEvent::new(event).map(|_| ()), Err(expected));
        }
    }
}
