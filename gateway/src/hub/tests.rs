//! Tests of the hub as a whole: publish, routing, slow-client policies, backfill from memory,
//! heartbeat positions, offsets that go backwards or jump. Kafka is not running here: the
//! replayer points at a closed port, so every question to Kafka fails — which is what the
//! fallbacks are about. The paths that read Kafka are tested in `e2e/` against a real broker.

use std::time::Duration;

use prometheus_client::registry::Registry;
use streamweaver_proto::v1::{
    Heartbeat, LogLevel, OffsetRange, Position, SlowClientPolicy, SubscribeRequest,
    subscribe_response::Kind,
};

use super::{
    testing::{log, trade},
    *,
};
use crate::{metrics::OffsetCheckLabels, replay::ReplaySettings};

fn settings() -> HubSettings {
    HubSettings {
        limits: Limits {
            events: 16,
            bytes: usize::MAX,
        },
        policy: PolicyDefaults {
            kind: PolicyKind::Gap,
            sample_interval: Duration::from_secs(1),
        },
        history: 100,
        history_max_age: Duration::from_secs(600),
        heartbeat: Duration::from_secs(60),
        offset_check_timeout: Duration::from_millis(200),
        replay_retry_for: Duration::from_millis(500),
    }
}

/// A replayer whose Kafka is a closed port.
fn offline() -> Replayer {
    Replayer::new(ReplaySettings {
        bootstrap_servers: "127.0.0.1:1".into(),
        fetch_wait_max_ms: 10,
        max_concurrent_reads: 16,
        max_value_bytes: 1 << 20,
        cache_bytes: 1 << 20,
    })
    .expect("a replayer")
}

/// Runs a test that asks the offline Kafka. Its blocking calls are abandoned at the end rather
/// than awaited: librdkafka gives up on a closed port only after its own timeout.
fn asking_offline_kafka(test: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(test);
    runtime.shutdown_background();
}

fn hub_with(change: impl FnOnce(&mut HubSettings)) -> (Arc<Hub>, Metrics) {
    let mut settings = settings();
    change(&mut settings);
    let metrics = Metrics::register(&mut Registry::default());
    (Hub::new(settings, offline(), metrics.clone()), metrics)
}

fn hub() -> Arc<Hub> {
    hub_with(|_| {}).0
}

fn request(change: impl FnOnce(&mut SubscribeRequest)) -> SubscribeRequest {
    let mut request = SubscribeRequest::default();
    change(&mut request);
    request
}

/// A subscription whose first heartbeat (sent at once, before anything else) was taken.
fn subscribe(hub: &Arc<Hub>, request: SubscribeRequest) -> Subscription {
    let mut subscription = hub
        .subscribe_with(&request, None, Transport::Grpc)
        .expect("valid request");
    match subscription.try_next() {
        Some(Ok(Outgoing::Message(message))) => match message.kind {
            Some(Kind::Heartbeat(heartbeat)) => assert_eq!(
                heartbeat.interval,
                Some(streamweaver_proto::time::duration(hub.settings.heartbeat))
            ),
            other => panic!("expected a first heartbeat, got {other:?}"),
        },
        other => panic!("expected a first heartbeat at once, got {other:?}"),
    }
    subscription
}

fn resume(topic: &str, partition: i32, offset: i64) -> Position {
    Position {
        topic: topic.into(),
        partition,
        offset,
    }
}

/// The next response, as a transport would send it.
async fn next(subscription: &mut Subscription) -> Result<Kind, Ended> {
    let next = tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("a response in time");
    next.map(|outgoing| match outgoing {
        Outgoing::Event(event) => Kind::Event(event.event().clone()),
        Outgoing::Message(message) => message.kind.expect("a kind"),
    })
}

