//! One subscriber's queue: what the hub has handed it and it has not read yet, bounded in events
//! and in bytes. The publisher pushes under the queue's own lock (one lock and at most one wake
//! per subscriber per batch); when the queue is full the subscription's slow-client policy acts:
//!
//! - GAP: drop what is queued, remembering per partition the first and last offsets skipped and
//!   how many, so the reader gets one gap notice with exact ranges before what comes next;
//! - DISCONNECT: close the queue, so the transport ends the subscription;
//! - LATEST_PER_KEY and SAMPLE: the queue conflates (a newer event for a key already queued
//!   supersedes it: the old one is removed and the new one appended, so offsets per partition
//!   stay increasing); when it is full of distinct keys it skips ahead as GAP does.
//!
//! Per partition a gate says which events the queue takes: while a resuming subscriber's
//! backfill serves a partition, none (the backfill reads them from memory or Kafka); after, only
//! those above where the backfill ended. While a backfill runs, a full queue does not skip ahead
//! whatever the policy: it drops what it holds *silently* and hands those partitions back to the
//! backfill (their gates close again, and each is noted with the offset its queued events started
//! after), which reads them from Kafka — they are there, since the hub got them from Kafka. So a
//! subscriber catching up never gets a gap notice for events Kafka still holds, and its queue
//! stays bounded. An idle queue holds no allocation, and buffers that grew for a burst are freed
//! once they are empty.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    hash::{Hash, Hasher},
    sync::{Mutex, MutexGuard},
};

use streamweaver_proto::topics::Topic;
use tokio::sync::{Notify, futures::Notified};

use super::policy::Policy;
use crate::event::SharedEvent;

/// A buffer with more spare room than this is freed when it empties.
const KEEP_CAPACITY: usize = 16;

/// How much a queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events (`--subscriber-buffer`).
    pub events: usize,
    /// Bytes of encoded events (`--subscriber-buffer-bytes`).
    pub bytes: usize,
}

/// Why a queue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The gateway is shutting down.
    ShuttingDown,
    /// The subscriber fell behind under the DISCONNECT policy.
    TooSlow,
}

/// Offsets of one partition a subscriber fell behind on and did not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) topic: Topic,
    pub(crate) partition: i32,
    pub(crate) first: i64,
    pub(crate) last: i64,
    pub(crate) count: u64,
}

/// What the publisher did to queues, counted once per batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    /// Times a queue skipped ahead (one gap notice each).
    pub(crate) gaps: u64,
    /// Events dropped by skipping ahead.
    pub(crate) skipped: u64,
    /// Events superseded by a newer one of the same key.
    pub(crate) conflated: u64,
    /// Queues closed because they were full under DISCONNECT.
    pub(crate) disconnects: u64,
    /// Events dropped silently by a full queue during a backfill, which reads them again.
    pub(crate) handed_back: u64,
    /// Change in queued events.
    pub(crate) events: i64,
    /// Change in queued bytes.
    pub(crate) bytes: i64,
}

/// The next thing a reader gets from its queue.
#[derive(Debug)]
pub(crate) enum Popped {
    /// The partition's offsets started again; `position` replaces the subscriber's.
    Reset {
        topic: Topic,
        partition: i32,
        position: i64,
    },
    /// What the subscriber fell behind on, per partition.
    Gap(Vec<Skip>),
    /// The next event, with its accounted size.
    Event(SharedEvent, u32),
    /// Nothing more will come.
    Closed(Closed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// The backfill serves this partition: the queue takes none of its events.
    Backfilling,
    /// The queue takes only events above this offset.
    LiveAfter(i64),
}

struct Queued {
    event: SharedEvent,
    bytes: u32,
}

/// An event's conflation key: its topic and Kafka record key.
struct KeyOf(SharedEvent);

impl Hash for KeyOf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.topic().hash(state);
        self.0.key().hash(state);
    }
}

impl PartialEq for KeyOf {
    fn eq(&self, other: &Self) -> bool {
        self.0.topic() == other.0.topic() && self.0.key() == other.0.key()
    }
}

impl Eq for KeyOf {}

/// The newest queued event per key, in the order they were queued.
#[derive(Default)]
struct Conflated {
    order: BTreeMap<u64, Queued>,
    by_key: HashMap<KeyOf, u64>,
    next: u64,
}

