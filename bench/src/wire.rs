//! What the fan-out benchmark sends and how its load client reads it back cheaply.
//!
//! Events are numbered: sequence number `seq` goes to one of nine partitions (three topics ×
//! three partitions) at offset `seq / 9`, so a subscriber can tell from any event which one it
//! is, check that each partition arrives in order with nothing skipped, and know when it has seen
//! the last one. The client must cost far less than the server it measures, so it never decodes
//! a whole event: it reads the few envelope fields it needs straight off the wire (proto3 JSON
//! for WebSocket, Protobuf for gRPC).

use std::time::SystemTime;

use memchr::memmem;
use rand::{SeedableRng, rngs::StdRng};
use streamweaver_proto::{
    topics::Topic,
    v1::{Event, event::Payload},
};

/// The topics the benchmark's events are of: the three producers' (trade-bars' `trade_bars` is
/// derived from trades, not a load of its own).
pub const TOPICS: [Topic; 3] = [Topic::StockTrades, Topic::SocialFeed, Topic::ServerLogs];
/// Partitions per topic the benchmark spreads events over.
pub const PARTITIONS_PER_TOPIC: usize = 3;
/// Every partition the benchmark uses: `TOPICS.len() × PARTITIONS_PER_TOPIC`.
pub const PARTITIONS: usize = TOPICS.len() * PARTITIONS_PER_TOPIC;

/// The place of `topic` in [`TOPICS`].
fn topic_slot(topic: Topic) -> Option<usize> {
    TOPICS.iter().position(|t| *t == topic)
}

/// Where event `seq` goes: (topic, partition, offset).
pub fn position_of(seq: u64) -> (Topic, i32, i64) {
    let slot = (seq % PARTITIONS as u64) as usize;
    let topic = TOPICS[slot % TOPICS.len()];
    let partition = (slot / TOPICS.len()) as i32;
    (topic, partition, (seq / PARTITIONS as u64) as i64)
}

/// The dense slot (0..[`PARTITIONS`]) of a topic's partition, or `None` if out of range.
pub fn slot_of(topic: Topic, partition: i32) -> Option<usize> {
    let topic = topic_slot(topic)?;
    usize::try_from(partition)
        .ok()
        .filter(|p| *p < PARTITIONS_PER_TOPIC)
        .map(|p| p * TOPICS.len() + topic)
}

/// The sequence number of the event at `offset` in `slot`.
pub fn seq_of(slot: usize, offset: i64) -> u64 {
    offset.max(0) as u64 * PARTITIONS as u64 + slot as u64
}

/// Makes the benchmark's events: real payloads from the three producers' generators (a fixed
/// pool, reused), each numbered as [`position_of`] says.
pub struct EventSource {
    pool: Vec<Payload>,
}

impl EventSource {
    /// A pool of `size` payloads per topic, the same on every run.
    pub fn new(size: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let now = SystemTime::now();
        let mut trades = stock_producer::StockTrades::default();
        let mut posts = social_producer::SocialPosts::default();
        let mut logs = log_producer::ServerLogs::default();
        let mut pool = Vec::with_capacity(size * TOPICS.len());
        for _ in 0..size {
            pool.push(Payload::StockTrade(trades.next_trade(&mut rng, now)));
            pool.push(Payload::SocialPost(posts.next_post(&mut rng, now)));
            pool.push(Payload::LogEntry(logs.next_entry(&mut rng, now)));
        }
        Self { pool }
    }

    /// Event `seq`, stamped as produced at `now`.
    pub fn event(&self, seq: u64, now: SystemTime) -> Event {
        let (topic, partition, offset) = position_of(seq);
        // The pool holds the topics in `TOPICS` order and event `seq` is of topic
        // `TOPICS[seq % TOPICS.len()]`, so this picks a payload of `topic`.
        let rounds = self.pool.len() / TOPICS.len();
        let index =
            (seq as usize / TOPICS.len()) % rounds * TOPICS.len() + seq as usize % TOPICS.len();
        let payload = self.pool[index].clone();
        let key = match &payload {
            Payload::StockTrade(trade) => trade.symbol.clone(),
            Payload::SocialPost(post) => post.author.clone(),
            Payload::LogEntry(entry) => entry.service.clone(),
            Payload::TradeBar(bar) => bar.symbol.clone(),
        };
        Event {
            topic: topic.name().to_owned(),
            key,
            partition,
            offset,
            produced_at: Some(streamweaver_proto::time::timestamp(now)),
            payload: Some(payload),
        }
    }
}

