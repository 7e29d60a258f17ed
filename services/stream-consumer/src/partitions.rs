//! What the consumer knows about each partition it owns, and so which offset it may store: pure
//! bookkeeping, no Kafka, so every rule is unit-tested.
//!
//! A record is done when the gateway acknowledged it (an event) or the dead-letter topic has it
//! (a bad record). A partition's offset is stored only up to the last record before which every
//! record is done, only ever upwards, and only for the assignment it was read under: each
//! assignment and each rewind of a partition starts a new [`Epoch`], and whatever was handed out
//! under an older epoch (a Publish call, a dead letter) no longer counts for it when it completes.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use streamweaver_proto::v1::Position;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// One stretch of ownership of a partition: from an assignment or a rewind to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

/// The state of one owned partition.
#[derive(Debug)]
struct Owned {
    epoch: Epoch,
    /// The offset stored last in this assignment (the next one to read), if any.
    stored: Option<i64>,
    /// Where reading goes back to after a failure: the stored offset, else the first one read.
    rewind_to: Option<i64>,
    /// Every event up to this offset was acknowledged and every bad record up to it was handed
    /// to the dead letters (which may still be delivering some of them).
    acknowledged_through: Option<i64>,
    /// Dead letters of this epoch not delivered yet: offset → copies in flight.
    dead_letters: BTreeMap<i64, u32>,
}

impl Owned {
    /// The next offset to store, when more is done than was stored.
    fn advance(&mut self) -> Option<i64> {
        let mut through = self.acknowledged_through?;
        if let Some((&first_undelivered, _)) = self.dead_letters.first_key_value() {
            through = through.min(first_undelivered - 1);
        }
        let next = through + 1;
        if self.rewind_to.is_some_and(|floor| next <= floor) {
            return None;
        }
        self.stored = Some(next);
        self.rewind_to = Some(next);
        Some(next)
    }
}

/// The partitions this consumer owns now.
#[derive(Debug, Default)]
pub struct Partitions {
    owned: HashMap<TopicPartition, Owned>,
    epochs: u64,
}

/// What one Publish call carried, per partition: what its acknowledgement must cover.
#[derive(Debug, Default)]
pub struct Carried(HashMap<TopicPartition, CarriedRecords>);

#[derive(Debug)]
struct CarriedRecords {
    epoch: Epoch,
    /// The highest offset of an event sent.
    highest_event: Option<i64>,
    /// The highest offset handled: an event sent or a bad record dead-lettered.
    highest_record: i64,
}

impl Carried {
    /// Notes that the call carries the record at `offset` of `partition`, read under `epoch`
    /// (`event` when it was sent, not dead-lettered). Records must come in partition order.
    pub fn record(&mut self, partition: &TopicPartition, epoch: Epoch, offset: i64, event: bool) {
        let fresh = CarriedRecords {
            epoch,
            highest_event: None,
            highest_record: offset,
        };
        let records = match self.0.get_mut(partition) {
            // A rewind in between: what came before no longer counts.
            Some(records) if records.epoch != epoch => {
                *records = fresh;
                records
            }
            Some(records) => records,
            None => self.0.entry(partition.clone()).or_insert(fresh),
        };
        records.highest_record = records.highest_record.max(offset);
        if event {
            records.highest_event = Some(records.highest_event.map_or(offset, |h| h.max(offset)));
        }
    }

    /// Whether the call carries nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an acknowledgement means for the partitions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Offsets to store now (the next offset to read), each above what was stored before.
    pub store: Vec<(TopicPartition, i64)>,
    /// Partitions the gateway acknowledged less of than was sent; each was rewound.
    pub short: Vec<ShortAcknowledgement>,
}

/// A partition whose acknowledgement did not cover its highest event sent.
#[derive(Debug, PartialEq, Eq)]
pub struct ShortAcknowledgement {
    /// Which partition.
    pub partition: TopicPartition,
    /// The highest offset sent.
    pub sent: i64,
    /// The highest offset the gateway acknowledged, if any.
    pub acknowledged: Option<i64>,
    /// Where reading goes back to.
    pub rewind_to: Option<i64>,
}

impl Partitions {
    fn next_epoch(&mut self) -> Epoch {
        self.epochs += 1;
        Epoch(self.epochs)
    }