/// The next `count` events' (partition, offset), failing on anything else.
async fn offsets(subscription: &mut Subscription, count: usize) -> Vec<(i32, i64)> {
    let mut offsets = Vec::new();
    while offsets.len() < count {
        match next(subscription).await {
            Ok(Kind::Event(event)) => offsets.push((event.partition, event.offset)),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    offsets
}

/// The next `count` events' (partition, offset) of a resuming subscription, and the one
/// heartbeat that says its backfill ended (before the queue's first event, or after the last).
async fn resumed_offsets(subscription: &mut Subscription, count: usize) -> Vec<(i32, i64)> {
    let mut offsets = Vec::new();
    let mut caught_up = false;
    while offsets.len() < count || !caught_up {
        match next(subscription).await {
            Ok(Kind::Event(event)) => offsets.push((event.partition, event.offset)),
            Ok(Kind::Heartbeat(heartbeat)) if heartbeat.caught_up && !caught_up => {
                caught_up = true;
            }
            other => panic!("expected an event or one caught-up heartbeat, got {other:?}"),
        }
    }
    offsets
}

fn checks(metrics: &Metrics, check: &'static str, result: &'static str) -> u64 {
    metrics
        .offset_checks
        .get_or_create(&OffsetCheckLabels { check, result })
        .get()
}

fn nothing_ready(subscription: &mut Subscription) -> bool {
    subscription.try_next().is_none()
}

#[test]
fn duplicates_are_dropped_per_partition() {
    // The second offset 5 goes backwards: Kafka is asked, cannot answer, so it is a duplicate.
    asking_offline_kafka(async {
        let hub = hub();
        let mut subscription = subscribe(&hub, SubscribeRequest::default());
        let outcomes = hub
            .publish(&[
                trade(0, 5, "A"),
                trade(0, 5, "A"),
                trade(1, 4, "A"),
                trade(0, 6, "A"),
            ])
            .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Accepted,
                Outcome::Duplicate,
                Outcome::Accepted,
                Outcome::Accepted
            ]
        );
        assert_eq!(
            offsets(&mut subscription, 3).await,
            vec![(0, 5), (1, 4), (0, 6)]
        );
    });
}

#[test]
fn backward_steps_without_kafka_are_duplicates_one_check_each() {
    asking_offline_kafka(async {
        let (hub, metrics) = hub_with(|_| {});
        let mut subscription = subscribe(&hub, SubscribeRequest::default());
        hub.publish(&[trade(0, 10, "A"), trade(0, 11, "A")]).await;
        // A consumer rewind: Kafka cannot be asked, so these are taken for duplicates, with one
        // check for the whole step back.
        let outcomes = hub
            .publish(&[
                trade(0, 9, "A"),
                trade(0, 10, "A"),
                trade(0, 11, "A"),
                trade(0, 12, "A"),
            ])
            .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Duplicate,
                Outcome::Duplicate,
                Outcome::Duplicate,
                Outcome::Accepted
            ]
        );
        assert_eq!(
            offsets(&mut subscription, 3).await,
            vec![(0, 10), (0, 11), (0, 12)]
        );
        assert_eq!(checks(&metrics, "backward", "unavailable"), 1);
        assert_eq!(metrics.duplicates.get(), 3);
    });
}

#[test]
fn an_offset_of_i64_max_does_not_blind_a_partition() {
    asking_offline_kafka(async {
        let (hub, metrics) = hub_with(|_| {});
        let mut subscription = subscribe(&hub, SubscribeRequest::default());
        hub.publish(&[trade(0, 10, "A")]).await;
        let outcomes = hub
            .publish(&[
                trade(0, i64::MAX, "A"),
                trade(0, 11, "A"),
                trade(0, 12, "A"),
            ])
            .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Refused("offset_unverified"),
                Outcome::Accepted,
                Outcome::Accepted
            ]
        );
        assert_eq!(
            offsets(&mut subscription, 3).await,
            vec![(0, 10), (0, 11), (0, 12)]
        );
        assert!(nothing_ready(&mut subscription));
        assert_eq!(checks(&metrics, "jump", "unavailable"), 1);
    });
}

