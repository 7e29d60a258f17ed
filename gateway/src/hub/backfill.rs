//! A resuming (or time-travelling) subscriber's past: per partition, from its start position up
//! to where its live queue takes over, strictly in order and exactly once.
//!
//! The subscriber is already in the routing when this starts; its queue holds back the
//! partitions served here (their gate). For each partition, in turn, the backfill reads the
//! hub's memory when it holds everything after the cursor, otherwise Kafka (through the
//! [`Replayer`]) up to where memory begins, then memory, up to the hub's newest event — and in
//! the same critical section that finds it caught up, opens the queue's gate just above the
//! cursor. A gap notice with exact offsets is sent only for what Kafka no longer holds; a
//! position at or past Kafka's log end, or a partition whose offsets started again, gets a
//! `PositionsReset` and the new incarnation from its start.
//!
//! While it runs, the reader takes nothing from its queue itself: before each step the backfill
//! forwards what the queue holds of partitions already handed over (and their resets), so
//! every partition's events reach the reader in order and the queue does not fill while Kafka is
//! read. Should the queue fill anyway (a slow reader, a long read), it hands its partitions back
//! here silently (see [`super::queue`]) and they are served again from where their dropped events
//! started: the backfill chases the live edge until it can splice, and a subscriber catching up
//! gets no gap notice for events Kafka still holds.
//!
//! It runs as its own task, one step ahead of the reader at most (a channel of one), so a
//! subscriber that never reads holds a bounded amount of memory; it ends as soon as the
//! subscription is dropped. While Kafka is unavailable it retries with backoff for
//! `--replay-retry-for`, then gives up: offsets it could not read are announced in a gap notice
//! naming them exactly and the subscription goes on (memory, then live); only when it cannot
//! even learn where a partition starts or ends does the subscription end with UNAVAILABLE.

use std::{future::Future, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use streamweaver_proto::topics::Topic;
use tokio::{sync::mpsc, time::Instant};

use super::{
    Hub, View,
    queue::{Mailbox, Popped, Skip},
    spec::StartPoint,
};
use crate::{
    event::SharedEvent,
    filter::{Filter, TopicSet},
    metrics::SourceLabels,
    replay::{ReplayChunk, ReplayError},
};

/// Most events read from memory at a time.
const MEMORY_CHUNK: usize = 256;
/// Most live events forwarded from the queue in one step.
const LIVE_CHUNK: usize = 1024;
/// First wait before retrying Kafka; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The shortest wait for one answer from Kafka, however little of the budget is left.
const MIN_CALL: Duration = Duration::from_millis(100);

/// Why a reset is sent.
pub(crate) const RESTARTED: &str = "the partition's offsets started again (its topic was recreated or its log cut short); positions held for it mean nothing now";
const GONE: &str = "the partition no longer exists";

/// Where one partition's backfill starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub(crate) topic: Topic,
    pub(crate) partition: i32,
    /// The last offset the subscriber has.
    pub(crate) cursor: i64,
    /// The partition's epoch the cursor belongs to.
    pub(crate) epoch: u32,
    /// Served to the end (the partition is gone).
    pub(crate) finished: bool,
}

/// What a backfill is to serve.
pub(crate) struct Plan {
    /// Partitions with a resume position (their queue gates already closed).
    pub(crate) starts: Vec<Start>,
    /// Where the other partitions of `topics` start.
    pub(crate) start_at: Option<StartPoint>,
    pub(crate) topics: TopicSet,
}

/// One step of a backfill, for the reader.
#[derive(Debug)]
pub(crate) enum Step {
    /// Events the filter takes, in order, and the offset the partition is served up to.
    Events {
        topic: Topic,
        partition: i32,
        events: Vec<SharedEvent>,
        through: i64,
    },
    /// Offsets the subscriber will not get: Kafka no longer holds them, or could not be read.
    Missing {
        topic: Topic,
        partition: i32,
        first: i64,
        last: i64,
        reason: Missed,
    },
    /// The partition goes on from `position`, which replaces the subscriber's own.
    Reset {
        topic: Topic,
        partition: i32,
        position: i64,
        reason: &'static str,
    },
    /// Live events of partitions already handed over, taken from the queue in order.
    Live(Vec<SharedEvent>),
    /// What the queue skipped (only when it was full before this backfill began).
    Gap(Vec<Skip>),
    /// Kafka could not be read: the subscription ends.
    Failed(String),
}

