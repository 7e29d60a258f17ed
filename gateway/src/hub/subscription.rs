//! One subscriber's view of the hub, whatever its transport: its backfill first (if it resumes
//! or starts in the past), then its live queue; gap notices, position resets and heartbeats in
//! between. Events come out as [`SharedEvent`]s, so a transport writes their shared encoding;
//! the rare other responses are built here.
//!
//! Heartbeats carry the subscriber's position in every partition of its topics, including
//! events its filter passed over: when its queue is empty, the hub's published watermark says
//! it has everything up to there. The watermark is read *before* the queue is found empty, so
//! an event published in between cannot be claimed as delivered.

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::SystemTime};

use streamweaver_proto::{
    time,
    topics::Topic,
    v1::{
        GapNotice, Heartbeat, OffsetRange, Position, PositionsReset, SubscribeResponse,
        subscribe_response::Kind,
    },
};
use tokio::{
    sync::mpsc,
    time::{Instant, Sleep},
};

use super::{
    Hub,
    backfill::{self, Missed, Step},
    policy::Policy,
    queue::{Closed, Mailbox, Popped, Skip},
    routing::GroupId,
};
use crate::{
    event::SharedEvent,
    filter::TopicSet,
    metrics::{Transport, TransportLabels},
};

/// Why a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The gateway is shutting down (gRPC UNAVAILABLE, WebSocket close 1001).
    ShuttingDown,
    /// The subscriber fell behind under the DISCONNECT policy (gRPC RESOURCE_EXHAUSTED,
    /// WebSocket close 1008).
    TooSlow,
    /// Its backfill could not read Kafka (gRPC UNAVAILABLE): it may retry later.
    ReplayUnavailable(String),
}

impl From<Closed> for Ended {
    fn from(closed: Closed) -> Self {
        match closed {
            Closed::ShuttingDown => Self::ShuttingDown,
            Closed::TooSlow => Self::TooSlow,
        }
    }
}

/// The next thing to send a subscriber.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// An event: send its shared encoding.
    Event(SharedEvent),
    /// A gap notice, a position reset or a heartbeat, made for this subscriber.
    Message(Box<SubscribeResponse>),
}

/// Most events a reader takes off its queue under one lock.
const TAKE_AT_ONCE: usize = 64;

const FELL_BEHIND: &str = "subscriber fell behind";
const KAFKA_MISSING: &str = "Kafka no longer holds these offsets";
const KAFKA_UNREADABLE: &str = "Kafka could not be read for these offsets; going on live";

/// Resume positions: per partition, the last offset the subscriber has.
pub(super) type Resumed = Vec<(Topic, i32, i64)>;

/// The last offset delivered or passed over, per partition.
#[derive(Debug, Default)]
struct Positions(Vec<(Topic, i32, i64)>);

impl Positions {
    fn get_mut(&mut self, topic: Topic, partition: i32) -> Option<&mut i64> {
        self.0
            .iter_mut()
            .find(|(t, p, _)| *t == topic && *p == partition)
            .map(|(_, _, offset)| offset)
    }

    /// Moves the partition's position to `offset` if that is ahead; says whether it was.
    fn advance(&mut self, topic: Topic, partition: i32, offset: i64) -> bool {
        match self.get_mut(topic, partition) {
            Some(last) if *last >= offset => false,
            Some(last) => {
                *last = offset;
                true
            }
            None => {
                self.0.push((topic, partition, offset));
                true
            }
        }
    }

    /// Replaces the partition's position (it started again).
    fn replace(&mut self, topic: Topic, partition: i32, offset: i64) {
        match self.get_mut(topic, partition) {
            Some(last) => *last = offset,
            None => self.0.push((topic, partition, offset)),
        }
    }
}

/// SAMPLE: at each tick, the newest queued event per key goes out; ticks are at least the
/// interval apart, so each key gets at most one event per interval, and offsets per partition
/// stay increasing.
struct Sampler {
    interval: std::time::Duration,
    next_tick: Instant,
    ready: VecDeque<SharedEvent>,
}

/// A backfill's steps, and the one being delivered.
struct BackfillReader {
    steps: mpsc::Receiver<Step>,
    events: VecDeque<SharedEvent>,
    /// The partition being delivered and where its step ends.
    through: Option<(Topic, i32, i64)>,
}

