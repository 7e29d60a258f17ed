//! The stream-consumer's side of at-least-once, on a real broker: consumers joining and leaving
//! the group mid-stream lose nothing and never move the group's commit back, and a partition the
//! gateway acknowledges too little of is sent again rather than committed.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use streamweaver_e2e::*;
use streamweaver_proto::{
    topics,
    v1::{
        Position, PublishRequest, PublishResponse,
        ingest_service_server::{IngestService, IngestServiceServer},
    },
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

const WITHIN: Duration = Duration::from_secs(60);
const TRADES: u64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_joining_and_leaving_mid_stream_loses_nothing_and_never_moves_the_commit_back()
-> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let mut args = broker.gateway_args("127.0.0.1:0".parse()?);
    args.subscriber_buffer = 1 << 16;
    let (gateway, gateway_task) = start_gateway(args).await?;
    let mut subscriber = Subscriber::to_topics(gateway, &[topics::STOCK_TRADES]).await?;
    let group = consumer_args(&broker, gateway).group_id;
    let first = start_consumer(consumer_args(&broker, gateway));
    let watch = CommitWatch::start(&broker, &group)?;
    let producer = start_producer(
        producer_args(&broker, 200.0, TRADES),
        stock_producer::StockTrades::default(),
    );

    let mut seen = subscriber.events(400, WITHIN).await?;
    // A second member joins: the partitions are dealt out again, then it leaves and the first
    // takes them all back, while records keep coming.
    let second = start_consumer(consumer_args(&broker, gateway));
    seen.extend(subscriber.events(800, WITHIN).await?);
    second.stop().await?;
    producer.finished().await?;
    seen.extend(
        subscriber
            .events(TRADES as usize - seen.len(), WITHIN)
            .await?,
    );
    let shown = assert_each_partition_from_zero(&seen);
    assert!(
        subscriber.events(1, Duration::from_secs(2)).await.is_err(),
        "every record shown once"
    );

    // Stopping commits everything acknowledged.
    first.stop().await?;
    let report = watch.stop().await?;
    assert!(
        report.most_members >= 2,
        "the second consumer joined the group ({} members at most)",
        report.most_members
    );
    assert!(
        report.backwards.is_empty(),
        "committed offsets went back: {:?}",
        report.backwards
    );
    // Every record was shown, so each partition's commit is one past its last record.
    let committed = committed_offsets(&broker, &group)?;
    for (partition, next) in shown {
        assert_eq!(
            committed.get(&partition),
            Some(&next),
            "partition {partition} committed up to its end"
        );
    }

    gateway_task.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_acknowledged_short_is_sent_again_not_committed() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let gateway = ShortFirstGateway::start().await?;
    let args = consumer_args(&broker, gateway.address);
    let group = args.group_id.clone();
    let consumer = start_consumer(args);
    start_producer(
        producer_args(&broker, 1_000.0, 300),
        stock_producer::StockTrades::default(),
    )
    .finished()
    .await?;

    // Wait until every partition is committed up to the last offset the gateway saw.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let (calls, committed) = loop {
        let calls = gateway.calls();
        let mut ends: HashMap<i32, i64> = HashMap::new();
        for call in &calls {
            for ((_, partition), offsets) in call {
                let end = ends.entry(*partition).or_default();
                *end = (*end).max(offsets.iter().max().map_or(0, |o| o + 1));
            }
        }
        let committed = committed_offsets(&broker, &group)?;
        if ends.values().sum::<i64>() == TRADES_SHORT as i64 && committed == ends {
            break (calls, committed);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "commits {committed:?} never reached {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The first call with events was acknowledged short on every partition it carried: each
    // was sent again from where it started, so nothing was committed on the short answer's word.
    let short = calls
        .iter()
        .position(|call| !call.is_empty())
        .expect("a call carried events");
    for (partition, offsets) in &calls[short] {
        let first = offsets[0];
        let sent_again = calls[short + 1..]
            .iter()
            .filter_map(|call| call.get(partition))
            .any(|later| later.first() == Some(&first));
        assert!(
            sent_again,
            "{partition:?} was not sent again from offset {first}"
        );
    }
    println!("{} calls; committed {committed:?}", calls.len());

    consumer.stop().await?;
    gateway.task.abort();
    Ok(())
}

/// Records produced for the short-acknowledgement test.
const TRADES_SHORT: u64 = 300;

/// Offsets carried per (topic, partition), in the order sent, for each Publish call.
type Calls = Vec<HashMap<(String, i32), Vec<i64>>>;

/// A gateway that acknowledges one offset less than it got on every partition of the first call
/// that carries events, and everything afterwards: a gateway that lost the end of a call.
#[derive(Clone, Default)]
struct ShortFirstGateway {
    calls: Arc<std::sync::Mutex<Calls>>,
}

/// A running [`ShortFirstGateway`].
struct RunningGateway {
    address: std::net::SocketAddr,
    calls: Arc<std::sync::Mutex<Calls>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    fn calls(&self) -> Calls {
        self.calls.lock().expect("calls").clone()
    }
}

impl ShortFirstGateway {
    async fn start() -> anyhow::Result<RunningGateway> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let gateway = Self::default();
        let calls = Arc::clone(&gateway.calls);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(IngestServiceServer::new(gateway))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "test gateway stopped");
            }
        });
        Ok(RunningGateway {
            address,
            calls,
            task,
        })
    }
}