#[tokio::test]
async fn a_slow_subscriber_gets_an_exact_gap_notice_and_then_live_events() {
    let hub = hub_with(|s| s.limits.events = 4).0;
    let mut slow = subscribe(&hub, SubscribeRequest::default());
    let mut fast = subscribe(&hub, SubscribeRequest::default());
    for offset in 0..10 {
        hub.publish(&[trade((offset % 2) as i32, offset, "A")])
            .await;
        assert_eq!(
            offsets(&mut fast, 1).await,
            vec![((offset % 2) as i32, offset)]
        );
    }
    // 0..=3 skipped at 4, 4..=7 skipped at 8: the queue holds 8 and 9.
    match next(&mut slow).await {
        Ok(Kind::Gap(gap)) => {
            assert_eq!(gap.missed_events, 8);
            assert_eq!(gap.reason, "subscriber fell behind");
            let missed: Vec<_> = gap
                .missed
                .iter()
                .map(|r| (r.partition, r.first_offset, r.last_offset))
                .collect();
            assert_eq!(missed, vec![(0, 0, 6), (1, 1, 7)]);
            let resume_from: Vec<_> = gap
                .last_positions
                .iter()
                .map(|p| (p.partition, p.offset))
                .collect();
            assert_eq!(resume_from, vec![(0, -1), (1, 0)]);
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    assert_eq!(offsets(&mut slow, 2).await, vec![(0, 8), (1, 9)]);
}

#[tokio::test]
async fn disconnect_ends_a_slow_subscription_and_spares_the_others() {
    let hub = hub_with(|s| s.limits.events = 4).0;
    let mut slow = subscribe(
        &hub,
        request(|r| r.slow_client_policy = SlowClientPolicy::Disconnect as i32),
    );
    let mut fast = subscribe(&hub, SubscribeRequest::default());
    for offset in 0..5 {
        hub.publish(&[trade(0, offset, "A")]).await;
        assert_eq!(offsets(&mut fast, 1).await, vec![(0, offset)]);
    }
    assert_eq!(next(&mut slow).await, Err(Ended::TooSlow));
}

#[tokio::test]
async fn latest_per_key_gives_a_slow_subscriber_the_newest_per_key() {
    let hub = hub_with(|s| s.limits.events = 4).0;
    let mut board = subscribe(
        &hub,
        request(|r| r.slow_client_policy = SlowClientPolicy::LatestPerKey as i32),
    );
    let symbols = ["A", "B", "C"];
    let batch: Vec<_> = (0..30)
        .map(|o| trade(0, o, symbols[o as usize % 3]))
        .collect();
    hub.publish(&batch).await;
    let got = offsets(&mut board, 3).await;
    assert_eq!(got, vec![(0, 27), (0, 28), (0, 29)]);
    assert!(nothing_ready(&mut board));
}

#[tokio::test(start_paused = true)]
async fn sample_sends_at_most_one_event_per_key_per_interval_the_newest() {
    let hub = hub();
    let mut sampled = subscribe(
        &hub,
        request(|r| {
            r.slow_client_policy = SlowClientPolicy::Sample as i32;
            r.sample_interval = Some(pbjson_types::Duration {
                seconds: 1,
                nanos: 0,
            });
        }),
    );
    let mut offset = 0;
    let mut received: Vec<(tokio::time::Instant, String, i64)> = Vec::new();
    let start = tokio::time::Instant::now();
    // 20 events per second for 3 s, keys A and B alternating.
    while start.elapsed() < Duration::from_secs(3) {
        let key = if offset % 2 == 0 { "A" } else { "B" };
        hub.publish(&[trade(0, offset, key)]).await;
        offset += 1;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(Ok(Outgoing::Event(event))) =
            tokio::time::timeout_at(deadline, sampled.next()).await
        {
            received.push((
                tokio::time::Instant::now(),
                event.key().to_owned(),
                event.offset(),
            ));
        }
    }
    for key in ["A", "B"] {
        let times: Vec<_> = received
            .iter()
            .filter(|r| r.1 == key)
            .map(|r| r.0)
            .collect();
        assert!(times.len() >= 3, "{key}: {times:?}");
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_secs(1),
                "{key}: {pair:?}"
            );
        }
    }
    let offsets: Vec<i64> = received.iter().map(|r| r.2).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    // The first event goes out at once; later ones wait for their tick.
    assert_eq!(offsets[0], 0);
}

#[tokio::test]
async fn resume_is_served_from_memory_then_live_exactly_once() {
    let hub = hub();
    let batch: Vec<_> = (0..5)
        .map(|o| trade(0, o, if o % 2 == 0 { "A" } else { "B" }))
        .collect();
    hub.publish(&batch).await;
    let mut subscription = subscribe(
        &hub,
        request(|r| {
            r.symbols = vec!["A".into()];
            r.resume_from = vec![resume("stock_trades", 0, 1)];
        }),
    );
    hub.publish(&[trade(0, 5, "B"), trade(0, 6, "A")]).await;
    assert_eq!(
        resumed_offsets(&mut subscription, 3).await,
        vec![(0, 2), (0, 4), (0, 6)]
    );
    assert!(nothing_ready(&mut subscription));
}