/// Why offsets were not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missed {
    /// Below Kafka's low watermark.
    Deleted,
    /// Kafka could not be read within the retry budget (the error): the subscription goes on
    /// live, and the subscriber may ask for these offsets again later.
    Unreadable(String),
}

/// Starts the backfill task; the reader takes its steps from the returned receiver.
pub(crate) fn spawn(
    hub: Arc<Hub>,
    filter: Arc<Filter>,
    mailbox: Arc<Mailbox>,
    plan: Plan,
) -> mpsc::Receiver<Step> {
    let (steps, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        hub.metrics.backfills.inc();
        let backfill = Backfill {
            hub: &hub,
            filter: &filter,
            mailbox: &mailbox,
            steps: &steps,
        };
        tokio::select! {
            () = steps.closed() => {}
            () = backfill.run(plan) => {}
        }
        hub.metrics.backfills.dec();
    });
    receiver
}

/// Why a backfill stops early.
enum Stop {
    /// The reader went away.
    Gone,
    /// Kafka could not be read within the retry budget.
    Failed(String),
}

struct Backfill<'a> {
    hub: &'a Hub,
    filter: &'a Filter,
    mailbox: &'a Mailbox,
    steps: &'a mpsc::Sender<Step>,
}

/// Kafka retries with backoff, bounded in time since the last progress.
struct Retry {
    since: Option<Instant>,
    backoff: Duration,
    give_up_after: Duration,
}

impl Retry {
    fn new(give_up_after: Duration) -> Self {
        Self {
            since: None,
            backoff: FIRST_BACKOFF,
            give_up_after,
        }
    }

    fn progressed(&mut self) {
        self.since = None;
        self.backoff = FIRST_BACKOFF;
    }

    /// What is left of the budget for one call (never less than [`MIN_CALL`]).
    fn left(&self) -> Duration {
        let spent = self.since.map_or(Duration::ZERO, |since| since.elapsed());
        self.give_up_after.saturating_sub(spent).max(MIN_CALL)
    }

    /// Runs one call to Kafka, bounded by what is left of the budget.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ReplayError>>,
    ) -> Result<T, ReplayError> {
        let left = self.left();
        tokio::time::timeout(left, call).await.unwrap_or_else(|_| {
            Err(ReplayError::Unavailable(format!(
                "no answer within {left:?}"
            )))
        })
    }

    /// Waits before the next attempt, or says to give up.
    async fn wait(&mut self, error: &ReplayError) -> Result<(), Stop> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.give_up_after {
            return Err(Stop::Failed(format!(
                "cannot read Kafka for this subscription's backfill: {error}"
            )));
        }
        tracing::debug!(%error, backoff = ?self.backoff, "Kafka unavailable for a backfill; retrying");
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// A partition that does not exist.
struct Unknown;

