//! trade-bars: one-second OHLC bars per symbol, computed from the live `stock_trades` stream that
//! the gateway serves (through `streamweaver-client`) and produced back to Kafka as the typed
//! topic `trade_bars` (key: symbol), which the stream-consumer forwards and the gateway streams
//! like any other.
//!
//! Every trade Kafka holds is in exactly one bar, across gateway restarts (the subscription
//! resumes from its positions, and trades are deduplicated by position per partition) and across
//! restarts of this service (each bar carries a checkpoint; at start the service reads the last
//! bars back from Kafka and resumes from there: see [`bars`]). Bars go out through an idempotent
//! producer, so librdkafka's retries do not write one twice.

pub mod bars;
pub mod config;
pub mod metrics;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use prost::Message;
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    producer::{DeliveryFuture, FutureProducer},
};
use streamweaver_client::{Backoff, ClientError, StartAt, Subscription, Topic, Update};
use streamweaver_common::{
    kafka::{ReadError, ensure_topics, protobuf_record, read_tail},
    metrics::SharedRegistry,
};
use streamweaver_proto::v1::{Position, SlowClientPolicy, event::Payload};
use tokio_util::sync::CancellationToken;

use crate::{
    bars::{Bars, ClosedBar, Counted, Restored},
    config::FirstStart,
    metrics::{Metrics, OutcomeLabels},
};
pub use config::TradeBarsArgs;

/// How long reading the last bars back from Kafka may take at start.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for Kafka to acknowledge the bars in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why trade-bars could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum TradeBarsError {
    /// A flag's value is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Kafka could not be set up.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The `trade_bars` topic could not be made.
    #[error(transparent)]
    Topics(#[from] streamweaver_common::kafka::TopicError),
    /// The last bars could not be read back.
    #[error("reading the last bars back: {0}")]
    Restore(#[from] ReadError),
    /// The gateway refused the subscription.
    #[error("subscription: {0}")]
    Subscribe(#[from] ClientError),
    /// Kafka did not take a bar after librdkafka's retries. The service stops rather than go on
    /// with a hole; its next start resumes from the bars Kafka has.
    #[error("Kafka did not take a bar: {0}")]
    Produce(#[source] KafkaError),
}

/// Makes bars until `shutdown` is cancelled. Bars still open then are not produced: the next
/// start makes them from the trades again.
pub async fn run(args: TradeBarsArgs, shutdown: CancellationToken) -> Result<(), TradeBarsError> {
    if args.grace.is_zero() {
        return Err(TradeBarsError::Config("--grace must be more than 0".into()));
    }
    let registry = SharedRegistry::default();
    let metrics = Metrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    streamweaver_common::metrics::spawn_serve(args.metrics_listen, registry, shutdown.clone());

    ensure_topics(&args.kafka, &[Topic::TradeBars.name()], args.partitions).await?;
    let producer: FutureProducer = args
        .kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;

    let restored = restore(&args).await?;
    metrics.restored_bars.set(restored.last_bars.len() as i64);
    let resume_from = restored.resume_from();
    tracing::info!(
        resume_from = ?resume_from.iter().map(|p| (p.partition, p.offset)).collect::<Vec<_>>(),
        symbols = restored.last_bars.len(),
        "resuming after the last bars in Kafka"
    );
    let updates = subscription(&args, resume_from)?.subscribe()?;
    BarMaker {
        bars: Bars::new(args.grace, restored),
        grace: args.grace,
        producer,
        deliveries: FuturesUnordered::new(),
        metrics,
    }
    .run(updates, shutdown)
    .await
}

/// Where the last run ended, from the newest bars of every `trade_bars` partition.
async fn restore(args: &TradeBarsArgs) -> Result<Restored, TradeBarsError> {
    let (kafka, window) = (args.kafka.clone(), args.restore_window);
    let tail = tokio::task::spawn_blocking(move || {
        read_tail(
            &kafka,
            Topic::TradeBars.name(),
            Some(window),
            RESTORE_TIMEOUT,
        )
    })
    .await
    .map_err(|e| TradeBarsError::Config(format!("the restore task failed: {e}")))??;
    if tail.undecodable > 0 {
        tracing::warn!(
            records = tail.undecodable,
            "records in trade_bars that are not bars"
        );
    }
    let mut restored = Restored::default();
    for event in &tail.events {
        if let Some(Payload::TradeBar(bar)) = &event.payload {
            restored.add(bar);
        }
    }
    Ok(restored)
}

/// The subscription to `stock_trades`: dropped and resumed rather than sent a gap when it falls
/// behind, so no trade is skipped while Kafka holds it.
fn subscription(
    args: &TradeBarsArgs,
    resume_from: Vec<Position>,
) -> Result<streamweaver_client::SubscriptionBuilder, TradeBarsError> {
    let mut builder = Subscription::builder(args.gateway_url.clone())
        .topics([Topic::StockTrades])
        .slow_client_policy(SlowClientPolicy::Disconnect)
        .start_at(match args.first_start {
            FirstStart::Live => StartAt::Live,
            FirstStart::Earliest => StartAt::Earliest,
        })
        .resume_from(resume_from)
        .heartbeat_interval(args.gateway_heartbeat)
        .backoff(Backoff::new(Duration::from_millis(100), args.max_backoff));
    if let Some(token) = args.subscribe_token.as_deref().filter(|t| !t.is_empty()) {
        builder = builder.bearer_token(token);
    }
    if let Some(path) = &args.gateway_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            TradeBarsError::Config(format!("--gateway-ca-file {}: {e}", path.display()))
        })?;
        builder = builder.tls_ca_pem(pem);
    }
    Ok(builder)
}