#[tokio::test]
async fn a_resume_spliced_while_events_keep_coming_misses_nothing_and_repeats_nothing() {
    let hub = hub_with(|s| {
        s.history = 10_000;
        s.limits.events = 100_000;
    })
    .0;
    let batch: Vec<_> = (0..1_000).map(|o| trade(0, o, "A")).collect();
    hub.publish(&batch).await;
    let mut subscriptions: Vec<_> = (0..10)
        .map(|i| {
            subscribe(
                &hub,
                request(|r| r.resume_from = vec![resume("stock_trades", 0, i * 97)]),
            )
        })
        .collect();
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for start in (1_000..3_000).step_by(50) {
                let batch: Vec<_> = (start..start + 50).map(|o| trade(0, o, "A")).collect();
                hub.publish(&batch).await;
                tokio::task::yield_now().await;
            }
        })
    };
    for (i, subscription) in subscriptions.iter_mut().enumerate() {
        let from = i as i64 * 97 + 1;
        let got = resumed_offsets(subscription, (3_000 - from) as usize).await;
        let expected: Vec<_> = (from..3_000).map(|o| (0, o)).collect();
        assert_eq!(got, expected, "subscriber {i}");
    }
    publisher.await.expect("publishes");
    for subscription in &mut subscriptions {
        assert!(nothing_ready(subscription));
    }
}

