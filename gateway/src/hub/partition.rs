//! What the hub knows of one Kafka partition: the highest offset it accepted (to drop what it
//! has already seen), the event at that offset (to ask Kafka whether an offset that went
//! backwards is a duplicate or a partition that started again), its recent history, and an
//! epoch that grows each time the partition's offsets start again.

use std::time::Duration;

use tokio::time::Instant;

use super::history::History;
use crate::event::SharedEvent;

/// A forward step larger than this is checked against Kafka's log end before it is believed.
pub const MAX_UNCHECKED_JUMP: i64 = 1_000_000;
/// After a check Kafka could not answer, the next backward step waits this long before asking
/// again (until then what goes backwards is taken for duplicates, as before the check existed).
pub(crate) const RECHECK_AFTER: Duration = Duration::from_secs(30);

/// What to do with an event, from its offset alone.
#[derive(Debug)]
pub(crate) enum Step {
    /// New: take it.
    Accept,
    /// At or below an offset already verified: a duplicate.
    Duplicate,
    /// Went backwards: ask Kafka whether it still holds `newest` (the event at the highest
    /// offset accepted) before deciding.
    CheckBackward {
        /// The event the hub holds at its highest offset.
        newest: SharedEvent,
    },
    /// Jumped more than [`MAX_UNCHECKED_JUMP`] ahead: ask Kafka where its log ends.
    CheckJump,
}

/// The newest accepted event and how far back duplicates are verified.
struct Head {
    newest: SharedEvent,
    /// Offsets at or below this were found (or, Kafka being unreachable, assumed) to be
    /// duplicates.
    verified_up_to: i64,
    /// When the last check could not ask Kafka: no new check before `RECHECK_AFTER`.
    unverified_at: Option<Instant>,
}

/// One partition's state in the hub.
pub(crate) struct Partition {
    head: Option<Head>,
    /// Grows each time the partition's offsets start again.
    epoch: u32,
    /// After a restart: the position before the new incarnation's first event.
    restart_position: i64,
    pub(crate) history: History,
}

impl Partition {
    /// A partition the hub has not taken anything from yet.
    pub(crate) fn new() -> Self {
        Self {
            head: None,
            epoch: 0,
            restart_position: -1,
            history: History::starting_at(0),
        }
    }

    /// The highest offset accepted, if any.
    pub(crate) fn highest(&self) -> Option<i64> {
        self.head.as_ref().map(|head| head.newest.offset())
    }

    /// Grows each time the partition's offsets start again.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    /// After a restart: the position before the new incarnation's first event.
    pub(crate) fn restart_position(&self) -> i64 {
        self.restart_position
    }

    /// What to do with an event at `offset`.
    pub(crate) fn step(&self, offset: i64, now: Instant) -> Step {
        let Some(head) = &self.head else {
            return Step::Accept;
        };
        let highest = head.newest.offset();
        if offset > highest {
            return if offset - highest > MAX_UNCHECKED_JUMP {
                Step::CheckJump
            } else {
                Step::Accept
            };
        }
        let recheck_due = head
            .unverified_at
            .is_some_and(|at| now.duration_since(at) >= RECHECK_AFTER);
        if head.verified_up_to >= highest && !recheck_due {
            Step::Duplicate
        } else {
            Step::CheckBackward {
                newest: head.newest.clone(),
            }
        }
    }

    /// Takes `event` (its offset is above the highest): it becomes the newest and is kept.
    pub(crate) fn accept(&mut self, event: SharedEvent, now: Instant, history: usize) {
        if self.head.is_none() && self.history.len() == 0 {
            self.history = History::starting_at(event.offset());
        }
        self.history.push(event.clone(), now, history);
        match &mut self.head {
            Some(head) => head.newest = event,
            None => {
                self.head = Some(Head {
                    newest: event,
                    verified_up_to: -1,
                    unverified_at: None,
                })
            }
        }
    }

    /// Takes `event` after Kafka confirmed the jump to it: what lies between is unknown to
    /// memory, so resumes before it read Kafka.
    pub(crate) fn accept_jump(&mut self, event: SharedEvent, now: Instant, history: usize) {
        self.history.incomplete_before(event.offset());
        self.accept(event, now, history);
    }

    /// Kafka holds the newest event: every offset up to it is a duplicate.
    pub(crate) fn verified(&mut self) {
        if let Some(head) = &mut self.head {
            head.verified_up_to = head.newest.offset();
            head.unverified_at = None;
        }
    }

    /// Kafka could not be asked: take what went backwards for duplicates, as the gateway did
    /// before it could ask, and ask again only after a while.
    pub(crate) fn assumed_duplicates(&mut self, now: Instant) {
        if let Some(head) = &mut self.head {
            head.verified_up_to = head.newest.offset();
            head.unverified_at = Some(now);
        }
    }

    /// The partition's offsets started again with an event at `first`: forget everything.
    pub(crate) fn restart(&mut self, first: i64) {
        self.head = None;
        self.epoch = self.epoch.wrapping_add(1);
        self.restart_position = first.saturating_sub(1);
        self.history = History::starting_at(first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::testing::trade;

    fn event(offset: i64) -> SharedEvent {
        trade(0, offset, "A")
    }

    #[test]
    fn one_check_per_backward_step() {
        let now = Instant::now();
        let mut partition = Partition::new();
        assert!(matches!(partition.step(5, now), Step::Accept));
        partition.accept(event(5), now, 10);
        partition.accept(event(6), now, 10);
        match partition.step(4, now) {
            Step::CheckBackward { newest } => assert_eq!(newest.offset(), 6),
            other => panic!("{other:?}"),
        }
        partition.verified();
        assert!(matches!(partition.step(4, now), Step::Duplicate));
        assert!(matches!(partition.step(6, now), Step::Duplicate));
        partition.accept(event(7), now, 10);
        // A new step back after new events: one more check.
        assert!(matches!(partition.step(7, now), Step::CheckBackward { .. }));
    }

    #[test]
    fn big_jumps_are_checked_and_unanswered_checks_are_retried_later() {
        let now = Instant::now();
        let mut partition = Partition::new();
        partition.accept(event(10), now, 10);
        assert!(matches!(partition.step(i64::MAX, now), Step::CheckJump));
        assert!(matches!(
            partition.step(10 + MAX_UNCHECKED_JUMP, now),
            Step::Accept
        ));
        partition.assumed_duplicates(now);
        assert!(matches!(partition.step(3, now), Step::Duplicate));
        assert!(matches!(
            partition.step(3, now + RECHECK_AFTER),
            Step::CheckBackward { .. }
        ));
    }

    #[test]
    fn a_restart_forgets_and_counts_an_epoch() {
        let now = Instant::now();
        let mut partition = Partition::new();
        partition.accept(event(100), now, 10);
        partition.restart(0);
        assert_eq!(partition.epoch(), 1);
        assert_eq!(partition.highest(), None);
        assert_eq!(partition.restart_position(), -1);
        assert!(matches!(partition.step(0, now), Step::Accept));
        partition.accept(event(0), now, 10);
        assert!(partition.history.covers_after(-1));
    }
}
