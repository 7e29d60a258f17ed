//! The fan-out hub: every event the gateway takes in goes through here once, and every
//! subscriber, whatever its transport, reads from here.
//!
//! Ingest hands the hub a batch at a time. Under one short lock the hub drops what it has seen
//! (by partition and offset, asking Kafka when an offset goes backwards or jumps far ahead),
//! keeps each partition's recent history, and routes the batch: subscribers are grouped by
//! filter and indexed by topic and key ([`routing`]), so an event costs only those who take it.
//! The lock is released before any subscriber is woken: each subscriber's queue ([`queue`]) has
//! its own lock and its own slow-client policy. A "published" watermark per partition says up to
//! where every event has been handed to every subscriber, so an idle subscriber's heartbeat can
//! carry its real positions.
//!
//! A subscriber joins the routing first (its queue starts filling), then its backfill
//! ([`backfill`]) serves what it asked for from the past — from memory, or read from Kafka — and
//! hands each partition over to the queue exactly where it ended.

mod backfill;
mod history;
mod partition;
mod policy;
mod queue;
mod routing;
mod spec;
mod subscription;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use prost::Message;
use streamweaver_proto::topics::Topic;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::{
    partition::MAX_UNCHECKED_JUMP,
    policy::{
        MAX_SAMPLE_INTERVAL, MIN_SAMPLE_INTERVAL, Policy, PolicyDefaults, PolicyError, PolicyKind,
    },
    queue::Limits,
    spec::{MAX_RESUME_POSITIONS, RequestError, ResumePosition, Spec, StartPoint},
    subscription::{Ended, Outgoing, Subscription},
};
use self::{
    partition::{Partition, Step},
    queue::{Closed, Mailbox, Tally},
    routing::{Delivery, GroupId, RoutingIndex},
};
use crate::{
    event::SharedEvent,
    expr::{self, Expression, Expressions, Limits as ExprLimits},
    metrics::{Metrics, PolicyActionLabels, PolicyLabels, TopicLabels, Transport},
    replay::{Replayer, Verdict},
};

/// How the hub behaves; see the gateway's flags of the same names.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// How much each subscriber's queue may hold.
    pub limits: Limits,
    /// The slow-client policy and sample interval of requests that leave them unset.
    pub policy: PolicyDefaults,
    /// Events kept in memory per partition.
    pub history: usize,
    /// Events older than this leave the memory.
    pub history_max_age: Duration,
    /// A subscription with nothing to send for this long gets a heartbeat.
    pub heartbeat: Duration,
    /// Longest wait for Kafka when an offset went backwards or jumped.
    pub offset_check_timeout: Duration,
    /// How long a backfill keeps retrying while Kafka cannot be read before it gives up.
    pub replay_retry_for: Duration,
}

/// What the hub did with one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New: kept and fanned out.
    Accepted,
    /// Its position was seen before (a replay after a consumer failure): dropped.
    Duplicate,
    /// Refused; a fixed reason for metrics.
    Refused(&'static str),
}

struct State {
    partitions: HashMap<(Topic, i32), Partition>,
    routing: RoutingIndex,
    closed: bool,
}

/// The fan-out hub, shared by ingest and every subscriber.
pub struct Hub {
    settings: HubSettings,
    state: Mutex<State>,
    /// Orders publishers: a batch is handed to every queue before the next one is.
    publishing: tokio::sync::Mutex<()>,
    /// Per partition, the offset up to which every event was handed to every subscriber.
    published: Mutex<HashMap<(Topic, i32), i64>>,
    replayer: Replayer,
    /// Filter expressions, compiled once per distinct source for every transport.
    expressions: Expressions,
    metrics: Metrics,
}

/// What a backfill finds in memory for one partition.
enum View {
    /// The partition's offsets started again since the backfill last looked.
    Restarted { epoch: u32, position: i64 },
    /// Events after the cursor, and the offset they reach.
    Memory {
        events: Vec<SharedEvent>,
        through: i64,
    },
    /// Memory lacks what comes after the cursor, up to `until` (exclusive): read Kafka.
    BeforeMemory { until: i64 },
    /// The hub has nothing at or beyond the cursor: ask Kafka where the partition ends.
    BeyondMemory,
    /// Caught up: the queue takes over from the cursor on.
    Live,
}