/// One `SubscribeResponse` as the load client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// An event: its partition slot, offset and producer timestamp (Unix nanoseconds).
    Event {
        /// [`slot_of`] its topic and partition.
        slot: usize,
        /// Its Kafka offset.
        offset: i64,
        /// `produced_at` in nanoseconds since the Unix epoch.
        produced_at: i64,
    },
    /// A gap notice and how many events it says were skipped.
    Gap {
        /// `missed_events`.
        missed: u64,
    },
    /// Anything else: a heartbeat, an error, a reset, or an event the benchmark did not send.
    Other,
}

/// Finds the responses in WebSocket text frames (one object, or a JSON array of them).
///
/// It relies on what the proto3 JSON mapping guarantees: field names are fixed, a quote inside a
/// string is escaped, so `"event":{` can only be the start of an event response; an event's
/// envelope fields (`topic`, `partition`, `offset`, `producedAt`) occur nowhere in its payload;
/// and zero-valued fields are left out.
pub struct JsonScanner {
    event: memmem::Finder<'static>,
    gap: memmem::Finder<'static>,
    topic: memmem::Finder<'static>,
    partition: memmem::Finder<'static>,
    offset: memmem::Finder<'static>,
    produced_at: memmem::Finder<'static>,
    missed: memmem::Finder<'static>,
}

