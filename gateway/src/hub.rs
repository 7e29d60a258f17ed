//! The fan-out hub: every event the gateway takes in goes through here once, and every
//! subscriber, whatever its transport, reads from here.
//!
//! One lock orders three things together: dropping events already seen (by topic, partition and
//! offset), keeping the bounded history that resuming subscribers replay from, and handing the
//! event to the broadcast channel. Because a subscriber joins under the same lock, its replay and
//! its live stream meet exactly, with nothing missing and nothing twice.
//!
//! Each subscriber reads the broadcast at its own pace; one that falls more than the channel's
//! capacity behind loses the oldest events and is told so with a gap notice. Ingest never waits
//! for a subscriber.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use streamweaver_proto::{
    time,
    v1::{Event, GapNotice, Heartbeat, Position, SubscribeResponse, subscribe_response::Kind},
};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    filter::Filter,
    metrics::{Metrics, TopicLabels, Transport, TransportLabels},
};

type TopicPartition = (String, i32);

/// What the hub did with a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// New: kept and fanned out.
    Accepted,
    /// Its position was seen before (a replay after a consumer failure): dropped.
    Duplicate,
}

struct State {
    /// Highest offset seen per partition.
    seen: HashMap<TopicPartition, i64>,
    history: VecDeque<Arc<Event>>,
    history_capacity: usize,
}

/// The fan-out hub, shared by ingest and every subscriber.
pub struct Hub {
    state: Mutex<State>,
    sender: broadcast::Sender<Arc<Event>>,
    metrics: Metrics,
    heartbeat: Duration,
    shutdown: CancellationToken,
}

impl Hub {
    /// A hub whose subscribers may fall `buffer` events behind, keeping `history` events for
    /// resumes; subscriptions end when `shutdown` is cancelled.
    pub fn new(
        buffer: usize,
        history: usize,
        heartbeat: Duration,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self {
            state: Mutex::new(State {
                seen: HashMap::new(),
                history: VecDeque::with_capacity(history),
                history_capacity: history,
            }),
            sender,
            metrics,
            heartbeat,
            shutdown,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can leave the state half-updated, so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fans `event` out, unless its position was already seen.
    pub fn publish(&self, event: Event) -> Published {
        let mut state = self.state();
        let partition = (event.topic.clone(), event.partition);
        match state.seen.get_mut(&partition) {
            Some(seen) if *seen >= event.offset => {
                self.metrics.duplicates.inc();
                return Published::Duplicate;
            }
            Some(seen) => *seen = event.offset,
            None => {
                state.seen.insert(partition, event.offset);
            }
        }
        self.metrics
            .ingested
            .get_or_create(&TopicLabels {
                topic: event.topic.clone(),
            })
            .inc();
        let event = Arc::new(event);
        if state.history_capacity > 0 {
            if state.history.len() == state.history_capacity {
                state.history.pop_front();
            }
            state.history.push_back(event.clone());
        }
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event);
        Published::Accepted
    }

    /// A subscription to events matching `filter`, first replaying from history whatever
    /// came after each position in `resume_from`.
    pub fn subscribe(
        &self,
        filter: Filter,
        resume_from: &[Position],
        transport: Transport,
    ) -> Subscription {
        let mut backlog = VecDeque::new();
        let mut last_positions: HashMap<TopicPartition, i64> = HashMap::new();
        let state = self.state();
        let receiver = self.sender.subscribe();
        for position in resume_from {
            let partition = (position.topic.clone(), position.partition);
            last_positions.insert(partition.clone(), position.offset);
            let oldest_kept = state
                .history
                .iter()
                .find(|e| e.topic == position.topic && e.partition == position.partition)
                .map(|e| e.offset);
            let newest_seen = state.seen.get(&partition).copied();
            // Offsets after the resume position that history no longer holds.
            let missed = match (oldest_kept, newest_seen) {
                (Some(oldest), _) => oldest.saturating_sub(position.offset).saturating_sub(1),
                (None, Some(newest)) => newest.saturating_sub(position.offset),
                (None, None) => 0,
            };
            if missed > 0 {
                backlog.push_back(gap(
                    missed as u64,
                    "history no longer holds these events",
                    vec![position.clone()],
                ));
            }
        }
        if !last_positions.is_empty() {
            for event in &state.history {
                let partition = (event.topic.clone(), event.partition);
                if let Some(last) = last_positions.get_mut(&partition)
                    && event.offset > *last
                {
                    *last = event.offset;
                    if filter.matches(event) {
                        backlog.push_back(event_response(event));
                    }
                }
            }
        }
        drop(state);
        self.metrics
            .subscribers
            .get_or_create(&TransportLabels { transport })
            .inc();
        Subscription {
            backlog,
            receiver,
            filter,
            last_positions,
            transport,
            metrics: self.metrics.clone(),
            heartbeat: self.heartbeat,
            quiet_until: Instant::now() + self.heartbeat,
            shutdown: self.shutdown.clone(),
        }
    }
}

fn event_response(event: &Event) -> SubscribeResponse {
    SubscribeResponse {
        kind: Some(Kind::Event(event.clone())),
    }
}

fn gap(missed_events: u64, reason: &str, last_positions: Vec<Position>) -> SubscribeResponse {
    SubscribeResponse {
        kind: Some(Kind::Gap(GapNotice {
            missed_events,
            reason: reason.to_owned(),
            last_positions,
            missed: Vec::new(),
        })),
    }
}

/// One subscriber's view of the hub: what it missed, then live events that match its filter,
/// gap notices when it falls behind, and heartbeats when there is nothing to say.
pub struct Subscription {
    backlog: VecDeque<SubscribeResponse>,
    receiver: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    /// The last position delivered or passed over per partition: where a gap begins.
    last_positions: HashMap<TopicPartition, i64>,
    transport: Transport,
    metrics: Metrics,
    heartbeat: Duration,
    /// When a heartbeat is due if nothing is sent before: events the filter passes over do not
    /// count, or a narrow subscription on a busy stream would never get one.
    quiet_until: Instant,
    shutdown: CancellationToken,
}

impl Subscription {
    /// The next message for the subscriber, or `None` when the gateway is shutting down.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<SubscribeResponse> {
        let response = self.next_unstamped().await?;
        self.quiet_until = Instant::now() + self.heartbeat;
        Some(response)
    }