/// The size an event is accounted at in queues: its encoded Protobuf length.
fn accounted_bytes(event: &SharedEvent) -> u32 {
    u32::try_from(event.event().encoded_len()).unwrap_or(u32::MAX)
}

impl Hub {
    /// A hub reading Kafka through `replayer` for backfills and offset checks.
    pub fn new(settings: HubSettings, replayer: Replayer, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            settings,
            state: Mutex::new(State {
                partitions: HashMap::new(),
                routing: RoutingIndex::default(),
                closed: false,
            }),
            publishing: tokio::sync::Mutex::new(()),
            published: Mutex::new(HashMap::new()),
            replayer,
            expressions: Expressions::new(
                ExprLimits::default(),
                expr::CACHE_CAPACITY,
                metrics.expressions.clone(),
            ),
            metrics,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can leave the state half-updated, so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn published(&self) -> MutexGuard<'_, HashMap<(Topic, i32), i64>> {
        self.published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hub's settings.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Fans `events` out in order, dropping those already seen; returns what happened to each.
    pub async fn publish(&self, events: &[SharedEvent]) -> Vec<Outcome> {
        let _order = self.publishing.lock().await;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut next = 0;
        while next < events.len() {
            let now = Instant::now();
            let mut accepted = Vec::new();
            let mut check = None;
            let deliveries = {
                let mut state = self.state();
                while let Some(event) = events.get(next) {
                    let partition = state
                        .partitions
                        .entry((event.topic(), event.partition()))
                        .or_insert_with(Partition::new);
                    match partition.step(event.offset(), now) {
                        Step::Accept => {
                            partition.accept(event.clone(), now, self.settings.history);
                            accepted.push((event.clone(), accounted_bytes(event)));
                            outcomes.push(Outcome::Accepted);
                        }
                        Step::Duplicate => {
                            self.metrics.duplicates.inc();
                            outcomes.push(Outcome::Duplicate);
                        }
                        step => {
                            check = Some(step);
                            break;
                        }
                    }
                    next += 1;
                }
                state.routing.route(&accepted)
            };
            self.deliver(deliveries);
            self.mark_published(&accepted);
            if let (Some(step), Some(event)) = (check, events.get(next))
                && let Some(outcome) = self.check(step, event).await
            {
                outcomes.push(outcome);
                next += 1;
            }
        }
        outcomes
    }

    /// Asks Kafka about an offset that went backwards or jumped. Returns the event's outcome
    /// when the check decided it; `None` when the event is to be stepped again.
    async fn check(&self, step: Step, event: &SharedEvent) -> Option<Outcome> {
        let (topic, partition, offset) = (event.topic(), event.partition(), event.offset());
        let timeout = self.settings.offset_check_timeout;
        match step {
            Step::CheckBackward { newest } => {
                let verdict = tokio::time::timeout(timeout, self.replayer.verify(&newest)).await;
                let mut state = self.state();
                let state_of = state.partitions.get_mut(&(topic, partition))?;
                match verdict {
                    Ok(Ok(Verdict::Same)) => {
                        self.metrics.offset_check("backward", "duplicate");
                        state_of.verified();
                    }
                    Ok(Ok(Verdict::StartedAgain)) => {
                        self.metrics.offset_check("backward", "started_again");
                        tracing::warn!(%topic, partition, offset, newest = newest.offset(), "the partition's offsets started again");
                        state_of.restart(offset);
                        let members = state.routing.members_of(topic);
                        drop(state);
                        self.restart(topic, partition, offset - 1, members);
                    }
                    Ok(Err(error)) => {
                        self.metrics.offset_check("backward", "unavailable");
                        tracing::warn!(%topic, partition, offset, %error, "cannot ask Kafka about an offset that went backwards; taking it for a duplicate");
                        state_of.assumed_duplicates(Instant::now());
                    }
                    Err(_) => {
                        self.metrics.offset_check("backward", "unavailable");
                        tracing::warn!(%topic, partition, offset, ?timeout, "Kafka did not say in time whether an offset that went backwards is a duplicate; taking it for one");
                        state_of.assumed_duplicates(Instant::now());
                    }
                }
                None
            }
            Step::CheckJump => {
                let watermarks =
                    tokio::time::timeout(timeout, self.replayer.watermarks(topic, partition)).await;
                match watermarks {
                    Ok(Ok(watermarks)) if offset < watermarks.high => {
                        self.metrics.offset_check("jump", "within_log");
                        let now = Instant::now();
                        let bytes = accounted_bytes(event);
                        let deliveries = {
                            let mut state = self.state();
                            let state_of = state
                                .partitions
                                .entry((topic, partition))
                                .or_insert_with(Partition::new);
                            state_of.accept_jump(event.clone(), now, self.settings.history);
                            state.routing.route(&[(event.clone(), bytes)])
                        };
                        self.deliver(deliveries);
                        self.mark_published(&[(event.clone(), bytes)]);
                        Some(Outcome::Accepted)
                    }
                    Ok(Ok(watermarks)) => {
                        self.metrics.offset_check("jump", "beyond_log_end");
                        tracing::warn!(%topic, partition, offset, log_end = watermarks.high, "refused an event past Kafka's log end");
                        Some(Outcome::Refused("offset_beyond_log_end"))
                    }
                    Ok(Err(_)) | Err(_) => {
                        self.metrics.offset_check("jump", "unavailable");
                        tracing::warn!(%topic, partition, offset, "refused an offset far ahead of the last one: Kafka cannot confirm it");
                        Some(Outcome::Refused("offset_unverified"))
                    }
                }
            }
            Step::Accept | Step::Duplicate => None,
        }
    }

    /// Tells every subscriber of a restarted partition where it goes on from.
    fn restart(&self, topic: Topic, partition: i32, position: i64, members: Vec<Arc<Mailbox>>) {
        self.metrics
            .partition_resets
            .get_or_create(&TopicLabels {
                topic: topic.name(),
            })
            .inc();
        let mut tallies = Tallies::default();
        for member in members {
            let mut queue = member.lock();
            let tally = tallies.of(queue.policy());
            if queue.reset(topic, partition, position, tally) {
                drop(queue);
                member.wake();
            }
        }
        self.count(tallies);
        self.published().insert((topic, partition), position);
    }

    /// Hands routed events to their queues, one lock and at most one wake per subscriber.
    fn deliver(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let mut tallies = Tallies::default();
        for delivery in deliveries {
            for member in delivery.members.iter() {
                let mut queue = member.lock();
                let was_empty = queue.is_empty();
                let tally = tallies.of(queue.policy());
                for (event, bytes) in &delivery.events {
                    queue.push(event, *bytes, tally);
                }
                let wake = was_empty && !queue.is_empty();
                drop(queue);
                if wake {
                    member.wake();
                }
            }
        }
        self.count(tallies);
    }

    fn mark_published(&self, accepted: &[(SharedEvent, u32)]) {
        if accepted.is_empty() {
            return;
        }
        let mut per_topic = [0u64; Topic::ALL.len()];
        {
            let mut published = self.published();
            for (event, _) in accepted {
                published.insert((event.topic(), event.partition()), event.offset());
                per_topic[event.topic().index()] += 1;
            }
        }
        for (topic, count) in Topic::ALL.into_iter().zip(per_topic) {
            if count > 0 {
                self.metrics
                    .ingested
                    .get_or_create(&TopicLabels {
                        topic: topic.name(),
                    })
                    .inc_by(count);
            }
        }
    }

    fn count(&self, tallies: Tallies) {
        for (kind, tally) in PolicyKind::ALL.into_iter().zip(tallies.0) {
            let action = |action| PolicyActionLabels {
                policy: kind,
                action,
            };
            let labels = PolicyLabels { policy: kind };
            if tally.gaps > 0 {
                self.metrics
                    .slow_client_actions
                    .get_or_create(&action("gap"))
                    .inc_by(tally.gaps);
            }
            if tally.disconnects > 0 {
                self.metrics
                    .slow_client_actions
                    .get_or_create(&action("disconnect"))
                    .inc_by(tally.disconnects);
            }
            if tally.conflated > 0 {
                self.metrics
                    .slow_client_actions
                    .get_or_create(&action("conflate"))
                    .inc_by(tally.conflated);
                self.metrics
                    .conflated
                    .get_or_create(&labels)
                    .inc_by(tally.conflated);
            }
            if tally.handed_back > 0 {
                self.metrics
                    .slow_client_actions
                    .get_or_create(&action("hand_back_to_backfill"))
                    .inc_by(tally.handed_back);
            }
            if tally.skipped > 0 {
                self.metrics
                    .skipped
                    .get_or_create(&labels)
                    .inc_by(tally.skipped);
            }
            self.account_queued(tally.events, tally.bytes);
        }
    }

    fn account_queued(&self, events: i64, bytes: i64) {
        if events != 0 {
            self.metrics.queued_events.inc_by(events);
        }
        if bytes != 0 {
            self.metrics.queued_bytes.inc_by(bytes);
        }
    }

    /// A subscription to what `request` asks for, its filter expression compiled (or found
    /// compiled) first: every transport subscribes here. Refused requests are counted under
    /// `transport`.
    pub async fn subscribe(
        self: &Arc<Self>,
        request: &streamweaver_proto::v1::SubscribeRequest,
        transport: Transport,
    ) -> Result<Subscription, RequestError> {
        let expression = self
            .expressions
            .get(&request.filter)
            .await
            .map_err(RequestError::from)
            .inspect_err(|error| self.metrics.refuse(transport.name(), error.reason()))?;
        self.subscribe_with(request, expression, transport)
    }

    /// As [`Hub::subscribe`], with the request's `filter` already compiled to `expression`.
    pub fn subscribe_with(
        self: &Arc<Self>,
        request: &streamweaver_proto::v1::SubscribeRequest,
        expression: Option<Arc<Expression>>,
        transport: Transport,
    ) -> Result<Subscription, RequestError> {
        let spec = Spec::from_request(
            request,
            expression,
            &self.settings.policy,
            SystemTime::now(),
        )
        .inspect_err(|error| self.metrics.refuse(transport.name(), error.reason()))?;
        Ok(self.subscribe_spec(spec, transport))
    }

    /// The compiled filter expressions.
    pub fn expressions(&self) -> &Expressions {
        &self.expressions
    }

    /// A subscription to what `spec` asks for.
    pub fn subscribe_spec(self: &Arc<Self>, spec: Spec, transport: Transport) -> Subscription {
        let mailbox = Arc::new(Mailbox::new(spec.policy, self.settings.limits));
        let topics = spec.filter.topics();
        let mut starts = Vec::with_capacity(spec.resume.len());
        let resumed: Vec<(Topic, i32, i64)> = spec
            .resume
            .iter()
            .map(|position| (position.topic, position.partition, position.offset))
            .collect();
        let (group, filter) = {
            let mut state = self.state();
            if state.closed {
                mailbox.close(Closed::ShuttingDown);
            }
            let (group, filter) = state.routing.join(spec.filter, mailbox.clone());
            self.metrics
                .filter_groups
                .set(state.routing.group_count() as i64);
            let mut queue = mailbox.lock();
            if !spec.resume.is_empty() || spec.start_at.is_some() {
                queue.start_backfill();
            }
            for position in &spec.resume {
                queue.backfilling(position.topic, position.partition);
                let epoch = state
                    .partitions
                    .get(&(position.topic, position.partition))
                    .map_or(0, Partition::epoch);
                starts.push(backfill::Start {
                    topic: position.topic,
                    partition: position.partition,
                    cursor: position.offset,
                    epoch,
                    finished: false,
                });
            }
            (group, filter)
        };
        let backfill = (!starts.is_empty() || spec.start_at.is_some()).then(|| {
            let steps = backfill::spawn(
                self.clone(),
                filter,
                mailbox.clone(),
                backfill::Plan {
                    starts,
                    start_at: spec.start_at,
                    topics,
                },
            );
            (steps, resumed)
        });
        Subscription::new(
            self.clone(),
            mailbox,
            group,
            topics,
            spec.policy,
            transport,
            backfill,
        )
    }

    /// Takes a subscriber out of the routing and its queue out of the accounting.
    fn leave(&self, group: GroupId, mailbox: &Arc<Mailbox>) {
        {
            let mut state = self.state();
            state.routing.leave(group, mailbox);
            self.metrics
                .filter_groups
                .set(state.routing.group_count() as i64);
        }
        let removed = mailbox.lock().close(Closed::ShuttingDown);
        self.account_queued(removed.events, removed.bytes);
    }

    /// Ends every subscription (the gateway is shutting down), from here: no subscription
    /// watches a shared token.
    pub fn close(&self) {
        let members = {
            let mut state = self.state();
            state.closed = true;
            state.routing.all_members()
        };
        for member in members {
            let removed = member.close(Closed::ShuttingDown);
            self.account_queued(removed.events, removed.bytes);
        }
    }

    /// Evicts aged history until `shutdown`, then closes every subscription.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.settings.history_max_age / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => self.evict_aged(),
            }
        }
        self.close();
    }

    fn evict_aged(&self) {
        let Some(deadline) = Instant::now().checked_sub(self.settings.history_max_age) else {
            return;
        };
        let mut state = self.state();
        let mut kept = 0;
        for partition in state.partitions.values_mut() {
            partition.history.evict_older_than(deadline);
            kept += partition.history.len();
        }
        self.metrics.history_events.set(kept as i64);
    }

    /// What memory holds for a backfill at `cursor` in one partition; when the backfill has
    /// caught up, hands the partition over to `mailbox` (under the same lock, so no publish
    /// falls between).
    fn view(
        &self,
        topic: Topic,
        partition: i32,
        cursor: i64,
        epoch: u32,
        max: usize,
        mailbox: &Mailbox,
    ) -> View {
        let state = self.state();
        let Some(state_of) = state.partitions.get(&(topic, partition)) else {
            return View::BeyondMemory;
        };
        if state_of.epoch() != epoch {
            return View::Restarted {
                epoch: state_of.epoch(),
                position: state_of.restart_position(),
            };
        }
        match state_of.highest() {
            None => View::BeyondMemory,
            Some(highest) if cursor > highest => View::BeyondMemory,
            Some(highest) if cursor == highest => {
                mailbox.lock().live_after(topic, partition, cursor);
                View::Live
            }
            Some(_) if state_of.history.covers_after(cursor) => {
                let events = state_of.history.after(cursor, max);
                match events.last().map(SharedEvent::offset) {
                    Some(through) => View::Memory { events, through },
                    // Covered yet empty: nothing was kept after the cursor (no history).
                    None => View::BeforeMemory {
                        until: state_of.history.complete_after() + 1,
                    },
                }
            }
            Some(_) => View::BeforeMemory {
                until: state_of.history.complete_after() + 1,
            },
        }
    }

    /// Hands a partition over to `mailbox` at `cursor` if the hub holds nothing beyond it.
    fn go_live_if_caught_up(
        &self,
        topic: Topic,
        partition: i32,
        cursor: i64,
        epoch: u32,
        mailbox: &Mailbox,
    ) -> bool {
        let state = self.state();
        let caught_up = match state.partitions.get(&(topic, partition)) {
            None => true,
            Some(state_of) => {
                state_of.epoch() == epoch && state_of.highest().is_none_or(|h| cursor >= h)
            }
        };
        if caught_up {
            mailbox.lock().live_after(topic, partition, cursor);
        }
        caught_up
    }

    /// The partitions `mailbox`'s queue handed back to its backfill, with their epochs now (read
    /// under the hub's lock, before a restart could tell the queue); none ends the backfill.
    fn handed_back(&self, mailbox: &Mailbox) -> Vec<backfill::Start> {
        let state = self.state();
        let handed_back = mailbox.lock().take_handed_back();
        handed_back
            .into_iter()
            .map(|(topic, partition, cursor)| backfill::Start {
                topic,
                partition,
                cursor,
                epoch: state
                    .partitions
                    .get(&(topic, partition))
                    .map_or(0, Partition::epoch),
                finished: false,
            })
            .collect()
    }

    /// The epoch of a partition now (0 for one the hub has not seen).
    fn epoch(&self, topic: Topic, partition: i32) -> u32 {
        self.state()
            .partitions
            .get(&(topic, partition))
            .map_or(0, Partition::epoch)
    }

    /// Per partition of `topics`, the offset up to which every event was handed to every
    /// subscriber.
    fn published_positions(&self, topics: crate::filter::TopicSet) -> Vec<(Topic, i32, i64)> {
        self.published()
            .iter()
            .filter(|((topic, _), _)| topics.contains(*topic))
            .map(|(&(topic, partition), &offset)| (topic, partition, offset))
            .collect()
    }
}

/// What the publisher did, per policy.
#[derive(Default)]
struct Tallies([Tally; PolicyKind::ALL.len()]);

impl Tallies {
    fn of(&mut self, policy: Policy) -> &mut Tally {
        &mut self.0[policy.kind() as usize]
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