impl Default for JsonScanner {
    fn default() -> Self {
        Self {
            event: memmem::Finder::new(br#""event":{"#),
            gap: memmem::Finder::new(br#""gap":{"#),
            topic: memmem::Finder::new(br#""topic":""#),
            partition: memmem::Finder::new(br#""partition":"#),
            offset: memmem::Finder::new(br#""offset":""#),
            produced_at: memmem::Finder::new(br#""producedAt":""#),
            missed: memmem::Finder::new(br#""missedEvents":""#),
        }
    }
}

impl JsonScanner {
    /// Calls `visit` for every response in `frame`, in order of events (gap notices first: a
    /// frame that carries one is rare, and its events follow it).
    pub fn scan(&self, frame: &[u8], mut visit: impl FnMut(Item)) {
        let gap_at = self.gap.find(frame);
        if let Some(at) = gap_at {
            let missed = self
                .missed
                .find(&frame[at..])
                .and_then(|m| digits(&frame[at + m + self.missed.needle().len()..]))
                .unwrap_or(0);
            visit(Item::Gap {
                missed: missed as u64,
            });
        }
        let starts: Vec<usize> = self.event.find_iter(frame).collect();
        if starts.is_empty() && gap_at.is_none() {
            visit(Item::Other);
        }
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(frame.len());
            visit(self.event_at(&frame[start..end]));
        }
    }

    fn event_at(&self, body: &[u8]) -> Item {
        let after = |finder: &memmem::Finder<'_>| {
            finder
                .find(body)
                .map(|at| &body[at + finder.needle().len()..])
        };
        let topic = after(&self.topic)
            .and_then(|rest| memchr::memchr(b'"', rest).map(|end| &rest[..end]))
            .and_then(|name| std::str::from_utf8(name).ok())
            .and_then(|name| name.parse::<Topic>().ok());
        let partition = after(&self.partition).map_or(Some(0), digits);
        let offset = after(&self.offset).map_or(Some(0), digits);
        let produced_at = after(&self.produced_at).and_then(rfc3339_nanos);
        match (topic, partition, offset, produced_at) {
            (Some(topic), Some(partition), Some(offset), Some(produced_at)) => {
                match slot_of(topic, partition as i32) {
                    Some(slot) => Item::Event {
                        slot,
                        offset,
                        produced_at,
                    },
                    None => Item::Other,
                }
            }
            _ => Item::Other,
        }
    }
}

/// The non-negative decimal number at the start of `bytes`.
fn digits(bytes: &[u8]) -> Option<i64> {
    let mut value: i64 = 0;
    let mut any = false;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

/// An RFC 3339 timestamp as the proto3 JSON mapping writes it (`2026-11-29T01:32:12.029736313Z`
/// or `…+00:00`, 0–9 fraction digits), up to its closing quote, in nanoseconds since the Unix
/// epoch.
pub fn rfc3339_nanos(text: &[u8]) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| {
        digits(text.get(range.clone())?).filter(|_| text[range].iter().all(u8::is_ascii_digit))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if text.get(10) != Some(&b'T') {
        return None;
    }
    let mut nanos = 0i64;
    let mut rest = text.get(19..)?;
    if rest.first() == Some(&b'.') {
        let fraction: Vec<u8> = rest[1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
        nanos = digits(&fraction)? * 10i64.pow(9 - fraction.len() as u32);
        rest = &rest[1 + fraction.len()..];
    }
    let offset_minutes = match rest.first()? {
        b'Z' => 0,
        sign @ (b'+' | b'-') => {
            let offset = |range: std::ops::Range<usize>| {
                rest.get(range)
                    .filter(|d| d.iter().all(u8::is_ascii_digit))
                    .and_then(digits)
            };
            if rest.get(3) != Some(&b':') {
                return None;
            }
            let minutes = offset(1..3)? * 60 + offset(4..6)?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let minutes = (days * 24 + hour) * 60 + minute - offset_minutes;
    Some(minutes * 60_000_000_000 + second * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The parts of a `SubscribeResponse` the gRPC load client reads; Protobuf skips the rest
/// (payloads, heartbeats) without decoding it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightResponse {
    /// `SubscribeResponse.event`.
    #[prost(message, optional, tag = "1")]
    pub event: Option<LightEvent>,
    /// `SubscribeResponse.gap`.
    #[prost(message, optional, tag = "2")]
    pub gap: Option<LightGap>,
}

/// An event's envelope without its payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightEvent {
    /// `Event.topic`.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// `Event.partition`.
    #[prost(int32, tag = "3")]
    pub partition: i32,
    /// `Event.offset`.
    #[prost(int64, tag = "4")]
    pub offset: i64,
    /// `Event.produced_at`.
    #[prost(message, optional, tag = "5")]
    pub produced_at: Option<pbjson_types::Timestamp>,
}

/// A gap notice's count.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightGap {
    /// `GapNotice.missed_events`.
    #[prost(uint64, tag = "1")]
    pub missed_events: u64,
}

impl LightResponse {
    /// What the load client counts.
    pub fn item(&self) -> Item {
        if let Some(gap) = &self.gap {
            return Item::Gap {
                missed: gap.missed_events,
            };
        }
        let Some(event) = &self.event else {
            return Item::Other;
        };
        let slot = event
            .topic
            .parse::<Topic>()
            .ok()
            .and_then(|topic| slot_of(topic, event.partition));
        match (slot, &event.produced_at) {
            (Some(slot), Some(at)) => Item::Event {
                slot,
                offset: event.offset,
                produced_at: at.seconds * 1_000_000_000 + i64::from(at.nanos),
            },
            _ => Item::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use streamweaver_proto::v1::{
        GapNotice, Heartbeat, SubscribeResponse, subscribe_response::Kind,
    };

    use super::*;

    fn nanos(time: SystemTime) -> i64 {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64
    }

    fn responses(
        source: &EventSource,
        seqs: std::ops::Range<u64>,
        now: SystemTime,
    ) -> Vec<SubscribeResponse> {
        seqs.map(|seq| SubscribeResponse {
            kind: Some(Kind::Event(source.event(seq, now))),
        })
        .collect()
    }

    fn expected(seqs: std::ops::Range<u64>, now: SystemTime) -> Vec<Item> {
        seqs.map(|seq| {
            let (topic, partition, offset) = position_of(seq);
            Item::Event {
                slot: slot_of(topic, partition).expect("in range"),
                offset,
                produced_at: nanos(now),
            }
        })
        .collect()
    }

    #[test]
    fn positions_and_sequence_numbers_round_trip() {
        for seq in 0..100 {
            let (topic, partition, offset) = position_of(seq);
            let slot = slot_of(topic, partition).expect("in range");
            assert_eq!(seq_of(slot, offset), seq);
        }
        assert_eq!(slot_of(Topic::StockTrades, 3), None);
        assert_eq!(slot_of(Topic::TradeBars, 0), None, "no load of bars");
        assert_eq!(slot_of(Topic::StockTrades, -1), None);
    }

    #[test]
    fn json_frames_are_read_back_one_response_at_a_time_or_batched() {
        let source = EventSource::new(4);
        let now = SystemTime::now();
        let scanner = JsonScanner::default();
        // Sequence 0 has partition 0 and offset 0, which the JSON mapping leaves out.
        for seq in 0..20 {
            let json = serde_json::to_vec(&responses(&source, seq..seq + 1, now)[0]).expect("json");
            let mut seen = Vec::new();
            scanner.scan(&json, |item| seen.push(item));
            assert_eq!(
                seen,
                expected(seq..seq + 1, now),
                "{}",
                String::from_utf8_lossy(&json)
            );
        }
        let batch = serde_json::to_vec(&responses(&source, 5..40, now)).expect("json");
        let mut seen = Vec::new();
        scanner.scan(&batch, |item| seen.push(item));
        assert_eq!(seen, expected(5..40, now));
    }

    #[test]
    fn gap_notices_and_heartbeats_are_told_apart() {
        let scanner = JsonScanner::default();
        let gap = SubscribeResponse {
            kind: Some(Kind::Gap(GapNotice {
                missed_events: 1234,
                reason: "subscriber fell behind".into(),
                last_positions: vec![streamweaver_proto::v1::Position {
                    topic: "stock_trades".into(),
                    partition: 1,
                    offset: 9,
                }],
                missed: Vec::new(),
            })),
        };
        let heartbeat = SubscribeResponse {
            kind: Some(Kind::Heartbeat(Heartbeat::default())),
        };
        let mut seen = Vec::new();
        scanner.scan(&serde_json::to_vec(&gap).expect("json"), |item| {
            seen.push(item)
        });
        scanner.scan(&serde_json::to_vec(&heartbeat).expect("json"), |item| {
            seen.push(item)
        });
        assert_eq!(seen, vec![Item::Gap { missed: 1234 }, Item::Other]);
    }

    #[test]
    fn protobuf_responses_are_read_without_their_payloads() {
        let source = EventSource::new(4);
        let now = SystemTime::now();
        for (response, item) in responses(&source, 0..12, now)
            .iter()
            .zip(expected(0..12, now))
        {
            let light =
                LightResponse::decode(response.encode_to_vec().as_slice()).expect("decodes");
            assert_eq!(light.item(), item);
        }
    }

    #[test]
    fn timestamps_parse_as_the_json_mapping_writes_them() {
        for time in [
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + std::time::Duration::new(951_782_400, 5), // 2000-02-29
            SystemTime::now(),
        ] {
            let json =
                serde_json::to_string(&streamweaver_proto::time::timestamp(time)).expect("json");
            assert_eq!(
                rfc3339_nanos(&json.as_bytes()[1..]),
                Some(nanos(time)),
                "{json}"
            );
        }
        assert_eq!(
            rfc3339_nanos(b"2026-11-29T01:32:12Z"),
            Some(1_795_915_932_000_000_000)
        );
        assert_eq!(
            rfc3339_nanos(b"2026-11-29T02:32:12.5+01:00\""),
            Some(1_795_915_932_500_000_000)
        );
        assert_eq!(rfc3339_nanos(b"2026-11-29 01:32:12Z"), None);
        assert_eq!(rfc3339_nanos(b"2026-11-29T01:32:12.Z"), None);
    }
}
