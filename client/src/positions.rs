//! Where a subscriber is in each Kafka partition, so that a new connection resumes exactly there.
//!
//! Positions advance with every event delivered, with heartbeats (which also count the events a
//! filter passed over) and with gap notices; a `PositionsReset` replaces them. They are also
//! what keeps delivery exactly-once per partition: an event at or below the position of its
//! partition has been delivered already and is not delivered again.

use std::collections::BTreeMap;

use streamweaver_proto::v1::{Event, GapNotice, Heartbeat, Position, PositionsReset};

/// The last offset delivered (or passed over) per (topic, partition).
///
/// ```
/// use streamweaver_client::{Positions, proto::v1::{Event, Position}};
///
/// let mut positions = Positions::default();
/// let event = Event { topic: "stock_trades".into(), partition: 1, offset: 41, ..Default::default() };
/// assert!(positions.admit(&event), "new: delivered");
/// assert!(!positions.admit(&event), "seen: not delivered twice");
/// assert_eq!(
///     positions.to_vec(),
///     [Position { topic: "stock_trades".into(), partition: 1, offset: 41 }]
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    offsets: BTreeMap<(String, i32), i64>,
}

impl Positions {
    /// Positions to start from, e.g. saved by a previous run of the service.
    pub fn from_positions<'a>(positions: impl IntoIterator<Item = &'a Position>) -> Self {
        let mut this = Self::default();
        for position in positions {
            this.advance(position);
        }
        this
    }

    /// Whether `event` is new for this subscriber; if so, its partition's position moves to it.
    pub fn admit(&mut self, event: &Event) -> bool {
        match self
            .offsets
            .get_mut(&(event.topic.clone(), event.partition))
        {
            Some(last) if event.offset <= *last => false,
            Some(last) => {
                *last = event.offset;
                true
            }
            None => {
                self.offsets
                    .insert((event.topic.clone(), event.partition), event.offset);
                true
            }
        }
    }

    /// A heartbeat says where the subscription is, including what its filter passed over.
    pub fn apply_heartbeat(&mut self, heartbeat: &Heartbeat) {
        heartbeat.positions.iter().for_each(|p| self.advance(p));
    }

    /// A gap notice names, per partition, the last position before the gap: resuming from there
    /// asks for what was skipped, from Kafka, if it still holds it.
    pub fn apply_gap(&mut self, gap: &GapNotice) {
        gap.last_positions.iter().for_each(|p| self.advance(p));
    }

    /// A partition's offsets started again: its position is replaced, even by a lower one.
    pub fn apply_reset(&mut self, reset: &PositionsReset) {
        for position in &reset.positions {
            self.offsets.insert(
                (position.topic.clone(), position.partition),
                position.offset,
            );
        }
    }

    /// Moves a partition's position forward to `position` (never back).
    pub fn advance(&mut self, position: &Position) {
        let last = self
            .offsets
            .entry((position.topic.clone(), position.partition))
            .or_insert(position.offset);
        *last = (*last).max(position.offset);
    }

    /// The position of one partition, if known.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(&(topic.to_owned(), partition)).copied()
    }

    /// Every known position, ordered by topic and partition: what a resume request names.
    pub fn to_vec(&self) -> Vec<Position> {
        self.offsets
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }

    /// Whether no position is known.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(partition: i32, offset: i64) -> Position {
        Position {
            topic: "stock_trades".into(),
            partition,
            offset,
        }
    }

    fn event(partition: i32, offset: i64) -> Event {
        Event {
            topic: "stock_trades".into(),
            partition,
            offset,
            ..Default::default()
        }
    }

    #[test]
    fn events_heartbeats_and_gaps_only_move_forward() {
        let mut positions = Positions::from_positions(&[position(0, 10)]);
        assert!(!positions.admit(&event(0, 10)));
        assert!(!positions.admit(&event(0, 3)));
        assert!(positions.admit(&event(0, 11)));
        assert!(positions.admit(&event(1, 0)), "a partition never seen");

        positions.apply_heartbeat(&Heartbeat {
            positions: vec![position(0, 20), position(1, -1), position(2, 5)],
            ..Default::default()
        });
        assert_eq!(
            positions.to_vec(),
            [position(0, 20), position(1, 0), position(2, 5)]
        );
        assert!(
            !positions.admit(&event(0, 15)),
            "passed over by the filter, per the heartbeat"
        );

        positions.apply_gap(&GapNotice {
            last_positions: vec![position(2, 9), position(0, 1)],
            ..Default::default()
        });
        assert_eq!(positions.get("stock_trades", 2), Some(9));
        assert_eq!(positions.get("stock_trades", 0), Some(20));
    }

    #[test]
    fn a_reset_replaces_positions_even_backwards() {
        let mut positions = Positions::from_positions(&[position(0, 500), position(1, 7)]);
        positions.apply_reset(&PositionsReset {
            positions: vec![position(0, 2)],
            reason: "recreated".into(),
        });
        assert_eq!(positions.to_vec(), [position(0, 2), position(1, 7)]);
        assert!(
            positions.admit(&event(0, 3)),
            "the new incarnation's events flow"
        );
    }
}