type Delivery = futures::future::Map<
    DeliveryFuture,
    Box<dyn FnOnce(<DeliveryFuture as std::future::Future>::Output) -> Acknowledgement + Send>,
>;
type Acknowledgement = (u64, Result<(), KafkaError>);

/// The loop: trades in, bars out, acknowledgements back.
struct BarMaker {
    bars: Bars,
    grace: Duration,
    producer: FutureProducer,
    deliveries: FuturesUnordered<Delivery>,
    metrics: Metrics,
}

impl BarMaker {
    async fn run(
        mut self,
        mut updates: Subscription,
        shutdown: CancellationToken,
    ) -> Result<(), TradeBarsError> {
        let mut ticker = tokio::time::interval(
            (self.grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(acknowledgement) = self.deliveries.next() => self.acknowledged(acknowledgement)?,
                update = updates.next() => match update {
                    Some(Ok(update)) => self.update(update).await?,
                    Some(Err(error)) => return Err(error.into()),
                    None => break,
                },
                _ = ticker.tick() => {
                    // A quiet partition's bars close by the clock (once it is caught up after a
                    // reconnection: see `bars`).
                    let closed = self.bars.close_idle(now_millis());
                    self.produce(closed).await?;
                    self.metrics.open_bars.set(self.bars.open_bars() as i64);
                }
            }
        }
        // Open bars stay unproduced: the next start makes them again from the trades.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(acknowledgement) = self.deliveries.next().await {
                self.acknowledged(acknowledgement)?;
            }
            Ok::<_, TradeBarsError>(())
        })
        .await;
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!("bars still unacknowledged at shutdown"),
        }
        tracing::info!(open = self.bars.open_bars(), "trade-bars stopped");
        Ok(())
    }

    async fn update(&mut self, update: Update) -> Result<(), TradeBarsError> {
        let stock_trades = |position: &&Position| position.topic == Topic::StockTrades.name();
        match update {
            Update::Event(event) => {
                let Some(Payload::StockTrade(trade)) = &event.payload else {
                    return Ok(());
                };
                self.bars.received(event.partition, now_millis());
                let (counted, closed) = self.bars.trade(event.partition, event.offset, trade);
                self.metrics
                    .trades
                    .get_or_create(&OutcomeLabels {
                        outcome: counted.label(),
                    })
                    .inc();
                if counted == Counted::Late {
                    tracing::debug!(
                        symbol = trade.symbol,
                        offset = event.offset,
                        "a trade came after its bar closed"
                    );
                }
                self.produce(closed).await?;
            }
            Update::Heartbeat(heartbeat) => {
                for position in heartbeat.positions.iter().filter(stock_trades) {
                    self.bars.passed(position.partition, position.offset);
                }
                // A gateway that states its interval also says whether the backfill is done
                // (its first heartbeat comes at once, before it); an older one sends heartbeats
                // only on a quiet stream.
                if heartbeat.caught_up || heartbeat.interval.is_none() {
                    self.bars.heartbeat(
                        heartbeat
                            .positions
                            .iter()
                            .filter(stock_trades)
                            .map(|p| p.partition),
                    );
                }
            }
            Update::Gap(gap) => {
                self.metrics.missed_trades.inc_by(gap.missed_events);
                tracing::warn!(
                    missed = gap.missed_events,
                    reason = gap.reason,
                    "the gateway skipped trades; bars of that stretch lack them"
                );
                for range in gap
                    .missed
                    .iter()
                    .filter(|r| r.topic == Topic::StockTrades.name())
                {
                    self.bars.passed(range.partition, range.last_offset);
                }
            }
            Update::Reset(reset) => {
                for position in reset.positions.iter().filter(stock_trades) {
                    tracing::warn!(
                        partition = position.partition,
                        reason = reset.reason,
                        "stock_trades partition started again"
                    );
                    let closed = self.bars.reset(position.partition, position.offset);
                    self.produce(closed).await?;
                }
            }
            Update::Connected | Update::Reconnected { .. } => self.bars.connected(now_millis()),
            Update::Disconnected { .. } => {
                self.bars.disconnected();
                self.metrics.disconnections.inc();
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands `closed` bars to the idempotent producer, in order.
    async fn produce(&mut self, closed: Vec<ClosedBar>) -> Result<(), TradeBarsError> {
        for ClosedBar { id, bar } in closed {
            tracing::debug!(
                symbol = bar.symbol,
                start = bar.start.map(|s| s.seconds),
                trades = bar.trade_count,
                "bar closed"
            );
            let value = bar.encode_to_vec();
            loop {
                let record = protobuf_record(Topic::TradeBars.name(), &bar.symbol, &value);
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        let acknowledge: Box<dyn FnOnce(_) -> Acknowledgement + Send> =
                            Box::new(move |outcome| match outcome {
                                Ok(Ok(_)) => (id, Ok(())),
                                Ok(Err((error, _))) => (id, Err(error)),
                                Err(_) => (id, Err(KafkaError::Canceled)),
                            });
                        self.deliveries.push(delivery.map(acknowledge));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // librdkafka's queue is full: make room by waiting for a delivery.
                        match self.deliveries.next().await {
                            Some(acknowledgement) => self.acknowledged(acknowledgement)?,
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((error, _)) => return Err(TradeBarsError::Produce(error)),
                }
            }
        }
        Ok(())
    }

    fn acknowledged(&mut self, (id, outcome): Acknowledgement) -> Result<(), TradeBarsError> {
        outcome.map_err(TradeBarsError::Produce)?;
        self.bars.acknowledged(id);
        self.metrics.bars.inc();
        Ok(())
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