    async fn next_unstamped(&mut self) -> Option<SubscribeResponse> {
        let labels = TransportLabels {
            transport: self.transport,
        };
        if let Some(response) = self.backlog.pop_front() {
            if matches!(response.kind, Some(Kind::Event(_))) {
                self.metrics.delivered.get_or_create(&labels).inc();
            }
            return Some(response);
        }
        loop {
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                received = tokio::time::timeout_at(self.quiet_until, self.receiver.recv()) => received,
            };
            match received {
                Err(_) => {
                    return Some(SubscribeResponse {
                        kind: Some(Kind::Heartbeat(Heartbeat {
                            server_time: Some(time::timestamp(SystemTime::now())),
                            positions: Vec::new(),
                        })),
                    });
                }
                Ok(Ok(event)) => {
                    let partition = (event.topic.clone(), event.partition);
                    // Already seen by this subscriber (it resumed past it): skip.
                    if self
                        .last_positions
                        .get(&partition)
                        .is_some_and(|last| event.offset <= *last)
                    {
                        continue;
                    }
                    self.last_positions.insert(partition, event.offset);
                    if self.filter.matches(&event) {
                        self.metrics.delivered.get_or_create(&labels).inc();
                        return Some(event_response(&event));
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    self.metrics.gaps.get_or_create(&labels).inc();
                    self.metrics.missed.get_or_create(&labels).inc_by(missed);
                    tracing::debug!(
                        transport = self.transport.name(),
                        missed,
                        "subscriber fell behind"
                    );
                    let positions = self
                        .last_positions
                        .iter()
                        .map(|((topic, partition), offset)| Position {
                            topic: topic.clone(),
                            partition: *partition,
                            offset: *offset,
                        })
                        .collect();
                    return Some(gap(missed, "subscriber fell behind", positions));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics
            .subscribers
            .get_or_create(&TransportLabels {
                transport: self.transport,
            })
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{StockTrade, SubscribeRequest, event::Payload};

    use super::*;

    fn trade(partition: i32, offset: i64, symbol: &str) -> Event {
        Event {
            topic: "stock_trades".into(),
            key: symbol.into(),
            partition,
            offset,
            payload: Some(Payload::StockTrade(StockTrade {
                symbol: symbol.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn hub(buffer: usize, history: usize) -> Hub {
        Hub::new(
            buffer,
            history,
            Duration::from_secs(60),
            Metrics::default(),
            CancellationToken::new(),
        )
    }

    fn everything() -> Filter {
        Filter::from_request(&SubscribeRequest::default()).expect("valid")
    }

    async fn offsets(subscription: &mut Subscription, count: usize) -> Vec<i64> {
        let mut offsets = Vec::new();
        while offsets.len() < count {
            match subscription.next().await.and_then(|r| r.kind) {
                Some(Kind::Event(event)) => offsets.push(event.offset),
                other => panic!("expected an event, got {other:?}"),
            }
        }
        offsets
    }

    #[tokio::test]
    async fn duplicates_are_dropped_per_partition() {
        let hub = hub(16, 16);
        let mut subscription = hub.subscribe(everything(), &[], Transport::Grpc);
        assert_eq!(hub.publish(trade(0, 5, "A")), Published::Accepted);
        assert_eq!(hub.publish(trade(0, 5, "A")), Published::Duplicate);
        assert_eq!(hub.publish(trade(0, 4, "A")), Published::Duplicate);
        assert_eq!(hub.publish(trade(1, 4, "A")), Published::Accepted);
        assert_eq!(hub.publish(trade(0, 6, "A")), Published::Accepted);
        assert_eq!(offsets(&mut subscription, 3).await, vec![5, 4, 6]);
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_a_gap_notice_and_then_live_events() {
        let hub = hub(4, 0);
        let mut slow = hub.subscribe(everything(), &[], Transport::Websocket);
        let mut fast = hub.subscribe(everything(), &[], Transport::Grpc);
        for offset in 0..10 {
            hub.publish(trade(0, offset, "A"));
            assert_eq!(offsets(&mut fast, 1).await, vec![offset]);
        }
        match slow.next().await.and_then(|r| r.kind) {
            Some(Kind::Gap(gap)) => {
                assert_eq!(gap.missed_events, 6);
                assert_eq!(gap.reason, "subscriber fell behind");
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        assert_eq!(offsets(&mut slow, 4).await, vec![6, 7, 8, 9]);
    }

    #[tokio::test]
    async fn resume_replays_history_then_continues_live() {
        let hub = hub(16, 100);
        for offset in 0..5 {
            hub.publish(trade(0, offset, if offset % 2 == 0 { "A" } else { "B" }));
        }
        let only_a = Filter::from_request(&SubscribeRequest {
            symbols: vec!["A".into()],
            ..Default::default()
        })
        .expect("valid");
        let resume = [Position {
            topic: "stock_trades".into(),
            partition: 0,
            offset: 1,
        }];
        let mut subscription = hub.subscribe(only_a, &resume, Transport::Grpc);
        hub.publish(trade(0, 6, "A"));
        assert_eq!(offsets(&mut subscription, 3).await, vec![2, 4, 6]);
    }

    #[tokio::test]
    async fn resume_skips_live_events_the_subscriber_already_has() {
        // A fresh gateway (after a restart) that the consumer replays older events into.
        let hub = hub(16, 100);
        let resume = [Position {
            topic: "stock_trades".into(),
            partition: 0,
            offset: 7,
        }];
        let mut subscription = hub.subscribe(everything(), &resume, Transport::Grpc);
        for offset in 5..10 {
            hub.publish(trade(0, offset, "A"));
        }
        assert_eq!(offsets(&mut subscription, 2).await, vec![8, 9]);
    }

    #[tokio::test]
    async fn resume_beyond_history_says_what_was_lost() {
        let hub = hub(16, 3);
        for offset in 0..10 {
            hub.publish(trade(0, offset, "A"));
        }
        let resume = [Position {
            topic: "stock_trades".into(),
            partition: 0,
            offset: 2,
        }];
        let mut subscription = hub.subscribe(everything(), &resume, Transport::Grpc);
        match subscription.next().await.and_then(|r| r.kind) {
            Some(Kind::Gap(gap)) => assert_eq!(gap.missed_events, 4, "offsets 3..=6 are gone"),
            other => panic!("expected a gap, got {other:?}"),
        }
        assert_eq!(offsets(&mut subscription, 3).await, vec![7, 8, 9]);
    }

    #[tokio::test]
    async fn resume_positions_from_outside_cannot_overflow() {
        let with_history = hub(16, 3);
        let without_history = hub(16, 0);
        for offset in 0..10 {
            with_history.publish(trade(0, offset, "A"));
            without_history.publish(trade(0, offset, "A"));
        }
        for offset in [i64::MIN, -1, i64::MAX] {
            for partition in [0, 7] {
                let resume = [Position {
                    topic: "stock_trades".into(),
                    partition,
                    offset,
                }];
                let _ = with_history.subscribe(everything(), &resume, Transport::Grpc);
                let _ = without_history.subscribe(everything(), &resume, Transport::Grpc);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_narrow_subscription_on_a_busy_stream_still_gets_heartbeats() {
        let hub = Hub::new(
            64,
            0,
            Duration::from_secs(15),
            Metrics::default(),
            CancellationToken::new(),
        );
        let only_b = Filter::from_request(&SubscribeRequest {
            symbols: vec!["B".into()],
            ..Default::default()
        })
        .expect("valid");
        let mut subscription = hub.subscribe(only_b, &[], Transport::Grpc);
        let started = Instant::now();
        let next = subscription.next();
        tokio::pin!(next);
        // An event every second that the filter passes over.
        for offset in 0..20 {
            tokio::select! {
                response = &mut next => {
                    assert!(matches!(response.and_then(|r| r.kind), Some(Kind::Heartbeat(_))));
                    assert_eq!(started.elapsed().as_secs(), 15);
                    return;
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => hub.publish(trade(0, offset, "A")),
            };
        }
        panic!("no heartbeat in 20 s");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_subscriptions_get_heartbeats_and_end_on_shutdown() {
        let shutdown = CancellationToken::new();
        let hub = Hub::new(
            4,
            0,
            Duration::from_secs(15),
            Metrics::default(),
            shutdown.clone(),
        );
        let mut subscription = hub.subscribe(everything(), &[], Transport::Grpc);
        assert!(matches!(
            subscription.next().await.and_then(|r| r.kind),
            Some(Kind::Heartbeat(_))
        ));
        shutdown.cancel();
        assert!(subscription.next().await.is_none());
    }
}
