//! Partitions read past their log's end: their topic was deleted and created again (or their log
//! was cut short), so the offset this member reads from is beyond anything the partition will
//! hold for a long while.
//!
//! Kafka answers such a fetch with OFFSET_OUT_OF_RANGE and `auto.offset.reset` takes the
//! consumer back; tansu 0.6 answers it with no records and no error, so the consumer would wait
//! there for good — and a group commit that outlived the old topic puts a restarted consumer
//! there too. librdkafka's statistics say, per partition, the next offset it fetches and the high
//! watermark of the last fetch answer: a partition fetching above that watermark in two samples
//! in a row (the second one well after a fresh fetch answer) is sent back to its beginning.

use std::collections::HashMap;

use rdkafka::statistics::Statistics;

use crate::partitions::TopicPartition;

/// How often librdkafka reports its statistics, so how soon a partition past its log end is
/// noticed (it takes two reports).
pub const CHECK_INTERVAL_MS: u32 = 2_000;

/// A partition whose fetch position is past its log end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastLogEnd {
    /// Which partition.
    pub partition: TopicPartition,
    /// Where the consumer fetches from.
    pub next_offset: i64,
    /// Where the partition's log ends (the last fetch answer's high watermark).
    pub log_end: i64,
}

/// One partition's fetch state in a statistics report.
#[derive(Debug, Clone, Copy)]
pub struct FetchState<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// Whether librdkafka is fetching it now (`fetch_state` "active").
    pub active: bool,
    /// The next offset to fetch.
    pub next_offset: i64,
    /// The high watermark of the last fetch answer (-1 when unknown).
    pub high_watermark: i64,
}

/// Remembers what the previous report suspected, so that one report alone never decides.
#[derive(Debug, Default)]
pub struct LogEndWatch {
    suspects: HashMap<TopicPartition, i64>,
}

impl LogEndWatch {
    /// Takes one statistics report; returns the partitions found past their log end in this
    /// report and the one before, at the same fetch position.
    pub fn observe(&mut self, statistics: &Statistics) -> Vec<PastLogEnd> {
        self.observe_states(statistics.topics.values().flat_map(|topic| {
            topic.partitions.values().map(|p| FetchState {
                topic: &topic.topic,
                partition: p.partition,
                active: p.fetch_state == "active",
                next_offset: p.next_offset,
                high_watermark: p.hi_offset,
            })
        }))
    }

    /// [`LogEndWatch::observe`] over the partitions' fetch states.
    pub fn observe_states<'a>(
        &mut self,
        states: impl IntoIterator<Item = FetchState<'a>>,
    ) -> Vec<PastLogEnd> {
        let mut suspects = HashMap::new();
        let mut confirmed = Vec::new();
        for state in states {
            // Partition -1 is librdkafka's internal "unassigned" one.
            let past_end = state.partition >= 0
                && state.active
                && state.high_watermark >= 0
                && state.next_offset > state.high_watermark;
            if !past_end {
                continue;
            }
            let partition = TopicPartition::new(state.topic, state.partition);
            if self.suspects.get(&partition) == Some(&state.next_offset) {
                confirmed.push(PastLogEnd {
                    partition: partition.clone(),
                    next_offset: state.next_offset,
                    log_end: state.high_watermark,
                });
            }
            suspects.insert(partition, state.next_offset);
        }
        self.suspects = suspects;
        confirmed.sort_by(|a, b| a.partition.cmp(&b.partition));
        confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(partition: i32, active: bool, next_offset: i64, high: i64) -> FetchState<'static> {
        FetchState {
            topic: "stock_trades",
            partition,
            active,
            next_offset,
            high_watermark: high,
        }
    }

    #[test]
    fn two_reports_past_the_end_at_the_same_position_decide() {
        let mut watch = LogEndWatch::default();
        // Caught up (next == high), behind, unknown high, not fetching: never suspects.
        let fine = [
            state(0, true, 10, 10),
            state(1, true, 3, 10),
            state(2, true, 10, -1),
            state(3, false, 10, 5),
            state(-1, true, 10, 5),
        ];
        assert!(watch.observe_states(fine).is_empty());
        assert!(watch.observe_states(fine).is_empty());

        // One report alone (a high watermark not updated yet) does not decide.
        assert!(watch.observe_states([state(0, true, 10, 5)]).is_empty());
        assert_eq!(
            watch.observe_states([state(0, true, 10, 5)]),
            [PastLogEnd {
                partition: TopicPartition::new("stock_trades", 0),
                next_offset: 10,
                log_end: 5,
            }]
        );

        // Moved in between, or back in range: starts over.
        let mut watch = LogEndWatch::default();
        assert!(watch.observe_states([state(0, true, 10, 5)]).is_empty());
        assert!(watch.observe_states([state(0, true, 11, 5)]).is_empty());
        assert!(watch.observe_states([state(0, true, 11, 11)]).is_empty());
        assert!(watch.observe_states([state(0, true, 11, 5)]).is_empty());
    }
}
