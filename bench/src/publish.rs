//! The benchmark's publisher: numbered events into `IngestService.Publish` at a steady rate, each
//! batch stamped with its send time as `produced_at`, so that every subscriber can time it.
//!
//! It warms up for as long as the benchmark likes, then is told which events are measured: it
//! notes the server's CPU time the moment it sends the first of them, and stops after the last.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use streamweaver_proto::v1::{PublishRequest, ingest_service_client::IngestServiceClient};
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;

use crate::wire::EventSource;

/// Most events in one `PublishRequest`, as the stream-consumer's default `--batch-max`.
const MAX_BATCH: u64 = 500;
/// How often the pacer wakes.
const TICK: Duration = Duration::from_millis(1);

/// When the first measured event was sent.
#[derive(Debug, Clone, Copy)]
pub struct MeasureStart {
    /// Wall-clock time it was sent.
    pub at: SystemTime,
    /// The server's CPU seconds at that moment.
    pub server_cpu: f64,
}

struct Plan {
    first: u64,
    last: u64,
    server_pid: u32,
    started: Option<oneshot::Sender<anyhow::Result<MeasureStart>>>,
}

/// A running publisher.
pub struct Publisher {
    next: Arc<AtomicU64>,
    plan: Arc<Mutex<Option<Plan>>>,
    task: tokio::task::JoinHandle<anyhow::Result<u64>>,
}

impl Publisher {
    /// Starts publishing `events` to `server` at `rate` per second with the bearer `token`.
    pub async fn start(
        server: SocketAddr,
        token: &str,
        rate: f64,
        events: Arc<EventSource>,
    ) -> anyhow::Result<Self> {
        let mut client = IngestServiceClient::connect(format!("http://{server}"))
            .await
            .context("cannot connect to IngestService")?
            .max_encoding_message_size(64 << 20);
        let (sender, receiver) = tokio::sync::mpsc::channel::<PublishRequest>(64);
        let mut request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        let bearer: MetadataValue<_> = format!("Bearer {token}").parse()?;
        request.metadata_mut().insert("authorization", bearer);
        let call = tokio::spawn(async move { client.publish(request).await });

        let next = Arc::new(AtomicU64::new(0));
        let plan: Arc<Mutex<Option<Plan>>> = Arc::new(Mutex::new(None));
        let (task_next, task_plan) = (next.clone(), plan.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent: u64 = 0;
            loop {
                ticker.tick().await;
                let last = task_plan
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map_or(u64::MAX, |plan| plan.last);
                if sent > last {
                    break;
                }
                let due =
                    ((started.elapsed().as_secs_f64() * rate) as u64).min(last.saturating_add(1));
                while sent < due {
                    let end = due.min(sent + MAX_BATCH);
                    let now = SystemTime::now();
                    mark_if_first(&task_plan, sent..end);
                    let events = (sent..end).map(|seq| events.event(seq, now)).collect();
                    if sender.send(PublishRequest { events }).await.is_err() {
                        // The call ended: its result says why.
                        drop(sender);
                        call.await??;
                        anyhow::bail!("the Publish call ended early");
                    }
                    sent = end;
                    task_next.store(sent, Ordering::Relaxed);
                }
            }
            drop(sender);
            let response = call.await??.into_inner();
            anyhow::ensure!(
                response.accepted == sent,
                "the server accepted {} of {sent} events ({} duplicates, {} rejected)",
                response.accepted,
                response.duplicates,
                response.rejected
            );
            Ok(sent)
        });
        Ok(Self { next, plan, task })
    }

    /// The next sequence number to be sent.
    pub fn next_seq(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Measures events `first..=last` (`first` not yet sent), noting `server_pid`'s CPU when
    /// `first` goes out (or the next batch, if it already has); publishing ends after `last`.
    pub fn measure(
        &self,
        first: u64,
        last: u64,
        server_pid: u32,
    ) -> oneshot::Receiver<anyhow::Result<MeasureStart>> {
        let (started, receiver) = oneshot::channel();
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(Plan {
            first,
            last,
            server_pid,
            started: Some(started),
        });
        receiver
    }

    /// Waits until the last event is sent and the server has acknowledged all of them; returns
    /// how many were sent.
    pub async fn finished(self) -> anyhow::Result<u64> {
        self.task.await.context("publisher panicked")?
    }
}

fn mark_if_first(plan: &Mutex<Option<Plan>>, batch: std::ops::Range<u64>) {
    let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(plan) = plan.as_mut()
        && batch.end > plan.first
        && let Some(started) = plan.started.take()
    {
        let start = crate::process::cpu_seconds(plan.server_pid).map(|server_cpu| MeasureStart {
            at: SystemTime::now(),
            server_cpu,
        });
        let _ = started.send(start);
    }
}