/// A subscriber far behind, with a small queue, while live events keep coming on a partition
/// it did not resume and on the ones it did: the queue overflows during the backfill, yet it
/// gets every event once, in order per partition, and no gap notice (everything is still held).
#[tokio::test]
async fn a_backfill_whose_queue_overflows_gets_every_event_and_no_gap_notice() {
    let hub = hub_with(|s| {
        s.history = 10_000;
        s.limits.events = 16;
    })
    .0;
    let batch: Vec<_> = (0..500).map(|o| trade(0, o, "A")).collect();
    hub.publish(&batch).await;
    let mut subscription = subscribe(
        &hub,
        request(|r| r.resume_from = vec![resume("stock_trades", 0, 0)]),
    );
    // Partition 2 is live from the start: 200 events into a queue of 16 nobody reads yet.
    for start in (0..200).step_by(20) {
        let batch: Vec<_> = (start..start + 20).map(|o| trade(2, o, "B")).collect();
        hub.publish(&batch).await;
    }
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for step in 0..50 {
                hub.publish(&[trade(0, 500 + step, "A"), trade(2, 200 + step, "B")])
                    .await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut got = resumed_offsets(&mut subscription, 499 + 50 + 250).await;
    publisher.await.expect("publishes");
    got.sort_by_key(|(partition, _)| *partition);
    let expected: Vec<_> = (1..550)
        .map(|o| (0, o))
        .chain((0..250).map(|o| (2, o)))
        .collect();
    assert_eq!(got, expected);
    assert!(nothing_ready(&mut subscription));
    // Caught up: the queue acts on its policy again.
    let batch: Vec<_> = (250..300).map(|o| trade(2, o, "B")).collect();
    hub.publish(&batch).await;
    match next(&mut subscription).await {
        Ok(Kind::Gap(notice)) => assert_eq!(notice.missed_events, 48),
        other => panic!("expected a gap notice once caught up, got {other:?}"),
    }
}

#[tokio::test]
async fn history_is_per_partition_so_a_busy_topic_cannot_evict_a_quiet_one() {
    let hub = hub_with(|s| s.history = 10).0;
    hub.publish(&[log(0, 0, LogLevel::Error), log(0, 1, LogLevel::Error)])
        .await;
    let busy: Vec<_> = (0..1_000).map(|o| trade(0, o, "A")).collect();
    hub.publish(&busy).await;
    let mut subscription = subscribe(
        &hub,
        request(|r| {
            r.topics = vec!["server_logs".into()];
            r.resume_from = vec![resume("server_logs", 0, -1)];
        }),
    );
    assert_eq!(offsets(&mut subscription, 2).await, vec![(0, 0), (0, 1)]);
}

#[test]
fn a_resume_kafka_cannot_serve_gets_an_exact_gap_notice_and_goes_on_from_memory_then_live() {
    asking_offline_kafka(async {
        let (hub, metrics) = hub_with(|s| s.history = 3);
        let batch: Vec<_> = (0..10).map(|o| trade(0, o, "A")).collect();
        hub.publish(&batch).await;
        // Offsets 3..=6 are no longer in memory, and Kafka cannot be read.
        let mut subscription = subscribe(
            &hub,
            request(|r| r.resume_from = vec![resume("stock_trades", 0, 2)]),
        );
        match next(&mut subscription).await {
            Ok(Kind::Gap(gap)) => {
                assert_eq!(gap.missed_events, 4);
                assert_eq!(
                    gap.missed,
                    vec![OffsetRange {
                        topic: "stock_trades".into(),
                        partition: 0,
                        first_offset: 3,
                        last_offset: 6,
                    }]
                );
                assert_eq!(gap.last_positions, vec![resume("stock_trades", 0, 2)]);
                assert!(
                    gap.reason.contains("Kafka could not be read"),
                    "{}",
                    gap.reason
                );
            }
            other => panic!("expected a gap notice, got {other:?}"),
        }
        hub.publish(&[trade(0, 10, "A")]).await;
        assert_eq!(
            resumed_offsets(&mut subscription, 4).await,
            vec![(0, 7), (0, 8), (0, 9), (0, 10)]
        );
        assert_eq!(metrics.backfill_failures.get(), 1);
    });
}

#[test]
fn a_resume_past_what_the_hub_holds_ends_with_unavailable_when_kafka_cannot_be_asked() {
    asking_offline_kafka(async {
        let (hub, metrics) = hub_with(|s| s.history = 3);
        let batch: Vec<_> = (0..10).map(|o| trade(0, o, "A")).collect();
        hub.publish(&batch).await;
        // After a restart, nothing is in memory: where the partition ends is Kafka's to say.
        let mut subscription = subscribe(
            &hub,
            request(|r| r.resume_from = vec![resume("stock_trades", 0, 20)]),
        );
        match next(&mut subscription).await {
            Err(Ended::ReplayUnavailable(message)) => {
                assert!(message.contains("Kafka"), "{message}")
            }
            other => panic!("expected the end, got {other:?}"),
        }
        assert_eq!(metrics.backfill_failures.get(), 1);
    });
}

#[test]
fn resume_positions_from_outside_cannot_overflow() {
    asking_offline_kafka(async {
        let hub = hub_with(|s| s.replay_retry_for = Duration::ZERO).0;
        let batch: Vec<_> = (0..10).map(|o| trade(0, o, "A")).collect();
        hub.publish(&batch).await;
        let mut subscriptions = Vec::new();
        for offset in [i64::MIN, -1, i64::MAX] {
            for partition in [0, 7, i32::MAX] {
                subscriptions.push(subscribe(
                    &hub,
                    request(|r| r.resume_from = vec![resume("stock_trades", partition, offset)]),
                ));
            }
        }
        // Each ends (Kafka cannot be asked) or goes on; none overflows.
        futures::future::join_all(subscriptions.iter_mut().map(next)).await;
    });
}

#[tokio::test(start_paused = true)]
async fn heartbeats_carry_positions_including_what_the_filter_passed_over() {
    let hub = hub_with(|s| s.heartbeat = Duration::from_secs(15)).0;
    let mut only_b = subscribe(
        &hub,
        request(|r| {
            r.topics = vec!["stock_trades".into()];
            r.symbols = vec!["B".into()];
        }),
    );
    hub.publish(&[
        trade(0, 0, "B"),
        trade(0, 1, "A"),
        trade(1, 7, "A"),
        log(0, 3, LogLevel::Info),
    ])
    .await;
    assert_eq!(offsets(&mut only_b, 1).await, vec![(0, 0)]);
    match next(&mut only_b).await {
        Ok(Kind::Heartbeat(heartbeat)) => {
            let positions: Vec<_> = heartbeat
                .positions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition, p.offset))
                .collect();
            assert_eq!(
                positions,
                vec![("stock_trades", 0, 1), ("stock_trades", 1, 7)],
                "other topics are not the subscriber's"
            );
        }
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_claims_no_position_the_subscriber_has_not_been_sent() {
    let hub = hub_with(|s| s.heartbeat = Duration::from_secs(15)).0;
    let mut subscription = subscribe(&hub, SubscribeRequest::default());
    hub.publish(&[trade(0, 0, "A")]).await;
    assert_eq!(offsets(&mut subscription, 1).await, vec![(0, 0)]);
    hub.publish(&[trade(0, 1, "A")]).await;
    assert_eq!(offsets(&mut subscription, 1).await, vec![(0, 1)]);
    // Offset 2 is published (the watermark says 2) but still queued: not claimed.
    hub.publish(&[trade(0, 2, "A")]).await;
    let positions = |outgoing: Outgoing| match outgoing {
        Outgoing::Message(message) => match message.kind {
            Some(Kind::Heartbeat(heartbeat)) => heartbeat.positions,
            other => panic!("expected a heartbeat, got {other:?}"),
        },
        other => panic!("expected a heartbeat, got {other:?}"),
    };
    assert_eq!(
        positions(subscription.heartbeat()),
        vec![resume("stock_trades", 0, 1)]
    );
    assert_eq!(offsets(&mut subscription, 1).await, vec![(0, 2)]);
    assert_eq!(
        positions(subscription.heartbeat()),
        vec![resume("stock_trades", 0, 2)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_narrow_subscription_on_a_busy_stream_still_gets_heartbeats() {
    let hub = hub_with(|s| s.heartbeat = Duration::from_secs(15)).0;
    let mut only_b = subscribe(&hub, request(|r| r.symbols = vec!["B".into()]));
    let started = tokio::time::Instant::now();
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for offset in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                hub.publish(&[trade(0, offset, "A")]).await;
            }
        })
    };
    assert!(matches!(next(&mut only_b).await, Ok(Kind::Heartbeat(_))));
    assert_eq!(started.elapsed().as_secs(), 15);
    publisher.abort();
}

