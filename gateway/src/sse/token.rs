//! Resume tokens: a subscriber's positions in every partition it follows, as one short opaque
//! string — the `id:` of each Server-Sent Event, so the `Last-Event-ID` a browser sends when it
//! reconnects restores all of them at once.
//!
//! A token is base64url (no padding) of a small Protobuf message private to the gateway: per
//! topic (by its index in [`Topic::ALL`]) the partitions and the last offsets, packed. Three
//! topics of four partitions take about 60 characters. Tokens from outside are checked like any
//! other input: a bad one is refused, never guessed at.

use std::collections::BTreeMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;
use streamweaver_proto::{topics::Topic, v1::Position};

/// The token format's version, so a later format can be told apart.
const VERSION: u32 = 1;
/// Longest token accepted, in characters: room for about 1,000 partitions.
pub const MAX_TOKEN_CHARS: usize = 16 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct TokenMessage {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, repeated, tag = "2")]
    topics: Vec<TopicPositions>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TopicPositions {
    /// [`Topic::index`].
    #[prost(uint32, tag = "1")]
    topic: u32,
    #[prost(int32, repeated, tag = "2")]
    partitions: Vec<i32>,
    /// The last offset per partition, in the order of `partitions`.
    #[prost(int64, repeated, tag = "3")]
    offsets: Vec<i64>,
}

/// Why a resume token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_CHARS`].
    #[error("the resume token is {0} characters long; at most {MAX_TOKEN_CHARS} are allowed")]
    TooLong(usize),
    /// Not base64url, not the token message, or of another version.
    #[error("the resume token is not one this gateway made: {0}")]
    Malformed(String),
    /// It names an unknown topic, a negative partition or offset, or a partition twice.
    #[error("the resume token holds an impossible position: {0}")]
    BadPosition(String),
}

/// A subscriber's current positions: the last offset delivered or passed over per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<(Topic, i32), i64>);

impl Positions {
    /// No positions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that everything up to `offset` of `topic`/`partition` is delivered or passed
    /// over. Positions only move forward, except through [`Positions::reset`].
    pub fn advance(&mut self, topic: Topic, partition: i32, offset: i64) {
        let last = self.0.entry((topic, partition)).or_insert(offset);
        *last = (*last).max(offset);
    }

    /// Replaces the position of `topic`/`partition` (its offsets started again).
    pub fn reset(&mut self, topic: Topic, partition: i32, offset: i64) {
        self.0.insert((topic, partition), offset);
    }