#[tonic::async_trait]
impl IngestService for ShortFirstGateway {
    async fn publish(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<PublishResponse>, Status> {
        let mut stream = request.into_inner();
        let mut carried: HashMap<(String, i32), Vec<i64>> = HashMap::new();
        let mut accepted = 0;
        while let Some(message) = stream.message().await? {
            for event in message.events {
                carried
                    .entry((event.topic, event.partition))
                    .or_default()
                    .push(event.offset);
                accepted += 1;
            }
        }
        let mut calls = self.calls.lock().expect("calls");
        let short = !carried.is_empty() && calls.iter().all(HashMap::is_empty);
        let acknowledged = carried
            .iter()
            .filter_map(|((topic, partition), offsets)| {
                let highest = offsets.iter().max()?;
                Some(Position {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: if short { highest - 1 } else { *highest },
                })
            })
            .collect();
        calls.push(carried);
        Ok(Response::new(PublishResponse {
            accepted,
            acknowledged,
            ..Default::default()
        }))
    }
}

/// What [`CommitWatch`] saw.
#[derive(Debug, Default)]
struct CommitReport {
    /// Most members the group had at once.
    most_members: usize,
    /// (partition, committed before, committed after) for every step back.
    backwards: Vec<(i32, i64, i64)>,
}

/// Samples the group's committed offsets and membership every 50 ms, from outside the group.
struct CommitWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<CommitReport>>,
}

impl CommitWatch {
    fn start(broker: &Broker, group: &str) -> anyhow::Result<Self> {
        let observer: BaseConsumer = broker.client_config().set("group.id", group).create()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let group = group.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let mut report = CommitReport::default();
            let mut last: HashMap<i32, i64> = HashMap::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(groups) = observer.fetch_group_list(Some(&group), Duration::from_secs(5))
                {
                    let members = groups.groups().iter().map(|g| g.members().len()).sum();
                    report.most_members = report.most_members.max(members);
                }
                for (partition, offset) in read_committed(&observer)? {
                    if let Some(&before) = last.get(&partition)
                        && offset < before
                    {
                        report.backwards.push((partition, before, offset));
                    }
                    last.insert(partition, offset);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(report)
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> anyhow::Result<CommitReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

/// Partition → committed offset of `stock_trades` for `group`, partitions with a commit only.
fn committed_offsets(broker: &Broker, group: &str) -> anyhow::Result<HashMap<i32, i64>> {
    let observer: BaseConsumer = broker.client_config().set("group.id", group).create()?;
    read_committed(&observer)
}

fn read_committed(observer: &BaseConsumer) -> anyhow::Result<HashMap<i32, i64>> {
    let mut list = TopicPartitionList::new();
    for partition in 0..3 {
        list.add_partition(topics::STOCK_TRADES, partition);
    }
    let committed = observer.committed_offsets(list, Duration::from_secs(5))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect())
}