#[test]
fn closing_the_hub_ends_every_subscription_and_later_ones() {
    asking_offline_kafka(async {
        let hub = hub();
        let mut live = subscribe(&hub, SubscribeRequest::default());
        let mut backfilling = subscribe(
            &hub,
            request(|r| r.resume_from = vec![resume("stock_trades", 0, 5)]),
        );
        hub.close();
        assert_eq!(next(&mut live).await, Err(Ended::ShuttingDown));
        assert_eq!(next(&mut backfilling).await, Err(Ended::ShuttingDown));
        let mut late = subscribe(&hub, SubscribeRequest::default());
        assert_eq!(next(&mut late).await, Err(Ended::ShuttingDown));
    });
}

#[tokio::test]
async fn queued_bytes_are_accounted_and_given_back() {
    let (hub, metrics) = hub_with(|s| s.limits.events = 1_000);
    let mut reader = subscribe(&hub, SubscribeRequest::default());
    let stalled = subscribe(&hub, SubscribeRequest::default());
    let batch: Vec<_> = (0..100).map(|o| trade(0, o, "A")).collect();
    hub.publish(&batch).await;
    assert_eq!(metrics.queued_events.get(), 200);
    assert!(metrics.queued_bytes.get() > 0);
    assert_eq!(offsets(&mut reader, 100).await.len(), 100);
    assert!(nothing_ready(&mut reader));
    assert_eq!(metrics.queued_events.get(), 100);
    drop(stalled);
    assert_eq!(metrics.queued_events.get(), 0);
    assert_eq!(metrics.queued_bytes.get(), 0);
    drop(reader);
    assert_eq!(metrics.filter_groups.get(), 0);
}