impl Backfill<'_> {
    /// Sends `step`, after what the queue holds of partitions already handed over.
    async fn send(&self, step: Step) -> Result<(), Stop> {
        self.forward_live().await?;
        self.steps.send(step).await.map_err(|_| Stop::Gone)
    }

    /// Forwards what the queue holds now, in order: events, and the resets and gap notices
    /// between them (a closed queue's reader ends by itself).
    async fn forward_live(&self) -> Result<(), Stop> {
        loop {
            let mut events = Vec::new();
            let (mut count, mut bytes) = (0i64, 0i64);
            let control = {
                let mut queue = self.mailbox.lock();
                loop {
                    match queue.pop() {
                        Some(Popped::Event(event, size)) => {
                            events.push(event);
                            count += 1;
                            bytes += i64::from(size);
                            if events.len() >= LIVE_CHUNK {
                                break None;
                            }
                        }
                        Some(Popped::Closed(_)) | None => break None,
                        Some(control) => break Some(control),
                    }
                }
            };
            self.hub.account_queued(-count, -bytes);
            let more = events.len() >= LIVE_CHUNK || control.is_some();
            if !events.is_empty() {
                self.steps
                    .send(Step::Live(events))
                    .await
                    .map_err(|_| Stop::Gone)?;
            }
            let step = match control {
                Some(Popped::Reset {
                    topic,
                    partition,
                    position,
                }) => Step::Reset {
                    topic,
                    partition,
                    position,
                    reason: RESTARTED,
                },
                Some(Popped::Gap(skips)) => Step::Gap(skips),
                _ if more => continue,
                _ => return Ok(()),
            };
            self.steps.send(step).await.map_err(|_| Stop::Gone)?;
        }
    }

    async fn run(&self, plan: Plan) {
        let result = async {
            let mut starts = plan.starts;
            if let Some(point) = plan.start_at {
                for topic in plan.topics.iter() {
                    let offsets = self.start_offsets(topic, point).await?;
                    for (partition, offset) in offsets {
                        if starts
                            .iter()
                            .any(|s| s.topic == topic && s.partition == partition)
                        {
                            continue;
                        }
                        let purged = self.mailbox.lock().backfilling(topic, partition);
                        self.hub.account_queued(purged.events, purged.bytes);
                        starts.push(Start {
                            topic,
                            partition,
                            cursor: offset.saturating_sub(1),
                            epoch: self.hub.epoch(topic, partition),
                            finished: false,
                        });
                    }
                }
            }
            starts.sort_unstable_by_key(|s| (s.topic, s.partition));
            for start in starts {
                self.serve(start).await?;
            }
            // Partitions a full queue handed back meanwhile, until there are none.
            loop {
                let handed_back = self.hub.handed_back(self.mailbox);
                if handed_back.is_empty() {
                    return Ok(());
                }
                for start in handed_back {
                    self.serve(start).await?;
                }
            }
        }
        .await;
        match result {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(message)) => {
                self.hub.metrics.backfill_failures.inc();
                tracing::warn!(%message, "backfill gave up");
                let _ = self.send(Step::Failed(message)).await;
            }
        }
    }

    /// Calls Kafka until it answers, within the retry budget.
    async fn ask<T, F, Fut>(&self, call: F) -> Result<Result<T, Unknown>, Stop>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ReplayError>>,
    {
        let mut retry = Retry::new(self.hub.settings.replay_retry_for);
        loop {
            match retry.call(call()).await {
                Ok(answer) => return Ok(Ok(answer)),
                Err(ReplayError::UnknownPartition { .. }) => return Ok(Err(Unknown)),
                Err(error) => retry.wait(&error).await?,
            }
        }
    }

    /// Per partition of `topic`, the first offset `point` designates.
    async fn start_offsets(
        &self,
        topic: Topic,
        point: StartPoint,
    ) -> Result<Vec<(i32, i64)>, Stop> {
        let replayer = &self.hub.replayer;
        match point {
            StartPoint::Time(time) => Ok(self
                .ask(|| replayer.offsets_for_time(topic, time))
                .await?
                .unwrap_or_default()),
            StartPoint::Earliest => {
                let partitions = self
                    .ask(|| replayer.partitions(topic))
                    .await?
                    .unwrap_or_default();
                let mut offsets = Vec::with_capacity(partitions.len());
                for partition in partitions {
                    if let Ok(watermarks) =
                        self.ask(|| replayer.watermarks(topic, partition)).await?
                    {
                        offsets.push((partition, watermarks.low));
                    }
                }
                Ok(offsets)
            }
        }
    }

    /// Serves one partition until the queue takes over.
    async fn serve(&self, mut start: Start) -> Result<(), Stop> {
        let (topic, partition) = (start.topic, start.partition);
        while !start.finished {
            let view = self.hub.view(
                topic,
                partition,
                start.cursor,
                start.epoch,
                MEMORY_CHUNK,
                self.mailbox,
            );
            match view {
                View::Live => return Ok(()),
                View::Restarted { epoch, position } => {
                    start.epoch = epoch;
                    self.reset(&mut start, position, RESTARTED).await?;
                }
                View::Memory { events, through } => {
                    self.events(&mut start, &events, through, "memory").await?;
                }
                View::BeforeMemory { until } => self.read(&mut start, until).await?,
                View::BeyondMemory => {
                    let replayer = &self.hub.replayer;
                    let watermarks =
                        match self.ask(|| replayer.watermarks(topic, partition)).await? {
                            Ok(watermarks) => watermarks,
                            Err(Unknown) => return self.gone(&mut start).await,
                        };
                    if start.cursor >= watermarks.high {
                        self.reset(&mut start, watermarks.low - 1, RESTARTED)
                            .await?;
                    } else if start.cursor + 1 >= watermarks.high {
                        if self.hub.go_live_if_caught_up(
                            topic,
                            partition,
                            start.cursor,
                            start.epoch,
                            self.mailbox,
                        ) {
                            return Ok(());
                        }
                    } else {
                        self.read(&mut start, watermarks.high).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The partition is gone: say so, and take whatever a new one brings.
    async fn gone(&self, start: &mut Start) -> Result<(), Stop> {
        self.reset(start, -1, GONE).await?;
        self.mailbox
            .lock()
            .live_after(start.topic, start.partition, -1);
        start.finished = true;
        Ok(())
    }

    async fn reset(
        &self,
        start: &mut Start,
        position: i64,
        reason: &'static str,
    ) -> Result<(), Stop> {
        start.cursor = position;
        self.send(Step::Reset {
            topic: start.topic,
            partition: start.partition,
            position,
            reason,
        })
        .await
    }

    /// Sends what the filter takes of `events` (all after the cursor), served up to `through`.
    async fn events(
        &self,
        start: &mut Start,
        events: &[SharedEvent],
        through: i64,
        source: &'static str,
    ) -> Result<(), Stop> {
        let events: Vec<SharedEvent> = events
            .iter()
            .filter(|e| e.offset() > start.cursor && self.filter.matches(e.event()))
            .cloned()
            .collect();
        self.hub
            .metrics
            .backfilled
            .get_or_create(&SourceLabels { source })
            .inc_by(events.len() as u64);
        start.cursor = start.cursor.max(through);
        self.send(Step::Events {
            topic: start.topic,
            partition: start.partition,
            events,
            through: start.cursor,
        })
        .await
    }

    /// Reads offsets `cursor + 1 .. until` from Kafka, pulled at the reader's pace.
    async fn read(&self, start: &mut Start, until: i64) -> Result<(), Stop> {
        let mut retry = Retry::new(self.hub.settings.replay_retry_for);
        while start.cursor + 1 < until && !start.finished {
            let mut chunks =
                self.hub
                    .replayer
                    .read(start.topic, start.partition, start.cursor + 1, until);
            let mut failure = None;
            while let Some(chunk) = retry
                .call(chunks.next().map(Ok))
                .await
                .unwrap_or_else(|error| Some(Err(error)))
            {
                match chunk {
                    Ok(ReplayChunk::Events(events)) => {
                        retry.progressed();
                        let in_range: Vec<SharedEvent> = events
                            .iter()
                            .filter(|e| e.offset() < until)
                            .cloned()
                            .collect();
                        let through = in_range.last().map_or(start.cursor, SharedEvent::offset);
                        self.events(start, &in_range, through, "kafka").await?;
                    }
                    Ok(ReplayChunk::Missing { first, last }) => {
                        retry.progressed();
                        let first = first.max(start.cursor + 1);
                        if last >= first {
                            start.cursor = last;
                            self.send(Step::Missing {
                                topic: start.topic,
                                partition: start.partition,
                                first,
                                last,
                                reason: Missed::Deleted,
                            })
                            .await?;
                        }
                    }
                    Ok(ReplayChunk::Reset { now }) => {
                        let position = now.map_or(-1, |watermarks| watermarks.low - 1);
                        return self.reset(start, position, RESTARTED).await;
                    }
                    Err(ReplayError::UnknownPartition { .. }) => return self.gone(start).await,
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            match failure {
                // Everything below `until` was read (what is left held no events).
                None => start.cursor = start.cursor.max(until - 1),
                Some(error) => match retry.wait(&error).await {
                    Ok(()) => {}
                    Err(Stop::Failed(message)) => {
                        return self.unreadable(start, until, message).await;
                    }
                    Err(stop) => return Err(stop),
                },
            }
        }
        Ok(())
    }

    /// Kafka could not be read from the cursor up to `until` (where memory, or the log, ends):
    /// the subscriber is told exactly which offsets it does not get, and the backfill goes on
    /// from `until` rather than ending the subscription.
    async fn unreadable(&self, start: &mut Start, until: i64, message: String) -> Result<(), Stop> {
        self.hub.metrics.backfill_failures.inc();
        let (first, last) = (start.cursor + 1, until - 1);
        tracing::warn!(topic = %start.topic, partition = start.partition, first, last, %message, "backfill skips offsets Kafka could not give");
        start.cursor = last;
        self.send(Step::Missing {
            topic: start.topic,
            partition: start.partition,
            first,
            last,
            reason: Missed::Unreadable(message),
        })
        .await
    }
}