    /// Takes ownership of `partitions`, each starting afresh.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        for partition in partitions {
            let epoch = self.next_epoch();
            self.owned.insert(
                partition,
                Owned {
                    epoch,
                    stored: None,
                    rewind_to: None,
                    acknowledged_through: None,
                    dead_letters: BTreeMap::new(),
                },
            );
        }
    }

    /// The partition's log started again (its topic was recreated): everything known of it is
    /// forgotten, as at a new assignment, so what is in flight no longer counts and offsets are
    /// stored from the new log's start. Returns whether it is owned.
    pub fn restart(&mut self, partition: &TopicPartition) -> bool {
        if !self.owned.contains_key(partition) {
            return false;
        }
        self.assign([partition.clone()]);
        true
    }

    /// Gives up `partitions` and forgets everything about them; returns the offsets stored for
    /// them in this assignment, to commit before they go.
    pub fn revoke<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Vec<(TopicPartition, i64)> {
        partitions
            .into_iter()
            .filter_map(|partition| {
                let owned = self.owned.remove(partition)?;
                owned.stored.map(|offset| (partition.clone(), offset))
            })
            .collect()
    }

    /// How many partitions are owned.
    pub fn len(&self) -> usize {
        self.owned.len()
    }

    /// Whether no partition is owned.
    pub fn is_empty(&self) -> bool {
        self.owned.is_empty()
    }

    /// A record at `offset` was read: its epoch, or `None` when the partition is not owned (its
    /// new owner reads it from the group's commit).
    pub fn read(&mut self, partition: &TopicPartition, offset: i64) -> Option<Epoch> {
        let owned = self.owned.get_mut(partition)?;
        owned.rewind_to.get_or_insert(offset);
        Some(owned.epoch)
    }

    /// The bad record at `offset` was handed to the dead-letter producer.
    pub fn dead_letter_sent(&mut self, partition: &TopicPartition, offset: i64, epoch: Epoch) {
        if let Some(owned) = self.current(partition, epoch) {
            *owned.dead_letters.entry(offset).or_default() += 1;
        }
    }

    /// The dead letter of `offset` is in the dead-letter topic: the offset to store now, if any.
    pub fn dead_letter_delivered(
        &mut self,
        partition: &TopicPartition,
        offset: i64,
        epoch: Epoch,
    ) -> Option<i64> {
        let owned = self.current(partition, epoch)?;
        if let Some(copies) = owned.dead_letters.get_mut(&offset) {
            *copies -= 1;
            if *copies == 0 {
                owned.dead_letters.remove(&offset);
            }
        }
        owned.advance()
    }

    /// The dead letter of `offset` could not be delivered: the partition is rewound so the record
    /// is read (and dead-lettered) again; returns where to, if the failure still counts.
    pub fn dead_letter_failed(
        &mut self,
        partition: &TopicPartition,
        offset: i64,
        epoch: Epoch,
    ) -> Option<i64> {
        self.current(partition, epoch)?;
        let target = self.rewind(partition);
        debug_assert!(target.is_none_or(|target| target <= offset));
        target
    }

    /// The gateway answered a call that carried `carried` with `acknowledged`. A partition whose
    /// highest event sent is not covered is rewound; the others advance.
    pub fn acknowledge(&mut self, carried: &Carried, acknowledged: &[Position]) -> Acknowledgement {
        let acknowledged: HashMap<(&str, i32), i64> = acknowledged
            .iter()
            .map(|p| ((p.topic.as_str(), p.partition), p.offset))
            .collect();
        let mut outcome = Acknowledgement::default();
        for (partition, records) in &carried.0 {
            let Some(owned) = self.current(partition, records.epoch) else {
                // Revoked or rewound since: this call no longer speaks for the partition.
                continue;
            };
            let covered = acknowledged
                .get(&(partition.topic.as_str(), partition.partition))
                .copied();
            if let Some(sent) = records.highest_event
                && covered.is_none_or(|covered| covered < sent)
            {
                outcome.short.push(ShortAcknowledgement {
                    partition: partition.clone(),
                    sent,
                    acknowledged: covered,
                    rewind_to: self.rewind(partition),
                });
                continue;
            }
            owned.acknowledged_through = Some(
                owned
                    .acknowledged_through
                    .map_or(records.highest_record, |t| t.max(records.highest_record)),
            );
            if let Some(next) = owned.advance() {
                outcome.store.push((partition.clone(), next));
            }
        }
        outcome.store.sort();
        outcome.short.sort_by(|a, b| a.partition.cmp(&b.partition));
        outcome
    }

    /// Starts `partition` over from its rewind target: what was in flight no longer counts.
    /// Returns where to seek, if anything was read.
    pub fn rewind(&mut self, partition: &TopicPartition) -> Option<i64> {
        let epoch = self.next_epoch();
        let owned = self.owned.get_mut(partition)?;
        owned.epoch = epoch;
        owned.acknowledged_through = None;
        owned.dead_letters.clear();
        owned.rewind_to
    }

    /// Starts every partition over: where to seek those that read something.
    pub fn rewind_all(&mut self) -> Vec<(TopicPartition, i64)> {
        let partitions: Vec<TopicPartition> = self.owned.keys().cloned().collect();
        let mut targets: Vec<_> = partitions
            .into_iter()
            .filter_map(|partition| {
                let target = self.rewind(&partition)?;
                Some((partition, target))
            })
            .collect();
        targets.sort();
        targets
    }

    /// The partition's state, if it is owned under `epoch`.
    fn current(&mut self, partition: &TopicPartition, epoch: Epoch) -> Option<&mut Owned> {
        self.owned
            .get_mut(partition)
            .filter(|owned| owned.epoch == epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i32) -> TopicPartition {
        TopicPartition::new("stock_trades", partition)
    }

    fn position(partition: i32, offset: i64) -> Position {
        Position {
            topic: "stock_trades".into(),
            partition,
            offset,
        }
    }

    /// Reads `offsets` of partition `n` into `carried`: events, or bad records handed to the
    /// dead letters. Returns their epoch.
    fn read(
        partitions: &mut Partitions,
        carried: &mut Carried,
        n: i32,
        offsets: &[i64],
        event: bool,
    ) -> Epoch {
        let mut epoch = None;
        for &offset in offsets {
            let e = partitions.read(&p(n), offset).expect("owned");
            if !event {
                partitions.dead_letter_sent(&p(n), offset, e);
            }
            carried.record(&p(n), e, offset, event);
            epoch = Some(e);
        }
        epoch.expect("some offsets")
    }

    fn send(partitions: &mut Partitions, carried: &mut Carried, n: i32, offsets: &[i64]) -> Epoch {
        read(partitions, carried, n, offsets, true)
    }

    fn dead_letter(partitions: &mut Partitions, carried: &mut Carried, n: i32, offsets: &[i64]) {
        read(partitions, carried, n, offsets, false);
    }

    #[test]
    fn an_acknowledged_call_stores_the_offset_after_its_last_record() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0), p(1)]);
        let mut call = Carried::default();
        send(&mut partitions, &mut call, 0, &[10, 11, 12]);
        send(&mut partitions, &mut call, 1, &[5]);
        let ack = partitions.acknowledge(&call, &[position(0, 12), position(1, 5)]);
        assert_eq!(ack.store, vec![(p(0), 13), (p(1), 6)]);
        assert!(ack.short.is_empty());
        // The same answer again stores nothing: never the same offset twice, never lower.
        assert_eq!(
            partitions.acknowledge(&call, &[position(0, 12), position(1, 5)]),
            Acknowledgement::default()
        );
    }

    #[test]
    fn a_short_acknowledgement_rewinds_that_partition_only() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0), p(1)]);
        let mut first = Carried::default();
        send(&mut partitions, &mut first, 0, &[0, 1]);
        assert_eq!(
            partitions.acknowledge(&first, &[position(0, 1)]).store,
            vec![(p(0), 2)]
        );

        let mut second = Carried::default();
        send(&mut partitions, &mut second, 0, &[2, 3, 4]);
        send(&mut partitions, &mut second, 1, &[7, 8]);
        // The gateway took partition 0 only up to 3, and said nothing of partition 1.
        let ack = partitions.acknowledge(&second, &[position(0, 3)]);
        assert!(ack.store.is_empty());
        assert_eq!(
            ack.short,
            vec![
                ShortAcknowledgement {
                    partition: p(0),
                    sent: 4,
                    acknowledged: Some(3),
                    rewind_to: Some(2),
                },
                ShortAcknowledgement {
                    partition: p(1),
                    sent: 8,
                    acknowledged: None,
                    rewind_to: Some(7),
                },
            ]
        );

        // Read again from the rewind target, acknowledged in full: stored from there.
        let mut third = Carried::default();
        send(&mut partitions, &mut third, 0, &[2, 3, 4]);
        assert_eq!(
            partitions.acknowledge(&third, &[position(0, 4)]).store,
            vec![(p(0), 5)]
        );
    }

    #[test]
    fn a_revoked_partition_forgets_its_rewind_target_and_late_acknowledgements() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0)]);
        let mut first = Carried::default();
        send(&mut partitions, &mut first, 0, &[100, 101]);
        assert_eq!(
            partitions.acknowledge(&first, &[position(0, 101)]).store,
            vec![(p(0), 102)]
        );
        let mut in_flight = Carried::default();
        send(&mut partitions, &mut in_flight, 0, &[102, 103]);

        // Revoked: what was stored is handed back to commit, then the partition is forgotten.
        assert_eq!(partitions.revoke(&[p(0)]), vec![(p(0), 102)]);
        assert!(partitions.rewind_all().is_empty(), "no stale rewind target");
        assert_eq!(partitions.read(&p(0), 104), None, "not owned any more");

        // Assigned again (another member committed 500 meanwhile): the old call's answer is
        // not stored for the new assignment, and rewinds go to what this one read.
        partitions.assign([p(0)]);
        let ack = partitions.acknowledge(&in_flight, &[position(0, 103)]);
        assert_eq!(ack, Acknowledgement::default());
        let mut fresh = Carried::default();
        send(&mut partitions, &mut fresh, 0, &[500]);
        assert_eq!(partitions.rewind_all(), vec![(p(0), 500)]);
        assert_eq!(partitions.revoke(&[p(0)]), vec![], "nothing stored yet");
    }

    #[test]
    fn dead_letters_hold_the_offset_back_until_delivered() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0)]);
        let mut call = Carried::default();
        // 0 good, 1 and 2 bad, 3 good.
        let epoch = send(&mut partitions, &mut call, 0, &[0]);
        dead_letter(&mut partitions, &mut call, 0, &[1, 2]);
        send(&mut partitions, &mut call, 0, &[3]);

        // Acknowledged, but the dead letter of 1 is not delivered: store up to 1 only.
        let ack = partitions.acknowledge(&call, &[position(0, 3)]);
        assert_eq!(ack.store, vec![(p(0), 1)]);
        // 2 delivered first: still held back by 1.
        assert_eq!(partitions.dead_letter_delivered(&p(0), 2, epoch), None);
        assert_eq!(partitions.dead_letter_delivered(&p(0), 1, epoch), Some(4));
    }

    #[test]
    fn a_delivered_dead_letter_does_not_store_events_the_gateway_has_not_acknowledged() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0)]);
        let mut call = Carried::default();
        let epoch = send(&mut partitions, &mut call, 0, &[0]);
        dead_letter(&mut partitions, &mut call, 0, &[1]);
        assert_eq!(partitions.dead_letter_delivered(&p(0), 1, epoch), None);
        assert_eq!(
            partitions.acknowledge(&call, &[position(0, 0)]).store,
            vec![(p(0), 2)]
        );
    }

    #[test]
    fn a_failed_dead_letter_rewinds_to_before_it_and_stale_completions_are_ignored() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0)]);
        let mut call = Carried::default();
        let epoch = send(&mut partitions, &mut call, 0, &[10]);
        dead_letter(&mut partitions, &mut call, 0, &[11, 12]);

        assert_eq!(partitions.dead_letter_failed(&p(0), 11, epoch), Some(10));
        // The call's answer and the other dead letter belong to the old epoch: nothing stored,
        // so record 11 is read again rather than skipped.
        assert_eq!(
            partitions.acknowledge(&call, &[position(0, 10)]),
            Acknowledgement::default()
        );
        assert_eq!(partitions.dead_letter_delivered(&p(0), 12, epoch), None);
        assert_eq!(partitions.dead_letter_failed(&p(0), 12, epoch), None);
    }

    #[test]
    fn a_dead_letter_only_call_needs_no_acknowledged_offset() {
        let mut partitions = Partitions::default();
        partitions.assign([p(2)]);
        let mut call = Carried::default();
        let epoch = read(&mut partitions, &mut call, 2, &[40], false);
        assert_eq!(partitions.dead_letter_delivered(&p(2), 40, epoch), None);
        let ack = partitions.acknowledge(&call, &[]);
        assert_eq!(ack.store, vec![(p(2), 41)]);
        assert!(ack.short.is_empty());
    }

    #[test]
    fn a_global_rewind_makes_calls_in_flight_stale() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0), p(1)]);
        let mut call = Carried::default();
        send(&mut partitions, &mut call, 0, &[3, 4]);
        send(&mut partitions, &mut call, 1, &[9]);
        assert_eq!(partitions.rewind_all(), vec![(p(0), 3), (p(1), 9)]);
        assert_eq!(
            partitions.acknowledge(&call, &[position(0, 4), position(1, 9)]),
            Acknowledgement::default()
        );
        // Re-read after the rewind, a call mixing both epochs counts only the new one.
        let mut again = Carried::default();
        send(&mut partitions, &mut again, 0, &[3, 4, 5]);
        assert_eq!(
            partitions.acknowledge(&again, &[position(0, 5)]).store,
            vec![(p(0), 6)]
        );
    }

    #[test]
    fn a_call_that_spans_a_rewind_counts_only_what_came_after() {
        let mut partitions = Partitions::default();
        partitions.assign([p(0)]);
        let mut call = Carried::default();
        send(&mut partitions, &mut call, 0, &[0, 1, 2]);
        assert_eq!(partitions.rewind(&p(0)), Some(0));
        send(&mut partitions, &mut call, 0, &[0]);
        // The gateway answers for everything the call carried (up to 2); only record 0 of the
        // new epoch counts.
        assert_eq!(
            partitions.acknowledge(&call, &[position(0, 2)]).store,
            vec![(p(0), 1)]
        );
    }
}