/// One subscriber's view of the hub; see the module documentation. Dropping it leaves the hub.
pub struct Subscription {
    hub: Arc<Hub>,
    mailbox: Arc<Mailbox>,
    group: GroupId,
    topics: TopicSet,
    transport: Transport,
    /// When a heartbeat is due if nothing is sent before.
    quiet_until: Instant,
    /// Something was sent since the reader last waited: the quiet starts again.
    sent: bool,
    /// Wakes a waiting reader for a heartbeat or a sample tick. Kept, and moved only when it
    /// fires early or must fire sooner: not a timer registered and cancelled at every wait.
    timer: Pin<Box<Sleep>>,
    positions: Positions,
    backfill: Option<Box<BackfillReader>>,
    sampler: Option<Box<Sampler>>,
    /// Events taken off the queue together, to send before looking at it again.
    taken: VecDeque<SharedEvent>,
    /// Popped but not yet taken off the queued-events gauges.
    unaccounted: (i64, i64),
    /// Events sent but not yet counted (counted in bulk, not one shared counter per event).
    uncounted_deliveries: u64,
    /// A heartbeat goes out before anything else: at the start, and when the backfill ends.
    heartbeat_due: bool,
}

impl Subscription {
    pub(super) fn new(
        hub: Arc<Hub>,
        mailbox: Arc<Mailbox>,
        group: GroupId,
        topics: TopicSet,
        policy: Policy,
        transport: Transport,
        // The backfill's steps, and the resume positions it starts from.
        mut backfill: Option<(mpsc::Receiver<Step>, Resumed)>,
    ) -> Self {
        hub.metrics
            .subscribers
            .get_or_create(&TransportLabels { transport })
            .inc();
        let quiet_until = Instant::now() + hub.settings.heartbeat;
        let sampler = match policy {
            Policy::Sample(interval) => Some(Box::new(Sampler {
                interval,
                next_tick: Instant::now(),
                ready: VecDeque::new(),
            })),
            _ => None,
        };
        Self {
            hub,
            mailbox,
            group,
            topics,
            transport,
            quiet_until,
            sent: false,
            timer: Box::pin(tokio::time::sleep_until(quiet_until)),
            positions: Positions(
                backfill
                    .as_mut()
                    .map(|(_, resumed)| std::mem::take(resumed))
                    .unwrap_or_default(),
            ),
            backfill: backfill.map(|(steps, _)| {
                Box::new(BackfillReader {
                    steps,
                    events: VecDeque::new(),
                    through: None,
                })
            }),
            sampler,
            taken: VecDeque::new(),
            unaccounted: (0, 0),
            uncounted_deliveries: 0,
            heartbeat_due: true,
        }
    }