    /// Advances by each of `positions` whose topic is known.
    pub fn advance_all<'a>(&mut self, positions: impl IntoIterator<Item = &'a Position>) {
        for position in positions {
            if let Ok(topic) = position.topic.parse() {
                self.advance(topic, position.partition, position.offset);
            }
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As `resume_from` positions.
    pub fn to_positions(&self) -> Vec<Position> {
        self.0
            .iter()
            .map(|(&(topic, partition), &offset)| Position {
                topic: topic.name().to_owned(),
                partition,
                offset,
            })
            .collect()
    }

    /// The token of these positions.
    pub fn token(&self) -> String {
        let mut message = TokenMessage {
            version: VERSION,
            topics: Vec::new(),
        };
        for (&(topic, partition), &offset) in &self.0 {
            let index = topic.index() as u32;
            if message.topics.last().is_none_or(|t| t.topic != index) {
                message.topics.push(TopicPositions {
                    topic: index,
                    ..Default::default()
                });
            }
            if let Some(entry) = message.topics.last_mut() {
                entry.partitions.push(partition);
                entry.offsets.push(offset);
            }
        }
        URL_SAFE_NO_PAD.encode(message.encode_to_vec())
    }

    /// The positions a token holds.
    pub fn from_token(token: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::TooLong(token.len()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        let message = TokenMessage::decode(bytes.as_slice())
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        if message.version != VERSION {
            return Err(TokenError::Malformed(format!(
                "version {} (this gateway makes version {VERSION})",
                message.version
            )));
        }
        let mut positions = Self::new();
        for entry in message.topics {
            let topic = usize::try_from(entry.topic)
                .ok()
                .and_then(|i| Topic::ALL.get(i).copied())
                .ok_or_else(|| TokenError::BadPosition(format!("topic number {}", entry.topic)))?;
            if entry.partitions.len() != entry.offsets.len() {
                return Err(TokenError::Malformed(format!(
                    "{topic}: {} partitions but {} offsets",
                    entry.partitions.len(),
                    entry.offsets.len()
                )));
            }
            for (partition, offset) in entry.partitions.into_iter().zip(entry.offsets) {
                if partition < 0 || offset < 0 {
                    return Err(TokenError::BadPosition(format!(
                        "{topic}/{partition}/{offset}"
                    )));
                }
                if positions.0.insert((topic, partition), offset).is_some() {
                    return Err(TokenError::BadPosition(format!(
                        "{topic}/{partition} appears twice"
                    )));
                }
            }
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Positions {
        let mut positions = Positions::new();
        for topic in Topic::ALL {
            for partition in 0..4 {
                positions.advance(topic, partition, 1_000_000 + i64::from(partition) * 7);
            }
        }
        positions
    }

    #[test]
    fn tokens_round_trip_and_are_short() {
        let positions = sample();
        let token = positions.token();
        // Every topic, four partitions each.
        assert!(token.len() < 160, "{} characters: {token}", token.len());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        assert_eq!(Positions::from_token(&token), Ok(positions.clone()));
        assert_eq!(
            Positions::from_token(&Positions::new().token()),
            Ok(Positions::new())
        );
        let resume = positions.to_positions();
        assert_eq!(resume.len(), Topic::ALL.len() * 4);
        assert_eq!(resume[0].topic, "stock_trades");
    }

    #[test]
    fn positions_only_move_forward_unless_reset() {
        let mut positions = Positions::new();
        positions.advance(Topic::ServerLogs, 0, 10);
        positions.advance(Topic::ServerLogs, 0, 4);
        assert_eq!(positions.to_positions()[0].offset, 10);
        positions.reset(Topic::ServerLogs, 0, 4);
        assert_eq!(positions.to_positions()[0].offset, 4);
        positions.advance_all(&[Position {
            topic: "nope".into(),
            partition: 0,
            offset: 1,
        }]);
        assert_eq!(positions.to_positions().len(), 1);
    }

    #[test]
    fn bad_tokens_are_refused_with_a_reason() {
        assert!(matches!(
            Positions::from_token("not base64!"),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            Positions::from_token(&"A".repeat(MAX_TOKEN_CHARS + 1)),
            Err(TokenError::TooLong(_))
        ));
        let forged = |version, topic, partitions: &[i32], offsets: &[i64]| {
            let message = TokenMessage {
                version,
                topics: vec![TopicPositions {
                    topic,
                    partitions: partitions.to_vec(),
                    offsets: offsets.to_vec(),
                }],
            };
            URL_SAFE_NO_PAD.encode(message.encode_to_vec())
        };
        let cases = [
            ("another version", forged(2, 0, &[0], &[1])),
            ("an unknown topic", forged(VERSION, 9, &[0], &[1])),
            (
                "more partitions than offsets",
                forged(VERSION, 0, &[0, 1], &[1]),
            ),
            ("a negative partition", forged(VERSION, 0, &[-1], &[1])),
            ("a negative offset", forged(VERSION, 0, &[0], &[-5])),
            ("a partition twice", forged(VERSION, 0, &[3, 3], &[1, 2])),
        ];
        for (what, token) in cases {
            assert!(Positions::from_token(&token).is_err(), "{what}");
        }
        assert!(Positions::from_token(&forged(VERSION, 0, &[0], &[1])).is_ok());
        // A token with garbage bytes is not a panic.
        assert!(Positions::from_token(&URL_SAFE_NO_PAD.encode([0xff; 40])).is_err());
    }
}
