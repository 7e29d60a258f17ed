//! One partition's recent events, kept in memory for subscribers that resume or start a little
//! in the past: the fast path in front of reading Kafka. Bounded by count and by age, per
//! partition (so a busy topic cannot evict a quiet one), and indexed by offset: offsets only
//! grow, so finding where a resume position falls is a binary search.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::event::SharedEvent;

struct Kept {
    event: SharedEvent,
    at: Instant,
}

/// The bounded history of one partition.
pub(crate) struct History {
    kept: VecDeque<Kept>,
    /// Every event the hub accepted with an offset above this is kept; at or below it, memory
    /// cannot say (evicted, or before the hub's first event of the partition).
    complete_after: i64,
}

impl History {
    /// An empty history whose first event will be `first`: offsets before it were never seen.
    pub(crate) fn starting_at(first: i64) -> Self {
        Self {
            kept: VecDeque::new(),
            complete_after: first.saturating_sub(1),
        }
    }

    /// Keeps `event` (whose offset is above every kept one), evicting the oldest beyond
    /// `capacity`.
    pub(crate) fn push(&mut self, event: SharedEvent, at: Instant, capacity: usize) {
        if capacity == 0 {
            self.complete_after = event.offset();
            return;
        }
        while self.kept.len() >= capacity {
            self.evict_front();
        }
        self.kept.push_back(Kept { event, at });
    }

    fn evict_front(&mut self) {
        if let Some(evicted) = self.kept.pop_front() {
            self.complete_after = evicted.event.offset();
        }
    }

    /// Evicts events taken in before `deadline`; frees the buffer once it is empty.
    pub(crate) fn evict_older_than(&mut self, deadline: Instant) {
        while self.kept.front().is_some_and(|kept| kept.at < deadline) {
            self.evict_front();
        }
        if self.kept.is_empty() && self.kept.capacity() > 0 {
            self.kept = VecDeque::new();
        }
    }

    /// Memory cannot say what came before `offset` (the stream jumped to it).
    pub(crate) fn incomplete_before(&mut self, offset: i64) {
        self.complete_after = self.complete_after.max(offset.saturating_sub(1));
    }

    /// Whether memory holds every event after `cursor` that the hub accepted.
    pub(crate) fn covers_after(&self, cursor: i64) -> bool {
        cursor >= self.complete_after
    }

    /// The offset at or below which memory cannot say what there was.
    pub(crate) fn complete_after(&self) -> i64 {
        self.complete_after
    }

    /// Up to `max` kept events with offsets above `cursor`, oldest first.
    pub(crate) fn after(&self, cursor: i64, max: usize) -> Vec<SharedEvent> {
        let start = self
            .kept
            .partition_point(|kept| kept.event.offset() <= cursor);
        self.kept
            .range(start..)
            .take(max)
            .map(|kept| kept.event.clone())
            .collect()
    }

    /// Events kept now.
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::testing::trade;

    fn event(offset: i64) -> SharedEvent {
        trade(0, offset, "A")
    }

    fn offsets(events: &[SharedEvent]) -> Vec<i64> {
        events.iter().map(SharedEvent::offset).collect()
    }

    #[test]
    fn bounded_by_count_and_says_what_it_covers() {
        let now = Instant::now();
        let mut history = History::starting_at(10);
        assert!(history.covers_after(9));
        assert!(!history.covers_after(8));
        for offset in [10, 11, 13, 14, 15] {
            history.push(event(offset), now, 3);
        }
        assert_eq!(history.len(), 3);
        assert_eq!(history.complete_after(), 11);
        assert!(history.covers_after(11));
        assert!(!history.covers_after(10));
        assert_eq!(offsets(&history.after(11, 10)), vec![13, 14, 15]);
        assert_eq!(offsets(&history.after(12, 10)), vec![13, 14, 15]);
        assert_eq!(offsets(&history.after(13, 1)), vec![14]);
        assert!(history.after(15, 10).is_empty());
    }

    #[test]
    fn bounded_by_age() {
        let start = Instant::now();
        let mut history = History::starting_at(0);
        for offset in 0..10 {
            history.push(
                event(offset),
                start + Duration::from_secs(offset as u64),
                100,
            );
        }
        history.evict_older_than(start + Duration::from_secs(7));
        assert_eq!(offsets(&history.after(-1, 100)), vec![7, 8, 9]);
        assert!(history.covers_after(6) && !history.covers_after(5));
        history.evict_older_than(start + Duration::from_secs(60));
        assert_eq!(history.len(), 0);
        assert!(history.covers_after(9));
    }

    #[test]
    fn no_history_covers_nothing_before_the_newest() {
        let mut history = History::starting_at(0);
        history.push(event(0), Instant::now(), 0);
        history.push(event(1), Instant::now(), 0);
        assert!(history.covers_after(1) && !history.covers_after(0));
        assert!(history.after(-1, 10).is_empty());
    }
}
