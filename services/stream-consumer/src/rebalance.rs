//! Group rebalances handed to the forwarding loop.
//!
//! librdkafka runs the rebalance callback on whichever thread polls the consumer — here the
//! forwarding loop's async worker — so the callback only passes the change on. The loop then
//! settles it on a blocking thread in its own order: on a revoke it forgets the partitions'
//! state, commits what was acknowledged for them and only then lets them go (librdkafka waits for
//! that before the group moves on, so the commit still belongs to this member's generation); on
//! an assignment it sets up fresh state and takes the partitions.

use rdkafka::{
    ClientContext, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer},
    error::KafkaResult,
    types::RDKafkaRespErr,
};
use tokio::sync::mpsc;

use crate::partitions::TopicPartition;

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

/// The consumer's context: passes every rebalance to the forwarding loop.
pub struct HandOff {
    changes: mpsc::UnboundedSender<GroupChange>,
}

impl HandOff {
    /// A context, and where the loop receives the changes.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<GroupChange>) {
        let (changes, receiver) = mpsc::unbounded_channel();
        (Self { changes }, receiver)
    }
}

impl ClientContext for HandOff {}

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