    /// The next thing to send, or why the subscription ended.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Outgoing, Ended> {
        let next = self.next_unstamped().await;
        // The clock is read when the reader next waits, not for every event.
        self.sent = true;
        if let Ok(Outgoing::Event(_)) = next {
            self.uncounted_deliveries += 1;
            if self.uncounted_deliveries >= 1024 {
                self.account();
            }
        }
        next
    }

    /// The next thing to send if it is ready now, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Outgoing, Ended>> {
        use futures::FutureExt;
        self.next().now_or_never()
    }

    async fn next_unstamped(&mut self) -> Result<Outgoing, Ended> {
        loop {
            if std::mem::take(&mut self.heartbeat_due) {
                return Ok(self.heartbeat());
            }
            if self.backfill.is_some() {
                match self.next_backfilled().await {
                    Some(next) => return next,
                    None => continue,
                }
            }
            let popped = match &mut self.sampler {
                None => {
                    if let Some(event) = self.taken.pop_front() {
                        // Taken off the queue (and accounted) with others under one lock.
                        if self
                            .positions
                            .advance(event.topic(), event.partition(), event.offset())
                        {
                            return Ok(Outgoing::Event(event));
                        }
                        continue;
                    }
                    let mut queue = self.mailbox.lock();
                    let popped = queue.pop();
                    if let Some(Popped::Event(..)) = popped {
                        let (events, bytes) = queue.pop_events(TAKE_AT_ONCE, &mut self.taken);
                        drop(queue);
                        self.unaccounted.0 += events as i64;
                        self.unaccounted.1 += bytes as i64;
                    }
                    popped
                }
                Some(sampler) => {
                    if let Some(event) = sampler.ready.pop_front() {
                        if self
                            .positions
                            .advance(event.topic(), event.partition(), event.offset())
                        {
                            return Ok(Outgoing::Event(event));
                        }
                        continue;
                    }
                    let mut queue = self.mailbox.lock();
                    let control = queue.pop_control();
                    if control.is_none() && Instant::now() >= sampler.next_tick {
                        let (events, bytes) = queue.take_events();
                        drop(queue);
                        if !events.is_empty() {
                            self.unaccounted.0 += events.len() as i64;
                            self.unaccounted.1 += bytes as i64;
                            sampler.ready = events.into();
                            sampler.next_tick = Instant::now() + sampler.interval;
                            continue;
                        }
                    }
                    control
                }
            };
            match popped {
                Some(Popped::Event(event, bytes)) => {
                    self.unaccounted.0 += 1;
                    self.unaccounted.1 += i64::from(bytes);
                    if self.unaccounted.0 >= 1024 {
                        self.account();
                    }
                    // At or below what a backfill delivered: the subscriber has it.
                    if self
                        .positions
                        .advance(event.topic(), event.partition(), event.offset())
                    {
                        return Ok(Outgoing::Event(event));
                    }
                }
                Some(Popped::Gap(skips)) => return Ok(Outgoing::Message(self.gap(&skips))),
                Some(Popped::Reset {
                    topic,
                    partition,
                    position,
                }) => {
                    return Ok(Outgoing::Message(self.reset(
                        topic,
                        partition,
                        position,
                        backfill::RESTARTED,
                    )));
                }
                Some(Popped::Closed(why)) => return Err(why.into()),
                None => {
                    self.account();
                    self.stamp();
                    let wait_until = match &self.sampler {
                        Some(sampler) if sampler.next_tick > Instant::now() => {
                            sampler.next_tick.min(self.quiet_until)
                        }
                        _ => self.quiet_until,
                    };
                    if self.timer.deadline() > wait_until {
                        self.timer.as_mut().reset(wait_until);
                    }
                    tokio::select! {
                        () = self.mailbox.woken() => {}
                        () = self.timer.as_mut() => {
                            self.timer.as_mut().reset(wait_until);
                            if Instant::now() >= self.quiet_until {
                                // Quiet for a while: give back what a burst grew.
                                self.taken = VecDeque::new();
                                return Ok(self.heartbeat());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The next thing while the backfill runs; `None` to look again. The queue's events, resets
    /// and gap notices come through the backfill meanwhile, in order with what it sends.
    async fn next_backfilled(&mut self) -> Option<Result<Outgoing, Ended>> {
        let backfill = self.backfill.as_mut()?;
        while let Some(event) = backfill.events.pop_front() {
            // At or below what was delivered: the subscriber has it.
            if self
                .positions
                .advance(event.topic(), event.partition(), event.offset())
            {
                return Some(Ok(Outgoing::Event(event)));
            }
        }
        if let Some((topic, partition, through)) = backfill.through.take() {
            self.positions.advance(topic, partition, through);
        }
        if let Some(why) = self.mailbox.lock().closed() {
            return Some(Err(why.into()));
        }
        self.stamp();
        let backfill = self.backfill.as_mut()?;
        tokio::select! {
            step = backfill.steps.recv() => match step {
                None => {
                    // Caught up: say so at once.
                    self.backfill = None;
                    self.heartbeat_due = true;
                    None
                }
                Some(Step::Events { topic, partition, events, through }) => {
                    backfill.events = events.into();
                    backfill.through = Some((topic, partition, through));
                    None
                }
                Some(Step::Live(events)) => {
                    backfill.events = events.into();
                    None
                }
                Some(Step::Gap(skips)) => Some(Ok(Outgoing::Message(self.gap(&skips)))),
                Some(Step::Missing { topic, partition, first, last, reason }) => {
                    Some(Ok(Outgoing::Message(self.missing(topic, partition, first, last, reason))))
                }
                Some(Step::Reset { topic, partition, position, reason }) => {
                    Some(Ok(Outgoing::Message(self.reset(topic, partition, position, reason))))
                }
                Some(Step::Failed(message)) => Some(Err(Ended::ReplayUnavailable(message))),
            },
            () = self.mailbox.woken() => None,
            () = self.timer.as_mut() => {
                self.timer.as_mut().reset(self.quiet_until);
                (Instant::now() >= self.quiet_until).then(|| Ok(self.heartbeat()))
            }
        }
    }

    fn count_gap(&self, missed: u64) {
        let labels = TransportLabels {
            transport: self.transport,
        };
        self.hub.metrics.gaps.get_or_create(&labels).inc();
        self.hub
            .metrics
            .missed
            .get_or_create(&labels)
            .inc_by(missed);
    }

    /// A gap notice for what the subscriber fell behind on; it then goes on after it.
    fn gap(&mut self, skips: &[Skip]) -> Box<SubscribeResponse> {
        let missed_events = skips.iter().map(|skip| skip.count).sum();
        self.count_gap(missed_events);
        tracing::debug!(
            transport = self.transport.name(),
            missed_events,
            "subscriber fell behind"
        );
        let notice = GapNotice {
            missed_events,
            reason: FELL_BEHIND.to_owned(),
            last_positions: skips
                .iter()
                .map(|skip| position(skip.topic, skip.partition, skip.first - 1))
                .collect(),
            missed: skips
                .iter()
                .map(|skip| range(skip.topic, skip.partition, skip.first, skip.last))
                .collect(),
        };
        for skip in skips {
            self.positions
                .advance(skip.topic, skip.partition, skip.last);
        }
        response(Kind::Gap(notice))
    }

    /// A gap notice for offsets the backfill does not deliver.
    fn missing(
        &mut self,
        topic: Topic,
        partition: i32,
        first: i64,
        last: i64,
        reason: Missed,
    ) -> Box<SubscribeResponse> {
        let missed_events = u64::try_from(last - first + 1).unwrap_or(0);
        self.count_gap(missed_events);
        self.positions.advance(topic, partition, last);
        response(Kind::Gap(GapNotice {
            missed_events,
            reason: match reason {
                Missed::Deleted => KAFKA_MISSING.to_owned(),
                Missed::Unreadable(error) => format!("{KAFKA_UNREADABLE}: {error}"),
            },
            last_positions: vec![position(topic, partition, first - 1)],
            missed: vec![range(topic, partition, first, last)],
        }))
    }

    fn reset(
        &mut self,
        topic: Topic,
        partition: i32,
        offset: i64,
        reason: &str,
    ) -> Box<SubscribeResponse> {
        self.positions.replace(topic, partition, offset);
        response(Kind::Reset(PositionsReset {
            positions: vec![position(topic, partition, offset)],
            reason: reason.to_owned(),
        }))
    }

    /// A heartbeat with the subscriber's positions.
    pub(super) fn heartbeat(&mut self) -> Outgoing {
        // The watermark first, then whether everything up to it has gone out.
        let published = self.hub.published_positions(self.topics);
        let idle = self.backfill.is_none()
            && self.taken.is_empty()
            && self.sampler.as_ref().is_none_or(|s| s.ready.is_empty())
            && self.mailbox.lock().is_empty();
        let mut positions: Vec<Position> = self
            .positions
            .0
            .iter()
            .filter(|(topic, _, _)| self.topics.contains(*topic))
            .map(|&(topic, partition, offset)| position(topic, partition, offset))
            .collect();
        if idle {
            for (topic, partition, offset) in published {
                match positions
                    .iter_mut()
                    .find(|p| p.topic == topic.name() && p.partition == partition)
                {
                    Some(known) => known.offset = known.offset.max(offset),
                    None => positions.push(position(topic, partition, offset)),
                }
            }
        }
        positions.sort_unstable_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Outgoing::Message(response(Kind::Heartbeat(Heartbeat {
            server_time: Some(time::timestamp(SystemTime::now())),
            positions,
            interval: Some(time::duration(self.hub.settings.heartbeat)),
            caught_up: self.backfill.is_none(),
        })))
    }

    /// Starts the quiet (before a heartbeat is due) again if something was sent.
    fn stamp(&mut self) {
        if std::mem::take(&mut self.sent) {
            self.quiet_until = Instant::now() + self.hub.settings.heartbeat;
        }
    }

    /// Takes what was popped off the queued-events gauges and counts what was sent.
    fn account(&mut self) {
        let (events, bytes) = std::mem::take(&mut self.unaccounted);
        self.hub.account_queued(-events, -bytes);
        let delivered = std::mem::take(&mut self.uncounted_deliveries);
        if delivered > 0 {
            self.hub
                .metrics
                .delivered
                .get_or_create(&TransportLabels {
                    transport: self.transport,
                })
                .inc_by(delivered);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.account();
        self.hub.leave(self.group, &self.mailbox);
        self.hub
            .metrics
            .subscribers
            .get_or_create(&TransportLabels {
                transport: self.transport,
            })
            .dec();
    }
}

fn response(kind: Kind) -> Box<SubscribeResponse> {
    Box::new(SubscribeResponse { kind: Some(kind) })
}

fn position(topic: Topic, partition: i32, offset: i64) -> Position {
    Position {
        topic: topic.name().to_owned(),
        partition,
        offset,
    }
}

fn range(topic: Topic, partition: i32, first_offset: i64, last_offset: i64) -> OffsetRange {
    OffsetRange {
        topic: topic.name().to_owned(),
        partition,
        first_offset,
        last_offset,
    }
}