/// The queue itself; see the module documentation.
pub(crate) struct Queue {
    fifo: VecDeque<Queued>,
    latest: Option<Box<Conflated>>,
    queued_bytes: usize,
    limits: Limits,
    policy: Policy,
    skipped: Vec<Skip>,
    resets: Vec<(Topic, i32, i64)>,
    gates: Vec<(Topic, i32, Gate)>,
    /// While a backfill runs: the partitions a full queue handed back to it, each with the
    /// offset its dropped events started after. `None` when no backfill runs.
    handed_back: Option<Vec<(Topic, i32, i64)>>,
    closed: Option<Closed>,
}

/// A queue and the wake-up its reader waits on.
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
    ready: Notify,
}

impl Mailbox {
    pub(crate) fn new(policy: Policy, limits: Limits) -> Self {
        Self {
            queue: Mutex::new(Queue {
                fifo: VecDeque::new(),
                latest: None,
                queued_bytes: 0,
                limits,
                policy,
                skipped: Vec::new(),
                resets: Vec::new(),
                gates: Vec::new(),
                handed_back: None,
                closed: None,
            }),
            ready: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every change under this lock leaves the queue consistent, so a poisoned one is usable.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the reader.
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }

    /// Completes after the next [`Mailbox::wake`] (or at once if one came since the last).
    pub(crate) fn woken(&self) -> Notified<'_> {
        self.ready.notified()
    }

    /// Closes the queue and wakes its reader.
    pub(crate) fn close(&self, why: Closed) -> Tally {
        let tally = self.lock().close(why);
        self.wake();
        tally
    }
}

impl Queue {
    /// The subscription's slow-client policy.
    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// Why the queue was closed, if it was.
    pub(crate) fn closed(&self) -> Option<Closed> {
        self.closed
    }