#[tokio::test]
async fn identical_expressions_are_compiled_once_and_share_a_group() {
    let (hub, metrics) = hub_with(|_| {});
    let by_expression = request(|r| {
        r.filter = r#"stock_trade.symbol in ["B", "C"] && offset % 2 == 0"#.into();
    });
    let mut first = hub
        .subscribe(&by_expression, Transport::Sse)
        .await
        .expect("valid");
    let mut second = hub
        .subscribe(&by_expression, Transport::Websocket)
        .await
        .expect("valid");
    let _everything = subscribe(&hub, SubscribeRequest::default());
    for subscription in [&mut first, &mut second] {
        assert!(
            matches!(next(subscription).await, Ok(Kind::Heartbeat(_))),
            "the first heartbeat"
        );
    }
    assert_eq!(metrics.expressions.compiled.get(), 1, "compiled once");
    assert_eq!(metrics.expressions.cache_hits.get(), 1);
    assert_eq!(metrics.filter_groups.get(), 2, "one group for both");

    hub.publish(&[
        trade(0, 0, "A"),
        trade(0, 1, "B"),
        trade(0, 2, "B"),
        trade(0, 3, "C"),
        trade(0, 4, "C"),
        log(1, 0, LogLevel::Error),
    ])
    .await;
    assert_eq!(offsets(&mut first, 2).await, vec![(0, 2), (0, 4)]);
    assert_eq!(offsets(&mut second, 2).await, vec![(0, 2), (0, 4)]);
    assert!(nothing_ready(&mut first));

    let error = hub
        .subscribe(
            &request(|r| r.filter = "stock_trade.prise > 1.0".into()),
            Transport::Sse,
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(error.reason(), "filter_invalid");
    assert!(error.to_string().contains("prise"), "{error}");
    assert_eq!(
        metrics
            .refused
            .get_or_create(&crate::metrics::RefusedLabels {
                endpoint: "sse",
                reason: "filter_invalid"
            })
            .get(),
        1
    );
}

#[tokio::test]
async fn the_first_heartbeat_comes_at_once_with_positions_and_says_whether_a_backfill_is_to_come() {
    let hub = hub_with(|s| s.heartbeat = Duration::from_secs(600)).0;
    hub.publish(&[trade(0, 0, "A"), trade(0, 1, "B"), trade(1, 4, "A")])
        .await;
    let heartbeat = |outgoing: Option<Result<Outgoing, Ended>>| match outgoing {
        Some(Ok(Outgoing::Message(message))) => match message.kind {
            Some(Kind::Heartbeat(heartbeat)) => heartbeat,
            other => panic!("expected a heartbeat, got {other:?}"),
        },
        other => panic!("expected a heartbeat at once, got {other:?}"),
    };
    let positions = |heartbeat: &Heartbeat| -> Vec<(String, i32, i64)> {
        heartbeat
            .positions
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.offset))
            .collect()
    };

    // Live only: caught up from the start, at the hub's published positions.
    let request = request(|r| r.symbols = vec!["A".into()]);
    let mut live = hub
        .subscribe_with(&request, None, Transport::Grpc)
        .expect("valid");
    let first = heartbeat(live.try_next());
    assert!(first.caught_up);
    assert_eq!(
        first.interval,
        Some(streamweaver_proto::time::duration(Duration::from_secs(600)))
    );
    assert_eq!(
        positions(&first),
        vec![("stock_trades".into(), 0, 1), ("stock_trades".into(), 1, 4)]
    );

    // Resuming: its own positions, not caught up; then the backfill, then one that is.
    let request = request_resuming();
    let mut resuming = hub
        .subscribe_with(&request, None, Transport::Grpc)
        .expect("valid");
    let first = heartbeat(resuming.try_next());
    assert!(!first.caught_up);
    assert_eq!(positions(&first), vec![("stock_trades".into(), 0, 0)]);
    assert_eq!(offsets(&mut resuming, 1).await, vec![(0, 1)]);
    let last = match next(&mut resuming).await {
        Ok(Kind::Heartbeat(heartbeat)) => heartbeat,
        other => panic!("expected the caught-up heartbeat, got {other:?}"),
    };
    assert!(last.caught_up);
    assert_eq!(
        positions(&last),
        vec![("stock_trades".into(), 0, 1), ("stock_trades".into(), 1, 4)]
    );
    assert!(nothing_ready(&mut resuming));
}

fn request_resuming() -> SubscribeRequest {
    request(|r| {
        r.topics = vec!["stock_trades".into()];
        r.resume_from = vec![resume("stock_trades", 0, 0)];
    })
}
