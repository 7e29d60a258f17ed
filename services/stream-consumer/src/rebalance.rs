//! Group rebalances handed to the forwarding loop.
//!
//! librdkafka runs the rebalance callback on whichever thread polls the consumer — here the
//! forwarding loop's async worker — so the callback only passes the change on. The loop then
//! settles it on a blocking thread in its own order: on a revoke it forgets the partitions'
//! state, commits what was acknowledged for them and only then lets them go (librdkafka waits for
//! that before the group moves on, so the commit still belongs to this member's generation); on
//! an assignment it sets up fresh state and takes the partitions.

use std::sync::Mutex;

use rdkafka::{
    ClientContext, Statistics, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer},
    error::KafkaResult,
    types::RDKafkaRespErr,
};
use tokio::sync::mpsc;

use crate::{
    log_end::{LogEndWatch, PastLogEnd},
    partitions::TopicPartition,
};

/// The consumer the forwarding loop reads from.
pub type KafkaConsumer = StreamConsumer<HandOff>;

/// A change of the partitions this member owns, not yet applied.
#[derive(Debug)]
pub enum GroupChange {
    /// The group gives these partitions to this member.
    Assign(TopicPartitionList),
    /// The group takes these partitions away.
    Revoke(TopicPartitionList),
}

impl GroupChange {
    /// The partitions concerned.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let (Self::Assign(list) | Self::Revoke(list)) = self;
        list.elements()
            .iter()
            .map(|element| TopicPartition::new(element.topic(), element.partition()))
            .collect()
    }

    /// Tells librdkafka the change is taken, under either rebalance protocol. Blocking: call it
    /// on a blocking thread.
    pub fn apply<C: ConsumerContext>(&self, consumer: &impl Consumer<C>) -> KafkaResult<()> {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match (self, cooperative) {
            (Self::Assign(list), true) => consumer.incremental_assign(list),
            (Self::Assign(list), false) => consumer.assign(list),
            (Self::Revoke(list), true) => consumer.incremental_unassign(list),
            (Self::Revoke(_), false) => consumer.unassign(),
        }
    }
}

/// The consumer's context: passes every rebalance, and every partition found read past its
/// log end ([`crate::log_end`]), to the forwarding loop.
pub struct HandOff {
    changes: mpsc::UnboundedSender<GroupChange>,
    past_end: mpsc::UnboundedSender<Vec<PastLogEnd>>,
    watch: Mutex<LogEndWatch>,
}

/// Where the forwarding loop receives what the consumer's context hands over.
pub struct Received {
    /// Rebalances.
    pub changes: mpsc::UnboundedReceiver<GroupChange>,
    /// Partitions read past their log end.
    pub past_end: mpsc::UnboundedReceiver<Vec<PastLogEnd>>,
}

impl HandOff {
    /// A context, and where the loop receives what it hands over.
    pub fn new() -> (Self, Received) {
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (past_end, past_end_rx) = mpsc::unbounded_channel();
        let context = Self {
            changes,
            past_end,
            watch: Mutex::default(),
        };
        let received = Received {
            changes: changes_rx,
            past_end: past_end_rx,
        };
        (context, received)
    }
}

impl ClientContext for HandOff {
    /// librdkafka's statistics (every [`crate::log_end::CHECK_INTERVAL_MS`]): only the log-end
    /// watch reads them.
    fn stats(&self, statistics: Statistics) {
        let past_end = self
            .watch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .observe(&statistics);
        if !past_end.is_empty() {
            // The loop is gone only while the consumer closes: nothing to do then.
            let _ = self.past_end.send(past_end);
        }
    }
}

impl ConsumerContext for HandOff {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let change = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                GroupChange::Assign(partitions.clone())
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                GroupChange::Revoke(partitions.clone())
            }
            other => {
                tracing::warn!(error = ?other, "unexpected rebalance event");
                return;
            }
        };
        if let Err(mpsc::error::SendError(change)) = self.changes.send(change) {
            // The loop is gone: the consumer is closing, and librdkafka waits for the answer.
            if let Err(error) = change.apply(consumer) {
                tracing::warn!(%error, "cannot apply a rebalance while closing");
            }
        }
    }
}