    /// Whether the reader has nothing to take.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_none()
            && self.resets.is_empty()
            && self.skipped.is_empty()
            && self.fifo.is_empty()
            && self.latest.is_none()
    }

    /// Whether the queue takes `event` (its partition's gate).
    fn admits(&self, event: &SharedEvent) -> bool {
        match self.gate(event.topic(), event.partition()) {
            None => true,
            Some(Gate::Backfilling) => false,
            Some(Gate::LiveAfter(offset)) => event.offset() > offset,
        }
    }

    /// Where a partition's gate is (or goes) in `gates`, kept sorted by partition: a maximal
    /// resume closes 1024 gates, set under the hub's lock and looked up at every push.
    fn gate_index(&self, topic: Topic, partition: i32) -> Result<usize, usize> {
        self.gates
            .binary_search_by_key(&(topic, partition), |(t, p, _)| (*t, *p))
    }

    fn gate(&self, topic: Topic, partition: i32) -> Option<Gate> {
        let index = self.gate_index(topic, partition).ok()?;
        Some(self.gates[index].2)
    }

    fn set_gate(&mut self, topic: Topic, partition: i32, gate: Gate) {
        match self.gate_index(topic, partition) {
            Ok(index) => self.gates[index].2 = gate,
            Err(index) => self.gates.insert(index, (topic, partition, gate)),
        }
    }

    /// Queues `event` (of `bytes` encoded), the policy acting when the queue is full.
    pub(crate) fn push(&mut self, event: &SharedEvent, bytes: u32, tally: &mut Tally) {
        if self.closed.is_some() || !self.admits(event) {
            return;
        }
        if self.policy.conflates() {
            self.push_conflating(event, bytes, tally);
        } else {
            self.push_fifo(event, bytes, tally);
        }
    }

    fn is_full_for(&self, queued: usize, bytes: u32) -> bool {
        queued >= self.limits.events || self.queued_bytes + bytes as usize > self.limits.bytes
    }

    fn push_fifo(&mut self, event: &SharedEvent, bytes: u32, tally: &mut Tally) {
        if self.is_full_for(self.fifo.len(), bytes) {
            if self.handed_back.is_some() {
                self.hand_back(event, bytes, tally);
                if !self.admits(event) {
                    return;
                }
            } else if self.policy == Policy::Disconnect {
                tally.disconnects += 1;
                let closed = self.close(Closed::TooSlow);
                tally.events += closed.events;
                tally.bytes += closed.bytes;
                return;
            } else {
                self.skip_ahead(tally);
                if bytes as usize > self.limits.bytes {
                    // Larger than the whole budget: it can never be queued.
                    self.record_skip(event);
                    tally.skipped += 1;
                    return;
                }
            }
        }
        self.fifo.push_back(Queued {
            event: event.clone(),
            bytes,
        });
        self.queued_bytes += bytes as usize;
        tally.events += 1;
        tally.bytes += i64::from(bytes);
    }

    fn push_conflating(&mut self, event: &SharedEvent, bytes: u32, tally: &mut Tally) {
        let latest = self.latest.get_or_insert_with(Box::default);
        if let Some(seq) = latest.by_key.remove(&KeyOf(event.clone()))
            && let Some(old) = latest.order.remove(&seq)
        {
            self.queued_bytes -= old.bytes as usize;
            tally.conflated += 1;
            tally.events -= 1;
            tally.bytes -= i64::from(old.bytes);
        }
        let queued = latest.order.len();
        if self.is_full_for(queued, bytes) && self.handed_back.is_some() {
            self.hand_back(event, bytes, tally);
            if !self.admits(event) {
                return;
            }
        } else if self.is_full_for(queued, bytes) {
            self.skip_ahead(tally);
            if bytes as usize > self.limits.bytes {
                self.record_skip(event);
                tally.skipped += 1;
                return;
            }
        }
        let latest = self.latest.get_or_insert_with(Box::default);
        let seq = latest.next;
        latest.next += 1;
        latest.order.insert(
            seq,
            Queued {
                event: event.clone(),
                bytes,
            },
        );
        latest.by_key.insert(KeyOf(event.clone()), seq);
        self.queued_bytes += bytes as usize;
        tally.events += 1;
        tally.bytes += i64::from(bytes);
    }

    /// During a backfill: everything queued is dropped silently and its partitions handed back
    /// to the backfill, which reads them from Kafka; so is `event` if even the empty queue could
    /// not take it.
    fn hand_back(&mut self, event: &SharedEvent, bytes: u32, tally: &mut Tally) {
        let mut firsts: Vec<(Topic, i32, i64)> = Vec::new();
        let mut note = |event: &SharedEvent| {
            let (topic, partition, offset) = (event.topic(), event.partition(), event.offset());
            match firsts
                .iter_mut()
                .find(|(t, p, _)| *t == topic && *p == partition)
            {
                Some((_, _, first)) => *first = (*first).min(offset),
                None => firsts.push((topic, partition, offset)),
            }
        };
        let dropped: Vec<Queued> = self.take_all().collect();
        for queued in &dropped {
            note(&queued.event);
            tally.handed_back += 1;
            tally.events -= 1;
            tally.bytes -= i64::from(queued.bytes);
        }
        if bytes as usize > self.limits.bytes {
            note(event);
        }
        drop(dropped);
        self.shrink();
        for (topic, partition, first) in firsts {
            self.set_gate(topic, partition, Gate::Backfilling);
            if let Some(handed_back) = &mut self.handed_back {
                handed_back.push((topic, partition, first - 1));
            }
        }
    }

    /// A backfill starts: until [`Queue::take_handed_back`] finds nothing, a full queue hands
    /// its partitions back to it instead of acting on its policy.
    pub(crate) fn start_backfill(&mut self) {
        self.handed_back.get_or_insert_with(Vec::new);
    }

    /// The partitions handed back to the backfill since it last asked, each with the offset to
    /// go on after. When there are none, the backfill is over: a full queue acts on its policy
    /// again (in the same critical section, so no partition is handed back to a finished one).
    pub(crate) fn take_handed_back(&mut self) -> Vec<(Topic, i32, i64)> {
        let handed_back = self.handed_back.take().unwrap_or_default();
        if !handed_back.is_empty() {
            self.handed_back = Some(Vec::new());
        }
        handed_back
    }

    /// GAP: everything queued is skipped; the reader is told exactly what.
    fn skip_ahead(&mut self, tally: &mut Tally) {
        tally.gaps += 1;
        let fifo = std::mem::take(&mut self.fifo);
        let latest = self.latest.take();
        let dropped = fifo.into_iter().chain(
            latest
                .into_iter()
                .flat_map(|latest| latest.order.into_values()),
        );
        for queued in dropped {
            self.record_skip(&queued.event);
            tally.skipped += 1;
            tally.events -= 1;
            tally.bytes -= i64::from(queued.bytes);
        }
        self.queued_bytes = 0;
    }

    fn record_skip(&mut self, event: &SharedEvent) {
        let (topic, partition, offset) = (event.topic(), event.partition(), event.offset());
        match self
            .skipped
            .iter_mut()
            .find(|s| s.topic == topic && s.partition == partition)
        {
            Some(skip) => {
                skip.last = skip.last.max(offset);
                skip.first = skip.first.min(offset);
                skip.count += 1;
            }
            None => self.skipped.push(Skip {
                topic,
                partition,
                first: offset,
                last: offset,
                count: 1,
            }),
        }
    }

    /// Closes the queue, freeing what it holds; returns what that removed.
    pub(crate) fn close(&mut self, why: Closed) -> Tally {
        let mut tally = Tally::default();
        if self.closed.is_none() {
            self.closed = Some(why);
        }
        for queued in self.take_all() {
            tally.events -= 1;
            tally.bytes -= i64::from(queued.bytes);
        }
        self.skipped = Vec::new();
        self.resets = Vec::new();
        tally
    }

    fn take_all(&mut self) -> impl Iterator<Item = Queued> {
        self.queued_bytes = 0;
        let fifo = std::mem::take(&mut self.fifo);
        let latest = self.latest.take();
        fifo.into_iter().chain(
            latest
                .into_iter()
                .flat_map(|latest| latest.order.into_values()),
        )
    }

    /// Removes queued events and skips of one partition; returns what that removed.
    fn purge(&mut self, topic: Topic, partition: i32) -> Tally {
        let mut tally = Tally::default();
        let of_partition = |queued: &Queued| {
            queued.event.topic() == topic && queued.event.partition() == partition
        };
        let removed = |queued: &Queued, tally: &mut Tally| {
            tally.events -= 1;
            tally.bytes -= i64::from(queued.bytes);
        };
        self.fifo.retain(|queued| {
            let purge = of_partition(queued);
            if purge {
                removed(queued, &mut tally);
            }
            !purge
        });
        if let Some(latest) = &mut self.latest {
            latest.order.retain(|_, queued| {
                let purge = of_partition(queued);
                if purge {
                    removed(queued, &mut tally);
                }
                !purge
            });
            latest
                .by_key
                .retain(|key, _| !(key.0.topic() == topic && key.0.partition() == partition));
        }
        self.queued_bytes = (self.queued_bytes as i64 + tally.bytes).max(0) as usize;
        self.skipped
            .retain(|skip| !(skip.topic == topic && skip.partition == partition));
        self.shrink();
        tally
    }

    /// The backfill takes over `partition`: the queue drops what it holds of it and takes none
    /// of its events until [`Queue::live_after`].
    pub(crate) fn backfilling(&mut self, topic: Topic, partition: i32) -> Tally {
        self.set_gate(topic, partition, Gate::Backfilling);
        self.purge(topic, partition)
    }

    /// The backfill delivered `partition` up to `offset`: the queue takes what follows.
    pub(crate) fn live_after(&mut self, topic: Topic, partition: i32, offset: i64) {
        self.set_gate(topic, partition, Gate::LiveAfter(offset));
    }

    /// The partition's offsets started again at `position + 1`. Returns whether the reader is
    /// to be told (a backfill serving the partition finds out by itself).
    pub(crate) fn reset(
        &mut self,
        topic: Topic,
        partition: i32,
        position: i64,
        tally: &mut Tally,
    ) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let pending = self.handed_back.as_mut().and_then(|handed_back| {
            let at = handed_back
                .iter()
                .position(|(t, p, _)| *t == topic && *p == partition)?;
            Some(handed_back.remove(at))
        });
        if pending.is_some() {
            // Handed back but not yet taken by the backfill: the queue tells the reader.
            self.set_gate(topic, partition, Gate::LiveAfter(position));
        }
        match self.gate(topic, partition) {
            Some(Gate::Backfilling) => return false,
            Some(Gate::LiveAfter(_)) => self.set_gate(topic, partition, Gate::LiveAfter(position)),
            None => {}
        }
        let purged = self.purge(topic, partition);
        tally.events += purged.events;
        tally.bytes += purged.bytes;
        self.resets
            .retain(|(t, p, _)| !(*t == topic && *p == partition));
        self.resets.push((topic, partition, position));
        true
    }

    /// The next thing for the reader.
    pub(crate) fn pop(&mut self) -> Option<Popped> {
        if let Some(popped) = self.pop_control() {
            return Some(popped);
        }
        let queued = match &mut self.latest {
            Some(latest) => {
                let (_, queued) = latest.order.pop_first()?;
                latest.by_key.remove(&KeyOf(queued.event.clone()));
                Some(queued)
            }
            None => self.fifo.pop_front(),
        }?;
        self.queued_bytes -= queued.bytes as usize;
        self.shrink();
        Some(Popped::Event(queued.event, queued.bytes))
    }

    /// Up to `max` more events into `out` (no closure, reset or gap notice: [`Queue::pop`]
    /// gives those first); returns how many and their accounted bytes.
    pub(crate) fn pop_events(
        &mut self,
        max: usize,
        out: &mut VecDeque<SharedEvent>,
    ) -> (usize, u64) {
        if self.latest.is_some() || !self.resets.is_empty() || !self.skipped.is_empty() {
            // Conflating queues give one at a time (a newer event may yet supersede one).
            return (0, 0);
        }
        let take = max.min(self.fifo.len());
        let mut bytes = 0u64;
        for queued in self.fifo.drain(..take) {
            bytes += u64::from(queued.bytes);
            out.push_back(queued.event);
        }
        self.queued_bytes -= bytes as usize;
        self.shrink();
        (take, bytes)
    }

    /// The next thing for the reader that is not an event: closure, reset or gap notice.
    pub(crate) fn pop_control(&mut self) -> Option<Popped> {
        if let Some(why) = self.closed {
            return Some(Popped::Closed(why));
        }
        if !self.resets.is_empty() {
            let (topic, partition, position) = self.resets.remove(0);
            if self.resets.is_empty() {
                self.resets = Vec::new();
            }
            return Some(Popped::Reset {
                topic,
                partition,
                position,
            });
        }
        if !self.skipped.is_empty() {
            return Some(Popped::Gap(std::mem::take(&mut self.skipped)));
        }
        None
    }

    /// Every queued event (SAMPLE takes them all at each tick), with their total size.
    pub(crate) fn take_events(&mut self) -> (Vec<SharedEvent>, u64) {
        let mut bytes = 0u64;
        let events = self
            .take_all()
            .map(|queued| {
                bytes += u64::from(queued.bytes);
                queued.event
            })
            .collect();
        (events, bytes)
    }

    fn shrink(&mut self) {
        if self.fifo.is_empty() && self.fifo.capacity() > KEEP_CAPACITY {
            self.fifo = VecDeque::new();
        }
        if self
            .latest
            .as_ref()
            .is_some_and(|latest| latest.order.is_empty())
        {
            self.latest = None;
        }
    }

    /// Events queued now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.fifo.len() + self.latest.as_ref().map_or(0, |latest| latest.order.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::testing::trade as event;

    fn queue(policy: Policy, events: usize, bytes: usize) -> Mailbox {
        Mailbox::new(policy, Limits { events, bytes })
    }

    fn drain(queue: &mut Queue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(popped) = queue.pop() {
            out.push(match popped {
                Popped::Event(event, _) => format!("{}:{}", event.key(), event.offset()),
                Popped::Gap(skips) => format!(
                    "gap{:?}",
                    skips
                        .iter()
                        .map(|s| (s.partition, s.first, s.last, s.count))
                        .collect::<Vec<_>>()
                ),
                Popped::Reset {
                    partition,
                    position,
                    ..
                } => format!("reset {partition}@{position}"),
                Popped::Closed(why) => {
                    queue.closed = None;
                    format!("closed {why:?}")
                }
            });
        }
        out
    }

    #[test]
    fn gap_skips_ahead_and_names_exactly_what_was_skipped() {
        let mailbox = queue(Policy::Gap, 3, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for offset in 0..7 {
            queue.push(&event(offset as i32 % 2, offset, "A"), 10, &mut tally);
        }
        // 0,1,2 skipped at 3; 3,4,5 skipped at 6.
        assert_eq!(
            drain(&mut queue),
            vec!["gap[(0, 0, 4, 3), (1, 1, 5, 3)]", "A:6"]
        );
        assert_eq!(
            (tally.gaps, tally.skipped, tally.events, tally.bytes),
            (2, 6, 1, 10)
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn bytes_bound_the_queue_too() {
        let mailbox = queue(Policy::Gap, 100, 25);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for offset in 0..3 {
            queue.push(&event(0, offset, "A"), 10, &mut tally);
        }
        assert_eq!(drain(&mut queue), vec!["gap[(0, 0, 1, 2)]", "A:2"]);
        queue.push(&event(0, 3, "A"), 30, &mut tally);
        assert_eq!(drain(&mut queue), vec!["gap[(0, 3, 3, 1)]"]);
    }

    #[test]
    fn disconnect_closes_and_frees() {
        let mailbox = queue(Policy::Disconnect, 2, usize::MAX);
        let mut tally = Tally::default();
        {
            let mut queue = mailbox.lock();
            for offset in 0..3 {
                queue.push(&event(0, offset, "A"), 10, &mut tally);
            }
            assert_eq!(queue.len(), 0);
            assert!(matches!(queue.pop(), Some(Popped::Closed(Closed::TooSlow))));
        }
        assert_eq!((tally.disconnects, tally.events, tally.bytes), (1, 0, 0));
    }

    #[test]
    fn latest_per_key_keeps_the_newest_per_key_in_offset_order() {
        let mailbox = queue(Policy::LatestPerKey, 8, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for (offset, key) in ["A", "B", "A", "C", "B", "A"].into_iter().enumerate() {
            queue.push(&event(0, offset as i64, key), 10, &mut tally);
        }
        assert_eq!(drain(&mut queue), vec!["C:3", "B:4", "A:5"]);
        assert_eq!((tally.conflated, tally.events), (3, 3));
        assert!(queue.latest.is_none(), "freed once empty");
    }

    #[test]
    fn latest_per_key_full_of_distinct_keys_skips_ahead() {
        let mailbox = queue(Policy::LatestPerKey, 2, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for (offset, key) in ["A", "B", "C"].into_iter().enumerate() {
            queue.push(&event(0, offset as i64, key), 10, &mut tally);
        }
        assert_eq!(drain(&mut queue), vec!["gap[(0, 0, 1, 2)]", "C:2"]);
    }

    #[test]
    fn gates_hold_back_and_then_pass_what_follows_the_backfill() {
        let mailbox = queue(Policy::Gap, 100, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        queue.push(&event(0, 1, "A"), 10, &mut tally);
        queue.push(&event(1, 1, "A"), 10, &mut tally);
        let purged = queue.backfilling(Topic::StockTrades, 0);
        assert_eq!(purged.events, -1);
        queue.push(&event(0, 2, "A"), 10, &mut tally);
        queue.live_after(Topic::StockTrades, 0, 3);
        for offset in 3..6 {
            queue.push(&event(0, offset, "A"), 10, &mut tally);
        }
        assert_eq!(drain(&mut queue), vec!["A:1", "A:4", "A:5"]);
    }

    #[test]
    fn a_reset_replaces_what_is_queued_of_its_partition() {
        let mailbox = queue(Policy::Gap, 2, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for offset in 100..104 {
            queue.push(&event(0, offset, "A"), 10, &mut tally);
        }
        queue.push(&event(1, 7, "A"), 10, &mut tally);
        assert!(queue.reset(Topic::StockTrades, 0, -1, &mut tally));
        queue.push(&event(0, 0, "A"), 10, &mut tally);
        assert_eq!(drain(&mut queue), vec!["reset 0@-1", "A:7", "A:0"]);
        // A partition its backfill serves is not told by the queue.
        queue.backfilling(Topic::StockTrades, 1);
        assert!(!queue.reset(Topic::StockTrades, 1, -1, &mut tally));
    }

    #[test]
    fn a_burst_grows_the_queue_and_emptying_frees_it() {
        let mailbox = queue(Policy::Gap, 10_000, usize::MAX);
        let mut queue = mailbox.lock();
        let mut tally = Tally::default();
        for offset in 0..5_000 {
            queue.push(&event(0, offset, "A"), 10, &mut tally);
        }
        assert!(queue.fifo.capacity() >= 5_000);
        drain(&mut queue);
        assert_eq!(queue.fifo.capacity(), 0);
        assert_eq!(queue.queued_bytes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_wakes_the_reader() {
        let mailbox = std::sync::Arc::new(queue(Policy::Gap, 4, usize::MAX));
        let reader = {
            let mailbox = mailbox.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(popped) = mailbox.lock().pop() {
                        return popped;
                    }
                    mailbox.woken().await;
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        mailbox.close(Closed::ShuttingDown);
        assert!(matches!(
            reader.await.expect("joins"),
            Popped::Closed(Closed::ShuttingDown)
        ));
    }
}
